//! The multiplexer driven deterministically: many sessions toward many sans-IO reflectors
//! (and several toward one), each getting exactly its own replies, TX timestamps and ICMP
//! errors; one timer serving all deadlines; strays dropped and counted.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::a2a::test_fixture::{MS, T0, US, clock, test_session};
use crate::a2a::{
    Datagram, Limit, Pace, Reflector, ReflectorConfig, SenderConfig, SessionConfig, TestOutcome,
};

fn session(ssid: u16, count: u32) -> SenderSession {
    let pace = Pace::Interval(Duration::from_millis(10));
    test_session(ssid, pace, Limit::Count(count), None)
}

fn peer(i: u32) -> SocketAddr {
    let [_, _, a, b] = i.to_be_bytes();
    SocketAddr::from(([10, 80, a, b], 49_153))
}

/// The network: a sans-IO reflector per peer address, replies in flight, and what the test
/// wants to happen to the packets toward each peer.
struct Net {
    reflectors: HashMap<SocketAddr, Reflector>,
    /// (arrival time, from, bytes).
    inflight: Vec<(u64, SocketAddr, Vec<u8>)>,
    /// Peers that answer with an ICMP port unreachable instead.
    refusing: Vec<SocketAddr>,
    out: Vec<u8>,
}

impl Net {
    fn new() -> Self {
        Net {
            reflectors: HashMap::new(),
            inflight: Vec::new(),
            refusing: Vec::new(),
            out: vec![0; 2048],
        }
    }

    /// Runs `mux` until every session is done; returns the outcomes by tag.
    fn run(&mut self, mux: &mut SessionMux<u32>) -> HashMap<u32, TestOutcome> {
        let mut now = T0;
        let mut buf = vec![0u8; 2048];
        let mut id = 0u32;
        let mut outcomes = HashMap::new();
        for _ in 0..10_000_000 {
            self.inflight.sort_by_key(|(at, _, _)| *at);
            let due = self.inflight.partition_point(|(at, _, _)| *at <= now);
            for (at, from, bytes) in self.inflight.drain(..due) {
                mux.handle_datagram(from, &bytes, Nanos(at), Some(Nanos(at)));
            }
            mux.handle_timeout(Nanos(now));
            while let Some((key, to, t)) = mux.poll_transmit(Nanos(now), &mut buf) {
                mux.note_tx_id(key, &t, id);
                mux.handle_tx_timestamp(id, Nanos(now + 2 * US));
                id = id.wrapping_add(1);
                self.carry(to, &buf[..t.len], now + 2 * US, mux);
            }
            while let Some((_, s, tag)) = mux.poll_done() {
                assert!(s.is_done());
                outcomes.insert(tag, s.finish());
            }
            if mux.is_empty() {
                return outcomes;
            }
            let next_reply = self.inflight.iter().map(|(at, _, _)| *at).min();
            let next = mux.poll_timeout().map_or(u64::MAX, |t| t.0);
            now = next.min(next_reply.unwrap_or(u64::MAX)).max(now + 1);
        }
        panic!("the sessions did not end");
    }

    /// The packet sent to `to` at `t` reaches its reflector 1 ms later and comes back 1 ms
    /// after that; a refusing peer gets an ICMP error back instead.
    fn carry(&mut self, to: SocketAddr, pkt: &[u8], t: u64, mux: &mut SessionMux<u32>) {
        if self.refusing.contains(&to) {
            mux.handle_icmp_error(&IcmpError {
                icmpv6: false,
                offender: Some(to.ip()),
                icmp_type: 3,
                icmp_code: 3,
                info: 0,
                errno: libc::ECONNREFUSED,
                original_dst: Some(to),
                payload_len: 0,
                time: Nanos(t + MS),
                time_source: crate::report::TimestampSource::Kernel,
                ttl: None,
            });
            return;
        }
        let reflector = self.reflectors.entry(to).or_insert_with(|| {
            Reflector::new(
                ReflectorConfig::builder()
                    .clock(clock())
                    .rate_limit_pps(0)
                    .build()
                    .expect("valid reflector settings"),
            )
        });
        let d = Datagram {
            bytes: pkt,
            src: SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 40_000)),
            rx: Nanos(t + MS),
            ttl: Some(64),
        };
        if let Ok(n) = reflector.reflect(&d, Nanos(t + MS), &mut self.out) {
            self.inflight.push((t + 2 * MS, to, self.out[..n].to_vec()));
        }
    }
}

#[test]
fn many_sessions_each_get_exactly_their_replies() {
    let mut mux = SessionMux::new();
    let peers = 500;
    for i in 0..peers {
        mux.insert(peer(i), session(0x1000 + (i as u16 % 7), 20), i);
    }
    assert_eq!(mux.len(), peers as usize);
    let outcomes = Net::new().run(&mut mux);
    assert_eq!(outcomes.len(), peers as usize);
    for (tag, o) in &outcomes {
        assert!(o.answered, "session {tag}");
        assert_eq!(
            (o.report.sent, o.report.received),
            (20, 20),
            "session {tag}"
        );
        assert!(o.icmp_error.is_none());
    }
    assert_eq!(mux.unmatched(), 0);
    assert!(mux.is_empty() && mux.poll_timeout().is_none());
}

#[test]
fn sessions_toward_one_peer_are_told_apart_by_ssid() {
    let mut mux = SessionMux::new();
    let p = peer(1);
    mux.insert(p, session(0x0101, 10), 1);
    assert!(mux.ssid_in_use(p, 0x0101));
    // The hello SSID of a session is taken too.
    assert!(mux.ssid_in_use(p, 0x0101 ^ HELLO_SSID_FLIP));
    assert!(!mux.ssid_in_use(peer(2), 0x0101));
    mux.insert(p, session(0x0202, 30), 2);
    mux.insert(peer(2), session(0x0101, 5), 3);
    let outcomes = Net::new().run(&mut mux);
    let counts: Vec<(u64, u64)> = (1..=3)
        .map(|t| (outcomes[&t].report.sent, outcomes[&t].report.received))
        .collect();
    assert_eq!(counts, [(10, 10), (30, 30), (5, 5)]);
    assert_eq!(mux.unmatched(), 0);
}

#[test]
fn a_reply_to_no_session_is_dropped_and_counted() {
    let mut mux = SessionMux::new();
    let p = peer(1);
    let a = mux.insert(p, session(0x0101, 10), 1);
    mux.insert(p, session(0x0202, 10), 2);
    // From an address nobody measures.
    let stray = [0u8; 44];
    assert_eq!(mux.handle_datagram(peer(9), &stray, Nanos(T0), None), None);
    // From a measured peer with an SSID no session toward it has (all zero), and too short
    // to hold one.
    assert_eq!(mux.handle_datagram(p, &stray, Nanos(T0), None), None);
    assert_eq!(mux.handle_datagram(p, &[1, 2], Nanos(T0), None), None);
    assert_eq!(mux.unmatched(), 3);
    // A TX timestamp for an id nobody sent, and for a removed session: ignored.
    mux.handle_tx_timestamp(12_345, Nanos(T0));
    assert!(mux.remove(a).is_some());
    assert!(mux.remove(a).is_none());
    // The single session left toward the peer takes its replies without an SSID check.
    let outcomes = Net::new().run(&mut mux);
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[&2].report.received, 10);
}

#[test]
fn one_timer_serves_the_earliest_deadline_and_forgets_removed_sessions() {
    let mut mux = SessionMux::new();
    let mut buf = vec![0u8; 2048];
    // Nothing to time before any session.
    assert_eq!(mux.poll_timeout(), None);
    let a = mux.insert(peer(1), session(1, 10), 1);
    let b = mux.insert(peer(2), session(2, 10), 2);
    // New sessions are due at once.
    assert_eq!(mux.poll_timeout(), Some(Nanos::ZERO));
    mux.handle_timeout(Nanos(T0));
    let mut hellos = Vec::new();
    while let Some((key, to, t)) = mux.poll_transmit(Nanos(T0), &mut buf) {
        assert_eq!(t.seq, None, "hellos first");
        hellos.push((key, to));
    }
    assert_eq!(hellos, [(a, peer(1)), (b, peer(2))]);
    // Both wait for their next hello, 200 ms on.
    assert_eq!(mux.poll_timeout(), Some(Nanos(T0 + 200 * MS)));
    // Nothing is due before.
    mux.handle_timeout(Nanos(T0 + 100 * MS));
    assert!(mux.poll_transmit(Nanos(T0 + 100 * MS), &mut buf).is_none());
    // A removed session's deadline is skipped: only b sends its second hello.
    assert!(mux.remove(a).is_some());
    mux.handle_timeout(Nanos(T0 + 200 * MS));
    let sent: Vec<SessionKey> = std::iter::from_fn(|| {
        mux.poll_transmit(Nanos(T0 + 200 * MS), &mut buf)
            .map(|(k, _, _)| k)
    })
    .collect();
    assert_eq!(sent, [b]);
    assert_eq!(mux.len(), 1);
}

#[test]
fn an_icmp_error_reaches_every_session_toward_its_destination_only() {
    let mut mux = SessionMux::new();
    for i in 0..4 {
        mux.insert(peer(i), session(0x0300 + i as u16, 10), i);
    }
    mux.insert(peer(0), session(0x0400, 10), 10);
    let mut net = Net::new();
    net.refusing.push(peer(0));
    let outcomes = net.run(&mut mux);
    for tag in [0, 10] {
        let o = &outcomes[&tag];
        assert!(!o.answered);
        assert!(
            o.icmp_error
                .as_deref()
                .is_some_and(|e| e.contains("port unreachable")),
            "{tag}: {:?}",
            o.icmp_error
        );
    }
    for tag in 1..4 {
        assert!(outcomes[&tag].icmp_error.is_none());
        assert_eq!(outcomes[&tag].report.received, 10);
    }
}

#[test]
fn a_mesh_session_keeps_windows_for_its_timeout_not_its_length() {
    // A packet a second for 55 s with a 1 s reply timeout: a few packets in flight at once.
    let mut sc = SenderConfig::new("sim", 7);
    sc.clock = clock();
    let cfg = SessionConfig::builder()
        .pace(Pace::Interval(Duration::from_secs(1)))
        .limit(Limit::Count(55))
        .wait(Duration::from_secs(1))
        .build()
        .expect("valid session settings");
    let s = SenderSession::new(sc, cfg).expect("valid session");
    assert_eq!(s.sender().ring_capacity(), 16);
    // A packet every 10 ms with a 500 ms timeout: room for the 50 within it, not all 1000.
    let faster = session(1, 1000);
    assert_eq!(faster.sender().ring_capacity(), 64);
}
