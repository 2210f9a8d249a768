//! Errors of the control-plane runtime.

use std::net::SocketAddr;

use crate::control::handshake::HelloError;
use crate::control::identity::IdentityError;
use crate::control::messages::{ErrorCode, FrameError};
use crate::control::pin::PinError;

/// A control-plane operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The peer's identity is not the pinned one (or the known-peers file is unusable).
    #[error(transparent)]
    Pin(#[from] PinError),
    /// The hello was refused (unauthorized, other version, ...).
    #[error(transparent)]
    Hello(#[from] HelloError),
    /// The local identity cannot be loaded.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The TLS configuration cannot be built.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// A socket cannot be bound.
    #[error("cannot bind the control plane to {addr}/udp: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server refused the connection before the handshake.
    #[error(
        "the control plane of {server} refused the connection: this source address is not in \
         its --allow list, or it is at its connection limit"
    )]
    Refused {
        /// The server.
        server: SocketAddr,
    },
    /// The server did not answer in time.
    #[error(
        "no answer from the control plane of {server} within {secs} s ({what}): is `probe \
         serve` running there with its control plane, and is its control port reachable over \
         UDP?"
    )]
    Timeout {
        /// The server.
        server: SocketAddr,
        /// What was awaited.
        what: &'static str,
        /// The time waited, seconds.
        secs: u64,
    },
    /// The QUIC connection failed or was closed.
    #[error("control connection to {server}: {reason}")]
    Connection {
        /// The server.
        server: SocketAddr,
        /// What happened.
        reason: String,
    },
    /// A frame could not be read.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The responder refused a request (a limit, busy, an unknown or expired session, ...).
    #[error("the responder refused: {message}")]
    Rejected {
        /// The responder's code.
        code: ErrorCode,
        /// The responder's message (names the cause, e.g. the limit and its value).
        message: String,
    },
    /// The responder answered with a message that does not answer the request.
    #[error("unexpected answer from the control plane of {server}: {what}")]
    Unexpected {
        /// The server.
        server: SocketAddr,
        /// What came.
        what: String,
    },
}
