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

use super::stamp::{
    ReflectorRepr, SenderRepr, Truncated, base_fields, get_u16, get_u32, get_u64, read_reflector,
    read_sender, reflector_fields, write_reflector, write_sender,
};
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
        }
    };
}

/// A view of an authenticated Session-Sender test packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSenderPacket<T: AsRef<[u8]>> {
    buffer: T,
}

auth_common!(AuthSenderPacket);
base_fields!(AuthSenderPacket);

/// A view of an authenticated Session-Reflector test packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthReflectorPacket<T: AsRef<[u8]>> {
    buffer: T,
}

auth_common!(AuthReflectorPacket);
base_fields!(AuthReflectorPacket);

reflector_fields!(AuthReflectorPacket);

impl SenderRepr {
    /// Reads the base fields of an authenticated sender packet (the HMAC is not checked:
    /// [`AuthSenderPacket::verify`]).
    pub fn parse_authenticated<T: AsRef<[u8]>>(p: &AuthSenderPacket<T>) -> Self {
        read_sender!(p)
    }

    /// Writes an authenticated base packet: fields, MBZ zeroed, HMAC under `key`; the TLV
    /// area is left untouched.
    pub fn emit_authenticated<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut AuthSenderPacket<T>,
        key: &StampKey,
    ) {
        p.buffer.as_mut()[..HMAC_COVERED].fill(0);
        write_sender!(p, self);
        p.seal(key);
    }
}

impl ReflectorRepr {
    /// Reads the base fields of an authenticated reflector packet (the HMAC is not checked:
    /// [`AuthReflectorPacket::verify`]).
    pub fn parse_authenticated<T: AsRef<[u8]>>(p: &AuthReflectorPacket<T>) -> Self {
        read_reflector!(p)
    }

    /// Writes an authenticated base packet: fields, MBZ zeroed, HMAC under `key`; the TLV
    /// area is left untouched.
    pub fn emit_authenticated<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut AuthReflectorPacket<T>,
        key: &StampKey,
    ) {
        p.buffer.as_mut()[..HMAC_COVERED].fill(0);
        write_reflector!(p, self);
        p.seal(key);
    }
}

#[cfg(test)]
#[path = "stamp_auth_tests.rs"]
mod tests;
