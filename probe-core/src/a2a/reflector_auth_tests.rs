//! The reflector in authenticated mode (policy 6 of the module documentation).

use std::net::{Ipv4Addr, SocketAddr};

use super::*;
use crate::wire::stamp_auth::HMAC_COVERED;
use crate::wire::stamp_clock_tlv::{CLOCK_TLV_LEN, emit_clock_tlv};
use crate::wire::stamp_tlv::{TlvFlags, tlv_type};

const T0: u64 = 1_700_000_000_000_000_000;

fn key(b: u8) -> StampKey {
    StampKey::new(&[b; 32]).expect("32 octets")
}

fn from(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(192, 0, 2, last), port))
}

fn repr(seq: u32, ssid: u16) -> SenderRepr {
    SenderRepr {
        seq,
        timestamp: NtpTimestamp::from_nanos(Nanos(T0 + u64::from(seq))),
        error_estimate: ErrorEstimate::new(true, false, 10, 3),
        ssid,
    }
}

fn auth_request(seq: u32, ssid: u16, len: usize, k: &StampKey) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    repr(seq, ssid).emit_authenticated(&mut AuthSenderPacket::new_unchecked(&mut buf[..]), k);
    buf
}

fn plain_request(seq: u32, ssid: u16, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    repr(seq, ssid).emit(&mut SenderPacket::new_unchecked(&mut buf[..]));
    buf
}

fn reflect(r: &mut Reflector, bytes: &[u8], src: SocketAddr) -> Result<Vec<u8>, DropReason> {
    let mut out = [0u8; 2048];
    let d = Datagram {
        bytes,
        src,
        rx: Nanos(T0 + 1_000_000),
        ttl: Some(60),
    };
    let n = r.reflect(&d, Nanos(T0 + 1_020_000), &mut out)?;
    Ok(out[..n].to_vec())
}

fn keyed(keys: &StampKeyring) -> Reflector {
    let mut r = Reflector::new(ReflectorConfig::default());
    r.set_keyring(keys.clone());
    r
}

#[test]
fn right_hmac_is_answered_in_authenticated_mode() {
    let k = key(1);
    let mut r = keyed(&StampKeyring::with_default(k.clone()));
    let reply = reflect(
        &mut r,
        &auth_request(9, 0x1234, AUTH_BASE_LEN, &k),
        from(1, 40_000),
    )
    .expect("answered");
    assert_eq!(reply.len(), AUTH_BASE_LEN);
    let p = AuthReflectorPacket::new_checked(&reply[..]).expect("112 octets");
    assert!(p.verify(&k), "the reply is sealed with the sender's key");
    let rep = ReflectorRepr::parse_authenticated(&p);
    assert_eq!(
        (rep.seq, rep.ssid, rep.sender_seq, rep.sender_ttl),
        (0, 0x1234, 9, 60)
    );
    assert_eq!(rep.sender_timestamp, repr(9, 0).timestamp);
    assert_eq!(rep.receive_timestamp.to_nanos(), Nanos(T0 + 1_000_000));
    assert_eq!(rep.timestamp.to_nanos(), Nanos(T0 + 1_020_000));
    assert_eq!(r.reply_key(), Some(&k));

    // The restamp moves t3 and keeps the HMAC right.
    let mut moved = reply.clone();
    Reflector::restamp_authenticated(&mut moved, Nanos(T0 + 1_050_000), r.reply_key());
    let p = AuthReflectorPacket::new_checked(&moved[..]).expect("112 octets");
    assert!(p.verify(&k));
    assert_eq!(p.timestamp().to_nanos(), Nanos(T0 + 1_050_000));
    assert_eq!(moved[HMAC_COVERED - 1], reply[HMAC_COVERED - 1]);

    let c = r.counters();
    assert_eq!((c.reflected, c.auth_reflected, c.auth_failed), (1, 1, 0));
}

#[test]
fn wrong_hmac_gets_no_reply_is_counted_and_moves_no_session() {
    let k = key(1);
    let mut r = keyed(&StampKeyring::with_default(k.clone()));
    let src = from(1, 40_000);
    // Another key.
    assert_eq!(
        reflect(&mut r, &auth_request(0, 5, AUTH_BASE_LEN, &key(2)), src),
        Err(DropReason::AuthFailed)
    );
    // One flipped octet in a covered field, in the HMAC, in MBZ.
    for at in [3, 20, 60, 100] {
        let mut tampered = auth_request(1, 5, AUTH_BASE_LEN, &k);
        tampered[at] ^= 0x40;
        assert_eq!(
            reflect(&mut r, &tampered, src),
            Err(DropReason::AuthFailed),
            "{at}"
        );
    }
    assert_eq!(r.reply_key(), None);
    let c = r.counters();
    assert_eq!((c.received, c.reflected, c.auth_failed), (5, 0, 5));
    assert_eq!(c.sessions_created, 0, "forged packets create no session");
    // The first good packet opens the session at reflector number 0.
    let reply = reflect(&mut r, &auth_request(2, 5, AUTH_BASE_LEN, &k), src).expect("good");
    assert_eq!(
        AuthReflectorPacket::new_unchecked(&reply[..]).sequence_number(),
        0
    );
}

#[test]
fn unauthenticated_sender_to_an_authenticated_only_reflector() {
    let mut r = keyed(&StampKeyring::with_default(key(1)));
    for len in [BASE_LEN, AUTH_BASE_LEN, 200] {
        assert_eq!(
            reflect(&mut r, &plain_request(0, 3, len), from(1, 40_000)),
            Err(DropReason::Unauthenticated),
            "{len}"
        );
    }
    let c = r.counters();
    assert_eq!((c.reflected, c.unauthenticated, c.auth_failed), (0, 3, 0));
}

#[test]
fn session_keys_apply_to_their_sender_only_and_at_once() {
    let keys = StampKeyring::new();
    let mut r = keyed(&keys);
    let (first, second) = (from(1, 40_000), from(2, 40_000));
    // Open mode: plain answered.
    assert!(reflect(&mut r, &plain_request(0, 7, BASE_LEN), first).is_ok());
    // The control plane registers a key for (first, SSID 7) on its clone.
    let k = key(3);
    keys.clone().register(first.ip(), 7, k.clone());
    assert_eq!(
        reflect(&mut r, &plain_request(1, 7, BASE_LEN), first),
        Err(DropReason::Unauthenticated)
    );
    let reply = reflect(
        &mut r,
        &auth_request(2, 7, AUTH_BASE_LEN, &k),
        from(1, 50_000),
    )
    .expect("any port of the sender");
    assert!(AuthReflectorPacket::new_unchecked(&reply[..]).verify(&k));
    // Its hellos (SSID ^ 0x8000) use the same key.
    let hello = auth_request(0, 7 ^ crate::a2a::HELLO_SSID_FLIP, AUTH_BASE_LEN, &k);
    assert!(reflect(&mut r, &hello, first).is_ok());
    // Other senders and other SSIDs stay open.
    assert!(reflect(&mut r, &plain_request(0, 7, BASE_LEN), second).is_ok());
    assert!(reflect(&mut r, &plain_request(0, 8, BASE_LEN), first).is_ok());
    // Require-auth refuses senders without a key.
    keys.set_require_auth(true);
    assert_eq!(
        reflect(&mut r, &plain_request(1, 7, BASE_LEN), second),
        Err(DropReason::Unauthenticated)
    );
    assert_eq!(
        reflect(&mut r, &auth_request(1, 7, AUTH_BASE_LEN, &k), second),
        Err(DropReason::Unauthenticated),
        "a key nobody registered for the second sender"
    );
    let c = r.counters();
    assert_eq!((c.auth_reflected, c.unauthenticated), (2, 3));
}

#[test]
fn tlvs_after_the_authenticated_base_are_answered() {
    let k = key(1);
    let mut r = keyed(&StampKeyring::with_default(k.clone()));
    let len = AUTH_BASE_LEN + CLOCK_TLV_LEN;
    let mut req = auth_request(0, 1, len, &k);
    emit_clock_tlv(
        &mut req[AUTH_BASE_LEN..],
        TlvFlags(TlvFlags::UNRECOGNIZED),
        &crate::time::ClockInfo::default(),
    )
    .expect("room");
    let reply = reflect(&mut r, &req, from(1, 40_000)).expect("answered");
    assert_eq!(reply.len(), len);
    let p = AuthReflectorPacket::new_checked(&reply[..]).expect("long");
    assert!(p.verify(&k));
    let (_, tlv) = crate::wire::stamp_tlv::TlvIter::new(p.tlv_area())
        .next()
        .expect("a TLV")
        .expect("well formed");
    assert_eq!(tlv.tlv_type(), tlv_type::PROBE_CLOCK);
    assert!(
        !tlv.flags().unrecognized(),
        "the reflector understood the clock TLV"
    );
}

#[test]
fn a_keyed_negotiated_session_is_found_under_required_admission() {
    // The SSID of the authenticated layout is where the registry must look it up.
    let keys = StampKeyring::new();
    let k = key(4);
    keys.register(from(1, 0).ip(), 0x0BAD, k.clone());
    let admission = Arc::new(Admission::new(true));
    let stats = admission.register(from(1, 0).ip(), 0x0BAD);
    let mut r = keyed(&keys);
    r.set_admission(Arc::clone(&admission));
    let reply = reflect(
        &mut r,
        &auth_request(1, 0x0BAD, AUTH_BASE_LEN, &k),
        from(1, 40_000),
    )
    .expect("answered");
    assert!(
        AuthReflectorPacket::new_checked(&reply[..])
            .expect("auth")
            .verify(&k)
    );
    assert_eq!(stats.snapshot().received, 1);
    let c = r.counters();
    assert_eq!((c.not_negotiated, c.auth_reflected), (0, 1));
}
