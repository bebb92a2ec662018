//! `mizumori risk …`: pipe risk ranking, backtest and the synthetic city, wired to the
//! analytics crate.

use std::path::{Path, PathBuf};

use analytics::backtest::{backtest, peer_rows, table};
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
    /// Write the synthetic city (assets.csv, breaks.csv in the mizumori profile).
    Synth {
        #[arg(long)]
        out_dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// About how many km of mains.
        #[arg(long, default_value_t = 650.0)]
        km: f64,
    },
}

#[derive(Debug, Args)]
pub struct Input {
    /// Asset register (CSV).
    #[arg(long)]
    assets: PathBuf,
    /// Break history (CSV).
    #[arg(long)]
    breaks: PathBuf,
    /// Column mapping: kitchener or mizumori (docs/analytics.md).
    #[arg(long, default_value = "mizumori")]
    profile: String,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// auto (chosen by validation on the years before), cohort-rate, poisson or logistic.
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
            name => Some(
                ModelKind::parse(name)
                    .with_context(|| format!("--model {name}: use auto, cohort-rate, poisson or logistic"))?,
            ),
        };
        Ok(RankParams {
            model,
            train_years: self.train_years,
            max_train_rows: self.max_train_rows,
            ..RankParams::default()
        })
    }
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("{s:?}: use YYYY-MM-DD"))
}

/// Prints an import's summary and its first issues to stderr.
fn report(what: &str, path: &Path, r: &ImportReport) {
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
    let (register, r) = analytics::import_assets(&input.assets, &profile)?;
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
        RiskCommand::Rank { input, as_of, out, model, store, accounts } => {
            // Check where to save before minutes of work, so a typo fails at once.
            let save_to = match (&store, &accounts) {
                (None, None) => None,
                _ => Some(crate::user::accounts_path(store.as_deref(), accounts.as_deref())?),
            };
            let (register, history) = load(&input)?;
            let builder = FeatureBuilder::new(&register, &history);
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
        RiskCommand::Backtest { input, from, to, out, peer, model } => {
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
        }
        RiskCommand::Features { input, from, to, out } => {
            anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
            let (register, history) = load(&input)?;
            let builder = FeatureBuilder::new(&register, &history);
            let n = write_features_csv(&out, &builder, from..=to)?;
            println!("{n} pipe-years ({from}–{to}) written to {}", out.display());
        }
        RiskCommand::Synth { out_dir, seed, km } => {
            std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
            let city = generate(&SynthParams { seed, network_km: km, ..SynthParams::default() });
            city.write_csv(&out_dir)?;
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
