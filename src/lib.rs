//! The `mizumori` binary's commands. Each command wires crates together; the work itself is
//! done in `sensor-sim`, `collector`, `store`, `analytics` and `dashboard`.

pub mod alerts;
pub mod cli;
mod commands;
mod districts;
pub mod logging;
mod plan;
mod risk;
mod risk_demo;
mod sewer;
mod shutdown;
mod user;
mod works;

pub use commands::run;
