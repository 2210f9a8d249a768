//! The human-readable A2A result table.

use std::fmt::Write as _;

use probe_core::a2a::runtime::TestOutcome;
use probe_core::report::{A2aReport, DirectionReport, IntervalReport};
use probe_core::stats::Summary;

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

fn row(
    out: &mut String,
    name: &str,
    sent: u64,
    recv: u64,
    loss: Option<f64>,
    d: Option<&Summary>,
    extra: &str,
) {
    let g = |f: fn(&Summary) -> f64| ms(d.map(f));
    let _ = writeln!(
        out,
        "{name:<11}{sent:>8}{recv:>8}{:>8}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{extra}",
        pct(loss),
        g(|s| s.min),
        g(|s| s.p50),
        g(|s| s.p90),
        g(|s| s.p99),
        g(|s| s.max),
        g(|s| s.mean),
        g(|s| s.stddev),
    );
}

fn direction(out: &mut String, name: &str, d: &DirectionReport) {
    let extra = format!(
        "{:>9}{:>9}{:>6}{:>6}",
        ms(d.jitter_ms),
        ms(d.ipdv_ms),
        d.duplicates,
        d.reordered
    );
    row(
        out,
        name,
        d.sent,
        d.received,
        d.loss_pct,
        d.delay_ms.as_ref(),
        &extra,
    );
}

/// Renders the outcome as a table (delays in ms).
pub fn render(o: &TestOutcome, peer_note: &str) -> String {
    render_report(&o.report, o.local_drops, peer_note)
}

/// The table of one report (`local_drops`: datagrams dropped at our receive buffer).
pub fn render_report(r: &A2aReport, local_drops: Option<u32>, peer_note: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "probe a2a {}{peer_note}: {} packets of {} B every {:.3} ms, {:.1} pps sent; clock {}; {} timestamps",
        r.peer,
        r.sent,
        r.size,
        r.interval_ms,
        r.pps.unwrap_or(0.0),
        r.clock.mode,
        match r.timestamps {
            probe_core::time::TimestampSource::Kernel => "kernel",
            probe_core::time::TimestampSource::User => "user",
        }
    );
    let _ = writeln!(
        out,
        "\n{:<11}{:>8}{:>8}{:>8}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>6}{:>6}",
        "",
        "sent",
        "recv",
        "loss%",
        "min",
        "p50",
        "p90",
        "p99",
        "max",
        "mean",
        "stddev",
        "jitter",
        "ipdv",
        "dup",
        "reord"
    );
    row(
        &mut out,
        "round trip",
        r.sent,
        r.received,
        r.loss_pct,
        r.rtt_ms.as_ref(),
        "",
    );
    direction(&mut out, "forward", &r.forward);
    direction(&mut out, "reverse", &r.reverse);
    let _ = writeln!(
        out,
        "\ndelays in ms; forward = toward the peer, reverse = back"
    );
    let c = &r.clock;
    let _ = write!(out, "clock {} ({})", c.mode, c.basis);
    if let Some(off) = c.offset_ms {
        let _ = write!(out, ": offset {off:.3} ms");
    }
    if let Some(err) = c.error_ms {
        let _ = write!(out, ", error ±{err:.3} ms");
    }
    if let Some(note) = &c.note {
        let _ = write!(out, "; {note}");
    }
    let _ = writeln!(out);
    let se = &r.schedule_error_us;
    if let (Some(mean), Some(max)) = (se.mean, se.max) {
        let q = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        let _ = writeln!(
            out,
            "schedule error: mean {mean:.1} µs, p50 {} µs, p99 {} µs, max {max:.1} µs",
            q(se.p50),
            q(se.p99)
        );
    }
    if r.late > 0 || r.ignored > 0 {
        let _ = writeln!(
            out,
            "late replies {}, ignored datagrams {}",
            r.late, r.ignored
        );
    }
    if let Some(d) = local_drops.filter(|&d| d > 0) {
        let _ = writeln!(out, "dropped at our receive buffer: {d}");
    }
    if let Some(v) = &r.voice {
        voice(&mut out, v);
    }
    out
}

/// The voice profile's lines: one per direction.
fn voice(out: &mut String, v: &probe_core::report::VoiceReport) {
    let _ = writeln!(
        out,
        "\nvoice {} (jitter buffer {}; ITU-T G.107 E-model)\n{:<11}{:>8}{:>10}{:>9}{:>9}{:>9}{:>13}{:>8}{:>6}",
        v.codec,
        v.jitter_buffer,
        "",
        "loss%",
        "discards",
        "delay",
        "pdv",
        "buffer",
        "mouth-to-ear",
        "R",
        "MOS"
    );
    let f2 = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"));
    let f1 = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.1}"));
    for (name, d) in [("forward", &v.forward), ("reverse", &v.reverse)] {
        let _ = writeln!(
            out,
            "{name:<11}{:>8}{:>10}{:>9}{:>9}{:>9}{:>13}{:>8}{:>6}",
            f2(d.loss_pct),
            d.discards,
            f2(d.delay_ms),
            f2(d.pdv_ms),
            f1(d.jitter_buffer_ms),
            f1(d.mouth_to_ear_ms),
            f1(d.r_factor),
            f2(d.mos),
        );
    }
}

/// The header above interval lines (`--report-interval`).
pub fn interval_header() -> String {
    format!(
        "{:<16}{:>9}{:>9}{:>8}{:>10}{:>10}{:>10}{:>11}{:>11}{:>10}",
        "interval (s)",
        "sent",
        "recv",
        "loss%",
        "fwd loss%",
        "rev loss%",
        "rtt p50",
        "fwd jitter",
        "rev jitter",
        "pps"
    )
}

/// One interval as a line under [`interval_header`] (times in ms).
pub fn interval_line(r: &IntervalReport) -> String {
    format!(
        "{:<16}{:>9}{:>9}{:>8}{:>10}{:>10}{:>10}{:>11}{:>11}{:>10}",
        format!("{:.2}-{:.2}", r.start_s, r.end_s),
        r.sent,
        r.received,
        pct(r.loss_pct),
        pct(r.forward.loss_pct),
        pct(r.reverse.loss_pct),
        ms(r.rtt_p50_ms),
        ms(r.forward.jitter_ms),
        ms(r.reverse.jitter_ms),
        r.pps.map_or_else(|| "-".to_owned(), |p| format!("{p:.0}")),
    )
}

/// The live progress line on a terminal.
pub fn progress_line(r: &IntervalReport) -> String {
    format!(
        "{:.0} s: last interval {} sent, {} received, loss {}%, rtt p50 {} ms, {} pps",
        r.end_s,
        r.sent,
        r.received,
        pct(r.loss_pct),
        ms(r.rtt_p50_ms),
        r.pps.map_or_else(|| "-".to_owned(), |p| format!("{p:.0}")),
    )
}
