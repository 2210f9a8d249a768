//! `probe trace` in the testbed: hop lists, multipath, PMTU, silence, rejects, privileges and
//! speed, each checked against the topology the test built.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{json_ok, output, probe, wait_path};
use probe_lab::Host;
use probe_lab::topology::{self, LinkNet};
use serde_json::Value;

const PROTOCOLS: [&str; 3] = ["icmp", "udp", "tcp"];

/// `probe trace -n --json ARGS TARGET` in `host`, which must succeed.
fn trace(host: &Host, target: IpAddr, args: &[&str]) -> Value {
    let target = target.to_string();
    let mut all = vec!["trace", "-n", "--json"];
    all.extend_from_slice(args);
    all.push(&target);
    json_ok(&mut probe(host, &all))
}

/// The addresses that answered at each hop, in TTL order.
fn responders(v: &Value) -> Vec<BTreeSet<IpAddr>> {
    v["hops"]
        .as_array()
        .unwrap_or_else(|| panic!("no hops in {v}"))
        .iter()
        .map(|h| {
            h["responders"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    r["addr"]
                        .as_str()
                        .and_then(|a| a.parse().ok())
                        .expect("addr")
                })
                .collect()
        })
        .collect()
}

/// The single responder of each hop (the test fails on a hop with none or several).
fn path(v: &Value) -> Vec<IpAddr> {
    responders(v)
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            assert_eq!(r.len(), 1, "hop {} has responders {r:?}: {v}", i + 1);
            r.into_iter().next().expect("one responder")
        })
        .collect()
}

/// Router addresses of a chain (facing `src`) and then the destination.
fn chain_path(lab: &topology::Chain, v6: bool) -> Vec<IpAddr> {
    let mut hops: Vec<IpAddr> = if v6 {
        lab.hops_v6().into_iter().map(IpAddr::from).collect()
    } else {
        lab.hops_v4().into_iter().map(IpAddr::from).collect()
    };
    hops.push(lab.dst.addr(v6));
    hops
}

fn last_kind(v: &Value) -> &str {
    let hops = v["hops"].as_array().expect("hops");
    hops.last().expect("a hop")["responders"][0]["kind"]
        .as_str()
        .expect("kind")
}

#[test]
fn chain_hop_lists_for_every_protocol_and_family() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::chain(3, &[]).expect("chain");
    for v6 in [false, true] {
        wait_path(&lab.src, lab.dst.addr(v6));
        let want = chain_path(&lab, v6);
        for proto in PROTOCOLS {
            let v = trace(&lab.src, lab.dst.addr(v6), &["-P", proto, "-w", "500ms"]);
            let label = format!("{proto} v6={v6}");
            assert_eq!(path(&v), want, "{label}: {v}");
            assert_eq!(v["reached"], true, "{label}");
            assert_eq!(v["protocol"], proto, "{label}");
            assert_eq!(v["mode"], "paris", "{label}");
            assert_eq!(v["privilege"], "raw", "{label}");
            assert_eq!(v["pmtu"], Value::Null, "{label}");
            for h in v["hops"].as_array().expect("hops") {
                assert_eq!(
                    (h["sent"].as_u64(), h["received"].as_u64()),
                    (Some(3), Some(3)),
                    "{label}: {h}"
                );
                let r = &h["responders"][0];
                let rtt = r["rtt_ms"]["p50"].as_f64().expect("rtt");
                assert!(rtt > 0.0 && rtt < 5.0, "{label}: rtt {rtt} ms");
                assert_eq!(r["mpls"], Value::Array(Vec::new()));
            }
            let want_kind = match proto {
                "icmp" => "echo reply",
                "udp" => "port unreachable",
                _ => "tcp rst",
            };
            assert_eq!(last_kind(&v), want_kind, "{label}");
            let first = &v["hops"][0]["responders"][0];
            assert_eq!(first["kind"], "time exceeded", "{label}");
            assert_eq!(first["quoted_ttl"], 1, "{label}: probes arrive with TTL 1");
        }
    }
}

/// Paris keeps one flow (one branch of the diamond); classic varies the flow with every probe
/// and so sees both branches.
#[test]
fn paris_keeps_one_branch_classic_sees_both() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::ecmp().expect("ecmp");
    let target = lab.dst.addr(false);
    let branches: BTreeSet<IpAddr> = lab.branch_v4().into_iter().map(IpAddr::from).collect();
    let v = trace(
        &lab.src,
        target,
        &["-P", "udp", "-q", "8", "-c", "2", "-i", "20ms"],
    );
    let hops = responders(&v);
    assert_eq!(hops.len(), 4, "{v}");
    assert!(
        hops.iter().all(|h| h.len() == 1),
        "paris: one responder per hop: {v}"
    );
    assert!(branches.is_superset(&hops[1]));
    let v = trace(&lab.src, target, &["-P", "udp", "-q", "16", "--classic"]);
    assert_eq!(v["mode"], "classic");
    assert_eq!(
        responders(&v)[1],
        branches,
        "classic: both branches at hop 2: {v}"
    );
}

/// A fixed multipath hash key on the diamond's routers, so that with a fixed base source
/// port the flows MDA picks take the same branches in every run (the default key is random per
/// boot, and MDA at 95 % confidence misses a branch in about 3 % of runs by design).
fn fixed_hash(lab: &topology::Ecmp) {
    for r in [&lab.r1, &lab.r2] {
        r.sysctl("net.ipv4.fib_multipath_hash_seed", "20260101")
            .expect("hash seed");
    }
}

/// MDA on the lab diamond. Its merge router answers from the interface a probe came in on, so
/// the merge hop shows two addresses too (scamper's tracelb needs 24 probes there); with the
/// merge router answering from one address it is scamper's 19.
#[test]
fn mda_finds_both_branches_and_their_links() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::ecmp().expect("ecmp");
    let (r1, dst) = (lab.r1.ipv4(), lab.dst.ipv4());
    let [ra, rb] = lab.branch_v4();
    // r2 as seen from each branch: its addresses on links 3 (from ra) and 4 (from rb).
    let (r2a, r2b) = (LinkNet::new(3).right_v4(), LinkNet::new(4).right_v4());
    fixed_hash(&lab);
    let before = lab.branch_packets().expect("counters");
    for (proto, extra) in [
        ("udp", None),
        ("tcp", None),
        ("udp", Some("--unprivileged")),
    ] {
        let mut args = vec!["--mda", "-P", proto, "--source-port", "41000"];
        args.extend(extra);
        let v = trace(&lab.src, dst.into(), &args);
        assert_eq!(v["mode"], "mda");
        assert_eq!(v["reached"], true);
        let hops = responders(&v);
        let set = |a: &[std::net::Ipv4Addr]| -> BTreeSet<IpAddr> {
            a.iter().map(|&x| x.into()).collect()
        };
        assert_eq!(
            hops,
            [set(&[r1]), set(&[ra, rb]), set(&[r2a, r2b]), set(&[dst])],
            "{proto}: {v}"
        );
        let links: BTreeSet<(u64, String, String)> = v["links"]
            .as_array()
            .expect("links")
            .iter()
            .map(|l| {
                (
                    l["ttl"].as_u64().expect("ttl"),
                    l["from"].as_str().expect("from").into(),
                    l["to"].as_str().expect("to").into(),
                )
            })
            .collect();
        let want: BTreeSet<(u64, String, String)> = [
            (1, r1, ra),
            (1, r1, rb),
            (2, ra, r2a),
            (2, rb, r2b),
            (3, r2a, dst),
            (3, r2b, dst),
        ]
        .into_iter()
        .map(|(t, f, to)| (t, f.to_string(), to.to_string()))
        .collect();
        assert_eq!(links, want, "{proto}: {v}");
        let probes = v["probes_sent"].as_u64().expect("probes");
        // scamper tracelb needs 24 probes on this diamond (README benchmark).
        assert!(
            probes <= 24,
            "{proto}: {probes} probes, scamper tracelb needs 24"
        );
    }
    let after = lab.branch_packets().expect("counters");
    assert!(
        after[0] > before[0] && after[1] > before[1],
        "{before:?} -> {after:?}"
    );

    // The merge router answers from one address (r2's link to dst), as a router with a
    // loopback-sourced ICMP would.
    let r2 = LinkNet::new(5).left_v4();
    lab.r2
        .sysctl("net.ipv4.icmp_errors_use_inbound_ifaddr", "0")
        .expect("sysctl");
    lab.r2
        .ip([
            "route",
            "replace",
            &LinkNet::new(0).prefix_v4(),
            "src",
            &r2.to_string(),
            "nexthop",
            "via",
            &LinkNet::new(3).left_v4().to_string(),
            "dev",
            "eth0",
            "nexthop",
            "via",
            &LinkNet::new(4).left_v4().to_string(),
            "dev",
            "eth1",
        ])
        .expect("route with source");
    let v = trace(
        &lab.src,
        dst.into(),
        &["--mda", "-P", "udp", "--source-port", "41000"],
    );
    let hops = responders(&v);
    assert_eq!(hops[1].len(), 2, "{v}");
    assert_eq!(hops[2], BTreeSet::from([IpAddr::from(r2)]), "{v}");
    assert_eq!(v["links"].as_array().map(Vec::len), Some(5), "{v}");
    assert_eq!(v["probes_sent"], 19, "scamper tracelb's count: {v}");
}

/// `--mda` without `-P` probes with UDP, whose ports the diamond's L4 hash spreads, and finds
/// both branches; `-P icmp --mda` still runs but warns, on stderr and in the JSON `warnings`,
/// and indeed sees one branch (echo requests carry no ports to hash).
#[test]
fn mda_defaults_to_udp_and_warns_for_icmp() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::ecmp().expect("ecmp");
    fixed_hash(&lab);
    let dst = lab.dst.addr(false);
    let branches: BTreeSet<IpAddr> = lab.branch_v4().into_iter().map(IpAddr::from).collect();
    let v = trace(&lab.src, dst, &["--mda", "--source-port", "41000"]);
    assert_eq!(v["protocol"], "udp", "{v}");
    assert_eq!(v["mode"], "mda");
    assert_eq!(responders(&v)[1], branches, "{v}");
    assert_eq!(v["warnings"], serde_json::json!([]), "{v}");

    let dst_s = dst.to_string();
    let out = output(&mut probe(
        &lab.src,
        &["trace", "-n", "--json", "--mda", "-P", "icmp", &dst_s],
    ));
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: --mda with ICMP echo probes may miss branches"),
        "{err}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["protocol"], "icmp", "{v}");
    let warnings = v["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{v}");
    assert!(
        warnings[0].as_str().is_some_and(|w| w.contains("L4-hash")),
        "{v}"
    );
    assert_eq!(responders(&v)[1].len(), 1, "ICMP takes one branch: {v}");
    assert_eq!(v["reached"], true);
}

#[test]
fn mda_over_ipv6() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::ecmp().expect("ecmp");
    fixed_hash(&lab);
    wait_path(&lab.src, lab.dst.addr(true));
    let v = trace(
        &lab.src,
        lab.dst.addr(true),
        &["--mda", "-P", "udp", "--source-port", "41000"],
    );
    let branches: BTreeSet<IpAddr> = lab.branch_v6().into_iter().map(IpAddr::from).collect();
    assert_eq!(responders(&v)[1], branches, "{v}");
    assert_eq!(v["reached"], true);
    assert_eq!(v["links"].as_array().map(Vec::len), Some(6), "{v}");
}

#[test]
fn pmtu_of_a_chain_with_one_1400_byte_link() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::chain(3, &[1500, 1500, 1400, 1500]).expect("chain");
    for v6 in [false, true] {
        wait_path(&lab.src, lab.dst.addr(v6));
        for proto in PROTOCOLS {
            let v = trace(&lab.src, lab.dst.addr(v6), &["-P", proto, "--pmtu"]);
            assert_eq!(v["pmtu"], 1400, "{proto} v6={v6}: {v}");
            assert_eq!(path(&v), chain_path(&lab, v6));
        }
        for proto in ["icmp", "udp"] {
            let v = trace(
                &lab.src,
                lab.dst.addr(v6),
                &["-P", proto, "--pmtu", "--unprivileged"],
            );
            assert_eq!(v["pmtu"], 1400, "unprivileged {proto} v6={v6}: {v}");
        }
    }
}

#[test]
fn silent_target_gives_stars_within_bounded_time() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::chain(2, &[]).expect("chain");
    wait_path(&lab.src, lab.dst.addr(true));
    lab.dst
        .nft("table inet silent {\n chain input { type filter hook input priority 0; policy drop; }\n}\n")
        .expect("nft drop");
    for v6 in [false, true] {
        let start = Instant::now();
        let v = trace(
            &lab.src,
            lab.dst.addr(v6),
            &["-P", "udp", "-w", "300ms", "-m", "8"],
        );
        let took = start.elapsed();
        assert_eq!(v["reached"], false);
        let hops = responders(&v);
        assert_eq!(hops.len(), 8, "{v}");
        let routers: Vec<IpAddr> = chain_path(&lab, v6)[..2].to_vec();
        assert_eq!(
            hops[..2]
                .iter()
                .map(|h| h.iter().copied().collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            [vec![routers[0]], vec![routers[1]]]
        );
        assert!(
            hops[2..].iter().all(BTreeSet::is_empty),
            "stars after the routers: {v}"
        );
        for h in &v["hops"].as_array().expect("hops")[2..] {
            assert_eq!(h["loss_pct"], 100.0);
        }
        // TTLs 3..8 go out at once and time out together after one wait.
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }
}

#[test]
fn rejects_are_reported_as_such() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::chain(3, &[]).expect("chain");
    wait_path(&lab.src, lab.dst.addr(true));
    let r2 = &lab.routers[1];
    for (reject, kind, v4_code, v6_code) in [
        ("admin-prohibited", "admin prohibited", 13, 1),
        ("host-unreachable", "host unreachable", 1, 3),
    ] {
        r2.nft(&format!(
            "flush ruleset\ntable inet block {{\n chain forward {{ type filter hook forward priority 0; reject with icmpx type {reject}; }}\n}}\n"
        ))
        .expect("nft reject");
        for v6 in [false, true] {
            let v = trace(&lab.src, lab.dst.addr(v6), &["-P", "udp"]);
            assert_eq!(v["reached"], false);
            // r2 (hop 2) expires TTL-2 probes before its forward filter sees them; TTL 3 is
            // where it rejects.
            let routers = chain_path(&lab, v6);
            assert_eq!(
                path(&v),
                [routers[0], routers[1], routers[1]],
                "{reject}: {v}"
            );
            assert_eq!(v["hops"][1]["responders"][0]["kind"], "time exceeded");
            let r = &v["hops"][2]["responders"][0];
            assert_eq!(r["kind"], kind, "{v}");
            let (t, code) = if v6 { (1, v6_code) } else { (3, v4_code) };
            assert_eq!(
                (r["icmp_type"].as_u64(), r["icmp_code"].as_u64()),
                (Some(t), Some(code))
            );
        }
    }
    let out = output(&mut probe(
        &lab.src,
        &["trace", "-n", &lab.dst.ipv4().to_string()],
    ));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains(" !H"), "{table}");
}

/// `probe` without `CAP_NET_RAW` (bounding set dropped before exec, as in a container without
/// `NET_RAW`).
fn without_net_raw(host: &Host, args: &[&str]) -> Command {
    let mut cmd = host.command("setpriv");
    cmd.args(["--inh-caps=-net_raw", "--bounding-set=-net_raw"])
        .arg(probe_suite::probe_bin())
        .args(args);
    cmd
}

#[test]
fn unprivileged_fallback_and_its_errors() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::chain(2, &[]).expect("chain");
    wait_path(&lab.src, lab.dst.addr(true));
    for v6 in [false, true] {
        let target = lab.dst.addr(v6).to_string();
        for proto in ["icmp", "udp"] {
            let v = json_ok(&mut without_net_raw(
                &lab.src,
                &["trace", "-n", "--json", "-P", proto, &target],
            ));
            assert_eq!(v["privilege"], "unprivileged", "{proto}: {v}");
            assert_eq!(path(&v), chain_path(&lab, v6), "{proto} v6={v6}");
            assert_eq!(v["reached"], true);
            assert_eq!(v["hops"][0]["responders"][0]["quoted_ttl"], Value::Null);
        }
        let out = output(&mut without_net_raw(
            &lab.src,
            &["trace", "-n", "-P", "tcp", &target],
        ));
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("CAP_NET_RAW"));
    }
    lab.src
        .sysctl("net.ipv4.ping_group_range", "1 0")
        .expect("sysctl");
    let target = lab.dst.ipv4().to_string();
    let out = output(&mut without_net_raw(
        &lab.src,
        &["trace", "-n", "-P", "icmp", &target],
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ping_group_range") && err.contains("CAP_NET_RAW"),
        "{err}"
    );
    let v = json_ok(&mut without_net_raw(
        &lab.src,
        &["trace", "-n", "--json", "-P", "udp", &target],
    ));
    assert_eq!(v["privilege"], "unprivileged");
    assert_eq!(v["reached"], true);
}

#[test]
fn rounds_accumulate_per_hop_statistics() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::chain(2, &[]).expect("chain");
    let v = trace(
        &lab.src,
        lab.dst.addr(false),
        &["-c", "4", "-i", "30ms", "-q", "2"],
    );
    assert_eq!(v["count"], 4);
    for h in v["hops"].as_array().expect("hops") {
        assert_eq!(
            (h["sent"].as_u64(), h["received"].as_u64()),
            (Some(8), Some(8)),
            "{h}"
        );
        let r = &h["responders"][0];
        let rtt = &r["rtt_ms"];
        let (min, p50, max) = (
            rtt["min"].as_f64(),
            rtt["p50"].as_f64(),
            rtt["max"].as_f64(),
        );
        assert!(min <= p50 && p50 <= max, "{rtt}");
        assert!(rtt["stddev"].as_f64().is_some_and(|s| s >= 0.0));
        assert!(r["jitter_ms"].as_f64().is_some_and(|j| j >= 0.0), "{r}");
        assert!(r["last_ms"].as_f64().is_some());
        assert_eq!(r["loss_pct"], 0.0);
    }
    // Four rounds 30 ms apart.
    assert!(
        v["duration_ms"]
            .as_f64()
            .is_some_and(|d| (90.0..1000.0).contains(&d)),
        "{v}"
    );
}

/// The 6-hop, 3-queries trace: all TTLs in parallel. The real figure (a few ms) is in the
/// benchmark; this bound leaves room for a shared, loaded test machine and a debug build.
#[test]
fn six_hop_trace_is_fast() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::chain(5, &[]).expect("chain");
    let target = lab.dst.ipv4().to_string();
    let start = Instant::now();
    let v = json_ok(&mut probe(
        &lab.src,
        &["trace", "-n", "--json", "-q", "3", &target],
    ));
    let took = start.elapsed();
    assert_eq!(path(&v).len(), 6);
    assert!(
        took < Duration::from_millis(500),
        "probe trace took {took:?}"
    );
    let probing = v["duration_ms"].as_f64().expect("duration");
    assert!(probing < 100.0, "probing took {probing} ms");
}
