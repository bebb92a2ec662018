//! The collector: configuration → poll plan → Modbus polling → decoding → durable buffer →
//! batched writes to the store.
//!
//! One task per connection (a device, or a gateway and the devices behind it) owns that
//! connection and has one request in flight on it (see `poll`). Every poll cycle's readings go
//! through a small channel to the appender, which writes them to the durable buffer on disk;
//! the forwarder reads the buffer in order and writes to the store, acknowledging only what the
//! store accepted (see `forward` and `buffer`). A store outage therefore fills the buffer, not
//! memory, and a crash or `kill -9` loses nothing that was appended.
//!
//! With alert rules (`run_with_alerts`), every appended cycle is also offered to the alert
//! engine (see `alerts`), which never holds up the appender.
//!
//! The collector never talks to the simulator except over Modbus TCP.

pub mod alerts;
pub mod buffer;
pub mod config;
mod error;
mod forward;
pub mod metrics;
pub mod plan;
mod poll;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use store::ReadingSink;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

pub use alerts::{Alerting, RuleSet, RulesErrors};
pub use buffer::WhenFull;
pub use config::{CollectorConfig, ConfigError, ConfigErrors};
pub use error::CollectorError;
pub use forward::CollectorOptions;
pub use metrics::Metrics;

/// Poll cycles that may wait between the pollers and the buffer.
const CHANNEL_CYCLES: usize = 256;

/// Polls every device of `config` and writes readings to `sink` until `cancel` fires; then
/// stops polling, appends what is in flight, forwards what the store will take, and returns.
pub async fn run(
    config: CollectorConfig,
    sink: Arc<dyn ReadingSink>,
    options: CollectorOptions,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> Result<(), CollectorError> {
    run_with_alerts(config, sink, options, metrics, None, cancel).await
}

/// [`run`], and evaluates the alert rules of `alerting` on every appended poll cycle.
pub async fn run_with_alerts(
    config: CollectorConfig,
    sink: Arc<dyn ReadingSink>,
    options: CollectorOptions,
    metrics: Arc<Metrics>,
    alerting: Option<Alerting>,
    cancel: CancellationToken,
) -> Result<(), CollectorError> {
    let alerts = match alerting {
        Some(a) => Some(alerts::start(a, metrics.clone(), cancel.clone()).await?),
        None => None,
    };
    let log =
        buffer::Log::open(&options.buffer_dir, options.buffer_max_bytes, options.when_full, options.fsync_interval)?;
    if log.depth() > 0 {
        info!(readings = log.depth(), dir = %options.buffer_dir.display(), "forwarding readings buffered before the last stop");
    }
    let shared = Arc::new(forward::Shared {
        log: Mutex::new(log),
        appended: Notify::new(),
        freed: Notify::new(),
        metrics: metrics.clone(),
    });
    let (tx, rx) = mpsc::channel(CHANNEL_CYCLES);
    let alerts_tx = alerts.as_ref().map(|a| a.tx.clone());
    let appender = tokio::spawn(forward::append(rx, shared.clone(), alerts_tx));
    let forwarding_done = CancellationToken::new();
    let forwarder = tokio::spawn(forward::forward(shared.clone(), sink, options.max_batch, forwarding_done.clone()));

    // Devices that share an address share one connection.
    let mut by_address: BTreeMap<String, Vec<poll::Polled>> = BTreeMap::new();
    for (device, source) in config.devices.into_iter().zip(config.sources) {
        let plan = plan::Plan::for_device(&device);
        by_address.entry(device.address.clone()).or_default().push(poll::Polled { device, source, plan });
    }
    let pollers = TaskTracker::new();
    for (address, devices) in by_address {
        pollers.spawn(poll::run(address, devices, tx.clone(), metrics.clone(), cancel.clone()));
    }
    drop(tx);
    pollers.close();
    info!(connections = pollers.len(), "collector polling");
    pollers.wait().await;
    // Every sender is gone once the pollers have returned: the appender ends after appending
    // what is left in the channel, then the forwarder drains the buffer while the store answers.
    appender.await.map_err(|e| CollectorError::Task(e.to_string()))?;
    forwarding_done.cancel();
    if let Some(a) = alerts {
        // The appender held the last sender but ours: the engine ends after what it was handed.
        drop(a.tx);
        a.engine.await.map_err(|e| CollectorError::Task(e.to_string()))?;
        // Notifiers stop on `cancel`; undelivered changes stay in the outbox for the next start.
        a.notifiers.wait().await;
    }
    forwarder.await.map_err(|e| CollectorError::Task(e.to_string()))?;
    let mut log = shared.log.lock().unwrap_or_else(|p| p.into_inner());
    log.sync()?;
    if log.depth() > 0 {
        info!(readings = log.depth(), "readings left in the buffer for the next start");
    }
    Ok(())
}
