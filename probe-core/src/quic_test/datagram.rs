//! The echo datagram of the RTT test and its accounting (sans-IO).
//!
//! Payload: the magic `PQD1`, the sequence number (64 bits) and the sender's send time in
//! ns since the test started (64 bits), big-endian, then zero padding up to the asked size.
//! The far end echoes each datagram unchanged; the round trip is the arrival time minus the
//! carried send time.

use crate::stats::Distribution;

use super::report::DatagramCounts;

/// Magic of an echo datagram.
pub const MAGIC: [u8; 4] = *b"PQD1";
/// Smallest echo datagram: magic, sequence number, send time.
pub const MIN_SIZE: usize = 20;
/// Most datagrams one test may send (the accounting keeps a bit per datagram).
pub const MAX_COUNT: u64 = 10_000_000;

/// Writes datagram `seq`, sent `sent_ns` after the start, into `buf` (all of it: its length
/// is the datagram's size, at least [`MIN_SIZE`]). Returns `false` when `buf` is too short.
pub fn encode(seq: u64, sent_ns: u64, buf: &mut [u8]) -> bool {
    if buf.len() < MIN_SIZE {
        return false;
    }
    buf[..4].copy_from_slice(&MAGIC);
    buf[4..12].copy_from_slice(&seq.to_be_bytes());
    buf[12..20].copy_from_slice(&sent_ns.to_be_bytes());
    buf[20..].fill(0);
    true
}

/// The sequence number and send time of an echo datagram; `None` for anything else.
pub fn decode(bytes: &[u8]) -> Option<(u64, u64)> {
    if bytes.len() < MIN_SIZE || bytes[..4] != MAGIC {
        return None;
    }
    let seq = u64::from_be_bytes(bytes[4..12].try_into().ok()?);
    let sent = u64::from_be_bytes(bytes[12..20].try_into().ok()?);
    Some((seq, sent))
}

/// What one arriving datagram was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoOutcome {
    /// The first echo of a datagram sent: its round trip, ns.
    Rtt(u64),
    /// A second echo of a datagram already counted.
    Duplicate,
    /// Not an echo of a datagram of this test (junk, a number never sent, a time in the
    /// future).
    Unknown,
}

/// Counts of the RTT test: datagrams sent, echoes received (each datagram once), duplicates,
/// and the round-trip distribution.
#[derive(Debug)]
pub struct RttAccounting {
    size: usize,
    sent: u64,
    received: u64,
    duplicates: u64,
    unknown: u64,
    seen: Vec<u64>,
    rtt: Distribution,
}

impl RttAccounting {
    /// Accounting for datagrams of `size` bytes.
    pub fn new(size: usize) -> Self {
        RttAccounting {
            size,
            sent: 0,
            received: 0,
            duplicates: 0,
            unknown: 0,
            seen: Vec::new(),
            rtt: Distribution::new(),
        }
    }

    /// Writes the next datagram, sent `now_ns` after the start, into `buf` (its length is
    /// the datagram's size); `None` once [`MAX_COUNT`] were sent or `buf` is too short.
    pub fn next(&mut self, now_ns: u64, buf: &mut [u8]) -> Option<u64> {
        if self.sent >= MAX_COUNT || !encode(self.sent, now_ns, buf) {
            return None;
        }
        let seq = self.sent;
        self.sent += 1;
        let words = usize::try_from(self.sent.div_ceil(64)).unwrap_or(usize::MAX);
        if self.seen.len() < words {
            self.seen.resize(words, 0);
        }
        Some(seq)
    }

    /// An arriving datagram, `now_ns` after the start.
    pub fn on_echo(&mut self, bytes: &[u8], now_ns: u64) -> EchoOutcome {
        let Some((seq, sent_ns)) = decode(bytes) else {
            self.unknown += 1;
            return EchoOutcome::Unknown;
        };
        if seq >= self.sent || sent_ns > now_ns {
            self.unknown += 1;
            return EchoOutcome::Unknown;
        }
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return EchoOutcome::Duplicate;
        }
        self.seen[word] |= 1 << bit;
        self.received += 1;
        let rtt = now_ns - sent_ns;
        self.rtt.record(i64::try_from(rtt).unwrap_or(i64::MAX));
        EchoOutcome::Rtt(rtt)
    }

    /// Datagrams sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Datagrams echoed so far (each once).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The counts: every datagram without an echo by now is lost.
    pub fn counts(&self) -> DatagramCounts {
        let lost = self.sent - self.received;
        DatagramCounts {
            size: self.size,
            sent: self.sent,
            received: self.received,
            lost,
            loss_pct: if self.sent == 0 {
                0.0
            } else {
                lost as f64 * 100.0 / self.sent as f64
            },
            duplicates: self.duplicates,
            unknown: self.unknown,
        }
    }

    /// The round-trip distribution.
    pub fn rtt(&self) -> &Distribution {
        &self.rtt
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // The values here are exact in binary floating point.
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_refuses_junk() {
        let mut buf = [0xff_u8; 32];
        assert!(encode(7, 123_456_789, &mut buf));
        assert_eq!(&buf[..4], b"PQD1");
        assert!(buf[20..].iter().all(|&b| b == 0));
        assert_eq!(decode(&buf), Some((7, 123_456_789)));
        assert_eq!(decode(&buf[..19]), None);
        buf[0] = b'X';
        assert_eq!(decode(&buf), None);
        assert!(!encode(1, 1, &mut [0; 19]));
    }

    #[test]
    fn round_trips_loss_and_duplicates() {
        let mut acc = RttAccounting::new(64);
        let mut bufs = Vec::new();
        for i in 0..4_u64 {
            let mut b = vec![0; 64];
            assert_eq!(acc.next(i * 10_000_000, &mut b), Some(i));
            bufs.push(b);
        }
        // Echoes of 0, 1 and 3 after 5, 6 and 7 ms; 1 twice; 2 never.
        assert_eq!(
            acc.on_echo(&bufs[0], 5_000_000),
            EchoOutcome::Rtt(5_000_000)
        );
        assert_eq!(
            acc.on_echo(&bufs[1], 16_000_000),
            EchoOutcome::Rtt(6_000_000)
        );
        assert_eq!(acc.on_echo(&bufs[1], 17_000_000), EchoOutcome::Duplicate);
        assert_eq!(
            acc.on_echo(&bufs[3], 37_000_000),
            EchoOutcome::Rtt(7_000_000)
        );
        // A number never sent and a send time in the future are not ours.
        let mut forged = vec![0; 64];
        encode(99, 1, &mut forged);
        assert_eq!(acc.on_echo(&forged, 50_000_000), EchoOutcome::Unknown);
        encode(2, 60_000_000, &mut forged);
        assert_eq!(acc.on_echo(&forged, 50_000_000), EchoOutcome::Unknown);
        let c = acc.counts();
        assert_eq!((c.sent, c.received, c.lost), (4, 3, 1));
        assert_eq!((c.duplicates, c.unknown, c.size), (1, 2, 64));
        assert_eq!(c.loss_pct, 25.0);
        let s = acc.rtt().summary_ms().expect("three samples");
        assert!(
            (s.min - 5.0).abs() < 0.01 && (s.max - 7.0).abs() < 0.01,
            "{s:?}"
        );
        assert!((s.mean - 6.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn empty_test_has_no_loss_rate() {
        let acc = RttAccounting::new(20);
        assert_eq!(acc.counts().loss_pct, 0.0);
        assert!(acc.rtt().summary_ms().is_none());
    }
}
