//! The web app: axum routes over the store, pages rendered on the server with plotters SVG.
//!
//! `app(state)` builds the whole router, so every route is testable in-process with
//! `tower::ServiceExt::oneshot`. Handlers only read through the store's role traits; they never
//! see SQL or InfluxQL.
//!
//! Every route but `/api/health` and `/login` needs a session; `auth` holds sessions, CSRF
//! and the role-to-permission map. Pages are in Japanese or English (`i18n`). The overview
//! (`overview`) sums up the network; the alerts inbox (`alerts`) lets crews act on alerts; the
//! risk pages (`risk`) and the sewer page (`sewer`) read stored rankings. The renewal plan (`plan`) is computed from the newest
//! ranking per request with `analytics::plan`.

// The hand-written OpenAPI document is one `json!` literal, deeper than the default limit.
#![recursion_limit = "256"]

mod alerts;
pub mod auth;
mod cache;
mod chart;
mod detail;
mod error;
mod export;
pub mod html;
pub mod i18n;
mod login;
mod map;
mod open_data;
pub mod openapi;
mod overview;
mod params;
mod pdf;
mod plan;
mod risk;
pub mod sewer;

mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use model::{DeviceConfig, DeviceId, PointName};
use store::{
    AccountStore, AlertStore, RiskStore, SeriesKey, SettingsStore, SewerStore, SqliteAccounts, SqliteAlerts,
    SqliteRisk, SqliteSettings, SqliteSewer, Store,
};
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use auth::{AuthConfig, CurrentUser, Permission};
pub use error::AppError;
pub use pdf::{FONT_ENV, FontStatus, KNOWN_FONT_PATHS, UTILITY_ENV};

/// A district metered area as the overview shows it: the series of its inlet flow meter and
/// of the pressure logger at its critical point, where it has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct District {
    pub name: String,
    pub inflow: Option<SeriesKey>,
    pub critical_pressure: Option<SeriesKey>,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Engineering units by point, when the device map is known (from a collector config).
    pub units: Arc<HashMap<(DeviceId, PointName), String>>,
    /// Users and sessions; empty (nobody can log in) until [`AppState::with_accounts`].
    pub accounts: Arc<dyn AccountStore>,
    pub auth: Arc<AuthConfig>,
    /// Alerts raised by the collector's rules; empty (the inbox says so) until
    /// [`AppState::with_alerts`].
    pub alerts: Arc<dyn AlertStore>,
    /// Stored risk rankings; empty (the risk pages say so) until [`AppState::with_risk`].
    pub risk: Arc<dyn RiskStore>,
    /// Stored sewer span rankings; empty (the sewer page says so) until [`AppState::with_sewer`].
    pub sewer: Arc<dyn SewerStore>,
    /// Settings people change at run time (open-data publication); defaults until
    /// [`AppState::with_settings`].
    pub settings: Arc<dyn SettingsStore>,
    /// The districts the overview sums up, when the device map says which meters are whose.
    pub districts: Arc<Vec<District>>,
    pub(crate) throttle: Arc<auth::LoginThrottle>,
    /// Aggregates and risk pages that many clients ask for at once.
    pub(crate) caches: Arc<cache::Caches>,
    /// The PDF reports' font and engine (found at start-up, loaded on the first report).
    pub(crate) reports: Arc<pdf::Reports>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("store", &self.store.describe()).finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(store: Arc<dyn Store>) -> Self {
        AppState {
            store,
            units: Arc::default(),
            accounts: Arc::new(SqliteAccounts::in_memory()),
            auth: Arc::default(),
            alerts: Arc::new(SqliteAlerts::in_memory()),
            risk: Arc::new(SqliteRisk::in_memory()),
            sewer: Arc::new(SqliteSewer::in_memory()),
            settings: Arc::new(SqliteSettings::in_memory()),
            districts: Arc::default(),
            throttle: Arc::default(),
            caches: Arc::default(),
            reports: Arc::new(pdf::Reports::from_env()),
        }
    }

    /// Looks for the PDF reports' Japanese font only in `paths` (the first file found is used;
    /// none, or an empty list, turns PDF reports off with a 503 that says why).
    pub fn with_pdf_font_paths(mut self, paths: &[std::path::PathBuf]) -> Self {
        self.reports = Arc::new(pdf::Reports::search(paths, None));
        self
    }

    /// Whether PDF reports can be made, and from which font file.
    pub fn pdf_font(&self) -> pdf::FontStatus {
        self.reports.status()
    }

    /// Reads risk rankings from this store.
    pub fn with_risk(mut self, risk: Arc<dyn RiskStore>) -> Self {
        self.risk = risk;
        self
    }

    /// Reads sewer span rankings from this store.
    pub fn with_sewer(mut self, sewer: Arc<dyn SewerStore>) -> Self {
        self.sewer = sewer;
        self
    }

    /// Reads and changes alerts in this store.
    pub fn with_alerts(mut self, alerts: Arc<dyn AlertStore>) -> Self {
        self.alerts = alerts;
        self
    }

    /// Keeps run-time settings in this store.
    pub fn with_settings(mut self, settings: Arc<dyn SettingsStore>) -> Self {
        self.settings = settings;
        self
    }

    /// Sums up these districts on the overview.
    pub fn with_districts(mut self, districts: Vec<District>) -> Self {
        self.districts = Arc::new(districts);
        self
    }

    /// Uses these accounts for logins.
    pub fn with_accounts(mut self, accounts: Arc<dyn AccountStore>) -> Self {
        self.accounts = accounts;
        self
    }

    /// Uses these session settings.
    pub fn with_auth(mut self, auth: AuthConfig) -> Self {
        self.auth = Arc::new(auth);
        self
    }

    /// Learns point units from a device map.
    pub fn with_units(mut self, devices: &[DeviceConfig]) -> Self {
        let units = devices
            .iter()
            .flat_map(|d| d.points.iter().map(move |p| ((d.name.clone(), p.name.clone()), p.unit.clone())))
            .filter(|(_, u)| !u.is_empty())
            .collect();
        self.units = Arc::new(units);
        self
    }

    fn unit(&self, device: &DeviceId, point: &PointName) -> &str {
        self.units.get(&(device.clone(), point.clone())).map(String::as_str).unwrap_or("")
    }
}

/// The router with every route.
pub fn app(state: AppState) -> Router {
    routes::router(&state).with_state(state)
}

/// Serves the app on `listener` until `cancel` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    info!(%addr, store = %state.store.describe(), "dashboard listening");
    axum::serve(listener, app(state)).with_graceful_shutdown(async move { cancel.cancelled().await }).await
}
