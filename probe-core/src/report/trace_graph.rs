//! The path of a trace as a layered graph, sans-IO: TTLs as columns, responders as nodes,
//! MDA links (or, without them, the possible links between consecutive hops) as edges, and
//! the hop where loss starts. The HTML report draws it; the Graphviz export and the agent's
//! dashboard use the same nodes and edges.

use super::trace::{HopReport, ResponderReport, TraceReport};

/// Horizontal distance between TTL columns, px.
pub const COLUMN_WIDTH: f64 = 190.0;
/// Vertical distance between responders of one hop, px.
pub const ROW_HEIGHT: f64 = 92.0;
/// Margin around the drawing, px.
pub const MARGIN: f64 = 16.0;
/// Size of a node's box, px.
pub const NODE_SIZE: (f64, f64) = (170.0, 78.0);

/// One node: a responder, or the `*` of a silent hop.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphNode {
    /// Index of the hop in `report.hops`.
    pub hop: usize,
    /// Index of the responder in the hop (`None`: the hop is silent).
    pub responder: Option<usize>,
    /// Centre of the node's box, px.
    pub x: f64,
    /// Centre of the node's box, px.
    pub y: f64,
}

/// One edge between nodes of consecutive columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GraphEdge {
    /// Index of the source node in [`PathGraph::nodes`].
    pub from: usize,
    /// Index of the target node.
    pub to: usize,
    /// `false`: a link MDA saw one flow take; `true`: drawn only because the hops are
    /// consecutive (plain traces, silent hops).
    pub inferred: bool,
}

/// The laid-out path.
#[derive(Clone, Debug, PartialEq)]
pub struct PathGraph {
    /// Nodes, column by column.
    pub nodes: Vec<GraphNode>,
    /// Edges.
    pub edges: Vec<GraphEdge>,
    /// Size of the drawing, px.
    pub width: f64,
    /// Size of the drawing, px.
    pub height: f64,
    /// Index of the hop where loss starts (see [`loss_start`]).
    pub loss_start: Option<usize>,
}

impl PathGraph {
    /// The responder a node stands for (`None` for a silent hop).
    pub fn responder<'a>(&self, r: &'a TraceReport, node: usize) -> Option<&'a ResponderReport> {
        let n = self.nodes.get(node)?;
        r.hops.get(n.hop)?.responders.get(n.responder?)
    }
}

/// The first hop from which every hop to the end of the path loses probes: loss there is
/// the path's, not a router that limits its ICMP answers (loss that later hops do not show).
pub fn loss_start(hops: &[HopReport]) -> Option<usize> {
    let lossy = |h: &HopReport| h.loss_pct > 0.0;
    if !hops.last().is_some_and(lossy) {
        return None;
    }
    let clean_before = hops.iter().rposition(|h| !lossy(h));
    Some(clean_before.map_or(0, |i| i + 1))
}

/// Lays out `r`: one column per hop; within a column, responders ordered by the mean row of
/// the nodes linked to them in the previous column (fewer crossings on diamonds), then by
/// their order in the report.
pub fn layout(r: &TraceReport) -> PathGraph {
    // Rows per column: indices into the hop's responders (or one silent slot).
    let mut columns: Vec<Vec<Option<usize>>> = Vec::with_capacity(r.hops.len());
    for (i, hop) in r.hops.iter().enumerate() {
        if hop.responders.is_empty() {
            columns.push(vec![None]);
            continue;
        }
        let mut order: Vec<usize> = (0..hop.responders.len()).collect();
        if let Some(prev) = i.checked_sub(1).map(|p| (&r.hops[p], &columns[p])) {
            let key = |k: usize| -> f64 {
                let addr = hop.responders[k].addr;
                let rows: Vec<f64> = r
                    .links
                    .iter()
                    .filter(|l| l.ttl == prev.0.ttl && l.to == addr)
                    .filter_map(|l| {
                        prev.1.iter().position(|slot| {
                            slot.is_some_and(|s| prev.0.responders[s].addr == l.from)
                        })
                    })
                    .map(|p| p as f64)
                    .collect();
                if rows.is_empty() {
                    f64::INFINITY
                } else {
                    rows.iter().sum::<f64>() / rows.len() as f64
                }
            };
            order.sort_by(|&a, &b| key(a).total_cmp(&key(b)).then(a.cmp(&b)));
        }
        columns.push(order.into_iter().map(Some).collect());
    }
    let tallest = columns.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let height = tallest as f64 * ROW_HEIGHT + 2.0 * MARGIN;
    let mut nodes = Vec::new();
    let mut first_of_column = Vec::with_capacity(columns.len());
    for (c, col) in columns.iter().enumerate() {
        first_of_column.push(nodes.len());
        let top = (height - col.len() as f64 * ROW_HEIGHT) / 2.0;
        for (row, slot) in col.iter().enumerate() {
            nodes.push(GraphNode {
                hop: c,
                responder: *slot,
                x: MARGIN + NODE_SIZE.0 / 2.0 + c as f64 * COLUMN_WIDTH,
                y: top + (row as f64 + 0.5) * ROW_HEIGHT,
            });
        }
    }
    first_of_column.push(nodes.len());
    let node_of = |hop: usize, addr: std::net::IpAddr| {
        (first_of_column[hop]..first_of_column[hop + 1]).find(|&n| {
            nodes[n]
                .responder
                .is_some_and(|k| r.hops[hop].responders[k].addr == addr)
        })
    };
    let mut edges = Vec::new();
    for c in 1..columns.len() {
        let (prev, hop) = (&r.hops[c - 1], &r.hops[c]);
        let linked: Vec<GraphEdge> = r
            .links
            .iter()
            .filter(|l| l.ttl == prev.ttl && hop.ttl == prev.ttl.wrapping_add(1))
            .filter_map(|l| {
                Some(GraphEdge {
                    from: node_of(c - 1, l.from)?,
                    to: node_of(c, l.to)?,
                    inferred: false,
                })
            })
            .collect();
        let mda = !r.links.is_empty();
        let silent = prev.responders.is_empty() || hop.responders.is_empty();
        if linked.is_empty() && (!mda || silent) {
            for from in first_of_column[c - 1]..first_of_column[c] {
                for to in first_of_column[c]..first_of_column[c + 1] {
                    edges.push(GraphEdge {
                        from,
                        to,
                        inferred: true,
                    });
                }
            }
        }
        edges.extend(linked);
    }
    PathGraph {
        nodes,
        edges,
        width: 2.0 * MARGIN + NODE_SIZE.0 + columns.len().saturating_sub(1) as f64 * COLUMN_WIDTH,
        height,
        loss_start: loss_start(&r.hops),
    }
}

#[cfg(test)]
#[path = "trace_graph_tests.rs"]
pub(crate) mod tests;
