//! Tests for [`super`]: emission, pacing, deadlines and matching against the simulated network.

use super::*;
use crate::trace::sim::{SimNet, SimNode};

const T0: Nanos = Nanos(1_000_000_000);

fn chain() -> SimNet {
    SimNet::chain(
        "10.0.0.1",
        &["10.0.1.1", "10.0.2.1", "10.0.3.1", "10.0.9.9"],
    )
}

fn cfg(protocol: Protocol) -> ProbeConfig {
    ProbeConfig::new(
        protocol,
        "10.0.0.1".parse().expect("addr"),
        "10.0.9.9".parse().expect("addr"),
    )
}

#[test]
fn every_protocol_and_layer_matches_its_answers() {
    for protocol in [Protocol::Udp, Protocol::Icmp, Protocol::Tcp] {
        for emit in [EmitLayer::Ip, EmitLayer::L4] {
            let mut net = chain();
            let mut c = cfg(protocol);
            c.emit = emit;
            let mut p = Prober::new(c).expect("config");
            let mut buf = Vec::new();
            for ttl in 1..=4u8 {
                let tx = p.send(T0, FlowId(0), ttl, 60, 0, &mut buf).expect("send");
                assert_eq!(tx.len, if emit == EmitLayer::Ip { 60 } else { 40 });
                let (answer, rx) = net.respond(&tx, &buf).expect("answer");
                let m = p.match_answer(&answer, rx, Some(FlowId(0))).expect("match");
                assert_eq!(m.probe.id, tx.id, "{protocol:?} {emit:?} ttl {ttl}");
                assert_eq!(m.probe.ttl, ttl);
                assert_eq!(m.rtt_ns, 2 * i64::from(ttl) * 100_000);
                assert!(!m.nat);
                assert_eq!(answer.from, net.addr(usize::from(ttl) - 1));
            }
            assert_eq!(p.in_flight_count(), 0);
        }
    }
}

#[test]
fn duplicates_and_foreign_answers_do_not_match() {
    let mut net = chain();
    let mut p = Prober::new(cfg(Protocol::Udp)).expect("config");
    let mut buf = Vec::new();
    let tx = p.send(T0, FlowId(0), 2, 60, 0, &mut buf).expect("send");
    let (answer, rx) = net.respond(&tx, &buf).expect("answer");
    assert!(p.match_answer(&answer, rx, None).is_some());
    assert!(p.match_answer(&answer, rx, None).is_none(), "duplicate");
    let mut other = Prober::new(ProbeConfig {
        dst_port: 53,
        ..cfg(Protocol::Udp)
    })
    .expect("config");
    let tx = other.send(T0, FlowId(0), 2, 60, 0, &mut buf).expect("send");
    let (answer, rx) = net.respond(&tx, &buf).expect("answer");
    assert!(p.match_answer(&answer, rx, None).is_none(), "other trace");
}

#[test]
fn deadlines_expire_in_order_and_cancel_works() {
    let mut p = Prober::new(cfg(Protocol::Icmp)).expect("config");
    let mut buf = Vec::new();
    for ttl in 1..=5u8 {
        let at = T0 + Duration::from_millis(u64::from(ttl));
        p.send(at, FlowId(0), ttl, 60, 0, &mut buf).expect("send");
    }
    assert_eq!(p.next_deadline(), Some(T0 + Duration::from_millis(1001)));
    let gone = p.expire(T0 + Duration::from_millis(1002));
    assert_eq!(gone.iter().map(|g| g.ttl).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(p.cancel_where(|f| f.ttl >= 4), 2);
    assert_eq!(p.in_flight_count(), 1);
    assert_eq!(p.next_deadline(), Some(T0 + Duration::from_millis(1003)));
    assert_eq!(p.sent_total(), 5);
}

#[test]
fn pacing_spaces_probes() {
    let mut p = Prober::new(ProbeConfig {
        rate_pps: 100,
        ..cfg(Protocol::Udp)
    })
    .expect("config");
    let mut buf = Vec::new();
    assert!(p.may_send(T0));
    p.send(T0, FlowId(0), 1, 60, 0, &mut buf).expect("send");
    assert!(!p.may_send(T0 + Duration::from_millis(9)));
    assert_eq!(p.next_send_at(), T0 + Duration::from_millis(10));
    assert!(p.may_send(T0 + Duration::from_millis(10)));
}

#[test]
fn nat_on_path_is_detected_and_still_matched() {
    for protocol in [Protocol::Udp, Protocol::Tcp, Protocol::Icmp] {
        let mut net = chain();
        net.nodes[0].nat = Some(("203.0.113.5".parse().expect("addr"), 61000));
        let mut p = Prober::new(cfg(protocol)).expect("config");
        let mut buf = Vec::new();
        let tx = p.send(T0, FlowId(0), 3, 60, 0, &mut buf).expect("send");
        let (answer, rx) = net.respond(&tx, &buf).expect("answer");
        let m = p.match_answer(&answer, rx, Some(FlowId(0))).expect("match");
        assert_eq!(m.probe.id, tx.id, "{protocol:?}");
        assert!(m.nat, "{protocol:?}");
    }
}

#[test]
fn bad_configs_are_refused() {
    let mixed = ProbeConfig {
        dst: "::1".parse().expect("addr"),
        ..cfg(Protocol::Udp)
    };
    assert!(matches!(
        Prober::new(mixed),
        Err(ConfigError::MixedFamilies { .. })
    ));
    let tiny = ProbeConfig {
        size: 20,
        ..cfg(Protocol::Udp)
    };
    assert!(matches!(
        Prober::new(tiny),
        Err(ConfigError::SizeTooSmall {
            size: 20,
            min: 30,
            ..
        })
    ));
    let _ = SimNode::router("10.0.0.1");
}

#[test]
fn tcp_reset_acknowledging_syn_data_matches_its_own_probe() {
    use crate::wire::answer::{AnswerKind, TcpReply};
    let mut p = Prober::new(cfg(Protocol::Tcp)).expect("config");
    let mut buf = Vec::new();
    let sent: Vec<Transmit> = (0..25)
        .map(|_| p.send(T0, FlowId(0), 30, 60, 0, &mut buf).expect("send"))
        .collect();
    let seq = |t: &Transmit| match t.probe.l4 {
        ProbeL4::TcpSyn { seq, .. } => seq,
        _ => unreachable!("tcp probes"),
    };
    let reply = |ack: u32, rst: bool| Answer {
        from: "10.0.9.9".parse().expect("addr"),
        reply_ttl: Some(64),
        kind: AnswerKind::Tcp(TcpReply {
            src_port: 80,
            dst_port: 40000,
            seq: 0,
            ack,
            syn: !rst,
            rst,
        }),
        icmp_type_code: None,
        quote: None,
        mpls: Vec::new(),
    };
    // 60-byte IPv4 probes carry 20 bytes after the TCP header: the reset to the third probe
    // acknowledges seq + 21, which is also seq + 1 of the 23rd.
    let (third, twenty_third) = (&sent[2], &sent[22]);
    assert_eq!(seq(third) + 21, seq(twenty_third) + 1);
    let m = p
        .match_answer(&reply(seq(third) + 21, true), T0, None)
        .expect("reset matched");
    assert_eq!(m.probe.id, third.id);
    let m = p
        .match_answer(&reply(seq(twenty_third) + 1, false), T0, None)
        .expect("syn-ack matched");
    assert_eq!(m.probe.id, twenty_third.id);
    // Wrong port or address: foreign.
    let mut foreign = reply(seq(&sent[5]) + 21, true);
    if let AnswerKind::Tcp(t) = &mut foreign.kind {
        t.dst_port = 40001;
    }
    assert!(p.match_answer(&foreign, T0, None).is_none());
}
