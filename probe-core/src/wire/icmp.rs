//! ICMP (RFC 792) and `ICMPv6` (RFC 4443) messages a path test receives: echo reply, time
//! exceeded, destination unreachable (every code), fragmentation needed and packet too big, with
//! the quoted original datagram and RFC 4884 extensions.
//!
//! ```text
//!  0                   1                   2                   3
//! |     Type      |     Code      |          Checksum             |
//! |  v4: unused   | v4: length    |  unused / next-hop MTU (v4)   |   (error messages)
//! |  v6: length   |            unused / MTU (packet too big)       |
//! |      original datagram (+ padding) ... | RFC 4884 extensions  |
//! ```
//!
//! The RFC 4884 length attribute counts 32-bit words for `ICMPv4` (byte 5) and 64-bit words for
//! `ICMPv6` (byte 4). When it is zero and the message is long enough, an extension structure at
//! the classic offset 128 is accepted if its version and (non-zero) checksum verify, as older
//! MPLS routers send.

use pnet_packet::icmp::IcmpPacket;
use pnet_packet::icmpv6::Icmpv6Packet;

use super::checksum::plain_checksum;
use super::icmp_ext::{self, Extensions, MIN_ORIGINAL_LEN};
use super::packet_error::{PacketError, be16, be32, need};

/// Why a destination was unreachable, across `ICMPv4` and `ICMPv6` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unreachable {
    /// Network unreachable (v4 codes 0, 6, 11; v6 code 0 no route).
    Net,
    /// Host unreachable (v4 codes 1, 7, 12; v6 code 3 address unreachable).
    Host,
    /// Protocol unreachable (v4 code 2; v6 parameter problem code 1 is not mapped here).
    Protocol,
    /// Port unreachable (v4 code 3, v6 code 4): the target answered.
    Port,
    /// Fragmentation needed and DF set (v4 code 4), with the next-hop MTU (0 if not reported).
    FragNeeded {
        /// Next-hop MTU from the message (RFC 1191), 0 when the router is too old to say.
        mtu: u16,
    },
    /// Source route failed (v4 code 5).
    SourceRoute,
    /// Administratively prohibited (v4 codes 9, 10, 13; v6 codes 1, 5, 6).
    AdminProhibited,
    /// Beyond scope of source address (v6 code 2).
    BeyondScope,
    /// Any other code (v4 8, 14, 15, ...; v6 7+).
    Other(u8),
}

impl Unreachable {
    /// Classifies an `ICMPv4` destination unreachable code.
    pub fn from_v4(code: u8, mtu: u16) -> Self {
        match code {
            0 | 6 | 11 => Unreachable::Net,
            1 | 7 | 12 => Unreachable::Host,
            2 => Unreachable::Protocol,
            3 => Unreachable::Port,
            4 => Unreachable::FragNeeded { mtu },
            5 => Unreachable::SourceRoute,
            9 | 10 | 13 => Unreachable::AdminProhibited,
            c => Unreachable::Other(c),
        }
    }

    /// Classifies an `ICMPv6` destination unreachable code.
    pub fn from_v6(code: u8) -> Self {
        match code {
            0 => Unreachable::Net,
            1 | 5 | 6 => Unreachable::AdminProhibited,
            2 => Unreachable::BeyondScope,
            3 => Unreachable::Host,
            4 => Unreachable::Port,
            c => Unreachable::Other(c),
        }
    }
}

/// What an ICMP message says, independent of the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IcmpKind {
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
    },
    /// Time exceeded (code 0: TTL / hop limit in transit, 1: fragment reassembly).
    TimeExceeded {
        /// The code.
        code: u8,
    },
    /// Destination unreachable.
    Unreachable(Unreachable),
    /// `ICMPv6` packet too big with the MTU of the next link.
    PacketTooBig {
        /// MTU.
        mtu: u32,
    },
    /// Parameter problem with the pointer.
    ParameterProblem {
        /// Offending octet offset.
        pointer: u32,
    },
    /// Echo request (seen on raw sockets that also get our own outgoing traffic).
    EchoRequest,
    /// Anything else.
    Other,
}

impl IcmpKind {
    /// A short human description: "time exceeded", "port unreachable", "admin prohibited", ...
    pub fn description(&self) -> &'static str {
        super::reply_kind::ReplyKind::from(*self).as_str()
    }

    /// Classifies a message from its type, code and second header word (`word`: echo
    /// identifier and sequence, next-hop MTU, `ICMPv6` MTU or pointer), as the header carries
    /// them or as the kernel reports them for a socket's error queue (`ee_type`, `ee_code`,
    /// `ee_info` holding the MTU).
    pub fn classify(ipv6: bool, icmp_type: u8, code: u8, word: u32) -> IcmpKind {
        let (ident, seq) = ((word >> 16) as u16, word as u16);
        match (ipv6, icmp_type) {
            (false, 0) | (true, 129) => IcmpKind::EchoReply { ident, seq },
            (false, 3) => IcmpKind::Unreachable(Unreachable::from_v4(code, seq)),
            (false, 8) | (true, 128) => IcmpKind::EchoRequest,
            (false, 11) | (true, 3) => IcmpKind::TimeExceeded { code },
            (false, 12) => IcmpKind::ParameterProblem {
                pointer: word >> 24,
            },
            (true, 1) => IcmpKind::Unreachable(Unreachable::from_v6(code)),
            (true, 2) => IcmpKind::PacketTooBig { mtu: word },
            (true, 4) => IcmpKind::ParameterProblem { pointer: word },
            _ => IcmpKind::Other,
        }
    }

    /// Whether this is an error message that quotes the offending datagram.
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            IcmpKind::TimeExceeded { .. }
                | IcmpKind::Unreachable(_)
                | IcmpKind::PacketTooBig { .. }
                | IcmpKind::ParameterProblem { .. }
        )
    }
}

/// A parsed ICMP or `ICMPv6` message, borrowing the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpMessage<'a> {
    /// `ICMPv6` rather than `ICMPv4`.
    pub ipv6: bool,
    /// Raw type.
    pub icmp_type: u8,
    /// Raw code.
    pub code: u8,
    /// Classified meaning.
    pub kind: IcmpKind,
    /// For `ICMPv4`: whether the checksum verifies. `ICMPv6` needs the pseudo-header, which the
    /// kernel checks before delivery, so this is always true there. Always true in fuzzing
    /// builds (`cfg(fuzzing)`).
    pub checksum_ok: bool,
    /// The original datagram field of error messages (with RFC 4884 padding), or the echo data.
    pub original: &'a [u8],
    /// RFC 4884 extensions, if present and valid.
    pub extensions: Option<Extensions<'a>>,
}

impl<'a> IcmpMessage<'a> {
    /// Parses an `ICMPv4` message (starting at the ICMP type byte).
    pub fn parse_v4(buf: &'a [u8]) -> Result<Self, PacketError> {
        need(buf, 8, "icmp header")?;
        let pkt = IcmpPacket::new(buf).ok_or(PacketError::Malformed("icmp header"))?;
        let (t, code) = (pkt.get_icmp_type().0, pkt.get_icmp_code().0);
        let kind = IcmpKind::classify(false, t, code, be32(buf, 4));
        // Fuzzing skips verification so that random inputs reach the quote and extension parsers.
        let checksum_ok = cfg!(fuzzing) || plain_checksum(buf, 1) == pkt.get_checksum();
        let (original, extensions) = if matches!(t, 3 | 11 | 12) {
            split_extensions(&buf[8..], buf[5] as usize * 4)
        } else {
            (&buf[8..], None)
        };
        Ok(IcmpMessage {
            ipv6: false,
            icmp_type: t,
            code,
            kind,
            checksum_ok,
            original,
            extensions,
        })
    }

    /// Parses an `ICMPv6` message (starting at the `ICMPv6` type byte).
    pub fn parse_v6(buf: &'a [u8]) -> Result<Self, PacketError> {
        need(buf, 8, "icmpv6 header")?;
        let pkt = Icmpv6Packet::new(buf).ok_or(PacketError::Malformed("icmpv6 header"))?;
        let (t, code) = (pkt.get_icmpv6_type().0, pkt.get_icmpv6_code().0);
        let kind = IcmpKind::classify(true, t, code, be32(buf, 4));
        let (original, extensions) = match t {
            1 | 3 => split_extensions(&buf[8..], buf[4] as usize * 8),
            _ => (&buf[8..], None),
        };
        Ok(IcmpMessage {
            ipv6: true,
            icmp_type: t,
            code,
            kind,
            checksum_ok: true,
            original,
            extensions,
        })
    }
}

/// Splits an error message body into the original datagram and the extension structure.
fn split_extensions(body: &[u8], attr_len: usize) -> (&[u8], Option<Extensions<'_>>) {
    if attr_len > 0 {
        if attr_len < body.len() {
            let ext = Extensions::parse(&body[attr_len..]).ok();
            return (&body[..attr_len], ext);
        }
        return (body, None);
    }
    // Legacy (pre-RFC 4884) senders: extensions at offset 128 without a length attribute.
    if body.len() > MIN_ORIGINAL_LEN + icmp_ext::HEADER_LEN {
        let tail = &body[MIN_ORIGINAL_LEN..];
        if be16(tail, 2) != 0
            && let Ok(ext) = Extensions::parse(tail)
        {
            return (&body[..MIN_ORIGINAL_LEN], Some(ext));
        }
    }
    (body, None)
}

/// Appends an ICMP(v6) error message to `out`: header, original datagram and, if given, an
/// extension structure (emitted with [`icmp_ext::emit`]) with the RFC 4884 length attribute.
///
/// `word` is the second header word (next-hop MTU, `ICMPv6` MTU or pointer); the length attribute
/// byte is overwritten. With extensions the original datagram is zero padded to 128 bytes and to
/// the word size. The `ICMPv4` checksum is filled in; for `ICMPv6` it is left zero, see
/// [`fill_icmpv6_checksum`].
///
/// Test support: built for probe-core's own tests and with the `test-util` feature.
#[cfg(any(test, feature = "test-util"))]
pub fn emit_error(
    ipv6: bool,
    icmp_type: u8,
    code: u8,
    word: u32,
    original: &[u8],
    extensions: Option<&[u8]>,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.extend_from_slice(&[icmp_type, code, 0, 0]);
    out.extend_from_slice(&word.to_be_bytes());
    out.extend_from_slice(original);
    if let Some(ext) = extensions {
        let unit = if ipv6 { 8 } else { 4 };
        let mut len = original.len().max(MIN_ORIGINAL_LEN);
        len = len.div_ceil(unit) * unit;
        out.resize(start + 8 + len, 0);
        let words = (len / unit) as u8;
        if ipv6 {
            out[start + 4] = words;
        } else {
            out[start + 5] = words;
        }
        out.extend_from_slice(ext);
    }
    if !ipv6 {
        let sum = plain_checksum(&out[start..], 1);
        out[start + 2..start + 4].copy_from_slice(&sum.to_be_bytes());
    }
}

/// Appends an echo reply (`ICMPv4` type 0 or `ICMPv6` type 129) echoing `data`.
///
/// Test support: built for probe-core's own tests and with the `test-util` feature.
#[cfg(any(test, feature = "test-util"))]
pub fn emit_echo_reply(ipv6: bool, ident: u16, seq: u16, data: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[if ipv6 { 129 } else { 0 }, 0, 0, 0]);
    out.extend_from_slice(&ident.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(data);
    if !ipv6 {
        let sum = plain_checksum(&out[start..], 1);
        out[start + 2..start + 4].copy_from_slice(&sum.to_be_bytes());
    }
}

/// Fills the `ICMPv6` checksum of `msg` (pseudo-header from `src` to `dst`).
///
/// Test support: built for probe-core's own tests and with the `test-util` feature.
#[cfg(any(test, feature = "test-util"))]
pub fn fill_icmpv6_checksum(msg: &mut [u8], src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr) {
    if msg.len() < 4 {
        return;
    }
    let proto = pnet_packet::ip::IpNextHeaderProtocols::Icmpv6;
    let sum = pnet_packet::util::ipv6_checksum(msg, 1, &[], &src, &dst, proto);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
#[path = "icmp_tests.rs"]
mod tests;
