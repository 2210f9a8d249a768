//! Tests for [`super`]: simulated load-balanced topologies, probe counts and links.

use super::*;
use crate::trace::flow::Protocol;
use crate::trace::sim::{SimNet, drive};

const T0: Nanos = Nanos(1_000_000_000);

/// `addrs` become nodes 0.. (the last one the target); `edges[i]` are node i's successors.
fn topology(addrs: &[&str], edges: &[&[usize]]) -> SimNet {
    let mut n = SimNet::chain("10.0.0.1", addrs);
    for (i, e) in edges.iter().enumerate() {
        n.nodes[i].next = e.to_vec();
    }
    n
}

/// src - r1 - {rA | rB} - r2 - dst
fn diamond() -> SimNet {
    topology(
        &["10.0.1.1", "10.0.2.1", "10.0.2.2", "10.0.3.1", "10.0.9.9"],
        &[&[1, 2], &[3], &[3], &[4]],
    )
}

fn run_with(net: &mut SimNet, cfg: impl FnOnce(&mut MdaConfig)) -> Mda {
    let mut c = MdaConfig::new(ProbeConfig::new(
        Protocol::Udp,
        net.src,
        net.addr(net.target),
    ));
    cfg(&mut c);
    let mut m = Mda::new(c, T0).expect("config");
    drive(&mut m, net, T0);
    m
}

fn addrs_at(r: &TraceReport, ttl: u8) -> Vec<String> {
    let mut v: Vec<String> = r.hops[usize::from(ttl - 1)]
        .responders
        .iter()
        .map(|x| x.addr.to_string())
        .collect();
    v.sort();
    v
}

fn link(ttl: u8, from: &str, to: &str) -> LinkReport {
    LinkReport {
        ttl,
        from: from.parse().expect("addr"),
        to: to.parse().expect("addr"),
    }
}

/// The links of a diamond r1 - {10.0.2.1 | 10.0.2.2} - merge - 10.0.9.9, where the merge
/// router shows one address, or one per branch (in branch order).
fn diamond_links(merge: &[&str]) -> Vec<LinkReport> {
    let branches = ["10.0.2.1", "10.0.2.2"];
    let mut v = BTreeSet::new();
    for (i, b) in branches.into_iter().enumerate() {
        let m = merge[i % merge.len()];
        v.insert(link(1, "10.0.1.1", b));
        v.insert(link(2, b, m));
        v.insert(link(3, m, "10.0.9.9"));
    }
    v.into_iter().collect()
}

#[test]
fn diamond_found_with_scamper_probe_count() {
    for protocol in [Protocol::Udp, Protocol::Icmp, Protocol::Tcp] {
        let mut net = diamond();
        let m = run_with(&mut net, |c| c.probe.protocol = protocol);
        let r = m.report();
        assert!(r.reached, "{protocol:?}");
        assert_eq!(r.mode, TraceMode::Mda);
        assert_eq!(r.hops.len(), 4);
        assert_eq!(addrs_at(&r, 1), ["10.0.1.1"]);
        assert_eq!(addrs_at(&r, 2), ["10.0.2.1", "10.0.2.2"], "{protocol:?}");
        assert_eq!(addrs_at(&r, 3), ["10.0.3.1"]);
        assert_eq!(addrs_at(&r, 4), ["10.0.9.9"]);
        assert_eq!(r.links, diamond_links(&["10.0.3.1"]));
        // 1 (first hop) + 11 (two branches seen) + 6 (3 through each branch) + 1 (target).
        assert_eq!(r.probes_sent, 19, "{protocol:?}");
        assert_eq!(net.probes_seen, 19);
    }
}

#[test]
fn diamond_over_many_hash_seeds() {
    let mut found = 0;
    let mut worst = 0;
    for seed in 0..40u16 {
        let mut net = diamond();
        let m = run_with(&mut net, |c| c.probe.src_port = 20000 + seed * 97);
        let r = m.report();
        assert!(r.reached);
        if addrs_at(&r, 2).len() == 2 {
            found += 1;
            worst = worst.max(r.probes_sent);
        }
    }
    // A miss happens when the first 6 flows all pick one branch: probability 2/64.
    assert!(found >= 37, "found both branches {found}/40");
    // Finding both costs exactly 1 + 11 + 6 + 1: the 6 probes at the merge hop reuse flows
    // known to cross each branch.
    assert!(worst <= 19, "worst {worst} probes");
}

/// The lab diamond: the merge router answers from the interface each branch reaches it on, so
/// the merge hop shows two addresses, each behind one branch.
/// src - r1 - {rA - r2a | rB - r2b} - dst
fn per_interface_diamond() -> SimNet {
    topology(
        &[
            "10.0.1.1", "10.0.2.1", "10.0.2.2", "10.0.3.1", "10.0.3.2", "10.0.9.9",
        ],
        &[&[1, 2], &[3], &[4], &[5], &[5]],
    )
}

#[test]
fn per_interface_diamond_within_scamper_probe_count() {
    let (mut found, mut total, mut least, mut worst) = (0u64, 0u64, u64::MAX, 0u64);
    for seed in 0..200u16 {
        let mut net = per_interface_diamond();
        let m = run_with(&mut net, |c| c.probe.src_port = 20000 + seed * 97);
        let r = m.report();
        assert!(r.reached, "seed {seed}");
        assert_eq!(net.probes_seen, r.probes_sent);
        total += r.probes_sent;
        least = least.min(r.probes_sent);
        worst = worst.max(r.probes_sent);
        if addrs_at(&r, 2).len() < 2 {
            continue;
        }
        found += 1;
        assert_eq!(addrs_at(&r, 3), ["10.0.3.1", "10.0.3.2"], "seed {seed}");
        assert_eq!(addrs_at(&r, 4), ["10.0.9.9"], "seed {seed}");
        assert_eq!(
            r.links,
            diamond_links(&["10.0.3.1", "10.0.3.2"]),
            "seed {seed}"
        );
        // 1 (first hop) + 11 (two branches) + 11 (two merge addresses) + 1 (target).
        assert_eq!(r.probes_sent, 24, "seed {seed}");
    }
    // A miss happens when the first 6 flows all pick one branch (probability 1/32); the
    // simulated hash misses on 13 of these 200 seeds, the same ones as on the diamond whose
    // merge router answers from one address (the branch hop is probed the same way).
    assert!(found >= 185, "found both branches {found}/200");
    assert!(worst <= 24, "worst {worst} probes");
    assert!(least >= 7, "least {least} probes");
    println!(
        "per-interface diamond: min {least}, mean {:.2}, max {worst} probes over 200 seeds",
        total as f64 / 200.0
    );
}

#[test]
fn ipv6_diamond_varies_flow_label_and_ports() {
    let mut net = SimNet::chain(
        "fd00::1",
        &[
            "fd00:1::1",
            "fd00:2::1",
            "fd00:2::2",
            "fd00:3::1",
            "fd00:9::9",
        ],
    );
    for (i, e) in [vec![1, 2], vec![3], vec![3], vec![4]]
        .into_iter()
        .enumerate()
    {
        net.nodes[i].next = e;
    }
    for protocol in [Protocol::Udp, Protocol::Icmp] {
        let m = run_with(&mut net, |c| c.probe.protocol = protocol);
        let r = m.report();
        assert!(r.reached);
        assert_eq!(addrs_at(&r, 2), ["fd00:2::1", "fd00:2::2"], "{protocol:?}");
        assert_eq!(r.probes_sent, 19);
        assert_eq!(r.confidence_pct, Some(95.0));
    }
}

#[test]
fn three_way_balancer_and_hop_rule() {
    let mut net = topology(
        &[
            "10.0.1.1", "10.0.2.1", "10.0.2.2", "10.0.2.3", "10.0.3.1", "10.0.9.9",
        ],
        &[&[1, 2, 3], &[4], &[4], &[4], &[5]],
    );
    let m = run_with(&mut net, |_| {});
    let r = m.report();
    assert_eq!(addrs_at(&r, 2), ["10.0.2.1", "10.0.2.2", "10.0.2.3"]);
    assert_eq!(r.hops[1].sent, 16, "n_4 = 16 probes at the balanced hop");
    assert_eq!(r.links.iter().filter(|l| l.ttl == 2).count(), 3);
}

#[test]
fn meshed_diamond_reveals_every_link() {
    // r1 -> {a1 | b1}; a1 -> {a2 | b2}; b1 -> {a2 | b2}; a2, b2 -> r2 -> dst
    let mut net = topology(
        &[
            "10.0.1.1", "10.0.2.1", "10.0.2.2", "10.0.3.1", "10.0.3.2", "10.0.4.1", "10.0.9.9",
        ],
        &[&[1, 2], &[3, 4], &[3, 4], &[5], &[5], &[6]],
    );
    let m = run_with(&mut net, |_| {});
    let r = m.report();
    assert!(r.reached);
    assert_eq!(addrs_at(&r, 3), ["10.0.3.1", "10.0.3.2"]);
    let mesh: Vec<LinkReport> = r.links.iter().copied().filter(|l| l.ttl == 2).collect();
    assert_eq!(
        mesh,
        [
            link(2, "10.0.2.1", "10.0.3.1"),
            link(2, "10.0.2.1", "10.0.3.2"),
            link(2, "10.0.2.2", "10.0.3.1"),
            link(2, "10.0.2.2", "10.0.3.2"),
        ]
    );
}

#[test]
fn plain_chain_costs_n2_per_router() {
    let mut net = SimNet::chain(
        "10.0.0.1",
        &["10.0.1.1", "10.0.2.1", "10.0.3.1", "10.0.9.9"],
    );
    let m = run_with(&mut net, |_| {});
    let r = m.report();
    assert!(r.reached);
    // Hop 1: 1 probe; hops 2 and 3: n_2 = 6 each; target: 1.
    assert_eq!(r.probes_sent, 1 + 6 + 6 + 1);
    assert_eq!(r.links.len(), 3);
    let m = run_with(&mut net, |c| c.assume_single_first_hop = false);
    assert_eq!(m.report().probes_sent, 6 + 6 + 6 + 1);
}

#[test]
fn silent_hop_is_crossed_and_gap_limit_stops() {
    let mut net = SimNet::chain(
        "10.0.0.1",
        &["10.0.1.1", "10.0.2.1", "10.0.3.1", "10.0.4.1", "10.0.9.9"],
    );
    net.nodes[1].silent = true;
    let m = run_with(&mut net, |_| {});
    let r = m.report();
    assert!(r.reached);
    assert!(r.hops[1].responders.is_empty());
    assert_eq!(r.hops[1].sent, 2, "one flow, two attempts");
    assert_eq!(addrs_at(&r, 3), ["10.0.3.1"]);
    assert!(r.links.iter().all(|l| l.ttl != 1 && l.ttl != 2));

    let mut net = SimNet::chain("10.0.0.1", &["10.0.1.1", "10.0.9.9"]);
    net.target_answers = false;
    let m = run_with(&mut net, |c| c.gap_limit = 3);
    let r = m.report();
    assert!(!r.reached);
    assert_eq!(r.hops.len(), 4, "hop 1 then three silent hops");
}

#[test]
fn probe_budget_is_respected() {
    let mut net = diamond();
    let m = run_with(&mut net, |c| c.max_probes = 8);
    assert_eq!(m.probes_sent(), 8);
    assert!(!m.reached());
}

#[test]
fn bad_config_is_refused() {
    let net = diamond();
    let probe = ProbeConfig::new(Protocol::Udp, net.src, net.addr(net.target));
    let mut c = MdaConfig::new(probe);
    c.confidence = 1.0;
    assert!(Mda::new(c, T0).is_err());
}

#[test]
fn meshing_is_found_at_about_the_confidence_level() {
    let mut full = 0;
    let mut worst = 0;
    for seed in 0..40u16 {
        let mut net = topology(
            &[
                "10.0.1.1", "10.0.2.1", "10.0.2.2", "10.0.3.1", "10.0.3.2", "10.0.4.1", "10.0.9.9",
            ],
            &[&[1, 2], &[3, 4], &[3, 4], &[5], &[5], &[6]],
        );
        let m = run_with(&mut net, |c| c.probe.src_port = 20000 + seed * 97);
        let r = m.report();
        assert!(r.reached);
        if r.links.iter().filter(|l| l.ttl == 2).count() == 4 {
            full += 1;
        }
        worst = worst.max(r.probes_sent);
    }
    // Each stage may miss with probability about 5 %; 36 of 40 with this hash.
    assert!(full >= 34, "full mesh found {full}/40");
    assert!(worst <= 64, "worst {worst} probes");
}
