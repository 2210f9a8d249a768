//! The sender driven against the sans-IO reflector over a simulated path.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::a2a::test_fixture::{MS, T0};
use crate::a2a::{Datagram, Reflector, ReflectorConfig};
use crate::report::A2aReport;
use crate::time::{BootId, ClockMode};
use crate::wire::stamp::ReflectorRepr;
const TURNAROUND: u64 = 50_000;

/// A simulated path: the reflector's clock runs `peer_offset` ns ahead of the sender's.
struct Sim {
    sender: Sender,
    reflector: Reflector,
    peer_offset: i64,
    /// Peer clock rate error (ns per ns since T0).
    drift: f64,
}

impl Sim {
    fn new(config: SenderConfig, reflector_clock: ClockInfo, peer_offset: i64) -> Self {
        Sim {
            sender: Sender::new(config, Nanos(T0)).expect("valid config"),
            reflector: Reflector::new(
                ReflectorConfig::builder()
                    .clock(reflector_clock)
                    .build()
                    .expect("valid reflector settings"),
            ),
            peer_offset,
            drift: 0.0,
        }
    }

    fn peer(&self, local: u64) -> Nanos {
        let drift = (self.drift * (local as i64 - T0 as i64) as f64).round() as i64;
        Nanos((local as i64 + self.peer_offset + drift) as u64)
    }

    /// Sends the next packet on schedule; returns (seq, bytes, local send time).
    fn send(&mut self) -> (u32, Vec<u8>, u64) {
        let at = self.sender.next_send_at().expect("more to send");
        let mut buf = vec![0u8; 2048];
        let sent = self.sender.emit_next(at, &mut buf).expect("emit");
        buf.truncate(sent.len);
        (sent.seq, buf, at.0)
    }

    /// The reflector takes `pkt` at local time `rx`; returns the reply and its local send time.
    fn reflect(&mut self, pkt: &[u8], rx: u64) -> (Vec<u8>, u64) {
        let mut out = vec![0u8; 2048];
        let d = Datagram {
            bytes: pkt,
            src: SocketAddr::from((Ipv4Addr::LOCALHOST, 40_000)),
            rx: self.peer(rx),
            ttl: Some(64),
        };
        let n = self
            .reflector
            .reflect(&d, self.peer(rx + TURNAROUND), &mut out)
            .expect("reflected");
        out.truncate(n);
        (out, rx + TURNAROUND)
    }

    /// A whole exchange with the given one-way delays; `None` drops that direction.
    fn exchange(&mut self, fwd: Option<u64>, rev: Option<u64>) -> Option<ReplyOutcome> {
        let (_, pkt, t1) = self.send();
        let (reply, t3) = self.reflect(&pkt, t1 + fwd?);
        Some(self.sender.on_reply(&reply, Nanos(t3 + rev?)))
    }
}

fn clock(id: u8, synchronized: bool, max_error_us: u64) -> ClockInfo {
    ClockInfo {
        boot_id: BootId([id; 16]),
        synchronized,
        max_error: Some(Duration::from_micros(max_error_us)),
    }
}

fn config(count: u32) -> SenderConfig {
    SenderConfig {
        limit: Limit::Count(count),
        interval: Duration::from_millis(10),
        ..SenderConfig::new("127.0.0.1:49153", 0x1234)
    }
}

fn hello(sim: &mut Sim) -> ReplyOutcome {
    let mut buf = vec![0u8; 2048];
    let n = sim
        .sender
        .emit_hello(Nanos(T0 - 100 * MS), &mut buf)
        .expect("hello");
    let (reply, t3) = sim.reflect(&buf[..n], T0 - 99 * MS);
    sim.sender.on_reply(&reply, Nanos(t3 + MS))
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn shared_clock_forward_loss_exactly_ten_percent() {
    let mut sim = Sim::new(config(100), clock(9, false, 0), 0);
    sim.sender.set_clock(clock(9, false, 0));
    assert_eq!(hello(&mut sim), ReplyOutcome::Hello { understood: true });
    for i in 0..100u32 {
        let fwd = (i % 10 != 9).then_some(10 * MS);
        sim.exchange(fwd, Some(2 * MS));
    }
    let r = sim.sender.finish();
    assert_eq!(
        (r.sent, r.received, r.lost, r.late, r.ignored),
        (100, 90, 10, 0, 0)
    );
    assert_eq!(r.clock.mode, ClockMode::Shared);
    assert_eq!(r.clock.basis.as_str(), "tlv");
    assert_eq!(r.forward.loss_pct, Some(10.0));
    assert_eq!(
        (r.forward.sent, r.forward.received, r.forward.lost),
        (100, 90, Some(10))
    );
    assert_eq!(r.reverse.loss_pct, Some(0.0));
    assert_eq!((r.reverse.sent, r.reverse.received), (90, 90));
    let f = r.forward.delay_ms.expect("forward delays");
    assert!(close(f.min, 10.0, 1e-6) && close(f.max, 10.0, 1e-6) && close(f.mean, 10.0, 1e-6));
    let b = r.reverse.delay_ms.expect("reverse delays");
    assert!(close(b.mean, 2.0, 1e-6) && close(b.max, 2.0, 1e-6));
    let rtt = r.rtt_ms.expect("rtt");
    assert!(close(rtt.mean, 12.0, 1e-6) && close(rtt.p99, 12.0, 0.02));
    assert_eq!(r.forward.jitter_ms, Some(0.0));
    assert_eq!(r.forward.ipdv_ms, Some(0.0));
    assert_eq!(r.reverse.ipdv_ms, Some(0.0));
    assert!(close(r.pps.expect("rate"), 100.0, 1e-9));
    assert!(close(r.duration_s, 0.99, 1e-12));
    assert_eq!(r.schedule_error_us.max, Some(0.0));
    assert_eq!((r.forward.duplicates, r.forward.reordered), (0, 0));
}

#[test]
fn estimated_offset_recovers_one_way_delays() {
    // Reflector clock 500 ms ahead, unsynchronized; forward 5 ms plus queueing, reverse 5 ms.
    let mut sim = Sim::new(config(200), clock(2, false, 1_000), 500 * MS as i64);
    for i in 0..200u64 {
        sim.exchange(Some(5 * MS + (i % 7) * MS), Some(5 * MS));
    }
    let r = sim.sender.finish();
    assert_eq!(r.clock.mode, ClockMode::Estimated);
    assert_eq!(r.clock.basis.as_str(), "error_estimate");
    let off = r.clock.offset_ms.expect("offset");
    assert!(close(off, 500.0, 1e-3), "offset {off}");
    // Half the 10 ms minimum round trip; every window holds an unqueued exchange.
    assert!(close(r.clock.error_ms.expect("error"), 5.0, 1e-3));
    let f = r.forward.delay_ms.expect("forward");
    assert!(close(f.min, 5.0, 1e-3) && close(f.max, 11.0, 1e-3), "{f:?}");
    let b = r.reverse.delay_ms.expect("reverse");
    assert!(close(b.mean, 5.0, 1e-3), "{b:?}");
    // Delay variation does not depend on the offset: |IPDV| is 1 ms six times in seven, 6 ms once.
    let ipdv = r.forward.ipdv_ms.expect("ipdv");
    assert!(close(ipdv, 12.0 / 7.0, 0.02), "ipdv {ipdv}");
    assert!(r.clock.note.expect("note").contains("same both ways"));
}

/// A drifting peer clock: the delays are corrected by the offset at the reference time and
/// the drift left over joins the error bound, which still covers the true delays.
#[test]
fn drift_residual_joins_the_error_bound() {
    // 50 ppm over 20 s: the offset moves by 1 ms across the test.
    let mut sim = Sim::new(config(2_000), clock(2, false, 1_000), 100 * MS as i64);
    sim.drift = 50e-6;
    for _ in 0..2_000 {
        sim.exchange(Some(5 * MS), Some(5 * MS));
    }
    let r = sim.sender.finish();
    assert_eq!(r.clock.mode, ClockMode::Estimated);
    let drift = r.clock.drift_ppm.expect("drift");
    assert!((drift - 50.0).abs() < 1.0, "drift {drift} ppm");
    let err = r.clock.error_ms.expect("error");
    // Half the 10 ms round trip plus about 50 ppm of the 10 s from the reference to the ends.
    assert!(err > 5.45 && err < 5.6, "error bound {err} ms");
    let f = r.forward.delay_ms.expect("forward");
    for v in [f.min, f.mean, f.max] {
        assert!(
            (v - 5.0).abs() <= err - 5.0 + 1e-3,
            "forward {v} ms outside the bound"
        );
    }
    assert!(
        f.max - f.min > 0.9,
        "the drift is left in the spread: {f:?}"
    );
}

#[test]
fn synced_by_error_estimates() {
    let mut sim = Sim::new(config(10), clock(2, true, 200), 0);
    sim.sender.set_clock(clock(1, true, 300));
    for _ in 0..10 {
        sim.exchange(Some(3 * MS), Some(MS));
    }
    let r = sim.sender.finish();
    assert_eq!(r.clock.mode, ClockMode::Synced);
    assert_eq!(r.clock.basis.as_str(), "error_estimate");
    // 0.3 ms local plus the reflector's 0.2 ms as its Error Estimate rounds it (up, < 1%).
    let err = r.clock.error_ms.expect("error");
    assert!((0.5..0.502).contains(&err), "error {err}");
    assert!(close(r.forward.delay_ms.expect("fwd").mean, 3.0, 1e-6));
}

#[test]
fn hello_tells_synced_and_foreign_reflectors_apart() {
    let mut sim = Sim::new(config(2), clock(2, true, 200), 0);
    sim.sender.set_clock(clock(1, true, 300));
    assert_eq!(hello(&mut sim), ReplyOutcome::Hello { understood: true });
    assert_eq!(sim.sender.peer_clock(), Some(clock(2, true, 200)));
    sim.exchange(Some(MS), Some(MS));
    let r = sim.sender.finish();
    assert_eq!(
        (r.clock.mode, r.clock.basis.as_str()),
        (ClockMode::Synced, "tlv")
    );
    assert!(close(r.clock.error_ms.expect("error"), 0.5, 1e-9));
    assert_eq!(sim.sender.hellos(), (1, 1));

    // A reflector that does not know the TLV returns it with U set: not understood.
    let mut s2 = Sender::new(config(1), Nanos(T0)).expect("sender");
    let mut buf = vec![0u8; 128];
    let n = s2.emit_hello(Nanos(T0), &mut buf).expect("hello");
    let mut reply = buf[..n].to_vec();
    ReflectorRepr {
        seq: 0,
        ssid: s2.hello_ssid(),
        ..ReflectorRepr::default()
    }
    .emit(&mut ReflectorPacket::new_unchecked(&mut reply[..]));
    assert_eq!(
        s2.on_reply(&reply, Nanos(T0 + MS)),
        ReplyOutcome::Hello { understood: false }
    );
    assert_eq!(s2.peer_clock(), None);
}

/// Reordering, duplicates and late replies, hand-scheduled: the reflector receives
/// 0 1 2 4 3 5 6 6 7 8 (9 lost forward); replies arrive r0 r1 r1 r2(late) r3 r4 r6 r7 r9 r8
/// (r5 lost on the way back).
#[test]
fn reorder_duplicate_late_and_split_loss() {
    let mut sim = Sim::new(config(10), clock(2, false, 0), 0);
    let pkts: Vec<(u32, Vec<u8>, u64)> = (0..10).map(|_| sim.send()).collect();
    let at = |seq: usize| pkts[seq].2;
    let mut replies = Vec::new();
    for (k, seq) in [0usize, 1, 2, 4, 3, 5, 6, 6, 7, 8].into_iter().enumerate() {
        let (reply, t3) = sim.reflect(&pkts[seq].1, at(seq) + 5 * MS + k as u64);
        replies.push((reply, t3));
    }
    let deliver = |sim: &mut Sim, i: usize, extra: u64| {
        let (reply, t3) = &replies[i];
        sim.sender.on_reply(reply, Nanos(t3 + MS + extra))
    };
    assert!(matches!(
        deliver(&mut sim, 0, 0),
        ReplyOutcome::Test { seq: 0, .. }
    ));
    assert!(matches!(
        deliver(&mut sim, 1, 0),
        ReplyOutcome::Test { seq: 1, .. }
    ));
    assert_eq!(
        deliver(&mut sim, 1, 0),
        ReplyOutcome::ReverseDuplicate { seq: 1 }
    );
    assert_eq!(
        deliver(&mut sim, 2, 4_000 * MS),
        ReplyOutcome::Late { seq: 2 }
    );
    for i in [3, 4, 6] {
        assert!(matches!(deliver(&mut sim, i, 0), ReplyOutcome::Test { .. }));
    }
    assert!(matches!(
        deliver(&mut sim, 7, 0),
        ReplyOutcome::Test {
            seq: 6,
            reflector_seq: 7,
            forward_duplicate: true,
            ..
        }
    ));
    for i in [9, 8] {
        assert!(matches!(deliver(&mut sim, i, 0), ReplyOutcome::Test { .. }));
    }
    // Not ours: another SSID, an unknown sequence number, junk, a stale timestamp.
    let mut other = replies[0].0.clone();
    other[14] ^= 0x01;
    assert_eq!(
        sim.sender.on_reply(&other, Nanos(T0)),
        ReplyOutcome::Ignored(IgnoreReason::OtherSession)
    );
    let mut unknown = replies[0].0.clone();
    unknown[24..28].copy_from_slice(&1_000u32.to_be_bytes());
    assert_eq!(
        sim.sender.on_reply(&unknown, Nanos(T0)),
        ReplyOutcome::Ignored(IgnoreReason::UnknownSeq)
    );
    assert_eq!(
        sim.sender.on_reply(&[0; 10], Nanos(T0)),
        ReplyOutcome::Ignored(IgnoreReason::Malformed)
    );
    let mut stale = replies[0].0.clone();
    stale[35] ^= 0x01;
    assert_eq!(
        sim.sender.on_reply(&stale, Nanos(T0)),
        ReplyOutcome::Ignored(IgnoreReason::StaleTimestamp)
    );

    let r = sim.sender.finish();
    assert_eq!(
        (r.sent, r.received, r.lost, r.late, r.ignored),
        (10, 7, 3, 1, 4)
    );
    assert_eq!((r.forward.received, r.forward.lost), (9, Some(1)));
    assert_eq!((r.forward.duplicates, r.forward.reordered), (1, 1));
    assert_eq!(
        (r.reverse.sent, r.reverse.received, r.reverse.lost),
        (10, 8, Some(2))
    );
    assert_eq!((r.reverse.duplicates, r.reverse.reordered), (1, 1));
    assert_eq!(r.reverse.loss_pct, Some(20.0));
}

#[test]
fn no_replies_gives_nulls_not_nan() {
    let mut sim = Sim::new(config(5), clock(2, false, 0), 0);
    for _ in 0..5 {
        sim.exchange(None, None);
    }
    let r: A2aReport = sim.sender.finish();
    assert_eq!((r.sent, r.received, r.loss_pct), (5, 0, Some(100.0)));
    assert!(r.rtt_ms.is_none() && r.forward.delay_ms.is_none() && r.reverse.jitter_ms.is_none());
    assert_eq!(r.clock.mode, ClockMode::Estimated);
    assert_eq!(r.clock.offset_ms, None);
    // Nothing came back: every packet counts as lost forward (the tail ambiguity).
    assert_eq!(r.forward.lost, Some(5));
    let json = serde_json::to_string(&r).expect("json");
    assert!(!json.contains("NaN"));
    assert!(json.contains("\"rtt_ms\":null"));
}

#[test]
fn kernel_tx_timestamp_corrects_t1() {
    let mut sim = Sim::new(config(1), clock(2, false, 0), 0);
    sim.sender.set_clock(clock(2, false, 0));
    assert_eq!(hello(&mut sim), ReplyOutcome::Hello { understood: true });
    let (seq, pkt, t1) = sim.send();
    assert!(sim.sender.on_tx_timestamp(seq, Nanos(t1 + 30_000)));
    assert!(!sim.sender.on_tx_timestamp(7, Nanos(t1)));
    let (reply, t3) = sim.reflect(&pkt, t1 + MS);
    let out = sim.sender.on_reply(&reply, Nanos(t3 + MS));
    assert!(
        matches!(
            out,
            ReplyOutcome::Test {
                rtt_ns: 1_970_000,
                ..
            }
        ),
        "{out:?}"
    );
    let r = sim.sender.finish();
    assert!(close(r.forward.delay_ms.expect("fwd").mean, 0.97, 1e-6));
}

#[test]
fn config_checks_and_packet_layout() {
    let bad = |f: fn(&mut SenderConfig)| {
        let mut c = config(1);
        f(&mut c);
        Sender::new(c, Nanos(T0)).err()
    };
    assert_eq!(bad(|c| c.size = 43), Some(SenderError::Size(43)));
    assert_eq!(
        bad(|c| c.interval = Duration::ZERO),
        Some(SenderError::ZeroInterval)
    );
    assert_eq!(
        bad(|c| c.limit = Limit::Count(0)),
        Some(SenderError::Count(0))
    );
    let mut c = config(1);
    c.limit = Limit::Duration(Duration::from_millis(95));
    assert_eq!(c.packet_count(), 10);
    c.limit = Limit::Duration(Duration::from_millis(100));
    assert_eq!(c.packet_count(), 10);

    c.size = 100;
    c.limit = Limit::Count(1);
    let mut s = Sender::new(c, Nanos(T0)).expect("sender");
    let mut buf = [0xFFu8; 200];
    assert_eq!(
        s.emit_next(Nanos(T0), &mut buf[..99]).err(),
        Some(SenderError::BufferTooSmall {
            needed: 100,
            available: 99
        })
    );
    let sent = s.emit_next(Nanos(T0 + 7_000), &mut buf).expect("emit");
    assert_eq!((sent.seq, sent.len, sent.planned), (0, 100, Nanos(T0)));
    let p = SenderPacket::new_checked(&buf[..100]).expect("packet");
    assert_eq!(p.ssid(), 0x1234);
    assert_eq!(p.timestamp().to_nanos(), Nanos(T0 + 7_000));
    assert_eq!(
        p.tlv_area()[..4],
        [0x80, 0x01, 0x00, 52],
        "Extra Padding TLV, U set"
    );
    assert!(p.tlv_area()[4..].iter().all(|&b| b == 0));
    assert_eq!(
        s.emit_next(Nanos(T0), &mut buf).err(),
        Some(SenderError::Complete(1))
    );
    assert!(s.is_complete());
    assert_eq!(s.done_at(), Some(Nanos(T0 + 7_000 + 3_000 * MS)));
    assert_eq!(s.finish().schedule_error_us.mean, Some(7.0));
}

#[test]
fn endless_forward_duplicates_are_bounded() {
    let mut sim = Sim::new(config(1), clock(2, false, 0), 0);
    let (_, pkt, t1) = sim.send();
    let mut outcomes = Vec::new();
    // The same packet reflected 100 times: each reply has a new reflector number.
    for k in 0..100 {
        let (reply, t3) = sim.reflect(&pkt, t1 + MS + k);
        outcomes.push(sim.sender.on_reply(&reply, Nanos(t3 + MS)));
    }
    let kept = outcomes
        .iter()
        .filter(|o| matches!(o, ReplyOutcome::Test { .. }))
        .count();
    assert_eq!(kept, 66, "2 * sent + 64 replies kept");
    assert_eq!(
        outcomes.last(),
        Some(&ReplyOutcome::Ignored(IgnoreReason::TooManyReplies))
    );
    let r = sim.sender.finish();
    assert_eq!((r.received, r.forward.duplicates, r.ignored), (1, 65, 34));
}

#[test]
fn forced_clock_mode() {
    let mut c = config(3);
    c.clock_mode = Some(ClockMode::Shared);
    let mut sim = Sim::new(c, clock(2, false, 0), 0);
    for _ in 0..3 {
        sim.exchange(Some(4 * MS), Some(MS));
    }
    let r = sim.sender.finish();
    assert_eq!(
        (r.clock.mode, r.clock.basis.as_str()),
        (ClockMode::Shared, "configured")
    );
    assert!(close(r.forward.delay_ms.expect("fwd").mean, 4.0, 1e-6));
}

/// Arbitrary datagrams arriving at the sender never panic it and never count as replies
/// unless they echo a packet it sent.
#[test]
fn arbitrary_datagrams_never_panic_the_sender() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut s = Sender::new(config(10), Nanos(1_000_000_000)).expect("sender");
    let mut buf = [0u8; 128];
    for _ in 0..10 {
        let at = s.next_send_at().expect("planned");
        s.emit_next(at, &mut buf).expect("emit");
    }
    for i in 0..20_000u64 {
        let len = rng.random_range(0..200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let outcome = s.on_reply(&bytes, Nanos(2_000_000_000 + i));
        assert!(
            matches!(outcome, ReplyOutcome::Ignored(_)),
            "random bytes taken as {outcome:?}"
        );
    }
    let report = s.finish();
    assert_eq!(report.received, 0);
    assert_eq!(report.ignored, 20_000);
}

#[test]
fn user_space_round_trip_brackets_the_kernel_one() {
    // Kernel TX timestamps 7 µs after the user-space send time, user space gets each reply
    // 20 µs after the kernel stamped it: the user-space round trip is the kernel one plus
    // 27 µs plus the reflector's turnaround (which `rtt_ms` nets out and user space sees).
    let mut sim = Sim::new(config(50), clock(9, false, 0), 0);
    sim.sender.set_clock(clock(9, false, 0));
    hello(&mut sim);
    for i in 0..50u64 {
        let (seq, pkt, t1) = sim.send();
        assert!(sim.sender.on_tx_timestamp(seq, Nanos(t1 + 7_000)));
        let fwd = MS + i * 10_000;
        let (reply, t3) = sim.reflect(&pkt, t1 + fwd);
        let rx = t3 + 2 * MS;
        let out = sim
            .sender
            .on_reply_at(&reply, Nanos(rx), Some(Nanos(rx + 20_000)));
        assert!(matches!(out, ReplyOutcome::Test { .. }), "{out:?}");
    }
    let r = sim.sender.finish();
    let (k, u) = (r.rtt_ms.expect("rtt"), r.rtt_user_ms.expect("user rtt"));
    let extra_ms = (7_000.0 + 20_000.0 + TURNAROUND as f64) / 1e6;
    assert!(close(u.min, k.min + extra_ms, 1e-3), "{k:?} {u:?}");
    assert!(close(u.mean, k.mean + extra_ms, 1e-3), "{k:?} {u:?}");
    assert!(close(u.max, k.max + extra_ms, 0.01), "{k:?} {u:?}");
    assert!(u.min >= k.max.min(k.min) && u.p50 > k.p50);
    let json = serde_json::to_value(&r).expect("json");
    assert!(json["rtt_user_ms"]["p50"].is_number(), "{json}");
}

#[test]
fn replies_read_at_the_readers_pace_give_no_user_space_round_trip() {
    let mut sim = Sim::new(config(10), clock(9, false, 0), 0);
    sim.sender.set_clock(clock(9, false, 0));
    hello(&mut sim);
    for _ in 0..10 {
        let (_, pkt, t1) = sim.send();
        let (reply, t3) = sim.reflect(&pkt, t1 + MS);
        let out = sim.sender.on_reply_at(&reply, Nanos(t3 + MS), None);
        assert!(matches!(out, ReplyOutcome::Test { .. }), "{out:?}");
    }
    let r = sim.sender.finish();
    assert_eq!(r.received, 10);
    assert!(r.rtt_ms.is_some());
    assert_eq!(r.rtt_user_ms, None);
}
#[path = "sender_auth_tests.rs"]
mod auth;

#[test]
fn a_slow_schedule_widens_the_offset_windows_to_hold_several_exchanges() {
    let mut c = SenderConfig::new("sim", 1);
    c.interval = Duration::from_secs(1);
    c.limit = Limit::Count(55);
    assert_eq!(c.effective_offset_window(), Duration::from_secs(8));
    let s = Sender::new(c.clone(), Nanos(T0)).expect("valid config");
    // 55 s of packets: room for 7 windows' minima, not 56.
    assert!(
        s.offset.points_capacity() < 16,
        "{}",
        s.offset.points_capacity()
    );
    c.interval = Duration::from_millis(10);
    assert_eq!(c.effective_offset_window(), c.offset_window);
}
