//! The charts of the reports, drawn with plotters' SVG backend into strings. Each chart
//! draws one circle per data point (the browser tests count them), bands and lines as
//! single paths, so that a 1000-bucket timeline stays small.

use std::ops::Range;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::HtmlError;

/// Chart size, px.
pub(crate) const SIZE: (u32, u32) = (620, 300);

/// Colours of the directions and of round trips.
pub(crate) const FORWARD: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
/// Back from the peer.
pub(crate) const REVERSE: RGBColor = RGBColor(0xd6, 0x6a, 0x0b);
/// Round trip.
pub(crate) const ROUND_TRIP: RGBColor = RGBColor(0x2c, 0x8c, 0x4a);
/// Loss marks.
pub(crate) const LOSS: RGBColor = RGBColor(0xc6, 0x28, 0x28);

/// One series over time: `(x, min, mean, max)` per point.
pub(crate) struct Band {
    pub(crate) color: RGBColor,
    pub(crate) points: Vec<(f64, f64, f64, f64)>,
}

/// One line of a chart: `(x, y)` per point, circles at the points when `marks`.
pub(crate) struct Line {
    pub(crate) color: RGBColor,
    pub(crate) points: Vec<(f64, f64)>,
    pub(crate) marks: bool,
}

fn err(chart: &'static str) -> impl Fn(&dyn std::fmt::Display) -> HtmlError {
    move |e| HtmlError::Chart {
        chart,
        reason: e.to_string(),
    }
}

/// A range around `values` with a little room, never empty.
fn range(values: impl Iterator<Item = f64>, from_zero: bool) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return 0.0..1.0;
    }
    if from_zero {
        lo = lo.min(0.0);
    }
    let pad = ((hi - lo) * 0.06).max(hi.abs() * 0.02).max(1e-6);
    if !from_zero || lo < 0.0 {
        lo -= pad;
    }
    hi += pad;
    lo..hi
}

/// A chart's plotting area: both axes in `f64`.
type Plot<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// What drawing on the SVG backend can fail with.
type DrawError = DrawingAreaErrorKind<std::io::Error>;

/// The x axis of the charts over time.
const TIME_AXIS: &str = "time since the first packet, s";

/// The axes of a chart: their ranges and descriptions, and how many x labels at most
/// (plotters' default when `None`).
struct Axes<'a> {
    x: Range<f64>,
    y: Range<f64>,
    x_desc: &'a str,
    y_desc: &'a str,
    x_labels: Option<usize>,
}

/// The frame every chart shares: a white canvas of `size`, margins, the labelled axes
/// (no light grid lines); `series` then draws on it. The SVG text, or an error naming
/// `chart`.
fn draw(
    chart: &'static str,
    size: (u32, u32),
    axes: Axes<'_>,
    series: impl FnOnce(&mut Plot<'_, '_>) -> Result<(), DrawError>,
) -> Result<String, HtmlError> {
    let e = err(chart);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut c = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(58)
            .build_cartesian_2d(axes.x, axes.y)
            .map_err(|x| e(&x))?;
        let mut mesh = c.configure_mesh();
        mesh.x_desc(axes.x_desc)
            .y_desc(axes.y_desc)
            .light_line_style(WHITE.mix(0.0));
        if let Some(n) = axes.x_labels {
            mesh.x_labels(n);
        }
        mesh.draw().map_err(|x| e(&x))?;
        series(&mut c).map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))?;
    }
    Ok(svg)
}

/// Delays over time: a band from min to max, a circle at each mean, and a cross at the
/// top of the chart where packets were lost (`lost_at`).
pub(crate) fn over_time(
    chart: &'static str,
    y_desc: &str,
    band: &Band,
    lost_at: &[f64],
    x_end: f64,
) -> Result<String, HtmlError> {
    let ys = range(band.points.iter().flat_map(|p| [p.1, p.3]), false);
    let top = ys.end;
    let axes = Axes {
        x: 0.0..x_end.max(1e-3),
        y: ys,
        x_desc: TIME_AXIS,
        y_desc,
        x_labels: None,
    };
    draw(chart, SIZE, axes, |c| {
        if band.points.len() > 1 {
            let mut outline: Vec<(f64, f64)> = band.points.iter().map(|p| (p.0, p.3)).collect();
            outline.extend(band.points.iter().rev().map(|p| (p.0, p.1)));
            c.draw_series(std::iter::once(Polygon::new(
                outline,
                band.color.mix(0.22).filled(),
            )))?;
        }
        c.draw_series(
            band.points
                .iter()
                .map(|p| Circle::new((p.0, p.2), 2, band.color.filled())),
        )?;
        c.draw_series(
            lost_at
                .iter()
                .map(|&x| Cross::new((x, top), 4, LOSS.stroke_width(2))),
        )?;
        Ok(())
    })
}

/// Lines over a shared x axis (`x_desc`), e.g. distributions or rates.
pub(crate) fn lines(
    chart: &'static str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
    y_from_zero: bool,
) -> Result<String, HtmlError> {
    let points = || lines.iter().flat_map(|l| l.points.iter());
    let axes = Axes {
        x: range(points().map(|p| p.0), false),
        y: range(points().map(|p| p.1), y_from_zero),
        x_desc,
        y_desc,
        x_labels: None,
    };
    draw(chart, SIZE, axes, |c| {
        for l in lines {
            c.draw_series(LineSeries::new(
                l.points.iter().copied(),
                l.color.stroke_width(2),
            ))?;
            if l.marks {
                c.draw_series(
                    l.points
                        .iter()
                        .map(|&p| Circle::new(p, 3, l.color.filled())),
                )?;
            }
        }
        Ok(())
    })
}

/// Counts per bucket as bars from `x` to the next `x` (e.g. lost packets).
pub(crate) fn bars(
    chart: &'static str,
    y_desc: &str,
    bars: &[(f64, f64, f64)],
    color: RGBColor,
    x_end: f64,
) -> Result<String, HtmlError> {
    let axes = Axes {
        x: 0.0..x_end.max(1e-3),
        y: range(bars.iter().map(|b| b.2).chain([1.0]), true),
        x_desc: TIME_AXIS,
        y_desc,
        x_labels: None,
    };
    draw(chart, (SIZE.0, SIZE.1 * 2 / 3), axes, |c| {
        c.draw_series(
            bars.iter()
                .filter(|b| b.2 > 0.0)
                .map(|&(x0, x1, y)| Rectangle::new([(x0, 0.0), (x1, y)], color.filled())),
        )?;
        Ok(())
    })
}

/// Per-hop RTT spread: for each `(ttl, min, p50, max)` a vertical line from min to max and
/// a circle at the median, over the TTLs `first..=last`.
pub(crate) fn hop_spread(
    chart: &'static str,
    points: &[(f64, f64, f64, f64)],
    (first, last): (u8, u8),
) -> Result<String, HtmlError> {
    let columns = usize::from(last.saturating_sub(first)) + 1;
    let size = (SIZE.0.min(120 + 60 * columns as u32).max(320), SIZE.1);
    let axes = Axes {
        x: f64::from(first) - 0.5..f64::from(last) + 0.5,
        y: range(points.iter().flat_map(|p| [p.1, p.3]), true),
        x_desc: "TTL",
        y_desc: "round trip, ms",
        x_labels: Some(columns.min(30)),
    };
    draw(chart, size, axes, |c| {
        c.draw_series(points.iter().map(|&(x, lo, _, hi)| {
            PathElement::new(vec![(x, lo), (x, hi)], ROUND_TRIP.stroke_width(3))
        }))?;
        c.draw_series(
            points
                .iter()
                .map(|&(x, _, mid, _)| Circle::new((x, mid), 4, ROUND_TRIP.filled())),
        )?;
        Ok(())
    })
}
