//! MPLS label stack entries as ICMP extension objects (RFC 4950).
//!
//! The object has Class-Num 1 and C-Type 1 (incoming MPLS label stack); its payload is the stack
//! as received, one 32-bit entry per label, top of stack first:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                Label                  | TC  |S|      TTL      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::packet_error::{PacketError, be32};

/// Class-Num of the MPLS label stack object.
pub const CLASS_MPLS: u8 = 1;
/// C-Type of the incoming label stack.
pub const CTYPE_INCOMING_STACK: u8 = 1;

/// One label stack entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MplsEntry {
    /// Label value (20 bits).
    pub label: u32,
    /// Traffic class, formerly EXP (3 bits).
    pub tc: u8,
    /// Bottom-of-stack bit.
    pub bottom: bool,
    /// TTL of the label entry.
    pub ttl: u8,
}

impl MplsEntry {
    /// Decodes one 32-bit entry.
    pub const fn from_word(w: u32) -> Self {
        MplsEntry {
            label: w >> 12,
            tc: ((w >> 9) & 0x7) as u8,
            bottom: (w >> 8) & 1 == 1,
            ttl: (w & 0xFF) as u8,
        }
    }

    /// Encodes the entry (label and TC are masked to their widths).
    pub const fn to_word(self) -> u32 {
        ((self.label & 0xF_FFFF) << 12)
            | (((self.tc & 0x7) as u32) << 9)
            | ((self.bottom as u32) << 8)
            | self.ttl as u32
    }
}

/// Parses the payload of a label stack object.
pub fn parse_stack(payload: &[u8]) -> Result<Vec<MplsEntry>, PacketError> {
    if payload.is_empty() || !payload.len().is_multiple_of(4) {
        return Err(PacketError::Malformed("mpls label stack length"));
    }
    Ok(payload
        .chunks_exact(4)
        .map(|c| MplsEntry::from_word(be32(c, 0)))
        .collect())
}

/// Appends the payload of a label stack object for `stack` to `out`.
///
/// Test support: built for probe-core's own tests and with the `test-util` feature.
#[cfg(any(test, feature = "test-util"))]
pub fn emit_stack(stack: &[MplsEntry], out: &mut Vec<u8>) {
    for e in stack {
        out.extend_from_slice(&e.to_word().to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_fields_from_rfc_layout() {
        // Label 16 (0x00010), TC 5, S 1, TTL 254: 0000 0000 0000 0001 0000 | 101 | 1 | 1111 1110
        let bytes = [0x00, 0x01, 0x0B, 0xFE];
        let stack = parse_stack(&bytes).expect("stack");
        assert_eq!(
            stack,
            vec![MplsEntry {
                label: 16,
                tc: 5,
                bottom: true,
                ttl: 254
            }]
        );
        let mut out = Vec::new();
        emit_stack(&stack, &mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn two_entry_stack_and_extreme_label() {
        // Top: label 0xFFFFF (max), TC 0, S 0, TTL 1. Bottom: label 299792, TC 7, S 1, TTL 64.
        // 299792 = 0x49310 -> 0x49310 << 12 = 0x4931_0000; TC 7 -> 0xE00; S -> 0x100; TTL 0x40.
        let bytes = [0xFF, 0xFF, 0xF0, 0x01, 0x49, 0x31, 0x0F, 0x40];
        let stack = parse_stack(&bytes).expect("stack");
        assert_eq!(stack[0].label, 0xF_FFFF);
        assert!(!stack[0].bottom);
        assert_eq!(stack[0].ttl, 1);
        assert_eq!(stack[1].label, 299_792);
        assert_eq!(stack[1].tc, 7);
        assert!(stack[1].bottom);
        assert_eq!(stack[1].ttl, 64);
        let mut out = Vec::new();
        emit_stack(&stack, &mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn bad_lengths_rejected() {
        assert!(parse_stack(&[]).is_err());
        assert!(parse_stack(&[0, 1, 2]).is_err());
    }
}
