//! An electromagnetic flow meter at a district's inlet.
//!
//! Modelled on common magmeter Modbus maps: flow as a word-swapped (CDAB) f32 in holding
//! registers, forward and reverse totalizers as u64 litres, an empty-pipe bit. The totalizer
//! integrates the same flow the meter reports, so its difference over an hour equals the
//! integral of the flow readings.

use chrono::{DateTime, Utc};
use model::{DataType::*, PointConfig, RegisterKind::*, WordOrder::*};

use super::point;
use crate::DeviceModel;
use crate::physics::{District, Noise};

/// Nominal bore of the inlet main, m (DN300).
const BORE_M: f64 = 0.3;

mod ix {
    pub const SEQ: usize = 0;
    pub const FLOW: usize = 1;
    pub const VELOCITY: usize = 2;
    pub const FORWARD: usize = 3;
    pub const REVERSE: usize = 4;
    pub const STATUS: usize = 5;
}

#[derive(Debug)]
pub struct FlowMeter {
    district: District,
    points: Vec<PointConfig>,
    values: Vec<f64>,
    noise: Noise,
    /// Exact forward volume in litres; the register holds its integer part.
    forward_l: f64,
}

impl FlowMeter {
    pub fn new(district: District, seed: u64) -> Self {
        let points = vec![
            point("seq", Holding, 0, U32, Abcd, 1.0, "", None),
            point(
                "flow",
                Holding,
                2,
                F32,
                Cdab,
                1.0,
                "m3/h",
                Some((-2000.0, 2000.0)),
            ),
            point(
                "velocity",
                Holding,
                4,
                F32,
                Cdab,
                1.0,
                "m/s",
                Some((-10.0, 10.0)),
            ),
            point("forward_total", Holding, 6, U64, Cdab, 0.001, "m3", None),
            point("reverse_total", Holding, 10, U64, Cdab, 0.001, "m3", None),
            point("status_bits", Holding, 14, U16, Abcd, 1.0, "", None),
        ];
        let forward_l = 48_213_000.0;
        let mut values = vec![0.0; points.len()];
        values[ix::FORWARD] = forward_l / 1000.0;
        // A district fed from one side sees no reverse flow; the register stays at its factory value.
        values[ix::REVERSE] = 1_250.0;
        FlowMeter {
            district,
            points,
            values,
            noise: Noise::new(seed),
            forward_l,
        }
    }
}

impl DeviceModel for FlowMeter {
    fn profile(&self) -> &'static str {
        "flow_meter"
    }

    fn points(&self) -> &[PointConfig] {
        &self.points
    }

    fn values(&self) -> &[f64] {
        &self.values
    }

    fn step(&mut self, now: DateTime<Utc>, dt_s: f64) {
        let v = &mut self.values;
        let q = (self.district.inflow_m3_per_h(now) * (1.0 + self.noise.gauss(0.005))).max(0.0);
        self.forward_l += q / 3.6 * dt_s;
        let area = std::f64::consts::PI * BORE_M * BORE_M / 4.0;
        v[ix::SEQ] = (v[ix::SEQ] + 1.0) % 4_294_967_296.0;
        v[ix::FLOW] = q;
        v[ix::VELOCITY] = q / 3600.0 / area;
        v[ix::FORWARD] = self.forward_l.floor() / 1000.0;
        v[ix::STATUS] = 0.0;
    }
}
