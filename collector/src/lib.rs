//! The collector: configuration → poll plan → Modbus polling → decoding → batched writes.
//!
//! One task per device owns that device's connection and has one request in flight on it; a
//! timeout, a broken connection or a mismatched reply drops the connection (tokio-modbus keeps
//! a late reply in the stream, slowtec/tokio-modbus#324) and the device reconnects with
//! exponential backoff. A failed request marks only its own points with a quality flag; every
//! other point and device keeps reporting.
//!
//! Readings go from the pollers through a bounded channel to one writer task, which writes
//! them to the store in batches and drains the channel before shutdown.
//!
//! First cut: the channel is in memory, so readings not yet written are lost on a crash.
//! The durable on-disk buffer is the collector issue's work.
//!
//! The collector never talks to the simulator except over Modbus TCP.

pub mod config;
mod error;
pub mod plan;
mod poll;
mod writer;

use std::sync::Arc;

use store::ReadingSink;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

pub use config::{CollectorConfig, ConfigError, ConfigErrors};
pub use error::CollectorError;
pub use writer::WriterOptions;

/// Readings waiting between the pollers and the writer, in poll cycles.
const CHANNEL_CYCLES: usize = 1024;

/// Polls every device of `config` and writes readings to `sink` until `cancel` fires; then
/// stops polling, writes what is still queued, and returns.
pub async fn run(
    config: CollectorConfig,
    sink: Arc<dyn ReadingSink>,
    options: WriterOptions,
    cancel: CancellationToken,
) -> Result<(), CollectorError> {
    let (tx, rx) = mpsc::channel(CHANNEL_CYCLES);
    let writer = tokio::spawn(writer::run(rx, sink, options));
    let pollers = TaskTracker::new();
    for (device, source) in config.devices.into_iter().zip(config.sources) {
        let plan = plan::Plan::for_device(&device);
        pollers.spawn(poll::run(device, source, plan, tx.clone(), cancel.clone()));
    }
    drop(tx);
    pollers.close();
    info!(devices = pollers.len(), "collector polling");
    pollers.wait().await;
    // Every sender is gone once the pollers have returned, so the writer sees the end of the
    // channel after writing what is left in it.
    writer.await.map_err(|e| CollectorError::Task(e.to_string()))?
}
