//! The in-band request that opens every TCP connection to 49153/tcp, and the server's reply.
//!
//! Request, 48 bytes, big-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `PRTQ` |
//! | 4 | 1 | version ([`VERSION`]) |
//! | 5 | 1 | mode: 0 connect, 1 sink (server receives), 2 source (server sends), 3 control |
//! | 6 | 2 | stream index within the test |
//! | 8 | 4 | duration, ms |
//! | 12 | 4 | interval of the receiver's byte counts, ms |
//! | 16 | 8 | test id (groups a test's control and data connections) |
//! | 24 | 16 | session cookie (zero when none was issued) |
//! | 40 | 2 | data connections of the test (control requests) |
//! | 42 | 6 | reserved, zero |
//!
//! Reply, 16 bytes: magic `PRTA`, the server's version, a status (0 accepted, 1 busy,
//! 2 duration too long, 3 unauthorized, 4 unknown test, 5 unsupported version, 6 malformed),
//! 2 reserved bytes, a `u32` value (busy: retry after this many seconds; duration too long:
//! the limit in ms), 4 reserved bytes.

use std::fmt;
use std::time::Duration;

/// Protocol version of the request and reply.
pub const VERSION: u8 = 1;
/// Magic of a request.
pub const REQUEST_MAGIC: [u8; 4] = *b"PRTQ";
/// Magic of a reply.
pub const REPLY_MAGIC: [u8; 4] = *b"PRTA";
/// Length of a request.
pub const REQUEST_LEN: usize = 48;
/// Length of a reply.
pub const REPLY_LEN: usize = 16;

/// What a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// A handshake-latency probe (usually sends nothing at all).
    Connect,
    /// The client sends, the server counts what arrives.
    Sink,
    /// The server sends, the client counts what arrives (`iperf3 -R`).
    Source,
    /// The control connection of a throughput test: admission, then the server's results.
    Control,
}

impl Mode {
    fn code(self) -> u8 {
        match self {
            Mode::Connect => 0,
            Mode::Sink => 1,
            Mode::Source => 2,
            Mode::Control => 3,
        }
    }

    fn from_code(c: u8) -> Option<Mode> {
        Some(match c {
            0 => Mode::Connect,
            1 => Mode::Sink,
            2 => Mode::Source,
            3 => Mode::Control,
            _ => return None,
        })
    }

    /// The name of the mode in results (`connect`, `sink`, `source`, `control`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Connect => "connect",
            Mode::Sink => "sink",
            Mode::Source => "source",
            Mode::Control => "control",
        }
    }
}

/// A request, typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// What the connection is for.
    pub mode: Mode,
    /// Index of this data connection within its test.
    pub stream: u16,
    /// How long the test's data flows.
    pub duration: Duration,
    /// Slice of the receiver's byte counts.
    pub interval: Duration,
    /// Groups the connections of one test.
    pub test_id: u64,
    /// Session cookie issued over control (zero when none).
    pub cookie: [u8; 16],
    /// Data connections of the test (in a control request).
    pub streams: u16,
}

/// Why bytes are not a request or reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Fewer bytes than the fixed length.
    #[error("truncated: {got} bytes, {want} needed")]
    Truncated {
        /// Bytes given.
        got: usize,
        /// Bytes needed.
        want: usize,
    },
    /// The magic is not ours: not a probe peer.
    #[error("not a probe TCP test message (bad magic)")]
    BadMagic,
    /// Another protocol version.
    #[error("protocol version {got}, this probe speaks version {VERSION}")]
    Version {
        /// The version received.
        got: u8,
    },
    /// An unknown mode or status code.
    #[error("unknown {what} code {code}")]
    UnknownCode {
        /// `mode` or `status`.
        what: &'static str,
        /// The code.
        code: u8,
    },
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Checks magic and version as soon as their bytes are there (so a stranger is told at once),
/// then the length.
fn check(b: &[u8], want: usize, magic: [u8; 4]) -> Result<(), CodecError> {
    if b.iter().zip(magic).any(|(x, m)| *x != m) {
        return Err(CodecError::BadMagic);
    }
    if let Some(&v) = b.get(4)
        && v != VERSION
    {
        return Err(CodecError::Version { got: v });
    }
    if b.len() < want {
        return Err(CodecError::Truncated { got: b.len(), want });
    }
    Ok(())
}

/// Whether the first bytes of a request already show it cannot be one (wrong magic or
/// version): the server answers without waiting for the rest.
pub(crate) fn hopeless(b: &[u8]) -> bool {
    matches!(
        check(b, 0, REQUEST_MAGIC),
        Err(CodecError::BadMagic | CodecError::Version { .. })
    )
}

impl Request {
    /// The request's bytes.
    pub fn emit(&self) -> [u8; REQUEST_LEN] {
        let mut b = [0u8; REQUEST_LEN];
        b[..4].copy_from_slice(&REQUEST_MAGIC);
        b[4] = VERSION;
        b[5] = self.mode.code();
        b[6..8].copy_from_slice(&self.stream.to_be_bytes());
        b[8..12].copy_from_slice(&millis(self.duration).to_be_bytes());
        b[12..16].copy_from_slice(&millis(self.interval).to_be_bytes());
        b[16..24].copy_from_slice(&self.test_id.to_be_bytes());
        b[24..40].copy_from_slice(&self.cookie);
        b[40..42].copy_from_slice(&self.streams.to_be_bytes());
        b
    }

    /// Parses a request (reserved bytes are ignored).
    pub fn parse(b: &[u8]) -> Result<Request, CodecError> {
        check(b, REQUEST_LEN, REQUEST_MAGIC)?;
        let mode = Mode::from_code(b[5]).ok_or(CodecError::UnknownCode {
            what: "mode",
            code: b[5],
        })?;
        let mut cookie = [0u8; 16];
        cookie.copy_from_slice(&b[24..40]);
        Ok(Request {
            mode,
            stream: u16_at(b, 6),
            duration: Duration::from_millis(u64::from(u32_at(b, 8))),
            interval: Duration::from_millis(u64::from(u32_at(b, 12))),
            test_id: u64::from_be_bytes([b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23]]),
            cookie,
            streams: u16_at(b, 40),
        })
    }
}

/// Why the server refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Another throughput test runs; it ends in about this many seconds.
    #[error("busy: another throughput test runs, retry after {retry_after_s} s")]
    Busy {
        /// Seconds until the running test ends (rounded up).
        retry_after_s: u32,
    },
    /// The requested duration is beyond the server's limit.
    #[error("duration beyond the server's limit of {} s (--max-duration)", f64::from(*limit_ms) / 1e3)]
    DurationTooLong {
        /// The limit, ms.
        limit_ms: u32,
    },
    /// The cookie is missing or not one the control plane issued.
    #[error("unauthorized: no valid session cookie (negotiate the test over control)")]
    Unauthorized,
    /// A data connection names no test the server admitted.
    #[error("unknown test: no admitted test has this id")]
    UnknownTest,
    /// The server speaks another version.
    #[error("the server speaks protocol version {server}, this probe version {VERSION}")]
    Version {
        /// The server's version.
        server: u8,
    },
    /// The server could not parse the request.
    #[error("the server could not parse the request")]
    Malformed,
}

impl Refusal {
    fn code_value(self) -> (u8, u32) {
        match self {
            Refusal::Busy { retry_after_s } => (1, retry_after_s),
            Refusal::DurationTooLong { limit_ms } => (2, limit_ms),
            Refusal::Unauthorized => (3, 0),
            Refusal::UnknownTest => (4, 0),
            Refusal::Version { server } => (5, u32::from(server)),
            Refusal::Malformed => (6, 0),
        }
    }
}

/// The server's answer to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply(pub Result<(), Refusal>);

impl Reply {
    /// The reply's bytes.
    pub fn emit(&self) -> [u8; REPLY_LEN] {
        let mut b = [0u8; REPLY_LEN];
        b[..4].copy_from_slice(&REPLY_MAGIC);
        b[4] = VERSION;
        let (code, value) = match self.0 {
            Ok(()) => (0, 0),
            Err(r) => r.code_value(),
        };
        b[5] = code;
        b[8..12].copy_from_slice(&value.to_be_bytes());
        b
    }

    /// Parses a reply. A reply of another version is a [`Refusal::Version`] naming it.
    pub fn parse(b: &[u8]) -> Result<Reply, CodecError> {
        match check(b, REPLY_LEN, REPLY_MAGIC) {
            Err(CodecError::Version { got }) => {
                return Ok(Reply(Err(Refusal::Version { server: got })));
            }
            other => other?,
        }
        let value = u32_at(b, 8);
        Ok(Reply(match b[5] {
            0 => Ok(()),
            1 => Err(Refusal::Busy {
                retry_after_s: value,
            }),
            2 => Err(Refusal::DurationTooLong { limit_ms: value }),
            3 => Err(Refusal::Unauthorized),
            4 => Err(Refusal::UnknownTest),
            5 => Err(Refusal::Version {
                server: u8::try_from(value).unwrap_or(u8::MAX),
            }),
            6 => Err(Refusal::Malformed),
            code => {
                return Err(CodecError::UnknownCode {
                    what: "status",
                    code,
                });
            }
        }))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Request {
        Request {
            mode: Mode::Source,
            stream: 3,
            duration: Duration::from_millis(2_500),
            interval: Duration::from_secs(1),
            test_id: 0x0102_0304_0506_0708,
            cookie: [0xab; 16],
            streams: 4,
        }
    }

    #[test]
    fn request_bytes_follow_the_layout_and_parse_back() {
        let b = sample().emit();
        assert_eq!(&b[..6], b"PRTQ\x01\x02");
        assert_eq!(&b[6..8], &[0, 3]);
        assert_eq!(&b[8..12], &2_500u32.to_be_bytes());
        assert_eq!(&b[12..16], &1_000u32.to_be_bytes());
        assert_eq!(&b[16..24], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&b[24..40], &[0xab; 16]);
        assert_eq!(&b[40..48], &[0, 4, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Request::parse(&b), Ok(sample()));
    }

    #[test]
    fn bad_requests_are_named() {
        let b = sample().emit();
        assert_eq!(
            Request::parse(&b[..47]),
            Err(CodecError::Truncated { got: 47, want: 48 })
        );
        let mut m = b;
        m[0] = b'G';
        assert_eq!(Request::parse(&m), Err(CodecError::BadMagic));
        let mut v = b;
        v[4] = 9;
        assert_eq!(Request::parse(&v), Err(CodecError::Version { got: 9 }));
        assert!(
            CodecError::Version { got: 9 }
                .to_string()
                .contains("version 9, this probe speaks version 1")
        );
        assert_eq!(Request::parse(b"GET / HTTP/1.1"), Err(CodecError::BadMagic));
        assert!(hopeless(b"GE") && hopeless(b"PRTQ\x02") && !hopeless(b"PRTQ\x01\x01"));
        assert!(!hopeless(b"PR"));
        let mut c = b;
        c[5] = 7;
        assert_eq!(
            Request::parse(&c),
            Err(CodecError::UnknownCode {
                what: "mode",
                code: 7
            })
        );
    }

    #[test]
    fn replies_round_trip_every_status() {
        let all = [
            Ok(()),
            Err(Refusal::Busy { retry_after_s: 7 }),
            Err(Refusal::DurationTooLong { limit_ms: 60_000 }),
            Err(Refusal::Unauthorized),
            Err(Refusal::UnknownTest),
            Err(Refusal::Malformed),
        ];
        for r in all {
            let b = Reply(r).emit();
            assert_eq!(&b[..5], b"PRTA\x01");
            assert_eq!(Reply::parse(&b), Ok(Reply(r)));
        }
        let busy = Reply(Err(Refusal::Busy { retry_after_s: 7 })).emit();
        assert_eq!(&busy[5..12], &[1, 0, 0, 0, 0, 0, 7]);
        assert_eq!(
            Refusal::Busy { retry_after_s: 7 }.to_string(),
            "busy: another throughput test runs, retry after 7 s"
        );
        let mut other = Reply(Ok(())).emit();
        other[4] = 2;
        assert_eq!(
            Reply::parse(&other),
            Ok(Reply(Err(Refusal::Version { server: 2 })))
        );
        let mut bad = Reply(Ok(())).emit();
        bad[5] = 99;
        assert!(Reply::parse(&bad).is_err());
    }
}
