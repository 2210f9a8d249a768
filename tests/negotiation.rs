//! Test negotiation over the control plane in the netns testbed: `probe serve` with its limits
//! and `--require-auth`, `probe a2a` negotiating, both directions, the far end's view, a
//! client behind NAT measuring the path toward itself, and a client that vanishes.
#![allow(clippy::float_cmp)] // Counts are compared exactly on purpose.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{num, output, probe, serve, text, wait_udp_listening};
use probe_lab::{Host, topology};
use serde_json::Value;

const PORT: u16 = 49153;

/// A client state directory (known peers) of its own per test.
fn state(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("probe-negotiation-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

/// `probe serve` in `host` with a fresh identity and `extra` flags, control plane listening.
fn serve_control(host: &Host, tag: &str, extra: &[&str]) -> common::Served {
    let dir = state(&format!("{tag}-server"));
    let mut args = vec!["--json", "--state-dir", dir.to_str().expect("utf8")];
    args.extend_from_slice(extra);
    let srv = serve(host, PORT, &args);
    wait_udp_listening(host, 49152);
    srv
}

/// `probe a2a --peer PEER --json ARGS` from `host` with the client state `dir`.
fn a2a(host: &Host, peer: &str, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec![
        "a2a",
        "--peer",
        peer,
        "--json",
        "--state-dir",
        dir.to_str().expect("utf8"),
    ];
    all.extend_from_slice(args);
    output(probe(host, &all).env_remove("PROBE_TOKEN"))
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

fn stopped(srv: common::Served) -> Value {
    let out = srv.terminate(Duration::from_secs(5)).expect("stop serve");
    serde_json::from_slice(&out.stdout).expect("serve counters JSON")
}

#[test]
fn require_auth_answers_negotiated_sessions_only() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let srv = serve_control(&lab.b, "auth", &["--require-auth"]);
    let peer = lab.b.ipv4().to_string();
    let dir = state("auth-client");
    // A plain STAMP sender gets nothing: 3 unanswered hellos and 20 test packets dropped.
    let out = a2a(
        &lab.a,
        &peer,
        &dir,
        &["--no-control", "-c", "20", "-i", "5ms"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let plain: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(num(&plain, "received"), 0.0);
    assert_eq!(text(&plain, "control"), "none");
    // A negotiated one is answered, and the far end's count matches ours.
    let v = json(&a2a(
        &lab.a,
        &peer,
        &dir,
        &["--direction", "to", "-c", "50", "-i", "5ms"],
    ));
    assert_eq!(text(&v, "control"), "negotiated");
    assert_eq!(text(&v, "direction"), "to");
    assert_eq!(num(&v, "sent"), 50.0);
    assert_eq!(num(&v, "received"), 50.0, "{v}");
    assert_eq!(num(&v, "far_end.reflector.received"), 50.0, "{v}");
    assert_eq!(num(&v, "far_end.reflector.reflected"), 50.0, "{v}");
    assert!(v["far_end"]["require_auth"].as_bool().expect("bool"));
    // The clock came over control: no hello on the STAMP path.
    assert_eq!(text(&v, "clock.basis"), "control");
    assert!(v.get("from").is_none(), "{v}");
    let c = stopped(srv);
    assert_eq!(num(&c, "not_negotiated"), 23.0, "{c}");
    assert_eq!(num(&c, "reflected"), 50.0, "{c}");
    assert_eq!(num(&c, "control.tests_accepted"), 1.0, "{c}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn token_refused_then_accepted() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let srv = serve_control(&lab.b, "token", &["--token", "right"]);
    let peer = lab.b.ipv4().to_string();
    let dir = state("token-client");
    let out = a2a(&lab.a, &peer, &dir, &["--token", "wrong", "-c", "10"]);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unauthorized: wrong token"), "{err}");
    let v = json(&a2a(
        &lab.a,
        &peer,
        &dir,
        &[
            "--token",
            "right",
            "--direction",
            "to",
            "-c",
            "10",
            "-i",
            "5ms",
        ],
    ));
    assert_eq!(num(&v, "received"), 10.0, "{v}");
    assert_eq!(num(&v, "far_end.reflector.received"), 10.0, "{v}");
    let c = stopped(srv);
    assert_eq!(num(&c, "control.unauthorized"), 1.0, "{c}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn each_limit_is_enforced_and_named() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let srv = serve_control(
        &lab.b,
        "limits",
        &[
            "--max-rate",
            "500",
            "--max-duration",
            "5s",
            "--max-bandwidth",
            "400k",
            "--max-sessions",
            "1",
        ],
    );
    let peer = lab.b.ipv4().to_string();
    let dir = state("limits-client");
    for (args, named) in [
        (&["--rate", "1000", "-c", "10"][..], "--max-rate 500 pps"),
        (&["--rate", "max", "-c", "10"][..], "--max-rate 500 pps"),
        (&["-d", "6s", "-i", "10ms"][..], "--max-duration 5s"),
        // 200 pps x 300 B x 8 = 480 kbit/s.
        (
            &["--rate", "200", "-s", "300", "-c", "10"][..],
            "--max-bandwidth 400000 bit/s",
        ),
    ] {
        let out = a2a(&lab.a, &peer, &dir, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{args:?}: {err}");
        assert!(err.contains("over the responder's limit"), "{err}");
    }
    // One session held by a running test: a second is over --max-sessions 1.
    let hold = spawn_to_test(&lab.a, &peer, &dir, "3s");
    std::thread::sleep(Duration::from_secs(1));
    let out = a2a(&lab.a, &peer, &dir, &["-c", "10"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-sessions 1"), "{err}");
    let held = hold.wait().expect("wait");
    assert!(held.status.success(), "{held:?}");
    // Within the limits a test runs.
    let v = json(&a2a(
        &lab.a,
        &peer,
        &dir,
        &["--rate", "100", "-c", "20", "-s", "100"],
    ));
    assert_eq!(num(&v, "received"), 20.0, "{v}");
    let c = stopped(srv);
    assert_eq!(num(&c, "control.tests_refused"), 5.0, "{c}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn from_and_both_directions_report_each_view() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let _srv = serve_control(&lab.b, "dirs", &[]);
    let peer = lab.b.ipv4().to_string();
    let dir = state("dirs-client");
    let v = json(&a2a(
        &lab.a,
        &peer,
        &dir,
        &["--direction", "from", "-c", "40", "-i", "5ms"],
    ));
    assert_eq!(text(&v, "direction"), "from");
    // No `to` test: none of its fields.
    assert!(v.get("sent").is_none(), "{v}");
    assert_eq!(num(&v, "from.report.sent"), 40.0, "{v}");
    assert_eq!(num(&v, "from.report.received"), 40.0, "{v}");
    assert_eq!(num(&v, "from.near_reflector.reflected"), 40.0, "{v}");
    assert_eq!(text(&v, "from.report.clock.basis"), "control");
    // Both: each view on its own, the far end's reflector count equal to what we sent.
    let v = json(&a2a(&lab.a, &peer, &dir, &["-c", "40", "-i", "5ms"]));
    assert_eq!(text(&v, "direction"), "both");
    assert_eq!(num(&v, "sent"), 40.0);
    assert_eq!(num(&v, "received"), 40.0, "{v}");
    assert_eq!(num(&v, "far_end.reflector.received"), 40.0, "{v}");
    assert_eq!(num(&v, "from.report.received"), 40.0, "{v}");
    assert_eq!(num(&v, "from.near_reflector.received"), 40.0, "{v}");
    let rtt = num(&v, "from.report.rtt_ms.p50");
    assert!(rtt > 0.0 && rtt < 5.0, "from rtt p50 {rtt} ms");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn from_behind_nat_without_published_ports() {
    if !probe_lab::require_root() {
        return;
    }
    // The client is the container: masqueraded, nothing published.
    let lab = topology::nat_with(&[]).expect("nat topology");
    let _srv = serve_control(&lab.peer, "nat", &["--require-auth"]);
    let peer = lab.peer.ipv4().to_string();
    let dir = state("nat-client");
    let v = json(&a2a(
        &lab.agent,
        &peer,
        &dir,
        &["--direction", "from", "-c", "50", "-i", "5ms"],
    ));
    assert_eq!(num(&v, "from.report.sent"), 50.0, "{v}");
    assert_eq!(num(&v, "from.report.received"), 50.0, "{v}");
    assert_eq!(num(&v, "from.near_reflector.received"), 50.0, "{v}");
    // The far end sent to the mapping it saw: the container host's address.
    let target = text(&v, "from.report.peer");
    assert!(
        target.starts_with(&format!("{}:", lab.host.ipv4())),
        "far end targeted {target}"
    );
    // Both directions through the masquerade, with --require-auth at the far end.
    let v = json(&a2a(
        &lab.agent,
        &peer,
        &dir,
        &["--direction", "both", "-c", "50", "-i", "5ms"],
    ));
    assert_eq!(num(&v, "received"), 50.0, "{v}");
    assert_eq!(num(&v, "far_end.reflector.received"), 50.0, "{v}");
    assert_eq!(num(&v, "from.report.received"), 50.0, "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_vanished_client_frees_its_session() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let _srv = serve_control(&lab.b, "vanish", &["--max-sessions", "1"]);
    let peer = lab.b.ipv4().to_string();
    let dir = state("vanish-client");
    let mut cmd = probe(
        &lab.a,
        &[
            "a2a",
            "--peer",
            &peer,
            "--state-dir",
            dir.to_str().expect("utf8"),
            "-d",
            "60s",
            "-i",
            "10ms",
            "--json",
        ],
    );
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut gone = lab.a.spawn(&mut cmd).expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    let out = a2a(&lab.a, &peer, &dir, &["-c", "5"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--max-sessions 1"),
        "{out:?}"
    );
    // SIGKILL: no goodbye on the control connection.
    gone.child_mut().kill().expect("kill");
    let _ = gone.child_mut().wait();
    let killed = Instant::now();
    // The server notices within its idle timeout (10 s) and frees the session; the other
    // client (a second test here) is unaffected.
    loop {
        let out = a2a(
            &lab.a,
            &peer,
            &dir,
            &["--direction", "to", "-c", "5", "-i", "5ms"],
        );
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).expect("json");
            assert_eq!(num(&v, "received"), 5.0, "{v}");
            break;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--max-sessions 1"), "{err}");
        assert!(
            killed.elapsed() < Duration::from_secs(14),
            "the vanished client's session is still held after {:?}",
            killed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plain_reflector_falls_back_to_stamp() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let _srv = serve(&lab.b, PORT, &["--no-control"]);
    let peer = lab.b.ipv4().to_string();
    let dir = state("plain-client");
    let v = json(&a2a(
        &lab.a,
        &peer,
        &dir,
        &["-c", "20", "-i", "5ms", "--control-timeout", "500ms"],
    ));
    assert_eq!(text(&v, "control"), "none");
    assert_eq!(text(&v, "direction"), "to");
    assert!(
        text(&v, "control_note").contains("no control plane answered"),
        "{v}"
    );
    assert_eq!(num(&v, "received"), 20.0, "{v}");
    assert_eq!(text(&v, "clock.basis"), "tlv");
    let out = a2a(
        &lab.a,
        &peer,
        &dir,
        &[
            "--direction",
            "from",
            "-c",
            "5",
            "--control-timeout",
            "500ms",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--direction from needs the peer's control plane"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn library_exclusive_throughput_and_unknown_sessions() {
    use probe_core::a2a::Direction;
    use probe_core::control::messages::ErrorCode;
    use probe_core::control::{
        ClientConfig, ControlError, PinPolicy, TestKind, TestRequest, connect,
    };
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let _srv = serve_control(&lab.b, "lib", &[]);
    let server = std::net::SocketAddr::new(lab.b.ipv4().into(), 49152);
    let dir = state("lib-client");
    let file = dir.join("known_peers");
    let result = lab.a.run_in(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let config = ClientConfig::new(
                server,
                "b".into(),
                PinPolicy::KnownPeers {
                    file: file.clone(),
                    key: "b".into(),
                },
            );
            let one = connect(config.clone()).await.expect("connect");
            one.hello().await.expect("hello");
            let two = connect(config).await.expect("connect");
            two.hello().await.expect("hello");
            let req = TestRequest {
                kind: TestKind::TcpThroughput,
                direction: Direction::To,
                interval_ns: None,
                count: None,
                duration_ms: Some(10_000),
                size: 1000,
                dscp: None,
                ssid: 1,
                port: None,
                clock: None,
                auth: false,
            };
            let granted = one.request_test(&req).await.expect("first throughput test");
            let busy = two.request_test(&req).await.expect_err("second is busy");
            // Another connection does not know the first one's session.
            let unknown = two
                .results(granted.session, false, Duration::from_secs(2))
                .await
                .expect_err("not its session");
            let far = one
                .results(granted.session, true, Duration::from_secs(2))
                .await
                .expect("own session");
            let ended = one
                .results(granted.session, false, Duration::from_secs(2))
                .await
                .expect_err("ended");
            // Ended: the next throughput test is granted.
            let again = two.request_test(&req).await;
            one.close().await;
            two.close().await;
            (
                busy,
                unknown,
                far.session == granted.session,
                ended,
                again.is_ok(),
            )
        })
    });
    let (busy, unknown, same, ended, again) = result;
    match busy {
        ControlError::Rejected { code, message } => {
            assert_eq!(code, ErrorCode::Busy);
            assert!(message.contains("busy, retry after 10 s"), "{message}");
        }
        other => panic!("not busy: {other}"),
    }
    assert!(
        matches!(
            unknown,
            ControlError::Rejected {
                code: ErrorCode::UnknownSession,
                ..
            }
        ),
        "{unknown}"
    );
    assert!(same);
    assert!(
        matches!(
            ended,
            ControlError::Rejected {
                code: ErrorCode::UnknownSession,
                ..
            }
        ),
        "{ended}"
    );
    assert!(again);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_far_end_that_vanishes_keeps_the_near_results() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let mut srv = serve_control(&lab.b, "gone", &[]);
    let peer = lab.b.ipv4().to_string();
    let dir = state("gone-client");
    let client = spawn_to_test(&lab.a, &peer, &dir, "4s");
    std::thread::sleep(Duration::from_secs(1));
    srv.child_mut().kill().expect("kill serve");
    let out = client.wait().expect("wait");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("partial results as JSON");
    // What was measured before the far end vanished is kept.
    let received = num(&v, "received");
    assert!(received >= 50.0, "{v}");
    assert!(num(&v, "sent") > received, "{v}");
    assert!(v.get("far_end_error").is_some(), "{v}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("far end's results"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts a `--direction to` test of `duration` from `host` toward `peer` in the background,
/// its JSON and errors captured.
fn spawn_to_test(
    host: &probe_lab::Host,
    peer: &str,
    dir: &std::path::Path,
    duration: &str,
) -> probe_lab::Background {
    let mut cmd = probe(
        host,
        &[
            "a2a",
            "--peer",
            peer,
            "--state-dir",
            dir.to_str().expect("utf8"),
            "--direction",
            "to",
            "-d",
            duration,
            "-i",
            "10ms",
            "--json",
        ],
    );
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    host.spawn(&mut cmd).expect("spawn")
}
