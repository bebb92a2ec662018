//! Charts as inline SVG, drawn with plotters without server-side fonts: the SVG carries
//! `<text>` elements and the browser renders them, in Japanese as well.
//!
//! A chart is drawn at the width the page asks for (never scaled down by the browser on a
//! phone), from min-max windows that the store computed, about one window per horizontal
//! pixel of the plot area, so spikes survive and the SVG stays small whatever the range.

use chrono::{DateTime, FixedOffset, Utc};
use plotters::prelude::*;
use store::Window;

/// Japan Standard Time, the default display zone.
pub fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("constant offset is valid")
}

/// Pixels left and right of the plot area: y labels and margins.
const Y_LABEL_PX: u32 = 56;
const MARGIN_PX: u32 = 6;

/// The width of the plot area of a chart `width` pixels wide.
pub fn plot_width(width: u32) -> u32 {
    width.saturating_sub(Y_LABEL_PX + 2 * MARGIN_PX).max(1)
}

/// The window length that gives about one window per plot pixel over `[from, to)`, never
/// under a second (readings are at most that dense, and finer windows only cost time).
pub fn window_ms_for(from: DateTime<Utc>, to: DateTime<Utc>, width: u32) -> i64 {
    let span = (to - from).num_milliseconds().max(1);
    let px = i64::from(plot_width(width));
    ((span + px - 1) / px).max(1000)
}

/// How far apart two windows may start before the line breaks: half as much again as the
/// usual step, taken as the 80th percentile of the steps (so that a point polled every 10 s,
/// which leaves every other 6 s window empty, is not all gaps, while with dense data a
/// single missing window shows).
pub fn gap_threshold_ms(windows: &[Window], window_ms: i64) -> i64 {
    let mut steps: Vec<i64> = windows.windows(2).map(|p| (p[1].start - p[0].start).num_milliseconds()).collect();
    let usual = if steps.is_empty() {
        window_ms
    } else {
        let k = steps.len() * 4 / 5;
        *steps.select_nth_unstable(k).1
    };
    usual.max(window_ms) * 3 / 2
}

/// Stretches of `[from, to)` with no good reading, longer than the gap threshold.
pub fn gaps(
    windows: &[Window],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    window_ms: i64,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let limit = gap_threshold_ms(windows, window_ms);
    let window = chrono::Duration::milliseconds(window_ms);
    let mut out = Vec::new();
    match windows.first() {
        None => return vec![(from, to)],
        Some(first) if (first.start - from).num_milliseconds() > limit => {
            out.push((from, first.start));
        }
        Some(_) => {}
    }
    for pair in windows.windows(2) {
        if (pair[1].start - pair[0].start).num_milliseconds() > limit {
            out.push((pair[0].start + window, pair[1].start));
        }
    }
    if let Some(last) = windows.last() {
        let end = last.start + window;
        if (to - end).num_milliseconds() > limit {
            out.push((end, to));
        }
    }
    out
}

/// The time format of axis labels for a span, short enough for a phone.
fn x_format(from: DateTime<Utc>, to: DateTime<Utc>) -> &'static str {
    let hours = (to - from).num_hours();
    if hours <= 36 {
        "%H:%M"
    } else if hours <= 24 * 4 {
        "%m/%d %H:00"
    } else {
        "%m/%d"
    }
}

/// A min-max line of windows: each window contributes its minimum and maximum, so spikes
/// survive downsampling. Stretches without good readings break the line, so missing data
/// shows as missing.
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
    let format = x_format(from, to);
    // About one label per 90 px for times, per 110 px for dates with hours.
    let per_label = if format.len() > 5 { 110 } else { 90 };
    let x_labels = (plot_width(size.0) / per_label).clamp(2, 12) as usize;
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(MARGIN_PX)
        .x_label_area_size(24)
        .y_label_area_size(Y_LABEL_PX - MARGIN_PX)
        .build_cartesian_2d(from.with_timezone(&zone)..to.with_timezone(&zone), (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_labels(x_labels)
        .y_labels(5)
        .x_label_formatter(&|t| t.format(format).to_string())
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let colour = RGBColor(31, 95, 168);
    let limit = gap_threshold_ms(windows, window_ms);
    let mut segment: Vec<(DateTime<FixedOffset>, f64)> = Vec::new();
    let mut previous: Option<DateTime<Utc>> = None;
    for w in windows {
        if previous.is_some_and(|p| (w.start - p).num_milliseconds() > limit) {
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

/// Line colours of multi-line charts: distinct hues, dark enough on white. The page names
/// each line in text beside a swatch of its colour.
const PALETTE: [(u8, u8, u8); 12] = [
    (31, 95, 168),
    (214, 96, 0),
    (44, 140, 60),
    (190, 30, 45),
    (120, 80, 170),
    (140, 86, 75),
    (210, 80, 160),
    (90, 90, 90),
    (150, 150, 0),
    (0, 150, 170),
    (20, 40, 110),
    (230, 150, 30),
];

/// The colour of the `i`-th line of a multi-line chart.
pub fn palette(i: usize) -> (u8, u8, u8) {
    PALETTE[i % PALETTE.len()]
}

/// Several series as lines of window means (min-max bands of a dozen lines would hide each
/// other), broken where a series has a gap, on one time axis.
pub fn lines_svg(
    series: &[(String, Vec<Window>)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    window_ms: i64,
    size: (u32, u32),
) -> String {
    let mut svg = String::new();
    if let Err(e) = draw_lines(&mut svg, series, from, to, window_ms, size) {
        tracing::warn!(error = %e, "chart could not be drawn");
        svg.clear();
    }
    svg
}

fn draw_lines(
    svg: &mut String,
    series: &[(String, Vec<Window>)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    window_ms: i64,
    size: (u32, u32),
) -> Result<(), Box<dyn std::error::Error>> {
    let zone = jst();
    let (lo, hi) = series
        .iter()
        .flat_map(|(_, ws)| ws)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), w| (lo.min(w.mean), hi.max(w.mean)));
    let (lo, hi) = if lo.is_finite() { (lo.min(0.0), hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.08).max(1e-6);
    let format = x_format(from, to);
    let x_labels = (plot_width(size.0) / 90).clamp(2, 12) as usize;
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(MARGIN_PX)
        .x_label_area_size(24)
        .y_label_area_size(Y_LABEL_PX - MARGIN_PX)
        .build_cartesian_2d(from.with_timezone(&zone)..to.with_timezone(&zone), lo..(hi + pad))?;
    chart
        .configure_mesh()
        .x_labels(x_labels)
        .y_labels(5)
        .x_label_formatter(&|t| t.format(format).to_string())
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    for (i, (_, windows)) in series.iter().enumerate() {
        let (r, g, b) = palette(i);
        let colour = RGBColor(r, g, b);
        let limit = gap_threshold_ms(windows, window_ms);
        let mut segment: Vec<(DateTime<FixedOffset>, f64)> = Vec::new();
        let mut previous: Option<DateTime<Utc>> = None;
        for w in windows {
            if previous.is_some_and(|p| (w.start - p).num_milliseconds() > limit) {
                chart.draw_series(LineSeries::new(std::mem::take(&mut segment), colour.stroke_width(1)))?;
            }
            segment.push((w.start.with_timezone(&zone), w.mean));
            previous = Some(w.start);
        }
        chart.draw_series(LineSeries::new(segment, colour.stroke_width(1)))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn w(start_s: i64) -> Window {
        Window { start: Utc.timestamp_opt(start_s, 0).unwrap(), mean: 1.0, min: 1.0, max: 1.0, last: 1.0, count: 1 }
    }

    #[test]
    fn windows_match_the_plot_width() {
        let from = Utc.timestamp_opt(0, 0).unwrap();
        let day = from + Duration::days(1);
        assert_eq!(plot_width(390), 390 - 68);
        // A day at 390 px: 86 400 000 ms / 322 px.
        assert_eq!(window_ms_for(from, day, 390), 268_323);
        // Ten minutes at 3000 px would be finer than a second: a second it is.
        assert_eq!(window_ms_for(from, from + Duration::minutes(10), 3000), 1000);
    }

    #[test]
    fn sparse_sampling_is_not_a_gap_but_missing_data_is() {
        // 5 s windows over a point polled every 10 s, with 2 minutes missing after 100 s.
        let mut ws: Vec<Window> = (0..=10).map(|i| w(i * 10)).collect();
        ws.extend((0..=10).map(|i| w(220 + i * 10)));
        let from = Utc.timestamp_opt(0, 0).unwrap();
        let to = Utc.timestamp_opt(325, 0).unwrap();
        let g = gaps(&ws, from, to, 5000);
        assert_eq!(g, vec![(Utc.timestamp_opt(105, 0).unwrap(), Utc.timestamp_opt(220, 0).unwrap())]);
        // And the chart really breaks the line there: two lines in the data colour.
        let svg = line_svg(&ws, from, to, 5000, (390, 200));
        assert_eq!(svg.matches("stroke=\"#1F5FA8\"").count(), 2, "{svg}");
    }

    #[test]
    fn missing_start_and_end_are_gaps() {
        let ws: Vec<Window> = (10..20).map(|i| w(i * 60)).collect();
        let from = Utc.timestamp_opt(0, 0).unwrap();
        let to = Utc.timestamp_opt(3600, 0).unwrap();
        let g = gaps(&ws, from, to, 60_000);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0], (from, Utc.timestamp_opt(600, 0).unwrap()));
        assert_eq!(g[1], (Utc.timestamp_opt(1200, 0).unwrap(), to));
    }

    #[test]
    fn one_line_per_series_in_its_colour() {
        let a: Vec<Window> = (0..50).map(|i| w(i * 60)).collect();
        let b: Vec<Window> = (0..50).map(|i| w(i * 60)).collect();
        let from = Utc.timestamp_opt(0, 0).unwrap();
        let to = Utc.timestamp_opt(3000, 0).unwrap();
        let svg = lines_svg(&[("a".into(), a), ("b".into(), b)], from, to, 60_000, (360, 200));
        assert!(svg.contains("width=\"360\""));
        assert_eq!(svg.matches("stroke=\"#1F5FA8\"").count(), 1, "{svg}");
        assert_eq!(svg.matches("stroke=\"#D66000\"").count(), 1, "{svg}");
    }

    #[test]
    fn svg_has_the_requested_width() {
        let ws: Vec<Window> = (0..100).map(|i| w(i * 60)).collect();
        let from = Utc.timestamp_opt(0, 0).unwrap();
        let to = Utc.timestamp_opt(6000, 0).unwrap();
        let svg = line_svg(&ws, from, to, 60_000, (360, 180));
        assert!(svg.contains("width=\"360\""), "{}", &svg[..200]);
    }
}
