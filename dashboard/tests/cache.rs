//! The caches never show what a write has changed as it was before (issue #7): write to the
//! store the way the collector, the analytics run or another dashboard does, then read through
//! the cached route at once and see the new data.

mod util;

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use model::{DeviceId, PointName, Reading};
use store::Role;
use util::{login, state_with_readings};

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn a_new_reading_within_the_shown_range_is_on_the_next_chart() {
    let (state, _dir) = state_with_readings().await;
    let viewer = login(&state, Role::Viewer).await;
    let uri = "/api/devices/fm01/flow/windows?range=1h";
    let before = json(&viewer.get(&state, uri).await.body);
    let max = |v: &serde_json::Value| {
        v["windows"].as_array().unwrap().iter().map(|w| w["max"].as_f64().unwrap()).fold(f64::MIN, f64::max)
    };
    assert!(max(&before) < 102.0, "the test flow is about 100: {before}");
    // The same request again gives the same windows...
    assert_eq!(max(&json(&viewer.get(&state, uri).await.body)), max(&before));
    // ...until a reading arrives: a burst of 5000 stored now.
    let spike = Reading::good(DeviceId::new("fm01").unwrap(), PointName::new("flow").unwrap(), Utc::now(), 5000.0);
    state.store.write(&[spike]).await.unwrap();
    let after = json(&viewer.get(&state, uri).await.body);
    assert_eq!(max(&after), 5000.0, "the new reading is in the chart's windows: {after}");
    // The chart itself, drawn from the same windows, and the 24-hour view too.
    let svg = viewer.get(&state, "/devices/fm01/flow/chart.svg?range=1h&w=400").await;
    assert_eq!(svg.status, StatusCode::OK);
    let day = json(&viewer.get(&state, "/api/devices/fm01/flow/windows?range=24h").await.body);
    assert_eq!(max(&day), 5000.0, "{day}");
    // A custom range that ended before the spike does not change.
    let from = (Utc::now() - Duration::hours(2)).to_rfc3339().replace('+', "%2B");
    let to = (Utc::now() - Duration::minutes(30)).to_rfc3339().replace('+', "%2B");
    let old = json(&viewer.get(&state, &format!("/api/devices/fm01/flow/windows?from={from}&to={to}")).await.body);
    assert!(old["windows"].as_array().unwrap().is_empty(), "{old}");
}

#[tokio::test]
async fn an_acknowledged_alert_shows_acknowledged_at_once() {
    let (state, _dir) = state_with_readings().await;
    let crew = login(&state, Role::Crew).await;
    let before = json(&crew.get(&state, "/api/alerts/1").await.body);
    assert_eq!(before["acknowledged_by"], serde_json::Value::Null, "{before}");
    let inbox = crew.get(&state, "/alerts?lang=en").await.body;
    assert!(inbox.contains("id=\"ack-1\""), "an acknowledge button for alert 1");
    // Acknowledged elsewhere (another crew member's dashboard, straight in the store).
    state.alerts.acknowledge(1, "engineer", "on my way", Utc::now()).await.unwrap();
    let after = json(&crew.get(&state, "/api/alerts/1").await.body);
    assert_eq!(after["acknowledged_by"], "engineer", "{after}");
    let inbox = crew.get(&state, "/alerts?lang=en").await.body;
    assert!(!inbox.contains("id=\"ack-1\"") && inbox.contains("on my way"), "the inbox shows the acknowledgement");
}

#[tokio::test]
async fn a_new_risk_run_is_on_the_next_page() {
    let (state, _dir) = state_with_readings().await;
    let engineer = login(&state, Role::Engineer).await;
    // Fill every risk cache with the first run.
    for uri in ["/risk?lang=en", "/api/risk", "/model", "/plan", "/", "/api/plan"] {
        assert_eq!(engineer.get(&state, uri).await.status, StatusCode::OK, "{uri}");
    }
    let first = json(&engineer.get(&state, "/api/risk").await.body);
    assert_eq!(first["run"]["as_of"], "2026-04-01", "{first}");
    // A new run: the same mains, ranked the other way round, as of a month later.
    let mut run = state.risk.latest_run().await.unwrap().unwrap();
    let query = store::risk::RiskQuery { limit: 1000, ..Default::default() };
    let mut rows = state.risk.rows(run.id, &query).await.unwrap().rows;
    rows.reverse();
    for (i, r) in rows.iter_mut().enumerate() {
        r.rank = i as u32 + 1;
    }
    run.as_of = chrono::NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
    state.risk.save_run(&run, &rows).await.unwrap();

    let second = json(&engineer.get(&state, "/api/risk").await.body);
    assert_eq!(second["run"]["as_of"], "2026-05-01", "{second}");
    assert_eq!(second["rows"][0]["asset_id"], "P-120", "the new ranking's first main");
    assert!(engineer.get(&state, "/risk?lang=en").await.body.contains("2026-05-01"), "the risk page");
    assert!(engineer.get(&state, "/plan?lang=en").await.body.contains("2026-05-01"), "the plan page");
    let plan = json(&engineer.get(&state, "/api/plan").await.body);
    assert_eq!(plan["as_of"], "2026-05-01", "{plan}");
    assert!(engineer.get(&state, "/model?lang=en").await.body.contains("2026-05-01"), "the model card");
}
