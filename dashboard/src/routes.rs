//! Routes: the public health check and login, the pages and the JSON API, grouped by the
//! permission they need.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{Duration, Utc};
use model::{Quality, Reading, Value};
use serde::Serialize;
use store::WindowQuery;

use crate::auth::{self, CurrentUser, Permission};
use crate::chart::{self, jst};
use crate::html::{Frame, escape, page};
use crate::i18n::{self, Lang, Msg};
use crate::{AppError, AppState, detail, login, openapi};

/// Width and height of the overview's point charts, in pixels.
const CHART_SIZE: (u32, u32) = (560, 170);
/// About two windows per horizontal pixel column of the plot area would be the ideal for
/// min-max lines; one per two pixels is plenty for an hour of 1 s data.
const OVERVIEW_WINDOWS: i64 = 240;

pub(crate) fn router(state: &AppState) -> Router<AppState> {
    // Only these two need no login.
    let public = Router::new().route("/api/health", get(health)).route("/login", get(login::show).post(login::submit));
    let view = Router::new()
        .route("/", get(overview))
        .route("/logout", post(login::logout))
        .route("/api/session", get(login::session_json))
        .route("/api/openapi.json", get(openapi::serve))
        .route("/api/devices", get(devices))
        .route("/api/devices/{device}/{point}/windows", get(detail::windows_json))
        .route("/devices/{device}", get(detail::device_page))
        .route("/devices/{device}/{point}", get(detail::point_page))
        .route("/devices/{device}/{point}/chart.svg", get(detail::chart_svg))
        .route_layer(middleware::from_fn(|req, next| auth::require(Permission::View, req, next)));
    let export = Router::new()
        .route("/devices/{device}/{point}/readings.csv", get(detail::readings_csv))
        .route_layer(middleware::from_fn(|req, next| auth::require(Permission::Export, req, next)));
    public
        .merge(view)
        .merge(export)
        .layer(middleware::from_fn_with_state(state.clone(), auth::session_layer))
        .layer(middleware::from_fn(i18n::lang_layer))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    store: StoreHealth,
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
    let devices: Vec<DeviceJson> = by_device(state.store.latest().await?)
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

async fn overview(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
) -> Result<Html<String>, AppError> {
    let now = Utc::now();
    let from = now - Duration::hours(1);
    let window_ms = Duration::hours(1).num_milliseconds() / OVERVIEW_WINDOWS;
    let groups = by_device(state.store.latest().await?);
    let mut body = format!("<h2>{}</h2>", lang.t(Msg::Overview));
    if groups.is_empty() {
        let _ = write!(body, "<p>{}</p>", lang.t(Msg::NoReadings));
    }
    for (device, readings) in &groups {
        let _ = write!(
            body,
            "<section class=\"device\" id=\"{device}\"><h2><a href=\"/devices/{device}\">{device}</a></h2>"
        );
        for r in readings {
            let windows = match r.value {
                Value::Number(_) | Value::Absent => {
                    state
                        .store
                        .aggregate(&WindowQuery {
                            device: r.device.clone(),
                            point: r.point.clone(),
                            from,
                            to: now,
                            window_ms,
                        })
                        .await?
                }
                Value::Text(_) => Vec::new(),
            };
            let unit = escape(state.unit(&r.device, &r.point));
            let quality_class = if r.quality.is_good() { "q-good" } else { "q-bad" };
            let svg = if windows.is_empty() {
                String::new()
            } else {
                // The page script redraws it at the box's real width (a phone's, say).
                format!(
                    "<figure data-chart=\"/devices/{device}/{point}/chart.svg?range=1h\" data-w=\"{w}\">\
                     <div class=\"svgbox\">{svg}</div></figure>",
                    point = r.point,
                    w = CHART_SIZE.0,
                    svg = chart::line_svg(&windows, from, now, window_ms, CHART_SIZE),
                )
            };
            let _ = write!(
                body,
                "<div class=\"point\"><div><div class=\"meta\"><a href=\"/devices/{device}/{point}?range=1h\">{point}</a></div><div class=\"value\">{value} <small>{unit}</small></div>\
                 <div class=\"meta\"><span class=\"{quality_class}\">{quality}</span> · {time}</div></div><div class=\"chart\">{svg}</div></div>",
                point = r.point,
                value = format_value(&r.value),
                quality = r.quality,
                time = r.time.with_timezone(&jst()).format("%Y-%m-%d %H:%M:%S JST"),
            );
        }
        body.push_str("</section>");
    }
    body.push_str(detail::RESIZE_SCRIPT);
    let here = uri.path_and_query().map_or("/", |p| p.as_str());
    Ok(Html(page(&Frame { lang, title: lang.t(Msg::Overview), user: Some(&user), here, refresh_s: Some(15) }, &body)))
}
