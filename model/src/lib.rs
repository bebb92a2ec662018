//! Shared domain types of Mizumori: validated identifiers, readings with their quality, the
//! Modbus register codec and the device/point map that the collector's configuration and the
//! simulator's register maps share.
//!
//! This crate does no IO: no sockets, no files, no clocks. Every other crate depends on it, so
//! what lives here is the vocabulary the rest of the system speaks.

pub mod alert;
pub mod codec;
pub mod config;
mod error;
pub mod id;
pub mod reading;

pub use alert::{Alert, AlertState, NewAlert, Severity};
pub use codec::{DataType, RegisterKind, WordOrder};
pub use config::{DeviceConfig, PointConfig};
pub use error::ModelError;
pub use id::{AssetId, DeviceId, PointName};
pub use reading::{Quality, Reading, Value};
