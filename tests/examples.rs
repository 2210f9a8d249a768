//! The embedding examples run and report real measurements.

mod common;

use std::net::IpAddr;
use std::process::Command;

use common::wait_path;
use probe_lab::topology;

/// Runs an example that must succeed; its standard output.
fn stdout_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run the example");
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a2a_example_against_its_own_responder() {
    let stdout = stdout_ok(&mut Command::new(probe_suite::example_bin("a2a")));
    assert!(stdout.contains("sent 200, received 200"), "{stdout}");
    // The last line is the report as JSON.
    let json = stdout.lines().last().expect("output");
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    assert_eq!(v["clock"]["mode"], "shared");
    assert_eq!(v["forward"]["loss_pct"], 0.0);
    // Loopback, no loss, a 20 ms buffer: mouth to ear about 40 ms, where G.107 gives
    // R = 93.36 - Id(40 ms) = 93.36 - 1.36 = 92.00 (stats::emodel), MOS 4.385.
    for dir in ["forward", "reverse"] {
        let mos = v["voice"][dir]["mos"].as_f64().unwrap_or(f64::NAN);
        assert!((mos - 4.385).abs() < 0.01, "{dir} MOS {mos}");
    }
}

/// The trace example in a chain of three routers whose middle link has a smaller MTU: its
/// hop list, path MTU and MDA links are the topology's.
#[test]
fn trace_example_in_a_chain() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::chain(3, &[1500, 1500, 1380, 1500]).expect("chain");
    let dst = lab.dst.addr(false);
    wait_path(&lab.src, dst);
    let stdout = stdout_ok(lab.src.command(probe_suite::example_bin("trace")).args([
        "-n",
        &dst.to_string(),
        "udp",
    ]));
    let mut path: Vec<IpAddr> = lab.hops_v4().into_iter().map(IpAddr::from).collect();
    path.push(dst);
    let head = stdout.lines().next().expect("output");
    assert!(
        head.ends_with(": udp paris, 4 hops, reached, pmtu 1380"),
        "{stdout}"
    );
    assert!(
        stdout.contains("probes, raw sockets, path MTU Some(1380)"),
        "{stdout}"
    );
    for (i, addr) in path.iter().enumerate() {
        assert!(
            stdout.contains(&format!("hop {:>2}: {addr}\n", i + 1)),
            "hop {}: {stdout}",
            i + 1
        );
    }
    // One path: a link from each hop to the next, found at 95 % confidence.
    assert!(
        stdout.contains("3 links, ") && stdout.contains(" probes at Some(95.0)% confidence"),
        "{stdout}"
    );
}

/// The ping example on loopback: three targets, three answers each.
#[test]
fn ping_example_on_loopback() {
    let stdout = stdout_ok(&mut Command::new(probe_suite::example_bin("ping")));
    assert!(stdout.contains("3/3 targets answered"), "{stdout}");
    let json = stdout.lines().last().expect("output");
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    let targets = v["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 3);
    for t in targets {
        assert_eq!(
            (t["sent"].as_u64(), t["received"].as_u64()),
            (Some(3), Some(3)),
            "{t}"
        );
        assert!(
            t["rtt_ms"]["max"]
                .as_f64()
                .is_some_and(|m| m > 0.0 && m < 100.0),
            "{t}"
        );
    }
}

#[test]
fn dns_example_against_its_own_server() {
    let stdout = stdout_ok(&mut Command::new(probe_suite::example_bin("dns")));
    assert!(
        stdout.contains("www.example.test.\t120\tA\t192.0.2.80"),
        "{stdout}"
    );
    let json = stdout.lines().last().expect("output");
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    let server = &v["servers"][0];
    assert_eq!(server["status"], "ok");
    assert_eq!(server["responses"], 5);
    let p50 = server["latency_ms"]["p50"].as_f64().expect("p50");
    assert!(p50 > 0.0 && p50 < 100.0, "{server}");
}

#[test]
fn http_example_against_its_own_server() {
    let stdout = stdout_ok(&mut Command::new(probe_suite::example_bin("http")));
    let json = stdout.lines().last().expect("output");
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    assert_eq!(v["succeeded"], 3, "{v}");
    for r in v["requests"].as_array().expect("requests") {
        assert_eq!(r["status"], 200);
        assert_eq!(r["size_bytes"], 30);
        assert_eq!(r["http_version"], "HTTP/1.1");
        let total = r["phases"]["total_ms"].as_f64().expect("total");
        let connect = r["phases"]["connect_ms"].as_f64().expect("connect");
        assert!(connect > 0.0 && connect < total && total < 1000.0, "{r}");
    }
}
