//! Authenticated STAMP (RFC 8762 sections 4.2.2, 4.3.2): the packet views, the HMAC, and the
//! reflector and sender holding keys.
//!
//! Input: octet 0 steers (bit 0: seal the datagram with the key before use; bit 1: the source
//! holds a session key instead of the default key; bit 2: flip octet `data[1] % 112` after
//! sealing; bit 3: the reflector requires auth but holds no default key); the rest is the
//! datagram.
//!
//! Checks: parse and emit are symmetric for both views; a sealed packet verifies and any flipped
//! octet of its first 112 breaks it; the reflector answers only packets whose HMAC is right
//! under the key it holds for their sender (sealed with that key, exactly as long as the
//! request), counts every drop, and its counters add up; a keyed sender takes the reflector's
//! replies and counts whatever fails the HMAC.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use probe_core::a2a::{
    Datagram, DropReason, Limit, Reflector, ReflectorConfig, ReplyOutcome, Sender, SenderConfig,
    StampKey, StampKeyring,
};
use probe_core::time::Nanos;
use probe_core::wire::stamp::{ReflectorRepr, SenderRepr};
use probe_core::wire::stamp_auth::{
    AUTH_BASE_LEN, AuthReflectorPacket, AuthSenderPacket, looks_authenticated,
};

const T0: u64 = 1_700_000_000_000_000_000;

fn key(b: u8) -> StampKey {
    StampKey::new(&[b; 32]).unwrap_or_else(|_| unreachable!("32 octets"))
}

struct State {
    open: Reflector,
    open_keys: StampKeyring,
    session: Reflector,
    sender: Sender,
}

static STATE: LazyLock<Mutex<State>> = LazyLock::new(|| {
    let config = ReflectorConfig::builder()
        .rate_limit_pps(0)
        .build()
        .expect("valid reflector settings");
    let mut open = Reflector::new(config);
    let open_keys = StampKeyring::with_default(key(1));
    open.set_keyring(open_keys.clone());
    let mut session = Reflector::new(config);
    let session_keys = StampKeyring::new();
    session_keys.register(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 0x0102, key(2));
    session.set_keyring(session_keys);
    let mut sc = SenderConfig::new("fuzz", 0x0102);
    sc.limit = Limit::Count(4);
    sc.interval = Duration::from_millis(1);
    sc.key = Some(key(1));
    let sender = Sender::new(sc, Nanos(T0)).unwrap_or_else(|_| unreachable!("valid"));
    Mutex::new(State {
        open,
        open_keys,
        session,
        sender,
    })
});

fn check_views(bytes: &[u8]) {
    let Ok(p) = AuthSenderPacket::new_checked(bytes) else {
        assert!(bytes.len() < AUTH_BASE_LEN);
        assert!(!looks_authenticated(bytes));
        return;
    };
    let k = key(1);
    let repr = SenderRepr::parse_authenticated(&p);
    let mut copy = bytes.to_vec();
    repr.emit_authenticated(&mut AuthSenderPacket::new_unchecked(&mut copy[..]), &k);
    let again = AuthSenderPacket::new_unchecked(&copy[..]);
    assert_eq!(SenderRepr::parse_authenticated(&again), repr);
    assert!(again.verify(&k));
    assert!(looks_authenticated(&copy));
    assert_eq!(
        copy[AUTH_BASE_LEN..],
        bytes[AUTH_BASE_LEN..],
        "TLV area untouched"
    );

    let rp = AuthReflectorPacket::new_unchecked(bytes);
    let rrepr = ReflectorRepr::parse_authenticated(&rp);
    let mut rcopy = bytes.to_vec();
    rrepr.emit_authenticated(&mut AuthReflectorPacket::new_unchecked(&mut rcopy[..]), &k);
    let ragain = AuthReflectorPacket::new_unchecked(&rcopy[..]);
    assert_eq!(ReflectorRepr::parse_authenticated(&ragain), rrepr);
    assert!(ragain.verify(&k));
    assert!(!ragain.verify(&key(2)));
}

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_at_checked(2) else {
        return;
    };
    check_views(rest);
    let (steer, flip_at) = (head[0], usize::from(head[1]) % AUTH_BASE_LEN);
    let session_key = steer & 2 != 0;
    let k = if session_key { key(2) } else { key(1) };
    let mut bytes = rest.to_vec();
    let sealed = steer & 1 != 0 && bytes.len() >= AUTH_BASE_LEN;
    if sealed {
        bytes[4..16].fill(0);
        AuthSenderPacket::new_unchecked(&mut bytes[..]).seal(&k);
        assert!(AuthSenderPacket::new_unchecked(&bytes[..]).verify(&k));
    }
    let flipped = sealed && steer & 4 != 0;
    if flipped {
        bytes[flip_at] ^= 0x01;
        assert!(!AuthSenderPacket::new_unchecked(&bytes[..]).verify(&k));
    }

    let mut state = STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let st = &mut *state;
    st.open_keys.set_default((steer & 8 == 0).then(|| key(1)));
    st.open_keys.set_require_auth(steer & 8 != 0);
    let (reflector, src) = if session_key {
        (&mut st.session, SocketAddr::from(([192, 0, 2, 1], 40_000)))
    } else {
        (&mut st.open, SocketAddr::from(([192, 0, 2, 9], 40_000)))
    };
    let d = Datagram {
        bytes: &bytes,
        src,
        rx: Nanos(T0 + 1_000_000),
        ttl: Some(64),
    };
    let mut out = vec![0u8; bytes.len()];
    let before = reflector.counters();
    let result = reflector.reflect(&d, Nanos(T0 + 1_010_000), &mut out);
    let c = reflector.counters();
    assert_eq!(c.received, before.received + 1);
    assert_eq!(
        c.received,
        c.reflected
            + c.junk
            + c.rate_limited
            + c.refused
            + c.not_allowed
            + c.auth_failed
            + c.unauthenticated
    );
    // The key the reflector holds for this packet (authenticated layout), if any.
    let registered = |ssid: u16| ssid == 0x0102 || ssid == 0x8102;
    let auth_ssid = AuthSenderPacket::new_checked(&bytes[..])
        .ok()
        .map(|p| p.ssid());
    let expected = if session_key {
        auth_ssid.filter(|&s| registered(s)).map(|_| key(2))
    } else {
        (steer & 8 == 0).then(|| key(1))
    };
    let verifies = |k: &StampKey| {
        looks_authenticated(&bytes) && AuthSenderPacket::new_unchecked(&bytes[..]).verify(k)
    };
    if sealed && !flipped && (!session_key || expected.is_some()) && steer & 8 == 0 {
        assert_eq!(reflector.reply_key(), Some(&k), "a right HMAC is answered");
    }
    match result {
        Ok(n) => {
            assert_eq!(n, bytes.len());
            match reflector.reply_key() {
                Some(used) => {
                    assert_eq!(Some(used), expected.as_ref());
                    assert!(verifies(used), "answered only with the right HMAC");
                    assert!(!flipped);
                    let reply = AuthReflectorPacket::new_checked(&out[..n]).expect("reply");
                    assert!(reply.verify(used));
                    let req = AuthSenderPacket::new_unchecked(&bytes[..]);
                    assert_eq!(reply.sender_sequence_number(), req.sequence_number());
                    assert_eq!(reply.ssid(), req.ssid());
                    assert!(n >= AUTH_BASE_LEN);
                }
                None => assert!(
                    session_key,
                    "a reflector with a default key or require-auth answers only authenticated packets"
                ),
            }
            // The keyed sender takes the reply: it counts a wrong HMAC, never panics.
            let failed = st.sender.auth_failed();
            let outcome = st.sender.on_reply(&out[..n], Nanos(T0 + 2_000_000));
            let good = AuthReflectorPacket::new_checked(&out[..n]).is_ok_and(|p| p.verify(&key(1)));
            if !good {
                assert_eq!(
                    outcome,
                    ReplyOutcome::Ignored(probe_core::a2a::IgnoreReason::AuthFailed)
                );
                assert_eq!(st.sender.auth_failed(), failed + 1);
            }
        }
        Err(DropReason::AuthFailed) => {
            let k = expected.expect("a wrong HMAC needs a key to be wrong against");
            assert!(looks_authenticated(&bytes) && !verifies(&k));
        }
        Err(DropReason::Unauthenticated) => {
            assert!(!expected.as_ref().is_some_and(|k| verifies(k)));
        }
        Err(DropReason::Junk { len }) => assert!(len < 44),
        Err(other) => panic!("unexpected drop: {other}"),
    }
});
