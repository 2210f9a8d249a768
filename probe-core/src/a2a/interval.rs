//! Interval reports of a running test: the difference of the running totals at the ends of
//! consecutive intervals, plus the median round trip of the interval (a histogram reset at
//! each end, so the memory stays fixed).

use std::time::Duration;

use crate::report::{IntervalDirection, IntervalReport};
use crate::stats::{Distribution, loss_pct};
use crate::time::{Nanos, duration_ns};

/// Running totals of a test at one instant (see [`Intervals`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Totals {
    /// Test packets sent (those in flight at the cutoff excluded).
    pub(super) sent: u64,
    /// Distinct replies in time.
    pub(super) received: u64,
    /// Packets that reached the reflector (its numbers, forward duplicates excluded).
    pub(super) reached: u64,
    /// Distinct reflector packets received.
    pub(super) back: u64,
    /// Forward jitter now, ns.
    pub(super) fwd_jitter_ns: Option<f64>,
    /// Reverse jitter now, ns.
    pub(super) rev_jitter_ns: Option<f64>,
}

/// Cuts a test into reporting intervals.
#[derive(Debug)]
pub(super) struct Intervals {
    every_ns: u64,
    origin: Nanos,
    /// End of the interval being filled.
    end: Nanos,
    prev_end: Nanos,
    prev: Totals,
    rtt: Distribution,
}

fn direction(sent: u64, received: u64, jitter_ns: Option<f64>) -> IntervalDirection {
    let lost = sent.saturating_sub(received);
    IntervalDirection {
        sent,
        received: received.min(sent),
        lost,
        loss_pct: loss_pct(lost, sent),
        jitter_ms: jitter_ns.map(|j| j / 1e6),
    }
}

impl Intervals {
    /// Intervals of `every` (at least 1 ms) from `origin`.
    pub(super) fn new(every: Duration, origin: Nanos) -> Self {
        let every_ns = duration_ns(every).max(1_000_000);
        Intervals {
            every_ns,
            origin,
            end: origin.saturating_add_ns(i64::try_from(every_ns).unwrap_or(i64::MAX)),
            prev_end: origin,
            prev: Totals::default(),
            rtt: Distribution::new(),
        }
    }

    /// When the current interval ends.
    pub(super) fn end(&self) -> Nanos {
        self.end
    }

    /// A round trip measured in the current interval.
    pub(super) fn on_rtt(&mut self, ns: i64) {
        self.rtt.record(ns);
    }

    /// Closes the interval ending at `end` with the totals then.
    pub(super) fn close(&mut self, end: Nanos, now: Totals) -> IntervalReport {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let p = self.prev;
        let sent = d(now.sent, p.sent);
        let received = d(now.received, p.received);
        let reached = d(now.reached, p.reached);
        let back = d(now.back, p.back);
        let secs = end.since(self.prev_end) as f64 / 1e9;
        let start_s = self.prev_end.since(self.origin) as f64 / 1e9;
        let report = IntervalReport {
            start_s,
            end_s: end.since(self.origin) as f64 / 1e9,
            sent,
            received: received.min(sent),
            lost: sent.saturating_sub(received),
            loss_pct: loss_pct(sent.saturating_sub(received), sent),
            forward: direction(sent, reached, now.fwd_jitter_ns),
            reverse: direction(reached.min(sent), back, now.rev_jitter_ns),
            rtt_p50_ms: self.rtt.quantile(0.5).map(|ns| ns as f64 / 1e6),
            pps: (secs > 0.0).then(|| sent as f64 / secs),
        };
        self.prev = now;
        self.prev_end = end;
        self.end = end.saturating_add_ns(i64::try_from(self.every_ns).unwrap_or(i64::MAX));
        self.rtt.clear();
        report
    }

    /// Whether anything happened since the last interval closed (for the last, partial one).
    pub(super) fn has_news(&self, now: &Totals) -> bool {
        now.sent != self.prev.sent || now.received != self.prev.received
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_of_totals() {
        let t0 = Nanos(1_000_000_000_000);
        let mut iv = Intervals::new(Duration::from_secs(1), t0);
        assert_eq!(iv.end(), Nanos(t0.0 + 1_000_000_000));
        iv.on_rtt(2_000_000);
        iv.on_rtt(4_000_000);
        iv.on_rtt(3_000_000);
        let first = Totals {
            sent: 100,
            received: 90,
            reached: 95,
            back: 90,
            fwd_jitter_ns: Some(1e5),
            rev_jitter_ns: None,
        };
        let r = iv.close(iv.end(), first);
        assert_eq!(
            (r.sent, r.received, r.lost, r.loss_pct),
            (100, 90, 10, Some(10.0))
        );
        assert_eq!((r.forward.lost, r.reverse.lost), (5, 5));
        assert_eq!(r.forward.jitter_ms, Some(0.1));
        assert!((r.rtt_p50_ms.expect("rtt") - 3.0).abs() < 0.01);
        assert_eq!(r.pps, Some(100.0));
        assert_eq!((r.start_s, r.end_s), (0.0, 1.0));
        let second = Totals {
            sent: 200,
            received: 190,
            reached: 195,
            back: 190,
            ..first
        };
        assert!(iv.has_news(&second));
        let r = iv.close(iv.end(), second);
        assert_eq!((r.sent, r.received, r.lost), (100, 100, 0));
        assert_eq!(r.rtt_p50_ms, None, "the histogram was reset");
        assert_eq!((r.start_s, r.end_s), (1.0, 2.0));
        assert!(!iv.has_news(&second));
    }
}
