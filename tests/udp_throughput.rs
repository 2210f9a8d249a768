//! UDP throughput and loss (`probe a2a --throughput`) in the netns testbed: every direction
//! on direct veth, through a masquerade with nothing published on the client, on macvlan;
//! loss counted against the impairment hop's configured loss; the far end counts on its
//! STAMP port without reflecting; a second throughput test is refused as busy.
#![allow(clippy::float_cmp)] // Counts are compared exactly on purpose.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TempDir, json_ok, num, output, probe, serve, text, wait_udp_listening};
use probe_lab::impair::ImpairConfig;
use probe_lab::{Host, topology};
use serde_json::Value;

const PORT: u16 = 49153;
/// A paced test: 4000 datagrams of 64 bytes at 4000/s (small enough that a loaded testbed
/// drops none of them in socket buffers), in rows of 250 ms.
const PACED: [&str; 8] = [
    "--rate",
    "4000",
    "-c",
    "4000",
    "--size",
    "64",
    "--report-interval",
    "250ms",
];

/// `probe serve --json` in `host` with its control plane listening.
fn serve_control(host: &Host, extra: &[&str]) -> common::Served {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let srv = serve(host, PORT, &args);
    wait_udp_listening(host, 49152);
    srv
}

/// `probe a2a --peer PEER --throughput --json ARGS` in `host`, client state in `state`.
fn throughput_cmd(host: &Host, peer: &str, state: &TempDir, args: &[&str]) -> Command {
    let dir = state.s("client");
    let mut all = vec![
        "a2a",
        "--peer",
        peer,
        "--throughput",
        "--json",
        "--state-dir",
        &dir,
    ];
    all.extend_from_slice(args);
    let mut cmd = probe(host, &all);
    cmd.env_remove("PROBE_TOKEN");
    cmd
}

/// The report of a throughput test that must succeed.
fn throughput(host: &Host, peer: &str, state: &TempDir, args: &[&str]) -> Value {
    json_ok(&mut throughput_cmd(host, peer, state, args))
}

fn stopped(srv: common::Served) -> Value {
    let out = srv.terminate(Duration::from_secs(5)).expect("stop serve");
    serde_json::from_slice(&out.stdout).expect("serve counters JSON")
}

/// A clean paced direction: every datagram sent arrived once, at the asked rate, with
/// one-way delay samples (one in 64) on the shared clock.
fn check_clean(v: &Value, dir: &str) {
    let d = |k: &str| num(v, &format!("throughput.{dir}.{k}"));
    assert_eq!(d("sent"), 4000.0, "{dir}: {v}");
    assert_eq!(d("send_failed"), 0.0, "{dir}: {v}");
    assert_eq!(d("received"), 4000.0, "{dir}: {v}");
    assert_eq!((d("lost"), d("loss_pct")), (0.0, 0.0), "{dir}: {v}");
    assert_eq!((d("duplicates"), d("reordered")), (0.0, 0.0), "{dir}: {v}");
    // 4000 at 4000/s: the last one leaves about 1 s after the first.
    let secs = d("seconds");
    assert!((0.95..1.3).contains(&secs), "{dir}: sent for {secs} s");
    let pps = d("offered_pps");
    assert!((3000.0..4300.0).contains(&pps), "{dir}: offered {pps}/s");
    assert!((d("received_pps") - pps).abs() < 1e-6 * pps, "{dir}");
    assert!(
        (d("received_bps") - pps * 512.0).abs() < 1e-6 * pps * 512.0,
        "{dir}"
    );
    // Datagrams 0, 64, ..., 3968 carry their send time.
    assert_eq!(d("owd_samples"), 63.0, "{dir}");
    let (min, max) = (d("owd_ms.min"), d("owd_ms.max"));
    assert!(
        min > 0.0 && min < 5.0 && max >= min,
        "{dir}: owd {min}..{max} ms"
    );
    let rows = v["throughput"][dir]["intervals"].as_array().expect("rows");
    let total: f64 = rows.iter().map(|r| num(r, "received")).sum();
    assert_eq!(total, 4000.0, "{dir}: interval rows {rows:?}");
    // 250 ms rows here; the far end's 100 ms rows of `to` merge three to a row.
    assert!((4..=5).contains(&rows.len()), "{dir}: {rows:?}");
}

#[test]
fn every_direction_on_direct_veth_counted_not_reflected() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let srv = serve_control(&lab.b, &[]);
    let peer = lab.b.ipv4().to_string();
    let state = TempDir::new("udp-tput-direct");
    let v = throughput(
        &lab.a,
        &peer,
        &state,
        &[&["--direction", "to"], &PACED[..]].concat(),
    );
    assert_eq!(text(&v, "direction"), "to");
    assert_eq!(text(&v, "clock.mode"), "shared");
    assert_eq!(num(&v, "rate_pps"), 4000.0);
    check_clean(&v, "to");
    assert!(v["throughput"].get("from").is_none(), "{v}");
    let v = throughput(
        &lab.a,
        &peer,
        &state,
        &[&["--direction", "from"], &PACED[..]].concat(),
    );
    check_clean(&v, "from");
    assert!(v["throughput"].get("to").is_none(), "{v}");
    let v = throughput(&lab.a, &peer, &state, &PACED);
    assert_eq!(text(&v, "direction"), "both");
    check_clean(&v, "to");
    check_clean(&v, "from");
    // The far end counted the `to` datagrams (twice 4000) and reflected none of them.
    let c = stopped(srv);
    assert_eq!(num(&c, "throughput_counted"), 8000.0, "{c}");
    assert_eq!(num(&c, "throughput_dropped"), 0.0, "{c}");
    assert_eq!(num(&c, "reflected"), 0.0, "{c}");
    assert_eq!(num(&c, "control.tests_accepted"), 3.0, "{c}");
}

#[test]
fn from_behind_nat_with_nothing_published() {
    if !probe_lab::require_root() {
        return;
    }
    // The client is the container: masqueraded, no port published toward it.
    let lab = topology::nat_with(&[]).expect("nat topology");
    let _srv = serve_control(&lab.peer, &["--require-auth"]);
    let peer = lab.peer.ipv4().to_string();
    let state = TempDir::new("udp-tput-nat");
    let v = throughput(
        &lab.agent,
        &peer,
        &state,
        &[&["--direction", "from"], &PACED[..]].concat(),
    );
    check_clean(&v, "from");
    let v = throughput(&lab.agent, &peer, &state, &PACED);
    check_clean(&v, "to");
    check_clean(&v, "from");
}

#[test]
fn every_direction_on_macvlan() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::macvlan().expect("macvlan topology");
    let _srv = serve_control(&lab.peer, &[]);
    let peer = lab.peer.ipv4().to_string();
    let state = TempDir::new("udp-tput-macvlan");
    for dir in ["to", "from"] {
        let v = throughput(
            &lab.agent,
            &peer,
            &state,
            &[&["--direction", dir], &PACED[..]].concat(),
        );
        check_clean(&v, dir);
    }
    let v = throughput(&lab.agent, &peer, &state, &PACED);
    check_clean(&v, "to");
    check_clean(&v, "from");
}

#[test]
fn loss_over_the_impairment_hop_is_the_configured_loss() {
    if !probe_lab::require_root() {
        return;
    }
    // Forward: every 10th packet dropped. Reverse: every 20th, 2 ms late.
    let fwd = ImpairConfig {
        every_nth: 10,
        ..ImpairConfig::default()
    };
    let rev = ImpairConfig {
        every_nth: 20,
        delay: Duration::from_millis(2),
        ..ImpairConfig::default()
    };
    let lab = topology::impaired(fwd, rev).expect("impaired topology");
    let _srv = serve_control(&lab.b, &[]);
    let peer = lab.b.ipv4().to_string();
    let state = TempDir::new("udp-tput-impaired");
    let args = ["--rate", "2000", "-c", "2000", "--size", "64"];
    // `to`: while the 2000 datagrams cross the forward path nothing else does (the control
    // connection is quiet), so they are 2000 consecutive data packets of the hop: exactly
    // 200 of them are multiples of 10.
    let before = lab.forward_report().stats;
    let v = throughput(
        &lab.a,
        &peer,
        &state,
        &[&["--direction", "to"], &args[..]].concat(),
    );
    let after = lab.forward_report().stats;
    assert_eq!(num(&v, "throughput.to.sent"), 2000.0, "{v}");
    assert_eq!(num(&v, "throughput.to.lost"), 200.0, "{v}");
    assert_eq!(num(&v, "throughput.to.loss_pct"), 10.0, "{v}");
    assert_eq!(num(&v, "throughput.to.received"), 1800.0, "{v}");
    let dropped = after.dropped_nth - before.dropped_nth;
    assert!(
        (200..=203).contains(&dropped),
        "the hop dropped {dropped} forward packets (200 test datagrams and at most a few of \
         the control connection's)"
    );
    // `from`: the control connection's polls interleave with the datagrams on the reverse
    // path, each moving the every-20th count by at most one.
    let v = throughput(
        &lab.a,
        &peer,
        &state,
        &[&["--direction", "from"], &args[..]].concat(),
    );
    let (sent, lost, received) = (
        num(&v, "throughput.from.sent"),
        num(&v, "throughput.from.lost"),
        num(&v, "throughput.from.received"),
    );
    assert_eq!(sent, 2000.0, "{v}");
    assert_eq!(sent - lost, received, "{v}");
    assert!(
        (85.0..=101.0).contains(&lost),
        "lost {lost} of 2000 at every 20th: {v}"
    );
    // The samples crossed the 2 ms delay line.
    let owd = num(&v, "throughput.from.owd_ms.p50");
    assert!(
        (2.0..4.0).contains(&owd),
        "reverse one-way delay p50 {owd} ms, configured 2 ms"
    );
}

#[test]
fn a_second_throughput_test_is_refused_busy() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let _srv = serve_control(&lab.b, &[]);
    let peer = lab.b.ipv4().to_string();
    let state = TempDir::new("udp-tput-busy");
    let dir = state.s("first");
    let mut first = probe(
        &lab.a,
        &[
            "a2a",
            "--peer",
            &peer,
            "--throughput",
            "--json",
            "--state-dir",
            &dir,
            "--direction",
            "to",
            "--rate",
            "1000",
            "-d",
            "4s",
        ],
    );
    first.stdout(Stdio::piped()).stderr(Stdio::piped());
    let running = lab.a.spawn(&mut first).expect("first test");
    std::thread::sleep(Duration::from_millis(1500));
    let out = output(&mut throughput_cmd(
        &lab.a,
        &peer,
        &state,
        &["--rate", "1000", "-d", "1s"],
    ));
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("busy, retry after"), "{err}");
    assert!(err.contains("udp_throughput"), "{err}");
    let done = running.wait().expect("first test ends");
    assert!(done.status.success(), "{done:?}");
    let v: Value = serde_json::from_slice(&done.stdout).expect("JSON");
    // The refusal did not disturb the running test.
    assert_eq!(num(&v, "throughput.to.lost"), 0.0, "{v}");
    assert!(num(&v, "throughput.to.sent") >= 3900.0, "{v}");
}
