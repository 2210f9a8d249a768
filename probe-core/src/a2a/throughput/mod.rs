//! UDP throughput and loss (`probe a2a --throughput`): one end floods numbered datagrams at
//! a rate or as fast as it can, the other end counts what arrived.
//!
//! - [`packet`]: the datagram (magic, session id, sequence number, optional send time);
//! - [`ThroughputCounter`]: the sans-IO counting receiver (loss, duplicates, reordering,
//!   one-way delay of the timestamped samples, interval rows; constant memory);
//! - [`ThroughputSink`]: the far end's receiver of a negotiated `to` test, which the STAMP
//!   responder's socket threads feed instead of reflecting (no amplification);
//! - [`blast`], [`receive`], [`wait_punch`]: the IO on a [`PolledSocket`](crate::io::PolledSocket).

mod blast;
mod counter;
pub mod packet;
mod sink;

pub use blast::{BlastPlan, blast, due, receive, wait_punch};
pub use counter::{MAX_INTERVALS, ThroughputCounter};
pub use packet::is_throughput;
pub use sink::{Counted, SinkCache, ThroughputSink};

/// Every how many datagrams one carries its send time.
pub const SAMPLE_EVERY: u64 = 64;
