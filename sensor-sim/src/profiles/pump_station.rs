//! A booster pump station with a variable-speed (VFD) pump feeding one district.
//!
//! The pump runs at the speed that meets the district's demand against the system curve:
//! pump head H = H0·s² − k·Q² (affinity laws, s = speed ratio) equals system head
//! H_static + r·Q². Power, current, vibration and bearing temperature follow from speed, flow
//! and head. The register map (input registers, big-endian, u32 counters low word first) is in
//! docs/register-maps.md.

use chrono::{DateTime, Utc};
use model::{DataType::*, PointConfig, RegisterKind::*, WordOrder::*};

use super::point;
use crate::DeviceModel;
use crate::physics::{District, Noise, lag};

/// Shut-off head at full speed, m.
const H0_M: f64 = 70.0;
/// Pump curve droop, m per (m³/h)².
const K_PUMP: f64 = 20.0 / (350.0 * 350.0);
/// Static lift to the district's high point, m.
const H_STATIC_M: f64 = 30.0;
/// System friction, m per (m³/h)²: 15 m of loss at 300 m³/h.
const R_SYSTEM: f64 = 15.0 / (300.0 * 300.0);
const EFFICIENCY: f64 = 0.72;
const LINE_VOLTAGE_V: f64 = 400.0;
const POWER_FACTOR: f64 = 0.85;
const MAINS_HZ: f64 = 50.0;

/// Index of each value in the register map.
mod ix {
    pub const SEQ: usize = 0;
    pub const OUTFLOW: usize = 1;
    pub const SUCTION: usize = 2;
    pub const DISCHARGE: usize = 3;
    pub const FREQ: usize = 4;
    pub const CURRENT: usize = 5;
    pub const POWER: usize = 6;
    pub const VIBRATION: usize = 7;
    pub const BEARING_TEMP: usize = 8;
    pub const STATUS: usize = 9;
    pub const FAULT: usize = 10;
    pub const RUN_HOURS: usize = 11;
    pub const STARTS: usize = 12;
    pub const RUNNING: usize = 13;
}

/// Status word bits.
pub mod status {
    pub const RUN: u16 = 1 << 0;
    pub const FAULT: u16 = 1 << 1;
    pub const WARNING: u16 = 1 << 2;
    pub const REMOTE: u16 = 1 << 3;
    pub const DRY_RUN: u16 = 1 << 4;
}

#[derive(Debug)]
pub struct PumpStation {
    district: District,
    points: Vec<PointConfig>,
    values: Vec<f64>,
    noise: Noise,
    run_seconds: f64,
}

impl PumpStation {
    pub fn new(district: District, seed: u64) -> Self {
        let points = vec![
            point("seq", Input, 0, U32, Abcd, 1.0, "", None),
            point(
                "outflow",
                Input,
                2,
                F32,
                Abcd,
                1.0,
                "m3/h",
                Some((0.0, 2000.0)),
            ),
            point(
                "suction_pressure",
                Input,
                4,
                F32,
                Abcd,
                1.0,
                "bar",
                Some((-1.0, 10.0)),
            ),
            point(
                "discharge_pressure",
                Input,
                6,
                F32,
                Abcd,
                1.0,
                "bar",
                Some((0.0, 16.0)),
            ),
            point(
                "drive_frequency",
                Input,
                8,
                U16,
                Abcd,
                0.01,
                "Hz",
                Some((0.0, 60.0)),
            ),
            point(
                "motor_current",
                Input,
                9,
                U16,
                Abcd,
                0.1,
                "A",
                Some((0.0, 500.0)),
            ),
            point("power", Input, 10, U16, Abcd, 0.1, "kW", Some((0.0, 500.0))),
            point(
                "bearing_vibration",
                Input,
                11,
                U16,
                Abcd,
                0.01,
                "mm/s",
                Some((0.0, 50.0)),
            ),
            point(
                "bearing_temperature",
                Input,
                12,
                I16,
                Abcd,
                0.1,
                "degC",
                Some((-20.0, 150.0)),
            ),
            point("status_word", Input, 13, U16, Abcd, 1.0, "", None),
            point("fault_code", Input, 14, U16, Abcd, 1.0, "", None),
            point("run_hours", Input, 15, U32, Cdab, 1.0, "h", None),
            point("starts", Input, 17, U32, Cdab, 1.0, "", None),
            point("running", Discrete, 0, Bool, Abcd, 1.0, "", None),
        ];
        let mut values = vec![0.0; points.len()];
        values[ix::BEARING_TEMP] = 40.0;
        values[ix::RUN_HOURS] = 18_250.0;
        values[ix::STARTS] = 412.0;
        PumpStation {
            district,
            points,
            values,
            noise: Noise::new(seed),
            run_seconds: 18_250.0 * 3600.0,
        }
    }

    /// Speed ratio that delivers `q` m³/h against the system curve.
    pub fn speed_ratio(q: f64) -> f64 {
        ((H_STATIC_M + (R_SYSTEM + K_PUMP) * q * q) / H0_M).sqrt()
    }
}

impl DeviceModel for PumpStation {
    fn profile(&self) -> &'static str {
        "pump_station"
    }

    fn points(&self) -> &[PointConfig] {
        &self.points
    }

    fn values(&self) -> &[f64] {
        &self.values
    }

    fn step(&mut self, now: DateTime<Utc>, dt_s: f64) {
        let v = &mut self.values;
        let q = (self.district.inflow_m3_per_h(now) * (1.0 + self.noise.gauss(0.01))).max(0.0);
        let s = Self::speed_ratio(q);
        let head_m = H0_M * s * s - K_PUMP * q * q;
        let suction_bar = 0.6 + self.noise.gauss(0.005);
        let hydraulic_kw = 1000.0 * 9.81 * (q / 3600.0) * head_m / 1000.0;
        let power_kw = hydraulic_kw / EFFICIENCY;
        v[ix::SEQ] = (v[ix::SEQ] + 1.0) % 4_294_967_296.0;
        v[ix::OUTFLOW] = q;
        v[ix::SUCTION] = suction_bar;
        v[ix::DISCHARGE] = suction_bar + head_m * 1000.0 * 9.81 / 1e5;
        v[ix::FREQ] = MAINS_HZ * s;
        v[ix::POWER] = power_kw;
        v[ix::CURRENT] = power_kw * 1000.0 / (3f64.sqrt() * LINE_VOLTAGE_V * POWER_FACTOR);
        // Vibration of a healthy pump in ISO 10816 zone A, rising with speed.
        v[ix::VIBRATION] = (0.9 + 0.9 * s * s + self.noise.gauss(0.05)).max(0.0);
        v[ix::BEARING_TEMP] =
            lag(v[ix::BEARING_TEMP], 32.0 + 18.0 * s * s, dt_s, 1800.0) + self.noise.gauss(0.05);
        v[ix::STATUS] = f64::from(status::RUN | status::REMOTE);
        v[ix::FAULT] = 0.0;
        self.run_seconds += dt_s;
        v[ix::RUN_HOURS] = (self.run_seconds / 3600.0).floor();
        v[ix::RUNNING] = 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_follows_demand_within_drive_limits() {
        let low = PumpStation::speed_ratio(40.0);
        let high = PumpStation::speed_ratio(300.0);
        assert!(low < high);
        assert!(
            low * MAINS_HZ > 30.0 && high * MAINS_HZ < MAINS_HZ,
            "{low} {high}"
        );
    }
}
