//! Tests for [`super`]: traces over simulated networks.

use super::*;
use crate::report::trace::{ReplyKind, TraceMode};
use crate::trace::EmitLayer;
use crate::trace::flow::{FlowMode, Protocol};
use crate::trace::sim::{SimNet, drive};
use crate::wire::mpls::MplsEntry;

const T0: Nanos = Nanos(5_000_000_000);

/// src 10.0.0.1, routers 10.0.1.1 .. 10.0.5.1, target 10.0.9.9 at hop 6.
fn six_hops() -> SimNet {
    SimNet::chain(
        "10.0.0.1",
        &[
            "10.0.1.1", "10.0.2.1", "10.0.3.1", "10.0.4.1", "10.0.5.1", "10.0.9.9",
        ],
    )
}

fn config(net: &SimNet, protocol: Protocol) -> TraceConfig {
    TraceConfig::new(ProbeConfig::new(protocol, net.src, net.addr(net.target)))
}

fn run(cfg: TraceConfig, net: &mut SimNet) -> (Trace, Nanos) {
    let mut t = Trace::new(cfg, T0).expect("config");
    let end = drive(&mut t, net, T0);
    (t, end)
}

#[test]
fn six_hop_lan_trace_is_fast_and_complete() {
    for protocol in [Protocol::Udp, Protocol::Icmp, Protocol::Tcp] {
        let mut net = six_hops();
        let (t, end) = run(config(&net, protocol), &mut net);
        let r = t.report();
        assert!(r.reached, "{protocol:?}");
        assert_eq!(r.hops.len(), 6);
        for (i, h) in r.hops.iter().enumerate() {
            assert_eq!(h.ttl as usize, i + 1);
            assert_eq!((h.sent, h.received), (3, 3), "{protocol:?} hop {}", h.ttl);
            assert_eq!(h.responders.len(), 1);
            let x = &h.responders[0];
            assert_eq!(x.addr, net.addr(i));
            // 100 us per hop each way.
            let want = 0.2 * (i + 1) as f64;
            assert!((x.rtt_ms.expect("rtt").mean - want).abs() < 1e-9);
            if protocol == Protocol::Udp || i < 5 {
                assert_eq!(x.quoted_ttl, Some(1), "probes arrive with TTL 1");
            }
        }
        let want_kind = match protocol {
            Protocol::Udp => ReplyKind::PortUnreachable,
            Protocol::Icmp => ReplyKind::EchoReply,
            Protocol::Tcp => ReplyKind::TcpRst,
        };
        assert_eq!(r.hops[5].responders[0].kind, want_kind);
        assert_eq!(r.hops[0].responders[0].kind, ReplyKind::TimeExceeded);
        // TTLs 1..=8 go out at once (window 8); each answer from TTL k (k = 1..=5) releases
        // TTL k + 8; TTLs 7..=13 are cancelled when the target answers TTL 6.
        assert_eq!(r.probes_sent, 13 * 3);
        assert!(end - T0 < 50_000_000, "took {} ns", end - T0);
        assert!((r.duration_ms - 1.2).abs() < 1e-9, "{}", r.duration_ms);
    }
}

#[test]
fn ipv6_trace_reaches_the_target() {
    let mut net = SimNet::chain(
        "2001:db8::1",
        &["2001:db8:1::1", "2001:db8:2::1", "2001:db8:9::9"],
    );
    for protocol in [Protocol::Udp, Protocol::Icmp, Protocol::Tcp] {
        for emit in [EmitLayer::Ip, EmitLayer::L4] {
            let mut cfg = config(&net, protocol);
            cfg.probe.emit = emit;
            let (t, _) = run(cfg, &mut net);
            let r = t.report();
            assert!(r.reached, "{protocol:?} {emit:?}");
            let addrs: Vec<String> = r
                .hops
                .iter()
                .map(|h| h.responders[0].addr.to_string())
                .collect();
            assert_eq!(addrs, ["2001:db8:1::1", "2001:db8:2::1", "2001:db8:9::9"]);
        }
    }
}

#[test]
fn silent_hop_is_a_star_after_the_wait() {
    let mut net = six_hops();
    net.nodes[2].silent = true;
    let (t, end) = run(config(&net, Protocol::Udp), &mut net);
    let r = t.report();
    assert!(r.reached);
    let h3 = &r.hops[2];
    assert!(h3.responders.is_empty());
    assert_eq!((h3.sent, h3.received), (3, 0));
    assert!((h3.loss_pct - 100.0).abs() < 1e-9);
    assert_eq!(r.hops[3].received, 3);
    // The trace ends when the silent probes' 1 s wait runs out.
    assert_eq!(end - T0, 1_000_000_000);
    assert!(crate::report::trace::render_table(&r).contains("   3  *"));
}

#[test]
fn admin_prohibited_ends_the_path_unreached() {
    let mut net = six_hops();
    net.nodes[3].reject = true;
    let (t, _) = run(config(&net, Protocol::Udp), &mut net);
    let r = t.report();
    assert!(!r.reached);
    // The router answers time exceeded for TTL 4 and rejects what it would forward.
    assert_eq!(t.terminal_ttl(), Some(5));
    assert_eq!(r.hops.len(), 5);
    assert_eq!(r.hops[3].responders[0].kind, ReplyKind::TimeExceeded);
    let x = &r.hops[4].responders[0];
    assert_eq!(x.addr, net.addr(3));
    assert_eq!(x.kind, ReplyKind::AdminProhibited);
    assert_eq!((x.icmp_type, x.icmp_code), (Some(3), Some(13)));
    assert!(crate::report::trace::render_table(&r).contains("10.0.4.1 !X"));
}

#[test]
fn mpls_label_stacks_are_reported() {
    let mut net = six_hops();
    let stack = vec![
        MplsEntry {
            label: 300_112,
            tc: 0,
            bottom: false,
            ttl: 1,
        },
        MplsEntry {
            label: 24001,
            tc: 5,
            bottom: true,
            ttl: 1,
        },
    ];
    net.nodes[2].mpls = stack;
    let (t, _) = run(config(&net, Protocol::Icmp), &mut net);
    let r = t.report();
    let m = &r.hops[2].responders[0].mpls;
    assert_eq!(m.len(), 1);
    assert_eq!(
        m[0].iter().map(|l| l.label).collect::<Vec<_>>(),
        [300_112, 24001]
    );
    assert!(m[0][1].s && !m[0][0].s);
    assert!(r.hops[1].responders[0].mpls.is_empty());
    assert!(crate::report::trace::render_table(&r).contains("[MPLS label 24001 tc 5 s 1 ttl 1]"));
}

#[test]
fn rounds_accumulate_and_skip_ttls_beyond_the_target() {
    let mut net = six_hops();
    let mut cfg = config(&net, Protocol::Udp);
    cfg.count = 3;
    let (t, end) = run(cfg, &mut net);
    let r = t.report();
    assert!(r.hops.iter().all(|h| h.sent == 9 && h.received == 9));
    // Round 1 releases TTLs 1..=13 (39 probes, see above), rounds 2 and 3 only 1..=6.
    assert_eq!(r.probes_sent, 39 + 18 + 18);
    assert_eq!(end - T0, 2_000_000_000 + 1_200_000);
    assert_eq!(r.count, 3);
}

#[test]
fn unanswering_target_probes_up_to_max_ttl_in_windows() {
    let mut net = six_hops();
    net.target_answers = false;
    let mut cfg = config(&net, Protocol::Udp);
    cfg.max_ttl = 16;
    let (t, end) = run(cfg, &mut net);
    let r = t.report();
    assert!(!r.reached);
    assert_eq!(r.hops.len(), 16);
    assert!(
        r.hops[5..]
            .iter()
            .all(|h| h.responders.is_empty() && h.sent == 3)
    );
    assert_eq!(r.probes_sent, 48);
    // TTL 1..=5 answer at once (releasing up to 13); 14..=16 go out when 6..=8 time out at
    // 1 s and time out themselves at 2 s.
    assert_eq!(end - T0, 2_000_000_000);
}

#[test]
fn rate_limit_spaces_probes() {
    let mut net = six_hops();
    let mut cfg = config(&net, Protocol::Udp);
    cfg.probe.rate_pps = 1000;
    cfg.window = 6;
    let (t, end) = run(cfg, &mut net);
    assert_eq!(t.probes_sent(), 18);
    // The last probe leaves 17 ms after the first and needs 1.2 ms to come back.
    assert_eq!(end - T0, 17_000_000 + 1_200_000);
}

#[test]
fn paris_sees_one_branch_classic_sees_both() {
    let mut net = SimNet::chain(
        "10.0.0.1",
        &["10.0.1.1", "10.0.2.1", "10.0.2.2", "10.0.3.1", "10.0.9.9"],
    );
    net.nodes[0].next = vec![1, 2];
    net.nodes[1].next = vec![3];
    net.nodes[2].next = vec![3];
    let mut cfg = config(&net, Protocol::Udp);
    cfg.queries = 10;
    let (t, _) = run(cfg, &mut net);
    let r = t.report();
    assert_eq!(r.hops.len(), 4);
    assert_eq!(r.hops[1].responders.len(), 1);
    cfg.probe.mode = FlowMode::Classic;
    let (t, _) = run(cfg, &mut net);
    let r = t.report();
    assert_eq!(r.mode, TraceMode::Classic);
    let mut seen: Vec<String> = r.hops[1]
        .responders
        .iter()
        .map(|x| x.addr.to_string())
        .collect();
    seen.sort();
    assert_eq!(seen, ["10.0.2.1", "10.0.2.2"]);
}

#[test]
fn nat_on_the_path_is_flagged() {
    let mut net = six_hops();
    net.nodes[1].nat = Some(("203.0.113.9".parse().expect("addr"), 50000));
    let (t, _) = run(config(&net, Protocol::Udp), &mut net);
    let r = t.report();
    assert!(r.reached);
    assert!(
        !r.hops[1].responders[0].nat,
        "the NAT itself sees our address"
    );
    assert!(
        r.hops[2..5]
            .iter()
            .all(|h| h.responders[0].nat && h.received == 3)
    );
}

#[test]
fn invalid_configs_are_refused() {
    let net = six_hops();
    let mut cfg = config(&net, Protocol::Udp);
    cfg.first_ttl = 0;
    assert!(Trace::new(cfg, T0).is_err());
    cfg.first_ttl = 5;
    cfg.max_ttl = 4;
    assert!(Trace::new(cfg, T0).is_err());
    cfg.max_ttl = 30;
    cfg.queries = 0;
    assert!(Trace::new(cfg, T0).is_err());
}

#[test]
fn late_first_ttl_and_max_ttl_255() {
    let mut net = six_hops();
    let mut cfg = config(&net, Protocol::Icmp);
    cfg.first_ttl = 4;
    cfg.max_ttl = 255;
    let (t, _) = run(cfg, &mut net);
    let r = t.report();
    assert!(r.reached);
    assert_eq!(r.hops.iter().map(|h| h.ttl).collect::<Vec<_>>(), [4, 5, 6]);
}
