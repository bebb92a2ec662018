//! Counters and gauges of the collector, rendered in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the poll-latency histogram buckets, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
/// Upper bounds of the sample-to-store lag buckets, seconds.
const LAG_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0, 10.0, 60.0, 600.0];

#[derive(Debug, Default)]
pub struct Metrics {
    requests: AtomicU64,
    reconnects: AtomicU64,
    overruns: AtomicU64,
    appended: AtomicU64,
    written: AtomicU64,
    rejected: AtomicU64,
    store_errors: AtomicU64,
    buffer_depth: AtomicU64,
    buffer_bytes: AtomicU64,
    buffer_dropped: AtomicU64,
    alert_batches_dropped: AtomicU64,
    alert_store_errors: AtomicU64,
    alerts_raised: AtomicU64,
    /// Errors by kind ("timeout", "transport", "exception_06", …).
    errors: Mutex<BTreeMap<String, u64>>,
    latency: Mutex<Histogram>,
    lag: Mutex<Histogram>,
}

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], v: f64, n: u64) {
        for (i, bound) in bounds.iter().enumerate() {
            if v <= *bound {
                self.counts[i] += n;
            }
        }
        self.count += n;
        self.sum += v * n as f64;
    }

    fn render(&self, out: &mut String, name: &str, help: &str, bounds: &[f64]) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, n) in bounds.iter().zip(self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

impl Metrics {
    pub fn request(&self, seconds: f64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.latency.lock().unwrap_or_else(|p| p.into_inner()).observe(&BUCKETS, seconds, 1);
    }
    /// Readings the store accepted, with how long after their sample time.
    pub fn stored(&self, lags_s: impl Iterator<Item = f64>) {
        let mut h = self.lag.lock().unwrap_or_else(|p| p.into_inner());
        for lag in lags_s {
            h.observe(&LAG_BUCKETS, lag, 1);
        }
    }
    pub fn error(&self, kind: &str) {
        *self.errors.lock().unwrap_or_else(|p| p.into_inner()).entry(kind.to_owned()).or_default() += 1;
    }
    pub fn reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    pub fn overrun(&self) {
        self.overruns.fetch_add(1, Ordering::Relaxed);
    }
    pub fn appended(&self, n: u64) {
        self.appended.fetch_add(n, Ordering::Relaxed);
    }
    pub fn written(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Relaxed);
    }
    pub fn rejected(&self, n: u64) {
        self.rejected.fetch_add(n, Ordering::Relaxed);
    }
    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }
    pub fn set_buffer(&self, depth: u64, bytes: u64, dropped: u64) {
        self.buffer_depth.store(depth, Ordering::Relaxed);
        self.buffer_bytes.store(bytes, Ordering::Relaxed);
        self.buffer_dropped.store(dropped, Ordering::Relaxed);
    }

    /// A poll cycle the alert engine could not take (its channel was full).
    pub fn alert_batch_dropped(&self) -> u64 {
        self.alert_batches_dropped.fetch_add(1, Ordering::Relaxed) + 1
    }
    pub fn alert_store_error(&self) {
        self.alert_store_errors.fetch_add(1, Ordering::Relaxed);
    }
    /// Alert changes the store refused after the retries (also `collector_alert_store_errors_total`).
    pub fn alert_store_errors_total(&self) -> u64 {
        self.alert_store_errors.load(Ordering::Relaxed)
    }
    pub fn alert_raised(&self) {
        self.alerts_raised.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            "collector_requests_total",
            "Modbus requests answered (with data or an exception).",
            get(&self.requests),
        );
        counter("collector_reconnects_total", "Connections dropped and opened again.", get(&self.reconnects));
        counter("collector_overruns_total", "Poll cycles that took longer than their interval.", get(&self.overruns));
        counter("collector_readings_buffered_total", "Readings appended to the durable buffer.", get(&self.appended));
        counter("collector_readings_written_total", "Readings the store accepted.", get(&self.written));
        counter("collector_readings_rejected_total", "Readings the store refused outright.", get(&self.rejected));
        counter("collector_store_errors_total", "Failed writes to the store.", get(&self.store_errors));
        counter(
            "collector_buffer_dropped_total",
            "Readings dropped unsent because the buffer was full.",
            get(&self.buffer_dropped),
        );
        counter(
            "collector_alert_batches_dropped_total",
            "Poll cycles not evaluated by the alert rules because the engine was behind.",
            get(&self.alert_batches_dropped),
        );
        counter(
            "collector_alert_store_errors_total",
            "Alert changes the store failed to record.",
            get(&self.alert_store_errors),
        );
        counter("collector_alerts_raised_total", "New alerts raised by the rules.", get(&self.alerts_raised));
        let _ = writeln!(
            out,
            "# HELP collector_buffer_readings Readings in the buffer, not yet in the store.\n# TYPE collector_buffer_readings gauge\ncollector_buffer_readings {}",
            get(&self.buffer_depth)
        );
        let _ = writeln!(
            out,
            "# HELP collector_buffer_bytes Bytes of the buffer on disk not yet acknowledged.\n# TYPE collector_buffer_bytes gauge\ncollector_buffer_bytes {}",
            get(&self.buffer_bytes)
        );
        let _ = writeln!(
            out,
            "# HELP collector_device_errors_total Failed requests by kind.\n# TYPE collector_device_errors_total counter"
        );
        for (kind, n) in self.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "collector_device_errors_total{{kind=\"{kind}\"}} {n}");
        }
        self.latency.lock().unwrap_or_else(|p| p.into_inner()).render(
            &mut out,
            "collector_poll_latency_seconds",
            "Time from request to reply.",
            &BUCKETS,
        );
        self.lag.lock().unwrap_or_else(|p| p.into_inner()).render(
            &mut out,
            "collector_store_lag_seconds",
            "Time from a reading's sample time to the store accepting it.",
            &LAG_BUCKETS,
        );
        out
    }
}
