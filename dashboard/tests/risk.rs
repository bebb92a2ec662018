//! Risk pages, their JSON and CSV, in-process over a real SQLite file holding a ranking of
//! 120 mains (`util::save_risk_run`).

mod util;

use std::sync::Arc;

use axum::http::StatusCode;
use dashboard::AppState;
use store::Role;
use util::{MAINS, get, login, state_with_readings};

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn risk_routes_need_a_login_and_export_needs_the_role() {
    let (state, _dir) = state_with_readings().await;
    for uri in ["/risk", "/risk/P-001", "/model"] {
        let r = get(&state, uri).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{uri}");
    }
    for uri in ["/api/risk", "/api/risk/P-001", "/api/model"] {
        assert_eq!(get(&state, uri).await.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    for role in Role::ALL {
        let s = login(&state, role).await;
        for uri in ["/risk", "/risk/P-001", "/model", "/api/risk", "/api/risk/P-001", "/api/model"] {
            assert_eq!(s.get(&state, uri).await.status, StatusCode::OK, "{role} {uri}");
        }
        let csv = s.get(&state, "/risk.csv").await.status;
        let allowed = matches!(role, Role::Engineer | Role::Planner | Role::Admin);
        assert_eq!(csv, if allowed { StatusCode::OK } else { StatusCode::FORBIDDEN }, "{role} /risk.csv");
    }
}

#[tokio::test]
async fn risk_table_pages_sorts_and_filters() {
    let (state, _dir) = state_with_readings().await;
    let viewer = login(&state, Role::Viewer).await;
    let r = viewer.get(&state, "/risk?lang=en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.len() < 200_000, "{} bytes", r.body.len());
    assert!(r.body.contains(&format!("{MAINS} mains match")), "the total");
    assert_eq!(r.body.matches("<a href=\"/risk/P-").count(), 50, "one page of 50");
    assert!(r.body.contains("/risk/P-001") && !r.body.contains("/risk/P-051\""));
    // The matrix is a chart with counts in every cell, and grades are words, not only colour.
    assert_eq!(r.body.matches("<svg").count(), 1);
    assert_eq!(r.body.matches(" mains\n</text>").count(), 25, "every cell labelled");
    assert!(r.body.contains(">Extreme</span>") && r.body.contains(">Negligible</span>"));
    assert!(r.body.contains("rel=\"next\"") && !r.body.contains("rel=\"prev\""));
    assert!(!r.body.contains("risk.csv"), "viewers get no export link");

    let r = viewer.get(&state, "/risk?page=3&lang=en").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.matches("<a href=\"/risk/P-").count(), 20, "the rest");
    assert!(r.body.contains("rel=\"prev\"") && !r.body.contains("rel=\"next\""));

    // Sorted by install year, newest first: P-120 (laid 2070) heads the list.
    let j = json(&viewer.get(&state, "/api/risk?sort=install_year&dir=desc").await.body);
    assert_eq!(j["rows"][0]["asset_id"], "P-120");
    assert_eq!(j["total"], MAINS);
    let years: Vec<i64> = j["rows"].as_array().unwrap().iter().map(|r| r["install_year"].as_i64().unwrap()).collect();
    assert!(years.windows(2).all(|w| w[0] >= w[1]));

    // Filters: material and diameter range narrow the rows and the matrix alike.
    let j = json(&viewer.get(&state, "/api/risk?material=CI&dmin=100&dmax=300").await.body);
    let rows = j["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        assert_eq!(r["material"], "CI");
        let d = r["diameter_mm"].as_f64().unwrap();
        assert!((100.0..=300.0).contains(&d), "{d}");
    }
    let expected = (1..=MAINS).filter(|k| k % 3 == 0 && matches!(k % 4, 1 | 2)).count();
    assert_eq!(j["total"], expected);
    let in_matrix: u64 = j["matrix"].as_array().unwrap().iter().map(|c| c["mains"].as_u64().unwrap()).sum();
    assert_eq!(in_matrix, expected as u64);

    // A matrix cell's link lists that cell's mains, and the table says how many.
    let r = viewer.get(&state, "/risk?lang=en").await;
    let link =
        r.body.split("<a href=\"/risk?").find(|l| l.split('"').next().unwrap().ends_with("&lof=5&cof=1")).unwrap();
    let query = link.split('"').next().unwrap();
    let j = json(&viewer.get(&state, &format!("/api/risk?{query}")).await.body);
    let expected = (1..=MAINS).filter(|k| (5 - (k - 1) * 5 / MAINS) == 5 && k % 5 == 0).count();
    assert_eq!(j["total"], expected, "{query}");
    assert!(j["rows"].as_array().unwrap().iter().all(|r| r["lof_grade"] == 5 && r["cof_grade"] == 1));
    let j = json(&viewer.get(&state, "/api/risk?district=Z1&lof=1").await.body);
    assert!(j["total"].as_u64().unwrap() > 0);
    assert!(j["rows"].as_array().unwrap().iter().all(|r| r["district"] == "Z1" && r["lof_grade"] == 1));

    let j = json(&viewer.get(&state, "/api/risk?grade=extreme").await.body);
    assert!(j["total"].as_u64().unwrap() > 0);
    assert!(j["rows"].as_array().unwrap().iter().all(|r| r["risk_grade"] == "extreme"));

    // The filter form keeps its values, in Japanese by default.
    let r = viewer.get(&state, "/risk?material=PVC&grade=high").await;
    assert!(r.body.contains("<option value=\"PVC\" selected>"));
    assert!(r.body.contains("<option value=\"high\" selected>高</option>"));
    assert!(r.body.contains("リスク評価"));
}

#[tokio::test]
async fn bad_risk_parameters_are_400_and_unknown_mains_404() {
    let (state, _dir) = state_with_readings().await;
    let engineer = login(&state, Role::Engineer).await;
    let cases = [
        ("/risk?page=-1", "page=\"-1\""),
        ("/risk?page=0", "page="),
        ("/risk?page=abc", "page="),
        ("/risk?sort=rank%3B%20DROP%20TABLE%20risk_pipe", "sort by one of"),
        ("/risk?sort=bogus", "sort by one of"),
        ("/risk?dir=up", "asc or desc"),
        ("/risk?grade=severe", "grade="),
        ("/risk?material=CI%27%20OR%20%271%27%3D%271", "not a material"),
        ("/risk?dmin=abc", "dmin="),
        ("/risk?dmin=300&dmax=100", "above"),
        ("/risk?district=Z1%27--", "not a district"),
        ("/risk?lof=9", "lof="),
        ("/api/risk?page=-1", "page="),
        ("/api/risk?sort=bogus", "sort by one of"),
        ("/risk.csv?material=%22%3B--", "not a material"),
        ("/risk/P-001%27%20OR%20%271%27%3D%271", "not a valid"),
        ("/api/risk/a%20b", "not a valid"),
    ];
    for (uri, needle) in cases {
        let r = engineer.get_with(&state, uri, &[("accept-language", "en")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.body);
        assert!(r.body.contains(needle), "{uri}: {}", r.body);
    }
    let r = engineer.get(&state, "/risk?page=-1").await;
    assert!(r.body.contains("ページ番号"), "Japanese by default: {}", r.body);
    assert_eq!(engineer.get(&state, "/risk/P-999").await.status, StatusCode::NOT_FOUND);
    assert_eq!(engineer.get(&state, "/api/risk/NOPE").await.status, StatusCode::NOT_FOUND);
    // The injection attempts changed nothing.
    let j = json(&engineer.get(&state, "/api/risk").await.body);
    assert_eq!(j["total"], MAINS);
}

#[tokio::test]
async fn pipe_page_shows_the_evidence_escaped() {
    let (state, _dir) = state_with_readings().await;
    let viewer = login(&state, Role::Viewer).await;
    let r = viewer.get(&state, "/risk/P-007?lang=en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Laid 1957, as of 2026: 69 years.
    for needle in ["<h2>P-007</h2>", "1957", ">69<", "DI-K", "0.143", "13.3%", "Why it ranks here"] {
        assert!(r.body.contains(needle), "{needle} in {}", r.body);
    }
    assert!(r.body.contains("poisson: &lt;age&gt; 7 &amp; &quot;material&quot;"), "explanation escaped");
    let j = json(&viewer.get(&state, "/api/risk/P-007").await.body);
    assert_eq!(j["pipe"]["rank"], 7);
    assert_eq!(j["run"]["as_of"], "2026-04-01");
}

#[tokio::test]
async fn model_card_compares_the_model_with_both_baselines() {
    let (state, _dir) = state_with_readings().await;
    let viewer = login(&state, Role::Viewer).await;
    let r = viewer.get(&state, "/model?lang=en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for needle in
        ["Baseline: rank by age", "Baseline: rank by past breaks", "28.3%", "18.5%", "25.0%", "0.842", "2023–2025"]
    {
        assert!(r.body.contains(needle), "{needle} in {}", r.body);
    }
    // The chart draws the chosen model and both baselines, each bar labelled with its value.
    let svg = r.body.split("<svg").nth(1).unwrap();
    for v in ["7.1%", "28.3%", "48.0%", "4.8%", "18.5%", "35.9%", "4.7%", "25.0%", "39.2%"] {
        assert!(svg.contains(&format!("\n{v}\n")), "{v} labelled in the chart");
    }
    let j = json(&viewer.get(&state, "/api/model").await.body);
    let rankers: Vec<&str> = j["backtest"].as_array().unwrap().iter().map(|b| b["ranker"].as_str().unwrap()).collect();
    assert_eq!(rankers, ["mizumori", "age", "prior-breaks"]);
    assert_eq!(j["model"], "poisson");
}

#[tokio::test]
async fn without_a_ranking_pages_say_so_and_the_api_is_404() {
    let (state, _dir) = state_with_readings().await;
    // The same accounts, but risk tables with no run.
    let empty = AppState::new(state.store.clone())
        .with_accounts(state.accounts.clone())
        .with_risk(Arc::new(store::SqliteRisk::in_memory()));
    let viewer = login(&empty, Role::Viewer).await;
    for uri in ["/risk?lang=en", "/model?lang=en"] {
        let r = viewer.get(&empty, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert!(r.body.contains("No risk ranking stored yet"), "{uri}: {}", r.body);
    }
    assert_eq!(viewer.get(&empty, "/risk?page=-1").await.status, StatusCode::BAD_REQUEST);
    for uri in ["/api/risk", "/api/model", "/api/risk/P-001", "/risk/P-001"] {
        assert_eq!(viewer.get(&empty, uri).await.status, StatusCode::NOT_FOUND, "{uri}");
    }
    // The overview still works, without the register KPIs.
    let r = viewer.get(&empty, "/?lang=en").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains("40-year legal life"));
}

#[tokio::test]
async fn risk_csv_has_a_bom_and_every_filtered_main() {
    let (state, _dir) = state_with_readings().await;
    let planner = login(&state, Role::Planner).await;
    let r = planner.get(&state, "/risk.csv?material=PVC&lang=en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(r.body.starts_with("\u{feff}rank,asset_id,material,"));
    let lines: Vec<&str> = r.body.lines().skip(1).collect();
    assert_eq!(lines.len(), (1..=MAINS).filter(|k| k % 3 == 2).count(), "all pages, not one");
    assert!(lines.iter().all(|l| l.split(',').nth(2) == Some("PVC")));
    // The explanation holds quotes: quoted and doubled.
    assert!(lines[0].ends_with("\"poisson: <age> 2 & \"\"material\"\"\""), "{}", lines[0]);
}

#[tokio::test]
async fn a_main_page_shows_its_district_pressure_as_evidence() {
    use chrono::{Duration, DurationRound, Utc};
    use model::{DeviceId, PointName, Reading};

    let (state, _dir) = state_with_readings().await;
    let engineer = login(&state, Role::Engineer).await;
    // The test ranking's mains are in district Z1, which has no logger yet: no section.
    let r = engineer.get(&state, "/risk/P-001?lang=en").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains("Zone pressure"), "no logger, no evidence");

    // Two hours of a logger for Z1, ending an hour before now (the run was made just now):
    // 5.0 bar but one minute at 3.8 bar, so two transient minutes in 1/12 day.
    let (device, point) = (DeviceId::new("pl01").unwrap(), PointName::new("pressure").unwrap());
    let start = Utc::now().duration_trunc(Duration::minutes(1)).unwrap() - Duration::hours(3);
    let batch: Vec<Reading> = (0..120)
        .map(|m| {
            let value = if m == 60 { 3.8 } else { 5.0 };
            Reading::good(device.clone(), point.clone(), start + Duration::minutes(m), value)
        })
        .collect();
    state.store.write(&batch).await.unwrap();
    let state = state.with_districts(vec![dashboard::District {
        name: "Z1".into(),
        inflow: None,
        critical_pressure: Some(store::SeriesKey { device, point }),
    }]);
    let r = engineer.get(&state, "/risk/P-001?lang=en").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Zone pressure (monitoring)"), "{}", r.body);
    for figure in ["<td>4.99</td>", "<td>5.00</td>", "<td>24.0</td>", "<td>1.20</td>"] {
        assert!(r.body.contains(figure), "{figure} in {}", r.body);
    }
    let r = engineer.get(&state, "/risk/P-001?lang=ja").await;
    assert!(r.body.contains("配水区の水圧（監視データ）") && r.body.contains("過渡圧力（回/日）"));
}
