//! probe's clock information STAMP TLV (type [`tlv_type::PROBE_CLOCK`], from the Experimental
//! range of RFC 8972's registry).
//!
//! A sender puts it in a few "hello" packets before a test, filled with its own clock facts. A
//! probe reflector that understands it overwrites the Value with *its* facts and clears the U
//! flag; any other reflector returns it untouched with U set. Equal boot ids prove both ends run
//! on one kernel, hence one clock (clock mode `shared`).
//!
//! Value (24 octets):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Version=1   |S|    MBZ      |              MBZ              |  0
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |              Maximum Error (microseconds, all ones: unknown)  |  4
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Kernel Boot Id (16 octets)                 |  8
//! ~                                                               ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! S is set when the clock is synchronized to UTC by an external source.

use std::time::Duration;

use super::stamp_tlv::{NoRoom, TLV_HEADER_LEN, TlvFlags, emit_tlv, tlv_type};
use crate::time::{BootId, ClockInfo};

/// Length of the clock TLV's Value.
pub const CLOCK_VALUE_LEN: usize = 24;
/// Length of the whole clock TLV.
pub const CLOCK_TLV_LEN: usize = TLV_HEADER_LEN + CLOCK_VALUE_LEN;
/// The Value layout version this module reads and writes.
pub const CLOCK_VERSION: u8 = 1;

const SYNC_BIT: u8 = 0x80;
const UNKNOWN_ERROR: u32 = u32::MAX;

/// A view of the clock TLV's Value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockValue<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ClockValue<T> {
    /// Wraps a Value of exactly [`CLOCK_VALUE_LEN`] octets and version [`CLOCK_VERSION`].
    pub fn new_checked(buffer: T) -> Option<Self> {
        let b = buffer.as_ref();
        (b.len() == CLOCK_VALUE_LEN && b[0] == CLOCK_VERSION).then_some(ClockValue { buffer })
    }

    /// Wraps a buffer without checks (accessors panic when it is short).
    pub const fn new_unchecked(buffer: T) -> Self {
        ClockValue { buffer }
    }

    /// The version octet.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// The S flag.
    pub fn synchronized(&self) -> bool {
        self.buffer.as_ref()[1] & SYNC_BIT != 0
    }

    /// Maximum error in microseconds (`u32::MAX` = unknown).
    pub fn max_error_us(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    /// The kernel boot id.
    pub fn boot_id(&self) -> BootId {
        let mut id = [0; 16];
        id.copy_from_slice(&self.buffer.as_ref()[8..CLOCK_VALUE_LEN]);
        BootId(id)
    }

    /// The clock facts this Value carries.
    pub fn to_info(&self) -> ClockInfo {
        let us = self.max_error_us();
        ClockInfo {
            boot_id: self.boot_id(),
            synchronized: self.synchronized(),
            max_error: (us != UNKNOWN_ERROR).then(|| Duration::from_micros(u64::from(us))),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ClockValue<T> {
    /// Writes `info` (version, flags, MBZ zeroed, error rounded up to whole microseconds and
    /// saturating just below "unknown").
    pub fn write_info(&mut self, info: &ClockInfo) {
        let b = self.buffer.as_mut();
        b[0] = CLOCK_VERSION;
        b[1] = if info.synchronized { SYNC_BIT } else { 0 };
        b[2..4].fill(0);
        let us = info.max_error.map_or(UNKNOWN_ERROR, |e| {
            u32::try_from(e.as_nanos().div_ceil(1_000))
                .map_or(UNKNOWN_ERROR - 1, |v| v.min(UNKNOWN_ERROR - 1))
        });
        b[4..8].copy_from_slice(&us.to_be_bytes());
        b[8..CLOCK_VALUE_LEN].copy_from_slice(&info.boot_id.0);
    }
}

/// Writes a whole clock TLV carrying `info` at the start of `buf`; returns its length.
pub fn emit_clock_tlv(buf: &mut [u8], flags: TlvFlags, info: &ClockInfo) -> Result<usize, NoRoom> {
    let mut tlv = emit_tlv(buf, flags, tlv_type::PROBE_CLOCK, CLOCK_VALUE_LEN)?;
    ClockValue::new_unchecked(tlv.value_mut()).write_info(info);
    Ok(CLOCK_TLV_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    const TLV: [u8; CLOCK_TLV_LEN] = [
        0x80, 248, 0x00, 24,        // U set, type 248, Length 24
        0x01, 0x80, 0x00, 0x00,     // version 1, S set, MBZ
        0x00, 0x00, 0x05, 0xDC,     // maximum error 1500 us
        0x5f, 0x0c, 0x2a, 0x3e, 0x9b, 0x1d, 0x4c, 0x7e,
        0x8a, 0x2f, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
    ];

    fn info() -> ClockInfo {
        ClockInfo {
            boot_id: BootId::parse("5f0c2a3e-9b1d-4c7e-8a2f-0123456789ab").expect("uuid"),
            synchronized: true,
            max_error: Some(Duration::from_micros(1_500)),
        }
    }

    #[test]
    fn emit_matches_layout() {
        let mut buf = [0xEEu8; 40];
        let n = emit_clock_tlv(&mut buf, TlvFlags(TlvFlags::UNRECOGNIZED), &info()).expect("room");
        assert_eq!(n, CLOCK_TLV_LEN);
        assert_eq!(buf[..n], TLV);
        assert_eq!(buf[n], 0xEE, "nothing written past the TLV");
        assert!(emit_clock_tlv(&mut buf[..27], TlvFlags(0), &info()).is_err());
    }

    #[test]
    fn parse_round_trip() {
        let v = ClockValue::new_checked(&TLV[TLV_HEADER_LEN..]).expect("valid");
        assert_eq!(v.version(), 1);
        assert_eq!(v.max_error_us(), 1_500);
        assert_eq!(v.to_info(), info());
        // Wrong length or version is not ours.
        assert!(ClockValue::new_checked(&TLV[TLV_HEADER_LEN..27]).is_none());
        let mut other = TLV;
        other[4] = 2;
        assert!(ClockValue::new_checked(&other[TLV_HEADER_LEN..]).is_none());
    }

    #[test]
    fn unknown_and_huge_errors() {
        let mut value = [0u8; CLOCK_VALUE_LEN];
        let mut unknown = info();
        unknown.max_error = None;
        unknown.synchronized = false;
        ClockValue::new_unchecked(&mut value[..]).write_info(&unknown);
        assert_eq!(value[4..8], [0xFF; 4]);
        assert_eq!(
            ClockValue::new_checked(&value[..])
                .expect("valid")
                .to_info(),
            unknown
        );
        let mut huge = info();
        huge.max_error = Some(Duration::from_secs(10_000));
        ClockValue::new_unchecked(&mut value[..]).write_info(&huge);
        let back = ClockValue::new_checked(&value[..])
            .expect("valid")
            .to_info();
        assert_eq!(
            back.max_error,
            Some(Duration::from_micros(u64::from(u32::MAX - 1)))
        );
        // Sub-microsecond errors round up.
        let mut tiny = info();
        tiny.max_error = Some(Duration::from_nanos(1));
        ClockValue::new_unchecked(&mut value[..]).write_info(&tiny);
        assert_eq!(
            ClockValue::new_checked(&value[..])
                .expect("valid")
                .max_error_us(),
            1
        );
    }
}
