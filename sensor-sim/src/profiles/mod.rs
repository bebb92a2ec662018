//! Device profiles: register maps modelled on real devices, and the physics behind them.

mod flow_meter;
mod pump_station;

pub use flow_meter::FlowMeter;
pub use pump_station::{PumpStation, status as pump_status};

use model::{DataType, PointConfig, PointName, RegisterKind, WordOrder};

/// Shorthand for a register-map entry.
#[allow(clippy::too_many_arguments)]
pub(crate) fn point(
    name: &str,
    register: RegisterKind,
    address: u16,
    data_type: DataType,
    word_order: WordOrder,
    scale: f64,
    unit: &str,
    range: Option<(f64, f64)>,
) -> PointConfig {
    PointConfig {
        name: PointName::new(name).expect("profile point names are valid"),
        register,
        address,
        data_type,
        scale,
        offset: 0.0,
        unit: unit.to_owned(),
        word_order: (data_type.width() > 1).then_some(word_order),
        min: range.map(|r| r.0),
        max: range.map(|r| r.1),
    }
}
