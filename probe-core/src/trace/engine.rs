//! The traceroute state machine: all TTLs in parallel, stop at the target, rounds with mtr
//! report semantics. Sans-IO: the caller moves bytes and time.
//!
//! Driving it (quinn-proto style):
//!
//! ```text
//! loop {
//!     while let Some(tx) = trace.poll_transmit(now, &mut buf) { send(&buf[..tx.len], tx.ttl) }
//!     if trace.is_done() { break }
//!     wait until trace.poll_timeout() or an answer arrives;
//!     on answer: trace.handle_answer(&Answer::parse_…(bytes)?, rx_time)
//!     on timer:  trace.handle_timeout(now)
//! }
//! let report = trace.report();
//! ```
//!
//! Scheduling: each round sends `queries` probes per TTL, TTL by TTL (so the target's ICMP rate
//! limit spends its burst on the lowest TTLs that reach it). TTLs are released up to `window`
//! beyond the highest TTL that answered or timed out, so a short path costs few wasted probes
//! and a long one is still probed in parallel. Once a terminal answer arrives (from the target,
//! or an unreachable from a router), probes beyond that TTL are cancelled and never sent again.
//! Later rounds start `interval` after the previous one and probe only up to the target.

use std::time::Duration;

use super::flow::FlowId;
use super::hop::HopStats;
use super::prober::{ConfigError, InFlight, ProbeConfig, Prober, Setting, Transmit, check_ttls};
use crate::report::trace::TraceReport;
use crate::time::Nanos;
use crate::wire::answer::{Answer, AnswerKind};
use crate::wire::icmp::{IcmpKind, Unreachable};

/// What to trace and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TraceConfig {
    /// Probe shape, target, wait and rate.
    pub probe: ProbeConfig,
    /// First TTL probed (default 1).
    pub first_ttl: u8,
    /// Highest TTL probed (default 30).
    pub max_ttl: u8,
    /// Probes per TTL per round (default 3).
    pub queries: u8,
    /// Rounds (default 1); statistics accumulate across rounds like `mtr --report -c`.
    pub count: u32,
    /// Time between round starts (default 1 s).
    pub interval: Duration,
    /// TTLs released beyond the highest TTL that answered or timed out (default 8).
    pub window: u8,
    /// The flow (Paris mode) probes use.
    pub flow: FlowId,
}

impl TraceConfig {
    /// Defaults around `probe`.
    pub fn new(probe: ProbeConfig) -> Self {
        TraceConfig {
            probe,
            first_ttl: 1,
            max_ttl: 30,
            queries: 3,
            count: 1,
            interval: Duration::from_secs(1),
            window: 8,
            flow: FlowId(0),
        }
    }
}

/// Whether an answer ends the path, and whether it came from the target.
fn terminal(a: &Answer, target: std::net::IpAddr) -> Option<bool> {
    let from_target = a.from == target;
    match a.kind {
        AnswerKind::Icmp(IcmpKind::Unreachable(Unreachable::FragNeeded { .. })) => None,
        AnswerKind::Icmp(IcmpKind::EchoReply { .. } | IcmpKind::Unreachable(_))
        | AnswerKind::Tcp(_)
        | AnswerKind::Udp(_) => Some(from_target),
        AnswerKind::Icmp(_) => None,
    }
}

/// The traceroute state machine.
#[derive(Debug, Clone)]
pub struct Trace {
    cfg: TraceConfig,
    prober: Prober,
    hops: Vec<HopStats>,
    started: Nanos,
    last_event: Nanos,
    round: u32,
    round_started: Nanos,
    cursor_ttl: u16,
    cursor_query: u8,
    progress_ttl: u8,
    terminal_ttl: Option<u8>,
    reached: bool,
}

impl Trace {
    /// Validates the configuration; the first round starts at `now`.
    pub fn new(cfg: TraceConfig, now: Nanos) -> Result<Self, ConfigError> {
        check_ttls(cfg.first_ttl, cfg.max_ttl)?;
        for (value, setting) in [
            (u32::from(cfg.queries), Setting::Queries),
            (cfg.count, Setting::Count),
            (u32::from(cfg.window), Setting::Window),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(setting));
            }
        }
        let prober = Prober::new(cfg.probe)?;
        Ok(Trace {
            hops: (cfg.first_ttl..=cfg.max_ttl).map(HopStats::new).collect(),
            cfg,
            prober,
            started: now,
            last_event: now,
            round: 0,
            round_started: now,
            cursor_ttl: u16::from(cfg.first_ttl),
            cursor_query: 0,
            progress_ttl: cfg.first_ttl - 1,
            terminal_ttl: None,
            reached: false,
        })
    }

    fn hop_mut(&mut self, ttl: u8) -> Option<&mut HopStats> {
        let i = usize::from(ttl.checked_sub(self.cfg.first_ttl)?);
        self.hops.get_mut(i)
    }

    /// Highest TTL this round may reach.
    fn round_limit(&self) -> u8 {
        self.terminal_ttl.unwrap_or(self.cfg.max_ttl)
    }

    /// Highest TTL released for sending now.
    fn release_limit(&self) -> u8 {
        self.round_limit()
            .min(self.progress_ttl.saturating_add(self.cfg.window))
    }

    fn round_fully_sent(&self) -> bool {
        self.cursor_ttl > u16::from(self.round_limit())
    }

    /// Whether the cursor's TTL is released for sending.
    fn cursor_released(&self) -> bool {
        !self.round_fully_sent() && self.cursor_ttl <= u16::from(self.release_limit())
    }

    fn next_round_at(&self) -> Option<Nanos> {
        (self.round_fully_sent() && self.round + 1 < self.cfg.count)
            .then(|| self.round_started + self.cfg.interval)
    }

    /// The next probe to send at `now`, written into `buf`; `None` when nothing is due.
    pub fn poll_transmit(&mut self, now: Nanos, buf: &mut Vec<u8>) -> Option<Transmit> {
        if let Some(at) = self.next_round_at()
            && now >= at
        {
            self.round += 1;
            self.round_started = at;
            self.cursor_ttl = u16::from(self.cfg.first_ttl);
            self.cursor_query = 0;
        }
        if !self.cursor_released() || !self.prober.may_send(now) {
            return None;
        }
        let ttl = self.cursor_ttl as u8;
        let tx = self
            .prober
            .send(
                now,
                self.cfg.flow,
                ttl,
                self.cfg.probe.size,
                self.round,
                buf,
            )
            .ok()?;
        if let Some(h) = self.hop_mut(ttl) {
            h.record_sent();
        }
        self.cursor_query += 1;
        if self.cursor_query >= self.cfg.queries {
            self.cursor_query = 0;
            self.cursor_ttl += 1;
        }
        self.last_event = now;
        Some(tx)
    }

    /// When the caller should next call [`Trace::handle_timeout`] or [`Trace::poll_transmit`].
    pub fn poll_timeout(&self) -> Option<Nanos> {
        if self.is_done() {
            return None;
        }
        [
            self.prober.next_deadline(),
            self.cursor_released().then(|| self.prober.next_send_at()),
            self.next_round_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Expires probes whose wait has passed: they count as lost (`*`).
    pub fn handle_timeout(&mut self, now: Nanos) {
        for p in self.prober.expire(now) {
            if let Some(h) = self.hop_mut(p.ttl) {
                h.record_lost();
            }
            self.progress_ttl = self.progress_ttl.max(p.ttl);
            self.last_event = p.deadline;
        }
    }

    /// Ingests an answer received at `rx`; returns whether it matched a probe of this trace.
    pub fn handle_answer(&mut self, a: &Answer, rx: Nanos) -> bool {
        match self.prober.match_answer(a, rx, Some(self.cfg.flow)) {
            Some(m) => {
                self.ingest(m.probe, a, m.rtt_ns, m.nat, rx);
                true
            }
            None => false,
        }
    }

    /// Ingests an answer the caller already matched to probe `id` (per-socket matching, e.g.
    /// unprivileged sockets reading their error queue).
    pub fn handle_answer_for(&mut self, id: super::flow::ProbeId, a: &Answer, rx: Nanos) -> bool {
        match self.prober.take(id) {
            Some(p) => {
                let nat = a.quote.is_some_and(|q| q.src != self.cfg.probe.src);
                self.ingest(p, a, rx - p.sent_at, nat, rx);
                true
            }
            None => false,
        }
    }

    /// Replaces the send time of a probe with the kernel's transmit timestamp.
    pub fn set_sent_time(&mut self, id: super::flow::ProbeId, tx: Nanos) {
        self.prober.set_sent_time(id, tx);
    }

    fn ingest(&mut self, p: InFlight, a: &Answer, rtt_ns: i64, nat: bool, rx: Nanos) {
        self.last_event = rx;
        if let Some(h) = self.hop_mut(p.ttl) {
            h.record_answer(a, rtt_ns, nat);
        }
        self.progress_ttl = self.progress_ttl.max(p.ttl);
        if let Some(from_target) = terminal(a, self.cfg.probe.dst) {
            self.reached |= from_target;
            let d = self.terminal_ttl.map_or(p.ttl, |t| t.min(p.ttl));
            self.terminal_ttl = Some(d);
            let beyond: Vec<u8> = self
                .prober
                .in_flight()
                .filter(|f| f.ttl > d)
                .map(|f| f.ttl)
                .collect();
            self.prober.cancel_where(|f| f.ttl > d);
            for ttl in beyond {
                if let Some(h) = self.hop_mut(ttl) {
                    h.unrecord_sent();
                }
            }
        }
    }

    /// Whether every round was sent and every probe answered, lost or cancelled.
    pub fn is_done(&self) -> bool {
        self.round + 1 >= self.cfg.count
            && self.round_fully_sent()
            && self.prober.in_flight_count() == 0
    }

    /// Whether the target answered.
    pub fn reached(&self) -> bool {
        self.reached
    }

    /// The TTL where the path ended (target or unreachable), once known.
    pub fn terminal_ttl(&self) -> Option<u8> {
        self.terminal_ttl
    }

    /// Hop statistics so far, up to the terminal TTL (or every TTL probed).
    pub(crate) fn hops(&self) -> &[HopStats] {
        let last = self.terminal_ttl.unwrap_or_else(|| {
            self.hops
                .iter()
                .rev()
                .find(|h| h.sent > 0)
                .map_or(self.cfg.first_ttl, |h| h.ttl)
        });
        let n = usize::from(last.saturating_sub(self.cfg.first_ttl)) + 1;
        &self.hops[..n.min(self.hops.len())]
    }

    /// Probes sent so far (including cancelled ones beyond the target).
    pub fn probes_sent(&self) -> u64 {
        self.prober.sent_total()
    }

    /// The report (also valid mid-trace).
    pub fn report(&self) -> TraceReport {
        let c = &self.cfg;
        TraceReport {
            target: c.probe.dst,
            target_name: None,
            source: c.probe.src,
            protocol: c.probe.protocol,
            mode: c.probe.mode.into(),
            privilege: None,
            reached: self.reached,
            pmtu: None,
            first_ttl: c.first_ttl,
            max_ttl: c.max_ttl,
            queries: u32::from(c.queries),
            count: c.count,
            confidence_pct: None,
            probes_sent: self.prober.sent_total(),
            duration_ms: (self.last_event - self.started) as f64 / 1e6,
            hops: self.hops().iter().map(HopStats::to_report).collect(),
            links: Vec::new(),
        }
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
