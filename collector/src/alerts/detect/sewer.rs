//! Sewer station: the wet well rising while its pumps run, and the time left before it
//! overflows at that rate.
//!
//! A manhole pump station's pumps empty the well much faster than sewage arrives, so with a
//! pump running the level falls. If it rises instead, the pumps deliver less than comes in: a
//! blockage (rags), a worn or failed pump, or rain inflow above the station's capacity. The
//! level's slope is taken over the last five minutes from 30-s means; the station's own alarm
//! contacts (high level, overflow) are separate rules and come later.
//!
//! A partial blockage shows long before the well rises: the level still falls while a pump
//! runs, only more slowly. So the detector also measures each pump run's pump-out rate, the
//! drawdown test operators do by hand: the level's fall while pumping plus the rise just
//! before, while no pump ran (the inflow, which goes on during the run), is what the pumps
//! take out, in metres of well per hour, per running pump. Against the station's own learned
//! rate (its first runs, then only runs near it) a rate below `1 − capacity_drop` of it for
//! two evaluations in a run raises `…_capacity` (major): rags in a pump, a worn impeller, a
//! closed valve, or inflow that rose during the run (rain).
//!
//! The learned rate (with the level and the current run) is saved across a restart: a fresh
//! detector would learn a blocked pump's rate as its normal.

use std::time::Duration;

use chrono::{DateTime, Utc};
use model::{Reading, Severity};

use super::{Bins, Detector, DetectorSpec, Input, Signal, output};
use crate::alerts::eval::Rule;

/// Settings of one station's detector.
#[derive(Debug, Clone, PartialEq)]
pub struct SewerParams {
    /// The wet-well level, m.
    pub level: Input,
    /// Each pump's running contact (non-zero = running).
    pub running: Vec<Input>,
    /// A rise slower than this is not counted, m/h.
    pub min_rise_m_per_h: f64,
    /// The rise must last this long with a pump running.
    pub rise_for: Duration,
    /// The level at which the well overflows, m.
    pub overflow_level_m: f64,
    /// Overflow expected sooner than this at the current rate is critical.
    pub overflow_within: Duration,
    /// A pump-out rate this share below the learned one is a loss of capacity.
    pub capacity_drop: f64,
}

impl SewerParams {
    pub fn new(level: Input, running: Vec<Input>) -> Self {
        SewerParams {
            level,
            running,
            min_rise_m_per_h: 0.3,
            rise_for: Duration::from_secs(300),
            overflow_level_m: 2.6,
            overflow_within: Duration::from_secs(1800),
            capacity_drop: 0.4,
        }
    }
}

const BIN_S: u32 = 30;
/// How long the outputs stay active after their condition clears.
const OFF_DELAY: Duration = Duration::from_secs(30 * 60);
/// The slope is taken between the last two bins and the two bins five minutes before.
const SPAN_BINS: usize = 10;
/// A run (or a pause) is measured from this long after the pumps changed (start-up), and
/// judged once this much of it is measured.
const SETTLE_S: i64 = 30;
const MEASURE_S: i64 = 120;
/// The inflow measured in the last pause stands for the run's inflow this long.
const FILL_MAX_AGE_S: i64 = 2 * 3600;
/// Evaluations that teach the pump-out rate before it is judged (a few runs), then how fast it
/// follows and how near a rate must be to teach it.
const RATE_LEARN: u32 = 10;
const RATE_ALPHA: f64 = 0.02;
const RATE_NEAR: f64 = 0.3;

#[derive(Debug)]
pub struct Sewer {
    params: SewerParams,
    level: Bins,
    running: Vec<bool>,
    /// Since when the level has been rising with a pump running.
    rising_since: Option<DateTime<Utc>>,
    /// The outputs' conditions as last reported.
    reported: [bool; 3],
    /// The pump-out rate measurement.
    drawdown: Drawdown,
    rules: Vec<Rule>,
}

/// The pump-out rate: the current run or pause, the inflow of the last pause, the learned rate.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Drawdown {
    /// Pumps running in the current segment, and when it began.
    pumps: usize,
    since: Option<DateTime<Utc>>,
    /// The segment's settled level readings of the last `MEASURE_S` (and one before): (time, m).
    /// The slope is taken over them, so a change within a run shows within minutes.
    recent: std::collections::VecDeque<(DateTime<Utc>, f64)>,
    /// The well's rise in the last pause, m/h, and when it was measured.
    fill: Option<(f64, DateTime<Utc>)>,
    /// Learned pump-out rate per running pump, m/h, and evaluations learned.
    rate: f64,
    learned: u32,
    /// Evaluations in a row below the limit in this run.
    low: u32,
}

/// What a sewer detector learned, as saved across a restart (format `STATE_VERSION`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Learned {
    level: Bins,
    running: Vec<bool>,
    rising_since: Option<DateTime<Utc>>,
    reported: [bool; 3],
    drawdown: Drawdown,
}

const STATE_VERSION: u32 = 1;

const RISING: usize = 0;
const OVERFLOW: usize = 1;
const CAPACITY: usize = 2;

impl Sewer {
    pub fn new(spec: &DetectorSpec, params: SewerParams) -> Self {
        let rules = vec![
            output(
                spec,
                "_rising",
                &params.level,
                Severity::Major,
                "wet well rising {value} m/h while the pumps run: blockage, pump failure or inflow above capacity",
                "ポンプ運転中にもかかわらず水位が {value} m/h で上昇: 閉塞・ポンプ故障または能力超過の流入",
            ),
            output(
                spec,
                "_overflow_risk",
                &params.level,
                Severity::Critical,
                "wet well will overflow in {value} min at the current rise",
                "現在の上昇速度では {value} 分後に溢水のおそれ",
            ),
            output(
                spec,
                "_capacity",
                &params.level,
                Severity::Major,
                "pumps take out only {value} % of their usual rate: blockage (rags), pump wear, a closed valve, or inflow rising",
                "ポンプの排水能力が通常の {value} % に低下: 閉塞(異物)・ポンプ摩耗・弁閉または流入量の増加の疑い",
            ),
        ];
        // A well in trouble rises and falls with its pumps' cycles; one episode of trouble is
        // one alert, so each output stays active until its condition has been clear this long.
        let rules = rules.into_iter().map(|r| Rule { off_delay: OFF_DELAY, ..r }).collect();
        let pumps = params.running.len();
        Sewer {
            params,
            level: Bins::new(BIN_S, SPAN_BINS + 2),
            running: vec![false; pumps],
            rising_since: None,
            reported: [false; 3],
            drawdown: Drawdown::default(),
            rules,
        }
    }

    fn evaluate(&mut self, at: DateTime<Utc>, out: &mut Vec<Signal>) {
        let (Some(now), Some(before)) = (self.level.mean_back(0, 2), self.level.mean_back(SPAN_BINS, SPAN_BINS + 2))
        else {
            return;
        };
        let rate_m_per_h = (now - before) / (SPAN_BINS as f64 * f64::from(BIN_S)) * 3600.0;
        let pumping = self.running.iter().any(|r| *r);
        let rising = pumping && rate_m_per_h > self.params.min_rise_m_per_h;
        self.rising_since = if rising { self.rising_since.or(Some(at)) } else { None };
        let held = self.rising_since.is_some_and(|s| (at - s).to_std().is_ok_and(|d| d >= self.params.rise_for));
        let minutes_left = (self.params.overflow_level_m - now).max(0.0) / rate_m_per_h * 60.0;
        let overflow = held && minutes_left * 60.0 <= self.params.overflow_within.as_secs_f64();
        let round = |v: f64| (v * 10.0).round() / 10.0;
        for (k, cond, value) in [(RISING, held, round(rate_m_per_h)), (OVERFLOW, overflow, minutes_left.round())] {
            if cond != self.reported[k] {
                self.reported[k] = cond;
                out.push(Signal { output: k, cond, value: Some(value), at });
            }
        }
        self.judge_drawdown(at, out);
    }

    /// The running pumps changed (or the detector started): a new run or pause begins.
    fn on_pumps(&mut self, at: DateTime<Utc>) {
        let pumps = self.running.iter().filter(|r| **r).count();
        let d = &mut self.drawdown;
        if d.since.is_none() || pumps != d.pumps {
            (d.pumps, d.since, d.low) = (pumps, Some(at), 0);
            d.recent.clear();
        }
    }

    fn on_level(&mut self, t: DateTime<Utc>, level: f64) {
        let d = &mut self.drawdown;
        let Some(since) = d.since else { return };
        if (t - since).num_seconds() >= SETTLE_S {
            d.recent.push_back((t, level));
            while d.recent.get(1).is_some_and(|(t1, _)| (t - *t1).num_seconds() >= MEASURE_S) {
                d.recent.pop_front();
            }
        }
    }

    fn judge_drawdown(&mut self, at: DateTime<Utc>, out: &mut Vec<Signal>) {
        let drop = self.params.capacity_drop;
        let d = &mut self.drawdown;
        let (Some(&(t0, l0)), Some(&(t1, l1))) = (d.recent.front(), d.recent.back()) else { return };
        let span_s = (t1 - t0).num_seconds();
        if span_s < MEASURE_S {
            return;
        }
        let slope_m_per_h = (l1 - l0) / span_s as f64 * 3600.0;
        if d.pumps == 0 {
            d.fill = Some((slope_m_per_h, at));
            return;
        }
        let Some((fill, _)) = d.fill.filter(|(_, m)| (at - *m).num_seconds() <= FILL_MAX_AGE_S) else { return };
        let rate = (fill - slope_m_per_h) / d.pumps as f64;
        if d.learned < RATE_LEARN {
            d.learned += 1;
            d.rate += (rate - d.rate) / f64::from(d.learned);
            return;
        }
        if ((rate - d.rate) / d.rate).abs() < RATE_NEAR {
            d.rate += RATE_ALPHA * (rate - d.rate);
        }
        let share = rate / d.rate;
        let limit = if self.reported[CAPACITY] { 1.0 - drop / 2.0 } else { 1.0 - drop };
        d.low = if share < limit { d.low + 1 } else { 0 };
        let cond = if self.reported[CAPACITY] { share < limit } else { d.low >= 2 };
        if cond != self.reported[CAPACITY] {
            self.reported[CAPACITY] = cond;
            out.push(Signal { output: CAPACITY, cond, value: Some((share * 100.0).round()), at });
        }
    }
}

impl Detector for Sewer {
    fn inputs(&self) -> Vec<Input> {
        let mut v = vec![self.params.level.clone()];
        v.extend(self.params.running.iter().cloned());
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
            level: self.level.clone(),
            running: self.running.clone(),
            rising_since: self.rising_since,
            reported: self.reported,
            drawdown: self.drawdown.clone(),
        };
        serde_json::to_value(learned).ok()
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        let l: Learned = serde_json::from_value(state).map_err(|e| e.to_string())?;
        if l.running.len() != self.running.len() {
            return Err(format!("saved with {} pumps, configured with {}", l.running.len(), self.running.len()));
        }
        (self.level, self.running, self.rising_since, self.reported, self.drawdown) =
            (l.level, l.running, l.rising_since, l.reported, l.drawdown);
        Ok(())
    }

    fn on_reading(&mut self, input: usize, r: &Reading, out: &mut Vec<Signal>) {
        let Some(v) = r.value.as_f64().filter(|v| v.is_finite() && r.quality.is_good()) else { return };
        if input == 0 {
            self.on_level(r.time, v);
            if let Some(at) = self.level.add(r.time, v) {
                self.evaluate(at, out);
            }
        } else {
            self.running[input - 1] = v != 0.0;
            self.on_pumps(r.time);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::detect::DetectorKind;
    use chrono::TimeZone;
    use model::{DeviceId, PointName};

    fn input(p: &str) -> Input {
        Input { device: DeviceId::new("mp01").unwrap(), point: PointName::new(p).unwrap() }
    }

    /// One reading a second of (level, pump running) from `f(second)`; returns (second,
    /// output, condition).
    fn run(seconds: i64, f: impl Fn(i64) -> (f64, bool)) -> Vec<(i64, usize, bool)> {
        let params = SewerParams::new(input("level"), vec![input("p1_running")]);
        let spec = DetectorSpec {
            name: "mp01_wet_well".into(),
            asset: "mp01".into(),
            kind: DetectorKind::Sewer(params.clone()),
        };
        let mut d = Sewer::new(&spec, params);
        let t0 = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
        let mut out = Vec::new();
        let mut got = Vec::new();
        for s in 0..seconds {
            let t = t0 + chrono::Duration::seconds(s);
            let (level, running) = f(s);
            d.on_reading(
                1,
                &Reading::good(
                    DeviceId::new("mp01").unwrap(),
                    PointName::new("p1_running").unwrap(),
                    t,
                    f64::from(u8::from(running)),
                ),
                &mut out,
            );
            d.on_reading(
                0,
                &Reading::good(DeviceId::new("mp01").unwrap(), PointName::new("level").unwrap(), t, level),
                &mut out,
            );
            got.extend(out.drain(..).map(|g| ((g.at - t0).num_seconds(), g.output, g.cond)));
        }
        got
    }

    #[test]
    fn normal_pump_cycles_raise_nothing() {
        // Fills at 2 m/h with the pump off, empties at 6 m/h with it on, between 0.4 and 1.2 m.
        let mut level = 0.8;
        let mut on = false;
        let cycle: Vec<(f64, bool)> = (0..4 * 3600)
            .map(|_| {
                level += if on { -6.0 } else { 2.0 } / 3600.0;
                on = if level >= 1.2 {
                    true
                } else if level <= 0.4 {
                    false
                } else {
                    on
                };
                (level, on)
            })
            .collect();
        assert_eq!(run(4 * 3600, |s| cycle[s as usize]), []);
    }

    #[test]
    fn rising_while_pumping_is_major_then_critical_near_overflow() {
        // The pump runs from the start but the level climbs 1.2 m/h from 1.2 m: overflow (2.6 m)
        // in 70 minutes; the rise is raised after five minutes of it, overflow risk 30 minutes
        // before the well is full.
        let got = run(3600, |s| (1.2 + 1.2 * s as f64 / 3600.0, true));
        let kinds: Vec<_> = got.iter().map(|g| (g.1, g.2)).collect();
        assert_eq!(kinds, [(RISING, true), (OVERFLOW, true)], "{got:?}");
        assert!((600..700).contains(&got[0].0), "rise seen 5 min after the first slope (at 5 min): {got:?}");
        assert!((2400..2500).contains(&got[1].0), "{got:?}");
    }

    /// Pump cycles between 0.4 and 1.2 m: the well fills at 2 m/h while the pump is off; with
    /// it on, the pump takes out `out(second)` m/h. Level and pump state each second.
    fn cycles(seconds: i64, out: impl Fn(i64) -> f64) -> Vec<(f64, bool)> {
        let (mut level, mut on) = (0.8, false);
        (0..seconds)
            .map(|s| {
                level += (2.0 - if on { out(s) } else { 0.0 }) / 3600.0;
                on = if level >= 1.2 {
                    true
                } else if level <= 0.4 {
                    false
                } else {
                    on
                };
                (level, on)
            })
            .collect()
    }

    #[test]
    fn a_pump_that_takes_out_a_third_of_its_usual_rate_is_found_in_its_first_run() {
        // Normal runs take out 8 m/h; from 3 h a blockage leaves 2.6 m/h: the level still falls
        // while the pump runs (0.6 m/h), so the well does not rise and nothing else is raised.
        let blocked_from = 3 * 3600;
        let c = cycles(6 * 3600, |s| if s >= blocked_from { 2.6 } else { 8.0 });
        let got = run(6 * 3600, |s| c[s as usize]);
        let kinds: Vec<_> = got.iter().map(|g| (g.1, g.2)).collect();
        assert_eq!(kinds, [(CAPACITY, true)], "{got:?}");
        // The first run after the blockage: it starts when the well next reaches 1.2 m.
        let first_run = (blocked_from..).find(|&s| c[s as usize].1).unwrap();
        assert!(
            (first_run..first_run + 300).contains(&got[0].0),
            "raised {} s into the first blocked run: {got:?}",
            got[0].0 - first_run
        );
    }

    #[test]
    fn a_sewer_detector_restarted_from_its_saved_state_decides_the_same() {
        // Saved after nearly three hours of normal runs, restarted, and the pump blocks five
        // minutes later.
        let blocked_from = 3 * 3600;
        let c = cycles(6 * 3600, |s| if s >= blocked_from { 2.6 } else { 8.0 });
        let params = SewerParams::new(input("level"), vec![input("p1_running")]);
        let spec = DetectorSpec {
            name: "mp01_wet_well".into(),
            asset: "mp01".into(),
            kind: DetectorKind::Sewer(params.clone()),
        };
        let t0 = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
        let feed = |d: &mut Sewer, from: i64, to: i64| {
            let (mut out, mut got) = (Vec::new(), Vec::new());
            for s in from..to {
                let t = t0 + chrono::Duration::seconds(s);
                let (level, on) = c[s as usize];
                let r =
                    |p: &str, v: f64| Reading::good(DeviceId::new("mp01").unwrap(), PointName::new(p).unwrap(), t, v);
                d.on_reading(1, &r("p1_running", f64::from(u8::from(on))), &mut out);
                d.on_reading(0, &r("level", level), &mut out);
                got.extend(out.drain(..).map(|g| ((g.at - t0).num_seconds(), g.output, g.cond)));
            }
            got
        };
        let mut before = Sewer::new(&spec, params.clone());
        let restart = blocked_from - 300;
        feed(&mut before, 0, restart);
        let json = Detector::save(&before).expect("a sewer detector saves its state").to_string();
        let mut restored = Sewer::new(&spec, params.clone());
        restored.restore(serde_json::from_str(&json).unwrap()).unwrap();
        let (a, b) = (feed(&mut before, restart, 6 * 3600), feed(&mut restored, restart, 6 * 3600));
        assert!(a.iter().any(|g| (g.1, g.2) == (CAPACITY, true)), "{a:?}");
        assert_eq!(a, b, "the restored detector decides exactly as the one that ran on");
        // A fresh one learns its rate from the blocked runs and takes them for normal.
        let mut fresh = Sewer::new(&spec, params);
        assert_eq!(feed(&mut fresh, restart, 6 * 3600), []);
        let two = SewerParams::new(input("level"), vec![input("p1_running"), input("p2_running")]);
        let mut other = Sewer::new(&spec, two);
        assert!(other.restore(serde_json::from_str(&json).unwrap()).is_err(), "saved with one pump, now two");
    }
}
