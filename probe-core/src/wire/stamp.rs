//! STAMP test packets (RFC 8762), unauthenticated mode, with the Session-Sender Identifier of
//! RFC 8972. Both base packets are 44 octets; anything after them is the TLV area
//! ([`super::stamp_tlv`]) or zero padding.
//!
//! Session-Sender test packet (RFC 8762 section 4.2.1, RFC 8972 section 3):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Sequence Number                        |  0
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Timestamp                            |  4
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Error Estimate        |             SSID              | 12
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         MBZ (28 octets)                       | 16
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Session-Reflector test packet (RFC 8762 section 4.3.1, RFC 8972 section 3):
//!
//! ```text
//! |                        Sequence Number                        |  0
//! |                          Timestamp                            |  4
//! |         Error Estimate        |             SSID              | 12
//! |                          Receive Timestamp                    | 16
//! |                 Session-Sender Sequence Number                | 24
//! |                  Session-Sender Timestamp                     | 28
//! | Session-Sender Error Estimate |            MBZ                | 36
//! |Ses-Sender TTL |                   MBZ                         | 40
//! ```

use super::stamp_tlv::TlvIter;
use crate::time::{ErrorEstimate, NtpTimestamp};

/// Length of both unauthenticated base packets.
pub const BASE_LEN: usize = 44;

/// Field offsets (RFC 8762 figures 2 and 4).
mod field {
    use std::ops::Range;
    pub(super) const SEQ: Range<usize> = 0..4;
    pub(super) const TIMESTAMP: Range<usize> = 4..12;
    pub(super) const ERROR_ESTIMATE: Range<usize> = 12..14;
    pub(super) const SSID: Range<usize> = 14..16;
    pub(super) const RECEIVE_TIMESTAMP: Range<usize> = 16..24;
    pub(super) const SENDER_SEQ: Range<usize> = 24..28;
    pub(super) const SENDER_TIMESTAMP: Range<usize> = 28..36;
    pub(super) const SENDER_ERROR_ESTIMATE: Range<usize> = 36..38;
    pub(super) const SENDER_TTL: usize = 40;
}

/// A buffer too short for a STAMP base packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("STAMP packet truncated: {len} octets, at least {BASE_LEN} needed")]
pub struct Truncated {
    /// Length of the buffer.
    pub len: usize,
}

pub(super) fn get_u16(b: &[u8], r: std::ops::Range<usize>) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

pub(super) fn get_u32(b: &[u8], r: std::ops::Range<usize>) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[r]);
    u32::from_be_bytes(a)
}

pub(super) fn get_u64(b: &[u8], r: std::ops::Range<usize>) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[r]);
    u64::from_be_bytes(a)
}

/// Getters and setters of the four fields every STAMP packet starts with (sequence number,
/// timestamp, Error Estimate, SSID), for a view type `$view<T>` with a `buffer: T`. The offsets
/// are those of the `field` module where the macro is used, so the unauthenticated and the
/// authenticated layouts share the accessors. (Setters leave an authenticated packet's HMAC
/// stale: seal it again.)
macro_rules! base_fields {
    ($view:ident) => {
        impl<T: AsRef<[u8]>> $view<T> {
            /// Sequence Number.
            pub fn sequence_number(&self) -> u32 {
                get_u32(self.buffer.as_ref(), field::SEQ)
            }

            /// Timestamp (transmit time), in the format the Error Estimate's Z bit tells.
            pub fn timestamp(&self) -> NtpTimestamp {
                NtpTimestamp(get_u64(self.buffer.as_ref(), field::TIMESTAMP))
            }

            /// Error Estimate of the timestamps this end wrote.
            pub fn error_estimate(&self) -> ErrorEstimate {
                ErrorEstimate(get_u16(self.buffer.as_ref(), field::ERROR_ESTIMATE))
            }

            /// Session-Sender Identifier (RFC 8972; zero from plain RFC 8762 senders).
            pub fn ssid(&self) -> u16 {
                get_u16(self.buffer.as_ref(), field::SSID)
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $view<T> {
            /// Sets the Sequence Number.
            pub fn set_sequence_number(&mut self, v: u32) {
                self.buffer.as_mut()[field::SEQ].copy_from_slice(&v.to_be_bytes());
            }

            /// Sets the Timestamp.
            pub fn set_timestamp(&mut self, v: NtpTimestamp) {
                self.buffer.as_mut()[field::TIMESTAMP].copy_from_slice(&v.0.to_be_bytes());
            }

            /// Sets the Error Estimate.
            pub fn set_error_estimate(&mut self, v: ErrorEstimate) {
                self.buffer.as_mut()[field::ERROR_ESTIMATE].copy_from_slice(&v.0.to_be_bytes());
            }

            /// Sets the SSID.
            pub fn set_ssid(&mut self, v: u16) {
                self.buffer.as_mut()[field::SSID].copy_from_slice(&v.to_be_bytes());
            }
        }
    };
}
pub(super) use base_fields;

/// Getters and setters of the fields only a Session-Reflector packet has (what it echoes of
/// the sender's packet and when it received it), like [`base_fields`].
macro_rules! reflector_fields {
    ($view:ident) => {
        impl<T: AsRef<[u8]>> $view<T> {
            /// Receive Timestamp: when the reflector received the sender's packet.
            pub fn receive_timestamp(&self) -> NtpTimestamp {
                NtpTimestamp(get_u64(self.buffer.as_ref(), field::RECEIVE_TIMESTAMP))
            }

            /// Session-Sender Sequence Number, copied from the sender's packet.
            pub fn sender_sequence_number(&self) -> u32 {
                get_u32(self.buffer.as_ref(), field::SENDER_SEQ)
            }

            /// Session-Sender Timestamp, copied from the sender's packet.
            pub fn sender_timestamp(&self) -> NtpTimestamp {
                NtpTimestamp(get_u64(self.buffer.as_ref(), field::SENDER_TIMESTAMP))
            }

            /// Session-Sender Error Estimate, copied from the sender's packet.
            pub fn sender_error_estimate(&self) -> ErrorEstimate {
                ErrorEstimate(get_u16(self.buffer.as_ref(), field::SENDER_ERROR_ESTIMATE))
            }

            /// Ses-Sender TTL: the TTL or hop limit the sender's packet arrived with.
            pub fn sender_ttl(&self) -> u8 {
                self.buffer.as_ref()[field::SENDER_TTL]
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $view<T> {
            /// Sets the Receive Timestamp.
            pub fn set_receive_timestamp(&mut self, v: NtpTimestamp) {
                self.buffer.as_mut()[field::RECEIVE_TIMESTAMP].copy_from_slice(&v.0.to_be_bytes());
            }

            /// Sets the Session-Sender Sequence Number.
            pub fn set_sender_sequence_number(&mut self, v: u32) {
                self.buffer.as_mut()[field::SENDER_SEQ].copy_from_slice(&v.to_be_bytes());
            }

            /// Sets the Session-Sender Timestamp.
            pub fn set_sender_timestamp(&mut self, v: NtpTimestamp) {
                self.buffer.as_mut()[field::SENDER_TIMESTAMP].copy_from_slice(&v.0.to_be_bytes());
            }

            /// Sets the Session-Sender Error Estimate.
            pub fn set_sender_error_estimate(&mut self, v: ErrorEstimate) {
                self.buffer.as_mut()[field::SENDER_ERROR_ESTIMATE]
                    .copy_from_slice(&v.0.to_be_bytes());
            }

            /// Sets the Ses-Sender TTL.
            pub fn set_sender_ttl(&mut self, v: u8) {
                self.buffer.as_mut()[field::SENDER_TTL] = v;
            }
        }
    };
}
pub(super) use reflector_fields;

/// Constructors and the TLV area of both unauthenticated packets, generated for each view
/// type.
macro_rules! common_fields {
    ($view:ident) => {
        impl<T: AsRef<[u8]>> $view<T> {
            /// Wraps a buffer without checking its length (accessors panic if it is short).
            pub const fn new_unchecked(buffer: T) -> Self {
                $view { buffer }
            }

            /// Wraps a buffer of at least [`BASE_LEN`] octets.
            pub fn new_checked(buffer: T) -> Result<Self, Truncated> {
                let len = buffer.as_ref().len();
                if len < BASE_LEN {
                    return Err(Truncated { len });
                }
                Ok($view { buffer })
            }

            /// The wrapped buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }

            /// Length of the whole packet (base plus TLV area).
            pub fn packet_len(&self) -> usize {
                self.buffer.as_ref().len()
            }

            /// The octets after the base packet: TLVs or padding.
            pub fn tlv_area(&self) -> &[u8] {
                &self.buffer.as_ref()[BASE_LEN..]
            }

            /// The TLVs after the base packet.
            pub fn tlvs(&self) -> TlvIter<'_> {
                TlvIter::new(self.tlv_area())
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $view<T> {
            /// The octets after the base packet, writable.
            pub fn tlv_area_mut(&mut self) -> &mut [u8] {
                &mut self.buffer.as_mut()[BASE_LEN..]
            }
        }
    };
}

/// A view of a Session-Sender test packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderPacket<T: AsRef<[u8]>> {
    buffer: T,
}

common_fields!(SenderPacket);
base_fields!(SenderPacket);

impl<T: AsRef<[u8]> + AsMut<[u8]>> SenderPacket<T> {
    /// Zeroes the MBZ octets 16..44 of the base packet.
    pub fn clear_mbz(&mut self) {
        self.buffer.as_mut()[field::SSID.end..BASE_LEN].fill(0);
    }
}

/// A view of a Session-Reflector test packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReflectorPacket<T: AsRef<[u8]>> {
    buffer: T,
}

common_fields!(ReflectorPacket);
base_fields!(ReflectorPacket);

reflector_fields!(ReflectorPacket);

impl<T: AsRef<[u8]> + AsMut<[u8]>> ReflectorPacket<T> {
    /// Zeroes the MBZ octets (38..40 and 41..44).
    pub fn clear_mbz(&mut self) {
        let b = self.buffer.as_mut();
        b[field::SENDER_ERROR_ESTIMATE.end..field::SENDER_TTL].fill(0);
        b[field::SENDER_TTL + 1..BASE_LEN].fill(0);
    }
}

/// A [`SenderRepr`] read from a view with the [`base_fields`] accessors (either mode).
macro_rules! read_sender {
    ($p:expr) => {
        SenderRepr {
            seq: $p.sequence_number(),
            timestamp: $p.timestamp(),
            error_estimate: $p.error_estimate(),
            ssid: $p.ssid(),
        }
    };
}
pub(super) use read_sender;

/// Writes a [`SenderRepr`]'s fields into a view with the [`base_fields`] accessors.
macro_rules! write_sender {
    ($p:expr, $r:expr) => {{
        $p.set_sequence_number($r.seq);
        $p.set_timestamp($r.timestamp);
        $p.set_error_estimate($r.error_estimate);
        $p.set_ssid($r.ssid);
    }};
}
pub(super) use write_sender;

/// A [`ReflectorRepr`] read from a view with the [`reflector_fields`] accessors (either mode).
macro_rules! read_reflector {
    ($p:expr) => {
        ReflectorRepr {
            seq: $p.sequence_number(),
            timestamp: $p.timestamp(),
            error_estimate: $p.error_estimate(),
            ssid: $p.ssid(),
            receive_timestamp: $p.receive_timestamp(),
            sender_seq: $p.sender_sequence_number(),
            sender_timestamp: $p.sender_timestamp(),
            sender_error_estimate: $p.sender_error_estimate(),
            sender_ttl: $p.sender_ttl(),
        }
    };
}
pub(super) use read_reflector;

/// Writes a [`ReflectorRepr`]'s fields into a view with the [`reflector_fields`] accessors.
macro_rules! write_reflector {
    ($p:expr, $r:expr) => {{
        write_sender!($p, $r);
        $p.set_receive_timestamp($r.receive_timestamp);
        $p.set_sender_sequence_number($r.sender_seq);
        $p.set_sender_timestamp($r.sender_timestamp);
        $p.set_sender_error_estimate($r.sender_error_estimate);
        $p.set_sender_ttl($r.sender_ttl);
    }};
}
pub(super) use write_reflector;

/// The fields of a Session-Sender base packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderRepr {
    /// Sequence Number.
    pub seq: u32,
    /// Transmit timestamp.
    pub timestamp: NtpTimestamp,
    /// Error Estimate of the sender clock.
    pub error_estimate: ErrorEstimate,
    /// Session-Sender Identifier.
    pub ssid: u16,
}

impl SenderRepr {
    /// Reads the base fields of a sender packet.
    pub fn parse<T: AsRef<[u8]>>(p: &SenderPacket<T>) -> Self {
        read_sender!(p)
    }

    /// Writes the base packet (MBZ zeroed); the TLV area is left untouched.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut SenderPacket<T>) {
        write_sender!(p, self);
        p.clear_mbz();
    }
}

/// The fields of a Session-Reflector base packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReflectorRepr {
    /// Reflector Sequence Number.
    pub seq: u32,
    /// Reflector transmit timestamp (t3).
    pub timestamp: NtpTimestamp,
    /// Error Estimate of the reflector clock.
    pub error_estimate: ErrorEstimate,
    /// SSID, copied from the sender.
    pub ssid: u16,
    /// Reflector receive timestamp (t2).
    pub receive_timestamp: NtpTimestamp,
    /// Sender's Sequence Number.
    pub sender_seq: u32,
    /// Sender's transmit timestamp (t1).
    pub sender_timestamp: NtpTimestamp,
    /// Sender's Error Estimate.
    pub sender_error_estimate: ErrorEstimate,
    /// TTL or hop limit of the sender's packet at the reflector.
    pub sender_ttl: u8,
}

impl ReflectorRepr {
    /// Reads the base fields of a reflector packet.
    pub fn parse<T: AsRef<[u8]>>(p: &ReflectorPacket<T>) -> Self {
        read_reflector!(p)
    }

    /// Writes the base packet (MBZ zeroed); the TLV area is left untouched.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut ReflectorPacket<T>) {
        write_reflector!(p, self);
        p.clear_mbz();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sender packet written by hand from RFC 8762 figure 2 / RFC 8972 figure 1.
    #[rustfmt::skip]
    const SENDER: [u8; 44] = [
        0x00, 0x00, 0x01, 0x02,                         // Sequence Number 258
        0xE9, 0x3C, 0x7F, 0x00, 0x80, 0x00, 0x00, 0x00, // Timestamp 2024-01-01 + 0.5 s
        0x99, 0x80,                                     // S=1 Z=0 Scale=25 Multiplier=128
        0xBE, 0xEF,                                     // SSID
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,       // MBZ
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    /// A reflector packet written by hand from RFC 8762 figure 4 / RFC 8972 figure 2.
    #[rustfmt::skip]
    const REFLECTOR: [u8; 44] = [
        0x00, 0x00, 0x00, 0x07,                         // Sequence Number 7
        0xE9, 0x3C, 0x7F, 0x00, 0x80, 0x10, 0x00, 0x00, // Timestamp (t3)
        0x19, 0x80,                                     // S=0, Scale=25, Multiplier=128
        0xBE, 0xEF,                                     // SSID
        0xE9, 0x3C, 0x7F, 0x00, 0x80, 0x01, 0x00, 0x00, // Receive Timestamp (t2)
        0x00, 0x00, 0x01, 0x02,                         // Session-Sender Sequence Number
        0xE9, 0x3C, 0x7F, 0x00, 0x80, 0x00, 0x00, 0x00, // Session-Sender Timestamp
        0x99, 0x80,                                     // Session-Sender Error Estimate
        0x00, 0x00,                                     // MBZ
        0x3E,                                           // Ses-Sender TTL 62
        0x00, 0x00, 0x00,                               // MBZ
    ];

    fn sender_repr() -> SenderRepr {
        SenderRepr {
            seq: 258,
            timestamp: NtpTimestamp::from_parts(0xE93C_7F00, 0x8000_0000),
            error_estimate: ErrorEstimate::new(true, false, 25, 128),
            ssid: 0xBEEF,
        }
    }

    #[test]
    fn sender_parse_from_rfc_layout() {
        let p = SenderPacket::new_checked(&SENDER[..]).expect("44 octets");
        assert_eq!(SenderRepr::parse(&p), sender_repr());
        assert!(p.error_estimate().synchronized());
        assert!(p.tlv_area().is_empty());
        assert_eq!(p.timestamp().to_nanos().subsec_nanos(), 500_000_000);
    }

    #[test]
    fn sender_emit_matches_rfc_layout() {
        let mut buf = [0xAAu8; 44];
        let mut p = SenderPacket::new_unchecked(&mut buf[..]);
        sender_repr().emit(&mut p);
        assert_eq!(buf, SENDER);
    }

    #[test]
    fn reflector_round_trip() {
        let p = ReflectorPacket::new_checked(&REFLECTOR[..]).expect("44 octets");
        let r = ReflectorRepr::parse(&p);
        assert_eq!(r.seq, 7);
        assert_eq!(r.ssid, 0xBEEF);
        assert_eq!(r.sender_seq, 258);
        assert_eq!(r.sender_ttl, 62);
        assert_eq!(r.sender_timestamp, sender_repr().timestamp);
        assert_eq!(r.sender_error_estimate, sender_repr().error_estimate);
        assert!(!r.error_estimate.synchronized());
        assert_eq!(r.receive_timestamp.fraction(), 0x8001_0000);
        let mut buf = [0x55u8; 44];
        r.emit(&mut ReflectorPacket::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REFLECTOR);
    }

    #[test]
    fn short_buffers_rejected_and_tlv_area_exposed() {
        assert_eq!(
            SenderPacket::new_checked(&SENDER[..43]).err(),
            Some(Truncated { len: 43 })
        );
        assert!(ReflectorPacket::new_checked(&[0u8; 0][..]).is_err());
        let mut long = [0u8; 60];
        long[..44].copy_from_slice(&SENDER);
        let mut p = SenderPacket::new_checked(&mut long[..]).expect("long");
        assert_eq!(p.packet_len(), 60);
        p.tlv_area_mut()[0] = 0x80;
        assert_eq!(p.tlv_area().len(), 16);
        assert_eq!(long[44], 0x80);
    }
}
