//! Simulated time: real time, optionally sped up.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

/// Maps real elapsed time to simulated time: `origin + elapsed × scale`.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    origin: DateTime<Utc>,
    real_start: Instant,
    scale: f64,
}

impl SimClock {
    pub fn start(origin: DateTime<Utc>, scale: f64) -> Self {
        SimClock { origin, real_start: Instant::now(), scale }
    }

    pub fn origin(&self) -> DateTime<Utc> {
        self.origin
    }

    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = self.real_start.elapsed().as_secs_f64() * self.scale;
        self.origin + Duration::milliseconds((elapsed * 1000.0) as i64)
    }
}
