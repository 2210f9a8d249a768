//! `probe a2a --proto tcp` / `probe serve` on 49153/tcp in the testbed: connect latency and
//! throughput against the configured truth.
#![allow(clippy::float_cmp)] // Counts are compared exactly on purpose.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{json_ok, num, output, probe, serve, text, wait_tcp_listening};
use probe_lab::impair::ImpairConfig;
use probe_lab::topology;
use serde_json::Value;

const PORT: u16 = 49153;

/// Starts `probe serve` in `host` and waits until 49153/tcp listens too.
fn serve_tcp(host: &probe_lab::Host) -> common::Served {
    let bg = serve(host, PORT, &["--no-control"]);
    wait_tcp_listening(host, PORT);
    bg
}

/// `probe a2a --proto tcp --throughput --json ARGS` from `host` to `peer`.
fn throughput(host: &probe_lab::Host, peer: &str, args: &[&str]) -> Value {
    let mut all = vec![
        "a2a",
        "--proto",
        "tcp",
        "--throughput",
        "--peer",
        peer,
        "--json",
    ];
    all.extend_from_slice(args);
    json_ok(&mut probe(host, &all))
}

#[test]
fn connect_latency_follows_the_configured_rtt() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = common::delayed(10, 5);
    let _srv = serve_tcp(&lab.b);
    let peer = lab.b.ipv4().to_string();
    let v = json_ok(&mut probe(
        &lab.a,
        &[
            "a2a", "--proto", "tcp", "--peer", &peer, "-c", "20", "-i", "30ms", "--json",
        ],
    ));
    assert_eq!(num(&v, "attempts"), 20.0, "{v}");
    assert_eq!(num(&v, "connected"), 20.0, "{v}");
    assert_eq!(num(&v, "failures.refused"), 0.0);
    // SYN out, SYN-ACK back: one round trip of 10 + 5 ms through the impairment hop. The
    // fastest handshake is within 1 ms of it; the median, timed in user space around
    // connect(), also carries the wake-ups of both processes and of the userspace hop, which
    // the namespace teardown of earlier tests can delay by a few hundred microseconds.
    for (stat, max) in [("min", 16.0), ("p50", 16.5)] {
        let got = num(&v, &format!("handshake_ms.{stat}"));
        assert!((15.0..max).contains(&got), "handshake {stat} {got} ms: {v}");
    }
    let kernel = num(&v, "tcp_info_rtt_ms.p50");
    assert!((15.0..16.5).contains(&kernel), "TCP_INFO rtt {kernel} ms");
}

#[test]
fn connect_without_listener_is_refused() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let out = output(&mut probe(
        &lab.a,
        &[
            "a2a",
            "--proto",
            "tcp",
            "--peer",
            &lab.b.ipv4().to_string(),
            "-c",
            "3",
            "-i",
            "10ms",
            "--json",
        ],
    ));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(num(&v, "failures.refused"), 3.0, "{v}");
    assert_eq!(num(&v, "connected"), 0.0);
    assert!(v["handshake_ms"].is_null());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no connect") && err.contains("refused"),
        "{err}"
    );
}

/// Goodput bounds for a link of `bps`: TCP/IP headers take 52 of every 1500 bytes, slow
/// start costs a little of a 2 s test.
fn assert_near_rate(what: &str, got: f64, bps: f64) {
    common::assert_near_rate(what, got, bps, 0.8);
}

#[test]
fn throughput_each_direction_matches_its_rate_limit() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = common::rate_limited(20_000_000, 10_000_000);
    let _srv = serve_tcp(&lab.b);
    let peer = lab.b.ipv4().to_string();

    let v = throughput(&lab.a, &peer, &["--direction", "to", "-d", "2s"]);
    assert!(v["from"].is_null(), "{v}");
    assert_near_rate("to", num(&v, "to.bits_per_second"), 20e6);
    assert_eq!(text(&v, "direction"), "to");
    // One-second intervals from the receiver; the first holds slow start.
    let iv = v["to"]["intervals"].as_array().expect("intervals");
    assert!((2..=3).contains(&iv.len()), "{iv:?}");
    assert_near_rate("to, 2nd interval", num(&iv[1], "bits_per_second"), 20e6);
    assert!(num(&v, "to.rtt_ms") > 0.0 && num(&v, "to.cwnd_bytes") > 0.0);

    let v = throughput(&lab.a, &peer, &["--direction", "from", "-d", "2s"]);
    assert!(v["to"].is_null(), "{v}");
    assert_near_rate("from", num(&v, "from.bits_per_second"), 10e6);
    assert!(num(&v, "from.rtt_ms") > 0.0, "the server's TCP_INFO: {v}");

    // Both at once: each direction's ACKs wait in the queue behind the other direction's
    // data (up to 100 packets: 60 ms at 20 Mbit/s, 120 ms at 10 Mbit/s), which slows each
    // sender's ramp-up, so only the ceiling is tight; each stays below its own link.
    let v = throughput(&lab.a, &peer, &["--direction", "both", "-d", "2s"]);
    let (to, from) = (
        num(&v, "to.bits_per_second"),
        num(&v, "from.bits_per_second"),
    );
    assert!(
        to > 0.5 * 20e6 && to < 20e6,
        "both: to {to} bit/s through 20 Mbit/s"
    );
    assert!(
        from > 0.5 * 10e6 && from < 10e6,
        "both: from {from} bit/s through 10 Mbit/s"
    );

    let v = throughput(
        &lab.a,
        &peer,
        &["--direction", "to", "--streams", "4", "-d", "2s"],
    );
    let streams = v["to"]["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 4, "{v}");
    let sum: f64 = streams.iter().map(|s| num(s, "bytes")).sum();
    assert_eq!(sum, num(&v, "to.bytes"));
    assert!(streams.iter().all(|s| num(s, "bytes") > 0.0), "{v}");
    assert_near_rate("4 streams", num(&v, "to.bits_per_second"), 20e6);
}

#[test]
fn throughput_from_behind_nat_with_nothing_published() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::nat_with(&[]).expect("nat topology");
    let _srv = serve_tcp(&lab.peer);
    let v = throughput(
        &lab.agent,
        &lab.peer.ipv4().to_string(),
        &["--direction", "both", "-d", "1s", "--mss", "1200"],
    );
    for dir in ["to", "from"] {
        assert!(num(&v, &format!("{dir}.bytes")) > 1e6, "{dir}: {v}");
        assert!(
            num(&v, &format!("{dir}.bits_per_second")) > 1e7,
            "{dir}: {v}"
        );
    }
    // --mss caps the segments both ways (the sender's MSS is at most what was asked).
    for dir in ["to", "from"] {
        let mss = num(&v[dir]["streams"][0], "mss");
        assert!(mss > 0.0 && mss <= 1200.0, "{dir} mss {mss}");
    }
}

#[test]
fn a_second_throughput_test_is_told_busy_with_the_wait() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let _srv = serve_tcp(&lab.b);
    let peer = lab.b.ipv4().to_string();
    let args = [
        "a2a",
        "--proto",
        "tcp",
        "--throughput",
        "--peer",
        &peer,
        "-d",
        "3s",
        "--json",
    ];
    let mut cmd = probe(&lab.a, &args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let first = lab.a.spawn(&mut cmd).expect("first test");
    std::thread::sleep(Duration::from_millis(800));
    let out = output(&mut probe(&lab.a, &args));
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    // 3 s plus the 5 s grace, about 1 s in: 7 or 8 s left.
    assert!(
        err.contains("busy: another throughput test runs, retry after 7 s")
            || err.contains("busy: another throughput test runs, retry after 8 s"),
        "{err}"
    );
    let first = first.wait().expect("first test ends");
    assert!(first.status.success(), "{first:?}");
    let v: Value = serde_json::from_slice(&first.stdout).expect("json");
    assert!(num(&v, "to.bytes") > 0.0 && num(&v, "from.bytes") > 0.0);
    // Once it ended, the next is admitted at once (over IPv6: the server is dual-stack).
    let peer6 = format!("[{}]:{PORT}", lab.b.ipv6());
    let v = json_ok(&mut probe(
        &lab.a,
        &[
            "a2a",
            "--proto",
            "tcp",
            "--throughput",
            "--peer",
            &peer6,
            "-d",
            "1s",
            "--json",
        ],
    ));
    assert!(
        num(&v, "to.bytes") > 0.0 && num(&v, "from.bytes") > 0.0,
        "{v}"
    );
    assert!(text(&v, "address").starts_with("[fd00:"), "{v}");
}

#[test]
fn loss_on_the_path_shows_as_retransmits() {
    if !probe_lab::require_root() {
        return;
    }
    let lossy = ImpairConfig {
        delay: Duration::from_millis(2),
        loss: 0.01,
        seed: Some(8),
        ..ImpairConfig::default()
    };
    let lab =
        topology::impaired(lossy, ImpairConfig::delay(Duration::from_millis(2))).expect("impaired");
    let _srv = serve_tcp(&lab.b);
    let v = throughput(
        &lab.a,
        &lab.b.ipv4().to_string(),
        &["--direction", "to", "-d", "2s"],
    );
    let dropped = lab.forward_report().stats.dropped_random;
    assert!(dropped > 0, "the hop dropped nothing");
    let retrans = num(&v, "to.retransmits");
    assert!(
        retrans > 0.0,
        "{dropped} dropped, {retrans} retransmits: {v}"
    );
    let rtt = num(&v, "to.rtt_ms");
    assert!(rtt >= 4.0, "rtt {rtt} ms over a 2 + 2 ms path");
}

#[test]
fn server_answers_junk_and_a_wrong_version_and_keeps_serving() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let srv = {
        let mut cmd = probe(&lab.b, &["serve", "--no-control", "--json"]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        lab.b.spawn(&mut cmd).expect("serve")
    };
    wait_tcp_listening(&lab.b, PORT);
    let target = std::net::SocketAddr::new(lab.b.ipv4().into(), PORT);
    let replies = lab.a.run_in(move || {
        use std::io::{Read, Write};
        let mut out = Vec::new();
        // HTTP instead of a request; then a request of version 9.
        let mut bad_version = [0u8; 48];
        bad_version[..5].copy_from_slice(b"PRTQ\x09");
        for msg in [
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n\r\n\r\n\r\n".as_slice(),
            &bad_version,
        ] {
            let mut s = std::net::TcpStream::connect(target).expect("connect");
            s.write_all(msg).expect("send");
            let mut reply = Vec::new();
            s.read_to_end(&mut reply).expect("reply");
            out.push(reply);
        }
        out
    });
    // Status 6 (malformed), then status 5 (unsupported version) from a version-1 server.
    assert_eq!(&replies[0][..6], b"PRTA\x01\x06", "{replies:?}");
    assert_eq!(&replies[1][..6], b"PRTA\x01\x05", "{replies:?}");
    let v = json_ok(&mut probe(
        &lab.a,
        &[
            "a2a",
            "--proto",
            "tcp",
            "--peer",
            &lab.b.ipv4().to_string(),
            "-c",
            "5",
            "-i",
            "10ms",
            "--json",
        ],
    ));
    assert_eq!(num(&v, "connected"), 5.0, "{v}");
    // The connect probes are closed by the client right away: give the server a moment to
    // see them end before it prints its counters.
    std::thread::sleep(Duration::from_millis(300));
    let out = srv.terminate(Duration::from_secs(3)).expect("stop serve");
    let c: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(num(&c, "tcp.malformed"), 2.0, "{c}");
    assert_eq!(num(&c, "tcp.connect_probes"), 5.0, "{c}");
    assert_eq!(num(&c, "tcp.connections"), 7.0, "{c}");
}

#[test]
fn tcp_settings_without_proto_tcp_are_a_clear_error() {
    // `--throughput` alone is the UDP throughput test; streams and MSS are TCP's.
    for setting in [["--streams", "2"], ["--mss", "1200"]] {
        let out = output(
            std::process::Command::new(probe_suite::probe_bin())
                .args(["a2a", "--peer", "127.0.0.1", "--throughput"])
                .args(setting),
        );
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--streams and --mss are TCP") && err.contains("add --proto tcp"),
            "{err}"
        );
    }
}
