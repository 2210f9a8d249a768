//! The sans-IO STAMP reflector: arbitrary datagram and source in, reply out.
//!
//! One reflector lives for the whole fuzzing run, so sessions, evictions, expiry and rate
//! limits build up across inputs. Input: octet 0 picks the source address (one of 8 IPv4 and 8
//! IPv6 hosts) and whether a TTL is reported, octets 1..3 the source port (a few values, the
//! reflector's own port among them), octets 3..5 how far the clock moves (forward, or back
//! when the top bit is set), octet 5 how much larger than the datagram the reply buffer is;
//! the rest is the datagram.
//!
//! Checks: a reply is exactly as long as the request (never larger, nothing written past it),
//! never produced for fewer than 44 octets, and echoes the sender's fields; the counters add
//! up and the session table stays within its bound.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use probe_core::a2a::{AllowList, DEFAULT_PORT, Datagram, DropReason, Reflector, ReflectorConfig};
use probe_core::time::{BootId, ClockInfo, Nanos, NtpTimestamp};
use probe_core::wire::stamp::{BASE_LEN, ReflectorPacket, ReflectorRepr, SenderPacket};

const MAX_SESSIONS: usize = 8;
const SENTINEL: u8 = 0xC3;

struct State {
    reflector: Reflector,
    now: u64,
}

static STATE: LazyLock<Mutex<State>> = LazyLock::new(|| {
    Mutex::new(State {
        reflector: Reflector::new(
            ReflectorConfig::builder()
                .max_sessions(MAX_SESSIONS)
                .idle_timeout(Duration::from_millis(50))
                .rate_limit_pps(1_000)
                .rate_limit_burst(20)
                .max_sources(4)
                .allow(AllowList::default())
                .loop_guard_port(Some(DEFAULT_PORT))
                .clock(ClockInfo {
                    boot_id: BootId([0x11; 16]),
                    synchronized: false,
                    max_error: None,
                })
                .build()
                .expect("valid reflector settings"),
        ),
        now: 1_700_000_000_000_000_000,
    })
});

fuzz_target!(|data: &[u8]| {
    let Some((head, bytes)) = data.split_at_checked(6) else {
        return;
    };
    let host = head[0] & 7;
    let ip = if head[0] & 8 == 0 {
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, host))
    } else {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(host)))
    };
    let ttl = (head[0] & 0x10 != 0).then_some(head[0]);
    let port = match head[1] % 4 {
        0 => DEFAULT_PORT,
        p => 40_000 + u16::from(p) + u16::from(head[2] % 2),
    };
    let step = u64::from(u16::from_be_bytes([head[3] & 0x7F, head[4]])) * 100_000;

    let mut state = STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    state.now = if head[3] & 0x80 == 0 {
        state.now.saturating_add(step)
    } else {
        state.now.saturating_sub(step)
    };
    let rx = Nanos(state.now);
    let tx = Nanos(state.now + 10_000);
    let mut out = vec![SENTINEL; bytes.len() + usize::from(head[5] % 4)];
    let dgram = Datagram {
        bytes,
        src: SocketAddr::new(ip, port),
        rx,
        ttl,
    };
    let before = state.reflector.counters();
    let result = state.reflector.reflect(&dgram, tx, &mut out);
    let after = state.reflector.counters();
    assert_eq!(after.received, before.received + 1);
    assert_eq!(
        after.received,
        after.reflected + after.junk + after.rate_limited + after.refused + after.not_allowed
    );
    assert!(after.active_sessions <= MAX_SESSIONS as u64);

    match result {
        Ok(n) => {
            assert!(
                bytes.len() >= BASE_LEN,
                "no reply to {} octets",
                bytes.len()
            );
            assert_eq!(n, bytes.len(), "reply exactly as long as the request");
            assert!(
                out[n..].iter().all(|&b| b == SENTINEL),
                "nothing past the reply"
            );
            assert_ne!(port, DEFAULT_PORT);
            let req = SenderPacket::new_checked(bytes).expect("request");
            let reply = ReflectorPacket::new_checked(&out[..n]).expect("reply");
            let r = ReflectorRepr::parse(&reply);
            assert_eq!(r.ssid, req.ssid());
            assert_eq!(r.sender_seq, req.sequence_number());
            assert_eq!(r.sender_timestamp, req.timestamp());
            assert_eq!(r.sender_error_estimate, req.error_estimate());
            assert_eq!(r.sender_ttl, ttl.unwrap_or(0));
            assert_eq!(r.receive_timestamp, NtpTimestamp::from_nanos(rx));
            assert_eq!(r.timestamp, NtpTimestamp::from_nanos(tx));
        }
        Err(DropReason::Junk { len }) => {
            assert_eq!(len, bytes.len());
            assert!(len < BASE_LEN);
        }
        Err(DropReason::LoopGuard { port: p }) => assert_eq!(p, DEFAULT_PORT),
        Err(DropReason::BufferTooSmall { .. }) => unreachable!("the buffer always fits"),
        Err(DropReason::RateLimited) => {}
        Err(DropReason::NotAllowed { .. }) => unreachable!("no allow list: everyone is answered"),
        Err(DropReason::AuthFailed | DropReason::Unauthenticated) => {
            unreachable!("no keyring: every sender is answered unauthenticated")
        }
        Err(DropReason::NotNegotiated { .. }) => {
            unreachable!("no admission registry: sessions need no negotiation")
        }
    }
    if bytes.len() < BASE_LEN {
        assert!(result.is_err());
    }
});
