//! How the reflector answers the TLV area of a sender packet (RFC 8972 section 4).
//!
//! The reply's TLV area has the request's length. Each TLV is copied, with flags set as RFC 8972
//! asks: Extra Padding is understood (U and M cleared); probe's clock TLV is understood and its
//! Value replaced by the reflector's own clock facts; any other type keeps its Value with U set.
//! A TLV whose Length runs past the packet gets M set and the rest is copied as it came. An
//! all-zero area is plain RFC 8762 padding and is returned as zeros.

use crate::time::ClockInfo;
use crate::wire::stamp_clock_tlv::{CLOCK_VALUE_LEN, CLOCK_VERSION, ClockValue};
use crate::wire::stamp_tlv::{MalformedTlv, TLV_HEADER_LEN, TlvFlags, TlvIter, tlv_type};

/// Flags a reflector answers with: U and M as given, I cleared (no integrity checking here),
/// reserved bits kept.
fn answer_flags(received: u8, unrecognized: bool, malformed: bool) -> u8 {
    let mut f = received & !(TlvFlags::UNRECOGNIZED | TlvFlags::MALFORMED | TlvFlags::INTEGRITY);
    if unrecognized {
        f |= TlvFlags::UNRECOGNIZED;
    }
    if malformed {
        f |= TlvFlags::MALFORMED;
    }
    f
}

/// Writes the reply TLV area `out` for the request TLV area `req` (same length; `out` is
/// overwritten whole). `clock` is what the reflector says about its clock.
pub(crate) fn reflect_tlv_area(req: &[u8], out: &mut [u8], clock: &ClockInfo) {
    debug_assert_eq!(req.len(), out.len());
    out.copy_from_slice(req);
    // A TLV area starts with flags, normally U set; only then scan it all (vectorized OR).
    if req.first() == Some(&0) && req.iter().fold(0, |acc, &b| acc | b) == 0 {
        return;
    }
    for item in TlvIter::new(req) {
        match item {
            Ok((offset, tlv)) => {
                let (unrecognized, malformed) = match tlv.tlv_type() {
                    tlv_type::EXTRA_PADDING => (false, false),
                    tlv_type::PROBE_CLOCK if tlv.length() != CLOCK_VALUE_LEN => (false, true),
                    tlv_type::PROBE_CLOCK if tlv.value()[0] == CLOCK_VERSION => {
                        let value = &mut out[offset + TLV_HEADER_LEN..offset + tlv.total_len()];
                        ClockValue::new_unchecked(value).write_info(clock);
                        (false, false)
                    }
                    _ => (true, false),
                };
                out[offset] = answer_flags(tlv.flags().0, unrecognized, malformed);
            }
            Err(MalformedTlv { offset }) => {
                if req.len() - offset >= TLV_HEADER_LEN {
                    out[offset] = answer_flags(req[offset], false, true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::time::BootId;
    use crate::wire::stamp_clock_tlv::{CLOCK_TLV_LEN, emit_clock_tlv};
    use crate::wire::stamp_tlv::{Tlv, emit_padding, emit_tlv};

    const U: TlvFlags = TlvFlags(TlvFlags::UNRECOGNIZED);

    fn reflector_clock() -> ClockInfo {
        ClockInfo {
            boot_id: BootId([7; 16]),
            synchronized: true,
            max_error: Some(Duration::from_micros(250)),
        }
    }

    fn sender_clock() -> ClockInfo {
        ClockInfo {
            boot_id: BootId([1; 16]),
            synchronized: false,
            max_error: None,
        }
    }

    #[test]
    fn clock_tlv_answered_padding_kept_unknown_flagged() {
        let mut req = vec![0u8; CLOCK_TLV_LEN + 6 + 8];
        emit_clock_tlv(&mut req, U, &sender_clock()).expect("room");
        let mut t = emit_tlv(&mut req[CLOCK_TLV_LEN..], U, 200, 2).expect("room");
        t.value_mut().copy_from_slice(&[0xAA, 0xBB]);
        emit_padding(&mut req[CLOCK_TLV_LEN + 6..]);
        let mut out = vec![0xEEu8; req.len()];
        reflect_tlv_area(&req, &mut out, &reflector_clock());

        let clock = Tlv::new_checked(&out[..]).expect("tlv");
        assert!(!clock.flags().unrecognized());
        let info = ClockValue::new_checked(clock.value())
            .expect("value")
            .to_info();
        assert_eq!(info, reflector_clock());

        let unknown = Tlv::new_checked(&out[CLOCK_TLV_LEN..]).expect("tlv");
        assert!(unknown.flags().unrecognized());
        assert_eq!(unknown.value(), &[0xAA, 0xBB]);

        let pad = Tlv::new_checked(&out[CLOCK_TLV_LEN + 6..]).expect("tlv");
        assert_eq!(pad.flags(), TlvFlags(0));
        assert_eq!(pad.tlv_type(), tlv_type::EXTRA_PADDING);
        assert!(pad.value().iter().all(|&b| b == 0));
    }

    #[test]
    fn foreign_clock_version_is_unrecognized() {
        let mut req = vec![0u8; CLOCK_TLV_LEN];
        emit_clock_tlv(&mut req, U, &sender_clock()).expect("room");
        req[TLV_HEADER_LEN] = 9;
        let mut out = vec![0u8; req.len()];
        reflect_tlv_area(&req, &mut out, &reflector_clock());
        assert_eq!(out[0], TlvFlags::UNRECOGNIZED);
        assert_eq!(out[1..], req[1..], "value copied untouched");
    }

    #[test]
    fn malformed_and_zero_padding() {
        // Length 20 with 4 octets of Value: M set, U cleared, rest copied.
        let req = [0x80, 0x01, 0x00, 0x14, 1, 2, 3, 4];
        let mut out = [0u8; 8];
        reflect_tlv_area(&req, &mut out, &reflector_clock());
        assert_eq!(out, [0x40, 0x01, 0x00, 0x14, 1, 2, 3, 4]);
        // Wrong length for the clock type is malformed too.
        let mut req = [0u8; 8];
        emit_tlv(&mut req, U, tlv_type::PROBE_CLOCK, 4).expect("room");
        let mut out = [0u8; 8];
        reflect_tlv_area(&req, &mut out, &reflector_clock());
        assert_eq!(out[0], TlvFlags::MALFORMED);
        // Plain zero padding (RFC 8762 sender) stays zeros.
        let zeros = [0u8; 30];
        let mut out = [0xFFu8; 30];
        reflect_tlv_area(&zeros, &mut out, &reflector_clock());
        assert_eq!(out, zeros);
        // A 2-octet fragment after a TLV is copied as is.
        let req = [0x80, 0x01, 0x00, 0x00, 0x12, 0x34];
        let mut out = [0u8; 6];
        reflect_tlv_area(&req, &mut out, &reflector_clock());
        assert_eq!(out, [0x00, 0x01, 0x00, 0x00, 0x12, 0x34]);
    }
}
