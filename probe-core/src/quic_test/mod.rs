//! The QUIC test (`probe a2a --proto quic`) on the responder's control endpoint (49152/udp):
//! handshake time over N handshakes, a round-trip distribution from QUIC datagrams (RFC 9221)
//! that the far end echoes, and stream throughput each way.
//!
//! A test is negotiated on the control connection like every other (token, limits, the
//! exclusive class of throughput tests: [`TestKind::QuicRtt`], [`TestKind::QuicThroughput`]),
//! then runs on connections of their own under the ALPN [`ALPN`], so the control protocol
//! never carries test traffic. Each test connection opens with a stream naming the granted
//! session ([`open`]); the responder answers only sessions it granted to the same client
//! address.
//!
//! [`datagram`], [`open`] and [`report`] are sans-IO; [`runtime`] runs them on quinn.
//!
//! [`TestKind::QuicRtt`]: crate::control::TestKind::QuicRtt
//! [`TestKind::QuicThroughput`]: crate::control::TestKind::QuicThroughput

pub mod datagram;
pub mod open;
pub mod report;
pub mod runtime;

pub use datagram::{EchoOutcome, RttAccounting};
pub use open::{Mode, OpenAnswer, OpenRequest};
pub use report::{DatagramCounts, PathReport, QuicA2aReport, QuicDirectionReport, QuicReport};
pub use runtime::{
    Negotiated, QuicTestError, QuicTestOptions, RttPlan, ThroughputPlan, run_negotiated,
    run_quic_test,
};

/// The TLS application protocol (ALPN) of QUIC test connections.
pub const ALPN: &[u8] = b"probe-quic-test/1";
