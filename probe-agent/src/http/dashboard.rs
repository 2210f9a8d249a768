//! The agent's dashboard: what `GET /` returns to a browser. One self-contained page (the
//! report pages' style sheet and Content-Security-Policy, inline SVG, no script): the mesh
//! heatmap coloured by loss or one-way delay (`?by=loss|delay`), the recent results of each
//! test, and for a chosen peer (`?pair=ADDR`) its runs over time and its newest path graph.
//! Everything comes from the agent's in-memory ring of recent results.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use probe_core::report::html::{escape, page, pair_figures, path_graph_svg};

use super::dashboard_model::{self, Cell, Heatmap, Metric, pair_history, recent_by_test};
use crate::state::AgentShared;

/// Results listed per test.
const RECENT_PER_TEST: usize = 8;

/// Runs of one pair on its charts.
const PAIR_RUNS: usize = 300;

/// The dashboard's own styles (beside the report pages').
const STYLE: &str = "<style>
#heatmap td.cell{min-width:6.5em;text-align:center;font-variant-numeric:tabular-nums}
#heatmap td.self{background:repeating-linear-gradient(45deg,#f3f3f3,#f3f3f3 4px,#e6e6e6 4px,#e6e6e6 8px)}
#heatmap td.nodata{color:#888;background:#fafafa}
#heatmap td.down,.legend .down{background:#5c1a1a;color:#fff}
.l0{background:#c8ecd0}.l1{background:#e3f1b6}.l2{background:#fbe59a}
.l3{background:#f9c07a}.l4{background:#f08a6a}.l5{background:#d9534f;color:#fff}
.switch a,.switch strong{margin-right:.8em}.legend span{padding:.1em .5em;margin-right:.2em}
td.fail{color:#b3261e}
</style>\n";

/// Thresholds between the colour levels, per metric.
fn level(m: Metric, v: f64) -> u8 {
    let bounds: [f64; 5] = match m {
        Metric::Loss => [0.0, 1.0, 5.0, 20.0, 50.0],
        Metric::Delay => [1.0, 5.0, 20.0, 50.0, 100.0],
    };
    let above = bounds.iter().filter(|&&b| v > b).count();
    u8::try_from(above).unwrap_or(5)
}

fn legend(m: Metric) -> String {
    let labels: [&str; 6] = match m {
        Metric::Loss => ["0%", "≤1%", "≤5%", "≤20%", "≤50%", ">50%"],
        Metric::Delay => ["≤1 ms", "≤5 ms", "≤20 ms", "≤50 ms", "≤100 ms", ">100 ms"],
    };
    let mut out = String::from("<p class=\"legend\">");
    for (i, l) in labels.iter().enumerate() {
        let _ = write!(out, "<span class=\"l{i}\">{l}</span>");
    }
    out.push_str("<span class=\"down\">no answer</span></p>\n");
    out
}

fn when(unix_ns: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_nanos(unix_ns)).to_string()
}

fn format_value(m: Metric, v: f64) -> String {
    match m {
        Metric::Loss => format!("{v:.1}%"),
        Metric::Delay => format!("{v:.3} ms"),
    }
}

/// A link to this page with `by` and `pair` set.
fn href(by: Metric, pair: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("by", by.as_str());
    if let Some(p) = pair {
        q.append_pair("pair", p);
    }
    escape(&format!("?{}", q.finish()))
}

fn cell_td(h: &Heatmap, from: usize, to: usize, c: Option<&Cell>, m: Metric) -> String {
    let attrs = format!(
        "data-from=\"{}\" data-to=\"{}\"",
        escape(&h.agents[from]),
        escape(&h.agents[to])
    );
    let Some(c) = c else {
        let why = if from == 0 || to == 0 {
            "not measured yet"
        } else {
            "between two peers: on their own dashboards"
        };
        return format!("<td class=\"cell nodata\" {attrs} title=\"{why}\">–</td>");
    };
    let data = format!(
        "{attrs} data-loss=\"{}\" data-delay=\"{}\"",
        c.loss_pct.map_or_else(String::new, |v| format!("{v:.3}")),
        c.delay_ms.map_or_else(String::new, |v| format!("{v:.3}")),
    );
    let title = escape(&format!(
        "{} → {}: loss {}, one-way delay p50 {} ({}, {})",
        h.agents[from],
        h.agents[to],
        c.loss_pct
            .map_or_else(|| "unknown".to_owned(), |v| format!("{v:.1}%")),
        c.delay_ms
            .map_or_else(|| "unknown".to_owned(), |v| format!("{v:.3} ms")),
        c.test,
        when(c.at_unix_ns),
    ));
    match c.value(m) {
        Some(v) => format!(
            "<td class=\"cell l{}\" {data} title=\"{title}\">{}</td>",
            level(m, v),
            format_value(m, v)
        ),
        None if !c.ok => format!("<td class=\"cell down\" {data} title=\"{title}\">no answer</td>"),
        None => format!("<td class=\"cell nodata\" {data} title=\"{title}\">?</td>"),
    }
}

fn heatmap_table(h: &Heatmap, m: Metric) -> String {
    let label = |i: usize| {
        if i == 0 {
            format!("{} <small>(this agent)</small>", escape(&h.agents[0]))
        } else {
            format!(
                "<a href=\"{}\">{}</a>",
                href(m, Some(&h.agents[i])),
                escape(&h.agents[i])
            )
        }
    };
    let mut t = String::from("<table id=\"heatmap\"><tr><th>from \\ to</th>");
    for i in 0..h.agents.len() {
        let _ = write!(t, "<th>{}</th>", label(i));
    }
    t.push_str("</tr>\n");
    for (from, row) in h.cells.iter().enumerate() {
        let _ = write!(t, "<tr><th>{}</th>", label(from));
        for (to, c) in row.iter().enumerate() {
            if from == to {
                t.push_str("<td class=\"self\"></td>");
            } else {
                t.push_str(&cell_td(h, from, to, c.as_ref(), m));
            }
        }
        t.push_str("</tr>\n");
    }
    t.push_str("</table>\n");
    t
}

fn recent_tables(records: &[crate::record::ResultRecord]) -> String {
    let by_test = recent_by_test(records, RECENT_PER_TEST);
    if by_test.is_empty() {
        return "<p class=\"meta\">No results yet.</p>\n".to_owned();
    }
    let mut out = String::new();
    for (test, list) in by_test {
        let kind = list.first().map_or("", |r| r.kind.as_str());
        let _ = writeln!(
            out,
            "<h3>{} <small>({})</small></h3><table class=\"recent\" data-test=\"{}\">\
             <tr><th>started (UTC)</th><th>peer</th><th>result</th><th>figures</th></tr>",
            escape(test),
            escape(kind),
            escape(test)
        );
        for r in list {
            let result = if r.ok {
                "<td>ok</td>".to_owned()
            } else {
                format!(
                    "<td class=\"fail\" title=\"{}\">{}</td>",
                    escape(r.error.as_deref().unwrap_or("")),
                    r.error_class.map_or("failed", |c| c.as_str())
                )
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td>{result}<td>{}</td></tr>",
                when(r.start_unix_ns),
                escape(r.peer.as_deref().unwrap_or(&r.target)),
                escape(&dashboard_model::summary(r)),
            );
        }
        out.push_str("</table>\n");
    }
    out
}

fn pair_section(records: &[crate::record::ResultRecord], pair: &str, now_unix_ns: u64) -> String {
    let h = pair_history(records, pair, now_unix_ns, PAIR_RUNS);
    let mut out = format!(
        "<h2 id=\"pair\">This agent ↔ {}</h2>\n<div class=\"grid\">\n",
        escape(pair)
    );
    if h.series.is_empty() {
        out.push_str("<p class=\"meta\">No a2a runs toward this peer in the recent results.</p>\n");
    }
    match pair_figures(&h.series, &h.clock) {
        Ok(f) => out.push_str(&f),
        Err(e) => {
            let _ = writeln!(out, "<p class=\"err\">{}</p>", escape(&e.to_string()));
        }
    }
    match &h.trace {
        Some(t) => {
            let caption = format!(
                "Newest path toward {} ({} hops, {})",
                t.target,
                t.hops.len(),
                if t.reached { "reached" } else { "not reached" }
            );
            let _ = writeln!(
                out,
                "<figure id=\"path\"><figcaption>{}</figcaption>{}</figure>",
                escape(&caption),
                path_graph_svg(t)
            );
        }
        None => out.push_str(
            "<p class=\"meta\">No path: no trace test measures this peer (a test of \
             <code>kind = \"trace\"</code> toward the same target draws it here).</p>\n",
        ),
    }
    out.push_str("</div>\n");
    out
}

/// The dashboard page of `shared` for the query string `query` (`by`, `pair`), at
/// `now_unix_ns`.
pub(super) fn render(shared: &AgentShared, query: Option<&str>, now_unix_ns: u64) -> String {
    let param = |name: &str| super::query_param(query, name);
    let metric = Metric::parse(param("by").as_deref());
    let pair = param("pair").filter(|p| !p.is_empty());
    let info = shared.info();
    let records = shared.recent_since(0);
    let map = dashboard_model::heatmap(&info.name, &shared.peers(), &records);

    let mut body = String::from(STYLE);
    let _ = writeln!(
        body,
        "<h1>probe agent {}</h1>\n<p class=\"meta\">id {}, fingerprint {}, tags {}, probe {}; \
         {} recent results; as of {}</p>",
        escape(&info.name),
        escape(&info.id),
        escape(&info.fingerprint),
        if info.tags.is_empty() {
            "none".to_owned()
        } else {
            escape(&info.tags.join(","))
        },
        escape(&info.version),
        records.len(),
        when(now_unix_ns),
    );
    body.push_str("<h2>Mesh</h2>\n<p class=\"switch\">colour by: ");
    for m in [Metric::Loss, Metric::Delay] {
        let name = match m {
            Metric::Loss => "loss",
            Metric::Delay => "one-way delay",
        };
        if m == metric {
            let _ = write!(body, "<strong>{name}</strong>");
        } else {
            let _ = write!(body, "<a href=\"{}\">{name}</a>", href(m, pair.as_deref()));
        }
    }
    body.push_str(
        "</p>\n<p class=\"meta\">Rows are sources, columns destinations; each a2a run of this \
         agent fills both directions of its pair (newest run). Pick a peer for its history.</p>\n",
    );
    body.push_str(&heatmap_table(&map, metric));
    body.push_str(&legend(metric));
    if let Some(p) = &pair {
        body.push_str(&pair_section(&records, p, now_unix_ns));
    }
    body.push_str("<h2>Recent results</h2>\n");
    body.push_str(&recent_tables(&records));
    page(&format!("probe agent {}", info.name), &body)
}
