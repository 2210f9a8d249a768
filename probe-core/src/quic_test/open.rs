//! The first stream of a QUIC test connection (sans-IO): the client names the session the
//! control plane granted and what the connection is for; the responder accepts or refuses
//! with a reason. A throughput connection ends with the responder's view of each transfer
//! ([`FarEndView`]) on the same stream: one view, or for [`Mode::Both`] the upload's then the
//! download's.
//!
//! Open request (17 octets): `PQT1`, the session id (64 bits), the mode (one octet), the
//! transfer length in ms (32 bits), big-endian. Answer: a status octet (0 accepted, 1
//! refused), a 16-bit length and that many octets of UTF-8 reason. View: a 32-bit length,
//! then JSON, at most [`MAX_VIEW_LEN`] octets.

use serde::{Deserialize, Serialize};

use super::report::PathReport;

/// Magic and version of an open request.
pub const OPEN_MAGIC: [u8; 4] = *b"PQT1";
/// Length of an open request.
pub const OPEN_LEN: usize = 17;
/// Longest reason in an answer.
pub const MAX_REASON_LEN: usize = 1024;
/// Largest view frame accepted.
pub const MAX_VIEW_LEN: usize = 4 << 20;

/// What a test connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only the handshake is measured; the connection closes once accepted.
    Handshake,
    /// The responder echoes the client's datagrams.
    Echo,
    /// The client sends on a stream, the responder counts (`to`).
    Upload,
    /// The responder sends on a stream, the client counts (`from`).
    Download,
    /// Both at once on one connection: the client sends on its first data stream while the
    /// responder sends on the second, each counted on its own (`both`).
    Both,
}

impl Mode {
    fn code(self) -> u8 {
        match self {
            Mode::Handshake => 0,
            Mode::Echo => 1,
            Mode::Upload => 2,
            Mode::Download => 3,
            Mode::Both => 4,
        }
    }

    /// Whether the client sends a stream on a connection of this mode.
    pub fn uploads(self) -> bool {
        matches!(self, Mode::Upload | Mode::Both)
    }

    /// Whether the responder sends a stream on a connection of this mode.
    pub fn downloads(self) -> bool {
        matches!(self, Mode::Download | Mode::Both)
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => Mode::Handshake,
            1 => Mode::Echo,
            2 => Mode::Upload,
            3 => Mode::Download,
            4 => Mode::Both,
            _ => return None,
        })
    }
}

/// Why bytes are not an open request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Wrong length or magic: not a QUIC test client of this version.
    #[error("not a QUIC test open request (version 1): wrong length or magic")]
    NotOpen,
    /// An unknown mode octet.
    #[error("unknown QUIC test mode {0}")]
    Mode(u8),
}

/// The client's open request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenRequest {
    /// The session the control plane granted.
    pub session: u64,
    /// What the connection is for.
    pub mode: Mode,
    /// How long a transfer should run, ms (0 for other modes).
    pub duration_ms: u32,
}

impl OpenRequest {
    /// The request's octets.
    pub fn encode(&self) -> [u8; OPEN_LEN] {
        let mut b = [0; OPEN_LEN];
        b[..4].copy_from_slice(&OPEN_MAGIC);
        b[4..12].copy_from_slice(&self.session.to_be_bytes());
        b[12] = self.mode.code();
        b[13..].copy_from_slice(&self.duration_ms.to_be_bytes());
        b
    }

    /// Parses a request.
    pub fn decode(b: &[u8]) -> Result<Self, OpenError> {
        if b.len() != OPEN_LEN || b[..4] != OPEN_MAGIC {
            return Err(OpenError::NotOpen);
        }
        let mut session = [0; 8];
        session.copy_from_slice(&b[4..12]);
        let mut ms = [0; 4];
        ms.copy_from_slice(&b[13..]);
        Ok(OpenRequest {
            session: u64::from_be_bytes(session),
            mode: Mode::from_code(b[12]).ok_or(OpenError::Mode(b[12]))?,
            duration_ms: u32::from_be_bytes(ms),
        })
    }
}

/// The responder's answer to an open request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenAnswer {
    /// Go ahead.
    Accepted,
    /// Refused, with the reason.
    Refused(String),
}

impl OpenAnswer {
    /// The answer's octets (a reason is cut at [`MAX_REASON_LEN`] on a character boundary).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            OpenAnswer::Accepted => vec![0, 0, 0],
            OpenAnswer::Refused(why) => {
                let mut end = why.len().min(MAX_REASON_LEN);
                while !why.is_char_boundary(end) {
                    end -= 1;
                }
                let mut b = vec![1];
                b.extend_from_slice(&u16::try_from(end).unwrap_or(0).to_be_bytes());
                b.extend_from_slice(&why.as_bytes()[..end]);
                b
            }
        }
    }

    /// The status octet and reason length of an answer's first three octets: the reason's
    /// length to read next, or `None` for a bad status or an over-long reason.
    pub fn header(h: [u8; 3]) -> Option<(bool, usize)> {
        let len = usize::from(u16::from_be_bytes([h[1], h[2]]));
        match h[0] {
            0 | 1 if len <= MAX_REASON_LEN => Some((h[0] == 0, len)),
            _ => None,
        }
    }

    /// The answer from its header fields and reason octets.
    pub fn from_parts(accepted: bool, reason: &[u8]) -> Self {
        if accepted {
            OpenAnswer::Accepted
        } else {
            OpenAnswer::Refused(String::from_utf8_lossy(reason).into_owned())
        }
    }
}

/// The responder's view of a transfer: what it received (`to`) or wrote (`from`), and its
/// connection's path statistics (the sender's, for `from`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FarEndView {
    /// Bytes received or written.
    pub bytes: u64,
    /// From the stream's start to its last byte, ns.
    pub elapsed_ns: u64,
    /// Width of `slices`, ns.
    pub slice_ns: u64,
    /// Bytes per slice.
    pub slices: Vec<u64>,
    /// The responder's path statistics at the end.
    pub path: PathReport,
}

/// Why a view frame cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// Longer than [`MAX_VIEW_LEN`].
    #[error("the far end's view is {0} bytes, over the {MAX_VIEW_LEN}-byte limit")]
    TooLong(usize),
    /// Not the JSON of a view.
    #[error("the far end's view is not valid: {0}")]
    Json(#[from] serde_json::Error),
}

impl FarEndView {
    /// The view as a frame.
    pub fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut b = Vec::with_capacity(4 + json.len());
        b.extend_from_slice(&u32::try_from(json.len()).unwrap_or(0).to_be_bytes());
        b.extend_from_slice(&json);
        b
    }

    /// The body length announced by a frame header.
    pub fn body_len(header: [u8; 4]) -> Result<usize, ViewError> {
        let len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
        if len > MAX_VIEW_LEN {
            return Err(ViewError::TooLong(len));
        }
        Ok(len)
    }

    /// Parses a frame body.
    pub fn decode(body: &[u8]) -> Result<Self, ViewError> {
        Ok(serde_json::from_slice(body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_round_trips_and_refuses_strangers() {
        let modes = [
            Mode::Handshake,
            Mode::Echo,
            Mode::Upload,
            Mode::Download,
            Mode::Both,
        ];
        for mode in modes {
            let r = OpenRequest {
                session: 0x0102_0304_0506_0708,
                mode,
                duration_ms: 2_500,
            };
            let b = r.encode();
            assert_eq!(&b[..4], b"PQT1");
            assert_eq!(OpenRequest::decode(&b), Ok(r));
        }
        let mut b = OpenRequest {
            session: 1,
            mode: Mode::Echo,
            duration_ms: 0,
        }
        .encode();
        assert_eq!(OpenRequest::decode(&b[..16]), Err(OpenError::NotOpen));
        b[12] = 9;
        assert_eq!(OpenRequest::decode(&b), Err(OpenError::Mode(9)));
        assert!(Mode::Both.uploads() && Mode::Both.downloads());
        assert!(Mode::Upload.uploads() && !Mode::Upload.downloads());
        assert!(!Mode::Download.uploads() && !Mode::Echo.downloads());
        b[0] = b'X';
        assert_eq!(OpenRequest::decode(&b), Err(OpenError::NotOpen));
    }

    #[test]
    fn answers_carry_bounded_reasons() {
        assert_eq!(OpenAnswer::Accepted.encode(), vec![0, 0, 0]);
        let b = OpenAnswer::Refused("unknown session".into()).encode();
        let (ok, len) = OpenAnswer::header([b[0], b[1], b[2]]).expect("header");
        assert!(!ok);
        assert_eq!(
            OpenAnswer::from_parts(ok, &b[3..3 + len]),
            OpenAnswer::Refused("unknown session".into())
        );
        // A long reason of multi-byte characters is cut on a character boundary.
        let long = OpenAnswer::Refused("é".repeat(1000)).encode();
        let (_, len) = OpenAnswer::header([long[0], long[1], long[2]]).expect("header");
        assert!(len <= MAX_REASON_LEN && std::str::from_utf8(&long[3..]).is_ok());
        assert_eq!(OpenAnswer::header([2, 0, 0]), None);
        assert_eq!(OpenAnswer::header([1, 0xff, 0xff]), None);
    }

    #[test]
    fn views_round_trip_within_the_limit() {
        let v = FarEndView {
            bytes: 10,
            elapsed_ns: 5,
            slice_ns: 1,
            slices: vec![4, 6],
            path: PathReport::default(),
        };
        let f = v.encode();
        let len = FarEndView::body_len([f[0], f[1], f[2], f[3]]).expect("length");
        assert_eq!(FarEndView::decode(&f[4..4 + len]).expect("view"), v);
        assert!(FarEndView::body_len(u32::MAX.to_be_bytes()).is_err());
        assert!(FarEndView::decode(b"{").is_err());
    }
}
