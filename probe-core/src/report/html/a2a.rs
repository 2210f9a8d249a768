//! The a2a report page: clock banner, summary, one-way delays and round trips over time
//! (from the report's `timeline`), delay distributions, loss and throughput per bucket,
//! interval reports.

use std::fmt::Write as _;

use super::charts::{self, Band, FORWARD, LOSS, Line, REVERSE, ROUND_TRIP};
use super::{HtmlError, escape, figure, ms, page, pct};
use crate::report::{A2aReport, DirectionReport, Spread, Timeline};
use crate::stats::Summary;

/// The page of one a2a test.
pub fn a2a_page(r: &A2aReport) -> Result<String, HtmlError> {
    let title = format!("probe a2a to {}", r.peer);
    Ok(page(&title, &a2a_sections(r)?))
}

/// The clock mode and the one-way error bound, as shown beside every one-way figure.
fn clock_tag(r: &A2aReport) -> String {
    let bound = r
        .clock
        .error_ms
        .map_or_else(|| "unknown".to_owned(), |e| format!("±{e:.3} ms"));
    format!("clock {}, {bound}", r.clock.mode)
}

fn banner(r: &A2aReport) -> String {
    let c = &r.clock;
    let one_way = r.forward.delay_ms.is_some() || r.reverse.delay_ms.is_some();
    let class = if one_way {
        c.mode.to_string()
    } else {
        "none".to_owned()
    };
    let mut text = format!(
        "<strong>Clock: {}</strong> (decided by {}); one-way error bound: <strong>{}</strong>",
        c.mode,
        c.basis,
        c.error_ms
            .map_or_else(|| "unknown".to_owned(), |e| format!("±{e:.3} ms")),
    );
    if let Some(o) = c.offset_ms {
        let _ = write!(text, "; offset {o:.3} ms");
    }
    if let Some(d) = c.drift_ppm {
        let _ = write!(text, "; drift {d:.2} ppm");
    }
    if let Some(n) = &c.note {
        let _ = write!(text, ". {}", escape(n));
    }
    if !one_way {
        text.push_str(". No one-way delays: the clock offset is unknown.");
    }
    format!("<div class=\"banner {class}\" id=\"clock\">{text}</div>\n")
}

fn summary_cells(s: Option<&Summary>) -> String {
    let v = |f: fn(&Summary) -> f64| ms(s.map(f));
    format!(
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        v(|s| s.min),
        v(|s| s.mean),
        v(|s| s.p50),
        v(|s| s.p99),
        v(|s| s.max),
        v(|s| s.stddev)
    )
}

fn direction_row(name: &str, d: &DirectionReport, tag: &str) -> String {
    let lost = d.lost.map_or_else(|| "-".to_owned(), |l| l.to_string());
    let bad = if d.lost.unwrap_or(0) > 0 {
        " class=\"bad\""
    } else {
        ""
    };
    format!(
        "<tr><td>{name} <small>({})</small></td><td>{}</td><td>{}</td><td{bad}>{lost}</td>\
         <td{bad}>{}</td>{}<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        escape(tag),
        d.sent,
        d.received,
        pct(d.loss_pct),
        summary_cells(d.delay_ms.as_ref()),
        ms(d.jitter_ms),
        ms(d.ipdv_ms),
        d.duplicates,
        d.reordered,
    )
}

fn summary_table(r: &A2aReport) -> String {
    let tag = clock_tag(r);
    let mut t = String::from(
        "<table id=\"summary\"><tr><th></th><th>sent</th><th>received</th><th>lost</th>\
         <th>loss</th><th>min ms</th><th>mean ms</th><th>p50 ms</th><th>p99 ms</th>\
         <th>max ms</th><th>stddev ms</th><th>jitter ms</th><th>IPDV ms</th><th>dup</th>\
         <th>reord</th></tr>\n",
    );
    let bad = if r.lost > 0 { " class=\"bad\"" } else { "" };
    let _ = writeln!(
        t,
        "<tr><td>round trip</td><td>{}</td><td>{}</td><td{bad}>{}</td><td{bad}>{}</td>{}\
         <td></td><td></td><td></td><td></td></tr>",
        r.sent,
        r.received,
        r.lost,
        pct(r.loss_pct),
        summary_cells(r.rtt_ms.as_ref()),
    );
    t.push_str(&direction_row("forward one-way", &r.forward, &tag));
    t.push_str(&direction_row("reverse one-way", &r.reverse, &tag));
    t.push_str("</table>\n");
    t
}

/// A summary's percentiles as points of its distribution function.
fn cdf(s: &Summary) -> Vec<(f64, f64)> {
    vec![
        (s.min, 0.0),
        (s.p50, 0.5),
        (s.p90, 0.9),
        (s.p99, 0.99),
        (s.max, 1.0),
    ]
}

fn distributions(r: &A2aReport) -> Result<String, HtmlError> {
    let mut lines = Vec::new();
    let mut names = Vec::new();
    for (name, s, color) in [
        ("forward", r.forward.delay_ms.as_ref(), FORWARD),
        ("reverse", r.reverse.delay_ms.as_ref(), REVERSE),
        ("round trip", r.rtt_ms.as_ref(), ROUND_TRIP),
    ] {
        if let Some(s) = s {
            lines.push(Line {
                color,
                points: cdf(s),
                marks: true,
            });
            names.push(name);
        }
    }
    if lines.is_empty() {
        return Ok(String::new());
    }
    let svg = charts::lines(
        "distribution",
        "delay, ms",
        "fraction of packets",
        &lines,
        true,
    )?;
    let caption = format!(
        "Delay distributions ({}; blue forward, orange reverse, green round trip): the \
         fraction of packets at or below each delay, at min, p50, p90, p99 and max. One-way: {}",
        names.join(", "),
        clock_tag(r)
    );
    Ok(figure("distribution", &caption, &svg))
}

/// Seconds each bucket covers (the last: as long per packet as the one before).
fn bucket_spans(t: &Timeline, r: &A2aReport) -> Vec<(f64, f64)> {
    let b = &t.buckets;
    let per_packet_fallback = r.interval_ms / 1e3;
    (0..b.len())
        .map(|i| {
            let start = b[i].start_s;
            let end = match b.get(i + 1) {
                Some(n) => n.start_s,
                None => {
                    let per_packet = i
                        .checked_sub(1)
                        .map(|p| (start - b[p].start_s) / b[p].sent.max(1) as f64)
                        .filter(|d| *d > 0.0)
                        .unwrap_or(per_packet_fallback);
                    start + per_packet * b[i].sent as f64
                }
            };
            (start, end.max(start))
        })
        .collect()
}

fn band(
    t: &Timeline,
    color: plotters::style::RGBColor,
    pick: fn(&crate::report::TimelineBucket) -> Option<Spread>,
) -> Band {
    Band {
        color,
        points: t
            .buckets
            .iter()
            .filter_map(|b| pick(b).map(|s| (b.start_s, s.min, s.mean, s.max)))
            .collect(),
    }
}

/// Most points of the throughput chart.
const THROUGHPUT_WINDOWS: usize = 50;

fn over_time(r: &A2aReport, t: &Timeline) -> Result<String, HtmlError> {
    let spans = bucket_spans(t, r);
    let x_end = spans.last().map_or(0.0, |s| s.1);
    let lost_at: Vec<f64> = t
        .buckets
        .iter()
        .filter(|b| b.lost > 0)
        .map(|b| b.start_s)
        .collect();
    let per = if t.bucket_packets == 1 {
        "per packet".to_owned()
    } else {
        format!("per bucket of {} packets", t.bucket_packets)
    };
    let mut out = String::new();
    let tag = clock_tag(r);
    for (id, name, color, pick) in [
        (
            "owd-forward",
            "Forward one-way delay",
            FORWARD,
            (|b| b.forward_ms) as fn(&crate::report::TimelineBucket) -> Option<Spread>,
        ),
        ("owd-reverse", "Reverse one-way delay", REVERSE, |b| {
            b.reverse_ms
        }),
    ] {
        let b = band(t, color, pick);
        if b.points.is_empty() {
            continue;
        }
        let svg = charts::over_time(id, "one-way delay, ms", &b, &lost_at, x_end)?;
        let caption = format!(
            "{name} ({tag}), {per}: dot = mean, band = min to max; red crosses: packets lost \
             on the round trip (the split by direction is in the table above)"
        );
        out.push_str(&figure(id, &caption, &svg));
    }
    let b = band(t, ROUND_TRIP, |b| b.rtt_ms);
    let svg = charts::over_time("rtt", "round trip, ms", &b, &lost_at, x_end)?;
    out.push_str(&figure(
        "rtt",
        &format!(
            "Round-trip time, {per}: dot = mean, band = min to max; red crosses: lost packets"
        ),
        &svg,
    ));
    // Rates over windows of whole buckets (at most THROUGHPUT_WINDOWS of them): a rate per
    // packet would only show the send jitter.
    let per_window = t.buckets.len().div_ceil(THROUGHPUT_WINDOWS).max(1);
    let rate = |count: fn(&crate::report::TimelineBucket) -> u64| -> Vec<(f64, f64)> {
        t.buckets
            .chunks(per_window)
            .zip(spans.chunks(per_window))
            .filter_map(|(b, s)| {
                let (start, end) = (s.first()?.0, s.last()?.1);
                let n: u64 = b.iter().map(count).sum();
                (end > start).then(|| (f64::midpoint(start, end), n as f64 / (end - start)))
            })
            .collect()
    };
    let sent = rate(|b| b.sent);
    let received = rate(|b| b.received);
    if !sent.is_empty() {
        let mbps = |pps: f64| pps * r.size as f64 * 8.0 / 1e6;
        let mean_pps = received.iter().map(|p| p.1).sum::<f64>() / received.len().max(1) as f64;
        let svg = charts::lines(
            "throughput",
            "time since the first packet, s",
            "packets per second",
            &[
                Line {
                    color: FORWARD,
                    points: sent,
                    marks: false,
                },
                Line {
                    color: ROUND_TRIP,
                    points: received,
                    marks: false,
                },
            ],
            true,
        )?;
        out.push_str(&figure(
            "throughput",
            &format!(
                "Throughput over {} windows: blue sent, green answered (mean {mean_pps:.1} packets/s, {:.3} Mbit/s of {}-octet payloads)",
                t.buckets.len().div_ceil(per_window),
                mbps(mean_pps),
                r.size,
            ),
            &svg,
        ));
    }
    let bars: Vec<(f64, f64, f64)> = t
        .buckets
        .iter()
        .zip(&spans)
        .map(|(b, s)| (s.0, s.1, b.lost as f64))
        .collect();
    let svg = charts::bars("loss", "lost packets", &bars, LOSS, x_end)?;
    let lost: u64 = t.buckets.iter().map(|b| b.lost).sum();
    out.push_str(&figure(
        "loss",
        &format!("Lost packets {per} ({lost} in all)"),
        &svg,
    ));
    Ok(out)
}

fn intervals_table(r: &A2aReport) -> String {
    if r.intervals.is_empty() {
        return String::new();
    }
    let mut t = String::from(
        "<h2>Intervals</h2><table id=\"intervals\"><tr><th>start s</th><th>end s</th>\
         <th>sent</th><th>lost</th><th>loss</th><th>fwd loss</th><th>rev loss</th>\
         <th>fwd jitter ms</th><th>rev jitter ms</th><th>RTT p50 ms</th><th>packets/s</th></tr>\n",
    );
    for i in &r.intervals {
        let _ = writeln!(
            t,
            "<tr><td>{:.3}</td><td>{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            i.start_s,
            i.end_s,
            i.sent,
            i.lost,
            pct(i.loss_pct),
            pct(i.forward.loss_pct),
            pct(i.reverse.loss_pct),
            ms(i.forward.jitter_ms),
            ms(i.reverse.jitter_ms),
            ms(i.rtt_p50_ms),
            i.pps.map_or_else(|| "-".to_owned(), |p| format!("{p:.1}")),
        );
    }
    t.push_str("</table>\n");
    t
}

/// The sections of the a2a page (without the page around them).
pub fn a2a_sections(r: &A2aReport) -> Result<String, HtmlError> {
    let mut out = String::new();
    let _ = writeln!(out, "<h1>probe a2a to {}</h1>", escape(&r.peer));
    let _ = writeln!(
        out,
        "<p class=\"meta\">SSID {}, {} packets of {} octets every {:.3} ms over {:.3} s \
         ({}), {} timestamps; late {}, ignored {}; schedule error p99 {} µs</p>",
        r.ssid,
        r.sent,
        r.size,
        r.interval_ms,
        r.duration_s,
        r.pps
            .map_or_else(|| "-".to_owned(), |p| format!("{p:.1} packets/s")),
        format!("{:?}", r.timestamps).to_lowercase(),
        r.late,
        r.ignored,
        r.schedule_error_us
            .p99
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.1}")),
    );
    out.push_str(&banner(r));
    out.push_str(&summary_table(r));
    out.push_str("<h2>Over time</h2>\n<div class=\"grid\">\n");
    match &r.timeline {
        Some(t) if !t.buckets.is_empty() => out.push_str(&over_time(r, t)?),
        _ => out.push_str(
            "<p class=\"err\">This result has no timeline: run the test with --html or \
             --timeline to see it over time.</p>\n",
        ),
    }
    out.push_str("</div>\n<h2>Distributions</h2>\n<div class=\"grid\">\n");
    out.push_str(&distributions(r)?);
    out.push_str("</div>\n");
    out.push_str(&intervals_table(r));
    Ok(out)
}
