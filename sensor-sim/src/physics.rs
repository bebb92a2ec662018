//! The hidden state behind the devices: water demand of a district over the day and week.
//!
//! Every device that sees a district's water (the pump station feeding it, the meter at its
//! inlet) derives its values from the same [`District`], so the numbers agree with each other
//! the way they do in a real network.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Japan Standard Time offset: the diurnal pattern follows local clocks, not UTC.
const JST_OFFSET_S: i64 = 9 * 3600;

/// Household water use per person and day in Japanese cities, about 300 L (JWWA statistics).
pub const PER_CAPITA_M3_PER_DAY: f64 = 0.30;

/// Un-normalised shape of residential demand over a day, by hour (0–24, local time): a morning
/// peak around 07:30, a smaller midday shoulder and an evening peak around 19:30, with a
/// night minimum at 03:00–04:00.
fn raw_shape(hour: f64) -> f64 {
    // Distances wrap around midnight, so the late-evening tail carries on past 00:00.
    let bump = |centre: f64, width: f64| {
        let d = (hour - centre + 12.0).rem_euclid(24.0) - 12.0;
        (-(d / width).powi(2) / 2.0).exp()
    };
    0.35 + 1.05 * bump(7.5, 1.4) + 0.35 * bump(12.3, 1.6) + 0.85 * bump(19.5, 2.0) + 0.2 * bump(23.0, 1.5)
}

/// A district metered area (DMA): population, background leakage, and its demand over time.
#[derive(Debug, Clone)]
pub struct District {
    pub name: String,
    pub population: f64,
    /// Mean of `raw_shape` over a day, so that the pattern averages to 1.
    shape_mean: f64,
    /// Background leakage, m³/h, flowing at every hour.
    pub leakage_m3_per_h: f64,
}

impl District {
    pub fn new(name: &str, population: f64) -> Self {
        let shape_mean = (0..1440).map(|m| raw_shape(f64::from(m) / 60.0)).sum::<f64>() / 1440.0;
        let mean = population * PER_CAPITA_M3_PER_DAY / 24.0;
        // Background leakage of about 8 % of average consumption, typical of a well-run
        // Japanese network (non-revenue water is low by world standards).
        District { name: name.to_owned(), population, shape_mean, leakage_m3_per_h: 0.08 * mean }
    }

    /// Mean consumption, m³/h, without leakage.
    pub fn mean_consumption_m3_per_h(&self) -> f64 {
        self.population * PER_CAPITA_M3_PER_DAY / 24.0
    }

    /// Demand pattern factor at `t` (about 0.4 at night to 1.5 at the morning peak).
    pub fn pattern(&self, t: DateTime<Utc>) -> f64 {
        let local = t + chrono::Duration::seconds(JST_OFFSET_S);
        let hour = f64::from(local.hour()) + f64::from(local.minute()) / 60.0 + f64::from(local.second()) / 3600.0;
        let weekend = matches!(local.weekday(), Weekday::Sat | Weekday::Sun);
        let f = raw_shape(hour) / self.shape_mean;
        // Weekends: the morning peak comes later and lower; approximated by a flatter day.
        if weekend { 0.85 * f + 0.15 } else { f }
    }

    /// Noise-free inflow to the district at `t`, m³/h.
    pub fn inflow_m3_per_h(&self, t: DateTime<Utc>) -> f64 {
        self.mean_consumption_m3_per_h() * self.pattern(t) + self.leakage_m3_per_h
    }
}

/// Seeded Gaussian noise (Box–Muller), so that a run with a given seed is repeatable.
#[derive(Debug, Clone)]
pub struct Noise(SmallRng);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Noise(SmallRng::seed_from_u64(seed))
    }

    /// A draw from N(0, sd²).
    pub fn gauss(&mut self, sd: f64) -> f64 {
        let u1: f64 = self.0.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = self.0.random();
        sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// A first-order lag toward a target, for temperatures and other slow quantities.
pub fn lag(current: f64, target: f64, dt_s: f64, time_constant_s: f64) -> f64 {
    current + (target - current) * (1.0 - (-dt_s / time_constant_s).exp())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn pattern_averages_to_one_with_a_night_minimum() {
        let d = District::new("d", 10_000.0);
        // A Wednesday, whole day in JST (UTC 15:00 the day before).
        let start = Utc.with_ymd_and_hms(2026, 4, 7, 15, 0, 0).unwrap();
        let factors: Vec<f64> = (0..1440).map(|m| d.pattern(start + chrono::Duration::minutes(m))).collect();
        let mean = factors.iter().sum::<f64>() / 1440.0;
        assert!((mean - 1.0).abs() < 1e-9, "mean {mean}");
        let (min_idx, _) = factors.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).unwrap();
        let min_hour = min_idx as f64 / 60.0;
        assert!((1.0..=5.0).contains(&min_hour), "night minimum at {min_hour} h");
    }
}
