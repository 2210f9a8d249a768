//! Byte vectors written by hand from the layouts of RFC 8762 figures 5 and 6 (SSID of RFC 8972);
//! their HMACs were computed apart, with another HMAC-SHA-256 implementation, over octets 0..96
//! under the key 00 01 02 .. 1f.

use super::*;
use crate::wire::stamp::{ReflectorPacket, SenderPacket};

fn key() -> StampKey {
    let bytes: Vec<u8> = (0u8..32).collect();
    StampKey::new(&bytes).expect("32 octets")
}

fn sender_packet() -> [u8; AUTH_BASE_LEN] {
    let mut b = [0u8; AUTH_BASE_LEN];
    b[0..4].copy_from_slice(&[0x00, 0x00, 0x01, 0x02]); // Sequence Number 258
    // 4..16 MBZ
    b[16..24].copy_from_slice(&[0xE9, 0x3C, 0x7F, 0x00, 0x80, 0x00, 0x00, 0x00]); // Timestamp
    b[24..26].copy_from_slice(&[0x99, 0x80]); // Error Estimate: S=1 Z=0 Scale=25 Mult=128
    b[26..28].copy_from_slice(&[0xBE, 0xEF]); // SSID
    // 28..96 MBZ
    b[96..112].copy_from_slice(&[
        0x5a, 0x94, 0x6d, 0xcb, 0xe6, 0xc0, 0xa0, 0x10, 0x04, 0xfd, 0xc6, 0xb4, 0x2d, 0x8b, 0xa7,
        0x65,
    ]);
    b
}

fn reflector_packet() -> [u8; AUTH_BASE_LEN] {
    let mut b = [0u8; AUTH_BASE_LEN];
    b[0..4].copy_from_slice(&[0x00, 0x00, 0x00, 0x07]); // Sequence Number 7
    b[16..24].copy_from_slice(&[0xE9, 0x3C, 0x7F, 0x00, 0x80, 0x10, 0x00, 0x00]); // Timestamp t3
    b[24..26].copy_from_slice(&[0x19, 0x80]); // Error Estimate: S=0
    b[26..28].copy_from_slice(&[0xBE, 0xEF]); // SSID
    b[32..40].copy_from_slice(&[0xE9, 0x3C, 0x7F, 0x00, 0x80, 0x01, 0x00, 0x00]); // Receive t2
    b[48..52].copy_from_slice(&[0x00, 0x00, 0x01, 0x02]); // Session-Sender Sequence Number
    b[64..72].copy_from_slice(&[0xE9, 0x3C, 0x7F, 0x00, 0x80, 0x00, 0x00, 0x00]); // Sender t1
    b[72..74].copy_from_slice(&[0x99, 0x80]); // Session-Sender Error Estimate
    b[80] = 0x3E; // Ses-Sender TTL 62
    b[96..112].copy_from_slice(&[
        0x6c, 0x68, 0x01, 0x1a, 0x8b, 0xd2, 0x3e, 0x8b, 0xa4, 0x80, 0x90, 0x9c, 0xf4, 0x47, 0xab,
        0xff,
    ]);
    b
}

fn sender_repr() -> SenderRepr {
    SenderRepr {
        seq: 258,
        timestamp: NtpTimestamp::from_parts(0xE93C_7F00, 0x8000_0000),
        error_estimate: ErrorEstimate::new(true, false, 25, 128),
        ssid: 0xBEEF,
    }
}

#[test]
fn sender_parse_and_emit_match_the_rfc_layout() {
    let bytes = sender_packet();
    let p = AuthSenderPacket::new_checked(&bytes[..]).expect("112 octets");
    assert_eq!(SenderRepr::parse_authenticated(&p), sender_repr());
    assert!(p.verify(&key()));
    assert!(p.tlv_area().is_empty());
    let mut out = [0xAAu8; AUTH_BASE_LEN];
    sender_repr().emit_authenticated(&mut AuthSenderPacket::new_unchecked(&mut out[..]), &key());
    assert_eq!(out, bytes);
}

#[test]
fn reflector_parse_and_emit_match_the_rfc_layout() {
    let bytes = reflector_packet();
    let p = AuthReflectorPacket::new_checked(&bytes[..]).expect("112 octets");
    assert!(p.verify(&key()));
    let r = ReflectorRepr::parse_authenticated(&p);
    assert_eq!(
        (r.seq, r.ssid, r.sender_seq, r.sender_ttl),
        (7, 0xBEEF, 258, 62)
    );
    assert_eq!(r.sender_timestamp, sender_repr().timestamp);
    assert_eq!(r.sender_error_estimate, sender_repr().error_estimate);
    assert_eq!(r.receive_timestamp.fraction(), 0x8001_0000);
    assert_eq!(r.timestamp.fraction(), 0x8010_0000);
    assert!(!r.error_estimate.synchronized());
    let mut out = [0x55u8; AUTH_BASE_LEN];
    r.emit_authenticated(
        &mut AuthReflectorPacket::new_unchecked(&mut out[..]),
        &key(),
    );
    assert_eq!(out, bytes);
}

#[test]
fn hmac_covers_exactly_the_first_96_octets() {
    for bytes in [sender_packet(), reflector_packet()] {
        for i in 0..AUTH_BASE_LEN {
            let mut b = bytes;
            b[i] ^= 0x01;
            let ok = AuthSenderPacket::new_unchecked(&b[..]).verify(&key());
            assert!(!ok, "a flip at octet {i} must break the HMAC");
        }
        // The TLV area is not covered by the base HMAC.
        let mut long = [0u8; AUTH_BASE_LEN + 8];
        long[..AUTH_BASE_LEN].copy_from_slice(&bytes);
        long[AUTH_BASE_LEN + 3] = 0x77;
        assert!(
            AuthReflectorPacket::new_checked(&long[..])
                .expect("long")
                .verify(&key())
        );
        let other = StampKey::new(&[0x42; 32]).expect("key");
        assert!(!AuthReflectorPacket::new_unchecked(&bytes[..]).verify(&other));
    }
}

#[test]
fn restamp_and_seal_keep_the_packet_valid() {
    let mut b = reflector_packet();
    let mut p = AuthReflectorPacket::new_unchecked(&mut b[..]);
    p.set_timestamp(NtpTimestamp::from_parts(0xE93C_7F01, 0));
    assert!(!p.verify(&key()));
    p.seal(&key());
    assert!(p.verify(&key()));
    assert_eq!(p.timestamp().seconds(), 0xE93C_7F01);
}

#[test]
fn modes_are_told_apart_by_the_first_mbz() {
    assert!(looks_authenticated(&sender_packet()));
    assert!(looks_authenticated(&reflector_packet()));
    assert!(!looks_authenticated(&sender_packet()[..111]));
    // An unauthenticated packet padded to 112 octets: its timestamp fills octets 4..12.
    let mut plain = [0u8; AUTH_BASE_LEN];
    sender_repr().emit(&mut SenderPacket::new_unchecked(&mut plain[..]));
    assert!(!looks_authenticated(&plain));
    let mut refl = [0u8; AUTH_BASE_LEN];
    let r = ReflectorRepr::parse_authenticated(&AuthReflectorPacket::new_unchecked(
        &reflector_packet()[..],
    ));
    r.emit(&mut ReflectorPacket::new_unchecked(&mut refl[..]));
    assert!(!looks_authenticated(&refl));
    assert_eq!(
        AuthSenderPacket::new_checked(&plain[..44]).err(),
        Some(Truncated { len: 44 })
    );
}
