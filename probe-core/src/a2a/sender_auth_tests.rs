//! The sender in authenticated mode against the sans-IO reflector holding the key.

use super::*;
use crate::a2a::{DropReason, StampKey, StampKeyring};
use crate::wire::stamp_auth::{AUTH_BASE_LEN, AuthSenderPacket};

fn key(b: u8) -> StampKey {
    StampKey::new(&[b; 32]).expect("32 octets")
}

/// A sender and a reflector, both holding `k`, sharing one clock.
fn keyed_sim(count: u32, k: &StampKey) -> Sim {
    let mut cfg = config(count);
    cfg.key = Some(k.clone());
    let mut sim = Sim::new(cfg, clock(9, false, 0), 0);
    sim.sender.set_clock(clock(9, false, 0));
    sim.reflector
        .set_keyring(StampKeyring::with_default(k.clone()));
    sim
}

#[test]
fn right_hmac_measures_as_usual() {
    let k = key(1);
    let mut sim = keyed_sim(20, &k);
    assert_eq!(sim.sender.config().size, AUTH_BASE_LEN, "44 raised to 112");
    assert_eq!(hello(&mut sim), ReplyOutcome::Hello { understood: true });
    let (_, pkt, _) = sim.send();
    assert_eq!(pkt.len(), AUTH_BASE_LEN);
    assert!(
        AuthSenderPacket::new_checked(&pkt[..])
            .expect("112")
            .verify(&k)
    );
    let (reply, t3) = sim.reflect(&pkt, T0 + 3 * MS);
    assert!(matches!(
        sim.sender.on_reply(&reply, Nanos(t3 + 4 * MS)),
        ReplyOutcome::Test { seq: 0, .. }
    ));
    for _ in 1..20 {
        sim.exchange(Some(3 * MS), Some(4 * MS));
    }
    let r = sim.sender.finish();
    assert_eq!((r.sent, r.received, r.lost, r.ignored), (20, 20, 0, 0));
    assert!(r.authenticated);
    assert_eq!((r.auth_failed, r.size), (0, AUTH_BASE_LEN));
    assert_eq!(r.clock.mode, ClockMode::Shared);
    let f = r.forward.delay_ms.expect("forward delays");
    let b = r.reverse.delay_ms.expect("reverse delays");
    assert!(
        close(f.mean, 3.0, 1e-6) && close(b.mean, 4.0, 1e-6),
        "{f:?} {b:?}"
    );
    assert_eq!(sim.reflector.counters().auth_reflected, 21);
}

#[test]
fn replies_with_a_wrong_hmac_are_dropped_and_counted() {
    let k = key(1);
    let mut sim = keyed_sim(3, &k);
    let (_, pkt, t1) = sim.send();
    let (reply, t3) = sim.reflect(&pkt, t1 + MS);
    // One flipped octet (the reflector's t2), then the reply as sent.
    let mut tampered = reply.clone();
    tampered[35] ^= 0x01;
    assert_eq!(
        sim.sender.on_reply(&tampered, Nanos(t3 + MS)),
        ReplyOutcome::Ignored(IgnoreReason::AuthFailed)
    );
    // An unauthenticated reply, and one too short to be authenticated.
    let mut plain = Reflector::new(ReflectorConfig::default());
    let mut out = [0u8; 256];
    let d = Datagram {
        bytes: &pkt,
        src: SocketAddr::from((Ipv4Addr::LOCALHOST, 40_000)),
        rx: Nanos(t1 + MS),
        ttl: None,
    };
    let n = plain
        .reflect(&d, Nanos(t1 + MS), &mut out)
        .expect("open reflector");
    assert_eq!(
        sim.sender.on_reply(&out[..n], Nanos(t3 + MS)),
        ReplyOutcome::Ignored(IgnoreReason::AuthFailed)
    );
    assert_eq!(
        sim.sender.on_reply(&reply[..60], Nanos(t3 + MS)),
        ReplyOutcome::Ignored(IgnoreReason::AuthFailed)
    );
    assert_eq!(sim.sender.auth_failed(), 3);
    // The genuine reply still counts.
    assert!(matches!(
        sim.sender.on_reply(&reply, Nanos(t3 + MS)),
        ReplyOutcome::Test { seq: 0, .. }
    ));
    let r = sim.sender.finish();
    assert_eq!((r.received, r.auth_failed, r.ignored), (1, 3, 3));
}

#[test]
fn keys_that_differ_get_no_answer_and_plain_senders_are_refused() {
    let mut sim = keyed_sim(2, &key(1));
    let mut other = config(2);
    other.key = Some(key(2));
    let mut wrong = Sender::new(other, Nanos(T0)).expect("valid");
    let mut plain = Sender::new(config(2), Nanos(T0)).expect("valid");
    let mut out = [0u8; 256];
    for (s, why) in [
        (&mut wrong, DropReason::AuthFailed),
        (&mut plain, DropReason::Unauthenticated),
    ] {
        let mut buf = [0u8; 256];
        let sent = s.emit_next(Nanos(T0), &mut buf).expect("emit");
        let d = Datagram {
            bytes: &buf[..sent.len],
            src: SocketAddr::from((Ipv4Addr::LOCALHOST, 40_000)),
            rx: Nanos(T0 + MS),
            ttl: None,
        };
        assert_eq!(
            sim.reflector.reflect(&d, Nanos(T0 + MS), &mut out),
            Err(why)
        );
    }
    let c = sim.reflector.counters();
    assert_eq!((c.reflected, c.auth_failed, c.unauthenticated), (0, 1, 1));
}
