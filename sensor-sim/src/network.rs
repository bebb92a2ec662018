//! The hidden state every device observes: districts, reservoirs, pump stations and sewer
//! stations, advanced together on the simulated clock.
//!
//! One step computes, in order: rain; each district's demand (pattern × population + leakage +
//! bursts and flushing); each reservoir's outflow and level; each pump station's duty, speed,
//! head, power and condition; each district's inflow and critical-point pressure; each sewer
//! station's wet well. Devices only read this state, so their numbers agree with each other.

use chrono::{DateTime, Utc};

use crate::events::{EventKind, EventRecord};
use crate::physics::{self, Noise, lag};
use crate::scenario::{DistrictSpec, PumpStationSpec, ReservoirSpec, SewerStationSpec};

/// Density × gravity over 10^5: metres of water column per bar is 1/this.
const BAR_PER_M: f64 = 1000.0 * 9.81 / 1e5;
const LINE_VOLTAGE_V: f64 = 400.0;
const POWER_FACTOR: f64 = 0.85;
const MOTOR_EFFICIENCY: f64 = 0.94;
/// Drive frequency at full speed.
pub const MAINS_HZ: f64 = 50.0;
/// The drives run the pumps up to 55 Hz.
const MAX_SPEED: f64 = 1.1;
/// Seconds before the standby pump starts after the duty pump trips.
const STANDBY_START_S: f64 = 60.0;

#[derive(Debug, Clone)]
pub struct District {
    pub spec: DistrictSpec,
    pub station: usize,
    shape: physics::District,
    noise: Noise,
    /// Slow multiplicative demand noise (AR(1)), so flow wanders like real demand.
    wander: f64,
    pub leakage_m3_per_h: f64,
    /// Demand including leakage, bursts and flushing, m³/h.
    pub demand_m3_per_h: f64,
    /// What reaches the district through its inlet, m³/h.
    pub inflow_m3_per_h: f64,
    pub critical_pressure_bar: f64,
    /// Pipe friction: m of headloss per (m³/h)² between the station and the critical point.
    friction: f64,
}

#[derive(Debug, Clone)]
pub struct Reservoir {
    pub spec: ReservoirSpec,
    pub level_m: f64,
    pub inflow_m3_per_h: f64,
    pub outflow_m3_per_h: f64,
    filling: bool,
}

#[derive(Debug, Clone)]
pub struct Pump {
    pub running: bool,
    pub fault_code: u16,
    pub speed: f64,
    pub power_kw: f64,
    pub current_a: f64,
    pub vibration_mm_s: f64,
    pub bearing_temp_c: f64,
    pub run_seconds: f64,
    pub starts: u32,
    pub cavitating: bool,
    pub dry_run: bool,
    /// Flow through this pump, m³/h.
    pub flow_m3_per_h: f64,
}

#[derive(Debug, Clone)]
pub struct PumpStation {
    pub spec: PumpStationSpec,
    pub reservoir: usize,
    pub districts: Vec<usize>,
    pub pumps: Vec<Pump>,
    /// Which pump is on duty (the others stand by).
    pub duty: usize,
    /// Seconds since the duty pump stopped without a standby running.
    pub outage_s: f64,
    pub outflow_m3_per_h: f64,
    pub suction_bar: f64,
    pub discharge_bar: f64,
    pub curve: PumpCurve,
    noise: Noise,
}

/// One pump's characteristic, with the affinity laws built in: at speed ratio s, the head is
/// `h0·s²·(1 − wear) − k·Q²` and the efficiency depends only on Q/s, so flow scales with s,
/// head with s² and power with s³ between similar operating points.
#[derive(Debug, Clone, Copy)]
pub struct PumpCurve {
    /// Shut-off head at full speed, m.
    pub h0_m: f64,
    /// Droop, m per (m³/h)².
    pub k: f64,
    /// Best-efficiency flow at full speed, m³/h.
    pub q_bep: f64,
}

impl PumpCurve {
    pub fn head_m(&self, q: f64, speed: f64, wear: f64) -> f64 {
        self.h0_m * (1.0 - wear) * speed * speed - self.k * q * q
    }

    /// Speed ratio that delivers `head_m` at `q`.
    pub fn speed_for(&self, head_m: f64, q: f64, wear: f64) -> f64 {
        ((head_m + self.k * q * q) / (self.h0_m * (1.0 - wear))).sqrt()
    }

    pub fn efficiency(&self, q: f64, speed: f64) -> f64 {
        let ratio = q / speed.max(1e-9) / self.q_bep;
        (0.78 * (1.0 - 0.45 * (ratio - 1.0).powi(2))).clamp(0.25, 0.78)
    }

    /// Electrical power drawn, kW.
    pub fn power_kw(&self, q: f64, speed: f64, wear: f64) -> f64 {
        let hydraulic_kw = 9.81 * (q / 3600.0) * self.head_m(q, speed, wear).max(0.0);
        hydraulic_kw / self.efficiency(q, speed) / MOTOR_EFFICIENCY
    }
}

#[derive(Debug, Clone)]
pub struct SewerStation {
    pub spec: SewerStationSpec,
    pub level_m: f64,
    pub inflow_m3_per_h: f64,
    pub pumps_running: [bool; 2],
    pub starts: [u32; 2],
    pub run_seconds: [f64; 2],
    pub pump_fault: [bool; 2],
    lead: usize,
    /// The water-use pattern of the people the station serves.
    dry: physics::District,
    noise: Noise,
}

/// Levels of a sewer wet well, m above its floor.
pub mod sewer_levels {
    pub const STOP: f64 = 0.4;
    pub const LEAD_START: f64 = 1.2;
    pub const LAG_START: f64 = 1.6;
    pub const HIGH_ALARM: f64 = 1.9;
    pub const OVERFLOW: f64 = 2.6;
}

/// The whole hidden state.
#[derive(Debug, Clone)]
pub struct Network {
    pub districts: Vec<District>,
    pub reservoirs: Vec<Reservoir>,
    pub stations: Vec<PumpStation>,
    pub sewers: Vec<SewerStation>,
    pub rain_mm_per_h: f64,
    events: Vec<EventRecord>,
}

fn index_of<T>(items: &[T], name: &str, key: impl Fn(&T) -> &str) -> usize {
    items.iter().position(|i| key(i) == name).expect("scenario references were checked")
}

/// Seed of one entity's noise: the run's seed mixed with the entity's kind and position.
fn entity_seed(seed: u64, kind: u64, i: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (kind << 48) ^ (i as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

impl Network {
    pub fn new(
        districts: &[DistrictSpec],
        reservoirs: &[ReservoirSpec],
        stations: &[PumpStationSpec],
        sewers: &[SewerStationSpec],
        events: Vec<EventRecord>,
        seed: u64,
    ) -> Network {
        let reservoirs: Vec<Reservoir> = reservoirs
            .iter()
            .map(|r| Reservoir {
                spec: r.clone(),
                level_m: r.initial_level_m.unwrap_or(0.75 * r.depth_m),
                inflow_m3_per_h: 0.0,
                outflow_m3_per_h: 0.0,
                filling: false,
            })
            .collect();
        let mut districts: Vec<District> = districts
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let shape = physics::District::new(&d.name, d.population);
                let mean = shape.mean_consumption_m3_per_h();
                // 12 m of friction loss at a peak of 1.8 × mean.
                let friction = 12.0 / (1.8 * mean).powi(2);
                District {
                    station: index_of(stations, &d.fed_by, |s| &s.name),
                    leakage_m3_per_h: d.leakage_m3_per_h.unwrap_or(shape.leakage_m3_per_h),
                    spec: d.clone(),
                    shape,
                    noise: Noise::new(entity_seed(seed, 1, i)),
                    wander: 0.0,
                    demand_m3_per_h: 0.0,
                    inflow_m3_per_h: 0.0,
                    critical_pressure_bar: 0.0,
                    friction,
                }
            })
            .collect();
        let stations: Vec<PumpStation> = stations
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let served: Vec<usize> =
                    districts.iter().enumerate().filter(|(_, d)| d.spec.fed_by == s.name).map(|(j, _)| j).collect();
                let mean: f64 = served
                    .iter()
                    .map(|&j| districts[j].shape.mean_consumption_m3_per_h() + districts[j].leakage_m3_per_h)
                    .sum::<f64>()
                    .max(10.0);
                // Sized so that one pump at full speed delivers the setpoint head at twice the
                // mean flow: the usual margin for peak hour plus a burst.
                let q_design = 2.0 * mean;
                let h_design = s.setpoint_bar / BAR_PER_M;
                let h0_m = 1.3 * h_design;
                PumpStation {
                    reservoir: index_of(&reservoirs, &s.draws_from, |r| &r.spec.name),
                    districts: served,
                    pumps: (0..s.pumps)
                        .map(|p| Pump {
                            running: p == 0,
                            fault_code: 0,
                            speed: 0.0,
                            power_kw: 0.0,
                            current_a: 0.0,
                            vibration_mm_s: 0.0,
                            bearing_temp_c: 38.0,
                            run_seconds: 3600.0 * (21_000.0 + 1500.0 * f64::from(p)),
                            starts: 380 + 40 * u32::from(p),
                            cavitating: false,
                            dry_run: false,
                            flow_m3_per_h: 0.0,
                        })
                        .collect(),
                    duty: 0,
                    outage_s: 0.0,
                    outflow_m3_per_h: 0.0,
                    suction_bar: 0.0,
                    discharge_bar: 0.0,
                    curve: PumpCurve { h0_m, k: (h0_m - h_design) / (q_design * q_design), q_bep: 0.8 * q_design },
                    noise: Noise::new(entity_seed(seed, 2, i)),
                    spec: s.clone(),
                }
            })
            .collect();
        let sewers = sewers
            .iter()
            .enumerate()
            .map(|(i, s)| SewerStation {
                spec: s.clone(),
                level_m: 0.8,
                inflow_m3_per_h: 0.0,
                pumps_running: [false; 2],
                starts: [1200, 1180],
                run_seconds: [3600.0 * 4100.0, 3600.0 * 4050.0],
                pump_fault: [false; 2],
                lead: 0,
                dry: physics::District::new(&s.name, s.population),
                noise: Noise::new(entity_seed(seed, 3, i)),
            })
            .collect();
        for d in &mut districts {
            d.inflow_m3_per_h = d.shape.inflow_m3_per_h(Utc::now());
        }
        Network { districts, reservoirs, stations, sewers, rain_mm_per_h: 0.0, events }
    }

    pub fn events(&self) -> &[EventRecord] {
        &self.events
    }

    /// Active events of `kind` on `target` at `t`.
    pub fn active<'a>(
        &'a self,
        kind: EventKind,
        target: &'a str,
        t: DateTime<Utc>,
    ) -> impl Iterator<Item = &'a EventRecord> + 'a {
        self.events.iter().filter(move |e| e.kind == kind && e.target == target && e.is_active(t))
    }

    /// Advances everything by `dt_s` seconds to `t`.
    pub fn step(&mut self, t: DateTime<Utc>, dt_s: f64) {
        self.rain_mm_per_h = self.active(EventKind::Rain, "city", t).map(|e| e.magnitude).sum();
        self.step_districts(t);
        self.step_stations(t, dt_s);
        self.step_reservoirs(dt_s);
        self.step_sewers(t, dt_s);
    }

    fn step_districts(&mut self, t: DateTime<Utc>) {
        for i in 0..self.districts.len() {
            let name = self.districts[i].spec.name.clone();
            let mut extra = 0.0;
            for e in self.active(EventKind::Burst, &name, t).chain(self.active(EventKind::HydrantFlushing, &name, t)) {
                // Bursts open over about two minutes; a hydrant is opened and closed by hand.
                let ramp = ((t - e.start).num_seconds() as f64 / 120.0).clamp(0.0, 1.0);
                extra += e.magnitude * if e.kind == EventKind::Burst { ramp } else { 1.0 };
            }
            let growth: f64 = self
                .events
                .iter()
                .filter(|e| e.kind == EventKind::LeakGrowth && e.target == name && e.start <= t)
                .map(|e| e.magnitude * (t.min(e.end) - e.start).num_seconds() as f64 / 86_400.0)
                .sum();
            let d = &mut self.districts[i];
            d.wander = 0.995 * d.wander + d.noise.gauss(0.004);
            let consumption =
                d.shape.mean_consumption_m3_per_h() * d.shape.pattern(t) * (1.0 + d.wander + d.noise.gauss(0.01));
            d.demand_m3_per_h = consumption.max(0.0) + d.leakage_m3_per_h + growth + extra;
        }
    }

    fn step_stations(&mut self, t: DateTime<Utc>, dt_s: f64) {
        for si in 0..self.stations.len() {
            let name = self.stations[si].spec.name.clone();
            let trips: Vec<(u8, bool)> = (1..=self.stations[si].pumps.len() as u8)
                .map(|p| (p, self.active(EventKind::PumpTrip, &name, t).any(|e| e.pump.unwrap_or(1) == p)))
                .collect();
            let cavitation = self.active(EventKind::Cavitation, &name, t).next().is_some();
            let wear_bearing: Vec<f64> = (1..=self.stations[si].pumps.len() as u8)
                .map(|p| {
                    self.events
                        .iter()
                        .filter(|e| {
                            e.kind == EventKind::BearingWear
                                && e.target == name
                                && e.pump.unwrap_or(1) == p
                                && e.start <= t
                        })
                        .map(|e| e.progress(t))
                        .fold(0.0, f64::max)
                })
                .collect();
            let wear_impeller: Vec<f64> = (1..=self.stations[si].pumps.len() as u8)
                .map(|p| {
                    self.events
                        .iter()
                        .filter(|e| {
                            e.kind == EventKind::ImpellerWear
                                && e.target == name
                                && e.pump.unwrap_or(1) == p
                                && e.start <= t
                        })
                        .map(|e| e.magnitude * e.progress(t))
                        .fold(0.0, f64::max)
                })
                .collect();
            let demand: f64 = self.stations[si].districts.iter().map(|&d| self.districts[d].demand_m3_per_h).sum();
            let reservoir = &self.reservoirs[self.stations[si].reservoir];
            let suction_head = reservoir.spec.floor_elevation_m + reservoir.level_m;
            let s = &mut self.stations[si];

            // Trips: the tripped pump stops with a fault code; after a delay the next healthy
            // pump takes duty.
            for (p, tripped) in &trips {
                let pump = &mut s.pumps[usize::from(*p) - 1];
                if *tripped && pump.fault_code == 0 {
                    pump.fault_code = 0x2310; // "overcurrent" in the style of drive fault codes
                    pump.running = false;
                } else if !*tripped && pump.fault_code != 0 {
                    pump.fault_code = 0;
                }
            }
            if s.pumps[s.duty].fault_code != 0 || !s.pumps.iter().any(|p| p.running) {
                s.outage_s += dt_s;
                if s.outage_s >= STANDBY_START_S {
                    if let Some(next) =
                        (0..s.pumps.len()).map(|k| (s.duty + k) % s.pumps.len()).find(|&k| s.pumps[k].fault_code == 0)
                    {
                        if !s.pumps[next].running {
                            s.pumps[next].running = true;
                            s.pumps[next].starts += 1;
                        }
                        s.duty = next;
                        s.outage_s = 0.0;
                    }
                }
            } else {
                s.outage_s = 0.0;
            }
            let duty = s.duty;
            // One duty pump at a time: the others stand by.
            for (k, pump) in s.pumps.iter_mut().enumerate() {
                if k != duty {
                    pump.running = false;
                }
            }
            let pumping = s.pumps[duty].running && s.pumps[duty].fault_code == 0;
            let setpoint_head = s.spec.setpoint_bar / BAR_PER_M;
            let mut q = if pumping { demand } else { 0.0 };
            let mut head = 0.0;
            for (k, pump) in s.pumps.iter_mut().enumerate() {
                let wear = wear_impeller[k];
                if k == duty && pumping {
                    // Cavitation: the pump loses 3-10 % of its flow and surges.
                    pump.cavitating = cavitation;
                    if cavitation {
                        q *= 0.93 + s.noise.gauss(0.02);
                    }
                    let need = (setpoint_head - suction_head).max(1.0);
                    pump.speed = s.curve.speed_for(need, q, wear).min(MAX_SPEED);
                    head = s.curve.head_m(q, pump.speed, wear);
                    pump.power_kw = s.curve.power_kw(q, pump.speed, wear);
                    pump.flow_m3_per_h = q;
                    pump.run_seconds += dt_s;
                } else {
                    pump.speed = 0.0;
                    pump.power_kw = 0.0;
                    pump.flow_m3_per_h = 0.0;
                    pump.cavitating = false;
                }
                pump.current_a = pump.power_kw * 1000.0 / (3f64.sqrt() * LINE_VOLTAGE_V * POWER_FACTOR);
                pump.dry_run = pumping && k == duty && suction_head < 0.5;
                // ISO 10816 zone A (below 1.4 mm/s) when healthy and turning; wear multiplies it
                // up to eight times by the end, through zones B, C and D.
                let healthy = if pump.speed > 0.0 { 0.7 + 0.6 * pump.speed * pump.speed } else { 0.05 };
                let bearing = (wear_bearing[k] * 8f64.ln()).exp();
                let cav = if pump.cavitating { 2.5 + s.noise.gauss(0.4).abs() } else { 1.0 };
                pump.vibration_mm_s = (healthy * bearing * cav + s.noise.gauss(0.03)).max(0.0);
                let target_temp = 30.0 + 18.0 * pump.speed * pump.speed + 25.0 * wear_bearing[k];
                pump.bearing_temp_c = lag(pump.bearing_temp_c, target_temp, dt_s, 1200.0);
            }
            s.outflow_m3_per_h = q;
            s.suction_bar = suction_head * BAR_PER_M + s.noise.gauss(0.003);
            let surge = if s.pumps[duty].cavitating { s.noise.gauss(0.05 * head) } else { 0.0 };
            s.discharge_bar = (suction_head + head + surge) * BAR_PER_M;
            if !pumping {
                s.discharge_bar = suction_head * BAR_PER_M;
            }
            let discharge_head = s.discharge_bar / BAR_PER_M;
            let station_flow_share = if demand > 0.0 { q / demand } else { 0.0 };
            for &di in &self.stations[si].districts.clone() {
                let d = &mut self.districts[di];
                d.inflow_m3_per_h = d.demand_m3_per_h * station_flow_share;
                let loss = d.friction * d.inflow_m3_per_h * d.inflow_m3_per_h;
                d.critical_pressure_bar = ((discharge_head - loss - d.spec.critical_elevation_m) * BAR_PER_M).max(0.0);
            }
            let r = self.stations[si].reservoir;
            self.reservoirs[r].outflow_m3_per_h += q;
        }
    }

    fn step_reservoirs(&mut self, dt_s: f64) {
        for r in &mut self.reservoirs {
            // The inlet valve opens below 60 % and closes above 90 % of depth.
            if r.level_m < 0.6 * r.spec.depth_m {
                r.filling = true;
            } else if r.level_m > 0.9 * r.spec.depth_m {
                r.filling = false;
            }
            r.inflow_m3_per_h = if r.filling { r.spec.inflow_m3_per_h } else { 0.0 };
            r.level_m = (r.level_m + (r.inflow_m3_per_h - r.outflow_m3_per_h) / 3600.0 * dt_s / r.spec.area_m2)
                .clamp(0.0, r.spec.depth_m);
            // Outflow is summed afresh by the stations each step.
            r.outflow_m3_per_h = 0.0;
        }
    }

    fn step_sewers(&mut self, t: DateTime<Utc>, dt_s: f64) {
        use sewer_levels::*;
        for i in 0..self.sewers.len() {
            let name = self.sewers[i].spec.name.clone();
            let blockage: f64 = self.active(EventKind::Blockage, &name, t).map(|e| e.magnitude).fold(0.0, f64::max);
            let trips: Vec<bool> = (1..=2u8)
                .map(|p| self.active(EventKind::PumpTrip, &name, t).any(|e| e.pump.unwrap_or(1) == p))
                .collect();
            let rain = self.rain_mm_per_h;
            let s = &mut self.sewers[i];
            // Sewage follows water use about an hour later; inflow and infiltration add about
            // 0.5 m³/h per hectare for each mm/h of rain in a separate sewer.
            let dry_flow = s.dry.mean_consumption_m3_per_h() * s.dry.pattern(t - chrono::Duration::hours(1)) * 0.9;
            s.inflow_m3_per_h = (dry_flow * (1.0 + s.noise.gauss(0.03)) + 0.5 * rain * s.spec.catchment_ha).max(0.0);
            s.pump_fault = [trips[0], trips[1]];
            let lag = 1 - s.lead;
            let mut want = [false; 2];
            if s.level_m >= LEAD_START || (s.pumps_running[s.lead] && s.level_m > STOP) {
                want[s.lead] = true;
            }
            if s.level_m >= LAG_START || (s.pumps_running[lag] && s.level_m > STOP + 0.2) {
                want[lag] = true;
            }
            // A failed lead pump hands over to the other one.
            if want[s.lead] && s.pump_fault[s.lead] {
                want[lag] = true;
            }
            let mut out = 0.0;
            // `p` indexes four per-pump arrays at once.
            #[allow(clippy::needless_range_loop)]
            for p in 0..2 {
                let run = want[p] && !s.pump_fault[p];
                if run && !s.pumps_running[p] {
                    s.starts[p] += 1;
                }
                if !run && s.pumps_running[p] && p == s.lead {
                    // Alternate the lead pump each cycle to even out wear.
                    s.lead = 1 - s.lead;
                }
                s.pumps_running[p] = run;
                if run {
                    s.run_seconds[p] += dt_s;
                    out += s.spec.pump_capacity_m3_per_h * (1.0 - blockage);
                }
            }
            s.level_m = (s.level_m + (s.inflow_m3_per_h - out) / 3600.0 * dt_s / s.spec.wet_well_area_m2)
                .clamp(0.0, OVERFLOW + 0.3);
        }
    }
}
