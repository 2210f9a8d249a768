//! `probe ping` in the testbed: many targets made local in the target's namespace (a routed
//! prefix with a `local` route), exact loss where nftables silences a target, UDP to a closed
//! port and to a STAMP reflector, TCP SYN to an open and a closed port, unprivileged sockets,
//! and bad input.

mod common;

use std::net::TcpListener;
use std::process::Output;

use common::{json_ok, output, probe, serve};
use probe_lab::Host;
use probe_lab::topology::{self, Direct};
use serde_json::Value;

/// A /24 and a /64 that only exist inside the testbed: routed from `a` to `b`, local on `b`.
const PREFIX_V4: &str = "10.77.0";
const PREFIX_V6: &str = "fd77::";

/// The direct topology with [`PREFIX_V4`].0/24 and [`PREFIX_V6`]/64 answered by `b`.
fn lab() -> Direct {
    let lab = topology::direct().expect("direct");
    lab.b
        .ip([
            "route",
            "add",
            "local",
            &format!("{PREFIX_V4}.0/24"),
            "dev",
            "lo",
        ])
        .expect("local v4 route");
    lab.b
        .ip([
            "-6",
            "route",
            "add",
            "local",
            &format!("{PREFIX_V6}/64"),
            "dev",
            "lo",
        ])
        .expect("local v6 route");
    let via4 = lab.b.ipv4().to_string();
    let via6 = lab.b.ipv6().to_string();
    lab.a
        .ip(["route", "add", &format!("{PREFIX_V4}.0/24"), "via", &via4])
        .expect("v4 route");
    lab.a
        .ip([
            "-6",
            "route",
            "add",
            &format!("{PREFIX_V6}/64"),
            "via",
            &via6,
        ])
        .expect("v6 route");
    common::wait_path(&lab.a, lab.b.addr(true));
    lab
}

/// `probe ping ARGS` in `host`: its output and the parsed JSON (`--json` is added).
fn ping(host: &Host, args: &[&str]) -> (Output, Value) {
    let mut all = vec!["ping", "--json"];
    all.extend_from_slice(args);
    let out = output(&mut probe(host, &all));
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}): {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, v)
}

/// The report entry of `target`.
fn entry<'a>(v: &'a Value, target: &str) -> &'a Value {
    v["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|e| e["target"] == target))
        .unwrap_or_else(|| panic!("{target} missing in {v}"))
}

/// (sent, received) of `target`.
fn counts(v: &Value, target: &str) -> (u64, u64) {
    let e = entry(v, target);
    (
        e["sent"].as_u64().unwrap_or(u64::MAX),
        e["received"].as_u64().unwrap_or(u64::MAX),
    )
}

fn v4(host: u8) -> String {
    format!("{PREFIX_V4}.{host}")
}

fn v6(host: u8) -> String {
    format!("{PREFIX_V6}{host:x}")
}

#[test]
fn icmp_to_many_addresses_with_exact_loss() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = lab();
    // 10.77.0.2 never answers; every other echo request to 10.77.0.3 is dropped.
    lab.b
        .nft(&format!(
            "table inet silence {{\n chain input {{ type filter hook input priority 0;\n  ip daddr {} icmp type echo-request drop\n  ip daddr {} icmp type echo-request numgen inc mod 2 == 0 drop\n }}\n}}\n",
            v4(2),
            v4(3)
        ))
        .expect("nft");
    let b4 = lab.b.ipv4().to_string();
    let b6 = lab.b.ipv6().to_string();
    let targets = [b4.clone(), v4(1), v4(2), v4(3), b6.clone(), v6(1)];
    let mut args = vec!["-c", "4", "-i", "20ms", "-t", "300ms", "--per-probe"];
    args.extend(targets.iter().map(String::as_str));
    let (out, v) = ping(&lab.a, &args);
    assert_eq!(out.status.code(), Some(1), "one target never answers: {v}");
    assert_eq!(v["protocol"], "icmp");
    assert_eq!(v["privilege"], "raw");
    assert_eq!(v["count"], 4);
    let order: Vec<&str> = v["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["target"].as_str())
        .collect();
    assert_eq!(order, targets, "report in the order given");
    for t in [&b4, &v4(1), &b6, &v6(1)] {
        assert_eq!(counts(&v, t), (4, 4), "{t}: {v}");
        let e = entry(&v, t);
        assert_eq!(e["loss_pct"], 0.0);
        assert_eq!(e["error"], Value::Null);
        assert_eq!(e["addr"], t.as_str());
        let (min, p50, max) = (
            e["rtt_ms"]["min"].as_f64().unwrap_or(-1.0),
            e["rtt_ms"]["p50"].as_f64().unwrap_or(-1.0),
            e["rtt_ms"]["max"].as_f64().unwrap_or(-1.0),
        );
        assert!(0.0 < min && min <= p50 && p50 <= max && max < 50.0, "{e}");
        let list = e["per_probe_ms"].as_array().expect("per-probe list");
        assert_eq!(list.len(), 4);
        assert!(list.iter().all(Value::is_f64), "{e}");
    }
    let silent = entry(&v, &v4(2));
    assert_eq!(counts(&v, &v4(2)), (4, 0));
    assert_eq!(silent["loss_pct"], 100.0);
    assert_eq!(silent["rtt_ms"], Value::Null);
    assert_eq!(counts(&v, &v4(3)), (4, 2), "every other probe dropped: {v}");
    assert_eq!(entry(&v, &v4(3))["loss_pct"], 50.0);
    let half: Vec<bool> = entry(&v, &v4(3))["per_probe_ms"]
        .as_array()
        .expect("list")
        .iter()
        .map(Value::is_null)
        .collect();
    assert!(
        half == [true, false, true, false] || half == [false, true, false, true],
        "{half:?}"
    );

    // The text forms: fping's summary and its -C list.
    let out = output(&mut probe(
        &lab.a,
        &[
            "ping",
            "-c",
            "2",
            "-i",
            "20ms",
            "-t",
            "300ms",
            "--per-probe",
            &v4(1),
            &v4(2),
        ],
    ));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "{} : xmt/rcv/%loss = 2/2/0%, min/avg/max = ",
            v4(1)
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} : xmt/rcv/%loss = 2/0/100%", v4(2))),
        "{text}"
    );
    assert!(text.contains(&format!("{} : - -", v4(2))), "{text}");
    // All answered: exit status 0.
    let out = output(&mut probe(&lab.a, &["ping", "-c", "1", &v4(1), &v6(1)]));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn udp_to_a_closed_port_and_to_a_stamp_reflector() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = lab();
    let _reflector = serve(&lab.b, 49153, &[]);
    for v6 in [false, true] {
        let target = lab.b.addr(v6).to_string();
        let (out, v) = ping(&lab.a, &["-P", "udp", "-c", "3", "-i", "20ms", &target]);
        assert!(out.status.success(), "{v}");
        assert_eq!(counts(&v, &target), (3, 3), "closed port: {v}");
        assert_eq!(entry(&v, &target)["port"], "closed");
        let (out, v) = ping(
            &lab.a,
            &["-P", "udp", "-p", "49153", "-c", "3", "-i", "20ms", &target],
        );
        assert!(out.status.success(), "{v}");
        assert_eq!(counts(&v, &target), (3, 3), "reflector: {v}");
        assert_eq!(entry(&v, &target)["port"], "open");
        assert_eq!(v["privilege"], "raw");
    }
}

#[test]
fn tcp_syn_to_an_open_and_a_closed_port() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = lab();
    // The kernel completes handshakes into the backlog: no accept needed for a SYN-ACK.
    let listener = lab
        .b
        .run_in(|| TcpListener::bind("[::]:8080"))
        .expect("listen");
    for v6 in [false, true] {
        let target = lab.b.addr(v6).to_string();
        for (port, state) in [("8080", "open"), ("8081", "closed")] {
            let (out, v) = ping(
                &lab.a,
                &["-P", "tcp", "-p", port, "-c", "2", "-i", "20ms", &target],
            );
            assert!(out.status.success(), "{port}: {v}");
            assert_eq!(counts(&v, &target), (2, 2), "{port}: {v}");
            assert_eq!(entry(&v, &target)["port"], state, "{port}: {v}");
        }
    }
    drop(listener);
}

#[test]
fn unprivileged_sockets_report_their_mode() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = lab();
    let without_net_raw = |args: &[&str]| {
        let mut cmd = lab.a.command("setpriv");
        cmd.args(["--inh-caps=-net_raw", "--bounding-set=-net_raw"])
            .arg(probe_suite::probe_bin())
            .args(args);
        cmd
    };
    // b's own IPv6 address: the kernel sources ICMPv6 errors about an address that is only
    // routed local (not configured) from another address, and a port unreachable counts only
    // from the target itself.
    let targets = [v4(1), v4(2), lab.b.ipv6().to_string()];
    for proto in ["icmp", "udp"] {
        let mut args = vec!["ping", "--json", "-P", proto, "-c", "3", "-i", "20ms"];
        args.extend(targets.iter().map(String::as_str));
        let v = json_ok(&mut without_net_raw(&args));
        assert_eq!(v["privilege"], "unprivileged", "{proto}: {v}");
        for t in &targets {
            assert_eq!(counts(&v, t), (3, 3), "{proto} {t}: {v}");
        }
    }
    let out = output(&mut without_net_raw(&["ping", "-P", "tcp", &v4(1)]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CAP_NET_RAW"));
}

#[test]
fn bad_input_and_unresolved_names() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = lab();
    let dir = std::env::temp_dir().join(format!("probe-ping-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p.to_string_lossy().into_owned()
    };
    let bad = file(
        "bad.txt",
        &format!("# targets\n{}\n\n{} oops\n", v4(1), v4(2)),
    );
    let out = output(&mut probe(&lab.a, &["ping", "-f", &bad]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("line 4") && err.contains("oops"), "{err}");
    let empty = file("empty.txt", "# nothing here\n\n");
    let out = output(&mut probe(&lab.a, &["ping", "-f", &empty]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("names no target"), "{err}");
    let out = output(&mut probe(&lab.a, &["ping", "not a host!"]));
    assert_eq!(out.status.code(), Some(2));

    // A name that does not resolve (the only DNS server, on loopback, refuses) is reported for
    // that target; the others are probed; the exit status is fping's 2.
    let good = file(
        "good.txt",
        &format!("{}\nno-such-host.test  # unresolvable\n", v4(1)),
    );
    let (out, v) = ping(
        &lab.a,
        &[
            "-f",
            &good,
            "--dns",
            "127.0.0.1:1",
            "-c",
            "2",
            "-i",
            "20ms",
            &v4(5),
            "10.99.0.1",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{v}");
    assert_eq!(counts(&v, &v4(5)), (2, 2));
    assert_eq!(counts(&v, &v4(1)), (2, 2));
    let e = entry(&v, "no-such-host.test");
    assert_eq!(
        (e["sent"].as_u64(), e["addr"].clone()),
        (Some(0), Value::Null)
    );
    assert!(e["error"].as_str().is_some_and(|s| !s.is_empty()), "{e}");
    // No route: the send fails, and the target says so.
    let e = entry(&v, "10.99.0.1");
    assert_eq!(
        (e["sent"].as_u64(), e["received"].as_u64()),
        (Some(2), Some(0))
    );
    assert!(
        e["error"]
            .as_str()
            .is_some_and(|s| s.contains("unreachable")),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dscp_and_size_are_on_every_probe() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = lab();
    lab.b
        .nft(
            "table inet marks {\n counter ef4 { }\n counter ef6 { }\n chain input { type filter hook input priority 0;\n  ip dscp ef icmp type echo-request counter name ef4\n  ip6 dscp ef icmpv6 type echo-request counter name ef6\n }\n}\n",
        )
        .expect("nft");
    let args = [
        "ping", "-c", "3", "-i", "10ms", "--dscp", "46", "--size", "100",
    ];
    let (t4, t6) = (v4(1), v6(1));
    let mut raw: Vec<&str> = args.to_vec();
    raw.extend([t4.as_str(), t6.as_str()]);
    assert_eq!(output(&mut probe(&lab.a, &raw)).status.code(), Some(0));
    let mut cmd = lab.a.command("setpriv");
    cmd.args(["--inh-caps=-net_raw", "--bounding-set=-net_raw"])
        .arg(probe_suite::probe_bin())
        .args(&raw);
    assert_eq!(output(&mut cmd).status.code(), Some(0));
    // 3 raw and 3 unprivileged probes per family, all EF, 100 payload bytes after the 8-byte
    // ICMP header and the 20- or 40-byte IP header.
    for (name, ip_len) in [("ef4", 128), ("ef6", 148)] {
        let c = lab.b.nft_counter("inet", "marks", name).expect("counter");
        assert_eq!((c.packets, c.bytes), (6, 6 * ip_len), "{name}");
    }
}
