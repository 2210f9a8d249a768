//! TCP tests on 49153/tcp: connect (handshake) latency and bulk throughput.
//!
//! Every connection opens with a small versioned [`Request`] (connect, sink, source or
//! control) that the server answers with a [`Reply`] after [`Admission`]; a connect-latency
//! probe may send nothing at all. A throughput test is one control connection (admission,
//! then the server's [`ServerResults`]) and its data connections, all opened by the client,
//! so a client behind NAT can measure both directions. The codec, the admission rules, the
//! byte accounting and `TCP_INFO` decoding are sans-IO; [`runtime`] holds the sockets.

mod accounting;
mod admission;
mod request;
mod results;
pub mod runtime;
mod tcp_info;

pub use accounting::{ByteCounter, MAX_SLICES, bits_per_second, sum_slices};
pub use admission::{Admission, CookieCheck, GRACE, Gate, LocalAdmission};
pub use request::{
    CodecError, Mode, REPLY_LEN, REPLY_MAGIC, REQUEST_LEN, REQUEST_MAGIC, Refusal, Reply, Request,
    VERSION,
};
pub(crate) use results::intervals;
pub use results::{MAX_RESULTS_LEN, ResultsError, ServerResults, StreamEnd, direction_report};
pub use tcp_info::{TCP_INFO_LEN, TcpInfo};

/// The TCP port of the tests (the same number as STAMP's UDP port).
pub const DEFAULT_PORT: u16 = 49_153;
