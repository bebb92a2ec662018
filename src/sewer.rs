//! `mizumori sewer …`: sewer deterioration curves and span ranking from CCTV grades, wired to
//! the analytics crate (`analytics::sewer`, `sewer_curve`, `sewer_synth`). The curve chart is
//! drawn here: the analytics crate computes and does not draw.

use std::path::PathBuf;

use analytics::sewer::{Inspection, SewerProfile, SewerRegister, import_inspections, import_sewer_pipes};
use analytics::sewer_curve::{DeteriorationModel, rank_spans, write_sewer_ranking_csv};
use analytics::sewer_synth::{SewerSynthParams, generate_sewers};
use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Subcommand};

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

pub fn run(command: SewerCommand) -> anyhow::Result<()> {
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
        SewerCommand::Rank { input, as_of, horizon_years, out } => {
            let (register, inspections) = load(&input)?;
            let model = DeteriorationModel::fit(&register, &inspections, as_of)?;
            let ranking = rank_spans(&register, &inspections, &model, as_of, horizon_years);
            write_sewer_ranking_csv(&out, &ranking, &register)?;
            println!("{} spans ranked as of {as_of}; written to {}", ranking.rows.len(), out.display());
        }
        SewerCommand::Curve { input, as_of, chart } => {
            let (register, inspections) = load(&input)?;
            let as_of = as_of.or_else(|| inspections.iter().map(|i| i.date).max()).context("no inspections")?;
            let model = DeteriorationModel::fit(&register, &inspections, as_of)?;
            print!("{}", curve_table(&model));
            if let Some(path) = chart {
                let svg = curve_chart_svg(&model, (800, 500))?;
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

/// Line colours per material (the Okabe–Ito colour-blind-safe set); each line's legend entry
/// names its material and target life, and the lines keep their order by age, so the chart
/// also reads in grey.
const PALETTE: [(u8, u8, u8); 7] =
    [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0), (86, 180, 233), (0, 0, 0)];

/// 健全率 (share of spans without deterioration) against age, one line per material, with
/// the age where 緊急度 I+II reaches 50 % marked on each. Plotters' SVG backend without its
/// font feature, as the other charts: the text stays `<text>` for the viewer's fonts.
pub fn curve_chart_svg(model: &DeteriorationModel, size: (u32, u32)) -> anyhow::Result<String> {
    use plotters::prelude::*;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let draw = |e| anyhow::anyhow!("drawing the curve chart: {e}");
        root.fill(&WHITE).map_err(draw)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .caption(
                "健全率 by age and material / share of sewer spans without deterioration (▲ I+II = 50 %)",
                ("sans-serif", 15),
            )
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..100.0, 0.0..100.0)
            .map_err(draw)?;
        chart
            .configure_mesh()
            .x_desc("経過年数 age (years)")
            .y_desc("健全率 sound (%)")
            .label_style(("sans-serif", 13))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw)?;
        for (k, (m, c)) in model.curves.iter().enumerate() {
            let (r, g, b) = PALETTE[k % PALETTE.len()];
            let colour = RGBColor(r, g, b);
            let points: Vec<(f64, f64)> =
                (0..=200).map(|a| f64::from(a) / 2.0).map(|a| (a, 100.0 * c.sound_share(a))).collect();
            let life = c.target_life();
            let pooled = if c.fallback.as_deref().is_some_and(|f| f.starts_with("pooled")) { ", pooled" } else { "" };
            let label = format!("{} {} (I+II 50 % at {life:.0} y{pooled})", m.code(), m.name_ja());
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(draw)?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
            if life <= 100.0 {
                let at = 100.0 * c.sound_share(life);
                chart.draw_series([TriangleMarker::new((life, at), 6, colour.filled())]).map_err(draw)?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(160, 160, 160))
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(draw)?;
        root.present().map_err(draw)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_and_table_name_every_fitted_material() {
        let s = generate_sewers(&SewerSynthParams { network_km: 200.0, ..SewerSynthParams::default() });
        let as_of = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let model = DeteriorationModel::fit(&s.register, &s.inspections, as_of).unwrap();
        let svg = curve_chart_svg(&model, (800, 500)).unwrap();
        let table = curve_table(&model);
        for m in model.curves.keys() {
            assert!(svg.contains(m.name_ja()), "{m} missing from the chart");
            assert!(table.contains(m.name_ja()), "{m} missing from the table");
        }
        assert!(svg.contains("健全率"));
        // One legend entry per material, each with its target life.
        assert_eq!(svg.matches("(I+II 50 % at").count(), model.curves.len(), "{svg}");
    }
}
