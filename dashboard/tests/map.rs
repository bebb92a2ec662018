//! `/risk/map.svg`: the newest run's mains at their midpoints, for viewers; 404 while the
//! newest run has no coordinates.

mod util;

use axum::http::StatusCode;
use store::Role;
use util::{login, state_with_readings};

#[tokio::test]
async fn the_map_shows_the_newest_runs_mains_where_they_have_coordinates() {
    let (state, _dir) = state_with_readings().await;
    let viewer = login(&state, Role::Viewer).await;
    let page = viewer.get(&state, "/risk?lang=en").await;
    assert!(page.body.contains("<a id=\"risk-map\" href=\"/risk/map.svg\">"), "no link on /risk");
    // The shared test run has no coordinates.
    let r = viewer.get(&state, "/risk/map.svg").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert!(r.body.contains("coordinates"), "{}", r.body);
    assert_eq!(util::get(&state, "/risk/map.svg").await.status, StatusCode::SEE_OTHER, "login first");
}

#[tokio::test]
async fn a_run_with_midpoints_is_drawn_with_its_grades_written() {
    let (state, _dir) = state_with_readings().await;
    // A newer run whose mains have WGS 84 midpoints, saved before any page caches the newest.
    let newest = state.risk.latest_run().await.unwrap().unwrap();
    let page = state.risk.rows(newest.id, &store::risk::RiskQuery { limit: 1000, ..Default::default() }).await.unwrap();
    let rows: Vec<_> = page
        .rows
        .iter()
        .enumerate()
        .map(|(k, r)| store::risk::RiskRow {
            x: Some(141.6 + 0.001 * k as f64),
            y: Some(42.8 + 0.0005 * k as f64),
            ..r.clone()
        })
        .collect();
    state.risk.save_run(&newest, &rows).await.unwrap();
    let viewer = login(&state, Role::Viewer).await;
    let r = viewer.get(&state, "/risk/map.svg?lang=en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("image/svg+xml; charset=utf-8"));
    assert!(
        r.body.contains(&format!("({} mains)", rows.len())) || r.body.contains(&format!("{} mains", rows.len())),
        "{}",
        r.body
    );
    assert!(r.body.contains("Extreme (") && r.body.contains("Negligible ("));
    assert!(!r.body.contains("without coordinates"));
}
