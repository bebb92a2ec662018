//! Analytics: asset register import → features as of a date → likelihood of failure (LoF)
//! and consequence of failure (CoF) → risk → ranking and walk-forward backtest.
//!
//! The crate reads and writes files and computes; it does not talk to devices and does not
//! draw. `plan` turns a ranking into a
//! budget-constrained multi-year renewal plan. Sewers are ranked by condition instead:
//! `sewer` (register, CCTV grades), `sewer_curve` (deterioration curves, span ranking),
//! `sewer_synth` (a network with planted curves). `geo` and `geo_import` read a register's
//! line geometry from GeoJSON.

pub mod asset;
pub mod backtest;
mod error;
pub mod features;
pub mod geo;
pub mod geo_import;
pub mod import;
pub mod material;
pub mod metrics;
pub mod models;
pub mod peer;
pub mod plan;
pub mod pressure;
mod progress;
pub mod risk;
pub mod sewer;
pub mod sewer_curve;
pub mod sewer_synth;
pub mod synth;

pub use asset::{Break, Pipe, Register, RoadClass};
pub use error::AnalyticsError;
pub use features::{FeatureBuilder, History};
pub use geo_import::import_assets_geojson;
pub use import::{Issue, Profile, Severity, import_assets, import_breaks};
pub use material::{DiJoint, Material};
pub use models::{ModelKind, ModelParams};
pub use risk::{RankParams, Ranking, rank};
