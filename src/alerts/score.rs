//! Scores the alert rules and detectors against the simulator's ground truth.
//!
//! The simulation is stepped directly (no network: communication faults are tested elsewhere,
//! in `tests/faults.rs`), and after every step each watched point is decoded from the
//! device's registers with the same codec the collector uses, at the collector's poll cadence.
//! The readings go through the real alert engine into a temporary SQLite alert store; at the
//! end every stored alert is matched with the events the simulator recorded (`EventRecord`:
//! kind, target, true start and end).
//!
//! An alert *detects* an event when it names the event's target as its asset (or a district
//! fed by the event's pump station) and was raised between the event's start and a short grace
//! after its end. An alert that explains no event is a false alarm.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use collector::alerts::{Engine, RuleSet};
use model::{Alert, DataType, Quality, Reading, RegisterKind, Severity, Value, codec};
use sensor_sim::events::{EventKind, EventRecord};
use sensor_sim::{RegisterImage, Scenario, SimOptions, Simulation};
use store::{AlertQuery, AlertStore, SqliteAlerts, WorksStore};

/// What to run.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    pub days: f64,
    pub seed: u64,
    /// Simulated start: a run depends only on scenario, seed and start.
    pub start: DateTime<Utc>,
    /// Seconds between polls of each point (the collector's default is 1).
    pub poll_s: u64,
    /// Where the alert store's SQLite file goes (a temporary directory).
    pub store_path: std::path::PathBuf,
    /// The utility keeps a planned-works register: the simulator's hydrant flushings (the
    /// utility's own flushing programme) are entered in it before the run, and the burst
    /// detectors use it (`planned_works = true`). Without it they decide by duration and time
    /// of day.
    pub planned_works: bool,
}

/// Events the scored week adds to the demo scenario's first-day script, so that every detector
/// meets its event in seven days: a leak that grows over the nights from Wednesday (after two
/// clean weekday nights the leak detector can take as its baseline), and an impeller that
/// wears from Tuesday (after a day in which the pump detector learned the healthy pump at its
/// usual duty points). Minutes after a Monday 08:00 JST start.
pub const SCORED_WEEK_EVENTS: &str = r#"
[[event]]
kind = "leak_growth"
target = "dma05"
start_min = 2880
duration_min = 4320
magnitude = 5

[[event]]
kind = "impeller_wear"
target = "ps04"
pump = 1
start_min = 1440
duration_min = 4320
magnitude = 0.15
"#;

/// The demo scenario with the scored week's extra events (`SCORED_WEEK_EVENTS`).
pub fn scored_scenario() -> anyhow::Result<Scenario> {
    let text = format!("{}\n{SCORED_WEEK_EVENTS}", sensor_sim::DEMO_SCENARIO);
    Scenario::parse(std::path::Path::new("sensor-sim/scenarios/demo.toml (+ the scored week's events)"), &text)
        .map_err(|errs| anyhow::anyhow!("{}", errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")))
}

/// The slots the flushing programme is planned in: a crew books half hours, so the register
/// says 09:30-10:30 for a flushing that ran 09:41-10:12.
const PLAN_SLOT_S: i64 = 1800;

/// The register entry for a flushing the simulator ran: its window widened to whole slots.
pub fn planned_flushing(e: &EventRecord) -> store::NewWork {
    let floor = |t: DateTime<Utc>| {
        DateTime::from_timestamp(t.timestamp().div_euclid(PLAN_SLOT_S) * PLAN_SLOT_S, 0).unwrap_or(t)
    };
    let ceil = |t: DateTime<Utc>| {
        DateTime::from_timestamp((t.timestamp() + PLAN_SLOT_S - 1).div_euclid(PLAN_SLOT_S) * PLAN_SLOT_S, 0)
            .unwrap_or(t)
    };
    store::NewWork {
        target: e.target.clone(),
        kind: store::WorkKind::Flushing,
        from: floor(e.start),
        to: ceil(e.end).max(floor(e.start) + chrono::Duration::seconds(PLAN_SLOT_S)),
        by: "flushing programme".to_owned(),
        note: Some(format!("simulator event {}", e.id)),
    }
}

/// What an alert says happened, from its rule's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertClass {
    /// The burst detector's critical output.
    Burst,
    /// The burst detector's first stage: burst or flushing.
    FlowRise,
    /// The burst detector's rise during planned flushing or valve work (info).
    PlannedWorks,
    PumpTrip,
    LowPressure,
    Sewer,
    /// Pump vibration zones and cavitation.
    PumpHealth,
    /// The leak detector: minimum night flow rising over nights.
    LeakGrowth,
    CommLoss,
    Other,
}

impl AlertClass {
    pub fn of(rule: &str) -> AlertClass {
        if rule.ends_with("_leak_growth") {
            AlertClass::LeakGrowth
        } else if rule.ends_with("_planned_works") {
            AlertClass::PlannedWorks
        } else if rule.ends_with("_flow_rise") {
            AlertClass::FlowRise
        } else if rule.ends_with("_burst") {
            AlertClass::Burst
        } else if rule.ends_with("_trip") || rule.ends_with("_pump_fault") {
            AlertClass::PumpTrip
        } else if rule.ends_with("_pressure_low") {
            AlertClass::LowPressure
        } else if rule.ends_with("_overflow") || rule.contains("_wet_well") {
            AlertClass::Sewer
        } else if rule.contains("_health_") {
            AlertClass::PumpHealth
        } else if rule.ends_with("_comm_loss") {
            AlertClass::CommLoss
        } else {
            AlertClass::Other
        }
    }

    /// The event kinds that make an alert of this class true.
    fn explained_by(self) -> &'static [EventKind] {
        use EventKind::*;
        match self {
            AlertClass::Burst => &[Burst],
            AlertClass::FlowRise => &[Burst, HydrantFlushing],
            AlertClass::PlannedWorks => &[HydrantFlushing],
            AlertClass::PumpTrip => &[PumpTrip],
            AlertClass::LowPressure => &[Burst, HydrantFlushing, PumpTrip],
            AlertClass::Sewer => &[Blockage, Rain, PumpTrip],
            AlertClass::PumpHealth => &[BearingWear, Cavitation, ImpellerWear],
            AlertClass::LeakGrowth => &[LeakGrowth],
            AlertClass::CommLoss => &[CommTimeout, CommException, CommUnreachable, CommLateReply, CommReset],
            AlertClass::Other => &[],
        }
    }
}

/// One line of the score table: an event kind and the alerts that should find it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub kind: EventKind,
    /// The alert classes that count as finding it.
    pub by: Vec<AlertClass>,
    pub events: usize,
    pub detected: usize,
    /// Minutes from the event's start to the first alert, for each detected event.
    pub ttd_min: Vec<f64>,
    /// For bursts: minutes to the critical burst alert.
    pub ttd_critical_min: Vec<f64>,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Score {
    pub days: f64,
    /// Whether the run used the planned-works register.
    pub planned_works: bool,
    pub rows: Vec<Row>,
    /// Alerts that explain no event, by class and severity.
    pub false_alarms: BTreeMap<(AlertClass, Severity), usize>,
    /// Critical burst alerts active during a hydrant flushing in their district (and not
    /// explained by a real burst there).
    pub flushing_as_burst: usize,
    pub alerts: Vec<Alert>,
    pub events: Vec<EventRecord>,
}

impl Score {
    pub fn row(&self, kind: EventKind) -> Option<&Row> {
        self.rows.iter().find(|r| r.kind == kind)
    }

    pub fn false_per_day(&self, severity: Option<Severity>) -> f64 {
        let n: usize =
            self.false_alarms.iter().filter(|((_, s), _)| severity.is_none_or(|x| x == *s)).map(|(_, n)| n).sum();
        n as f64 / self.days
    }

    /// The table for BENCHMARKS.md.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "Mode: {}",
            if self.planned_works {
                "with the planned-works register (the flushing programme entered before the run)"
            } else {
                "without a register (duration and time of day tell flushing from a burst)"
            }
        );
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "| event kind | found by | events | detected | rate | median TTD (sim-min) | max TTD | median TTD critical |"
        );
        let _ = writeln!(t, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for r in &self.rows {
            let rate = if r.events == 0 {
                "-".to_owned()
            } else {
                format!("{:.0} %", 100.0 * r.detected as f64 / r.events as f64)
            };
            let by = r.by.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ");
            let _ = writeln!(
                t,
                "| {:?} | {by} | {} | {} | {rate} | {} | {} | {} |",
                r.kind,
                r.events,
                r.detected,
                fmt_min(median(&r.ttd_min)),
                fmt_min(r.ttd_min.iter().copied().fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))),
                fmt_min(median(&r.ttd_critical_min)),
            );
        }
        let _ = writeln!(t);
        let _ = writeln!(t, "| false alarms (explain no event) | count | per simulated day |");
        let _ = writeln!(t, "| --- | ---: | ---: |");
        for ((class, sev), n) in &self.false_alarms {
            let _ = writeln!(t, "| {class:?} ({sev}) | {n} | {:.2} |", *n as f64 / self.days);
        }
        let _ = writeln!(t, "| all critical | | {:.2} |", self.false_per_day(Some(Severity::Critical)));
        let _ = writeln!(t, "| all | | {:.2} |", self.false_per_day(None));
        let _ = writeln!(t);
        let _ = writeln!(t, "Hydrant flushings reported as a (critical) burst: {}", self.flushing_as_burst);
        t
    }
}

fn fmt_min(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".to_owned())
}

pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 })
}

/// One watched point of one device: where it is and how to decode it.
struct Watched {
    device: usize,
    point: usize,
}

/// Decodes point `p` from `image` as the collector does (codec, scale, physical range).
fn decode(sim: &Simulation, w: &Watched, image: &RegisterImage, time: DateTime<Utc>) -> Reading {
    let d = &sim.devices()[w.device];
    let p = &d.model().points()[w.point];
    let raw = match p.register {
        RegisterKind::Coil => image.coils.read(p.address, 1).map(|b| f64::from(u8::from(b[0]))),
        RegisterKind::Discrete => image.discretes.read(p.address, 1).map(|b| f64::from(u8::from(b[0]))),
        RegisterKind::Holding | RegisterKind::Input if p.data_type != DataType::String => {
            let table = if p.register == RegisterKind::Holding { &image.holding } else { &image.input };
            table
                .read(p.address, p.width())
                .and_then(|regs| codec::decode(&regs, p.data_type, p.word_order.unwrap_or_default()).ok())
                .map(|raw| p.engineering(raw))
        }
        _ => None,
    };
    let (value, quality) = match raw {
        Some(v) if v.is_finite() && p.min.is_none_or(|m| v >= m) && p.max.is_none_or(|m| v <= m) => {
            (Value::Number(v), Quality::Good)
        }
        Some(v) if v.is_finite() => (Value::Number(v), Quality::OutOfRange),
        _ => (Value::Absent, Quality::CommFail),
    };
    Reading { device: d.name.clone(), point: p.name.clone(), time, value, quality }
}

/// Runs `scenario` with `rules` and scores the alerts.
pub async fn run(scenario: &Scenario, rules: &RuleSet, opts: &ScoreOptions) -> anyhow::Result<Score> {
    let mut sim = Simulation::from_scenario(
        scenario,
        SimOptions { seed: opts.seed, start: Some(opts.start), ..SimOptions::default() },
    )
    .context("building the simulation")?;
    let store: Arc<dyn AlertStore> = Arc::new(SqliteAlerts::open(&opts.store_path).await?);
    let start = sim.now();
    let mut rules = rules.clone();
    for spec in &mut rules.detectors {
        if let collector::alerts::DetectorKind::Burst(p) = &mut spec.kind {
            p.planned_works = opts.planned_works;
        }
    }
    let metrics = Arc::new(collector::Metrics::default());
    let mut engine = Engine::new(&rules, store.clone(), metrics.clone(), start).await?;
    if opts.planned_works {
        // Through the real register, as `mizumori works add` enters it.
        let works = store::SqliteWorks::open(&opts.store_path).await?;
        for e in sim.events().iter().filter(|e| e.kind == EventKind::HydrantFlushing) {
            works.add_work(&planned_flushing(e), start).await?;
        }
        let horizon = start + chrono::Duration::milliseconds((opts.days * 86_400_000.0) as i64);
        engine.set_works(&works.works(start, horizon).await?);
    }

    // The points some rule or detector reads; a device-wide rule (communication loss) reads
    // every point, so one point of its device stands for all.
    let mut wanted: HashSet<(String, Option<String>)> = HashSet::new();
    for r in engine.rules() {
        wanted.insert((r.device.to_string(), r.point.as_ref().map(ToString::to_string)));
    }
    for spec in &rules.detectors {
        for input in collector::alerts::detect::inputs(spec) {
            wanted.insert((input.device.to_string(), Some(input.point.to_string())));
        }
    }
    let mut watched = Vec::new();
    for (di, d) in sim.devices().iter().enumerate() {
        let name = d.name.to_string();
        let any = wanted.contains(&(name.clone(), None));
        let mut named = false;
        for (pi, p) in d.model().points().iter().enumerate() {
            if wanted.contains(&(name.clone(), Some(p.name.to_string()))) {
                watched.push(Watched { device: di, point: pi });
                named = true;
            }
        }
        if any && !named {
            // The first point after the sequence counter.
            watched.push(Watched { device: di, point: 1.min(d.model().points().len() - 1) });
        }
    }

    let steps = (opts.days * 86_400.0) as u64;
    let tick_every = (rules.tick.as_millis() as u64 / 1000).max(1);
    let mut batch = Vec::with_capacity(watched.len());
    for step in 0..steps {
        sim.step();
        let now = sim.now();
        if step % opts.poll_s.max(1) == 0 {
            batch.clear();
            let mut last_device = usize::MAX;
            let mut image = RegisterImage::default();
            for w in &watched {
                if w.device != last_device {
                    image = sim.devices()[w.device].registers();
                    last_device = w.device;
                }
                batch.push(decode(&sim, w, &image, now));
            }
            engine.on_readings(&batch).await;
        }
        if step % tick_every == 0 {
            engine.on_tick(now).await;
        }
    }
    let end = sim.now();
    // The engine logs a change the store refused and goes on (collection must); a score over
    // alerts that were never stored would be wrong (a full disk once "missed" a burst here).
    let refused = metrics.alert_store_errors_total();
    anyhow::ensure!(refused == 0, "the alert store refused {refused} alert changes during the run; no score");
    let alerts = store.alerts(&AlertQuery::default()).await?;
    let events: Vec<EventRecord> = sim.events().iter().filter(|e| e.start < end).cloned().collect();
    let fed_by: HashMap<String, String> =
        scenario.districts.iter().map(|d| (d.get_ref().name.clone(), d.get_ref().fed_by.clone())).collect();
    let days = (end - start).num_milliseconds() as f64 / 86_400_000.0;
    Ok(Score { planned_works: opts.planned_works, ..score(alerts, events, &fed_by, end, days) })
}

/// How long after an event's end an alert may still be its consequence (off-delays, a wet
/// well that is still high).
const GRACE: Duration = Duration::from_secs(30 * 60);

/// Leak growth is not repaired when its event ends: the simulator keeps the leakage it grew
/// to, so a night-flow alert days later is still about it.
const LEAK_GRACE: Duration = Duration::from_secs(7 * 86_400);

/// Whether `alert` is about event `e`: same asset (or a district the station feeds), raised
/// while the event lasted or shortly after.
fn about(alert: &Alert, e: &EventRecord, fed_by: &HashMap<String, String>) -> bool {
    let grace =
        chrono::Duration::from_std(if e.kind == EventKind::LeakGrowth { LEAK_GRACE } else { GRACE }).expect("small");
    let same = alert.asset == e.target
        || alert.device.as_str() == e.target
        || fed_by.get(&alert.asset).is_some_and(|s| *s == e.target)
        || e.target == "city";
    same && e.start <= alert.first_seen && alert.first_seen <= e.end + grace
}

fn score(
    alerts: Vec<Alert>,
    events: Vec<EventRecord>,
    fed_by: &HashMap<String, String>,
    end: DateTime<Utc>,
    days: f64,
) -> Score {
    let rows_spec: [(EventKind, &[AlertClass]); 9] = [
        (EventKind::Burst, &[AlertClass::FlowRise, AlertClass::Burst]),
        (EventKind::HydrantFlushing, &[AlertClass::FlowRise, AlertClass::PlannedWorks]),
        (EventKind::PumpTrip, &[AlertClass::PumpTrip]),
        (EventKind::Blockage, &[AlertClass::Sewer]),
        (EventKind::Rain, &[AlertClass::Sewer]),
        (EventKind::BearingWear, &[AlertClass::PumpHealth]),
        (EventKind::Cavitation, &[AlertClass::PumpHealth]),
        (EventKind::ImpellerWear, &[AlertClass::PumpHealth]),
        (EventKind::LeakGrowth, &[AlertClass::LeakGrowth]),
    ];
    let mut rows = Vec::new();
    for (kind, by) in rows_spec {
        let mut row = Row { kind, by: by.to_vec(), events: 0, detected: 0, ttd_min: vec![], ttd_critical_min: vec![] };
        for e in events.iter().filter(|e| e.kind == kind) {
            row.events += 1;
            let first = alerts
                .iter()
                .filter(|a| by.contains(&AlertClass::of(&a.rule)) && about(a, e, fed_by))
                // Pump trips and wear: the alert must name the pump (rule `p2_trip`, or the sewer
                // station's fault bits). Not cavitation: the simulator makes the station's duty
                // pump cavitate, whichever pump the event names.
                .filter(|a| {
                    !matches!(kind, EventKind::PumpTrip | EventKind::BearingWear | EventKind::ImpellerWear)
                        || pump_matches(a, e)
                })
                .map(|a| a.first_seen)
                .min();
            if let Some(t) = first {
                row.detected += 1;
                row.ttd_min.push((t - e.start).num_milliseconds() as f64 / 60_000.0);
            }
            if kind == EventKind::Burst {
                if let Some(t) = alerts
                    .iter()
                    .filter(|a| AlertClass::of(&a.rule) == AlertClass::Burst && about(a, e, fed_by))
                    .map(|a| a.first_seen)
                    .min()
                {
                    row.ttd_critical_min.push((t - e.start).num_milliseconds() as f64 / 60_000.0);
                }
            }
        }
        rows.push(row);
    }
    let mut false_alarms = BTreeMap::new();
    let mut flushing_as_burst = 0;
    for a in &alerts {
        let class = AlertClass::of(&a.rule);
        let explained = events.iter().any(|e| class.explained_by().contains(&e.kind) && about(a, e, fed_by));
        if !explained {
            *false_alarms.entry((class, a.severity)).or_insert(0) += 1;
        }
        // A critical burst alert active at any moment of a flushing in its district, unless a
        // real burst explains it.
        if class == AlertClass::Burst
            && events.iter().any(|e| e.kind == EventKind::HydrantFlushing && overlaps(a, e, fed_by, end))
            && !events.iter().any(|e| e.kind == EventKind::Burst && about(a, e, fed_by))
        {
            flushing_as_burst += 1;
        }
    }
    Score { days, planned_works: false, rows, false_alarms, flushing_as_burst, alerts, events }
}

/// Whether `alert` names event `e`'s target and was active at some moment of the event.
fn overlaps(alert: &Alert, e: &EventRecord, fed_by: &HashMap<String, String>, end: DateTime<Utc>) -> bool {
    let same = alert.asset == e.target || fed_by.get(&alert.asset).is_some_and(|s| *s == e.target);
    same && alert.first_seen < e.end && alert.resolved_at.unwrap_or(end) > e.start
}

fn pump_matches(a: &Alert, e: &EventRecord) -> bool {
    let pump = e.pump.unwrap_or(1);
    a.rule.ends_with(&format!("_p{pump}_trip"))
        || a.rule.contains(&format!("_p{pump}_health_"))
        || a.rule.ends_with("_pump_fault")
}
