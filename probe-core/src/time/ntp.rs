//! The 64-bit NTP timestamp format (RFC 5905 section 6) used by STAMP, and the truncated PTP version 2
//! format a STAMP peer may announce with the Z bit of its Error Estimate (RFC 8762 section 4.2.1).
//!
//! NTP counts seconds since 1900-01-01 in 32 bits, so it wraps every 2^32 s (eras). [`Nanos`] is
//! the UNIX epoch in nanoseconds; conversion back picks the era that keeps the result at or after
//! 1970: NTP seconds at or above the UNIX offset are era 0 (1970..2036-02-07), smaller ones are
//! era 1 (2036-02-07..2106). The fraction is 2^-32 s (about 0.23 ns), so nanoseconds survive a
//! round trip exactly.

use super::Nanos;

/// Seconds from the NTP epoch (1900-01-01) to the UNIX epoch (1970-01-01).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// Seconds TAI runs ahead of UTC (since 2017-01-01; no leap second has been announced since).
/// PTP timestamps count TAI seconds.
pub const TAI_UTC_OFFSET_SECS: u64 = 37;

const NANOS_PER_SEC: u64 = 1_000_000_000;
const ERA_SECS: u64 = 1 << 32;

/// A 64-bit timestamp as carried on the wire: 32 bits of seconds, 32 bits of fraction.
///
/// Whether it is NTP (the default) or truncated PTP version 2 is told by the Z bit of the Error Estimate
/// next to it; [`NtpTimestamp::decode`] takes that bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// Builds a timestamp from its seconds and fraction words.
    pub const fn from_parts(seconds: u32, fraction: u32) -> Self {
        NtpTimestamp(((seconds as u64) << 32) | fraction as u64)
    }

    /// The seconds word.
    pub const fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The fraction word (units of 2^-32 s, or nanoseconds in the PTP format).
    pub const fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// The NTP timestamp of a UNIX-epoch instant (rounded to the nearest 2^-32 s).
    pub const fn from_nanos(t: Nanos) -> Self {
        let secs = (t.secs() + NTP_UNIX_OFFSET_SECS) % ERA_SECS;
        // ns < 1e9, so ns << 32 < 2^62: no overflow. The largest ns rounds to 2^32 - 4: no carry.
        let frac = (((t.subsec_nanos() as u64) << 32) + NANOS_PER_SEC / 2) / NANOS_PER_SEC;
        NtpTimestamp::from_parts(secs as u32, frac as u32)
    }

    /// The UNIX-epoch instant of an NTP timestamp (era chosen as the module explains).
    pub const fn to_nanos(self) -> Nanos {
        let secs = self.seconds() as u64;
        let unix_secs = if secs >= NTP_UNIX_OFFSET_SECS {
            secs - NTP_UNIX_OFFSET_SECS
        } else {
            secs + ERA_SECS - NTP_UNIX_OFFSET_SECS
        };
        let ns = (self.fraction() as u64 * NANOS_PER_SEC + (1 << 31)) >> 32;
        Nanos(unix_secs * NANOS_PER_SEC + ns)
    }

    /// The truncated PTP version 2 timestamp (TAI seconds, nanoseconds) of a UNIX-epoch UTC instant.
    pub const fn from_nanos_ptp(t: Nanos) -> Self {
        let secs = (t.secs() + TAI_UTC_OFFSET_SECS) % ERA_SECS;
        NtpTimestamp::from_parts(secs as u32, t.subsec_nanos())
    }

    /// Reads this value as truncated PTP version 2 (TAI seconds, nanoseconds) and returns UTC.
    ///
    /// Nanosecond words of 10^9 or more are invalid and saturate to the last nanosecond.
    pub const fn to_nanos_ptp(self) -> Nanos {
        let ns = if (self.fraction() as u64) < NANOS_PER_SEC {
            self.fraction() as u64
        } else {
            NANOS_PER_SEC - 1
        };
        let utc = (self.seconds() as u64).saturating_sub(TAI_UTC_OFFSET_SECS);
        Nanos(utc * NANOS_PER_SEC + ns)
    }

    /// Decodes the timestamp in the format its Error Estimate announces (`ptp` = Z bit).
    pub const fn decode(self, ptp: bool) -> Nanos {
        if ptp {
            self.to_nanos_ptp()
        } else {
            self.to_nanos()
        }
    }
}

impl From<Nanos> for NtpTimestamp {
    fn from(t: Nanos) -> Self {
        NtpTimestamp::from_nanos(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_epoch_is_ntp_offset() {
        let t = NtpTimestamp::from_nanos(Nanos::ZERO);
        assert_eq!(t.seconds(), 2_208_988_800);
        assert_eq!(t.fraction(), 0);
        assert_eq!(t.0, 0x83AA_7E80_0000_0000);
        assert_eq!(t.to_nanos(), Nanos::ZERO);
    }

    #[test]
    fn half_second_is_top_fraction_bit() {
        let t = NtpTimestamp::from_nanos(Nanos::from_parts(1, 500_000_000));
        assert_eq!(t.seconds(), 2_208_988_801);
        assert_eq!(t.fraction(), 0x8000_0000);
        let q = NtpTimestamp::from_nanos(Nanos::from_parts(0, 250_000_000));
        assert_eq!(q.fraction(), 0x4000_0000);
    }

    #[test]
    fn known_date() {
        // 2024-01-01T00:00:00Z = UNIX 1_704_067_200 = NTP 3_913_056_000 (0xE93C_7F00).
        let t = NtpTimestamp::from_nanos(Nanos::from_parts(1_704_067_200, 0));
        assert_eq!(t.seconds(), 0xE93C_7F00);
        assert_eq!(t.to_nanos(), Nanos::from_parts(1_704_067_200, 0));
    }

    #[test]
    fn nanoseconds_round_trip_exactly() {
        for ns in [
            0u32,
            1,
            2,
            3,
            499_999_999,
            500_000_000,
            500_000_001,
            999_999_998,
            999_999_999,
            123_456_789,
        ] {
            let t = Nanos::from_parts(1_700_000_000, ns);
            assert_eq!(NtpTimestamp::from_nanos(t).to_nanos(), t, "ns {ns}");
        }
        // Every nanosecond of a stretch, to cover all rounding cases of a few fraction steps.
        for ns in 0..10_000u32 {
            let t = Nanos::from_parts(1_700_000_000, 999_990_000 + ns % 10_000);
            assert_eq!(NtpTimestamp::from_nanos(t).to_nanos(), t);
        }
    }

    #[test]
    fn largest_fraction_carries_into_seconds() {
        // 2^32 - 1 fraction units = 0.99999999977 s, rounds to the next second.
        let t = NtpTimestamp::from_parts(2_208_988_800, u32::MAX);
        assert_eq!(t.to_nanos(), Nanos::from_parts(1, 0));
    }

    #[test]
    fn era_edges() {
        // Last second of era 0: 2036-02-07T06:28:15Z = UNIX 2_085_978_495.
        let last = Nanos::from_parts(2_085_978_495, 999_999_999);
        let t = NtpTimestamp::from_nanos(last);
        assert_eq!(t.seconds(), u32::MAX);
        assert_eq!(t.to_nanos(), last);
        // First second of era 1 wraps to NTP seconds 0.
        let first = Nanos::from_parts(2_085_978_496, 0);
        let t = NtpTimestamp::from_nanos(first);
        assert_eq!(t.0, 0);
        assert_eq!(t.to_nanos(), first);
        // Late era 1, just before the NTP seconds reach the UNIX offset again (year 2106).
        let late = Nanos::from_parts(4_294_967_295, 7);
        assert_eq!(NtpTimestamp::from_nanos(late).to_nanos(), late);
    }

    #[test]
    fn ptp_format() {
        let t = Nanos::from_parts(1_704_067_200, 123_456_789);
        let p = NtpTimestamp::from_nanos_ptp(t);
        assert_eq!(p.seconds(), 1_704_067_237);
        assert_eq!(p.fraction(), 123_456_789);
        assert_eq!(p.decode(true), t);
        assert_eq!(NtpTimestamp::from_nanos(t).decode(false), t);
        assert_eq!(
            NtpTimestamp::from_parts(100, 2_000_000_000).to_nanos_ptp(),
            Nanos::from_parts(63, 999_999_999)
        );
    }
}
