//! Tests for [`super`]: diamonds stay diamonds, silent hops, where loss starts.

use super::*;
use crate::report::trace::{
    HopReport, LinkReport, MplsLabel, Privilege, Protocol, ReplyKind, RttMs, TraceMode,
};

fn responder(addr: &str, p50: f64) -> ResponderReport {
    ResponderReport {
        addr: addr.parse().expect("addr"),
        hostname: None,
        sent: 6,
        received: 6,
        loss_pct: 0.0,
        rtt_ms: Some(RttMs {
            min: p50 - 0.1,
            mean: p50,
            p50,
            max: p50 + 0.2,
            stddev: 0.05,
        }),
        last_ms: Some(p50),
        jitter_ms: Some(0.01),
        jitter_max_ms: Some(0.02),
        mpls: Vec::new(),
        kind: ReplyKind::TimeExceeded,
        icmp_type: Some(11),
        icmp_code: Some(0),
        nat: false,
        quoted_ttl: Some(1),
        reply_ttl: Some(64),
    }
}

fn hop(ttl: u8, responders: Vec<ResponderReport>) -> HopReport {
    HopReport {
        ttl,
        sent: 6,
        received: if responders.is_empty() { 0 } else { 6 },
        loss_pct: if responders.is_empty() { 100.0 } else { 0.0 },
        responders,
    }
}

fn link(ttl: u8, from: &str, to: &str) -> LinkReport {
    LinkReport {
        ttl,
        from: from.parse().expect("addr"),
        to: to.parse().expect("addr"),
    }
}

/// An MDA trace over a diamond: A, then B1 (MPLS) or B2 (NAT), then the target C.
pub(crate) fn diamond() -> TraceReport {
    let mut b1 = responder("10.0.2.1", 0.4);
    b1.hostname = Some("b1.lab".into());
    b1.mpls = vec![vec![MplsLabel {
        label: 16_001,
        tc: 0,
        s: true,
        ttl: 1,
    }]];
    let mut b2 = responder("10.0.2.2", 0.5);
    b2.nat = true;
    let mut c = responder("10.0.3.1", 0.7);
    c.kind = ReplyKind::PortUnreachable;
    TraceReport {
        target: "10.0.3.1".parse().expect("addr"),
        target_name: None,
        source: "10.0.0.2".parse().expect("addr"),
        protocol: Protocol::Udp,
        mode: TraceMode::Mda,
        privilege: Some(Privilege::Raw),
        reached: true,
        pmtu: None,
        first_ttl: 1,
        max_ttl: 30,
        queries: 1,
        count: 1,
        confidence_pct: Some(95.0),
        probes_sent: 18,
        duration_ms: 12.0,
        hops: vec![
            hop(1, vec![responder("10.0.1.1", 0.2)]),
            // B2 answered first: the layout still puts it where its links say.
            hop(2, vec![b2, b1]),
            hop(3, vec![c]),
        ],
        links: vec![
            link(1, "10.0.1.1", "10.0.2.1"),
            link(1, "10.0.1.1", "10.0.2.2"),
            link(2, "10.0.2.1", "10.0.3.1"),
            link(2, "10.0.2.2", "10.0.3.1"),
        ],
    }
}

#[test]
fn a_diamond_is_drawn_as_a_diamond() {
    let r = diamond();
    let g = layout(&r);
    assert_eq!(g.nodes.len(), 4);
    assert_eq!(g.edges.len(), 4);
    assert!(g.edges.iter().all(|e| !e.inferred));
    // Columns by TTL; the branches above and below the single nodes' line.
    let (a, b_top, b_bottom, c) = (&g.nodes[0], &g.nodes[1], &g.nodes[2], &g.nodes[3]);
    assert_eq!((a.hop, b_top.hop, b_bottom.hop, c.hop), (0, 1, 1, 2));
    assert!(a.x < b_top.x && (b_top.x - b_bottom.x).abs() < 1e-9 && b_top.x < c.x);
    assert!(b_top.y < a.y && a.y < b_bottom.y);
    assert!((a.y - c.y).abs() < 1e-9);
    // Every node lies inside the drawing.
    for n in &g.nodes {
        assert!(n.x - NODE_SIZE.0 / 2.0 >= 0.0 && n.x + NODE_SIZE.0 / 2.0 <= g.width);
        assert!(n.y - NODE_SIZE.1 / 2.0 >= 0.0 && n.y + NODE_SIZE.1 / 2.0 <= g.height);
    }
    // Each link becomes the edge between its two responders.
    for l in &r.links {
        let found = g.edges.iter().any(|e| {
            g.responder(&r, e.from).map(|x| x.addr) == Some(l.from)
                && g.responder(&r, e.to).map(|x| x.addr) == Some(l.to)
        });
        assert!(found, "{l:?}");
    }
    assert_eq!(g.loss_start, None);
}

#[test]
fn plain_traces_and_silent_hops_get_inferred_edges() {
    let mut r = diamond();
    r.links.clear();
    r.mode = TraceMode::Paris;
    r.hops.insert(1, hop(2, Vec::new()));
    r.hops[2].ttl = 3;
    r.hops[3].ttl = 4;
    let g = layout(&r);
    // A, *, B2, B1, C.
    assert_eq!(g.nodes.len(), 5);
    assert_eq!(g.nodes[1].responder, None);
    // A-*, *-B1, *-B2, B1-C, B2-C.
    assert_eq!(g.edges.len(), 5);
    assert!(g.edges.iter().all(|e| e.inferred));
}

#[test]
fn loss_starts_where_it_persists_to_the_end() {
    let lossy = |ttl, loss| HopReport {
        loss_pct: loss,
        ..hop(ttl, vec![responder("10.0.0.1", 1.0)])
    };
    // A rate-limiting router at hop 2 is not where loss starts.
    let hops = vec![lossy(1, 0.0), lossy(2, 50.0), lossy(3, 0.0), lossy(4, 20.0)];
    assert_eq!(loss_start(&hops), Some(3));
    let hops = vec![lossy(1, 0.0), lossy(2, 50.0), lossy(3, 0.0)];
    assert_eq!(loss_start(&hops), None);
    let hops = vec![lossy(1, 10.0), lossy(2, 50.0)];
    assert_eq!(loss_start(&hops), Some(0));
    assert_eq!(loss_start(&[]), None);
}
