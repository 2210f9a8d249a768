//! STAMP TLV framing (RFC 8972 section 4): optional extensions after the 44-octet base packet.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |STAMP TLV Flags|     Type      |           Length              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                            Value                              ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Flags: U (unrecognized, 0x80), M (malformed, 0x40), I (integrity failed, 0x20). A sender sets
//! U on every TLV it sends; a reflector clears U on TLVs it understood and leaves it set on the
//! others, which it copies unchanged, and sets M on a TLV whose length runs past the packet.
//! Length counts the Value octets only.

/// Length of a TLV header.
pub const TLV_HEADER_LEN: usize = 4;

/// TLV flag bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlvFlags(pub u8);

impl TlvFlags {
    /// U: the reflector did not understand the TLV (set by senders on transmit).
    pub const UNRECOGNIZED: u8 = 0x80;
    /// M: the reflector found the TLV malformed.
    pub const MALFORMED: u8 = 0x40;
    /// I: the packet failed integrity (HMAC) verification.
    pub const INTEGRITY: u8 = 0x20;

    /// The U flag.
    pub const fn unrecognized(self) -> bool {
        self.0 & Self::UNRECOGNIZED != 0
    }

    /// The M flag.
    pub const fn malformed(self) -> bool {
        self.0 & Self::MALFORMED != 0
    }

    /// The I flag.
    pub const fn integrity_failed(self) -> bool {
        self.0 & Self::INTEGRITY != 0
    }
}

/// TLV types probe knows.
pub mod tlv_type {
    /// Extra Padding (RFC 8972 section 4.1): its Value is ignored, zeros from probe.
    pub const EXTRA_PADDING: u8 = 1;
    /// probe's clock information TLV, from the Experimental range 240..=251 of the IANA STAMP
    /// TLV Types registry ([`super::super::stamp_clock_tlv`]).
    pub const PROBE_CLOCK: u8 = 248;
}

/// A TLV whose Length runs past the end of the packet (or a fragment shorter than a header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed STAMP TLV at offset {offset} of the TLV area")]
pub struct MalformedTlv {
    /// Offset of the bad TLV within the TLV area.
    pub offset: usize,
}

/// A view of one TLV at the start of a buffer (the buffer may continue past it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlv<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Tlv<T> {
    /// Wraps a buffer without checks (accessors panic if it is short).
    pub const fn new_unchecked(buffer: T) -> Self {
        Tlv { buffer }
    }

    /// Wraps a buffer holding a whole TLV (header and the Value its Length announces).
    pub fn new_checked(buffer: T) -> Result<Self, MalformedTlv> {
        let b = buffer.as_ref();
        if b.len() < TLV_HEADER_LEN
            || TLV_HEADER_LEN + usize::from(u16::from_be_bytes([b[2], b[3]])) > b.len()
        {
            return Err(MalformedTlv { offset: 0 });
        }
        Ok(Tlv { buffer })
    }

    /// The flags.
    pub fn flags(&self) -> TlvFlags {
        TlvFlags(self.buffer.as_ref()[0])
    }

    /// The type.
    pub fn tlv_type(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// The Length field: octets of Value.
    pub fn length(&self) -> usize {
        let b = self.buffer.as_ref();
        usize::from(u16::from_be_bytes([b[2], b[3]]))
    }

    /// Header plus Value.
    pub fn total_len(&self) -> usize {
        TLV_HEADER_LEN + self.length()
    }

    /// The Value.
    pub fn value(&self) -> &[u8] {
        &self.buffer.as_ref()[TLV_HEADER_LEN..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Tlv<T> {
    /// Sets the flags.
    pub fn set_flags(&mut self, flags: TlvFlags) {
        self.buffer.as_mut()[0] = flags.0;
    }

    /// Sets the type.
    pub fn set_tlv_type(&mut self, t: u8) {
        self.buffer.as_mut()[1] = t;
    }

    /// Sets the Length field.
    pub fn set_length(&mut self, len: u16) {
        self.buffer.as_mut()[2..4].copy_from_slice(&len.to_be_bytes());
    }

    /// The Value, writable.
    pub fn value_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[TLV_HEADER_LEN..end]
    }
}

/// Iterates over the TLVs of a TLV area, yielding each one's offset in the area. A malformed
/// TLV (or a trailing fragment shorter than a header) ends the iteration with an error.
#[derive(Clone, Debug)]
pub struct TlvIter<'a> {
    area: &'a [u8],
    offset: usize,
}

impl<'a> TlvIter<'a> {
    /// Iterates over `area` (the octets after the base packet).
    pub const fn new(area: &'a [u8]) -> Self {
        TlvIter { area, offset: 0 }
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<(usize, Tlv<&'a [u8]>), MalformedTlv>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.offset >= self.area.len() {
            return None;
        }
        let offset = self.offset;
        if let Ok(tlv) = Tlv::new_checked(&self.area[offset..]) {
            self.offset += tlv.total_len();
            Some(Ok((offset, tlv)))
        } else {
            self.offset = self.area.len();
            Some(Err(MalformedTlv { offset }))
        }
    }
}

/// A buffer too small for the TLV to be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no room for a {needed}-octet TLV in {available} octets")]
pub struct NoRoom {
    /// Octets the TLV needs.
    pub needed: usize,
    /// Octets available.
    pub available: usize,
}

/// Writes a TLV header for a `value_len`-octet Value at the start of `buf` and returns the
/// view (its Value is left as it was). Senders pass `TlvFlags(TlvFlags::UNRECOGNIZED)`.
pub fn emit_tlv(
    buf: &mut [u8],
    flags: TlvFlags,
    tlv_type: u8,
    value_len: usize,
) -> Result<Tlv<&mut [u8]>, NoRoom> {
    let needed = TLV_HEADER_LEN + value_len;
    let len = u16::try_from(value_len).map_err(|_| NoRoom {
        needed,
        available: buf.len(),
    })?;
    if needed > buf.len() {
        return Err(NoRoom {
            needed,
            available: buf.len(),
        });
    }
    let mut tlv = Tlv::new_unchecked(&mut buf[..needed]);
    tlv.set_flags(flags);
    tlv.set_tlv_type(tlv_type);
    tlv.set_length(len);
    Ok(tlv)
}

/// Fills `buf` as sender padding: one Extra Padding TLV (U flag set, Value zero) when it holds a
/// TLV header, plain zeros otherwise (1 to 3 octets, too short for a TLV).
pub fn emit_padding(buf: &mut [u8]) {
    buf.fill(0);
    if buf.len() >= TLV_HEADER_LEN {
        let value_len = (buf.len() - TLV_HEADER_LEN).min(usize::from(u16::MAX));
        // Cannot fail: the header fits and the length was capped to 16 bits.
        let _ = emit_tlv(
            buf,
            TlvFlags(TlvFlags::UNRECOGNIZED),
            tlv_type::EXTRA_PADDING,
            value_len,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    const AREA: [u8; 14] = [
        0x80, 0x01, 0x00, 0x04, 0, 0, 0, 0, // Extra Padding, U set, 4 octets of Value
        0xC0, 0xF0, 0x00, 0x02, 0xAB, 0xCD, // type 240, U and M set, Value AB CD
    ];

    #[test]
    fn parse_from_rfc_layout() {
        let items: Vec<_> = TlvIter::new(&AREA)
            .collect::<Result<_, _>>()
            .expect("well formed");
        assert_eq!(items.len(), 2);
        let (off, pad) = &items[0];
        assert_eq!(*off, 0);
        assert_eq!(pad.tlv_type(), tlv_type::EXTRA_PADDING);
        assert!(pad.flags().unrecognized());
        assert!(!pad.flags().malformed());
        assert_eq!(pad.length(), 4);
        assert_eq!(pad.value(), &[0, 0, 0, 0]);
        let (off, other) = &items[1];
        assert_eq!(*off, 8);
        assert_eq!(other.tlv_type(), 240);
        assert!(other.flags().malformed());
        assert!(!other.flags().integrity_failed());
        assert_eq!(other.value(), &[0xAB, 0xCD]);
    }

    #[test]
    fn emit_matches_layout() {
        let mut buf = [0x55u8; 14];
        emit_padding(&mut buf[..8]);
        let mut t = emit_tlv(&mut buf[8..], TlvFlags(0xC0), 240, 2).expect("room");
        t.value_mut().copy_from_slice(&[0xAB, 0xCD]);
        assert_eq!(buf, AREA);
        assert_eq!(
            emit_tlv(&mut buf[..5], TlvFlags(0), 1, 2).err(),
            Some(NoRoom {
                needed: 6,
                available: 5
            })
        );
    }

    #[test]
    fn malformed_ends_iteration() {
        // Length 9 but only 2 octets of Value follow.
        let bad = [
            0x80, 0x01, 0x00, 0x04, 0, 0, 0, 0, 0x80, 0xF0, 0x00, 0x09, 1, 2,
        ];
        let items: Vec<_> = TlvIter::new(&bad).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert_eq!(items[1].as_ref().err(), Some(&MalformedTlv { offset: 8 }));
        // A 3-octet tail cannot hold a header.
        let frag: Vec<_> = TlvIter::new(&[0, 0, 0]).collect();
        assert_eq!(frag, vec![Err(MalformedTlv { offset: 0 })]);
        assert_eq!(TlvIter::new(&[]).count(), 0);
    }

    #[test]
    fn short_padding_is_plain_zeros() {
        let mut buf = [9u8; 3];
        emit_padding(&mut buf);
        assert_eq!(buf, [0, 0, 0]);
        let mut buf = [9u8; 4];
        emit_padding(&mut buf);
        assert_eq!(buf, [0x80, 0x01, 0, 0]);
    }
}
