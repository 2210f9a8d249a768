//! The result of an agent-to-agent (STAMP) test. Its JSON is a public contract: field names
//! are pinned by a test, missing values (nothing received) are `null`, never NaN.
//!
//! Directions: `forward` is toward the peer (sender to reflector), `reverse` is back. Delays
//! are in milliseconds, `schedule_error_us` in microseconds.

use serde::{Deserialize, Serialize};

use crate::stats::Summary;
use crate::time::ClockMode;

pub use crate::time::TimestampSource;

/// One direction of the test.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DirectionReport {
    /// Packets that entered this direction (forward: sent; reverse: reflected).
    pub sent: u64,
    /// Distinct packets that came through (forward: reached the reflector; reverse: replies
    /// received in time).
    pub received: u64,
    /// `sent - received`; `null` when the reflector's numbering does not allow the
    /// forward/reverse split (see `loss_pct`).
    pub lost: Option<u64>,
    /// Loss in percent of `sent`; `null` when nothing was sent or the split is unknown.
    pub loss_pct: Option<f64>,
    /// One-way delay; `null` without samples or without a clock offset.
    pub delay_ms: Option<Summary>,
    /// RFC 3550 interarrival jitter.
    pub jitter_ms: Option<f64>,
    /// Mean of |IPDV| over consecutively numbered packets (RFC 5481).
    pub ipdv_ms: Option<f64>,
    /// Distribution of |IPDV|.
    pub ipdv_abs_ms: Option<Summary>,
    /// Duplicate arrivals.
    pub duplicates: u64,
    /// Reordered arrivals (RFC 4737).
    pub reordered: u64,
}

/// What decided the clock mode (the report's `clock.basis`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClockBasis {
    /// The mode was forced by the caller (`configured`).
    Configured,
    /// The peer answered probe's clock TLV (`tlv`).
    Tlv,
    /// The peer's STAMP Error Estimate S bits (`error_estimate`).
    ErrorEstimate,
    /// The peer's clock facts came over the control plane (`control`).
    Control,
    /// Nothing known of the peer's clock (`none`).
    None,
}

impl ClockBasis {
    /// The name in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            ClockBasis::Configured => "configured",
            ClockBasis::Tlv => "tlv",
            ClockBasis::ErrorEstimate => "error_estimate",
            ClockBasis::Control => "control",
            ClockBasis::None => "none",
        }
    }
}

impl std::fmt::Display for ClockBasis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the two ends' clocks were related.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClockReport {
    /// `shared`, `synced` or `estimated`.
    pub mode: ClockMode,
    /// What decided the mode: `configured`, `tlv` (the peer answered probe's clock TLV),
    /// `error_estimate` (the peer's STAMP Error Estimate S bits) or `none`.
    pub basis: ClockBasis,
    /// Peer clock minus local clock applied to one-way delays, ms (0 for shared and synced).
    pub offset_ms: Option<f64>,
    /// Bound on the one-way delay error from the clocks, ms.
    pub error_ms: Option<f64>,
    /// Estimated rate difference of the clocks, parts per million (estimated mode only).
    pub drift_ppm: Option<f64>,
    /// What the one-way figures assume.
    pub note: Option<String>,
}

/// Schedule error: actual send time minus planned send time (all `null` for `--rate max`,
/// which has no schedule).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScheduleErrorReport {
    /// Mean, µs.
    pub mean: Option<f64>,
    /// Median, µs (histogram, 3 significant digits).
    #[serde(default)]
    pub p50: Option<f64>,
    /// 99th percentile, µs.
    #[serde(default)]
    pub p99: Option<f64>,
    /// Largest, µs.
    pub max: Option<f64>,
}

/// One direction within an interval report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IntervalDirection {
    /// Packets that entered this direction in the interval.
    pub sent: u64,
    /// Of those, packets that came through.
    pub received: u64,
    /// `sent - received` (never negative).
    pub lost: u64,
    /// Loss in percent; `null` when nothing was sent.
    pub loss_pct: Option<f64>,
    /// RFC 3550 jitter at the end of the interval (a running estimate), ms.
    pub jitter_ms: Option<f64>,
}

/// What happened in one reporting interval of a running test (`--report-interval`).
///
/// Counts are taken at the interval's end: packets sent within the last round trip before it
/// count in the next interval, so that their replies can arrive. Loss in one interval is
/// therefore close to, not exactly, the loss of the packets sent in it; the final report is
/// exact.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IntervalReport {
    /// Start of the interval, seconds since the first test packet was due.
    pub start_s: f64,
    /// End of the interval, seconds.
    pub end_s: f64,
    /// Test packets sent.
    pub sent: u64,
    /// Distinct replies received in time.
    pub received: u64,
    /// Round-trip loss, `sent - received` (never negative).
    pub lost: u64,
    /// Round-trip loss in percent; `null` when nothing was sent.
    pub loss_pct: Option<f64>,
    /// Toward the peer (split by the reflector's numbers).
    pub forward: IntervalDirection,
    /// Back from the peer.
    pub reverse: IntervalDirection,
    /// Median round-trip time of the replies received in the interval, ms.
    pub rtt_p50_ms: Option<f64>,
    /// Send rate in the interval, packets per second.
    pub pps: Option<f64>,
}

/// The report of one agent-to-agent test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct A2aReport {
    /// The peer as the user named it.
    pub peer: String,
    /// STAMP Session-Sender Identifier of the test.
    pub ssid: u16,
    /// UDP payload size of test packets, octets.
    pub size: usize,
    /// Planned interval between packets, ms.
    pub interval_ms: f64,
    /// Time from the first to the last packet sent, s.
    pub duration_s: f64,
    /// Test packets sent.
    pub sent: u64,
    /// Distinct test packets answered in time.
    pub received: u64,
    /// Round-trip loss: `sent - received`.
    pub lost: u64,
    /// Round-trip loss in percent; `null` when nothing was sent.
    pub loss_pct: Option<f64>,
    /// Replies that came after the timeout (counted as lost).
    pub late: u64,
    /// Datagrams ignored: malformed, other sessions, unknown sequence numbers.
    pub ignored: u64,
    /// Achieved send rate, packets per second (`null` under two packets).
    pub pps: Option<f64>,
    /// Round-trip time without the reflector's turnaround: `(t4 - t1) - (t3 - t2)`.
    pub rtt_ms: Option<Summary>,
    /// Round-trip time as user space sees it, the reflector's turnaround included: from the
    /// time read just before the send call to the time read when the receive call returned
    /// (what a user-space ping-pong such as sockperf measures). Never below `rtt_ms` for a
    /// packet. Absent for tests on the agent's shared socket, which reads replies when its
    /// timer wakes it rather than when they come (their kernel timestamps keep every other
    /// figure exact).
    #[serde(default)]
    pub rtt_user_ms: Option<Summary>,
    /// Toward the peer.
    pub forward: DirectionReport,
    /// Back from the peer.
    pub reverse: DirectionReport,
    /// Clock relation behind the one-way figures.
    pub clock: ClockReport,
    /// `kernel` or `user`.
    pub timestamps: TimestampSource,
    /// Send schedule error.
    pub schedule_error_us: ScheduleErrorReport,
    /// Interval reports, when asked for (`--report-interval`, or collected by the caller);
    /// empty otherwise.
    #[serde(default)]
    pub intervals: Vec<IntervalReport>,
    /// Voice quality per direction (`probe a2a --profile voice`); `null` otherwise.
    #[serde(default)]
    pub voice: Option<super::VoiceReport>,
    /// The test ran in STAMP authenticated mode (RFC 8762, `--stamp-key-file`).
    #[serde(default)]
    pub authenticated: bool,
    /// Replies dropped for a wrong or missing HMAC (authenticated mode; they count as lost).
    #[serde(default)]
    pub auth_failed: u64,
    /// The test over time in at most 1000 buckets (`probe a2a --timeline`, `--html`); absent
    /// from the JSON unless asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<super::Timeline>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        if let Some(map) = v.as_object() {
            for (k, child) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.push(path.clone());
                keys(child, &path, out);
            }
        }
    }

    fn summary() -> Summary {
        Summary {
            min: 1.0,
            mean: 2.0,
            p50: 2.0,
            p90: 3.0,
            p99: 3.5,
            max: 4.0,
            stddev: 0.5,
        }
    }

    fn direction() -> DirectionReport {
        DirectionReport {
            sent: 10,
            received: 9,
            lost: Some(1),
            loss_pct: Some(10.0),
            delay_ms: Some(summary()),
            jitter_ms: Some(0.1),
            ipdv_ms: Some(0.2),
            ipdv_abs_ms: Some(summary()),
            duplicates: 0,
            reordered: 0,
        }
    }

    fn report() -> A2aReport {
        A2aReport {
            peer: "127.0.0.1:49153".into(),
            ssid: 7,
            size: 44,
            interval_ms: 10.0,
            duration_s: 0.09,
            sent: 10,
            received: 9,
            lost: 1,
            loss_pct: Some(10.0),
            late: 0,
            ignored: 0,
            pps: Some(100.0),
            rtt_ms: Some(summary()),
            rtt_user_ms: Some(summary()),
            forward: direction(),
            reverse: direction(),
            clock: ClockReport {
                mode: ClockMode::Estimated,
                basis: ClockBasis::None,
                offset_ms: Some(0.5),
                error_ms: Some(0.1),
                drift_ppm: Some(0.0),
                note: Some("assumes symmetric minimum delay".into()),
            },
            timestamps: TimestampSource::Kernel,
            schedule_error_us: ScheduleErrorReport {
                mean: Some(3.0),
                p50: Some(2.0),
                p99: Some(8.0),
                max: Some(9.0),
            },
            intervals: vec![IntervalReport {
                start_s: 0.0,
                end_s: 1.0,
                sent: 10,
                received: 9,
                lost: 1,
                loss_pct: Some(10.0),
                forward: IntervalDirection::default(),
                reverse: IntervalDirection::default(),
                rtt_p50_ms: Some(2.0),
                pps: Some(10.0),
            }],
            voice: None,
            authenticated: false,
            auth_failed: 0,
            timeline: None,
        }
    }

    #[test]
    fn json_field_names_are_pinned() {
        let v = serde_json::to_value(report()).expect("json");
        let mut got = Vec::new();
        keys(&v, "", &mut got);
        got.sort();
        let summary_keys = ["max", "mean", "min", "p50", "p90", "p99", "stddev"];
        let mut want: Vec<String> = [
            "peer",
            "ssid",
            "size",
            "interval_ms",
            "duration_s",
            "sent",
            "received",
            "lost",
            "loss_pct",
            "late",
            "ignored",
            "pps",
            "rtt_ms",
            "rtt_user_ms",
            "forward",
            "reverse",
            "clock",
            "timestamps",
            "schedule_error_us",
            "clock.mode",
            "clock.basis",
            "clock.offset_ms",
            "clock.error_ms",
            "clock.drift_ppm",
            "clock.note",
            "schedule_error_us.mean",
            "schedule_error_us.p50",
            "schedule_error_us.p99",
            "schedule_error_us.max",
            "intervals",
            "voice",
            "authenticated",
            "auth_failed",
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        want.extend(summary_keys.iter().map(|k| format!("rtt_ms.{k}")));
        want.extend(summary_keys.iter().map(|k| format!("rtt_user_ms.{k}")));
        for dir in ["forward", "reverse"] {
            for k in [
                "sent",
                "received",
                "lost",
                "loss_pct",
                "delay_ms",
                "jitter_ms",
                "ipdv_ms",
                "ipdv_abs_ms",
                "duplicates",
                "reordered",
            ] {
                want.push(format!("{dir}.{k}"));
            }
            for s in ["delay_ms", "ipdv_abs_ms"] {
                want.extend(summary_keys.iter().map(|k| format!("{dir}.{s}.{k}")));
            }
        }
        want.sort();
        assert_eq!(got, want);
        let mut interval_keys = Vec::new();
        keys(&v["intervals"][0], "", &mut interval_keys);
        interval_keys.sort();
        let dir_keys = ["jitter_ms", "loss_pct", "lost", "received", "sent"];
        let mut want_interval: Vec<String> = [
            "start_s",
            "end_s",
            "sent",
            "received",
            "lost",
            "loss_pct",
            "forward",
            "reverse",
            "rtt_p50_ms",
            "pps",
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        for dir in ["forward", "reverse"] {
            want_interval.extend(dir_keys.iter().map(|k| format!("{dir}.{k}")));
        }
        want_interval.sort();
        assert_eq!(interval_keys, want_interval);
        assert_eq!(v["clock"]["mode"], "estimated");
        assert_eq!(v["timestamps"], "kernel");
    }

    #[test]
    fn clock_basis_strings_are_pinned() {
        for (basis, text) in [
            (ClockBasis::Configured, "configured"),
            (ClockBasis::Tlv, "tlv"),
            (ClockBasis::ErrorEstimate, "error_estimate"),
            (ClockBasis::None, "none"),
        ] {
            assert_eq!(serde_json::to_value(basis).expect("json"), text);
            assert_eq!(basis.to_string(), text);
            let back: ClockBasis = serde_json::from_value(text.into()).expect("parse");
            assert_eq!(back, basis);
        }
    }

    #[test]
    fn missing_values_are_null_and_round_trip() {
        let mut r = report();
        r.rtt_ms = None;
        r.forward = DirectionReport::default();
        r.pps = None;
        let v = serde_json::to_value(&r).expect("json");
        assert!(v["rtt_ms"].is_null());
        assert!(v["pps"].is_null());
        assert!(v["forward"]["delay_ms"].is_null());
        assert!(v["forward"]["loss_pct"].is_null());
        let text = serde_json::to_string(&r).expect("json");
        assert!(!text.contains("NaN"));
        let back: A2aReport = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, r);
    }
}
