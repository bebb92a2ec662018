//! `GET /risk/map.svg`: the mains of the newest ranking run at their midpoints (WGS 84, from a
//! GeoJSON register or the synthetic city's streets), coloured by risk grade. Colour is never
//! the only signal: each grade has its own marker shape and size, and the legend writes the
//! grade's name with its count of mains. Mains without coordinates are counted, not drawn.

use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::{Extension, extract::Query};
use plotters::prelude::*;
use serde::Deserialize;
use store::risk::{RiskLevel, RiskQuery, RiskRow};

use crate::i18n::Lang;
use crate::risk::grade_msg;
use crate::{AppError, AppState};

#[derive(Debug, Deserialize)]
pub(crate) struct MapParams {
    w: Option<String>,
}

/// The map's width limits: narrower, the legend no longer fits; wider, no screen needs it.
const MIN_W: u32 = 320;
const MAX_W: u32 = 2000;
const DEFAULT_W: u32 = 720;

/// The requested width, or a 400 that says the limits (as every other chart's width does,
/// rather than drawing something the client did not ask for).
fn width(w: Option<&str>, lang: Lang) -> Result<u32, AppError> {
    match w {
        None | Some("") => Ok(DEFAULT_W),
        Some(w) => match w.parse::<u32>() {
            Ok(n) if (MIN_W..=MAX_W).contains(&n) => Ok(n),
            _ => Err(AppError::BadRequest(match lang {
                Lang::En => format!("w={w:?}: the map width must be a whole number of pixels from {MIN_W} to {MAX_W}"),
                Lang::Ja => format!("w={w:?}: 地図の幅は {MIN_W}〜{MAX_W} の整数（ピクセル）で指定してください"),
            })),
        },
    }
}

/// The text of the link to the map on `/risk`.
pub(crate) fn link_text(lang: Lang) -> &'static str {
    match lang {
        Lang::Ja => "地図：リスク等級別の管路 (SVG)",
        Lang::En => "Map of the mains by risk grade (SVG)",
    }
}

/// Marker colours, from green to dark red: the table's pale fills are made for black text on
/// them, too faint for dots on white. The grade is also the marker's shape and size.
fn ink(g: RiskLevel) -> RGBColor {
    match g {
        RiskLevel::Negligible => RGBColor(110, 160, 90),
        RiskLevel::Low => RGBColor(190, 160, 30),
        RiskLevel::Medium => RGBColor(230, 120, 20),
        RiskLevel::High => RGBColor(200, 55, 40),
        RiskLevel::Extreme => RGBColor(120, 0, 40),
    }
}

/// The midpoint as (longitude, latitude) when it is a WGS 84 position.
fn lon_lat(r: &RiskRow) -> Option<(f64, f64)> {
    match (r.x, r.y) {
        (Some(x), Some(y)) if (-180.0..=180.0).contains(&x) && (-90.0..=90.0).contains(&y) => Some((x, y)),
        _ => None,
    }
}

/// Draws the map; `None` when no main has coordinates.
pub(crate) fn map_svg(rows: &[RiskRow], lang: Lang, width: u32) -> Result<Option<String>, String> {
    let points: Vec<(f64, f64, RiskLevel)> =
        rows.iter().filter_map(|r| lon_lat(r).map(|(x, y)| (x, y, r.risk_grade))).collect();
    if points.is_empty() {
        return Ok(None);
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y, _) in &points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    let pad = 0.002;
    let (x0, x1, y0, y1) = (x0 - pad, x1 + pad, y0 - pad, y1 + pad);
    // Equal ground distance per pixel both ways: a degree of longitude is cos(latitude) of one
    // of latitude.
    let cos = ((y0 + y1) / 2.0).to_radians().cos();
    let plot_w = f64::from(width.saturating_sub(80).max(100));
    let height = ((plot_w * (y1 - y0) / ((x1 - x0) * cos)) as u32 + 140).clamp(240, 1600);
    let unplaced = rows.len() - points.len();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let caption = match lang {
            Lang::Ja => format!("リスク等級の地図（管路の中点、{} 本）", points.len()),
            Lang::En => format!("Mains by risk grade (midpoints, {} mains)", points.len()),
        };
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .caption(caption, ("sans-serif", 15))
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(if lang == Lang::Ja { "経度" } else { "longitude" })
            .y_desc(if lang == Lang::Ja { "緯度" } else { "latitude" })
            .label_style(("sans-serif", 11))
            .x_labels(5)
            .y_labels(5)
            .light_line_style(RGBColor(240, 240, 240))
            .draw()
            .map_err(e)?;
        // Least risky first, so the worst mains are drawn on top.
        for g in RiskLevel::ALL {
            let colour = ink(g);
            let here: Vec<(f64, f64)> = points.iter().filter(|p| p.2 == g).map(|p| (p.0, p.1)).collect();
            let label = format!("{} ({})", lang.t(grade_msg(g)), here.len());
            let series = match g {
                RiskLevel::Negligible | RiskLevel::Low => {
                    let size = if g == RiskLevel::Low { 2 } else { 1 };
                    chart.draw_series(here.iter().map(|&p| Circle::new(p, size, colour.filled())))
                }
                RiskLevel::Medium => {
                    chart.draw_series(here.iter().map(|&p| TriangleMarker::new(p, 4, colour.filled())))
                }
                RiskLevel::High => chart.draw_series(here.iter().map(|&p| Cross::new(p, 4, colour.stroke_width(2)))),
                RiskLevel::Extreme => {
                    chart.draw_series(here.iter().map(|&p| Circle::new(p, 5, colour.stroke_width(2))))
                }
            }
            .map_err(e)?;
            series.label(label).legend(move |(x, y)| match g {
                RiskLevel::Medium => TriangleMarker::new((x + 6, y), 4, colour.filled()).into_dyn(),
                RiskLevel::High => Cross::new((x + 6, y), 4, colour.stroke_width(2)).into_dyn(),
                RiskLevel::Extreme => Circle::new((x + 6, y), 5, colour.stroke_width(2)).into_dyn(),
                _ => Circle::new((x + 6, y), 3, colour.filled()).into_dyn(),
            });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(e)?;
        if unplaced > 0 {
            let note = match lang {
                Lang::Ja => format!("座標のない管路 {unplaced} 本は表示していません"),
                Lang::En => format!("{unplaced} mains without coordinates are not shown"),
            };
            root.draw(&Text::new(note, (12, height as i32 - 16), ("sans-serif", 12))).map_err(e)?;
        }
        root.present().map_err(e)?;
    }
    Ok(Some(svg))
}

/// `GET /risk/map.svg?w=`: the newest run's mains on the map; 404 when there is no run or no
/// main with coordinates.
pub(crate) async fn risk_map_svg(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    query: Result<Query<MapParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(params) = query?;
    let width = width(params.w.as_deref(), lang)?;
    let run = state.caches.latest_run(&state.risk).await?.ok_or_else(|| AppError::NotFound("no ranking run".into()))?;
    let query = RiskQuery { limit: 10_000_000, ..Default::default() };
    let page = state.caches.risk_rows(&state.risk, run.id, &query).await?;
    let svg = map_svg(&page.rows, lang, width)
        .map_err(|e| AppError::Internal(format!("the map could not be drawn: {e}")))?
        .ok_or_else(|| AppError::NotFound("no main of the newest run has coordinates".into()))?;
    Ok(([(CONTENT_TYPE, HeaderValue::from_static("image/svg+xml; charset=utf-8"))], svg).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(rank: u32, grade: RiskLevel, at: Option<(f64, f64)>) -> RiskRow {
        RiskRow {
            rank,
            asset_id: model::AssetId::new(format!("M-{rank}")).unwrap(),
            material: "CI".into(),
            material_ja: "鋳鉄管".into(),
            diameter_mm: Some(150.0),
            length_m: 100.0,
            install_year: Some(1970),
            district: None,
            prior_breaks: 0,
            expected_breaks: 0.1,
            probability: 0.1,
            score: 1.0,
            lof_grade: 1,
            cof_grade: 1,
            risk_grade: grade,
            explanation: String::new(),
            x: at.map(|p| p.0),
            y: at.map(|p| p.1),
        }
    }

    #[test]
    fn every_grade_is_named_with_its_count_and_unplaced_mains_are_counted() {
        let rows = vec![
            row(1, RiskLevel::Extreme, Some((141.65, 42.82))),
            row(2, RiskLevel::High, Some((141.66, 42.83))),
            row(3, RiskLevel::High, Some((141.64, 42.81))),
            row(4, RiskLevel::Low, Some((141.65, 42.83))),
            row(5, RiskLevel::Low, None),
            // Projected coordinates are not WGS 84: not drawn.
            row(6, RiskLevel::Low, Some((-12_000.0, 38_000.0))),
        ];
        let svg = map_svg(&rows, Lang::En, 720).unwrap().unwrap();
        for (name, n) in [("Extreme", 1), ("High", 2), ("Medium", 0), ("Low", 1), ("Negligible", 0)] {
            assert!(svg.contains(&format!("{name} ({n})")), "no legend entry {name} ({n})");
        }
        assert!(svg.contains("2 mains without coordinates are not shown"));
        assert!(svg.contains("4 mains"));
        let ja = map_svg(&rows, Lang::Ja, 720).unwrap().unwrap();
        assert!(ja.contains("極大 (1)") && ja.contains("経度"), "{ja}");
        assert_eq!(map_svg(&rows[4..], Lang::En, 720).unwrap(), None);
    }
}
