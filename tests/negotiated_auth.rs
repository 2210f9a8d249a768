//! Keys and cookies handed out by negotiation, in the netns testbed: a negotiated STAMP session
//! gets a fresh HMAC key over the control connection and both directions run in RFC 8762
//! authenticated mode; a tampered packet of that session is dropped and counted; a TCP
//! throughput test not negotiated is refused under `--require-auth` with the fix named, a
//! negotiated one runs on its cookie; and throughput tests negotiated or not run one at a time.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Stdio;
use std::time::Duration;

use common::{TempDir, output, probe, serve, wait_tcp_listening, wait_udp_listening};
use probe_core::a2a::{Direction, StampKey};
use probe_core::control::{ClientConfig, PinPolicy, TestKind, TestRequest, connect};
use probe_core::time::{ErrorEstimate, Nanos, NtpTimestamp};
use probe_core::wire::stamp::{SenderPacket, SenderRepr};
use probe_core::wire::stamp_auth::{AUTH_BASE_LEN, AuthReflectorPacket, AuthSenderPacket};
use probe_lab::{Host, topology};
use serde_json::Value;

const PORT: u16 = 49153;
const SSID: u16 = 0x0A0B;

/// `probe serve --json EXTRA` in `host`, control plane and TCP listening.
fn serve_all(host: &Host, extra: &[&str]) -> common::Served {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let srv = serve(host, PORT, &args);
    wait_udp_listening(host, probe_core::control::CONTROL_PORT);
    wait_tcp_listening(host, PORT);
    srv
}

fn stopped(srv: common::Served) -> Value {
    let out = srv.terminate(Duration::from_secs(5)).expect("stop serve");
    serde_json::from_slice(&out.stdout).expect("serve counters JSON")
}

fn json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "probe a2a failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn require_auth_hands_out_a_session_key_and_both_directions_authenticate() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let srv = serve_all(&lab.b, &["--require-auth"]);
    let peer = lab.b.ipv4().to_string();
    let v = json(&output(
        probe(
            &lab.a,
            &["a2a", "--peer", &peer, "-c", "50", "-i", "5ms", "--json"],
        )
        .env_remove("PROBE_TOKEN"),
    ));
    assert_eq!(v["control"], "negotiated", "{v}");
    assert_eq!(v["direction"], "both", "{v}");
    // `to`: this end's sender, authenticated with the key of the session.
    assert_eq!(v["authenticated"], true, "{v}");
    assert_eq!(
        v["size"], AUTH_BASE_LEN,
        "44 raised to the authenticated base: {v}"
    );
    assert_eq!(
        (&v["sent"], &v["received"]),
        (&50.into(), &50.into()),
        "{v}"
    );
    assert_eq!(v["auth_failed"], 0, "{v}");
    assert_eq!(v["far_end"]["reflector"]["received"], 50, "{v}");
    // `from`: the far end's sender, toward this end's reflector, with the same key.
    let from = &v["from"]["report"];
    assert_eq!(from["authenticated"], true, "{v}");
    assert_eq!(from["received"], 50, "{v}");
    assert_eq!(from["auth_failed"], 0, "{v}");
    let c = stopped(srv);
    assert_eq!(c["auth_reflected"], 50, "{c}");
    assert_eq!(c["reflected"], 50, "{c}");
    assert_eq!(
        (&c["auth_failed"], &c["unauthenticated"]),
        (&0.into(), &0.into()),
        "{c}"
    );
}

/// An authenticated sender packet of [`SSID`] under `key`.
fn sealed(seq: u32, key: &StampKey) -> Vec<u8> {
    let mut buf = vec![0u8; AUTH_BASE_LEN];
    SenderRepr {
        seq,
        timestamp: NtpTimestamp::from_nanos(Nanos::now_realtime()),
        error_estimate: ErrorEstimate::new(false, false, 0, 1),
        ssid: SSID,
    }
    .emit_authenticated(&mut AuthSenderPacket::new_unchecked(&mut buf[..]), key);
    buf
}

/// An unauthenticated sender packet of `ssid`.
fn plain(seq: u32, ssid: u16) -> Vec<u8> {
    let mut p = vec![0u8; 44];
    SenderRepr {
        seq,
        timestamp: NtpTimestamp::from_nanos(Nanos::now_realtime()),
        error_estimate: ErrorEstimate::new(false, false, 0, 1),
        ssid,
    }
    .emit(&mut SenderPacket::new_unchecked(&mut p[..]));
    p
}

/// Sends `pkt` and returns the reply, if one comes within `wait`.
fn exchange(sock: &UdpSocket, peer: SocketAddr, pkt: &[u8], wait: Duration) -> Option<Vec<u8>> {
    sock.send_to(pkt, peer).expect("send");
    sock.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 2048];
    sock.recv_from(&mut buf)
        .ok()
        .map(|(n, _)| buf[..n].to_vec())
}

#[test]
fn a_tampered_packet_of_a_negotiated_session_is_dropped_and_counted() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let srv = serve_all(&lab.b, &[]);
    let state = TempDir::new("negotiated-auth-client");
    let file = state.join("known_peers");
    let server = SocketAddr::from((lab.b.ipv4(), probe_core::control::CONTROL_PORT));
    let stamp = SocketAddr::from((lab.b.ipv4(), PORT));
    let other = StampKey::new(&[9; 32]).expect("key");
    let (key, replies, after_end) = lab.a.run_in(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let pin = PinPolicy::KnownPeers {
                file: file.clone(),
                key: "b".into(),
            };
            let client = connect(ClientConfig::new(server, "b".into(), pin))
                .await
                .expect("connect");
            client.hello().await.expect("hello");
            let granted = client
                .request_test(&TestRequest {
                    kind: TestKind::Stamp,
                    direction: Direction::To,
                    interval_ns: Some(10_000_000),
                    count: Some(5),
                    duration_ms: Some(50),
                    size: 44,
                    dscp: None,
                    ssid: SSID,
                    port: None,
                    clock: None,
                    auth: true,
                })
                .await
                .expect("granted");
            let key = granted
                .session_key()
                .expect("hex")
                .expect("a key for the session");
            let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
            let wait = Duration::from_millis(500);
            let good = exchange(&sock, stamp, &sealed(1, &key), Duration::from_secs(2));
            // A correct packet with one octet of its timestamp flipped.
            let mut tampered = sealed(2, &key);
            tampered[20] ^= 0x01;
            let tampered = exchange(&sock, stamp, &tampered, wait);
            let wrong_key = exchange(&sock, stamp, &sealed(3, &other), wait);
            let unauthenticated = exchange(&sock, stamp, &plain(4, SSID), wait);
            // Only the session's SSID needs the key: another sender is answered (open mode).
            let other_ssid = exchange(&sock, stamp, &plain(5, SSID + 1), wait);
            client
                .results(granted.session, true, Duration::from_secs(2))
                .await
                .expect("results");
            // The session ended: its key is forgotten, plain STAMP is answered again.
            let after_end = exchange(&sock, stamp, &plain(6, SSID), Duration::from_secs(2));
            client.close().await;
            (
                key,
                [good, tampered, wrong_key, unauthenticated, other_ssid],
                after_end,
            )
        })
    });
    let [good, tampered, wrong_key, unauthenticated, other_ssid] = replies;
    let good = good.expect("the session's sealed packet is answered");
    let reply = AuthReflectorPacket::new_checked(&good[..]).expect("authenticated reply");
    assert!(
        reply.verify(&key),
        "the reply is sealed with the session key"
    );
    assert_eq!(tampered, None, "no reply to a tampered packet");
    assert_eq!(wrong_key, None, "no reply under another key");
    assert_eq!(unauthenticated, None, "no plain reply within the session");
    assert!(other_ssid.is_some(), "another SSID is open mode");
    assert!(after_end.is_some(), "the key went with the session");
    let c = stopped(srv);
    assert_eq!(c["auth_reflected"], 1, "{c}");
    assert_eq!(c["auth_failed"], 2, "tampered and wrong key: {c}");
    assert_eq!(c["unauthenticated"], 1, "{c}");
    assert_eq!(c["reflected"], 3, "{c}");
}

/// `probe a2a --proto tcp --throughput -d D EXTRA` from `host`.
fn tcp_throughput(host: &Host, peer: &str, d: &str, extra: &[&str]) -> std::process::Command {
    let mut args = vec![
        "a2a",
        "--proto",
        "tcp",
        "--throughput",
        "--peer",
        peer,
        "-d",
        d,
        "--json",
    ];
    args.extend_from_slice(extra);
    let mut cmd = probe(host, &args);
    cmd.env_remove("PROBE_TOKEN");
    cmd
}

#[test]
fn require_auth_refuses_an_unnegotiated_tcp_test_and_runs_a_negotiated_one() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let srv = serve_all(&lab.b, &["--require-auth"]);
    let peer = lab.b.ipv4().to_string();
    let out = output(&mut tcp_throughput(&lab.a, &peer, "1s", &["--no-control"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("unauthorized"), "{err}");
    assert!(
        err.contains("probe serve --require-auth") && err.contains("drop --no-control"),
        "the message names the fix: {err}"
    );
    let v = json(&output(&mut tcp_throughput(&lab.a, &peer, "1s", &[])));
    assert!(v["to"]["bytes"].as_u64().expect("bytes") > 0, "{v}");
    assert!(v["from"]["bytes"].as_u64().expect("bytes") > 0, "{v}");
    let c = stopped(srv);
    assert_eq!(c["tcp"]["refused"], 1, "{c}");
    assert_eq!(c["tcp"]["tests"], 1, "{c}");
    assert_eq!(c["control"]["tests_accepted"], 1, "{c}");
}

#[test]
fn throughput_tests_negotiated_or_not_run_one_at_a_time() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let srv = serve_all(&lab.b, &[]);
    let peer = lab.b.ipv4().to_string();
    for (first, second, busy) in [
        // A negotiated test holds the slot a plain one asks for ...
        (
            &[][..],
            &["--no-control"][..],
            "busy: another throughput test runs",
        ),
        // ... and a plain one the slot a negotiated one asks for.
        (&["--no-control"][..], &[][..], "busy, retry after"),
    ] {
        let mut cmd = tcp_throughput(&lab.a, &peer, "3s", first);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let running = lab.a.spawn(&mut cmd).expect("first test");
        std::thread::sleep(Duration::from_secs(1));
        let out = output(&mut tcp_throughput(&lab.a, &peer, "1s", second));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains(busy), "{err}");
        let first = running.wait().expect("first test ends");
        assert!(first.status.success(), "{first:?}");
    }
    let c = stopped(srv);
    assert_eq!(c["tcp"]["tests"], 2, "{c}");
    assert_eq!(c["control"]["tests_refused"], 1, "{c}");
    assert_eq!(c["tcp"]["refused"], 1, "{c}");
}
