//! Results of the TCP tests on 49153/tcp (`probe a2a --proto tcp`): connect latency and
//! bulk throughput.

use serde::{Deserialize, Serialize};

use crate::a2a::Direction;
use crate::stats::Summary;
use crate::tcp::TcpInfo;

/// Connect (handshake) latency over N connects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TcpConnectReport {
    /// The peer as given.
    pub peer: String,
    /// The address connected to.
    pub address: String,
    /// Connects attempted.
    pub attempts: u64,
    /// Connects that completed the handshake.
    pub connected: u64,
    /// Connects that failed, by class.
    pub failures: ConnectFailures,
    /// Time from `connect()` to established, ms (`None` when none connected).
    pub handshake_ms: Option<Summary>,
    /// The kernel's RTT of each fresh connection (`TCP_INFO` `tcpi_rtt`), ms.
    pub tcp_info_rtt_ms: Option<Summary>,
    /// The first failure's message, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

/// Failed connects by class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectFailures {
    /// A reset answered the SYN: nothing listens (`ECONNREFUSED`).
    pub refused: u64,
    /// No answer within the wait.
    pub timeout: u64,
    /// The network said the host or net is unreachable (ICMP).
    pub unreachable: u64,
    /// Anything else.
    pub other: u64,
}

impl ConnectFailures {
    /// All failures.
    pub fn total(&self) -> u64 {
        self.refused + self.timeout + self.unreachable + self.other
    }
}

/// A bulk-transfer test, one or both directions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TcpThroughputReport {
    /// The peer as given.
    pub peer: String,
    /// The address connected to.
    pub address: String,
    /// The direction(s) tested.
    pub direction: Direction,
    /// Planned duration, s.
    pub duration_s: f64,
    /// Parallel connections per direction.
    pub streams: u16,
    /// The MSS asked for (`--mss`), bytes.
    pub mss: Option<u32>,
    /// Width of the intervals, s.
    pub interval_s: f64,
    /// Near end to far end (`to`), if tested.
    pub to: Option<TcpDirectionReport>,
    /// Far end to near end (`from`), if tested.
    pub from: Option<TcpDirectionReport>,
}

/// One direction of a throughput test: the receiver's byte counts, the sender's `TCP_INFO`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TcpDirectionReport {
    /// Bits per second received, all streams.
    pub bits_per_second: f64,
    /// Bytes received, all streams.
    pub bytes: u64,
    /// Time over which they arrived (the longest stream), s.
    pub seconds: f64,
    /// Segments the senders retransmitted, all streams.
    pub retransmits: u64,
    /// Mean of the senders' smoothed RTT at the end, ms.
    pub rtt_ms: Option<f64>,
    /// Sum of the senders' congestion windows at the end, bytes.
    pub cwnd_bytes: u64,
    /// Each stream.
    pub streams: Vec<TcpStreamReport>,
    /// Bytes received per interval, all streams.
    pub intervals: Vec<ThroughputInterval>,
}

/// One connection of a direction.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TcpStreamReport {
    /// Index of the stream.
    pub stream: u16,
    /// Bytes received.
    pub bytes: u64,
    /// Time over which they arrived, s.
    pub seconds: f64,
    /// Bits per second received.
    pub bits_per_second: f64,
    /// Segments the sender retransmitted.
    pub retransmits: u64,
    /// The sender's smoothed RTT at the end, ms.
    pub rtt_ms: Option<f64>,
    /// Its mean deviation, ms.
    pub rttvar_ms: Option<f64>,
    /// The sender's congestion window at the end, bytes.
    pub cwnd_bytes: u64,
    /// The sender's MSS, bytes.
    pub mss: u32,
    /// The sender's `TCP_INFO` at the end.
    pub sender_tcp_info: Option<TcpInfo>,
}

/// Bytes received in one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThroughputInterval {
    /// Start, s since the transfer began.
    pub start_s: f64,
    /// End, s.
    pub end_s: f64,
    /// Bytes received in the interval.
    pub bytes: u64,
    /// Bits per second over the interval.
    pub bits_per_second: f64,
}
