//! The session machine driven deterministically against the sans-IO reflector: phases,
//! flood window, give-up, transmit ids, interval reports, and memory that does not grow.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::a2a::test_fixture::{MS, T0, US, clock, test_session};
use crate::a2a::{Datagram, MAX_RING, Reflector, ReflectorConfig};
use crate::time::ClockMode;

fn session(pace: Pace, limit: Limit, report_interval: Option<Duration>) -> SenderSession {
    test_session(0x4242, pace, limit, report_interval)
}

/// A loopback path through the sans-IO reflector (same clock: mode `shared`), with per-packet
/// fates decided by the test.
struct Path {
    reflector: Reflector,
    /// Datagrams on their way back: (arrival time, bytes).
    inflight: Vec<(u64, Vec<u8>)>,
    out: Vec<u8>,
}

impl Path {
    fn new() -> Self {
        Path {
            reflector: Reflector::new(
                ReflectorConfig::builder()
                    .clock(clock())
                    .rate_limit_pps(0)
                    .build()
                    .expect("valid reflector settings"),
            ),
            inflight: Vec::new(),
            out: vec![0; 2048],
        }
    }

    /// The packet sent at `t` reaches the reflector after `fwd` ns and comes back `rev` later.
    fn carry(&mut self, pkt: &[u8], t: u64, fwd: u64, rev: u64) {
        let d = Datagram {
            bytes: pkt,
            src: SocketAddr::from((Ipv4Addr::LOCALHOST, 40_000)),
            rx: Nanos(t + fwd),
            ttl: Some(64),
        };
        if let Ok(n) = self.reflector.reflect(&d, Nanos(t + fwd), &mut self.out) {
            self.inflight.push((t + fwd + rev, self.out[..n].to_vec()));
        }
    }

    /// Delivers every reply due by `now`.
    fn deliver(&mut self, s: &mut SenderSession, now: u64) {
        self.inflight.sort_by_key(|(at, _)| *at);
        let due = self.inflight.partition_point(|(at, _)| *at <= now);
        for (at, bytes) in self.inflight.drain(..due) {
            s.handle_datagram(&bytes, Nanos(at));
        }
    }
}

/// Runs `s` to the end on a simulated clock; `fate(seq)` gives the one-way delays or `None`
/// for a lost packet. Returns the interval reports.
fn run(
    s: &mut SenderSession,
    path: &mut Path,
    fate: impl Fn(Option<u32>) -> Option<(u64, u64)>,
) -> Vec<IntervalReport> {
    let mut now = T0;
    let mut buf = vec![0u8; 2048];
    let mut reports = Vec::new();
    let mut id = 0u32;
    for _ in 0..50_000_000 {
        path.deliver(s, now);
        s.handle_timeout(Nanos(now));
        reports.extend(s.poll_report());
        while let Some(tx) = s.poll_transmit(Nanos(now), &mut buf) {
            s.note_tx_id(&tx, id);
            // A timestamp never moves the deadline (the session multiplexer does not serve a
            // session again for one).
            let due = s.poll_timeout();
            s.handle_tx_timestamp(id, Nanos(now + 2 * US));
            assert_eq!(s.poll_timeout(), due, "a TX timestamp moved the deadline");
            id = id.wrapping_add(1);
            if let Some((fwd, rev)) = fate(tx.seq) {
                path.carry(&buf[..tx.len], now + 2 * US, fwd, rev);
            }
        }
        if s.is_done() {
            return reports;
        }
        let next_reply = path.inflight.iter().map(|(at, _)| *at).min();
        let next = s.poll_timeout().map_or(u64::MAX, |t| t.0);
        now = next.min(next_reply.unwrap_or(u64::MAX)).max(now + 1);
    }
    panic!("the session did not end");
}

/// Every 10th test packet lost forward, every 7th reply lost back (10 s late); 3 ms forward,
/// 1 ms back; hellos 1 ms each way.
fn lossy(seq: Option<u32>) -> Option<(u64, u64)> {
    match seq {
        None => Some((MS, MS)),
        Some(n) if n % 10 == 9 => None,
        Some(n) if n % 7 == 6 => Some((MS, 10_000 * MS)),
        Some(_) => Some((3 * MS, MS)),
    }
}

#[test]
fn isochronous_test_with_hello_loss_and_intervals() {
    let mut s = session(
        Pace::Interval(Duration::from_millis(10)),
        Limit::Count(300),
        Some(Duration::from_secs(1)),
    );
    let mut path = Path::new();
    let reports = run(&mut s, &mut path, lossy);
    let o = s.finish();
    let r = &o.report;
    assert!(o.answered && !o.aborted_no_answer);
    assert_eq!(r.clock.mode, ClockMode::Shared);
    assert_eq!(r.sent, 300);
    assert_eq!(r.forward.lost, Some(30));
    // Replies of packets 6, 13, ... (not also lost forward) never come back in time.
    let rev_lost = (0..300u32).filter(|n| n % 10 != 9 && n % 7 == 6).count() as u64;
    assert_eq!(r.reverse.lost, Some(rev_lost));
    assert_eq!(r.received, 270 - rev_lost);
    let f = r.forward.delay_ms.expect("forward delays");
    assert!(
        (f.min - 3.0).abs() < 1e-6 && (f.max - 3.0).abs() < 1e-6,
        "{f:?}"
    );
    // Kernel TX timestamps (2 us after the stamp) were mapped back: rtt is 4 ms exactly.
    let rtt = r.rtt_ms.expect("rtt");
    assert!(
        (rtt.min - 4.0).abs() < 1e-6 && (rtt.max - 4.0).abs() < 1e-6,
        "{rtt:?}"
    );
    let sched = r.schedule_error_us;
    assert_eq!(
        (sched.p50, sched.p99, sched.max),
        (Some(0.0), Some(0.0), Some(0.0))
    );
    // 3 s of sending: three interval reports, the last a partial one; totals add up.
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert_eq!(reports.iter().map(|i| i.sent).sum::<u64>(), 300);
    assert_eq!(reports.iter().map(|i| i.received).sum::<u64>(), r.received);
    let first = &reports[0];
    assert_eq!(first.forward.loss_pct, Some(10.0), "{first:?}");
    assert!((first.rtt_p50_ms.expect("rtt") - 4.0).abs() < 0.01);
    assert!((first.pps.expect("pps") - 100.0).abs() < 1.0);
}

/// The timeline (when enabled) adds up to the report: every packet in one bucket, the
/// buckets' losses to the report's, the delays as the path made them.
#[test]
fn timeline_adds_up_to_the_report() {
    let mut s = session(
        Pace::Interval(Duration::from_millis(1)),
        Limit::Count(3000),
        None,
    );
    s.enable_timeline();
    let mut path = Path::new();
    run(&mut s, &mut path, lossy);
    let r = s.finish().report;
    let t = r.timeline.as_ref().expect("timeline");
    assert_eq!((t.bucket_packets, t.buckets.len()), (3, 1000));
    assert_eq!(t.buckets.iter().map(|b| b.sent).sum::<u64>(), r.sent);
    assert_eq!(t.buckets.iter().map(|b| b.lost).sum::<u64>(), r.lost);
    assert!(r.lost > 0);
    for b in &t.buckets {
        if let Some(f) = b.forward_ms {
            assert!(
                (f.min - 3.0).abs() < 1e-6 && (f.max - 3.0).abs() < 1e-6,
                "{b:?}"
            );
        }
        if let Some(x) = b.rtt_ms {
            assert!((x.mean - 4.0).abs() < 1e-6, "{b:?}");
        }
    }
    assert!(
        (t.buckets[1].start_s - 0.003).abs() < 1e-9,
        "{:?}",
        t.buckets[1]
    );

    // Not asked for: not in the report, nor in its JSON.
    let mut s = session(
        Pace::Interval(Duration::from_millis(10)),
        Limit::Count(10),
        None,
    );
    run(&mut s, &mut Path::new(), |_| Some((MS, MS)));
    let r = s.finish().report;
    assert!(r.timeline.is_none());
    let json = serde_json::to_string(&r).expect("json");
    assert!(!json.contains("timeline"));
}

#[test]
fn flood_window_and_stall() {
    let mut s = session(Pace::Max { window: 8 }, Limit::Count(1_000), None);
    let mut path = Path::new();
    // Every packet 100..=107 is lost: the window stalls once, 10 ms, then goes on.
    run(&mut s, &mut path, |seq| match seq {
        Some(n) if (100..108).contains(&n) => None,
        _ => Some((20 * US, 20 * US)),
    });
    let o = s.finish();
    assert_eq!((o.report.sent, o.report.received), (1_000, 992));
    assert_eq!(o.report.schedule_error_us, ScheduleErrorReport::default());
    // 8 in flight at 40 us a round trip, plus one 10 ms stall.
    let d = o.report.duration_s;
    assert!(d > 0.010 && d < 0.020, "duration {d}");
}

#[test]
fn flood_for_a_duration() {
    let mut s = session(
        Pace::Max { window: 4 },
        Limit::Duration(Duration::from_millis(50)),
        None,
    );
    let mut path = Path::new();
    run(&mut s, &mut path, |_| Some((50 * US, 50 * US)));
    let r = s.finish().report;
    // 4 packets per 102 us round trip (2 us to the TX timestamp) for 50 ms.
    assert!((1_950..=1_970).contains(&r.sent), "sent {}", r.sent);
    assert_eq!(r.received, r.sent);
}

#[test]
fn gives_up_when_nothing_answers() {
    let mut s = session(
        Pace::Interval(Duration::from_millis(100)),
        Limit::Count(1_000),
        None,
    );
    let mut path = Path::new();
    run(&mut s, &mut path, |_| None);
    let o = s.finish();
    assert!(!o.answered && o.aborted_no_answer);
    // Three hellos 200 ms apart, the last waited for, then 2 s of test packets.
    assert_eq!(s.sender().hellos(), (3, 0));
    assert!((20..=21).contains(&o.report.sent), "sent {}", o.report.sent);
}

#[test]
fn icmp_unreachable_stops_the_test() {
    let mut s = session(
        Pace::Interval(Duration::from_millis(10)),
        Limit::Count(1_000),
        None,
    );
    let mut buf = [0u8; 256];
    let tx = s.poll_transmit(Nanos(T0), &mut buf).expect("hello");
    assert_eq!(tx.seq, None);
    s.handle_icmp_error(&IcmpError {
        icmpv6: false,
        offender: Some(Ipv4Addr::new(192, 0, 2, 7).into()),
        icmp_type: 3,
        icmp_code: 3,
        info: 0,
        errno: libc::ECONNREFUSED,
        original_dst: None,
        payload_len: 0,
        time: Nanos(T0),
        time_source: crate::time::TimestampSource::Kernel,
        ttl: None,
    });
    assert_eq!(s.poll_transmit(Nanos(T0 + MS), &mut buf), None);
    assert!(s.is_done());
    let o = s.finish();
    assert!(o.aborted_no_answer);
    assert_eq!(
        o.icmp_error.as_deref(),
        Some("ICMP port unreachable from 192.0.2.7")
    );
}

#[test]
fn tx_id_ring_matches_only_ids_it_holds() {
    let mut s = session(Pace::Max { window: 3_000 }, Limit::Count(3_000), None);
    let mut buf = [0u8; 256];
    // Hellos are skipped for this check: answer none, run past them.
    let mut now = T0;
    while s.sender().sent() < 3_000 {
        now += 300 * MS;
        s.handle_timeout(Nanos(now));
        while let Some(tx) = s.poll_transmit(Nanos(now), &mut buf) {
            if let Some(seq) = tx.seq {
                s.note_tx_id(&tx, seq + 10);
            }
        }
    }
    // Id 2 010 (seq 2 000) is in the ring; id 10 (seq 0) was overwritten by id 1 034.
    s.handle_tx_timestamp(2_010, Nanos(now + 5));
    s.handle_tx_timestamp(10, Nanos(now + 7));
    let ring = &s.sender().ring;
    assert_eq!(ring.get(2_000).map(|x| x.t1), Some(Nanos(now + 5)));
    assert_ne!(ring.get(0).map(|x| x.t1), Some(Nanos(now + 7)));
}

/// The state of a 10-million-packet test is the state of a short one: the ring, histograms
/// and buffers are sized when the session is made and the run does not grow them.
#[test]
fn memory_is_fixed_for_ten_million_packets() {
    let ten_k = session(Pace::Max { window: 256 }, Limit::Count(10_000), None);
    let ten_m = session(Pace::Max { window: 256 }, Limit::Count(10_000_000), None);
    let max = session(Pace::Max { window: 256 }, Limit::Count(u32::MAX - 1), None);
    assert_eq!(ten_k.sender().ring_capacity(), 16_384);
    assert_eq!(ten_m.sender().ring_capacity(), MAX_RING);
    assert_eq!(max.sender().ring_capacity(), MAX_RING);

    // Run a long stretch of the 10M test through the reflector: the ring and the estimator
    // stay at their sizes; packets older than the ring answer late.
    let mut s = ten_m;
    let mut path = Path::new();
    let mut buf = vec![0u8; 256];
    let mut now = T0;
    let mut old = None;
    while s.sender().sent() < 300_000 {
        path.deliver(&mut s, now);
        s.handle_timeout(Nanos(now));
        while let Some(tx) = s.poll_transmit(Nanos(now), &mut buf) {
            match tx.seq {
                // Keep packet 5's reply to deliver after the ring wrapped.
                Some(5) => old = Some(buf[..tx.len].to_vec()),
                _ => path.carry(&buf[..tx.len], now, 10 * US, 10 * US),
            }
        }
        now += 20 * US;
    }
    assert_eq!(s.sender().ring_capacity(), MAX_RING);
    assert!(s.sender().offset.points() <= crate::time::OFFSET_MAX_POINTS);
    let mut out = vec![0u8; 256];
    let pkt = old.expect("packet 5 was sent");
    let n = path
        .reflector
        .reflect(
            &Datagram {
                bytes: &pkt,
                src: SocketAddr::from((Ipv4Addr::LOCALHOST, 40_000)),
                rx: Nanos(now),
                ttl: None,
            },
            Nanos(now),
            &mut out,
        )
        .expect("reflected");
    assert_eq!(
        s.handle_datagram(&out[..n], Nanos(now)),
        ReplyOutcome::Late { seq: 5 }
    );
    let r = s.finish().report;
    assert_eq!(r.late, 1);
    assert!(r.received >= 299_000, "received {}", r.received);
    assert_eq!(r.forward.duplicates, 0);
}

#[test]
fn planned_durations() {
    let ms10 = Pace::Interval(Duration::from_millis(10));
    assert_eq!(
        planned_duration(ms10, Limit::Count(300)),
        Some(Duration::from_secs(3))
    );
    assert_eq!(
        planned_duration(Pace::Max { window: 1 }, Limit::Count(3)),
        None
    );
    let d = Duration::from_secs(5);
    assert_eq!(
        planned_duration(Pace::Max { window: 1 }, Limit::Duration(d)),
        Some(d)
    );
}

#[test]
fn a_session_stays_small() {
    // An agent keeps one session per peer in flight, thousands at once: the optional parts
    // are boxed, so a plain session is about 2 KB on 64-bit targets.
    let size = std::mem::size_of::<SenderSession>();
    assert!(size <= 2304, "a SenderSession takes {size} bytes");
}
