//! Shared set-up of the in-process tests: a real embedded store with readings and one user per
//! role, and requests that log in the way a browser does.

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{Duration, DurationRound, Utc};
use dashboard::{AppState, District, app};
use model::{DeviceId, NewAlert, PointName, Quality, Reading, Severity, Value};
use store::accounts::User;
use store::alerts::Resolution;
use store::risk::{BacktestFigure, RiskLevel, RiskRow, RiskRun};
use store::{
    AccountStore, AlertStore, ReadingSink, RiskStore, Role, SeriesKey, SqliteAccounts, SqliteAlerts, SqliteRisk,
    SqliteStore, UserName,
};
use tower::ServiceExt;

/// The password of the test user of `role` (whose name is the role's name).
pub fn password(role: Role) -> String {
    format!("pw-{role}-correct")
}

/// A store with two minutes of 1 s readings for fm01/flow and ps01/discharge_pressure (with
/// a 30 s stretch of comm_fail in the flow), a text point and a failed device; and users
/// viewer, crew, engineer, planner and admin.
pub async fn state_with_readings() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    let now = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let dev = |s| DeviceId::new(s).unwrap();
    let pt = |s| PointName::new(s).unwrap();
    let mut batch = Vec::new();
    for i in 0..120 {
        let t = now - Duration::seconds(119 - i);
        let flow = if (40..70).contains(&i) {
            Reading {
                device: dev("fm01"),
                point: pt("flow"),
                time: t,
                value: Value::Absent,
                quality: Quality::CommFail,
            }
        } else {
            Reading::good(dev("fm01"), pt("flow"), t, 100.0 + (i as f64).sin())
        };
        batch.push(flow);
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
    let accounts = SqliteAccounts::open(&path).await.unwrap();
    for role in Role::ALL {
        let hash = dashboard::auth::hash_password(&password(role)).unwrap();
        accounts
            .add_user(&User { name: UserName::new(role.as_str()).unwrap(), role, password_hash: hash, created: now })
            .await
            .unwrap();
    }
    let risk = SqliteRisk::open(&path).await.unwrap();
    save_risk_run(&risk).await;
    let district = District {
        name: "dma01".into(),
        inflow: Some(SeriesKey { device: dev("fm01"), point: pt("flow") }),
        critical_pressure: Some(SeriesKey { device: dev("ps01"), point: pt("discharge_pressure") }),
    };
    let alerts = SqliteAlerts::open(&path).await.unwrap();
    save_alerts(&alerts, now).await;
    let state = AppState::new(Arc::new(store))
        .with_accounts(Arc::new(accounts))
        .with_alerts(Arc::new(alerts))
        .with_risk(Arc::new(risk))
        .with_districts(vec![district]);
    (state, dir)
}

/// The test alerts, by id: 1 critical open at PS-01; 2 major open at 配水区-北 (a name
/// that needs percent-encoding); 3 minor acknowledged at PS-01; 4 info resolved at PS-01 (the
/// rule resolved it); 5 major shelved at dma01 for 8 hours.
pub async fn save_alerts(alerts: &SqliteAlerts, now: chrono::DateTime<Utc>) {
    let raise = |id: u32, asset: &str, device: &str, point: &str, severity: Severity, minutes_ago: i64| NewAlert {
        rule: format!("rule{id}"),
        asset: asset.to_owned(),
        device: DeviceId::new(device).unwrap(),
        point: PointName::new(point).unwrap(),
        severity,
        at: now - Duration::minutes(minutes_ago),
        value: Some(f64::from(id) + 0.5),
        message_ja: format!("警報{id}: 吐出圧力が低下 <script>"),
        message_en: format!("alert {id}: discharge pressure low <script>"),
    };
    let new = [
        raise(1, "PS-01", "ps01", "discharge_pressure", Severity::Critical, 5),
        raise(2, "配水区-北", "fm01", "flow", Severity::Major, 10),
        raise(3, "PS-01", "ps01", "p1_running", Severity::Minor, 20),
        raise(4, "PS-01", "ps01", "fault_text", Severity::Info, 90),
        raise(5, "dma01", "fm01", "pressure", Severity::Major, 30),
    ];
    for (i, n) in new.iter().enumerate() {
        let r = alerts.raise(n).await.unwrap();
        assert_eq!(r.alert.id, i as i64 + 1);
    }
    alerts.acknowledge(3, "engineer", "checking the pump", now - Duration::minutes(15)).await.unwrap();
    alerts.resolve(4, &Resolution::Auto, now - Duration::minutes(60)).await.unwrap();
    alerts.shelve(5, now + Duration::hours(8), "engineer", now - Duration::minutes(25)).await.unwrap();
}

/// Materials of the test ranking, by rank modulo 3.
pub const MATERIALS: [&str; 3] = ["CI", "DI-K", "PVC"];
/// Mains in the test ranking: three pages of 50.
pub const MAINS: u32 = 120;

/// The test ranking: mains `P-001` … `P-120` in rank order, materials and diameters in turns,
/// laid from 1950 onwards (one a year), LoF falling with rank; and a backtest.
pub async fn save_risk_run(risk: &SqliteRisk) {
    let rows: Vec<RiskRow> = (1..=MAINS)
        .map(|rank| {
            let lof = 5 - ((rank - 1) * 5 / MAINS) as u8;
            let cof = (rank % 5) as u8 + 1;
            RiskRow {
                rank,
                asset_id: model::AssetId::new(format!("P-{rank:03}")).unwrap(),
                material: MATERIALS[(rank % 3) as usize].to_owned(),
                material_ja: "鋳鉄管".into(),
                diameter_mm: Some([75.0, 150.0, 300.0, 500.0][(rank % 4) as usize]),
                length_m: 100.0,
                install_year: Some(1950 + rank as i32),
                district: Some("Z1".into()),
                prior_breaks: rank % 4,
                expected_breaks: 1.0 / f64::from(rank),
                probability: 1.0 - (-1.0 / f64::from(rank)).exp(),
                score: 10.0 / f64::from(rank),
                lof_grade: lof,
                cof_grade: cof,
                risk_grade: RiskLevel::from_number((lof * cof).div_ceil(5)).unwrap(),
                explanation: format!("poisson: <age> {rank} & \"material\""),
                x: None,
                y: None,
            }
        })
        .collect();
    let run = RiskRun {
        id: 0,
        as_of: chrono::NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
        model: "poisson".into(),
        selection: "model poisson (best mean capture@5% of length in validation)".into(),
        test_years: "2023–2025".into(),
        created: Utc::now(),
        backtest: vec![
            BacktestFigure {
                ranker: "mizumori".into(),
                detail: "poisson".into(),
                capture: [0.071, 0.283, 0.48],
                auc: Some(0.842),
            },
            BacktestFigure {
                ranker: "age".into(),
                detail: String::new(),
                capture: [0.048, 0.185, 0.359],
                auc: Some(0.776),
            },
            BacktestFigure {
                ranker: "prior-breaks".into(),
                detail: String::new(),
                capture: [0.047, 0.25, 0.392],
                auc: Some(0.76),
            },
        ],
    };
    risk.save_run(&run, &rows).await.unwrap();
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn cookies(&self) -> Vec<&str> {
        self.headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).collect()
    }
}

pub async fn send(state: &AppState, req: Request<Body>) -> Resp {
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20).await.unwrap();
    // Lossy: a few routes answer binary files (XLSX, PDF), which callers check by status.
    Resp { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

/// An anonymous GET.
pub async fn get(state: &AppState, uri: &str) -> Resp {
    send(state, Request::get(uri).body(Body::empty()).unwrap()).await
}

/// A POST of a form, with extra headers.
pub async fn post_form(state: &AppState, uri: &str, form: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(state, req.body(Body::from(form.to_owned())).unwrap()).await
}

/// A JSON POST with the session cookie and, when given, the CSRF header.
pub async fn post_json(state: &AppState, s: &Session, uri: &str, body: &str, csrf: Option<&str>) -> Resp {
    let mut req = Request::post(uri).header(header::CONTENT_TYPE, "application/json").header(header::COOKIE, &s.cookie);
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    send(state, req.body(Body::from(body.to_owned())).unwrap()).await
}

/// A GET as `s` whose body is bytes: status, content type and body.
pub async fn get_bytes(state: &AppState, s: &Session, uri: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    let req = Request::get(uri).header(header::COOKIE, &s.cookie).body(Body::empty()).unwrap();
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let ct = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20).await.unwrap();
    (status, ct, body.to_vec())
}

/// A GET as `s`, answered whole: status, headers and body bytes.
pub async fn get_raw(state: &AppState, s: &Session, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let req = Request::get(uri).header(header::COOKIE, &s.cookie).body(Body::empty()).unwrap();
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20).await.unwrap();
    (status, headers, body.to_vec())
}

/// A logged-in user: the `Cookie` header value to send.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
}

/// Logs in as the test user of `role` through `POST /login`.
pub async fn login(state: &AppState, role: Role) -> Session {
    let form = format!("username={role}&password={}", password(role));
    let r = post_form(state, "/login", &form, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let set = r.cookies().into_iter().find(|c| c.starts_with("mizumori_session=")).expect("a session cookie");
    let cookie = set.split(';').next().unwrap().to_owned();
    Session { cookie }
}

impl Session {
    pub async fn get(&self, state: &AppState, uri: &str) -> Resp {
        self.get_with(state, uri, &[]).await
    }

    pub async fn get_with(&self, state: &AppState, uri: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = Request::get(uri).header(header::COOKIE, &self.cookie);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        send(state, req.body(Body::empty()).unwrap()).await
    }

    pub async fn post(&self, state: &AppState, uri: &str, form: &str) -> Resp {
        post_form(state, uri, form, &[("cookie", &self.cookie)]).await
    }

    /// The session's CSRF token, as scripts get it.
    pub async fn csrf(&self, state: &AppState) -> String {
        let r = self.get(state, "/api/session").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        j["csrf"].as_str().unwrap().to_owned()
    }
}
