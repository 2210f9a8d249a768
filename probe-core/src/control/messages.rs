//! Control-plane messages and their framing.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of JSON (one
//! [`Message`], tagged by its `type` field). Frames longer than [`MAX_FRAME_LEN`] are refused
//! before any of their body is read. The first message a client sends is [`Hello`]; its
//! `version` is checked before anything else in it, so a peer of another version always gets
//! an error naming both versions, whatever the rest of its messages look like.

use serde::{Deserialize, Serialize};

use std::time::Duration;

use super::auth::Token;
use super::mesh::{MeshInvite, MeshJoin, MeshJoined, MeshReady};
use super::negotiation::{FarEndResults, ResultsRequest, TestAccepted, TestRequest};
use super::trace_request::TraceRequest;
use crate::report::trace::TraceReport;
use crate::time::{BootId, ClockInfo};

/// The control protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest frame body accepted, bytes.
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// Length of the frame header.
pub const HEADER_LEN: usize = 4;

/// A control-plane message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Client → server, first message.
    Hello(Hello),
    /// Server → client: the hello was accepted.
    Welcome(Welcome),
    /// Either way: the request was refused or could not be read.
    Error(ErrorMessage),
    /// Client → server, after the welcome: asks for a test.
    TestRequest(TestRequest),
    /// Server → client: the test is granted.
    TestAccepted(TestAccepted),
    /// Client → server: asks for the far end's view of a session (and may end it).
    Results(ResultsRequest),
    /// Server → client: the far end's view of a session.
    FarEnd(Box<FarEndResults>),
    /// Client → server: asks for a trace from the far end back toward the client.
    TraceRequest(TraceRequest),
    /// Server → client: the far end's trace toward the client (the reverse path).
    TraceReport(Box<TraceReport>),
    /// Client → server: join the server's mesh as a member behind NAT (or refresh).
    MeshJoin(MeshJoin),
    /// Server → client: the membership holds.
    MeshJoined(MeshJoined),
    /// Server → client (a stream the server opens): reflect one test, punch its sender port.
    MeshInvite(MeshInvite),
    /// Client → server: the reflector runs, the punch was sent.
    MeshReady(MeshReady),
}

/// The client's first message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version the client speaks.
    pub version: u32,
    /// The shared token, when the client has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Token>,
    /// The client's software, e.g. `probe 0.1.0` (informational).
    #[serde(default)]
    pub software: String,
}

/// The server's answer to an accepted [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The protocol version the server speaks (equal to the client's).
    pub version: u32,
    /// The server's identity fingerprint (`sha256:HEX`), as the client should have pinned it.
    pub fingerprint: String,
    /// The server's clock facts.
    pub clock: ClockFacts,
    /// The server's software, e.g. `probe 0.1.0` (informational).
    #[serde(default)]
    pub software: String,
}

/// One end's clock facts on the wire (see [`crate::time::ClockInfo`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockFacts {
    /// The kernel boot id as a UUID (all zeros when unknown).
    pub boot_id: String,
    /// Whether the clock is synchronized to UTC by an external source.
    pub synced: bool,
    /// The kernel's maximum error estimate, ns; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_ns: Option<u64>,
}

impl ClockFacts {
    /// The wire form of a clock's facts.
    pub fn from_info(info: &ClockInfo) -> Self {
        ClockFacts {
            boot_id: info.boot_id.to_string(),
            synced: info.synchronized,
            max_error_ns: info
                .max_error
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        }
    }

    /// The clock facts; a boot id that is not a UUID is an error naming it.
    pub fn to_info(&self) -> Result<ClockInfo, FrameError> {
        let boot_id = BootId::parse(&self.boot_id)
            .map_err(|e| FrameError::Invalid(format!("clock.boot_id: {e}")))?;
        Ok(ClockInfo {
            boot_id,
            synchronized: self.synced,
            max_error: self.max_error_ns.map(Duration::from_nanos),
        })
    }
}

/// A refusal or failure, with a machine-readable code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    /// What kind of refusal.
    pub code: ErrorCode,
    /// What happened and what to do, for people.
    pub message: String,
    /// The protocol version of the sender of the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// The kinds of [`ErrorMessage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The token is missing or wrong.
    Unauthorized,
    /// The peer speaks another protocol version.
    UnsupportedVersion,
    /// A frame could not be read or was not the message expected.
    BadMessage,
    /// Anything else on the server's side.
    Internal,
    /// A test request beyond one of the responder's limits (the message names it and its
    /// value).
    LimitExceeded,
    /// An exclusive test (throughput) is running: retry after the time the message names.
    Busy,
    /// The session id is unknown to this connection.
    UnknownSession,
    /// The session expired.
    ExpiredSession,
    /// The request asks for something this responder does not run.
    Unsupported,
    /// A code this build does not know (sent by a newer peer).
    #[serde(other)]
    Unknown,
}

/// A frame that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The header announces more than [`MAX_FRAME_LEN`] bytes.
    #[error("frame of {0} bytes announced, at most {MAX_FRAME_LEN}")]
    TooLong(usize),
    /// The body is not JSON of a known message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The message is well-formed but a field is not valid.
    #[error("invalid message: {0}")]
    Invalid(String),
}

/// Encodes one frame: header and JSON body.
pub fn encode(msg: &Message) -> Vec<u8> {
    // Serializing these plain types cannot fail (no maps with non-string keys, no I/O).
    let body = serde_json::to_vec(msg).unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// The body length a frame header announces, checked against [`MAX_FRAME_LEN`].
pub fn body_len(header: [u8; HEADER_LEN]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLong(len));
    }
    Ok(len)
}

/// Decodes a frame body into a message.
pub fn decode_body(body: &[u8]) -> Result<Message, FrameError> {
    serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Decodes the first whole frame in `buf`: the message and the bytes it used, or `None`
/// while the frame is incomplete.
pub fn decode(buf: &[u8]) -> Result<Option<(Message, usize)>, FrameError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = body_len(*header)?;
    let Some(body) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    Ok(Some((decode_body(body)?, HEADER_LEN + len)))
}

/// The `version` field of a message body, read without decoding the rest, so that a hello
/// of another version (whatever its other fields) is answered with a version error.
pub fn peek_version(body: &[u8]) -> Option<u32> {
    #[derive(Deserialize)]
    struct Versioned {
        version: u32,
    }
    serde_json::from_slice::<Versioned>(body)
        .ok()
        .map(|v| v.version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::BootId;

    fn hello() -> Message {
        Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            token: Some(Token::new("t", "test").expect("token")),
            software: "probe test".into(),
        })
    }

    #[test]
    fn frames_round_trip_and_wait_for_whole_frames() {
        let msg = hello();
        let bytes = encode(&msg);
        assert_eq!(
            bytes.len(),
            HEADER_LEN + u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize
        );
        let body = std::str::from_utf8(&bytes[HEADER_LEN..]).expect("utf8");
        assert!(body.contains(r#""type":"hello""#), "{body}");
        assert!(body.contains(r#""version":1"#), "{body}");
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        assert_eq!(decode(&two), Ok(Some((msg, bytes.len()))));
    }

    #[test]
    fn oversized_and_malformed_frames_are_errors() {
        let header = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
        assert_eq!(
            body_len(header),
            Err(FrameError::TooLong(MAX_FRAME_LEN + 1))
        );
        assert_eq!(
            body_len((MAX_FRAME_LEN as u32).to_be_bytes()),
            Ok(MAX_FRAME_LEN)
        );
        for junk in [&b"{"[..], b"null", b"{\"type\":\"nope\"}", b"\xff\xfe", b""] {
            assert!(
                matches!(decode_body(junk), Err(FrameError::Malformed(_))),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn version_is_read_from_any_shape() {
        assert_eq!(
            peek_version(br#"{"type":"hello","version":7,"new":[1]}"#),
            Some(7)
        );
        assert_eq!(peek_version(br#"{"type":"hello"}"#), None);
        assert_eq!(peek_version(b"junk"), None);
    }

    #[test]
    fn clock_facts_round_trip_and_unknown_codes_parse() {
        let info = ClockInfo {
            boot_id: BootId([7; 16]),
            synchronized: true,
            max_error: Some(Duration::from_micros(1500)),
        };
        let facts = ClockFacts::from_info(&info);
        assert_eq!(facts.max_error_ns, Some(1_500_000));
        assert_eq!(facts.to_info(), Ok(info));
        let bad = ClockFacts {
            boot_id: "x".into(),
            ..facts
        };
        assert!(bad.to_info().is_err());
        let e: Message =
            serde_json::from_str(r#"{"type":"error","code":"from_the_future","message":"m"}"#)
                .expect("parse");
        assert!(matches!(
            e,
            Message::Error(ErrorMessage {
                code: ErrorCode::Unknown,
                ..
            })
        ));
    }
}
