//! The settings of a [`Sender`](super::Sender) and the errors of its setup and calls.

use std::time::Duration;

use crate::report::TimestampSource;
use crate::time::{ClockInfo, ClockMode};
use crate::wire::stamp::BASE_LEN;
use crate::wire::stamp_auth::AUTH_BASE_LEN;
use crate::wire::stamp_hmac::StampKey;

/// Flipped in the test SSID (exclusive or) to get the hello SSID.
pub const HELLO_SSID_FLIP: u16 = 0x8000;

/// A schedule at least this slow has few packets within its reply timeout: the sender's
/// windows (send ring, reorder buffer) are sized for those, not for the whole test, and have
/// a small margin (an agent runs thousands of such tests side by side).
pub(super) const SLOW_PACE: Duration = Duration::from_millis(1);

/// Exchanges an offset estimator window holds at least (see [`SenderConfig::offset_window`]).
pub const OFFSET_WINDOW_EXCHANGES: u32 = 8;

/// Largest UDP payload over IPv4.
pub const MAX_SIZE: usize = 65_507;

/// How long a test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// This many packets.
    Count(u32),
    /// Packets planned within this time: `ceil(duration / interval)`.
    Duration(Duration),
}

/// Sender settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SenderConfig {
    /// The peer as the user named it (goes to the report).
    pub peer: String,
    /// STAMP Session-Sender Identifier.
    pub ssid: u16,
    /// Test length.
    pub limit: Limit,
    /// Interval between packets.
    pub interval: Duration,
    /// UDP payload size of test packets (at least 44).
    pub size: usize,
    /// Replies later than this after their packet left count as lost (late).
    pub timeout: Duration,
    /// The local clock's facts.
    pub clock: ClockInfo,
    /// Forces a clock mode instead of deciding it from what the peer says.
    pub clock_mode: Option<ClockMode>,
    /// Where the timestamps fed in come from (reported as is).
    pub timestamps: TimestampSource,
    /// Window of the offset estimator's minimum filter (estimated clock mode). A slow
    /// schedule's windows are widened to hold [`OFFSET_WINDOW_EXCHANGES`] exchanges each: a
    /// minimum over one exchange filters nothing.
    pub offset_window: Duration,
    /// Authenticated mode (RFC 8762 section 4.2.2) with this key: packets are at least 112
    /// octets (a smaller `size` is raised), replies with a wrong HMAC are dropped and counted.
    pub key: Option<StampKey>,
}

impl SenderConfig {
    /// Defaults: 10 s of packets every 100 ms, 44 octets, 3 s timeout, estimator window 1 s,
    /// user timestamps, unknown local clock.
    pub fn new(peer: impl Into<String>, ssid: u16) -> Self {
        SenderConfig {
            peer: peer.into(),
            ssid,
            limit: Limit::Duration(Duration::from_secs(10)),
            interval: Duration::from_millis(100),
            size: BASE_LEN,
            timeout: Duration::from_secs(3),
            clock: ClockInfo::default(),
            clock_mode: None,
            timestamps: TimestampSource::User,
            offset_window: Duration::from_secs(1),
            key: None,
        }
    }

    /// Length of the base packet: 112 octets in authenticated mode, else 44.
    pub fn base_len(&self) -> usize {
        if self.key.is_some() {
            AUTH_BASE_LEN
        } else {
            BASE_LEN
        }
    }

    /// The offset estimator's window: `offset_window`, widened to hold
    /// [`OFFSET_WINDOW_EXCHANGES`] packets of the schedule.
    pub fn effective_offset_window(&self) -> Duration {
        self.offset_window
            .max(self.interval.saturating_mul(OFFSET_WINDOW_EXCHANGES))
    }

    /// Packets the limit plans.
    pub fn packet_count(&self) -> u64 {
        match self.limit {
            Limit::Count(n) => u64::from(n),
            Limit::Duration(d) => {
                let i = self.interval.as_nanos().max(1);
                u64::try_from(d.as_nanos().div_ceil(i)).unwrap_or(u64::MAX)
            }
        }
    }
}

/// Invalid settings or calls.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SenderError {
    /// Packet size outside `44..=65507`.
    #[error("packet size {0} outside {BASE_LEN}..={MAX_SIZE}")]
    Size(usize),
    /// Zero interval.
    #[error("the interval must be positive")]
    ZeroInterval,
    /// A flood window of zero packets.
    #[error("the flood window must be at least one packet")]
    ZeroWindow,
    /// The limit plans no packet, or more than 2^32.
    #[error("the test must plan between 1 and 2^32 - 1 packets, not {0}")]
    Count(u64),
    /// Every planned packet was sent.
    #[error("all {0} packets were sent")]
    Complete(u32),
    /// The schedule cannot move once a test packet was sent.
    #[error("the schedule cannot move after the first test packet")]
    Started,
    /// The caller's buffer is shorter than the packet.
    #[error("packet buffer of {available} octets, {needed} needed")]
    BufferTooSmall {
        /// Octets needed.
        needed: usize,
        /// Octets available.
        available: usize,
    },
}
