//! Issue #7: "a page's HTML under 200 KB for the default views", checked on demo-like data: a
//! pump station with four pumps (46 points, as `sensor-sim`'s pump-station profile has) with a
//! day of 1-minute readings and a month of hourly ones. A size, not a timing: it cannot flake.

mod util;

use axum::http::StatusCode;
use chrono::{Duration, DurationRound, Utc};
use model::{DeviceId, PointName, Reading};
use store::{ReadingSink, Role, SqliteStore};
use util::login;

const LIMIT: usize = 200_000;

/// The point names of a four-pump station in the simulator's pump-station profile.
fn station_points() -> Vec<String> {
    let mut points: Vec<String> =
        ["seq", "outflow", "suction_pressure", "discharge_pressure", "pumps_running", "station_alarms"]
            .map(str::to_owned)
            .to_vec();
    for k in 1..=4 {
        for p in [
            "frequency",
            "motor_current",
            "power",
            "vibration",
            "bearing_temperature",
            "status_word",
            "fault_code",
            "run_hours",
            "starts",
        ] {
            points.push(format!("p{k}_{p}"));
        }
    }
    points.extend((1..=4).map(|k| format!("p{k}_running")));
    points
}

#[tokio::test]
async fn default_views_of_a_four_pump_station_stay_under_200_kb() {
    let (state, dir) = util::state_with_readings().await;
    let store = SqliteStore::open(&dir.path().join("m.sqlite")).await.unwrap();
    let now = Utc::now().duration_trunc(Duration::minutes(1)).unwrap();
    let dev = DeviceId::new("ps09").unwrap();
    let points = station_points();
    assert_eq!(points.len(), 46);
    let mut batch = Vec::new();
    for (j, name) in points.iter().enumerate() {
        let point = PointName::new(name).unwrap();
        // Wiggly values so every chart has a full polyline, the worst case for size.
        let value = |i: i64| 10.0 + j as f64 + ((i * 7 + j as i64) as f64 * 0.37).sin() * 3.0;
        for i in 0..24 * 60 {
            batch.push(Reading::good(dev.clone(), point.clone(), now - Duration::minutes(i), value(i)));
        }
        for h in 24..30 * 24 {
            batch.push(Reading::good(dev.clone(), point.clone(), now - Duration::hours(h), value(h)));
        }
    }
    store.write(&batch).await.unwrap();

    let engineer = login(&state, Role::Engineer).await;
    for range in ["", "?range=1h", "?range=24h", "?range=7d", "?range=30d"] {
        let uri = format!("/devices/ps09{range}");
        let r = engineer.get(&state, &uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert!(r.body.len() < LIMIT, "{uri}: {} bytes", r.body.len());
        // Every point is still on the page with its chart, which loads when scrolled to.
        assert_eq!(r.body.matches("<section class=\"device\">").count(), 46, "{uri}");
        assert_eq!(r.body.matches("loading=\"lazy\"").count(), 46, "{uri}");
        assert!(!r.body.contains("<svg"), "{uri}: no inline charts");
    }
    // The images' addresses draw the charts.
    let r = engineer.get(&state, "/devices/ps09").await;
    let src = r.body.split("<img src=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    assert!(src.starts_with("/devices/ps09/") && src.contains("range=24h") && src.contains("w=720"), "{src}");
    let svg = engineer.get(&state, &src).await;
    assert_eq!(svg.status, StatusCode::OK, "{src}");
    assert!(svg.body.starts_with("<svg") && svg.body.contains("<polyline"), "{src}");

    for uri in ["/", "/devices/ps09/p1_power", "/devices/ps09/p1_power?range=30d", "/risk", "/alerts"] {
        let r = engineer.get(&state, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert!(r.body.len() < LIMIT, "{uri}: {} bytes", r.body.len());
    }
}
