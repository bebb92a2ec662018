//! `mizumori sewer …`: sewer deterioration curves and span ranking from CCTV grades, wired to
//! the analytics crate (`analytics::sewer`, `sewer_curve`, `sewer_synth`). The curve chart is
//! drawn by the dashboard's `sewer::curve_chart_svg` (the analytics crate computes and does not
//! draw), from the curves as the store keeps them, so the CLI's chart and the page's are one.
//!
//! The demo's sewer ranking is made here too ([`spawn_demo`]): the synthetic city's sewer
//! register and CCTV programme, ranked as of the demo date and saved once into the demo's file.

use std::path::{Path, PathBuf};

use analytics::sewer::{Grade, Inspection, SewerProfile, SewerRegister, import_inspections, import_sewer_pipes};
use analytics::sewer_curve::{DeteriorationModel, SewerRanking, Weibull, rank_spans, write_sewer_ranking_csv};
use analytics::sewer_synth::{SewerSynthParams, generate_sewers};
use anyhow::Context;
use chrono::{Datelike, NaiveDate, Utc};
use clap::{Args, Subcommand};
use store::sewer::{SewerCurve, SewerGrade, SewerRow, SewerRun, WeibullParams};
use store::{SewerStore, SqliteSewer};
use tracing::{info, warn};

use crate::risk::{parse_date, report};

#[derive(Debug, Subcommand)]
pub enum SewerCommand {
    /// Write a synthetic sewer network with planted deterioration curves
    /// (sewer_pipes.csv, sewer_inspections.csv).
    Synth {
        #[arg(long)]
        out_dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// About how many km of sewer spans (管きょ).
        #[arg(long, default_value_t = 450.0)]
        km: f64,
    },
    /// Rank the spans by latest grade and predicted deterioration (CSV, priority 1 first).
    Rank {
        #[command(flatten)]
        input: Input,
        /// Rank as of this date (YYYY-MM-DD); later inspections are not used.
        #[arg(long, value_parser = parse_date)]
        as_of: NaiveDate,
        /// Predict the grades this many years after the as-of date.
        #[arg(long, default_value_t = 5)]
        horizon_years: u32,
        #[arg(long)]
        out: PathBuf,
        /// Also save the ranking with its curves where the dashboard (/sewer) reads it: a
        /// store URL (`sqlite://PATH`), as `risk rank --store`.
        #[arg(long)]
        store: Option<String>,
        /// With an InfluxDB store: the SQLite file that holds the accounts and rankings.
        #[arg(long)]
        accounts: Option<PathBuf>,
    },
    /// Fit the deterioration curves (健全率 vs age per material) and print them.
    Curve {
        #[command(flatten)]
        input: Input,
        /// Fit to inspections up to this date (default: all).
        #[arg(long, value_parser = parse_date)]
        as_of: Option<NaiveDate>,
        /// Also draw 健全率 against age per material (SVG).
        #[arg(long, value_name = "FILE.svg")]
        chart: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct Input {
    /// Sewer register (CSV): span_id, material, length_m, installed, …
    #[arg(long)]
    pipes: PathBuf,
    /// Inspection history (CSV): span_id, date, grade.
    #[arg(long)]
    inspections: PathBuf,
    /// Column names: mizumori or ja (Japanese headers; docs/analytics.md).
    #[arg(long, default_value = "mizumori")]
    profile: String,
}

fn load(input: &Input) -> anyhow::Result<(SewerRegister, Vec<Inspection>)> {
    let profile = SewerProfile::by_name(&input.profile)?;
    let (register, r) = import_sewer_pipes(&input.pipes, &profile)?;
    report("sewer pipes", &input.pipes, &r);
    let (inspections, r) = import_inspections(&input.inspections, &profile, &register)?;
    report("inspections", &input.inspections, &r);
    Ok((register, inspections))
}

/// Runs a `sewer` command. The work is CPU-bound and runs on the caller's thread (nothing else
/// is on the runtime); only saving to the store awaits.
pub async fn run(command: SewerCommand) -> anyhow::Result<()> {
    match command {
        SewerCommand::Synth { out_dir, seed, km } => {
            anyhow::ensure!(km > 0.0 && km.is_finite(), "--km {km}: use a length above 0");
            std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
            let s = generate_sewers(&SewerSynthParams { seed, network_km: km, ..SewerSynthParams::default() });
            s.write_csv(&out_dir)?;
            println!(
                "{} spans ({:.0} km) and {} inspections written to {}",
                s.register.pipes.len(),
                s.register.length_km(),
                s.inspections.len(),
                out_dir.display()
            );
        }
        SewerCommand::Rank { input, as_of, horizon_years, out, store, accounts } => {
            // Check where to save before the work, so a typo fails at once.
            let save_to = match (&store, &accounts) {
                (None, None) => None,
                _ => Some(crate::user::accounts_path(store.as_deref(), accounts.as_deref())?),
            };
            let (register, inspections) = load(&input)?;
            let model = DeteriorationModel::fit(&register, &inspections, as_of)?;
            let ranking = rank_spans(&register, &inspections, &model, as_of, horizon_years);
            write_sewer_ranking_csv(&out, &ranking, &register)?;
            println!("{} spans ranked as of {as_of}; written to {}", ranking.rows.len(), out.display());
            if let Some(path) = save_to {
                let (run, rows) = for_store(&register, &model, &ranking);
                let id = open(&path).await?.save_run(&run, &rows).await?;
                println!(
                    "saved as sewer ranking run {id} in {} (the dashboard's /sewer shows the newest)",
                    path.display()
                );
            }
        }
        SewerCommand::Curve { input, as_of, chart } => {
            let (register, inspections) = load(&input)?;
            let as_of = as_of.or_else(|| inspections.iter().map(|i| i.date).max()).context("no inspections")?;
            let model = DeteriorationModel::fit(&register, &inspections, as_of)?;
            print!("{}", curve_table(&model));
            if let Some(path) = chart {
                let svg = dashboard::sewer::curve_chart_svg(&curves_for_store(&model), (800, 500))
                    .map_err(|e| anyhow::anyhow!("drawing the curve chart: {e}"))?;
                std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
                println!("chart written to {}", path.display());
            }
        }
    }
    Ok(())
}

/// The fitted curves as a Markdown table: per material the inspections used, 健全率 at 30 and
/// 50 years, the Weibull parameters of reaching 緊急度 II or worse, and the target life.
pub fn curve_table(model: &DeteriorationModel) -> String {
    let mut s = String::from(
        "| material | 管種 | inspections | 健全率 30 y | 健全率 50 y | I+II at 50 y | shape (II) | scale (II) | target life (I+II = 50 %) | note |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for (m, c) in &model.curves {
        s.push_str(&format!(
            "| {} | {} | {} | {:.0} % | {:.0} % | {:.0} % | {:.2} | {:.1} | {:.0} y | {} |\n",
            m.code(),
            m.name_ja(),
            c.inspections,
            100.0 * c.sound_share(30.0),
            100.0 * c.sound_share(50.0),
            100.0 * c.share_ii_or_worse(50.0),
            c.ii.shape,
            c.ii.scale,
            c.target_life(),
            c.fallback.as_deref().unwrap_or(""),
        ));
    }
    s
}

/// Opens the sewer tables in a SQLite file (the demo's, or the accounts file beside InfluxDB).
pub async fn open(db: &Path) -> anyhow::Result<SqliteSewer> {
    SqliteSewer::open(db).await.with_context(|| format!("opening the sewer tables in {}", db.display()))
}

fn weibull(w: &Weibull) -> WeibullParams {
    WeibullParams { shape: w.shape, scale: w.scale }
}

/// The fitted curves as the store keeps them, in material code order.
pub fn curves_for_store(model: &DeteriorationModel) -> Vec<SewerCurve> {
    model
        .curves
        .iter()
        .map(|(m, c)| SewerCurve {
            material: m.code().to_owned(),
            material_ja: m.name_ja().to_owned(),
            inspections: u32::try_from(c.inspections).unwrap_or(u32::MAX),
            any: weibull(&c.any),
            ii: weibull(&c.ii),
            i: weibull(&c.i),
            fallback: c.fallback.clone(),
        })
        .collect()
}

fn grade(g: Grade) -> SewerGrade {
    match g {
        Grade::Sound => SewerGrade::Sound,
        Grade::III => SewerGrade::III,
        Grade::II => SewerGrade::II,
        Grade::I => SewerGrade::I,
    }
}

/// A ranking as the store keeps it: the run with each material's curves, and a row per span in
/// priority order.
pub fn for_store(
    register: &SewerRegister,
    model: &DeteriorationModel,
    ranking: &SewerRanking,
) -> (SewerRun, Vec<SewerRow>) {
    let rows = ranking
        .rows
        .iter()
        .map(|r| {
            let p = &register.pipes[r.pipe];
            SewerRow {
                priority: u32::try_from(r.priority).unwrap_or(u32::MAX),
                span_id: p.id.clone(),
                material: p.material.code().to_owned(),
                material_ja: p.material.name_ja().to_owned(),
                diameter_mm: p.diameter_mm,
                length_m: p.length_m,
                install_year: p.installed.map(|d| d.year()),
                district: p.district.clone(),
                latest_grade: r.latest.map(|(_, g)| grade(g)),
                latest_date: r.latest.map(|(d, _)| d),
                p_grade_ii: r.p_ii,
                p_grade_i: r.p_i,
                explanation: r.explanation.clone(),
            }
        })
        .collect();
    let run = SewerRun {
        id: 0,
        as_of: ranking.as_of,
        horizon_years: ranking.horizon_years,
        created: Utc::now(),
        curves: curves_for_store(model),
    };
    (run, rows)
}

/// The horizon of the demo's ranking, as `sewer rank`'s default.
const DEMO_HORIZON_YEARS: u32 = 5;

/// The synthetic city's sewers (about `network_km` of spans, inspections up to `today`),
/// fitted and ranked as of `today`, as rows for the store.
pub fn compute_demo(today: NaiveDate, network_km: f64) -> anyhow::Result<(SewerRun, Vec<SewerRow>)> {
    let city =
        generate_sewers(&SewerSynthParams { network_km, last_year: today.year(), ..SewerSynthParams::default() });
    // Inspections later in this year than today stay unseen: the fit and the ranking read only
    // those on or before the as-of date.
    let model = DeteriorationModel::fit(&city.register, &city.inspections, today)
        .context("fitting the synthetic sewers' deterioration curves")?;
    let ranking = rank_spans(&city.register, &city.inspections, &model, today, DEMO_HORIZON_YEARS);
    Ok(for_store(&city.register, &model, &ranking))
}

/// Saves the demo's sewer ranking in the background unless the file has a run already. A
/// plain thread, as the water mains' ranking (`risk_demo`), so Ctrl-C never waits for a fit.
pub fn spawn_demo(sewer: SqliteSewer, today: NaiveDate) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = load_demo(&sewer, today).await {
            warn!(error = format!("{e:#}"), "the demo's sewer ranking could not be made");
        }
    })
}

async fn load_demo(sewer: &SqliteSewer, today: NaiveDate) -> anyhow::Result<()> {
    if let Some(run) = sewer.latest_run().await? {
        info!(as_of = %run.as_of, "reusing the stored sewer ranking");
        return Ok(());
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("demo-sewer".into())
        .spawn(move || {
            let _ = tx.send(compute_demo(today, SewerSynthParams::default().network_km));
        })
        .context("starting the sewer ranking thread")?;
    let (run, rows) = rx.await.context("the sewer ranking thread ended without an answer")??;
    let id = sewer.save_run(&run, &rows).await?;
    info!(run = id, spans = rows.len(), "sewer ranking of the synthetic city saved");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_and_table_name_every_fitted_material() {
        let s = generate_sewers(&SewerSynthParams { network_km: 200.0, ..SewerSynthParams::default() });
        let as_of = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let model = DeteriorationModel::fit(&s.register, &s.inspections, as_of).unwrap();
        let svg = dashboard::sewer::curve_chart_svg(&curves_for_store(&model), (800, 500)).unwrap();
        let table = curve_table(&model);
        for m in model.curves.keys() {
            assert!(svg.contains(m.name_ja()), "{m} missing from the chart");
            assert!(table.contains(m.name_ja()), "{m} missing from the table");
        }
        assert!(svg.contains("健全率"));
        // One legend entry per material, each with its target life.
        assert_eq!(svg.matches("(I+II 50 % at").count(), model.curves.len(), "{svg}");
    }

    #[tokio::test]
    async fn the_demo_ranking_is_saved_once_and_reads_back_the_same() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let (run, rows) = compute_demo(today, 120.0).unwrap();
        assert_eq!(run.as_of, today);
        assert_eq!(run.horizon_years, DEMO_HORIZON_YEARS);
        assert!(rows.len() > 1000, "{} spans", rows.len());
        assert!(rows.iter().enumerate().all(|(i, r)| r.priority as usize == i + 1));
        // Spans last seen at 緊急度 I come first; the stored curves agree with the fit.
        assert_eq!(rows[0].latest_grade, Some(SewerGrade::I));
        assert!(rows.iter().any(|r| r.latest_grade.is_none()), "some spans were never inspected");
        assert!(rows.iter().all(|r| r.latest_date.is_none_or(|d| d <= today)));
        assert!(run.curves.iter().any(|c| c.material == "RC" && c.fallback.is_none()), "{:?}", run.curves);

        let dir = tempfile::tempdir().unwrap();
        let sewer = open(&dir.path().join("m.sqlite")).await.unwrap();
        let id = sewer.save_run(&run, &rows).await.unwrap();
        // A second start finds the run and returns at once instead of ranking again.
        tokio::time::timeout(std::time::Duration::from_secs(5), load_demo(&sewer, today)).await.unwrap().unwrap();
        let latest = sewer.latest_run().await.unwrap().unwrap();
        assert_eq!(latest.id, id, "no second run");
        assert_eq!(latest.curves, run.curves);
        let page = sewer.rows(id, &store::sewer::SewerQuery { limit: 5, ..Default::default() }).await.unwrap();
        assert_eq!(page.total as usize, rows.len());
        assert_eq!(page.rows[..], rows[..5]);
    }
}
