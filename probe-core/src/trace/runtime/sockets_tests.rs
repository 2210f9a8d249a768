//! Tests of the socket-free parts of [`super`]: rebuilding answers from error-queue reports.

use super::*;
use crate::io::TimestampSource;
use crate::trace::flow::{FlowId, FlowMode, Protocol};
use crate::trace::prober::{ProbeConfig, Prober};
use crate::wire::icmp::Unreachable;

const SRC: &str = "198.18.0.1";
const DST: &str = "198.18.5.2";
const ROUTER: &str = "198.18.1.2";

fn icmp_error(icmp_type: u8, code: u8, info: u32, dst_port: u16, payload_len: usize) -> IcmpError {
    IcmpError {
        icmpv6: false,
        offender: Some(ROUTER.parse().expect("addr")),
        icmp_type,
        icmp_code: code,
        info,
        errno: libc::EHOSTUNREACH,
        original_dst: Some(SocketAddr::new(DST.parse().expect("addr"), dst_port)),
        payload_len,
        time: Nanos(5_000),
        time_source: TimestampSource::Kernel,
        ttl: Some(63),
    }
}

/// The target's address with `port`.
fn dst_addr(port: u16) -> SocketAddr {
    SocketAddr::new(DST.parse().expect("addr"), port)
}

/// The answer an error-queue report stands for, from our source `SRC`.
fn answer(e: &IcmpError, payload: &[u8], errors: Errors, udp: &UdpChecksums) -> Option<Answer> {
    error_answer(e, payload, errors, SRC.parse().expect("addr"), udp)
}

/// A prober shaped like an unprivileged UDP trace from port 40000.
fn udp_prober(mode: FlowMode) -> Prober {
    let mut cfg = ProbeConfig::new(
        Protocol::Udp,
        SRC.parse().expect("addr"),
        DST.parse().expect("addr"),
    );
    cfg.mode = mode;
    cfg.src_port = 40000;
    Prober::new(cfg).expect("config")
}

#[test]
fn udp_time_exceeded_from_the_error_queue_matches_its_probe() {
    let mut prober = udp_prober(FlowMode::Paris);
    let mut udp = UdpChecksums::default();
    let mut segments = Vec::new();
    for ttl in 1..=3 {
        let mut buf = Vec::new();
        let tx = prober
            .send(Nanos(1_000), FlowId(0), ttl, 60, 0, &mut buf)
            .expect("probe");
        udp.record(40000, dst_addr(33434), &buf);
        segments.push((tx.id, buf));
    }
    // The error about the second probe quotes its payload (after the UDP header).
    let (id, seg) = &segments[1];
    let e = icmp_error(11, 0, 0, 33434, seg.len() - 8);
    let a = answer(&e, &seg[8..], Errors::Udp { port: 40000 }, &udp).expect("answer");
    assert_eq!(a.from, ROUTER.parse::<IpAddr>().expect("addr"));
    assert_eq!(a.kind, AnswerKind::Icmp(IcmpKind::TimeExceeded { code: 0 }));
    assert_eq!(a.reply_ttl, Some(63));
    let m = prober
        .match_answer(&a, Nanos(2_000), Some(FlowId(0)))
        .expect("matched");
    assert_eq!(m.probe.id, *id);
    assert_eq!(m.probe.ttl, 2);
    assert!(!m.nat);
    // No payload quoted: in Paris mode three probes share the ports, so nothing matches.
    let bare = icmp_error(11, 0, 0, 33434, 0);
    assert!(answer(&bare, &[], Errors::Udp { port: 40000 }, &udp).is_none());
}

#[test]
fn classic_udp_matches_by_port_without_payload() {
    let mut prober = udp_prober(FlowMode::Classic);
    let mut udp = UdpChecksums::default();
    let mut buf = Vec::new();
    let mut sent = Vec::new();
    for ttl in 1..=2 {
        let tx = prober
            .send(Nanos(1_000), FlowId(0), ttl, 60, 0, &mut buf)
            .expect("probe");
        let dst_port = udp_dst_port(&tx.probe.l4);
        udp.record(40000, dst_addr(dst_port), &buf);
        sent.push((tx.id, dst_port));
    }
    let (id, dst_port) = sent[1];
    // Port unreachable from the target, nothing quoted after the UDP header.
    let mut e = icmp_error(3, 3, 0, dst_port, 0);
    e.offender = Some(DST.parse().expect("addr"));
    let a = answer(&e, &[], Errors::Udp { port: 40000 }, &udp).expect("answer");
    assert_eq!(
        a.kind,
        AnswerKind::Icmp(IcmpKind::Unreachable(Unreachable::Port))
    );
    let m = prober
        .match_answer(&a, Nanos(2_000), None)
        .expect("matched");
    assert_eq!(m.probe.id, id);
}

fn udp_dst_port(l4: &crate::wire::probe::ProbeL4) -> u16 {
    match l4 {
        crate::wire::probe::ProbeL4::Udp { dst_port, .. } => *dst_port,
        other => panic!("not udp: {other:?}"),
    }
}

#[test]
fn ping_socket_errors_rebuild_the_echo_quote() {
    // Frag needed with next-hop MTU 1400 about echo request ident 0x1234, seq 7.
    let quoted = [8u8, 0, 0xab, 0xcd, 0x12, 0x34, 0, 7];
    let e = icmp_error(3, 4, 1400, 0, quoted.len());
    let a = answer(&e, &quoted, Errors::Ping, &UdpChecksums::default()).expect("answer");
    assert_eq!(
        a.kind,
        AnswerKind::Icmp(IcmpKind::Unreachable(Unreachable::FragNeeded { mtu: 1400 }))
    );
    let q = a.quote.expect("quote");
    assert_eq!(
        q.l4,
        QuotedL4::IcmpEcho {
            checksum: 0xabcd,
            ident: 0x1234,
            seq: 7
        }
    );
    assert_eq!(q.dst, DST.parse::<IpAddr>().expect("addr"));
    assert_eq!(q.protocol, PROTO_ICMP);
    // Fewer than 8 quoted bytes, or no offender: no answer.
    assert!(answer(&e, &quoted[..4], Errors::Ping, &UdpChecksums::default()).is_none());
    let mut anonymous = e;
    anonymous.offender = None;
    assert!(answer(&anonymous, &quoted, Errors::Ping, &UdpChecksums::default()).is_none());
    // ICMPv6 packet too big carries the MTU in the info field.
    let mut v6 = e;
    v6.icmpv6 = true;
    v6.icmp_type = 2;
    v6.icmp_code = 0;
    let a = answer(&v6, &quoted, Errors::Ping, &UdpChecksums::default()).expect("answer");
    assert_eq!(
        a.kind,
        AnswerKind::Icmp(IcmpKind::PacketTooBig { mtu: 1400 })
    );
    assert_eq!(a.quote.expect("quote").protocol, PROTO_ICMPV6);
}

#[test]
fn datagrams_parse_by_socket_kind() {
    let mut reply = Vec::new();
    crate::wire::icmp::emit_echo_reply(false, 9, 10, &[0; 8], &mut reply);
    let meta = RecvMeta {
        len: reply.len(),
        source: Some(SocketAddr::new(DST.parse().expect("addr"), 0)),
        ttl: Some(60),
        ..RecvMeta::default()
    };
    let a = parse_datagram(Parse::Icmpv4, &reply, &meta).expect("echo reply");
    assert_eq!(
        a.kind,
        AnswerKind::Icmp(IcmpKind::EchoReply { ident: 9, seq: 10 })
    );
    assert_eq!(a.reply_ttl, Some(60));
    assert!(parse_datagram(Parse::Ignore, &reply, &meta).is_none());
    // An IPv4 source cannot carry an ICMPv6 message.
    assert!(parse_datagram(Parse::Icmpv6, &reply, &meta).is_none());
}
