//! Results of the UDP throughput test (`probe a2a --throughput`, UDP): what each end's
//! counting receiver saw, what each sender offered, and the per-direction report built from
//! the two.

use serde::{Deserialize, Serialize};

use crate::a2a::Direction;
use crate::stats::Summary;
use crate::time::ClockMode;

/// What a counting receiver saw of one direction (constant size but for the interval rows).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReceiverCounts {
    /// Datagrams of the session received, duplicates included.
    pub received: u64,
    /// UDP payload octets of those datagrams.
    pub bytes: u64,
    /// Distinct datagrams received.
    pub unique: u64,
    /// Datagrams received more than once (the repeats).
    pub duplicates: u64,
    /// Datagrams that arrived after a higher-numbered one (RFC 4737).
    pub reordered: u64,
    /// Receive time of the first datagram, ns since the UNIX epoch (0: none yet).
    pub first_rx_ns: u64,
    /// Receive time of the last datagram, ns since the UNIX epoch.
    pub last_rx_ns: u64,
    /// Receive time minus send time of the timestamped samples, ms, on the receiver's clock
    /// against the sender's (not corrected for an offset between them).
    pub owd_raw_ms: Option<Summary>,
    /// Timestamped samples received.
    pub owd_samples: u64,
    /// Width of the interval rows, s (0: no rows).
    pub interval_s: f64,
    /// Receive counts per interval from the first datagram on.
    pub intervals: Vec<ReceiveInterval>,
}

/// One interval of a counting receiver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceiveInterval {
    /// Start, s after the first datagram.
    pub start_s: f64,
    /// End, s.
    pub end_s: f64,
    /// Datagrams received in the interval.
    pub received: u64,
    /// UDP payload octets received in the interval.
    pub bytes: u64,
}

/// What a sender handed to the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SenderCounts {
    /// Datagrams the kernel accepted.
    pub sent: u64,
    /// UDP payload octets of those.
    pub bytes: u64,
    /// Datagrams the kernel refused (full queues on the way out): never on the wire.
    pub send_failed: u64,
    /// From the first send to the last, ns.
    pub elapsed_ns: u64,
    /// The first refusal's message, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

/// The clock facts the one-way delays of a throughput test rest on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThroughputClock {
    /// `shared` (one kernel: exact), `synced` (both synchronized: within `error_ms`) or
    /// `estimated` (neither: no one-way delay is reported, the clocks' offset is unknown).
    pub mode: ClockMode,
    /// Bound on the one-way delay error from the clocks, ms, when known.
    pub error_ms: Option<f64>,
    /// What the one-way delays assume.
    pub note: String,
}

/// One direction of a UDP throughput test.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UdpDirectionReport {
    /// Datagrams the sender handed to the kernel.
    pub sent: u64,
    /// Datagrams the sender's kernel refused (never sent, not counted as loss).
    pub send_failed: u64,
    /// Sent datagrams per second of sending.
    pub offered_pps: f64,
    /// UDP payload bits per second sent.
    pub offered_bps: f64,
    /// Datagrams received (duplicates included).
    pub received: u64,
    /// Distinct datagrams received per second of sending.
    pub received_pps: f64,
    /// UDP payload bits per second received (distinct datagrams).
    pub received_bps: f64,
    /// Sent datagrams that never arrived.
    pub lost: u64,
    /// `lost` as a percentage of `sent`.
    pub loss_pct: Option<f64>,
    /// Datagrams that arrived more than once.
    pub duplicates: u64,
    /// Datagrams that arrived after a higher-numbered one (RFC 4737).
    pub reordered: u64,
    /// Sending time, s.
    pub seconds: f64,
    /// One-way delay of the timestamped samples, ms (`null` in clock mode `estimated`).
    pub owd_ms: Option<Summary>,
    /// Timestamped samples received.
    pub owd_samples: u64,
    /// Per-interval receive rates.
    pub intervals: Vec<UdpInterval>,
}

/// One interval row of a direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UdpInterval {
    /// Start, s after the first datagram arrived.
    pub start_s: f64,
    /// End, s.
    pub end_s: f64,
    /// Datagrams received.
    pub received: u64,
    /// Datagrams per second.
    pub received_pps: f64,
    /// UDP payload bits per second.
    pub received_bps: f64,
}

/// Both directions of a UDP throughput test.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThroughputSection {
    /// Near end to far end, counted by the far end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<UdpDirectionReport>,
    /// Far end to near end, counted here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<UdpDirectionReport>,
}

/// A UDP throughput test (`probe a2a --throughput`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UdpThroughputReport {
    /// The peer as given.
    pub peer: String,
    /// The address tested.
    pub address: String,
    /// The direction(s) tested.
    pub direction: Direction,
    /// The rate asked for, datagrams/s; `null` for `--rate max`.
    pub rate_pps: Option<f64>,
    /// UDP payload size, octets.
    pub size: usize,
    /// Planned sending time, s.
    pub duration_s: f64,
    /// Every how many datagrams one carries a send timestamp.
    pub sample_every: u64,
    /// The clocks behind `owd_ms`.
    pub clock: ThroughputClock,
    /// Each direction's results.
    pub throughput: ThroughputSection,
    /// Why a direction has no results, when one failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl UdpDirectionReport {
    /// A direction from its sender's and its receiver's counts; `owd` says whether the
    /// clocks allow one-way delays.
    pub fn from_counts(sender: &SenderCounts, rx: &ReceiverCounts, size: usize, owd: bool) -> Self {
        let seconds = sender.elapsed_ns as f64 / 1e9;
        let per_s = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        let bits = (size * 8) as f64;
        let lost = sender.sent.saturating_sub(rx.unique);
        let intervals = rx
            .intervals
            .iter()
            .map(|i| {
                let w = (i.end_s - i.start_s).max(1e-9);
                UdpInterval {
                    start_s: i.start_s,
                    end_s: i.end_s,
                    received: i.received,
                    received_pps: i.received as f64 / w,
                    received_bps: i.bytes as f64 * 8.0 / w,
                }
            })
            .collect();
        UdpDirectionReport {
            sent: sender.sent,
            send_failed: sender.send_failed,
            offered_pps: per_s(sender.sent),
            offered_bps: per_s(sender.sent) * bits,
            received: rx.received,
            received_pps: per_s(rx.unique),
            received_bps: per_s(rx.unique) * bits,
            lost,
            loss_pct: crate::stats::loss_pct(lost, sender.sent),
            duplicates: rx.duplicates,
            reordered: rx.reordered,
            seconds,
            owd_ms: if owd { rx.owd_raw_ms } else { None },
            owd_samples: rx.owd_samples,
            intervals,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::float_cmp)] // The rates here are exact quotients.
    fn a_direction_is_built_from_both_ends_counts() {
        let s = SenderCounts {
            sent: 1000,
            bytes: 64_000,
            send_failed: 3,
            elapsed_ns: 500_000_000,
            first_error: None,
        };
        let rx = ReceiverCounts {
            received: 952,
            unique: 950,
            duplicates: 2,
            reordered: 4,
            owd_raw_ms: Some(Summary {
                p50: 0.1,
                ..Summary::default()
            }),
            owd_samples: 15,
            intervals: vec![ReceiveInterval {
                start_s: 0.0,
                end_s: 0.25,
                received: 500,
                bytes: 32_000,
            }],
            ..ReceiverCounts::default()
        };
        let d = UdpDirectionReport::from_counts(&s, &rx, 64, true);
        assert_eq!((d.lost, d.loss_pct), (50, Some(5.0)));
        assert_eq!(d.offered_pps, 2000.0);
        assert_eq!(d.received_pps, 1900.0);
        assert_eq!(d.received_bps, 1900.0 * 512.0);
        assert_eq!(d.intervals[0].received_pps, 2000.0);
        assert!(d.owd_ms.is_some());
        let hidden = UdpDirectionReport::from_counts(&s, &rx, 64, false);
        assert!(hidden.owd_ms.is_none() && hidden.owd_samples == 15);
    }
}
