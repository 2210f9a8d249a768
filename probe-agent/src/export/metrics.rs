//! The agent's Prometheus metrics, fed from its result records.
//!
//! Every series carries the labels `test` and `peer` (the peer measured, else the target as
//! configured), and `direction` (`forward`: toward the peer, `reverse`: back from it,
//! `round_trip`) where it has one. A run yields one record, and one record is a summary of
//! many packets, not the packets themselves. The delay histograms are fed from that summary
//! so that they stay honest:
//!
//! - every received packet counts once: a run of `received` packets adds exactly `received`
//!   observations, and the histogram's `_count` is the number of packets measured;
//! - the packets are split into the bands the summary knows (the fastest one; up to the
//!   median; median to p90; p90 to p99; p99 to the slowest) in their true proportions, and
//!   each band's packets are observed at the band's upper edge. A packet is therefore never
//!   counted in a bucket faster than it was: a `histogram_quantile` over these buckets never
//!   understates the delay, and is exact at the summary's own quantiles;
//! - `_sum` is therefore the sum of the band edges: an upper bound of the true sum, within
//!   `(max − min)` per packet; the run's mean is in `/results`.
//!
//! Series of a peer that left the mesh, or that has had no result for three of its
//! intervals, are removed ([`Metrics::forget_peers_not_in`], [`Metrics::sweep`]).

use std::collections::{BTreeSet, HashMap};
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde_json::Value;

use crate::record::ResultRecord;
use crate::state::Peers;

/// The directions a per-direction series may carry.
pub const DIRECTIONS: [&str; 3] = ["forward", "reverse", "round_trip"];

/// A series without a result for this many of its intervals is removed.
const STALE_INTERVALS: u32 = 3;

/// The stale age of a series whose interval is not known yet (one result so far).
const STALE_UNKNOWN: Duration = Duration::from_secs(600);

/// A label value that the series of one test and peer share: one allocation for the dozen
/// series of a peer rather than one each (an agent of a large mesh has thousands of peers).
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct Label(Arc<str>);

impl Label {
    /// The value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Label {
    fn from(s: &str) -> Self {
        Label(Arc::from(s))
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl EncodeLabelValue for Label {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        encoder.write_str(&self.0)
    }
}

/// Labels of a per-peer series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct PeerLabels {
    /// The test's name.
    pub test: Label,
    /// The peer measured (`ADDR:PORT`), else the configured target.
    pub peer: Label,
}

/// Labels of a per-direction series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    /// The test's name.
    pub test: Label,
    /// The peer measured, else the configured target.
    pub peer: Label,
    /// `forward`, `reverse` or `round_trip`.
    pub direction: &'static str,
}

/// Labels of the up/down series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SuccessLabels {
    /// The test's name.
    pub test: Label,
    /// The peer measured, else the configured target.
    pub peer: Label,
    /// The failure class of the last run (`ErrorClass::as_str`), empty when it succeeded.
    pub reason: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type GaugeFamily<L> = Family<L, Gauge<f64, std::sync::atomic::AtomicU64>>;

/// Delay buckets, seconds: 10 µs doubling up to about 2.6 s (19 buckets).
fn delay_histogram() -> Histogram {
    Histogram::new(exponential_buckets(10e-6, 2.0, 19))
}

#[derive(Debug)]
struct Track {
    /// The series measure a peer (a mesh address or member), not a configured target.
    peer: bool,
    last: Instant,
    gap: Option<Duration>,
    reason: &'static str,
}

/// The metric families and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    success: GaugeFamily<SuccessLabels>,
    loss: GaugeFamily<DirectionLabels>,
    delay: HistogramFamily<DirectionLabels>,
    jitter: GaugeFamily<DirectionLabels>,
    rtt: HistogramFamily<PeerLabels>,
    throughput: GaugeFamily<PeerLabels>,
    handshake: HistogramFamily<PeerLabels>,
    quic_throughput: GaugeFamily<DirectionLabels>,
    hops: GaugeFamily<PeerLabels>,
    runs: Family<PeerLabels, Counter>,
    failures: Family<PeerLabels, Counter>,
    tracks: Mutex<HashMap<PeerLabels, Track>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics with every family registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let success = GaugeFamily::<SuccessLabels>::default();
        let loss = GaugeFamily::<DirectionLabels>::default();
        let delay = HistogramFamily::<DirectionLabels>::new_with_constructor(delay_histogram);
        let jitter = GaugeFamily::<DirectionLabels>::default();
        let rtt = HistogramFamily::<PeerLabels>::new_with_constructor(delay_histogram);
        let throughput = GaugeFamily::<PeerLabels>::default();
        let hops = GaugeFamily::<PeerLabels>::default();
        let handshake = HistogramFamily::<PeerLabels>::new_with_constructor(delay_histogram);
        let quic_throughput = GaugeFamily::<DirectionLabels>::default();
        let runs = Family::<PeerLabels, Counter>::default();
        let failures = Family::<PeerLabels, Counter>::default();
        registry.register(
            "probe_success",
            "Whether the last run succeeded (1) or failed (0, reason = the failure class)",
            success.clone(),
        );
        registry.register(
            "probe_loss_ratio",
            "Packet loss of the last run per direction (0 to 1)",
            loss.clone(),
        );
        registry.register(
            "probe_one_way_delay_seconds",
            "One-way delay per direction, every received packet once (see the README)",
            delay.clone(),
        );
        registry.register(
            "probe_jitter_seconds",
            "Jitter (RFC 3550) of the last run per direction",
            jitter.clone(),
        );
        registry.register(
            "probe_rtt_seconds",
            "Round-trip time without the reflector's turnaround, every received packet once",
            rtt.clone(),
        );
        registry.register(
            "probe_throughput_bytes_per_second",
            "Bytes delivered per second by the last run's test stream",
            throughput.clone(),
        );
        registry.register(
            "probe_handshake_seconds",
            "QUIC handshake time of a2a tests with proto quic, every completed handshake once",
            handshake.clone(),
        );
        registry.register(
            "probe_quic_throughput_bytes_per_second",
            "Bytes per second of the last QUIC throughput run per direction",
            quic_throughput.clone(),
        );
        registry.register(
            "probe_hops",
            "Hop count to the peer of the last trace that reached it",
            hops.clone(),
        );
        registry.register("probe_runs", "Test runs recorded", runs.clone());
        registry.register("probe_failures", "Test runs that failed", failures.clone());
        Self {
            registry,
            success,
            loss,
            delay,
            jitter,
            rtt,
            throughput,
            handshake,
            quic_throughput,
            hops,
            runs,
            failures,
            tracks: Mutex::new(HashMap::new()),
        }
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Updates the series of `record`'s test and peer from it. A skipped run measured
    /// nothing and changes nothing.
    pub fn observe(&self, record: &ResultRecord) {
        if record.error_class == Some(crate::record::ErrorClass::Skipped) {
            // Nothing was measured: the series keep the last run that was.
            return;
        }
        let key = PeerLabels {
            test: record.test.as_str().into(),
            peer: record.peer.as_deref().unwrap_or(&record.target).into(),
        };
        let reason = match (record.ok, record.error_class) {
            (true, _) => "",
            (false, Some(c)) => c.as_str(),
            (false, None) => "other",
        };
        let key = {
            let mut tracks = self.tracks.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            // The labels the series already have, shared (a new peer's become them).
            let key = tracks
                .get_key_value(&key)
                .map_or(key, |(known, _)| known.clone());
            let track = tracks.entry(key.clone()).or_insert(Track {
                peer: record.peer.is_some(),
                last: now,
                gap: None,
                reason,
            });
            if track.last != now {
                track.gap = Some(now.duration_since(track.last));
            }
            track.last = now;
            if track.reason != reason {
                self.success
                    .remove(&self.success_labels(&key, track.reason));
                track.reason = reason;
            }
            key
        };
        self.success
            .get_or_create(&self.success_labels(&key, reason))
            .set(if record.ok { 1.0 } else { 0.0 });
        self.runs.get_or_create(&key).inc();
        if !record.ok {
            self.failures.get_or_create(&key).inc();
        }
        let report = &record.report;
        if report.is_null() {
            return;
        }
        let dir = |d: &'static str| DirectionLabels {
            test: key.test.clone(),
            peer: key.peer.clone(),
            direction: d,
        };
        if let Some(pct) = report.get("loss_pct").and_then(Value::as_f64) {
            self.loss.get_or_create(&dir("round_trip")).set(pct / 100.0);
        }
        for d in ["forward", "reverse"] {
            let Some(side) = report.get(d) else { continue };
            if let Some(pct) = side.get("loss_pct").and_then(Value::as_f64) {
                self.loss.get_or_create(&dir(d)).set(pct / 100.0);
            }
            if let Some(j) = side.get("jitter_ms").and_then(Value::as_f64) {
                self.jitter.get_or_create(&dir(d)).set(j / 1e3);
            }
            let received = side.get("received").and_then(Value::as_u64).unwrap_or(0);
            if let Some(s) = side.get("delay_ms") {
                observe_summary(&self.delay.get_or_create(&dir(d)), s, received);
            }
        }
        let received = report.get("received").and_then(Value::as_u64).unwrap_or(0);
        if let Some(s) = report.get("rtt_ms").filter(|s| s.is_object()) {
            observe_summary(&self.rtt.get_or_create(&key), s, received);
        }
        let size = report.get("size").and_then(Value::as_f64);
        let secs = report.get("duration_s").and_then(Value::as_f64);
        if let (Some(size), Some(secs)) = (size, secs.filter(|s| *s > 0.0)) {
            #[allow(clippy::cast_precision_loss)]
            let bytes = received as f64 * size;
            self.throughput.get_or_create(&key).set(bytes / secs);
        }
        if let Some(q) = report.get("quic") {
            let ok = q.get("handshakes_ok").and_then(Value::as_u64).unwrap_or(0);
            if let Some(s) = q.get("handshake_ms").filter(|s| s.is_object()) {
                observe_summary(&self.handshake.get_or_create(&key), s, ok);
            }
            for (leg, d) in [("to", "forward"), ("from", "reverse")] {
                let at = format!("/throughput/{leg}/bits_per_second");
                if let Some(bps) = q.pointer(&at).and_then(Value::as_f64) {
                    self.quic_throughput.get_or_create(&dir(d)).set(bps / 8.0);
                }
            }
        }
        if record.kind == "trace" {
            let reached = report.get("reached").and_then(Value::as_bool) == Some(true);
            let last_ttl = report
                .get("hops")
                .and_then(Value::as_array)
                .and_then(|h| h.last())
                .and_then(|h| h.get("ttl"))
                .and_then(Value::as_f64);
            match last_ttl.filter(|_| reached) {
                Some(ttl) => {
                    self.hops.get_or_create(&key).set(ttl);
                }
                None => {
                    self.hops.remove(&key);
                }
            }
        }
    }

    fn success_labels(&self, key: &PeerLabels, reason: &'static str) -> SuccessLabels {
        let _ = self;
        SuccessLabels {
            test: key.test.clone(),
            peer: key.peer.clone(),
            reason,
        }
    }

    /// Removes every series of `key`.
    fn forget(&self, key: &PeerLabels, reason: &'static str) {
        self.success.remove(&self.success_labels(key, reason));
        for d in DIRECTIONS {
            let labels = DirectionLabels {
                test: key.test.clone(),
                peer: key.peer.clone(),
                direction: d,
            };
            self.loss.remove(&labels);
            self.delay.remove(&labels);
            self.jitter.remove(&labels);
            self.quic_throughput.remove(&labels);
        }
        self.handshake.remove(key);
        self.rtt.remove(key);
        self.throughput.remove(key);
        self.hops.remove(key);
        self.runs.remove(key);
        self.failures.remove(key);
    }

    /// Removes the series of every peer that is no longer in `peers` (a peer that left the
    /// mesh, or a test removed by a reload). Series whose peer label is a configured target
    /// (a test without peers, such as `http`) are left to [`Metrics::sweep`].
    pub fn forget_peers_not_in(&self, peers: &Peers) {
        let mut tracks = self.tracks.lock().unwrap_or_else(PoisonError::into_inner);
        tracks.retain(|key, track| {
            let keep = !(track.peer || looks_like_peer(key.peer.as_str()))
                || peers
                    .get(key.test.as_str())
                    .is_some_and(|set| set.contains(key.peer.as_str()));
            if !keep {
                self.forget(key, track.reason);
            }
            keep
        });
    }

    /// Removes the series that had no result for three of their intervals (ten minutes
    /// while the interval is unknown). Returns the removed ones.
    pub fn sweep(&self, now: Instant) -> BTreeSet<PeerLabels> {
        let mut gone = BTreeSet::new();
        let mut tracks = self.tracks.lock().unwrap_or_else(PoisonError::into_inner);
        tracks.retain(|key, track| {
            let max_age = track.gap.map_or(STALE_UNKNOWN, |g| g * STALE_INTERVALS);
            let keep = now.saturating_duration_since(track.last) <= max_age;
            if !keep {
                self.forget(key, track.reason);
                gone.insert(key.clone());
            }
            keep
        });
        gone
    }
}

/// Whether a peer label is an `ADDR:PORT` the mesh hands out (rather than a configured URL
/// or name).
fn looks_like_peer(label: &str) -> bool {
    label.parse::<std::net::SocketAddr>().is_ok()
}

/// Adds a run's `received` packets to `h` from its summary (milliseconds), as the module
/// documentation describes.
fn observe_summary(h: &Histogram, summary: &Value, received: u64) {
    let get = |k: &str| summary.get(k).and_then(Value::as_f64);
    let (Some(min), Some(p50), Some(p90), Some(p99), Some(max)) =
        (get("min"), get("p50"), get("p90"), get("p99"), get("max"))
    else {
        return;
    };
    if received == 0 {
        return;
    }
    // Packets at or below each quantile, by the nearest-rank definition.
    let rank = |q: f64| -> u64 {
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let r = (q * received as f64).ceil() as u64;
        r.clamp(1, received)
    };
    let bands = [
        (min, 1),
        (p50, rank(0.50)),
        (p90, rank(0.90)),
        (p99, rank(0.99)),
        (max, received),
    ];
    let mut done = 0u64;
    for (edge_ms, upto) in bands {
        let edge = edge_ms / 1e3;
        while done < upto {
            h.observe(edge);
            done += 1;
        }
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
