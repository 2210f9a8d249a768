//! The human-readable A2A result table.

use std::fmt::Write as _;

use probe_core::a2a::runtime::TestOutcome;
use probe_core::report::DirectionReport;
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
    let r = &o.report;
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
    if let (Some(mean), Some(max)) = (r.schedule_error_us.mean, r.schedule_error_us.max) {
        let _ = writeln!(out, "schedule error: mean {mean:.1} µs, max {max:.1} µs");
    }
    if r.late > 0 || r.ignored > 0 {
        let _ = writeln!(
            out,
            "late replies {}, ignored datagrams {}",
            r.late, r.ignored
        );
    }
    if let Some(d) = o.local_drops.filter(|&d| d > 0) {
        let _ = writeln!(out, "dropped at our receive buffer: {d}");
    }
    out
}
