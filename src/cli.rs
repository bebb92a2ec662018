//! Command-line interface definitions.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Mizumori (水守): watch a water and sewer network live and decide which pipes to renew first.
#[derive(Debug, Parser)]
#[command(name = "mizumori", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole flow in one process: simulated devices, collector, embedded store, dashboard.
    Demo {
        /// Address of the dashboard.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// Where the embedded store (mizumori.sqlite) lives; kept between runs.
        #[arg(long, default_value = "mizumori-data")]
        data_dir: PathBuf,
        /// Address the simulated devices listen on (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        modbus: SocketAddr,
        /// Seed of the simulation's random draws.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Password of the demo users (viewer, crew, engineer, planner, admin); random and
        /// printed at start-up when not given.
        #[arg(long, env = "MIZUMORI_DEMO_PASSWORD")]
        demo_password: Option<String>,
    },
    /// Serve simulated field devices over Modbus TCP.
    Sim {
        /// Scenario file (TOML); default: the built-in demo city (sensor-sim/scenarios/demo.toml).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Address of endpoint 0; endpoint N listens on this port + N (port 0: free ports).
        #[arg(long, default_value = "127.0.0.1:5020")]
        listen: SocketAddr,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Simulated seconds per real second.
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// Simulated start time (RFC 3339); default: the scenario's, else now.
        #[arg(long)]
        start: Option<chrono::DateTime<chrono::Utc>>,
        /// Run this many copies of the scenario in one process (a load test: 24 copies of the
        /// demo city are about 1,000 devices).
        #[arg(long, default_value_t = 1)]
        scale: u32,
        /// Print a collector configuration for every point of every device, and exit.
        #[arg(long)]
        emit_collector_config: bool,
        /// Write every event (scripted and random, with true start and end) as JSON lines.
        #[arg(long)]
        events_out: Option<PathBuf>,
    },
    /// Poll the devices of a configuration file and write readings to a store.
    Collect {
        /// Collector configuration (TOML with [[device]] tables).
        #[arg(long)]
        config: PathBuf,
        /// sqlite://PATH, influx://HOST:PORT/DATABASE or influxs://HOST:PORT/DATABASE[?ca_file=PEM]
        #[arg(long, env = "MIZUMORI_STORE")]
        store: String,
        /// Directory of the durable buffer (default: the config's [buffer] dir, else ./mizumori-buffer).
        #[arg(long)]
        buffer_dir: Option<PathBuf>,
        /// Serve Prometheus metrics at http://ADDR/metrics.
        #[arg(long)]
        metrics: Option<SocketAddr>,
        /// Alert rules (TOML); alerts go to the store's SQLite file, or to --accounts.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// SQLite file for alerts (and accounts) when the store is InfluxDB.
        #[arg(long, env = "MIZUMORI_ACCOUNTS")]
        accounts: Option<PathBuf>,
    },
    /// Serve the dashboard over a store.
    Serve {
        #[arg(long, env = "MIZUMORI_STORE")]
        store: String,
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// A collector configuration, to show engineering units next to values.
        #[arg(long)]
        config: Option<PathBuf>,
        /// SQLite file of the users (default: the store's file when it is sqlite://).
        #[arg(long, env = "MIZUMORI_ACCOUNTS")]
        accounts: Option<PathBuf>,
        /// Mark session cookies Secure: set when users reach the dashboard over HTTPS.
        #[arg(long, env = "MIZUMORI_SECURE_COOKIES")]
        secure_cookies: bool,
    },
    /// List, acknowledge, resolve and shelve alerts.
    Alerts(crate::alerts::AlertsArgs),
    /// Enter, list and remove planned works (flushing, valve work, pump maintenance).
    Works(crate::works::WorksArgs),
    /// Manage the dashboard's users.
    User(crate::user::UserArgs),
    /// Print the readings of one point: time,device,point,value,quality.
    Readings {
        #[arg(long, env = "MIZUMORI_STORE")]
        store: String,
        #[arg(long)]
        device: String,
        #[arg(long)]
        point: String,
        /// How far back, e.g. 90s, 10m, 2h, 7d.
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        since: chrono::Duration,
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        /// At most this many rows, oldest first.
        #[arg(long, default_value_t = 100_000)]
        limit: usize,
    },
    /// A multi-year renewal plan under a yearly budget (yen or km), from a ranking.
    Plan(crate::plan::PlanArgs),
    /// Pipe risk: rank mains, backtest the ranking, write the synthetic city.
    Risk {
        #[command(subcommand)]
        command: crate::risk::RiskCommand,
    },
    /// Sewer spans: deterioration curves from CCTV grades (緊急度), span ranking, synthetic sewers.
    Sewer {
        #[command(subcommand)]
        command: crate::sewer::SewerCommand,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

/// Parses `90s`, `10m`, `2h`, `7d` (a number and a unit).
pub fn parse_duration(s: &str) -> Result<chrono::Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| format!("{s:?}: add a unit: s, m, h or d"))?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| format!("{s:?}: expected a number before the unit, e.g. 10m"))?;
    let d = match unit {
        "s" => chrono::Duration::try_seconds(n),
        "m" => chrono::Duration::try_minutes(n),
        "h" => chrono::Duration::try_hours(n),
        "d" => chrono::Duration::try_days(n),
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use s, m, h or d")),
    };
    d.filter(|d| *d > chrono::Duration::zero()).ok_or_else(|| format!("{s:?}: out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(chrono::Duration::seconds(90)));
        assert_eq!(parse_duration("10m"), Ok(chrono::Duration::minutes(10)));
        assert_eq!(parse_duration("7d"), Ok(chrono::Duration::days(7)));
        for bad in ["", "10", "m", "10x", "0s", "-5m", "99999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
