//! The sewer page, its JSON and its curve chart, in-process over a real SQLite file holding a
//! ranking of 120 spans.

mod util;

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use dashboard::AppState;
use model::AssetId;
use store::sewer::{SewerCurve, SewerGrade, SewerRow, SewerRun, WeibullParams};
use store::{Role, SewerStore, SqliteSewer};
use util::{get, login, state_with_readings};

const SPANS: u32 = 120;

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Span `i` (1-based): every 5th RC, the rest VP; grades cycle I, II, III, none, uninspected;
/// districts 北処理区 (odd) and 南処理区 (even).
fn span(i: u32) -> SewerRow {
    let grade = [Some(SewerGrade::I), Some(SewerGrade::II), Some(SewerGrade::III), Some(SewerGrade::Sound), None]
        [(i as usize - 1) % 5];
    let rc = i % 5 == 0;
    SewerRow {
        priority: i,
        span_id: AssetId::new(format!("S-{i:03}")).unwrap(),
        material: if rc { "RC" } else { "VP" }.into(),
        material_ja: if rc { "鉄筋コンクリート管" } else { "硬質塩化ビニル管" }.into(),
        diameter_mm: Some(if rc { 450.0 } else { 200.0 }),
        length_m: 40.0,
        install_year: Some(1960 + i32::try_from(i % 60).unwrap()),
        district: Some(if i % 2 == 1 { "北処理区" } else { "南処理区" }.into()),
        latest_grade: grade,
        latest_date: grade.map(|_| "2022-09-01".parse().unwrap()),
        p_grade_ii: 1.0 / f64::from(i),
        p_grade_i: 0.5 / f64::from(i),
        explanation: format!("span {i} <check escaping>"),
    }
}

fn run() -> SewerRun {
    let w = |shape, scale| WeibullParams { shape, scale };
    let curve = |m: &str, ja: &str, scale: f64| SewerCurve {
        material: m.into(),
        material_ja: ja.into(),
        inspections: 400,
        any: w(3.0, scale),
        ii: w(3.0, scale * 1.4),
        i: w(3.0, scale * 2.0),
        fallback: None,
    };
    SewerRun {
        id: 0,
        as_of: "2026-11-27".parse().unwrap(),
        horizon_years: 5,
        created: Utc.timestamp_millis_opt(1_764_000_000_000).unwrap(),
        curves: vec![curve("RC", "鉄筋コンクリート管", 40.0), curve("VP", "硬質塩化ビニル管", 60.0)],
    }
}

async fn state_with_sewers() -> (AppState, tempfile::TempDir) {
    let (state, dir) = state_with_readings().await;
    let sewer = SqliteSewer::open(&dir.path().join("m.sqlite")).await.unwrap();
    let rows: Vec<SewerRow> = (1..=SPANS).map(span).collect();
    sewer.save_run(&run(), &rows).await.unwrap();
    (state.with_sewer(Arc::new(sewer)), dir)
}

/// The span ids of a page, in order.
fn ids(body: &str) -> Vec<String> {
    body.match_indices("title=\"span ")
        .map(|(i, _)| body[i..].split('>').nth(1).unwrap().split('<').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sewer_routes_need_a_login_and_every_role_may_read() {
    let (state, _dir) = state_with_sewers().await;
    for uri in ["/sewer", "/sewer/curve.svg"] {
        let r = get(&state, uri).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{uri}");
        assert!(r.header("location").unwrap().starts_with("/login"), "{uri}");
    }
    assert_eq!(get(&state, "/api/sewer").await.status, StatusCode::UNAUTHORIZED);
    for role in Role::ALL {
        let s = login(&state, role).await;
        for uri in ["/sewer", "/sewer/curve.svg", "/api/sewer"] {
            assert_eq!(s.get(&state, uri).await.status, StatusCode::OK, "{role} {uri}");
        }
    }
}

#[tokio::test]
async fn the_page_lists_spans_with_grades_counts_and_curves() {
    let (state, _dir) = state_with_sewers().await;
    let s = login(&state, Role::Engineer).await;
    let r = s.get(&state, "/sewer?lang=en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.len() < 200_000, "{} bytes", r.body.len());
    assert!(r.body.contains(&format!("{SPANS} spans match")), "the total");
    let first = ids(&r.body);
    assert_eq!(first.len(), 50, "one page of 50");
    assert_eq!(first[0], "S-001");
    assert!(r.body.contains("rel=\"next\"") && !r.body.contains("rel=\"prev\""));
    // Grades are words on their colour; every grade has its count and km (24 spans × 40 m each).
    for label in ["Urgency I", "Urgency II", "Urgency III", "No deterioration", "Not inspected"] {
        assert!(r.body.contains(&format!(">{label}</span>")), "{label}");
    }
    assert_eq!(
        r.body.matches("<td class=\"num\">24</td><td class=\"num\">1.0</td>").count(),
        5,
        "24 spans, 0.96 km each grade"
    );
    // The curve chart, drawn at the default width, names both materials with their target lives.
    assert_eq!(r.body.matches("<svg").count(), 1);
    assert!(r.body.contains("RC 鉄筋コンクリート管 (I+II 50 % at") && r.body.contains("VP 硬質塩化ビニル管"));
    assert!(r.body.contains("&lt;check escaping&gt;") && !r.body.contains("<check escaping>"));

    let r = s.get(&state, "/sewer?page=3&lang=en").await;
    assert_eq!(ids(&r.body).len(), 20, "the rest");
    assert!(r.body.contains("rel=\"prev\"") && !r.body.contains("rel=\"next\""));
}

#[tokio::test]
async fn the_japanese_page_names_the_grades_in_japanese() {
    let (state, _dir) = state_with_sewers().await;
    let s = login(&state, Role::Viewer).await;
    let r = s.get(&state, "/sewer?lang=ja").await;
    assert_eq!(r.status, StatusCode::OK);
    for label in ["緊急度Ⅰ", "緊急度Ⅱ", "緊急度Ⅲ", "劣化なし", "未調査", "健全率", "処理区", "管きょID"]
    {
        assert!(r.body.contains(label), "{label}");
    }
    assert!(r.body.contains("120 スパンが該当"));
}

#[tokio::test]
async fn filters_and_sorting_narrow_the_spans() {
    let (state, _dir) = state_with_sewers().await;
    let s = login(&state, Role::Viewer).await;
    let api = |q: &str| format!("/api/sewer?{q}");
    let j = json(&s.get(&state, &api("grade=I")).await.body);
    assert_eq!(j["total"], 24);
    assert!(j["rows"].as_array().unwrap().iter().all(|r| r["latest_grade"] == "I"));
    assert_eq!(j["grades"].as_array().unwrap().len(), 1, "{}", j["grades"]);
    assert_eq!(j["grades"][0]["spans"], 24);
    let j = json(&s.get(&state, &api("grade=uninspected")).await.body);
    assert_eq!(j["total"], 24);
    assert!(j["rows"].as_array().unwrap().iter().all(|r| r["latest_grade"].is_null()));
    // RC spans are every 5th: grade "uninspected" (i ≡ 0 mod 5) in both districts.
    let j = json(&s.get(&state, &api("material=RC&grade=uninspected")).await.body);
    assert_eq!(j["total"], 24);
    let j = json(&s.get(&state, &api("material=RC&grade=I")).await.body);
    assert_eq!(j["total"], 0);
    let north = "%E5%8C%97%E5%87%A6%E7%90%86%E5%8C%BA";
    let j = json(&s.get(&state, &api(&format!("district={north}&material=VP"))).await.body);
    assert_eq!(j["total"], 48, "odd spans, not every 5th");
    assert!(j["rows"].as_array().unwrap().iter().all(|r| r["district"] == "北処理区" && r["material"] == "VP"));
    // The page agrees with its JSON, and the filter survives in the pager's links.
    let r = s.get(&state, "/sewer?lang=en&grade=II").await;
    assert!(r.body.contains("24 spans match"));
    assert!(ids(&r.body).iter().all(|id| (id[2..].parse::<u32>().unwrap() - 1) % 5 == 1), "grade II only");
    // Sorted by P(I) ascending: the span with the smallest probability (the last) first.
    let j = json(&s.get(&state, &api("sort=p_grade_i&dir=asc")).await.body);
    assert_eq!(j["rows"][0]["span_id"], "S-120");
    let j = json(&s.get(&state, &api("sort=grade&dir=desc")).await.body);
    assert_eq!(j["rows"][0]["latest_grade"], "I");
}

#[tokio::test]
async fn bad_parameters_are_400_with_a_message() {
    let (state, _dir) = state_with_sewers().await;
    let s = login(&state, Role::Viewer).await;
    for (q, says) in [
        ("grade=IV", "grade=\"IV\""),
        ("sort=drop", "sort=\"drop\""),
        ("dir=up", "dir=\"up\""),
        ("page=0", "page=\"0\""),
        ("page=x", "page=\"x\""),
        ("material=CI", "not a material of this ranking"),
        ("district=nowhere", "not a district"),
    ] {
        for path in ["/sewer", "/api/sewer"] {
            let r = s.get(&state, &format!("{path}?lang=en&{q}")).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}?{q}");
            assert!(r.body.contains(says), "{path}?{q}: {}", r.body);
        }
    }
    for w in ["10", "abc", "99999"] {
        let r = s.get(&state, &format!("/sewer/curve.svg?w={w}&lang=en")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "w={w}");
        assert!(r.body.contains("chart width"), "{}", r.body);
    }
}

#[tokio::test]
async fn injection_text_in_a_filter_is_refused_and_changes_nothing() {
    let (state, _dir) = state_with_sewers().await;
    let s = login(&state, Role::Viewer).await;
    for q in [
        "material=RC%27%20OR%20%271%27%3D%271",
        "district=%27%3B%20DROP%20TABLE%20sewer_span%3B%20--",
        "grade=I%27%20OR%201%3D1",
        "sort=priority%3B%20DROP%20TABLE%20sewer_span",
    ] {
        let r = s.get(&state, &format!("/api/sewer?{q}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.body);
        assert!(!r.body.contains("S-0"), "no rows: {}", r.body);
        assert_eq!(s.get(&state, &format!("/sewer?{q}")).await.status, StatusCode::BAD_REQUEST, "{q}");
    }
    // Every span is still there.
    assert_eq!(json(&s.get(&state, "/api/sewer").await.body)["total"], SPANS);
}

#[tokio::test]
async fn the_curve_chart_is_drawn_at_the_requested_width() {
    let (state, _dir) = state_with_sewers().await;
    let s = login(&state, Role::Viewer).await;
    let r = s.get(&state, "/sewer/curve.svg?w=360").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("image/svg+xml; charset=utf-8"));
    assert!(r.body.starts_with("<svg") && r.body.contains("width=\"360\""), "{}", &r.body[..200.min(r.body.len())]);
    assert_eq!(r.body.matches("(I+II 50 % at").count(), 2);
    let wide = s.get(&state, "/sewer/curve.svg?w=1200").await;
    assert!(wide.body.contains("width=\"1200\""));
}

#[tokio::test]
async fn without_a_ranking_the_page_says_so() {
    let (state, _dir) = state_with_readings().await;
    let s = login(&state, Role::Viewer).await;
    let r = s.get(&state, "/sewer?lang=en").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("No sewer ranking stored yet"));
    let j = json(&s.get(&state, "/api/sewer").await.body);
    assert!(j["run"].is_null() && j["total"] == 0);
    assert_eq!(s.get(&state, "/sewer/curve.svg").await.status, StatusCode::NOT_FOUND);
    // A bad parameter is still a 400 without a run.
    assert_eq!(s.get(&state, "/sewer?grade=IV").await.status, StatusCode::BAD_REQUEST);
}
