//! Simulated water and sewer field devices, served over Modbus TCP.
//!
//! A [`Simulation`] holds devices; each device is a [`DeviceModel`] (the physics and the register
//! map) plus a [`RegisterImage`] (what a Modbus client reads). A tick task advances every model
//! on the simulated clock and encodes its values into the image with the register codec from
//! `model`; the Modbus server answers from the images. The two only share the images, so the
//! physics never waits on the network and a slow client never slows the physics.
//!
//! This is the first cut: one district fed by a booster pump station, measured by a flow meter
//! at the district inlet, all behind one gateway address. Scenarios, events and quirks come
//! with the sensor-sim issue; new device kinds plug in behind [`DeviceModel`].
//!
//! The simulator never talks to the collector except over Modbus TCP.

mod clock;
mod device;
mod error;
pub mod physics;
pub mod profiles;
mod server;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use model::{DeviceConfig, DeviceId, WordOrder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

pub use clock::SimClock;
pub use device::{DeviceModel, RegisterImage};
pub use error::SimError;

/// One simulated device: a unit id on the gateway, its model and its register image.
#[derive(Debug)]
pub struct SimDevice {
    pub name: DeviceId,
    pub unit_id: u8,
    model: Box<dyn DeviceModel>,
    image: Arc<RwLock<RegisterImage>>,
}

impl SimDevice {
    pub fn new(name: DeviceId, unit_id: u8, model: Box<dyn DeviceModel>) -> Self {
        let image = Arc::new(RwLock::new(RegisterImage::for_points(model.points())));
        SimDevice {
            name,
            unit_id,
            model,
            image,
        }
    }

    pub fn model(&self) -> &dyn DeviceModel {
        &*self.model
    }
}

/// Settings that do not change the devices, only how they run.
#[derive(Debug, Clone, Copy)]
pub struct SimOptions {
    /// Seed of every random draw (noise), so two runs with the same seed agree.
    pub seed: u64,
    /// Simulated seconds per real second.
    pub time_scale: f64,
    /// Simulated time between value updates.
    pub update_interval: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: 1,
            time_scale: 1.0,
            update_interval: Duration::from_secs(1),
        }
    }
}

/// A set of devices and the clock they run on.
#[derive(Debug)]
pub struct Simulation {
    devices: Vec<SimDevice>,
    options: SimOptions,
}

impl Simulation {
    pub fn new(devices: Vec<SimDevice>, options: SimOptions) -> Result<Self, SimError> {
        let mut seen = std::collections::HashSet::new();
        for d in &devices {
            if !seen.insert(d.unit_id) {
                return Err(SimError::DuplicateUnit {
                    unit_id: d.unit_id,
                    device: d.name.to_string(),
                });
            }
        }
        if !(options.time_scale.is_finite() && options.time_scale > 0.0) {
            return Err(SimError::BadTimeScale(options.time_scale));
        }
        let mut sim = Simulation { devices, options };
        // Values exist from the start, before the first tick or the first client.
        sim.step(Utc::now(), 0.0);
        Ok(sim)
    }

    /// The demo network of the first cut: district `dma01` fed by pump station `ps01` (unit 1)
    /// and metered at its inlet by `fm01` (unit 2).
    pub fn demo(options: SimOptions) -> Result<Self, SimError> {
        let district = physics::District::new("dma01", 12_000.0);
        let devices = vec![
            SimDevice::new(
                DeviceId::new("ps01").expect("valid name"),
                1,
                Box::new(profiles::PumpStation::new(district.clone(), options.seed)),
            ),
            SimDevice::new(
                DeviceId::new("fm01").expect("valid name"),
                2,
                Box::new(profiles::FlowMeter::new(
                    district,
                    options.seed.wrapping_add(1),
                )),
            ),
        ];
        Simulation::new(devices, options)
    }

    pub fn devices(&self) -> &[SimDevice] {
        &self.devices
    }

    /// A collector configuration that polls every point of every device at `address`.
    pub fn collector_config(&self, address: SocketAddr) -> Vec<DeviceConfig> {
        self.devices
            .iter()
            .map(|d| DeviceConfig {
                name: d.name.clone(),
                address: address.to_string(),
                unit_id: d.unit_id,
                poll_interval_ms: model::config::DEFAULT_POLL_INTERVAL_MS,
                timeout_ms: model::config::DEFAULT_TIMEOUT_MS,
                word_order: WordOrder::Abcd,
                max_registers_per_request: d.model.max_registers_per_request(),
                points: d.model.points().to_vec(),
            })
            .collect()
    }

    /// The same, as the TOML text `mizumori collect --config` reads.
    pub fn collector_config_toml(&self, address: SocketAddr) -> String {
        #[derive(serde::Serialize)]
        struct File {
            device: Vec<DeviceConfig>,
        }
        let body = toml::to_string_pretty(&File {
            device: self.collector_config(address),
        })
        .expect("device configs always serialize");
        format!(
            "# Collector configuration for the simulated devices at {address}; generated by `mizumori sim`.\n\n{body}"
        )
    }

    /// Advances every device by `dt_s` seconds to `now` and refreshes its registers.
    pub fn step(&mut self, now: DateTime<Utc>, dt_s: f64) {
        for d in &mut self.devices {
            d.model.step(now, dt_s);
            let mut image = d.image.write().unwrap_or_else(|p| p.into_inner());
            image.store(d.model.points(), d.model.values());
        }
    }

    /// Serves the devices on `listener` until `cancel` fires, updating values on the clock.
    pub async fn run(
        mut self,
        listener: TcpListener,
        cancel: CancellationToken,
    ) -> Result<(), SimError> {
        let addr = listener.local_addr().map_err(SimError::Io)?;
        let clock = SimClock::start(Utc::now(), self.options.time_scale);
        let units = server::Units::new(self.devices.iter().map(|d| (d.unit_id, d.image.clone())));
        info!(%addr, devices = self.devices.len(), time_scale = self.options.time_scale, "simulator serving Modbus TCP");
        let server = tokio::spawn(server::serve(listener, units, cancel.clone()));
        let real_period = self
            .options
            .update_interval
            .div_f64(self.options.time_scale)
            .max(Duration::from_millis(1));
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + real_period, real_period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last = clock.now();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticker.tick() => {
                    let now = clock.now();
                    let dt = (now - last).num_milliseconds() as f64 / 1000.0;
                    if dt > 0.0 {
                        self.step(now, dt);
                        last = now;
                    }
                }
            }
        }
        debug!("simulator stopping");
        server
            .await
            .map_err(|e| SimError::Io(std::io::Error::other(e)))?
            .map_err(SimError::Io)
    }
}
