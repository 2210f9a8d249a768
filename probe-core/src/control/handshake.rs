//! The hello exchange, sans-IO: the server's answer to a first frame, and the client's
//! reading of that answer.

use super::auth::Token;
use super::identity::Fingerprint;
use super::messages::{
    ClockFacts, ErrorCode, ErrorMessage, FrameError, Hello, Message, PROTOCOL_VERSION, Welcome,
    decode_body, peek_version,
};
use crate::time::ClockInfo;

/// What the server answers hellos with.
#[derive(Clone, Debug)]
pub struct ServerFacts {
    /// The server's identity.
    pub fingerprint: Fingerprint,
    /// The server's clock.
    pub clock: ClockInfo,
    /// The token clients must present; `None` admits every client.
    pub token: Option<Token>,
    /// The server's software name and version.
    pub software: String,
}

/// How a hello was answered (for the server's counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloOutcome {
    /// Accepted: a [`Welcome`] was sent.
    Welcomed,
    /// The token was missing or wrong.
    Unauthorized,
    /// The client speaks another protocol version.
    VersionMismatch,
    /// The frame was not a readable hello.
    Malformed,
}

/// The server's answer to the body of a connection's first frame.
pub fn answer_hello(body: &[u8], facts: &ServerFacts) -> (Message, HelloOutcome) {
    if let Some(v) = peek_version(body)
        && v != PROTOCOL_VERSION
    {
        return (
            error(
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {v} is not supported: this server speaks version \
                     {PROTOCOL_VERSION}; upgrade the older of the two probes"
                ),
            ),
            HelloOutcome::VersionMismatch,
        );
    }
    let hello = match decode_body(body) {
        Ok(Message::Hello(h)) => h,
        Ok(other) => {
            return (
                error(
                    ErrorCode::BadMessage,
                    format!(
                        "expected a hello as the first message, got {}",
                        kind(&other)
                    ),
                ),
                HelloOutcome::Malformed,
            );
        }
        Err(e) => {
            return (
                error(ErrorCode::BadMessage, e.to_string()),
                HelloOutcome::Malformed,
            );
        }
    };
    if let Some(expected) = &facts.token
        && !expected.matches(hello.token.as_ref())
    {
        let why = if hello.token.is_some() {
            "wrong token"
        } else {
            "this server requires a token"
        };
        return (
            error(
                ErrorCode::Unauthorized,
                format!("unauthorized: {why}; set --token, PROBE_TOKEN or --token-file"),
            ),
            HelloOutcome::Unauthorized,
        );
    }
    (
        Message::Welcome(Welcome {
            version: PROTOCOL_VERSION,
            fingerprint: facts.fingerprint.to_string(),
            clock: ClockFacts::from_info(&facts.clock),
            software: facts.software.clone(),
        }),
        HelloOutcome::Welcomed,
    )
}

/// The server's answer to a frame on an established session (after the welcome) that is not
/// a request it serves (see [`crate::control::runtime`]): a bad-message error naming what was
/// received; the session stays up.
pub fn answer_request(body: &[u8]) -> Message {
    let what = match decode_body(body) {
        Ok(msg) => format!("{} (the session is already established)", kind(&msg)),
        Err(e) => e.to_string(),
    };
    error(
        ErrorCode::BadMessage,
        format!("protocol version {PROTOCOL_VERSION} has no such request: {what}"),
    )
}

/// An error message of this protocol version.
pub fn error_message(code: ErrorCode, message: String) -> Message {
    error(code, message)
}

/// The hello a client sends.
pub fn hello(version: u32, token: Option<Token>, software: &str) -> Message {
    Message::Hello(Hello {
        version,
        token,
        software: software.into(),
    })
}

/// What the client learnt from an accepted hello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerHello {
    /// The server's protocol version.
    pub version: u32,
    /// The fingerprint the server announced.
    pub fingerprint: String,
    /// The server's clock.
    pub clock: ClockInfo,
    /// The server's software.
    pub software: String,
}

/// Why a hello was not accepted, as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// The server refused the token.
    #[error("{message}")]
    Unauthorized {
        /// The server's message.
        message: String,
    },
    /// The server speaks another version.
    #[error(
        "protocol version mismatch: this client speaks version {ours}, the server {theirs}: \
         {message}"
    )]
    Version {
        /// The client's version.
        ours: u32,
        /// The server's version, when it said.
        theirs: String,
        /// The server's message.
        message: String,
    },
    /// Another refusal.
    #[error("the server refused the hello ({code:?}): {message}")]
    Refused {
        /// The server's code.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The answer is not a welcome or an error.
    #[error("unexpected answer to the hello: {0}")]
    Protocol(String),
}

/// Reads the server's answer to a hello sent with version `ours`.
pub fn read_welcome(answer: Message, ours: u32) -> Result<PeerHello, HelloError> {
    match answer {
        Message::Welcome(w) => {
            if w.version != ours {
                return Err(HelloError::Version {
                    ours,
                    theirs: w.version.to_string(),
                    message: "the server welcomed another version".into(),
                });
            }
            let clock = w
                .clock
                .to_info()
                .map_err(|e: FrameError| HelloError::Protocol(e.to_string()))?;
            Ok(PeerHello {
                version: w.version,
                fingerprint: w.fingerprint,
                clock,
                software: w.software,
            })
        }
        Message::Error(e) => Err(match e.code {
            ErrorCode::Unauthorized => HelloError::Unauthorized { message: e.message },
            ErrorCode::UnsupportedVersion => HelloError::Version {
                ours,
                theirs: e
                    .version
                    .map_or_else(|| "unknown".into(), |v| v.to_string()),
                message: e.message,
            },
            code => HelloError::Refused {
                code,
                message: e.message,
            },
        }),
        other => Err(HelloError::Protocol(format!("got {}", kind(&other)))),
    }
}

fn error(code: ErrorCode, message: String) -> Message {
    Message::Error(ErrorMessage {
        code,
        message,
        version: Some(PROTOCOL_VERSION),
    })
}

/// The message's `type`, for errors.
pub fn kind(msg: &Message) -> &'static str {
    match msg {
        Message::Hello(_) => "hello",
        Message::Welcome(_) => "welcome",
        Message::Error(_) => "error",
        Message::TestRequest(_) => "test_request",
        Message::TestAccepted(_) => "test_accepted",
        Message::Results(_) => "results",
        Message::FarEnd(_) => "far_end",
        Message::TraceRequest(_) => "trace_request",
        Message::TraceReport(_) => "trace_report",
        Message::MeshJoin(_) => "mesh_join",
        Message::MeshJoined(_) => "mesh_joined",
        Message::MeshInvite(_) => "mesh_invite",
        Message::MeshReady(_) => "mesh_ready",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::messages::encode;
    use crate::time::BootId;

    fn facts(token: Option<&str>) -> ServerFacts {
        ServerFacts {
            fingerprint: Fingerprint([1; 32]),
            clock: ClockInfo {
                boot_id: BootId([2; 16]),
                synchronized: true,
                max_error: None,
            },
            token: token.map(|t| Token::new(t, "test").expect("token")),
            software: "probe test".into(),
        }
    }

    fn body(msg: &Message) -> Vec<u8> {
        encode(msg)[4..].to_vec()
    }

    fn tok(s: &str) -> Token {
        Token::new(s, "test").expect("token")
    }

    #[test]
    fn welcome_carries_fingerprint_and_clock() {
        let f = facts(Some("k"));
        let (answer, outcome) = answer_hello(&body(&hello(1, Some(tok("k")), "c")), &f);
        assert_eq!(outcome, HelloOutcome::Welcomed);
        let peer = read_welcome(answer, 1).expect("welcome");
        assert_eq!(peer.fingerprint, f.fingerprint.to_string());
        assert_eq!(peer.clock, f.clock);
        // No token configured: everyone is welcome.
        let (_, outcome) = answer_hello(&body(&hello(1, None, "c")), &facts(None));
        assert_eq!(outcome, HelloOutcome::Welcomed);
    }

    #[test]
    fn wrong_or_missing_token_is_unauthorized() {
        let f = facts(Some("k"));
        for (token, why) in [(Some(tok("x")), "wrong token"), (None, "requires a token")] {
            let (answer, outcome) = answer_hello(&body(&hello(1, token, "c")), &f);
            assert_eq!(outcome, HelloOutcome::Unauthorized);
            let e = read_welcome(answer, 1).expect_err("refused");
            let text = e.to_string();
            assert!(matches!(e, HelloError::Unauthorized { .. }), "{e:?}");
            assert!(
                text.contains("unauthorized") && text.contains(why),
                "{text}"
            );
            assert!(text.contains("PROBE_TOKEN"), "{text}");
        }
    }

    #[test]
    fn other_version_names_both_even_before_the_token() {
        let (answer, outcome) = answer_hello(&body(&hello(2, None, "c")), &facts(Some("k")));
        assert_eq!(outcome, HelloOutcome::VersionMismatch);
        let e = read_welcome(answer, 2).expect_err("version").to_string();
        assert!(e.contains("version 2") && e.contains("server 1"), "{e}");
        assert!(e.contains("speaks version 1"), "{e}");
    }

    #[test]
    fn requests_after_the_welcome_are_bad_messages() {
        let answer = answer_request(&body(&hello(1, None, "c")));
        let Message::Error(e) = answer else {
            panic!("not an error: {answer:?}")
        };
        assert_eq!(e.code, ErrorCode::BadMessage);
        assert!(
            e.message
                .contains("hello (the session is already established)"),
            "{}",
            e.message
        );
        assert!(matches!(answer_request(b"{"), Message::Error(_)));
    }

    #[test]
    fn junk_is_a_bad_message() {
        for junk in [&b"junk"[..], br#"{"type":"welcome"}"#, b""] {
            let (answer, outcome) = answer_hello(junk, &facts(None));
            assert_eq!(outcome, HelloOutcome::Malformed);
            assert!(matches!(
                read_welcome(answer, 1),
                Err(HelloError::Refused {
                    code: ErrorCode::BadMessage,
                    ..
                })
            ));
        }
    }
}
