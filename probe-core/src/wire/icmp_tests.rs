//! Tests for [`super`]: byte vectors written from RFC 792, RFC 4443, RFC 4884 and RFC 4950.

use super::*;
use crate::wire::icmp_ext::fixtures::{MPLS_ENTRY, MPLS_EXT};

/// Independent RFC 1071 checksum for the expected vectors.
fn rfc1071(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// IPv4 header (TTL 1, UDP, 10.0.0.1 -> 10.9.9.9) + UDP header 40000 -> 33434, checksum 0xBEEF.
const QUOTED_V4: [u8; 28] = [
    0x45, 0, 0, 60, 0x01, 0x02, 0x40, 0, 1, 17, 0, 0, 10, 0, 0, 1, 10, 9, 9, 9, 0x9c, 0x40, 0x82,
    0x9a, 0, 40, 0xBE, 0xEF,
];

/// `ICMPv4` time exceeded, RFC 4884 length attribute 32 words (128 bytes), MPLS extension.
fn time_exceeded_v4_mpls() -> Vec<u8> {
    let mut m = vec![11, 0, 0, 0, 0, 32, 0, 0];
    m.extend_from_slice(&QUOTED_V4);
    m.resize(8 + 128, 0);
    m.extend_from_slice(&MPLS_EXT);
    let c = rfc1071(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

#[test]
fn v4_time_exceeded_with_length_attribute_and_mpls() {
    let m = time_exceeded_v4_mpls();
    let msg = IcmpMessage::parse_v4(&m).expect("parse");
    assert_eq!(msg.kind, IcmpKind::TimeExceeded { code: 0 });
    assert!(msg.checksum_ok);
    assert_eq!(msg.original.len(), 128);
    assert_eq!(&msg.original[..28], &QUOTED_V4);
    let stack = msg.extensions.and_then(|e| e.mpls_stack()).expect("mpls");
    assert_eq!(stack, vec![MPLS_ENTRY]);
}

#[test]
fn emit_error_reproduces_hand_written_v4_vector() {
    let mut out = Vec::new();
    emit_error(false, 11, 0, 0, &QUOTED_V4, Some(&MPLS_EXT), &mut out);
    assert_eq!(out, time_exceeded_v4_mpls());
}

#[test]
fn v4_legacy_extension_without_length_attribute() {
    let mut m = time_exceeded_v4_mpls();
    m[5] = 0;
    m[2] = 0;
    m[3] = 0;
    let c = rfc1071(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let msg = IcmpMessage::parse_v4(&m).expect("parse");
    assert_eq!(msg.original.len(), 128);
    assert_eq!(
        msg.extensions
            .and_then(|e| e.mpls_stack())
            .map(|s| s[0].label),
        Some(24001)
    );
    // Without a non-zero extension checksum the legacy heuristic does not fire.
    m[8 + 128 + 2] = 0;
    m[8 + 128 + 3] = 0;
    let msg = IcmpMessage::parse_v4(&m).expect("parse");
    assert!(msg.extensions.is_none());
    assert_eq!(msg.original.len(), 128 + 12);
    assert!(!msg.checksum_ok);
}

#[test]
fn v4_plain_rfc792_time_exceeded_has_no_extension() {
    let mut m = vec![11, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&QUOTED_V4);
    let c = rfc1071(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let msg = IcmpMessage::parse_v4(&m).expect("parse");
    assert!(msg.checksum_ok);
    assert!(msg.extensions.is_none());
    assert_eq!(msg.original, &QUOTED_V4);
}

#[test]
fn v4_length_attribute_beyond_message_is_ignored() {
    let mut m = vec![11, 0, 0, 0, 0, 40, 0, 0];
    m.extend_from_slice(&QUOTED_V4);
    let msg = IcmpMessage::parse_v4(&m).expect("parse");
    assert_eq!(msg.original, &QUOTED_V4);
    assert!(msg.extensions.is_none());
}

#[test]
fn v4_frag_needed_carries_next_hop_mtu() {
    // RFC 1191: type 3 code 4, unused(16) = 0, next-hop MTU 1400 = 0x0578.
    let mut m = vec![3, 4, 0, 0, 0, 0, 0x05, 0x78];
    m.extend_from_slice(&QUOTED_V4);
    let msg = IcmpMessage::parse_v4(&m).expect("parse");
    assert_eq!(
        msg.kind,
        IcmpKind::Unreachable(Unreachable::FragNeeded { mtu: 1400 })
    );
    assert_eq!(msg.kind.description(), "fragmentation needed");
}

#[test]
fn v4_unreachable_codes() {
    let expect = [
        Unreachable::Net,
        Unreachable::Host,
        Unreachable::Protocol,
        Unreachable::Port,
        Unreachable::FragNeeded { mtu: 0 },
        Unreachable::SourceRoute,
        Unreachable::Net,
        Unreachable::Host,
        Unreachable::Other(8),
        Unreachable::AdminProhibited,
        Unreachable::AdminProhibited,
        Unreachable::Net,
        Unreachable::Host,
        Unreachable::AdminProhibited,
        Unreachable::Other(14),
        Unreachable::Other(15),
    ];
    for (code, want) in expect.iter().enumerate() {
        let m = [3, code as u8, 0, 0, 0, 0, 0, 0];
        let msg = IcmpMessage::parse_v4(&m).expect("parse");
        assert_eq!(msg.kind, IcmpKind::Unreachable(*want), "code {code}");
    }
}

#[test]
fn v6_unreachable_codes_and_descriptions() {
    let expect = [
        (Unreachable::Net, "net unreachable"),
        (Unreachable::AdminProhibited, "admin prohibited"),
        (Unreachable::BeyondScope, "beyond scope"),
        (Unreachable::Host, "host unreachable"),
        (Unreachable::Port, "port unreachable"),
        (Unreachable::AdminProhibited, "admin prohibited"),
        (Unreachable::AdminProhibited, "admin prohibited"),
        (Unreachable::Other(7), "unreachable"),
    ];
    for (code, (want, text)) in expect.iter().enumerate() {
        let m = [1, code as u8, 0, 0, 0, 0, 0, 0];
        let msg = IcmpMessage::parse_v6(&m).expect("parse");
        assert_eq!(msg.kind, IcmpKind::Unreachable(*want), "code {code}");
        assert_eq!(msg.kind.description(), *text);
    }
}

#[test]
fn v6_time_exceeded_length_in_64_bit_words() {
    // RFC 4884 for ICMPv6: byte 4 is the length in 64-bit words; 16 words = 128 bytes.
    let quoted = [0x60u8; 48];
    let mut m = vec![3, 0, 0, 0, 16, 0, 0, 0];
    m.extend_from_slice(&quoted);
    m.resize(8 + 128, 0);
    m.extend_from_slice(&MPLS_EXT);
    let msg = IcmpMessage::parse_v6(&m).expect("parse");
    assert_eq!(msg.kind, IcmpKind::TimeExceeded { code: 0 });
    assert_eq!(msg.original.len(), 128);
    assert_eq!(
        msg.extensions
            .and_then(|e| e.mpls_stack())
            .map(|s| s[0].ttl),
        Some(1)
    );
    let mut out = Vec::new();
    emit_error(true, 3, 0, 0, &quoted, Some(&MPLS_EXT), &mut out);
    assert_eq!(out, m);
    // A length attribute of 32-bit words would land mid-quote: nothing valid there.
    m[4] = 32;
    assert!(
        IcmpMessage::parse_v6(&m)
            .expect("parse")
            .extensions
            .is_none()
    );
}

#[test]
fn v6_packet_too_big_and_echo_reply() {
    let m = [2, 0, 0, 0, 0x00, 0x00, 0x05, 0x00, 0x60, 0, 0, 0];
    let msg = IcmpMessage::parse_v6(&m).expect("parse");
    assert_eq!(msg.kind, IcmpKind::PacketTooBig { mtu: 1280 });
    assert!(msg.kind.is_error());
    let mut out = Vec::new();
    emit_echo_reply(true, 0x0102, 0x0304, &[9, 9], &mut out);
    assert_eq!(out, [129, 0, 0, 0, 1, 2, 3, 4, 9, 9]);
    let src = "fe80::1".parse().expect("addr");
    let dst = "fe80::2".parse().expect("addr");
    fill_icmpv6_checksum(&mut out, src, dst);
    assert_ne!(&out[2..4], &[0, 0]);
    let msg = IcmpMessage::parse_v6(&out).expect("parse");
    assert_eq!(
        msg.kind,
        IcmpKind::EchoReply {
            ident: 0x0102,
            seq: 0x0304
        }
    );
}

#[test]
fn v4_echo_reply_checksum() {
    let mut out = Vec::new();
    emit_echo_reply(false, 7, 9, &[0xAA, 0xBB], &mut out);
    // Words 0x0000 (type 0 code 0), 0x0007, 0x0009, 0xAABB: sum 0xAACB, checksum 0x5534.
    assert_eq!(out, [0, 0, 0x55, 0x34, 0, 7, 0, 9, 0xAA, 0xBB]);
    let msg = IcmpMessage::parse_v4(&out).expect("parse");
    assert!(msg.checksum_ok);
    assert_eq!(msg.kind, IcmpKind::EchoReply { ident: 7, seq: 9 });
    assert!(!msg.kind.is_error());
    assert!(IcmpMessage::parse_v4(&out[..7]).is_err());
}
