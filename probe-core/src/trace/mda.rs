//! Multipath Detection Algorithm: every responder at every hop behind per-flow load balancers,
//! and the links between them, at a chosen confidence.
//!
//! Hop by hop, probes with distinct flows go out until the stopping rule ([`StoppingRule`]) is
//! met: having seen `k` responders at a hop, `n_(k+1)` probes must have reached it.
//!
//! - **Reuse.** A flow already known at hop `h - 1` is reused at hop `h`, so its link is known.
//!   If hop `h - 1` has a single (confirmed) node, every flow goes through it and new flows need
//!   no check there.
//! - **Node control** (as MDA-Lite): when hop `h - 1` has several nodes, hop `h` is probed with
//!   flows known to traverse each of them, spread evenly; a predecessor with fewer known flows
//!   than its share leaves the rest to the others (the hop total is what the rule needs under
//!   uniform balancing). When the known flows run out, new flows are probed at `h - 1` until
//!   enough land on the predecessors that need them.
//! - **Meshing / nested balancers.** When hop `h - 1` and hop `h` both have several nodes and
//!   some node at `h` is reached from two predecessors (the branches cross or merge), every
//!   predecessor gets at least `n_2` flows through it (the per-node rule for one successor),
//!   with node control if needed. When each node at `h` has a single predecessor (parallel
//!   branches, such as a merge router answering from the interface each branch reaches it on),
//!   the even spread of the hop total is the check: no more than `n_(k+1)` probes go to the
//!   hop. A predecessor seen with two or more successors is itself a load balancer: it gets the
//!   full per-node rule, `n_(s+1)` flows for `s` successors.
//! - **Terminal nodes.** The target (and routers answering unreachable) end their flows: a
//!   predecessor whose successors are all terminal needs a single flow, and the trace ends at a
//!   hop whose responders are all terminal. A hop whose only responder is terminal needs one
//!   probe in all; every node of the hop before links to it (each flow reaching that far ends
//!   there), so predecessors get no flow of their own there. Elsewhere every predecessor gets
//!   at least one flow once the hop has answered, for its link. As behind a single
//!   predecessor, a branch one hop longer than the others that also ends at the target is
//!   not looked for past the hop where the target first answered.
//!
//! On a two-way diamond this costs 1 (first hop) + 11 (`n_3`, two branches) + 6 (`n_2`) + 1
//! (target) = 19 probes when the merge router answers from one address, and 1 + 11 + 11
//! (`n_3`, one merge address per branch) + 1 = 24 when it answers per incoming interface,
//! whatever the flows hash to: scamper tracelb's counts.
//! - **First hop.** With `assume_single_first_hop` (default, as scamper) the first hop gets one
//!   probe; otherwise it gets the full rule like any hop.
//! - Unanswered probes are retried (`retries` attempts), then count as stars; `gap_limit`
//!   consecutive silent hops end the trace.
//!
//! Uniform balancing is assumed when spreading flows over predecessors (the MDA-Lite premise);
//! a predecessor that shows it balances gets the strict per-node rule.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;

use super::ProbeMachine;
use super::flow::{FlowId, ProbeId};
use super::hop::HopStats;
use super::mda_rule::StoppingRule;
use super::prober::{
    ConfigError, ProbeConfig, Prober, Setting, Transmit, check_confidence, check_ttls,
};
use crate::report::trace::{LinkReport, TraceMode, TraceReport};
use crate::time::Nanos;
use crate::wire::answer::{Answer, AnswerKind};
use crate::wire::icmp::{IcmpKind, Unreachable};

/// MDA settings.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct MdaConfig {
    /// Probe shape and target (the mode is ignored: flows are chosen by the algorithm).
    pub probe: ProbeConfig,
    /// First TTL (default 1).
    pub first_ttl: u8,
    /// Last TTL (default 30).
    pub max_ttl: u8,
    /// Confidence of the stopping rule (default 0.95).
    pub confidence: f64,
    /// Attempts per (flow, TTL) before it counts as a star (default 2).
    pub retries: u8,
    /// Consecutive silent hops that end the trace (default 3).
    pub gap_limit: u8,
    /// Probe budget (default 3000).
    pub max_probes: u64,
    /// Send one probe to the first hop instead of applying the rule there (default true).
    pub assume_single_first_hop: bool,
}

impl MdaConfig {
    /// Defaults around `probe`.
    pub fn new(probe: ProbeConfig) -> Self {
        MdaConfig {
            probe,
            first_ttl: 1,
            max_ttl: 30,
            confidence: 0.95,
            retries: 2,
            gap_limit: 3,
            max_probes: 3000,
            assume_single_first_hop: true,
        }
    }
}

/// What became of one (TTL, flow) probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Waiting in the send queue.
    Queued,
    /// Sent, no answer yet.
    InFlight,
    /// Answered by this address.
    Reply(IpAddr),
    /// No answer after every attempt.
    Star,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    fate: Fate,
    attempts: u8,
}

/// Node-control bookkeeping for one predecessor of the hop being probed.
struct Pred {
    /// Flows through it already probed at the hop.
    have: usize,
    /// Its fair share (or the strict per-node rule when it balances itself).
    want: usize,
    /// The minimum it must get, with node control if needed.
    need: usize,
    /// Flows known to cross it, not yet probed at the hop (last = next to use).
    spare: Vec<FlowId>,
}

/// The MDA state machine.
#[derive(Debug, Clone)]
pub struct Mda {
    cfg: MdaConfig,
    prober: Prober,
    rule: StoppingRule,
    slots: BTreeMap<(u8, FlowId), Slot>,
    queue: VecDeque<(u8, FlowId)>,
    hops: Vec<HopStats>,
    terminal: BTreeSet<IpAddr>,
    cur: u8,
    next_flow: u16,
    gap: u8,
    done: bool,
    reached: bool,
    started: Nanos,
    last_event: Nanos,
}

impl Mda {
    /// Validates the configuration; probing starts with the first `poll_transmit`.
    pub fn new(cfg: MdaConfig, now: Nanos) -> Result<Self, ConfigError> {
        check_ttls(cfg.first_ttl, cfg.max_ttl)?;
        check_confidence(cfg.confidence)?;
        if cfg.retries == 0 {
            return Err(ConfigError::Zero(Setting::Retries));
        }
        let mut m = Mda {
            prober: Prober::new(cfg.probe)?,
            rule: StoppingRule::new(cfg.confidence, 32),
            slots: BTreeMap::new(),
            queue: VecDeque::new(),
            hops: (cfg.first_ttl..=cfg.max_ttl).map(HopStats::new).collect(),
            terminal: BTreeSet::new(),
            cur: cfg.first_ttl,
            next_flow: 0,
            gap: 0,
            done: false,
            reached: false,
            started: now,
            last_event: now,
            cfg,
        };
        m.advance();
        Ok(m)
    }

    fn hop_mut(&mut self, ttl: u8) -> Option<&mut HopStats> {
        self.hops
            .get_mut(usize::from(ttl.checked_sub(self.cfg.first_ttl)?))
    }

    /// Every (flow, slot) probed at `ttl`.
    fn at(&self, ttl: u8) -> impl Iterator<Item = (FlowId, &Slot)> {
        self.slots
            .range((ttl, FlowId(0))..=(ttl, FlowId(u16::MAX)))
            .map(|(&(_, f), s)| (f, s))
    }

    fn reply(&self, ttl: u8, flow: FlowId) -> Option<IpAddr> {
        match self.slots.get(&(ttl, flow))?.fate {
            Fate::Reply(a) => Some(a),
            _ => None,
        }
    }

    /// Distinct responders at `ttl`.
    fn nodes(&self, ttl: u8) -> BTreeSet<IpAddr> {
        self.at(ttl)
            .filter_map(|(_, s)| match s.fate {
                Fate::Reply(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    fn unresolved(&self, ttl: u8) -> bool {
        self.at(ttl)
            .any(|(_, s)| matches!(s.fate, Fate::Queued | Fate::InFlight))
    }

    fn new_flow(&mut self) -> FlowId {
        let f = FlowId(self.next_flow);
        self.next_flow = self.next_flow.wrapping_add(1);
        f
    }

    /// Probes hop `h` still needs under the stopping rule, as (TTL, flow) pairs; new flows for
    /// node control are probed at `h - 1`.
    fn plan_hop(&mut self, h: u8) -> Vec<(u8, FlowId)> {
        let nodes = self.nodes(h);
        let all_terminal = !nodes.is_empty() && nodes.is_subset(&self.terminal);
        let needed =
            if all_terminal || (h == self.cfg.first_ttl && self.cfg.assume_single_first_hop) {
                1
            } else {
                self.rule.probes_needed(nodes.len()) as usize
            };
        let probed: BTreeSet<FlowId> = self.at(h).map(|(f, _)| f).collect();
        let preds: Vec<IpAddr> = if h == self.cfg.first_ttl {
            Vec::new()
        } else {
            self.nodes(h - 1)
                .difference(&self.terminal)
                .copied()
                .collect()
        };
        let mut plan = Vec::new();
        if preds.len() <= 1 {
            // Every flow crosses the single predecessor: reuse flows known there, then new ones.
            let mut reuse: Vec<FlowId> = if h > self.cfg.first_ttl {
                self.at(h - 1)
                    .filter(|(f, s)| matches!(s.fate, Fate::Reply(_)) && !probed.contains(f))
                    .map(|(f, _)| f)
                    .collect()
            } else {
                Vec::new()
            };
            reuse.reverse();
            for _ in probed.len()..needed {
                let f = reuse.pop().unwrap_or_else(|| self.new_flow());
                plan.push((h, f));
            }
            return plan;
        }
        self.plan_node_control(h, &preds, needed, &probed)
    }

    /// Hop `h` behind several predecessors: spread flows over them.
    fn plan_node_control(
        &mut self,
        h: u8,
        preds: &[IpAddr],
        needed: usize,
        probed: &BTreeSet<FlowId>,
    ) -> Vec<(u8, FlowId)> {
        // Even spread of the hop total; the remainder goes to whoever has spare flows.
        let share = needed / preds.len();
        let seen = self.nodes(h);
        // A meshing check gives every predecessor the per-node rule for one successor (n_2
        // flows through it) when both hops have several nodes and one of them is reached from
        // two predecessors: the branches cross. When each successor has a single predecessor,
        // the even spread of the hop rule is the check.
        let mesh_check = seen.len() >= 2 && self.shared_successor(h, preds);
        let per_node = self.rule.probes_needed(1) as usize;
        let mut state: Vec<Pred> = preds
            .iter()
            .map(|&v| {
                let through: Vec<FlowId> = self
                    .at(h - 1)
                    .filter(|(_, s)| s.fate == Fate::Reply(v))
                    .map(|(f, _)| f)
                    .collect();
                let succ: BTreeSet<IpAddr> =
                    through.iter().filter_map(|&f| self.reply(h, f)).collect();
                let have = through.iter().filter(|f| probed.contains(f)).count();
                let spare: Vec<FlowId> = through
                    .into_iter()
                    .filter(|f| !probed.contains(f))
                    .rev()
                    .collect();
                // Until the hop shows a responder, the hop total alone; then every
                // predecessor needs a flow of its own to show its link, except behind a
                // single terminal responder (the link is then known, see `links`).
                let link = usize::from(!seen.is_empty() && !seen.is_subset(&self.terminal));
                let (want, need) = if !succ.is_empty() && succ.is_subset(&self.terminal) {
                    (1, 1)
                } else if succ.len() >= 2 {
                    let strict = share.max(self.rule.probes_needed(succ.len()) as usize);
                    (strict, strict)
                } else if mesh_check {
                    (share.max(per_node), per_node)
                } else {
                    (share, link)
                };
                Pred {
                    have,
                    want,
                    need,
                    spare,
                }
            })
            .collect();
        let mut plan = Vec::new();
        let mut total = probed.len();
        for p in &mut state {
            while p.have < p.want {
                let Some(f) = p.spare.pop() else { break };
                plan.push((h, f));
                p.have += 1;
                total += 1;
            }
        }
        // Top up to the hop's total from predecessors with spare flows, round robin.
        while total < needed {
            let Some(p) = state
                .iter_mut()
                .filter(|p| !p.spare.is_empty())
                .min_by_key(|p| p.have)
            else {
                break;
            };
            if let Some(f) = p.spare.pop() {
                plan.push((h, f));
                p.have += 1;
                total += 1;
            }
        }
        let deficit: usize = state
            .iter()
            .map(|p| p.need.saturating_sub(p.have))
            .sum::<usize>()
            + needed.saturating_sub(total);
        if deficit > 0 {
            // Node control: new flows at h - 1 until enough land on the short predecessors.
            let pending = self
                .at(h - 1)
                .filter(|(_, s)| matches!(s.fate, Fate::Queued | Fate::InFlight))
                .count();
            for _ in pending..deficit {
                let f = self.new_flow();
                plan.push((h - 1, f));
            }
        }
        plan
    }

    /// Whether some responder at `h` was reached through two of `preds` (the hop after a
    /// branching is meshed or merges).
    fn shared_successor(&self, h: u8, preds: &[IpAddr]) -> bool {
        let mut from: BTreeMap<IpAddr, IpAddr> = BTreeMap::new();
        for (f, s) in self.at(h) {
            let (Fate::Reply(to), Some(v)) = (s.fate, self.reply(h - 1, f)) else {
                continue;
            };
            if !preds.contains(&v) {
                continue;
            }
            if *from.entry(to).or_insert(v) != v {
                return true;
            }
        }
        false
    }

    fn enqueue(&mut self, plan: Vec<(u8, FlowId)>) {
        for key in plan {
            self.slots.insert(
                key,
                Slot {
                    fate: Fate::Queued,
                    attempts: 0,
                },
            );
            self.queue.push_back(key);
        }
    }

    /// The probe budget is spent: drop what is queued, let what is in flight finish.
    fn stop_sending(&mut self) {
        self.queue.clear();
        self.slots.retain(|_, s| s.fate != Fate::Queued);
        self.done = true;
    }

    /// Moves the trace forward: plans probes for the current hop or settles it.
    fn advance(&mut self) {
        while !self.done {
            if self.prober.sent_total() >= self.cfg.max_probes {
                self.stop_sending();
                return;
            }
            let h = self.cur;
            let mut plan = if h > self.cfg.first_ttl {
                self.plan_hop(h - 1)
            } else {
                Vec::new()
            };
            if plan.is_empty() {
                plan = self.plan_hop(h);
            }
            if !plan.is_empty() {
                self.enqueue(plan);
                return;
            }
            if self.unresolved(h) || (h > self.cfg.first_ttl && self.unresolved(h - 1)) {
                return;
            }
            let nodes = self.nodes(h);
            self.gap = if nodes.is_empty() { self.gap + 1 } else { 0 };
            let ends = !nodes.is_empty() && nodes.is_subset(&self.terminal);
            if ends || self.gap >= self.cfg.gap_limit || h >= self.cfg.max_ttl {
                self.done = true;
                return;
            }
            self.cur = h + 1;
        }
    }

    fn ingest(&mut self, ttl: u8, flow: FlowId, a: &Answer, rtt_ns: i64, nat: bool) {
        if let Some(h) = self.hop_mut(ttl) {
            h.record_answer(a, rtt_ns, nat);
        }
        let terminal = match a.kind {
            AnswerKind::Icmp(IcmpKind::Unreachable(Unreachable::FragNeeded { .. })) => false,
            AnswerKind::Icmp(IcmpKind::Unreachable(_) | IcmpKind::EchoReply { .. })
            | AnswerKind::Tcp(_)
            | AnswerKind::Udp(_) => true,
            AnswerKind::Icmp(_) => false,
        };
        if terminal {
            self.terminal.insert(a.from);
            self.reached |= a.from == self.cfg.probe.dst;
        }
        if let Some(s) = self.slots.get_mut(&(ttl, flow)) {
            s.fate = Fate::Reply(a.from);
        }
    }

    /// Whether the target answered.
    pub fn reached(&self) -> bool {
        self.reached
    }

    /// Probes sent so far.
    pub fn probes_sent(&self) -> u64 {
        self.prober.sent_total()
    }

    /// Links between responders of consecutive hops, from flows seen at both (or crossing a hop
    /// with a single responder). A hop whose only responder is terminal (the target) links
    /// every responder of the hop before to it: each flow that gets that far ends there.
    pub fn links(&self) -> Vec<LinkReport> {
        let mut out = BTreeSet::new();
        let last = self.cur.min(self.cfg.max_ttl);
        for h in self.cfg.first_ttl..last {
            let nodes = self.nodes(h);
            let single = (nodes.len() == 1).then(|| nodes.first().copied()).flatten();
            for (f, s) in self.at(h + 1) {
                let Fate::Reply(to) = s.fate else { continue };
                if let Some(from) = self.reply(h, f).or(single) {
                    out.insert(LinkReport { ttl: h, from, to });
                }
            }
            let next = self.nodes(h + 1);
            if let (1, Some(&to)) = (next.len(), next.first())
                && self.terminal.contains(&to)
            {
                for &from in nodes.difference(&self.terminal) {
                    out.insert(LinkReport { ttl: h, from, to });
                }
            }
        }
        out.into_iter().collect()
    }

    /// The report: hops up to where the trace ended, with responders and links.
    pub fn report(&self) -> TraceReport {
        let c = &self.cfg;
        let n = usize::from(self.cur.min(c.max_ttl) - c.first_ttl) + 1;
        TraceReport {
            target: c.probe.dst,
            target_name: None,
            source: c.probe.src,
            protocol: c.probe.protocol,
            mode: TraceMode::Mda,
            privilege: None,
            reached: self.reached,
            pmtu: None,
            first_ttl: c.first_ttl,
            max_ttl: c.max_ttl,
            queries: 0,
            count: 1,
            confidence_pct: Some(c.confidence * 100.0),
            probes_sent: self.prober.sent_total(),
            duration_ms: (self.last_event - self.started) as f64 / 1e6,
            hops: self.hops[..n].iter().map(HopStats::to_report).collect(),
            links: self.links(),
        }
    }
}

impl ProbeMachine for Mda {
    fn poll_transmit(&mut self, now: Nanos, buf: &mut Vec<u8>) -> Option<Transmit> {
        if self.prober.sent_total() >= self.cfg.max_probes {
            self.stop_sending();
            return None;
        }
        if !self.prober.may_send(now) {
            return None;
        }
        let (ttl, flow) = self.queue.pop_front()?;
        let tx = self
            .prober
            .send(now, flow, ttl, self.cfg.probe.size, 0, buf)
            .ok()?;
        if let Some(s) = self.slots.get_mut(&(ttl, flow)) {
            s.fate = Fate::InFlight;
            s.attempts += 1;
        }
        if let Some(h) = self.hop_mut(ttl) {
            h.record_sent();
        }
        self.last_event = now;
        Some(tx)
    }

    fn poll_timeout(&self) -> Option<Nanos> {
        if self.is_done() {
            return None;
        }
        let send = (!self.queue.is_empty()).then(|| self.prober.next_send_at());
        [self.prober.next_deadline(), send]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Nanos) {
        let expired = self.prober.expire(now);
        if expired.is_empty() {
            return;
        }
        for p in expired {
            self.last_event = p.deadline;
            if let Some(h) = self.hop_mut(p.ttl) {
                h.record_lost();
            }
            let key = (p.ttl, p.flow);
            let retries = self.cfg.retries;
            if let Some(s) = self.slots.get_mut(&key) {
                if s.attempts < retries {
                    s.fate = Fate::Queued;
                    self.queue.push_back(key);
                } else {
                    s.fate = Fate::Star;
                }
            }
        }
        self.advance();
    }

    fn handle_answer(&mut self, a: &Answer, rx: Nanos) -> bool {
        let Some(m) = self.prober.match_answer(a, rx, None) else {
            return false;
        };
        self.last_event = rx;
        self.ingest(m.probe.ttl, m.probe.flow, a, m.rtt_ns, m.nat);
        self.advance();
        true
    }

    fn is_done(&self) -> bool {
        self.done && self.prober.in_flight_count() == 0
    }

    fn set_sent_time(&mut self, id: ProbeId, tx: Nanos) {
        self.prober.set_sent_time(id, tx);
    }
}

#[cfg(test)]
#[path = "mda_tests.rs"]
mod tests;
