//! The commands, each a few lines of wiring.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use collector::{CollectorConfig, CollectorOptions, Metrics, config::Source};
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
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Demo { http, data_dir, modbus, seed, demo_password } => {
                demo(http, &data_dir, modbus, seed, demo_password).await
            }
            Command::Sim { scenario, listen, seed, time_scale, start, scale, emit_collector_config, events_out } => {
                let options = SimOptions { seed, time_scale, start, ..SimOptions::default() };
                sim(scenario.as_deref(), listen, options, scale, emit_collector_config, events_out.as_deref()).await
            }
            Command::Collect { config, store, buffer_dir, metrics, rules, accounts } => {
                // Check the configuration before opening anything: a bad file changes nothing,
                // not even by creating an empty alerts file.
                let loaded = CollectorConfig::load(&config)?;
                let alerting = match rules {
                    Some(rules) => Some(crate::alerts::setup(&rules, &store, accounts.as_deref()).await?),
                    None => None,
                };
                collect(&config, loaded, &store, buffer_dir.as_deref(), metrics, alerting).await
            }
            Command::Serve { store, http, config, accounts, secure_cookies } => {
                let accounts = crate::user::accounts_path(Some(&store), accounts.as_deref())?;
                let auth = dashboard::AuthConfig { secure_cookies, ..Default::default() };
                serve(&store, http, config.as_deref(), &accounts, auth).await
            }
            Command::User(args) => crate::user::run(args).await,
            Command::Alerts(args) => crate::alerts::run(args).await,
            Command::Works(args) => crate::works::run(args).await,
            Command::Readings { store, device, point, since, format, limit } => {
                readings(&store, &device, &point, since, format, limit).await
            }
            // CPU-bound: it runs on this thread, nothing else is on the runtime.
            Command::Risk { command } => crate::risk::run(command).await,
            Command::Sewer { command } => crate::sewer::run(command).await,
            Command::Plan(args) => crate::plan::run(args).await,
        }
    })
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} for the {what}"))
}

/// Waits for a task, but not past the grace period after shutdown began.
async fn join<T>(name: &str, task: tokio::task::JoinHandle<T>, deadline: tokio::time::Instant) -> Option<T> {
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
    demo_password: Option<String>,
) -> anyhow::Result<()> {
    let cancel = shutdown::on_signal();
    let db = data_dir.join("mizumori.sqlite");
    let store: Arc<dyn Store> = Arc::new(
        store::SqliteStore::open(&db).await.with_context(|| format!("opening the embedded store {}", db.display()))?,
    );
    let accounts = crate::user::open(&db).await?;
    let demo_password = crate::user::demo_users(&accounts, demo_password).await?;
    let risk = crate::risk_demo::open(&db).await?;
    let sewer = crate::sewer::open(&db).await?;
    let districts = crate::districts::of_scenario(&sensor_sim::Scenario::demo()?);

    let simulation = Simulation::demo(SimOptions { seed, ..SimOptions::default() })?;
    let listeners = simulation.bind(modbus).await?;
    let addresses =
        listeners.iter().map(|(e, l)| Ok((*e, l.local_addr()?))).collect::<std::io::Result<HashMap<_, _>>>()?;
    let devices = simulation.collector_config(&addresses);
    let sources = devices.iter().map(|_| Source { file: "<demo>".into(), line: 0 }).collect();
    let config = CollectorConfig { devices: devices.clone(), sources, buffer: Default::default() };

    let http_listener = bind(http, "dashboard").await?;
    let url = format!("http://{}/", http_listener.local_addr()?);

    let sim_summary = format!(
        "{} devices of scenario {:?} on {} endpoints, the first at {}",
        devices.len(),
        simulation.name(),
        addresses.len(),
        addresses.get(&0).map(ToString::to_string).unwrap_or_default()
    );
    // The simulator's hydrant flushings are the demo city's own flushing programme.
    let flushing = crate::alerts::flushing_programme(simulation.events());
    let sim_task = tokio::spawn(simulation.run(listeners, cancel.clone()));
    let metrics = Arc::new(Metrics::default());
    let options = CollectorOptions::new(data_dir.join("buffer"));
    let alerting = crate::alerts::demo(&db, &flushing).await?;
    let alert_store = alerting.store.clone();
    let collector_task = tokio::spawn(collector::run_with_alerts(
        config,
        store.clone(),
        options,
        metrics.clone(),
        Some(alerting),
        cancel.clone(),
    ));
    let state = dashboard::AppState::new(store.clone())
        .with_units(&devices)
        .with_accounts(accounts)
        .with_alerts(alert_store)
        .with_settings(Arc::new(store::SqliteSettings::open(&db).await?))
        .with_risk(Arc::new(risk.clone()))
        .with_sewer(Arc::new(sewer.clone()))
        .with_districts(districts);
    let router = dashboard::app(state).merge(metrics_router(metrics));
    let shutdown = cancel.clone();
    let http_task = tokio::spawn(async move {
        axum::serve(http_listener, router).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
    });

    println!("Mizumori demo is running.");
    println!("  dashboard:        {url}");
    println!("  embedded store:   sqlite://{}", db.display());
    println!("  alerts:           rules/demo.toml; `mizumori alerts list --store sqlite://{}`", db.display());
    println!("  users:            viewer, crew, engineer, planner, admin");
    println!("  password:         {demo_password}");
    println!("  simulated Modbus: {sim_summary}");
    println!("Press Ctrl-C to stop.");
    // After the URL: ranking the synthetic city takes a while, and the pages work without it.
    crate::risk_demo::spawn(risk, store.clone(), crate::risk_demo::today_in_japan());
    crate::sewer::spawn_demo(sewer, crate::risk_demo::today_in_japan());

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
    scenario: Option<&Path>,
    listen: std::net::SocketAddr,
    options: SimOptions,
    scale: u32,
    emit: bool,
    events_out: Option<&Path>,
) -> anyhow::Result<()> {
    let scenario = match scenario {
        Some(path) => sensor_sim::Scenario::load(path).map_err(sensor_sim::SimError::Scenario)?,
        None => sensor_sim::Scenario::demo()?,
    };
    let simulation = Simulation::from_scenario(&scenario.replicate(scale), options)?;
    if let Some(path) = events_out {
        let mut text = String::new();
        for e in simulation.events() {
            text.push_str(&serde_json::to_string(e)?);
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("writing events to {}", path.display()))?;
    }
    if emit {
        print!("{}", simulation.collector_config_toml(&simulation.planned_addresses(listen)?));
        return Ok(());
    }
    let cancel = shutdown::on_signal();
    let listeners = simulation.bind(listen).await?;
    let first = listeners.first().map(|(_, l)| l.local_addr()).transpose()?;
    println!(
        "Simulated devices of scenario {:?}: {} devices on {} endpoints from {} (Ctrl-C to stop).",
        simulation.name(),
        simulation.devices().len(),
        listeners.len(),
        first.map(|a| a.to_string()).unwrap_or_default()
    );
    simulation.run(listeners, cancel).await?;
    Ok(())
}

/// `/metrics`: the collector's counters in the Prometheus text format.
fn metrics_router(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render()) }
        }),
    )
}

async fn collect(
    config_path: &Path,
    config: CollectorConfig,
    store_url: &str,
    buffer_dir: Option<&Path>,
    metrics_addr: Option<std::net::SocketAddr>,
    alerting: Option<collector::Alerting>,
) -> anyhow::Result<()> {
    let mut options = CollectorOptions::new("mizumori-buffer");
    config.buffer.apply(config_path.parent().unwrap_or(Path::new(".")), &mut options);
    if let Some(dir) = buffer_dir {
        options.buffer_dir = dir.to_owned();
    }
    let store = store::open(store_url).await.with_context(|| format!("opening the store {store_url}"))?;
    info!(store = %store.describe(), devices = config.devices.len(), buffer = %options.buffer_dir.display(), "collecting");
    let cancel = shutdown::on_signal();
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = metrics_addr {
        let listener = bind(addr, "metrics").await?;
        let router = metrics_router(metrics.clone());
        let shutdown = cancel.clone();
        tokio::spawn(async move {
            axum::serve(listener, router).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
        });
        info!(%addr, "metrics at /metrics");
    }
    if let Some(a) = &alerting {
        info!(rules = a.rules.rules.len(), webhooks = a.rules.webhooks.len(), "alert rules loaded");
    }
    collector::run_with_alerts(config, store, options, metrics, alerting, cancel).await?;
    Ok(())
}

async fn serve(
    store_url: &str,
    http: std::net::SocketAddr,
    config: Option<&Path>,
    accounts_path: &Path,
    auth: dashboard::AuthConfig,
) -> anyhow::Result<()> {
    let devices = match config {
        Some(path) => CollectorConfig::load(path)?.devices,
        None => Vec::new(),
    };
    let store = store::open(store_url).await.with_context(|| format!("opening the store {store_url}"))?;
    let accounts = crate::user::open(accounts_path).await?;
    if store::AccountStore::users(&*accounts).await?.is_empty() {
        warn!(
            accounts = %accounts_path.display(),
            "no users yet: nobody can log in; add one with `mizumori user add NAME --role admin`"
        );
    }
    let listener = bind(http, "dashboard").await?;
    println!("Dashboard on http://{}/ (Ctrl-C to stop).", listener.local_addr()?);
    let cancel = shutdown::on_signal();
    // Risk rankings live beside the accounts: in the embedded file, or a file of their own.
    let risk = crate::risk_demo::open(accounts_path).await?;
    let sewer = crate::sewer::open(accounts_path).await?;
    // Alerts too: the collector writes them to the same file (`collect --rules`).
    let alerts = store::SqliteAlerts::open(accounts_path)
        .await
        .with_context(|| format!("opening the alerts in {}", accounts_path.display()))?;
    let state = dashboard::AppState::new(store)
        .with_units(&devices)
        .with_accounts(accounts)
        .with_alerts(Arc::new(alerts))
        .with_settings(Arc::new(store::SqliteSettings::open(accounts_path).await?))
        .with_risk(Arc::new(risk))
        .with_sewer(Arc::new(sewer))
        .with_auth(auth);
    dashboard::serve(listener, state, cancel).await?;
    Ok(())
}

/// A CSV field: quoted when it holds a separator, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
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
            bail!("no embedded store at {}: check --store (the demo writes DATA_DIR/mizumori.sqlite)", path.display());
        }
    }
    let store = store::open(store_url).await.with_context(|| format!("opening the store {store_url}"))?;
    let to = chrono::Utc::now() + chrono::Duration::seconds(1);
    let rows = store.range(&RangeQuery { device, point, from: to - since, to, limit }).await?;
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
    std::io::stdout().lock().write_all(out.as_bytes()).context("writing to stdout")?;
    Ok(())
}
