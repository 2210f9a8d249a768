//! The bounded state of a [`Sender`](super::Sender): the ring of in-flight send slots and the
//! streaming statistics that replace per-packet records.
//!
//! - [`SendRing`] keeps the last `capacity` test packets (power of two, at most
//!   [`MAX_RING`]): the timestamp written into each (echoed by the reflector), its best send
//!   time, whether a reply came, and its forward delay (for IPDV with its neighbours). A
//!   reply to a packet that has left the ring counts as late.
//! - [`ReflOrder`] re-sequences replies by the reflector's sequence number through a bounded
//!   buffer ([`REORDER_SLOTS`]) to feed what is defined in the reflector's arrival order:
//!   forward jitter, forward reordering and duplicates, reverse IPDV. A reply more than
//!   `REORDER_SLOTS` numbers ahead pushes the oldest waiting numbers out (their replies were
//!   lost or are very late; a very late one is then fed out of order).

use crate::stats::{DEFAULT_WINDOW, Distribution, InterarrivalJitter, Ipdv, SeqTracker};
use crate::time::{Nanos, NtpTimestamp};

/// Largest ring of in-flight send slots (32 octets each: 2 MiB).
pub const MAX_RING: usize = 1 << 16;

/// Reflector numbers the reorder buffer holds (32 octets each).
pub const REORDER_SLOTS: usize = 1 << 10;

/// Fewest slots of the send ring and of the reorder buffer.
const MIN_WINDOW: usize = 16;

/// What the sender keeps per in-flight test packet.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Slot {
    /// Sender sequence number held (valid when `used`).
    pub(super) seq: u32,
    pub(super) used: bool,
    /// A reply to it came in time.
    pub(super) replied: bool,
    /// The timestamp written into the packet (echoed by the reflector).
    pub(super) stamp: NtpTimestamp,
    /// The best send time known (kernel TX timestamp when given).
    pub(super) t1: Nanos,
    /// The send time read in user space just before the send call (kept when a kernel TX
    /// timestamp replaces `t1`).
    pub(super) user_t1: Nanos,
    /// Forward delay of the first reply (recorded scale, see `Sender::provisional`).
    pub(super) fwd: i64,
}

/// A ring of the last test packets sent, indexed by sequence number.
#[derive(Debug)]
pub(super) struct SendRing {
    slots: Box<[Slot]>,
    mask: usize,
}

impl SendRing {
    /// A ring of `want` slots rounded up to a power of two, between [`MIN_WINDOW`] and
    /// [`MAX_RING`].
    pub(super) fn new(want: u64) -> Self {
        let cap = usize::try_from(want)
            .unwrap_or(MAX_RING)
            .clamp(MIN_WINDOW, MAX_RING)
            .next_power_of_two();
        SendRing {
            slots: vec![Slot::default(); cap].into_boxed_slice(),
            mask: cap - 1,
        }
    }

    /// Slots in the ring (fixed at creation).
    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn index(&self, seq: u32) -> usize {
        seq as usize & self.mask
    }

    /// The slot of `seq`, if still in the ring.
    pub(super) fn get(&self, seq: u32) -> Option<&Slot> {
        let s = &self.slots[self.index(seq)];
        (s.used && s.seq == seq).then_some(s)
    }

    /// The slot of `seq` to update, if still in the ring.
    pub(super) fn get_mut(&mut self, seq: u32) -> Option<&mut Slot> {
        let i = self.index(seq);
        let s = &mut self.slots[i];
        (s.used && s.seq == seq).then_some(s)
    }

    /// Stores packet `seq` (evicting `seq - capacity`).
    pub(super) fn put(&mut self, seq: u32, stamp: NtpTimestamp, t1: Nanos) {
        let i = self.index(seq);
        self.slots[i] = Slot {
            seq,
            used: true,
            replied: false,
            stamp,
            t1,
            user_t1: t1,
            fwd: 0,
        };
    }

    /// Of the first `sent` packets, how many left before `t` (send times are increasing; the
    /// packets older than the ring count as before).
    pub(super) fn sent_before(&self, sent: u32, t: Nanos) -> u32 {
        let held = sent.min(u32::try_from(self.capacity()).unwrap_or(u32::MAX));
        let (mut lo, mut hi) = (sent - held, sent);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid) {
                Some(s) if s.t1 >= t => hi = mid,
                _ => lo = mid + 1,
            }
        }
        lo
    }
}

/// Delay and variation accumulators of one direction.
#[derive(Clone, Debug, Default)]
pub(super) struct DelayStats {
    pub(super) delay: Distribution,
    pub(super) jitter: InterarrivalJitter,
    pub(super) ipdv: Ipdv,
}

impl DelayStats {
    /// Accumulators with room for `expected` delays (see [`Distribution::with_capacity`]).
    pub(super) fn with_capacity(expected: usize) -> Self {
        DelayStats {
            delay: Distribution::with_capacity(expected),
            jitter: InterarrivalJitter::default(),
            ipdv: Ipdv::with_capacity(expected),
        }
    }
}

/// One reply waiting in the reorder buffer.
#[derive(Clone, Copy, Debug, Default)]
struct ReflEntry {
    refl: u32,
    present: bool,
    /// The reply counts in the statistics (not late).
    counted: bool,
    /// It was the first reply to its packet (its forward delay counts).
    first: bool,
    seq: u32,
    fwd: i64,
    rev: i64,
}

/// One reply in the reflector's order, as [`ReflOrder`] takes it.
#[derive(Clone, Copy, Debug)]
pub(super) struct ReflReply {
    /// Reflector sequence number.
    pub(super) refl: u32,
    /// Sender sequence number.
    pub(super) seq: u32,
    /// In time (not late): counts in the statistics.
    pub(super) counted: bool,
    /// First reply to `seq`.
    pub(super) first: bool,
    /// Forward delay (recorded scale).
    pub(super) fwd: i64,
    /// Reverse delay (recorded scale).
    pub(super) rev: i64,
}

/// Statistics fed in the reflector's order through a bounded reorder buffer.
#[derive(Clone, Debug)]
pub(super) struct ReflOrder {
    buf: Box<[ReflEntry]>,
    /// Next reflector number to feed.
    cursor: u32,
    /// Forward order at the reflector: sender numbers in reflector order.
    pub(super) fwd_order: SeqTracker,
    /// Forward jitter (reflector arrival order).
    pub(super) fwd_jitter: InterarrivalJitter,
    /// Reverse IPDV (consecutive reflector numbers).
    pub(super) rev_ipdv: Ipdv,
}

impl Default for ReflOrder {
    fn default() -> Self {
        ReflOrder::with_slots(REORDER_SLOTS, REORDER_SLOTS)
    }
}

impl ReflOrder {
    /// A reorder buffer of `slots` slots rounded up to a power of two, between [`MIN_WINDOW`]
    /// and [`REORDER_SLOTS`], for a test of `packets` packets (its statistics get room for
    /// that many). A short test needs no more slots than packets, and a slow one no more than
    /// it has within the reply timeout: a reply cannot be more reflector numbers ahead of the
    /// oldest one awaited than that (an agent runs thousands of such tests side by side).
    pub(super) fn with_slots(packets: usize, slots: usize) -> Self {
        let slots = slots
            .min(packets)
            .clamp(MIN_WINDOW, REORDER_SLOTS)
            .next_power_of_two();
        ReflOrder {
            buf: vec![ReflEntry::default(); slots].into_boxed_slice(),
            cursor: 0,
            fwd_order: SeqTracker::with_window(
                0,
                u32::try_from(packets).map_or(DEFAULT_WINDOW, |p| p.min(DEFAULT_WINDOW)),
            ),
            fwd_jitter: InterarrivalJitter::new(),
            rev_ipdv: Ipdv::with_capacity(packets),
        }
    }

    fn feed(&mut self, e: &ReflEntry) {
        if !e.counted {
            return;
        }
        self.fwd_order.on_packet(e.seq);
        if e.first {
            self.fwd_jitter.on_transit(e.fwd);
        }
        self.rev_ipdv.on_delay(u64::from(e.refl), e.rev);
    }

    /// Feeds the entry at the cursor, if any, and moves the cursor on.
    fn advance(&mut self) {
        let i = self.cursor as usize % self.buf.len();
        let e = self.buf[i];
        if e.present && e.refl == self.cursor {
            self.feed(&e);
        }
        self.buf[i].present = false;
        self.cursor = self.cursor.wrapping_add(1);
    }

    /// Takes a distinct reflector packet (reverse duplicates excluded).
    pub(super) fn push(&mut self, r: ReflReply) {
        let ahead = r.refl.wrapping_sub(self.cursor) as i32;
        let e = ReflEntry {
            refl: r.refl,
            present: true,
            counted: r.counted,
            first: r.first,
            seq: r.seq,
            fwd: r.fwd,
            rev: r.rev,
        };
        if ahead < 0 {
            // Behind the cursor (waited for longer than the buffer holds): fed as it comes.
            self.feed(&e);
            return;
        }
        let slots = self.buf.len();
        let window = slots as i32;
        for _ in 0..(ahead - window + 1).clamp(0, window) {
            self.advance();
        }
        if ahead >= 2 * window {
            // Far ahead: everything waiting was pushed out above; jump.
            self.cursor = r.refl.wrapping_sub(slots as u32 - 1);
        }
        self.buf[r.refl as usize % slots] = e;
        while {
            let head = &self.buf[self.cursor as usize % slots];
            head.present && head.refl == self.cursor
        } {
            self.advance();
        }
    }

    /// Feeds everything still waiting, in order (at the end of the test).
    pub(super) fn flush(&mut self) {
        let mut waiting: Vec<ReflEntry> = self.buf.iter().filter(|e| e.present).copied().collect();
        waiting.sort_by_key(|e| e.refl.wrapping_sub(self.cursor));
        for e in &waiting {
            self.feed(e);
        }
        for e in &mut self.buf {
            e.present = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(refl: u32, seq: u32) -> ReflReply {
        ReflReply {
            refl,
            seq,
            counted: true,
            first: true,
            fwd: i64::from(refl) * 1_000,
            rev: 500,
        }
    }

    #[test]
    fn ring_keeps_the_last_packets_and_finds_send_times() {
        let mut r = SendRing::new(100);
        assert_eq!(r.capacity(), 128);
        for seq in 0..1_000u32 {
            r.put(
                seq,
                NtpTimestamp(u64::from(seq)),
                Nanos(u64::from(seq) * 10),
            );
        }
        assert!(r.get(871).is_none(), "evicted");
        assert_eq!(r.get(872).map(|s| s.t1), Some(Nanos(8_720)));
        assert!(r.get(1_000).is_none(), "never sent");
        assert_eq!(r.sent_before(1_000, Nanos(9_000)), 900);
        assert_eq!(
            r.sent_before(1_000, Nanos(0)),
            872,
            "older than the ring: before"
        );
        assert_eq!(r.sent_before(1_000, Nanos(u64::MAX)), 1_000);
        assert_eq!(SendRing::new(u64::MAX).capacity(), MAX_RING);
    }

    #[test]
    fn reorder_buffer_feeds_reflector_order() {
        let mut o = ReflOrder::default();
        // Arrivals 0 2 1 4 3, reflector numbers = sender numbers: no forward reordering.
        for k in [0u32, 2, 1, 4, 3] {
            o.push(reply(k, k));
        }
        assert_eq!(o.fwd_order.reordered(), 0);
        assert_eq!(
            o.rev_ipdv.pairs(),
            4,
            "consecutive reflector numbers pair up"
        );
        // The reflector saw sender 6 before 5.
        o.push(reply(5, 6));
        o.push(reply(6, 5));
        assert_eq!(o.fwd_order.reordered(), 1);
    }

    #[test]
    fn a_lost_reply_does_not_stall_the_buffer() {
        let mut o = ReflOrder::default();
        o.push(reply(0, 0));
        // Reflector number 1 never arrives; the buffer feeds the rest once it is full.
        let n = REORDER_SLOTS as u32 + 10;
        for k in 2..n {
            o.push(reply(k, k));
        }
        assert!(o.fwd_order.unique() >= u64::from(n) - REORDER_SLOTS as u64 - 2);
        o.flush();
        assert_eq!(o.fwd_order.unique(), u64::from(n) - 1);
        // A reply far behind is still counted, out of order.
        o.push(reply(1, 1));
        assert_eq!(o.fwd_order.unique(), u64::from(n));
        // A jump far ahead does not loop or panic.
        o.push(reply(10 * n, 10 * n));
        o.flush();
        assert_eq!(o.fwd_order.unique(), u64::from(n) + 1);
    }
}
