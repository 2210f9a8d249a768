//! Path-test probes: ICMP echo request, UDP datagram and TCP SYN, for IPv4 and IPv6.
//!
//! A [`ProbePacket`] emits either the whole IP packet (raw sockets with `IP_HDRINCL`, IPv6 raw
//! sockets that take the header) or the L4 segment alone (sockets where the kernel adds the IP
//! header). Both carry correct checksums, including the IPv6 pseudo-header. The L4 checksum can
//! be steered to a chosen value through the first payload word, which is how Paris traceroute
//! identifies probes without touching fields that load balancers hash.
//!
//! Layout of what is emitted (`size` is the whole IP packet, as traceroute's packet length):
//!
//! ```text
//! [ IPv4 (20) | IPv6 (40) ] [ ICMP echo (8) | UDP (8) | TCP (20) ] [ steer word (2) | zeros ]
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pnet_packet::ipv4::{self, Ipv4Flags, Ipv4Packet, MutableIpv4Packet};
use pnet_packet::ipv6::{Ipv6Packet, MutableIpv6Packet};
use pnet_packet::tcp::{MutableTcpPacket, TcpFlags, TcpPacket};
use pnet_packet::udp::{MutableUdpPacket, UdpPacket};

use super::checksum::{plain_checksum, pseudo_header_checksum, steer_word};
use super::packet_error::{PacketError, be16, need};

/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IP protocol (next header) number of `ICMPv6`.
pub const PROTO_ICMPV6: u8 = 58;

/// The layer-4 part of a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeL4 {
    /// ICMP (IPv4) or `ICMPv6` (IPv6) echo request.
    IcmpEcho {
        /// Identifier field.
        ident: u16,
        /// Sequence number field.
        seq: u16,
    },
    /// UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// TCP segment with only SYN set.
    TcpSyn {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Sequence number.
        seq: u32,
    },
}

impl ProbeL4 {
    /// Length of the L4 header: 8 for ICMP echo and UDP, 20 for TCP.
    pub const fn header_len(&self) -> usize {
        match self {
            ProbeL4::IcmpEcho { .. } | ProbeL4::Udp { .. } => 8,
            ProbeL4::TcpSyn { .. } => 20,
        }
    }

    /// Index of the 16-bit checksum word inside the L4 header.
    pub const fn checksum_word(&self) -> usize {
        match self {
            ProbeL4::IcmpEcho { .. } => 1,
            ProbeL4::Udp { .. } => 3,
            ProbeL4::TcpSyn { .. } => 8,
        }
    }

    /// IP protocol number for this L4 in the given family.
    pub const fn protocol(&self, ipv6: bool) -> u8 {
        match self {
            ProbeL4::IcmpEcho { .. } if ipv6 => PROTO_ICMPV6,
            ProbeL4::IcmpEcho { .. } => PROTO_ICMP,
            ProbeL4::Udp { .. } => PROTO_UDP,
            ProbeL4::TcpSyn { .. } => PROTO_TCP,
        }
    }
}

/// A probe to emit, or one parsed back from bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbePacket {
    /// Source address (needed for the pseudo-header even when the kernel writes the IP header).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 TOS or IPv6 traffic class.
    pub tos: u8,
    /// IPv4 identification (ignored for IPv6).
    pub ip_id: u16,
    /// IPv6 flow label, 20 bits (ignored for IPv4).
    pub flow_label: u32,
    /// IPv4 DF bit (IPv6 never fragments in the network).
    pub dont_fragment: bool,
    /// The L4 header fields.
    pub l4: ProbeL4,
    /// Whole IP packet length in bytes (IP header + L4 header + payload).
    pub size: u16,
    /// When set, the first payload word is chosen so that the L4 checksum equals this value.
    /// When parsing, holds the checksum found in the packet.
    pub l4_checksum: Option<u16>,
}

impl ProbePacket {
    /// A probe with TTL 64, no DF, zero TOS/id/flow label and no checksum steering.
    pub const fn new(src: IpAddr, dst: IpAddr, l4: ProbeL4, size: u16) -> Self {
        ProbePacket {
            src,
            dst,
            ttl: 64,
            tos: 0,
            ip_id: 0,
            flow_label: 0,
            dont_fragment: false,
            l4,
            size,
            l4_checksum: None,
        }
    }

    /// Whether this is an IPv6 probe.
    pub const fn is_ipv6(&self) -> bool {
        self.dst.is_ipv6()
    }

    /// IP header length: 20 (IPv4 without options) or 40 (IPv6).
    pub const fn ip_header_len(&self) -> usize {
        if self.is_ipv6() { 40 } else { 20 }
    }

    /// Length of the L4 segment (header + payload).
    pub fn l4_len(&self) -> usize {
        (self.size as usize).saturating_sub(self.ip_header_len())
    }

    /// Smallest `size` that can carry this probe (with the steering word when steering).
    pub fn min_size(&self) -> usize {
        let steer = if self.l4_checksum.is_some() { 2 } else { 0 };
        self.ip_header_len() + self.l4.header_len() + steer
    }

    /// Writes the L4 segment (header and payload, checksum filled) into `out`, replacing its
    /// contents.
    pub fn emit_l4(&self, out: &mut Vec<u8>) -> Result<(), PacketError> {
        if (self.size as usize) < self.min_size() {
            return Err(PacketError::Truncated {
                what: "probe size",
                need: self.min_size(),
                have: self.size as usize,
            });
        }
        if self.src.is_ipv6() != self.dst.is_ipv6() {
            return Err(PacketError::Malformed("probe mixes address families"));
        }
        out.clear();
        out.resize(self.l4_len(), 0);
        self.write_l4_header(out)?;
        let sum_word = self.l4.checksum_word();
        let checksum = self.l4_checksum_of(out)?;
        let checksum = match self.l4_checksum {
            Some(target) => {
                let steer_at = self.l4.header_len();
                let word = steer_word(checksum, target);
                out[steer_at..steer_at + 2].copy_from_slice(&word.to_be_bytes());
                self.l4_checksum_of(out)?
            }
            None => checksum,
        };
        // UDP transmits a computed zero as all ones (RFC 768).
        let checksum = if checksum == 0 && matches!(self.l4, ProbeL4::Udp { .. }) {
            0xFFFF
        } else {
            checksum
        };
        out[sum_word * 2..sum_word * 2 + 2].copy_from_slice(&checksum.to_be_bytes());
        Ok(())
    }

    /// Writes the whole IP packet (header, L4 header, payload) into `out`, replacing its contents.
    pub fn emit_ip(&self, out: &mut Vec<u8>) -> Result<(), PacketError> {
        let mut l4 = Vec::with_capacity(self.l4_len());
        self.emit_l4(&mut l4)?;
        out.clear();
        out.resize(self.ip_header_len(), 0);
        out.extend_from_slice(&l4);
        let protocol = pnet_packet::ip::IpNextHeaderProtocol(self.l4.protocol(self.is_ipv6()));
        match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let mut ip =
                    MutableIpv4Packet::new(out).ok_or(PacketError::Malformed("ipv4 buffer"))?;
                ip.set_version(4);
                ip.set_header_length(5);
                ip.set_dscp(self.tos >> 2);
                ip.set_ecn(self.tos & 3);
                ip.set_total_length(self.size);
                ip.set_identification(self.ip_id);
                ip.set_flags(if self.dont_fragment {
                    Ipv4Flags::DontFragment
                } else {
                    0
                });
                ip.set_ttl(self.ttl);
                ip.set_next_level_protocol(protocol);
                ip.set_source(src);
                ip.set_destination(dst);
                let sum = ipv4::checksum(&ip.to_immutable());
                ip.set_checksum(sum);
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let mut ip =
                    MutableIpv6Packet::new(out).ok_or(PacketError::Malformed("ipv6 buffer"))?;
                ip.set_version(6);
                ip.set_traffic_class(self.tos);
                ip.set_flow_label(self.flow_label & 0xF_FFFF);
                ip.set_payload_length(l4.len() as u16);
                ip.set_next_header(protocol);
                ip.set_hop_limit(self.ttl);
                ip.set_source(src);
                ip.set_destination(dst);
            }
            _ => return Err(PacketError::Malformed("probe mixes address families")),
        }
        Ok(())
    }

    /// Parses a whole IP packet carrying a probe (the inverse of [`ProbePacket::emit_ip`]).
    pub fn parse_ip(buf: &[u8]) -> Result<ProbePacket, PacketError> {
        need(buf, 1, "ip header")?;
        match buf[0] >> 4 {
            4 => {
                let ip = Ipv4Packet::new(buf).ok_or(PacketError::Truncated {
                    what: "ipv4 header",
                    need: 20,
                    have: buf.len(),
                })?;
                let hl = ip.get_header_length() as usize * 4;
                let total = ip.get_total_length() as usize;
                if hl < 20 || total < hl || total > buf.len() {
                    return Err(PacketError::Malformed("ipv4 lengths"));
                }
                let mut p = Self::parse_l4(
                    &buf[hl..total],
                    IpAddr::V4(ip.get_source()),
                    IpAddr::V4(ip.get_destination()),
                    ip.get_next_level_protocol().0,
                )?;
                p.ttl = ip.get_ttl();
                p.tos = (ip.get_dscp() << 2) | ip.get_ecn();
                p.ip_id = ip.get_identification();
                p.dont_fragment = ip.get_flags() & Ipv4Flags::DontFragment != 0;
                p.size = total as u16;
                Ok(p)
            }
            6 => {
                let ip = Ipv6Packet::new(buf).ok_or(PacketError::Truncated {
                    what: "ipv6 header",
                    need: 40,
                    have: buf.len(),
                })?;
                let total = 40 + ip.get_payload_length() as usize;
                if total > buf.len() {
                    return Err(PacketError::Malformed("ipv6 payload length"));
                }
                let mut p = Self::parse_l4(
                    &buf[40..total],
                    IpAddr::V6(ip.get_source()),
                    IpAddr::V6(ip.get_destination()),
                    ip.get_next_header().0,
                )?;
                p.ttl = ip.get_hop_limit();
                p.tos = ip.get_traffic_class();
                p.flow_label = ip.get_flow_label();
                Ok(p)
            }
            _ => Err(PacketError::Malformed("ip version")),
        }
    }

    /// Parses an L4 segment sent from `src` to `dst` (the inverse of [`ProbePacket::emit_l4`]).
    /// IP-level fields are left at defaults (TTL 0).
    pub fn parse_l4(
        seg: &[u8],
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
    ) -> Result<ProbePacket, PacketError> {
        let l4 = match protocol {
            PROTO_ICMP | PROTO_ICMPV6 => {
                need(seg, 8, "icmp echo")?;
                let echo_type = if protocol == PROTO_ICMP { 8 } else { 128 };
                if seg[0] != echo_type || seg[1] != 0 {
                    return Err(PacketError::Unsupported(
                        "icmp type other than echo request",
                    ));
                }
                ProbeL4::IcmpEcho {
                    ident: be16(seg, 4),
                    seq: be16(seg, 6),
                }
            }
            PROTO_UDP => {
                let udp = UdpPacket::new(seg).ok_or(PacketError::Truncated {
                    what: "udp header",
                    need: 8,
                    have: seg.len(),
                })?;
                ProbeL4::Udp {
                    src_port: udp.get_source(),
                    dst_port: udp.get_destination(),
                }
            }
            PROTO_TCP => {
                let tcp = TcpPacket::new(seg).ok_or(PacketError::Truncated {
                    what: "tcp header",
                    need: 20,
                    have: seg.len(),
                })?;
                if tcp.get_flags() != TcpFlags::SYN {
                    return Err(PacketError::Unsupported(
                        "tcp segment other than a bare SYN",
                    ));
                }
                ProbeL4::TcpSyn {
                    src_port: tcp.get_source(),
                    dst_port: tcp.get_destination(),
                    seq: tcp.get_sequence(),
                }
            }
            _ => return Err(PacketError::Unsupported("ip protocol")),
        };
        let sum_at = l4.checksum_word() * 2;
        let ip_len = if dst.is_ipv6() { 40 } else { 20 };
        let mut p = ProbePacket::new(src, dst, l4, (seg.len() + ip_len) as u16);
        p.ttl = 0;
        p.l4_checksum = Some(be16(seg, sum_at));
        Ok(p)
    }

    /// Whether the L4 checksum of `seg` (sent from `src` to `dst`) verifies.
    pub fn l4_checksum_valid(seg: &[u8], l4: &ProbeL4, src: IpAddr, dst: IpAddr) -> bool {
        let at = l4.checksum_word() * 2;
        if seg.len() < at + 2 {
            return false;
        }
        let probe = ProbePacket::new(src, dst, *l4, 0);
        let stored = be16(seg, at);
        probe
            .l4_checksum_of(seg)
            .is_ok_and(|c| c == stored || (c == 0 && stored == 0xFFFF))
    }

    fn write_l4_header(&self, out: &mut [u8]) -> Result<(), PacketError> {
        let len = out.len() as u16;
        match self.l4 {
            ProbeL4::IcmpEcho { ident, seq } => {
                out[0] = if self.is_ipv6() { 128 } else { 8 };
                out[1] = 0;
                out[4..6].copy_from_slice(&ident.to_be_bytes());
                out[6..8].copy_from_slice(&seq.to_be_bytes());
            }
            ProbeL4::Udp { src_port, dst_port } => {
                let mut udp =
                    MutableUdpPacket::new(out).ok_or(PacketError::Malformed("udp buffer"))?;
                udp.set_source(src_port);
                udp.set_destination(dst_port);
                udp.set_length(len);
            }
            ProbeL4::TcpSyn {
                src_port,
                dst_port,
                seq,
            } => {
                let mut tcp =
                    MutableTcpPacket::new(out).ok_or(PacketError::Malformed("tcp buffer"))?;
                tcp.set_source(src_port);
                tcp.set_destination(dst_port);
                tcp.set_sequence(seq);
                tcp.set_data_offset(5);
                tcp.set_flags(TcpFlags::SYN);
                tcp.set_window(64240);
            }
        }
        Ok(())
    }

    /// The checksum `seg` should carry (its own checksum field counts as zero).
    fn l4_checksum_of(&self, seg: &[u8]) -> Result<u16, PacketError> {
        let word = self.l4.checksum_word();
        let protocol = self.l4.protocol(self.is_ipv6());
        if protocol == PROTO_ICMP {
            return Ok(plain_checksum(seg, word));
        }
        pseudo_header_checksum(seg, word, self.src, self.dst, protocol)
            .ok_or(PacketError::Malformed("probe mixes address families"))
    }
}

/// Unspecified addresses of a family, handy for building probes before the source is known.
pub const fn unspecified(ipv6: bool) -> IpAddr {
    if ipv6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 sum written out independently of the code under test.
    fn rfc1071(parts: &[&[u8]]) -> u16 {
        let mut sum = 0u32;
        for p in parts {
            for c in p.chunks(2) {
                let w = if c.len() == 2 {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], 0])
                };
                sum += w as u32;
            }
        }
        while sum > 0xFFFF {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    fn udp_probe() -> ProbePacket {
        ProbePacket {
            src: v4([192, 0, 2, 1]),
            dst: v4([198, 51, 100, 7]),
            ttl: 3,
            tos: 0,
            ip_id: 0x1234,
            flow_label: 0,
            dont_fragment: true,
            l4: ProbeL4::Udp {
                src_port: 40000,
                dst_port: 33434,
            },
            size: 32,
            l4_checksum: Some(0xBEEF),
        }
    }

    #[test]
    fn ipv4_udp_bytes_match_rfc_layout() {
        let mut out = Vec::new();
        udp_probe().emit_ip(&mut out).expect("emit");
        assert_eq!(out.len(), 32);
        // RFC 791: ver/ihl, tos, total length, id, flags(DF)/frag, ttl, proto, csum, src, dst.
        let mut hdr = vec![
            0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x03, 17, 0x00, 0x00, 192, 0, 2, 1,
            198, 51, 100, 7,
        ];
        let csum = rfc1071(&[&hdr]);
        hdr[10..12].copy_from_slice(&csum.to_be_bytes());
        assert_eq!(&out[..20], &hdr[..]);
        // RFC 768: ports 40000 (0x9c40) -> 33434 (0x829a), length 12, checksum steered to 0xBEEF.
        assert_eq!(
            &out[20..28],
            &[0x9c, 0x40, 0x82, 0x9a, 0x00, 0x0c, 0xBE, 0xEF]
        );
        // The steer word makes the pseudo-header sum verify.
        let pseudo = [192, 0, 2, 1, 198, 51, 100, 7, 0, 17, 0, 12];
        assert_eq!(rfc1071(&[&pseudo, &out[20..]]), 0);
        assert_eq!(&out[30..], &[0, 0]);
    }

    #[test]
    fn ipv6_icmp_pseudo_header_checksum() {
        let src: IpAddr = "2001:db8::1".parse().expect("addr");
        let dst: IpAddr = "2001:db8::2".parse().expect("addr");
        let p = ProbePacket {
            src,
            dst,
            ttl: 9,
            tos: 0,
            ip_id: 0,
            flow_label: 0x12345,
            dont_fragment: false,
            l4: ProbeL4::IcmpEcho { ident: 7, seq: 513 },
            size: 52,
            l4_checksum: None,
        };
        let mut out = Vec::new();
        p.emit_ip(&mut out).expect("emit");
        // RFC 8200: version 6, flow label 0x12345, payload length 12, next header 58, hop limit 9.
        assert_eq!(&out[..8], &[0x60, 0x01, 0x23, 0x45, 0x00, 0x0c, 58, 9]);
        assert_eq!(&out[40..42], &[128, 0]);
        assert_eq!(&out[44..48], &[0, 7, 2, 1]);
        let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
            unreachable!()
        };
        let pseudo_len = [0, 0, 0, 12, 0, 0, 0, 58];
        assert_eq!(
            rfc1071(&[&s.octets(), &d.octets(), &pseudo_len, &out[40..]]),
            0
        );
    }

    #[test]
    fn steered_checksums_for_every_kind_and_family() {
        let pairs = [
            (v4([10, 0, 0, 1]), v4([10, 0, 0, 9])),
            (
                "fd00::1".parse().expect("addr"),
                "fd00::9".parse().expect("addr"),
            ),
        ];
        let kinds = [
            ProbeL4::IcmpEcho { ident: 9, seq: 77 },
            ProbeL4::Udp {
                src_port: 1,
                dst_port: 2,
            },
            ProbeL4::TcpSyn {
                src_port: 3,
                dst_port: 80,
                seq: 0xDEAD_BEEF,
            },
        ];
        for (src, dst) in pairs {
            for l4 in kinds {
                for target in [1u16, 0x1234, 0xFFFE] {
                    let p = ProbePacket {
                        src,
                        dst,
                        ttl: 64,
                        tos: 0,
                        ip_id: 5,
                        flow_label: 0,
                        dont_fragment: false,
                        l4,
                        size: 100,
                        l4_checksum: Some(target),
                    };
                    let mut seg = Vec::new();
                    p.emit_l4(&mut seg).expect("emit");
                    let at = l4.checksum_word() * 2;
                    assert_eq!(be16(&seg, at), target, "{l4:?} {dst}");
                    assert!(ProbePacket::l4_checksum_valid(&seg, &l4, src, dst));
                    let mut ip = Vec::new();
                    p.emit_ip(&mut ip).expect("emit");
                    let back = ProbePacket::parse_ip(&ip).expect("parse");
                    let mut expect = p;
                    if dst.is_ipv6() {
                        expect.ip_id = 0;
                    }
                    assert_eq!(back, expect);
                }
            }
        }
    }

    #[test]
    fn too_small_and_mixed_families_fail() {
        let mut p = udp_probe();
        p.size = 29;
        assert!(matches!(
            p.emit_l4(&mut Vec::new()),
            Err(PacketError::Truncated { need: 30, .. })
        ));
        let mut p = udp_probe();
        p.src = "::1".parse().expect("addr");
        assert!(p.emit_ip(&mut Vec::new()).is_err());
        assert!(ProbePacket::parse_ip(&[0x45, 0, 0]).is_err());
    }
}
