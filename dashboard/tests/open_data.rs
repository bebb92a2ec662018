//! Open data: off by default (404), published by an admin through a CSRF-protected form,
//! readable without a login, and without what the admin marked as sensitive.

mod util;

use axum::http::StatusCode;
use dashboard::AppState;
use store::risk::{RiskLevel, RiskRow, RiskRun};
use store::{RiskStore, Role, SqliteRisk};
use util::{get, login, post_form, state_with_readings};

const PUBLIC: [&str; 3] = ["/open-data", "/open-data/pipes.csv", "/open-data/pipes.geojson"];

/// A newer run of four mains near Chitose with coordinates; M-3 and M-4 feed critical
/// facilities (CoF 4 and 5).
async fn save_mapped_run(dir: &tempfile::TempDir) {
    let risk = SqliteRisk::open(&dir.path().join("m.sqlite")).await.unwrap();
    let row = |n: u32, cof: u8, grade: RiskLevel| RiskRow {
        rank: n,
        asset_id: model::AssetId::new(format!("M-{n}")).unwrap(),
        material: "CI".into(),
        material_ja: "鋳鉄管".into(),
        diameter_mm: Some(150.0),
        length_m: 120.0,
        install_year: Some(1970 + n as i32),
        district: Some("千歳北".into()),
        prior_breaks: 2,
        expected_breaks: 0.5,
        probability: 0.4,
        score: 4.0,
        lof_grade: 3,
        cof_grade: cof,
        risk_grade: grade,
        explanation: "secret model detail".into(),
        x: Some([141.651, 141.652, 141.653, 141.654][n as usize - 1]),
        y: Some(42.82),
    };
    let rows = vec![
        row(1, 1, RiskLevel::Low),
        row(2, 3, RiskLevel::Medium),
        row(3, 4, RiskLevel::High),
        row(4, 5, RiskLevel::Extreme),
    ];
    let run = RiskRun {
        id: 0,
        as_of: chrono::NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
        model: "poisson".into(),
        selection: String::new(),
        test_years: String::new(),
        created: chrono::Utc::now(),
        backtest: vec![],
    };
    risk.save_run(&run, &rows).await.unwrap();
}

fn geojson(body: &str) -> geojson::FeatureCollection {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn state() -> (AppState, tempfile::TempDir) {
    let (state, dir) = state_with_readings().await;
    save_mapped_run(&dir).await;
    (state, dir)
}

#[tokio::test]
async fn off_by_default_and_only_admins_change_it() {
    let (state, _dir) = state().await;
    for uri in PUBLIC {
        assert_eq!(get(&state, uri).await.status, StatusCode::NOT_FOUND, "{uri}");
    }
    // Settings are admins' only; the JSON says "off".
    assert_eq!(get(&state, "/admin/open-data").await.status, StatusCode::SEE_OTHER);
    for role in [Role::Viewer, Role::Crew, Role::Engineer, Role::Planner] {
        let s = login(&state, role).await;
        assert_eq!(s.get(&state, "/admin/open-data").await.status, StatusCode::FORBIDDEN, "{role}");
        assert_eq!(s.get(&state, "/api/admin/open-data").await.status, StatusCode::FORBIDDEN, "{role}");
        let csrf = s.csrf(&state).await;
        let r = s.post(&state, "/admin/open-data", &format!("csrf={csrf}&enabled=on&licence=CC+BY+4.0")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role}");
    }
    let admin = login(&state, Role::Admin).await;
    let j: serde_json::Value = serde_json::from_str(&admin.get(&state, "/api/admin/open-data").await.body).unwrap();
    assert_eq!((j["enabled"].as_bool(), j["licence"].as_str()), (Some(false), Some("CC BY 4.0")));
    // Without the session's CSRF token nothing changes.
    let r = admin.post(&state, "/admin/open-data", "enabled=on&licence=CC+BY+4.0").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post_form(&state, "/admin/open-data", "enabled=on&licence=x", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for uri in PUBLIC {
        assert_eq!(get(&state, uri).await.status, StatusCode::NOT_FOUND, "{uri}");
    }
    // Bad settings are refused with a reason.
    let csrf = admin.csrf(&state).await;
    for (form, needle) in [
        ("enabled=on&licence=", "licence"),
        ("enabled=on&licence=CC&sensitive_cof=9", "sensitive_cof"),
        ("enabled=on&licence=CC&sensitive_cof=x", "sensitive_cof"),
        ("enabled=on&licence=CC&sensitive_action=burn", "sensitive_action"),
    ] {
        let r = admin.post(&state, "/admin/open-data?lang=en", &format!("csrf={csrf}&{form}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{form}");
        assert!(r.body.contains(needle), "{form}: {}", r.body);
    }
    assert_eq!(get(&state, "/open-data/pipes.csv").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_admin_publishes_without_the_sensitive_parts() {
    let (state, _dir) = state().await;
    let admin = login(&state, Role::Admin).await;
    let csrf = admin.csrf(&state).await;
    let form = format!(
        "csrf={csrf}&enabled=on&licence=CC+BY+4.0&attribution=%E5%8D%83%E6%AD%B3%E5%B8%82%E6%B0%B4%E9%81%93%E5%B1%80\
         &sensitive_cof=4&sensitive_action=omit_coordinates"
    );
    let r = admin.post(&state, "/admin/open-data", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = admin.get(&state, "/admin/open-data").await.body;
    assert!(page.contains("name=\"enabled\" value=\"on\" checked"), "the form shows what was saved");

    // Public, no login: the index with the licence line, the CSV with a BOM.
    let r = get(&state, "/open-data?lang=en").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Licence: <strong>CC BY 4.0</strong> · 千歳市水道局"), "{}", r.body);
    let r = get(&state, "/open-data/pipes.csv").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with('\u{feff}'), "UTF-8 BOM");
    let lines: Vec<&str> = r.body.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines[0],
        "asset_id,material,material_ja,diameter_mm,length_m,install_year,age_years,district,risk_grade,risk_grade_ja,longitude,latitude"
    );
    assert_eq!(lines.len(), 5, "four mains");
    assert_eq!(lines[1], "M-1,CI,鋳鉄管,150,120.0,1971,55,千歳北,low,低,141.651,42.82");
    // Critical facilities' mains are there, but without coordinates.
    assert!(lines[3].starts_with("M-3,") && lines[3].ends_with(",high,高,,"), "{}", lines[3]);
    assert!(lines[4].starts_with("M-4,") && lines[4].ends_with(",extreme,極大,,"), "{}", lines[4]);
    // Model internals are never published.
    assert!(!r.body.contains("secret") && !r.body.contains("0.4"), "{}", r.body);

    let r = get(&state, "/open-data/pipes.geojson").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/geo+json"));
    let fc = geojson(&r.body);
    assert_eq!(fc.features.len(), 4);
    let members = fc.foreign_members.as_ref().unwrap();
    assert_eq!(members["licence"], "CC BY 4.0");
    assert_eq!(members["attribution"], "千歳市水道局");
    let with_geometry: Vec<bool> = fc.features.iter().map(|f| f.geometry.is_some()).collect();
    assert_eq!(with_geometry, [true, true, false, false]);
    let p = fc.features[0].properties.as_ref().unwrap();
    assert_eq!((p["risk_grade"].as_str(), p["age_years"].as_i64()), (Some("low"), Some(55)));
    assert!(!p.contains_key("explanation") && !p.contains_key("probability") && !p.contains_key("rank"));

    // Leaving the sensitive mains out, and districts and coordinates of all.
    let j = r#"{"enabled": true, "licence": "CC BY 4.0", "sensitive_cof": 4, "sensitive_action": "omit_main",
                "omit_district": true, "omit_coordinates": true}"#;
    let r = util::post_json(&state, &admin, "/api/admin/open-data", j, Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = get(&state, "/open-data/pipes.csv").await;
    assert!(!r.body.contains("M-3") && !r.body.contains("M-4") && !r.body.contains("千歳北"), "{}", r.body);
    assert!(!r.body.contains("141.6"), "no coordinates at all");
    let fc = geojson(&get(&state, "/open-data/pipes.geojson").await.body);
    assert_eq!(fc.features.len(), 2);
    assert!(fc.features.iter().all(|f| f.geometry.is_none()));
    assert!(fc.features.iter().all(|f| !f.properties.as_ref().unwrap().contains_key("district")));

    // Turned off again: gone.
    let r = admin.post(&state, "/admin/open-data", &format!("csrf={csrf}&licence=CC+BY+4.0")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    for uri in PUBLIC {
        assert_eq!(get(&state, uri).await.status, StatusCode::NOT_FOUND, "{uri}");
    }
}
