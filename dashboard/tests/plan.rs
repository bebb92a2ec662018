//! The renewal plan page, its JSON and exports, in-process over the 120-main test ranking
//! (`util::save_risk_run`): roles (everyone views, planners change inputs, exporters export),
//! bad inputs → 400, no year over its budget in the export, and the files open in their tools.

mod util;

use std::collections::BTreeMap;
use std::io::Write;

use axum::http::StatusCode;
use store::Role;
use util::{get, login, state_with_readings};

#[tokio::test]
async fn everyone_sees_the_plan_only_planners_change_it_and_exporters_export() {
    let (state, _dir) = state_with_readings().await;
    assert_eq!(get(&state, "/plan").await.status, StatusCode::SEE_OTHER);
    assert_eq!(get(&state, "/api/plan").await.status, StatusCode::UNAUTHORIZED);
    for role in Role::ALL {
        let s = login(&state, role).await;
        let r = s.get(&state, "/plan?lang=en").await;
        assert_eq!(r.status, StatusCode::OK, "{role}: {}", r.body);
        assert!(r.body.contains("Renewal plan") && r.body.contains("<svg"), "{role}");
        assert_eq!(s.get(&state, "/api/plan").await.status, StatusCode::OK, "{role}");
        let edits = matches!(role, Role::Planner | Role::Admin);
        assert_eq!(r.body.contains("name=\"budget\""), edits, "{role}: the input form");
        let changed = s.get(&state, "/plan?budget=5km").await.status;
        assert_eq!(changed, if edits { StatusCode::OK } else { StatusCode::FORBIDDEN }, "{role}");
        let exports = matches!(role, Role::Engineer | Role::Planner | Role::Admin);
        for f in ["csv", "xlsx", "geojson"] {
            let (st, _, _) = util::get_bytes(&state, &s, &format!("/plan/export?format={f}")).await;
            assert_eq!(st, if exports { StatusCode::OK } else { StatusCode::FORBIDDEN }, "{role} {f}");
        }
    }
}

#[tokio::test]
async fn bad_inputs_are_400_with_a_message() {
    let (state, _dir) = state_with_readings().await;
    let planner = login(&state, Role::Planner).await;
    for (uri, needle) in [
        ("/plan?budget=lots", "budget"),
        ("/plan?compare=-3km", "compare"),
        ("/plan?years=0", "years"),
        ("/plan?years=ten", "years"),
        ("/plan?deadline=CI", "deadline"),
        ("/api/plan?budget=%27%3BDROP", "budget"),
        ("/plan/export?format=docx", "format"),
        ("/plan/export?format=pdf&years=99", "years"),
        ("/plan/export?format=pdf&budget=lots", "budget"),
        ("/plan/export?format=%3Cscript%3E", "format"),
    ] {
        let r = planner.get(&state, uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(r.body.contains(needle), "{uri}: {}", r.body);
        assert!(!r.body.contains("<script>"), "{uri}: echoed unescaped");
    }
}

#[tokio::test]
async fn no_year_of_the_exported_schedule_exceeds_its_budget() {
    let (state, _dir) = state_with_readings().await;
    let planner = login(&state, Role::Planner).await;
    let r = planner.get(&state, "/plan/export?format=csv&budget=30000000&compare=0.3km&years=6&lang=en").await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.body.strip_prefix('\u{feff}').expect("UTF-8 BOM for Japanese Excel");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let mut yen: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut km: BTreeMap<(String, String), f64> = BTreeMap::new();
    for rec in reader.records() {
        let rec = rec.unwrap();
        let key = (rec[0].to_owned(), rec[1].to_owned());
        *yen.entry(key.clone()).or_default() += rec[8].parse::<f64>().unwrap();
        *km.entry(key).or_default() += rec[5].parse::<f64>().unwrap() / 1000.0;
    }
    let years = |budget_prefix: &str| yen.keys().filter(|(b, _)| b.starts_with(budget_prefix)).count();
    assert_eq!(years("¥"), 6, "the yen plan renews something every year: {yen:?}");
    assert_eq!(years("0.3"), 6, "so does the km plan: {km:?}");
    for ((b, fy), v) in &yen {
        if b.starts_with('¥') {
            assert!(*v <= 30_000_000.0, "{b} FY{fy}: ¥{v}");
        }
    }
    for ((b, fy), v) in &km {
        if b.starts_with("0.3") {
            assert!(*v <= 0.3 + 1e-9, "{b} FY{fy}: {v} km");
        }
    }
    // The JSON says the same: the yen plan's yearly cost within the budget.
    let r = planner.get(&state, "/api/plan?budget=30000000&compare=0.3km&years=6").await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    for y in v["scenarios"][0]["years"].as_array().unwrap() {
        assert!(y["cost_yen"].as_f64().unwrap() <= 30_000_000.0, "{y}");
    }
}

#[tokio::test]
async fn japanese_page_and_exports_open_in_their_tools() {
    let (state, _dir) = state_with_readings().await;
    let planner = login(&state, Role::Planner).await;
    let r = planner.get(&state, "/plan?lang=ja").await;
    assert!(r.body.contains("更新計画") && r.body.contains("年度"), "Japanese labels");

    let r = planner.get(&state, "/plan/export?format=geojson&years=4").await;
    assert_eq!(r.status, StatusCode::OK);
    let fc: geojson::FeatureCollection = serde_json::from_str(&r.body).unwrap();
    assert!(!fc.features.is_empty());
    assert!(fc.features.iter().all(|f| f.properties.as_ref().unwrap()["fiscal_year"].is_i64()));

    let python = std::env::var("MIZUMORI_TEST_PYTHON")
        .expect("MIZUMORI_TEST_PYTHON: a Python with openpyxl (scripts/test sets it up)");
    let (status, ctype, bytes) = util::get_bytes(&state, &planner, "/plan/export?format=xlsx&lang=ja").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype.as_deref(), Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"));
    let mut file = tempfile::Builder::new().suffix(".xlsx").tempfile().unwrap();
    file.write_all(&bytes).unwrap();
    let script = r#"
import sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
print("|".join(wb.sheetnames))
s = list(wb["年度別集計"].iter_rows(values_only=True))
print(len(s) - 1, "|".join(str(v) for v in s[0]))
"#;
    let out = std::process::Command::new(python).arg("-c").arg(script).arg(file.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "年度別集計|更新計画表");
    assert!(lines[1].starts_with("20 予算案|年度|更新延長(km)"), "two budgets × ten years: {}", lines[1]);
}

/// Issue #7 item 5: the plan's charts are drawn at the width the client asks for, not shrunk.
#[tokio::test]
async fn plan_charts_are_drawn_at_the_requested_width() {
    let (state, _dir) = state_with_readings().await;
    let viewer = login(&state, Role::Viewer).await;
    let svg_width = |body: &str| -> u32 {
        let tag = &body[body.find("<svg").expect("an svg")..];
        let w = &tag[tag.find("width=\"").unwrap() + 7..];
        w[..w.find('"').unwrap()].parse().unwrap()
    };
    for chart in ["km", "breaks", "age"] {
        let r = viewer.get(&state, &format!("/plan/chart.svg?chart={chart}&w=360")).await;
        assert_eq!(r.status, StatusCode::OK, "{chart}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("image/svg+xml; charset=utf-8"));
        assert_eq!(svg_width(&r.body), 360, "{chart}");
    }
    let r = viewer.get(&state, "/plan/chart.svg?chart=km&w=1200").await;
    assert_eq!(svg_width(&r.body), 1200);
    // The page draws at its default and names the chart route for the resize script.
    let r = viewer.get(&state, "/plan").await;
    assert!(r.body.contains("data-chart=\"/plan/chart.svg?chart=km\" data-w=\"640\""), "{}", r.body);
    assert_eq!(svg_width(&r.body), 640);
    let r = viewer.get(&state, "/plan?w=390").await;
    assert_eq!(svg_width(&r.body), 390, "w on the page too, for browsers without scripts");
    for (uri, needle) in [
        ("/plan/chart.svg?chart=km&w=10&lang=en", "width"),
        ("/plan/chart.svg?chart=km&w=wide&lang=en", "width"),
        ("/plan/chart.svg?chart=%3Cscript%3E&w=360&lang=en", "chart"),
        ("/plan/chart.svg?w=360&lang=en", "chart"),
        ("/plan?w=99999&lang=en", "width"),
    ] {
        let r = viewer.get(&state, uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(r.body.contains(needle) && !r.body.contains("<script>"), "{uri}: {}", r.body);
    }
    // Changed inputs stay the planner's here too.
    assert_eq!(viewer.get(&state, "/plan/chart.svg?chart=km&budget=5km").await.status, StatusCode::FORBIDDEN);
    let planner = login(&state, Role::Planner).await;
    let r = planner.get(&state, "/plan/chart.svg?chart=km&budget=5km&w=400").await;
    assert_eq!((r.status, svg_width(&r.body)), (StatusCode::OK, 400));
}
