//! Each end's view of the data streams, the results frame the server sends on the control
//! connection, and the merge of both views into a direction's report (sans-IO).
//!
//! Results frame: a 4-byte big-endian length, then that many bytes of JSON
//! ([`ServerResults`]); at most [`MAX_RESULTS_LEN`] bytes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::accounting::{ByteCounter, bits_per_second, sum_slices};
use super::tcp_info::TcpInfo;
use crate::report::tcp::{TcpDirectionReport, TcpStreamReport, ThroughputInterval};

/// Largest results frame accepted.
pub const MAX_RESULTS_LEN: usize = 4 << 20;

/// One end's view of one data stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEnd {
    /// Index of the stream in its test.
    pub stream: u16,
    /// Bytes this end received (receiver) or wrote (sender).
    pub bytes: u64,
    /// From the stream's start to its last byte, ns.
    pub elapsed_ns: u64,
    /// Width of `slices`, ns.
    pub slice_ns: u64,
    /// Bytes per slice.
    pub slices: Vec<u64>,
    /// `TCP_INFO` at the end (the sender's is the one reported).
    pub tcp_info: Option<TcpInfo>,
}

impl StreamEnd {
    /// The view `counter` holds, with `tcp_info`.
    pub fn new(stream: u16, counter: &ByteCounter, tcp_info: Option<TcpInfo>) -> Self {
        StreamEnd {
            stream,
            bytes: counter.total(),
            elapsed_ns: u64::try_from(counter.elapsed().as_nanos()).unwrap_or(u64::MAX),
            slice_ns: u64::try_from(counter.every().as_nanos()).unwrap_or(u64::MAX),
            slices: counter.slices().to_vec(),
            tcp_info,
        }
    }
}

/// What the server saw, sent on the control connection when the test's streams ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerResults {
    /// Streams the server received on (`to` direction).
    pub sink: Vec<StreamEnd>,
    /// Streams the server sent on (`from` direction).
    pub source: Vec<StreamEnd>,
}

/// Why a results frame is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The length is beyond [`MAX_RESULTS_LEN`].
    #[error("results frame of {0} bytes is beyond the {MAX_RESULTS_LEN}-byte limit")]
    TooLong(usize),
    /// The JSON does not decode.
    #[error("results frame does not decode: {0}")]
    Json(#[from] serde_json::Error),
}

impl ServerResults {
    /// The frame's bytes (length prefix and JSON).
    pub fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(json.len() + 4);
        out.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&json);
        out
    }

    /// The body length a frame's 4-byte header announces.
    pub fn body_len(header: [u8; 4]) -> Result<usize, ResultsError> {
        let n = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
        if n > MAX_RESULTS_LEN {
            return Err(ResultsError::TooLong(n));
        }
        Ok(n)
    }

    /// Decodes a frame's body.
    pub fn decode(body: &[u8]) -> Result<ServerResults, ResultsError> {
        Ok(serde_json::from_slice(body)?)
    }
}

fn ms(us: u32) -> f64 {
    f64::from(us) / 1e3
}

/// One direction's report from the receivers' and the senders' views, matched by stream index.
pub fn direction_report(receivers: &[StreamEnd], senders: &[StreamEnd]) -> TcpDirectionReport {
    let mut streams = Vec::with_capacity(receivers.len());
    for r in receivers {
        let info = senders
            .iter()
            .find(|s| s.stream == r.stream)
            .and_then(|s| s.tcp_info);
        let elapsed = Duration::from_nanos(r.elapsed_ns);
        streams.push(TcpStreamReport {
            stream: r.stream,
            bytes: r.bytes,
            seconds: elapsed.as_secs_f64(),
            bits_per_second: bits_per_second(r.bytes, elapsed),
            retransmits: info.map_or(0, |i| u64::from(i.total_retrans)),
            rtt_ms: info.map(|i| ms(i.rtt_us)),
            rttvar_ms: info.map(|i| ms(i.rttvar_us)),
            cwnd_bytes: info.map_or(0, |i| i.cwnd_bytes()),
            mss: info.map_or(0, |i| i.snd_mss),
            sender_tcp_info: info,
        });
    }
    streams.sort_by_key(|s| s.stream);
    let bytes = streams.iter().map(|s| s.bytes).sum();
    let elapsed = receivers
        .iter()
        .map(|r| r.elapsed_ns)
        .max()
        .map_or(Duration::ZERO, Duration::from_nanos);
    let rtts: Vec<f64> = streams.iter().filter_map(|s| s.rtt_ms).collect();
    let slice_ns = receivers.first().map_or(0, |r| r.slice_ns);
    let slices = sum_slices(receivers.iter().map(|r| r.slices.as_slice()));
    let intervals = intervals(&slices, slice_ns, elapsed);
    TcpDirectionReport {
        bits_per_second: bits_per_second(bytes, elapsed),
        bytes,
        seconds: elapsed.as_secs_f64(),
        retransmits: streams.iter().map(|s| s.retransmits).sum(),
        rtt_ms: (!rtts.is_empty()).then(|| rtts.iter().sum::<f64>() / rtts.len() as f64),
        cwnd_bytes: streams.iter().map(|s| s.cwnd_bytes).sum(),
        streams,
        intervals,
    }
}

/// The interval series of `slices` (the last one ends at `elapsed`, so a partial slice's
/// rate is over the time it covered).
pub(crate) fn intervals(
    slices: &[u64],
    slice_ns: u64,
    elapsed: Duration,
) -> Vec<ThroughputInterval> {
    if slice_ns == 0 {
        return Vec::new();
    }
    let width = Duration::from_nanos(slice_ns);
    let mut out = Vec::with_capacity(slices.len());
    for (i, &bytes) in slices.iter().enumerate() {
        let start = width * u32::try_from(i).unwrap_or(u32::MAX);
        let end = (start + width).min(elapsed.max(start));
        if end <= start {
            break;
        }
        out.push(ThroughputInterval {
            start_s: start.as_secs_f64(),
            end_s: end.as_secs_f64(),
            bytes,
            bits_per_second: bits_per_second(bytes, end.saturating_sub(start)),
        });
    }
    out
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // The rates here are exact in binary floating point.
mod tests {
    use super::*;

    fn end(
        stream: u16,
        bytes_per_slice: &[u64],
        elapsed_ms: u64,
        info: Option<TcpInfo>,
    ) -> StreamEnd {
        StreamEnd {
            stream,
            bytes: bytes_per_slice.iter().sum(),
            elapsed_ns: elapsed_ms * 1_000_000,
            slice_ns: 500_000_000,
            slices: bytes_per_slice.to_vec(),
            tcp_info: info,
        }
    }

    #[test]
    fn frame_round_trip_and_limit() {
        let r = ServerResults {
            sink: vec![end(0, &[10, 20], 1_000, None)],
            source: vec![],
        };
        let b = r.encode();
        let n = ServerResults::body_len([b[0], b[1], b[2], b[3]]).expect("len");
        assert_eq!(n, b.len() - 4);
        assert_eq!(ServerResults::decode(&b[4..]).expect("decode"), r);
        assert!(ServerResults::body_len(u32::MAX.to_be_bytes()).is_err());
        assert!(ServerResults::decode(b"{").is_err());
    }

    #[test]
    fn merges_receiver_bytes_with_sender_tcp_info() {
        let info = |retrans, rtt_us| TcpInfo {
            rtt_us,
            snd_cwnd: 10,
            snd_mss: 1_000,
            total_retrans: retrans,
            ..TcpInfo::default()
        };
        // Two streams of 1 s: 1.25 MB each in two half-second slices is 10 Mbit/s each.
        let rx = [
            end(1, &[625_000, 625_000], 1_000, None),
            end(0, &[600_000, 650_000], 1_000, None),
        ];
        let tx = [
            end(0, &[], 0, Some(info(2, 4_000))),
            end(1, &[], 0, Some(info(3, 6_000))),
        ];
        let d = direction_report(&rx, &tx);
        assert_eq!(d.bytes, 2_500_000);
        assert_eq!(d.bits_per_second, 20e6);
        assert_eq!(d.retransmits, 5);
        assert_eq!(d.rtt_ms, Some(5.0));
        assert_eq!(d.cwnd_bytes, 20_000);
        assert_eq!(d.streams[0].stream, 0);
        assert_eq!(d.streams[1].bits_per_second, 10e6);
        assert_eq!(d.intervals.len(), 2);
        assert_eq!(d.intervals[0].bytes, 1_225_000);
        assert_eq!(d.intervals[1].end_s, 1.0);
        assert_eq!(d.intervals[1].bits_per_second, 1_275_000.0 * 8.0 / 0.5);
    }

    #[test]
    fn a_partial_last_slice_is_rated_over_its_own_time() {
        let d = direction_report(&[end(0, &[500, 100], 750, None)], &[]);
        assert_eq!(d.intervals[1].end_s, 0.75);
        assert_eq!(d.intervals[1].bits_per_second, 100.0 * 8.0 / 0.25);
        assert_eq!(d.rtt_ms, None);
    }
}
