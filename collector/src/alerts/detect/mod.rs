//! Detectors: conditions that need many readings of several points (a burst is a step in a
//! district's inflow together with a pressure drop at its critical point; a sewer station is
//! in trouble when its wet well rises while its pumps run; leakage grows when a district's
//! minimum night flow rises over days).
//!
//! A detector does not raise alerts itself. It declares *outputs*, each a [`Rule`] of kind
//! [`Kind::Detected`] appended to the evaluator's rules, and reports the condition of each
//! output as it changes ([`Signal`]). The evaluator runs the same lifecycle on them as on any
//! rule (raise once per episode, repeat, clear, restore after a restart), and the engine
//! writes them to the same alert store, so detectors get acknowledgement, resolution,
//! shelving and notification for free.
//!
//! Detectors are pure like the evaluator: every reading carries its own time and there is no
//! clock, so the scoring harness drives them over a simulated week in seconds.

pub mod burst;
pub mod leak;
pub mod pump;
pub mod sewer;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use model::{DeviceId, PointName, Reading};

use super::eval::{Kind, Rule};

/// Where a detector reads one of its inputs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Input {
    pub device: DeviceId,
    pub point: PointName,
}

/// A validated `[[detector]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorSpec {
    pub name: String,
    pub asset: String,
    pub kind: DetectorKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DetectorKind {
    Burst(burst::BurstParams),
    Sewer(sewer::SewerParams),
    Pump(pump::PumpParams),
    Leak(leak::LeakParams),
}

impl DetectorSpec {
    fn build(&self) -> Box<dyn Detector> {
        match &self.kind {
            DetectorKind::Burst(p) => Box::new(burst::Burst::new(self, p.clone())),
            DetectorKind::Sewer(p) => Box::new(sewer::Sewer::new(self, p.clone())),
            DetectorKind::Pump(p) => Box::new(pump::Pump::new(self, p.clone())),
            DetectorKind::Leak(p) => Box::new(leak::Leak::new(self, p.clone())),
        }
    }
}

/// A detector's decision about one of its outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// Index into the detector's own `outputs()`.
    pub output: usize,
    pub cond: bool,
    pub value: Option<f64>,
    pub at: DateTime<Utc>,
}

/// One detector: inputs in, output conditions out.
pub trait Detector: Send + Sync + std::fmt::Debug {
    /// The points it reads, in the order `on_reading` numbers them.
    fn inputs(&self) -> Vec<Input>;
    /// The alerts it can raise, as rules of kind `Detected`.
    fn outputs(&self) -> Vec<Rule>;
    /// One good or bad reading of input `input`.
    fn on_reading(&mut self, input: usize, r: &Reading, out: &mut Vec<Signal>);
    /// A new snapshot of the planned-works register (all entries near now). Detectors that
    /// do not care about planned works ignore it.
    fn set_works(&mut self, _works: &[store::PlannedWork]) {}
    /// Whether this detector's episodes are water leaving the district's mains (a burst, a
    /// hydrant open): other detectors of the same asset are told of them (`on_water_episode`).
    fn reports_water_episodes(&self) -> bool {
        false
    }
    /// A detector of the same asset opened (`open`) or closed an episode of water leaving the
    /// mains at `at`. The leak detector keeps such nights out of its baseline.
    fn on_water_episode(&mut self, _at: DateTime<Utc>, _open: bool) {}
    /// The version of the format `save` writes; a saved state of another version is dropped.
    fn state_version(&self) -> u32 {
        0
    }
    /// What the detector learned, to survive a restart; `None` for a detector that keeps
    /// nothing worth saving.
    fn save(&self) -> Option<serde_json::Value> {
        None
    }
    /// Takes back what `save` returned (of the same version).
    fn restore(&mut self, _state: serde_json::Value) -> Result<(), String> {
        Err("this detector keeps no state".to_owned())
    }
}

/// What restoring saved detector states did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Restored {
    pub restored: Vec<String>,
    /// (detector, why) for states that were dropped: another version, or unreadable.
    pub dropped: Vec<(String, String)>,
}

/// An output rule of a detector: lifecycle delays are zero because detectors confirm their
/// conditions themselves (a detector may set an off-delay to join episodes).
pub(crate) fn output(
    spec: &DetectorSpec,
    suffix: &str,
    input: &Input,
    severity: model::Severity,
    en: &str,
    ja: &str,
) -> Rule {
    Rule {
        name: format!("{}{suffix}", spec.name),
        device: input.device.clone(),
        point: Some(input.point.clone()),
        asset: spec.asset.clone(),
        severity,
        kind: Kind::Detected,
        on_delay: std::time::Duration::ZERO,
        off_delay: std::time::Duration::ZERO,
        message_en: en.to_owned(),
        message_ja: ja.to_owned(),
        quiet_during: None,
    }
}

/// The names of the alerts a detector spec raises (for duplicate checks in the rules file).
pub fn output_names(spec: &DetectorSpec) -> Vec<String> {
    spec.build().outputs().into_iter().map(|r| r.name).collect()
}

/// The points a detector spec reads.
pub fn inputs(spec: &DetectorSpec) -> Vec<Input> {
    spec.build().inputs()
}

/// All detectors of a rule set, with their outputs placed after the plain rules.
#[derive(Debug)]
pub struct Detectors {
    list: Vec<Box<dyn Detector>>,
    names: Vec<String>,
    /// First evaluator rule index of each detector's outputs.
    first_rule: Vec<usize>,
    by_input: HashMap<DeviceId, Vec<(PointName, usize, usize)>>,
    signals: Vec<Signal>,
    /// Each detector's asset, and for those that report water episodes which of their
    /// outputs are active now (the episode is open while any is).
    assets: Vec<String>,
    active: Vec<Option<Vec<bool>>>,
}

impl Detectors {
    /// Builds the detectors; their output rules get indices from `first_rule` on, and are
    /// returned to be appended to the evaluator's rules in that order.
    pub fn new(specs: &[DetectorSpec], first_rule: usize) -> (Detectors, Vec<Rule>) {
        let mut list = Vec::new();
        let names = specs.iter().map(|s| s.name.clone()).collect();
        let mut firsts = Vec::new();
        let mut rules = Vec::new();
        let mut by_input: HashMap<DeviceId, Vec<(PointName, usize, usize)>> = HashMap::new();
        let mut active = Vec::new();
        for (d, spec) in specs.iter().enumerate() {
            let det = spec.build();
            firsts.push(first_rule + rules.len());
            active.push(det.reports_water_episodes().then(|| vec![false; det.outputs().len()]));
            rules.extend(det.outputs());
            for (i, input) in det.inputs().into_iter().enumerate() {
                by_input.entry(input.device).or_default().push((input.point, d, i));
            }
            list.push(det);
        }
        let assets = specs.iter().map(|s| s.asset.clone()).collect();
        (Detectors { list, names, first_rule: firsts, by_input, signals: Vec::new(), assets, active }, rules)
    }

    /// The state of every detector that keeps one, to be saved at `at`.
    pub fn save(&self, at: DateTime<Utc>) -> Vec<store::DetectorState> {
        self.list
            .iter()
            .zip(&self.names)
            .filter_map(|(d, name)| {
                Some(store::DetectorState {
                    name: name.clone(),
                    version: d.state_version(),
                    json: d.save()?.to_string(),
                    saved: at,
                })
            })
            .collect()
    }

    /// Gives saved states back to the detectors of the same name. A state of another format
    /// version, or one the detector cannot read, is dropped (the detector learns afresh):
    /// a changed format must never stop the collector.
    pub fn restore(&mut self, states: &[store::DetectorState]) -> Restored {
        let mut out = Restored::default();
        for s in states {
            let Some(i) = self.names.iter().position(|n| *n == s.name) else { continue };
            let d = &mut self.list[i];
            if s.version != d.state_version() {
                out.dropped
                    .push((s.name.clone(), format!("format version {} is not {}", s.version, d.state_version())));
                continue;
            }
            match serde_json::from_str(&s.json).map_err(|e| e.to_string()).and_then(|v| d.restore(v)) {
                Ok(()) => out.restored.push(s.name.clone()),
                Err(e) => out.dropped.push((s.name.clone(), e)),
            }
        }
        out
    }

    /// Hands a new snapshot of the planned-works register to every detector.
    pub fn set_works(&mut self, works: &[store::PlannedWork]) {
        for d in &mut self.list {
            d.set_works(works);
        }
    }

    /// Feeds one reading to the detectors that read its point; `set` receives (evaluator rule
    /// index, condition, value, time) for each output whose condition was decided.
    pub fn on_reading(&mut self, r: &Reading, set: &mut dyn FnMut(usize, bool, Option<f64>, DateTime<Utc>)) {
        let Some(targets) = self.by_input.get(&r.device) else { return };
        for (point, d, i) in targets {
            if *point != r.point {
                continue;
            }
            self.list[*d].on_reading(*i, r, &mut self.signals);
            for s in self.signals.drain(..) {
                set(self.first_rule[*d] + s.output, s.cond, s.value, s.at);
                let Some(outputs) = &mut self.active[*d] else { continue };
                let was = outputs.iter().any(|a| *a);
                if let Some(a) = outputs.get_mut(s.output) {
                    *a = s.cond;
                }
                let open = outputs.iter().any(|a| *a);
                if open != was {
                    for (j, other) in self.list.iter_mut().enumerate() {
                        if j != *d && self.assets[j] == self.assets[*d] {
                            other.on_water_episode(s.at, open);
                        }
                    }
                }
            }
        }
    }
}

/// The windows of planned works that move water (flushing, valve work) in `asset`, from a
/// snapshot of the register: what the burst and leak detectors of a district set aside.
pub(crate) fn water_works(works: &[store::PlannedWork], asset: &str) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    works.iter().filter(|w| w.kind.moves_water() && w.target == asset).map(|w| (w.from, w.to)).collect()
}

/// Hours of local time, for operational knowledge such as when crews flush hydrants.
pub(crate) fn local_hour(t: DateTime<Utc>, utc_offset_h: f64) -> f64 {
    let secs = (t.timestamp() as f64 + utc_offset_h * 3600.0).rem_euclid(86_400.0);
    secs / 3600.0
}

/// A series of fixed-width time bins holding the mean of the good values in each, the newest
/// last; a bin without values is `None`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Bins {
    width_ms: i64,
    keep: usize,
    /// Index (time / width) of the newest bin.
    last: Option<i64>,
    done: std::collections::VecDeque<Option<f64>>,
    /// The bin being filled: (index, sum, count).
    open: Option<(i64, f64, u32)>,
}

impl Bins {
    pub fn new(width_s: u32, keep: usize) -> Self {
        Bins { width_ms: i64::from(width_s) * 1000, keep, last: None, done: Default::default(), open: None }
    }

    /// Adds a value; returns the end times of the bins this completed (usually none or one).
    pub fn add(&mut self, t: DateTime<Utc>, v: f64) -> Option<DateTime<Utc>> {
        let ix = t.timestamp_millis().div_euclid(self.width_ms);
        let mut completed = None;
        match self.open {
            Some((open, sum, n)) if ix > open => {
                self.close(open, sum / f64::from(n));
                completed = DateTime::from_timestamp_millis((open + 1) * self.width_ms);
                self.open = Some((ix, v, 1));
            }
            Some((open, ref mut sum, ref mut n)) if ix == open => {
                *sum += v;
                *n += 1;
            }
            // A value older than the open bin (out of order) is ignored.
            Some(_) => {}
            None => self.open = Some((ix, v, 1)),
        }
        completed
    }

    fn close(&mut self, ix: i64, mean: f64) {
        if let Some(last) = self.last {
            // Bins that received nothing are gaps; a gap longer than the window starts over.
            let gap = (ix - last - 1).max(0) as usize;
            if gap >= self.keep {
                self.done.clear();
            } else {
                self.done.extend(std::iter::repeat_n(None, gap));
            }
        }
        self.done.push_back(Some(mean));
        while self.done.len() > self.keep {
            self.done.pop_front();
        }
        self.last = Some(ix);
    }

    /// Number of completed bins held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// Mean of the completed bins `from..to` counted back from the newest (0 = newest, so
    /// `mean_back(0, 4)` is the last four bins), if at least half of them have values.
    pub fn mean_back(&self, from: usize, to: usize) -> Option<f64> {
        let n = self.done.len();
        if to > n || from >= to {
            return None;
        }
        let vals: Vec<f64> = (from..to).filter_map(|k| self.done[n - 1 - k]).collect();
        (vals.len() * 2 >= to - from).then(|| vals.iter().sum::<f64>() / vals.len() as f64)
    }

    /// Subtracts `offset` from the newest `count` completed bins (a detector that has
    /// recognised a step tracks the level underneath it).
    pub fn shift_back(&mut self, count: usize, offset: f64) {
        let n = self.done.len();
        for k in n.saturating_sub(count)..n {
            if let Some(v) = &mut self.done[k] {
                *v -= offset;
            }
        }
    }
}

/// Five-minute means of a value for each local day, kept for a week and a day: what the same
/// time of day looked like on earlier days of the same kind (weekday or weekend, whose demand
/// patterns differ).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct DayProfile {
    utc_offset_h: f64,
    /// (local day number, slots of (sum, count)).
    days: std::collections::VecDeque<(i64, Vec<(f64, u32)>)>,
}

const SLOT_S: i64 = 300;
const SLOTS: usize = 288;
const KEEP_DAYS: usize = 8;

impl DayProfile {
    pub fn new(utc_offset_h: f64) -> Self {
        DayProfile { utc_offset_h, days: Default::default() }
    }

    /// Local day number and slot of `t`.
    fn place(&self, t: DateTime<Utc>) -> (i64, usize) {
        let local = t.timestamp() + (self.utc_offset_h * 3600.0) as i64;
        (local.div_euclid(86_400), (local.rem_euclid(86_400) / SLOT_S) as usize)
    }

    /// Saturday or Sunday (1970-01-01, day 0, was a Thursday).
    fn weekend(day: i64) -> bool {
        (day + 3).rem_euclid(7) >= 5
    }

    pub fn add(&mut self, t: DateTime<Utc>, v: f64) {
        let (day, slot) = self.place(t);
        if self.days.back().is_none_or(|(d, _)| *d < day) {
            self.days.push_back((day, vec![(0.0, 0); SLOTS]));
            while self.days.len() > KEEP_DAYS {
                self.days.pop_front();
            }
        }
        if let Some((d, slots)) = self.days.back_mut() {
            if *d == day {
                slots[slot].0 += v;
                slots[slot].1 += 1;
            }
        }
    }

    /// The mean of the slot holding `t`, on `t`'s day.
    pub fn observed(&self, t: DateTime<Utc>) -> Option<f64> {
        let (day, slot) = self.place(t);
        let (_, slots) = self.days.iter().find(|(d, _)| *d == day)?;
        let (sum, n) = slots[slot];
        (n > 0).then(|| sum / f64::from(n))
    }

    /// The median of the same slot on earlier days of the same kind, if there are any.
    pub fn expected(&self, t: DateTime<Utc>) -> Option<f64> {
        self.median_of(t, true)
    }

    /// `expected` from at least `min_days` earlier days of the same kind, drawn as a line
    /// through the slots' centres rather than as steps: in the steepest part of the morning
    /// rise a district's demand moves several percent within one five-minute slot, which a
    /// step at the slot's edge would count as an excess.
    pub fn expected_smooth(&self, t: DateTime<Utc>, min_days: usize) -> Option<f64> {
        let half = SLOT_S / 2;
        let centre = (t.timestamp() - half).div_euclid(SLOT_S) * SLOT_S + half;
        let at = |s: i64| DateTime::from_timestamp(s, 0).and_then(|t| self.median_from(t, true, min_days));
        let (before, after) = (at(centre), at(centre + SLOT_S));
        let w = (t.timestamp_millis() - centre * 1000) as f64 / (SLOT_S * 1000) as f64;
        match (before, after) {
            (Some(a), Some(b)) => Some(a + (b - a) * w),
            (one, other) => one.or(other),
        }
    }

    /// The median of the same slot on earlier days (of the same kind, or of any kind).
    fn median_of(&self, t: DateTime<Utc>, same_kind: bool) -> Option<f64> {
        self.median_from(t, same_kind, 1)
    }

    /// The same from at least `min_days` earlier days.
    fn median_from(&self, t: DateTime<Utc>, same_kind: bool, min_days: usize) -> Option<f64> {
        let (day, slot) = self.place(t);
        let mut v: Vec<f64> = self
            .days
            .iter()
            .filter(|(d, _)| *d < day && (!same_kind || Self::weekend(*d) == Self::weekend(day)))
            .filter(|(_, slots)| slots[slot].1 > 0)
            .map(|(_, slots)| slots[slot].0 / f64::from(slots[slot].1))
            .collect();
        if v.is_empty() || v.len() < min_days {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
    }

    /// Mean excess of what `observed` holds over what `self` expects, in the complete slots
    /// between `from` and `to`, if earlier days give an expectation for at least one of them.
    /// `same_kind`: compare with earlier days of the same kind only, else with any earlier day.
    pub fn excess(
        &self,
        observed: &DayProfile,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        same_kind: bool,
    ) -> Option<f64> {
        let first = from.timestamp().div_euclid(SLOT_S) + 1;
        let last = to.timestamp().div_euclid(SLOT_S) - 1;
        let diffs: Vec<f64> = (first..=last)
            .filter_map(|k| {
                let at = DateTime::from_timestamp(k * SLOT_S, 0)?;
                Some(observed.observed(at)? - self.median_of(at, same_kind)?)
            })
            .collect();
        (!diffs.is_empty()).then(|| diffs.iter().sum::<f64>() / diffs.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn bins_average_complete_and_mark_gaps() {
        let t0 = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let mut b = Bins::new(30, 10);
        for s in 0..30 {
            assert_eq!(b.add(at(s), s as f64), None);
        }
        assert_eq!(b.add(at(30), 100.0), Some(at(30)));
        assert_eq!(b.mean_back(0, 1), Some(14.5));
        // Nothing for two bins, then a value: the bin at 30 s completes, two gaps follow.
        assert_eq!(b.add(at(125), 7.0), Some(at(60)));
        assert_eq!(b.add(at(150), 9.0), Some(at(150)));
        assert_eq!(b.len(), 5);
        assert_eq!(b.mean_back(0, 1), Some(7.0));
        assert_eq!(b.mean_back(1, 3), None, "two gaps: no mean");
        assert_eq!(b.mean_back(0, 3), None, "one of three has a value: below half");
        assert_eq!(b.mean_back(0, 5), Some((14.5 + 100.0 + 7.0) / 3.0));
    }

    #[test]
    fn a_day_profile_compares_with_earlier_days_of_the_same_kind() {
        // Wednesday 2026-04-01 00:00 JST is 2026-03-31 15:00 UTC.
        let wed = Utc.with_ymd_and_hms(2026, 3, 31, 15, 0, 0).unwrap();
        let mut p = DayProfile::new(9.0);
        let day = chrono::Duration::days(1);
        // Wed, Thu, Fri at 10 per minute; Sat 30; then Mon 12 and Mon+1 (Tue) 40.
        for (d, v) in [(0, 10.0), (1, 10.0), (2, 10.0), (3, 30.0), (5, 12.0)] {
            for m in 0..1440 {
                p.add(wed + day * d + chrono::Duration::minutes(m), v);
            }
        }
        let mon_noon = wed + day * 5 + chrono::Duration::hours(12);
        assert_eq!(p.expected(mon_noon), Some(10.0), "weekdays only: the Saturday does not count");
        assert_eq!(p.expected(wed + day * 4), Some(30.0), "Sunday compares with Saturday");
        assert_eq!(p.excess(&p, mon_noon - chrono::Duration::minutes(30), mon_noon, true), Some(2.0));
        assert_eq!(p.excess(&p, mon_noon - chrono::Duration::minutes(3), mon_noon, true), None, "no complete slot");
        assert_eq!(p.expected(wed + chrono::Duration::hours(3)), None, "no earlier day");
        // The first Saturday has no earlier day of its kind; any earlier day: Wed, Thu, Fri.
        let sat_noon = wed + day * 3 + chrono::Duration::hours(12);
        assert_eq!(p.expected(sat_noon), None);
        assert_eq!(p.median_of(sat_noon, false), Some(10.0));
        assert_eq!(p.excess(&p, sat_noon - chrono::Duration::minutes(30), sat_noon, true), None);
        assert_eq!(p.excess(&p, sat_noon - chrono::Duration::minutes(30), sat_noon, false), Some(20.0));
    }
}
