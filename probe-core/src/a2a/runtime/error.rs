//! Errors of the A2A runtime, each naming the problem and the fix.

use std::net::SocketAddr;

use crate::io::IoError;

/// Why an A2A test or responder could not run.
#[derive(Debug, thiserror::Error)]
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
    /// The test settings are inconsistent.
    #[error("invalid test settings: {0}")]
    Config(String),
    /// A runtime task ended abnormally.
    #[error("internal task failure: {0}")]
    Task(String),
}
