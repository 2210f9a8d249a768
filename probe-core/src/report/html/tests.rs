//! Tests for [`super`]: what the pages hold, that they load nothing, and their size.

use super::*;
use crate::report::trace_graph::tests::diamond;
use crate::report::{A2aReport, ClockBasis, ClockReport, Spread, Timeline, TimelineBucket};
use crate::time::ClockMode;

fn a2a_report(buckets: usize) -> A2aReport {
    let text = include_str!("../../../tests/data/a2a_report.json");
    let mut r: A2aReport = serde_json::from_str(text).expect("fixture");
    r.clock = ClockReport {
        mode: ClockMode::Estimated,
        basis: ClockBasis::None,
        offset_ms: Some(0.2),
        error_ms: Some(0.125),
        drift_ppm: Some(0.0),
        note: None,
    };
    r.timeline = Some(Timeline {
        bucket_packets: 10,
        buckets: (0..buckets)
            .map(|i| {
                let x = i as f64;
                let lost = u64::from(i % 50 == 7);
                TimelineBucket {
                    first_seq: (i * 10) as u32,
                    start_s: x * 0.01,
                    sent: 10,
                    received: 10 - lost,
                    lost,
                    rtt_ms: Some(Spread::new(1.0, 1.2 + (x / 30.0).sin() * 0.1, 1.9)),
                    forward_ms: Some(Spread::new(0.4, 0.5, 0.9)),
                    reverse_ms: (i % 3 != 0).then(|| Spread::new(0.5, 0.6, 1.0)),
                }
            })
            .collect(),
    });
    r
}

fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<figure id=\"{id}\""))
        .unwrap_or_else(|| panic!("no figure {id}"));
    let end = html[start..].find("</figure>").expect("end") + start;
    &html[start..end]
}

#[test]
fn a2a_page_has_a_point_per_bucket_and_the_clock_beside_one_way_figures() {
    let r = a2a_report(1000);
    let html = a2a_page(&r).expect("html");
    assert!(html.contains(CONTENT_SECURITY_POLICY));
    assert_eq!(
        section(&html, "owd-forward").matches("<circle").count(),
        1000
    );
    assert_eq!(
        section(&html, "owd-reverse").matches("<circle").count(),
        666
    );
    assert_eq!(section(&html, "rtt").matches("<circle").count(), 1000);
    assert!(section(&html, "owd-forward").contains("clock estimated, ±0.125 ms"));
    assert!(section(&html, "owd-reverse").contains("clock estimated, ±0.125 ms"));
    assert!(section(&html, "loss").contains("(20 in all)"));
    // Lost buckets marked on the delay plots: a cross is two lines.
    assert!(html.contains("id=\"clock\""));
    // Nothing to fetch: the only URL is the SVG namespace.
    let urls = html.matches("http://").count() + html.matches("https://").count();
    let ns = html.matches("http://www.w3.org/2000/svg").count();
    assert_eq!(urls, ns);
    assert!(!html.contains("<script"));
    // A 10 000-packet test (1000 buckets) stays well under 500 KB.
    assert!(html.len() < 500_000, "{} bytes", html.len());
}

#[test]
fn a2a_page_without_timeline_says_how_to_get_one() {
    let mut r = a2a_report(0);
    r.timeline = None;
    let html = a2a_page(&r).expect("html");
    assert!(html.contains("has no timeline"));
    assert!(html.contains("<figure id=\"distribution\""));
}

#[test]
fn trace_page_draws_the_diamond() {
    let r = diamond();
    let html = trace_page(&r).expect("html");
    let path = section(&html, "path");
    assert_eq!(path.matches("<g class=\"node").count(), 4);
    assert_eq!(path.matches("class=\"edge link\"").count(), 4);
    assert!(path.contains("MPLS 16001/0/1/1"));
    assert!(path.contains("NAT"));
    assert_eq!(section(&html, "hop-rtt").matches("<circle").count(), 4);
    assert!(!html.contains("node loss-start"));
    let mut lossy = r.clone();
    lossy.hops[2].loss_pct = 30.0;
    let html = trace_page(&lossy).expect("html");
    assert_eq!(html.matches("node loss-start").count(), 1);
    assert!(html.contains("loss starts at TTL 3"));
}

#[test]
fn text_is_escaped() {
    let mut r = diamond();
    r.hops[0].responders[0].hostname = Some("<script>x</script>".into());
    let html = trace_page(&r).expect("html");
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;"));
}
