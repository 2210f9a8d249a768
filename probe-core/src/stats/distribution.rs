//! A delay distribution over signed nanosecond samples, backed by hdrhistogram.
//!
//! Percentiles come from the histograms (3 significant digits); minimum, maximum, mean and
//! standard deviation are exact (integer sums of the samples and of their squares, no division
//! per sample). Samples may be negative (a one-way delay under an estimated clock offset can
//! be): negative magnitudes go to a second histogram and percentiles are read across both.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest magnitude the histograms track: one hour in nanoseconds. Larger samples saturate.
const MAX_NS: u64 = 3_600_000_000_000;

/// A distribution of signed nanosecond samples.
#[derive(Clone, Debug)]
pub struct Distribution {
    pos: Histogram<u64>,
    neg: Histogram<u64>,
    count: u64,
    /// Exact sum of the samples.
    sum: i128,
    /// Exact sum of their squares (saturating: beyond 10^13 samples of an hour).
    sumsq: u128,
    min: i64,
    max: i64,
}

/// The summary of a [`Distribution`] in milliseconds, as it appears in reports
/// (`{min, mean, p50, p90, p99, max, stddev}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Smallest sample.
    pub min: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
    /// Population standard deviation.
    pub stddev: f64,
}

impl Summary {
    /// The summary of the samples shifted by `ms` (every order statistic and the mean move;
    /// the spread does not): how a constant clock-offset correction applies after the fact.
    #[must_use]
    pub fn shifted(self, ms: f64) -> Summary {
        Summary {
            min: self.min + ms,
            mean: self.mean + ms,
            p50: self.p50 + ms,
            p90: self.p90 + ms,
            p99: self.p99 + ms,
            max: self.max + ms,
            stddev: self.stddev,
        }
    }
}

impl Default for Distribution {
    fn default() -> Self {
        Self::new()
    }
}

impl Distribution {
    /// An empty distribution.
    pub fn new() -> Self {
        // 3 significant digits over 1 ns ..= 1 h; bounds are constants, so creation cannot fail.
        let make = || match Histogram::new_with_bounds(1, MAX_NS, 3) {
            Ok(h) => h,
            Err(e) => unreachable!("constant histogram bounds are valid: {e}"),
        };
        Distribution {
            pos: make(),
            neg: make(),
            count: 0,
            sum: 0,
            sumsq: 0,
            min: i64::MAX,
            max: i64::MIN,
        }
    }

    /// Records one sample in nanoseconds.
    pub fn record(&mut self, ns: i64) {
        let (h, mag) = if ns < 0 {
            (&mut self.neg, ns.unsigned_abs())
        } else {
            (&mut self.pos, ns as u64)
        };
        h.saturating_record(mag.max(1));
        self.count += 1;
        let x = i128::from(ns);
        self.sum += x;
        self.sumsq = self.sumsq.saturating_add((x * x).unsigned_abs());
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    /// Forgets every sample (keeps the allocation: for per-interval figures).
    pub fn clear(&mut self) {
        self.pos.reset();
        self.neg.reset();
        self.count = 0;
        self.sum = 0;
        self.sumsq = 0;
        self.min = i64::MAX;
        self.max = i64::MIN;
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Smallest sample in ns, if any.
    pub fn min(&self) -> Option<i64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest sample in ns, if any.
    pub fn max(&self) -> Option<i64> {
        (self.count > 0).then_some(self.max)
    }

    /// Mean in ns (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// Population standard deviation in ns (0 when empty).
    pub fn stddev(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            // n * sum(x^2) - (sum x)^2 is exact in integers (no cancellation) while it fits.
            let n = u128::from(self.count);
            let s = self.sum.unsigned_abs();
            let exact = n
                .checked_mul(self.sumsq)
                .zip(s.checked_mul(s))
                .map(|(a, b)| a.saturating_sub(b) as f64);
            let nf = self.count as f64;
            match exact {
                Some(num) => (num / nf / nf).sqrt(),
                None => {
                    let mean = self.mean();
                    (self.sumsq as f64 / nf - mean * mean).max(0.0).sqrt()
                }
            }
        }
    }

    /// The sample at quantile `q` (0.0..=1.0) in ns, clamped to the exact min and max.
    pub fn quantile(&self, q: f64) -> Option<i64> {
        if self.count == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let n_neg = self.neg.len();
        let rank = q * self.count as f64;
        let v = if n_neg > 0 && rank < n_neg as f64 {
            // Ranks among negatives run from the most negative (largest magnitude) upwards.
            let qn = 1.0 - rank / n_neg as f64;
            -(self.neg.value_at_quantile(qn) as i64)
        } else {
            let n_pos = self.pos.len().max(1);
            let qp = (rank - n_neg as f64) / n_pos as f64;
            self.pos.value_at_quantile(qp.clamp(0.0, 1.0)) as i64
        };
        Some(v.clamp(self.min, self.max))
    }

    /// Merges another distribution into this one.
    pub fn merge(&mut self, other: &Distribution) {
        if other.count == 0 {
            return;
        }
        // Histograms share bounds, so adding cannot fail.
        let _ = self.pos.add(&other.pos);
        let _ = self.neg.add(&other.neg);
        self.count += other.count;
        self.sum += other.sum;
        self.sumsq = self.sumsq.saturating_add(other.sumsq);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The summary in milliseconds; `None` when there are no samples.
    pub fn summary_ms(&self) -> Option<Summary> {
        let ms = |ns: i64| ns as f64 / 1e6;
        Some(Summary {
            min: ms(self.min()?),
            mean: self.mean() / 1e6,
            p50: ms(self.quantile(0.5)?),
            p90: ms(self.quantile(0.9)?),
            p99: ms(self.quantile(0.99)?),
            max: ms(self.max()?),
            stddev: self.stddev() / 1e6,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_has_no_summary() {
        assert!(Distribution::new().summary_ms().is_none());
    }

    #[test]
    fn uniform_samples() {
        let mut d = Distribution::new();
        for i in 1..=1000 {
            d.record(i * 1_000_000); // 1..=1000 ms
        }
        let s = d.summary_ms().expect("samples");
        assert!((s.min - 1.0).abs() < 1e-9);
        assert!((s.max - 1000.0).abs() < 1e-9);
        assert!((s.mean - 500.5).abs() < 1e-9);
        assert!((s.p50 - 500.0).abs() < 1.0, "p50 {}", s.p50);
        assert!((s.p90 - 900.0).abs() < 1.0, "p90 {}", s.p90);
        assert!((s.p99 - 990.0).abs() < 1.0, "p99 {}", s.p99);
        assert!((s.stddev - 288.675).abs() < 0.01, "stddev {}", s.stddev);
    }

    #[test]
    fn signed_samples() {
        let mut d = Distribution::new();
        for v in [-3_000, -2_000, -1_000, 1_000, 2_000, 3_000] {
            d.record(v);
        }
        assert_eq!(d.min(), Some(-3_000));
        assert_eq!(d.max(), Some(3_000));
        assert_eq!(d.quantile(0.0), Some(-3_000));
        assert_eq!(d.quantile(1.0), Some(3_000));
        let p50 = d.quantile(0.5).expect("samples");
        assert!((-1_001..=1_001).contains(&p50), "p50 {p50}");
        assert!(d.mean().abs() < 1e-9);
    }

    #[test]
    fn shift_and_clear() {
        let mut d = Distribution::new();
        for v in [1_000_000, 2_000_000, 3_000_000] {
            d.record(v);
        }
        let s = d.summary_ms().expect("samples").shifted(-1.0);
        assert!((s.min - 0.0).abs() < 1e-9 && (s.max - 2.0).abs() < 1e-9);
        assert!((s.mean - 1.0).abs() < 1e-9);
        assert!((s.stddev - d.stddev() / 1e6).abs() < 1e-12);
        d.clear();
        assert!(d.is_empty() && d.summary_ms().is_none());
        d.record(5);
        assert_eq!((d.min(), d.max(), d.count()), (Some(5), Some(5), 1));
    }

    #[test]
    fn merge_matches_single() {
        let mut a = Distribution::new();
        let mut b = Distribution::new();
        let mut all = Distribution::new();
        for i in 0..100 {
            let v = i * 37 % 101 * 1000;
            if i % 2 == 0 {
                a.record(v);
            } else {
                b.record(v);
            }
            all.record(v);
        }
        a.merge(&b);
        assert_eq!(a.count(), all.count());
        assert!((a.mean() - all.mean()).abs() < 1e-6);
        assert!((a.stddev() - all.stddev()).abs() < 1e-6);
        assert_eq!(a.quantile(0.9), all.quantile(0.9));
    }
}
