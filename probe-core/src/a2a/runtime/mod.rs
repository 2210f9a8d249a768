//! The A2A runtime: sockets and tasks around the sans-IO [`Reflector`](super::Reflector) and
//! [`Sender`](super::Sender).
//!
//! - [`Responder`] answers STAMP on one or more UDP sockets with batched receive and send
//!   (`recvmmsg`/`sendmmsg`) and kernel receive timestamps.
//! - [`run_test`] runs one sender session against a peer: hellos (clock exchange), an
//!   isochronous or flood schedule paced by a precise timer thread, kernel RX and TX
//!   timestamps, and the report.
//! - [`PeerSpec`] parses and resolves `HOST[:PORT]`.

mod error;
mod flood;
mod local_clock;
mod peer;
mod responder;
mod test;

pub use error::A2aError;
pub use local_clock::local_clock_info;
pub use peer::{Family, PeerSpec};
pub use responder::{Responder, ResponderConfig};
pub use test::{A2aOptions, Pace, TestOutcome, run_test};
