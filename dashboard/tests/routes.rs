//! Every page and API route, in-process (`app(state).oneshot(req)`), over a real embedded
//! store, logged in as the role each route needs. Authentication itself is in `auth.rs`.

mod util;

use std::sync::Arc;

use axum::http::StatusCode;
use dashboard::AppState;
use store::Role;
use util::{get, login, state_with_readings};

#[tokio::test]
async fn health_reports_the_store() {
    let (state, _dir) = state_with_readings().await;
    let r = get(&state, "/api/health").await;
    let (status, body) = (r.status, r.body);
    assert_eq!(status, StatusCode::OK);
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["status"], "ok");
    assert_eq!(j["store"]["reachable"], true);
    assert!(j["store"]["backend"].as_str().unwrap().starts_with("sqlite "));
}

#[tokio::test]
async fn devices_lists_latest_values_with_quality() {
    let (state, _dir) = state_with_readings().await;
    let viewer = login(&state, Role::Viewer).await;
    let r = viewer.get(&state, "/api/devices").await;
    let (status, body) = (r.status, r.body);
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
async fn overview_lists_every_device_with_status_and_draws_one_district_chart() {
    let (state, _dir) = state_with_readings().await;
    // A pump station with two pumps, one running.
    let now = chrono::Utc::now();
    let pump = |p: &str, v: f64| {
        model::Reading::good(model::DeviceId::new("ps03").unwrap(), model::PointName::new(p).unwrap(), now, v)
    };
    state.store.write(&[pump("p1_running", 1.0), pump("p2_running", 0.0)]).await.unwrap();
    let viewer = login(&state, Role::Viewer).await;
    let r = viewer.get(&state, "/?lang=en").await;
    let (status, body) = (r.status, r.body);
    assert_eq!(status, StatusCode::OK);
    // One chart for the districts' inflow, not one per point.
    assert_eq!(body.matches("<svg").count(), 1, "{body}");
    for device in ["fm01", "ps01", "ps02", "ps03"] {
        assert!(body.contains(&format!("<a href=\"/devices/{device}\">{device}</a>")), "{device} listed and linked");
    }
    // ps02 only has a failed reading: down, said in words; ps01 is up with every point good.
    let row =
        |d: &str| body.split(&format!("id=\"dev-{d}\"")).nth(1).unwrap().split("</tr>").next().unwrap().to_owned();
    assert!(row("ps02").contains(">Down<") && row("ps02").contains("flow (comm_fail)"), "{}", row("ps02"));
    assert!(row("ps01").contains(">Up<"), "{}", row("ps01"));
    // fm01's newest flow reading is good (the comm_fail stretch was in the middle).
    assert!(row("fm01").contains(">Up<"), "{}", row("fm01"));
    assert!(body.contains("Devices up") && body.contains(">3 / 4<"), "{body}");
    assert!(body.contains("Pumps running") && body.contains(">1 / 2<"), "{body}");
    // The district's inflow now is the mean of the last 10 minutes of good flow readings;
    // there is no reading from yesterday.
    let good: Vec<f64> = (0..120).filter(|i| !(40..70).contains(i)).map(|i| 100.0 + (i as f64).sin()).collect();
    let mean = good.iter().sum::<f64>() / good.len() as f64;
    let district = body.split("<th scope=\"row\">dma01</th>").nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(district.contains(&format!("{mean:.1}")), "{mean:.1} in {district}");
    assert!(district.contains("—"), "{district}");
    // The register KPI: mains laid 1951-2070 as of 2026, those up to 1986 are past 40 years.
    let share = (1986 - 1950) as f64 / 120.0 * 100.0;
    assert!(body.contains(&format!("{share:.1}%")), "{share:.1}% in {body}");
    // Renewal rate: one 100 m main of 120 was laid in 2025, the year before the ranking.
    let kpi = body.split("Renewal rate").nth(1).unwrap().split("</div></div>").next().unwrap();
    assert!(kpi.contains(&format!("{:.2}%", 100.0 / 120.0)) && kpi.contains("0.1 km") && kpi.contains("2025"), "{kpi}");
    assert!(body.len() < 200_000, "page is {} bytes", body.len());
}

#[tokio::test]
async fn overview_shows_each_districts_minimum_night_flow_against_the_nights_before() {
    use chrono::{Duration, TimeZone, Timelike};
    let (state, _dir) = state_with_readings().await;
    let jst = chrono::FixedOffset::east_opt(9 * 3600).unwrap();
    let now_jst = chrono::Utc::now().with_timezone(&jst);
    // The last complete night (02:00–04:00 JST) and the seven before it.
    let last = if now_jst.hour() >= 4 { now_jst.date_naive() } else { now_jst.date_naive() - Duration::days(1) };
    let mut batch = Vec::new();
    for back in 0..8i64 {
        let night = last - Duration::days(back);
        // About 20 m3/h for seven nights, then 26 last night (a leak); 30 from 01:00 and
        // from 04:00, outside the window.
        let level = if back == 0 { 26.0 } else { 20.0 + back as f64 * 0.01 };
        for minute in 0..(4 * 60) {
            let t = jst.from_local_datetime(&night.and_hms_opt(1, 0, 0).unwrap()).unwrap() + Duration::minutes(minute);
            let v = if (60..180).contains(&minute) { level } else { 30.0 };
            batch.push(model::Reading::good(
                model::DeviceId::new("fm01").unwrap(),
                model::PointName::new("flow").unwrap(),
                t.with_timezone(&chrono::Utc),
                v,
            ));
        }
    }
    state.store.write(&batch).await.unwrap();
    let viewer = login(&state, Role::Viewer).await;
    let r = viewer.get(&state, "/?lang=en").await;
    assert_eq!(r.status, StatusCode::OK);
    let table =
        r.body.split("class=\"night-flow\"").nth(1).expect("a night-flow table").split("</table>").next().unwrap();
    let row = table.split("<th scope=\"row\">dma01</th>").nth(1).unwrap().split("</tr>").next().unwrap();
    // Last night 26, the median of the seven before 20.04 (shown to one decimal), +29.7 %.
    assert!(row.contains("26.0") && row.contains("20.0") && row.contains("+29.7%"), "{row}");
    // The Japanese page has it too.
    let r = viewer.get(&state, "/?lang=ja").await;
    assert!(r.body.contains("最小夜間流量"), "Japanese heading");
    // And /api/overview the same figures, unrounded.
    let r = viewer.get(&state, "/api/overview").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let night = &j["districts"][0]["night_flow"];
    assert_eq!(night["last_night"], 26.0, "{night}");
    assert!((night["median_before"].as_f64().unwrap() - 20.04).abs() < 1e-9, "{night}");
    assert!((night["change_pct"].as_f64().unwrap() - (26.0 / 20.04 - 1.0) * 100.0).abs() < 1e-9, "{night}");
    let nights = night["nights"].as_array().unwrap();
    assert_eq!(nights.len(), 8);
    assert_eq!(nights[7]["date"], last.to_string(), "newest last");
}

/// Issue #7: the overview's data is also JSON, and it says what the page says.
#[tokio::test]
async fn overview_json_has_the_pages_figures() {
    let (state, _dir) = state_with_readings().await;
    let now = chrono::Utc::now();
    let pump = |p: &str, v: f64| {
        model::Reading::good(model::DeviceId::new("ps03").unwrap(), model::PointName::new(p).unwrap(), now, v)
    };
    state.store.write(&[pump("p1_running", 1.0), pump("p2_running", 0.0)]).await.unwrap();
    let viewer = login(&state, Role::Viewer).await;
    let r = viewer.get(&state, "/api/overview").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!((j["devices"]["up"].as_u64(), j["devices"]["down"].as_u64()), (Some(3), Some(1)), "{}", j["devices"]);
    let ps02 = j["devices"]["list"].as_array().unwrap().iter().find(|d| d["name"] == "ps02").unwrap();
    assert_eq!((ps02["status"].as_str(), &ps02["failing_points"]), (Some("down"), &serde_json::json!(["flow"])));
    assert_eq!(j["pumps"], serde_json::json!({"running": 1, "total": 2}));
    // Alerts 1 and 2 open, 3 acknowledged, 5 shelved: active; 4 resolved.
    assert_eq!(j["active_alerts"]["total"], 4, "{}", j["active_alerts"]);
    assert_eq!(j["active_alerts"]["by_severity"]["critical"], 1);
    let reg = &j["register"];
    assert_eq!((reg["mains"].as_u64(), reg["as_of"].as_str()), (Some(120), Some("2026-04-01")), "{reg}");
    assert!((reg["past_legal_life_pct"].as_f64().unwrap() - 36.0 / 120.0 * 100.0).abs() < 1e-9, "{reg}");
    assert!((reg["renewal_rate_pct"].as_f64().unwrap() - 100.0 / 120.0).abs() < 1e-9, "{reg}");
    let good: Vec<f64> = (0..120).filter(|i| !(40..70).contains(i)).map(|i| 100.0 + (i as f64).sin()).collect();
    let mean = good.iter().sum::<f64>() / good.len() as f64;
    let d = &j["districts"][0];
    assert_eq!(d["name"], "dma01");
    assert!((d["inflow"]["now"].as_f64().unwrap() - mean).abs() < 1e-9, "{d}");
    assert!(d["inflow"]["yesterday"].is_null() && d["inflow"]["change_pct"].is_null(), "{d}");
    assert_eq!(d["critical_pressure"]["now"], 4.0, "{d}");
    assert!(d["night_flow"].is_null(), "two minutes of readings have no night: {d}");
    // The page shows the same counts.
    let page = viewer.get(&state, "/?lang=en").await.body;
    assert!(page.contains(">3 / 4<") && page.contains(">1 / 2<"), "the page agrees");
}

#[tokio::test]
async fn overview_inflow_chart_is_drawn_at_the_requested_width() {
    let (state, _dir) = state_with_readings().await;
    let viewer = login(&state, Role::Viewer).await;
    let r = viewer.get(&state, "/districts/inflow.svg?&w=390").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.starts_with("<svg") && r.body.contains("width=\"390\""));
    let r = viewer.get_with(&state, "/districts/inflow.svg?w=5", &[("accept-language", "en")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("chart width"), "{}", r.body);
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let (state, _dir) = state_with_readings().await;
    assert_eq!(get(&state, "/nope").await.status, StatusCode::NOT_FOUND);
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
    assert_eq!(get(&state, "/api/health").await.status, StatusCode::OK);
    server.abort();
    let _ = server.await;
    let r = get(&state, "/api/health").await;
    let (status, body) = (r.status, r.body);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["status"], "degraded");
    assert_eq!(j["store"]["reachable"], false);
}

#[tokio::test]
async fn point_page_draws_the_chart_at_the_requested_width_and_lists_gaps() {
    let (state, _dir) = state_with_readings().await;
    let engineer = login(&state, Role::Engineer).await;
    let r = engineer.get(&state, "/devices/fm01/flow?range=1h&w=390&lang=en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("width=\"390\""), "chart drawn at 390 px");
    assert_eq!(r.body.matches("<svg").count(), 1);
    assert!(r.body.contains("aria-current=\"page\">1 hour</a>"));
    // The 30 s of comm_fail readings in the middle are a gap, and so is the hour before the
    // two minutes of data.
    let gaps = r.body.split("<ul class=\"gaps\">").nth(1).unwrap();
    let gaps = gaps.split("</ul>").next().unwrap();
    assert_eq!(gaps.matches("<li>").count(), 2, "{gaps}");
    assert!(r.body.contains("readings.csv?range=1h"), "engineers may export");
    assert!(r.body.len() < 200_000);

    // In Japanese by default, and the viewer sees no export link.
    let viewer = login(&state, Role::Viewer).await;
    let r = viewer.get(&state, "/devices/fm01/flow").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("<html lang=\"ja\">"));
    assert!(r.body.contains("欠測"));
    assert!(!r.body.contains("readings.csv"));
}

#[tokio::test]
async fn device_page_has_a_chart_per_numeric_point() {
    let (state, _dir) = state_with_readings().await;
    let viewer = login(&state, Role::Viewer).await;
    let r = viewer.get(&state, "/devices/ps01?range=7d").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body.matches("<img src=").count(), 1, "pressure; the text point has none");
    assert!(r.body.contains("<img src=\"/devices/ps01/discharge_pressure/chart.svg?range=7d&amp;w=720\""));
    assert!(r.body.contains("&lt;b&gt;over&lt;/b&gt;"));
    assert!(r.body.contains("/devices/ps01/discharge_pressure?range=7d"));
    assert_eq!(viewer.get(&state, "/devices/nope").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn chart_svg_and_windows_json_agree() {
    let (state, _dir) = state_with_readings().await;
    let viewer = login(&state, Role::Viewer).await;
    let r = viewer.get(&state, "/devices/fm01/flow/chart.svg?range=1h&w=360").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("image/svg+xml; charset=utf-8"));
    assert!(r.body.starts_with("<svg") && r.body.contains("width=\"360\""));

    let r = viewer.get(&state, "/api/devices/fm01/flow/windows?range=1h&w=360").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    // An hour over 292 plot pixels: 12 329 ms windows.
    assert_eq!(j["window_ms"], 12_329);
    let windows = j["windows"].as_array().unwrap();
    let good: u64 = windows.iter().map(|w| w["count"].as_u64().unwrap()).sum();
    assert_eq!(good, 90, "120 readings less 30 comm_fail");
    let max = windows.iter().map(|w| w["max"].as_f64().unwrap()).fold(f64::MIN, f64::max);
    let expected_max =
        (0..120).filter(|i| !(40..70).contains(i)).map(|i| 100.0 + (i as f64).sin()).fold(f64::MIN, f64::max);
    assert!((max - expected_max).abs() < 1e-9, "the peak survives");
    assert_eq!(j["gaps"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn csv_has_a_bom_every_reading_and_refuses_viewers() {
    let (state, _dir) = state_with_readings().await;
    let planner = login(&state, Role::Planner).await;
    let r = planner.get(&state, "/devices/fm01/flow/readings.csv?range=1h&lang=en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(r.header("content-disposition").unwrap().starts_with("attachment; filename=\"fm01_flow_"));
    assert!(r.body.starts_with("\u{feff}time (JST),time (UTC),device,point,value,quality\r\n"));
    let rows: Vec<&str> = r.body.lines().skip(1).collect();
    assert_eq!(rows.len(), 120, "good and bad readings alike");
    assert_eq!(rows.iter().filter(|l| l.ends_with(",,comm_fail")).count(), 30);
    let first: Vec<&str> = rows[0].split(',').collect();
    assert_eq!(&first[2..4], ["fm01", "flow"]);
    assert_eq!(first[4].parse::<f64>().unwrap(), 100.0);

    let r = planner.get(&state, "/devices/ps01/fault_text/readings.csv?range=1h").await;
    assert!(r.body.starts_with("\u{feff}時刻(JST)"), "Japanese header by default");
    assert!(r.body.contains(",\"<b>over</b> & \"\"temp\"\"\",good"), "{}", r.body);

    for role in [Role::Viewer, Role::Crew] {
        let s = login(&state, role).await;
        let r = s.get(&state, "/devices/fm01/flow/readings.csv").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role}");
    }
    for role in [Role::Engineer, Role::Admin] {
        let s = login(&state, role).await;
        let r = s.get(&state, "/devices/fm01/flow/readings.csv").await;
        assert_eq!(r.status, StatusCode::OK, "{role}");
    }
}

#[tokio::test]
async fn bad_parameters_are_400_with_a_message_never_500() {
    let (state, _dir) = state_with_readings().await;
    let admin = login(&state, Role::Admin).await;
    let cases = [
        ("/devices/fm01/flow?range=2w", "range=\"2w\""),
        ("/devices/fm01/flow?range=1h%27%20OR%20%271%27=%271", "range="),
        ("/devices/fm01/flow?w=10", "chart width"),
        ("/devices/fm01/flow?w=-1", "chart width"),
        ("/devices/fm01/flow?from=2026-01-02&to=2026-01-01", "end after"),
        ("/devices/fm01/flow?from=now&to=later", "from=\"now\""),
        ("/devices/fm01/flow?from=2020-01-01&to=2026-01-01", "366 days"),
        ("/devices/fm01/flow?range=custom", "from="),
        ("/devices/fm01%27%3B%20DROP%20TABLE%20reading%3B--/flow", "not a valid name"),
        ("/devices/fm01/flow%22%20OR%201%3D1", "not a valid name"),
        ("/devices/fm01/flow%0Aflow%20value%3D1/chart.svg", "not a valid name"),
        ("/devices/a%20b", "not a valid name"),
        ("/api/devices/fm01/flow/windows?w=abc", "chart width"),
        ("/devices/fm01/flow/chart.svg?range=1y", "range="),
        ("/devices/fm01/flow/readings.csv?from=1960-01-01&to=1960-02-01", "1970"),
        ("/devices/fm01/flow?range=1h&range=24h", "bad query"),
    ];
    for (uri, needle) in cases {
        let r = admin.get_with(&state, uri, &[("accept-language", "en")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.body);
        assert!(r.body.contains(needle), "{uri}: {}", r.body);
    }
    // Japanese users get the reason in Japanese.
    let r = admin.get(&state, "/devices/fm01/flow?w=10").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("グラフの幅"), "{}", r.body);
    // A valid name the store has never seen is 404, not 400.
    let r = admin.get(&state, "/devices/fm01/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn openapi_documents_paths_that_exist() {
    let (state, _dir) = state_with_readings().await;
    // An admin may GET every documented path (the open-data settings are admin-only).
    let viewer = login(&state, Role::Admin).await;
    let r = viewer.get(&state, "/api/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    let spec: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let paths = spec["paths"].as_object().unwrap();
    for path in dashboard::openapi::DOCUMENTED_GETS {
        assert!(paths[path]["get"].is_object(), "{path} documented");
        let uri = path
            .replace("{device}", "fm01")
            .replace("{point}", "flow")
            .replace("{asset_id}", "P-001")
            .replace("{id}", "1");
        let r = viewer.get(&state, &uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
    }
    // Every documented GET path under /api/ is in the list the loop above calls.
    for (path, item) in paths {
        if path.starts_with("/api/") && item.get("get").is_some() {
            assert!(dashboard::openapi::DOCUMENTED_GETS.contains(&path.as_str()), "{path}");
        }
    }
    assert!(paths["/login"]["post"].is_object() && paths["/logout"]["post"].is_object());
}

#[tokio::test]
async fn language_follows_query_then_cookie_then_accept_language() {
    let (state, _dir) = state_with_readings().await;
    let viewer = login(&state, Role::Viewer).await;
    let r = viewer.get(&state, "/").await;
    assert!(r.body.contains("<html lang=\"ja\">") && r.body.contains("概要"));
    let r = viewer.get_with(&state, "/", &[("accept-language", "en-US,en;q=0.9,ja;q=0.5")]).await;
    assert!(r.body.contains("<html lang=\"en\">") && r.body.contains("Overview"));
    let r = viewer.get(&state, "/?lang=en").await;
    assert!(r.body.contains("<html lang=\"en\">"));
    assert!(r.cookies().iter().any(|c| c.starts_with("lang=en;")));
    let r = viewer
        .get_with(&state, "/", &[("cookie", &format!("{}; lang=en", viewer.cookie)), ("accept-language", "ja")])
        .await;
    assert!(r.body.contains("<html lang=\"en\">"), "the cookie beats the browser");
}
