//! Round-trip times of one responder, kept exactly.
//!
//! A path test collects a handful of samples per responder (queries times rounds), so every
//! sample is kept and the summary is exact: minimum, mean, median (nearest rank), maximum and
//! population standard deviation. Memory grows by 8 bytes per answer; nothing is allocated
//! before the first one (a histogram per responder would cost far more than the trace).

use crate::report::trace::RttMs;

/// The RTT samples of one responder, in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RttSamples {
    ns: Vec<i64>,
}

impl RttSamples {
    /// No samples yet.
    pub(crate) const fn new() -> Self {
        RttSamples { ns: Vec::new() }
    }

    /// Records one round-trip time in nanoseconds.
    pub(crate) fn record(&mut self, ns: i64) {
        self.ns.push(ns);
    }

    /// Number of samples.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.ns.len()
    }

    /// The samples in arrival order.
    #[cfg(test)]
    fn samples(&self) -> &[i64] {
        &self.ns
    }

    /// The sample at quantile `q` (0..=1) by the nearest-rank method: the smallest sample with
    /// at least `q` of all samples at or below it.
    pub(crate) fn quantile(&self, q: f64) -> Option<i64> {
        let mut sorted = self.ns.clone();
        sorted.sort_unstable();
        let n = sorted.len();
        let rank = (q.clamp(0.0, 1.0) * n as f64).ceil() as usize;
        sorted.get(rank.clamp(1, n.max(1)) - 1).copied()
    }

    /// The summary in milliseconds; `None` without samples.
    pub(crate) fn summary_ms(&self) -> Option<RttMs> {
        let n = self.ns.len() as f64;
        let min = *self.ns.iter().min()?;
        let max = *self.ns.iter().max()?;
        let mean = self.ns.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = self
            .ns
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let ms = |ns: f64| ns / 1e6;
        Some(RttMs {
            min: ms(min as f64),
            mean: ms(mean),
            p50: ms(self.quantile(0.5)? as f64),
            max: ms(max as f64),
            stddev: ms(var.sqrt()),
        })
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the expected values are exact in binary
mod tests {
    use super::*;

    #[test]
    fn exact_summary() {
        let mut r = RttSamples::new();
        assert_eq!(r.summary_ms(), None);
        assert_eq!(r.quantile(0.5), None);
        for ns in [4_000_000, 1_000_000, 3_000_000, 2_000_000] {
            r.record(ns);
        }
        let s = r.summary_ms().expect("summary");
        assert_eq!((s.min, s.max, s.mean), (1.0, 4.0, 2.5));
        // Nearest rank: the 2nd of 4 sorted samples.
        assert_eq!(s.p50, 2.0);
        // Population standard deviation of 1, 2, 3, 4 ms: sqrt(1.25).
        assert!((s.stddev - 1.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(r.quantile(0.0), Some(1_000_000));
        assert_eq!(r.quantile(1.0), Some(4_000_000));
        assert_eq!(r.quantile(0.75), Some(3_000_000));
        r.record(5_000_000);
        assert_eq!(r.summary_ms().map(|s| s.p50), Some(3.0));
        assert_eq!(r.len(), 5);
        assert_eq!(r.samples()[0], 4_000_000);
    }

    #[test]
    fn one_sample_has_no_spread() {
        let mut r = RttSamples::new();
        r.record(-5);
        let s = r.summary_ms().expect("summary");
        assert_eq!((s.min, s.p50, s.max, s.stddev), (-5e-6, -5e-6, -5e-6, 0.0));
    }
}
