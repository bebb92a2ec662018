//! `GET /risk/export?format=csv|xlsx|geojson` and the risk table's filters: the ranking as
//! planners take it to Excel and to GIS. Export permission (engineer, planner, admin).
//!
//! The renewal plan's exports are in `plan.rs` (their rows are schedules, not rankings).
//! CSV is `/risk.csv` (UTF-8 with a BOM); XLSX has a bold, frozen header row and an autofilter; GeoJSON is a FeatureCollection of the
//! mains' midpoints (WGS 84; null geometry where the register has none). No PDF yet.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_xlsxwriter::{Format, Workbook, XlsxError};
use serde::Deserialize;
use serde_json::json;
use store::risk::{RiskRow, RiskRun};

use crate::i18n::Lang;
use crate::risk::{Choices, TableParams, grade_msg};
use crate::{AppError, AppState};

#[derive(Debug, Deserialize)]
pub(crate) struct ExportParams {
    format: Option<String>,
    #[serde(flatten)]
    table: TableParams,
}

const HEADERS_EN: [&str; 14] = [
    "rank",
    "asset_id",
    "material",
    "material_name",
    "diameter_mm",
    "length_m",
    "install_year",
    "district",
    "prior_breaks",
    "expected_breaks",
    "probability",
    "lof_grade",
    "cof_grade",
    "risk_grade",
];
const HEADERS_JA: [&str; 14] = [
    "順位",
    "管路ID",
    "管種",
    "管種名",
    "口径(mm)",
    "延長(m)",
    "布設年度",
    "配水区",
    "既往破損",
    "予測破損件数",
    "破損確率",
    "LoF",
    "CoF",
    "リスク",
];

/// Every main of the newest run that passes the filters, in the table's order.
async fn rows(state: &AppState, params: &TableParams, lang: Lang) -> Result<(RiskRun, Vec<RiskRow>), AppError> {
    let run = state
        .caches
        .latest_run(&state.risk)
        .await?
        .ok_or_else(|| AppError::NotFound("risk ranking: none stored yet".into()))?;
    let choices = Choices::of(state, run.id).await?;
    let mut t = params.check(&choices, lang)?;
    t.query.offset = 0;
    // A city register has tens of thousands of mains at most; a million is a safe cap.
    t.query.limit = 1_000_000;
    let page = state.risk.rows(run.id, &t.query).await?;
    Ok((run, page.rows))
}

fn xlsx(lang: Lang, run: &RiskRun, rows: &[RiskRow]) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(format!("risk {}", run.as_of))?;
    let bold = Format::new().set_bold();
    let headers = if lang == Lang::Ja { HEADERS_JA } else { HEADERS_EN };
    for (c, h) in headers.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        ws.write_number(row, 0, f64::from(r.rank))?;
        ws.write_string(row, 1, r.asset_id.as_str())?;
        ws.write_string(row, 2, &r.material)?;
        ws.write_string(row, 3, &r.material_ja)?;
        if let Some(d) = r.diameter_mm {
            ws.write_number(row, 4, d)?;
        }
        ws.write_number(row, 5, r.length_m)?;
        if let Some(y) = r.install_year {
            ws.write_number(row, 6, f64::from(y))?;
        }
        ws.write_string(row, 7, r.district.as_deref().unwrap_or(""))?;
        ws.write_number(row, 8, f64::from(r.prior_breaks))?;
        ws.write_number(row, 9, r.expected_breaks)?;
        ws.write_number(row, 10, r.probability)?;
        ws.write_number(row, 11, f64::from(r.lof_grade))?;
        ws.write_number(row, 12, f64::from(r.cof_grade))?;
        ws.write_string(row, 13, lang.t(grade_msg(r.risk_grade)))?;
    }
    ws.set_freeze_panes(1, 0)?;
    ws.autofilter(0, 0, rows.len() as u32, headers.len() as u16 - 1)?;
    wb.save_to_buffer()
}

fn geojson(run: &RiskRun, rows: &[RiskRow]) -> String {
    let features: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let geometry = match (r.x, r.y) {
                (Some(x), Some(y)) if (-180.0..=180.0).contains(&x) && (-90.0..=90.0).contains(&y) => {
                    json!({"type": "Point", "coordinates": [x, y]})
                }
                _ => serde_json::Value::Null,
            };
            json!({"type": "Feature", "id": r.asset_id.as_str(), "geometry": geometry, "properties": {
                "rank": r.rank, "asset_id": r.asset_id.as_str(), "material": r.material, "material_ja": r.material_ja,
                "diameter_mm": r.diameter_mm, "length_m": r.length_m, "install_year": r.install_year,
                "district": r.district, "prior_breaks": r.prior_breaks, "expected_breaks": r.expected_breaks,
                "probability": r.probability, "lof_grade": r.lof_grade, "cof_grade": r.cof_grade,
                "risk_grade": r.risk_grade.to_string()
            }})
        })
        .collect();
    json!({"type": "FeatureCollection", "name": "risk", "as_of": run.as_of.to_string(), "features": features})
        .to_string()
}

fn download(content_type: &'static str, filename: &str, body: impl IntoResponse) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")).expect("ASCII file name");
    ([(CONTENT_TYPE, HeaderValue::from_static(content_type)), (CONTENT_DISPOSITION, disposition)], body).into_response()
}

/// `GET /risk/export?format=…`.
pub(crate) async fn risk_export(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    uri: Uri,
    query: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(p) = query?;
    match p.format.as_deref().unwrap_or("csv") {
        "csv" => {
            // The CSV export exists; keep one writer of it, with the same filters.
            let q: Vec<&str> = uri
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|kv| !kv.is_empty() && !kv.starts_with("format="))
                .collect();
            let q = q.join("&");
            let mut resp = StatusCode::SEE_OTHER.into_response();
            let target =
                HeaderValue::from_str(&format!("/risk.csv?{q}")).map_err(|e| AppError::Internal(e.to_string()))?;
            resp.headers_mut().insert(LOCATION, target);
            Ok(resp)
        }
        "xlsx" => {
            let (run, rows) = rows(&state, &p.table, lang).await?;
            let bytes = tokio::task::spawn_blocking(move || xlsx(lang, &run, &rows).map(|b| (b, run.as_of)))
                .await
                .map_err(|e| AppError::Internal(format!("xlsx task: {e}")))?
                .map_err(|e| AppError::Internal(format!("writing xlsx: {e}")))?;
            Ok(download(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                &format!("risk_{}.xlsx", bytes.1),
                bytes.0,
            ))
        }
        "geojson" => {
            let (run, rows) = rows(&state, &p.table, lang).await?;
            Ok(download("application/geo+json", &format!("risk_{}.geojson", run.as_of), geojson(&run, &rows)))
        }
        other => Err(AppError::BadRequest(match lang {
            Lang::En => format!("format={other:?}: use csv, xlsx or geojson (no PDF yet)"),
            Lang::Ja => format!("format={other:?}: csv, xlsx, geojson のいずれかを指定してください（PDFは未対応）"),
        })),
    }
}
