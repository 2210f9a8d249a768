//! Internet checksum (RFC 1071) helpers on top of `pnet_packet::util`, plus checksum steering.
//!
//! Paris traceroute keeps a header checksum at a value of its choice by setting one free 16-bit
//! word of the payload: the checksum is the one's complement of the one's-complement sum, so the
//! word that moves the sum to any target can be computed in closed form.

use std::net::IpAddr;

use pnet_packet::ip::IpNextHeaderProtocol;
use pnet_packet::util;

/// Adds two 16-bit words in one's-complement arithmetic (end-around carry).
pub fn ones_add(a: u16, b: u16) -> u16 {
    let s = a as u32 + b as u32;
    ((s & 0xFFFF) + (s >> 16)) as u16
}

/// The value for a free payload word so that the checksum becomes `target`.
///
/// `checksum_with_zero_word` is the checksum of the message computed with the free word set to
/// zero. With `S0` the sum of the other words, `!fold(S0 + W) = target` gives
/// `W = !target - fold(S0)` in one's-complement arithmetic, and `fold(S0) = !checksum_with_zero_word`.
pub fn steer_word(checksum_with_zero_word: u16, target: u16) -> u16 {
    ones_add(!target, checksum_with_zero_word)
}

/// Checksum of an L4 segment (UDP, TCP, `ICMPv6`) with the IPv4/IPv6 pseudo-header.
///
/// `skipword` is the index of the 16-bit checksum field inside `segment` (3 for UDP, 8 for TCP,
/// 1 for `ICMPv6`); it counts as zero. Mixed address families yield `None`.
pub fn pseudo_header_checksum(
    segment: &[u8],
    skipword: usize,
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
) -> Option<u16> {
    let proto = IpNextHeaderProtocol(protocol);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            Some(util::ipv4_checksum(segment, skipword, &[], &s, &d, proto))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            Some(util::ipv6_checksum(segment, skipword, &[], &s, &d, proto))
        }
        _ => None,
    }
}

/// Checksum without pseudo-header (IPv4 header, `ICMPv4`, RFC 4884 extension structure).
pub fn plain_checksum(data: &[u8], skipword: usize) -> u16 {
    util::checksum(data, skipword)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ones_add_wraps_carry() {
        assert_eq!(ones_add(0xFFFF, 0x0001), 0x0001);
        assert_eq!(ones_add(0x8000, 0x8000), 0x0001);
        assert_eq!(ones_add(0x1234, 0x0001), 0x1235);
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 sums 00 01 f2 03 f4 f5 f6 f7 to 0xddf2; the checksum is its complement.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(plain_checksum(&data, usize::MAX), !0xddf2);
    }

    #[test]
    fn steering_reaches_every_target() {
        let mut msg = [
            0x08u8, 0x00, 0x00, 0x00, 0x12, 0x34, 0x00, 0x07, 0x00, 0x00, 0xAB, 0xCD,
        ];
        for target in [1u16, 2, 0x7FFF, 0x8000, 0xBEEF, 0xFFFE] {
            msg[8] = 0;
            msg[9] = 0;
            let c0 = plain_checksum(&msg, 1);
            let w = steer_word(c0, target);
            msg[8..10].copy_from_slice(&w.to_be_bytes());
            assert_eq!(plain_checksum(&msg, 1), target, "target {target:#06x}");
        }
    }
}
