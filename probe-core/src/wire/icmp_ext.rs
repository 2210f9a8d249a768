//! ICMP multi-part messages (RFC 4884): the extension structure after the original datagram.
//!
//! ```text
//! Extension header (version 2):
//!  0                   1                   2                   3
//! |Version|      (Reserved)       |           Checksum            |
//! Object header, followed by (Length - 4) bytes of payload:
//! |             Length            |   Class-Num   |   C-Type      |
//! ```
//!
//! The checksum covers the whole extension structure (header and objects); zero means the sender
//! did not compute one. Where the structure starts is the ICMP message's business (its length
//! attribute), see [`super::icmp`].

use super::checksum::plain_checksum;
use super::mpls::{self, CLASS_MPLS, CTYPE_INCOMING_STACK, MplsEntry};
use super::packet_error::{PacketError, be16, need};

/// The extension structure version RFC 4884 defines.
pub const EXTENSION_VERSION: u8 = 2;
/// Size of the extension header.
pub const HEADER_LEN: usize = 4;
/// Size of an object header.
pub const OBJECT_HEADER_LEN: usize = 4;
/// The original datagram field is padded to at least this many bytes when extensions follow.
pub const MIN_ORIGINAL_LEN: usize = 128;

/// One extension object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtensionObject<'a> {
    /// Class-Num (1 = MPLS label stack, 2 = interface information, ...).
    pub class_num: u8,
    /// C-Type within the class.
    pub c_type: u8,
    /// Object payload (after the 4-byte object header).
    pub payload: &'a [u8],
}

/// A validated view over an extension structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extensions<'a> {
    buf: &'a [u8],
}

impl<'a> Extensions<'a> {
    /// Validates version, checksum (unless zero; never in `cfg(fuzzing)` builds) and object
    /// lengths.
    pub fn parse(buf: &'a [u8]) -> Result<Self, PacketError> {
        need(buf, HEADER_LEN, "icmp extension header")?;
        if buf[0] >> 4 != EXTENSION_VERSION {
            return Err(PacketError::Malformed("icmp extension version"));
        }
        let stored = be16(buf, 2);
        // Fuzzing builds skip verification so that random inputs reach the object parsers.
        if stored != 0 && !cfg!(fuzzing) && plain_checksum(buf, 1) != stored {
            return Err(PacketError::Malformed("icmp extension checksum"));
        }
        let mut at = HEADER_LEN;
        while at < buf.len() {
            need(&buf[at..], OBJECT_HEADER_LEN, "icmp extension object")?;
            let len = be16(buf, at) as usize;
            if len < OBJECT_HEADER_LEN || at + len > buf.len() {
                return Err(PacketError::Malformed("icmp extension object length"));
            }
            at += len;
        }
        Ok(Extensions { buf })
    }

    /// The raw structure bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The objects in order.
    pub fn objects(&self) -> impl Iterator<Item = ExtensionObject<'a>> + 'a {
        let buf = self.buf;
        let mut at = HEADER_LEN;
        std::iter::from_fn(move || {
            if at + OBJECT_HEADER_LEN > buf.len() {
                return None;
            }
            let len = be16(buf, at) as usize;
            // Lengths were validated in `parse`.
            let obj = ExtensionObject {
                class_num: buf[at + 2],
                c_type: buf[at + 3],
                payload: &buf[at + OBJECT_HEADER_LEN..at + len],
            };
            at += len;
            Some(obj)
        })
    }

    /// The MPLS label stack (RFC 4950) if an incoming-stack object is present and well formed.
    pub fn mpls_stack(&self) -> Option<Vec<MplsEntry>> {
        self.objects()
            .find(|o| o.class_num == CLASS_MPLS && o.c_type == CTYPE_INCOMING_STACK)
            .and_then(|o| mpls::parse_stack(o.payload).ok())
    }
}

/// Appends an extension structure holding `objects` to `out`, checksum filled in.
///
/// Test support: built for probe-core's own tests and with the `test-util` feature.
#[cfg(any(test, feature = "test-util"))]
pub fn emit(objects: &[ExtensionObject<'_>], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[EXTENSION_VERSION << 4, 0, 0, 0]);
    for o in objects {
        let len = (OBJECT_HEADER_LEN + o.payload.len()) as u16;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&[o.class_num, o.c_type]);
        out.extend_from_slice(o.payload);
    }
    let sum = plain_checksum(&out[start..], 1);
    out[start + 2..start + 4].copy_from_slice(&sum.to_be_bytes());
}

/// Appends an extension structure with one MPLS incoming label stack object.
///
/// Test support: built for probe-core's own tests and with the `test-util` feature.
#[cfg(any(test, feature = "test-util"))]
pub fn emit_mpls(stack: &[MplsEntry], out: &mut Vec<u8>) {
    let mut payload = Vec::with_capacity(stack.len() * 4);
    mpls::emit_stack(stack, &mut payload);
    emit(
        &[ExtensionObject {
            class_num: CLASS_MPLS,
            c_type: CTYPE_INCOMING_STACK,
            payload: &payload,
        }],
        out,
    );
}

/// Hand-written vectors shared by the wire tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::MplsEntry;

    /// Extension header (version 2) + one MPLS object with label 24001, TC 0, S 1, TTL 1,
    /// written out by hand. Checksum: the words are 0x2000, 0x0000(csum), 0x0008, 0x0101,
    /// 0x05DC, 0x1101; sum = 0x37E6, complement 0xC819.
    pub(crate) const MPLS_EXT: [u8; 12] = [
        0x20, 0x00, 0xC8, 0x19, // version 2, reserved, checksum
        0x00, 0x08, 0x01, 0x01, // object length 8, class 1, c-type 1
        0x05, 0xDC, 0x11, 0x01, // label 24001 = 0x5DC1, TC 0, S 1, TTL 1
    ];

    /// The label stack entry inside [`MPLS_EXT`].
    pub(crate) const MPLS_ENTRY: MplsEntry = MplsEntry {
        label: 24001,
        tc: 0,
        bottom: true,
        ttl: 1,
    };
}

#[cfg(test)]
mod tests {
    use super::fixtures::{MPLS_ENTRY, MPLS_EXT};
    use super::*;

    #[test]
    fn parses_hand_written_mpls_extension() {
        let ext = Extensions::parse(&MPLS_EXT).expect("valid");
        let objs: Vec<_> = ext.objects().collect();
        assert_eq!(objs.len(), 1);
        assert_eq!((objs[0].class_num, objs[0].c_type), (1, 1));
        assert_eq!(ext.mpls_stack().expect("mpls"), vec![MPLS_ENTRY]);
    }

    #[test]
    fn emit_reproduces_hand_written_bytes() {
        let mut out = Vec::new();
        emit_mpls(&[MPLS_ENTRY], &mut out);
        assert_eq!(out, MPLS_EXT);
    }

    #[test]
    fn zero_checksum_accepted_bad_checksum_rejected() {
        let mut b = MPLS_EXT;
        b[2] = 0;
        b[3] = 0;
        assert!(Extensions::parse(&b).is_ok());
        b[3] = 1;
        assert_eq!(
            Extensions::parse(&b),
            Err(PacketError::Malformed("icmp extension checksum"))
        );
    }

    #[test]
    fn bad_version_and_lengths_rejected() {
        let mut b = MPLS_EXT;
        b[0] = 0x10;
        assert!(Extensions::parse(&b).is_err());
        let mut b = MPLS_EXT;
        b[2] = 0;
        b[3] = 0;
        b[5] = 0x0C; // object claims 12 bytes, only 8 remain
        assert!(Extensions::parse(&b).is_err());
        b[5] = 0x02; // shorter than an object header
        assert!(Extensions::parse(&b).is_err());
    }

    #[test]
    fn several_objects_iterate_in_order() {
        let name = [4u8, b'e', b't', b'h', b'0', 0, 0, 0];
        let mut out = Vec::new();
        emit(
            &[
                ExtensionObject {
                    class_num: 2,
                    c_type: 0x02,
                    payload: &name,
                },
                ExtensionObject {
                    class_num: CLASS_MPLS,
                    c_type: CTYPE_INCOMING_STACK,
                    payload: &[0, 0, 0x11, 0xFF],
                },
            ],
            &mut out,
        );
        let ext = Extensions::parse(&out).expect("valid");
        let classes: Vec<u8> = ext.objects().map(|o| o.class_num).collect();
        assert_eq!(classes, vec![2, 1]);
        assert_eq!(ext.mpls_stack().expect("mpls")[0].label, 1);
    }
}
