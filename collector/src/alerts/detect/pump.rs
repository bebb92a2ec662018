//! Pump health from vibration: the ISO 10816 zone a running pump's bearing vibration is in,
//! and cavitation, which multiplies broadband vibration within minutes.
//!
//! Vibration is judged on five-minute means of readings taken while the pump runs (its drive
//! frequency above 5 Hz), so start-up transients and noise do not count. Zones after ISO
//! 10816-3 for pumps with a separate driver on a rigid foundation (group 3; shared/reference/
//! collector.md §5.3): A/B at 2.3 mm/s, B/C at 4.5 mm/s ("restricted operation"), C/D at
//! 7.1 mm/s ("damage"). Bearing wear climbs through them over days; cavitation jumps to two to
//! four times the level of an hour before, which wear never does that fast.
//!
//! With a `bearing_temperature` input the detector also watches the bearing's temperature
//! against its own learned baseline at the same speed: a worn bearing runs hotter at the same
//! duty, while speed alone moves the temperature a lot (friction grows with speed²). The
//! temperature follows speed with a thermal lag, so the speed is lagged the same way
//! (`thermal_lag_min`) and the baseline is kept per 2-Hz bin of that lagged frequency, as a
//! slow mean of five-minute means. The baseline learns only from means near it, so a wear
//! that heats the bearing over days is never taken for the new normal. An excess above
//! `bearing_excess_k` held for half an hour raises `…_bearing_temp` (major).

use chrono::{DateTime, Utc};
use model::{Reading, Severity};

use super::{Bins, Detector, DetectorSpec, Input, Signal, output};
use crate::alerts::eval::Rule;

/// Settings of one pump's detector.
#[derive(Debug, Clone, PartialEq)]
pub struct PumpParams {
    /// Bearing vibration velocity RMS, mm/s.
    pub vibration: Input,
    /// Drive output frequency, Hz (the pump runs above 5 Hz).
    pub frequency: Input,
    /// Zone C begins (restricted operation), mm/s.
    pub zone_c_mm_s: f64,
    /// Zone D begins (damage), mm/s.
    pub zone_d_mm_s: f64,
    /// Vibration this many times the level of an hour before is cavitation.
    pub cavitation_ratio: f64,
    /// Bearing temperature, °C (optional).
    pub bearing_temperature: Option<Input>,
    /// Excess over the learned baseline at the same speed that is a worn bearing, K.
    pub bearing_excess_k: f64,
    /// Time constant of the bearing temperature's response to speed, minutes.
    pub thermal_lag_min: f64,
}

impl PumpParams {
    pub fn new(vibration: Input, frequency: Input) -> Self {
        PumpParams {
            vibration,
            frequency,
            zone_c_mm_s: 4.5,
            zone_d_mm_s: 7.1,
            cavitation_ratio: 2.0,
            bearing_temperature: None,
            bearing_excess_k: 10.0,
            thermal_lag_min: 20.0,
        }
    }
}

/// Width of a baseline bin of lagged drive frequency, Hz.
const FREQ_BIN_HZ: f64 = 2.0;
/// The speed counts as settled (the temperature has followed it) when the lagged frequency
/// is this close to the drive frequency, Hz; at 50 Hz that is under 0.4 K of the bearing's
/// way to its new temperature.
const SETTLED_HZ: f64 = 0.5;
/// Weight of one five-minute mean in a bin's baseline (about a day of running at that speed).
const BASE_ALPHA: f64 = 1.0 / 288.0;
/// Five-minute means a bin needs before it is judged (an hour at that speed).
const BASE_MIN_MEANS: u32 = 12;
/// Means further than this from the baseline do not teach it, K.
const BASE_LEARN_K: f64 = 3.0;
/// Five-minute means in a row above the limit that raise the alert (half an hour).
const BEARING_CONFIRM: u32 = 6;

/// The bearing temperature's baseline by speed, and the state of its alert.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Bearing {
    /// Drive frequency lagged like the temperature, Hz, and when it was last updated.
    lagged_hz: Option<(f64, DateTime<Utc>)>,
    temperature: Bins,
    /// Per frequency bin: (baseline °C, means learned).
    base: std::collections::HashMap<i64, (f64, u32)>,
    above: u32,
    raised: bool,
}

const BIN_S: u32 = 60;
/// Bins: the last five minutes, and five minutes an hour before.
const NOW: (usize, usize) = (0, 5);
const HOUR_AGO: (usize, usize) = (60, 65);
/// A zone or cavitation clears below this share of its limit.
const CLEAR: f64 = 0.9;

#[derive(Debug)]
pub struct Pump {
    params: PumpParams,
    vibration: Bins,
    running: bool,
    /// The outputs' conditions as last reported.
    reported: [bool; 3],
    /// The level an hour before the cavitation began (its baseline while it lasts).
    cavitation_base: Option<f64>,
    bearing: Option<Bearing>,
    /// The latest drive frequency, Hz.
    frequency_hz: f64,
    rules: Vec<Rule>,
}

/// What a pump detector learned, as saved across a restart (format `STATE_VERSION`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Learned {
    vibration: Bins,
    running: bool,
    reported: [bool; 3],
    cavitation_base: Option<f64>,
    bearing: Option<Bearing>,
    frequency_hz: f64,
}

const STATE_VERSION: u32 = 1;

const ZONE_C: usize = 0;
const ZONE_D: usize = 1;
const CAVITATION: usize = 2;
const BEARING_TEMP: usize = 3;

impl Pump {
    pub fn new(spec: &DetectorSpec, params: PumpParams) -> Self {
        let v = &params.vibration;
        let rules = vec![
            output(
                spec,
                "_zone_c",
                v,
                Severity::Major,
                "bearing vibration {value} mm/s: ISO 10816 zone C, restricted operation; plan maintenance",
                "軸受振動 {value} mm/s: ISO 10816 ゾーンC (運転制限)。保守を計画してください",
            ),
            output(
                spec,
                "_zone_d",
                v,
                Severity::Critical,
                "bearing vibration {value} mm/s: ISO 10816 zone D, damage likely",
                "軸受振動 {value} mm/s: ISO 10816 ゾーンD (損傷のおそれ)",
            ),
            output(
                spec,
                "_cavitation",
                v,
                Severity::Major,
                "vibration jumped to {value} times its level of an hour ago: cavitation (low suction, high flow)?",
                "振動が1時間前の {value} 倍に急増: キャビテーションの疑い (吸込圧低下・過大流量)",
            ),
        ];
        let mut rules = rules;
        let bearing = params.bearing_temperature.as_ref().map(|t| {
            rules.push(output(
                spec,
                "_bearing_temp",
                t,
                Severity::Major,
                "bearing {value} K hotter than usual at this speed: bearing wear or lubrication; plan maintenance",
                "軸受温度が同じ回転数の通常値より {value} K 高い: 軸受摩耗・潤滑不良の疑い。保守を計画してください",
            ));
            Bearing {
                lagged_hz: None,
                temperature: Bins::new(300, 1),
                base: Default::default(),
                above: 0,
                raised: false,
            }
        });
        Pump {
            params,
            vibration: Bins::new(BIN_S, HOUR_AGO.1 + 1),
            running: false,
            reported: [false; 3],
            cavitation_base: None,
            bearing,
            frequency_hz: 0.0,
            rules,
        }
    }

    /// A new drive frequency reading: moves the lagged frequency toward it.
    fn on_frequency(&mut self, t: DateTime<Utc>, hz: f64) {
        self.frequency_hz = hz;
        let tau_s = self.params.thermal_lag_min * 60.0;
        if let Some(b) = &mut self.bearing {
            b.lagged_hz = Some(match b.lagged_hz {
                Some((lag, at)) => {
                    let dt = (t - at).num_milliseconds().max(0) as f64 / 1000.0;
                    (lag + (hz - lag) * (1.0 - (-dt / tau_s).exp()), t)
                }
                None => (hz, t),
            });
        }
    }

    /// A bearing temperature reading; judges each completed five-minute mean.
    fn on_temperature(&mut self, t: DateTime<Utc>, celsius: f64, out: &mut Vec<Signal>) {
        let excess_k = self.params.bearing_excess_k;
        let Some(b) = &mut self.bearing else { return };
        // Only a pump turning at a settled speed says something about its bearing.
        let Some((lag, _)) = b.lagged_hz else { return };
        if !self.running || lag <= 5.0 || (self.frequency_hz - lag).abs() > SETTLED_HZ {
            // A five-minute mean begun at the old speed must not be judged at the new one.
            b.temperature = Bins::new(300, 1);
            return;
        }
        let Some(at) = b.temperature.add(t, celsius) else { return };
        let Some(mean) = b.temperature.mean_back(0, 1) else { return };
        let entry = b.base.entry((lag / FREQ_BIN_HZ).round() as i64).or_insert((mean, 0));
        let excess = mean - entry.0;
        if entry.1 < BASE_MIN_MEANS || excess.abs() < BASE_LEARN_K {
            // While a bin is young it follows quickly; then slowly, and only near itself.
            let alpha = if entry.1 < BASE_MIN_MEANS { 1.0 / f64::from(entry.1 + 1) } else { BASE_ALPHA };
            entry.0 += alpha * (mean - entry.0);
            entry.1 += 1;
        }
        if entry.1 < BASE_MIN_MEANS {
            return;
        }
        let limit = if b.raised { 0.5 * excess_k } else { excess_k };
        b.above = if excess > limit { b.above + 1 } else { 0 };
        let cond = if b.raised { excess > limit } else { b.above >= BEARING_CONFIRM };
        if cond != b.raised {
            b.raised = cond;
            out.push(Signal { output: BEARING_TEMP, cond, value: Some((excess * 10.0).round() / 10.0), at });
        }
    }

    fn evaluate(&mut self, at: DateTime<Utc>, out: &mut Vec<Signal>) {
        let Some(level) = self.vibration.mean_back(NOW.0, NOW.1) else { return };
        let limit = |on: bool, l: f64| if on { CLEAR * l } else { l };
        let zone_c = level > limit(self.reported[ZONE_C], self.params.zone_c_mm_s);
        let zone_d = level > limit(self.reported[ZONE_D], self.params.zone_d_mm_s);
        let base = self.cavitation_base.or_else(|| self.vibration.mean_back(HOUR_AGO.0, HOUR_AGO.1));
        let ratio = base.filter(|b| *b > 0.1).map(|b| level / b);
        let cavitation = ratio.is_some_and(|r| r > limit(self.reported[CAVITATION], self.params.cavitation_ratio));
        self.cavitation_base = if cavitation { base } else { None };
        let round = |v: f64| (v * 100.0).round() / 100.0;
        let values = [round(level), round(level), round(ratio.unwrap_or(0.0))];
        for (k, cond) in [(ZONE_C, zone_c), (ZONE_D, zone_d), (CAVITATION, cavitation)] {
            if cond != self.reported[k] {
                self.reported[k] = cond;
                out.push(Signal { output: k, cond, value: Some(values[k]), at });
            }
        }
    }
}

impl Detector for Pump {
    fn inputs(&self) -> Vec<Input> {
        let mut v = vec![self.params.vibration.clone(), self.params.frequency.clone()];
        v.extend(self.params.bearing_temperature.clone());
        v
    }

    fn outputs(&self) -> Vec<Rule> {
        self.rules.clone()
    }

    fn state_version(&self) -> u32 {
        STATE_VERSION
    }

    fn save(&self) -> Option<serde_json::Value> {
        let learned = Learned {
            vibration: self.vibration.clone(),
            running: self.running,
            reported: self.reported,
            cavitation_base: self.cavitation_base,
            bearing: self.bearing.clone(),
            frequency_hz: self.frequency_hz,
        };
        serde_json::to_value(learned).ok()
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        let l: Learned = serde_json::from_value(state).map_err(|e| e.to_string())?;
        // A bearing input added or removed since the save: keep what this configuration has.
        if l.bearing.is_some() != self.bearing.is_some() {
            return Err("the bearing temperature input was added or removed".to_owned());
        }
        (self.vibration, self.running, self.reported, self.cavitation_base) =
            (l.vibration, l.running, l.reported, l.cavitation_base);
        (self.bearing, self.frequency_hz) = (l.bearing, l.frequency_hz);
        Ok(())
    }

    fn on_reading(&mut self, input: usize, r: &Reading, out: &mut Vec<Signal>) {
        let Some(v) = r.value.as_f64().filter(|v| v.is_finite() && r.quality.is_good()) else { return };
        if input == 1 {
            self.running = v > 5.0;
            self.on_frequency(r.time, v);
        } else if input == 2 {
            self.on_temperature(r.time, v, out);
        } else if self.running {
            if let Some(at) = self.vibration.add(r.time, v) {
                self.evaluate(at, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::detect::DetectorKind;
    use chrono::TimeZone;
    use model::{DeviceId, PointName};

    fn run(seconds: i64, vib: impl Fn(i64) -> f64) -> Vec<(i64, usize, bool)> {
        let input = |p: &str| Input { device: DeviceId::new("ps03").unwrap(), point: PointName::new(p).unwrap() };
        let params = PumpParams::new(input("p1_vibration"), input("p1_frequency"));
        let spec = DetectorSpec {
            name: "ps03_p1_health".into(),
            asset: "ps03".into(),
            kind: DetectorKind::Pump(params.clone()),
        };
        let mut d = Pump::new(&spec, params);
        let t0 = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
        let (mut out, mut got) = (Vec::new(), Vec::new());
        for s in 0..seconds {
            let t = t0 + chrono::Duration::seconds(s);
            let reading =
                |p: &str, v: f64| Reading::good(DeviceId::new("ps03").unwrap(), PointName::new(p).unwrap(), t, v);
            d.on_reading(1, &reading("p1_frequency", 48.0), &mut out);
            d.on_reading(0, &reading("p1_vibration", vib(s)), &mut out);
            got.extend(out.drain(..).map(|g| ((g.at - t0).num_seconds(), g.output, g.cond)));
        }
        got
    }

    #[test]
    fn slow_wear_walks_through_the_zones_without_cavitation() {
        // 1.3 mm/s growing eightfold over 12 hours.
        let got = run(12 * 3600, |s| 1.3 * (s as f64 / 43_200.0 * 8f64.ln()).exp());
        assert_eq!(got.iter().map(|g| (g.1, g.2)).collect::<Vec<_>>(), [(ZONE_C, true), (ZONE_D, true)], "{got:?}");
    }

    #[test]
    fn a_sudden_jump_is_cavitation_and_clears_when_it_ends() {
        let got = run(4 * 3600, |s| if (7200..9000).contains(&s) { 3.4 } else { 1.3 });
        assert_eq!(
            got.iter().map(|g| (g.1, g.2)).collect::<Vec<_>>(),
            [(CAVITATION, true), (CAVITATION, false)],
            "{got:?}"
        );
        assert!((7200..7200 + 300).contains(&got[0].0), "{got:?}");
    }

    /// Runs a pump with a bearing temperature input for `hours`: the drive frequency cycles
    /// between 25 and 50 Hz every three hours (13.5 K apart, more than the alert limit); the bearing heats toward 30 + 18·speed² (speed
    /// = Hz / 50) plus `wear(h)` with a 20-minute lag and ±0.3 K of noise. Returns the bearing
    /// output's signals as (hour, condition, excess).
    fn run_bearing(hours: i64, wear: impl Fn(f64) -> f64) -> Vec<(f64, bool, f64)> {
        run_bearing_restarted(hours, None, wear)
    }

    /// Whether a restart gives the new detector the old one's saved state.
    #[derive(Clone, Copy)]
    enum Restart {
        Restored,
        Fresh,
    }

    /// The same, the detector replaced at hour `restart.0` by a new one, given the old one's
    /// saved state or not.
    fn run_bearing_restarted(
        hours: i64,
        restart: Option<(i64, Restart)>,
        wear: impl Fn(f64) -> f64,
    ) -> Vec<(f64, bool, f64)> {
        let input = |p: &str| Input { device: DeviceId::new("ps03").unwrap(), point: PointName::new(p).unwrap() };
        let params = PumpParams {
            bearing_temperature: Some(input("p1_bearing_temperature")),
            ..PumpParams::new(input("p1_vibration"), input("p1_frequency"))
        };
        let spec = DetectorSpec {
            name: "ps03_p1_health".into(),
            asset: "ps03".into(),
            kind: DetectorKind::Pump(params.clone()),
        };
        let mut d = Pump::new(&spec, params);
        assert_eq!(d.inputs().len(), 3);
        assert_eq!(d.outputs()[BEARING_TEMP].name, "ps03_p1_health_bearing_temp");
        let t0 = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
        let (mut out, mut got) = (Vec::new(), Vec::new());
        let mut temp = 48.0;
        for s in 0..hours * 3600 {
            if let Some((_, how)) = restart.filter(|(h, _)| h * 3600 == s) {
                let json = d.save().expect("a pump detector saves its state").to_string();
                d = Pump::new(&spec, d.params.clone());
                if let Restart::Restored = how {
                    d.restore(serde_json::from_str(&json).unwrap()).unwrap();
                }
            }
            let t = t0 + chrono::Duration::seconds(s);
            let h = s as f64 / 3600.0;
            let hz = if (s / 10_800) % 2 == 0 { 50.0 } else { 25.0 };
            let target = 30.0 + 18.0 * (hz / 50.0f64).powi(2) + wear(h);
            temp += (target - temp) * (1.0 - (-1.0f64 / 1200.0).exp());
            let noisy = temp + 0.3 * (((s as f64) * 12.9898).sin() * 43758.5453).fract();
            let reading =
                |p: &str, v: f64| Reading::good(DeviceId::new("ps03").unwrap(), PointName::new(p).unwrap(), t, v);
            d.on_reading(1, &reading("p1_frequency", hz), &mut out);
            d.on_reading(0, &reading("p1_vibration", 1.3), &mut out);
            d.on_reading(2, &reading("p1_bearing_temperature", noisy), &mut out);
            got.extend(
                out.drain(..)
                    .filter(|g| g.output == BEARING_TEMP)
                    .map(|g| ((g.at - t0).num_seconds() as f64 / 3600.0, g.cond, g.value.unwrap_or(0.0))),
            );
        }
        got
    }

    #[test]
    fn a_healthy_bearing_changing_speed_with_noise_raises_nothing() {
        assert_eq!(run_bearing(48, |_| 0.0), []);
    }

    #[test]
    fn a_bearing_heating_over_a_day_is_raised_once_at_ten_kelvin_and_clears_after_repair() {
        // Healthy for a day, then 25 K of wear over 24 hours, repaired at 60 h.
        let wear = |h: f64| if (24.0..60.0).contains(&h) { 25.0 * ((h - 24.0) / 24.0).min(1.0) } else { 0.0 };
        let got = run_bearing(72, wear);
        assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), [true, false], "{got:?}");
        // 10 K is reached at 24 + 9.6 h; half an hour of five-minute means and the lag follow.
        assert!((33.6..35.5).contains(&got[0].0), "raised at {} h: {got:?}", got[0].0);
        assert!(got[0].2 > 10.0, "{got:?}");
        assert!((60.0..62.0).contains(&got[1].0), "cleared at {} h: {got:?}", got[1].0);
    }

    #[test]
    fn a_pump_detector_restarted_from_its_saved_state_decides_the_same() {
        let wear = |h: f64| if (24.0..60.0).contains(&h) { 25.0 * ((h - 24.0) / 24.0).min(1.0) } else { 0.0 };
        let straight = run_bearing(72, wear);
        assert_eq!(run_bearing_restarted(72, Some((30, Restart::Restored)), wear), straight);
        // Rebuilt without its state at 30 h, it relearns its baselines from a bearing already
        // 6 K hotter and judges differently.
        assert_ne!(run_bearing_restarted(72, Some((30, Restart::Fresh)), wear), straight);
    }
}
