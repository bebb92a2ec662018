//! Analytics: asset register import → features as of a date → likelihood of failure (LoF)
//! and consequence of failure (CoF) → risk → ranking and backtest.
//!
//! The crate reads files and computes; it does not talk to devices and does not draw. Its
//! output is plain data (rankings, backtest tables) that the binary writes as CSV and the
//! dashboard can show. Sensor-derived pressure features and the renewal plan are not built yet.

pub mod asset;
mod error;
pub mod import;
pub mod material;

pub use asset::{Break, Pipe, Register, RoadClass};
pub use error::AnalyticsError;
pub use import::{Issue, Profile, Severity, import_assets, import_breaks};
pub use material::{DiJoint, Material};
