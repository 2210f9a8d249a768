//! The global send rate: one token bucket for every probe of a run, fed timestamps as values.
//!
//! Kept as a theoretical arrival time (the GCRA form of a token bucket): a probe may leave
//! when `now >= tat - tolerance`, and leaving moves `tat` one interval past `max(tat, now)`.
//! Over any window of `w` nanoseconds at most `burst + w / interval` probes leave, so the
//! long-run rate never exceeds the configured one; the burst only lets a late timer wake-up
//! catch up instead of losing time.

use crate::time::Nanos;

/// A token bucket of `rate` tokens per second holding at most `burst` tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    interval_ns: u64,
    tolerance_ns: u64,
    tat: u64,
}

impl TokenBucket {
    /// A bucket for `rate` probes per second (0: unlimited) with bursts of `burst` (at least 1),
    /// full at the start.
    pub fn new(rate: u32, burst: u32) -> Self {
        let interval_ns = if rate == 0 {
            0
        } else {
            1_000_000_000 / u64::from(rate)
        };
        TokenBucket {
            interval_ns,
            tolerance_ns: interval_ns * u64::from(burst.max(1) - 1),
            tat: 0,
        }
    }

    /// The burst that lets a sender woken up to 10 ms late (a timer of millisecond resolution,
    /// a busy CPU) keep `rate`: one token plus what accrues in 10 ms.
    pub fn default_burst(rate: u32) -> u32 {
        1 + rate.div_ceil(100)
    }

    /// The earliest time a token is available.
    pub fn ready_at(&self) -> Nanos {
        Nanos(self.tat.saturating_sub(self.tolerance_ns))
    }

    /// Whether a token is available at `now`.
    pub fn ready(&self, now: Nanos) -> bool {
        now >= self.ready_at()
    }

    /// Takes a token at `now` (the caller checked [`TokenBucket::ready`]).
    pub fn take(&mut self, now: Nanos) {
        self.tat = self.tat.max(now.0) + self.interval_ns;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let mut b = TokenBucket::new(1000, 3);
        let t0 = Nanos(1_000_000_000);
        for _ in 0..3 {
            assert!(b.ready(t0));
            b.take(t0);
        }
        assert!(!b.ready(t0));
        assert_eq!(b.ready_at(), Nanos(t0.0 + 1_000_000));
    }

    #[test]
    fn unlimited_is_always_ready() {
        let mut b = TokenBucket::new(0, 1);
        for _ in 0..100 {
            assert!(b.ready(Nanos(5)));
            b.take(Nanos(5));
        }
    }
}
