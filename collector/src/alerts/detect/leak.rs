//! Leak growth: a district's minimum night flow (MNF) trending up over days.
//!
//! Between 02:00 and 04:00 local time almost nobody draws water, so the inflow is mostly
//! leakage; background leakage that grows (a weeping joint, a service pipe cracking) shows as a
//! night floor that rises night after night while daytime demand hides it. Each night's MNF is
//! a low quantile (10 %) of the window's one-minute means: the lowest minutes, but not one
//! odd minute. It is compared with the median MNF of earlier nights *of the same kind*
//! (weekday or weekend: the simulator's and real weekend nights run higher), and the rise must
//! exceed both an absolute floor and `k_sigma` times the night-to-night noise (scaled MAD of
//! those nights), on `confirm_nights` nights in a row, so one night with a burst or a fire
//! hydrant open is not a leak. A night on which a burst was open in the district, or flushing
//! or valve work was planned there, is neither judged nor kept: the baseline is the floor of
//! ordinary nights (with only two or three earlier nights, one night with a burst moved the
//! median and the spread so far that no leak could be seen for the rest of the week). A night
//! above half the threshold is not kept in the baseline either (a leak growing slowly would
//! otherwise raise its own baseline), and counts toward the nights in a row: a growing leak
//! passes half the threshold one night and the threshold the next.
//!
//! While the alert is active the baseline stays that of the night before it began: a leak
//! that is not repaired stays an alert; it clears when the night floor comes back down.
//!
//! What it learned (the nights, the open night, the frozen baseline) is saved across a
//! restart: a detector that starts afresh needs two nights of each kind before it judges, and
//! would take a leak already growing as its baseline.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use model::{Reading, Severity};

use super::{Detector, DetectorSpec, Input, Signal, output, water_works};
use crate::alerts::eval::Rule;

/// Settings of one district's leak-growth detector.
#[derive(Debug, Clone, PartialEq)]
pub struct LeakParams {
    /// The district's inlet flow, m³/h.
    pub flow: Input,
    /// Night window, local hours [from, to).
    pub night_hours: (f64, f64),
    /// Local time = UTC + this many hours (JST: 9).
    pub utc_offset_h: f64,
    /// Smallest rise of the night flow that counts, m³/h.
    pub min_rise_m3_per_h: f64,
    /// The rise must also exceed this many times the night-to-night noise.
    pub k_sigma: f64,
    /// Earlier nights kept for the baseline (of both kinds).
    pub baseline_nights: usize,
    /// Nights in a row the rise must be seen.
    pub confirm_nights: usize,
}

impl LeakParams {
    pub fn new(flow: Input) -> Self {
        LeakParams {
            flow,
            night_hours: (2.0, 4.0),
            utc_offset_h: 9.0,
            min_rise_m3_per_h: 3.0,
            k_sigma: 4.0,
            baseline_nights: 14,
            confirm_nights: 2,
        }
    }
}

/// The MNF is this quantile of the night's one-minute means.
const QUANTILE: f64 = 0.1;
/// A night counts if at least this share of its minutes have a value.
const MIN_COVER: f64 = 0.5;
/// Earlier nights of the same kind needed before judging.
const MIN_BASE: usize = 2;

/// One night's result.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Night {
    /// Local day number (days since 1970-01-01 local).
    day: i64,
    mnf: f64,
}

#[derive(Debug)]
pub struct Leak {
    params: LeakParams,
    /// The night being collected: its local day and one-minute (sum, count) slots.
    open: Option<(i64, Vec<(f64, u32)>)>,
    nights: VecDeque<Night>,
    /// Nights in a row above half the threshold.
    above: usize,
    active: bool,
    /// The nights the baseline was taken from while the alert is active.
    frozen: Option<Vec<Night>>,
    /// Water episodes in the district (bursts, flushing seen by the burst detector), the last
    /// still open if its end is `None`; and planned works that move water there.
    episodes: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    works: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    rules: Vec<Rule>,
}

/// What a leak detector learned, as saved across a restart (format `STATE_VERSION`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Learned {
    open: Option<(i64, Vec<(f64, u32)>)>,
    nights: VecDeque<Night>,
    above: usize,
    active: bool,
    frozen: Option<Vec<Night>>,
    #[serde(default)]
    episodes: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
}

const STATE_VERSION: u32 = 1;

fn weekend(day: i64) -> bool {
    // 1970-01-01 (day 0) was a Thursday.
    (day + 3).rem_euclid(7) >= 5
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

impl Leak {
    pub fn new(spec: &DetectorSpec, params: LeakParams) -> Self {
        let rules = vec![output(
            spec,
            "_leak_growth",
            &params.flow,
            Severity::Major,
            "minimum night flow up {value} m³/h on earlier nights: growing leakage? plan a leak survey",
            "夜間最小流量が以前の夜より {value} m³/h 増加: 漏水の拡大の疑い。漏水調査を計画してください",
        )];
        Leak {
            params,
            open: None,
            nights: VecDeque::new(),
            above: 0,
            active: false,
            frozen: None,
            episodes: Vec::new(),
            works: Vec::new(),
            rules,
        }
    }

    fn minutes(&self) -> usize {
        (((self.params.night_hours.1 - self.params.night_hours.0) * 60.0).round() as usize).max(1)
    }

    /// Local day and minute of the night window of `t`, if `t` is inside it.
    fn place(&self, t: DateTime<Utc>) -> Option<(i64, usize)> {
        let local_s = t.timestamp() as f64 + self.params.utc_offset_h * 3600.0;
        let day = (local_s / 86_400.0).floor() as i64;
        let hour = local_s.rem_euclid(86_400.0) / 3600.0;
        let (from, to) = self.params.night_hours;
        (from..to).contains(&hour).then_some((day, ((hour - from) * 60.0) as usize))
    }

    /// Closes the open night: its MNF, judged against earlier nights.
    fn close(&mut self, at: DateTime<Utc>, out: &mut Vec<Signal>) {
        let Some((day, slots)) = self.open.take() else { return };
        let mut means: Vec<f64> = slots.iter().filter(|(_, n)| *n > 0).map(|(s, n)| s / f64::from(*n)).collect();
        if (means.len() as f64) < MIN_COVER * slots.len() as f64 {
            // Too few minutes (communication loss): the night neither counts nor judges.
            return;
        }
        // The night's window in time: water that left through a burst or a hydrant then says
        // nothing about leakage.
        let from = DateTime::from_timestamp(
            (day as f64 * 86_400.0 + (self.params.night_hours.0 - self.params.utc_offset_h) * 3600.0) as i64,
            0,
        );
        let to = from.map(|f| f + chrono::Duration::minutes(slots.len() as i64));
        if let (Some(from), Some(to)) = (from, to) {
            let overlaps = |a: DateTime<Utc>, b: Option<DateTime<Utc>>| a < to && b.is_none_or(|b| b > from);
            let episode = self.episodes.iter().any(|(a, b)| overlaps(*a, *b));
            let works = self.works.iter().any(|(a, b)| overlaps(*a, Some(*b)));
            self.episodes.retain(|(_, b)| b.is_none_or(|b| b > to));
            if episode || works {
                tracing::debug!(district = %self.rules[0].asset, day, episode, works, "leak detector: night skipped");
                return;
            }
        }
        means.sort_by(f64::total_cmp);
        let mnf = means[((means.len() - 1) as f64 * QUANTILE).round() as usize];
        let night = Night { day, mnf };
        let base_nights: Vec<Night> = self.frozen.clone().unwrap_or_else(|| self.nights.iter().copied().collect());
        let mut same: Vec<f64> = base_nights.iter().filter(|n| weekend(n.day) == weekend(day)).map(|n| n.mnf).collect();
        let mut suspect = false;
        if same.len() >= MIN_BASE {
            let base = median(&mut same);
            let mut dev: Vec<f64> = same.iter().map(|v| (v - base).abs()).collect();
            // Scaled MAD: the standard deviation of normal noise, robust to one odd night.
            let noise = 1.4826 * median(&mut dev);
            let rise = mnf - base;
            let threshold = self.params.min_rise_m3_per_h.max(self.params.k_sigma * noise);
            suspect = rise > 0.5 * threshold;
            self.above = if suspect { self.above + 1 } else { 0 };
            tracing::debug!(
                district = %self.rules[0].asset,
                day,
                mnf,
                base,
                noise,
                rise,
                threshold,
                above = self.above,
                "leak detector: night judged"
            );
            let cond = if self.active {
                // Clears when the night floor is back within half the threshold.
                rise > 0.5 * threshold
            } else {
                rise > threshold && self.above >= self.params.confirm_nights
            };
            if cond != self.active {
                self.active = cond;
                self.frozen = cond.then_some(base_nights);
                out.push(Signal { output: 0, cond, value: Some((rise * 10.0).round() / 10.0), at });
            }
        }
        if !self.active && !suspect {
            self.nights.push_back(night);
            while self.nights.len() > self.params.baseline_nights {
                self.nights.pop_front();
            }
        }
    }
}

impl Detector for Leak {
    fn inputs(&self) -> Vec<Input> {
        vec![self.params.flow.clone()]
    }

    fn outputs(&self) -> Vec<Rule> {
        self.rules.clone()
    }

    fn state_version(&self) -> u32 {
        STATE_VERSION
    }

    fn save(&self) -> Option<serde_json::Value> {
        let learned = Learned {
            open: self.open.clone(),
            nights: self.nights.clone(),
            above: self.above,
            active: self.active,
            frozen: self.frozen.clone(),
            episodes: self.episodes.clone(),
        };
        serde_json::to_value(learned).ok()
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        let l: Learned = serde_json::from_value(state).map_err(|e| e.to_string())?;
        // An open night of another window length (the night hours changed) is dropped.
        let open = l.open.filter(|(_, slots)| slots.len() == self.minutes());
        (self.open, self.nights, self.above, self.active, self.frozen) = (open, l.nights, l.above, l.active, l.frozen);
        self.episodes = l.episodes;
        Ok(())
    }

    fn on_water_episode(&mut self, at: DateTime<Utc>, open: bool) {
        if open {
            self.episodes.push((at, None));
        } else if let Some((_, end)) = self.episodes.iter_mut().rev().find(|(_, end)| end.is_none()) {
            *end = Some(at);
        }
    }

    fn set_works(&mut self, works: &[store::PlannedWork]) {
        self.works = water_works(works, &self.rules[0].asset);
    }

    fn on_reading(&mut self, _input: usize, r: &Reading, out: &mut Vec<Signal>) {
        let here = self.place(r.time);
        // Leaving the window (or a later night's window after a gap) closes the open night.
        if self.open.as_ref().is_some_and(|(day, _)| here.is_none_or(|(d, _)| d != *day)) {
            self.close(r.time, out);
        }
        let Some((day, minute)) = here else { return };
        let Some(v) = r.value.as_f64().filter(|v| v.is_finite() && r.quality.is_good()) else { return };
        let minutes = self.minutes();
        let (_, slots) = self.open.get_or_insert_with(|| (day, vec![(0.0, 0); minutes]));
        if let Some(slot) = slots.get_mut(minute) {
            slot.0 += v;
            slot.1 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::detect::DetectorKind;
    use chrono::TimeZone;
    use model::{DeviceId, PointName};

    /// A leak detector with the default settings on fm01's flow, and that input.
    fn detector() -> (Input, Leak) {
        let input = Input { device: DeviceId::new("fm01").unwrap(), point: PointName::new("flow").unwrap() };
        let params = LeakParams::new(input.clone());
        let spec =
            DetectorSpec { name: "dma01".into(), asset: "dma01".into(), kind: DetectorKind::Leak(params.clone()) };
        (input, Leak::new(&spec, params))
    }

    /// Runs `nights` days of 30-s readings from a Wednesday 00:00 JST; `flow(night, minute)`
    /// gives the flow of each minute of each day. Returns (day, condition) of each signal.
    fn run(days: i64, flow: impl Fn(i64, i64) -> f64) -> Vec<(i64, bool, f64)> {
        let (input, mut d) = detector();
        // Wednesday 2026-04-01 00:00 JST.
        let t0 = Utc.with_ymd_and_hms(2026, 3, 31, 15, 0, 0).unwrap();
        let (mut out, mut got) = (Vec::new(), Vec::new());
        for day in 0..days {
            for half_min in 0..2880 {
                let t = t0 + chrono::Duration::days(day) + chrono::Duration::seconds(half_min * 30);
                let r = Reading::good(input.device.clone(), input.point.clone(), t, flow(day, half_min / 2));
                d.on_reading(0, &r, &mut out);
                got.extend(out.drain(..).map(|s| (day, s.cond, s.value.unwrap())));
            }
        }
        got
    }

    /// Night flow around 40 m³/h with minute-to-minute noise and night-to-night wander, 12
    /// higher at weekends (days 3 and 4 are Saturday and Sunday).
    fn demand(day: i64, minute: i64) -> f64 {
        let wobble = ((day * 1440 + minute) as f64 * 0.7).sin() * 1.5 + ((day as f64) * 2.3).sin() * 0.6;
        let weekend = if (3..5).contains(&(day.rem_euclid(7))) { 12.0 } else { 0.0 };
        40.0 + weekend + wobble
    }

    #[test]
    fn flat_nights_with_noise_and_weekends_raise_nothing() {
        let got = run(21, demand);
        assert_eq!(got, [], "flat leakage must not alert");
    }

    #[test]
    fn leakage_growing_two_m3_per_h_a_day_is_raised_within_three_nights_and_stays() {
        // Growth from day 9 (a Friday) on, 2 m³/h more each day, never repaired.
        let growth = |day: i64, minute: i64| ((day * 1440 + minute - 9 * 1440) as f64 / 1440.0).max(0.0) * 2.0;
        let got = run(21, |d, m| demand(d, m) + growth(d, m));
        assert_eq!(got.len(), 1, "raised once and kept while unrepaired: {got:?}");
        let (day, cond, rise) = got[0];
        assert!(cond);
        assert!((10..=12).contains(&day), "raised on day {day}");
        assert!(rise > 3.0, "rise {rise}");
    }

    #[test]
    fn one_night_with_a_burst_is_not_a_leak_and_a_repaired_leak_clears() {
        let burst = |d: i64, m: i64| demand(d, m) + if d == 10 { 20.0 } else { 0.0 };
        assert_eq!(run(21, burst), [], "one high night");
        // A 10 m³/h leak from day 9 to day 14, then repaired.
        let got = run(21, |d, m| demand(d, m) + if (9..14).contains(&d) { 10.0 } else { 0.0 });
        assert_eq!(got.iter().map(|g| (g.0, g.1)).collect::<Vec<_>>(), [(10, true), (14, false)], "{got:?}");
    }

    #[test]
    fn nights_with_a_burst_or_planned_flushing_stay_out_of_the_baseline() {
        // Issue #5 (seed 5 of the scored week): with two earlier nights, one with a burst open
        // all night, the median and the spread were so high that a growing leak went unseen.
        let (input, mut d) = detector();
        let t0 = Utc.with_ymd_and_hms(2026, 3, 31, 15, 0, 0).unwrap();
        let at = |day: i64, hour: i64| t0 + chrono::Duration::days(day) + chrono::Duration::hours(hour);
        // Day 1: a burst from 01:00 to 06:00 (seen by the burst detector). Day 2: flushing
        // planned 02:30–03:00 in this district; flushing in another district changes nothing.
        let work = |target: &str, day: i64| store::PlannedWork {
            id: day,
            target: target.into(),
            kind: store::WorkKind::Flushing,
            from: at(day, 2) + chrono::Duration::minutes(30),
            to: at(day, 3),
            by: "test".into(),
            note: None,
            created: t0,
        };
        d.set_works(&[work("dma01", 2), work("dma02", 3)]);
        let out = &mut Vec::new();
        for day in 0..5 {
            for half_min in 0..2880 {
                let t = at(day, 0) + chrono::Duration::seconds(half_min * 30);
                if t == at(1, 1) {
                    d.on_water_episode(t, true);
                }
                if t == at(1, 6) {
                    d.on_water_episode(t, false);
                }
                let burst = if day == 1 && (1..6).contains(&(half_min / 120)) { 30.0 } else { 0.0 };
                let flushing = if day == 2 && (150..180).contains(&(half_min / 2)) { 40.0 } else { 0.0 };
                let v = demand(day, half_min / 2) + burst + flushing;
                d.on_reading(0, &Reading::good(input.device.clone(), input.point.clone(), t, v), out);
            }
        }
        let kept: Vec<i64> = d.nights.iter().map(|n| n.day - d.nights[0].day).collect();
        assert_eq!(kept, [0, 3, 4], "the burst night and the flushing night are not kept");
        assert_eq!(out, &[], "nothing raised");
    }

    #[test]
    fn a_leak_detector_restarted_from_its_saved_state_decides_the_same() {
        // Issue #5: the leak detector's nights survive a restart. Growth from day 9, 2 m³/h a
        // day; the collector restarts on day 8 at noon.
        let growth = |day: i64, minute: i64| ((day * 1440 + minute - 9 * 1440) as f64 / 1440.0).max(0.0) * 2.0;
        let flow = |d: i64, m: i64| demand(d, m) + growth(d, m);
        let input = Input { device: DeviceId::new("fm01").unwrap(), point: PointName::new("flow").unwrap() };
        let params = LeakParams::new(input.clone());
        let spec =
            DetectorSpec { name: "dma01".into(), asset: "dma01".into(), kind: DetectorKind::Leak(params.clone()) };
        let t0 = Utc.with_ymd_and_hms(2026, 3, 31, 15, 0, 0).unwrap();
        let feed = |d: &mut Leak, from_half_min: i64, to_half_min: i64| {
            let (mut out, mut got) = (Vec::new(), Vec::new());
            for k in from_half_min..to_half_min {
                let (day, half_min) = (k / 2880, k % 2880);
                let t = t0 + chrono::Duration::seconds(k * 30);
                let r = Reading::good(input.device.clone(), input.point.clone(), t, flow(day, half_min / 2));
                d.on_reading(0, &r, &mut out);
                got.extend(out.drain(..).map(|s| (day, s.cond, s.value.unwrap())));
            }
            got
        };
        let restart = 8 * 2880 + 1440;
        let mut before = Leak::new(&spec, params.clone());
        feed(&mut before, 0, restart);
        let json = Detector::save(&before).expect("a leak detector saves its state").to_string();
        let mut restored = Leak::new(&spec, params.clone());
        restored.restore(serde_json::from_str(&json).unwrap()).unwrap();
        let mut fresh = Leak::new(&spec, params);
        let (a, b) = (feed(&mut before, restart, 21 * 2880), feed(&mut restored, restart, 21 * 2880));
        assert!(!a.is_empty(), "the leak is raised");
        assert_eq!(a, b, "the restored detector decides exactly as the one that ran on");
        // A fresh one has no nights: it takes the growing leak as its baseline and says nothing.
        assert_ne!(feed(&mut fresh, restart, 21 * 2880), a);
        assert!(restored.restore(serde_json::json!({"nights": 1})).is_err(), "another shape is refused");
    }
}
