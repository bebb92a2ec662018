//! Simulated water and sewer field devices, served over Modbus TCP.
//!
//! A [`Simulation`] is built from a [`Scenario`]: a hidden [`network::Network`] (districts,
//! reservoirs, pump stations, sewer stations) and the devices that observe it, each a
//! [`profiles::DeviceModel`] (register map + view of the network) with a [`RegisterImage`]
//! the Modbus server answers from. The simulation steps on a fixed grid of simulated time, so a
//! run is a function of the scenario, the seed and the start time only; real time merely
//! decides when each step is taken (`time_scale` × faster if asked).
//!
//! Events (bursts, leaks, pump trips, wear, sensor and communication faults) are scripted in
//! the scenario or drawn from the seed; every one is recorded with its true start and end
//! ([`Simulation::events`]) so tests can score detectors against ground truth.
//!
//! The simulator never talks to the collector except over Modbus TCP.

mod clock;
mod device;
mod error;
pub mod events;
pub mod network;
pub mod physics;
pub mod profiles;
pub mod scenario;
mod server;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use model::{DeviceConfig, DeviceId};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

pub use clock::SimClock;
pub use device::{CommFault, CommState, RegisterImage};
pub use error::SimError;
use events::{EventKind, EventRecord, TargetKind};
use network::Network;
use profiles::DeviceModel;
pub use scenario::{Scenario, ScenarioError};

/// The scenario `mizumori demo` runs, shipped in the binary.
pub const DEMO_SCENARIO: &str = include_str!("../scenarios/demo.toml");

/// One simulated device.
#[derive(Debug)]
pub struct SimDevice {
    pub name: DeviceId,
    pub unit_id: u8,
    /// Index of the listening address: 0 is the base port, N is base + N.
    pub endpoint: u16,
    model: Box<dyn DeviceModel>,
    image: Arc<RwLock<RegisterImage>>,
    comm: Arc<CommState>,
    /// Indices of the events aimed at this device.
    events: Vec<usize>,
    /// Values held while a flat-line fault lasts.
    frozen: Option<Vec<f64>>,
}

impl SimDevice {
    pub fn model(&self) -> &dyn DeviceModel {
        &*self.model
    }

    /// A copy of the registers a client would read now (sensor faults included, communication
    /// faults not): for harnesses that step the simulation without a network.
    pub fn registers(&self) -> RegisterImage {
        self.image.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Settings that do not change the network, only how it runs.
#[derive(Debug, Clone, Copy)]
pub struct SimOptions {
    /// Seed of every random draw (noise, random events).
    pub seed: u64,
    /// Simulated seconds per real second.
    pub time_scale: f64,
    /// Simulated time between value updates.
    pub update_interval: Duration,
    /// Simulated start time; default: the scenario's `start`, else the wall clock.
    pub start: Option<DateTime<Utc>>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions { seed: 1, time_scale: 1.0, update_interval: Duration::from_secs(1), start: None }
    }
}

/// A network, the devices that observe it, and the clock they run on.
#[derive(Debug)]
pub struct Simulation {
    name: String,
    devices: Vec<SimDevice>,
    network: Network,
    options: SimOptions,
    start: DateTime<Utc>,
    /// Steps taken so far; simulated time is `start + steps × update_interval`.
    steps: u64,
    /// Per endpoint: bumped to drop all its connections.
    epochs: BTreeMap<u16, Arc<AtomicU64>>,
}

impl Simulation {
    /// The demo scenario (a city of about 100,000 people).
    pub fn demo(options: SimOptions) -> Result<Simulation, SimError> {
        let scenario =
            Scenario::parse(Path::new("sensor-sim/scenarios/demo.toml"), DEMO_SCENARIO).map_err(SimError::Scenario)?;
        Simulation::from_scenario(&scenario, options)
    }

    /// Builds the network and devices of `scenario`, and draws its random events.
    pub fn from_scenario(scenario: &Scenario, options: SimOptions) -> Result<Simulation, SimError> {
        if !(options.time_scale.is_finite() && options.time_scale > 0.0) {
            return Err(SimError::BadTimeScale(options.time_scale));
        }
        if options.update_interval.is_zero() {
            return Err(SimError::BadUpdateInterval);
        }
        let start = options.start.or(scenario.start).unwrap_or_else(Utc::now);
        // Whole milliseconds keep every step's time exact in both stores.
        let start = DateTime::from_timestamp_millis(start.timestamp_millis()).expect("a valid time stays valid");
        let districts: Vec<_> = scenario.districts.iter().map(|d| d.get_ref().clone()).collect();
        let reservoirs: Vec<_> = scenario.reservoirs.iter().map(|r| r.get_ref().clone()).collect();
        let stations: Vec<_> = scenario.pump_stations.iter().map(|s| s.get_ref().clone()).collect();
        let sewers: Vec<_> = scenario.sewer_stations.iter().map(|s| s.get_ref().clone()).collect();

        let minutes = |m: f64| chrono::Duration::milliseconds((m * 60_000.0) as i64);
        let mut events: Vec<EventRecord> = scenario
            .events
            .iter()
            .enumerate()
            .map(|(id, e)| {
                let e = e.get_ref();
                EventRecord {
                    id,
                    kind: e.kind,
                    target: e.target.clone(),
                    pump: e
                        .pump
                        .or(matches!(e.kind.target_kind(), TargetKind::PumpStation | TargetKind::PumpOrSewer)
                            .then_some(1)),
                    start: start + minutes(e.start_min),
                    end: start + minutes(e.start_min + e.duration_min),
                    magnitude: e.magnitude.unwrap_or_else(|| e.kind.default_magnitude()),
                    origin: "scripted",
                }
            })
            .collect();
        if let Some(random) = &scenario.random_events {
            let mut per_day: Vec<(EventKind, f64)> = random.per_day.iter().map(|(k, v)| (*k, *v)).collect();
            per_day.sort_by_key(|(k, _)| *k);
            let targets = |kind: EventKind| -> Vec<(String, Option<u8>)> {
                let pumps = |s: &scenario::PumpStationSpec| {
                    (1..=s.pumps).map(|p| (s.name.clone(), Some(p))).collect::<Vec<_>>()
                };
                match kind.target_kind() {
                    TargetKind::District => districts.iter().map(|d| (d.name.clone(), None)).collect(),
                    TargetKind::PumpStation => stations.iter().flat_map(pumps).collect(),
                    TargetKind::Sewer => sewers.iter().map(|s| (s.name.clone(), None)).collect(),
                    TargetKind::PumpOrSewer => stations
                        .iter()
                        .flat_map(pumps)
                        .chain(sewers.iter().flat_map(|s| [(s.name.clone(), Some(1)), (s.name.clone(), Some(2))]))
                        .collect(),
                    TargetKind::Device => scenario.devices.iter().map(|d| (d.get_ref().name.clone(), None)).collect(),
                    TargetKind::City => vec![("city".to_owned(), None)],
                }
            };
            let horizon = chrono::Duration::milliseconds((random.horizon_h * 3_600_000.0) as i64);
            let first_id = events.len();
            events.extend(events::draw_random(&per_day, start, horizon, &targets, options.seed, first_id));
        }

        let network = Network::new(&districts, &reservoirs, &stations, &sewers, events, options.seed);
        let mut devices = Vec::new();
        for (i, spec) in scenario.devices.iter().enumerate() {
            let d = spec.get_ref();
            let index = match d.profile {
                scenario::Profile::PumpStation => stations.iter().position(|s| s.name == d.of),
                scenario::Profile::FlowMeter | scenario::Profile::PressureLogger => {
                    districts.iter().position(|x| x.name == d.of)
                }
                scenario::Profile::ReservoirLevel => reservoirs.iter().position(|x| x.name == d.of),
                scenario::Profile::SewerStation => sewers.iter().position(|x| x.name == d.of),
            }
            .expect("scenario references were checked");
            let seed = options.seed.wrapping_mul(31).wrapping_add(1000 + i as u64);
            let model = profiles::build(d.profile, index, &network, seed);
            let image = Arc::new(RwLock::new(RegisterImage::for_points(model.points())));
            devices.push(SimDevice {
                name: DeviceId::new(&d.name).map_err(|e| SimError::Name(e.to_string()))?,
                unit_id: d.unit_id,
                endpoint: d.endpoint,
                model,
                image,
                comm: Arc::default(),
                events: network
                    .events()
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.target == d.name)
                    .map(|(k, _)| k)
                    .collect(),
                frozen: None,
            });
        }
        let epochs = devices.iter().map(|d| (d.endpoint, Arc::new(AtomicU64::new(0)))).collect();
        let mut sim = Simulation { name: scenario.name.clone(), devices, network, options, start, steps: 0, epochs };
        // Values exist from the start, before the first tick or the first client.
        sim.advance(0.0);
        Ok(sim)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn devices(&self) -> &[SimDevice] {
        &self.devices
    }

    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Every event of the run, scripted and random, with its true start and end.
    pub fn events(&self) -> &[EventRecord] {
        self.network.events()
    }

    /// Simulated time now.
    pub fn now(&self) -> DateTime<Utc> {
        let step_ms = self.options.update_interval.as_millis() as i64;
        self.start + chrono::Duration::milliseconds(step_ms.saturating_mul(self.steps as i64))
    }

    /// Advances one update interval.
    pub fn step(&mut self) {
        self.steps += 1;
        self.advance(self.options.update_interval.as_secs_f64());
    }

    fn advance(&mut self, dt_s: f64) {
        let t = self.now();
        self.network.step(t, dt_s);
        let events = self.network.events();
        for d in &mut self.devices {
            d.model.step(t, dt_s, &self.network);
            let active =
                |kind: EventKind| d.events.iter().map(|&k| &events[k]).find(|e| e.kind == kind && e.is_active(t));
            let mut values = d.model.values().to_vec();
            // Sensor faults corrupt the measurements, not the device: its counter still runs.
            if active(EventKind::SensorFlatline).is_some() {
                let frozen = d.frozen.get_or_insert_with(|| values.clone());
                for &a in d.model.analog() {
                    values[a] = frozen[a];
                }
            } else {
                d.frozen = None;
            }
            if let Some(&first) = d.model.analog().first() {
                if active(EventKind::SensorSpike).is_some() {
                    values[first] *= 8.0;
                }
                if active(EventKind::SensorOutOfRange).is_some() {
                    let p = &d.model.points()[first];
                    values[first] = p.max.map(|m| m * 1.6).unwrap_or(values[first] * 10.0);
                }
            }
            let fault = if active(EventKind::CommTimeout).is_some() {
                CommFault::Silent
            } else if let Some(e) = active(EventKind::CommLateReply) {
                CommFault::Late(e.magnitude as u32)
            } else if let Some(e) = active(EventKind::CommException) {
                CommFault::Exception(e.magnitude as u8)
            } else if active(EventKind::CommUnreachable).is_some() {
                CommFault::Unreachable
            } else {
                CommFault::None
            };
            d.comm.set(fault);
            // A reset happens once, in the step where the event begins.
            let step = chrono::Duration::from_std(self.options.update_interval).unwrap_or_default();
            if d.events
                .iter()
                .map(|&k| &events[k])
                .any(|e| e.kind == EventKind::CommReset && e.start <= t && t - step < e.start)
            {
                if let Some(epoch) = self.epochs.get(&d.endpoint) {
                    epoch.fetch_add(1, Ordering::AcqRel);
                }
            }
            let mut image = d.image.write().unwrap_or_else(|p| p.into_inner());
            image.store(d.model.points(), &values);
        }
    }

    /// The endpoints the devices use, in order.
    pub fn endpoints(&self) -> Vec<u16> {
        self.epochs.keys().copied().collect()
    }

    /// Binds every endpoint: port 0 gives each a free port, port P gives endpoint N port P + N.
    pub async fn bind(&self, base: SocketAddr) -> Result<Vec<(u16, TcpListener)>, SimError> {
        let mut out = Vec::new();
        for e in self.endpoints() {
            let port = if base.port() == 0 { 0 } else { base.port().checked_add(e).ok_or(SimError::PortRange(e))? };
            let addr = SocketAddr::new(base.ip(), port);
            let listener = TcpListener::bind(addr).await.map_err(|source| SimError::Bind { addr, source })?;
            out.push((e, listener));
        }
        Ok(out)
    }

    /// Addresses of endpoints a base address implies without binding (for printing configs).
    pub fn planned_addresses(&self, base: SocketAddr) -> Result<HashMap<u16, SocketAddr>, SimError> {
        if base.port() == 0 {
            return Err(SimError::NeedPort);
        }
        self.endpoints()
            .into_iter()
            .map(|e| Ok((e, SocketAddr::new(base.ip(), base.port().checked_add(e).ok_or(SimError::PortRange(e))?))))
            .collect()
    }

    /// A collector configuration that polls every point of every device.
    pub fn collector_config(&self, addresses: &HashMap<u16, SocketAddr>) -> Vec<DeviceConfig> {
        self.devices
            .iter()
            .map(|d| DeviceConfig {
                max_registers_per_request: d.model.max_registers_per_request(),
                // Every simulated device counts its samples in `seq`.
                sequence_point: Some(model::PointName::new("seq").expect("valid name")),
                ..DeviceConfig::new(
                    d.name.clone(),
                    addresses.get(&d.endpoint).map(ToString::to_string).unwrap_or_default(),
                    d.unit_id,
                    d.model.points().to_vec(),
                )
            })
            .collect()
    }

    /// The same, as the TOML text `mizumori collect --config` reads.
    pub fn collector_config_toml(&self, addresses: &HashMap<u16, SocketAddr>) -> String {
        #[derive(serde::Serialize)]
        struct File {
            device: Vec<DeviceConfig>,
        }
        let body = toml::to_string_pretty(&File { device: self.collector_config(addresses) })
            .expect("device configs always serialize");
        format!(
            "# Collector configuration for scenario {:?}; generated by `mizumori sim --emit-collector-config`.\n\n{body}",
            self.name
        )
    }

    /// Serves the devices on `listeners` until `cancel` fires, stepping on the clock.
    pub async fn run(mut self, listeners: Vec<(u16, TcpListener)>, cancel: CancellationToken) -> Result<(), SimError> {
        let mut servers = Vec::new();
        for (e, listener) in listeners {
            let units = self
                .devices
                .iter()
                .filter(|d| d.endpoint == e)
                .map(|d| {
                    let unit = server::Unit {
                        image: d.image.clone(),
                        comm: d.comm.clone(),
                        max_registers: d.model.max_registers_per_request(),
                    };
                    (d.unit_id, unit)
                })
                .collect();
            let epoch = self.epochs.get(&e).cloned().unwrap_or_default();
            let addr = listener.local_addr().map_err(SimError::Io)?;
            debug!(%addr, endpoint = e, "endpoint listening");
            servers.push(tokio::spawn(server::serve(
                listener,
                server::Endpoint { units: Arc::new(units), epoch },
                cancel.clone(),
            )));
        }
        info!(scenario = %self.name, devices = self.devices.len(), endpoints = servers.len(), time_scale = self.options.time_scale, "simulator serving Modbus TCP");
        let clock = SimClock::start(self.now(), self.options.time_scale);
        let step_ms = self.options.update_interval.as_millis().max(1) as i64;
        let real_period = self.options.update_interval.div_f64(self.options.time_scale).max(Duration::from_millis(1));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + real_period, real_period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let base_steps = self.steps;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticker.tick() => {
                    let due = base_steps + ((clock.now() - clock.origin()).num_milliseconds() / step_ms).max(0) as u64;
                    // Catch up after a stall, but in bounded slices so the server stays responsive.
                    let mut budget = 10_000;
                    while self.steps < due && budget > 0 {
                        self.step();
                        budget -= 1;
                    }
                }
            }
        }
        debug!("simulator stopping");
        for s in servers {
            s.await.map_err(|e| SimError::Io(std::io::Error::other(e)))?.map_err(SimError::Io)?;
        }
        Ok(())
    }
}
