//! `mizumori alerts list|ack|resolve|shelve`, and the wiring of alert rules into `collect`
//! and `demo`.
//!
//! Alerts live in a SQLite file: the embedded store's own file when the store is
//! `sqlite://PATH`, or the accounts file (`--accounts`) when readings live in InfluxDB.

pub mod score;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Args, Subcommand};
use collector::{Alerting, RuleSet};
use model::{AlertState, Severity};
use store::alerts::Resolution;
use store::{AlertQuery, AlertStore, SqliteAlerts, SqliteDetectorStates, SqliteWorks, WorksStore};

/// The demo city's rules, shipped in the binary so `mizumori demo` needs no file.
const DEMO_RULES: &str = include_str!("../rules/demo.toml");

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub command: AlertsCommand,
}

/// Where the alerts are: the file of a `sqlite://` store, or `--accounts FILE`.
#[derive(Debug, Args)]
pub struct AlertsAt {
    /// The store whose SQLite file holds the alerts (sqlite://PATH).
    #[arg(long, env = "MIZUMORI_STORE")]
    pub store: Option<String>,
    /// The SQLite file of accounts and alerts, when readings are in InfluxDB.
    #[arg(long, env = "MIZUMORI_ACCOUNTS")]
    pub accounts: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// List alerts, newest first: id, state, severity, asset, rule, first seen, last seen, count, message.
    List {
        /// open, acknowledged, resolved or shelved
        #[arg(long, value_parser = parse_state)]
        state: Option<AlertState>,
        /// critical, major, minor or info
        #[arg(long, value_parser = parse_severity)]
        severity: Option<Severity>,
        #[arg(long)]
        asset: Option<String>,
        /// Only alerts seen in this last span, e.g. 2h, 7d.
        #[arg(long, value_parser = crate::cli::parse_duration)]
        since: Option<chrono::Duration>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Japanese messages instead of English.
        #[arg(long)]
        ja: bool,
        #[command(flatten)]
        at: AlertsAt,
    },
    /// Acknowledge an open alert: someone is on it.
    Ack {
        id: i64,
        #[arg(long)]
        by: String,
        #[arg(long)]
        comment: String,
        #[command(flatten)]
        at: AlertsAt,
    },
    /// Resolve an alert by hand.
    Resolve {
        id: i64,
        #[arg(long)]
        note: Option<String>,
        /// Who resolves it (default: $USER).
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        at: AlertsAt,
    },
    /// Shelve an alert for a while (planned works): repeats do not notify until then.
    Shelve {
        id: i64,
        /// How long, e.g. 2h.
        #[arg(long = "for", value_parser = crate::cli::parse_duration)]
        duration: chrono::Duration,
        #[arg(long)]
        by: String,
        #[command(flatten)]
        at: AlertsAt,
    },
}

fn parse_state(s: &str) -> Result<AlertState, String> {
    s.parse().map_err(|e: model::ModelError| e.to_string())
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse().map_err(|e: model::ModelError| e.to_string())
}

/// Opens the alerts of `--store`/`--accounts`.
pub async fn open(store: Option<&str>, accounts: Option<&Path>) -> anyhow::Result<Arc<SqliteAlerts>> {
    let path = crate::user::accounts_path(store, accounts)?;
    if !path.exists() {
        bail!("no SQLite file at {}: check --store or --accounts", path.display());
    }
    Ok(Arc::new(SqliteAlerts::open(&path).await.with_context(|| format!("opening the alerts in {}", path.display()))?))
}

/// Loads a rules file (webhook tokens from the environment) and opens where alerts live.
pub async fn setup(rules: &Path, store: &str, accounts: Option<&Path>) -> anyhow::Result<Alerting> {
    let set = RuleSet::load(rules, &|k| std::env::var(k).ok())?;
    let path = crate::user::accounts_path(Some(store), accounts)?;
    let alerts =
        SqliteAlerts::open(&path).await.with_context(|| format!("opening the alerts in {}", path.display()))?;
    let works = SqliteWorks::open(&path)
        .await
        .with_context(|| format!("opening the planned works register in {}", path.display()))?;
    let states = SqliteDetectorStates::open(&path)
        .await
        .with_context(|| format!("opening the detector states in {}", path.display()))?;
    Ok(Alerting { rules: set, store: Arc::new(alerts), works: Some(Arc::new(works)), states: Some(Arc::new(states)) })
}

/// The demo's rules (`rules/demo.toml`, compiled in).
pub fn demo_rules() -> anyhow::Result<RuleSet> {
    Ok(RuleSet::parse(Path::new("rules/demo.toml"), DEMO_RULES, &|k| std::env::var(k).ok())?)
}

/// The planned-works entries for the simulator's hydrant flushings (the utility's own
/// flushing programme), each planned in whole half hours around the flushing.
pub fn flushing_programme(events: &[sensor_sim::events::EventRecord]) -> Vec<store::NewWork> {
    events
        .iter()
        .filter(|e| e.kind == sensor_sim::events::EventKind::HydrantFlushing)
        .map(score::planned_flushing)
        .collect()
}

/// The demo's rules, with alerts in the demo's SQLite file, and the demo's flushing programme
/// in its planned-works register (entries already there from an earlier start are kept once).
pub async fn demo(db: &Path, flushing: &[store::NewWork]) -> anyhow::Result<Alerting> {
    let set = RuleSet::parse(Path::new("rules/demo.toml"), DEMO_RULES, &|k| std::env::var(k).ok())?;
    let alerts = SqliteAlerts::open(db).await.with_context(|| format!("opening the alerts in {}", db.display()))?;
    let works = SqliteWorks::open(db)
        .await
        .with_context(|| format!("opening the planned works register in {}", db.display()))?;
    if let (Some(from), Some(to)) = (flushing.iter().map(|w| w.from).min(), flushing.iter().map(|w| w.to).max()) {
        let known = works.works(from, to).await?;
        for w in flushing {
            if !known.iter().any(|k| k.target == w.target && k.from == w.from && k.to == w.to && k.kind == w.kind) {
                works.add_work(w, Utc::now()).await?;
            }
        }
    }
    let states = SqliteDetectorStates::open(db)
        .await
        .with_context(|| format!("opening the detector states in {}", db.display()))?;
    Ok(Alerting { rules: set, store: Arc::new(alerts), works: Some(Arc::new(works)), states: Some(Arc::new(states)) })
}

fn time(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub async fn run(args: AlertsArgs) -> anyhow::Result<()> {
    match args.command {
        AlertsCommand::List { state, severity, asset, since, limit, ja, at } => {
            let alerts = open(at.store.as_deref(), at.accounts.as_deref()).await?;
            let query = AlertQuery { state, severity, asset, from: since.map(|s| Utc::now() - s), to: None, limit };
            let mut out = String::from("id\tstate\tseverity\tasset\trule\tfirst_seen\tlast_seen\tcount\tmessage\n");
            for a in alerts.alerts(&query).await? {
                let message = if ja { &a.message_ja } else { &a.message_en };
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    a.id,
                    a.state,
                    a.severity,
                    a.asset,
                    a.rule,
                    time(a.first_seen),
                    time(a.last_seen),
                    a.count,
                    message.replace(['\t', '\n'], " ")
                ));
            }
            use std::io::Write;
            std::io::stdout().lock().write_all(out.as_bytes()).context("writing to stdout")?;
        }
        AlertsCommand::Ack { id, by, comment, at } => {
            let alerts = open(at.store.as_deref(), at.accounts.as_deref()).await?;
            let a = alerts.acknowledge(id, &by, &comment, Utc::now()).await?;
            println!("alert {} acknowledged by {by}: {}", a.id, a.message_en);
        }
        AlertsCommand::Resolve { id, note, by, at } => {
            let alerts = open(at.store.as_deref(), at.accounts.as_deref()).await?;
            let by = by.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "operator".to_owned());
            let a = alerts.resolve(id, &Resolution::Manual { by: by.clone(), note }, Utc::now()).await?;
            println!("alert {} resolved by {by}: {}", a.id, a.message_en);
        }
        AlertsCommand::Shelve { id, duration, by, at } => {
            let alerts = open(at.store.as_deref(), at.accounts.as_deref()).await?;
            let now = Utc::now();
            let a = alerts.shelve(id, now + duration, &by, now).await?;
            println!("alert {} shelved until {}", a.id, time(now + duration));
        }
    }
    Ok(())
}
