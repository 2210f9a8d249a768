//! What the dashboard shows, sans-IO: the agent's recent result records in; the mesh heatmap,
//! the recent results per test and one pair's history out. Every input is bounded (the
//! in-memory ring of recent results), so a page costs the same however long the agent runs.
//!
//! The heatmap is a matrix of agents: this agent first, then each peer (by address), as
//! sources (rows) and destinations (columns). An a2a run of this agent toward peer P fills
//! two cells: this → P from its forward direction and P → this from its reverse direction
//! (or from the far end's own `from` report when the run carries one). The newest run wins.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use probe_core::report::html::PairSeries;
use probe_core::report::trace::TraceReport;
use serde_json::Value;

use crate::record::{ErrorClass, ResultRecord};
use crate::state::Peers;

/// What the heatmap is coloured by (`?by=loss`, `?by=delay`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Metric {
    /// Loss per direction, percent.
    #[default]
    Loss,
    /// One-way delay per direction (median of the run), ms.
    Delay,
}

impl Metric {
    /// The metric a query value names (anything else: loss).
    pub fn parse(v: Option<&str>) -> Metric {
        match v {
            Some("delay") => Metric::Delay,
            _ => Metric::Loss,
        }
    }

    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Loss => "loss",
            Metric::Delay => "delay",
        }
    }
}

/// One direction between two agents, as its newest run measured it.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Loss in this direction, percent (unknown when nothing came back at all).
    pub loss_pct: Option<f64>,
    /// One-way delay median, ms (unknown without a known clock offset).
    pub delay_ms: Option<f64>,
    /// Whether the run succeeded.
    pub ok: bool,
    /// When the run started, Unix ns.
    pub at_unix_ns: u64,
    /// The test that measured it.
    pub test: String,
}

impl Cell {
    /// The value the heatmap colours by.
    pub fn value(&self, m: Metric) -> Option<f64> {
        match m {
            Metric::Loss => self.loss_pct,
            Metric::Delay => self.delay_ms,
        }
    }
}

/// The mesh heatmap.
#[derive(Clone, Debug, PartialEq)]
pub struct Heatmap {
    /// The agents: this agent's name first, then the peers' addresses, sorted.
    pub agents: Vec<String>,
    /// `cells[from][to]`: `None` on the diagonal and where no run measured that direction.
    pub cells: Vec<Vec<Option<Cell>>>,
}

/// The address part of a record's peer (`ADDR:PORT` -> `ADDR`); other strings unchanged.
pub fn peer_key(peer: &str) -> String {
    peer.parse::<SocketAddr>()
        .map_or_else(|_| peer.to_owned(), |a| a.ip().to_string())
}

/// Whether `r` is a measurement (not a skipped slot).
fn measured(r: &ResultRecord) -> bool {
    r.error_class != Some(ErrorClass::Skipped)
}

fn number(v: &Value, path: &str) -> Option<f64> {
    v.pointer(path).and_then(Value::as_f64)
}

/// One direction of an a2a report (`forward` or `reverse`) as a cell.
fn direction_cell(r: &ResultRecord, report: &Value, dir: &str) -> Cell {
    Cell {
        loss_pct: number(report, &format!("/{dir}/loss_pct")),
        delay_ms: number(report, &format!("/{dir}/delay_ms/p50")),
        ok: r.ok,
        at_unix_ns: r.start_unix_ns,
        test: r.test.clone(),
    }
}

/// The heatmap of `this` agent from its `records` (oldest first) and the peers its tests
/// measure now (`peers`, so that a peer not measured yet shows as an empty row).
pub fn heatmap(this: &str, peers: &Peers, records: &[ResultRecord]) -> Heatmap {
    let a2a: Vec<&ResultRecord> = records
        .iter()
        .filter(|r| r.kind == "a2a" && r.peer.is_some() && measured(r))
        .collect();
    let a2a_tests: BTreeSet<&str> = a2a.iter().map(|r| r.test.as_str()).collect();
    let mut keys: BTreeSet<String> = a2a
        .iter()
        .filter_map(|r| r.peer.as_deref().map(peer_key))
        .collect();
    for (test, set) in peers {
        if a2a_tests.contains(test.as_str()) {
            keys.extend(set.iter().map(|p| peer_key(p)));
        }
    }
    keys.remove(this);
    let mut agents = vec![this.to_owned()];
    agents.extend(keys);
    let index: BTreeMap<&str, usize> = agents
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), i))
        .collect();
    let n = agents.len();
    let mut cells = vec![vec![None; n]; n];
    for r in a2a {
        let Some(&p) = r
            .peer
            .as_deref()
            .map(peer_key)
            .and_then(|k| index.get(k.as_str()))
        else {
            continue;
        };
        if p == 0 {
            continue;
        }
        let newer = |c: &Option<Cell>| c.as_ref().is_none_or(|c| c.at_unix_ns <= r.start_unix_ns);
        if newer(&cells[0][p]) {
            cells[0][p] = Some(direction_cell(r, &r.report, "forward"));
        }
        if newer(&cells[p][0]) {
            // The far end's own run toward this end (direction `from`) measured that
            // direction as its forward one; without it, this run's reverse direction.
            let back = match r.report.pointer("/from/report") {
                Some(far) if far.is_object() => direction_cell(r, far, "forward"),
                _ => direction_cell(r, &r.report, "reverse"),
            };
            cells[p][0] = Some(back);
        }
    }
    Heatmap { agents, cells }
}

/// The newest `per_test` records of each test, newest first, by test name.
pub fn recent_by_test(
    records: &[ResultRecord],
    per_test: usize,
) -> BTreeMap<&str, Vec<&ResultRecord>> {
    let mut out: BTreeMap<&str, Vec<&ResultRecord>> = BTreeMap::new();
    for r in records.iter().rev() {
        let list = out.entry(r.test.as_str()).or_default();
        if list.len() < per_test {
            list.push(r);
        }
    }
    out
}

/// A record's figures in one line, by kind.
pub fn summary(r: &ResultRecord) -> String {
    let v = &r.report;
    let ms = |p: &str| number(v, p).map(|x| format!("{x:.3} ms"));
    let pct = |p: &str| number(v, p).map(|x| format!("{x:.1}%"));
    let parts: Vec<String> = match r.kind.as_str() {
        "a2a" => vec![
            pct("/loss_pct").map(|x| format!("loss {x}")),
            ms("/rtt_ms/p50").map(|x| format!("RTT p50 {x}")),
            ms("/forward/delay_ms/p50").map(|x| format!("forward p50 {x}")),
            ms("/reverse/delay_ms/p50").map(|x| format!("reverse p50 {x}")),
        ],
        "trace" => vec![
            v.get("hops")
                .and_then(Value::as_array)
                .map(|h| format!("{} hops", h.len())),
            v.get("reached")
                .and_then(Value::as_bool)
                .map(|b| if b { "reached" } else { "not reached" }.to_owned()),
        ],
        "ping" => vec![
            pct("/loss_pct").map(|x| format!("loss {x}")),
            ms("/rtt_ms/p50").map(|x| format!("RTT p50 {x}")),
        ],
        _ => vec![Some(format!("{:.3} ms", r.duration_ns as f64 / 1e6))],
    }
    .into_iter()
    .flatten()
    .collect();
    parts.join(", ")
}

/// One pair's history: its a2a runs over time (minutes relative to `now_unix_ns`, at most
/// `max_runs` of the newest) and its newest trace.
#[derive(Clone, Debug, Default)]
pub struct PairHistory {
    /// The runs as chart series.
    pub series: PairSeries,
    /// The clock of the newest a2a run, as shown beside one-way figures.
    pub clock: String,
    /// The newest trace toward the pair's address, when a trace test measures it.
    pub trace: Option<TraceReport>,
}

/// The history of the pair toward `key` (a peer's address) in `records` (oldest first).
pub fn pair_history(
    records: &[ResultRecord],
    key: &str,
    now_unix_ns: u64,
    max_runs: usize,
) -> PairHistory {
    let mine =
        |r: &&ResultRecord| r.peer.as_deref().map(peer_key).as_deref() == Some(key) && measured(r);
    let runs: Vec<&ResultRecord> = records
        .iter()
        .filter(mine)
        .filter(|r| r.kind == "a2a")
        .collect();
    let runs = &runs[runs.len().saturating_sub(max_runs)..];
    let mut h = PairHistory::default();
    for r in runs {
        let x = (r.start_unix_ns as f64 - now_unix_ns as f64) / 60e9;
        let put = |series: &mut Vec<(f64, f64)>, path: &str| {
            if let Some(y) = number(&r.report, path) {
                series.push((x, y));
            }
        };
        put(&mut h.series.rtt_ms, "/rtt_ms/p50");
        put(&mut h.series.forward_ms, "/forward/delay_ms/p50");
        put(&mut h.series.reverse_ms, "/reverse/delay_ms/p50");
        put(&mut h.series.loss_pct, "/loss_pct");
    }
    if let Some(last) = runs.iter().rev().find(|r| r.report.get("clock").is_some()) {
        let c = &last.report["clock"];
        let bound =
            number(c, "/error_ms").map_or_else(|| "unknown".to_owned(), |e| format!("±{e:.3} ms"));
        h.clock = format!("clock {}, {bound}", c["mode"].as_str().unwrap_or("unknown"));
    }
    h.trace = records
        .iter()
        .rev()
        .filter(mine)
        .filter(|r| r.kind == "trace")
        .find_map(|r| serde_json::from_value(r.report.clone()).ok());
    h
}

#[cfg(test)]
#[path = "dashboard_model_tests.rs"]
mod tests;
