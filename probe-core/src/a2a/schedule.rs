//! The isochronous send schedule: packet `n` is planned at `start + n * interval`, whatever
//! happened to earlier packets, and the schedule error (actual minus planned send time) is kept.

use std::time::Duration;

use crate::stats::Distribution;
use crate::time::{Nanos, duration_ns};

/// An isochronous schedule of `count` packets.
#[derive(Clone, Debug)]
pub struct Schedule {
    start: Nanos,
    interval_ns: u64,
    count: u32,
    next: u32,
    err_sum_ns: i128,
    err_max_ns: i64,
    errors: Distribution,
    first_send: Option<Nanos>,
    last_send: Option<Nanos>,
}

impl Schedule {
    /// `count` packets every `interval` from `start`.
    pub fn new(start: Nanos, interval: Duration, count: u32) -> Self {
        Schedule {
            start,
            interval_ns: duration_ns(interval),
            count,
            next: 0,
            err_sum_ns: 0,
            err_max_ns: i64::MIN,
            errors: Distribution::with_capacity(count as usize),
            first_send: None,
            last_send: None,
        }
    }

    /// Moves the first packet to `start`; only before any was sent (then nothing else is
    /// kept yet). Returns whether it moved.
    pub fn move_start(&mut self, start: Nanos) -> bool {
        let unsent = self.next == 0;
        if unsent {
            self.start = start;
        }
        unsent
    }

    /// Planned send time of packet `n`.
    pub fn planned(&self, n: u32) -> Nanos {
        Nanos(
            self.start
                .0
                .saturating_add(self.interval_ns.saturating_mul(u64::from(n))),
        )
    }

    /// Number of the next packet to send; `None` once all were sent.
    pub fn next_index(&self) -> Option<u32> {
        (self.next < self.count).then_some(self.next)
    }

    /// Planned time of the next packet; `None` once all were sent.
    pub fn next_planned(&self) -> Option<Nanos> {
        self.next_index().map(|n| self.planned(n))
    }

    /// Records that the next packet left at `actual`; returns its number and planned time, or
    /// `None` when the schedule is complete.
    pub fn record_send(&mut self, actual: Nanos) -> Option<(u32, Nanos)> {
        let n = self.next_index()?;
        let planned = self.planned(n);
        let err = actual.since(planned);
        self.err_sum_ns += i128::from(err);
        self.err_max_ns = self.err_max_ns.max(err);
        self.errors.record(err);
        self.first_send.get_or_insert(actual);
        self.last_send = Some(actual);
        self.next += 1;
        Some((n, planned))
    }

    /// Packets sent so far.
    pub fn sent(&self) -> u32 {
        self.next
    }

    /// Packets planned in total.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether every packet was sent.
    pub fn is_complete(&self) -> bool {
        self.next >= self.count
    }

    /// Mean schedule error in µs; `None` before the first send.
    pub fn error_mean_us(&self) -> Option<f64> {
        (self.next > 0).then(|| self.err_sum_ns as f64 / f64::from(self.next) / 1e3)
    }

    /// Largest schedule error in µs; `None` before the first send.
    pub fn error_max_us(&self) -> Option<f64> {
        (self.next > 0).then(|| self.err_max_ns as f64 / 1e3)
    }

    /// Schedule error at quantile `q` (0.0..=1.0) in µs (histogram, 3 significant digits);
    /// `None` before the first send.
    pub fn error_quantile_us(&self, q: f64) -> Option<f64> {
        self.errors.quantile(q).map(|ns| ns as f64 / 1e3)
    }

    /// Time from the first to the last send, ns (0 before the second send).
    pub fn send_span_ns(&self) -> u64 {
        match (self.first_send, self.last_send) {
            (Some(a), Some(b)) => b.0.saturating_sub(a.0),
            _ => 0,
        }
    }

    /// Achieved send rate: packets after the first per second of send span; `None` under two
    /// packets or with a zero span.
    pub fn achieved_pps(&self) -> Option<f64> {
        let span = self.send_span_ns();
        (self.next >= 2 && span > 0).then(|| f64::from(self.next - 1) * 1e9 / span as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_000_000_000_000;

    #[test]
    fn planned_times_and_errors() {
        let mut s = Schedule::new(Nanos(T0), Duration::from_millis(10), 4);
        assert_eq!(s.planned(3), Nanos(T0 + 30_000_000));
        assert_eq!(s.error_mean_us(), None);
        // Late by 5 us, 15 us, on time, early by 4 us.
        for (n, late_ns) in [(0u32, 5_000i64), (1, 15_000), (2, 0), (3, -4_000)] {
            let planned = s.next_planned().expect("more to send");
            assert_eq!(planned, Nanos(T0 + u64::from(n) * 10_000_000));
            let actual = Nanos((planned.0 as i64 + late_ns) as u64);
            assert_eq!(s.record_send(actual), Some((n, planned)));
        }
        assert!(s.is_complete());
        assert_eq!(s.record_send(Nanos(T0 + 40_000_000)), None);
        assert_eq!(s.sent(), 4);
        assert!((s.error_mean_us().expect("sent") - 4.0).abs() < 1e-9);
        assert!((s.error_max_us().expect("sent") - 15.0).abs() < 1e-9);
        // Errors 5, 15, 0, -4 us: the median is 0 or 5, p99 the largest.
        let p50 = s.error_quantile_us(0.5).expect("sent");
        assert!((-0.01..=5.01).contains(&p50), "p50 {p50}");
        assert!((s.error_quantile_us(0.99).expect("sent") - 15.0).abs() < 0.02);
        // Span 30 ms - 9 us for 3 intervals.
        let pps = s.achieved_pps().expect("rate");
        assert!((pps - 3.0 / 0.029_991).abs() < 1e-6, "pps {pps}");
    }

    #[test]
    fn a_late_packet_does_not_shift_the_next() {
        let mut s = Schedule::new(Nanos(T0), Duration::from_millis(1), 3);
        s.record_send(Nanos(T0 + 2_500_000)); // 2.5 ms late
        assert_eq!(s.next_planned(), Some(Nanos(T0 + 1_000_000)));
        assert!(s.achieved_pps().is_none());
    }
}
