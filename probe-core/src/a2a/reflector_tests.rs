use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::a2a::AllowList;
use crate::time::BootId;
use crate::wire::stamp::SenderRepr;
use crate::wire::stamp_clock_tlv::{CLOCK_TLV_LEN, ClockValue, emit_clock_tlv};
use crate::wire::stamp_tlv::{TLV_HEADER_LEN, Tlv, TlvFlags};

const T0: u64 = 1_700_000_000_000_000_000;

fn src(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn request(seq: u32, ssid: u16, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    SenderRepr {
        seq,
        timestamp: NtpTimestamp::from_nanos(Nanos(T0 + u64::from(seq))),
        error_estimate: ErrorEstimate::new(false, false, 10, 3),
        ssid,
    }
    .emit(&mut SenderPacket::new_unchecked(&mut buf[..]));
    buf
}

fn synced_clock() -> ClockInfo {
    ClockInfo {
        boot_id: BootId([0x42; 16]),
        synchronized: true,
        max_error: Some(Duration::from_micros(100)),
    }
}

fn reflect(
    r: &mut Reflector,
    bytes: &[u8],
    from: SocketAddr,
    rx: u64,
) -> Result<Vec<u8>, DropReason> {
    let mut out = [0u8; 2048];
    let d = Datagram {
        bytes,
        src: from,
        rx: Nanos(rx),
        ttl: Some(61),
    };
    let n = r.reflect(&d, Nanos(rx + 20_000), &mut out)?;
    Ok(out[..n].to_vec())
}

#[test]
fn answers_a_plain_rfc8762_sender() {
    let mut r = Reflector::new(
        ReflectorConfig::builder()
            .clock(synced_clock())
            .build()
            .expect("valid reflector settings"),
    );
    let req = request(17, 0, BASE_LEN);
    let reply = reflect(&mut r, &req, src(40_000), T0 + 5_000_000).expect("reply");
    assert_eq!(reply.len(), BASE_LEN);
    let p = ReflectorPacket::new_checked(&reply[..]).expect("reflector packet");
    let rep = ReflectorRepr::parse(&p);
    assert_eq!(rep.seq, 0);
    assert_eq!(rep.ssid, 0);
    assert_eq!(rep.sender_seq, 17);
    assert_eq!(
        rep.sender_timestamp,
        NtpTimestamp::from_nanos(Nanos(T0 + 17))
    );
    assert_eq!(
        rep.sender_error_estimate,
        ErrorEstimate::new(false, false, 10, 3)
    );
    assert_eq!(rep.sender_ttl, 61);
    assert_eq!(rep.receive_timestamp.to_nanos(), Nanos(T0 + 5_000_000));
    assert_eq!(rep.timestamp.to_nanos(), Nanos(T0 + 5_020_000));
    assert!(rep.error_estimate.synchronized());
    assert_eq!(reply[38..40], [0, 0]);
    assert_eq!(reply[41..44], [0, 0, 0]);
    let c = r.counters();
    assert_eq!(
        (
            c.received,
            c.reflected,
            c.sessions_created,
            c.active_sessions
        ),
        (1, 1, 1, 1)
    );
}

#[test]
fn unsynchronized_clock_clears_s_bit() {
    let mut r = Reflector::new(ReflectorConfig::default());
    let reply = reflect(&mut r, &request(0, 1, BASE_LEN), src(40_000), T0).expect("reply");
    let p = ReflectorPacket::new_checked(&reply[..]).expect("packet");
    assert!(!p.error_estimate().synchronized());
    r.set_clock(synced_clock());
    let reply = reflect(&mut r, &request(1, 1, BASE_LEN), src(40_000), T0 + 1).expect("reply");
    assert!(
        ReflectorPacket::new_checked(&reply[..])
            .expect("packet")
            .error_estimate()
            .synchronized()
    );
}

#[test]
fn one_counter_per_address_port_and_ssid() {
    let mut r = Reflector::new(ReflectorConfig::default());
    let seq_of = |r: &mut Reflector, ssid, port, t| {
        let reply = reflect(r, &request(99, ssid, BASE_LEN), src(port), t).expect("reply");
        ReflectorPacket::new_checked(&reply[..])
            .expect("packet")
            .sequence_number()
    };
    assert_eq!(seq_of(&mut r, 1, 40_000, T0), 0);
    assert_eq!(seq_of(&mut r, 1, 40_000, T0 + 1), 1);
    assert_eq!(seq_of(&mut r, 2, 40_000, T0 + 2), 0);
    assert_eq!(seq_of(&mut r, 1, 40_001, T0 + 3), 0);
    assert_eq!(seq_of(&mut r, 1, 40_000, T0 + 4), 2);
    assert_eq!(r.counters().active_sessions, 3);
}

#[test]
fn junk_loops_and_small_buffers_get_no_reply() {
    let mut r = Reflector::new(ReflectorConfig::default());
    assert_eq!(
        reflect(&mut r, &[0u8; 43], src(40_000), T0),
        Err(DropReason::Junk { len: 43 })
    );
    assert_eq!(
        reflect(&mut r, &[], src(40_000), T0),
        Err(DropReason::Junk { len: 0 })
    );
    assert_eq!(
        reflect(&mut r, &request(0, 0, BASE_LEN), src(DEFAULT_PORT), T0),
        Err(DropReason::LoopGuard { port: DEFAULT_PORT })
    );
    let req = request(0, 0, 100);
    let d = Datagram {
        bytes: &req,
        src: src(40_000),
        rx: Nanos(T0),
        ttl: None,
    };
    let mut small = [0u8; 99];
    assert_eq!(
        r.reflect(&d, Nanos(T0), &mut small),
        Err(DropReason::BufferTooSmall {
            needed: 100,
            available: 99
        })
    );
    let c = r.counters();
    assert_eq!((c.received, c.reflected, c.junk, c.refused), (4, 0, 2, 2));
    assert_eq!(c.active_sessions, 0, "no session for dropped datagrams");
}

#[test]
fn rate_limit_per_source() {
    let mut r = Reflector::new(
        ReflectorConfig::builder()
            .rate_limit_pps(10)
            .rate_limit_burst(3)
            .build()
            .expect("valid reflector settings"),
    );
    let req = request(0, 0, BASE_LEN);
    let ok = (0..10)
        .filter(|_| reflect(&mut r, &req, src(40_000), T0).is_ok())
        .count();
    assert_eq!(ok, 3);
    assert_eq!(r.counters().rate_limited, 7);
    // 100 ms later one more token.
    assert!(reflect(&mut r, &req, src(40_000), T0 + 100_000_000).is_ok());
    assert!(reflect(&mut r, &req, src(40_000), T0 + 100_000_000).is_err());
}

#[test]
fn bounded_table_evicts_least_recent() {
    let mut r = Reflector::new(
        ReflectorConfig::builder()
            .max_sessions(2)
            .build()
            .expect("valid reflector settings"),
    );
    let seq = |r: &mut Reflector, port, t| {
        let reply = reflect(r, &request(0, 0, BASE_LEN), src(port), t).expect("reply");
        ReflectorPacket::new_checked(&reply[..])
            .expect("packet")
            .sequence_number()
    };
    assert_eq!(seq(&mut r, 1_001, T0), 0);
    assert_eq!(seq(&mut r, 1_002, T0 + 1), 0);
    assert_eq!(seq(&mut r, 1_001, T0 + 2), 1); // 1002 is now least recent
    assert_eq!(seq(&mut r, 1_003, T0 + 3), 0); // evicts 1002
    assert_eq!(seq(&mut r, 1_001, T0 + 4), 2);
    assert_eq!(seq(&mut r, 1_002, T0 + 5), 0, "evicted session starts over");
    let c = r.counters();
    assert_eq!(
        (c.evicted, c.active_sessions, c.sessions_created),
        (2, 2, 4)
    );
}

#[test]
fn idle_sessions_expire() {
    let mut r = Reflector::new(
        ReflectorConfig::builder()
            .idle_timeout(Duration::from_secs(10))
            .build()
            .expect("valid reflector settings"),
    );
    let req = request(0, 0, BASE_LEN);
    reflect(&mut r, &req, src(1_001), T0).expect("reply");
    reflect(&mut r, &req, src(1_002), T0 + 5_000_000_000).expect("reply");
    assert_eq!(
        r.expire(Nanos(T0 + 10_000_000_000)),
        0,
        "not yet idle past the timeout"
    );
    assert_eq!(r.expire(Nanos(T0 + 10_000_000_001)), 1);
    assert_eq!(r.counters().active_sessions, 1);
    // A datagram also expires idle sessions on its way.
    reflect(&mut r, &req, src(1_003), T0 + 16_000_000_000).expect("reply");
    let c = r.counters();
    assert_eq!((c.expired, c.active_sessions), (2, 1));
}

#[test]
fn clock_tlv_answered_with_reflector_facts() {
    let mut r = Reflector::new(
        ReflectorConfig::builder()
            .clock(synced_clock())
            .build()
            .expect("valid reflector settings"),
    );
    let mut req = request(0, 5, BASE_LEN + CLOCK_TLV_LEN);
    let sender = ClockInfo {
        boot_id: BootId([1; 16]),
        ..ClockInfo::default()
    };
    emit_clock_tlv(
        &mut req[BASE_LEN..],
        TlvFlags(TlvFlags::UNRECOGNIZED),
        &sender,
    )
    .expect("room");
    let reply = reflect(&mut r, &req, src(40_000), T0).expect("reply");
    assert_eq!(reply.len(), req.len());
    let tlv = Tlv::new_checked(&reply[BASE_LEN..]).expect("tlv");
    assert!(!tlv.flags().unrecognized());
    let info = ClockValue::new_checked(tlv.value())
        .expect("value")
        .to_info();
    assert_eq!(info, synced_clock());
    assert_eq!(tlv.total_len(), TLV_HEADER_LEN + 24);
}

/// Arbitrary datagrams, mostly garbage and some mutated real requests, never panic the
/// reflector, and no reply is ever longer than what came in.
#[test]
fn arbitrary_datagrams_never_panic_or_amplify() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut r = Reflector::new(
        ReflectorConfig::builder()
            .rate_limit_pps(0)
            .build()
            .expect("valid reflector settings"),
    );
    let mut out = [0u8; 2048];
    let mut answered = 0;
    for i in 0..20_000u64 {
        let mut bytes = if i % 2 == 0 {
            let len = rng.random_range(0..200);
            (0..len).map(|_| rng.random()).collect::<Vec<u8>>()
        } else {
            request(i as u32, rng.random(), rng.random_range(BASE_LEN..300))
        };
        // Flip a few bytes anywhere, TLV area included.
        for _ in 0..rng.random_range(0..4) {
            if !bytes.is_empty() {
                let at = rng.random_range(0..bytes.len());
                bytes[at] = rng.random();
            }
        }
        let d = Datagram {
            bytes: &bytes,
            src: src(rng.random_range(1024..1040)),
            rx: Nanos(T0 + i),
            ttl: None,
        };
        if let Ok(n) = r.reflect(&d, Nanos(T0 + i + 1), &mut out) {
            assert!(
                n <= bytes.len(),
                "reply of {n} octets to a {}-octet datagram",
                bytes.len()
            );
            answered += 1;
        }
    }
    assert!(answered > 5_000, "only {answered} answered");
}

/// RFC 8762 open mode answers any well-formed STAMP packet, of any length from 44 octets on,
/// with exactly as many octets as it received, however large the caller's buffer.
#[test]
fn replies_are_exactly_as_long_as_requests_from_44_octets() {
    let mut r = Reflector::new(
        ReflectorConfig::builder()
            .rate_limit_pps(0)
            .build()
            .expect("valid reflector settings"),
    );
    let mut out = vec![0xEEu8; 65_536];
    for len in [44, 45, 47, 48, 64, 100, 1_400, 1_473, 9_000, 65_507] {
        let req = request(1, 9, len);
        let d = Datagram {
            bytes: &req,
            src: src(40_000),
            rx: Nanos(T0),
            ttl: None,
        };
        assert_eq!(r.reflect(&d, Nanos(T0 + 1), &mut out), Ok(len), "{len}");
        assert!(
            out[len..].iter().all(|&b| b == 0xEE),
            "nothing written past {len} octets"
        );
    }
    // A real request cut to 43 octets is not STAMP: no reply.
    let cut = &request(1, 9, BASE_LEN)[..BASE_LEN - 1];
    assert_eq!(
        reflect(&mut r, cut, src(40_000), T0),
        Err(DropReason::Junk { len: 43 })
    );
    let c = r.counters();
    assert_eq!((c.received, c.reflected, c.junk), (11, 10, 1));
}

fn allow_only(prefixes: &[&str]) -> Reflector {
    let nets: Vec<ipnet::IpNet> = prefixes
        .iter()
        .map(|p| p.parse().expect("prefix"))
        .collect();
    Reflector::new(
        ReflectorConfig::builder()
            .allow(AllowList::new(&nets).expect("allow list"))
            .build()
            .expect("valid reflector settings"),
    )
}

#[test]
fn allow_list_answers_only_listed_sources_v4() {
    let mut r = allow_only(&["192.0.2.0/24", "198.51.100.9/32"]);
    let req = request(0, 0, BASE_LEN);
    let from = |a: &str| SocketAddr::new(a.parse().expect("addr"), 40_000);
    for (a, answered) in [
        ("192.0.2.1", true),
        ("192.0.2.254", true),
        ("198.51.100.9", true),
        ("198.51.100.10", false),
        ("203.0.113.1", false),
        ("::ffff:192.0.2.7", true),
        ("2001:db8::1", false),
    ] {
        let got = reflect(&mut r, &req, from(a), T0);
        if answered {
            assert!(got.is_ok(), "{a}: {got:?}");
        } else {
            assert_eq!(
                got,
                Err(DropReason::NotAllowed { addr: from(a).ip() }),
                "{a}"
            );
        }
    }
    // Not allowed comes first: junk from outside counts as not allowed.
    assert!(matches!(
        reflect(&mut r, &[0u8; 10], from("203.0.113.1"), T0),
        Err(DropReason::NotAllowed { .. })
    ));
    let c = r.counters();
    assert_eq!(
        (c.received, c.reflected, c.not_allowed, c.junk),
        (8, 4, 4, 0)
    );
    assert_eq!(c.active_sessions, 4, "no session for dropped sources");
}

#[test]
fn allow_list_answers_only_listed_sources_v6() {
    let mut r = allow_only(&["2001:db8:1::/48", "fd00::7/128"]);
    let req = request(0, 0, BASE_LEN);
    let from = |a: &str| SocketAddr::new(a.parse().expect("addr"), 40_000);
    let answered: Vec<bool> = [
        "2001:db8:1:2::3",
        "2001:db8:2::1",
        "fd00::7",
        "fd00::8",
        "192.0.2.1",
    ]
    .iter()
    .map(|a| reflect(&mut r, &req, from(a), T0).is_ok())
    .collect();
    assert_eq!(answered, [true, false, true, false, false]);
    assert_eq!(r.counters().not_allowed, 3);
}

/// Spraying 10 000 IPv4 sources at a reflector with buckets for 100: the first 100 get their
/// burst, all the others together one burst from the shared bucket; 10 000 addresses of one
/// IPv6 /64 are one source.
#[test]
fn rate_limit_holds_for_sprayed_sources() {
    let (burst, table) = (3u32, 100usize);
    let mut r = Reflector::new(
        ReflectorConfig::builder()
            .rate_limit_pps(10)
            .rate_limit_burst(burst)
            .max_sources(table)
            .max_sessions(65_536)
            .build()
            .expect("valid reflector settings"),
    );
    let req = request(0, 0, BASE_LEN);
    let mut answered = 0u64;
    for i in 0..10_000u32 {
        let from = SocketAddr::new(Ipv4Addr::from(0x0a00_0000 + i).into(), 40_000);
        for _ in 0..burst {
            answered += u64::from(reflect(&mut r, &req, from, T0).is_ok());
        }
    }
    assert_eq!(answered, (table as u64 + 1) * u64::from(burst));
    let c = r.counters();
    assert_eq!(c.rate_limited, 30_000 - answered);
    assert_eq!(c.rate_limit_shared, 3 * (10_000 - table as u64));
    assert_eq!(c.rate_limit_recycled, 0);

    let mut r6 = Reflector::new(
        ReflectorConfig::builder()
            .rate_limit_pps(10)
            .rate_limit_burst(burst)
            .build()
            .expect("valid reflector settings"),
    );
    let answered = (0..10_000u16)
        .filter(|&i| {
            let a = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, i, 1);
            reflect(&mut r6, &req, SocketAddr::new(a.into(), 40_000), T0).is_ok()
        })
        .count();
    assert_eq!(answered, burst as usize, "one /64, one bucket");
}

#[test]
fn restamp_moves_only_the_transmit_timestamp() {
    let mut r = Reflector::new(ReflectorConfig::default());
    let mut reply = reflect(&mut r, &request(5, 9, BASE_LEN), src(4000), T0).expect("reply");
    let before = reply.clone();
    Reflector::restamp(&mut reply, Nanos(T0 + 75_000));
    let p = ReflectorPacket::new_checked(&reply[..]).expect("reflector packet");
    assert_eq!(p.timestamp().decode(false), Nanos(T0 + 75_000));
    assert_eq!(p.receive_timestamp().decode(false), Nanos(T0));
    // Every octet but the 8 of the timestamp (offset 4) is unchanged.
    let changed: Vec<usize> = (0..reply.len())
        .filter(|&i| reply[i] != before[i])
        .collect();
    assert!(changed.iter().all(|i| (4..12).contains(i)), "{changed:?}");
    // Too short to be a reflector packet: untouched.
    let mut short = vec![7u8; BASE_LEN - 1];
    Reflector::restamp(&mut short, Nanos(T0));
    assert_eq!(short, vec![7u8; BASE_LEN - 1]);
}

#[test]
fn required_admission_answers_negotiated_sessions_only_and_counts_them() {
    let admission = Arc::new(Admission::new(true));
    let mut r = Reflector::new(ReflectorConfig::default());
    r.set_admission(Arc::clone(&admission));
    // Nothing negotiated: dropped and counted, whatever the SSID.
    let e = reflect(&mut r, &request(0, 7, BASE_LEN), src(40_000), T0).expect_err("dropped");
    assert!(
        matches!(e, DropReason::NotNegotiated { ssid: 7, .. }),
        "{e}"
    );
    let stats = admission.register(src(40_000).ip(), 7);
    for seq in 0..3 {
        reflect(&mut r, &request(seq, 7, BASE_LEN), src(40_000), T0 + 1_000).expect("answered");
    }
    // Same source, another SSID: still not negotiated.
    assert!(reflect(&mut r, &request(0, 8, BASE_LEN), src(40_000), T0 + 2_000).is_err());
    let c = r.counters();
    assert_eq!((c.not_negotiated, c.reflected), (2, 3));
    assert_eq!(
        stats.snapshot(),
        crate::a2a::SessionCounts {
            received: 3,
            reflected: 3,
            rate_limited: 0
        }
    );
    // Not required: everyone is answered, negotiated sessions still counted on their own.
    let open = Arc::new(Admission::new(false));
    let mut r = Reflector::new(ReflectorConfig::default());
    r.set_admission(Arc::clone(&open));
    let counted = open.register(src(40_001).ip(), 1);
    reflect(&mut r, &request(0, 9, BASE_LEN), src(40_002), T0).expect("plain sender answered");
    reflect(&mut r, &request(0, 1, BASE_LEN), src(40_001), T0).expect("negotiated answered");
    assert_eq!(counted.snapshot().reflected, 1);
    assert_eq!(r.counters().not_negotiated, 0);
}
