//! STAMP test packets in authenticated mode (RFC 8762 sections 4.2.2 and 4.3.2, with the SSID
//! of RFC 8972 section 3). Both base packets are 112 octets, the last 16 the HMAC
//! ([`super::stamp_hmac`]) over the first 96; anything after them is the TLV area or padding.
//!
//! Session-Sender test packet, authenticated mode:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Sequence Number                        |  0
//! |                        MBZ (12 octets)                        |  4
//! |                          Timestamp                            | 16
//! |         Error Estimate        |             SSID              | 24
//! |                        MBZ (68 octets)                        | 28
//! |                        HMAC (16 octets)                       | 96
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Session-Reflector test packet, authenticated mode:
//!
//! ```text
//! |                        Sequence Number                        |  0
//! |                        MBZ (12 octets)                        |  4
//! |                          Timestamp                            | 16
//! |         Error Estimate        |             SSID              | 24
//! |                        MBZ (4 octets)                         | 28
//! |                        Receive Timestamp                      | 32
//! |                        MBZ (8 octets)                         | 40
//! |                 Session-Sender Sequence Number                | 48
//! |                        MBZ (12 octets)                        | 52
//! |                  Session-Sender Timestamp                     | 64
//! | Session-Sender Error Estimate |        MBZ (6 octets)         | 72
//! |Ses-Sender TTL |               MBZ (15 octets)                 | 80
//! |                        HMAC (16 octets)                       | 96
//! ```
//!
//! **Telling the modes apart.** Nothing in a packet names its mode (RFC 8762 leaves it to the
//! session's configuration). The octets 4..16 are MBZ in the authenticated layout but hold
//! the transmit timestamp's seconds and fraction in the unauthenticated one, which no sender
//! with a running clock leaves zero. [`looks_authenticated`] is that test (at least 112 octets,
//! octets 4..16 zero); the reflector uses it only for senders it holds a key for.

use super::stamp::{ReflectorRepr, SenderRepr, Truncated, get_u16, get_u32, get_u64};
use super::stamp_hmac::{HMAC_LEN, StampKey};
use crate::time::{ErrorEstimate, NtpTimestamp};

/// Length of both authenticated base packets.
pub const AUTH_BASE_LEN: usize = 112;

/// Octets the HMAC covers: the first six 16-octet blocks (RFC 8762 section 4.4).
pub const HMAC_COVERED: usize = 96;

/// Field offsets (RFC 8762 figures 5 and 6, SSID of RFC 8972).
mod field {
    use std::ops::Range;
    pub(super) const SEQ: Range<usize> = 0..4;
    pub(super) const FIRST_MBZ: Range<usize> = 4..16;
    pub(super) const TIMESTAMP: Range<usize> = 16..24;
    pub(super) const ERROR_ESTIMATE: Range<usize> = 24..26;
    pub(super) const SSID: Range<usize> = 26..28;
    pub(super) const RECEIVE_TIMESTAMP: Range<usize> = 32..40;
    pub(super) const SENDER_SEQ: Range<usize> = 48..52;
    pub(super) const SENDER_TIMESTAMP: Range<usize> = 64..72;
    pub(super) const SENDER_ERROR_ESTIMATE: Range<usize> = 72..74;
    pub(super) const SENDER_TTL: usize = 80;
    pub(super) const HMAC: Range<usize> = 96..112;
}

/// Whether `bytes` has the shape of an authenticated packet: at least [`AUTH_BASE_LEN`] octets
/// with octets 4..16 zero (see the module documentation).
pub fn looks_authenticated(bytes: &[u8]) -> bool {
    bytes.len() >= AUTH_BASE_LEN && bytes[field::FIRST_MBZ].iter().all(|&b| b == 0)
}

fn check_len(len: usize) -> Result<(), Truncated> {
    if len < AUTH_BASE_LEN {
        return Err(Truncated { len });
    }
    Ok(())
}

/// Accessors both authenticated packets share, generated for each view type.
macro_rules! auth_common {
    ($view:ident) => {
        impl<T: AsRef<[u8]>> $view<T> {
            /// Wraps a buffer without checking its length (accessors panic if it is short).
            pub const fn new_unchecked(buffer: T) -> Self {
                $view { buffer }
            }

            /// Wraps a buffer of at least [`AUTH_BASE_LEN`] octets.
            pub fn new_checked(buffer: T) -> Result<Self, Truncated> {
                check_len(buffer.as_ref().len())?;
                Ok($view { buffer })
            }

            /// Sequence Number.
            pub fn sequence_number(&self) -> u32 {
                get_u32(self.buffer.as_ref(), field::SEQ)
            }

            /// Timestamp (transmit time).
            pub fn timestamp(&self) -> NtpTimestamp {
                NtpTimestamp(get_u64(self.buffer.as_ref(), field::TIMESTAMP))
            }

            /// Error Estimate of the timestamps this end wrote.
            pub fn error_estimate(&self) -> ErrorEstimate {
                ErrorEstimate(get_u16(self.buffer.as_ref(), field::ERROR_ESTIMATE))
            }

            /// Session-Sender Identifier (RFC 8972).
            pub fn ssid(&self) -> u16 {
                get_u16(self.buffer.as_ref(), field::SSID)
            }

            /// The HMAC field.
            pub fn hmac(&self) -> &[u8] {
                &self.buffer.as_ref()[field::HMAC]
            }

            /// Whether the HMAC field is `key`'s HMAC of the first 96 octets (constant time).
            pub fn verify(&self, key: &StampKey) -> bool {
                let b = self.buffer.as_ref();
                key.verify(&b[..HMAC_COVERED], &b[field::HMAC])
            }

            /// The octets after the base packet: TLVs or padding.
            pub fn tlv_area(&self) -> &[u8] {
                &self.buffer.as_ref()[AUTH_BASE_LEN..]
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $view<T> {
            /// Sets the Timestamp (the HMAC must be written again: [`Self::seal`]).
            pub fn set_timestamp(&mut self, v: NtpTimestamp) {
                self.buffer.as_mut()[field::TIMESTAMP].copy_from_slice(&v.0.to_be_bytes());
            }

            /// Writes `key`'s HMAC of the first 96 octets into the HMAC field.
            pub fn seal(&mut self, key: &StampKey) {
                let b = self.buffer.as_mut();
                let tag: [u8; HMAC_LEN] = key.tag(&b[..HMAC_COVERED]);
                b[field::HMAC].copy_from_slice(&tag);
            }

            /// The octets after the base packet, writable.
            pub fn tlv_area_mut(&mut self) -> &mut [u8] {
                &mut self.buffer.as_mut()[AUTH_BASE_LEN..]
            }

            fn put(&mut self, r: std::ops::Range<usize>, v: &[u8]) {
                self.buffer.as_mut()[r].copy_from_slice(v);
            }
        }
    };
}

/// A view of an authenticated Session-Sender test packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSenderPacket<T: AsRef<[u8]>> {
    buffer: T,
}

auth_common!(AuthSenderPacket);

/// A view of an authenticated Session-Reflector test packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthReflectorPacket<T: AsRef<[u8]>> {
    buffer: T,
}

auth_common!(AuthReflectorPacket);

impl<T: AsRef<[u8]>> AuthReflectorPacket<T> {
    /// Receive Timestamp.
    pub fn receive_timestamp(&self) -> NtpTimestamp {
        NtpTimestamp(get_u64(self.buffer.as_ref(), field::RECEIVE_TIMESTAMP))
    }

    /// Session-Sender Sequence Number.
    pub fn sender_sequence_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SENDER_SEQ)
    }

    /// Session-Sender Timestamp.
    pub fn sender_timestamp(&self) -> NtpTimestamp {
        NtpTimestamp(get_u64(self.buffer.as_ref(), field::SENDER_TIMESTAMP))
    }

    /// Session-Sender Error Estimate.
    pub fn sender_error_estimate(&self) -> ErrorEstimate {
        ErrorEstimate(get_u16(self.buffer.as_ref(), field::SENDER_ERROR_ESTIMATE))
    }

    /// Ses-Sender TTL.
    pub fn sender_ttl(&self) -> u8 {
        self.buffer.as_ref()[field::SENDER_TTL]
    }
}

impl SenderRepr {
    /// Reads the base fields of an authenticated sender packet (the HMAC is not checked:
    /// [`AuthSenderPacket::verify`]).
    pub fn parse_authenticated<T: AsRef<[u8]>>(p: &AuthSenderPacket<T>) -> Self {
        SenderRepr {
            seq: p.sequence_number(),
            timestamp: p.timestamp(),
            error_estimate: p.error_estimate(),
            ssid: p.ssid(),
        }
    }

    /// Writes an authenticated base packet: fields, MBZ zeroed, HMAC under `key`; the TLV
    /// area is left untouched.
    pub fn emit_authenticated<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut AuthSenderPacket<T>,
        key: &StampKey,
    ) {
        p.buffer.as_mut()[..HMAC_COVERED].fill(0);
        p.put(field::SEQ, &self.seq.to_be_bytes());
        p.put(field::TIMESTAMP, &self.timestamp.0.to_be_bytes());
        p.put(field::ERROR_ESTIMATE, &self.error_estimate.0.to_be_bytes());
        p.put(field::SSID, &self.ssid.to_be_bytes());
        p.seal(key);
    }
}

impl ReflectorRepr {
    /// Reads the base fields of an authenticated reflector packet (the HMAC is not checked:
    /// [`AuthReflectorPacket::verify`]).
    pub fn parse_authenticated<T: AsRef<[u8]>>(p: &AuthReflectorPacket<T>) -> Self {
        ReflectorRepr {
            seq: p.sequence_number(),
            timestamp: p.timestamp(),
            error_estimate: p.error_estimate(),
            ssid: p.ssid(),
            receive_timestamp: p.receive_timestamp(),
            sender_seq: p.sender_sequence_number(),
            sender_timestamp: p.sender_timestamp(),
            sender_error_estimate: p.sender_error_estimate(),
            sender_ttl: p.sender_ttl(),
        }
    }

    /// Writes an authenticated base packet: fields, MBZ zeroed, HMAC under `key`; the TLV
    /// area is left untouched.
    pub fn emit_authenticated<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut AuthReflectorPacket<T>,
        key: &StampKey,
    ) {
        p.buffer.as_mut()[..HMAC_COVERED].fill(0);
        p.put(field::SEQ, &self.seq.to_be_bytes());
        p.put(field::TIMESTAMP, &self.timestamp.0.to_be_bytes());
        p.put(field::ERROR_ESTIMATE, &self.error_estimate.0.to_be_bytes());
        p.put(field::SSID, &self.ssid.to_be_bytes());
        p.put(
            field::RECEIVE_TIMESTAMP,
            &self.receive_timestamp.0.to_be_bytes(),
        );
        p.put(field::SENDER_SEQ, &self.sender_seq.to_be_bytes());
        p.put(
            field::SENDER_TIMESTAMP,
            &self.sender_timestamp.0.to_be_bytes(),
        );
        p.put(
            field::SENDER_ERROR_ESTIMATE,
            &self.sender_error_estimate.0.to_be_bytes(),
        );
        p.buffer.as_mut()[field::SENDER_TTL] = self.sender_ttl;
        p.seal(key);
    }
}

#[cfg(test)]
#[path = "stamp_auth_tests.rs"]
mod tests;
