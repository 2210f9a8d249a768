//! A delay distribution over signed nanosecond samples, backed by hdrhistogram.
//!
//! Up to 512 samples are kept as they are and their percentiles are exact (the
//! nearest rank); the first sample beyond moves them all into the histograms, whose
//! percentiles have 3 significant digits. A short test (an agent measuring thousands of peers
//! with tens of packets each) so costs a few hundred bytes per distribution instead of the
//! histograms' half megabyte. Minimum, maximum, mean and standard deviation are exact (integer sums of the samples and of their squares, no division
//! per sample). Samples may be negative (a one-way delay under an estimated clock offset can
//! be): negative magnitudes go to a second histogram and percentiles are read across both.

use hdrhistogram::Histogram;

use super::exact::ExactSamples;
use serde::{Deserialize, Serialize};

/// Highest magnitude the histograms track: one hour in nanoseconds. Larger samples saturate.
const MAX_NS: u64 = 3_600_000_000_000;

/// Samples kept exactly before the histograms take over.
const EXACT_SAMPLES: usize = 512;

/// The histograms of positive magnitudes and of negative ones.
#[derive(Clone, Debug)]
struct Histograms {
    pos: Histogram<u64>,
    neg: Histogram<u64>,
}

impl Histograms {
    fn new() -> Box<Histograms> {
        // 3 significant digits over 1 ns ..= 1 h; bounds are constants, so creation cannot fail.
        let make = || match Histogram::new_with_bounds(1, MAX_NS, 3) {
            Ok(h) => h,
            Err(e) => unreachable!("constant histogram bounds are valid: {e}"),
        };
        Box::new(Histograms {
            pos: make(),
            neg: make(),
        })
    }

    fn record(&mut self, ns: i64) {
        let (h, mag) = if ns < 0 {
            (&mut self.neg, ns.unsigned_abs())
        } else {
            (&mut self.pos, ns as u64)
        };
        h.saturating_record(mag.max(1));
    }
}

/// A distribution of signed nanosecond samples.
#[derive(Clone, Debug)]
pub struct Distribution {
    /// The samples while there are at most `EXACT_SAMPLES` (empty once `hist` is in use).
    samples: ExactSamples,
    /// The histograms, from the first sample beyond `EXACT_SAMPLES`.
    hist: Option<Box<Histograms>>,
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
        Distribution {
            samples: ExactSamples::default(),
            hist: None,
            count: 0,
            sum: 0,
            sumsq: 0,
            min: i64::MAX,
            max: i64::MIN,
        }
    }

    /// An empty distribution with room for `expected` exact samples (at most the 512 kept
    /// before the histograms take over): a caller that knows its sample count, such as a
    /// sender of a fixed number of packets, so allocates once, and thousands of concurrent
    /// short tests do not leave the allocator's heap fragmented by growing buffers.
    pub fn with_capacity(expected: usize) -> Self {
        Distribution {
            samples: ExactSamples::with_capacity(expected.min(EXACT_SAMPLES)),
            ..Self::new()
        }
    }

    /// Records one sample in nanoseconds.
    pub fn record(&mut self, ns: i64) {
        self.keep(ns);
        self.count += 1;
        let x = i128::from(ns);
        self.sum += x;
        self.sumsq = self.sumsq.saturating_add((x * x).unsigned_abs());
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    /// Stores one sample: exactly while there is room, else in the histograms.
    fn keep(&mut self, ns: i64) {
        if self.hist.is_none() && self.samples.len() < EXACT_SAMPLES {
            self.samples.push(ns);
            return;
        }
        let hist = self.histograms();
        hist.record(ns);
    }

    /// The histograms, holding every sample kept so far.
    fn histograms(&mut self) -> &mut Histograms {
        let samples = std::mem::take(&mut self.samples);
        self.hist.get_or_insert_with(|| {
            let mut h = Histograms::new();
            for s in samples.to_vec() {
                h.record(s);
            }
            h
        })
    }

    /// Forgets every sample (keeps the allocation: for per-interval figures).
    pub fn clear(&mut self) {
        self.samples.clear();
        if let Some(h) = &mut self.hist {
            h.pos.reset();
            h.neg.reset();
        }
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
        let Some(hist) = &self.hist else {
            // The nearest rank, as the histograms count it.
            let mut sorted = self.samples.to_vec();
            sorted.sort_unstable();
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            return Some(sorted[rank - 1]);
        };
        let n_neg = hist.neg.len();
        let rank = q * self.count as f64;
        let v = if n_neg > 0 && rank < n_neg as f64 {
            // Ranks among negatives run from the most negative (largest magnitude) upwards.
            let qn = 1.0 - rank / n_neg as f64;
            -(hist.neg.value_at_quantile(qn) as i64)
        } else {
            let n_pos = hist.pos.len().max(1);
            let qp = (rank - n_neg as f64) / n_pos as f64;
            hist.pos.value_at_quantile(qp.clamp(0.0, 1.0)) as i64
        };
        Some(v.clamp(self.min, self.max))
    }

    /// Merges another distribution into this one.
    pub fn merge(&mut self, other: &Distribution) {
        if other.count == 0 {
            return;
        }
        if self.hist.is_none()
            && other.hist.is_none()
            && self.samples.len() + other.samples.len() <= EXACT_SAMPLES
        {
            for s in other.samples.to_vec() {
                self.samples.push(s);
            }
        } else {
            let hist = self.histograms();
            for s in other.samples.to_vec() {
                hist.record(s);
            }
            if let Some(o) = &other.hist {
                // Histograms share bounds, so adding cannot fail.
                let _ = hist.pos.add(&o.pos);
                let _ = hist.neg.add(&o.neg);
            }
        }
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
    fn a_known_sample_count_is_allocated_once_and_bounded() {
        let mut d = Distribution::with_capacity(55);
        let plain = {
            let mut p = Distribution::new();
            for i in 0..55 {
                p.record(i * 1_000);
            }
            p
        };
        for i in 0..55 {
            d.record(i * 1_000);
        }
        assert_eq!(
            d.samples.capacity(),
            55,
            "no growth beyond the room asked for"
        );
        assert_eq!(d.summary_ms(), plain.summary_ms());
        assert_eq!(
            Distribution::with_capacity(1 << 20).samples.capacity(),
            EXACT_SAMPLES
        );
    }

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
    fn few_samples_are_exact_and_many_spill_into_the_histograms() {
        let mut d = Distribution::new();
        // 1.000001 ms ..= 100.000100 ms: values the histograms would round.
        for i in 1..=100 {
            d.record(i * 1_000_001);
        }
        assert_eq!(d.quantile(0.5), Some(50 * 1_000_001));
        assert_eq!(d.quantile(0.9), Some(90 * 1_000_001));
        assert_eq!(d.quantile(0.99), Some(99 * 1_000_001));
        assert_eq!(d.quantile(0.0), Some(1_000_001));
        assert!(d.hist.is_none() && d.samples.len() == 100);
        for i in 101..=1000 {
            d.record(i * 1_000_001);
        }
        assert!(d.hist.is_some() && d.samples.is_empty());
        assert_eq!(d.count(), 1000);
        let p50 = d.quantile(0.5).expect("samples");
        assert!((p50 - 500_000_500).abs() < 500_000, "p50 {p50}");
        // A merge of two small ones stays exact; past the limit it spills.
        let mut a = Distribution::new();
        let mut b = Distribution::new();
        for v in [-5, 7, 9] {
            a.record(v);
            b.record(v * 3);
        }
        a.merge(&b);
        assert!(a.hist.is_none());
        assert_eq!((a.quantile(0.0), a.quantile(1.0)), (Some(-15), Some(27)));
        a.merge(&d);
        assert!(a.hist.is_some());
        assert_eq!(a.count(), 1006);
        assert_eq!(a.min(), Some(-15));
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
