//! The 16-bit Error Estimate of STAMP (RFC 8762 section 4.2.1, after RFC 4656 section 4.1.2).
//!
//! ```text
//!  0                   1
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |S|Z|   Scale   |   Multiplier  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! S is set when the clock is synchronized to UTC by an external source; Z tells the timestamp
//! format (0 NTP, 1 truncated PTP version 2). The error is `Multiplier * 2^(Scale - 32)` seconds.

use std::time::Duration;

const S_BIT: u16 = 0x8000;
const Z_BIT: u16 = 0x4000;
const SCALE_MAX: u32 = 63;

/// A STAMP Error Estimate as its 16-bit wire value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ErrorEstimate(pub u16);

impl ErrorEstimate {
    /// The largest error the field can express, used when the error is unknown.
    pub const UNKNOWN: ErrorEstimate = ErrorEstimate(((SCALE_MAX as u16) << 8) | 0xFF);

    /// Builds the field from its parts (`scale` is cut to 6 bits).
    pub const fn new(synchronized: bool, ptp: bool, scale: u8, multiplier: u8) -> Self {
        let mut v = (((scale & 0x3F) as u16) << 8) | multiplier as u16;
        if synchronized {
            v |= S_BIT;
        }
        if ptp {
            v |= Z_BIT;
        }
        ErrorEstimate(v)
    }

    /// The smallest NTP-format estimate at least as large as `error` (never understating it).
    /// `None` (an unknown error) gives [`ErrorEstimate::UNKNOWN`].
    pub fn from_error(synchronized: bool, error: Option<Duration>) -> Self {
        let Some(error) = error else {
            return Self::UNKNOWN.with_synchronized(synchronized);
        };
        // Units of 2^-32 s, rounded up.
        let units = (error.as_nanos() << 32).div_ceil(1_000_000_000).max(1);
        let mut scale = 0u32;
        while scale <= SCALE_MAX {
            let mult = units.div_ceil(1u128 << scale);
            if mult <= 0xFF {
                return ErrorEstimate::new(synchronized, false, scale as u8, mult as u8);
            }
            scale += 1;
        }
        Self::UNKNOWN.with_synchronized(synchronized)
    }

    /// The same estimate with the S bit set as given.
    #[must_use]
    pub const fn with_synchronized(self, synchronized: bool) -> Self {
        if synchronized {
            ErrorEstimate(self.0 | S_BIT)
        } else {
            ErrorEstimate(self.0 & !S_BIT)
        }
    }

    /// S bit: the clock is synchronized to UTC by an external source.
    pub const fn synchronized(self) -> bool {
        self.0 & S_BIT != 0
    }

    /// Z bit: timestamps next to this estimate are truncated PTP version 2 rather than NTP.
    pub const fn ptp(self) -> bool {
        self.0 & Z_BIT != 0
    }

    /// The 6-bit scale.
    pub const fn scale(self) -> u8 {
        ((self.0 >> 8) & 0x3F) as u8
    }

    /// The 8-bit multiplier.
    pub const fn multiplier(self) -> u8 {
        self.0 as u8
    }

    /// The error in nanoseconds, rounded up and saturating at `u64::MAX`; `None` when the
    /// multiplier is zero, which RFC 4656 forbids (the estimate is then meaningless).
    pub fn error_ns(self) -> Option<u64> {
        if self.multiplier() == 0 {
            return None;
        }
        let units = (self.multiplier() as u128) << self.scale();
        let ns = (units * 1_000_000_000).div_ceil(1 << 32);
        Some(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// The error in seconds; `None` when the multiplier is zero.
    pub fn seconds(self) -> Option<f64> {
        if self.multiplier() == 0 {
            return None;
        }
        Some(self.multiplier() as f64 * 2f64.powi(self.scale() as i32 - 32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_layout() {
        let e = ErrorEstimate::new(true, false, 0x3F, 0x12);
        assert_eq!(e.0, 0xBF12);
        let e = ErrorEstimate::new(false, true, 1, 2);
        assert_eq!(e.0, 0x4102);
        assert!(e.ptp());
        assert!(!e.synchronized());
        assert_eq!(e.scale(), 1);
        assert_eq!(e.multiplier(), 2);
    }

    #[test]
    fn one_second() {
        // 1 s is 2^32 units; the smallest scale whose multiplier fits 8 bits is 25 (128 * 2^-7).
        let e = ErrorEstimate::from_error(true, Some(Duration::from_secs(1)));
        assert_eq!((e.scale(), e.multiplier()), (25, 128));
        assert!(e.synchronized());
        assert_eq!(e.seconds(), Some(1.0));
        assert_eq!(e.error_ns(), Some(1_000_000_000));
    }

    #[test]
    fn never_understates() {
        for us in [1u64, 7, 100, 999, 1_000, 16_000, 500_000, 3_000_000_000] {
            let d = Duration::from_micros(us);
            let e = ErrorEstimate::from_error(false, Some(d));
            let got = e.error_ns().expect("valid");
            assert!(got >= d.as_nanos() as u64, "{us} us -> {got} ns");
            // At most one step of 1/128 above (multiplier >= 128 unless scale is 0).
            assert!(got as f64 <= d.as_nanos() as f64 * (1.0 + 1.0 / 128.0) + 1.0);
        }
    }

    #[test]
    fn tiny_and_unknown() {
        let e = ErrorEstimate::from_error(false, Some(Duration::ZERO));
        assert_eq!((e.scale(), e.multiplier()), (0, 1));
        assert_eq!(e.error_ns(), Some(1)); // 2^-32 s rounds up to 1 ns
        let u = ErrorEstimate::from_error(true, None);
        assert_eq!(u.0, 0xBFFF);
        assert_eq!(u.error_ns(), Some(u64::MAX));
        assert_eq!(ErrorEstimate(0x8000).error_ns(), None);
        assert_eq!(ErrorEstimate(0x8000).seconds(), None);
    }
}
