//! Scores the demo's alert rules and detectors against the simulator's ground truth:
//! `cargo run --release --example alerts_score -- [DAYS] [SEED]` (bench/alerts_score.sh).

use mizumori::alerts::score::{self, ScoreOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // RUST_LOG=collector::alerts::detect=debug shows the detectors' decisions (stderr).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let mut args = std::env::args().skip(1);
    let days: f64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(7.0);
    let seed: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1);
    // The demo city with the scored week's leak growth and impeller wear added.
    let scenario = score::scored_scenario()?;
    let rules = mizumori::alerts::demo_rules()?;
    let dir = tempfile::tempdir()?;
    // Monday 08:00 JST: the scenario's scripted events (flushing at +1 h, a burst at +2.5 h, a
    // pump trip at +4 h) fall in a working day, and a week has its weekend.
    let start = "2026-04-05T23:00:00Z".parse()?;
    // Both modes: with the planned-works register (the flushing programme entered), and
    // without (duration and time of day decide), unless MODES says only one.
    let modes = std::env::var("MODES").unwrap_or_else(|_| "register none".to_owned());
    for mode in modes.split_whitespace() {
        let planned_works = match mode {
            "register" => true,
            "none" => false,
            other => anyhow::bail!("MODES: unknown mode {other:?}; use register and/or none"),
        };
        let store_path = dir.path().join(format!("alerts-{mode}.sqlite"));
        let opts = ScoreOptions { days, seed, start, poll_s: 1, store_path, planned_works };
        let started = std::time::Instant::now();
        let s = score::run(&scenario, &rules, &opts).await?;
        println!("scenario demo, seed {seed}, start {start}, {days} simulated days, poll every {} s", opts.poll_s);
        println!("{}", s.table());
        print_verbose(&s);
        eprintln!("run ({mode}) took {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}

fn print_verbose(s: &score::Score) {
    if std::env::var_os("SCORE_VERBOSE").is_some() {
        for e in &s.events {
            println!("event {:?} {} {:?} {} .. {} mag {:.1}", e.kind, e.target, e.pump, e.start, e.end, e.magnitude);
        }
        for a in &s.alerts {
            println!(
                "alert {} {} {} {} .. {:?} value {:?}",
                a.rule, a.severity, a.asset, a.first_seen, a.resolved_at, a.value
            );
        }
    }
}
