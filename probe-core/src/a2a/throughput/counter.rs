//! The counting receiver of a UDP throughput test, sans-IO: fed each datagram's header,
//! length and receive time as values; keeps counts, an RFC 4737 sequence tracker (fixed
//! window), a histogram of the samples' one-way delays and per-interval counts. Its memory
//! does not grow with the datagrams counted (the interval rows are capped).

use std::time::Duration;

use super::packet::Header;
use crate::report::udp_throughput::{ReceiveInterval, ReceiverCounts};
use crate::stats::{Distribution, SeqTracker};
use crate::time::Nanos;

/// Interval rows kept at most (an hour of 1 s rows); later datagrams count in the totals.
pub const MAX_INTERVALS: usize = 3_600;

/// Counts one direction of a throughput test.
#[derive(Debug)]
pub struct ThroughputCounter {
    seq: SeqTracker,
    received: u64,
    bytes: u64,
    first_rx: Option<Nanos>,
    last_rx: Nanos,
    owd: Distribution,
    interval: Option<Duration>,
    intervals: Vec<(u64, u64)>,
}

impl ThroughputCounter {
    /// A counter with interval rows `interval` wide (none for `None`).
    pub fn new(interval: Option<Duration>) -> Self {
        ThroughputCounter {
            seq: SeqTracker::new(0),
            received: 0,
            bytes: 0,
            first_rx: None,
            last_rx: Nanos::ZERO,
            owd: Distribution::new(),
            interval: interval.filter(|d| !d.is_zero()),
            intervals: Vec::new(),
        }
    }

    /// Counts one datagram of `len` octets received at `rx`.
    pub fn on_datagram(&mut self, h: &Header, len: usize, rx: Nanos) {
        // Sequence numbers are 64-bit on the wire; the tracker extends 32-bit ones itself.
        self.seq.on_packet(h.seq as u32);
        self.received += 1;
        self.bytes += len as u64;
        let first = *self.first_rx.get_or_insert(rx);
        self.last_rx = self.last_rx.max(rx);
        if let Some(sent) = h.sent_ns {
            self.owd.record(rx.since(Nanos(sent)));
        }
        if let Some(w) = self.interval {
            let w = w.as_nanos().max(1) as u64;
            let i = (rx.since(first).max(0) as u64 / w) as usize;
            if i < MAX_INTERVALS {
                if self.intervals.len() <= i {
                    self.intervals.resize(i + 1, (0, 0));
                }
                self.intervals[i].0 += 1;
                self.intervals[i].1 += len as u64;
            }
        }
    }

    /// Datagrams received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The counts so far.
    pub fn snapshot(&self) -> ReceiverCounts {
        let w = self.interval.map_or(0.0, |d| d.as_secs_f64());
        ReceiverCounts {
            received: self.received,
            bytes: self.bytes,
            unique: self.seq.unique(),
            duplicates: self.seq.duplicates(),
            reordered: self.seq.reordered(),
            first_rx_ns: self.first_rx.map_or(0, |n| n.0),
            last_rx_ns: self.last_rx.0,
            owd_raw_ms: self.owd.summary_ms(),
            owd_samples: self.owd.count(),
            interval_s: w,
            intervals: self
                .intervals
                .iter()
                .enumerate()
                .map(|(i, &(received, bytes))| ReceiveInterval {
                    start_s: i as f64 * w,
                    end_s: (i + 1) as f64 * w,
                    received,
                    bytes,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000_000_000;

    fn h(seq: u64, sent_ns: Option<u64>) -> Header {
        Header {
            session: 9,
            seq,
            sent_ns,
        }
    }

    #[test]
    fn counts_loss_duplicates_and_reordering() {
        let mut c = ThroughputCounter::new(None);
        // 0..10 with 3 and 7 lost, 5 after 6, 8 twice.
        for (i, seq) in [0, 1, 2, 4, 6, 5, 8, 8, 9].into_iter().enumerate() {
            c.on_datagram(&h(seq, None), 64, Nanos(T0 + i as u64 * 1000));
        }
        let s = c.snapshot();
        assert_eq!(
            (s.received, s.unique, s.duplicates, s.reordered),
            (9, 8, 1, 1)
        );
        assert_eq!(s.bytes, 9 * 64);
        assert_eq!((s.first_rx_ns, s.last_rx_ns), (T0, T0 + 8000));
        assert!(s.owd_raw_ms.is_none() && s.owd_samples == 0 && s.intervals.is_empty());
        // Sent 10: two lost.
        assert_eq!(10 - s.unique, 2);
    }

    #[test]
    fn samples_give_one_way_delays() {
        let mut c = ThroughputCounter::new(None);
        for i in 0..100_u64 {
            let sent = T0 + i * 10_000;
            let stamp = (i % 10 == 0).then_some(sent);
            // 250 µs on the way, 350 µs for the last sample.
            let owd = if i == 90 { 350_000 } else { 250_000 };
            c.on_datagram(&h(i, stamp), 64, Nanos(sent + owd));
        }
        let s = c.snapshot();
        assert_eq!(s.owd_samples, 10);
        let owd = s.owd_raw_ms.expect("samples");
        assert!(
            (owd.min - 0.25).abs() < 1e-3 && (owd.max - 0.35).abs() < 1e-3,
            "{owd:?}"
        );
    }

    #[test]
    fn intervals_split_by_receive_time_and_stay_bounded() {
        let mut c = ThroughputCounter::new(Some(Duration::from_millis(100)));
        // 10 datagrams per 100 ms over 0.3 s, then one an hour and more later.
        for i in 0..30_u64 {
            c.on_datagram(&h(i, None), 100, Nanos(T0 + i * 10_000_000));
        }
        c.on_datagram(&h(30, None), 100, Nanos(T0 + 400 * 1_000_000_000));
        let s = c.snapshot();
        assert_eq!(s.intervals.len(), 3);
        assert!(
            s.intervals
                .iter()
                .all(|i| i.received == 10 && i.bytes == 1000)
        );
        assert!((s.intervals[2].end_s - 0.3).abs() < 1e-9);
        // 400 s later is past the last row (3 600 rows of 100 ms): in the totals only.
        assert_eq!(s.received, 31);
    }

    #[test]
    fn a_long_stream_wraps_the_sequence_tracker() {
        let mut c = ThroughputCounter::new(None);
        let start = u64::from(u32::MAX) - 5;
        // The tracker starts at 0: feed a prefix so it follows the stream up to the wrap.
        let mut seq = 0_u64;
        while seq < start {
            c.on_datagram(&h(seq, None), 32, Nanos(T0));
            seq += 1 << 20;
        }
        for s in start..start + 12 {
            c.on_datagram(&h(s, None), 32, Nanos(T0));
        }
        let snap = c.snapshot();
        assert_eq!(snap.duplicates, 0);
        assert_eq!(snap.reordered, 0);
    }
}
