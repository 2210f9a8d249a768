//! `probe agent` running a2a tests with `proto = "quic"` toward `probe serve` across the 15 ms
//! impairment hop: the datagram test's round trip against the configured delay, stream
//! throughput both ways, a refused session classed `limit`, and the handshake and per-direction
//! throughput metrics.
#![allow(clippy::float_cmp)] // Counts are compared exactly on purpose.

mod common;

use common::agent::{Agent, Scratch, ran, wait_for, write};
use common::{output, serve, wait_udp_listening};
use serde_json::Value;

/// A number the record's report must have.
fn num(rec: &Value, pointer: &str) -> f64 {
    rec["report"]
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} in {rec}"))
}

#[test]
fn quic_tests_measure_rtt_handshakes_and_throughput() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = common::delayed(10, 5);
    // Sessions of at most 1 s: the datagram test of 1.5 s is refused, naming the limit.
    let _srv = serve(&lab.b, 49153, &["--max-duration", "1s"]);
    wait_udp_listening(&lab.b, 49152);
    let b = lab.b.ipv4();
    let s = Scratch::new("agent-quic");
    let config = s.0.join("agent.toml");
    write(
        &config,
        &format!(
            r#"[[tests]]
name = "rtt"
kind = "a2a"
proto = "quic"
target = "{b}"
interval = "2s"
count = 20
packet_interval = "10ms"
[[tests]]
name = "bulk"
kind = "a2a"
proto = "quic"
class = "throughput"
target = "{b}"
interval = "3s"
count = 10
packet_interval = "100ms"
[[tests]]
name = "too-long"
kind = "a2a"
proto = "quic"
target = "{b}"
interval = "2s"
count = 150
packet_interval = "10ms"
"#
        ),
    );
    let agent = Agent::start(&lab.a, &s.0, "a", &config, "127.0.0.1");
    let records = wait_for(&agent, 30, "a run of each test", |r| {
        ["rtt", "bulk", "too-long"]
            .iter()
            .all(|t| !ran(r, t).is_empty())
    });
    let peer = format!("{b}:49152");

    let rec = ran(&records, "rtt")[0];
    assert_eq!(
        (&rec["ok"], &rec["peer"]),
        (&true.into(), &peer.clone().into()),
        "{rec}"
    );
    assert_eq!(rec["report"]["proto"], "quic", "{rec}");
    // The datagram counts at the top, where the metrics read them, and in `quic`.
    assert_eq!(
        (num(rec, "/sent"), num(rec, "/received")),
        (20.0, 20.0),
        "{rec}"
    );
    assert_eq!(num(rec, "/quic/datagrams/received"), 20.0, "{rec}");
    // 10 + 5 ms through the hop: within 1 ms at the fastest of the runs so far
    // (tests/quic.rs explains).
    let min = ran(&records, "rtt")
        .iter()
        .filter(|r| r["ok"] == true)
        .map(|r| num(r, "/rtt_ms/min"))
        .fold(f64::INFINITY, f64::min);
    assert!((15.0..16.0).contains(&min), "rtt min {min} ms: {rec}");
    let hs = num(rec, "/quic/handshake_ms/min");
    assert!((15.0..30.0).contains(&hs), "handshake {hs} ms: {rec}");

    let rec = ran(&records, "bulk")[0];
    assert_eq!(rec["ok"], true, "{rec}");
    for leg in ["to", "from"] {
        // Both directions at once for 10 × 100 ms over unshaped links.
        let bps = num(rec, &format!("/quic/throughput/{leg}/bits_per_second"));
        assert!(bps > 1e6, "{leg}: {bps} bit/s: {rec}");
    }

    let rec = ran(&records, "too-long")[0];
    assert_eq!(
        (&rec["ok"], &rec["error_class"]),
        (&false.into(), &"limit".into()),
        "{rec}"
    );
    let why = rec["error"].as_str().unwrap_or_default();
    assert!(why.contains("--max-duration"), "{why}");

    let metrics =
        output(
            lab.a
                .command("curl")
                .args(["-s", "-m", "5", "http://127.0.0.1:8000/metrics"]),
        );
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    let has = |line: &str| metrics.lines().any(|l| l.starts_with(line));
    let rtt = format!("probe_rtt_seconds_count{{test=\"rtt\",peer=\"{peer}\"}}");
    let handshakes = format!("probe_handshake_seconds_count{{test=\"rtt\",peer=\"{peer}\"}}");
    let forward = format!(
        "probe_quic_throughput_bytes_per_second{{test=\"bulk\",peer=\"{peer}\",direction=\"forward\"}}"
    );
    for line in [rtt, handshakes, forward] {
        assert!(has(&line), "no {line} in\n{metrics}");
    }
}
