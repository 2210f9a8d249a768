//! Byte accounting of a bulk transfer: totals and fixed-width interval slices, fed byte
//! counts with their arrival offsets (sans-IO).

use std::time::Duration;

/// Counts bytes in slices of `every` from the start of the transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteCounter {
    every_ns: u64,
    slices: Vec<u64>,
    total: u64,
    last_ns: u64,
}

/// Most slices kept; bytes beyond the last slice go to it (a 1 h test at 100 ms is 36 000).
pub const MAX_SLICES: usize = 100_000;

impl ByteCounter {
    /// A counter slicing every `every` (at least 1 ms).
    pub fn new(every: Duration) -> Self {
        ByteCounter {
            every_ns: u64::try_from(every.as_nanos())
                .unwrap_or(u64::MAX)
                .max(1_000_000),
            slices: Vec::new(),
            total: 0,
            last_ns: 0,
        }
    }

    /// `bytes` arrived (or were written) `at` after the start.
    pub fn add(&mut self, at: Duration, bytes: u64) {
        let ns = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
        let i = usize::try_from(ns / self.every_ns)
            .unwrap_or(usize::MAX)
            .min(MAX_SLICES - 1);
        if i >= self.slices.len() {
            self.slices.resize(i + 1, 0);
        }
        self.slices[i] += bytes;
        self.total += bytes;
        self.last_ns = self.last_ns.max(ns);
    }

    /// The transfer ended `at` after the start (the slices reach that far).
    pub fn end(&mut self, at: Duration) {
        let ns = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
        self.last_ns = self.last_ns.max(ns);
        let n = usize::try_from(self.last_ns.div_ceil(self.every_ns))
            .unwrap_or(usize::MAX)
            .min(MAX_SLICES);
        if n > self.slices.len() {
            self.slices.resize(n, 0);
        }
    }

    /// Every byte counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Time from the start to the last byte or the end, whichever is later.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.last_ns)
    }

    /// The slice width.
    pub fn every(&self) -> Duration {
        Duration::from_nanos(self.every_ns)
    }

    /// Bytes per slice, slice `i` covering `[i * every, (i + 1) * every)`.
    pub fn slices(&self) -> &[u64] {
        &self.slices
    }
}

/// Bits per second of `bytes` over `elapsed` (0 for no time).
pub fn bits_per_second(bytes: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 { bytes as f64 * 8.0 / s } else { 0.0 }
}

/// Sums per-stream slices into one series (streams of one direction).
pub fn sum_slices<'a>(series: impl IntoIterator<Item = &'a [u64]>) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for s in series {
        if s.len() > out.len() {
            out.resize(s.len(), 0);
        }
        for (o, v) in out.iter_mut().zip(s) {
            *o += v;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // The rates here are exact in binary floating point.
mod tests {
    use super::*;

    #[test]
    fn slices_and_totals() {
        let mut c = ByteCounter::new(Duration::from_millis(100));
        c.add(Duration::from_millis(5), 1_000);
        c.add(Duration::from_millis(99), 500);
        c.add(Duration::from_millis(100), 2_000);
        c.add(Duration::from_millis(350), 10);
        c.end(Duration::from_millis(420));
        assert_eq!(c.slices(), &[1_500, 2_000, 0, 10, 0]);
        assert_eq!(c.total(), 3_510);
        assert_eq!(c.elapsed(), Duration::from_millis(420));
        assert_eq!(c.every(), Duration::from_millis(100));
        // 1 250 000 bytes in one second is 10 Mbit/s.
        assert_eq!(bits_per_second(1_250_000, Duration::from_secs(1)), 10e6);
        assert_eq!(bits_per_second(5, Duration::ZERO), 0.0);
        assert_eq!(
            sum_slices([&[1, 2][..], &[10, 20, 30][..]]),
            vec![11, 22, 30]
        );
    }

    #[test]
    fn slice_count_is_bounded() {
        let mut c = ByteCounter::new(Duration::from_millis(1));
        c.add(Duration::from_secs(1_000_000), 1);
        assert_eq!(c.slices().len(), MAX_SLICES);
        assert_eq!(c.slices()[MAX_SLICES - 1], 1);
    }
}
