//! Path MTU discovery (RFC 1191 / RFC 8201 style, driven by probes that reach the target).
//!
//! Probes carry DF (IPv6 never fragments in the network; the socket must set `IPV6_DONTFRAG` /
//! `IP_PMTUDISC_PROBE`). The state machine keeps the largest size known to reach the target
//! (`lo`) and the smallest size known not to (`hi`):
//!
//! - the target answers a probe of size `s`: `lo = max(lo, s)`;
//! - a router answers fragmentation needed / packet too big reporting `m` with `m < s`:
//!   `hi = min(hi, m + 1)` and `m` is probed next (one round trip per bottleneck);
//! - a router reports 0 (pre-RFC 1191) or nonsense, or probes of size `s` vanish `retries`
//!   times (a PMTU black hole): `hi = min(hi, s)` and the next size bisects `(lo, hi)`;
//! - the local interface refuses the size ([`Pmtu::handle_local_mtu`]): as a router report.
//!
//! It ends when `hi - lo <= 1`: the path MTU is `lo`. If the target never answers, the result is
//! `None`.

use std::net::IpAddr;

use super::ProbeMachine;
use super::flow::{FlowId, ProbeId};
use super::prober::{ConfigError, ProbeConfig, Prober, Setting, Transmit};
use crate::time::Nanos;
use crate::wire::answer::{Answer, AnswerKind};
use crate::wire::icmp::{IcmpKind, Unreachable};

/// Path MTU discovery settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PmtuConfig {
    /// Probe shape and target (`dont_fragment` is forced on).
    pub probe: ProbeConfig,
    /// TTL of the probes (default 64).
    pub ttl: u8,
    /// Largest size tried, normally the outgoing interface MTU (default 1500).
    pub max_size: u16,
    /// Smallest size considered (default 68 for IPv4, 1280 for IPv6).
    pub min_size: u16,
    /// Probes of one size that may vanish before the size counts as too big (default 2).
    pub retries: u8,
}

impl PmtuConfig {
    /// Defaults around `probe`.
    pub fn new(probe: ProbeConfig) -> Self {
        PmtuConfig {
            probe,
            ttl: 64,
            max_size: 1500,
            min_size: if probe.dst.is_ipv6() { 1280 } else { 68 },
            retries: 2,
        }
    }
}

/// What path MTU discovery found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PmtuOutcome {
    /// The path MTU, if the target answered at some size.
    pub pmtu: Option<u16>,
    /// The last router that reported a smaller MTU (the bottleneck).
    pub bottleneck: Option<IpAddr>,
    /// Some size was lost silently (no ICMP): a PMTU black hole on the path.
    pub black_hole: bool,
    /// A router refused probes outright (unreachable other than frag needed).
    pub blocked_by: Option<IpAddr>,
    /// Probes sent.
    pub probes: u64,
}

/// The path MTU state machine.
#[derive(Debug, Clone)]
pub struct Pmtu {
    cfg: PmtuConfig,
    prober: Prober,
    lo: u16,
    hi: u32,
    size: u16,
    attempts: u8,
    in_flight: bool,
    bottleneck: Option<IpAddr>,
    black_hole: bool,
    blocked_by: Option<IpAddr>,
    done: bool,
}

impl Pmtu {
    /// Validates the configuration; probing starts with the first `poll_transmit`.
    pub fn new(cfg: PmtuConfig) -> Result<Self, ConfigError> {
        if cfg.min_size > cfg.max_size {
            return Err(ConfigError::PmtuRange {
                min: cfg.min_size,
                max: cfg.max_size,
            });
        }
        if cfg.retries == 0 {
            return Err(ConfigError::Zero(Setting::Retries));
        }
        if cfg.ttl == 0 {
            return Err(ConfigError::Zero(Setting::Ttl));
        }
        let mut probe = cfg.probe;
        probe.dont_fragment = true;
        probe.size = cfg.min_size;
        let prober = Prober::new(probe)?;
        Ok(Pmtu {
            cfg,
            prober,
            lo: 0,
            hi: u32::from(cfg.max_size) + 1,
            size: cfg.max_size,
            attempts: 0,
            in_flight: false,
            bottleneck: None,
            black_hole: false,
            blocked_by: None,
            done: false,
        })
    }

    /// Chooses the next size, or finishes.
    fn next_size(&mut self, suggested: Option<u16>) {
        self.attempts = 0;
        let floor = u32::from(self.lo.max(self.cfg.min_size - 1));
        if self.hi <= floor + 1 {
            self.done = true;
            return;
        }
        self.size = match suggested {
            Some(m) if u32::from(m) > floor && u32::from(m) < self.hi => m,
            _ => u16::try_from(u32::midpoint(floor, self.hi)).unwrap_or(u16::MAX),
        };
    }

    /// The size in flight failed; `reported` is the MTU a router or the host reported.
    fn too_big(&mut self, size: u16, reported: Option<u16>, from: Option<IpAddr>) {
        let usable = reported.filter(|&m| m >= self.cfg.min_size && m < size);
        self.hi = self.hi.min(u32::from(size));
        if let Some(m) = usable {
            self.hi = self.hi.min(u32::from(m) + 1);
            if from.is_some() {
                self.bottleneck = from;
            }
        }
        self.next_size(usable);
    }

    /// The local interface refused to send the probe in flight (`EMSGSIZE`); `mtu` is what the
    /// socket reports (`IP_MTU` / `IPV6_MTU`), if known.
    pub fn handle_local_mtu(&mut self, id: ProbeId, mtu: Option<u16>) {
        if let Some(p) = self.prober.take(id) {
            self.in_flight = false;
            self.too_big(p.size, mtu, None);
        }
    }

    /// The outcome so far (final once [`Pmtu::is_done`]).
    pub fn outcome(&self) -> PmtuOutcome {
        PmtuOutcome {
            pmtu: (self.lo > 0).then_some(self.lo),
            bottleneck: self.bottleneck,
            black_hole: self.black_hole,
            blocked_by: self.blocked_by,
            probes: self.prober.sent_total(),
        }
    }
}

impl ProbeMachine for Pmtu {
    fn poll_transmit(&mut self, now: Nanos, buf: &mut Vec<u8>) -> Option<Transmit> {
        if self.done || self.in_flight || !self.prober.may_send(now) {
            return None;
        }
        let tx = self
            .prober
            .send(now, FlowId(0), self.cfg.ttl, self.size, 0, buf)
            .ok()?;
        self.in_flight = true;
        self.attempts += 1;
        Some(tx)
    }

    fn poll_timeout(&self) -> Option<Nanos> {
        if self.done {
            None
        } else if self.in_flight {
            self.prober.next_deadline()
        } else {
            Some(self.prober.next_send_at())
        }
    }

    fn handle_timeout(&mut self, now: Nanos) {
        for p in self.prober.expire(now) {
            self.in_flight = false;
            if self.attempts >= self.cfg.retries {
                self.black_hole = true;
                self.too_big(p.size, None, None);
            }
        }
    }

    fn handle_answer(&mut self, a: &Answer, rx: Nanos) -> bool {
        let Some(m) = self.prober.match_answer(a, rx, Some(FlowId(0))) else {
            return false;
        };
        self.in_flight = false;
        let size = m.probe.size;
        let from_target = a.from == self.cfg.probe.dst;
        match a.kind {
            AnswerKind::Icmp(IcmpKind::Unreachable(Unreachable::FragNeeded { mtu })) => {
                self.too_big(size, Some(mtu), Some(a.from));
            }
            AnswerKind::Icmp(IcmpKind::PacketTooBig { mtu }) => {
                let mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
                self.too_big(size, Some(mtu), Some(a.from));
            }
            AnswerKind::Icmp(IcmpKind::EchoReply { .. } | IcmpKind::Unreachable(_))
            | AnswerKind::Tcp(_)
            | AnswerKind::Udp(_)
                if from_target =>
            {
                self.lo = self.lo.max(size);
                self.next_size(None);
            }
            AnswerKind::Icmp(IcmpKind::Unreachable(_)) => {
                self.blocked_by = Some(a.from);
                self.done = true;
            }
            _ => {
                // Time exceeded and the like: the TTL is too small for this path; give up.
                self.done = true;
            }
        }
        true
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn set_sent_time(&mut self, id: ProbeId, tx: Nanos) {
        self.prober.set_sent_time(id, tx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::flow::Protocol;
    use crate::trace::sim::{SimNet, drive};

    const T0: Nanos = Nanos(1_000_000_000);

    fn net(v6: bool) -> SimNet {
        if v6 {
            SimNet::chain(
                "fd00::1",
                &["fd00:1::1", "fd00:2::1", "fd00:3::1", "fd00:9::9"],
            )
        } else {
            SimNet::chain(
                "10.0.0.1",
                &["10.0.1.1", "10.0.2.1", "10.0.3.1", "10.0.9.9"],
            )
        }
    }

    fn run(net: &mut SimNet, protocol: Protocol) -> PmtuOutcome {
        let probe = ProbeConfig::new(protocol, net.src, net.addr(net.target));
        let mut p = Pmtu::new(PmtuConfig::new(probe)).expect("config");
        drive(&mut p, net, T0);
        p.outcome()
    }

    #[test]
    fn one_1400_byte_link_gives_1400_in_two_probes() {
        for protocol in [Protocol::Udp, Protocol::Icmp] {
            let mut n = net(false);
            n.nodes[1].link_mtu = 1400;
            let o = run(&mut n, protocol);
            assert_eq!(o.pmtu, Some(1400), "{protocol:?}");
            assert_eq!(o.bottleneck, Some(n.addr(1)));
            assert_eq!(o.probes, 2);
            assert!(!o.black_hole);
        }
    }

    #[test]
    fn two_bottlenecks_are_followed() {
        let mut n = net(false);
        n.nodes[0].link_mtu = 1400;
        n.nodes[2].link_mtu = 1300;
        let o = run(&mut n, Protocol::Udp);
        assert_eq!(o.pmtu, Some(1300));
        assert_eq!(o.bottleneck, Some(n.addr(2)));
        assert_eq!(o.probes, 3);
    }

    #[test]
    fn router_reporting_zero_is_searched() {
        let mut n = net(false);
        n.nodes[1].link_mtu = 1400;
        n.nodes[1].report_mtu = false;
        let o = run(&mut n, Protocol::Udp);
        assert_eq!(o.pmtu, Some(1400));
        // Bisection of (67, 1500]: 11 probes after the first.
        assert!(o.probes <= 12, "{} probes", o.probes);
        assert!(!o.black_hole);
    }

    #[test]
    fn black_hole_is_searched_with_retries() {
        let mut n = net(false);
        n.nodes[1].link_mtu = 1400;
        n.nodes[1].silent = true;
        let o = run(&mut n, Protocol::Udp);
        assert_eq!(o.pmtu, Some(1400));
        assert!(o.black_hole);
    }

    #[test]
    fn ipv6_packet_too_big() {
        let mut n = net(true);
        n.nodes[2].link_mtu = 1280;
        let o = run(&mut n, Protocol::Udp);
        assert_eq!(o.pmtu, Some(1280));
        assert_eq!(o.bottleneck, Some(n.addr(2)));
        let mut n = net(true);
        let o = run(&mut n, Protocol::Icmp);
        assert_eq!(o.pmtu, Some(1500));
        assert_eq!(o.probes, 1);
    }

    #[test]
    fn unreachable_target_gives_no_pmtu() {
        let mut n = net(false);
        n.target_answers = false;
        let o = run(&mut n, Protocol::Udp);
        assert_eq!(o.pmtu, None);
        let mut n = net(false);
        n.nodes[1].reject = true;
        let o = run(&mut n, Protocol::Udp);
        assert_eq!((o.pmtu, o.blocked_by), (None, Some(n.addr(1))));
    }

    #[test]
    fn local_interface_mtu() {
        let n = net(false);
        let probe = ProbeConfig::new(Protocol::Udp, n.src, n.addr(n.target));
        let mut p = Pmtu::new(PmtuConfig::new(probe)).expect("config");
        let mut buf = Vec::new();
        let tx = p.poll_transmit(T0, &mut buf).expect("probe");
        assert_eq!(tx.len, 1500 - 20);
        assert!(tx.probe.dont_fragment);
        p.handle_local_mtu(tx.id, Some(1450));
        let tx = p.poll_transmit(T0, &mut buf).expect("probe");
        assert_eq!(tx.probe.size, 1450);
        assert!(
            Pmtu::new(PmtuConfig {
                min_size: 2000,
                ..PmtuConfig::new(probe)
            })
            .is_err()
        );
    }
}
