//! Charts of the agent's dashboard: one pair's runs over time (the agent composes the page;
//! the records it reads are its own types).

use std::fmt::Write as _;

use super::charts::{self, FORWARD, LOSS, Line, REVERSE, ROUND_TRIP};
use super::{HtmlError, figure};

/// One pair's runs over time: a point per run, `(minutes relative to now, value)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PairSeries {
    /// Round-trip median per run, ms.
    pub rtt_ms: Vec<(f64, f64)>,
    /// Forward (toward the peer) one-way median per run, ms.
    pub forward_ms: Vec<(f64, f64)>,
    /// Reverse (back from the peer) one-way median per run, ms.
    pub reverse_ms: Vec<(f64, f64)>,
    /// Round-trip loss per run, percent.
    pub loss_pct: Vec<(f64, f64)>,
}

impl PairSeries {
    /// Whether no run has a point.
    pub fn is_empty(&self) -> bool {
        self.rtt_ms.is_empty()
            && self.forward_ms.is_empty()
            && self.reverse_ms.is_empty()
            && self.loss_pct.is_empty()
    }
}

const X_DESC: &str = "minutes relative to now";

/// The figures of one pair over time: delays (`<figure id="pair-latency">`, a circle per
/// run and series) and loss (`<figure id="pair-loss">`); `clock` is shown beside the
/// one-way delays (the clock mode and error bound of the newest run).
pub fn pair_figures(s: &PairSeries, clock: &str) -> Result<String, HtmlError> {
    let mut out = String::new();
    let mut lines = Vec::new();
    let mut names = Vec::new();
    for (name, points, color) in [
        ("green round trip", &s.rtt_ms, ROUND_TRIP),
        ("blue forward one-way", &s.forward_ms, FORWARD),
        ("orange reverse one-way", &s.reverse_ms, REVERSE),
    ] {
        if !points.is_empty() {
            lines.push(Line {
                color,
                points: points.clone(),
                marks: true,
            });
            names.push(name);
        }
    }
    if !lines.is_empty() {
        let svg = charts::lines(
            "pair-latency",
            X_DESC,
            "median delay per run, ms",
            &lines,
            true,
        )?;
        let caption = format!("Latency per run ({}); one-way: {clock}", names.join(", "));
        out.push_str(&figure("pair-latency", &caption, &svg));
    }
    let lossy = s.loss_pct.iter().filter(|p| p.1 > 0.0).count();
    if lossy > 0 {
        let svg = charts::lines(
            "pair-loss",
            X_DESC,
            "loss per run, %",
            &[Line {
                color: LOSS,
                points: s.loss_pct.clone(),
                marks: true,
            }],
            true,
        )?;
        let caption = format!(
            "Round-trip loss per run ({lossy} of {} runs lost packets)",
            s.loss_pct.len()
        );
        out.push_str(&figure("pair-loss", &caption, &svg));
    } else if !s.loss_pct.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"meta\" id=\"pair-loss\">No loss in the last {} runs.</p>",
            s.loss_pct.len()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_circle_per_run_and_series() {
        let s = PairSeries {
            rtt_ms: vec![(-2.0, 1.0), (-1.0, 1.5), (0.0, 1.2)],
            forward_ms: vec![(-2.0, 0.5), (0.0, 0.6)],
            reverse_ms: vec![],
            loss_pct: vec![(-2.0, 0.0), (-1.0, 10.0), (0.0, 0.0)],
        };
        let html = pair_figures(&s, "clock shared, ±0.000 ms").expect("charts");
        let latency = &html[..html.find("id=\"pair-loss\"").expect("loss figure")];
        assert_eq!(latency.matches("<circle").count(), 5);
        assert!(latency.contains("clock shared"));
        assert_eq!(html.matches("<circle").count(), 8);
        assert!(html.contains("(1 of 3 runs lost packets)"));
        let quiet = PairSeries {
            loss_pct: vec![(-1.0, 0.0), (0.0, 0.0)],
            ..s
        };
        let html = pair_figures(&quiet, "").expect("charts");
        assert!(html.contains("No loss in the last 2 runs."), "{html}");
        assert!(
            pair_figures(&PairSeries::default(), "")
                .expect("empty")
                .is_empty()
        );
    }
}
