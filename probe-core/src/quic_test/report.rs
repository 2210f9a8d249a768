//! Results of the QUIC test: the `quic` section of `probe a2a --proto quic --json`.

use serde::{Deserialize, Serialize};

use crate::a2a::Direction;
use crate::report::tcp::ThroughputInterval;
use crate::stats::Summary;

/// The whole QUIC test toward one peer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuicA2aReport {
    /// The peer as given.
    pub peer: String,
    /// The control address the test ran on.
    pub address: String,
    /// Always `quic`.
    pub proto: String,
    /// The session the peer's control plane granted (hex).
    pub session: String,
    /// The peer's identity fingerprint.
    pub fingerprint: String,
    /// The measurements.
    pub quic: QuicReport,
}

/// The measurements of a QUIC test.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QuicReport {
    /// Handshakes attempted.
    pub handshakes: u64,
    /// Handshakes that completed and were accepted.
    pub handshakes_ok: u64,
    /// Time from the first Initial sent to the handshake's completion at the client, ms.
    pub handshake_ms: Option<Summary>,
    /// The first handshake failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake_error: Option<String>,
    /// The datagram RTT test's counts (absent for a throughput test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datagrams: Option<DatagramCounts>,
    /// Round trip of the echoed datagrams, ms (`null` when none came back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<Option<Summary>>,
    /// quinn's path statistics of the datagram connection at its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathReport>,
    /// The stream throughput test (with `--throughput`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<QuicThroughputReport>,
    /// Why the test stopped early (a connection lost midway); what was measured is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counts of the datagram RTT test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatagramCounts {
    /// Datagram payload size, bytes.
    pub size: usize,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams echoed back in time (each once).
    pub received: u64,
    /// Datagrams without an echo (lost either way or dropped by a full queue).
    pub lost: u64,
    /// `lost` in percent of `sent`.
    pub loss_pct: f64,
    /// Second echoes of one datagram.
    pub duplicates: u64,
    /// Datagrams that were no echo of this test.
    pub unknown: u64,
}

/// quinn's path statistics of one connection (`PathStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PathReport {
    /// Smoothed RTT, ms.
    pub rtt_ms: f64,
    /// Congestion window, bytes.
    pub cwnd_bytes: u64,
    /// Congestion events.
    pub congestion_events: u64,
    /// Packets declared lost.
    pub lost_packets: u64,
    /// Bytes declared lost.
    pub lost_bytes: u64,
    /// Packets sent.
    pub sent_packets: u64,
    /// The path MTU in use, bytes.
    pub mtu: u16,
}

/// Stream throughput, one or both directions (both at once, on two streams of one connection).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QuicThroughputReport {
    /// The direction(s) tested.
    pub direction: Option<Direction>,
    /// Planned duration of each direction, s.
    pub duration_s: f64,
    /// Width of the intervals, s.
    pub interval_s: f64,
    /// Near end to far end (upload), if tested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<QuicDirectionReport>,
    /// Far end to near end (download, the far end sends), if tested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<QuicDirectionReport>,
}

/// One direction of the throughput test: the receiver's counts, the sender's path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QuicDirectionReport {
    /// Bits per second received.
    pub bits_per_second: f64,
    /// Bytes received.
    pub bytes: u64,
    /// From the first to the last byte at the receiver, s.
    pub seconds: f64,
    /// Bytes received per interval.
    pub intervals: Vec<ThroughputInterval>,
    /// The sender's path statistics at the end (cwnd, losses, congestion events).
    pub sender_path: PathReport,
}

impl QuicDirectionReport {
    /// A direction's report from the receiver's byte slices and the sender's path.
    pub fn new(
        bytes: u64,
        elapsed_ns: u64,
        slice_ns: u64,
        slices: &[u64],
        sender_path: PathReport,
    ) -> Self {
        let elapsed = std::time::Duration::from_nanos(elapsed_ns);
        QuicDirectionReport {
            bits_per_second: crate::tcp::bits_per_second(bytes, elapsed),
            bytes,
            seconds: elapsed.as_secs_f64(),
            intervals: crate::tcp::intervals(slices, slice_ns, elapsed),
            sender_path,
        }
    }
}

/// Merges byte `slices` of width `slice_ns` into slices about `every` wide (a whole number of
/// the original slices, at least one); the merged slices and their width, ns.
pub fn regroup(slices: &[u64], slice_ns: u64, every: std::time::Duration) -> (Vec<u64>, u64) {
    if slice_ns == 0 {
        return (slices.to_vec(), slice_ns);
    }
    let every_ns = u64::try_from(every.as_nanos()).unwrap_or(u64::MAX);
    let group = ((every_ns + slice_ns / 2) / slice_ns).max(1);
    let size = usize::try_from(group).unwrap_or(usize::MAX);
    let merged = slices.chunks(size).map(|c| c.iter().sum()).collect();
    (merged, slice_ns.saturating_mul(group))
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // The rates here are exact in binary floating point.
mod tests {
    use super::*;

    #[test]
    fn direction_rates_come_from_the_receiver() {
        // 2.5 MB over 200 ms is 100 Mbit/s; the second interval is cut at 200 ms.
        let d = QuicDirectionReport::new(
            2_500_000,
            200_000_000,
            150_000_000,
            &[1_875_000, 625_000],
            PathReport::default(),
        );
        assert_eq!(d.bits_per_second, 100e6);
        assert_eq!(d.seconds, 0.2);
        assert_eq!(d.intervals.len(), 2);
        assert_eq!(d.intervals[0].bits_per_second, 100e6);
        assert_eq!(d.intervals[1].end_s, 0.2);
        assert_eq!(d.intervals[1].bits_per_second, 100e6);
    }

    #[test]
    fn regroup_merges_whole_slices() {
        let ms = 1_000_000;
        let (v, w) = regroup(
            &[1, 2, 3, 4, 5],
            100 * ms,
            std::time::Duration::from_millis(200),
        );
        assert_eq!((v, w), (vec![3, 7, 5], 200 * ms));
        // Narrower than a slice: the slices stay as they are.
        let (v, w) = regroup(&[1, 2], 100 * ms, std::time::Duration::from_millis(10));
        assert_eq!((v, w), (vec![1, 2], 100 * ms));
        assert_eq!(regroup(&[1], 0, std::time::Duration::from_secs(1)).1, 0);
    }

    #[test]
    fn empty_sections_leave_the_json() {
        let text = serde_json::to_string(&QuicReport::default()).expect("json");
        assert!(
            !text.contains("throughput") && !text.contains("datagrams"),
            "{text}"
        );
        let r = QuicReport {
            rtt_ms: Some(None),
            ..QuicReport::default()
        };
        let text = serde_json::to_string(&r).expect("json");
        assert!(text.contains(r#""rtt_ms":null"#), "{text}");
    }
}
