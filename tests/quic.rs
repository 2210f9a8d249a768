//! `probe a2a --proto quic` against `probe serve`'s control endpoint in the netns testbed:
//! handshake and datagram round-trip times against the impairment hop's delay, stream
//! throughput each way against its rate limit, a client behind NAT and on macvlan, the token,
//! and (in process, on loopback) sessions the responder did not grant.
#![allow(clippy::float_cmp)] // Counts are compared exactly on purpose.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{TempDir, num, output, probe, serve, text, wait_udp_listening};
use probe_lab::{Host, topology};
use serde_json::Value;

const PORT: u16 = 49153;

/// `probe serve` in `host` with its control endpoint listening, plus `extra` flags.
fn serve_quic(host: &Host, extra: &[&str]) -> common::Served {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let srv = serve(host, PORT, &args);
    wait_udp_listening(host, 49152);
    srv
}

/// `probe a2a --proto quic --peer PEER --json ARGS` from `host` with client state `dir`.
fn quic(host: &Host, peer: &str, dir: &TempDir, args: &[&str]) -> Output {
    let state = dir.s("state");
    let mut all = vec![
        "a2a",
        "--proto",
        "quic",
        "--peer",
        peer,
        "--json",
        "--state-dir",
        &state,
    ];
    all.extend_from_slice(args);
    output(probe(host, &all).env_remove("PROBE_TOKEN"))
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "probe a2a --proto quic failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn stopped(srv: common::Served) -> Value {
    let out = srv.terminate(Duration::from_secs(5)).expect("stop serve");
    serde_json::from_slice(&out.stdout).expect("serve counters JSON")
}

#[test]
fn handshakes_and_datagram_rtt_follow_the_configured_delay() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = common::delayed(10, 5);
    let srv = serve_quic(&lab.b, &[]);
    let dir = TempDir::new("quic-rtt");
    let peer = lab.b.ipv4().to_string();
    let v = json(&quic(
        &lab.a,
        &peer,
        &dir,
        &["--handshakes", "5", "-c", "50", "-i", "10ms"],
    ));
    assert_eq!(text(&v, "proto"), "quic");
    assert_eq!(num(&v, "quic.handshakes"), 5.0, "{v}");
    assert_eq!(num(&v, "quic.handshakes_ok"), 5.0, "{v}");
    // Initial out, the server's Initial and Handshake flights back: one round trip of
    // 10 + 5 ms. The fastest handshake adds the key exchange, the certificate's signature
    // and its check; the median also carries the wake-ups of both processes and of the
    // userspace hop, which a loaded machine stretches by several milliseconds.
    for (stat, max) in [("min", 20.0), ("p50", 30.0)] {
        let got = num(&v, &format!("quic.handshake_ms.{stat}"));
        assert!((15.0..max).contains(&got), "handshake {stat} {got} ms: {v}");
    }
    assert_eq!(num(&v, "quic.datagrams.sent"), 50.0, "{v}");
    assert_eq!(num(&v, "quic.datagrams.received"), 50.0, "{v}");
    assert_eq!(num(&v, "quic.datagrams.lost"), 0.0, "{v}");
    assert_eq!(num(&v, "quic.datagrams.size"), 44.0, "{v}");
    // Each datagram crosses the hop once each way and the echo is immediate. The send time
    // is read just before the datagram goes to quinn, so the round trip is the path's plus
    // the task wake-ups at both ends (about 0.1 ms; ping on this path shows 15.4-15.6 ms).
    // The fastest is within 1 ms of the configured 15 ms, the median within 1.5 ms, as the
    // TCP connect test's.
    for (stat, max) in [("min", 16.0), ("p50", 16.5)] {
        let got = num(&v, &format!("quic.rtt_ms.{stat}"));
        assert!(
            (15.0..max).contains(&got),
            "datagram rtt {stat} {got} ms: {v}"
        );
    }
    // quinn's own smoothed RTT of the datagram connection agrees.
    let path = num(&v, "quic.path.rtt_ms");
    assert!((15.0..20.0).contains(&path), "path rtt {path} ms");
    assert!(v["quic"].get("throughput").is_none(), "{v}");
    let c = stopped(srv);
    // Five handshake connections and the datagram connection, for one granted session.
    assert_eq!(num(&c, "control.quic_tests"), 6.0, "{c}");
    assert_eq!(num(&c, "control.quic_refused"), 0.0, "{c}");
    assert_eq!(num(&c, "control.tests_accepted"), 1.0, "{c}");
}

/// Goodput bounds for a link of `bps`: IP, UDP and QUIC headers and the acknowledgements'
/// share, and slow start in a 2 s test.
fn assert_near_rate(what: &str, got: f64, bps: f64) {
    common::assert_near_rate(what, got, bps, 0.7);
}

#[test]
fn throughput_each_direction_matches_its_rate_limit() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = common::rate_limited(20_000_000, 10_000_000);
    let _srv = serve_quic(&lab.b, &[]);
    let dir = TempDir::new("quic-throughput");
    let peer = lab.b.ipv4().to_string();
    let run = |direction: &str| {
        json(&quic(
            &lab.a,
            &peer,
            &dir,
            &[
                "--throughput",
                "--direction",
                direction,
                "-d",
                "2s",
                "--handshakes",
                "1",
            ],
        ))
    };

    let v = run("to");
    let t = &v["quic"]["throughput"];
    assert!(t.get("from").is_none(), "{v}");
    assert_eq!(text(t, "direction"), "to");
    assert_near_rate("to", num(t, "to.bits_per_second"), 20e6);
    // One-second intervals from the receiver (the far end); the first holds slow start.
    let iv = t["to"]["intervals"].as_array().expect("intervals");
    assert!((2..=3).contains(&iv.len()), "{iv:?}");
    assert_near_rate("to, 2nd interval", num(&iv[1], "bits_per_second"), 20e6);
    // The sender is this end: its path saw the 20 Mbit/s queue fill.
    assert!(num(t, "to.sender_path.cwnd_bytes") > 0.0, "{t}");
    assert!(num(t, "to.sender_path.sent_packets") > 1000.0, "{t}");
    assert!(num(t, "to.sender_path.rtt_ms") > 0.0, "{t}");

    let v = run("from");
    let t = &v["quic"]["throughput"];
    assert!(t.get("to").is_none(), "{v}");
    assert_near_rate("from", num(t, "from.bits_per_second"), 10e6);
    // The far end sent: its path statistics came back with its view.
    assert!(num(t, "from.sender_path.sent_packets") > 1000.0, "{t}");

    // Both at once, on two streams of one connection: one 2 s duration, where one direction
    // after the other cannot take less than 4 s.
    let started = std::time::Instant::now();
    let v = run("both");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "both took {took:?}: {v}");
    let t = &v["quic"]["throughput"];
    assert_near_rate("both, to", num(t, "to.bits_per_second"), 20e6);
    assert_near_rate("both, from", num(t, "from.bits_per_second"), 10e6);
}

/// The datagram test and throughput both ways from `client` to `server`'s responder (which
/// requires a token and negotiated sessions).
fn every_direction(client: &Host, server: &Host, tag: &str) -> Value {
    let srv = serve_quic(server, &["--require-auth", "--token", "t0ken"]);
    let dir = TempDir::new(tag);
    let peer = server.ipv4().to_string();
    let token = ["--token", "t0ken"];
    let mut args = vec!["--handshakes", "3", "-c", "20", "-i", "5ms"];
    args.extend_from_slice(&token);
    let v = json(&quic(client, &peer, &dir, &args));
    assert_eq!(num(&v, "quic.handshakes_ok"), 3.0, "{v}");
    assert_eq!(num(&v, "quic.datagrams.received"), 20.0, "{v}");
    for direction in ["to", "from", "both"] {
        let mut args = vec!["--throughput", "--direction", direction, "-d", "1s"];
        args.extend_from_slice(&token);
        let v = json(&quic(client, &peer, &dir, &args));
        let t = &v["quic"]["throughput"];
        for (leg, wanted) in [("to", direction != "from"), ("from", direction != "to")] {
            assert_eq!(t.get(leg).is_some(), wanted, "{direction}: {v}");
            if wanted {
                // Unshaped veth links: far above a megabit even in a debug build.
                assert!(num(t, &format!("{leg}.bits_per_second")) > 1e6, "{v}");
                assert!(num(t, &format!("{leg}.bytes")) > 0.0, "{v}");
            }
        }
    }
    stopped(srv)
}

#[test]
fn client_behind_nat_measures_every_direction() {
    if !probe_lab::require_root() {
        return;
    }
    // The client is the container: masqueraded, nothing published.
    let lab = topology::nat_with(&[]).expect("nat topology");
    let c = every_direction(&lab.agent, &lab.peer, "quic-nat");
    assert_eq!(num(&c, "control.tests_accepted"), 4.0, "{c}");
    assert_eq!(num(&c, "control.quic_refused"), 0.0, "{c}");
}

#[test]
fn client_on_macvlan_measures_every_direction() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::macvlan().expect("macvlan topology");
    let c = every_direction(&lab.agent, &lab.peer, "quic-macvlan");
    assert_eq!(num(&c, "control.tests_accepted"), 4.0, "{c}");
}

#[test]
fn a_wrong_token_and_a_limit_are_refused() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let srv = serve_quic(&lab.b, &["--token", "right", "--max-duration", "3s"]);
    let dir = TempDir::new("quic-token");
    let peer = lab.b.ipv4().to_string();
    let out = quic(&lab.a, &peer, &dir, &["--token", "wrong", "-c", "5"]);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unauthorized: wrong token"), "{err}");
    // Both directions at once for 4 s, over the operator's 3 s.
    let out = quic(
        &lab.a,
        &peer,
        &dir,
        &["--token", "right", "--throughput", "-d", "4s"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused the QUIC test") && err.contains("--max-duration 3s"),
        "{err}"
    );
    let v = json(&quic(
        &lab.a,
        &peer,
        &dir,
        &[
            "--token",
            "right",
            "--handshakes",
            "2",
            "-c",
            "5",
            "-i",
            "5ms",
        ],
    ));
    assert_eq!(num(&v, "quic.datagrams.received"), 5.0, "{v}");
    let c = stopped(srv);
    assert_eq!(num(&c, "control.unauthorized"), 1.0, "{c}");
    assert_eq!(num(&c, "control.tests_refused"), 1.0, "{c}");
    assert_eq!(num(&c, "control.tests_accepted"), 1.0, "{c}");
    assert_eq!(num(&c, "control.quic_tests"), 3.0, "{c}");
}

#[test]
fn a_responder_that_vanishes_mid_transfer_keeps_what_was_measured() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let mut srv = serve_quic(&lab.b, &[]);
    let dir = TempDir::new("quic-vanish");
    let state = dir.s("state");
    let peer = lab.b.ipv4().to_string();
    let mut cmd = probe(
        &lab.a,
        &[
            "a2a",
            "--proto",
            "quic",
            "--peer",
            &peer,
            "--json",
            "--state-dir",
            &state,
            "--throughput",
            "--direction",
            "to",
            "-d",
            "3s",
            "--handshakes",
            "2",
        ],
    );
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let client = lab.a.spawn(&mut cmd).expect("start probe a2a");
    std::thread::sleep(Duration::from_millis(1500));
    // SIGKILL: no close frame, the client finds out by silence.
    srv.child_mut().kill().expect("kill serve");
    let out = client.wait().expect("probe a2a ends");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(num(&v, "quic.handshakes_ok"), 2.0, "{v}");
    assert!(v["quic"]["throughput"].get("to").is_none(), "{v}");
    let why = text(&v, "quic.error");
    assert!(why.contains("the far end's view"), "{why}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stopped early"), "{err}");
}

/// In process on loopback: a test connection naming a session the responder never granted,
/// or granted for another kind, is refused and counted; throughput sessions are exclusive.
#[test]
fn sessions_the_responder_did_not_grant_are_refused() {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::Arc;

    use probe_core::a2a::{Admission, AllowList, Direction};
    use probe_core::control::{
        ClientConfig, ControlServer, Identity, Limits, PinPolicy, ServerConfig, TestKind,
        TestRequest, TestsConfig, connect,
    };
    use probe_core::quic_test::{QuicTestError, QuicTestOptions, RttPlan, run_quic_test};

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let identity = Identity::generate().expect("identity");
        let fingerprint = identity.fingerprint();
        let clock = probe_core::a2a::runtime::local_clock_info();
        let server = ControlServer::bind(ServerConfig {
            listen: vec![SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)],
            identity,
            token: None,
            allow: AllowList::default(),
            clock,
            max_connections: 16,
            software: "test".into(),
        })
        .expect("bind")
        .serve_tests(TestsConfig {
            limits: Limits::default(),
            admission: Arc::new(Admission::new(false)),
            stamp_port: 0,
            clock,
            stamp_keys: None,
        });
        let addr = server.local_addrs()[0];
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        let mut opts = QuicTestOptions {
            server: addr,
            fingerprint,
            session: 42,
            handshakes: 1,
            rtt: None,
            throughput: None,
            timeout: Duration::from_secs(5),
        };
        let refused = run_quic_test(&opts).await.expect_err("never granted");
        assert!(
            matches!(&refused, QuicTestError::Refused(why) if why.contains("unknown session")),
            "{refused}"
        );
        let client = connect(ClientConfig::new(
            addr,
            "loopback".into(),
            PinPolicy::Fingerprint(fingerprint),
        ))
        .await
        .expect("connect");
        client.hello().await.expect("hello");
        let req = |kind| TestRequest {
            kind,
            direction: Direction::Both,
            interval_ns: None,
            count: Some(3),
            duration_ms: Some(1_000),
            size: 20,
            dscp: None,
            ssid: 1,
            port: None,
            clock: None,
            auth: false,
        };
        // A throughput session does not echo datagrams.
        let granted = client
            .request_test(&req(TestKind::QuicThroughput))
            .await
            .expect("throughput session");
        let busy = client
            .request_test(&req(TestKind::QuicThroughput))
            .await
            .expect_err("one throughput test at a time");
        assert!(busy.to_string().contains("busy, retry after"), "{busy}");
        opts.session = granted.session;
        opts.rtt = Some(RttPlan {
            count: 3,
            interval: Duration::from_millis(1),
            size: 20,
            wait: Duration::from_millis(200),
        });
        let wrong = run_quic_test(&opts)
            .await
            .expect_err("not a datagram session");
        assert!(
            matches!(&wrong, QuicTestError::Refused(why) if why.contains("quic_throughput")),
            "{wrong}"
        );
        // A datagram session echoes exactly the datagrams granted.
        let granted = client
            .request_test(&req(TestKind::QuicRtt))
            .await
            .expect("rtt session");
        opts.session = granted.session;
        let r = run_quic_test(&opts).await.expect("datagram test");
        assert_eq!(r.handshakes_ok, 1);
        let d = r.datagrams.expect("datagram counts");
        assert_eq!((d.sent, d.received, d.lost), (3, 3, 0));
        client.close().await;
        // Let the responder see the last connections close before it stops.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = stop.send(());
        let c = task.await.expect("server task");
        // 42 (one handshake), the throughput session's datagram connection after its
        // handshake was accepted: 2 refused; the accepted ones: 1 handshake + 1 handshake
        // + 1 datagram connection.
        assert_eq!(c.quic_refused, 2, "{c:?}");
        assert_eq!(c.quic_tests, 3, "{c:?}");
        assert_eq!(c.tests_accepted, 2, "{c:?}");
    });
}
