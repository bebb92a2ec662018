//! The writer: batches readings from the pollers and writes them to the store.

use std::sync::Arc;
use std::time::Duration;

use model::Reading;
use store::ReadingSink;
use tokio::sync::mpsc;
use tracing::{debug, error, warn};

use crate::CollectorError;

/// How readings are batched.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Write once this many readings are waiting…
    pub max_batch: usize,
    /// …or once the oldest has waited this long.
    pub max_delay: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions { max_batch: 5000, max_delay: Duration::from_millis(500) }
    }
}

/// Writes with retries while the store is unreachable. A batch the store refuses outright
/// (a bug, never bad device data: pollers only produce valid readings) is logged and dropped
/// so that it cannot block everything behind it.
async fn write(
    sink: &dyn ReadingSink,
    batch: &mut Vec<Reading>,
    give_up_after: Option<u32>,
) -> Result<(), CollectorError> {
    let mut attempt = 0u32;
    loop {
        match sink.write(batch).await {
            Ok(()) => {
                debug!(readings = batch.len(), "batch written");
                batch.clear();
                return Ok(());
            }
            Err(e) if e.is_transient() => {
                attempt += 1;
                if give_up_after.is_some_and(|n| attempt >= n) {
                    return Err(CollectorError::Unflushed { lost: batch.len(), cause: e });
                }
                let wait = Duration::from_millis(200 * u64::from(attempt.min(25)));
                warn!(error = %e, attempt, readings = batch.len(), "store unavailable; retrying");
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                error!(error = %e, readings = batch.len(), "store refused a batch; dropping it");
                batch.clear();
                return Ok(());
            }
        }
    }
}

pub(crate) async fn run(
    mut rx: mpsc::Receiver<Vec<Reading>>,
    sink: Arc<dyn ReadingSink>,
    options: WriterOptions,
) -> Result<(), CollectorError> {
    let mut batch: Vec<Reading> = Vec::with_capacity(options.max_batch);
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let received = match deadline {
            Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                Ok(r) => r,
                Err(_) => {
                    write(&*sink, &mut batch, None).await?;
                    deadline = None;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        match received {
            Some(readings) => {
                if batch.is_empty() {
                    deadline = Some(tokio::time::Instant::now() + options.max_delay);
                }
                batch.extend(readings);
                if batch.len() >= options.max_batch {
                    write(&*sink, &mut batch, None).await?;
                    deadline = None;
                }
            }
            None => break,
        }
    }
    // Shutting down: a few tries, then say how much could not be written.
    write(&*sink, &mut batch, Some(10)).await
}
