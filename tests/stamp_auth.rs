//! Authenticated STAMP (RFC 8762, `--stamp-key-file`) in the testbed: the same key measures
//! as usual, another key gets no answer and a message naming authentication, and a tampered
//! packet from a raw socket gets no reply and is counted by the reflector.
#![allow(clippy::float_cmp)] // Counts (JSON numbers) are compared exactly on purpose.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{json_ok, num, output, probe, serve, text};
use probe_core::a2a::StampKey;
use probe_core::time::{ErrorEstimate, Nanos, NtpTimestamp};
use probe_core::wire::stamp::{ReflectorRepr, SenderPacket, SenderRepr};
use probe_core::wire::stamp_auth::{AUTH_BASE_LEN, AuthReflectorPacket, AuthSenderPacket};
use probe_lab::impair::ImpairConfig;
use probe_lab::topology;
use serde_json::Value;

const PORT: u16 = 49153;
const KEY_A: &str = "3f1c0a9e5d7b2468ace013579bdf02468ace13579bdf0246\n8ace13579bdf0246\n";
const KEY_B: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";

/// Key files in a directory of their own, removed at the end of the test.
struct Keys {
    dir: PathBuf,
}

impl Keys {
    fn new(test: &str) -> Keys {
        let dir =
            std::env::temp_dir().join(format!("probe-stamp-auth-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("key dir");
        for (name, hex) in [("a.hex", KEY_A), ("b.hex", KEY_B)] {
            std::fs::write(dir.join(name), hex).expect("key file");
        }
        Keys { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Stops `probe serve --json` and returns its counters.
fn counters(srv: common::Served) -> Value {
    let out = srv.terminate(Duration::from_secs(3)).expect("stop serve");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn serve_with_key(host: &probe_lab::Host, key_file: &str) -> common::Served {
    serve(
        host,
        PORT,
        &["--stamp-key-file", key_file, "--no-control", "--json"],
    )
}

#[test]
fn the_same_key_measures_as_usual() {
    if !probe_lab::require_root() {
        return;
    }
    let keys = Keys::new("same");
    let fwd = ImpairConfig {
        delay: Duration::from_millis(4),
        ..ImpairConfig::default()
    };
    let rev = ImpairConfig {
        delay: Duration::from_millis(1),
        ..ImpairConfig::default()
    };
    let lab = topology::impaired(fwd, rev).expect("impaired topology");
    let srv = serve_with_key(&lab.b, &keys.path("a.hex"));
    let peer = lab.b.ipv4().to_string();
    let v = json_ok(&mut probe(
        &lab.a,
        &[
            "a2a",
            "--peer",
            &peer,
            "-c",
            "100",
            "-i",
            "2ms",
            "--json",
            "--stamp-key-file",
            &keys.path("a.hex"),
        ],
    ));
    assert_eq!(v["authenticated"], Value::Bool(true), "{v}");
    assert_eq!(num(&v, "auth_failed"), 0.0);
    assert_eq!(
        num(&v, "size"),
        AUTH_BASE_LEN as f64,
        "44 raised to the authenticated base"
    );
    assert_eq!(
        (num(&v, "sent"), num(&v, "received")),
        (100.0, 100.0),
        "{v}"
    );
    assert_eq!(num(&v, "forward.loss_pct"), 0.0);
    assert_eq!(num(&v, "reverse.loss_pct"), 0.0);
    assert_eq!(text(&v, "clock.mode"), "shared", "the clock TLV came back");
    for (dir, want) in [("forward", 4.0), ("reverse", 1.0)] {
        let got = num(&v, &format!("{dir}.delay_ms.p50"));
        assert!(
            (got - want).abs() < 0.3,
            "{dir} delay p50 {got} ms, configured {want} ms"
        );
    }
    let c = counters(srv);
    assert!(num(&c, "auth_reflected") >= 100.0, "{c}");
    assert_eq!(num(&c, "auth_reflected"), num(&c, "reflected"), "{c}");
    assert_eq!(
        (num(&c, "auth_failed"), num(&c, "unauthenticated")),
        (0.0, 0.0),
        "{c}"
    );
}

#[test]
fn another_key_gets_no_answer_and_names_authentication() {
    if !probe_lab::require_root() {
        return;
    }
    let keys = Keys::new("other");
    let lab = topology::direct().expect("direct topology");
    let srv = serve_with_key(&lab.b, &keys.path("a.hex"));
    let peer = lab.b.ipv4().to_string();
    let out = output(&mut probe(
        &lab.a,
        &[
            "a2a",
            "--peer",
            &peer,
            "-c",
            "5",
            "-i",
            "10ms",
            "--wait",
            "200ms",
            "--stamp-key-file",
            &keys.path("b.hex"),
        ],
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Likely cause: authentication"), "{stderr}");
    assert!(stderr.contains("--stamp-key-file"), "{stderr}");
    // A plain sender is not answered either.
    let plain = output(&mut probe(
        &lab.a,
        &["a2a", "--peer", &peer, "-c", "3", "--wait", "200ms"],
    ));
    assert_eq!(plain.status.code(), Some(1));
    let c = counters(srv);
    assert_eq!(num(&c, "reflected"), 0.0, "{c}");
    // Every test packet and hello of the run with key B, none answered.
    assert!(num(&c, "auth_failed") >= 5.0, "{c}");
    assert!(num(&c, "unauthenticated") >= 3.0, "{c}");
}

/// An authenticated sender packet under `key` stamped now.
fn packet(seq: u32, key: &StampKey) -> Vec<u8> {
    let mut buf = vec![0u8; AUTH_BASE_LEN];
    SenderRepr {
        seq,
        timestamp: NtpTimestamp::from_nanos(Nanos::now_realtime()),
        error_estimate: ErrorEstimate::new(false, false, 0, 1),
        ssid: 0x0A0B,
    }
    .emit_authenticated(&mut AuthSenderPacket::new_unchecked(&mut buf[..]), key);
    buf
}

/// Sends `pkt` from `sock` and returns the reply, if one comes within `wait`.
fn exchange(sock: &UdpSocket, peer: SocketAddr, pkt: &[u8], wait: Duration) -> Option<Vec<u8>> {
    sock.send_to(pkt, peer).expect("send");
    sock.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 2048];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

#[test]
fn a_tampered_packet_gets_no_reply_and_is_counted() {
    if !probe_lab::require_root() {
        return;
    }
    let keys = Keys::new("tamper");
    let key = StampKey::from_hex_file(Path::new(&keys.path("a.hex"))).expect("key A");
    let lab = topology::direct().expect("direct topology");
    let srv = serve_with_key(&lab.b, &keys.path("a.hex"));
    let peer = SocketAddr::from((lab.b.ipv4(), PORT));
    let (good, tampered, plain) = lab.a.run_in(|| {
        let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
        let good = exchange(&sock, peer, &packet(1, &key), Duration::from_secs(2));
        // A correct packet with one octet of its timestamp flipped.
        let mut pkt = packet(2, &key);
        pkt[20] ^= 0x01;
        let tampered = exchange(&sock, peer, &pkt, Duration::from_millis(500));
        // An unauthenticated packet.
        let mut p = vec![0u8; 44];
        SenderRepr {
            seq: 3,
            timestamp: NtpTimestamp::from_nanos(Nanos::now_realtime()),
            error_estimate: ErrorEstimate::new(false, false, 0, 1),
            ssid: 0x0A0B,
        }
        .emit(&mut SenderPacket::new_unchecked(&mut p[..]));
        let plain = exchange(&sock, peer, &p, Duration::from_millis(500));
        (good, tampered, plain)
    });
    let good = good.expect("the correct packet is answered");
    let reply = AuthReflectorPacket::new_checked(&good[..]).expect("authenticated reply");
    assert!(reply.verify(&key), "the reply is sealed with the key");
    let r = ReflectorRepr::parse_authenticated(&reply);
    assert_eq!((r.sender_seq, r.ssid, r.seq), (1, 0x0A0B, 0));
    assert_eq!(tampered, None, "no reply to a tampered packet");
    assert_eq!(plain, None, "no reply to an unauthenticated packet");
    let c = counters(srv);
    assert_eq!(
        (
            num(&c, "received"),
            num(&c, "auth_reflected"),
            num(&c, "auth_failed"),
            num(&c, "unauthenticated")
        ),
        (3.0, 1.0, 1.0, 1.0),
        "{c}"
    );
}
