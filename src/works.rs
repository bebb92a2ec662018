//! `mizumori works add|list|remove`: the planned-works register that the alert detectors read
//! (flushing and valve work explain a district's inflow rise; pump maintenance explains a
//! pump's status bits). Entries live beside the alerts, in the same SQLite file.

use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use store::{NewWork, SqliteWorks, WorkKind, WorksStore};

use crate::alerts::AlertsAt;

#[derive(Debug, Args)]
pub struct WorksArgs {
    #[command(subcommand)]
    pub command: WorksCommand,
}

#[derive(Debug, Subcommand)]
pub enum WorksCommand {
    /// Enter planned work: a hydrant flushing in dma03 from 09:00 to 11:00 JST, a pump stop...
    Add {
        /// The district or asset, as alerts name it (dma03, ps01).
        #[arg(long)]
        target: String,
        /// flushing, valve_work, pump_maintenance or other
        #[arg(long, value_parser = parse_kind)]
        kind: WorkKind,
        /// Start, RFC 3339 with its offset (2026-04-01T09:00:00+09:00), or "now".
        #[arg(long, value_parser = parse_time)]
        from: DateTime<Utc>,
        /// End, RFC 3339 with its offset; or give --for.
        #[arg(long, value_parser = parse_time, conflicts_with = "duration", required_unless_present = "duration")]
        to: Option<DateTime<Utc>>,
        /// Length instead of --to, e.g. 2h.
        #[arg(long = "for", value_parser = crate::cli::parse_duration)]
        duration: Option<chrono::Duration>,
        /// Who planned it.
        #[arg(long)]
        by: String,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        at: AlertsAt,
    },
    /// List planned work that has not ended (all of it with --all), by start time.
    List {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        at: AlertsAt,
    },
    /// Remove an entry (cancelled, or entered by mistake).
    Remove {
        id: i64,
        #[command(flatten)]
        at: AlertsAt,
    },
}

fn parse_kind(s: &str) -> Result<WorkKind, String> {
    s.parse()
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if s == "now" {
        return Ok(Utc::now());
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?}: {e}; write RFC 3339 with an offset, e.g. 2026-04-01T09:00:00+09:00"))
}

async fn open(at: &AlertsAt) -> anyhow::Result<Arc<SqliteWorks>> {
    let path = crate::user::accounts_path(at.store.as_deref(), at.accounts.as_deref())?;
    if !path.exists() {
        bail!("no SQLite file at {}: check --store or --accounts", path.display());
    }
    let works = SqliteWorks::open(&path)
        .await
        .with_context(|| format!("opening the planned works register in {}", path.display()))?;
    Ok(Arc::new(works))
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub async fn run(args: WorksArgs) -> anyhow::Result<()> {
    match args.command {
        WorksCommand::Add { target, kind, from, to, duration, by, note, at } => {
            let to = match (to, duration) {
                (Some(to), _) => to,
                (None, Some(d)) => from + d,
                (None, None) => bail!("give the end of the work with --to or its length with --for"),
            };
            let new = NewWork { target, kind, from, to, by, note };
            // Checked before the file is opened, so a typo never needs a store to be reported.
            new.check()?;
            let works = open(&at).await?;
            let w = works.add_work(&new, Utc::now()).await?;
            println!(
                "planned work {} entered: {} on {} from {} to {}",
                w.id,
                w.kind,
                w.target,
                time(w.from),
                time(w.to)
            );
        }
        WorksCommand::List { all, at } => {
            let works = open(&at).await?;
            let from = if all { DateTime::<Utc>::MIN_UTC } else { Utc::now() };
            let mut out = String::from("id\tkind\ttarget\tfrom\tto\tby\tnote\n");
            for w in works.works(from, DateTime::<Utc>::MAX_UTC).await? {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    w.id,
                    w.kind,
                    w.target,
                    time(w.from),
                    time(w.to),
                    w.by.replace(['\t', '\n'], " "),
                    w.note.unwrap_or_default().replace(['\t', '\n'], " ")
                ));
            }
            use std::io::Write;
            std::io::stdout().lock().write_all(out.as_bytes()).context("writing to stdout")?;
        }
        WorksCommand::Remove { id, at } => {
            let works = open(&at).await?;
            if !works.remove_work(id).await? {
                bail!("no planned work {id}: see `mizumori works list --all`");
            }
            println!("planned work {id} removed");
        }
    }
    Ok(())
}
