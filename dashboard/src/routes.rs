//! Routes: the public health check and login, the pages and the JSON API, grouped by the
//! permission they need.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use model::{Quality, Reading, Value};
use serde::Serialize;

use crate::auth::{self, Permission};
use crate::html::escape;
use crate::i18n;
use crate::{AppError, AppState, alerts, detail, export, login, map, open_data, openapi, overview, plan, risk, sewer};

pub(crate) fn router(state: &AppState) -> Router<AppState> {
    // Only these need no login: the health check, the login form, and open data (which
    // answers 404 until an admin publishes it).
    let public = Router::new()
        .route("/api/health", get(health))
        .route("/login", get(login::show).post(login::submit))
        .route("/open-data", get(open_data::index))
        .route("/open-data/pipes.csv", get(open_data::pipes_csv))
        .route("/open-data/pipes.geojson", get(open_data::pipes_geojson));
    let view = Router::new()
        .route("/", get(overview::overview))
        .route("/districts/inflow.svg", get(overview::inflow_svg))
        .route("/alerts", get(alerts::inbox))
        .route("/alerts/{id}", get(alerts::alert_page))
        .route("/alerts/asset/{asset}", get(alerts::asset_page))
        .route("/api/alerts", get(alerts::list_json))
        .route("/api/alerts/{id}", get(alerts::alert_json))
        .route("/risk", get(risk::table_page))
        .route("/risk/map.svg", get(map::risk_map_svg))
        .route("/risk/{asset_id}", get(risk::pipe_page))
        .route("/model", get(risk::model_page))
        .route("/sewer", get(sewer::sewer_page))
        .route("/sewer/curve.svg", get(sewer::curve_svg))
        .route("/api/sewer", get(sewer::sewer_json))
        .route("/plan", get(plan::plan_page))
        .route("/plan/chart.svg", get(plan::chart_svg))
        .route("/api/plan", get(plan::plan_json))
        .route("/api/risk", get(risk::table_json))
        .route("/api/risk/{asset_id}", get(risk::pipe_json))
        .route("/api/model", get(risk::model_json))
        .route("/logout", post(login::logout))
        .route("/api/session", get(login::session_json))
        .route("/api/openapi.json", get(openapi::serve))
        .route("/api/overview", get(overview::overview_json))
        .route("/api/devices", get(devices))
        .route("/api/devices/{device}/{point}/windows", get(detail::windows_json))
        .route("/devices/{device}", get(detail::device_page))
        .route("/devices/{device}/{point}", get(detail::point_page))
        .route("/devices/{device}/{point}/chart.svg", get(detail::chart_svg))
        .route_layer(middleware::from_fn(|req, next| auth::require(Permission::View, req, next)));
    let act = Router::new()
        .route("/alerts/{id}/{action}", post(alerts::act_form))
        .route("/api/alerts/{id}/{action}", post(alerts::act_json))
        .route_layer(middleware::from_fn(|req, next| auth::require(Permission::ActOnAlerts, req, next)));
    let export = Router::new()
        .route("/devices/{device}/{point}/readings.csv", get(detail::readings_csv))
        .route("/risk.csv", get(risk::table_csv))
        .route("/risk/export", get(export::risk_export))
        .route("/plan/export", get(plan::plan_export))
        .route_layer(middleware::from_fn(|req, next| auth::require(Permission::Export, req, next)));
    let admin = Router::new()
        .route("/admin/open-data", get(open_data::settings_page).post(open_data::settings_submit))
        .route("/api/admin/open-data", get(open_data::settings_json).post(open_data::settings_put_json))
        .route_layer(middleware::from_fn(|req, next| auth::require(Permission::Admin, req, next)));
    public
        .merge(admin)
        .merge(view)
        .merge(act)
        .merge(export)
        .layer(middleware::from_fn_with_state(state.clone(), auth::session_layer))
        .layer(middleware::from_fn(i18n::lang_layer))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    store: StoreHealth,
    /// Whether PDF reports can embed a Japanese font (absent: PDF exports answer 503).
    pdf_font: crate::pdf::FontStatus,
}

#[derive(Serialize)]
struct StoreHealth {
    backend: String,
    reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn health(State(state): State<AppState>) -> Response {
    let result = state.store.health().await;
    let reachable = result.is_ok();
    let body = Health {
        status: if reachable { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        store: StoreHealth { backend: state.store.describe(), reachable, error: result.err().map(|e| e.to_string()) },
        pdf_font: state.reports.status(),
    };
    let status = if reachable { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

#[derive(Serialize)]
struct DeviceJson {
    name: String,
    points: Vec<PointJson>,
}

#[derive(Serialize)]
struct PointJson {
    name: String,
    value: Value,
    unit: String,
    time: chrono::DateTime<Utc>,
    age_s: f64,
    quality: Quality,
}

/// Latest readings grouped by device, in name order.
fn by_device(latest: Vec<Reading>) -> BTreeMap<String, Vec<Reading>> {
    let mut map: BTreeMap<String, Vec<Reading>> = BTreeMap::new();
    for r in latest {
        map.entry(r.device.to_string()).or_default().push(r);
    }
    map
}

async fn devices(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    let now = Utc::now();
    let devices: Vec<DeviceJson> = by_device(state.caches.latest(&state.store).await?.to_vec())
        .into_iter()
        .map(|(name, readings)| DeviceJson {
            name,
            points: readings
                .into_iter()
                .map(|r| PointJson {
                    unit: state.unit(&r.device, &r.point).to_owned(),
                    name: r.point.to_string(),
                    age_s: (now - r.time).num_milliseconds() as f64 / 1000.0,
                    time: r.time,
                    value: r.value,
                    quality: r.quality,
                })
                .collect(),
        })
        .collect();
    Ok(Json(serde_json::json!({ "devices": devices })))
}

pub(crate) fn format_value(v: &Value) -> String {
    match v {
        Value::Number(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Value::Number(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Value::Number(x) => format!("{x:.2}"),
        Value::Text(t) => escape(t),
        Value::Absent => "—".to_owned(),
    }
}
