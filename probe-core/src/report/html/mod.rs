//! Self-contained HTML reports (`probe a2a --html`, `probe trace --html`, `probe report`):
//! one file with inline CSS and SVG, no script, no font, no request. A strict
//! Content-Security-Policy (`default-src 'none'`, inline styles only) makes any stray
//! request fail in the browser, loudly, instead of leaking.
//!
//! The parts are public so that other pages (the agent's dashboard) can compose them:
//! [`page`] wraps a body, [`a2a_sections`] and [`trace_sections`] are the views, and
//! [`path_graph_svg`] draws a path on its own. Charts are drawn with plotters' SVG backend
//! (this module is behind the `html` feature).

mod a2a;
mod charts;
mod dashboard;
mod trace;

use std::fmt::Write as _;

pub use a2a::{a2a_page, a2a_sections};
pub use dashboard::{PairSeries, pair_figures};
pub use trace::{path_graph_svg, trace_page, trace_sections};

/// The page's Content-Security-Policy: nothing may load; inline styles (and the inline SVG
/// they style) are all the page has.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

/// What can go wrong while rendering.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HtmlError {
    /// The chart library failed to draw.
    #[error("cannot draw the {chart} chart: {reason}")]
    Chart {
        /// Which chart.
        chart: &'static str,
        /// The library's message.
        reason: String,
    },
}

const STYLE: &str = r"
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em;color:#1d2125;background:#fff}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.2em 0 .4em}
.meta{color:#555;margin:.2em 0 .8em}
.banner{padding:.6em .9em;border-radius:6px;margin:.6em 0 1em;border:1px solid}
.banner.shared,.banner.synced{background:#eef7ee;border-color:#9c9}
.banner.estimated{background:#fff7e6;border-color:#e5b75a}
.banner.none{background:#f4f4f4;border-color:#bbb}
table{border-collapse:collapse;margin:.4em 0;font-size:.92em}
th,td{border:1px solid #d6d9dc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f5f7}
.bad{color:#b3261e;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
figure{max-width:640px;margin:0;border:1px solid #e1e4e8;border-radius:6px;padding:.5em;background:#fff}
figure#path{max-width:none}
figcaption{font-size:.9em;color:#333;margin-bottom:.3em}
.err{color:#6b4d00;font-size:.85em}
svg text{font-family:sans-serif}
.path .node rect{fill:#f5f9ff;stroke:#3b6fb6;stroke-width:1.2}
.path .node.loss-start rect{fill:#fdecea;stroke:#b3261e;stroke-width:2.5}
.path .node.target rect{stroke-width:2.2}
.path .silent rect{fill:#f4f4f4;stroke:#999;stroke-dasharray:4 3}
.path .edge{fill:none;stroke:#5c6670;stroke-width:1.4}
.path .edge.inferred{stroke-dasharray:5 4;stroke:#9aa3ab}
.path text{font-size:11px;fill:#1d2125}.path text.addr{font-weight:600;font-size:12px}
.path text.mark{fill:#7a3fb0;font-weight:600}
.path text.col{fill:#777;font-size:11px}
";

/// Escapes `s` for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `title` and `body` (HTML) with probe's style sheet and the CSP.
pub fn page(title: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + STYLE.len() + 512);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"generator\" content=\"probe {}\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n",
        env!("CARGO_PKG_VERSION"),
        escape(title),
    );
    out
}

/// `v` in ms with three decimals, or `-`.
pub(crate) fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

/// `v` in percent with one decimal, or `-`.
pub(crate) fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}%"))
}

/// A figure with its caption around an inline SVG chart.
pub(crate) fn figure(id: &str, caption: &str, svg: &str) -> String {
    format!(
        "<figure id=\"{id}\"><figcaption>{}</figcaption>{svg}</figure>\n",
        escape(caption)
    )
}

#[cfg(test)]
mod tests;
