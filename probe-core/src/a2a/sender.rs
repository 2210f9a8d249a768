//! The STAMP Session-Sender, sans-IO: builds test packets on an isochronous schedule, takes
//! replies with their receive times, and produces the [`A2aReport`](crate::report::A2aReport)
//! at [`Sender::finish`].
//!
//! **Hello.** Before the test, the caller may send a few hello packets
//! ([`Sender::emit_hello`]) carrying probe's clock TLV. They use SSID `ssid ^ 0x8000` so the
//! reflector counts them in a session of their own and the test session's reflector numbers
//! start at 0. A probe reflector answers with its clock facts; equal kernel boot ids mean both
//! ends share one clock (mode `shared`).
//!
//! **Loss split.** A stateful reflector numbers the packets it reflects in a session from 0, so
//! `reflected = highest reflector number + 1` and forward loss is `sent - reflected` (forward
//! duplicates discounted), reverse loss `reflected - distinct replies`. Tail ambiguity: when the
//! replies of the last packets are all lost, the reflector numbers cannot show whether those
//! packets reached the reflector, so they count as forward loss. A stateless reflector (its
//! number copies the sender's) makes all loss look like reverse loss.
//!
//! **Memory** does not grow with the test's length: the last packets sent sit in a fixed ring
//! ([`super::sender_state`]; a reply to a packet older than the ring counts as late),
//! delays go into histograms as replies arrive, and what is defined in the reflector's order
//! goes through a bounded reorder buffer.
//!
//! **One-way delays under an estimated clock offset.** The offset is only known at the end, so
//! the one-way delays are recorded against a *provisional* offset (that of the first exchange,
//! which keeps the recorded values near the true delays and the histogram's 3 significant
//! digits meaningful) and corrected at [`Sender::finish`] by a constant: the difference between
//! the final offset (0 for `shared` and `synced`; the estimator's offset at its reference time
//! for `estimated`) and the provisional one. A constant shift moves every order statistic and
//! the mean and leaves the spread, jitter and IPDV unchanged, so the correction is exact for a
//! constant offset. The estimator fits drift online; the drift over the test is not removed
//! per packet, so its largest effect, `|drift| x` the longest time from the reference to a
//! packet, is added to the reported error bound.

pub use super::sender_config::{
    HELLO_SSID_FLIP, Limit, MAX_SIZE, OFFSET_WINDOW_EXCHANGES, SenderConfig, SenderError,
};
use super::sender_state::{DelayStats, ReflOrder, ReflReply, SendRing};
use crate::stats::{Arrival, Distribution, SeqTracker};
use crate::time::{ClockInfo, ErrorEstimate, Nanos, NtpTimestamp, OffsetEstimator, duration_ns};
use crate::wire::stamp::{BASE_LEN, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr};
use crate::wire::stamp_auth::{AUTH_BASE_LEN, AuthReflectorPacket, AuthSenderPacket};
use crate::wire::stamp_clock_tlv::{CLOCK_TLV_LEN, ClockValue, emit_clock_tlv};
use crate::wire::stamp_tlv::{TlvFlags, TlvIter, emit_padding, tlv_type};

/// A test packet written by [`Sender::emit_next`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Its sequence number.
    pub seq: u32,
    /// Its length in the buffer.
    pub len: usize,
    /// When the schedule planned it.
    pub planned: Nanos,
}

/// Why a datagram was ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgnoreReason {
    /// Not a STAMP reflector packet.
    Malformed,
    /// Another SSID.
    OtherSession,
    /// A sequence number this sender did not send.
    UnknownSeq,
    /// The echoed sender timestamp is not the one sent (a reply to an older test).
    StaleTimestamp,
    /// More distinct replies than [`Sender`] keeps (twice the packets sent, plus 64): a
    /// reflector duplicating without bound.
    TooManyReplies,
    /// In authenticated mode: not an authenticated reply, or its HMAC is wrong.
    AuthFailed,
}

/// What a reply was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// A reply to test packet `seq` in time.
    Test {
        /// Sender sequence number.
        seq: u32,
        /// Reflector sequence number.
        reflector_seq: u32,
        /// `(t4 - t1) - (t3 - t2)`, ns.
        rtt_ns: i64,
        /// The reflector had already answered `seq` (the network duplicated it forward).
        forward_duplicate: bool,
        /// When `seq` was sent (`t1`).
        sent_at: Nanos,
        /// One-way delays `(forward, reverse)` in ns on the clock offset estimated so far.
        one_way_ns: (i64, i64),
    },
    /// The same reflector packet again (duplicated on the way back).
    ReverseDuplicate {
        /// Sender sequence number.
        seq: u32,
    },
    /// A reply after the timeout: the packet counts as lost.
    Late {
        /// Sender sequence number.
        seq: u32,
    },
    /// A hello reply; `understood` when the reflector answered the clock TLV.
    Hello {
        /// The reflector filled in its clock facts.
        understood: bool,
    },
    /// Not for this test.
    Ignored(IgnoreReason),
}

/// What the reflector's Error Estimates said.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PeerEstimates {
    pub(super) seen: bool,
    pub(super) all_synchronized: bool,
    pub(super) max_error_ns: Option<u64>,
    pub(super) invalid: bool,
}

/// The sans-IO STAMP sender (see the module documentation).
#[derive(Debug)]
pub struct Sender {
    pub(super) config: SenderConfig,
    pub(super) schedule: super::Schedule,
    error_estimate: ErrorEstimate,
    pub(super) ring: SendRing,
    /// Round trips of first replies.
    pub(super) rtt: Distribution,
    /// Round trips of first replies as user space sees them: from the user-space send time
    /// to the user-space receive time, the reflector's turnaround included.
    pub(super) rtt_user: Distribution,
    /// Forward delays of first replies (recorded scale), forward IPDV.
    pub(super) fwd: DelayStats,
    /// Reverse delays of every distinct reflector packet (recorded scale), reverse jitter.
    pub(super) rev: DelayStats,
    /// Reflector-order statistics.
    pub(super) refl_order: ReflOrder,
    pub(super) offset: OffsetEstimator,
    /// Provisional clock offset (peer minus local, ns) the recorded one-way delays hold.
    pub(super) provisional: Option<i64>,
    /// Send times of the first and last packets answered (for the drift residual).
    pub(super) answered_span: Option<(Nanos, Nanos)>,
    /// Distinct replies kept (first and forward-duplicate ones).
    pub(super) distinct: u64,
    /// Replies that were forward duplicates.
    pub(super) forward_duplicates: u64,
    /// The latest round trip, ns.
    pub(super) last_rtt_ns: i64,
    pub(super) reverse: SeqTracker,
    pub(super) max_refl_seq: Option<u32>,
    pub(super) received: u64,
    pub(super) late: u64,
    pub(super) ignored: u64,
    /// Replies dropped for a wrong (or missing) HMAC in authenticated mode.
    pub(super) auth_failed: u64,
    pub(super) peer_clock: Option<ClockInfo>,
    /// Whether `peer_clock` came over the control plane (not from a hello).
    pub(super) peer_clock_control: bool,
    pub(super) peer_estimates: PeerEstimates,
    hello_sent: u32,
    hello_answered: u32,
    timeout_ns: i64,
}

impl Sender {
    /// A sender whose first test packet is planned at `start`.
    pub fn new(mut config: SenderConfig, start: Nanos) -> Result<Self, SenderError> {
        if config.key.is_some() {
            config.size = config.size.max(AUTH_BASE_LEN);
        }
        if !(BASE_LEN..=MAX_SIZE).contains(&config.size) {
            return Err(SenderError::Size(config.size));
        }
        if config.interval.is_zero() {
            return Err(SenderError::ZeroInterval);
        }
        let count = config.packet_count();
        let count = u32::try_from(count)
            .ok()
            .filter(|&c| c > 0 && c < u32::MAX)
            .ok_or(SenderError::Count(count))?;
        // The ring holds what can be in flight: the packets within the timeout plus room for
        // a batch sent before the replies are read (a slow schedule sends no batches); so
        // does the reorder buffer of a slow schedule, while a fast one gets room for its
        // whole test (up to the buffer's bound).
        let interval_ns = duration_ns(config.interval).max(1);
        let slow = config.interval >= super::sender_config::SLOW_PACE;
        let in_timeout = duration_ns(config.timeout) / interval_ns + if slow { 8 } else { 64 };
        let in_flight = u64::from(count).min(in_timeout);
        let reorder = if slow { in_flight } else { u64::from(count) };
        // The statistics get room for the run's samples at once (a run of a few dozen packets,
        // as a mesh agent makes toward each of thousands of peers, then costs one allocation
        // per buffer); the offset estimator for one minimum per window of the run.
        let samples = count as usize;
        let window_ns = duration_ns(config.effective_offset_window()).max(1);
        let windows = u64::from(count).saturating_mul(interval_ns) / window_ns + 1;
        Ok(Sender {
            schedule: super::Schedule::new(start, config.interval, count),
            error_estimate: config.clock.error_estimate(),
            ring: SendRing::new(in_flight),
            rtt: Distribution::with_capacity(samples),
            rtt_user: Distribution::with_capacity(samples),
            fwd: DelayStats::with_capacity(samples),
            rev: DelayStats::with_capacity(samples),
            refl_order: ReflOrder::with_slots(
                samples,
                usize::try_from(reorder).unwrap_or(usize::MAX),
            ),
            offset: OffsetEstimator::with_capacity(
                window_ns,
                usize::try_from(windows).unwrap_or(usize::MAX),
            ),
            provisional: None,
            answered_span: None,
            distinct: 0,
            forward_duplicates: 0,
            last_rtt_ns: 0,
            reverse: SeqTracker::with_window(0, count.min(crate::stats::DEFAULT_WINDOW)),
            max_refl_seq: None,
            received: 0,
            late: 0,
            ignored: 0,
            auth_failed: 0,
            peer_clock: None,
            peer_clock_control: false,
            peer_estimates: PeerEstimates {
                all_synchronized: true,
                ..PeerEstimates::default()
            },
            hello_sent: 0,
            hello_answered: 0,
            timeout_ns: i64::try_from(config.timeout.as_nanos()).unwrap_or(i64::MAX),
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &SenderConfig {
        &self.config
    }

    /// The SSID hello packets use.
    pub fn hello_ssid(&self) -> u16 {
        self.config.ssid ^ HELLO_SSID_FLIP
    }

    /// Moves the first test packet to `start` (e.g. once the hellos are answered); only before
    /// any test packet was sent.
    pub fn reschedule(&mut self, start: Nanos) -> Result<(), SenderError> {
        if self.schedule.move_start(start) {
            Ok(())
        } else {
            Err(SenderError::Started)
        }
    }

    /// Planned time of the next test packet; `None` when all were sent.
    pub fn next_send_at(&self) -> Option<Nanos> {
        self.schedule.next_planned()
    }

    /// Test packets sent so far.
    pub fn sent(&self) -> u32 {
        self.schedule.sent()
    }

    /// Whether every planned test packet was sent.
    pub fn is_complete(&self) -> bool {
        self.schedule.is_complete()
    }

    /// The time after which no reply can still count: last send plus the timeout (`None`
    /// before the schedule is complete).
    pub fn done_at(&self) -> Option<Nanos> {
        let last = self.ring.get(self.sent().checked_sub(1)?)?;
        self.is_complete()
            .then(|| last.t1.saturating_add_ns(self.timeout_ns))
    }

    /// Distinct test packets answered in time so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Slots of the in-flight ring (fixed when the sender is made: the sender's memory does
    /// not grow with the number of packets).
    pub fn ring_capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Updates the local clock facts (used in later packets and hellos, and at finish).
    pub fn set_clock(&mut self, clock: ClockInfo) {
        self.config.clock = clock;
        self.error_estimate = clock.error_estimate();
    }

    /// Takes the reflector's clock facts from the control plane (in place of a hello).
    pub fn set_peer_clock(&mut self, clock: ClockInfo) {
        self.peer_clock = Some(clock);
        self.peer_clock_control = true;
    }

    /// The reflector's clock facts, if it answered a hello.
    pub fn peer_clock(&self) -> Option<ClockInfo> {
        self.peer_clock
    }

    /// Hello packets sent and answered.
    pub fn hellos(&self) -> (u32, u32) {
        (self.hello_sent, self.hello_answered)
    }

    fn base(
        &self,
        seq: u32,
        ssid: u16,
        tx: Nanos,
        buf: &mut [u8],
        len: usize,
    ) -> Result<(), SenderError> {
        if buf.len() < len {
            return Err(SenderError::BufferTooSmall {
                needed: len,
                available: buf.len(),
            });
        }
        let repr = SenderRepr {
            seq,
            timestamp: NtpTimestamp::from_nanos(tx),
            error_estimate: self.error_estimate,
            ssid,
        };
        match &self.config.key {
            Some(key) => {
                repr.emit_authenticated(&mut AuthSenderPacket::new_unchecked(&mut buf[..len]), key);
            }
            None => repr.emit(&mut SenderPacket::new_unchecked(&mut buf[..len])),
        }
        Ok(())
    }

    /// Replies dropped so far for a wrong HMAC (authenticated mode).
    pub fn auth_failed(&self) -> u64 {
        self.auth_failed
    }

    /// Writes the next test packet into `buf`, stamped `tx` (the best estimate of when it will
    /// leave; correct it later with [`Sender::on_tx_timestamp`]). The schedule error is
    /// `tx` minus the planned time.
    pub fn emit_next(&mut self, tx: Nanos, buf: &mut [u8]) -> Result<Sent, SenderError> {
        let Some(seq) = self.schedule.next_index() else {
            return Err(SenderError::Complete(self.schedule.count()));
        };
        let len = self.config.size;
        self.base(seq, self.config.ssid, tx, buf, len)?;
        emit_padding(&mut buf[self.config.base_len()..len]);
        let (_, planned) = self.schedule.record_send(tx).unwrap_or((seq, tx));
        self.ring.put(seq, NtpTimestamp::from_nanos(tx), tx);
        Ok(Sent { seq, len, planned })
    }

    /// Replaces the send time of test packet `seq` by a better one (the kernel TX timestamp);
    /// `false` when `seq` was not sent (or has left the ring).
    pub fn on_tx_timestamp(&mut self, seq: u32, t: Nanos) -> bool {
        match self.ring.get_mut(seq) {
            Some(slot) => {
                slot.t1 = t;
                true
            }
            None => false,
        }
    }

    /// Writes a hello packet (clock TLV, then padding up to the test size) into `buf`; returns
    /// its length: the test size, or the base packet plus the clock TLV if that is larger.
    pub fn emit_hello(&mut self, tx: Nanos, buf: &mut [u8]) -> Result<usize, SenderError> {
        let base = self.config.base_len();
        let len = self.config.size.max(base + CLOCK_TLV_LEN);
        self.base(self.hello_sent, self.hello_ssid(), tx, buf, len)?;
        let flags = TlvFlags(TlvFlags::UNRECOGNIZED);
        emit_clock_tlv(&mut buf[base..len], flags, &self.config.clock).map_err(|e| {
            SenderError::BufferTooSmall {
                needed: e.needed,
                available: e.available,
            }
        })?;
        emit_padding(&mut buf[base + CLOCK_TLV_LEN..len]);
        self.hello_sent += 1;
        Ok(len)
    }

    fn on_hello_reply(&mut self, tlv_area: &[u8]) -> ReplyOutcome {
        self.hello_answered += 1;
        let answer = TlvIter::new(tlv_area)
            .filter_map(Result::ok)
            .find_map(|(_, tlv)| {
                let ours = tlv.tlv_type() == tlv_type::PROBE_CLOCK && !tlv.flags().unrecognized();
                ours.then(|| ClockValue::new_checked(tlv.value()).map(|v| v.to_info()))
                    .flatten()
            });
        if let Some(info) = answer {
            self.peer_clock = Some(info);
            self.peer_clock_control = false;
        }
        ReplyOutcome::Hello {
            understood: answer.is_some(),
        }
    }

    fn note_peer_estimate(&mut self, ee: ErrorEstimate) {
        let pe = &mut self.peer_estimates;
        pe.seen = true;
        pe.all_synchronized &= ee.synchronized();
        match ee.error_ns() {
            Some(ns) => pe.max_error_ns = Some(pe.max_error_ns.map_or(ns, |m| m.max(ns))),
            None => pe.invalid = true,
        }
    }

    /// Takes a datagram received at `rx` (kernel timestamp when available), which is also
    /// taken as the user-space receive time (see [`Sender::on_reply_at`]).
    pub fn on_reply(&mut self, bytes: &[u8], rx: Nanos) -> ReplyOutcome {
        self.on_reply_at(bytes, rx, Some(rx))
    }

    /// Takes a datagram received at `rx` (kernel timestamp when available) that user space
    /// got at `user_rx` (the time read when the receive call returned): the user-space round
    /// trip (`rtt_user_ms`) runs from the user-space send time to `user_rx`. `None` when the
    /// reader took it at its own pace rather than when it came (a pooled test reads replies
    /// when its timer wakes it): then the reply gives no user-space round trip.
    pub fn on_reply_at(&mut self, bytes: &[u8], rx: Nanos, user_rx: Option<Nanos>) -> ReplyOutcome {
        let outcome = self.classify_reply(bytes, rx, user_rx);
        if matches!(outcome, ReplyOutcome::Ignored(_)) {
            self.ignored += 1;
        }
        outcome
    }

    /// The base fields of a reply and where its TLV area starts, in the test's mode; an
    /// authenticated reply is checked first (a wrong HMAC is counted in `auth_failed`).
    fn parse_reply(&mut self, bytes: &[u8]) -> Result<(ReflectorRepr, usize), IgnoreReason> {
        match &self.config.key {
            None => ReflectorPacket::new_checked(bytes)
                .map(|p| (ReflectorRepr::parse(&p), BASE_LEN))
                .map_err(|_| IgnoreReason::Malformed),
            Some(key) => match AuthReflectorPacket::new_checked(bytes) {
                Ok(p) if p.verify(key) => {
                    Ok((ReflectorRepr::parse_authenticated(&p), AUTH_BASE_LEN))
                }
                _ => {
                    self.auth_failed += 1;
                    Err(IgnoreReason::AuthFailed)
                }
            },
        }
    }

    fn classify_reply(&mut self, bytes: &[u8], rx: Nanos, user_rx: Option<Nanos>) -> ReplyOutcome {
        let (p, tlv_at) = match self.parse_reply(bytes) {
            Ok(parsed) => parsed,
            Err(why) => return ReplyOutcome::Ignored(why),
        };
        if p.ssid != self.config.ssid {
            if self.hello_sent > 0 && p.ssid == self.hello_ssid() {
                return self.on_hello_reply(&bytes[tlv_at..]);
            }
            return ReplyOutcome::Ignored(IgnoreReason::OtherSession);
        }
        let seq = p.sender_seq;
        if seq >= self.schedule.sent() {
            return ReplyOutcome::Ignored(IgnoreReason::UnknownSeq);
        }
        let Some(slot) = self.ring.get(seq).copied() else {
            // Sent, but so long ago that its slot was reused: too late to count.
            self.late += 1;
            return ReplyOutcome::Late { seq };
        };
        if p.sender_timestamp != slot.stamp {
            return ReplyOutcome::Ignored(IgnoreReason::StaleTimestamp);
        }
        let ee = p.error_estimate;
        self.note_peer_estimate(ee);
        let refl_seq = p.seq;
        self.max_refl_seq = Some(self.max_refl_seq.map_or(refl_seq, |m| m.max(refl_seq)));
        let t2 = p.receive_timestamp.decode(ee.ptp());
        let t3 = p.timestamp.decode(ee.ptp());
        if rx.since(slot.t1) > self.timeout_ns {
            self.late += 1;
            // Not counted, but it moves the reorder buffer on.
            self.refl_order.push(ReflReply {
                refl: refl_seq,
                seq,
                counted: false,
                first: false,
                fwd: 0,
                rev: 0,
            });
            return ReplyOutcome::Late { seq };
        }
        if self.distinct >= u64::from(self.sent()).saturating_mul(2).saturating_add(64) {
            return ReplyOutcome::Ignored(IgnoreReason::TooManyReplies);
        }
        if self.reverse.on_packet(refl_seq) == Arrival::Duplicate {
            return ReplyOutcome::ReverseDuplicate { seq };
        }
        self.distinct += 1;
        let rtt_ns = rx.since(slot.t1).saturating_sub(t3.since(t2));
        let fwd_raw = t2.since(slot.t1);
        let rev_raw = rx.since(t3);
        let prov = *self
            .provisional
            .get_or_insert(((i128::from(fwd_raw) - i128::from(rev_raw)) / 2) as i64);
        let fwd = fwd_raw.saturating_sub(prov);
        let rev = rev_raw.saturating_add(prov);
        let forward_duplicate = slot.replied;
        if forward_duplicate {
            self.forward_duplicates += 1;
        } else {
            self.on_first_reply(seq, slot.t1, fwd, rtt_ns);
            if let Some(user_rx) = user_rx {
                self.rtt_user.record(user_rx.since(slot.user_t1));
            }
            self.offset.add_raw(slot.t1, fwd_raw, rev_raw);
        }
        self.rev.delay.record(rev);
        self.rev.jitter.on_transit(rev);
        self.refl_order.push(ReflReply {
            refl: refl_seq,
            seq,
            counted: true,
            first: !forward_duplicate,
            fwd,
            rev,
        });
        ReplyOutcome::Test {
            seq,
            reflector_seq: refl_seq,
            rtt_ns,
            forward_duplicate,
            sent_at: slot.t1,
            one_way_ns: (fwd, rev),
        }
    }

    /// The first reply to `seq`, sent at `t1`: round trip, forward delay, IPDV with the
    /// neighbours already answered.
    fn on_first_reply(&mut self, seq: u32, t1: Nanos, fwd: i64, rtt_ns: i64) {
        self.received += 1;
        self.last_rtt_ns = rtt_ns;
        self.rtt.record(rtt_ns);
        self.fwd.delay.record(fwd);
        if let Some(slot) = self.ring.get_mut(seq) {
            slot.replied = true;
            slot.fwd = fwd;
        }
        let answered =
            |s: Option<&super::sender_state::Slot>| s.filter(|s| s.replied).map(|s| s.fwd);
        if let Some(prev) = seq.checked_sub(1).and_then(|p| answered(self.ring.get(p))) {
            self.fwd.ipdv.on_pair(fwd.saturating_sub(prev));
        }
        if let Some(next) = seq.checked_add(1).and_then(|n| answered(self.ring.get(n))) {
            self.fwd.ipdv.on_pair(next.saturating_sub(fwd));
        }
        self.answered_span = Some(match self.answered_span {
            None => (t1, t1),
            Some((a, b)) => (a.min(t1), b.max(t1)),
        });
    }
}

#[cfg(test)]
#[path = "sender_tests.rs"]
mod tests;
