//! Delay variation: RFC 3550 interarrival jitter and RFC 5481 IPDV.
//!
//! - **Jitter** (RFC 3550 section 6.4.1) is a running average fed in *arrival order*: for each
//!   packet, `D` is the change in transit time from the previous arrival and
//!   `J += (|D| - J) / 16`. A constant clock offset cancels out of `D`.
//! - **IPDV** (RFC 5481 section 4.2, "inter-packet delay variation") is the difference of the
//!   one-way delays of *consecutively numbered* packets, `d(n+1) - d(n)`; pairs with a lost
//!   member are skipped. Its distribution is centred on zero, so probe reports the mean of its
//!   absolute value as `ipdv_ms` (what irtt's IPDV statistics show and what operators read as
//!   "jitter"), and the full distribution of `|IPDV|` next to it.

use super::Distribution;

/// RFC 3550 interarrival jitter over transit times in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct InterarrivalJitter {
    last_transit: Option<i64>,
    jitter: f64,
    pairs: u64,
}

impl InterarrivalJitter {
    /// A jitter estimator with no arrivals yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the transit time (receive time minus send time, ns) of the next arrival.
    pub fn on_transit(&mut self, transit_ns: i64) {
        if let Some(last) = self.last_transit {
            let d = transit_ns.saturating_sub(last).unsigned_abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
            self.pairs += 1;
        }
        self.last_transit = Some(transit_ns);
    }

    /// The jitter in ns; `None` before the second arrival.
    pub fn jitter_ns(&self) -> Option<f64> {
        (self.pairs > 0).then_some(self.jitter)
    }
}

/// RFC 5481 IPDV over one-way delays fed in sequence order.
#[derive(Clone, Debug, Default)]
pub struct Ipdv {
    last: Option<(u64, i64)>,
    abs: Distribution,
    sum_abs: f64,
}

impl Ipdv {
    /// An IPDV tracker with no packets yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// An IPDV tracker with room for `expected` pairs (see [`Distribution::with_capacity`]).
    pub fn with_capacity(expected: usize) -> Self {
        Ipdv {
            abs: Distribution::with_capacity(expected),
            ..Self::default()
        }
    }

    /// Feeds packet `seq` (numbers increasing; gaps allowed) with its one-way delay in ns.
    /// A pair counts only when `seq` directly follows the previous packet fed.
    pub fn on_delay(&mut self, seq: u64, delay_ns: i64) {
        if let Some((last_seq, last_delay)) = self.last
            && last_seq.checked_add(1) == Some(seq)
        {
            self.on_pair(delay_ns.saturating_sub(last_delay));
        }
        self.last = Some((seq, delay_ns));
    }

    /// Records one consecutive pair directly: `delay(n + 1) - delay(n)` in ns (for callers
    /// that pair packets themselves, e.g. as replies arrive out of order).
    pub fn on_pair(&mut self, variation_ns: i64) {
        self.abs.record(variation_ns.saturating_abs());
        self.sum_abs += variation_ns.unsigned_abs() as f64;
    }

    /// Consecutive pairs seen.
    pub fn pairs(&self) -> u64 {
        self.abs.count()
    }

    /// Mean of `|IPDV|` in ns; `None` without a consecutive pair.
    pub fn mean_abs_ns(&self) -> Option<f64> {
        let n = self.abs.count();
        (n > 0).then(|| self.sum_abs / n as f64)
    }

    /// The distribution of `|IPDV|` in ns.
    pub fn abs_distribution(&self) -> &Distribution {
        &self.abs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_needs_two_arrivals() {
        let mut j = InterarrivalJitter::new();
        assert_eq!(j.jitter_ns(), None);
        j.on_transit(1_000);
        assert_eq!(j.jitter_ns(), None);
        j.on_transit(1_000);
        assert_eq!(j.jitter_ns(), Some(0.0));
    }

    #[test]
    fn jitter_follows_rfc3550_recursion() {
        let mut j = InterarrivalJitter::new();
        // Transit alternates 10 ms / 12 ms: |D| = 2 ms every time.
        let mut expect = 0.0f64;
        for i in 0..200 {
            j.on_transit(if i % 2 == 0 { 10_000_000 } else { 12_000_000 });
            if i > 0 {
                expect += (2e6 - expect) / 16.0;
            }
        }
        let got = j.jitter_ns().expect("jitter");
        assert!((got - expect).abs() < 1e-6);
        assert!((got - 2e6).abs() < 10.0, "converges to |D|: {got}");
        // A constant offset (e.g. unsynchronized clocks) does not change it.
        let mut k = InterarrivalJitter::new();
        for i in 0..200 {
            k.on_transit(5_000_000_000 + if i % 2 == 0 { 10_000_000 } else { 12_000_000 });
        }
        assert!((k.jitter_ns().expect("jitter") - got).abs() < 1e-6);
    }

    #[test]
    fn ipdv_skips_pairs_with_a_gap() {
        let mut p = Ipdv::new();
        assert_eq!(p.mean_abs_ns(), None);
        // Delays 10, 13, 11, [3 lost], 20, 19 ms: pairs (0,1)=+3, (1,2)=-2, (4,5)=-1.
        for (seq, d) in [(0, 10), (1, 13), (2, 11), (4, 20), (5, 19)] {
            p.on_delay(seq, d * 1_000_000);
        }
        assert_eq!(p.pairs(), 3);
        let mean = p.mean_abs_ns().expect("pairs");
        assert!((mean - 2e6).abs() < 1e-6, "mean |ipdv| {mean}");
        assert_eq!(p.abs_distribution().max(), Some(3_000_000));
        assert_eq!(p.abs_distribution().min(), Some(1_000_000));
    }
}
