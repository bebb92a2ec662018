//! The demo's pipe risk, and rankings as the store keeps them: the synthetic Chitose-like city ranked as of today, with a short
//! backtest for the model card, saved once into the demo's SQLite file.
//!
//! Ranking 650 km of mains takes seconds to a minute, so it runs on a thread of its own after
//! the dashboard is already listening: the demo's URL is printed at once and the risk pages
//! say "no ranking yet" until the run is saved. A plain thread rather than the blocking pool,
//! because the runtime waits for blocking tasks when it shuts down, and Ctrl-C must not wait
//! for a model fit. The run is saved in one transaction, so an interrupted demo leaves no half
//! run and the next start computes it again; a saved run is reused on every later start.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;

use analytics::backtest::{BacktestRow, backtest, means};
use analytics::pressure::ZonePressure;
use analytics::synth::{SynthParams, generate};
use analytics::{FeatureBuilder, History, RankParams, Ranking};
use anyhow::Context;
use chrono::{Datelike, NaiveDate, Utc};
use store::risk::{BacktestFigure, RiskLevel, RiskRow, RiskRun};
use store::{ReadingSource, RiskStore, SqliteRisk};
use tracing::{info, warn};

/// Test years of the model card's backtest: the last three full years.
pub const BACKTEST_YEARS: i32 = 3;

/// Ends the run's selection text when zone pressure was used (and tells the demo so).
const WITH_PRESSURE: &str = "; with zone pressure";

/// Districts of the demo scenario (`dma01`…`dma12`): the synthetic city's pressure zones, so
/// that its mains meet the simulator's pressure loggers.
pub const DEMO_DISTRICTS: usize = 12;

/// Loads the risk data in the background unless the file has a run already; the mains get
/// their zone's pressure from `readings` when the store holds enough of them.
pub fn spawn(risk: SqliteRisk, readings: Arc<dyn ReadingSource>, today: NaiveDate) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = load(&risk, readings.as_ref(), today).await {
            warn!(error = format!("{e:#}"), "the demo's risk ranking could not be made");
        }
    })
}

async fn load(risk: &SqliteRisk, readings: &dyn ReadingSource, today: NaiveDate) -> anyhow::Result<()> {
    // Up to now rather than to the as-of date's start: the demo's readings are all recent.
    let zones = analytics::pressure::demo_zones(DEMO_DISTRICTS);
    let pressure =
        analytics::pressure::zone_pressure(readings, &zones, Utc::now(), analytics::pressure::DEFAULT_WINDOW_DAYS)
            .await
            .context("reading the districts' pressure")?;
    if let Some(run) = risk.latest_run().await? {
        // A run made before the store held an hour of readings is made again once it does,
        // so that a demo restarted after running a while shows pressure as evidence.
        if pressure.is_empty() || run.selection.contains(WITH_PRESSURE) {
            info!(as_of = %run.as_of, model = %run.model, "reusing the stored risk ranking");
            return Ok(());
        }
        info!(zones = pressure.len(), "ranking again: the districts' pressure is now known");
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("demo-risk".into())
        .spawn(move || {
            let _ = tx.send(compute(today, SynthParams::default().network_km, pressure));
        })
        .context("starting the ranking thread")?;
    let (run, rows) = rx.await.context("the ranking thread ended without an answer")??;
    let id = risk.save_run(&run, &rows).await?;
    info!(run = id, mains = rows.len(), model = %run.model, "risk ranking of the synthetic city saved");
    Ok(())
}

/// Generates the synthetic city (about `network_km` of mains, in the demo's districts) with
/// breaks up to this year, ranks it as of `today` with the districts' `pressure` features
/// and backtests the last full years, as rows for the store.
pub fn compute(
    today: NaiveDate,
    network_km: f64,
    pressure: BTreeMap<String, ZonePressure>,
) -> anyhow::Result<(RiskRun, Vec<RiskRow>)> {
    // Breaks are drawn to the end of this year; the ranking and the backtest read only those
    // before their as-of dates (`History::before`), so the later ones stay unseen.
    let zones = analytics::pressure::demo_zones(DEMO_DISTRICTS).zones.into_iter().map(|z| z.name).collect();
    let mut city = generate(&SynthParams { last_year: today.year(), network_km, zones, ..SynthParams::default() });
    // Streets for the mains, so the stored run has midpoints for maps and GeoJSON exports.
    analytics::synth::lay_out_streets(&mut city, 1);
    let history = History::new(&city.register, &city.breaks);
    let builder = FeatureBuilder::new(&city.register, &history).with_pressure(pressure);
    let params = RankParams::default();
    let ranking = analytics::rank(&builder, today, &params).context("ranking the synthetic city")?;
    let years = (today.year() - BACKTEST_YEARS)..=(today.year() - 1);
    let backtest_rows = backtest(&builder, years.clone(), &params).context("backtesting on the synthetic city")?;
    // The synthetic city has no geometry.
    Ok(for_store(&builder, &ranking, &backtest_rows, years))
}

/// A ranking and its backtest as the store keeps them: the run with the backtest's means per
/// ranker, and a row per main in rank order.
pub fn for_store(
    builder: &FeatureBuilder,
    ranking: &Ranking,
    backtest_rows: &[BacktestRow],
    years: RangeInclusive<i32>,
) -> (RiskRun, Vec<RiskRow>) {
    let figures = means(backtest_rows)
        .into_iter()
        .map(|(ranker, capture, auc)| {
            // The chosen family can differ from year to year; name each once.
            let mut detail: Vec<&str> = Vec::new();
            for r in backtest_rows.iter().filter(|r| r.ranker == ranker && !r.detail.is_empty()) {
                if !detail.contains(&r.detail.as_str()) {
                    detail.push(&r.detail);
                }
            }
            BacktestFigure { detail: detail.join(", "), ranker, capture, auc }
        })
        .collect();
    let pipes = builder.register().pipes();
    let rows = ranking
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let p = &pipes[r.pipe];
            RiskRow {
                rank: u32::try_from(i + 1).unwrap_or(u32::MAX),
                asset_id: p.id.clone(),
                material: p.material.code().to_owned(),
                material_ja: p.material.name_ja().to_owned(),
                diameter_mm: p.diameter_mm,
                length_m: p.length_m,
                install_year: p.installed.map(|d| d.year()),
                district: p.pressure_zone.clone(),
                prior_breaks: u32::try_from(builder.history().before(r.pipe, ranking.as_of).len()).unwrap_or(u32::MAX),
                expected_breaks: r.expected_breaks,
                probability: r.probability,
                score: r.score,
                lof_grade: r.lof_grade,
                cof_grade: r.cof_grade,
                risk_grade: r.risk_grade.name().parse::<RiskLevel>().expect("the same five grade names"),
                explanation: r.explanation.clone(),
                // The midpoint of the main's line (WGS 84 lon/lat), from a GeoJSON register.
                x: p.midpoint().map(|m| m.0),
                y: p.midpoint().map(|m| m.1),
            }
        })
        .collect();
    let run = RiskRun {
        id: 0,
        as_of: ranking.as_of,
        model: ranking.selection.chosen.to_string(),
        selection: if builder.zone_pressure().is_empty() {
            ranking.selection.describe()
        } else {
            format!("{}{WITH_PRESSURE} of {} zones", ranking.selection.describe(), builder.zone_pressure().len())
        },
        test_years: format!("{}–{}", years.start(), years.end()),
        created: Utc::now(),
        backtest: figures,
    };
    (run, rows)
}

/// Today's date in Japan, where the utility's day begins.
pub fn today_in_japan() -> NaiveDate {
    let jst = chrono::FixedOffset::east_opt(9 * 3600).expect("constant offset is valid");
    Utc::now().with_timezone(&jst).date_naive()
}

/// Opens the risk tables in the demo's file.
pub async fn open(db: &Path) -> anyhow::Result<SqliteRisk> {
    SqliteRisk::open(db).await.with_context(|| format!("opening the risk tables in {}", db.display()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use store::risk::RiskQuery;

    use super::*;

    #[tokio::test]
    async fn a_ranked_city_is_saved_once_and_reused() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let (run, rows) = compute(today, 100.0, BTreeMap::new()).unwrap();
        assert_eq!(run.as_of, today);
        assert!(rows.len() > 500, "{} mains", rows.len());
        // Ranks run 1..n in order of the score, highest first.
        assert!(rows.iter().enumerate().all(|(i, r)| r.rank as usize == i + 1));
        assert!(rows.windows(2).all(|w| w[0].score >= w[1].score));
        // The model card compares the chosen model with both baselines.
        let rankers: Vec<&str> = run.backtest.iter().map(|b| b.ranker.as_str()).collect();
        for name in ["mizumori", "age", "prior-breaks"] {
            assert!(rankers.contains(&name), "{rankers:?}");
        }
        assert_eq!(run.test_years, "2023–2025");

        let dir = tempfile::tempdir().unwrap();
        let risk = open(&dir.path().join("m.sqlite")).await.unwrap();
        let id = risk.save_run(&run, &rows).await.unwrap();
        // A second start finds the run and returns at once instead of ranking again.
        let readings = store::SqliteStore::open(&dir.path().join("m.sqlite")).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), load(&risk, &readings, today)).await.unwrap().unwrap();
        let latest = risk.latest_run().await.unwrap().unwrap();
        assert_eq!(latest.id, id, "no second run");
        let page = risk.rows(id, &RiskQuery { limit: 3, ..Default::default() }).await.unwrap();
        assert_eq!(page.total as usize, rows.len());
        assert_eq!(page.rows[..], rows[..3]);
    }
}
