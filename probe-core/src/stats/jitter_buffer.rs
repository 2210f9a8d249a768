//! An emulated voice playout (jitter) buffer: fed each packet's sequence number, send time and
//! arrival time, it decides whether the packet would have been played or discarded as late,
//! and keeps the loss pattern the E-model's burst ratio needs. Memory is constant.
//!
//! **Playout point.** Packet `n` is due for playout at `send(n) + base + target`: `base` is
//! the smallest transit time (arrival minus send) seen so far, which absorbs any clock offset
//! between the two ends, and `target` the buffer's depth. A packet arriving after its playout
//! point is discarded (late). The buffer re-anchors when a faster packet lowers `base`.
//!
//! - **Fixed** (`fixed:N`): `target = N` ms.
//! - **Adaptive** (`adaptive:MIN-MAX`): `target = 4 J` clamped to `MIN..=MAX` ms, `J` the
//!   RFC 3550 interarrival jitter of the packets before this one (four mean deviations cover
//!   nearly all of a delay spread, the rule of classic adaptive playout algorithms); it
//!   starts at `MIN`.
//!
//! **Loss pattern.** Outcomes are kept per sequence number in a window of [`PATTERN_WINDOW`]
//! packets and folded, in sequence order, into counts of played and missing (lost or
//! discarded) packets and of runs of consecutive missing ones. A packet arriving more than
//! the window behind the newest counts as discarded.

use std::fmt;

use super::InterarrivalJitter;
use super::emodel::burst_ratio;

/// Sequence numbers the loss pattern keeps before folding them into counts.
pub const PATTERN_WINDOW: u64 = 1024;
const WORDS: usize = (PATTERN_WINDOW / 64) as usize;
const MS: i64 = 1_000_000;

/// How the buffer sizes itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JitterBufferMode {
    /// A constant depth, ms.
    Fixed {
        /// Depth above the fastest transit, ms.
        ms: u32,
    },
    /// Four times the RFC 3550 jitter, within bounds (ms).
    Adaptive {
        /// Smallest depth, ms.
        min_ms: u32,
        /// Largest depth, ms.
        max_ms: u32,
    },
}

impl Default for JitterBufferMode {
    /// `adaptive:20-200`.
    fn default() -> Self {
        JitterBufferMode::Adaptive {
            min_ms: 20,
            max_ms: 200,
        }
    }
}

impl fmt::Display for JitterBufferMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JitterBufferMode::Fixed { ms } => write!(f, "fixed:{ms}"),
            JitterBufferMode::Adaptive { min_ms, max_ms } => {
                write!(f, "adaptive:{min_ms}-{max_ms}")
            }
        }
    }
}

/// A jitter buffer setting that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "jitter buffer {0:?} not understood: write fixed:MS (1 to 1000) or \
     adaptive[:MIN-MAX] (ms, 1 <= MIN <= MAX <= 1000), e.g. fixed:60 or adaptive:20-200"
)]
pub struct JitterBufferModeError(String);

impl std::str::FromStr for JitterBufferMode {
    type Err = JitterBufferModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || JitterBufferModeError(s.to_owned());
        let ms = |v: &str| {
            v.trim_end_matches("ms")
                .parse::<u32>()
                .ok()
                .filter(|m| (1..=1000).contains(m))
        };
        let mode = if let Some(v) = s.strip_prefix("fixed:") {
            JitterBufferMode::Fixed {
                ms: ms(v).ok_or_else(bad)?,
            }
        } else if s == "adaptive" {
            JitterBufferMode::default()
        } else if let Some(v) = s.strip_prefix("adaptive:") {
            let (lo, hi) = v.split_once('-').ok_or_else(bad)?;
            let (min_ms, max_ms) = (ms(lo).ok_or_else(bad)?, ms(hi).ok_or_else(bad)?);
            if min_ms > max_ms {
                return Err(bad());
            }
            JitterBufferMode::Adaptive { min_ms, max_ms }
        } else {
            return Err(bad());
        };
        Ok(mode)
    }
}

/// What became of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Playout {
    /// Played after waiting this long in the buffer, ns.
    Played {
        /// Time from arrival to playout, ns.
        wait_ns: i64,
    },
    /// Arrived after its playout point (or too far behind the newest packet).
    Discarded,
    /// A sequence number already seen.
    Duplicate,
}

/// The counts of a stream through the buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct JitterBufferStats {
    /// Packets expected (sequence numbers `0..expected`).
    pub expected: u64,
    /// Packets played.
    pub played: u64,
    /// Packets that arrived but too late.
    pub discarded: u64,
    /// Packets that never arrived: `expected - played - discarded`.
    pub lost: u64,
    /// Runs of consecutive missing (lost or discarded) packets.
    pub loss_runs: u64,
    /// Mean time played packets waited in the buffer, ms (`None`: none played).
    pub mean_wait_ms: Option<f64>,
}

impl JitterBufferStats {
    /// Missing packets (lost or discarded) in percent of expected; 0 when none expected.
    pub fn missing_pct(&self) -> f64 {
        pct(self.expected.saturating_sub(self.played), self.expected)
    }

    /// Discards in percent of expected; 0 when none expected.
    pub fn discard_pct(&self) -> f64 {
        pct(self.discarded, self.expected)
    }

    /// The E-model burst ratio of the missing packets ([`burst_ratio`]).
    pub fn burst_r(&self) -> f64 {
        burst_ratio(
            self.played,
            self.expected.saturating_sub(self.played),
            self.loss_runs,
        )
    }
}

fn pct(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        100.0 * n as f64 / of as f64
    }
}

/// The emulated playout buffer (see the module documentation).
#[derive(Clone, Debug)]
pub struct JitterBuffer {
    mode: JitterBufferMode,
    base_ns: Option<i64>,
    jitter: InterarrivalJitter,
    played: u64,
    discarded: u64,
    wait_sum_ns: f64,
    bits: [u64; WORDS],
    /// Next sequence number to fold into the counts.
    next: u64,
    /// One past the highest sequence number seen.
    end: u64,
    loss_runs: u64,
    in_run: bool,
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(mode: JitterBufferMode) -> Self {
        JitterBuffer {
            mode,
            base_ns: None,
            jitter: InterarrivalJitter::new(),
            played: 0,
            discarded: 0,
            wait_sum_ns: 0.0,
            bits: [0; WORDS],
            next: 0,
            end: 0,
            loss_runs: 0,
            in_run: false,
        }
    }

    /// The setting.
    pub fn mode(&self) -> JitterBufferMode {
        self.mode
    }

    /// The current depth above the fastest transit, ns.
    pub fn target_ns(&self) -> i64 {
        match self.mode {
            JitterBufferMode::Fixed { ms } => i64::from(ms) * MS,
            JitterBufferMode::Adaptive { min_ms, max_ms } => {
                let (lo, hi) = (i64::from(min_ms) * MS, i64::from(max_ms) * MS);
                self.jitter
                    .jitter_ns()
                    .map_or(lo, |j| ((4.0 * j) as i64).clamp(lo, hi))
            }
        }
    }

    fn bit(seq: u64) -> (usize, u64) {
        let slot = seq % PATTERN_WINDOW;
        ((slot / 64) as usize, 1 << (slot % 64))
    }

    /// Folds sequence numbers below `upto` into the counts.
    fn fold(&mut self, upto: u64) {
        let stop = upto.min(self.next.saturating_add(PATTERN_WINDOW));
        while self.next < stop {
            let (w, b) = Self::bit(self.next);
            if self.bits[w] & b != 0 {
                self.bits[w] &= !b;
                self.in_run = false;
            } else {
                self.loss_runs += u64::from(!self.in_run);
                self.in_run = true;
            }
            self.next += 1;
        }
        if self.next < upto {
            // A whole window folded, so every slot is clear: the rest is one missing stretch.
            self.loss_runs += u64::from(!self.in_run);
            self.in_run = true;
            self.next = upto;
        }
    }

    /// Feeds packet `seq` sent at `sent_ns` and arriving at `arrived_ns` (any clock; a
    /// constant offset between the two does not matter).
    pub fn on_packet(&mut self, seq: u64, sent_ns: i64, arrived_ns: i64) -> Playout {
        if seq < self.next {
            self.discarded += 1;
            return Playout::Discarded;
        }
        let (w, b) = Self::bit(seq);
        if seq < self.end && self.bits[w] & b != 0 {
            return Playout::Duplicate;
        }
        let transit = arrived_ns.saturating_sub(sent_ns);
        let target = self.target_ns();
        self.jitter.on_transit(transit);
        let base = self.base_ns.map_or(transit, |b| b.min(transit));
        self.base_ns = Some(base);
        let deadline = base.saturating_add(target);
        if transit > deadline {
            // Late: its slot stays clear and folds as missing.
            self.discarded += 1;
            self.end = self.end.max(seq + 1);
            self.fold(self.end.saturating_sub(PATTERN_WINDOW));
            return Playout::Discarded;
        }
        let wait_ns = deadline - transit;
        self.played += 1;
        self.wait_sum_ns += wait_ns as f64;
        if seq >= self.next + PATTERN_WINDOW {
            self.fold(seq + 1 - PATTERN_WINDOW);
        }
        self.bits[w] |= b;
        self.end = self.end.max(seq + 1);
        Playout::Played { wait_ns }
    }

    /// The counts for a stream of `expected` packets (numbers `0..expected`; more if higher
    /// numbers arrived).
    pub fn stats(&self, expected: u64) -> JitterBufferStats {
        let mut all = self.clone();
        let expected = expected.max(self.end);
        all.fold(expected);
        JitterBufferStats {
            expected,
            played: self.played,
            discarded: self.discarded,
            lost: expected.saturating_sub(self.played + self.discarded),
            loss_runs: all.loss_runs,
            mean_wait_ms: (self.played > 0)
                .then(|| self.wait_sum_ns / self.played as f64 / MS as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: i64 = 20 * MS;

    /// A stream of `n` packets every 20 ms with transit `10 ms + extra(seq)`, skipping those
    /// `drop` says; returns the buffer.
    fn run(
        mode: JitterBufferMode,
        n: u64,
        extra: impl Fn(u64) -> i64,
        drop: impl Fn(u64) -> bool,
    ) -> JitterBuffer {
        let mut jb = JitterBuffer::new(mode);
        // A clock offset of 5 s between the ends must not matter.
        let offset = 5_000 * MS;
        let mut arrivals: Vec<(i64, u64)> = (0..n)
            .filter(|s| !drop(*s))
            .map(|s| (s as i64 * INTERVAL + 10 * MS + extra(s), s))
            .collect();
        arrivals.sort_unstable();
        for (at, s) in arrivals {
            jb.on_packet(s, s as i64 * INTERVAL, at + offset);
        }
        jb
    }

    /// Extra delay cycling 0, 10, 20, 30, 40 ms.
    fn sawtooth(s: u64) -> i64 {
        (s % 5) as i64 * 10 * MS
    }

    #[test]
    fn fixed_buffer_discards_what_exceeds_its_depth() {
        // Depth 25 ms over a 0..40 ms spread: the 30 and 40 ms packets (2 in 5) are late.
        let jb = run(JitterBufferMode::Fixed { ms: 25 }, 1000, sawtooth, |_| {
            false
        });
        let st = jb.stats(1000);
        assert_eq!((st.played, st.discarded, st.lost), (600, 400, 0));
        assert!((st.discard_pct() - 40.0).abs() < 1e-9);
        // Waits 25, 15, 5 ms: mean 15.
        assert!((st.mean_wait_ms.unwrap_or(f64::NAN) - 15.0).abs() < 1e-9);
        // Runs of two discards, 200 of them: p = 200/600, q = 200/400, BurstR = 1.2.
        assert_eq!(st.loss_runs, 200);
        assert!((st.burst_r() - 1.2).abs() < 1e-9);
        // Deep enough: nothing late.
        let jb = run(JitterBufferMode::Fixed { ms: 40 }, 1000, sawtooth, |_| {
            false
        });
        assert_eq!(jb.stats(1000).discarded, 0);
    }

    #[test]
    fn adaptive_buffer_follows_the_jitter() {
        // Extra delay alternating 0 and 30 ms: every |D| is 30 ms, so J grows as
        // 30 (1 - (15/16)^n) toward 30 ms and the depth 4 J toward 120 ms. It starts at the
        // 20 ms minimum, so only the first few 30 ms packets (while 4 J < 30, n < 5) are late.
        let alternating = |s: u64| if s.is_multiple_of(2) { 30 * MS } else { 0 };
        let mode = JitterBufferMode::Adaptive {
            min_ms: 20,
            max_ms: 200,
        };
        let jb = run(mode, 1000, alternating, |_| false);
        let st = jb.stats(1000);
        assert!((1..=3).contains(&st.discarded), "{st:?}");
        assert!(jb.target_ns() > 119 * MS && jb.target_ns() <= 120 * MS);
        // Capped at 25 ms, every 30 ms packet is late.
        let capped = JitterBufferMode::Adaptive {
            min_ms: 20,
            max_ms: 25,
        };
        let st = run(capped, 1000, alternating, |_| false).stats(1000);
        assert_eq!(st.discarded, 500);
        // No jitter: stays at the minimum, waits exactly 20 ms, nothing late.
        let st = run(mode, 500, |_| 0, |_| false).stats(500);
        assert_eq!(st.discarded, 0);
        assert!((st.mean_wait_ms.unwrap_or(f64::NAN) - 20.0).abs() < 1e-9);
    }

    #[test]
    fn losses_and_bursts_are_counted_in_sequence_order() {
        let mode = JitterBufferMode::Fixed { ms: 60 };
        // Every 20th packet lost: 5 % random-like loss, runs of one.
        let st = run(mode, 2000, |_| 0, |s| s % 20 == 7).stats(2000);
        assert_eq!((st.played, st.lost, st.loss_runs), (1900, 100, 100));
        assert!((st.missing_pct() - 5.0).abs() < 1e-9);
        assert!((st.burst_r() - 1.0).abs() < 1e-12);
        // Bursts of 5 every 100: 100 lost in 20 runs, p = 20/1900, q = 20/100, BurstR 4.75.
        let st = run(mode, 2000, |_| 0, |s| s % 100 < 5).stats(2000);
        assert_eq!((st.lost, st.loss_runs), (100, 20));
        assert!((st.burst_r() - 4.75).abs() < 1e-9);
        // The tail that never arrived counts as one run.
        let st = run(mode, 100, |_| 0, |s| s >= 90).stats(100);
        assert_eq!((st.played, st.lost, st.loss_runs), (90, 10, 1));
    }

    #[test]
    fn duplicates_and_ancient_packets() {
        let mut jb = JitterBuffer::new(JitterBufferMode::Fixed { ms: 60 });
        assert!(matches!(jb.on_packet(0, 0, MS), Playout::Played { .. }));
        assert_eq!(jb.on_packet(0, 0, 2 * MS), Playout::Duplicate);
        // Far ahead: sequence 0 folds; a packet behind the window is discarded.
        let far = PATTERN_WINDOW + 10;
        assert!(matches!(
            jb.on_packet(far, far as i64 * INTERVAL, far as i64 * INTERVAL + MS),
            Playout::Played { .. }
        ));
        assert_eq!(
            jb.on_packet(5, 5 * INTERVAL, 6 * INTERVAL),
            Playout::Discarded
        );
        let st = jb.stats(far + 1);
        assert_eq!((st.played, st.discarded), (2, 1));
        assert_eq!(st.expected, far + 1);
    }

    #[test]
    fn modes_parse_and_print() {
        assert_eq!("fixed:60".parse(), Ok(JitterBufferMode::Fixed { ms: 60 }));
        assert_eq!("adaptive".parse(), Ok(JitterBufferMode::default()));
        assert_eq!(
            "adaptive:10-80".parse(),
            Ok(JitterBufferMode::Adaptive {
                min_ms: 10,
                max_ms: 80
            })
        );
        for bad in ["fixed", "fixed:0", "adaptive:80-10", "adaptive:5", "lifo:3"] {
            assert!(bad.parse::<JitterBufferMode>().is_err(), "{bad}");
        }
        assert_eq!(JitterBufferMode::default().to_string(), "adaptive:20-200");
    }
}
