//! `mizumori plan`: a budget-constrained multi-year renewal plan from a ranking, wired to
//! `analytics::plan`.

use std::io::Write;
use std::path::{Path, PathBuf};

use analytics::plan::{Budget, Deadline, Plan, PlanParams, PlanPipe, Scheduled, UnitCosts, plan, read_ranking_csv};
use anyhow::{Context, bail};
use clap::Args;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// A ranking CSV written by `mizumori risk rank`.
    #[arg(long, conflicts_with_all = ["store", "accounts"])]
    ranking: Option<PathBuf>,
    /// Or plan from the newest ranking run saved in this store (sqlite://PATH).
    #[arg(long, env = "MIZUMORI_STORE")]
    store: Option<String>,
    /// With an InfluxDB store: the SQLite file that holds the rankings.
    #[arg(long, env = "MIZUMORI_ACCOUNTS")]
    accounts: Option<PathBuf>,
    /// Yearly budget: yen (800000000, 8億, 800M) or length (5km).
    #[arg(long, value_parser = Budget::parse)]
    budget: Budget,
    /// A second budget to compare with the first (what-if), same forms.
    #[arg(long, value_parser = Budget::parse)]
    compare: Option<Budget>,
    /// Years of the plan.
    #[arg(long, default_value_t = 10)]
    years: u32,
    /// First fiscal year (年度, April–March); default: the next one.
    #[arg(long)]
    first_year: Option<i32>,
    /// Policy: every main of a material renewed by a fiscal year, e.g. CI:2035 (repeatable).
    #[arg(long = "deadline", value_parser = Deadline::parse)]
    deadlines: Vec<Deadline>,
    /// Policy: mains past their material's renewal-standard years (更新基準年数) first.
    #[arg(long)]
    standard_years_first: bool,
    /// Yearly growth of an unrenewed main's expected breaks.
    #[arg(long, default_value_t = 0.03)]
    hazard_growth: f64,
    /// Breaks per km a year of a renewed main.
    #[arg(long, default_value_t = 0.005)]
    new_rate: f64,
    /// Unit costs (CSV `max_diameter_mm,yen_per_m`, ascending; the last row covers larger
    /// mains); default: order-of-magnitude figures in docs/analytics.md.
    #[arg(long)]
    unit_costs: Option<PathBuf>,
    /// The schedule: one row per main to renew (CSV with a UTF-8 BOM, for Excel).
    #[arg(long)]
    out: PathBuf,
    /// Also write the yearly summary (CSV with a UTF-8 BOM).
    #[arg(long)]
    summary: Option<PathBuf>,
}

/// The fiscal year (April–March) after the one `today` is in.
fn next_fiscal_year(today: chrono::NaiveDate) -> i32 {
    use chrono::Datelike;
    if today.month() >= 4 { today.year() + 1 } else { today.year() }
}

pub async fn run(args: PlanArgs) -> anyhow::Result<()> {
    let pipes = load(&args).await?;
    anyhow::ensure!(!pipes.is_empty(), "the ranking has no mains");
    let first_year = args.first_year.unwrap_or_else(|| {
        // JST has no daylight saving: a fixed offset is exact.
        let jst = chrono::FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset");
        next_fiscal_year(chrono::Utc::now().with_timezone(&jst).date_naive())
    });
    let unit_costs = match &args.unit_costs {
        Some(path) => read_unit_costs(path)?,
        None => UnitCosts::default(),
    };
    let params = |budget| PlanParams {
        unit_costs: unit_costs.clone(),
        deadlines: args.deadlines.clone(),
        standard_years_first: args.standard_years_first,
        hazard_growth: args.hazard_growth,
        new_rate: args.new_rate,
        ..PlanParams::new(budget, args.years, first_year)
    };
    let mut plans = vec![plan(&pipes, &params(args.budget))?];
    if let Some(other) = args.compare {
        plans.push(plan(&pipes, &params(other))?);
    }
    write_schedule(&args.out, &pipes, &plans)?;
    if let Some(path) = &args.summary {
        write_summary(path, &plans)?;
    }
    print!("{}", summary_table(&plans));
    println!("schedule of {} mains written to {}", plans[0].schedule.len(), args.out.display());
    Ok(())
}

async fn load(args: &PlanArgs) -> anyhow::Result<Vec<PlanPipe>> {
    if let Some(path) = &args.ranking {
        return Ok(read_ranking_csv(path)?);
    }
    if args.store.is_none() && args.accounts.is_none() {
        bail!("name a ranking: --ranking FILE (from `mizumori risk rank`) or --store sqlite://PATH");
    }
    let path = crate::user::accounts_path(args.store.as_deref(), args.accounts.as_deref())?;
    let risk = crate::risk_demo::open(&path).await?;
    use store::RiskStore;
    let run = risk.latest_run().await?.with_context(|| format!("no ranking run saved in {}", path.display()))?;
    let query = store::risk::RiskQuery { limit: u64::MAX >> 1, ..Default::default() };
    let page = risk.rows(run.id, &query).await?;
    Ok(page.rows.iter().map(PlanPipe::from_risk_row).collect())
}

fn read_unit_costs(path: &Path) -> anyhow::Result<UnitCosts> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bands = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let line = n + 2;
        let record = record.with_context(|| format!("{}: line {line}", path.display()))?;
        let number = |i: usize, name: &str| -> anyhow::Result<f64> {
            let s = record.get(i).unwrap_or("").trim();
            let v: f64 =
                s.parse().with_context(|| format!("{}: line {line}, {name}: {s:?} is not a number", path.display()))?;
            anyhow::ensure!(v > 0.0, "{}: line {line}, {name}: must be more than zero", path.display());
            Ok(v)
        };
        bands.push((number(0, "max_diameter_mm")?, number(1, "yen_per_m")?));
    }
    anyhow::ensure!(
        !bands.is_empty() && bands.windows(2).all(|w| w[0].0 < w[1].0),
        "{}: need at least one row, diameters ascending",
        path.display()
    );
    if let Some(last) = bands.last_mut() {
        last.0 = f64::INFINITY;
    }
    Ok(UnitCosts { bands })
}

fn bom_writer(path: &Path) -> anyhow::Result<csv::Writer<std::fs::File>> {
    let mut file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all("\u{feff}".as_bytes())?;
    Ok(csv::Writer::from_writer(file))
}

fn write_schedule(path: &Path, pipes: &[PlanPipe], plans: &[Plan]) -> anyhow::Result<()> {
    let mut w = bom_writer(path)?;
    let mut head = vec!["budget"];
    head.extend(Scheduled::CELL_NAMES);
    head.extend(["reason", "expected_breaks"]);
    w.write_record(&head)?;
    for p in plans {
        let budget = p.params.budget.to_string();
        for s in &p.schedule {
            let mut row = vec![budget.clone()];
            row.extend(s.cells(pipes));
            row.extend([s.reason.code().to_owned(), format!("{:.4}", s.expected_breaks)]);
            w.write_record(&row)?;
        }
    }
    w.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn write_summary(path: &Path, plans: &[Plan]) -> anyhow::Result<()> {
    let mut w = bom_writer(path)?;
    w.write_record([
        "budget",
        "fiscal_year",
        "mains",
        "km_renewed",
        "cost_yen",
        "breaks_without",
        "breaks_with",
        "breaks_avoided",
        "mean_age_years",
        "km_past_legal_life",
        "deadline_shortfall_km",
    ])?;
    for p in plans {
        for y in &p.years {
            w.write_record([
                p.params.budget.to_string(),
                y.fiscal_year.to_string(),
                y.mains.to_string(),
                format!("{:.3}", y.km_renewed),
                format!("{:.0}", y.cost_yen),
                format!("{:.2}", y.breaks_without),
                format!("{:.2}", y.breaks_with),
                format!("{:.2}", y.breaks_avoided()),
                format!("{:.1}", y.mean_age_years),
                format!("{:.1}", y.km_past_legal_life),
                format!("{:.2}", y.deadline_shortfall_km),
            ])?;
        }
    }
    w.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The yearly figures, one block of columns per budget (Markdown).
fn summary_table(plans: &[Plan]) -> String {
    let mut out = String::from("| FY |");
    let mut rule = String::from("|---|");
    for p in plans {
        let b = p.params.budget;
        out += &format!(" km ({b}) | ¥M | breaks avoided | mean age | km > 40 y |");
        rule += "---:|---:|---:|---:|---:|";
    }
    out += "\n";
    out += &rule;
    out += "\n";
    for (i, y) in plans[0].years.iter().enumerate() {
        out += &format!("| {} |", y.fiscal_year);
        for p in plans {
            let y = &p.years[i];
            out += &format!(
                " {:.2} | {:.0} | {:.2} | {:.1} | {:.1} |",
                y.km_renewed,
                y.cost_yen / 1e6,
                y.breaks_avoided(),
                y.mean_age_years,
                y.km_past_legal_life
            );
        }
        out += "\n";
    }
    out += "| total |";
    for p in plans {
        out += &format!(" {:.2} | {:.0} | {:.2} | | |", p.km_renewed(), p.cost_yen() / 1e6, p.breaks_avoided());
    }
    out += "\n";
    for p in plans {
        for (d, km) in &p.missed_deadlines {
            out += &format!(
                "warning: with {} {km:.2} km of {} are still in service after FY{}, the policy's deadline\n",
                p.params.budget,
                d.material.code(),
                d.by_fiscal_year
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    #[test]
    fn the_next_fiscal_year_starts_in_april() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(super::next_fiscal_year(d(2026, 11, 27)), 2027);
        assert_eq!(super::next_fiscal_year(d(2027, 3, 31)), 2027);
        assert_eq!(super::next_fiscal_year(d(2027, 4, 1)), 2028);
    }
}
