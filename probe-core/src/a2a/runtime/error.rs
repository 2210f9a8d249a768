//! Errors of the A2A runtime, each naming the problem and the fix.

use std::net::SocketAddr;

use super::ConfigError;
use crate::a2a::SenderError;
use crate::io::IoError;

/// Why an A2A test or responder could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum A2aError {
    /// `HOST[:PORT]` is malformed.
    #[error(
        "`{spec}` is not HOST[:PORT]: {why} (examples: 192.0.2.7, peer.example:49153, [2001:db8::7]:49153)"
    )]
    BadPeer {
        /// What the user wrote.
        spec: String,
        /// What is wrong with it.
        why: String,
    },
    /// The name does not resolve (to an address of the wanted family).
    #[error(
        "cannot resolve `{host}`: {why}; check the name, the resolver configuration (/etc/resolv.conf), or give an address"
    )]
    Resolve {
        /// The host name.
        host: String,
        /// What the resolver said.
        why: String,
    },
    /// A socket could not be made or used.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A socket operation failed at run time.
    #[error("{what} failed on {addr}: {source}")]
    Socket {
        /// What was being done.
        what: &'static str,
        /// The local or remote address concerned.
        addr: SocketAddr,
        /// The system error.
        source: std::io::Error,
    },
    /// The pacer's timer could not be made.
    #[error("cannot create the pacer timer (timerfd): {0}")]
    Pacer(std::io::Error),
    /// The test settings are invalid (size, interval, count, window).
    #[error("invalid test settings: {0}")]
    Settings(#[from] SenderError),
    /// The settings cannot work.
    #[error("invalid settings: {0}")]
    Config(#[from] ConfigError),
    /// The session pool's loop is gone (its runtime is shutting down).
    #[error("the A2A session pool stopped before the test ended (the runtime is shutting down)")]
    PoolStopped,
    /// A responder socket task ended abnormally (panicked or was cancelled).
    #[error("a responder socket task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}
