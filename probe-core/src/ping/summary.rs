//! A constant-size round-trip summary per target: count, exact min/max/mean/standard deviation
//! (Welford) and a median estimate that needs five markers whatever the sample count.
//!
//! An hdrhistogram per target would give exact percentiles but does not fit: over 1 µs..60 s it
//! has 17,408 counters at three significant digits (68 KiB with 32-bit counts) and 2,560 at
//! two (10 KiB), so 4096 targets would take 272 MiB or 40 MiB against a 16 MB budget. The
//! median here is exact up to five samples and then follows the P² algorithm (Jain and
//! Chlamtac, 1985), which tracks one quantile with five interpolated markers in about 100 bytes.
//! With `--per-probe` the report takes the exact median from the per-probe list instead.

/// Round-trip statistics of one target, in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RttSummary {
    count: u32,
    min: i64,
    max: i64,
    mean: f64,
    m2: f64,
    median: P2Median,
}

impl RttSummary {
    /// Records one round-trip time in nanoseconds.
    pub fn record(&mut self, ns: i64) {
        if self.count == 0 {
            self.min = ns;
            self.max = ns;
        }
        self.count += 1;
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
        let x = ns as f64;
        let d = x - self.mean;
        self.mean += d / f64::from(self.count);
        self.m2 += d * (x - self.mean);
        self.median.record(x);
    }

    /// Samples recorded.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Smallest sample, if any.
    pub fn min(&self) -> Option<i64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest sample, if any.
    pub fn max(&self) -> Option<i64> {
        (self.count > 0).then_some(self.max)
    }

    /// Arithmetic mean (0 when empty).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Population standard deviation (0 when empty).
    pub fn stddev(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            (self.m2 / f64::from(self.count)).sqrt()
        }
    }

    /// The median: exact up to five samples, the P² estimate beyond.
    pub fn median(&self) -> Option<f64> {
        self.median.estimate()
    }
}

/// The P² estimator of the median: marker heights `q`, actual positions `n` and desired
/// positions `want` (0-based), initialised from the first five samples.
#[derive(Clone, Debug, Default, PartialEq)]
struct P2Median {
    count: u32,
    q: [f64; 5],
    n: [f64; 5],
    want: [f64; 5],
}

/// Desired-position increments per sample for the 0.5 quantile.
const STEP: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

impl P2Median {
    fn record(&mut self, x: f64) {
        if self.count < 5 {
            let mut i = self.count as usize;
            self.q[i] = x;
            // Insertion keeps the first samples sorted.
            while i > 0 && self.q[i - 1] > self.q[i] {
                self.q.swap(i - 1, i);
                i -= 1;
            }
            self.count += 1;
            if self.count == 5 {
                self.n = [0.0, 1.0, 2.0, 3.0, 4.0];
                self.want = [0.0, 1.0, 2.0, 3.0, 4.0];
            }
            return;
        }
        self.count += 1;
        let cell = if x < self.q[0] {
            self.q[0] = x;
            0
        } else if x >= self.q[4] {
            self.q[4] = x;
            3
        } else {
            (0..4).rev().find(|&i| self.q[i] <= x).unwrap_or(0)
        };
        for i in cell + 1..5 {
            self.n[i] += 1.0;
        }
        for (w, s) in self.want.iter_mut().zip(STEP) {
            *w += s;
        }
        for i in 1..4 {
            let drift = self.want[i] - self.n[i];
            let up = drift >= 1.0 && self.n[i + 1] - self.n[i] > 1.0;
            let down = drift <= -1.0 && self.n[i - 1] - self.n[i] < -1.0;
            if up || down {
                let step = if up { 1.0 } else { -1.0 };
                let guess = self.parabolic(i, step);
                self.q[i] = if self.q[i - 1] < guess && guess < self.q[i + 1] {
                    guess
                } else {
                    self.linear(i, step)
                };
                self.n[i] += step;
            }
        }
    }

    fn parabolic(&self, i: usize, s: f64) -> f64 {
        let (q, n) = (&self.q, &self.n);
        q[i] + s / (n[i + 1] - n[i - 1])
            * ((n[i] - n[i - 1] + s) * (q[i + 1] - q[i]) / (n[i + 1] - n[i])
                + (n[i + 1] - n[i] - s) * (q[i] - q[i - 1]) / (n[i] - n[i - 1]))
    }

    fn linear(&self, i: usize, s: f64) -> f64 {
        let j = if s > 0.0 { i + 1 } else { i - 1 };
        self.q[i] + s * (self.q[j] - self.q[i]) / (self.n[j] - self.n[i])
    }

    fn estimate(&self) -> Option<f64> {
        match self.count {
            0 => None,
            c if c < 5 => Some(exact_median(&self.q[..c as usize])),
            _ => Some(self.q[2]),
        }
    }
}

/// The median of sorted values (mean of the middle two for an even count).
pub(crate) fn exact_median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_statistics_for_few_samples() {
        let mut s = RttSummary::default();
        assert_eq!(s.median(), None);
        assert_eq!(s.min(), None);
        for v in [3_000, 1_000, 2_000, 10_000] {
            s.record(v);
        }
        assert_eq!(s.count(), 4);
        assert_eq!(s.min(), Some(1_000));
        assert_eq!(s.max(), Some(10_000));
        assert!((s.mean() - 4_000.0).abs() < 1e-9);
        // Population deviation of 1,2,3,10 (thousands): sqrt(((3²+2²+1²+6²)/4)) = sqrt(12.5).
        assert!((s.stddev() - 12.5f64.sqrt() * 1_000.0).abs() < 1e-6);
        assert_eq!(s.median(), Some(2_500.0));
        s.record(500);
        assert_eq!(s.median(), Some(2_000.0));
    }

    #[test]
    fn p2_median_tracks_a_large_sample() {
        let mut s = RttSummary::default();
        // A deterministic shuffle of 1..=10001 (multiplication by a unit modulo 10001).
        for i in 0..10_001u64 {
            s.record(((i * 7_919) % 10_001 + 1) as i64);
        }
        let m = s.median().unwrap_or(0.0);
        assert!((m - 5_001.0).abs() < 50.0, "median estimate {m}");
        assert_eq!(s.min(), Some(1));
        assert_eq!(s.max(), Some(10_001));
    }

    #[test]
    fn summary_is_small() {
        assert!(std::mem::size_of::<RttSummary>() <= 192);
    }
}
