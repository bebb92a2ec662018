//! Exports of the risk ranking open in their tools: the xlsx in Python's openpyxl (the test
//! venv of scripts/lib/services.sh, `MIZUMORI_TEST_PYTHON`), the GeoJSON in the `geojson`
//! crate; CSV keeps its one writer (`/risk.csv`). Export permission only.

mod util;

use std::io::Write;

use axum::http::StatusCode;
use store::Role;
use util::{MAINS, login, state_with_readings};

#[tokio::test]
async fn exports_need_the_export_role_and_a_known_format() {
    let (state, _dir) = state_with_readings().await;
    for role in [Role::Viewer, Role::Crew] {
        let s = login(&state, role).await;
        for f in ["csv", "xlsx", "geojson"] {
            assert_eq!(s.get(&state, &format!("/risk/export?format={f}")).await.status, StatusCode::FORBIDDEN);
        }
    }
    let planner = login(&state, Role::Planner).await;
    let r = planner.get(&state, "/risk/export?format=pdf&lang=en").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("format=\"pdf\""), "{}", r.body);
    let r = planner.get(&state, "/risk/export?format=xlsx&sort=nope").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // CSV is the table's CSV, with the same filters.
    let r = planner.get(&state, "/risk/export?format=csv&material=CI").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/risk.csv?material=CI"));
}

#[tokio::test]
async fn xlsx_opens_in_openpyxl() {
    let python = std::env::var("MIZUMORI_TEST_PYTHON")
        .expect("MIZUMORI_TEST_PYTHON: a Python with openpyxl (scripts/test sets it up)");
    let (state, _dir) = state_with_readings().await;
    let planner = login(&state, Role::Planner).await;
    let resp = util::get_bytes(&state, &planner, "/risk/export?format=xlsx&lang=ja").await;
    assert_eq!(resp.0, StatusCode::OK);
    assert_eq!(resp.1.as_deref(), Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"));
    // openpyxl goes by the file name's extension.
    let mut file = tempfile::Builder::new().suffix(".xlsx").tempfile().unwrap();
    file.write_all(&resp.2).unwrap();
    let script = r#"
import sys, openpyxl
ws = openpyxl.load_workbook(sys.argv[1]).active
rows = list(ws.iter_rows(values_only=True))
print(ws.title, len(rows) - 1, ws.freeze_panes, ws.auto_filter.ref, sep="|")
print("|".join(str(v) for v in rows[0]))
print("|".join(str(v) for v in rows[1]))
"#;
    let out = std::process::Command::new(python).arg("-c").arg(script).arg(file.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("risk 2026-04-01|{MAINS}|A2|A1:N{}", MAINS + 1));
    assert!(lines[1].starts_with("順位|管路ID|管種|管種名|口径(mm)"), "{}", lines[1]);
    assert!(lines[2].starts_with("1|P-001|DI-K|鋳鉄管|150"), "{}", lines[2]);
}

#[tokio::test]
async fn geojson_validates() {
    let (state, _dir) = state_with_readings().await;
    let engineer = login(&state, Role::Engineer).await;
    let r = engineer.get(&state, "/risk/export?format=geojson&material=PVC").await;
    assert_eq!(r.status, StatusCode::OK);
    let fc: geojson::FeatureCollection = serde_json::from_str(&r.body).unwrap();
    assert_eq!(fc.features.len(), 40, "the PVC mains only");
    assert!(fc.features.iter().all(|f| f.properties.as_ref().unwrap()["material"] == "PVC"));
    // The test register has no coordinates: null geometry, still valid GeoJSON.
    assert!(fc.features.iter().all(|f| f.geometry.is_none()));
    assert_eq!(fc.foreign_members.as_ref().unwrap()["as_of"], "2026-04-01");
}
