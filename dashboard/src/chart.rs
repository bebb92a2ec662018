//! Charts as inline SVG, drawn with plotters without server-side fonts: the SVG carries
//! `<text>` elements and the browser renders them, in Japanese as well.

use chrono::{DateTime, FixedOffset, Utc};
use plotters::prelude::*;
use store::Window;

/// Japan Standard Time, the default display zone.
pub fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("constant offset is valid")
}

/// A min-max line of windows: each window contributes its minimum and maximum, so spikes
/// survive downsampling. Gaps longer than two windows break the line, so missing data shows
/// as missing.
pub fn line_svg(
    windows: &[Window],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    window_ms: i64,
    size: (u32, u32),
) -> String {
    let mut svg = String::new();
    if let Err(e) = draw(&mut svg, windows, from, to, window_ms, size) {
        // Drawing into a String cannot fail for IO reasons; a failure here is a plotters bug
        // on odd input. Show an empty frame rather than break the page.
        tracing::warn!(error = %e, "chart could not be drawn");
        svg.clear();
    }
    svg
}

fn draw(
    svg: &mut String,
    windows: &[Window],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    window_ms: i64,
    size: (u32, u32),
) -> Result<(), Box<dyn std::error::Error>> {
    let zone = jst();
    let (lo, hi) =
        windows.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), w| (lo.min(w.min), hi.max(w.max)));
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.01).max(1e-6);
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(6)
        .x_label_area_size(24)
        .y_label_area_size(52)
        .build_cartesian_2d(from.with_timezone(&zone)..to.with_timezone(&zone), (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&|t| t.format("%H:%M").to_string())
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let colour = RGBColor(31, 95, 168);
    let mut segment: Vec<(DateTime<FixedOffset>, f64)> = Vec::new();
    let mut previous: Option<DateTime<Utc>> = None;
    for w in windows {
        if previous.is_some_and(|p| (w.start - p).num_milliseconds() > 2 * window_ms) {
            chart.draw_series(LineSeries::new(std::mem::take(&mut segment), colour.stroke_width(2)))?;
        }
        let t = w.start.with_timezone(&zone);
        segment.push((t, w.min));
        if w.max != w.min {
            segment.push((t, w.max));
        }
        previous = Some(w.start);
    }
    chart.draw_series(LineSeries::new(segment, colour.stroke_width(2)))?;
    root.present()?;
    Ok(())
}
