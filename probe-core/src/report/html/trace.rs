//! The trace report page: the path as a layered graph (our own layout,
//! [`trace_graph`](crate::report::trace_graph)) beside the per-hop RTT spread (plotters),
//! then the hop table.

use std::fmt::Write as _;

use super::charts;
use super::{HtmlError, escape, figure, ms, page};
use crate::report::trace::TraceReport;
use crate::report::trace_export::mpls_text;
use crate::report::trace_graph::{NODE_SIZE, PathGraph, layout};

/// The page of one trace.
pub fn trace_page(r: &TraceReport) -> Result<String, HtmlError> {
    Ok(page(&title(r), &trace_sections(r)?))
}

fn title(r: &TraceReport) -> String {
    match &r.target_name {
        Some(n) => format!("probe trace to {n} ({})", r.target),
        None => format!("probe trace to {}", r.target),
    }
}

/// The path as an inline SVG: a `<g class="node">` per responder (`silent` for a hop that
/// did not answer, `loss-start` on the hop where loss starts, `target` on the target), a
/// `<path class="edge link">` per MDA link (`edge inferred` where the trace has no links).
pub fn path_graph_svg(r: &TraceReport) -> String {
    let graph: PathGraph = layout(r);
    let (width, height) = (graph.width, graph.height + 18.0);
    let mut out = format!(
        "<svg class=\"path\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"path graph\">\n"
    );
    let (nw, nh) = NODE_SIZE;
    for (i, hop) in r.hops.iter().enumerate() {
        if let Some(n) = graph.nodes.iter().find(|n| n.hop == i) {
            let _ = writeln!(
                out,
                "<text class=\"col\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">TTL {}</text>",
                n.x,
                graph.height + 10.0,
                hop.ttl
            );
        }
    }
    for e in &graph.edges {
        let (from, to) = (&graph.nodes[e.from], &graph.nodes[e.to]);
        let (x1, y1, x2, y2) = (from.x + nw / 2.0, from.y, to.x - nw / 2.0, to.y);
        let mid = f64::midpoint(x1, x2);
        let class = if e.inferred {
            "edge inferred"
        } else {
            "edge link"
        };
        let _ = writeln!(
            out,
            "<path class=\"{class}\" d=\"M{x1:.1} {y1:.1} C{mid:.1} {y1:.1} {mid:.1} {y2:.1} {x2:.1} {y2:.1}\"/>"
        );
    }
    for (i, n) in graph.nodes.iter().enumerate() {
        let hop = &r.hops[n.hop];
        let (x0, y0) = (n.x - nw / 2.0, n.y - nh / 2.0);
        let Some(x) = graph.responder(r, i) else {
            let _ = writeln!(
                out,
                "<g class=\"silent\"><rect x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{nw}\" height=\"{nh}\" rx=\"6\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">* no answer ({:.0}% lost)</text></g>",
                n.x,
                n.y + 4.0,
                hop.loss_pct
            );
            continue;
        };
        let mut class = String::from("node");
        if graph.loss_start == Some(n.hop) {
            class.push_str(" loss-start");
        }
        if x.addr == r.target {
            class.push_str(" target");
        }
        let _ = write!(
            out,
            "<g class=\"{class}\" data-ttl=\"{}\" data-addr=\"{}\"><title>{}</title>\
             <rect x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{nw}\" height=\"{nh}\" rx=\"6\"/>",
            hop.ttl,
            x.addr,
            escape(&format!(
                "TTL {}: {} ({})",
                hop.ttl,
                x.addr,
                x.kind.as_str()
            )),
        );
        let mut lines: Vec<(String, &str)> = vec![(x.addr.to_string(), "addr")];
        if let Some(name) = &x.hostname {
            let short: String = name.chars().take(26).collect();
            lines.push((short, ""));
        }
        lines.push((
            format!(
                "loss {:.1}%  p50 {} ms",
                x.loss_pct,
                ms(x.rtt_ms.map(|s| s.p50))
            ),
            "",
        ));
        let mut marks = Vec::new();
        if !x.mpls.is_empty() {
            marks.push(format!("MPLS {}", mpls_text(&x.mpls)));
        }
        if x.nat {
            marks.push("NAT".to_owned());
        }
        if !marks.is_empty() {
            lines.push((marks.join(" · "), "mark"));
        }
        let top = n.y - (lines.len() as f64 - 1.0) * 7.5 + 4.0;
        for (k, (text, cls)) in lines.iter().enumerate() {
            let class = if cls.is_empty() {
                String::new()
            } else {
                format!(" class=\"{cls}\"")
            };
            let _ = write!(
                out,
                "<text{class} x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                n.x,
                top + k as f64 * 15.0,
                escape(text)
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

fn hop_rtt(r: &TraceReport) -> Result<String, HtmlError> {
    let mut points = Vec::new();
    for h in &r.hops {
        let n = h.responders.len();
        for (k, x) in h.responders.iter().enumerate() {
            if let Some(s) = x.rtt_ms {
                // Responders of one hop side by side around the TTL.
                let dx = if n > 1 {
                    (k as f64 / (n - 1) as f64 - 0.5) * 0.5
                } else {
                    0.0
                };
                points.push((f64::from(h.ttl) + dx, s.min, s.p50, s.max));
            }
        }
    }
    if points.is_empty() {
        return Ok(String::new());
    }
    let first = r.hops.first().map_or(r.first_ttl, |h| h.ttl);
    let last = r.hops.last().map_or(first, |h| h.ttl).max(first);
    let svg = charts::hop_spread("hop-rtt", &points, (first, last))?;
    Ok(figure(
        "hop-rtt",
        "Round trip per hop and responder: line = min to max, dot = median",
        &svg,
    ))
}

fn hop_table(r: &TraceReport) -> String {
    let mut t = String::from(
        "<table id=\"hops\"><tr><th>TTL</th><th>responder</th><th>loss</th><th>sent</th>\
         <th>recv</th><th>min ms</th><th>p50 ms</th><th>mean ms</th><th>max ms</th>\
         <th>jitter ms</th><th>answer</th><th>MPLS</th><th>NAT</th></tr>\n",
    );
    let start = crate::report::trace_graph::loss_start(&r.hops);
    for (i, h) in r.hops.iter().enumerate() {
        let bad = if start == Some(i) {
            " class=\"bad\""
        } else {
            ""
        };
        if h.responders.is_empty() {
            let _ = writeln!(
                t,
                "<tr{bad}><td>{}</td><td>*</td><td>{:.1}%</td><td>{}</td><td>0</td>\
                 <td></td><td></td><td></td><td></td><td></td><td></td><td></td><td></td></tr>",
                h.ttl, h.loss_pct, h.sent
            );
        }
        for x in &h.responders {
            let name = match &x.hostname {
                Some(n) => format!("{} ({})", escape(n), x.addr),
                None => x.addr.to_string(),
            };
            let s = x.rtt_ms;
            let _ = writeln!(
                t,
                "<tr{bad}><td>{}</td><td>{name}</td><td>{:.1}%</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td></tr>",
                h.ttl,
                x.loss_pct,
                x.sent,
                x.received,
                ms(s.map(|s| s.min)),
                ms(s.map(|s| s.p50)),
                ms(s.map(|s| s.mean)),
                ms(s.map(|s| s.max)),
                ms(x.jitter_ms),
                escape(x.kind.as_str()),
                escape(&mpls_text(&x.mpls)),
                if x.nat { "yes" } else { "" },
            );
        }
    }
    t.push_str("</table>\n");
    t
}

/// The sections of the trace page (without the page around them).
pub fn trace_sections(r: &TraceReport) -> Result<String, HtmlError> {
    let mut out = String::new();
    let _ = writeln!(out, "<h1>{}</h1>", escape(&title(r)));
    let start = crate::report::trace_graph::loss_start(&r.hops)
        .and_then(|i| r.hops.get(i))
        .map_or_else(
            || "no loss to the end of the path".to_owned(),
            |h| format!("loss starts at TTL {}", h.ttl),
        );
    let _ = writeln!(
        out,
        "<p class=\"meta\">from {}, {} {}, {} hops, {}{}; {} probes in {:.1} ms; {}</p>",
        r.source,
        r.protocol.as_str(),
        r.mode.as_str(),
        r.hops.len(),
        if r.reached { "reached" } else { "not reached" },
        r.pmtu
            .map(|m| format!(", path MTU {m}"))
            .unwrap_or_default(),
        r.probes_sent,
        r.duration_ms,
        escape(&start),
    );
    out.push_str("<div class=\"grid\">\n");
    let caption = if r.links.is_empty() {
        "Path: a column per TTL; dashed edges join consecutive hops (no MDA links)"
    } else {
        "Path: a column per TTL; an edge per link MDA saw a flow take"
    };
    out.push_str(&figure("path", caption, &path_graph_svg(r)));
    out.push_str(&hop_rtt(r)?);
    out.push_str("</div>\n<h2>Hops</h2>\n");
    out.push_str(&hop_table(r));
    Ok(out)
}
