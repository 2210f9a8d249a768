//! A wall-clock or monotonic instant in nanoseconds, as a plain value.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time as nanoseconds since an epoch that the producer names (UNIX epoch for
/// `CLOCK_REALTIME` kernel timestamps, boot for `CLOCK_MONOTONIC`).
///
/// Differences between two `Nanos` from the same clock are signed nanoseconds ([`i64`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nanos(pub u64);

impl Nanos {
    /// The zero instant.
    pub const ZERO: Nanos = Nanos(0);

    /// Builds an instant from seconds and nanoseconds (as a `timespec` holds them).
    pub const fn from_parts(secs: u64, nanos: u32) -> Self {
        Nanos(secs * 1_000_000_000 + nanos as u64)
    }

    /// The current `CLOCK_REALTIME` time.
    pub fn now_realtime() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Nanos(d.as_nanos() as u64)
    }

    /// Signed difference `self - earlier` in nanoseconds.
    pub const fn since(self, earlier: Nanos) -> i64 {
        self.0.wrapping_sub(earlier.0) as i64
    }

    /// Seconds part.
    pub const fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }

    /// Sub-second nanoseconds part.
    pub const fn subsec_nanos(self) -> u32 {
        (self.0 % 1_000_000_000) as u32
    }
}

impl Nanos {
    /// `self + d`, saturating at the largest instant (a duration of centuries must not wrap).
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Nanos {
        Nanos(self.0.saturating_add(duration_ns(d)))
    }

    /// `self + ns` for signed nanoseconds, saturating at both ends.
    #[must_use]
    pub const fn saturating_add_ns(self, ns: i64) -> Nanos {
        Nanos(self.0.saturating_add_signed(ns))
    }

    /// `self - d`, saturating at zero.
    #[must_use]
    pub fn saturating_sub(self, d: Duration) -> Nanos {
        Nanos(self.0.saturating_sub(duration_ns(d)))
    }
}

/// A duration in whole nanoseconds as `u64`, saturating (584 years and more become `u64::MAX`).
pub fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Nanos {
    type Output = Nanos;
    /// Saturating: an instant past the year 2554 stays at the largest one.
    fn add(self, rhs: Duration) -> Nanos {
        self.saturating_add(rhs)
    }
}

impl Sub<Nanos> for Nanos {
    type Output = i64;
    fn sub(self, rhs: Nanos) -> i64 {
        self.since(rhs)
    }
}

impl fmt::Display for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs(), self.subsec_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_difference() {
        let a = Nanos::from_parts(10, 500);
        let b = Nanos::from_parts(9, 999_999_000);
        assert_eq!(a.secs(), 10);
        assert_eq!(a.subsec_nanos(), 500);
        assert_eq!(a - b, 1_500);
        assert_eq!(b - a, -1_500);
        assert_eq!(b + Duration::from_micros(1), Nanos::from_parts(10, 0));
        assert_eq!(a.to_string(), "10.000000500");
    }

    #[test]
    fn arithmetic_saturates() {
        let now = Nanos::from_parts(1_700_000_000, 0);
        // 600 years: more nanoseconds than u64 holds after now.
        let far = now + Duration::from_secs(600 * 365 * 86_400);
        assert_eq!(far, Nanos(u64::MAX));
        assert_eq!(now + Duration::MAX, Nanos(u64::MAX));
        assert_eq!(Nanos(5).saturating_sub(Duration::from_secs(1)), Nanos::ZERO);
        assert_eq!(Nanos(5).saturating_add_ns(-10), Nanos::ZERO);
        assert_eq!(Nanos(u64::MAX - 1).saturating_add_ns(10), Nanos(u64::MAX));
        assert_eq!(duration_ns(Duration::MAX), u64::MAX);
    }
}
