//! Loss, duplicates and reordering of a numbered packet stream, after RFC 4737.
//!
//! Sequence numbers are 32-bit and may wrap: each is extended to 64 bits relative to the highest
//! one seen (serial-number arithmetic, as RTP does), so a stream may run past `u32::MAX`. A packet
//! is *reordered* when its number is below the next expected one (the highest seen plus one,
//! RFC 4737 section 3.3) and it was not seen before; a *duplicate* when it was seen before.
//! Loss is what was expected (sent) minus the distinct packets received.
//!
//! Duplicate detection remembers a sliding window of numbers below the highest (a bitmap, 2^16
//! by default). A packet older than the window is counted as reordered and unique: a duplicate
//! that late is not recognized. Packets numbered before the stream start are counted as stale and
//! otherwise ignored.

/// How one arrival was classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The next expected packet or a later one (a gap means loss or reordering to come).
    InOrder,
    /// Below the next expected number and not seen before.
    Reordered,
    /// Seen before.
    Duplicate,
    /// Numbered before the start of the stream; ignored.
    Stale,
}

/// Default duplicate-detection window, in packets.
pub const DEFAULT_WINDOW: u32 = 1 << 16;

/// RFC 4737 tracker of one packet stream (see the module documentation).
#[derive(Clone, Debug)]
pub struct SeqTracker {
    start: u32,
    /// Highest extended number seen, relative to `start`.
    highest: Option<u64>,
    seen: Vec<u64>,
    window: u64,
    unique: u64,
    duplicates: u64,
    reordered: u64,
    stale: u64,
}

impl SeqTracker {
    /// A tracker of a stream whose first packet is numbered `start`.
    pub fn new(start: u32) -> Self {
        Self::with_window(start, DEFAULT_WINDOW)
    }

    /// A tracker with a duplicate-detection window of `window` packets (rounded up to a power of
    /// two, at least 64).
    pub fn with_window(start: u32, window: u32) -> Self {
        let window = u64::from(window.max(64)).next_power_of_two();
        SeqTracker {
            start,
            highest: None,
            seen: vec![0; (window / 64) as usize],
            window,
            unique: 0,
            duplicates: 0,
            reordered: 0,
            stale: 0,
        }
    }

    /// The extended number of `seq`, relative to the stream start; `None` when before it.
    fn extend(&self, seq: u32) -> Option<u64> {
        let ext = match self.highest {
            None => i64::from(seq.wrapping_sub(self.start) as i32),
            Some(h) => {
                let h_low = self.start.wrapping_add(h as u32);
                h as i64 + i64::from(seq.wrapping_sub(h_low) as i32)
            }
        };
        u64::try_from(ext).ok()
    }

    fn bit(&self, ext: u64) -> (usize, u64) {
        let i = ext & (self.window - 1);
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// Records the arrival of packet `seq` and classifies it.
    pub fn on_packet(&mut self, seq: u32) -> Arrival {
        let Some(ext) = self.extend(seq) else {
            self.stale += 1;
            return Arrival::Stale;
        };
        match self.highest {
            Some(h) if ext <= h => {
                if h - ext >= self.window {
                    self.unique += 1;
                    self.reordered += 1;
                    return Arrival::Reordered;
                }
                let (w, b) = self.bit(ext);
                if self.seen[w] & b != 0 {
                    self.duplicates += 1;
                    return Arrival::Duplicate;
                }
                self.seen[w] |= b;
                self.unique += 1;
                self.reordered += 1;
                Arrival::Reordered
            }
            _ => {
                let from = self.highest.map_or(0, |h| h + 1);
                if ext - from >= self.window {
                    self.seen.fill(0);
                } else {
                    for e in from..ext {
                        let (w, b) = self.bit(e);
                        self.seen[w] &= !b;
                    }
                }
                let (w, b) = self.bit(ext);
                self.seen[w] |= b;
                self.highest = Some(ext);
                self.unique += 1;
                Arrival::InOrder
            }
        }
    }

    /// Distinct packets received.
    pub fn unique(&self) -> u64 {
        self.unique
    }

    /// Duplicate arrivals.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Reordered arrivals (RFC 4737 section 3.3).
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// Arrivals numbered before the stream start.
    pub fn stale(&self) -> u64 {
        self.stale
    }

    /// The highest extended number seen, relative to the start (0 = the start itself).
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Packets the highest number seen implies were sent (highest + 1; 0 before any arrival).
    pub fn expected_by_highest(&self) -> u64 {
        self.highest.map_or(0, |h| h + 1)
    }

    /// Packets lost out of `sent`: `sent` minus the distinct packets received (never negative).
    pub fn lost(&self, sent: u64) -> u64 {
        sent.saturating_sub(self.unique)
    }
}

/// Loss as a percentage of `expected` (`None` when nothing was expected).
pub fn loss_pct(lost: u64, expected: u64) -> Option<f64> {
    (expected > 0).then(|| lost as f64 * 100.0 / expected as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Arrival::{Duplicate, InOrder, Reordered, Stale};

    fn run(t: &mut SeqTracker, seqs: &[u32]) -> Vec<Arrival> {
        seqs.iter().map(|&s| t.on_packet(s)).collect()
    }

    #[test]
    fn in_order_with_loss() {
        let mut t = SeqTracker::new(0);
        let a = run(&mut t, &[0, 1, 2, 4, 5, 7]);
        assert!(a.iter().all(|x| *x == InOrder));
        assert_eq!(t.unique(), 6);
        assert_eq!(t.expected_by_highest(), 8);
        assert_eq!(t.lost(10), 4);
        assert_eq!(loss_pct(t.lost(10), 10), Some(40.0));
        assert_eq!(loss_pct(0, 0), None);
    }

    #[test]
    fn rfc4737_reordering_and_duplicates() {
        // RFC 4737 style example: 1 2 3 5 4 6 6 2: 4 is reordered (below NextExp 6), the second 6
        // and the late 2 are duplicates.
        let mut t = SeqTracker::new(1);
        let a = run(&mut t, &[1, 2, 3, 5, 4, 6, 6, 2]);
        assert_eq!(
            a,
            vec![
                InOrder, InOrder, InOrder, InOrder, Reordered, InOrder, Duplicate, Duplicate
            ]
        );
        assert_eq!((t.unique(), t.reordered(), t.duplicates()), (6, 1, 2));
        assert_eq!(t.lost(6), 0);
    }

    #[test]
    fn first_arrival_late_start() {
        let mut t = SeqTracker::new(0);
        assert_eq!(
            run(&mut t, &[3, 0, 1, 2]),
            vec![InOrder, Reordered, Reordered, Reordered]
        );
        assert_eq!(t.lost(4), 0);
    }

    #[test]
    fn wraps_past_u32_max() {
        let start = u32::MAX - 2;
        let mut t = SeqTracker::new(start);
        let seqs = [u32::MAX - 2, u32::MAX - 1, u32::MAX, 0, 2, 1, 1];
        let a = run(&mut t, &seqs);
        assert_eq!(
            a,
            vec![
                InOrder, InOrder, InOrder, InOrder, InOrder, Reordered, Duplicate
            ]
        );
        assert_eq!(t.highest(), Some(5));
        assert_eq!(t.unique(), 6);
        // A number just before the start is stale.
        assert_eq!(t.on_packet(u32::MAX - 3), Stale);
        assert_eq!(t.stale(), 1);
    }

    #[test]
    fn window_slides_and_clears() {
        let mut t = SeqTracker::with_window(0, 64);
        assert_eq!(t.on_packet(0), InOrder);
        assert_eq!(t.on_packet(10), InOrder);
        assert_eq!(t.on_packet(10), Duplicate);
        // 64 ahead reuses 0's bit: it must be cleared, so 64 is new, and a re-sent 10 is still
        // remembered as a duplicate.
        assert_eq!(t.on_packet(64), InOrder);
        assert_eq!(t.on_packet(10), Duplicate);
        // 0 is now outside the window: counted reordered and unique.
        assert_eq!(t.on_packet(0), Reordered);
        // A jump far ahead clears everything.
        assert_eq!(t.on_packet(1_000), InOrder);
        assert_eq!(t.on_packet(999), Reordered);
        assert_eq!(t.on_packet(999), Duplicate);
        assert_eq!(t.unique(), 6);
    }
}
