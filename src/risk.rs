//! `mizumori risk …`: pipe risk ranking, backtest and the synthetic city, wired to the
//! analytics crate.

use std::path::{Path, PathBuf};

use analytics::backtest::{BacktestRow, backtest, peer_rows, pooled_gain, table};
use analytics::import::ImportReport;
use analytics::peer::{read_peer_scores, write_features_csv};
use analytics::risk::write_ranking_csv;
use analytics::synth::{SynthParams, generate};
use analytics::{FeatureBuilder, History, ModelKind, Profile, RankParams, Register};
use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum RiskCommand {
    /// Rank the mains in service on a date by expected breaks per km in the next year.
    Rank {
        #[command(flatten)]
        input: Input,
        /// Rank as of this date (YYYY-MM-DD); only breaks before it are used.
        #[arg(long, value_parser = parse_date)]
        as_of: NaiveDate,
        /// Where to write the ranking (CSV).
        #[arg(long)]
        out: PathBuf,
        /// Also save the ranking, with a backtest of the three years before for the model
        /// card, where the dashboard reads it: a store URL (`sqlite://PATH`).
        #[arg(long)]
        store: Option<String>,
        /// With an InfluxDB store: the SQLite file that holds the accounts and rankings.
        #[arg(long)]
        accounts: Option<PathBuf>,
        /// Pressure zones (TOML, as examples/zones.toml): each main gets its zone's mean and
        /// maximum pressure and transients from the readings in --store over the
        /// --pressure-days before --as-of, as model covariates and evidence.
        #[arg(long, requires = "store")]
        zones: Option<PathBuf>,
        /// Days of readings before --as-of that make the zone pressure features.
        #[arg(long, default_value_t = analytics::pressure::DEFAULT_WINDOW_DAYS, requires = "zones")]
        pressure_days: u32,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Walk-forward backtest: capture of next-year breaks in the top 1/5/10 % of length and
    /// AUC, against rank-by-age and rank-by-prior-breaks.
    Backtest {
        #[command(flatten)]
        input: Input,
        /// First test year (ranked with what was known on 1 January of it).
        #[arg(long)]
        from: i32,
        /// Last test year.
        #[arg(long)]
        to: i32,
        /// Also write the table (Markdown) here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Score another ranker in the same run: NAME=FILE, a `year,asset_id,score` CSV with
        /// a score for every main in service in every test year (higher = riskier).
        #[arg(long, value_name = "NAME=FILE")]
        peer: Vec<String>,
        /// Also draw the cumulative-gain chart (SVG) here: share of breaks caught against share
        /// of network length renewed from the top, per ranker, over the test years pooled.
        #[arg(long, value_name = "FILE.svg")]
        chart: Option<PathBuf>,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Export the pipe-year features and labels that the models train on (CSV), one row per
    /// main in service on 1 January of each year, for peers such as scikit-learn.
    #[command(hide = true)]
    Features {
        #[command(flatten)]
        input: Input,
        #[arg(long)]
        from: i32,
        #[arg(long)]
        to: i32,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the synthetic city (assets.csv, breaks.csv in the mizumori profile, and the mains
    /// on a street grid as assets.geojson).
    Synth {
        #[arg(long)]
        out_dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// About how many km of mains.
        #[arg(long, default_value_t = 650.0)]
        km: f64,
        /// Exactly this many mains instead of --km (for scale benchmarks).
        #[arg(long)]
        pipes: Option<usize>,
    },
}

#[derive(Debug, Args)]
pub struct Input {
    /// Asset register: CSV, or GeoJSON (a FeatureCollection of LineStrings in WGS 84) when
    /// the name ends in .geojson or .json or with --format geojson.
    #[arg(long)]
    assets: PathBuf,
    /// Format of --assets: csv or geojson (default: by the file's extension).
    #[arg(long, value_parser = ["csv", "geojson"])]
    format: Option<String>,
    /// Break history (CSV).
    #[arg(long)]
    breaks: PathBuf,
    /// Column mapping: kitchener or mizumori (docs/analytics.md).
    #[arg(long, default_value = "mizumori")]
    profile: String,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// auto (chosen by validation on the years before), cohort-rate, poisson, logistic or
    /// random-forest.
    #[arg(long, default_value = "auto")]
    model: String,
    /// Years of pipe-years to train on.
    #[arg(long, default_value_t = 10)]
    train_years: u32,
    /// At most about this many pipe-years to train on; pipe-years without a break are
    /// sampled (and weighted) beyond it.
    #[arg(long, default_value_t = RankParams::default().max_train_rows)]
    max_train_rows: usize,
}

impl ModelArgs {
    fn params(&self) -> anyhow::Result<RankParams> {
        let model = match self.model.as_str() {
            "auto" => None,
            name => Some(ModelKind::parse(name).with_context(|| {
                format!("--model {name}: use auto, cohort-rate, poisson, logistic or random-forest")
            })?),
        };
        Ok(RankParams {
            model,
            train_years: self.train_years,
            max_train_rows: self.max_train_rows,
            ..RankParams::default()
        })
    }
}

pub(crate) fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("{s:?}: use YYYY-MM-DD"))
}

/// Prints an import's summary and its first issues to stderr.
pub(crate) fn report(what: &str, path: &Path, r: &ImportReport) {
    eprintln!("{what} {}: {}", path.display(), r.summary());
    const SHOWN: usize = 20;
    for issue in r.issues.iter().take(SHOWN) {
        eprintln!("  {issue}");
    }
    if r.issues.len() > SHOWN {
        eprintln!("  … and {} more", r.issues.len() - SHOWN);
    }
}

fn load(input: &Input) -> anyhow::Result<(Register, History)> {
    let profile = Profile::by_name(&input.profile)?;
    let ext = input.assets.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let geojson = match input.format.as_deref() {
        Some(f) => f == "geojson",
        None => matches!(ext.as_deref(), Some("geojson" | "json")),
    };
    let (register, r) = if geojson {
        analytics::import_assets_geojson(&input.assets, &profile)?
    } else {
        analytics::import_assets(&input.assets, &profile)?
    };
    report("assets", &input.assets, &r);
    let (breaks, r) = analytics::import_breaks(&input.breaks, &profile, &register)?;
    report("breaks", &input.breaks, &r);
    let history = History::new(&register, &breaks);
    Ok((register, history))
}

/// Runs a `risk` command. The work is CPU-bound and runs on the caller's thread (nothing else
/// is on the runtime); only saving to the store awaits.
pub async fn run(command: RiskCommand) -> anyhow::Result<()> {
    match command {
        RiskCommand::Rank { input, as_of, out, model, store, accounts, zones, pressure_days } => {
            // Check where to save before minutes of work, so a typo fails at once.
            let save_to = match (&store, &accounts) {
                (None, None) => None,
                _ => Some(crate::user::accounts_path(store.as_deref(), accounts.as_deref())?),
            };
            let zones = zones.map(|path| analytics::pressure::ZoneMap::load(&path).map(|z| (path, z))).transpose()?;
            let (register, history) = load(&input)?;
            let mut builder = FeatureBuilder::new(&register, &history);
            if let (Some((path, zones)), Some(url)) = (&zones, &store) {
                let pressure = read_zone_pressure(url, zones, as_of, pressure_days).await?;
                eprintln!(
                    "zone pressure ({}): {} of {} zones have readings in the {pressure_days} days before {as_of}",
                    path.display(),
                    pressure.len(),
                    zones.zones.len()
                );
                for (zone, p) in &pressure {
                    eprintln!(
                        "  {zone}: mean {:.2} bar, max {:.2} bar, {:.1} transients/day, largest drop {:.2} bar",
                        p.mean_bar, p.max_bar, p.transients_per_day, p.max_drop_bar
                    );
                }
                builder = builder.with_pressure(pressure);
            }
            let params = model.params()?;
            let ranking = analytics::rank(&builder, as_of, &params)?;
            write_ranking_csv(&out, &ranking, &builder)?;
            println!(
                "{} mains in service on {as_of} ranked with {}; written to {}",
                ranking.rows.len(),
                ranking.selection.describe(),
                out.display()
            );
            if let Some(path) = save_to {
                use chrono::Datelike;
                let years = (as_of.year() - crate::risk_demo::BACKTEST_YEARS)..=(as_of.year() - 1);
                let rows = backtest(&builder, years.clone(), &params)?;
                let (run, rows) = crate::risk_demo::for_store(&builder, &ranking, &rows, years);
                let risk = crate::risk_demo::open(&path).await?;
                let id = store::RiskStore::save_run(&risk, &run, &rows).await?;
                println!("saved as ranking run {id} in {} (the dashboard shows the newest run)", path.display());
            }
        }
        RiskCommand::Backtest { input, from, to, out, peer, chart, model } => {
            anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
            let (register, history) = load(&input)?;
            let builder = FeatureBuilder::new(&register, &history);
            let peers = peer
                .iter()
                .map(|p| {
                    let (name, file) = p.split_once('=').with_context(|| format!("--peer {p}: use NAME=FILE"))?;
                    Ok(read_peer_scores(name, Path::new(file), &builder)?)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut rows = backtest(&builder, from..=to, &model.params()?)?;
            for p in &peers {
                rows.extend(peer_rows(&builder, from..=to, p)?);
            }
            // Stable: within a year, Mizumori's rows keep their order and peers follow.
            rows.sort_by_key(|r| r.year);
            let text = table(&rows);
            print!("{text}");
            if let Some(out) = out {
                std::fs::write(&out, &text).with_context(|| format!("writing {}", out.display()))?;
            }
            if let Some(chart) = chart {
                let svg = gain_chart_svg(&rows, (720, 480))?;
                std::fs::write(&chart, svg).with_context(|| format!("writing {}", chart.display()))?;
            }
        }
        RiskCommand::Features { input, from, to, out } => {
            anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
            let (register, history) = load(&input)?;
            let builder = FeatureBuilder::new(&register, &history);
            let n = write_features_csv(&out, &builder, from..=to)?;
            println!("{n} pipe-years ({from}–{to}) written to {}", out.display());
        }
        RiskCommand::Synth { out_dir, seed, km, pipes } => {
            std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
            let mut city = generate(&SynthParams { seed, network_km: km, pipes, ..SynthParams::default() });
            city.write_csv(&out_dir)?;
            // The same mains on a street grid around Chitose, for GIS and `--assets FILE.geojson`.
            analytics::synth::lay_out_streets(&mut city, seed);
            city.write_geojson(&out_dir)?;
            println!(
                "{} mains ({:.0} km) and {} breaks written to {}",
                city.register.len(),
                city.register.length_km(),
                city.breaks.len(),
                out_dir.display()
            );
        }
    }
    Ok(())
}

/// Zone pressure features from the readings store at `url`, over the `days` days before the
/// start (UTC) of `as_of`: nothing on or after the as-of date reaches a feature.
async fn read_zone_pressure(
    url: &str,
    zones: &analytics::pressure::ZoneMap,
    as_of: NaiveDate,
    days: u32,
) -> anyhow::Result<std::collections::BTreeMap<String, analytics::pressure::ZonePressure>> {
    let readings = store::open(url).await.context("opening the readings store for zone pressure")?;
    let end = as_of.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    Ok(analytics::pressure::zone_pressure(readings.as_ref(), zones, end, days).await?)
}

/// Line colours of the gain chart, Mizumori's first (the Okabe–Ito colour-blind-safe set).
const GAIN_PALETTE: [(u8, u8, u8); 7] =
    [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0), (86, 180, 233), (0, 0, 0)];

/// The backtest's cumulative-gain chart as SVG: one line per ranker (Mizumori, the
/// baselines, peers) over the test years pooled, with the diagonal of a random order. Drawn
/// with plotters' SVG backend without its font feature, as the dashboard's charts: the text
/// stays `<text>` for the viewer's fonts.
pub fn gain_chart_svg(rows: &[BacktestRow], size: (u32, u32)) -> anyhow::Result<String> {
    use plotters::prelude::*;
    let curves = pooled_gain(rows);
    anyhow::ensure!(!curves.is_empty(), "no breaks in the test years: no gain chart to draw");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let draw = |e| anyhow::anyhow!("drawing the gain chart: {e}");
        root.fill(&WHITE).map_err(draw)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .caption("Breaks caught by renewing from the top of each ranking", ("sans-serif", 16))
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..100.0, 0.0..100.0)
            .map_err(draw)?;
        chart
            .configure_mesh()
            .x_desc("share of network length (%)")
            .y_desc("share of breaks caught (%)")
            .label_style(("sans-serif", 13))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw)?;
        let grey = RGBColor(160, 160, 160);
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (100.0, 100.0)], grey.stroke_width(1)))
            .map_err(draw)?
            .label("random order")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], grey));
        for (i, (name, curve)) in curves.iter().enumerate() {
            let (r, g, b) = GAIN_PALETTE[i % GAIN_PALETTE.len()];
            let colour = RGBColor(r, g, b);
            let points = curve.iter().map(|(x, y)| (x * 100.0, y * 100.0));
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(draw)?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(grey)
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

    /// Every polyline of the SVG: its stroke colour and its points in pixels.
    fn polylines(svg: &str) -> Vec<(String, Vec<(f64, f64)>)> {
        let attribute = |tag: &str, name: &str| {
            tag.split(&format!("{name}=\"")).nth(1).unwrap().split('"').next().unwrap().to_owned()
        };
        svg.match_indices("<polyline")
            .map(|(at, _)| {
                let tag = svg[at..].split('>').next().unwrap();
                let points = attribute(tag, "points");
                let points = points
                    .split_whitespace()
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect();
                (attribute(tag, "stroke"), points)
            })
            .collect()
    }

    #[tokio::test]
    async fn rank_with_zones_reads_the_zone_pressure_from_the_store() {
        use model::{DeviceId, PointName, Reading};

        let dir = tempfile::tempdir().unwrap();
        let city = generate(&SynthParams { network_km: 40.0, ..SynthParams::default() });
        city.write_csv(dir.path()).unwrap();
        // Two hours of Z1's logger at 7 bar, ending at the as-of date; a reading on the date
        // itself (at 20 bar) must not count.
        let as_of = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let midnight = as_of.and_hms_opt(0, 0, 0).unwrap().and_utc();
        let (device, point) = (DeviceId::new("pl01").unwrap(), PointName::new("pressure").unwrap());
        let mut batch: Vec<Reading> = (1..=120)
            .map(|m| Reading::good(device.clone(), point.clone(), midnight - chrono::Duration::minutes(m), 7.0))
            .collect();
        batch.push(Reading::good(device.clone(), point.clone(), midnight, 20.0));
        let url = format!("sqlite://{}", dir.path().join("m.sqlite").display());
        store::open(&url).await.unwrap().write(&batch).await.unwrap();
        let zones = dir.path().join("zones.toml");
        std::fs::write(&zones, "[[zone]]\nname = \"Z1\"\npressure = [\"pl01/pressure\"]\n").unwrap();

        let out = dir.path().join("ranking.csv");
        let command = RiskCommand::Rank {
            input: Input {
                assets: dir.path().join("assets.csv"),
                breaks: dir.path().join("breaks.csv"),
                profile: "mizumori".into(),
                format: None,
            },
            as_of,
            out: out.clone(),
            store: Some(url),
            accounts: None,
            zones: Some(zones),
            pressure_days: 30,
            model: ModelArgs { model: "poisson".into(), train_years: 10, max_train_rows: 50_000 },
        };
        run(command).await.unwrap();
        let mut reader = csv::Reader::from_path(&out).unwrap();
        let header = reader.headers().unwrap().clone();
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let (district, mean, max) = (col("district"), col("zone_mean_bar"), col("zone_max_bar"));
        let (mut z1, mut others) = (0, 0);
        for record in reader.records() {
            let record = record.unwrap();
            if &record[district] == "Z1" {
                z1 += 1;
                assert_eq!((&record[mean], &record[max]), ("7.000", "7.000"));
            } else {
                others += 1;
                assert_eq!(&record[mean], "", "zones without readings have no figures");
            }
        }
        assert!(z1 > 0 && others > 0, "{z1} mains in Z1, {others} elsewhere");
    }

    #[test]
    fn the_gain_chart_draws_each_ranker_from_nothing_to_everything() {
        let city = generate(&SynthParams { network_km: 150.0, ..SynthParams::default() });
        let history = History::new(&city.register, &city.breaks);
        let builder = FeatureBuilder::new(&city.register, &history);
        let rows = backtest(&builder, 2021..=2022, &RankParams::default()).unwrap();
        let curves = pooled_gain(&rows);
        let names: Vec<&str> = curves.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["mizumori", "age", "prior-breaks"]);
        for (name, curve) in &curves {
            assert_eq!(curve.first(), Some(&(0.0, 0.0)), "{name}");
            let (x, y) = *curve.last().unwrap();
            assert!((x - 1.0).abs() < 1e-12 && (y - 1.0).abs() < 1e-9, "{name} ends at ({x}, {y})");
        }
        // Mizumori beats renewing by age in the first 10 % on this city.
        let at_10 = |name: &str| curves.iter().find(|(n, _)| n == name).unwrap().1[10].1;
        assert!(at_10("mizumori") > at_10("age"), "{} vs {}", at_10("mizumori"), at_10("age"));

        let svg = gain_chart_svg(&rows, (720, 480)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{}", &svg[..svg.len().min(200)]);
        for name in ["mizumori", "age", "prior-breaks", "random order"] {
            assert!(svg.lines().any(|l| l.trim() == name), "the legend names {name}");
        }
        // The diagonal (grey, drawn before the rankers) and one polyline of 101 points per
        // ranker, each from the plot's bottom-left corner to its top-right corner.
        let lines = polylines(&svg);
        let diagonal = &lines.iter().find(|(stroke, _)| stroke == "#A0A0A0").expect("the random-order diagonal").1;
        let drawn: Vec<_> = lines.iter().filter(|(_, points)| points.len() == 101).collect();
        assert_eq!(drawn.len(), 3, "one curve per ranker");
        for (stroke, points) in drawn {
            assert_eq!(points.first(), diagonal.first(), "{stroke} starts at (0 %, 0 %)");
            assert_eq!(points.last(), diagonal.last(), "{stroke} ends at (100 %, 100 %)");
        }
    }
}
