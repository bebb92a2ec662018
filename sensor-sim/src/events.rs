//! Events: what happens to the network, its pumps, its sensors and its communications, each
//! with a true start and end recorded as ground truth for scoring detectors.

use std::fmt;

use chrono::{DateTime, Duration, Timelike, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Every kind of event the simulator can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A main bursts inside a district: inflow steps up, critical-point pressure drops, until repaired.
    Burst,
    /// Background leakage grows steadily: minimum night flow trends up over days.
    LeakGrowth,
    /// Hydrant flushing: a burst-like rise in inflow that ends by itself within an hour.
    HydrantFlushing,
    /// A pump trips: fault code, no flow until the standby starts.
    PumpTrip,
    /// Suction too low for the flow: noisy, lower flow, broadband vibration.
    Cavitation,
    /// Bearing wear: vibration climbs through the ISO 10816 zones, bearing temperature rises.
    BearingWear,
    /// Impeller wear: less head at the same speed, so more energy per m³.
    ImpellerWear,
    /// A sewer pump partly blocked by rags: capacity falls, the wet well rises.
    Blockage,
    /// Rain over the city: sewer inflow rises.
    Rain,
    /// A sensor stuck at its last value.
    SensorFlatline,
    /// One absurd sample.
    SensorSpike,
    /// A sensor reading outside its physical range.
    SensorOutOfRange,
    /// The device stops answering.
    CommTimeout,
    /// The device answers, later than a client waits.
    CommLateReply,
    /// The device answers every request with an exception (magnitude = code: 2, 4 or 6).
    CommException,
    /// The gateway drops every connection (once, at the start).
    CommReset,
    /// The gateway cannot reach the device: exception 0x0B.
    CommUnreachable,
}

/// What an event's target names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    District,
    PumpStation,
    Sewer,
    PumpOrSewer,
    Device,
    City,
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetKind::District => "district",
            TargetKind::PumpStation => "pump station",
            TargetKind::Sewer => "sewer station",
            TargetKind::PumpOrSewer => "pump station or sewer station",
            TargetKind::Device => "device",
            TargetKind::City => "city (write target = \"city\")",
        })
    }
}

impl EventKind {
    pub fn target_kind(self) -> TargetKind {
        use EventKind::*;
        match self {
            Burst | LeakGrowth | HydrantFlushing => TargetKind::District,
            PumpTrip => TargetKind::PumpOrSewer,
            Cavitation | BearingWear | ImpellerWear => TargetKind::PumpStation,
            Blockage => TargetKind::Sewer,
            Rain => TargetKind::City,
            SensorFlatline | SensorSpike | SensorOutOfRange | CommTimeout | CommLateReply | CommException
            | CommReset | CommUnreachable => TargetKind::Device,
        }
    }

    /// Default size when a scenario gives none, in the unit `magnitude_unit` names.
    pub fn default_magnitude(self) -> f64 {
        use EventKind::*;
        match self {
            Burst => 30.0,
            LeakGrowth => 2.0,
            HydrantFlushing => 40.0,
            ImpellerWear => 0.15,
            Blockage => 0.7,
            Rain => 12.0,
            CommLateReply => 1500.0,
            CommException => 6.0,
            _ => 1.0,
        }
    }

    pub fn magnitude_unit(self) -> &'static str {
        use EventKind::*;
        match self {
            Burst | HydrantFlushing => "m3/h of extra flow",
            LeakGrowth => "m3/h of extra leakage per day",
            ImpellerWear => "fraction of head lost at the end",
            Blockage => "fraction of capacity lost",
            Rain => "mm/h",
            CommLateReply => "ms of delay",
            CommException => "exception code",
            _ => "",
        }
    }
}

/// One event with its true times: the ground truth detectors are scored against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: usize,
    pub kind: EventKind,
    pub target: String,
    /// Pump number (1-based) for pump events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pump: Option<u8>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub magnitude: f64,
    /// "scripted" or "random".
    pub origin: &'static str,
}

impl EventRecord {
    pub fn is_active(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// How far through the event `t` is, 0 at the start to 1 at the end.
    pub fn progress(&self, t: DateTime<Utc>) -> f64 {
        let total = (self.end - self.start).num_milliseconds().max(1) as f64;
        ((t - self.start).num_milliseconds() as f64 / total).clamp(0.0, 1.0)
    }
}

/// Plausible duration range of a random event of each kind, minutes.
fn random_duration_min(kind: EventKind, rng: &mut SmallRng) -> f64 {
    use EventKind::*;
    let (lo, hi) = match kind {
        Burst => (240.0, 1440.0),
        LeakGrowth => (2880.0, 10_080.0),
        HydrantFlushing => (10.0, 45.0),
        PumpTrip => (20.0, 180.0),
        Cavitation => (30.0, 240.0),
        BearingWear => (1440.0, 7200.0),
        ImpellerWear => (4320.0, 10_080.0),
        Blockage => (120.0, 720.0),
        Rain => (60.0, 360.0),
        SensorFlatline | SensorOutOfRange => (30.0, 240.0),
        SensorSpike => (0.02, 0.02),
        CommTimeout | CommLateReply | CommException | CommUnreachable => (1.0, 20.0),
        CommReset => (0.1, 0.1),
    };
    rng.random_range(lo..=hi)
}

/// Draws random events for `horizon` from `start`: a Poisson process per kind, a target drawn
/// uniformly among those the kind can hit. Hydrant flushing happens in working hours only.
pub fn draw_random(
    per_day: &[(EventKind, f64)],
    start: DateTime<Utc>,
    horizon: Duration,
    targets: &dyn Fn(EventKind) -> Vec<(String, Option<u8>)>,
    seed: u64,
    first_id: usize,
) -> Vec<EventRecord> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_e7e7);
    let mut out = Vec::new();
    let horizon_min = horizon.num_minutes() as f64;
    for &(kind, rate) in per_day {
        let candidates = targets(kind);
        if rate <= 0.0 || candidates.is_empty() {
            continue;
        }
        let mean_gap_min = 1440.0 / rate;
        let mut t = 0.0;
        loop {
            let u: f64 = rng.random::<f64>().max(1e-12);
            t += -u.ln() * mean_gap_min;
            if t >= horizon_min {
                break;
            }
            let mut at = start + Duration::milliseconds((t * 60_000.0) as i64);
            if kind == EventKind::HydrantFlushing {
                // Crews flush between 09:00 and 16:00 JST (00:00–07:00 UTC).
                let hour = at.hour();
                if hour >= 7 {
                    at += Duration::hours(i64::from(24 - hour) + 1);
                }
            }
            let (target, pump) = candidates[rng.random_range(0..candidates.len())].clone();
            let duration = random_duration_min(kind, &mut rng);
            let magnitude = match kind {
                EventKind::Burst => rng.random_range(15.0..60.0),
                EventKind::HydrantFlushing => rng.random_range(20.0..60.0),
                EventKind::CommException => [2.0, 4.0, 6.0][rng.random_range(0..3)],
                k => k.default_magnitude(),
            };
            out.push(EventRecord {
                id: first_id + out.len(),
                kind,
                target,
                pump,
                start: at,
                end: at + Duration::milliseconds((duration * 60_000.0) as i64),
                magnitude,
                origin: "random",
            });
        }
    }
    out.sort_by_key(|e| (e.start, e.id));
    out
}
