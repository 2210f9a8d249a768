//! The error type of the probe and ICMP wire views.

use thiserror::Error;

/// Why bytes could not be parsed as (or emitted into) a probe, answer or ICMP structure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketError {
    /// The buffer ends before the structure does.
    #[error("{what}: need {need} bytes, have {have}")]
    Truncated {
        /// Which structure was being read.
        what: &'static str,
        /// Bytes the structure needs.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A field holds a value the format forbids.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The bytes are well formed but not something a path test answers to.
    #[error("unsupported {0}")]
    Unsupported(&'static str),
}

/// Fails with [`PacketError::Truncated`] unless `buf` holds at least `need` bytes.
pub(crate) fn need(buf: &[u8], need: usize, what: &'static str) -> Result<(), PacketError> {
    if buf.len() < need {
        Err(PacketError::Truncated {
            what,
            need,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}

/// Reads a big-endian `u16` at `at` (the caller checked the length).
pub(crate) fn be16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

/// Reads a big-endian `u32` at `at` (the caller checked the length).
pub(crate) fn be32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}
