//! The A2A runtime: sockets and tasks around the sans-IO [`Reflector`](super::Reflector) and
//! [`Sender`](super::Sender).
//!
//! - [`Responder`] answers STAMP on one or more UDP sockets with batched receive and send
//!   (`recvmmsg`/`sendmmsg`) and kernel receive timestamps.
//! - [`run_test`] runs one [`SenderSession`](super::SenderSession) against a peer on a small
//!   driver: hellos (clock exchange), an isochronous schedule or a flood, kernel RX and TX
//!   timestamps, interval reports, and the report; all inside one cancel-safe future.
//! - [`SessionPool`] runs many such sessions side by side on one socket per family, one task
//!   and one timer (the [`SessionMux`](super::SessionMux)): an agent's mesh of thousands of peers.
//! - [`PeerSpec`] parses and resolves `HOST[:PORT]`.

mod driver;
mod error;
mod local_clock;
mod options;
mod peer;
mod pool;
mod responder;
mod session;

pub use crate::a2a::{Pace, TestOutcome};
pub use error::A2aError;
pub use local_clock::local_clock_info;
pub use options::{A2aOptions, A2aOptionsBuilder, ConfigError};
pub use peer::{Family, PeerSpec};
pub use pool::SessionPool;
pub use responder::{Responder, ResponderConfig};
pub use session::{run_test, run_test_until};
