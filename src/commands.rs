//! The commands, each a few lines of wiring.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use collector::{CollectorConfig, WriterOptions, config::Source};
use model::{DeviceId, PointName, Value};
use sensor_sim::{SimOptions, Simulation};
use store::{RangeQuery, Store};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::cli::{Cli, Command, Format};
use crate::shutdown;

/// How long the parts get to finish after a shutdown signal before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(4000);

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Demo {
                http,
                data_dir,
                modbus,
                seed,
            } => demo(http, &data_dir, modbus, seed).await,
            Command::Sim {
                listen,
                seed,
                time_scale,
                emit_collector_config,
            } => sim(listen, seed, time_scale, emit_collector_config).await,
            Command::Collect { config, store } => collect(&config, &store).await,
            Command::Serve {
                store,
                http,
                config,
            } => serve(&store, http, config.as_deref()).await,
            Command::Readings {
                store,
                device,
                point,
                since,
                format,
                limit,
            } => readings(&store, &device, &point, since, format, limit).await,
            // CPU-bound and short: it runs on this thread, nothing else is on the runtime.
            Command::Risk { command } => crate::risk::run(command),
        }
    })
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the {what}"))
}

/// Waits for a task, but not past the grace period after shutdown began.
async fn join<T>(
    name: &str,
    task: tokio::task::JoinHandle<T>,
    deadline: tokio::time::Instant,
) -> Option<T> {
    match tokio::time::timeout_at(deadline, task).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            warn!(part = name, error = %e, "task ended abnormally");
            None
        }
        Err(_) => {
            warn!(part = name, "did not stop in time");
            None
        }
    }
}

async fn demo(
    http: std::net::SocketAddr,
    data_dir: &Path,
    modbus: std::net::SocketAddr,
    seed: u64,
) -> anyhow::Result<()> {
    let cancel = shutdown::on_signal();
    let db = data_dir.join("mizumori.sqlite");
    let store: Arc<dyn Store> = Arc::new(
        store::SqliteStore::open(&db)
            .await
            .with_context(|| format!("opening the embedded store {}", db.display()))?,
    );

    let sim_listener = bind(modbus, "simulated devices").await?;
    let sim_addr = sim_listener.local_addr()?;
    let simulation = Simulation::demo(SimOptions {
        seed,
        ..SimOptions::default()
    })?;
    let devices = simulation.collector_config(sim_addr);
    let sources = devices
        .iter()
        .map(|_| Source {
            file: "<demo>".into(),
            line: 0,
        })
        .collect();
    let config = CollectorConfig {
        devices: devices.clone(),
        sources,
    };

    let http_listener = bind(http, "dashboard").await?;
    let url = format!("http://{}/", http_listener.local_addr()?);

    let sim_task = tokio::spawn(simulation.run(sim_listener, cancel.clone()));
    let collector_task = tokio::spawn(collector::run(
        config,
        store.clone(),
        WriterOptions::default(),
        cancel.clone(),
    ));
    let state = dashboard::AppState::new(store.clone()).with_units(&devices);
    let http_task = tokio::spawn(dashboard::serve(http_listener, state, cancel.clone()));

    println!("Mizumori demo is running.");
    println!("  dashboard:        {url}");
    println!("  embedded store:   sqlite://{}", db.display());
    println!(
        "  simulated Modbus: {sim_addr} (unit 1 = pump station ps01, unit 2 = flow meter fm01)"
    );
    println!("Press Ctrl-C to stop.");

    cancel.cancelled().await;
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    // The collector first: it writes what it still holds while the store is open.
    let collected = join("collector", collector_task, deadline).await;
    join("dashboard", http_task, deadline).await;
    join("simulator", sim_task, deadline).await;
    match collected {
        Some(Err(e)) => Err(e).context("collector"),
        _ => {
            info!("stopped");
            Ok(())
        }
    }
}

async fn sim(
    listen: std::net::SocketAddr,
    seed: u64,
    time_scale: f64,
    emit: bool,
) -> anyhow::Result<()> {
    let simulation = Simulation::demo(SimOptions {
        seed,
        time_scale,
        ..SimOptions::default()
    })?;
    if emit {
        print!("{}", simulation.collector_config_toml(listen));
        return Ok(());
    }
    let cancel = shutdown::on_signal();
    let listener = bind(listen, "simulated devices").await?;
    println!(
        "Simulated devices on {} (Ctrl-C to stop).",
        listener.local_addr()?
    );
    simulation.run(listener, cancel).await?;
    Ok(())
}

async fn collect(config_path: &Path, store_url: &str) -> anyhow::Result<()> {
    // Validate the configuration before touching the store: a bad file changes nothing.
    let config = CollectorConfig::load(config_path)?;
    let store = store::open(store_url)
        .await
        .with_context(|| format!("opening the store {store_url}"))?;
    info!(store = %store.describe(), devices = config.devices.len(), "collecting");
    let cancel = shutdown::on_signal();
    collector::run(config, store, WriterOptions::default(), cancel).await?;
    Ok(())
}

async fn serve(
    store_url: &str,
    http: std::net::SocketAddr,
    config: Option<&Path>,
) -> anyhow::Result<()> {
    let devices = match config {
        Some(path) => CollectorConfig::load(path)?.devices,
        None => Vec::new(),
    };
    let store = store::open(store_url)
        .await
        .with_context(|| format!("opening the store {store_url}"))?;
    let listener = bind(http, "dashboard").await?;
    println!(
        "Dashboard on http://{}/ (Ctrl-C to stop).",
        listener.local_addr()?
    );
    let cancel = shutdown::on_signal();
    dashboard::serve(
        listener,
        dashboard::AppState::new(store).with_units(&devices),
        cancel,
    )
    .await?;
    Ok(())
}

/// A CSV field: quoted when it holds a separator, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

async fn readings(
    store_url: &str,
    device: &str,
    point: &str,
    since: chrono::Duration,
    format: Format,
    limit: usize,
) -> anyhow::Result<()> {
    let device = DeviceId::new(device).context("--device")?;
    let point = PointName::new(point).context("--point")?;
    if let store::StoreUrl::Sqlite { path } = store_url.parse()? {
        if !path.exists() {
            bail!(
                "no embedded store at {}: check --store (the demo writes DATA_DIR/mizumori.sqlite)",
                path.display()
            );
        }
    }
    let store = store::open(store_url)
        .await
        .with_context(|| format!("opening the store {store_url}"))?;
    let to = chrono::Utc::now() + chrono::Duration::seconds(1);
    let rows = store
        .range(&RangeQuery {
            device,
            point,
            from: to - since,
            to,
            limit,
        })
        .await?;
    let mut out = String::new();
    match format {
        Format::Csv => {
            out.push_str("time,device,point,value,quality\n");
            for r in &rows {
                let value = match &r.value {
                    Value::Number(v) => v.to_string(),
                    Value::Text(t) => csv_field(t),
                    Value::Absent => String::new(),
                };
                out.push_str(&format!(
                    "{},{},{},{},{}\n",
                    r.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    r.device,
                    r.point,
                    value,
                    r.quality
                ));
            }
        }
        Format::Json => {
            out = serde_json::to_string_pretty(&rows)?;
            out.push('\n');
        }
    }
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .context("writing to stdout")?;
    Ok(())
}
