//! Burst: a step rise in a district's inflow that comes with a pressure drop at its critical
//! point, told apart from hydrant flushing by how long it lasts and when it starts.
//!
//! Every 30 s the detector compares the inflow of the last two minutes with what the minutes
//! before predict: the mean 4–12 minutes ago, carried forward along the slope from the mean
//! 24–32 minutes ago. Demand changes smoothly over the day (the morning peak builds over
//! hours), so a straight line over half an hour follows it; a burst opens within minutes and
//! stands out as a step. The threshold adapts to the district: `k_sigma` times the spread of
//! the district's own relative prediction error (learned while nothing is happening, over about
//! eight hours), and at least `min_rise_m3_per_h`. The rise must come with a pressure drop at
//! the critical point (more flow through the same mains costs head), which a flow-meter glitch
//! does not give, and must hold at two evaluations in a row.
//!
//! Once a step is recognised the detector subtracts it from the inflow it keeps, so its
//! prediction follows the demand underneath, and it watches for the opposite step: the flow
//! falling back by half the step ends the episode (the hydrant was closed, the burst repaired).
//!
//! A burst that opens while demand itself climbs steeply (the morning rise, the evening peak)
//! or that widens over many minutes may never stand out from the minutes before it. So the
//! detector also compares the last ten minutes with the district's usual flow at that time of
//! day — the median of the flow as measured on at least two earlier days of the same kind,
//! weekday or weekend — and recognises a
//! step when the flow stands above it by `K_USUAL` times the spread this comparison shows while
//! nothing happens, with the critical point's pressure under its own usual level (a flow meter
//! that reads high leaves the pressure where it was). The same comparison keeps an episode
//! open when the half-hour trend, carried past the end of a slow growth, makes the flow look
//! as if it fell back.
//!
//! Hydrant flushing looks like a burst in flow and pressure (it *is* water leaving the
//! network at one point). Flushing is planned work, so the utility enters it in the
//! planned-works register (`store::works`), and with `planned_works` on (the default) the
//! register decides: a step that begins while flushing or valve work is planned in the
//! district is reported as "planned works in progress" (info) and becomes a burst (critical)
//! only if it outlasts the planned window by `planned_margin`; a step with no planned work is
//! a burst (critical) as soon as it is confirmed if it is well clear of the threshold
//! (`CLEAR`), else a flow rise (major) until it has shown it stands at both looks of `HOLDS`
//! (90 s and 3 min: the last minute keeps `HOLD_KEPT` of the step over the level under it)
//! and earlier days of the same kind do not show the flow about usual for the time of day:
//! the district's demand wanders by a few percent over minutes, and the tail of that noise
//! passes for a small step that a burst would not drift back from. A held step that did not
//! stand stays a flow rise and is judged as flushing would be without a register (an hour,
//! earlier days), day or night, and becomes a burst only if earlier days vouch for it.
//!
//! With `planned_works = false` (a utility that keeps no register) the detector falls back on
//! duration and time of day: the step is first an "unexplained inflow rise" (major); it
//! becomes a burst (critical) when it has lasted `flushing_max` or when it began outside
//! `flushing_hours`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use model::{Reading, Severity};

use super::{Bins, DayProfile, Detector, DetectorSpec, Input, Signal, local_hour, output, water_works};
use crate::alerts::eval::Rule;

/// Settings of one district's burst detector (validated from a `[[detector]]` table).
#[derive(Debug, Clone, PartialEq)]
pub struct BurstParams {
    /// The district's inlet flow, m³/h.
    pub flow: Input,
    /// The pressure at the district's critical point, bar.
    pub pressure: Input,
    /// The smallest rise worth an alert, m³/h.
    pub min_rise_m3_per_h: f64,
    /// The rise must exceed this many standard deviations of the district's own noise.
    pub k_sigma: f64,
    /// The critical point's pressure must fall by at least this much, bar.
    pub min_pressure_drop_bar: f64,
    /// A rise lasting this long is not hydrant flushing.
    pub flushing_max: Duration,
    /// Outside flushing hours a rise is a burst once it has held this long.
    pub burst_confirm: Duration,
    /// Local hours [from, to) in which crews flush hydrants.
    pub flushing_hours: (f64, f64),
    /// Local time offset from UTC, hours (Japan: 9).
    pub utc_offset_h: f64,
    /// The utility enters its flushing and valve work in the planned-works register: a step
    /// during planned work is not a burst, a step without is one at once.
    pub planned_works: bool,
    /// How long a step may outlast its planned window (crews close hydrants late) before it
    /// is a burst; also how early before the window a step may begin.
    pub planned_margin: Duration,
}

impl BurstParams {
    pub fn new(flow: Input, pressure: Input) -> Self {
        BurstParams {
            flow,
            pressure,
            min_rise_m3_per_h: 8.0,
            k_sigma: 4.0,
            min_pressure_drop_bar: 0.01,
            flushing_max: Duration::from_secs(3600),
            burst_confirm: Duration::from_secs(600),
            flushing_hours: (8.0, 17.0),
            utc_offset_h: 9.0,
            planned_works: true,
            planned_margin: Duration::from_secs(15 * 60),
        }
    }
}

const BIN_S: u32 = 30;
/// Bins kept: the oldest window reaches 32 minutes back.
const KEEP: usize = 66;
/// The windows, in bins counted back from the newest: now, recent, old.
const NOW: (usize, usize) = (0, 4);
const RECENT: (usize, usize) = (8, 24);
const OLD: (usize, usize) = (48, 64);
/// Centre distances: now to recent, recent to old (bins).
const AHEAD: f64 = 14.0;
const SPAN: f64 = 40.0;
/// Evaluations in a row that confirm a change.
const CONFIRM: u32 = 2;
/// Weight of one evaluation in the running noise estimate (about eight hours of memory).
const NOISE_ALPHA: f64 = 1.0 / 960.0;
/// Relative noise assumed before any is learned.
const NOISE_START: f64 = 0.05;
/// With the register, a step nobody planned this many times the threshold or more is a burst
/// as soon as it is confirmed. A smaller one may be demand that wandered up for a few minutes
/// (the tail of the district's own noise): it is a flow rise while held (`HOLDS`), then a burst if it
/// still stands at `HOLD_KEPT` of its size. Wandering demand drifts back within minutes; a
/// burst does not close by itself. (In the simulated week of seed 3 the false steps were
/// 1.02 times the threshold, the real bursts 1.48 and 1.6: BENCHMARKS.md.)
const CLEAR: f64 = 1.3;
const HOLD_KEPT: f64 = 0.75;
/// When a held step must still stand, in seconds after it was recognised: a burst stays open
/// until it is repaired, while a district's demand is the sum of thousands of households'
/// draws and its excursions decorrelate within minutes (in the simulator an AR(1) wander with
/// a 200-s time constant, so an excursion keeps about 64 % of itself after 90 s and 41 % after
/// 3 minutes). One look at 90 s let about a quarter of the excursions through (seed 3 of the
/// simulated week: five false critical bursts); a second look at 3 minutes lets through only
/// those that stood twice, at the cost of a small step's critical alert coming 1.5 minutes
/// later (a step clear of the threshold is critical at once).
const HOLDS: [i64; 2] = [90, 180];
/// The second way to a step: the flow stands above its usual level for the time of day (the
/// median of earlier days of the same kind) over the last `USUAL_BINS` (ten minutes), by
/// `K_USUAL` times the spread that this comparison shows while nothing happens, with the
/// critical point's pressure below its usual level too. A burst that opens during the steep
/// morning rise or the evening peak may not stand out as a step from the minutes before (seed 4
/// and 5 of the scored week each had one, found by neither look); it still stands above what
/// earlier days had at that hour, and a burst does not close by itself.
const USUAL_BINS: usize = 20;
const K_USUAL: f64 = 5.0;
/// Earlier days of the same kind the usual level needs: the median of one day is that day,
/// with its own wander (the first Sunday would be judged by the first Saturday alone).
const USUAL_DAYS: usize = 2;
/// Minutes after a step in which a "fall" may be the trend overshooting (the old window of the
/// prediction ends 32 minutes back).
const OVERSHOOT: i64 = 45;
/// Relative spread of the comparison with earlier days assumed before any is learned.
const USUAL_START: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
enum State {
    Idle,
    /// A step is recognised: its size (m³/h), the pressure it cost (bar), when it began,
    /// and whether it is past being flushing.
    Step {
        size: f64,
        drop: f64,
        since: DateTime<Utc>,
        burst: bool,
        /// While planned works explain the step: the end of their window plus the margin.
        planned: Option<DateTime<Utc>>,
        /// A step nobody planned but only a little above the threshold stays a flow rise until
        /// this time; then it is a burst if it still stands (see `HOLDS`).
        #[serde(default)]
        hold: Option<DateTime<Utc>>,
        /// The held step did not stand: it is judged as flushing would be (an hour, earlier
        /// days), whatever the time of day.
        #[serde(default)]
        doubted: bool,
        /// The level under the step when it was recognised and its trend (m³/h per bin): where
        /// the flow would be without the step, for the checks that it still stands.
        #[serde(default)]
        under: Option<(f64, f64)>,
        /// Standing checks a held step has passed (`HOLDS`).
        #[serde(default)]
        stood: u8,
    },
}

#[derive(Debug)]
pub struct Burst {
    params: BurstParams,
    flow: Bins,
    pressure: Bins,
    /// The inflow as measured (steps included), by time of day over the last week.
    measured: DayProfile,
    /// The inflow under recognised steps: the district's normal demand by time of day.
    normal: DayProfile,
    /// Running mean square of the relative prediction error while idle.
    noise_var: f64,
    /// The critical point's pressure as measured, by time of day over the last week.
    pressure_profile: DayProfile,
    /// Running mean squares, while idle, of the flow's relative excess over its usual level
    /// and of the pressure's deficit under its usual level (bar²), over `USUAL_BINS`.
    usual_var: f64,
    usual_p_var: f64,
    /// Consecutive evaluations that found the flow standing above its usual level.
    over_usual: u32,
    state: State,
    /// Consecutive evaluations that saw a rise (idle or stepped) or a fall (stepped).
    rising: u32,
    falling: u32,
    /// How long into the current step it is next checked against earlier days.
    next_check: Duration,
    /// Windows of planned flushing and valve work in this district, from the register.
    works: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    rules: Vec<Rule>,
}

/// What a burst detector learned, as saved across a restart (format `STATE_VERSION`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Learned {
    flow: Bins,
    pressure: Bins,
    measured: DayProfile,
    normal: DayProfile,
    noise_var: f64,
    state: State,
    rising: u32,
    falling: u32,
    next_check: Duration,
    // Added later: a state saved before them restores with these learned afresh.
    #[serde(default)]
    pressure_profile: Option<DayProfile>,
    #[serde(default)]
    usual_var: Option<f64>,
    #[serde(default)]
    usual_p_var: Option<f64>,
    #[serde(default)]
    over_usual: u32,
}

const STATE_VERSION: u32 = 1;

/// Output indices.
const RISE: usize = 0;
const BURST: usize = 1;
const PLANNED: usize = 2;

impl Burst {
    pub fn new(spec: &DetectorSpec, params: BurstParams) -> Self {
        let rules = vec![
            output(
                spec,
                "_flow_rise",
                &params.flow,
                Severity::Major,
                "inflow {value} m3/h above the expected level with a pressure drop: burst or hydrant flushing?",
                "流入量が想定より {value} m3/h 多く末端圧力が低下: 漏水事故または消火栓洗浄の可能性",
            ),
            if params.planned_works {
                output(
                    spec,
                    "",
                    &params.flow,
                    Severity::Critical,
                    "suspected burst: inflow {value} m3/h above the expected level with a pressure drop, no planned works",
                    "管路破損(漏水事故)の疑い: 計画作業がないのに流入量が想定より {value} m3/h 多く末端圧力が低下",
                )
            } else {
                output(
                    spec,
                    "",
                    &params.flow,
                    Severity::Critical,
                    "suspected burst: inflow {value} m3/h above the expected level and not ending like flushing",
                    "管路破損(漏水事故)の疑い: 流入量が想定より {value} m3/h 多い状態が続いています",
                )
            },
            output(
                spec,
                "_planned_works",
                &params.flow,
                Severity::Info,
                "planned works in progress: inflow {value} m3/h above the expected level (flushing or valve work)",
                "計画作業中(消火栓洗浄・弁操作): 流入量が想定より {value} m3/h 多い",
            ),
        ];
        let utc_offset_h = params.utc_offset_h;
        Burst {
            params,
            flow: Bins::new(BIN_S, KEEP),
            pressure: Bins::new(BIN_S, KEEP),
            measured: DayProfile::new(utc_offset_h),
            normal: DayProfile::new(utc_offset_h),
            noise_var: NOISE_START * NOISE_START,
            pressure_profile: DayProfile::new(utc_offset_h),
            usual_var: USUAL_START * USUAL_START,
            usual_p_var: 0.05 * 0.05,
            over_usual: 0,
            state: State::Idle,
            rising: 0,
            falling: 0,
            next_check: Duration::ZERO,
            works: Vec::new(),
            rules,
        }
    }

    /// Predicted and observed means of the last two minutes.
    fn predict(bins: &Bins) -> Option<(f64, f64)> {
        let now = bins.mean_back(NOW.0, NOW.1)?;
        let recent = bins.mean_back(RECENT.0, RECENT.1)?;
        let old = bins.mean_back(OLD.0, OLD.1)?;
        Some((recent + (recent - old) / SPAN * AHEAD, now))
    }

    fn evaluate(&mut self, at: DateTime<Utc>, out: &mut Vec<Signal>) {
        let (Some((q_exp, q_now)), Some((p_exp, p_now))) = (Self::predict(&self.flow), Self::predict(&self.pressure))
        else {
            return;
        };
        let rise = q_now - q_exp;
        let drop = p_exp - p_now;
        let sigma = self.noise_var.sqrt();
        let threshold = self.params.min_rise_m3_per_h.max(self.params.k_sigma * sigma * q_exp.abs());
        let rises = rise > threshold && drop > self.params.min_pressure_drop_bar;
        // Every evaluation, for the question "why was this burst not seen?".
        tracing::trace!(
            district = %self.rules[0].asset,
            %at,
            q_now,
            q_exp,
            rise,
            threshold,
            drop,
            usual = ?self.normal.expected(at),
            "burst detector: evaluation"
        );
        self.rising = if rises { self.rising + 1 } else { 0 };
        match self.state {
            State::Idle => {
                let rel = rise / q_exp.abs().max(1.0);
                // Outliers (real events) do not teach the noise level.
                if !rises && rel * rel < 36.0 * self.noise_var {
                    self.noise_var += NOISE_ALPHA * (rel * rel - self.noise_var);
                }
                if self.rising >= CONFIRM {
                    tracing::debug!(
                        district = %self.rules[0].asset,
                        %at,
                        rise_m3_per_h = rise,
                        threshold_m3_per_h = threshold,
                        usual_excess = ?self.normal.expected(at).map(|e| q_now - e),
                        "burst detector: step recognised"
                    );
                    self.next_check = Duration::ZERO;
                    let planned = self.planned_until(at);
                    // With a register, a step nobody planned is a burst at once, unless earlier
                    // days of the same kind say the flow is about usual for this time of day
                    // (demand that wandered down and came back): that stays a flow rise, and
                    // the checks against earlier days below decide it as without a register.
                    let usual = self.normal.expected(at).is_some_and(|e| q_now - e < rise / 2.0);
                    let unplanned = self.params.planned_works && planned.is_none() && !usual;
                    let clear = rise >= CLEAR * threshold;
                    let burst = unplanned && clear;
                    let hold = (unplanned && !clear).then(|| at + chrono::Duration::seconds(HOLDS[0]));
                    let trend = self
                        .flow
                        .mean_back(RECENT.0, RECENT.1)
                        .zip(self.flow.mean_back(OLD.0, OLD.1))
                        .map_or(0.0, |(recent, old)| (recent - old) / SPAN);
                    self.state = State::Step {
                        size: rise,
                        drop,
                        since: at,
                        burst,
                        planned,
                        hold,
                        doubted: false,
                        under: Some((q_exp, trend)),
                        stood: 0,
                    };
                    self.rising = 0;
                    self.over_usual = 0;
                    self.track(NOW.1, rise, drop);
                    out.push(self.signal(at));
                } else {
                    self.check_usual(at, out);
                }
            }
            State::Step { size, drop: step_drop, since, burst, planned, hold, doubted, under, stood } => {
                if self.rising >= CONFIRM {
                    // The step grew (a burst still opening, or a second one). A held step that
                    // has grown clear of the threshold is a burst now.
                    let size = size + rise;
                    let promoted = hold.is_some() && size >= CLEAR * threshold;
                    let (burst, hold) = if promoted { (true, None) } else { (burst, hold) };
                    self.state = State::Step {
                        size,
                        drop: step_drop + drop,
                        since,
                        burst,
                        planned,
                        hold,
                        doubted,
                        under,
                        stood,
                    };
                    self.rising = 0;
                    self.track(NOW.1, rise, drop);
                    if promoted {
                        out.push(Signal { output: RISE, cond: false, value: None, at });
                    }
                    out.push(self.signal(at));
                    return;
                }
                // A fall must stand out from the noise as a rise must (a little less sure: the
                // step is known to exist).
                let fall_limit = (size / 2.0).max(0.75 * self.params.k_sigma * sigma * q_exp.abs());
                self.falling = if -rise > fall_limit { self.falling + 1 } else { 0 };
                if self.falling >= CONFIRM {
                    // A "fall" soon after the step that leaves the flow above its usual level for
                    // the time of day by half the step or more is no end: the step grew more
                    // slowly than a step is recognised (a widening crack) and the half-hour
                    // trend, carried on, overshot when the growth stopped. The step is measured
                    // again against the usual level, the same episode. Only while the trend
                    // windows still reach back to the growth (`OVERSHOOT`): later, a district
                    // whose flow stands above the usual for another reason (a leak growing for
                    // days) would keep any step open for good.
                    let young = at - since < chrono::Duration::minutes(OVERSHOOT);
                    let standing = self
                        .measured
                        .expected_smooth(at, USUAL_DAYS)
                        .map(|e| q_now + size - e)
                        .filter(|x| young && *x >= size / 2.0);
                    if let Some(excess) = standing {
                        let bins = ((at - since).num_seconds() / i64::from(BIN_S)) as usize;
                        let tracked = (bins + if under.is_some() { NOW.1 } else { 0 }).min(KEEP);
                        self.flow.shift_back(tracked, -size);
                        self.pressure.shift_back(tracked, step_drop);
                        let (held, size, drop) = self.standing_step(at, excess);
                        tracing::debug!(
                            district = %self.rules[0].asset,
                            %at,
                            %since,
                            excess_m3_per_h = excess,
                            size_m3_per_h = size,
                            "burst detector: the step still stands above the usual level; measured again"
                        );
                        self.track(held, size, drop);
                        self.state = State::Step { size, drop, since, burst, planned, hold, doubted, under, stood };
                        self.falling = 0;
                        out.push(self.signal(at));
                        return;
                    }
                    // The flow fell back: put the bins since the fall back to what they were.
                    self.untrack(NOW.1, q_exp - size / 2.0, size, step_drop);
                    self.end(at, out);
                    return;
                }
                if let Some(until) = hold {
                    if at < until {
                        return;
                    }
                    // The flow the detector keeps is the level under the step, and the
                    // prediction still comes from before it: a step that stands leaves the last
                    // minute near the prediction, one that drifts back leaves it below by what
                    // it lost (one minute, not two: the two-minute mean lags the drift).
                    let last = self.flow.mean_back(0, 2).unwrap_or(q_now);
                    // Earlier days of the same kind, if any, are asked again as at the start:
                    // demand that wandered up to about its usual level is no burst either.
                    let usual = self.normal.expected(at).is_some_and(|e| last + size - e < size / 2.0);
                    // Without the step the flow would be near the level under it when it was
                    // recognised, carried along the trend it had then (a few minutes of a
                    // half-hour trend).
                    let bins = (at - since).num_seconds() as f64 / f64::from(BIN_S);
                    let expected = under.map_or(q_exp, |(level, trend)| level + trend * bins);
                    let kept = size + last - expected >= HOLD_KEPT * size && !usual;
                    tracing::debug!(
                        district = %self.rules[0].asset,
                        %since,
                        share_kept = (size + last - expected) / size,
                        usual,
                        look = stood + 1,
                        "burst detector: does the held step stand?"
                    );
                    let stood = stood + 1;
                    if kept && usize::from(stood) < HOLDS.len() {
                        let next = Some(since + chrono::Duration::seconds(HOLDS[usize::from(stood)]));
                        self.state = State::Step {
                            size,
                            drop: step_drop,
                            since,
                            burst,
                            planned,
                            hold: next,
                            doubted,
                            under,
                            stood,
                        };
                        return;
                    }
                    let doubted = !kept;
                    self.state = State::Step {
                        size,
                        drop: step_drop,
                        since,
                        burst: kept,
                        planned,
                        hold: None,
                        doubted,
                        under,
                        stood,
                    };
                    if kept {
                        out.push(Signal { output: RISE, cond: false, value: None, at });
                        out.push(self.signal(at));
                    }
                    return;
                }
                if let Some(until) = planned {
                    if at < until {
                        return;
                    }
                    // The planned window is over (plus the margin) and the water still flows.
                    // The register may have been extended meanwhile; otherwise it is a burst.
                    let later = self.planned_until(at);
                    self.state = State::Step {
                        size,
                        drop: step_drop,
                        since,
                        burst: later.is_none(),
                        planned: later,
                        hold: None,
                        doubted,
                        under,
                        stood,
                    };
                    if later.is_none() {
                        out.push(Signal { output: PLANNED, cond: false, value: None, at });
                        out.push(self.signal(at));
                    }
                    return;
                }
                let lasted = (at - since).to_std().unwrap_or_default();
                let due = if doubted || self.in_flushing_hours(since) {
                    self.params.flushing_max
                } else {
                    self.params.burst_confirm
                };
                let mut vouched = false;
                if lasted >= due && lasted >= self.next_check {
                    self.next_check = lasted + Duration::from_secs(3600);
                    // Earlier days of the same kind vouch for the step, when there are any: if
                    // the step's last half hour (at most) is not above their normal demand at
                    // this time of day by half the step, the "step" was demand wandering (or
                    // the flow came back slowly), and the episode ends. A step that already
                    // failed to stand is also asked of earlier days of the other kind when no
                    // day of its own kind exists yet (the first weekend), and is a burst only
                    // if some earlier day says it is above the usual flow: with no history at
                    // all it stays a flow rise (major) rather than become a critical burst on
                    // no evidence.
                    let from = since.max(at - chrono::Duration::minutes(30));
                    let excess = self
                        .normal
                        .excess(&self.measured, from, at, true)
                        .or_else(|| if doubted { self.normal.excess(&self.measured, from, at, false) } else { None });
                    if excess.is_some_and(|e| e < size / 2.0) {
                        self.flow.shift_back(KEEP, -size);
                        self.pressure.shift_back(KEEP, step_drop);
                        self.end(at, out);
                        return;
                    }
                    vouched = excess.is_some();
                }
                if !burst && lasted >= due && (!doubted || vouched) {
                    self.state = State::Step {
                        size,
                        drop: step_drop,
                        since,
                        burst: true,
                        planned: None,
                        hold: None,
                        doubted,
                        under,
                        stood,
                    };
                    out.push(Signal { output: RISE, cond: false, value: None, at });
                    out.push(self.signal(at));
                }
            }
        }
    }

    /// The flow's excess over its usual level for the time of day in the last `USUAL_BINS`:
    /// (excess m³/h, usual m³/h, pressure deficit bar), if earlier days of the same kind give
    /// the usual level for at least half of the window.
    fn over_usual(&self, at: DateTime<Utc>) -> Option<(f64, f64, f64)> {
        let (mut excess, mut usual, mut n, mut deficit, mut np) = (0.0, 0.0, 0_usize, 0.0, 0_usize);
        for k in 0..USUAL_BINS {
            let t = at - chrono::Duration::seconds(i64::from(BIN_S) * k as i64 + i64::from(BIN_S / 2));
            if let (Some(q), Some(e)) = (self.flow.mean_back(k, k + 1), self.measured.expected_smooth(t, USUAL_DAYS)) {
                (excess, usual, n) = (excess + q - e, usual + e, n + 1);
            }
            if let (Some(p), Some(e)) =
                (self.pressure.mean_back(k, k + 1), self.pressure_profile.expected_smooth(t, USUAL_DAYS))
            {
                (deficit, np) = (deficit + e - p, np + 1);
            }
        }
        let enough = |n: usize| n * 2 >= USUAL_BINS;
        (enough(n) && enough(np)).then(|| (excess / n as f64, usual / n as f64, deficit / np as f64))
    }

    /// While idle: is the flow standing above its usual level (`USUAL_BINS`)? If so for two
    /// evaluations in a row, a step is recognised from where the excess began.
    fn check_usual(&mut self, at: DateTime<Utc>, out: &mut Vec<Signal>) {
        let Some((excess, usual, deficit)) = self.over_usual(at) else {
            self.over_usual = 0;
            return;
        };
        let rel = excess / usual.abs().max(1.0);
        let threshold = self.params.min_rise_m3_per_h.max(K_USUAL * self.usual_var.sqrt() * usual.abs());
        // The pressure must be under its usual level by more than its own spread: a flow meter
        // that reads high (stuck in the day, drifting) leaves the pressure where it was.
        let p_limit = self.params.min_pressure_drop_bar.max(self.usual_p_var.sqrt());
        let over = excess > threshold && deficit > p_limit;
        tracing::trace!(
            district = %self.rules[0].asset,
            %at,
            excess,
            usual,
            threshold,
            deficit,
            p_limit,
            "burst detector: against the usual level"
        );
        if !over {
            // Outliers (real events) do not teach the spread.
            if rel * rel < 36.0 * self.usual_var {
                self.usual_var += NOISE_ALPHA * (rel * rel - self.usual_var);
            }
            if deficit * deficit < 36.0 * self.usual_p_var {
                self.usual_p_var += NOISE_ALPHA * (deficit * deficit - self.usual_p_var);
            }
        }
        self.over_usual = if over { self.over_usual + 1 } else { 0 };
        if self.over_usual < CONFIRM {
            return;
        }
        self.over_usual = 0;
        let (held, size, drop) = self.standing_step(at, excess);
        let since = at - chrono::Duration::seconds(i64::from(BIN_S) * held as i64);
        tracing::debug!(
            district = %self.rules[0].asset,
            %at,
            %since,
            excess_m3_per_h = excess,
            size_m3_per_h = size,
            threshold_m3_per_h = threshold,
            pressure_deficit_bar = deficit,
            "burst detector: flow standing above its usual level"
        );
        self.next_check = Duration::ZERO;
        let planned = self.planned_until(since).or_else(|| self.planned_until(at));
        // Earlier days already say this flow is above the usual: with the register a step
        // nobody planned is a burst; without, duration and time of day decide as for a step.
        let burst = if self.params.planned_works { planned.is_none() } else { !self.in_flushing_hours(since) };
        self.state =
            State::Step { size, drop, since, burst, planned, hold: None, doubted: false, under: None, stood: 0 };
        self.rising = 0;
        self.track(held, size, drop);
        out.push(self.signal(at));
    }

    /// A step found standing `excess` above the usual level (from the bins as measured):
    /// (bins that hold it, its size m³/h, its pressure cost bar). Where it began: the newest
    /// bins standing above the usual level by half the excess (one bin below is noise; two in
    /// a row is the level before); its size and cost are their means.
    fn standing_step(&self, at: DateTime<Utc>, excess: f64) -> (usize, f64, f64) {
        let (mut held, mut size, mut drop, mut below) = (0_usize, 0.0, 0.0, 0);
        for k in 0..KEEP {
            let t = at - chrono::Duration::seconds(i64::from(BIN_S) * k as i64 + i64::from(BIN_S / 2));
            let Some((dq, dp)) = self
                .flow
                .mean_back(k, k + 1)
                .zip(self.measured.expected_smooth(t, USUAL_DAYS))
                .map(|(q, e)| q - e)
                .zip(
                    self.pressure
                        .mean_back(k, k + 1)
                        .zip(self.pressure_profile.expected_smooth(t, USUAL_DAYS))
                        .map(|(p, e)| e - p),
                )
            else {
                break;
            };
            if dq < excess / 2.0 {
                below += 1;
                if below == 2 {
                    break;
                }
                continue;
            }
            below = 0;
            held = k + 1;
            (size, drop) = (size + dq, drop + dp);
        }
        let n = held.max(1) as f64;
        (held, (size / n).max(excess), drop / n)
    }

    fn end(&mut self, at: DateTime<Utc>, out: &mut Vec<Signal>) {
        self.falling = 0;
        self.state = State::Idle;
        out.push(Signal { output: RISE, cond: false, value: None, at });
        out.push(Signal { output: BURST, cond: false, value: None, at });
        out.push(Signal { output: PLANNED, cond: false, value: None, at });
    }

    /// If flushing or valve work is planned in the district at `at` (its window widened by
    /// the margin at both ends), the end of the latest such window plus the margin.
    fn planned_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.params.planned_works {
            return None;
        }
        let margin = chrono::Duration::from_std(self.params.planned_margin).unwrap_or_default();
        self.works
            .iter()
            .filter(|(from, to)| *from - margin <= at && at < *to + margin)
            .map(|(_, to)| *to + margin)
            .max()
    }

    fn in_flushing_hours(&self, at: DateTime<Utc>) -> bool {
        let h = local_hour(at, self.params.utc_offset_h);
        let (from, to) = self.params.flushing_hours;
        from <= h && h < to
    }

    /// The signal that says what the current step is.
    fn signal(&self, at: DateTime<Utc>) -> Signal {
        let State::Step { size, burst, planned, .. } = self.state else {
            return Signal { output: RISE, cond: false, value: None, at };
        };
        let value = Some((size * 10.0).round() / 10.0);
        let output = if burst {
            BURST
        } else if planned.is_some() {
            PLANNED
        } else {
            RISE
        };
        Signal { output, cond: true, value, at }
    }

    /// From now on the detector keeps the flow and pressure under the step; the newest `bins`
    /// already hold it.
    fn track(&mut self, bins: usize, size: f64, drop: f64) {
        self.flow.shift_back(bins, size);
        self.pressure.shift_back(bins, -drop);
    }

    /// Undoes `track` for the newest `bins` that lie below `below` (those after the fall).
    fn untrack(&mut self, bins: usize, below: f64, size: f64, drop: f64) {
        let fell = (0..bins).filter(|&k| self.flow.mean_back(k, k + 1).is_some_and(|v| v < below)).count();
        self.flow.shift_back(fell, -size);
        self.pressure.shift_back(fell, drop);
    }

    fn add(&mut self, input: usize, r: &Reading) -> Option<DateTime<Utc>> {
        let v = r.value.as_f64().filter(|v| v.is_finite() && r.quality.is_good())?;
        if input == 0 {
            self.measured.add(r.time, v);
            let under = if let State::Step { size, .. } = self.state { v - size } else { v };
            self.normal.add(r.time, under);
            let done = self.flow.add(r.time, v);
            // A bin completed while a step is recognised holds the step: keep the level under it.
            if let (Some(_), State::Step { size, .. }) = (done, self.state) {
                self.flow.shift_back(1, size);
            }
            done
        } else {
            self.pressure_profile.add(r.time, v);
            if let (Some(_), State::Step { drop, .. }) = (self.pressure.add(r.time, v), self.state) {
                self.pressure.shift_back(1, -drop);
            }
            None
        }
    }
}

impl Detector for Burst {
    fn inputs(&self) -> Vec<Input> {
        vec![self.params.flow.clone(), self.params.pressure.clone()]
    }

    fn outputs(&self) -> Vec<Rule> {
        self.rules.clone()
    }

    fn on_reading(&mut self, input: usize, r: &Reading, out: &mut Vec<Signal>) {
        // The flow meter's bins set the pace: one evaluation per completed flow bin.
        if let Some(at) = self.add(input, r) {
            self.evaluate(at, out);
        }
    }

    fn state_version(&self) -> u32 {
        STATE_VERSION
    }

    fn save(&self) -> Option<serde_json::Value> {
        let learned = Learned {
            flow: self.flow.clone(),
            pressure: self.pressure.clone(),
            measured: self.measured.clone(),
            normal: self.normal.clone(),
            noise_var: self.noise_var,
            state: self.state,
            rising: self.rising,
            falling: self.falling,
            next_check: self.next_check,
            pressure_profile: Some(self.pressure_profile.clone()),
            usual_var: Some(self.usual_var),
            usual_p_var: Some(self.usual_p_var),
            over_usual: self.over_usual,
        };
        serde_json::to_value(learned).ok()
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        let l: Learned = serde_json::from_value(state).map_err(|e| e.to_string())?;
        (self.flow, self.pressure, self.measured, self.normal) = (l.flow, l.pressure, l.measured, l.normal);
        (self.noise_var, self.state, self.rising, self.falling, self.next_check) =
            (l.noise_var, l.state, l.rising, l.falling, l.next_check);
        if let Some(p) = l.pressure_profile {
            self.pressure_profile = p;
        }
        self.usual_var = l.usual_var.unwrap_or(self.usual_var);
        self.usual_p_var = l.usual_p_var.unwrap_or(self.usual_p_var);
        self.over_usual = l.over_usual;
        Ok(())
    }

    fn reports_water_episodes(&self) -> bool {
        true
    }

    fn set_works(&mut self, works: &[store::PlannedWork]) {
        self.works = water_works(works, &self.rules[0].asset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::detect::DetectorKind;
    use chrono::TimeZone;
    use model::{DeviceId, PointName};

    fn input(d: &str, p: &str) -> Input {
        Input { device: DeviceId::new(d).unwrap(), point: PointName::new(p).unwrap() }
    }

    /// A detector without the planned-works register (duration and time of day decide).
    fn detector() -> Burst {
        let params =
            BurstParams { planned_works: false, ..BurstParams::new(input("fm01", "flow"), input("pl01", "pressure")) };
        with_params(params)
    }

    fn with_params(params: BurstParams) -> Burst {
        let spec = DetectorSpec {
            name: "dma01_burst".into(),
            asset: "dma01".into(),
            kind: DetectorKind::Burst(params.clone()),
        };
        Burst::new(&spec, params)
    }

    /// A deterministic wobble in [-1, 1].
    fn wobble(i: i64) -> f64 {
        ((i as f64 * 12.9898).sin() * 43758.5453).fract() * 2.0 - 1.0
    }

    /// Runs `seconds` of 1 Hz readings with an extra flow `extra(s)` (m³/h) on a smooth demand
    /// that rises through a morning peak; pressure falls with flow². Returns (second, output,
    /// condition) of each signal.
    fn run(start_jst_hour: i64, seconds: i64, extra: impl Fn(i64) -> f64) -> Vec<(i64, usize, bool)> {
        run_with(detector(), start_jst_hour, seconds, |s| (extra(s), extra(s)))
    }

    /// Demand at `s` seconds after a start at `start_jst_hour`: 60 m³/h at night, 100 → 250 m³/h
    /// through the morning from 05:00.
    fn demand(start_jst_hour: i64, s: i64) -> f64 {
        let hours_after_5 = (start_jst_hour - 5) as f64 + s as f64 / 3600.0;
        if hours_after_5 < 0.0 { 60.0 } else { 100.0 + 50.0 * hours_after_5.min(3.0) }
    }

    /// The same with the extra flow the meter shows and the extra flow the pipes carry apart.
    fn run_metered(start_jst_hour: i64, seconds: i64, extra: impl Fn(i64) -> (f64, f64)) -> Vec<(i64, usize, bool)> {
        run_with(detector(), start_jst_hour, seconds, extra)
    }

    /// 2026-04-01 `h`:00 JST.
    fn jst(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap() + chrono::Duration::hours(h - 9)
    }

    fn run_with(
        mut d: Burst,
        start_jst_hour: i64,
        seconds: i64,
        extra: impl Fn(i64) -> (f64, f64),
    ) -> Vec<(i64, usize, bool)> {
        let t0 = jst(start_jst_hour);
        let mut out = Vec::new();
        let mut got = Vec::new();
        for s in 0..seconds {
            let t = t0 + chrono::Duration::seconds(s);
            // With 2 % noise.
            let base = demand(start_jst_hour, s);
            let (metered, real) = extra(s);
            let q = base * (1.0 + 0.02 * wobble(s));
            let p = 4.0 - 0.0981 * 12.0 * ((q + real) / 250.0).powi(2);
            let q = q + metered;
            d.on_reading(
                0,
                &Reading::good(DeviceId::new("fm01").unwrap(), PointName::new("flow").unwrap(), t, q),
                &mut out,
            );
            d.on_reading(
                1,
                &Reading::good(DeviceId::new("pl01").unwrap(), PointName::new("pressure").unwrap(), t, p),
                &mut out,
            );
            for sig in out.drain(..) {
                got.push(((sig.at - t0).num_seconds(), sig.output, sig.cond));
            }
        }
        got
    }

    #[test]
    fn a_smooth_morning_rise_raises_nothing() {
        assert_eq!(run(5, 4 * 3600, |_| 0.0), []);
    }

    #[test]
    fn a_night_burst_is_a_burst_within_minutes_and_ends_when_repaired() {
        // 00:00 local: outside flushing hours. 30 m³/h opening over two minutes at 1 h, for 3 h.
        let got = run(0, 5 * 3600, |s| {
            if (3600..4 * 3600).contains(&s) { 30.0 * ((s - 3600) as f64 / 120.0).min(1.0) } else { 0.0 }
        });
        let kinds: Vec<_> = got.iter().map(|g| (g.1, g.2)).collect();
        assert_eq!(
            kinds,
            [(RISE, true), (RISE, false), (BURST, true), (RISE, false), (BURST, false), (PLANNED, false)],
            "{got:?}"
        );
        assert!((3600..3600 + 300).contains(&got[0].0), "a flow rise {} s after the start", got[0].0 - 3600);
        assert_eq!(got[2].0 - got[0].0, 600, "a burst once it held for 10 minutes: {got:?}");
        assert!((4 * 3600..4 * 3600 + 300).contains(&got[3].0), "ends after the repair: {got:?}");
    }

    #[test]
    fn daytime_flushing_is_a_flow_rise_only_and_a_long_rise_becomes_a_burst() {
        // 10:00 local: 60 m³/h at once for 30 minutes.
        let flushing = run(10, 3 * 3600, |s| if (3600..5400).contains(&s) { 60.0 } else { 0.0 });
        assert_eq!(
            flushing.iter().map(|g| (g.1, g.2)).collect::<Vec<_>>(),
            [(RISE, true), (RISE, false), (BURST, false), (PLANNED, false)],
            "{flushing:?}"
        );
        // The same rise lasting two hours becomes a burst after an hour.
        let burst = run(10, 4 * 3600, |s| if (3600..3 * 3600).contains(&s) { 60.0 } else { 0.0 });
        let kinds: Vec<_> = burst.iter().map(|g| (g.1, g.2)).collect();
        assert_eq!(
            kinds,
            [(RISE, true), (RISE, false), (BURST, true), (RISE, false), (BURST, false), (PLANNED, false)],
            "{burst:?}"
        );
        assert!((7200..7200 + 300).contains(&burst[2].0), "an hour after it was raised: {burst:?}");
    }

    #[test]
    fn a_flow_meter_jump_without_a_pressure_drop_is_ignored() {
        // The meter reads 60 m³/h more for an hour (a fault), the pipes carry nothing more.
        let got = run_metered(0, 3 * 3600, |s| (if (3600..7200).contains(&s) { 60.0 } else { 0.0 }, 0.0));
        assert_eq!(got, []);
    }

    /// A detector that reads the register, with `works` entered: (kind, target, from, to) in
    /// seconds after a start at `start_jst_hour`.
    fn registered(start_jst_hour: i64, works: &[(store::WorkKind, &str, i64, i64)]) -> Burst {
        let mut d = with_params(BurstParams::new(input("fm01", "flow"), input("pl01", "pressure")));
        let t0 = jst(start_jst_hour);
        let list: Vec<store::PlannedWork> = works
            .iter()
            .enumerate()
            .map(|(i, (kind, target, from, to))| store::PlannedWork {
                id: i as i64,
                target: (*target).into(),
                kind: *kind,
                from: t0 + chrono::Duration::seconds(*from),
                to: t0 + chrono::Duration::seconds(*to),
                by: "test".into(),
                note: None,
                created: t0,
            })
            .collect();
        d.set_works(&list);
        d
    }

    /// The signals' (output, condition), a repeat (a step that grew) counted once.
    fn kinds(got: &[(i64, usize, bool)]) -> Vec<(usize, bool)> {
        let mut k: Vec<_> = got.iter().map(|g| (g.1, g.2)).collect();
        k.dedup();
        k
    }

    #[test]
    fn with_the_register_a_rise_nobody_planned_is_a_burst_within_minutes_day_or_night() {
        for start in [0, 10] {
            // 60 m³/h opening over two minutes an hour after the start, for two hours (the
            // noise learned in one hour still allows about 50 m³/h at the 250 m³/h of daytime).
            let burst =
                |s: i64| if (3600..3 * 3600).contains(&s) { 60.0 * ((s - 3600) as f64 / 120.0).min(1.0) } else { 0.0 };
            // Flushing planned in the other district and pump maintenance here explain nothing.
            let d = registered(
                start,
                &[
                    (store::WorkKind::Flushing, "dma02", 0, 4 * 3600),
                    (store::WorkKind::PumpMaintenance, "dma01", 0, 4 * 3600),
                ],
            );
            let got = run_with(d, start, 4 * 3600, |s| (burst(s), burst(s)));
            // Confirmed while still opening, the step is not yet clear of the threshold (the
            // noise learned in an hour is high): a flow rise held while it shows it stands
            // (looks at 90 s and 3 min), then a burst.
            let mut k = kinds(&got);
            if k[0] == (RISE, true) {
                assert_eq!(k.drain(..2).collect::<Vec<_>>(), [(RISE, true), (RISE, false)], "{got:?}");
            }
            assert_eq!(k, [(BURST, true), (RISE, false), (BURST, false), (PLANNED, false)], "{got:?}");
            let critical = got.iter().find(|g| (g.1, g.2) == (BURST, true)).expect("a critical burst");
            assert!((3600..=3600 + 480).contains(&critical.0), "critical {} s after the start", critical.0 - 3600);
        }
    }

    #[test]
    fn planned_flushing_is_info_and_becomes_a_burst_only_after_its_window_and_margin() {
        use store::WorkKind::{Flushing, ValveWork};
        // 10:00 local: 60 m³/h at once for 30 minutes, planned for 45.
        let flushing = |s: i64| if (3600..5400).contains(&s) { 60.0 } else { 0.0 };
        let d = registered(10, &[(Flushing, "dma01", 3500, 3600 + 45 * 60)]);
        let got = run_with(d, 10, 3 * 3600, |s| (flushing(s), flushing(s)));
        assert_eq!(kinds(&got), [(PLANNED, true), (RISE, false), (BURST, false), (PLANNED, false)], "{got:?}");
        // The water keeps flowing two hours although the valve work was planned for 30 minutes:
        // a burst 15 minutes (the margin) after the planned end.
        let long = |s: i64| if (3600..3 * 3600).contains(&s) { 60.0 } else { 0.0 };
        let d = registered(10, &[(ValveWork, "dma01", 3600, 3600 + 30 * 60)]);
        let got = run_with(d, 10, 4 * 3600, |s| (long(s), long(s)));
        assert_eq!(
            kinds(&got),
            [(PLANNED, true), (PLANNED, false), (BURST, true), (RISE, false), (BURST, false), (PLANNED, false)],
            "{got:?}"
        );
        let planned_end = 3600 + 45 * 60;
        assert!((planned_end..planned_end + 60).contains(&got[2].0), "a burst at {} s: {got:?}", got[2].0);
    }

    /// Feeds `days` of readings every 5 s from Wednesday 2026-04-01 00:00 JST: a flat 100 m³/h
    /// (with 2 % noise) plus `extra(s)`, pressure falling with flow². Returns the signals
    /// after `from_s` as (second, output, condition).
    fn run_days(d: &mut Burst, days: i64, from_s: i64, extra: impl Fn(i64) -> f64) -> Vec<(i64, usize, bool)> {
        run_days_metered(d, days, from_s, |s| (extra(s), extra(s)))
    }

    /// The same with the extra flow the meter shows and the extra flow the pipes carry apart.
    fn run_days_metered(
        d: &mut Burst,
        days: i64,
        from_s: i64,
        extra: impl Fn(i64) -> (f64, f64),
    ) -> Vec<(i64, usize, bool)> {
        let t0 = jst(0);
        let (mut out, mut got) = (Vec::new(), Vec::new());
        for s in (0..days * 86_400).step_by(5) {
            let t = t0 + chrono::Duration::seconds(s);
            let (metered, real) = extra(s);
            let base = 100.0 * (1.0 + 0.02 * wobble(s));
            let q = base + metered;
            let p = 4.0 - 0.0981 * 12.0 * ((base + real) / 250.0).powi(2);
            d.on_reading(
                0,
                &Reading::good(DeviceId::new("fm01").unwrap(), PointName::new("flow").unwrap(), t, q),
                &mut out,
            );
            d.on_reading(
                1,
                &Reading::good(DeviceId::new("pl01").unwrap(), PointName::new("pressure").unwrap(), t, p),
                &mut out,
            );
            got.extend(
                out.drain(..)
                    .filter(|g| (g.at - t0).num_seconds() >= from_s)
                    .map(|g| ((g.at - t0).num_seconds(), g.output, g.cond)),
            );
        }
        got
    }

    #[test]
    fn with_the_register_flow_coming_back_to_its_usual_level_is_not_a_critical_burst() {
        // Two weekdays of history, then on Friday at 03:00 the flow dips by 30 m³/h for 40
        // minutes (a valve closed and opened again) and comes back at once: a step up with a
        // pressure drop, but to the flow of earlier days at this hour.
        let day = 86_400;
        let friday_3h = 2 * day + 3 * 3600;
        let dip = |s: i64| if (friday_3h - 2400..friday_3h).contains(&s) { -30.0 } else { 0.0 };
        let mut d = registered(0, &[]);
        let got = run_days(&mut d, 3, 2 * day, dip);
        assert!(!got.iter().any(|g| g.1 == BURST && g.2), "no critical burst: {got:?}");
        assert!(got.iter().any(|g| (g.1, g.2) == (RISE, true) && g.0 >= friday_3h), "seen as a flow rise: {got:?}");
        // A real burst of the same size at the same hour is above the usual flow: critical.
        let burst = |s: i64| if s >= friday_3h { 30.0 } else { 0.0 };
        let mut d = registered(0, &[]);
        let got = run_days(&mut d, 3, 2 * day, burst);
        let critical = got.iter().find(|g| (g.1, g.2) == (BURST, true)).expect("a critical burst");
        assert!((friday_3h..friday_3h + 300).contains(&critical.0), "{got:?}");
    }

    #[test]
    fn with_the_register_a_small_rise_that_drifts_back_within_minutes_is_not_a_critical_burst() {
        // Issue #5: demand that wanders up a little for a few minutes passed for a step and was
        // called a burst at once. Two days of history (the noise learned: the threshold is the
        // 8 m³/h minimum), then on Friday 03:00 the flow rises by 9.5 m³/h within half a minute,
        // stays two minutes and drifts back as the simulator's demand noise does (AR(1),
        // about 200 s time constant).
        let day = 86_400;
        let at = 2 * day + 3 * 3600;
        let wander = |s: i64| {
            let t = (s - at) as f64;
            let shape = if t < 0.0 {
                0.0
            } else if t < 30.0 {
                t / 30.0
            } else if t < 120.0 {
                1.0
            } else {
                (-(t - 120.0) / 200.0).exp()
            };
            9.5 * shape
        };
        let mut d = registered(0, &[]);
        let got = run_days(&mut d, 3, 2 * day, wander);
        assert!(got.iter().any(|g| (g.1, g.2) == (RISE, true) && g.0 >= at), "seen as a flow rise: {got:?}");
        assert!(!got.iter().any(|g| g.1 == BURST && g.2), "no critical burst: {got:?}");
        // The same small rise that stands is a burst once it has held a little longer.
        let burst = |s: i64| if s >= at { 9.5 * ((s - at) as f64 / 30.0).min(1.0) } else { 0.0 };
        let mut d = registered(0, &[]);
        let got = run_days(&mut d, 3, 2 * day, burst);
        assert_eq!(kinds(&got)[..3], [(RISE, true), (RISE, false), (BURST, true)], "{got:?}");
        let critical = got.iter().find(|g| (g.1, g.2) == (BURST, true)).expect("a critical burst");
        // Recognised about a minute in, then looked at after 90 s and after 3 minutes.
        assert!((at..at + 420).contains(&critical.0), "critical {} s after the start: {got:?}", critical.0 - at);
        // An excursion that stands through the first look and then drifts back is no burst:
        // flat for 260 s (recognised at about 150 s, so flat at the first look), then back with a
        // 100-s time constant (half gone at the second look).
        let excursion = |s: i64| {
            let t = (s - at) as f64;
            if t < 0.0 {
                0.0
            } else if t < 260.0 {
                9.5 * (t / 30.0).min(1.0)
            } else {
                9.5 * (-(t - 260.0) / 100.0).exp()
            }
        };
        let mut d = registered(0, &[]);
        let got = run_days(&mut d, 3, 2 * day, excursion);
        assert!(got.iter().any(|g| (g.1, g.2) == (RISE, true) && g.0 >= at), "seen as a flow rise: {got:?}");
        assert!(!got.iter().any(|g| g.1 == BURST && g.2), "no critical burst: {got:?}");
        // A rise well above the threshold is critical at once.
        let large = |s: i64| if s >= at { 30.0 * ((s - at) as f64 / 30.0).min(1.0) } else { 0.0 };
        let mut d = registered(0, &[]);
        let got = run_days(&mut d, 3, 2 * day, large);
        assert_eq!(kinds(&got)[0], (BURST, true), "{got:?}");
    }

    #[test]
    fn a_burst_that_opens_too_slowly_for_a_step_is_found_standing_above_the_usual_level() {
        // Two weekdays of history; on Friday at 03:00 a leak opens over 20 minutes to 30 m³/h
        // (a crack that widens): the half-hour trend follows it, so no step stands out, but
        // the flow is then 30 % above what the earlier nights had at this hour.
        let day = 86_400;
        let at = 2 * day + 3 * 3600;
        let opening = |s: i64| if s >= at { 30.0 * ((s - at) as f64 / 1200.0).min(1.0) } else { 0.0 };
        let mut d = registered(0, &[]);
        let got = run_days(&mut d, 3, day, opening);
        let critical = got.iter().find(|g| (g.1, g.2) == (BURST, true)).expect("a critical burst");
        assert!((at..at + 1800).contains(&critical.0), "critical {} s after the start: {got:?}", critical.0 - at);
        assert!(!got.iter().any(|g| g.2 && g.0 < at), "nothing on the clean day before: {got:?}");
        // It is one episode: once critical, it is not ended while it stands.
        assert!(!got.iter().any(|g| !g.2 && g.0 > critical.0), "{got:?}");
        // A flow meter that starts reading 30 m³/h high the same way, with the pressure
        // unchanged, is not a burst (nor anything else for this detector).
        let mut d = registered(0, &[]);
        let got = run_days_metered(&mut d, 3, day, |s| (opening(s), 0.0));
        assert!(!got.iter().any(|g| g.2), "{got:?}");
        // The same flow during valve work in the register is planned works; it becomes a burst
        // only when it outlasts the planned window and its margin (here it never stops).
        let mut d = registered(0, &[(store::WorkKind::ValveWork, "dma01", at - 600, at + 3 * 3600)]);
        let got = run_days(&mut d, 3, day, opening);
        assert_eq!(got[0].1, PLANNED, "{got:?}");
        let critical = got.iter().find(|g| (g.1, g.2) == (BURST, true)).expect("a burst after the window");
        assert!(critical.0 >= at + 3 * 3600 + 15 * 60, "{got:?}");
    }

    #[test]
    fn flow_rising_above_the_usual_over_hours_is_not_a_burst() {
        // Wednesday to Sunday as usual, then on Monday the flow climbs 30 m³/h above the
        // usual over eight hours from 10:00 (leakage growing, a day running high): it ends
        // well above the usual level, but the spread of the comparison is learned while the
        // flow is under the threshold, and a rise this slow is learned as spread.
        let day = 86_400;
        let from = 5 * day + 10 * 3600;
        let climbing = |s: i64| if s >= from { 30.0 * ((s - from) as f64 / (8.0 * 3600.0)).min(1.0) } else { 0.0 };
        let mut d = registered(0, &[]);
        let got = run_days(&mut d, 6, 5 * day, climbing);
        assert!(!got.iter().any(|g| g.1 == BURST && g.2), "{got:?}");
    }

    #[test]
    fn a_detector_rebuilt_from_its_saved_state_decides_the_same() {
        // Three days of history; saved on Friday 02:00, a burst at 03:00.
        let day = 86_400;
        let burst = |s: i64| if s >= 2 * day + 3 * 3600 { 30.0 } else { 0.0 };
        let mut before = registered(0, &[]);
        run_days(&mut before, 2, 0, burst);
        let saved = super::super::Detector::save(&before).expect("a burst detector saves its state");
        let json = saved.to_string();
        let mut after = registered(0, &[]);
        after.restore(serde_json::from_str(&json).unwrap()).unwrap();
        let mut fresh = registered(0, &[]);
        // The same third day through all three (readings from the start of day 3 only).
        let third = |d: &mut Burst| {
            let t0 = jst(0);
            let (mut out, mut got) = (Vec::new(), Vec::new());
            for s in (2 * day..3 * day).step_by(5) {
                let t = t0 + chrono::Duration::seconds(s);
                let q = 100.0 * (1.0 + 0.02 * wobble(s)) + burst(s);
                let p = 4.0 - 0.0981 * 12.0 * (q / 250.0).powi(2);
                let r = |dev: &str, pt: &str, v| {
                    Reading::good(DeviceId::new(dev).unwrap(), PointName::new(pt).unwrap(), t, v)
                };
                d.on_reading(0, &r("fm01", "flow", q), &mut out);
                d.on_reading(1, &r("pl01", "pressure", p), &mut out);
                got.extend(out.drain(..).map(|g| ((g.at - t0).num_seconds(), g.output, g.cond, g.value)));
            }
            got
        };
        let mut cont = before;
        let (a, b) = (third(&mut cont), third(&mut after));
        assert!(!a.is_empty(), "the burst is found");
        assert_eq!(a, b, "the restored detector decides exactly as the one that ran on");
        // A detector that starts afresh needs half an hour of data and learns its noise anew:
        // its decisions differ (here: the learned noise and the profiles are missing).
        let c = third(&mut fresh);
        assert_ne!(a, c);
        // A saved state of another shape is refused, not half taken.
        assert!(after.restore(serde_json::json!({"flow": 1})).is_err());
    }
}
