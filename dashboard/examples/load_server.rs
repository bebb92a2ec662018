//! The dashboard over a large embedded store, for `bench/dashboard_load.sh`.
//!
//! ```text
//! load_server DB --http 127.0.0.1:PORT --password PW [--devices 20] [--points 10] [--days 30]
//! ```
//!
//! On first use it fills `DB` with `devices × points` series of 1-minute readings over `days`
//! days ending now (a daily cycle, noise and a two-hour comm_fail gap per series), a ranking
//! of 20,000 mains and a few alerts; later runs reuse the file. Every run sets the password of
//! the user `bench` (engineer) to `PW`. Then it serves the dashboard as `mizumori serve` does, with twelve districts
//! on the overview, until killed. Deterministic: the same arguments give the same data.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, DurationRound, NaiveDate, Utc};
use dashboard::{AppState, District};
use model::{AlertState, AssetId, DeviceId, NewAlert, PointName, Quality, Reading, Severity, Value};
use store::accounts::User;
use store::risk::{BacktestFigure, RiskLevel, RiskRow, RiskRun};
use store::{
    AccountStore, AlertQuery, AlertStore, ReadingSink, ReadingSource, RiskStore, Role, SeriesKey, SqliteAccounts,
    SqliteAlerts, SqliteRisk, SqliteStore, UserName,
};
use tokio_util::sync::CancellationToken;

const MAINS: u32 = 20_000;

struct Args {
    db: PathBuf,
    http: SocketAddr,
    password: String,
    devices: usize,
    points: usize,
    days: i64,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let db =
        it.next().ok_or("usage: load_server DB --http ADDR --password PW [--devices N] [--points N] [--days N]")?;
    let mut a = Args {
        db: db.into(),
        http: ([127, 0, 0, 1], 8080).into(),
        password: String::new(),
        devices: 20,
        points: 10,
        days: 30,
    };
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag} {v:?}: {e}"));
        match flag.as_str() {
            "--http" => a.http = v.parse().map_err(|e| format!("--http {v:?}: {e}"))?,
            "--password" => a.password = v,
            "--devices" => a.devices = num(&v)?,
            "--points" => a.points = num(&v)?,
            "--days" => a.days = num(&v)? as i64,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.password.len() < 8 {
        return Err("--password: at least 8 characters".into());
    }
    Ok(a)
}

/// A cheap deterministic noise in [-1, 1) (SplitMix64 of the inputs).
fn noise(a: u64, b: u64) -> f64 {
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

fn device(d: usize) -> DeviceId {
    DeviceId::new(format!("d{d:03}")).expect("a valid name")
}

fn point(p: usize) -> PointName {
    PointName::new(format!("p{p:02}")).expect("a valid name")
}

async fn fill_readings(store: &SqliteStore, a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let end = Utc::now().duration_trunc(Duration::minutes(1))?;
    let minutes = a.days * 24 * 60;
    let started = Instant::now();
    let mut written = 0usize;
    for d in 1..=a.devices {
        for p in 1..=a.points {
            let series = (d * 1000 + p) as u64;
            // Two hours without good readings somewhere in the range: a gap on every chart.
            let gap_at = (noise(series, 7).abs() * minutes as f64) as i64;
            let base = 10.0 * p as f64;
            let mut batch = Vec::with_capacity(minutes as usize);
            for m in 0..minutes {
                let time = end - Duration::minutes(minutes - 1 - m);
                let reading = if (gap_at..gap_at + 120).contains(&m) {
                    Reading {
                        device: device(d),
                        point: point(p),
                        time,
                        value: Value::Absent,
                        quality: Quality::CommFail,
                    }
                } else {
                    let day = (m as f64 / 1440.0) * std::f64::consts::TAU;
                    let v = base + base * 0.3 * day.sin() + noise(series, m as u64) * base * 0.05;
                    Reading::good(device(d), point(p), time, v)
                };
                batch.push(reading);
            }
            store.write(&batch).await?;
            written += batch.len();
        }
        eprintln!("load_server: {written} readings written ({:.0} s)", started.elapsed().as_secs_f64());
    }
    Ok(())
}

async fn fill_risk(risk: &SqliteRisk) -> Result<(), Box<dyn std::error::Error>> {
    const MATERIALS: [(&str, &str); 5] = [
        ("CI", "鋳鉄管"),
        ("DI-K", "ダクタイル鋳鉄管（K形）"),
        ("DI-NS", "ダクタイル鋳鉄管（NS形）"),
        ("PVC", "硬質塩化ビニル管"),
        ("SP", "鋼管"),
    ];
    let rows: Vec<RiskRow> = (1..=MAINS)
        .map(|rank| {
            let n = |k: u64| noise(u64::from(rank), k).abs();
            let lof = 5 - ((rank - 1) * 5 / MAINS) as u8;
            let cof = 1 + (n(1) * 5.0) as u8 % 5;
            let (material, material_ja) = MATERIALS[(n(2) * 5.0) as usize % 5];
            RiskRow {
                rank,
                asset_id: AssetId::new(format!("M-{rank:06}")).expect("a valid id"),
                material: material.into(),
                material_ja: material_ja.into(),
                diameter_mm: Some([75.0, 100.0, 150.0, 200.0, 300.0, 500.0][(n(3) * 6.0) as usize % 6]),
                length_m: 20.0 + n(4) * 200.0,
                install_year: Some(1960 + (n(5) * 60.0) as i32),
                district: Some(format!("dma{:02}", 1 + (n(6) * 12.0) as u32 % 12)),
                prior_breaks: (n(7) * 4.0) as u32,
                expected_breaks: 1.0 / f64::from(rank),
                probability: 1.0 - (-1.0 / f64::from(rank)).exp(),
                score: 10.0 / f64::from(rank),
                lof_grade: lof,
                cof_grade: cof,
                risk_grade: RiskLevel::from_number((lof * cof).div_ceil(5)).expect("1..=5"),
                explanation: format!("poisson: age {} years, {} past breaks", 10 + rank % 50, rank % 4),
                x: None,
                y: None,
            }
        })
        .collect();
    let figure = |ranker: &str, capture: [f64; 3], auc| BacktestFigure {
        ranker: ranker.into(),
        detail: String::new(),
        capture,
        auc: Some(auc),
    };
    let run = RiskRun {
        id: 0,
        as_of: NaiveDate::from_ymd_opt(2026, 4, 1).expect("a date"),
        model: "poisson".into(),
        selection: "synthetic data for the load benchmark".into(),
        test_years: "2023–2025".into(),
        created: Utc::now(),
        backtest: vec![
            figure("mizumori", [0.07, 0.28, 0.48], 0.84),
            figure("age", [0.05, 0.19, 0.36], 0.78),
            figure("prior-breaks", [0.05, 0.25, 0.39], 0.76),
        ],
    };
    risk.save_run(&run, &rows).await?;
    Ok(())
}

async fn fill_alerts(alerts: &SqliteAlerts, a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let now = Utc::now();
    for d in 1..=a.devices.min(12) {
        let severity = Severity::ALL[d % Severity::ALL.len()];
        alerts
            .raise(&NewAlert {
                rule: format!("high_p01_d{d:03}"),
                asset: format!("dma{d:02}"),
                device: device(d),
                point: point(1),
                severity,
                at: now - Duration::minutes(d as i64 * 7),
                value: Some(42.0),
                message_ja: format!("d{d:03} の p01 が上限を超えています"),
                message_en: format!("p01 of d{d:03} is above its limit"),
            })
            .await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    let store = SqliteStore::open(&a.db).await?;
    if store.latest().await?.is_empty() {
        fill_readings(&store, &a).await?;
    }
    let accounts = SqliteAccounts::open(&a.db).await?;
    // Each run brings its own password; a reused file gets it too.
    let name = UserName::new("bench")?;
    let password = a.password.clone();
    let hash = tokio::task::spawn_blocking(move || dashboard::auth::hash_password(&password)).await??;
    accounts.put_user(&User { name, role: Role::Engineer, password_hash: hash, created: Utc::now() }).await?;
    let risk = SqliteRisk::open(&a.db).await?;
    if risk.latest_run().await?.is_none() {
        fill_risk(&risk).await?;
    }
    let alerts = SqliteAlerts::open(&a.db).await?;
    let open = AlertQuery { state: Some(AlertState::Open), ..AlertQuery::default() };
    if alerts.alerts(&open).await?.is_empty() {
        fill_alerts(&alerts, &a).await?;
    }
    // Twelve districts, as in the demo: each an inflow meter and a critical-point logger.
    let districts = (1..=12.min(a.devices))
        .map(|d| District {
            name: format!("dma{d:02}"),
            inflow: Some(SeriesKey { device: device(d), point: point(1) }),
            critical_pressure: Some(SeriesKey { device: device(d), point: point(2) }),
        })
        .collect();
    let state = AppState::new(Arc::new(store))
        .with_accounts(Arc::new(accounts))
        .with_risk(Arc::new(risk))
        .with_alerts(Arc::new(alerts))
        .with_districts(districts);
    let listener = tokio::net::TcpListener::bind(a.http).await?;
    println!("load_server: dashboard on http://{}/", listener.local_addr()?);
    dashboard::serve(listener, state, CancellationToken::new()).await?;
    Ok(())
}
