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
//! **Memory.** One-way figures under an estimated clock offset are only known at the end, so the
//! sender keeps 24 bytes per sent packet (its timestamps) and 32 bytes per reply (reflector
//! numbers and t2, t3, t4): about 5.6 MB for 100 000 packets with replies.

use std::time::Duration;

use crate::report::TimestampSource;
use crate::stats::{Arrival, SeqTracker};
use crate::time::{ClockInfo, ClockMode, ErrorEstimate, Nanos, NtpTimestamp};
use crate::wire::stamp::{BASE_LEN, ReflectorPacket, SenderPacket, SenderRepr};
use crate::wire::stamp_clock_tlv::{CLOCK_TLV_LEN, ClockValue, emit_clock_tlv};
use crate::wire::stamp_tlv::{TlvFlags, emit_padding, tlv_type};

/// Flipped in the test SSID (exclusive or) to get the hello SSID.
pub const HELLO_SSID_FLIP: u16 = 0x8000;

/// Largest UDP payload over IPv4.
pub const MAX_SIZE: usize = 65_507;

/// How long a test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// This many packets.
    Count(u32),
    /// Packets planned within this time: `ceil(duration / interval)`.
    Duration(Duration),
}

/// Sender settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SenderConfig {
    /// The peer as the user named it (goes to the report).
    pub peer: String,
    /// STAMP Session-Sender Identifier.
    pub ssid: u16,
    /// Test length.
    pub limit: Limit,
    /// Interval between packets.
    pub interval: Duration,
    /// UDP payload size of test packets (at least 44).
    pub size: usize,
    /// Replies later than this after their packet left count as lost (late).
    pub timeout: Duration,
    /// The local clock's facts.
    pub clock: ClockInfo,
    /// Forces a clock mode instead of deciding it from what the peer says.
    pub clock_mode: Option<ClockMode>,
    /// Where the timestamps fed in come from (reported as is).
    pub timestamps: TimestampSource,
    /// Window of the offset estimator's minimum filter (estimated clock mode).
    pub offset_window: Duration,
}

impl SenderConfig {
    /// Defaults: 10 s of packets every 100 ms, 44 octets, 3 s timeout, estimator window 1 s,
    /// user timestamps, unknown local clock.
    pub fn new(peer: impl Into<String>, ssid: u16) -> Self {
        SenderConfig {
            peer: peer.into(),
            ssid,
            limit: Limit::Duration(Duration::from_secs(10)),
            interval: Duration::from_millis(100),
            size: BASE_LEN,
            timeout: Duration::from_secs(3),
            clock: ClockInfo::default(),
            clock_mode: None,
            timestamps: TimestampSource::User,
            offset_window: Duration::from_secs(1),
        }
    }

    /// Packets the limit plans.
    pub fn packet_count(&self) -> u64 {
        match self.limit {
            Limit::Count(n) => u64::from(n),
            Limit::Duration(d) => {
                let i = self.interval.as_nanos().max(1);
                u64::try_from(d.as_nanos().div_ceil(i)).unwrap_or(u64::MAX)
            }
        }
    }
}

/// Invalid settings or calls.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SenderError {
    /// Packet size outside `44..=65507`.
    #[error("packet size {0} outside {BASE_LEN}..={MAX_SIZE}")]
    Size(usize),
    /// Zero interval.
    #[error("the interval must be positive")]
    ZeroInterval,
    /// The limit plans no packet, or more than 2^32.
    #[error("the test must plan between 1 and 2^32 - 1 packets, not {0}")]
    Count(u64),
    /// Every planned packet was sent.
    #[error("all {0} packets were sent")]
    Complete(u32),
    /// The schedule cannot move once a test packet was sent.
    #[error("the schedule cannot move after the first test packet")]
    Started,
    /// The caller's buffer is shorter than the packet.
    #[error("packet buffer of {available} octets, {needed} needed")]
    BufferTooSmall {
        /// Octets needed.
        needed: usize,
        /// Octets available.
        available: usize,
    },
}

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

const NO_REPLY: u32 = u32::MAX;

/// What the sender keeps per test packet.
#[derive(Clone, Copy, Debug)]
pub(super) struct SentSlot {
    /// The timestamp written into the packet (echoed by the reflector).
    pub(super) stamp: NtpTimestamp,
    /// The best send time known (kernel TX timestamp when given).
    pub(super) t1: Nanos,
    /// Index of the first reply in `records`, or `NO_REPLY`.
    pub(super) first: u32,
}

impl SentSlot {
    pub(super) fn first_reply(&self) -> Option<usize> {
        (self.first != NO_REPLY).then_some(self.first as usize)
    }
}

/// One reply received in time (reverse duplicates excluded).
#[derive(Clone, Copy, Debug)]
pub(super) struct Record {
    pub(super) seq: u32,
    pub(super) refl_seq: u32,
    /// Reflector receive time (peer clock).
    pub(super) t2: Nanos,
    /// Reflector send time (peer clock).
    pub(super) t3: Nanos,
    /// Local receive time.
    pub(super) t4: Nanos,
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
    pub(super) slots: Vec<SentSlot>,
    pub(super) records: Vec<Record>,
    pub(super) reverse: SeqTracker,
    pub(super) max_refl_seq: Option<u32>,
    pub(super) received: u64,
    pub(super) late: u64,
    pub(super) ignored: u64,
    pub(super) peer_clock: Option<ClockInfo>,
    pub(super) peer_estimates: PeerEstimates,
    hello_sent: u32,
    hello_answered: u32,
    timeout_ns: i64,
}

impl Sender {
    /// A sender whose first test packet is planned at `start`.
    pub fn new(config: SenderConfig, start: Nanos) -> Result<Self, SenderError> {
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
        Ok(Sender {
            schedule: super::Schedule::new(start, config.interval, count),
            error_estimate: config.clock.error_estimate(),
            slots: Vec::with_capacity(count.min(1 << 20) as usize),
            records: Vec::new(),
            reverse: SeqTracker::new(0),
            max_refl_seq: None,
            received: 0,
            late: 0,
            ignored: 0,
            peer_clock: None,
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
        if self.schedule.sent() > 0 {
            return Err(SenderError::Started);
        }
        self.schedule = super::Schedule::new(start, self.config.interval, self.schedule.count());
        Ok(())
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
        let last = self.slots.last()?;
        self.is_complete()
            .then(|| Nanos(last.t1.0.saturating_add(self.timeout_ns as u64)))
    }

    /// Updates the local clock facts (used in later packets and hellos, and at finish).
    pub fn set_clock(&mut self, clock: ClockInfo) {
        self.config.clock = clock;
        self.error_estimate = clock.error_estimate();
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
        SenderRepr {
            seq,
            timestamp: NtpTimestamp::from_nanos(tx),
            error_estimate: self.error_estimate,
            ssid,
        }
        .emit(&mut SenderPacket::new_unchecked(&mut buf[..len]));
        Ok(())
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
        emit_padding(&mut buf[BASE_LEN..len]);
        let (_, planned) = self.schedule.record_send(tx).unwrap_or((seq, tx));
        self.slots.push(SentSlot {
            stamp: NtpTimestamp::from_nanos(tx),
            t1: tx,
            first: NO_REPLY,
        });
        Ok(Sent { seq, len, planned })
    }

    /// Replaces the send time of test packet `seq` by a better one (the kernel TX timestamp);
    /// `false` when `seq` was not sent.
    pub fn on_tx_timestamp(&mut self, seq: u32, t: Nanos) -> bool {
        match self.slots.get_mut(seq as usize) {
            Some(slot) => {
                slot.t1 = t;
                true
            }
            None => false,
        }
    }

    /// Writes a hello packet (clock TLV, then padding up to the test size) into `buf`; returns
    /// its length: the test size, or 72 octets if that is larger.
    pub fn emit_hello(&mut self, tx: Nanos, buf: &mut [u8]) -> Result<usize, SenderError> {
        let len = self.config.size.max(BASE_LEN + CLOCK_TLV_LEN);
        self.base(self.hello_sent, self.hello_ssid(), tx, buf, len)?;
        let flags = TlvFlags(TlvFlags::UNRECOGNIZED);
        emit_clock_tlv(&mut buf[BASE_LEN..len], flags, &self.config.clock).map_err(|e| {
            SenderError::BufferTooSmall {
                needed: e.needed,
                available: e.available,
            }
        })?;
        emit_padding(&mut buf[BASE_LEN + CLOCK_TLV_LEN..len]);
        self.hello_sent += 1;
        Ok(len)
    }

    fn on_hello_reply<T: AsRef<[u8]>>(&mut self, p: &ReflectorPacket<T>) -> ReplyOutcome {
        self.hello_answered += 1;
        let answer = p.tlvs().filter_map(Result::ok).find_map(|(_, tlv)| {
            let ours = tlv.tlv_type() == tlv_type::PROBE_CLOCK && !tlv.flags().unrecognized();
            ours.then(|| ClockValue::new_checked(tlv.value()).map(|v| v.to_info()))
                .flatten()
        });
        if let Some(info) = answer {
            self.peer_clock = Some(info);
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

    /// Takes a datagram received at `rx` (kernel timestamp when available).
    pub fn on_reply(&mut self, bytes: &[u8], rx: Nanos) -> ReplyOutcome {
        let outcome = self.classify_reply(bytes, rx);
        if matches!(outcome, ReplyOutcome::Ignored(_)) {
            self.ignored += 1;
        }
        outcome
    }

    fn classify_reply(&mut self, bytes: &[u8], rx: Nanos) -> ReplyOutcome {
        let Ok(p) = ReflectorPacket::new_checked(bytes) else {
            return ReplyOutcome::Ignored(IgnoreReason::Malformed);
        };
        if p.ssid() != self.config.ssid {
            if self.hello_sent > 0 && p.ssid() == self.hello_ssid() {
                return self.on_hello_reply(&p);
            }
            return ReplyOutcome::Ignored(IgnoreReason::OtherSession);
        }
        let seq = p.sender_sequence_number();
        let Some(slot) = self.slots.get(seq as usize).copied() else {
            return ReplyOutcome::Ignored(IgnoreReason::UnknownSeq);
        };
        if p.sender_timestamp() != slot.stamp {
            return ReplyOutcome::Ignored(IgnoreReason::StaleTimestamp);
        }
        let ee = p.error_estimate();
        self.note_peer_estimate(ee);
        let refl_seq = p.sequence_number();
        self.max_refl_seq = Some(self.max_refl_seq.map_or(refl_seq, |m| m.max(refl_seq)));
        if rx.since(slot.t1) > self.timeout_ns {
            self.late += 1;
            return ReplyOutcome::Late { seq };
        }
        if self.records.len() >= self.slots.len().saturating_mul(2).saturating_add(64) {
            return ReplyOutcome::Ignored(IgnoreReason::TooManyReplies);
        }
        if self.reverse.on_packet(refl_seq) == Arrival::Duplicate {
            return ReplyOutcome::ReverseDuplicate { seq };
        }
        let t2 = p.receive_timestamp().decode(ee.ptp());
        let t3 = p.timestamp().decode(ee.ptp());
        let index = self.records.len() as u32;
        self.records.push(Record {
            seq,
            refl_seq,
            t2,
            t3,
            t4: rx,
        });
        let forward_duplicate = slot.first != NO_REPLY;
        if !forward_duplicate {
            self.slots[seq as usize].first = index;
            self.received += 1;
        }
        ReplyOutcome::Test {
            seq,
            reflector_seq: refl_seq,
            rtt_ns: rx.since(slot.t1).saturating_sub(t3.since(t2)),
            forward_duplicate,
        }
    }
}

#[cfg(test)]
#[path = "sender_tests.rs"]
mod tests;
