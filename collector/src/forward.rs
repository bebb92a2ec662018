//! From pollers to store through the durable buffer: the appender writes each poll cycle's
//! readings to the log; the forwarder reads them back in order, writes them to the store in
//! batches, and acknowledges them only once the store has accepted them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::Reading;
use store::ReadingSink;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::buffer::{BufferError, Log, Position, WhenFull};
use crate::metrics::Metrics;

/// How readings travel to the store.
#[derive(Debug, Clone)]
pub struct CollectorOptions {
    /// Directory of the durable buffer.
    pub buffer_dir: PathBuf,
    /// Largest size of the buffer on disk.
    pub buffer_max_bytes: u64,
    pub when_full: WhenFull,
    /// How often appended readings are forced to stable storage (power-cut safety).
    pub fsync_interval: Duration,
    /// Largest batch written to the store at once.
    pub max_batch: usize,
}

impl CollectorOptions {
    pub fn new(buffer_dir: impl Into<PathBuf>) -> Self {
        CollectorOptions {
            buffer_dir: buffer_dir.into(),
            buffer_max_bytes: 1 << 30,
            when_full: WhenFull::Block,
            fsync_interval: Duration::from_secs(1),
            max_batch: 50_000,
        }
    }
}

/// Shared between the appender and the forwarder.
pub(crate) struct Shared {
    pub log: Mutex<Log>,
    /// Signalled when readings are appended.
    pub appended: Notify,
    /// Signalled when the forwarder frees space.
    pub freed: Notify,
    pub metrics: Arc<Metrics>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update_gauges(&self, log: &Log) {
        self.metrics.set_buffer(log.depth(), log.bytes(), log.dropped_total);
    }
}

/// Takes poll cycles off the channel and appends them; waits while a blocking buffer is full.
/// Each appended cycle is also offered to the alert engine (`alerts`), never waiting for it.
pub(crate) async fn append(
    mut rx: mpsc::Receiver<Vec<Reading>>,
    shared: Arc<Shared>,
    alerts: Option<mpsc::Sender<Arc<Vec<Reading>>>>,
) {
    while let Some(mut batch) = rx.recv().await {
        // Cycles that queued up meanwhile go into the same record: one write and one lock for
        // many devices instead of one each.
        while batch.len() < 50_000 {
            match rx.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        let batch = Arc::new(batch);
        loop {
            let s = shared.clone();
            let b = batch.clone();
            let result = tokio::task::spawn_blocking(move || {
                let mut log = s.lock();
                let r = log.append(&b);
                s.update_gauges(&log);
                r
            })
            .await
            .expect("append does not panic");
            match result {
                Ok(()) => {
                    shared.metrics.appended(n);
                    shared.appended.notify_one();
                    if let Some(tx) = &alerts {
                        crate::alerts::offer(tx, batch.clone(), &shared.metrics);
                    }
                    break;
                }
                Err(BufferError::Full { bytes, limit }) => {
                    // Back-pressure: the pollers wait on the channel while the store catches up.
                    warn!(bytes, limit, "buffer full; polling waits for the store");
                    let _ = tokio::time::timeout(Duration::from_secs(1), shared.freed.notified()).await;
                }
                Err(e) => {
                    error!(error = %e, "cannot append to the buffer; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Forwards buffered readings to the store until `done` fires and the buffer is empty, or,
/// after `done`, until the store stops answering (what is left stays in the buffer for the
/// next start).
pub(crate) async fn forward(
    shared: Arc<Shared>,
    sink: Arc<dyn ReadingSink>,
    max_batch: usize,
    done: CancellationToken,
) {
    let mut failures = 0u32;
    // The next batch, read from the buffer while the store was taking the current one.
    let mut prefetched: Option<(Vec<Reading>, Position)> = None;
    loop {
        let (batch, pos) = match prefetched.take() {
            Some(next) => next,
            None => match read(&shared, None, max_batch).await {
                Ok(r) => r,
                Err(e) => {
                    error!(error = %e, "cannot read the buffer");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        if batch.is_empty() {
            if done.is_cancelled() {
                return;
            }
            tokio::select! {
                _ = shared.appended.notified() => {}
                _ = done.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            continue;
        }
        let (result, next) = tokio::join!(sink.write(&batch), read(&shared, Some(pos), max_batch));
        match result {
            Ok(()) => {
                if failures > 0 {
                    info!(failures, "store reachable again; forwarding the backlog");
                }
                failures = 0;
                shared.metrics.written(batch.len() as u64);
                let now = chrono::Utc::now();
                shared.metrics.stored(batch.iter().map(|r| (now - r.time).num_milliseconds() as f64 / 1000.0));
                prefetched = next.ok();
            }
            Err(e) if e.is_transient() => {
                failures += 1;
                shared.metrics.store_error();
                if done.is_cancelled() && failures >= 3 {
                    warn!(error = %e, "store unavailable at shutdown; readings stay in the buffer for the next start");
                    return;
                }
                let wait = Duration::from_millis(250 * u64::from(failures.min(20)));
                warn!(error = %e, failures, retry_in_ms = wait.as_millis() as u64, "store unavailable; readings wait in the buffer");
                tokio::time::sleep(wait).await;
                // Try the same batch again.
                prefetched = Some((batch, pos));
                continue;
            }
            Err(e) => {
                // A batch the store refuses outright would block everything behind it; the
                // pollers only make valid readings, so this is a bug worth a loud log line.
                error!(error = %e, readings = batch.len(), "store refused a batch; skipping it");
                shared.metrics.store_error();
                shared.metrics.rejected(batch.len() as u64);
                prefetched = next.ok();
            }
        }
        let s = shared.clone();
        let n = batch.len() as u64;
        let acked = tokio::task::spawn_blocking(move || {
            let mut log = s.lock();
            let r = log.ack(pos, n);
            s.update_gauges(&log);
            r
        })
        .await
        .expect("ack does not panic");
        if let Err(e) = acked {
            error!(error = %e, "cannot record progress in the buffer; readings may be sent twice (harmless)");
        }
        shared.freed.notify_waiters();
    }
}

/// Reads up to `max` readings from `from` (or the acknowledged position) on the blocking pool.
async fn read(
    shared: &Arc<Shared>,
    from: Option<Position>,
    max: usize,
) -> Result<(Vec<Reading>, Position), BufferError> {
    let s = shared.clone();
    tokio::task::spawn_blocking(move || {
        let log = s.lock();
        match from {
            Some(pos) => log.read_from(pos, max),
            None => log.read(max),
        }
    })
    .await
    .expect("read does not panic")
}
