//! [`SenderSession`]: one whole A2A test as a sans-IO machine, in the shape of the path
//! tests' `ProbeMachine`: the driver asks it for datagrams to send
//! ([`SenderSession::poll_transmit`]), feeds it what arrives
//! ([`SenderSession::handle_datagram`], [`SenderSession::handle_tx_timestamp`],
//! [`SenderSession::handle_icmp_error`]) and lets time pass
//! ([`SenderSession::poll_timeout`] / [`SenderSession::handle_timeout`]) until
//! [`SenderSession::is_done`]. Time is a value ([`Nanos`], `CLOCK_REALTIME`, the clock of the
//! kernel's packet timestamps).
//!
//! Phases: **hellos** (clock exchange, one per 200 ms until one is answered), then the **test**
//! (an isochronous schedule, or a flood paced by the window of unanswered packets), then the
//! **final wait** for the last replies. The test gives up when nothing at all answered within
//! the no-answer timeout, or when the network refused the packets (ICMP unreachable).
//!
//! Memory is fixed when the session is made (see [`Sender`]); the transmit-timestamp ids are
//! mapped to sequence numbers through a ring of [`TX_ID_SLOTS`].

use std::time::Duration;

use super::interval::{Intervals, Totals};
use super::sender_config::SLOW_PACE;
pub use super::session_config::{SessionConfig, SessionConfigBuilder};
use super::{Limit, ReplyOutcome, Sender, SenderConfig, SenderError, VoiceConfig, VoiceMonitor};
use crate::io::IcmpError;
use crate::report::{A2aReport, IntervalReport, ScheduleErrorReport};
use crate::time::{Nanos, duration_ns};

/// Transmit ids remembered to match kernel TX timestamps (they arrive microseconds after the
/// send, so a few hundred suffice).
pub const TX_ID_SLOTS: usize = 1024;

/// Transmit ids remembered by a slow schedule (its TX timestamps arrive long before the next
/// packets).
const SLOW_TX_ID_SLOTS: usize = 16;

/// A flood presumes its in-flight packets lost after this long without any progress.
const FLOOD_STALL_NS: i64 = 10_000_000;

/// The last TX timestamps may trail the last reply by this much.
const TX_STAMP_GRACE_NS: i64 = 2_000_000;

/// How the session paces its test packets.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Pace {
    /// An isochronous schedule: packet `n` at `start + n * interval`.
    Interval(Duration),
    /// As fast as replies come back, with at most `window` packets unanswered.
    Max {
        /// Unanswered packets allowed in flight.
        window: u32,
    },
}

/// What [`SenderSession::poll_transmit`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Length written into the buffer.
    pub len: usize,
    /// A test packet's sequence number; `None` for a hello.
    pub seq: Option<u32>,
}

/// The result of a test: the report and what the session saw around it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TestOutcome {
    /// The measurement.
    pub report: A2aReport,
    /// Whether anything at all answered (a hello or a test packet).
    pub answered: bool,
    /// Whether the test was cut short because nothing answered.
    pub aborted_no_answer: bool,
    /// The first ICMP error the kernel reported for our packets, described
    /// (e.g. "ICMP port unreachable from 192.0.2.7").
    pub icmp_error: Option<String>,
    /// Datagrams dropped at our receive buffer (`SO_RXQ_OVFL`), if the kernel reported it.
    pub local_drops: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Hello { next_at: Option<Nanos> },
    Test,
    Drain { until: Nanos },
    Done,
}

/// A whole A2A test, sans-IO (see the module documentation).
#[derive(Debug)]
pub struct SenderSession {
    sender: Sender,
    cfg: SessionConfig,
    phase: Phase,
    no_answer_after: Nanos,
    flood_end: Option<Nanos>,
    answered: u64,
    refused: bool,
    aborted: bool,
    icmp_error: Option<String>,
    local_drops: Option<u32>,
    presumed_lost: u64,
    last_progress: Nanos,
    last_send: Nanos,
    tx_ids: Box<[(u32, u32)]>,
    // The optional parts are boxed: most sessions (an agent runs thousands at once) have none,
    // and each costs a pointer then.
    intervals: Option<Box<Intervals>>,
    report: Option<Box<IntervalReport>>,
    voice: Option<Box<VoiceMonitor>>,
    timeline: Option<super::timeline::Recorder>,
}

impl SenderSession {
    /// A session with `sender` settings (its limit and interval are replaced by what `cfg`
    /// asks: a flood plans its packets 1 ns apart and runs out its duration itself).
    pub fn new(mut sender: SenderConfig, cfg: SessionConfig) -> Result<Self, SenderError> {
        let (limit, interval) = match cfg.pace {
            Pace::Interval(i) => (cfg.limit, i),
            Pace::Max { window: 0 } => return Err(SenderError::ZeroWindow),
            Pace::Max { .. } => match cfg.limit {
                Limit::Count(n) => (Limit::Count(n), Duration::from_nanos(1)),
                Limit::Duration(_) => (Limit::Count(u32::MAX - 1), Duration::from_nanos(1)),
            },
        };
        sender.limit = limit;
        sender.interval = interval;
        sender.timeout = cfg.wait.max(Duration::from_millis(100));
        // Room for the ids of every datagram of a short test (hellos included); a long one
        // reuses the slots, whose timestamps arrive long before the ids come round again.
        let tx_slots = match limit {
            Limit::Count(n) => (n as usize).saturating_add(64).next_power_of_two(),
            Limit::Duration(_) => TX_ID_SLOTS,
        }
        .min(TX_ID_SLOTS);
        // A slow schedule (see `SLOW_PACE`) has its windows sized for the packets within the
        // reply timeout by the sender, and few TX timestamps awaited (they come microseconds
        // after the send).
        let s = Sender::new(sender, Nanos(u64::MAX / 2))?;
        let tx_slots = match cfg.pace {
            Pace::Interval(i) if i >= SLOW_PACE => tx_slots.min(SLOW_TX_ID_SLOTS),
            _ => tx_slots,
        };
        Ok(SenderSession {
            sender: s,
            phase: Phase::Hello { next_at: None },
            no_answer_after: Nanos(u64::MAX),
            flood_end: None,
            answered: 0,
            refused: false,
            aborted: false,
            icmp_error: None,
            local_drops: None,
            presumed_lost: 0,
            last_progress: Nanos::ZERO,
            last_send: Nanos::ZERO,
            tx_ids: vec![(u32::MAX, u32::MAX); tx_slots].into_boxed_slice(),
            intervals: None,
            report: None,
            voice: None,
            timeline: None,
            cfg,
        })
    }

    /// Where the receive timestamps come from (reported as is).
    pub fn set_timestamps(&mut self, source: crate::report::TimestampSource) {
        self.sender.config.timestamps = source;
    }

    /// Rates the test as a voice stream (`--profile voice`): the report gets a `voice`
    /// section.
    pub fn enable_voice(&mut self, cfg: VoiceConfig) {
        self.voice = Some(Box::new(VoiceMonitor::new(cfg)));
    }

    /// Takes the reflector's clock facts from the control plane (set no hellos then).
    pub fn set_peer_clock(&mut self, clock: crate::time::ClockInfo) {
        self.sender.set_peer_clock(clock);
    }

    /// Keeps the test's time series (the report's `timeline`, at most
    /// [`MAX_BUCKETS`](crate::report::timeline::MAX_BUCKETS) buckets).
    pub fn enable_timeline(&mut self) {
        let planned = match (self.cfg.pace, self.cfg.limit) {
            (Pace::Max { .. }, Limit::Duration(_)) => None,
            _ => Some(self.sender.config().packet_count()),
        };
        self.timeline = Some(super::timeline::Recorder::new(planned));
    }

    /// The sans-IO sender inside (counters, clock facts).
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// Whether the test is a flood.
    fn flood_window(&self) -> Option<u64> {
        match self.cfg.pace {
            Pace::Max { window } => Some(u64::from(window)),
            Pace::Interval(_) => None,
        }
    }

    fn in_flight(&self) -> u64 {
        u64::from(self.sender.sent())
            .saturating_sub(self.sender.received())
            .saturating_sub(self.presumed_lost)
    }

    /// Starts the test: the schedule 1 ms after `now`, a flood at once.
    fn start_test(&mut self, now: Nanos) {
        let lead = if self.flood_window().is_some() {
            0
        } else {
            1_000_000
        };
        let start = now.saturating_add_ns(lead);
        // Cannot fail: nothing was sent yet.
        let _ = self.sender.reschedule(start);
        self.no_answer_after = start + self.cfg.no_answer_timeout;
        if let (Pace::Max { .. }, Limit::Duration(d)) = (self.cfg.pace, self.cfg.limit) {
            self.flood_end = Some(start + d);
        }
        self.intervals = self
            .cfg
            .report_interval
            .map(|every| Box::new(Intervals::new(every, start)));
        self.last_progress = start;
        self.phase = Phase::Test;
    }

    fn start_drain(&mut self) {
        self.phase = Phase::Drain {
            until: self.last_send + self.cfg.wait,
        };
    }

    fn give_up_due(&self, now: Nanos) -> bool {
        self.answered == 0 && (now >= self.no_answer_after || self.refused)
    }

    /// The next datagram due at `now`, written into `buf`: hellos first, then test packets as
    /// the schedule or the flood window allows. `None` when nothing is due now.
    pub fn poll_transmit(&mut self, now: Nanos, buf: &mut [u8]) -> Option<Transmit> {
        if let Phase::Hello { next_at } = self.phase {
            let (sent, answered) = self.sender.hellos();
            if answered > 0 || self.refused {
                self.start_test(now);
            } else if next_at.is_none_or(|t| now >= t) {
                if sent >= self.cfg.hellos {
                    self.start_test(now);
                } else if let Ok(len) = self.sender.emit_hello(now, buf) {
                    self.phase = Phase::Hello {
                        next_at: Some(now + self.cfg.hello_interval),
                    };
                    return Some(Transmit { len, seq: None });
                } else {
                    // No room for a hello (buffer shorter than 72 octets): test without.
                    self.start_test(now);
                }
            } else {
                return None;
            }
        }
        if self.phase != Phase::Test {
            return None;
        }
        if self.give_up_due(now) {
            self.aborted = true;
            self.phase = Phase::Done;
            return None;
        }
        match self.flood_window() {
            Some(window) => {
                if self.flood_end.is_some_and(|end| now >= end) || self.sender.is_complete() {
                    self.start_drain();
                    return None;
                }
                if self.in_flight() >= window {
                    return None;
                }
            }
            None => match self.sender.next_send_at() {
                None => {
                    self.start_drain();
                    return None;
                }
                Some(due) if now < due => return None,
                Some(_) => {}
            },
        }
        let sent = self.sender.emit_next(now, buf).ok()?;
        if let Some(t) = &mut self.timeline {
            t.on_send(sent.seq, now);
        }
        self.last_send = now;
        self.last_progress = now;
        if self.flood_window().is_none() && self.sender.is_complete() {
            self.start_drain();
        }
        Some(Transmit {
            len: sent.len,
            seq: Some(sent.seq),
        })
    }

    /// The transmit id the socket gave the datagram `t` (for its kernel TX timestamp).
    pub fn note_tx_id(&mut self, t: &Transmit, id: u32) {
        let slots = self.tx_ids.len();
        self.tx_ids[id as usize % slots] = (id, t.seq.unwrap_or(u32::MAX));
    }

    /// A kernel TX timestamp for transmit id `id`. It refines the statistics only: what the
    /// session sends and when it next needs the clock ([`SenderSession::poll_timeout`]) do
    /// not depend on it, so a driver need not serve the session after one.
    pub fn handle_tx_timestamp(&mut self, id: u32, at: Nanos) {
        let (held, seq) = self.tx_ids[id as usize % self.tx_ids.len()];
        if held == id && seq != u32::MAX {
            self.sender.on_tx_timestamp(seq, at);
        }
    }

    /// An ICMP error about one of our datagrams: the first is kept for the outcome; anything
    /// but "time exceeded" means the network refuses the packets.
    pub fn handle_icmp_error(&mut self, e: &IcmpError) {
        if self.icmp_error.is_some() {
            return;
        }
        if !matches!((e.icmpv6, e.icmp_type), (false, 11) | (true, 3)) {
            self.refused = true;
        }
        let from = e.offender.map_or_else(|| "?".to_owned(), |a| a.to_string());
        self.icmp_error = Some(format!(
            "{} from {from}",
            describe_icmp(e.icmpv6, e.icmp_type, e.icmp_code)
        ));
    }

    /// The kernel's count of datagrams dropped at the receive buffer.
    pub fn handle_local_drops(&mut self, drops: u32) {
        self.local_drops = Some(drops);
    }

    /// A datagram received at `rx` (kernel timestamp when available), also taken as the
    /// user-space receive time.
    pub fn handle_datagram(&mut self, bytes: &[u8], rx: Nanos) -> ReplyOutcome {
        self.handle_datagram_at(bytes, rx, Some(rx))
    }

    /// A datagram received at `rx` (kernel timestamp when available) that user space got at
    /// `user_rx` (read when the receive call returned; see [`Sender::on_reply_at`]).
    pub fn handle_datagram_at(
        &mut self,
        bytes: &[u8],
        rx: Nanos,
        user_rx: Option<Nanos>,
    ) -> ReplyOutcome {
        let outcome = self.sender.on_reply_at(bytes, rx, user_rx);
        match outcome {
            ReplyOutcome::Test {
                seq,
                reflector_seq,
                rtt_ns,
                forward_duplicate,
                sent_at,
                one_way_ns,
            } => {
                if let Some(v) = &mut self.voice {
                    v.on_reply(
                        seq,
                        reflector_seq,
                        forward_duplicate,
                        sent_at,
                        one_way_ns,
                        rx,
                    );
                }
                if let Some(t) = &mut self.timeline {
                    t.on_reply(seq, rtt_ns, one_way_ns, forward_duplicate);
                }
                self.answered += 1;
                self.last_progress = self.last_progress.max(rx);
                if let (Some(iv), false) = (&mut self.intervals, forward_duplicate) {
                    iv.on_rtt(rtt_ns);
                }
            }
            ReplyOutcome::Hello { .. }
            | ReplyOutcome::ReverseDuplicate { .. }
            | ReplyOutcome::Late { .. } => self.answered += 1,
            ReplyOutcome::Ignored(_) => {}
        }
        outcome
    }

    /// When to call [`SenderSession::handle_timeout`] / [`SenderSession::poll_transmit`]
    /// next; `None` once done.
    pub fn poll_timeout(&self) -> Option<Nanos> {
        let phase_at = match self.phase {
            Phase::Done => return None,
            Phase::Hello { .. } if self.sender.hellos().1 > 0 || self.refused => Nanos::ZERO,
            Phase::Hello { next_at } => next_at.unwrap_or(Nanos::ZERO),
            Phase::Test => {
                let send_at = match self.flood_window() {
                    Some(window) if self.in_flight() >= window => self
                        .last_progress
                        .saturating_add_ns(FLOOD_STALL_NS)
                        .min(self.flood_end.unwrap_or(Nanos(u64::MAX))),
                    Some(_) => Nanos::ZERO,
                    None => self.sender.next_send_at().unwrap_or(Nanos::ZERO),
                };
                let give_up = if self.answered == 0 {
                    self.no_answer_after
                } else {
                    Nanos(u64::MAX)
                };
                send_at.min(give_up)
            }
            Phase::Drain { until } => {
                if self.all_answered() {
                    self.last_send
                        .saturating_add_ns(TX_STAMP_GRACE_NS)
                        .min(until)
                } else {
                    until
                }
            }
        };
        let report_at = self
            .intervals
            .as_ref()
            .map_or(Nanos(u64::MAX), |iv| iv.end());
        Some(phase_at.min(report_at))
    }

    fn all_answered(&self) -> bool {
        self.sender.received() >= u64::from(self.sender.sent())
    }

    /// Lets time pass: the flood's stalled window, the final wait, the no-answer give-up,
    /// interval ends.
    pub fn handle_timeout(&mut self, now: Nanos) {
        match self.phase {
            Phase::Test if self.give_up_due(now) => {
                self.aborted = true;
                self.phase = Phase::Done;
            }
            Phase::Test => {
                if let Some(window) = self.flood_window() {
                    let in_flight = self.in_flight();
                    let stalled = now.since(self.last_progress) >= FLOOD_STALL_NS;
                    if in_flight >= window && stalled {
                        self.presumed_lost += in_flight;
                        self.last_progress = now;
                    }
                    if self.flood_end.is_some_and(|end| now >= end) {
                        self.start_drain();
                    }
                }
            }
            Phase::Drain { until } => {
                let grace_over = now.since(self.last_send) >= TX_STAMP_GRACE_NS;
                if now >= until || (self.all_answered() && grace_over) {
                    self.phase = Phase::Done;
                }
            }
            Phase::Hello { .. } | Phase::Done => {}
        }
        if let Some(iv) = &self.intervals
            && now >= iv.end()
            && self.report.is_none()
        {
            let end = iv.end();
            let cutoff = end.saturating_add_ns(-self.sender.last_rtt_ns.max(0));
            let totals = self.totals(cutoff);
            if let Some(iv) = &mut self.intervals {
                self.report = Some(Box::new(iv.close(end, totals)));
            }
        }
        if self.phase == Phase::Done
            && self.report.is_none()
            && let Some(iv) = &mut self.intervals
        {
            let totals = Self::totals_of(&self.sender, Nanos(u64::MAX));
            if iv.has_news(&totals) {
                let end = now.max(self.last_send);
                self.report = Some(Box::new(iv.close(end, totals)));
            }
            self.intervals = None;
        }
    }

    fn totals(&self, cutoff: Nanos) -> Totals {
        Self::totals_of(&self.sender, cutoff)
    }

    fn totals_of(s: &Sender, cutoff: Nanos) -> Totals {
        let sent = s.ring.sent_before(s.sent(), cutoff);
        let reflected = s.max_refl_seq.map_or(0, |m| u64::from(m) + 1);
        Totals {
            sent: u64::from(sent),
            received: s.received(),
            reached: reflected.saturating_sub(s.forward_duplicates),
            back: s.reverse.unique(),
            fwd_jitter_ns: s.refl_order.fwd_jitter.jitter_ns(),
            rev_jitter_ns: s.rev.jitter.jitter_ns(),
        }
    }

    /// The interval report that became ready, if any (poll after each
    /// [`SenderSession::handle_timeout`]).
    pub fn poll_report(&mut self) -> Option<IntervalReport> {
        self.report.take().map(|r| *r)
    }

    /// Whether the test is over.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Stops the test now (e.g. the caller's deadline): no more packets, done.
    pub fn stop(&mut self) {
        self.phase = Phase::Done;
    }

    /// The outcome (call once done; earlier, missing replies count as lost).
    pub fn finish(&self) -> TestOutcome {
        let mut report = self.sender.finish();
        if self.flood_window().is_some() {
            // A flood has no schedule to miss.
            report.schedule_error_us = ScheduleErrorReport::default();
        }
        report.voice = self.voice.as_ref().map(|v| v.report(&report));
        report.timeline = self
            .timeline
            .as_ref()
            .map(|t| t.report(&report.clock, self.sender.provisional));
        TestOutcome {
            report,
            answered: self.answered > 0,
            aborted_no_answer: self.aborted,
            icmp_error: self.icmp_error.clone(),
            local_drops: self.local_drops,
        }
    }
}

/// Names an ICMP error as users know it.
fn describe_icmp(v6: bool, t: u8, c: u8) -> String {
    match (v6, t, c) {
        (false, 3, 3) | (true, 1, 4) => "ICMP port unreachable".into(),
        (false, 3, 0) | (true, 1, 0) => "ICMP network unreachable".into(),
        (false, 3, 1) | (true, 1, 3) => "ICMP host unreachable".into(),
        (false, 3, 9 | 10 | 13) | (true, 1, 1) => "ICMP administratively prohibited".into(),
        (false, 11, _) | (true, 3, _) => "ICMP time exceeded".into(),
        _ => format!("ICMP type {t} code {c}"),
    }
}

/// Planned length of the test in time, when the settings tell it (for progress display).
pub fn planned_duration(pace: Pace, limit: Limit) -> Option<Duration> {
    match (pace, limit) {
        (_, Limit::Duration(d)) => Some(d),
        (Pace::Interval(i), Limit::Count(n)) => Some(Duration::from_nanos(
            duration_ns(i).saturating_mul(u64::from(n)),
        )),
        (Pace::Max { .. }, Limit::Count(_)) => None,
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
