//! Storage of readings: the only crate that knows tables, measurements, tag keys, SQL, line
//! protocol and InfluxQL.
//!
//! Two backends sit behind the role traits [`ReadingSink`] and [`ReadingSource`], chosen by a
//! store URL (see [`open`]):
//!
//! * `sqlite://PATH` — the embedded default, one SQLite file, nothing to install;
//! * `influx://HOST:PORT/DATABASE` — a real InfluxDB over the v1 HTTP API (`/write`, `/query`,
//!   `/ping`) that InfluxDB 1.x, 2.x (v1 compatibility) and 3.x all serve; `influxs://` is the
//!   same over https, optionally `?ca_file=PEM` for a private CA (see [`tls`]).
//!
//! Both answer the same queries with the same results; one conformance suite
//! (`tests/conformance.rs`) runs against each. This crate does not poll devices, retry writes
//! or buffer readings: the collector owns that.
//!
//! Alerts (`alerts`), the planned-works register (`works`) and accounts (`accounts`) always
//! live in a SQLite file, whichever backend holds the readings.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use model::{DeviceId, PointName, Reading};
use serde::Serialize;

pub mod accounts;
pub mod alerts;
pub mod detector_state;
mod error;
pub mod influx;
pub mod lineproto;
pub mod risk;
pub mod settings;
pub mod sewer;
pub mod sqlite;
mod sqlite_file;
pub mod tls;
mod url;
mod validate;
pub mod works;

pub use accounts::{AccountStore, Role, SqliteAccounts, UserName};
pub use alerts::{AlertQuery, AlertStore, SqliteAlerts};
pub use detector_state::{DetectorState, DetectorStateStore, SqliteDetectorStates};
pub use error::StoreError;
pub use influx::{InfluxAuth, InfluxStore};
pub use risk::{RiskStore, SqliteRisk};
pub use settings::{SettingsStore, SqliteSettings};
pub use sewer::{SewerStore, SqliteSewer};
pub use sqlite::SqliteStore;
pub use url::StoreUrl;
pub use works::{NewWork, PlannedWork, SqliteWorks, WorkKind, WorksStore};

/// Writes readings. A batch is all or nothing: either every reading is accepted or the call
/// fails and nothing of the batch is stored. Writing the same (device, point, time) again
/// overwrites, so retrying a batch is harmless.
#[async_trait]
pub trait ReadingSink: Send + Sync {
    async fn write(&self, batch: &[Reading]) -> Result<(), StoreError>;
}

/// Answers the queries the dashboard, the CLI and analytics need.
#[async_trait]
pub trait ReadingSource: Send + Sync {
    /// The newest reading of every (device, point), whatever its quality, ordered by device and point.
    async fn latest(&self) -> Result<Vec<Reading>, StoreError>;

    /// Good numeric readings of one point in `[from, to)`, folded into windows of `window_ms`
    /// aligned to the Unix epoch. Windows without a good reading are left out.
    async fn aggregate(&self, query: &WindowQuery) -> Result<Vec<Window>, StoreError>;

    /// Every reading of one point in `[from, to)`, oldest first, at most `limit`.
    async fn range(&self, query: &RangeQuery) -> Result<Vec<Reading>, StoreError>;

    /// Every (device, point) that has at least one reading, ordered.
    async fn series(&self) -> Result<Vec<SeriesKey>, StoreError> {
        Ok(self.latest().await?.into_iter().map(|r| SeriesKey { device: r.device, point: r.point }).collect())
    }
}

/// A store: both roles plus a health check.
#[async_trait]
pub trait Store: ReadingSink + ReadingSource {
    /// Which backend and where, without secrets, for logs and `/api/health`.
    fn describe(&self) -> String;

    /// Cheap reachability check.
    async fn health(&self) -> Result<(), StoreError>;
}

/// One time series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SeriesKey {
    pub device: DeviceId,
    pub point: PointName,
}

/// A windowed aggregation of one point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowQuery {
    pub device: DeviceId,
    pub point: PointName,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub window_ms: i64,
}

/// Raw readings of one point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeQuery {
    pub device: DeviceId,
    pub point: PointName,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub limit: usize,
}

/// One window of an aggregation: the statistics of the good readings whose time falls in
/// `[start, start + window)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// The value of the newest good reading in the window.
    pub last: f64,
    pub count: u64,
}

/// Opens the store a URL names; see [`StoreUrl`] for the forms.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match url.parse::<StoreUrl>()? {
        StoreUrl::Sqlite { path } => Ok(Arc::new(SqliteStore::open(&path).await?)),
        StoreUrl::Influx { base, database, username, ca_file } => {
            let auth = InfluxAuth::from_env(username)?;
            let roots = tls::ExtraRoots::from_optional_file(ca_file.as_deref())
                .map_err(|e| StoreError::BadUrl { url: url.to_owned(), reason: format!("field `ca_file`: {e}") })?;
            Ok(Arc::new(InfluxStore::connect_with_roots(&base, &database, auth, &roots).await?))
        }
    }
}
