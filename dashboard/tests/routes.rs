//! Every route, in-process (`app(state).oneshot(req)`), over a real embedded store.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{Duration, DurationRound, Utc};
use dashboard::{AppState, app};
use model::{DeviceId, PointName, Quality, Reading, Value};
use store::{ReadingSink, SqliteStore};
use tower::ServiceExt;

async fn state_with_readings() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("m.sqlite")).await.unwrap();
    let now = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let dev = |s| DeviceId::new(s).unwrap();
    let pt = |s| PointName::new(s).unwrap();
    let mut batch = Vec::new();
    for i in 0..120 {
        let t = now - Duration::seconds(119 - i);
        batch.push(Reading::good(dev("fm01"), pt("flow"), t, 100.0 + (i as f64).sin()));
        batch.push(Reading::good(dev("ps01"), pt("discharge_pressure"), t, 4.0));
    }
    batch.push(Reading {
        device: dev("ps01"),
        point: pt("fault_text"),
        time: now,
        value: Value::Text("<b>over</b> & \"temp\"".into()),
        quality: Quality::Good,
    });
    batch.push(Reading {
        device: dev("ps02"),
        point: pt("flow"),
        time: now,
        value: Value::Absent,
        quality: Quality::CommFail,
    });
    store.write(&batch).await.unwrap();
    (AppState::new(Arc::new(store)), dir)
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, String) {
    let resp = app(state.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 10 << 20).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn health_reports_the_store() {
    let (state, _dir) = state_with_readings().await;
    let (status, body) = get(&state, "/api/health").await;
    assert_eq!(status, StatusCode::OK);
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["status"], "ok");
    assert_eq!(j["store"]["reachable"], true);
    assert!(j["store"]["backend"].as_str().unwrap().starts_with("sqlite "));
}

#[tokio::test]
async fn devices_lists_latest_values_with_quality() {
    let (state, _dir) = state_with_readings().await;
    let (status, body) = get(&state, "/api/devices").await;
    assert_eq!(status, StatusCode::OK);
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = j["devices"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["fm01", "ps01", "ps02"]);
    let ps02 = &j["devices"][2]["points"][0];
    assert_eq!(ps02["quality"], "comm_fail");
    assert!(ps02["value"].is_null());
    let flow = &j["devices"][0]["points"][0];
    assert_eq!(flow["name"], "flow");
    assert!((flow["value"].as_f64().unwrap() - (100.0 + 119f64.sin())).abs() < 1e-9);
}

#[tokio::test]
async fn overview_draws_a_chart_per_numeric_point_and_escapes_text() {
    let (state, _dir) = state_with_readings().await;
    let (status, body) = get(&state, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.matches("<svg").count(), 2, "flow and discharge_pressure have charts; text and failed points none");
    assert!(body.contains("&lt;b&gt;over&lt;/b&gt; &amp; &quot;temp&quot;"));
    assert!(!body.contains("<b>over</b>"));
    assert!(body.contains("comm_fail"));
    assert!(body.len() < 200_000, "page is {} bytes", body.len());
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let (state, _dir) = state_with_readings().await;
    assert_eq!(get(&state, "/nope").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_is_503_when_the_store_goes_away() {
    // A stand-in for an InfluxDB server that answers /ping and CREATE DATABASE, then stops:
    // the store was reachable when the app started and is not any more.
    use axum::routing::{get as get_route, post};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = axum::Router::new()
        .route("/ping", get_route(|| async { StatusCode::NO_CONTENT }))
        .route("/query", post(|| async { axum::Json(serde_json::json!({"results": [{"statement_id": 0}]})) }));
    let server = tokio::spawn(async move { axum::serve(listener, fake).await });
    let influx =
        store::InfluxStore::connect(&format!("http://{addr}"), "water", store::InfluxAuth::none()).await.unwrap();
    let state = AppState::new(Arc::new(influx));
    assert_eq!(get(&state, "/api/health").await.0, StatusCode::OK);
    server.abort();
    let _ = server.await;
    let (status, body) = get(&state, "/api/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["status"], "degraded");
    assert_eq!(j["store"]["reachable"], false);
}
