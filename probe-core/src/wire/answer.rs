//! Answers to path-test probes, parsed into one owned value the trace engines ingest.
//!
//! Entry points follow what each socket kind delivers:
//!
//! | socket                                  | call                        |
//! |-----------------------------------------|-----------------------------|
//! | raw IPv4 ICMP or TCP (IP header incl.)  | [`Answer::parse_ipv4`]      |
//! | packet socket / full IPv6 packet        | [`Answer::parse_ipv6`]      |
//! | IPv4 ping socket (no IP header)         | [`Answer::parse_icmpv4`]    |
//! | raw `ICMPv6` socket (no IP header)        | [`Answer::parse_icmpv6`]    |
//! | raw IPv6 TCP socket (no IP header)      | [`Answer::parse_tcp`]       |

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::tcp::{TcpFlags, TcpPacket};

use super::icmp::{IcmpKind, IcmpMessage};
use super::mpls::MplsEntry;
use super::packet_error::{PacketError, need};
use super::probe::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP};
use super::quote::Quote;
use super::reply_kind::ReplyKind;
use super::stamp::ReflectorPacket;

/// A TCP segment from the target answering a SYN probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpReply {
    /// Source port (the probed port).
    pub src_port: u16,
    /// Destination port (our probe's source port).
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (probe sequence + 1).
    pub ack: u32,
    /// SYN flag (a SYN-ACK: port open).
    pub syn: bool,
    /// RST flag (port closed).
    pub rst: bool,
}

impl TcpReply {
    /// Appends the 20-byte TCP segment (SYN-ACK or RST-ACK) with its checksum to `out`.
    ///
    /// Test support: built for probe-core's own tests and with the `test-util` feature.
    #[cfg(any(test, feature = "test-util"))]
    pub fn emit(&self, src: IpAddr, dst: IpAddr, out: &mut Vec<u8>) {
        use super::checksum::pseudo_header_checksum;
        use pnet_packet::tcp::MutableTcpPacket;

        let start = out.len();
        out.resize(start + 20, 0);
        let seg = &mut out[start..];
        if let Some(mut tcp) = MutableTcpPacket::new(seg) {
            tcp.set_source(self.src_port);
            tcp.set_destination(self.dst_port);
            tcp.set_sequence(self.seq);
            tcp.set_acknowledgement(self.ack);
            tcp.set_data_offset(5);
            let mut flags = TcpFlags::ACK;
            if self.syn {
                flags |= TcpFlags::SYN;
            }
            if self.rst {
                flags |= TcpFlags::RST;
            }
            tcp.set_flags(flags);
            tcp.set_window(if self.rst { 0 } else { 65535 });
        }
        if let Some(sum) = pseudo_header_checksum(&out[start..], 8, src, dst, PROTO_TCP) {
            out[start + 16..start + 18].copy_from_slice(&sum.to_be_bytes());
        }
    }
}

/// A UDP datagram from the target answering a UDP probe: a STAMP Session-Reflector's reply
/// (RFC 8762), which carries the first four payload bytes of the probe as the Session-Sender
/// Sequence Number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpReply {
    /// Source port (the probed port).
    pub src_port: u16,
    /// Destination port (our probe's source port).
    pub dst_port: u16,
    /// The Session-Sender Sequence Number the reflector copied from the probe.
    pub sender_seq: u32,
}

/// What kind of answer arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnswerKind {
    /// An ICMP or `ICMPv6` message.
    Icmp(IcmpKind),
    /// A TCP segment from the target.
    Tcp(TcpReply),
    /// A STAMP reply from the target.
    Udp(UdpReply),
}

impl AnswerKind {
    /// Short description ("time exceeded", "port unreachable", "tcp syn-ack", ...).
    pub fn description(&self) -> &'static str {
        ReplyKind::from(*self).as_str()
    }
}

/// A parsed answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Who answered (IP source of the answer).
    pub from: IpAddr,
    /// TTL / hop limit the answer arrived with, when known.
    pub reply_ttl: Option<u8>,
    /// What the answer says.
    pub kind: AnswerKind,
    /// Raw ICMP type and code, for ICMP answers.
    pub icmp_type_code: Option<(u8, u8)>,
    /// The quoted probe, for ICMP error messages.
    pub quote: Option<Quote>,
    /// RFC 4950 label stack from an RFC 4884 extension, if any.
    pub mpls: Vec<MplsEntry>,
}

impl Answer {
    /// Parses a whole IPv4 packet carrying ICMP or TCP.
    pub fn parse_ipv4(packet: &[u8]) -> Result<Answer, PacketError> {
        need(packet, 20, "ipv4 header")?;
        let ip = Ipv4Packet::new(packet).ok_or(PacketError::Malformed("ipv4 header"))?;
        let hl = ip.get_header_length() as usize * 4;
        if ip.get_version() != 4 || hl < 20 {
            return Err(PacketError::Malformed("ipv4 header"));
        }
        need(packet, hl, "ipv4 options")?;
        let end = (ip.get_total_length() as usize).clamp(hl, packet.len());
        let body = &packet[hl..end];
        let from = IpAddr::V4(ip.get_source());
        match ip.get_next_level_protocol().0 {
            PROTO_ICMP => Self::from_icmp(IcmpMessage::parse_v4(body)?, from, Some(ip.get_ttl())),
            PROTO_TCP => Self::parse_tcp(body, from, Some(ip.get_ttl())),
            _ => Err(PacketError::Unsupported("ip protocol")),
        }
    }

    /// Parses a whole IPv6 packet carrying `ICMPv6` or TCP (no extension headers).
    pub fn parse_ipv6(packet: &[u8]) -> Result<Answer, PacketError> {
        need(packet, 40, "ipv6 header")?;
        let ip = Ipv6Packet::new(packet).ok_or(PacketError::Malformed("ipv6 header"))?;
        if ip.get_version() != 6 {
            return Err(PacketError::Malformed("ipv6 header"));
        }
        let end = (40 + ip.get_payload_length() as usize).min(packet.len());
        let body = &packet[40..end];
        let from = IpAddr::V6(ip.get_source());
        let hl = Some(ip.get_hop_limit());
        match ip.get_next_header().0 {
            PROTO_ICMPV6 => Self::from_icmp(IcmpMessage::parse_v6(body)?, from, hl),
            PROTO_TCP => Self::parse_tcp(body, from, hl),
            _ => Err(PacketError::Unsupported("ipv6 next header")),
        }
    }

    /// Parses an `ICMPv4` message without IP header (ping sockets).
    pub fn parse_icmpv4(
        msg: &[u8],
        from: Ipv4Addr,
        ttl: Option<u8>,
    ) -> Result<Answer, PacketError> {
        Self::from_icmp(IcmpMessage::parse_v4(msg)?, IpAddr::V4(from), ttl)
    }

    /// Parses an `ICMPv6` message without IP header (raw `ICMPv6` sockets).
    pub fn parse_icmpv6(
        msg: &[u8],
        from: Ipv6Addr,
        hop_limit: Option<u8>,
    ) -> Result<Answer, PacketError> {
        Self::from_icmp(IcmpMessage::parse_v6(msg)?, IpAddr::V6(from), hop_limit)
    }

    /// Parses a TCP segment from `from`; only SYN-ACK and RST answers are accepted.
    pub fn parse_tcp(seg: &[u8], from: IpAddr, ttl: Option<u8>) -> Result<Answer, PacketError> {
        need(seg, 20, "tcp header")?;
        let tcp = TcpPacket::new(seg).ok_or(PacketError::Malformed("tcp header"))?;
        let flags = tcp.get_flags();
        let syn = flags & TcpFlags::SYN != 0;
        let rst = flags & TcpFlags::RST != 0;
        let ack = flags & TcpFlags::ACK != 0;
        if !(rst || syn && ack) {
            return Err(PacketError::Unsupported(
                "tcp segment other than syn-ack or rst",
            ));
        }
        Ok(Answer {
            from,
            reply_ttl: ttl,
            kind: AnswerKind::Tcp(TcpReply {
                src_port: tcp.get_source(),
                dst_port: tcp.get_destination(),
                seq: tcp.get_sequence(),
                ack: tcp.get_acknowledgement(),
                syn,
                rst,
            }),
            icmp_type_code: None,
            quote: None,
            mpls: Vec::new(),
        })
    }

    /// Parses the payload of a UDP datagram from `from` to our port `local_port` as a STAMP
    /// reflector's reply (at least the 44-byte unauthenticated base packet).
    pub fn parse_stamp_reply(
        payload: &[u8],
        from: std::net::SocketAddr,
        local_port: u16,
        ttl: Option<u8>,
    ) -> Result<Answer, PacketError> {
        let reply = ReflectorPacket::new_checked(payload)
            .map_err(|_| PacketError::Malformed("stamp reply shorter than 44 bytes"))?;
        Ok(Answer {
            from: from.ip().to_canonical(),
            reply_ttl: ttl,
            kind: AnswerKind::Udp(UdpReply {
                src_port: from.port(),
                dst_port: local_port,
                sender_seq: reply.sender_sequence_number(),
            }),
            icmp_type_code: None,
            quote: None,
            mpls: Vec::new(),
        })
    }

    fn from_icmp(
        msg: IcmpMessage<'_>,
        from: IpAddr,
        ttl: Option<u8>,
    ) -> Result<Answer, PacketError> {
        if !msg.checksum_ok {
            return Err(PacketError::Malformed("icmp checksum"));
        }
        let quote = match msg.kind {
            k if k.is_error() => Some(Quote::parse(msg.original)?),
            IcmpKind::EchoReply { .. } => None,
            _ => return Err(PacketError::Unsupported("icmp type")),
        };
        Ok(Answer {
            from,
            reply_ttl: ttl,
            kind: AnswerKind::Icmp(msg.kind),
            icmp_type_code: Some((msg.icmp_type, msg.code)),
            quote,
            mpls: msg
                .extensions
                .and_then(|e| e.mpls_stack())
                .unwrap_or_default(),
        })
    }
}

/// Appends an IPv4 header (no options, checksum filled) and `payload` to `out`: how answers
/// look on a raw IPv4 socket. Used by simulations and benchmarks.
///
/// Test support: built for probe-core's own tests and with the `test-util` feature.
#[cfg(any(test, feature = "test-util"))]
pub fn emit_ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    protocol: u8,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    use pnet_packet::ipv4::{self, MutableIpv4Packet};

    let start = out.len();
    out.resize(start + 20, 0);
    if let Some(mut ip) = MutableIpv4Packet::new(&mut out[start..]) {
        ip.set_version(4);
        ip.set_header_length(5);
        ip.set_total_length((20 + payload.len()) as u16);
        ip.set_ttl(ttl);
        ip.set_next_level_protocol(pnet_packet::ip::IpNextHeaderProtocol(protocol));
        ip.set_source(src);
        ip.set_destination(dst);
        let sum = ipv4::checksum(&ip.to_immutable());
        ip.set_checksum(sum);
    }
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::icmp::{Unreachable, emit_echo_reply, emit_error};
    use crate::wire::icmp_ext::emit_mpls;
    use crate::wire::probe::{ProbeL4, ProbePacket};
    use crate::wire::quote::QuotedL4;

    fn probe() -> ProbePacket {
        ProbePacket {
            src: "10.0.0.1".parse().expect("addr"),
            dst: "10.0.9.9".parse().expect("addr"),
            ttl: 1,
            tos: 0,
            ip_id: 77,
            flow_label: 0,
            dont_fragment: true,
            l4: ProbeL4::Udp {
                src_port: 40000,
                dst_port: 33434,
            },
            size: 60,
            l4_checksum: Some(0x4242),
        }
    }

    #[test]
    fn time_exceeded_ipv4_packet_with_mpls() {
        let mut sent = Vec::new();
        probe().emit_ip(&mut sent).expect("emit");
        let mut ext = Vec::new();
        let stack = [MplsEntry {
            label: 1000,
            tc: 0,
            bottom: true,
            ttl: 1,
        }];
        emit_mpls(&stack, &mut ext);
        let mut icmp = Vec::new();
        emit_error(false, 11, 0, 0, &sent[..28], Some(&ext), &mut icmp);
        let mut pkt = Vec::new();
        let router = Ipv4Addr::new(10, 0, 1, 1);
        emit_ipv4(
            router,
            Ipv4Addr::new(10, 0, 0, 1),
            254,
            PROTO_ICMP,
            &icmp,
            &mut pkt,
        );
        let a = Answer::parse_ipv4(&pkt).expect("answer");
        assert_eq!(a.from, IpAddr::V4(router));
        assert_eq!(a.reply_ttl, Some(254));
        assert_eq!(a.kind.description(), "time exceeded");
        assert_eq!(a.icmp_type_code, Some((11, 0)));
        assert_eq!(a.mpls, stack);
        let q = a.quote.expect("quote");
        assert_eq!(q.ip_id, 77);
        assert_eq!(
            q.l4,
            QuotedL4::Udp {
                src_port: 40000,
                dst_port: 33434,
                length: 40,
                checksum: 0x4242
            }
        );
    }

    #[test]
    fn echo_reply_and_admin_prohibited() {
        let mut icmp = Vec::new();
        emit_echo_reply(false, 5, 6, &[0; 8], &mut icmp);
        let a = Answer::parse_icmpv4(&icmp, Ipv4Addr::new(10, 0, 9, 9), None).expect("answer");
        assert_eq!(
            a.kind,
            AnswerKind::Icmp(IcmpKind::EchoReply { ident: 5, seq: 6 })
        );
        assert!(a.quote.is_none());
        let mut sent = Vec::new();
        probe().emit_ip(&mut sent).expect("emit");
        icmp.clear();
        emit_error(false, 3, 13, 0, &sent[..28], None, &mut icmp);
        let a = Answer::parse_icmpv4(&icmp, Ipv4Addr::new(10, 0, 2, 1), Some(63)).expect("answer");
        assert_eq!(
            a.kind,
            AnswerKind::Icmp(IcmpKind::Unreachable(Unreachable::AdminProhibited))
        );
        icmp[2] ^= 1; // corrupt the checksum
        assert!(Answer::parse_icmpv4(&icmp, Ipv4Addr::LOCALHOST, None).is_err());
    }

    #[test]
    fn tcp_syn_ack_and_rst_over_ipv4_and_ipv6() {
        let src: IpAddr = "10.0.9.9".parse().expect("addr");
        let dst: IpAddr = "10.0.0.1".parse().expect("addr");
        let reply = TcpReply {
            src_port: 80,
            dst_port: 40001,
            seq: 9,
            ack: 0x1_0001,
            syn: true,
            rst: false,
        };
        let mut seg = Vec::new();
        reply.emit(src, dst, &mut seg);
        assert!(ProbePacket::l4_checksum_valid(
            &seg,
            &ProbeL4::TcpSyn {
                src_port: 0,
                dst_port: 0,
                seq: 0
            },
            src,
            dst
        ));
        let mut pkt = Vec::new();
        emit_ipv4(
            Ipv4Addr::new(10, 0, 9, 9),
            Ipv4Addr::new(10, 0, 0, 1),
            60,
            PROTO_TCP,
            &seg,
            &mut pkt,
        );
        let a = Answer::parse_ipv4(&pkt).expect("answer");
        assert_eq!(a.kind, AnswerKind::Tcp(reply));
        assert_eq!(a.kind.description(), "tcp syn-ack");
        let rst = TcpReply {
            syn: false,
            rst: true,
            ..reply
        };
        let v6: IpAddr = "2001:db8::9".parse().expect("addr");
        seg.clear();
        rst.emit(v6, "2001:db8::1".parse().expect("addr"), &mut seg);
        let a = Answer::parse_tcp(&seg, v6, None).expect("answer");
        assert_eq!(a.kind.description(), "tcp rst");
        // A bare ACK is not an answer to a SYN probe.
        seg[13] = TcpFlags::ACK;
        assert!(Answer::parse_tcp(&seg, v6, None).is_err());
    }

    #[test]
    fn ipv6_packet_too_big() {
        let src: Ipv6Addr = "2001:db8::1".parse().expect("addr");
        let router: Ipv6Addr = "2001:db8:1::1".parse().expect("addr");
        let mut p = probe();
        p.src = IpAddr::V6(src);
        p.dst = "2001:db8::9".parse().expect("addr");
        p.size = 1500;
        let mut sent = Vec::new();
        p.emit_ip(&mut sent).expect("emit");
        let mut icmp = Vec::new();
        emit_error(true, 2, 0, 1400, &sent[..1232], None, &mut icmp);
        crate::wire::icmp::fill_icmpv6_checksum(&mut icmp, router, src);
        let a = Answer::parse_icmpv6(&icmp, router, Some(64)).expect("answer");
        assert_eq!(
            a.kind,
            AnswerKind::Icmp(IcmpKind::PacketTooBig { mtu: 1400 })
        );
        assert_eq!(a.quote.expect("quote").total_len, 1500);
    }

    /// Arbitrary bytes shaped like ICMP errors (valid first octets, random rest, random
    /// lengths) never panic any parser.
    #[test]
    fn arbitrary_answers_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0xa11);
        let v4 = "10.0.0.1".parse().expect("addr");
        let v6 = "fd00::1".parse().expect("addr");
        for i in 0..10_000u32 {
            let len = rng.random_range(0..400);
            let mut b: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if len > 28 && i % 3 == 0 {
                // An IPv4 header carrying ICMP time exceeded / unreachable with a random quote.
                b[0] = 0x45;
                b[9] = 1;
                b[20] = if i % 2 == 0 { 11 } else { 3 };
                if len > 48 {
                    b[28] = 0x45;
                }
            }
            let _ = Answer::parse_ipv4(&b);
            let _ = Answer::parse_ipv6(&b);
            let _ = Answer::parse_icmpv4(&b, v4, Some(64));
            let _ = Answer::parse_icmpv6(&b, v6, None);
            let _ = Answer::parse_tcp(&b, IpAddr::V4(v4), None);
        }
    }
}
