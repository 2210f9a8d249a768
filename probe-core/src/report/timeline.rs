//! The a2a report's `timeline`: the test cut into at most [`MAX_BUCKETS`] consecutive runs of
//! packets (by sender sequence number), each with its loss and the spread of its round-trip
//! and one-way delays. Present only when asked for (`probe a2a --timeline` or `--html`).
//!
//! A bucket holds `bucket_packets` consecutive test packets (the last one may hold fewer).
//! `lost` counts the bucket's packets without a reply in time, so the buckets' `lost` add up
//! to the report's `lost`. Delays are in milliseconds; one-way ones are on the report's final
//! clock offset (`null` when the report has no one-way delays).

use serde::{Deserialize, Serialize};

/// Most buckets in a timeline: a longer test gets wider buckets.
pub const MAX_BUCKETS: usize = 1000;

/// Smallest, mean and largest value of a series within one bucket, ms.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Spread {
    /// Smallest.
    pub min: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// A spread from its three values.
    pub fn new(min: f64, mean: f64, max: f64) -> Self {
        Spread { min, mean, max }
    }
}

/// One run of consecutive test packets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimelineBucket {
    /// Sender sequence number of the bucket's first packet.
    pub first_seq: u32,
    /// When its first packet was sent, seconds since the test's first packet.
    pub start_s: f64,
    /// Test packets sent.
    pub sent: u64,
    /// Of those, answered in time (first replies).
    pub received: u64,
    /// `sent - received`.
    pub lost: u64,
    /// Round-trip time of the answered packets.
    pub rtt_ms: Option<Spread>,
    /// One-way delay toward the peer.
    pub forward_ms: Option<Spread>,
    /// One-way delay back (every distinct reflected packet of the bucket's packets).
    pub reverse_ms: Option<Spread>,
}

/// The bounded time series of a test.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Timeline {
    /// Test packets per bucket.
    pub bucket_packets: u64,
    /// Buckets in sequence order.
    pub buckets: Vec<TimelineBucket>,
}
