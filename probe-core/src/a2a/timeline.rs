//! The bounded time series of a test (the report's `timeline`), sans-IO and in constant
//! memory: at most [`MAX_BUCKETS`] buckets of consecutive sequence numbers, each with counts
//! and min / sum / max accumulators. When the test outgrows them, neighbouring buckets merge
//! pairwise and the width doubles, so every figure stays exact (a mean is a sum and a count).
//!
//! One-way delays arrive on the provisional clock offset of the sender; [`Recorder::report`]
//! moves them to the final one, as [`Sender::finish`](super::sender::Sender::finish) does
//! for the summaries.

use crate::report::{ClockReport, Spread, Timeline, TimelineBucket};
use crate::time::{ClockMode, Nanos};

use crate::report::timeline::MAX_BUCKETS;

/// Min, max, sum and count of a series, ns.
#[derive(Clone, Copy, Debug, Default)]
struct Acc {
    n: u64,
    min: i64,
    max: i64,
    sum: i128,
}

impl Acc {
    fn add(&mut self, v: i64) {
        if self.n == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.n += 1;
        self.sum += i128::from(v);
    }

    fn merge(&mut self, o: &Acc) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.n += o.n;
        self.sum += o.sum;
    }

    /// In ms, shifted by `shift_ns`.
    fn spread(&self, shift_ns: f64) -> Option<Spread> {
        (self.n > 0).then(|| {
            let ms = |ns: f64| (ns + shift_ns) / 1e6;
            Spread::new(
                ms(self.min as f64),
                ms(self.sum as f64 / self.n as f64),
                ms(self.max as f64),
            )
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    first_seq: u32,
    start: Nanos,
    sent: u64,
    received: u64,
    rtt: Acc,
    fwd: Acc,
    rev: Acc,
}

impl Bucket {
    fn merge(&mut self, o: &Bucket) {
        self.first_seq = self.first_seq.min(o.first_seq);
        self.start = self.start.min(o.start);
        self.sent += o.sent;
        self.received += o.received;
        self.rtt.merge(&o.rtt);
        self.fwd.merge(&o.fwd);
        self.rev.merge(&o.rev);
    }
}

/// Records the timeline of one test.
#[derive(Debug)]
pub(super) struct Recorder {
    width: u64,
    buckets: Vec<Bucket>,
}

impl Recorder {
    /// A recorder for about `planned` packets (`None`: unknown, e.g. a timed flood): the
    /// width starts so that the plan fills at most [`MAX_BUCKETS`] buckets.
    pub(super) fn new(planned: Option<u64>) -> Self {
        let width = planned.map_or(1, |p| p.div_ceil(MAX_BUCKETS as u64).max(1));
        Recorder {
            width,
            buckets: Vec::with_capacity(MAX_BUCKETS),
        }
    }

    fn merge_pairs(&mut self) {
        let merged: Vec<Bucket> = self
            .buckets
            .chunks(2)
            .map(|pair| {
                let mut b = pair[0];
                if let Some(o) = pair.get(1) {
                    b.merge(o);
                }
                b
            })
            .collect();
        self.buckets.clear();
        self.buckets.extend(merged);
        self.width = self.width.saturating_mul(2);
    }

    /// Test packet `seq` sent at `at` (sequence numbers come in order from 0).
    pub(super) fn on_send(&mut self, seq: u32, at: Nanos) {
        let mut idx = u64::from(seq) / self.width;
        while idx >= MAX_BUCKETS as u64 {
            self.merge_pairs();
            idx = u64::from(seq) / self.width;
        }
        let idx = idx as usize;
        if idx >= self.buckets.len() {
            self.buckets.push(Bucket {
                first_seq: seq,
                start: at,
                sent: 0,
                received: 0,
                rtt: Acc::default(),
                fwd: Acc::default(),
                rev: Acc::default(),
            });
        }
        let last = self.buckets.len() - 1;
        if let Some(b) = self.buckets.get_mut(idx.min(last)) {
            b.sent += 1;
        }
    }

    /// A reply in time to `seq`: round trip and one-way delays (provisional offset), ns;
    /// `forward_duplicate` when the reflector had answered `seq` already.
    pub(super) fn on_reply(
        &mut self,
        seq: u32,
        rtt_ns: i64,
        (fwd, rev): (i64, i64),
        forward_duplicate: bool,
    ) {
        let idx = (u64::from(seq) / self.width) as usize;
        let Some(b) = self.buckets.get_mut(idx) else {
            return;
        };
        if !forward_duplicate {
            b.received += 1;
            b.rtt.add(rtt_ns);
            b.fwd.add(fwd);
        }
        b.rev.add(rev);
    }

    /// The timeline of the report whose clock is `clock`; `provisional_ns` is the offset
    /// the one-way delays were recorded on.
    pub(super) fn report(&self, clock: &ClockReport, provisional_ns: Option<i64>) -> Timeline {
        let final_ns = match clock.mode {
            ClockMode::Shared | ClockMode::Synced => Some(0.0),
            ClockMode::Estimated => clock.offset_ms.map(|ms| ms * 1e6),
        };
        let prov = provisional_ns.unwrap_or(0) as f64;
        let origin = self.buckets.first().map_or(Nanos::ZERO, |b| b.start);
        Timeline {
            bucket_packets: self.width,
            buckets: self
                .buckets
                .iter()
                .map(|b| TimelineBucket {
                    first_seq: b.first_seq,
                    start_s: b.start.since(origin) as f64 / 1e9,
                    sent: b.sent,
                    received: b.received,
                    lost: b.sent.saturating_sub(b.received),
                    rtt_ms: b.rtt.spread(0.0),
                    forward_ms: final_ns.and_then(|off| b.fwd.spread(prov - off)),
                    reverse_ms: final_ns.and_then(|off| b.rev.spread(off - prov)),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ClockBasis;

    fn clock(mode: ClockMode, offset_ms: Option<f64>) -> ClockReport {
        ClockReport {
            mode,
            basis: ClockBasis::None,
            offset_ms,
            error_ms: Some(0.0),
            drift_ppm: None,
            note: None,
        }
    }

    #[test]
    fn planned_tests_fit_and_losses_add_up() {
        // 10 000 packets planned: 10 per bucket, 1000 buckets.
        let mut r = Recorder::new(Some(10_000));
        for seq in 0..10_000u32 {
            r.on_send(seq, Nanos(1_000_000_000 + u64::from(seq) * 1_000_000));
            // Every 7th packet lost; rtt = 1 ms + seq µs.
            if seq % 7 != 0 {
                let rtt = 1_000_000 + i64::from(seq) * 1000;
                r.on_reply(seq, rtt, (rtt / 2, rtt / 2), false);
            }
        }
        let t = r.report(&clock(ClockMode::Shared, Some(0.0)), Some(0));
        assert_eq!(t.bucket_packets, 10);
        assert_eq!(t.buckets.len(), MAX_BUCKETS);
        let lost: u64 = t.buckets.iter().map(|b| b.lost).sum();
        assert_eq!(lost, (0..10_000u32).filter(|s| s % 7 == 0).count() as u64);
        let b = &t.buckets[1];
        assert_eq!((b.first_seq, b.sent), (10, 10));
        assert!((b.start_s - 0.010).abs() < 1e-12);
        // seq 10..19 without 14: rtt 1.010 .. 1.019 ms.
        let rtt = b.rtt_ms.expect("rtt");
        assert!((rtt.min - 1.010).abs() < 1e-9 && (rtt.max - 1.019).abs() < 1e-9);
        let want_mean = [10, 11, 12, 13, 15, 16, 17, 18, 19]
            .iter()
            .map(|s| 1.0 + f64::from(*s) / 1000.0)
            .sum::<f64>()
            / 9.0;
        assert!((rtt.mean - want_mean).abs() < 1e-9);
    }

    #[test]
    fn a_run_beyond_the_plan_merges_pairs_exactly() {
        let mut r = Recorder::new(None);
        for seq in 0..2500u32 {
            r.on_send(seq, Nanos(u64::from(seq) * 1000));
            r.on_reply(seq, i64::from(seq), (i64::from(seq), 5), seq == 3);
        }
        let t = r.report(&clock(ClockMode::Synced, Some(0.0)), Some(0));
        // 1 -> 2 -> 4 packets per bucket: 625 buckets.
        assert_eq!(t.bucket_packets, 4);
        assert_eq!(t.buckets.len(), 625);
        assert!(t.buckets.iter().all(|b| b.sent == 4));
        let b0 = &t.buckets[0];
        // seq 3 came back as a forward duplicate only: not counted as received.
        assert_eq!((b0.received, b0.lost), (3, 1));
        assert_eq!(b0.rtt_ms.map(|s| s.max), Some(2e-6));
        let last = t.buckets.last().expect("buckets");
        assert_eq!(last.first_seq, 2496);
        assert_eq!(last.rtt_ms.map(|s| s.mean), Some(2497.5e-6));
        assert!((last.start_s - 2496e-6).abs() < 1e-12);
    }

    #[test]
    fn one_way_delays_move_to_the_final_offset() {
        let mut r = Recorder::new(Some(2));
        r.on_send(0, Nanos(0));
        // Recorded on a provisional offset of 300 µs: forward 1 ms, reverse 2 ms.
        r.on_reply(0, 3_000_000, (1_000_000, 2_000_000), false);
        let t = r.report(&clock(ClockMode::Estimated, Some(0.5)), Some(300_000));
        let b = &t.buckets[0];
        // Final offset 500 µs: forward (raw - 0.5) = 1 - 0.2, reverse + 0.2.
        assert!((b.forward_ms.expect("fwd").mean - 0.8).abs() < 1e-9);
        assert!((b.reverse_ms.expect("rev").mean - 2.2).abs() < 1e-9);
        let none = r.report(&clock(ClockMode::Estimated, None), Some(300_000));
        assert_eq!(none.buckets[0].forward_ms, None);
        assert!(none.buckets[0].rtt_ms.is_some());
    }
}
