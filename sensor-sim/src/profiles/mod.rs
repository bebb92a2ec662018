//! Device profiles: register maps modelled on real devices (docs/register-maps.md), each a view
//! of the hidden network state with its own noise and counters.

use chrono::{DateTime, Utc};
use model::{DataType, PointConfig, PointName, RegisterKind, WordOrder};

use crate::network::{Network, sewer_levels};
use crate::physics::Noise;
use crate::scenario::Profile;

/// A simulated device: its register map and the values it holds.
///
/// `points()` is the documented register map (the description the collector's configuration
/// uses); after each `step`, `values()` holds one engineering value per point, in that order.
pub trait DeviceModel: Send + Sync + std::fmt::Debug {
    fn profile(&self) -> Profile;
    fn points(&self) -> &[PointConfig];
    fn values(&self) -> &[f64];
    /// Indices of the points that are sensor measurements (what sensor faults corrupt).
    fn analog(&self) -> &[usize];
    /// Refreshes the values from the network at `t`.
    fn step(&mut self, t: DateTime<Utc>, dt_s: f64, net: &Network);
    /// The largest read the device accepts, in registers.
    fn max_registers_per_request(&self) -> u16 {
        model::config::DEFAULT_MAX_REGISTERS
    }
}

/// Builds the model for a device of `profile` observing entity `index` of the network.
pub fn build(profile: Profile, index: usize, net: &Network, seed: u64) -> Box<dyn DeviceModel> {
    match profile {
        Profile::PumpStation => Box::new(PumpStationDevice::new(index, net.stations[index].pumps.len(), seed)),
        Profile::FlowMeter => Box::new(FlowMeter::new(index, seed)),
        Profile::PressureLogger => Box::new(PressureLogger::new(index, seed)),
        Profile::ReservoirLevel => Box::new(ReservoirLevel::new(index)),
        Profile::SewerStation => Box::new(SewerStationDevice::new(index)),
    }
}

/// Shorthand for a register-map entry.
fn point(
    name: &str,
    register: RegisterKind,
    address: u16,
    data_type: DataType,
    order: WordOrder,
    scale: f64,
    unit: &str,
) -> PointConfig {
    PointConfig {
        scale,
        unit: unit.to_owned(),
        word_order: (data_type.width() > 1).then_some(order),
        ..PointConfig::new(PointName::new(name).expect("profile point names are valid"), register, address, data_type)
    }
}

/// Adds a physical range to a point.
fn ranged(mut p: PointConfig, min: f64, max: f64) -> PointConfig {
    p.min = Some(min);
    p.max = Some(max);
    p
}

/// The sample sequence counter every device has: +1 per refresh, wrapping like a u32.
fn next_seq(v: f64) -> f64 {
    (v + 1.0) % 4_294_967_296.0
}

use DataType::*;
use RegisterKind::*;
use WordOrder::*;

/// Pump-station controller: station values and a block per pump, in holding registers; its
/// manual numbers them from 40001 and it refuses reads of more than 50 registers.
#[derive(Debug)]
pub struct PumpStationDevice {
    station: usize,
    points: Vec<PointConfig>,
    values: Vec<f64>,
    analog: Vec<usize>,
    noise: Noise,
}

/// Pump status word bits.
pub mod pump_status {
    pub const RUN: u16 = 1 << 0;
    pub const FAULT: u16 = 1 << 1;
    pub const WARNING: u16 = 1 << 2;
    pub const REMOTE: u16 = 1 << 3;
    pub const DRY_RUN: u16 = 1 << 4;
}

/// Points before the first pump block.
const STATION_POINTS: usize = 6;
/// Registers per pump block, and where the first block starts.
const PUMP_BLOCK: u16 = 11;
const PUMP_BASE: u16 = 10;

impl PumpStationDevice {
    fn new(station: usize, pumps: usize, seed: u64) -> Self {
        let mut points = vec![
            point("seq", Holding, 0, U32, Abcd, 1.0, ""),
            ranged(point("outflow", Holding, 2, F32, Abcd, 1.0, "m3/h"), 0.0, 3000.0),
            ranged(point("suction_pressure", Holding, 4, F32, Abcd, 1.0, "bar"), -1.0, 10.0),
            ranged(point("discharge_pressure", Holding, 6, F32, Abcd, 1.0, "bar"), 0.0, 16.0),
            point("pumps_running", Holding, 8, U16, Abcd, 1.0, ""),
            point("station_alarms", Holding, 9, U16, Abcd, 1.0, ""),
        ];
        for k in 0..pumps as u16 {
            let b = PUMP_BASE + PUMP_BLOCK * k;
            let n = |s: &str| format!("p{}_{s}", k + 1);
            points.extend([
                ranged(point(&n("frequency"), Holding, b, U16, Abcd, 0.01, "Hz"), 0.0, 60.0),
                ranged(point(&n("motor_current"), Holding, b + 1, U16, Abcd, 0.1, "A"), 0.0, 1000.0),
                ranged(point(&n("power"), Holding, b + 2, U16, Abcd, 0.1, "kW"), 0.0, 1000.0),
                ranged(point(&n("vibration"), Holding, b + 3, U16, Abcd, 0.01, "mm/s"), 0.0, 50.0),
                ranged(point(&n("bearing_temperature"), Holding, b + 4, I16, Abcd, 0.1, "degC"), -20.0, 150.0),
                point(&n("status_word"), Holding, b + 5, U16, Abcd, 1.0, ""),
                point(&n("fault_code"), Holding, b + 6, U16, Abcd, 1.0, ""),
                point(&n("run_hours"), Holding, b + 7, U32, Cdab, 1.0, "h"),
                point(&n("starts"), Holding, b + 9, U32, Cdab, 1.0, ""),
            ]);
        }
        for k in 0..pumps as u16 {
            points.push(point(&format!("p{}_running", k + 1), Discrete, k, Bool, Abcd, 1.0, ""));
        }
        let values = vec![0.0; points.len()];
        PumpStationDevice { station, points, values, analog: vec![1, 2, 3], noise: Noise::new(seed) }
    }
}

impl DeviceModel for PumpStationDevice {
    fn profile(&self) -> Profile {
        Profile::PumpStation
    }
    fn points(&self) -> &[PointConfig] {
        &self.points
    }
    fn values(&self) -> &[f64] {
        &self.values
    }
    fn analog(&self) -> &[usize] {
        &self.analog
    }
    fn max_registers_per_request(&self) -> u16 {
        50
    }

    fn step(&mut self, _t: DateTime<Utc>, _dt_s: f64, net: &Network) {
        let s = &net.stations[self.station];
        let v = &mut self.values;
        v[0] = next_seq(v[0]);
        v[1] = s.outflow_m3_per_h * (1.0 + self.noise.gauss(0.003));
        v[2] = s.suction_bar;
        v[3] = s.discharge_bar + self.noise.gauss(0.005);
        v[4] = s.pumps.iter().filter(|p| p.running).count() as f64;
        let alarms = u16::from(s.pumps.iter().any(|p| p.fault_code != 0))
            | (u16::from(s.suction_bar < 0.2) << 1)
            | (u16::from(s.discharge_bar > 8.0) << 2);
        v[5] = f64::from(alarms);
        let n = s.pumps.len();
        for (k, p) in s.pumps.iter().enumerate() {
            let b = STATION_POINTS + 9 * k;
            let mut status = pump_status::REMOTE;
            if p.running {
                status |= pump_status::RUN;
            }
            if p.fault_code != 0 {
                status |= pump_status::FAULT;
            }
            if p.vibration_mm_s > 4.5 || p.bearing_temp_c > 80.0 {
                status |= pump_status::WARNING;
            }
            if p.dry_run {
                status |= pump_status::DRY_RUN;
            }
            v[b] = crate::network::MAINS_HZ * p.speed;
            v[b + 1] = p.current_a * (1.0 + if p.running { self.noise.gauss(0.005) } else { 0.0 });
            v[b + 2] = p.power_kw;
            v[b + 3] = p.vibration_mm_s;
            v[b + 4] = p.bearing_temp_c + self.noise.gauss(0.05);
            v[b + 5] = f64::from(status);
            v[b + 6] = f64::from(p.fault_code);
            v[b + 7] = (p.run_seconds / 3600.0).floor();
            v[b + 8] = f64::from(p.starts);
            v[STATION_POINTS + 9 * n + k] = f64::from(u8::from(p.running));
        }
    }
}

/// Electromagnetic flow meter at a district inlet: word-swapped floats and u64 totalizers in
/// holding registers, as on many magmeters.
#[derive(Debug)]
pub struct FlowMeter {
    district: usize,
    points: Vec<PointConfig>,
    values: Vec<f64>,
    noise: Noise,
    /// Exact forward volume, litres; the register holds its integer part.
    forward_l: f64,
}

/// Nominal bore of a district inlet main, m (DN300).
const INLET_BORE_M: f64 = 0.3;

impl FlowMeter {
    fn new(district: usize, seed: u64) -> Self {
        let points = vec![
            point("seq", Holding, 0, U32, Abcd, 1.0, ""),
            ranged(point("flow", Holding, 2, F32, Cdab, 1.0, "m3/h"), -2000.0, 2000.0),
            ranged(point("velocity", Holding, 4, F32, Cdab, 1.0, "m/s"), -10.0, 10.0),
            point("forward_total", Holding, 6, U64, Cdab, 0.001, "m3"),
            point("reverse_total", Holding, 10, U64, Cdab, 0.001, "m3"),
            point("status_bits", Holding, 14, U16, Abcd, 1.0, ""),
        ];
        let forward_l = 48_213_000.0 + 1_000_000.0 * district as f64;
        let mut values = vec![0.0; points.len()];
        values[3] = forward_l / 1000.0;
        // A district fed from one side sees no reverse flow; the register keeps its factory value.
        values[4] = 1.25;
        FlowMeter { district, points, values, noise: Noise::new(seed), forward_l }
    }

    /// The exact forward volume in litres (what the totalizer integrates).
    pub fn forward_litres(&self) -> f64 {
        self.forward_l
    }
}

impl DeviceModel for FlowMeter {
    fn profile(&self) -> Profile {
        Profile::FlowMeter
    }
    fn points(&self) -> &[PointConfig] {
        &self.points
    }
    fn values(&self) -> &[f64] {
        &self.values
    }
    fn analog(&self) -> &[usize] {
        &[1, 2]
    }

    fn step(&mut self, _t: DateTime<Utc>, dt_s: f64, net: &Network) {
        let q = (net.districts[self.district].inflow_m3_per_h * (1.0 + self.noise.gauss(0.002))).max(0.0);
        // The totalizer integrates the very flow the meter reports, sample by sample.
        self.forward_l += q / 3.6 * dt_s;
        let area = std::f64::consts::PI * INLET_BORE_M * INLET_BORE_M / 4.0;
        let v = &mut self.values;
        v[0] = next_seq(v[0]);
        v[1] = q;
        v[2] = q / 3600.0 / area;
        v[3] = self.forward_l.floor() / 1000.0;
        v[5] = 0.0;
    }
}

/// Pressure logger at a district's critical point: the instantaneous value and the minimum and
/// maximum of the last minute (what shows transients), in input registers.
#[derive(Debug)]
pub struct PressureLogger {
    district: usize,
    points: Vec<PointConfig>,
    values: Vec<f64>,
    noise: Noise,
    window: std::collections::VecDeque<f64>,
    battery_v: f64,
}

impl PressureLogger {
    fn new(district: usize, seed: u64) -> Self {
        let points = vec![
            point("seq", Input, 0, U32, Abcd, 1.0, ""),
            ranged(point("pressure", Input, 2, U16, Abcd, 0.001, "bar"), 0.0, 16.0),
            point("pressure_min_1m", Input, 3, U16, Abcd, 0.001, "bar"),
            point("pressure_max_1m", Input, 4, U16, Abcd, 0.001, "bar"),
            ranged(point("battery_voltage", Input, 5, U16, Abcd, 0.01, "V"), 2.5, 4.2),
            ranged(point("logger_temperature", Input, 6, I16, Abcd, 0.1, "degC"), -40.0, 85.0),
        ];
        let values = vec![0.0; points.len()];
        PressureLogger {
            district,
            points,
            values,
            noise: Noise::new(seed),
            window: Default::default(),
            battery_v: 3.62,
        }
    }
}

impl DeviceModel for PressureLogger {
    fn profile(&self) -> Profile {
        Profile::PressureLogger
    }
    fn points(&self) -> &[PointConfig] {
        &self.points
    }
    fn values(&self) -> &[f64] {
        &self.values
    }
    fn analog(&self) -> &[usize] {
        &[1]
    }

    fn step(&mut self, _t: DateTime<Utc>, dt_s: f64, net: &Network) {
        let p = (net.districts[self.district].critical_pressure_bar + self.noise.gauss(0.004)).max(0.0);
        self.window.push_back(p);
        let keep = (60.0 / dt_s.max(1e-3)).ceil().max(1.0) as usize;
        while self.window.len() > keep {
            self.window.pop_front();
        }
        // Lithium cells sag slowly; a year is about 0.1 V.
        self.battery_v -= dt_s * 0.1 / (365.0 * 86_400.0);
        let v = &mut self.values;
        v[0] = next_seq(v[0]);
        v[1] = p;
        v[2] = self.window.iter().copied().fold(f64::INFINITY, f64::min);
        v[3] = self.window.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        v[4] = self.battery_v;
        v[5] = 8.0 + self.noise.gauss(0.05);
    }
}

/// Reservoir level transmitter: floats in byte-swapped order (BADC), as some older RTUs send.
#[derive(Debug)]
pub struct ReservoirLevel {
    reservoir: usize,
    points: Vec<PointConfig>,
    values: Vec<f64>,
}

impl ReservoirLevel {
    fn new(reservoir: usize) -> Self {
        let points = vec![
            point("seq", Input, 0, U32, Abcd, 1.0, ""),
            ranged(point("level", Input, 2, F32, Badc, 1.0, "m"), 0.0, 20.0),
            point("volume", Input, 4, U32, Abcd, 1.0, "m3"),
            ranged(point("inflow", Input, 6, F32, Badc, 1.0, "m3/h"), 0.0, 5000.0),
            ranged(point("outflow", Input, 8, F32, Badc, 1.0, "m3/h"), 0.0, 5000.0),
            point("alarm_bits", Input, 10, U16, Abcd, 1.0, ""),
        ];
        let values = vec![0.0; points.len()];
        ReservoirLevel { reservoir, points, values }
    }
}

impl DeviceModel for ReservoirLevel {
    fn profile(&self) -> Profile {
        Profile::ReservoirLevel
    }
    fn points(&self) -> &[PointConfig] {
        &self.points
    }
    fn values(&self) -> &[f64] {
        &self.values
    }
    fn analog(&self) -> &[usize] {
        &[1]
    }

    fn step(&mut self, _t: DateTime<Utc>, _dt_s: f64, net: &Network) {
        let r = &net.reservoirs[self.reservoir];
        let outflow: f64 =
            net.stations.iter().filter(|s| s.reservoir == self.reservoir).map(|s| s.outflow_m3_per_h).sum();
        let v = &mut self.values;
        v[0] = next_seq(v[0]);
        v[1] = r.level_m;
        v[2] = (r.level_m * r.spec.area_m2).round();
        v[3] = r.inflow_m3_per_h;
        v[4] = outflow;
        let mut alarms = 0u16;
        if r.level_m > 0.95 * r.spec.depth_m {
            alarms |= 1;
        }
        if r.level_m < 0.3 * r.spec.depth_m {
            alarms |= 2;
        }
        if r.inflow_m3_per_h > 0.0 {
            alarms |= 4;
        }
        v[5] = f64::from(alarms);
    }
}

/// Telemetry unit of a sewer manhole pump station: wet-well level, pump counters in holding
/// registers (u32 low word first), pump and alarm states in discrete inputs.
#[derive(Debug)]
pub struct SewerStationDevice {
    sewer: usize,
    points: Vec<PointConfig>,
    values: Vec<f64>,
}

impl SewerStationDevice {
    fn new(sewer: usize) -> Self {
        let points = vec![
            point("seq", Holding, 0, U32, Abcd, 1.0, ""),
            ranged(point("level", Holding, 2, U16, Abcd, 0.001, "m"), 0.0, 4.0),
            point("p1_starts", Holding, 3, U32, Cdab, 1.0, ""),
            point("p2_starts", Holding, 5, U32, Cdab, 1.0, ""),
            point("p1_run_seconds", Holding, 7, U32, Cdab, 1.0, "s"),
            point("p2_run_seconds", Holding, 9, U32, Cdab, 1.0, "s"),
            point("fault_bits", Holding, 11, U16, Abcd, 1.0, ""),
            point("p1_running", Discrete, 0, Bool, Abcd, 1.0, ""),
            point("p2_running", Discrete, 1, Bool, Abcd, 1.0, ""),
            point("high_level_alarm", Discrete, 2, Bool, Abcd, 1.0, ""),
            point("overflow_alarm", Discrete, 3, Bool, Abcd, 1.0, ""),
        ];
        let values = vec![0.0; points.len()];
        SewerStationDevice { sewer, points, values }
    }
}

impl DeviceModel for SewerStationDevice {
    fn profile(&self) -> Profile {
        Profile::SewerStation
    }
    fn points(&self) -> &[PointConfig] {
        &self.points
    }
    fn values(&self) -> &[f64] {
        &self.values
    }
    fn analog(&self) -> &[usize] {
        &[1]
    }

    fn step(&mut self, _t: DateTime<Utc>, _dt_s: f64, net: &Network) {
        let s = &net.sewers[self.sewer];
        let v = &mut self.values;
        v[0] = next_seq(v[0]);
        v[1] = s.level_m;
        v[2] = f64::from(s.starts[0]);
        v[3] = f64::from(s.starts[1]);
        v[4] = s.run_seconds[0].floor();
        v[5] = s.run_seconds[1].floor();
        v[6] = f64::from(u8::from(s.pump_fault[0]) | (u8::from(s.pump_fault[1]) << 1));
        v[7] = f64::from(u8::from(s.pumps_running[0]));
        v[8] = f64::from(u8::from(s.pumps_running[1]));
        v[9] = f64::from(u8::from(s.level_m >= sewer_levels::HIGH_ALARM));
        v[10] = f64::from(u8::from(s.level_m >= sewer_levels::OVERFLOW));
    }
}
