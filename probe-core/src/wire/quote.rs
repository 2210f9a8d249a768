//! The original datagram quoted by an ICMP error: the IP header and the first bytes of L4.
//!
//! RFC 792 routers quote the IP header and at least 8 bytes of payload, RFC 1812 and RFC 4443
//! ones as much as fits. Eight bytes are enough to read ports and the UDP checksum, the ICMP echo
//! identifier, sequence and checksum, and the TCP sequence number, which is what probe matching
//! and NAT detection need.

use std::net::IpAddr;

use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;

use super::packet_error::{PacketError, be16, be32, need};
use super::probe::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// The first L4 bytes of a quoted packet, interpreted by protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuotedL4 {
    /// UDP header.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Length field.
        length: u16,
        /// Checksum field.
        checksum: u16,
    },
    /// First 8 bytes of a TCP header.
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Sequence number.
        seq: u32,
    },
    /// ICMP or `ICMPv6` echo request header.
    IcmpEcho {
        /// Checksum field.
        checksum: u16,
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
    },
    /// Another protocol, or fewer than 8 L4 bytes quoted.
    Other,
}

/// A parsed quoted packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    /// Source address as the quoting router saw it (differs from ours behind a NAT).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol / next header.
    pub protocol: u8,
    /// TTL / hop limit as the packet arrived at the quoting router.
    pub ttl: u8,
    /// IPv4 identification (0 for IPv6).
    pub ip_id: u16,
    /// IPv6 flow label (0 for IPv4).
    pub flow_label: u32,
    /// IPv4 total length or IPv6 40 + payload length, as quoted.
    pub total_len: u16,
    /// L4 fields.
    pub l4: QuotedL4,
}

impl Quote {
    /// Parses a quoted IPv4 or IPv6 packet (version from the first nibble).
    pub fn parse(buf: &[u8]) -> Result<Quote, PacketError> {
        need(buf, 1, "quoted ip header")?;
        match buf[0] >> 4 {
            4 => Self::parse_v4(buf),
            6 => Self::parse_v6(buf),
            _ => Err(PacketError::Malformed("quoted ip version")),
        }
    }

    fn parse_v4(buf: &[u8]) -> Result<Quote, PacketError> {
        need(buf, 20, "quoted ipv4 header")?;
        let ip = Ipv4Packet::new(buf).ok_or(PacketError::Malformed("quoted ipv4 header"))?;
        let hl = ip.get_header_length() as usize * 4;
        if hl < 20 {
            return Err(PacketError::Malformed("quoted ipv4 header length"));
        }
        need(buf, hl, "quoted ipv4 options")?;
        let protocol = ip.get_next_level_protocol().0;
        Ok(Quote {
            src: IpAddr::V4(ip.get_source()),
            dst: IpAddr::V4(ip.get_destination()),
            protocol,
            ttl: ip.get_ttl(),
            ip_id: ip.get_identification(),
            flow_label: 0,
            total_len: ip.get_total_length(),
            l4: quoted_l4(&buf[hl..], protocol),
        })
    }

    fn parse_v6(buf: &[u8]) -> Result<Quote, PacketError> {
        need(buf, 40, "quoted ipv6 header")?;
        let ip = Ipv6Packet::new(buf).ok_or(PacketError::Malformed("quoted ipv6 header"))?;
        let protocol = ip.get_next_header().0;
        Ok(Quote {
            src: IpAddr::V6(ip.get_source()),
            dst: IpAddr::V6(ip.get_destination()),
            protocol,
            ttl: ip.get_hop_limit(),
            ip_id: 0,
            flow_label: ip.get_flow_label(),
            total_len: ip.get_payload_length().saturating_add(40),
            l4: quoted_l4(&buf[40..], protocol),
        })
    }

    /// The L4 source port (UDP/TCP) or ICMP identifier: what a NAT rewrites.
    pub fn nat_port(&self) -> Option<u16> {
        match self.l4 {
            QuotedL4::Udp { src_port, .. } | QuotedL4::Tcp { src_port, .. } => Some(src_port),
            QuotedL4::IcmpEcho { ident, .. } => Some(ident),
            QuotedL4::Other => None,
        }
    }
}

fn quoted_l4(l4: &[u8], protocol: u8) -> QuotedL4 {
    if l4.len() < 8 {
        return QuotedL4::Other;
    }
    match protocol {
        PROTO_UDP => QuotedL4::Udp {
            src_port: be16(l4, 0),
            dst_port: be16(l4, 2),
            length: be16(l4, 4),
            checksum: be16(l4, 6),
        },
        PROTO_TCP => QuotedL4::Tcp {
            src_port: be16(l4, 0),
            dst_port: be16(l4, 2),
            seq: be32(l4, 4),
        },
        PROTO_ICMP if l4[0] == 8 => echo(l4),
        PROTO_ICMPV6 if l4[0] == 128 => echo(l4),
        _ => QuotedL4::Other,
    }
}

fn echo(l4: &[u8]) -> QuotedL4 {
    QuotedL4::IcmpEcho {
        checksum: be16(l4, 2),
        ident: be16(l4, 4),
        seq: be16(l4, 6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn ipv4_udp_quote_with_only_eight_l4_bytes() {
        // RFC 791 header: TTL 1, proto 17, id 0x0102, src 10.0.0.1, dst 10.9.9.9, total 60,
        // then UDP 40000 -> 33434, len 40, checksum 0xBEEF. Header checksum left 0 (not checked).
        let q = [
            0x45, 0, 0, 60, 0x01, 0x02, 0x40, 0, 1, 17, 0, 0, 10, 0, 0, 1, 10, 9, 9, 9, 0x9c, 0x40,
            0x82, 0x9a, 0, 40, 0xBE, 0xEF,
        ];
        let quote = Quote::parse(&q).expect("quote");
        assert_eq!(quote.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(quote.dst, IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)));
        assert_eq!(quote.ttl, 1);
        assert_eq!(quote.ip_id, 0x0102);
        assert_eq!(quote.total_len, 60);
        assert_eq!(
            quote.l4,
            QuotedL4::Udp {
                src_port: 40000,
                dst_port: 33434,
                length: 40,
                checksum: 0xBEEF
            }
        );
        assert_eq!(quote.nat_port(), Some(40000));
        // Cut inside the L4 header: the IP part still parses.
        assert_eq!(Quote::parse(&q[..24]).expect("quote").l4, QuotedL4::Other);
        assert!(Quote::parse(&q[..19]).is_err());
    }

    #[test]
    fn ipv6_icmp_echo_and_tcp_quotes() {
        let mut q = vec![0x60, 0x0A, 0xBC, 0xDE, 0, 16, 58, 2];
        q.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().expect("a").octets());
        q.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().expect("a").octets());
        q.extend_from_slice(&[128, 0, 0x12, 0x34, 0, 7, 0x01, 0x00]);
        let quote = Quote::parse(&q).expect("quote");
        assert_eq!(quote.ttl, 2);
        assert_eq!(quote.flow_label, 0xABCDE);
        assert_eq!(quote.total_len, 56);
        assert_eq!(
            quote.l4,
            QuotedL4::IcmpEcho {
                checksum: 0x1234,
                ident: 7,
                seq: 256
            }
        );
        q[6] = 6;
        q[40..48].copy_from_slice(&[0x9c, 0x41, 0, 80, 0xDE, 0xAD, 0xBE, 0xEF]);
        assert_eq!(
            Quote::parse(&q).expect("quote").l4,
            QuotedL4::Tcp {
                src_port: 40001,
                dst_port: 80,
                seq: 0xDEAD_BEEF
            }
        );
    }
}
