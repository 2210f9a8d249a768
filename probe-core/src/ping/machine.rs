//! The sans-IO many-target ping: per-target schedules under one global token bucket, probes
//! with run-wide unique ids, answers matched by (target, id), per-target statistics.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::IpAddr;

use super::config::{PingConfig, PingConfigError};
use super::rate::TokenBucket;
use super::summary::RttSummary;
use crate::time::Nanos;
use crate::trace::flow::FlowSpec;
use crate::trace::{EmitLayer, FlowId, FlowMode, ProbeId, ProbeMachine, Protocol, Transmit};
use crate::wire::answer::{Answer, AnswerKind};
use crate::wire::icmp::{IcmpKind, Unreachable};

/// Probes in flight at most: the 16-bit probe id space minus a margin, so an id is never
/// reused while an earlier probe with it may still be answered.
const MAX_IN_FLIGHT: usize = 0xFFF0;

/// TTL / hop limit of ping probes.
const PROBE_TTL: u8 = 64;

/// One target of a run, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingTarget {
    /// As given (name or address).
    pub name: String,
    /// The address probed.
    pub addr: IpAddr,
    /// Our source address towards it (enters UDP and TCP checksums).
    pub src: IpAddr,
}

/// What the target said about the probed port (UDP and TCP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// A SYN-ACK (TCP) or a STAMP reply (UDP).
    Open,
    /// A reset (TCP) or an ICMP port unreachable from the target (UDP).
    Closed,
}

impl PortState {
    /// `open` or `closed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
        }
    }
}

/// Where one target stands.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetStats {
    /// The target.
    pub target: PingTarget,
    /// Probes sent.
    pub sent: u32,
    /// Probes answered by the target in time.
    pub received: u32,
    /// Round-trip times of the answered probes.
    pub rtt: RttSummary,
    /// Round-trip time of every probe in ns (`None`: lost), when per-probe results are kept.
    pub per_probe: Option<Vec<Option<i64>>>,
    /// The port state the last answer showed (UDP, TCP).
    pub port: Option<PortState>,
    /// The last ICMP error about this target's probes ("host unreachable from 10.0.0.1").
    pub error: Option<String>,
}

/// A probe waiting for its answer.
#[derive(Clone, Copy, Debug)]
struct Flight {
    target: u32,
    seq: u32,
    /// The first payload word (UDP: what a STAMP reflector echoes back).
    word: u16,
    sent_at: Nanos,
    deadline: Nanos,
}

/// The many-target ping state machine. Drive it through [`ProbeMachine`].
#[derive(Debug)]
pub struct Ping {
    cfg: PingConfig,
    targets: Vec<TargetStats>,
    /// A target index per address (targets sharing an address share the probe shape).
    by_addr: HashMap<IpAddr, u32>,
    /// When each target with probes left is due next.
    due: BinaryHeap<Reverse<(Nanos, u32)>>,
    flights: HashMap<u16, Flight>,
    /// UDP probes in flight by (target address, first payload word), for STAMP replies.
    by_word: HashMap<(IpAddr, u16), u16>,
    /// Probe ids by deadline (deadlines grow with release time: the timeout is constant).
    expiry: VecDeque<(Nanos, u16)>,
    next_id: ProbeId,
    bucket: TokenBucket,
    unmatched: u64,
}

impl Ping {
    /// Validates `cfg` and builds the machine; every target is due at `now`.
    pub fn new(
        cfg: PingConfig,
        targets: Vec<PingTarget>,
        now: Nanos,
    ) -> Result<Self, PingConfigError> {
        cfg.validate()?;
        let mut by_addr = HashMap::with_capacity(targets.len());
        let mut due = BinaryHeap::with_capacity(targets.len());
        let mut stats = Vec::with_capacity(targets.len());
        for (i, t) in targets.into_iter().enumerate() {
            if t.src.is_ipv6() != t.addr.is_ipv6() {
                return Err(PingConfigError::MixedFamilies {
                    src: t.src,
                    dst: t.addr,
                });
            }
            let i = i as u32;
            by_addr.entry(t.addr).or_insert(i);
            due.push(Reverse((now, i)));
            stats.push(TargetStats {
                target: t,
                sent: 0,
                received: 0,
                rtt: RttSummary::default(),
                per_probe: cfg
                    .per_probe
                    .then(|| Vec::with_capacity(cfg.count.min(4096) as usize)),
                port: None,
                error: None,
            });
        }
        let ping = Ping {
            cfg,
            targets: stats,
            by_addr,
            due,
            flights: HashMap::new(),
            by_word: HashMap::new(),
            expiry: VecDeque::new(),
            next_id: ProbeId::FIRST,
            bucket: TokenBucket::new(cfg.rate_pps, cfg.burst),
            unmatched: 0,
        };
        if let Some(t) = ping.targets.first() {
            // Fails now rather than at the first probe if the size cannot carry the probe.
            ping.spec(&t.target)
                .probe(
                    FlowId(0),
                    ProbeId::FIRST,
                    PROBE_TTL,
                    ping.packet_size(t.target.addr),
                )
                .emit_l4(&mut Vec::new())
                .map_err(|_| PingConfigError::Size {
                    size: ping.cfg.size,
                })?;
        }
        Ok(ping)
    }

    /// The configuration.
    pub fn config(&self) -> &PingConfig {
        &self.cfg
    }

    /// Every target's statistics, in the order given.
    pub fn targets(&self) -> &[TargetStats] {
        &self.targets
    }

    /// Answers that matched no probe in flight (late, duplicated or foreign).
    pub fn unmatched(&self) -> u64 {
        self.unmatched
    }

    /// Probes in flight.
    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }

    fn spec(&self, t: &PingTarget) -> FlowSpec {
        FlowSpec {
            protocol: self.cfg.protocol,
            mode: FlowMode::Paris,
            src: t.src,
            dst: t.addr,
            src_port: self.cfg.src_port,
            dst_port: self.cfg.dst_port,
            icmp_ident: self.cfg.icmp_ident,
            tcp_nonce: self.cfg.tcp_nonce,
            ip_id_is_probe_id: false,
        }
    }

    /// Whole IP packet size of a probe to `addr`.
    fn packet_size(&self, addr: IpAddr) -> u16 {
        let ip = if addr.is_ipv6() { 40 } else { 20 };
        match self.cfg.protocol {
            Protocol::Tcp => ip + 20,
            Protocol::Icmp | Protocol::Udp => ip + 8 + self.cfg.size,
        }
    }

    /// A free probe id (the caller checked that fewer than [`MAX_IN_FLIGHT`] are in flight).
    fn allocate_id(&mut self) -> ProbeId {
        let mut id = self.next_id;
        while self.flights.contains_key(&id.0) {
            id = id.next();
        }
        self.next_id = id.next();
        id
    }

    /// Records on its target that probe `id` could not be sent (it times out as lost).
    pub fn note_send_error(&mut self, id: ProbeId, error: &std::io::Error) {
        if let Some(f) = self.flights.get(&id.0) {
            self.targets[f.target as usize].error = Some(format!("sending failed: {error}"));
        }
    }

    /// Takes probe `id` out of flight.
    fn land(&mut self, id: u16) -> Option<Flight> {
        let f = self.flights.remove(&id)?;
        if self.cfg.protocol == Protocol::Udp {
            let addr = self.targets[f.target as usize].target.addr;
            self.by_word.remove(&(addr, f.word));
        }
        Some(f)
    }

    /// The target an answer is about and its probe id, if it is one of ours.
    fn recognise(&self, a: &Answer) -> Option<(u16, Flight)> {
        if let (AnswerKind::Udp(u), Protocol::Udp) = (a.kind, self.cfg.protocol) {
            if u.src_port != self.cfg.dst_port || u.dst_port != self.cfg.src_port {
                return None;
            }
            let id = *self.by_word.get(&(a.from, (u.sender_seq >> 16) as u16))?;
            return self.flights.get(&id).map(|f| (id, *f));
        }
        let about = a.quote.as_ref().map_or(a.from, |q| q.dst);
        let &idx = self.by_addr.get(&about)?;
        let spec = self.spec(&self.targets[idx as usize].target);
        let rec = spec.recognise(a)?;
        let flight = *self.flights.get(&rec.id.0)?;
        (self.targets[flight.target as usize].target.addr == about).then_some((rec.id.0, flight))
    }
}

/// What an answer means for its probe.
enum Verdict {
    /// The target answered: the probe counts as received.
    Reached(Option<PortState>),
    /// An error about the probe (from the target or a router): lost, with the reason.
    Failed(String),
}

fn verdict(protocol: Protocol, a: &Answer, target: IpAddr) -> Verdict {
    match (a.kind, &a.quote) {
        (AnswerKind::Tcp(t), None) => Verdict::Reached(Some(if t.rst {
            PortState::Closed
        } else {
            PortState::Open
        })),
        (AnswerKind::Icmp(IcmpKind::EchoReply { .. }), None) => Verdict::Reached(None),
        (AnswerKind::Udp(_), None) => Verdict::Reached(Some(PortState::Open)),
        (AnswerKind::Icmp(IcmpKind::Unreachable(Unreachable::Port)), Some(_))
            if protocol == Protocol::Udp && a.from == target =>
        {
            Verdict::Reached(Some(PortState::Closed))
        }
        (kind, _) => Verdict::Failed(format!("{} from {}", kind.description(), a.from)),
    }
}

impl ProbeMachine for Ping {
    fn poll_transmit(&mut self, now: Nanos, buf: &mut Vec<u8>) -> Option<Transmit> {
        loop {
            let &Reverse((at, idx)) = self.due.peek()?;
            if at > now || !self.bucket.ready(now) || self.flights.len() >= MAX_IN_FLIGHT {
                return None;
            }
            self.due.pop();
            let id = self.allocate_id();
            let t = &self.targets[idx as usize];
            let mut probe = self.spec(&t.target).probe(
                FlowId(0),
                id,
                PROBE_TTL,
                self.packet_size(t.target.addr),
            );
            probe.tos = self.cfg.tos;
            let written = match self.cfg.emit {
                EmitLayer::Ip => probe.emit_ip(buf),
                EmitLayer::L4 => probe.emit_l4(buf),
            };
            let t = &mut self.targets[idx as usize];
            if let Err(e) = written {
                // Not reachable after the check in `new`; the target is reported, not probed.
                t.error = Some(format!("cannot build the probe: {e}"));
                continue;
            }
            self.bucket.take(now);
            let seq = t.sent;
            t.sent += 1;
            if let Some(list) = &mut t.per_probe {
                list.push(None);
            }
            if t.sent < self.cfg.count {
                self.due.push(Reverse((now + self.cfg.interval, idx)));
            }
            let deadline = now + self.cfg.timeout;
            let at = match self.cfg.emit {
                EmitLayer::Ip => probe.ip_header_len(),
                EmitLayer::L4 => 0,
            } + probe.l4.header_len();
            let word = buf
                .get(at..at + 2)
                .map_or(0, |w| u16::from_be_bytes([w[0], w[1]]));
            if self.cfg.protocol == Protocol::Udp {
                self.by_word.insert((t.target.addr, word), id.0);
            }
            self.flights.insert(
                id.0,
                Flight {
                    target: idx,
                    seq,
                    word,
                    sent_at: now,
                    deadline,
                },
            );
            self.expiry.push_back((deadline, id.0));
            return Some(Transmit {
                id,
                flow: FlowId(0),
                ttl: PROBE_TTL,
                probe,
                layer: self.cfg.emit,
                len: buf.len(),
                at: now,
            });
        }
    }

    fn poll_timeout(&self) -> Option<Nanos> {
        let send = self.due.peek().map(|Reverse((at, _))| {
            if self.flights.len() >= MAX_IN_FLIGHT {
                // Waits for an id to free up: the next expiry.
                Nanos(u64::MAX)
            } else {
                (*at).max(self.bucket.ready_at())
            }
        });
        let expire = self.expiry.front().map(|e| e.0);
        match (send, expire) {
            (Some(s), Some(e)) => Some(s.min(e)),
            (s, e) => s.or(e),
        }
    }

    fn handle_timeout(&mut self, now: Nanos) {
        while let Some(&(deadline, id)) = self.expiry.front() {
            if deadline > now {
                break;
            }
            self.expiry.pop_front();
            if self
                .flights
                .get(&id)
                .is_some_and(|f| f.deadline == deadline)
            {
                self.land(id);
            }
        }
    }

    fn handle_answer(&mut self, answer: &Answer, rx: Nanos) -> bool {
        let Some((id, flight)) = self.recognise(answer) else {
            self.unmatched += 1;
            return false;
        };
        self.land(id);
        let t = &mut self.targets[flight.target as usize];
        match verdict(self.cfg.protocol, answer, t.target.addr) {
            Verdict::Reached(port) => {
                let rtt = (rx - flight.sent_at).max(0);
                t.received += 1;
                t.rtt.record(rtt);
                if let Some(slot) = t
                    .per_probe
                    .as_mut()
                    .and_then(|l| l.get_mut(flight.seq as usize))
                {
                    *slot = Some(rtt);
                }
                if port.is_some() {
                    t.port = port;
                }
            }
            Verdict::Failed(why) => t.error = Some(why),
        }
        true
    }

    fn is_done(&self) -> bool {
        self.due.is_empty() && self.flights.is_empty()
    }

    fn set_sent_time(&mut self, id: ProbeId, tx: Nanos) {
        if let Some(f) = self.flights.get_mut(&id.0) {
            f.sent_at = tx;
        }
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
