//! Path test results (`probe trace`): the public JSON contract and an mtr-like text table.
//!
//! Field semantics:
//! - `hops[].sent` counts probes sent with that TTL; `received` the answers; `loss_pct` is
//!   `100 * (1 - received / sent)` over probes whose fate is known.
//! - A hop may have several `responders` (load balancing in classic mode, route changes, MDA).
//!   A responder's `sent` is the hop's `sent` (a probe is not addressed to a responder), its
//!   `received` its own answers, and its `loss_pct` the hop's loss.
//! - `jitter_ms` is mtr's Javg: the mean of `|rtt_n - rtt_(n-1)|` over consecutive answers from
//!   that responder; `jitter_max_ms` is mtr's Jmax.
//! - `mpls` lists the distinct label stacks (RFC 4950) the responder reported, top label first.
//! - `links` (MDA) are the edges between responders of consecutive hops that one flow traversed.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use super::rtt::RttMs;
use super::rtt::labelled;
use crate::trace::FlowMode;
pub use crate::trace::{Privilege, Protocol};
pub use crate::wire::reply_kind::ReplyKind;

/// How a path test chose its flows (the report's `mode`: `paris`, `classic` or `mda`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TraceMode {
    /// One constant flow per trace (Paris traceroute).
    Paris,
    /// A new flow with every probe (traditional traceroute).
    Classic,
    /// Multipath discovery: as many flows as the stopping rule asks for.
    Mda,
}

impl TraceMode {
    /// The name in reports: `paris`, `classic` or `mda`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TraceMode::Paris => "paris",
            TraceMode::Classic => "classic",
            TraceMode::Mda => "mda",
        }
    }
}

impl From<FlowMode> for TraceMode {
    fn from(m: FlowMode) -> Self {
        match m {
            FlowMode::Paris => TraceMode::Paris,
            FlowMode::Classic => TraceMode::Classic,
        }
    }
}

/// The result of a path test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TraceReport {
    /// The target address.
    pub target: IpAddr,
    /// The name the target was given as, if any.
    pub target_name: Option<String>,
    /// Our source address.
    pub source: IpAddr,
    /// Probe protocol: `icmp`, `udp` or `tcp`.
    pub protocol: Protocol,
    /// `paris`, `classic` or `mda`.
    pub mode: TraceMode,
    /// How the probes were sent (`raw` or `unprivileged`), filled in by the runtime.
    pub privilege: Option<Privilege>,
    /// Whether the target answered.
    pub reached: bool,
    /// Path MTU in bytes, when measured.
    pub pmtu: Option<u32>,
    /// First TTL probed.
    pub first_ttl: u8,
    /// Highest TTL allowed.
    pub max_ttl: u8,
    /// Probes per hop per round.
    pub queries: u32,
    /// Rounds.
    pub count: u32,
    /// MDA stopping-rule confidence in percent (absent for plain traces).
    pub confidence_pct: Option<f64>,
    /// Probes sent in total (including those beyond the target that were cancelled).
    pub probes_sent: u64,
    /// Wall time of the test.
    pub duration_ms: f64,
    /// Hops in TTL order, up to the target or the last hop probed.
    pub hops: Vec<HopReport>,
    /// Links between responders of consecutive hops (MDA); empty otherwise.
    pub links: Vec<LinkReport>,
}

/// One TTL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HopReport {
    /// The TTL.
    pub ttl: u8,
    /// Probes sent with this TTL.
    pub sent: u64,
    /// Answers received.
    pub received: u64,
    /// Loss in percent.
    pub loss_pct: f64,
    /// Who answered, in order of first answer. Empty for a silent hop (`*`).
    pub responders: Vec<ResponderReport>,
}

/// One address answering at a hop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResponderReport {
    /// The address.
    pub addr: IpAddr,
    /// Reverse DNS name, filled in later by the runtime.
    pub hostname: Option<String>,
    /// Probes sent with this hop's TTL.
    pub sent: u64,
    /// Answers from this responder.
    pub received: u64,
    /// The hop's loss in percent.
    pub loss_pct: f64,
    /// RTT summary.
    pub rtt_ms: Option<RttMs>,
    /// RTT of the latest answer.
    pub last_ms: Option<f64>,
    /// Mean absolute RTT difference between consecutive answers (mtr Javg).
    pub jitter_ms: Option<f64>,
    /// Largest absolute RTT difference between consecutive answers (mtr Jmax).
    pub jitter_max_ms: Option<f64>,
    /// Distinct MPLS label stacks seen.
    pub mpls: Vec<Vec<MplsLabel>>,
    /// What the latest answer was ("time exceeded", "port unreachable", ...).
    pub kind: ReplyKind,
    /// ICMP type of the latest answer (absent for TCP answers).
    pub icmp_type: Option<u8>,
    /// ICMP code of the latest answer.
    pub icmp_code: Option<u8>,
    /// A quote showed our source address or port rewritten.
    pub nat: bool,
    /// TTL of our probe as it arrived at the responder (from the quote).
    pub quoted_ttl: Option<u8>,
    /// TTL the answer arrived with.
    pub reply_ttl: Option<u8>,
}

/// One MPLS label stack entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MplsLabel {
    /// Label (20 bits).
    pub label: u32,
    /// Traffic class (3 bits).
    pub tc: u8,
    /// Bottom of stack.
    pub s: bool,
    /// TTL.
    pub ttl: u8,
}

/// An edge between responders at consecutive hops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LinkReport {
    /// TTL of `from`.
    pub ttl: u8,
    /// Responder at `ttl`.
    pub from: IpAddr,
    /// Responder at `ttl + 1`.
    pub to: IpAddr,
}

/// Renders the report as an mtr-like table (`Host`, `Loss%`, `Snt`, `Last`, `Avg`, `Best`, `Wrst`, `StDev`)
/// with a line per MPLS label under its responder.
pub fn render_table(r: &TraceReport) -> String {
    let mut out = String::new();
    let target = r
        .target_name
        .as_deref()
        .map_or_else(|| r.target.to_string(), |n| labelled(n, r.target));
    let _ = writeln!(
        out,
        "probe trace to {target} from {}: {} {}, {} hops, {}{}",
        r.source,
        r.protocol.as_str(),
        r.mode.as_str(),
        r.hops.len(),
        if r.reached { "reached" } else { "not reached" },
        r.pmtu.map(|m| format!(", pmtu {m}")).unwrap_or_default(),
    );
    let hosts: Vec<Vec<String>> = r
        .hops
        .iter()
        .map(|h| {
            h.responders
                .iter()
                .map(|x| {
                    let name = x
                        .hostname
                        .as_deref()
                        .map_or_else(|| x.addr.to_string(), |n| labelled(n, x.addr));
                    let note = x.kind.annotation().map(|a| format!(" {a}"));
                    format!(
                        "{name}{}{}",
                        note.unwrap_or_default(),
                        if x.nat { " [nat]" } else { "" }
                    )
                })
                .collect()
        })
        .collect();
    let w = hosts
        .iter()
        .flatten()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(4);
    let _ = writeln!(
        out,
        "{:>4}  {:<w$}  {:>6} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "Hop", "Host", "Loss%", "Snt", "Last", "Avg", "Best", "Wrst", "StDev", "Javg"
    );
    for (h, names) in r.hops.iter().zip(&hosts) {
        if h.responders.is_empty() {
            let _ = writeln!(
                out,
                "{:>4}  {:<w$}  {:>5.1}% {:>5}",
                h.ttl, "*", h.loss_pct, h.sent
            );
            continue;
        }
        for (i, (x, name)) in h.responders.iter().zip(names).enumerate() {
            let hop = if i == 0 {
                h.ttl.to_string()
            } else {
                String::new()
            };
            // Three decimals: on a LAN the interesting differences are microseconds.
            let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
            let s = x.rtt_ms;
            let _ = writeln!(
                out,
                "{hop:>4}  {name:<w$}  {:>5.1}% {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                x.loss_pct,
                x.sent,
                ms(x.last_ms),
                ms(s.map(|s| s.mean)),
                ms(s.map(|s| s.min)),
                ms(s.map(|s| s.max)),
                ms(s.map(|s| s.stddev)),
                ms(x.jitter_ms),
            );
            for stack in &x.mpls {
                for l in stack {
                    let _ = writeln!(
                        out,
                        "{:>4}  [MPLS label {} tc {} s {} ttl {}]",
                        "",
                        l.label,
                        l.tc,
                        u8::from(l.s),
                        l.ttl
                    );
                }
            }
        }
    }
    if !r.links.is_empty() {
        let _ = writeln!(out, "links:");
        for l in &r.links {
            let _ = writeln!(out, "{:>4}  {} -> {}", l.ttl, l.from, l.to);
        }
    }
    out
}

#[cfg(test)]
#[path = "trace_tests.rs"]
mod tests;
