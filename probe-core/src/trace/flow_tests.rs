//! Tests for [`super`]: flow invariance, probe id carriage, recognition and NAT reversal.

use super::*;
use crate::wire::answer::TcpReply;
use crate::wire::checksum::pseudo_header_checksum;
use crate::wire::packet_error::be16;
use crate::wire::probe::PROTO_UDP;

fn spec(protocol: Protocol, mode: FlowMode) -> FlowSpec {
    FlowSpec {
        protocol,
        mode,
        src: "192.0.2.1".parse().expect("addr"),
        dst: "198.51.100.9".parse().expect("addr"),
        src_port: 40000,
        dst_port: if protocol == Protocol::Tcp { 80 } else { 33434 },
        icmp_ident: 0x4242,
        tcp_nonce: 0xA5A5,
        ip_id_is_probe_id: true,
    }
}

/// The fields a per-flow load balancer hashes: addresses, protocol, first 4 L4 bytes,
/// flow label.
fn hashed(p: &ProbePacket) -> (IpAddr, IpAddr, u8, [u8; 4], u32) {
    let mut seg = Vec::new();
    p.emit_l4(&mut seg).expect("emit");
    let first4 = [seg[0], seg[1], seg[2], seg[3]];
    (
        p.src,
        p.dst,
        p.l4.protocol(p.is_ipv6()),
        first4,
        p.flow_label,
    )
}

fn quote_of(p: &ProbePacket) -> Quote {
    let mut ip = Vec::new();
    p.emit_ip(&mut ip).expect("emit");
    Quote::parse(&ip[..28]).expect("quote")
}

#[test]
fn paris_keeps_hashed_fields_constant_per_flow() {
    for proto in [Protocol::Udp, Protocol::Icmp, Protocol::Tcp] {
        let s = spec(proto, FlowMode::Paris);
        let a = s.probe(FlowId(3), ProbeId(10), 5, 60);
        let b = s.probe(FlowId(3), ProbeId(11), 6, 60);
        let c = s.probe(FlowId(4), ProbeId(12), 5, 60);
        assert_eq!(hashed(&a), hashed(&b), "{proto:?} same flow");
        assert_ne!(hashed(&a), hashed(&c), "{proto:?} other flow");
    }
}

#[test]
fn classic_changes_flow_with_every_probe() {
    for proto in [Protocol::Udp, Protocol::Icmp, Protocol::Tcp] {
        let s = spec(proto, FlowMode::Classic);
        let a = s.probe(FlowId(0), ProbeId(10), 5, 60);
        let b = s.probe(FlowId(0), ProbeId(11), 5, 60);
        assert_ne!(hashed(&a), hashed(&b), "{proto:?}");
    }
    let s = spec(Protocol::Udp, FlowMode::Classic);
    assert_eq!(
        s.probe(FlowId(0), ProbeId(3), 1, 60).l4,
        ProbeL4::Udp {
            src_port: 40000,
            dst_port: 33436
        }
    );
}

#[test]
fn probe_id_rides_on_unhashed_fields_and_is_recognised() {
    for mode in [FlowMode::Paris, FlowMode::Classic] {
        for proto in [Protocol::Udp, Protocol::Icmp, Protocol::Tcp] {
            let s = spec(proto, mode);
            for id in [1u16, 2, 777, 0xFFFE] {
                let p = s.probe(FlowId(9), ProbeId(id), 4, 60);
                let rec = s.recognise_quote(&quote_of(&p)).expect("ours");
                assert_eq!(rec.id, ProbeId(id), "{proto:?} {mode:?}");
                assert_eq!(
                    rec.seen_src,
                    Some((s.src, Some(s.nat_port(FlowId(9), ProbeId(id)))))
                );
            }
        }
    }
}

#[test]
fn foreign_quotes_are_not_recognised() {
    let s = spec(Protocol::Icmp, FlowMode::Paris);
    let mut q = quote_of(&s.probe(FlowId(0), ProbeId(5), 1, 60));
    q.dst = "198.51.100.10".parse().expect("addr");
    assert!(s.recognise_quote(&q).is_none());
    let mut other = s;
    other.icmp_ident = 1;
    assert!(
        other
            .recognise_quote(&quote_of(&s.probe(FlowId(0), ProbeId(5), 1, 60)))
            .is_none()
    );
    let t = spec(Protocol::Tcp, FlowMode::Paris);
    let mut stale = t;
    stale.tcp_nonce = 1;
    assert!(
        t.recognise_quote(&quote_of(&stale.probe(FlowId(0), ProbeId(5), 1, 60)))
            .is_none()
    );
    let u = spec(Protocol::Udp, FlowMode::Paris);
    let mut port = u;
    port.dst_port = 53;
    assert!(
        u.recognise_quote(&quote_of(&port.probe(FlowId(0), ProbeId(5), 1, 60)))
            .is_none()
    );
}

#[test]
fn echo_reply_and_tcp_replies_are_recognised() {
    let s = spec(Protocol::Icmp, FlowMode::Paris);
    let a = Answer {
        from: s.dst,
        reply_ttl: None,
        kind: AnswerKind::Icmp(IcmpKind::EchoReply {
            ident: 0x4242,
            seq: 99,
        }),
        icmp_type_code: Some((0, 0)),
        quote: None,
        mpls: Vec::new(),
    };
    assert_eq!(s.recognise(&a).map(|r| r.id), Some(ProbeId(99)));
    let mut elsewhere = a.clone();
    elsewhere.from = s.src;
    assert!(s.recognise(&elsewhere).is_none());

    let t = spec(Protocol::Tcp, FlowMode::Paris);
    let ProbeL4::TcpSyn { seq, src_port, .. } = t.probe(FlowId(1), ProbeId(321), 9, 40).l4 else {
        unreachable!()
    };
    assert_eq!(seq, 0xA5A5_0141);
    let reply = TcpReply {
        src_port: 80,
        dst_port: src_port,
        seq: 1,
        ack: seq + 1,
        syn: true,
        rst: false,
    };
    let a = Answer {
        from: t.dst,
        kind: AnswerKind::Tcp(reply),
        icmp_type_code: None,
        ..a
    };
    assert_eq!(t.recognise(&a).map(|r| r.id), Some(ProbeId(321)));
}

#[test]
fn icmp_paris_checksum_is_the_flow_and_constant() {
    let s = spec(Protocol::Icmp, FlowMode::Paris);
    for id in [1u16, 500, 60000] {
        let mut seg = Vec::new();
        s.probe(FlowId(7), ProbeId(id), 3, 60)
            .emit_l4(&mut seg)
            .expect("emit");
        assert_eq!(be16(&seg, 2), icmp_flow_checksum(FlowId(7)));
        assert_eq!(be16(&seg, 6), id);
    }
}

#[test]
fn nat_rewritten_udp_quote_is_reversed() {
    let s = spec(Protocol::Udp, FlowMode::Paris);
    let flow = FlowId(2);
    let p = s.probe(flow, ProbeId(1234), 3, 60);
    let mut ip = Vec::new();
    p.emit_ip(&mut ip).expect("emit");
    // A NAT rewrites source address and port and fixes the UDP checksum, as conntrack does.
    let public: std::net::Ipv4Addr = "203.0.113.77".parse().expect("addr");
    ip[12..16].copy_from_slice(&public.octets());
    ip[20..22].copy_from_slice(&61000u16.to_be_bytes());
    let sum =
        pseudo_header_checksum(&ip[20..], 3, public.into(), p.dst, PROTO_UDP).expect("same family");
    ip[26..28].copy_from_slice(&sum.to_be_bytes());
    let rec = s
        .recognise_quote(&Quote::parse(&ip[..28]).expect("quote"))
        .expect("ours");
    assert_ne!(rec.id, ProbeId(1234), "the checksum was rewritten");
    assert_eq!(rec.seen_src, Some((IpAddr::V4(public), Some(61000))));
    assert_eq!(rec.alt, Some(ProbeId(1234)), "ip id fallback");
    assert_eq!(s.unnat_udp_id(&rec, flow), Some(ProbeId(1234)));
}

#[test]
fn probe_ids_skip_special_checksums() {
    assert_eq!(ProbeId(0xFFFD).next(), ProbeId(0xFFFE));
    assert_eq!(ProbeId(0xFFFE).next(), ProbeId(1));
    assert_eq!(icmp_flow_checksum(FlowId(0)), 1);
    assert_eq!(icmp_flow_checksum(FlowId(0xFFFE)), 1);
    assert_eq!(icmp_flow_checksum(FlowId(0xFFFD)), 0xFFFE);
}
