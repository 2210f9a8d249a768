//! `probe trace --format dot` and `--format csv`: the path for other tools.
//!
//! **Graphviz (`dot`)**: a `digraph`, left to right, one rank per TTL; a node per responder
//! (label: address, name, loss, RTT median, MPLS labels, NAT), a `*` node for a silent hop;
//! an edge per MDA link (solid), or between every pair of consecutive nodes when the trace
//! has no links (dashed). The hop where loss starts is drawn red.
//!
//! **CSV**: a header line, then one row per responder of each hop, in hop order (a silent
//! hop gets one row with an empty `addr`). Columns, in this order ([`CSV_COLUMNS`]):
//! `ttl`, `addr`, `hostname`, `sent`, `received`, `loss_pct`, `rtt_min_ms`, `rtt_mean_ms`,
//! `rtt_p50_ms`, `rtt_max_ms`, `rtt_stddev_ms`, `last_ms`, `jitter_ms`, `kind` (the latest
//! answer, e.g. `time exceeded`), `mpls` (label stacks `label/tc/s/ttl`, entries joined by
//! `+`, stacks by a space), `nat` (`true` or `false`), `loss_start` (`true` on the rows of the
//! hop where loss starts). Missing numbers are empty fields; fields with a comma or a quote
//! are quoted (RFC 4180).

use std::fmt::Write as _;

use super::trace::{MplsLabel, ResponderReport, TraceReport};
use super::trace_graph::{PathGraph, layout};

/// The CSV header, in column order.
pub const CSV_COLUMNS: [&str; 17] = [
    "ttl",
    "addr",
    "hostname",
    "sent",
    "received",
    "loss_pct",
    "rtt_min_ms",
    "rtt_mean_ms",
    "rtt_p50_ms",
    "rtt_max_ms",
    "rtt_stddev_ms",
    "last_ms",
    "jitter_ms",
    "kind",
    "mpls",
    "nat",
    "loss_start",
];

/// MPLS stacks as `label/tc/s/ttl` entries joined by `+`, stacks by a space.
pub fn mpls_text(stacks: &[Vec<MplsLabel>]) -> String {
    stacks
        .iter()
        .map(|stack| {
            stack
                .iter()
                .map(|l| format!("{}/{}/{}/{}", l.label, l.tc, u8::from(l.s), l.ttl))
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The trace as CSV (see the module documentation for the columns).
pub fn render_csv(r: &TraceReport) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    let loss_start = super::trace_graph::loss_start(&r.hops);
    let num = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
    for (i, h) in r.hops.iter().enumerate() {
        let start = loss_start == Some(i);
        if h.responders.is_empty() {
            let _ = writeln!(
                out,
                "{},,,{},{},{:.1},,,,,,,,,,false,{start}",
                h.ttl, h.sent, h.received, h.loss_pct
            );
            continue;
        }
        for x in &h.responders {
            let rtt = x.rtt_ms;
            let fields = [
                h.ttl.to_string(),
                x.addr.to_string(),
                csv_field(x.hostname.as_deref().unwrap_or("")),
                x.sent.to_string(),
                x.received.to_string(),
                format!("{:.1}", x.loss_pct),
                num(rtt.map(|s| s.min)),
                num(rtt.map(|s| s.mean)),
                num(rtt.map(|s| s.p50)),
                num(rtt.map(|s| s.max)),
                num(rtt.map(|s| s.stddev)),
                num(x.last_ms),
                num(x.jitter_ms),
                csv_field(x.kind.as_str()),
                mpls_text(&x.mpls),
                x.nat.to_string(),
                start.to_string(),
            ];
            out.push_str(&fields.join(","));
            out.push('\n');
        }
    }
    out
}

/// The lines of a node's label: address (and name), loss, RTT median, MPLS, NAT.
pub fn node_lines(x: &ResponderReport) -> Vec<String> {
    let mut lines = vec![x.addr.to_string()];
    if let Some(n) = &x.hostname {
        lines.push(n.clone());
    }
    let p50 = x
        .rtt_ms
        .map_or_else(|| "-".to_owned(), |s| format!("{:.3} ms", s.p50));
    lines.push(format!("loss {:.1}%  p50 {p50}", x.loss_pct));
    if !x.mpls.is_empty() {
        lines.push(format!("MPLS {}", mpls_text(&x.mpls)));
    }
    if x.nat {
        lines.push("NAT".to_owned());
    }
    lines
}

fn dot_string(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The trace as a Graphviz digraph (see the module documentation).
pub fn render_dot(r: &TraceReport) -> String {
    let g: PathGraph = layout(r);
    let mut out = String::new();
    let target = r
        .target_name
        .as_deref()
        .map_or_else(|| r.target.to_string(), |n| format!("{n} ({})", r.target));
    let _ = writeln!(out, "digraph trace {{");
    let _ = writeln!(
        out,
        "  label=\"probe trace to {}, {} {}\";",
        dot_string(&target),
        r.protocol.as_str(),
        r.mode.as_str()
    );
    let _ = writeln!(out, "  rankdir=LR;");
    let _ = writeln!(out, "  node [shape=box, fontname=\"sans-serif\"];");
    for (hop_index, hop) in r.hops.iter().enumerate() {
        let _ = writeln!(out, "  subgraph ttl{} {{", hop.ttl);
        let _ = writeln!(out, "    rank=same;");
        for (i, _) in g
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.hop == hop_index)
        {
            let red = if g.loss_start == Some(hop_index) {
                ", color=red, fontcolor=red"
            } else {
                ""
            };
            let label = match g.responder(r, i) {
                Some(x) => node_lines(x)
                    .iter()
                    .map(|l| dot_string(l))
                    .collect::<Vec<_>>()
                    .join("\\n"),
                None => format!("*\\nloss {:.1}%", hop.loss_pct),
            };
            let _ = writeln!(out, "    n{i} [label=\"TTL {}\\n{label}\"{red}];", hop.ttl);
        }
        let _ = writeln!(out, "  }}");
    }
    for e in &g.edges {
        let style = if e.inferred { " [style=dashed]" } else { "" };
        let _ = writeln!(out, "  n{} -> n{}{style};", e.from, e.to);
    }
    let _ = writeln!(out, "}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::trace_graph::tests::diamond;

    #[test]
    fn csv_has_a_row_per_responder_and_the_documented_columns() {
        let mut r = diamond();
        r.hops[1].responders[0].hostname = Some("x,\"y\"".into());
        let csv = render_csv(&r);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert_eq!(lines.len(), 1 + 4);
        assert_eq!(
            lines[1],
            "1,10.0.1.1,,6,6,0.0,0.100,0.200,0.200,0.400,0.050,0.200,0.010,time exceeded,,false,false"
        );
        assert!(lines[2].starts_with("2,10.0.2.2,\"x,\"\"y\"\"\",6,6,"));
        assert!(lines[2].ends_with(",time exceeded,,true,false"));
        assert!(lines[3].contains(",16001/0/1/1,false,false"));
        assert!(lines[4].contains(",port unreachable,"));
    }

    #[test]
    fn dot_has_a_node_per_responder_and_an_edge_per_link() {
        let dot = render_dot(&diamond());
        assert!(dot.starts_with("digraph trace {"));
        assert_eq!(dot.matches(" -> ").count(), 4);
        assert_eq!(dot.matches("[label=\"TTL ").count(), 4);
        assert!(dot.contains("MPLS 16001/0/1/1"));
        assert!(dot.contains("\\nNAT\""));
        assert!(!dot.contains("dashed"));
        assert_eq!(dot.matches("rank=same").count(), 3);
    }
}
