//! Many-target ping results (`probe ping`): the public JSON contract, an fping-like summary and
//! fping's `-C` per-probe list.
//!
//! Field semantics:
//! - `targets[]` follow the order given (command line, then file). `target` is the name as
//!   given, `addr` the address probed (`null` when the name did not resolve).
//! - `received` counts answers from the target itself within the timeout: echo replies (ICMP),
//!   port unreachable or a STAMP reply (UDP), SYN-ACK or RST (TCP). `loss_pct` is
//!   `100 * (1 - received / sent)` (100 when nothing was sent).
//! - `rtt_ms` is `null` without any answer; `p50` is exact up to five answers (and with
//!   `per_probe_ms`), a P² estimate beyond.
//! - `error` names what went wrong for that target: no address, no route, or the last ICMP
//!   error about its probes (`host unreachable from 10.0.0.1`).
//! - `port` (UDP, TCP) is `open` (SYN-ACK, STAMP reply) or `closed` (RST, port unreachable).
//! - `per_probe_ms` (with `--per-probe`) holds every probe's round-trip time, `null` if lost.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use super::rtt::RttMs;
use super::rtt::labelled;
use crate::ping::TargetStats;
use crate::ping::summary::exact_median;

/// The result of a many-target ping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PingReport {
    /// `icmp`, `udp` or `tcp`.
    pub protocol: String,
    /// How the probes were sent: `raw` sockets or `unprivileged` (ICMP datagram sockets, UDP
    /// sockets with `IP_RECVERR`); `null` when nothing was sent.
    pub privilege: Option<String>,
    /// Probes per target.
    pub count: u32,
    /// Wall time of the run.
    pub duration_ms: f64,
    /// One entry per target, in the order given.
    pub targets: Vec<PingTargetReport>,
}

/// One target's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PingTargetReport {
    /// The target as given.
    pub target: String,
    /// The address probed.
    pub addr: Option<IpAddr>,
    /// Probes sent.
    pub sent: u32,
    /// Answers from the target in time.
    pub received: u32,
    /// Loss in percent.
    pub loss_pct: f64,
    /// Round-trip times of the answers.
    pub rtt_ms: Option<RttMs>,
    /// What went wrong for this target, if anything.
    pub error: Option<String>,
    /// `open` or `closed` (UDP and TCP probes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// Every probe's round-trip time in ms, `null` if lost (`--per-probe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_probe_ms: Option<Vec<Option<f64>>>,
}

fn ms(ns: f64) -> f64 {
    ns / 1e6
}

impl PingTargetReport {
    /// The report of a probed target.
    pub fn from_stats(s: &TargetStats) -> Self {
        let per_probe_ms = s.per_probe.as_ref().map(|l| {
            l.iter()
                .map(|r| r.map(|ns| ms(ns as f64)))
                .collect::<Vec<_>>()
        });
        let rtt_ms = match (s.rtt.min(), s.rtt.max()) {
            (Some(min), Some(max)) => {
                let p50 = match &per_probe_ms {
                    Some(list) => {
                        let mut v: Vec<f64> = list.iter().flatten().copied().collect();
                        v.sort_by(f64::total_cmp);
                        exact_median(&v)
                    }
                    None => ms(s.rtt.median().unwrap_or(0.0)),
                };
                Some(RttMs {
                    min: ms(min as f64),
                    mean: ms(s.rtt.mean()),
                    p50,
                    max: ms(max as f64),
                    stddev: ms(s.rtt.stddev()),
                })
            }
            _ => None,
        };
        PingTargetReport {
            target: s.target.name.clone(),
            addr: Some(s.target.addr),
            sent: s.sent,
            received: s.received,
            loss_pct: loss_pct(s.sent, s.received),
            rtt_ms,
            error: s.error.clone(),
            port: s.port.map(|p| p.as_str().to_string()),
            per_probe_ms,
        }
    }

    /// The report of a target that could not be probed (no address, no route).
    pub fn failed(target: &str, addr: Option<IpAddr>, error: String) -> Self {
        PingTargetReport {
            target: target.to_string(),
            addr,
            sent: 0,
            received: 0,
            loss_pct: 100.0,
            rtt_ms: None,
            error: Some(error),
            port: None,
            per_probe_ms: None,
        }
    }

    /// Whether the target answered at least once.
    pub fn reachable(&self) -> bool {
        self.received > 0
    }
}

/// Loss in percent over `sent` probes (100 when none was sent).
pub fn loss_pct(sent: u32, received: u32) -> f64 {
    if sent == 0 {
        100.0
    } else {
        100.0 * (1.0 - f64::from(received.min(sent)) / f64::from(sent))
    }
}

impl PingReport {
    /// Whether every target answered at least once (fping's exit status 0).
    pub fn all_reachable(&self) -> bool {
        self.targets.iter().all(PingTargetReport::reachable)
    }
}

/// How a target is named in text output: the name, with the address when they differ.
fn label(t: &PingTargetReport) -> String {
    t.addr
        .map_or_else(|| t.target.clone(), |a| labelled(&t.target, a))
}

/// The width of the widest label, so that the columns after it line up.
fn label_width(r: &PingReport) -> usize {
    r.targets.iter().map(|t| label(t).len()).max().unwrap_or(0)
}

/// The fping-like summary: one line per target,
/// `NAME : xmt/rcv/%loss = 3/3/0%, min/avg/max = 0.05/0.06/0.08`.
pub fn render_summary(r: &PingReport) -> String {
    let width = label_width(r);
    let mut out = String::new();
    for t in &r.targets {
        let _ = write!(
            out,
            "{:<width$} : xmt/rcv/%loss = {}/{}/{:.0}%",
            label(t),
            t.sent,
            t.received,
            t.loss_pct
        );
        if let Some(rtt) = &t.rtt_ms {
            let _ = write!(
                out,
                ", min/avg/max = {:.3}/{:.3}/{:.3}",
                rtt.min, rtt.mean, rtt.max
            );
        }
        if let Some(p) = &t.port {
            let _ = write!(out, ", port {p}");
        }
        if let Some(e) = &t.error {
            let _ = write!(out, " ({e})");
        }
        out.push('\n');
    }
    out
}

/// fping's `-C` list: `NAME : 0.05 0.06 -` with every probe's round-trip time in ms and `-`
/// for a lost one.
pub fn render_per_probe(r: &PingReport) -> String {
    let width = label_width(r);
    let mut out = String::new();
    for t in &r.targets {
        let _ = write!(out, "{:<width$} :", label(t));
        for p in t.per_probe_ms.iter().flatten() {
            match p {
                Some(v) => {
                    let _ = write!(out, " {v:.3}");
                }
                None => out.push_str(" -"),
            }
        }
        out.push('\n');
    }
    out
}
