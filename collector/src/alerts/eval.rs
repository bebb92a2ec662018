//! Rule evaluation: readings and clock ticks in, transitions (raise, repeat, clear) out.
//!
//! Pure and synchronous: no store, no clock of its own (every call carries its time), so the
//! unit tests below drive it reading by reading. Each rule walks
//! `Idle → Pending → Active → Clearing → Idle`: the on-delay is the time spent in `Pending`,
//! the off-delay the time in `Clearing`, so one episode raises once and clears once however
//! the signal jitters inside it. Thresholds add hysteresis on top: once active, the value
//! must fall past `threshold - hysteresis` (or rise past `threshold + hysteresis`) to count
//! as clear at all.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use model::{DeviceId, PointName, Quality, Reading, Severity};

/// One validated rule: what to watch and when it is a problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub device: DeviceId,
    /// `None` only for communication loss: any point of the device counts.
    pub point: Option<PointName>,
    pub asset: String,
    pub severity: Severity,
    pub kind: Kind,
    pub on_delay: Duration,
    pub off_delay: Duration,
    /// Message texts; `{value}` is replaced by the value that raised the alert.
    pub message_en: String,
    pub message_ja: String,
    /// Planned works of this kind on the rule's asset (or device) make its condition clear:
    /// status bits during a planned pump stop are not a failure (`quiet_during`).
    pub quiet_during: Option<store::WorkKind>,
}

/// The condition of a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Value above `threshold`; clear below `threshold - hysteresis`.
    Above { threshold: f64, hysteresis: f64 },
    /// Value below `threshold`; clear above `threshold + hysteresis`.
    Below { threshold: f64, hysteresis: f64 },
    /// |Δvalue| per minute between consecutive good readings above `max_per_min`.
    RateOfChange { max_per_min: f64 },
    /// The value has not moved by more than `tolerance` for `stuck_for`.
    FlatLine { stuck_for: Duration, tolerance: f64 },
    /// Value outside the physical range, or a reading the collector marked `out_of_range`.
    OutOfRange { min: f64, max: f64 },
    /// No good reading for `silent_for`.
    CommLoss { silent_for: Duration },
    /// Any bit of `mask` set in a status word.
    Bits { mask: u32 },
    /// A fault code other than 0.
    Nonzero,
    /// A condition a detector decides from many readings (`super::detect`); the evaluator
    /// only runs the lifecycle (delays, episodes) on it.
    Detected,
}

impl Kind {
    /// Messages for rules that give none (English, Japanese).
    pub fn default_messages(&self) -> (String, String) {
        let (en, ja) = match self {
            Kind::Above { .. } => ("value {value} above the limit", "値 {value} が上限を超えました"),
            Kind::Below { .. } => ("value {value} below the limit", "値 {value} が下限を下回りました"),
            Kind::RateOfChange { .. } => ("value changing too fast ({value})", "値の変化が急です ({value})"),
            Kind::FlatLine { .. } => ("sensor stuck at {value}", "センサー値が {value} のまま変化しません"),
            Kind::OutOfRange { .. } => ("value {value} outside the physical range", "値 {value} が測定範囲外です"),
            Kind::CommLoss { .. } => ("no data from the device", "機器からのデータが途絶えています"),
            Kind::Bits { .. } => ("status alarm (status word {value})", "状態警報 (ステータス {value})"),
            Kind::Nonzero => ("fault code {value}", "故障コード {value}"),
            Kind::Detected => ("anomaly detected ({value})", "異常を検知しました ({value})"),
        };
        (en.to_owned(), ja.to_owned())
    }
}

impl Rule {
    fn watches(&self, r: &Reading) -> bool {
        r.device == self.device && self.point.as_ref().is_none_or(|p| *p == r.point)
    }
}

/// What the evaluator decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// The condition held for the on-delay: raise an alert (or update the active one).
    Raise { rule: usize, at: DateTime<Utc>, value: Option<f64> },
    /// The condition came back while clearing: the same episode, report it as a repeat.
    Repeat { rule: usize, at: DateTime<Utc>, value: Option<f64> },
    /// The condition stayed clear for the off-delay: resolve the alert.
    Clear { rule: usize, at: DateTime<Utc> },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Idle,
    Pending { since: DateTime<Utc> },
    Active,
    Clearing { since: DateTime<Utc> },
}

#[derive(Debug, Clone)]
struct State {
    phase: Phase,
    /// The condition as last evaluated, reused on ticks when no reading came.
    cond: bool,
    /// The value that last made the condition true.
    value: Option<f64>,
    /// Previous good value and time (rate of change).
    prev: Option<(f64, DateTime<Utc>)>,
    /// The value the point sits at and since when (flat line).
    flat: Option<(f64, DateTime<Utc>)>,
    /// Time of the last good reading (communication loss); the start time before any.
    last_good: DateTime<Utc>,
}

/// Evaluates a set of rules.
#[derive(Debug)]
pub struct Evaluator {
    rules: Vec<Rule>,
    states: Vec<State>,
    by_device: HashMap<DeviceId, Vec<usize>>,
    /// Per rule, the planned windows `[from, to)` in which its condition counts as clear.
    quiet: Vec<Vec<(DateTime<Utc>, DateTime<Utc>)>>,
}

fn exceeds(d: chrono::TimeDelta, limit: Duration) -> bool {
    d.to_std().is_ok_and(|d| d >= limit)
}

impl Evaluator {
    /// Rules evaluated from `start` (communication loss counts silence from there).
    pub fn new(rules: Vec<Rule>, start: DateTime<Utc>) -> Self {
        let mut by_device: HashMap<DeviceId, Vec<usize>> = HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            by_device.entry(r.device.clone()).or_default().push(i);
        }
        let states = rules
            .iter()
            .map(|_| State { phase: Phase::Idle, cond: false, value: None, prev: None, flat: None, last_good: start })
            .collect();
        let quiet = vec![Vec::new(); rules.len()];
        Evaluator { rules, states, by_device, quiet }
    }

    /// Takes the planned-works register (a snapshot): each rule with `quiet_during` keeps the
    /// windows of works of that kind on its asset or device.
    pub fn set_works(&mut self, works: &[store::PlannedWork]) {
        for (rule, quiet) in self.rules.iter().zip(&mut self.quiet) {
            quiet.clear();
            let Some(kind) = rule.quiet_during else { continue };
            quiet.extend(
                works
                    .iter()
                    .filter(|w| w.kind == kind && (w.target == rule.asset || w.target == rule.device.as_str()))
                    .map(|w| (w.from, w.to)),
            );
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Marks rule `rule` active: its alert is open in the store (after a restart). It will
    /// not be raised again in this episode, and resolves once the condition is clear for the
    /// off-delay.
    pub fn restore_active(&mut self, rule: usize) {
        let s = &mut self.states[rule];
        s.phase = Phase::Active;
        s.cond = true;
    }

    /// Whether rule `rule` currently has an active episode.
    pub fn is_active(&self, rule: usize) -> bool {
        matches!(self.states[rule].phase, Phase::Active | Phase::Clearing { .. })
    }

    /// Evaluates one reading against the rules of its device.
    pub fn on_reading(&mut self, r: &Reading, out: &mut Vec<Transition>) {
        let Some(ixs) = self.by_device.get(&r.device) else { return };
        for &i in ixs {
            let rule = &self.rules[i];
            if !rule.watches(r) {
                continue;
            }
            let s = &mut self.states[i];
            let active = matches!(s.phase, Phase::Active | Phase::Clearing { .. });
            let v = r.value.as_f64().filter(|v| v.is_finite());
            let good = r.quality.is_good();
            let cond = match (&rule.kind, good, v) {
                (Kind::CommLoss { .. }, true, _) => {
                    s.last_good = s.last_good.max(r.time);
                    Some(false)
                }
                (Kind::CommLoss { .. }, false, _) => None,
                // A detector sets this condition through `set_condition`.
                (Kind::Detected, _, _) => None,
                (Kind::OutOfRange { .. }, false, _) if r.quality == Quality::OutOfRange => Some(true),
                // Other bad readings say nothing about the process; communication loss covers them.
                (_, false, _) | (_, true, None) => None,
                (Kind::Above { threshold, hysteresis }, true, Some(v)) => {
                    Some(if active { v > threshold - hysteresis } else { v > *threshold })
                }
                (Kind::Below { threshold, hysteresis }, true, Some(v)) => {
                    Some(if active { v < threshold + hysteresis } else { v < *threshold })
                }
                (Kind::RateOfChange { max_per_min }, true, Some(v)) => {
                    let c = s.prev.and_then(|(pv, pt)| {
                        let minutes = (r.time - pt).num_milliseconds() as f64 / 60_000.0;
                        (minutes > 0.0).then(|| (v - pv).abs() / minutes > *max_per_min)
                    });
                    s.prev = Some((v, r.time));
                    Some(c.unwrap_or(false))
                }
                (Kind::FlatLine { stuck_for, tolerance }, true, Some(v)) => match s.flat {
                    Some((fv, since)) if (v - fv).abs() <= *tolerance => Some(exceeds(r.time - since, *stuck_for)),
                    _ => {
                        s.flat = Some((v, r.time));
                        Some(false)
                    }
                },
                (Kind::OutOfRange { min, max }, true, Some(v)) => Some(v < *min || v > *max),
                (Kind::Bits { mask }, true, Some(v)) => Some((v as i64 as u64) & u64::from(*mask) != 0),
                (Kind::Nonzero, true, Some(v)) => Some(v != 0.0),
            };
            // During planned works the rule is quiet about (a pump stopped for maintenance),
            // its condition is clear: an alert raised before ends, and a condition that
            // outlasts the works is raised when they end.
            let quiet = self.quiet[i].iter().any(|(from, to)| *from <= r.time && r.time < *to);
            if let Some(cond) = cond.map(|c| c && !quiet) {
                if cond {
                    s.value = v;
                }
                s.cond = cond;
                advance(i, rule, s, r.time, out);
            }
        }
    }

    /// Sets the condition of a `Kind::Detected` rule, as its detector decided at `at`, and
    /// runs the rule's lifecycle on it.
    pub fn set_condition(
        &mut self,
        rule: usize,
        cond: bool,
        value: Option<f64>,
        at: DateTime<Utc>,
        out: &mut Vec<Transition>,
    ) {
        let s = &mut self.states[rule];
        if cond {
            s.value = value;
        }
        s.cond = cond;
        advance(rule, &self.rules[rule], s, at, out);
    }

    /// Advances time-based conditions to `now`: delays that expire without a new reading,
    /// and communication loss.
    pub fn on_tick(&mut self, now: DateTime<Utc>, out: &mut Vec<Transition>) {
        for (i, (rule, s)) in self.rules.iter().zip(&mut self.states).enumerate() {
            if let Kind::CommLoss { silent_for } = rule.kind {
                s.cond = exceeds(now - s.last_good, silent_for);
                s.value = None;
            }
            advance(i, rule, s, now, out);
        }
    }
}

/// One step of a rule's state machine with the condition `s.cond` at time `t`.
fn advance(i: usize, rule: &Rule, s: &mut State, t: DateTime<Utc>, out: &mut Vec<Transition>) {
    let (cond, value) = (s.cond, s.value);
    s.phase = match s.phase {
        Phase::Idle if cond => {
            if rule.on_delay.is_zero() {
                out.push(Transition::Raise { rule: i, at: t, value });
                Phase::Active
            } else {
                Phase::Pending { since: t }
            }
        }
        Phase::Idle => Phase::Idle,
        Phase::Pending { .. } if !cond => Phase::Idle,
        Phase::Pending { since } if exceeds(t - since, rule.on_delay) => {
            out.push(Transition::Raise { rule: i, at: t, value });
            Phase::Active
        }
        p @ Phase::Pending { .. } => p,
        Phase::Active if cond => Phase::Active,
        Phase::Active if rule.off_delay.is_zero() => {
            out.push(Transition::Clear { rule: i, at: t });
            Phase::Idle
        }
        Phase::Active => Phase::Clearing { since: t },
        Phase::Clearing { .. } if cond => {
            out.push(Transition::Repeat { rule: i, at: t, value });
            Phase::Active
        }
        Phase::Clearing { since } if exceeds(t - since, rule.off_delay) => {
            out.push(Transition::Clear { rule: i, at: t });
            Phase::Idle
        }
        p @ Phase::Clearing { .. } => p,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use model::Value;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap()
    }

    fn at(s: f64) -> DateTime<Utc> {
        t0() + chrono::Duration::milliseconds((s * 1000.0) as i64)
    }

    fn rule(kind: Kind, on_delay_s: u64, off_delay_s: u64) -> Rule {
        let (message_en, message_ja) = kind.default_messages();
        Rule {
            name: "r".into(),
            device: DeviceId::new("pl01").unwrap(),
            point: Some(PointName::new("pressure").unwrap()),
            asset: "dma01".into(),
            severity: Severity::Critical,
            kind,
            on_delay: Duration::from_secs(on_delay_s),
            off_delay: Duration::from_secs(off_delay_s),
            message_en,
            message_ja,
            quiet_during: None,
        }
    }

    fn reading(s: f64, v: f64) -> Reading {
        Reading::good(DeviceId::new("pl01").unwrap(), PointName::new("pressure").unwrap(), at(s), v)
    }

    /// Feeds `(second, value)` readings one a second and ticks in between; returns the
    /// transitions as (kind letter, second).
    #[track_caller]
    fn run(rule: Rule, values: &[(f64, f64)], tick_until: f64) -> Vec<(char, f64)> {
        let mut e = Evaluator::new(vec![rule], t0());
        let mut out = Vec::new();
        let mut ix = 0;
        let mut s = 0.0;
        while s <= tick_until {
            while ix < values.len() && values[ix].0 <= s {
                e.on_reading(&reading(values[ix].0, values[ix].1), &mut out);
                ix += 1;
            }
            e.on_tick(at(s), &mut out);
            s += 1.0;
        }
        out.iter()
            .map(|t| match t {
                Transition::Raise { at, .. } => ('R', (*at - t0()).num_milliseconds() as f64 / 1000.0),
                Transition::Repeat { at, .. } => ('P', (*at - t0()).num_milliseconds() as f64 / 1000.0),
                Transition::Clear { at, .. } => ('C', (*at - t0()).num_milliseconds() as f64 / 1000.0),
            })
            .collect()
    }

    #[test]
    fn a_fault_during_planned_pump_maintenance_is_quiet_and_one_outlasting_it_is_raised() {
        let work = |kind, target: &str, from: f64, to: f64| store::PlannedWork {
            id: 1,
            target: target.into(),
            kind,
            from: at(from),
            to: at(to),
            by: "suzuki".into(),
            note: None,
            created: t0(),
        };
        let quiet = Rule { quiet_during: Some(store::WorkKind::PumpMaintenance), ..rule(Kind::Nonzero, 0, 10) };
        let feed = |rule: Rule, works: &[store::PlannedWork], fault: &dyn Fn(f64) -> f64| {
            let mut e = Evaluator::new(vec![rule], t0());
            e.set_works(works);
            let mut out = Vec::new();
            for s in 0..600 {
                e.on_reading(&reading(s as f64, fault(s as f64)), &mut out);
                e.on_tick(at(s as f64), &mut out);
            }
            out.iter()
                .map(|t| match t {
                    Transition::Raise { at, .. } => ('R', (*at - t0()).num_seconds()),
                    Transition::Repeat { at, .. } => ('P', (*at - t0()).num_seconds()),
                    Transition::Clear { at, .. } => ('C', (*at - t0()).num_seconds()),
                })
                .collect::<Vec<_>>()
        };
        // Fault code 3 from 100 s to 200 s, while the pump is stopped for maintenance 50-300 s.
        let stop = |s: f64| if (100.0..200.0).contains(&s) { 3.0 } else { 0.0 };
        let planned = [work(store::WorkKind::PumpMaintenance, "dma01", 50.0, 300.0)];
        assert_eq!(feed(quiet.clone(), &planned, &stop), []);
        // The fault stays after the works end at 300 s: raised then.
        let stays = |s: f64| if s >= 100.0 { 3.0 } else { 0.0 };
        assert_eq!(feed(quiet.clone(), &planned, &stays), [('R', 300)]);
        // Other kinds of work, other assets, and rules without `quiet_during` are not quiet.
        for (rule, works) in [
            (quiet.clone(), [work(store::WorkKind::Flushing, "dma01", 50.0, 300.0)]),
            (quiet.clone(), [work(store::WorkKind::PumpMaintenance, "ps09", 50.0, 300.0)]),
            (rule(Kind::Nonzero, 0, 10), planned.clone()),
        ] {
            assert_eq!(feed(rule, &works, &stop), [('R', 100), ('C', 210)]);
        }
    }

    /// A deterministic wobble in [-1, 1] (no RNG needed for a test of hysteresis).
    fn wobble(i: usize) -> f64 {
        ((i as f64 * 12.9898).sin() * 43758.5453).fract() * 2.0 - 1.0
    }

    #[test]
    fn noise_around_the_threshold_raises_exactly_one_alert() {
        // Pressure sits near the 2.0 bar low limit with ±0.05 bar noise for ten minutes,
        // crossing it dozens of times; then recovers to 3 bar.
        let mut values: Vec<(f64, f64)> = (0..600).map(|i| (i as f64, 2.0 + 0.05 * wobble(i))).collect();
        let crossings = values.windows(2).filter(|w| (w[0].1 < 2.0) != (w[1].1 < 2.0)).count();
        assert!(crossings > 50, "the noise crosses the threshold {crossings} times");
        values.extend((600..800).map(|i| (i as f64, 3.0)));
        let got = run(rule(Kind::Below { threshold: 2.0, hysteresis: 0.1 }, 5, 60), &values, 800.0);
        assert_eq!(got.iter().filter(|t| t.0 == 'R').count(), 1, "{got:?}");
        assert_eq!(got.iter().filter(|t| t.0 == 'C').count(), 1, "{got:?}");
        assert_eq!(got.last(), Some(&('C', 660.0)), "clears 60 s after recovering at 600 s: {got:?}");
        // Without hysteresis or delays the same signal flaps: the machinery is what helps.
        let flapping = run(rule(Kind::Below { threshold: 2.0, hysteresis: 0.0 }, 0, 0), &values, 800.0);
        assert!(flapping.iter().filter(|t| t.0 == 'R').count() > 10, "{flapping:?}");
    }

    #[test]
    fn on_delay_ignores_short_excursions_and_off_delay_waits_for_a_clear_spell() {
        let mut v: Vec<(f64, f64)> = (0..300).map(|i| (i as f64, 1.0)).collect();
        // 20 s above 5: shorter than the 30 s on-delay.
        for x in &mut v[50..70] {
            x.1 = 9.0;
        }
        // 100 s above 5, with a 10 s dip inside: raised after 30 s, the dip is a repeat, not a clear.
        for x in &mut v[100..200] {
            x.1 = 9.0;
        }
        for x in &mut v[150..160] {
            x.1 = 1.0;
        }
        let got = run(rule(Kind::Above { threshold: 5.0, hysteresis: 0.0 }, 30, 20), &v, 300.0);
        assert_eq!(got, [('R', 130.0), ('P', 160.0), ('C', 220.0)]);
    }

    #[test]
    fn delays_expire_on_ticks_when_no_reading_comes() {
        // One reading above the limit, then nothing (a deadband suppresses steady values).
        let got = run(rule(Kind::Above { threshold: 5.0, hysteresis: 0.0 }, 10, 10), &[(0.0, 9.0), (40.0, 1.0)], 70.0);
        assert_eq!(got, [('R', 10.0), ('C', 50.0)]);
    }

    #[test]
    fn flat_line_after_the_stuck_time() {
        let mut v: Vec<(f64, f64)> = (0..100).map(|i| (i as f64, 3.0 + 0.01 * wobble(i))).collect();
        v.extend((100..400).map(|i| (i as f64, 3.1234)));
        v.extend((400..500).map(|i| (i as f64, 3.0 + 0.01 * wobble(i))));
        let stuck = Kind::FlatLine { stuck_for: Duration::from_secs(120), tolerance: 0.0 };
        let got = run(rule(stuck, 0, 30), &v, 500.0);
        assert_eq!(got, [('R', 220.0), ('C', 430.0)]);
    }

    #[test]
    fn comm_loss_counts_silence_and_bad_readings_do_not_end_it() {
        let r = rule(Kind::CommLoss { silent_for: Duration::from_secs(60) }, 0, 10);
        let mut e = Evaluator::new(vec![r], t0());
        let mut out = Vec::new();
        e.on_reading(&reading(0.0, 3.0), &mut out);
        for s in 1..200 {
            if s < 150 {
                // The device fails every request: readings with comm_fail come, good ones do not.
                let mut bad = reading(s as f64, 0.0);
                (bad.value, bad.quality) = (Value::Absent, Quality::CommFail);
                e.on_reading(&bad, &mut out);
            } else {
                e.on_reading(&reading(s as f64, 3.0), &mut out);
            }
            e.on_tick(at(s as f64), &mut out);
        }
        assert_eq!(
            out,
            [Transition::Raise { rule: 0, at: at(60.0), value: None }, Transition::Clear { rule: 0, at: at(160.0) }]
        );
    }

    #[test]
    fn status_rules_rate_and_range() {
        let trip = [(0.0, 0.0), (10.0, 8976.0), (40.0, 0.0)];
        assert_eq!(run(rule(Kind::Nonzero, 0, 10), &trip, 60.0), [('R', 10.0), ('C', 50.0)]);
        let word = [(0.0, 0b1001 as f64), (10.0, 0b1011 as f64), (20.0, 0b1001 as f64)];
        assert_eq!(run(rule(Kind::Bits { mask: 0b10 }, 0, 0), &word, 30.0), [('R', 10.0), ('C', 20.0)]);
        // 3 bar in one second is 180 bar/min.
        let jump = [(0.0, 3.0), (1.0, 3.01), (2.0, 6.0), (3.0, 6.0)];
        assert_eq!(run(rule(Kind::RateOfChange { max_per_min: 10.0 }, 0, 0), &jump, 5.0), [('R', 2.0), ('C', 3.0)]);
        let range = [(0.0, 3.0), (1.0, 17.0), (2.0, 3.0)];
        let r = rule(Kind::OutOfRange { min: 0.0, max: 16.0 }, 0, 0);
        assert_eq!(run(r, &range, 3.0), [('R', 1.0), ('C', 2.0)]);
    }

    #[test]
    fn a_restored_alert_is_not_raised_again_and_resolves_when_clear() {
        let mut e = Evaluator::new(vec![rule(Kind::Nonzero, 0, 10)], t0());
        e.restore_active(0);
        let mut out = Vec::new();
        e.on_reading(&reading(0.0, 8976.0), &mut out);
        e.on_reading(&reading(5.0, 0.0), &mut out);
        e.on_tick(at(16.0), &mut out);
        assert_eq!(out, [Transition::Clear { rule: 0, at: at(16.0) }]);
    }
}
