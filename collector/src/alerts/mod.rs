//! Alert rules, evaluated on readings as they are collected, and webhook notification.
//!
//! `rules` reads the TOML rules file into a [`RuleSet`]; `eval` is the pure state machine per
//! rule (delays, hysteresis, episodes); this module runs it as the engine task and records
//! what it decides in an [`AlertStore`]; `notify` sends the store's state changes to
//! webhooks, one task per webhook.
//!
//! The appender hands every poll cycle it appended to the engine through a small bounded
//! channel with `try_send`: when the engine falls behind, the cycle is counted
//! (`collector_alert_batches_dropped_total`), logged and skipped, never waited for, so alerts
//! cannot slow polling or buffering.
//!
//! Restart: what detectors learned is saved in the store (`detector_state`, every five minutes
//! and at stop) and given back at start. Rule state is rebuilt from the alert table: a rule
//! with an active (unresolved) alert starts in its active phase, so the episode is not raised
//! again and still resolves itself once the condition is clear for the off-delay. What a
//! restart forgets is transient: a pending on-delay starts over, and silence for communication
//! loss is counted from the start. One source of truth (the alerts a crew sees) cannot
//! disagree with a second copy of rule state.

pub mod detect;
pub mod email;
pub mod eval;
pub mod notify;
pub mod rules;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use model::{NewAlert, PointName, Reading};
use store::alerts::Resolution;
use store::{AlertStore, DetectorStateStore, PlannedWork, StoreError, WorksStore};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

pub use detect::{DetectorKind, DetectorSpec, Detectors};
pub use eval::{Evaluator, Kind, Rule, Transition};
pub use notify::Webhook;
pub use rules::{RuleSet, RulesError, RulesErrors};

use crate::metrics::Metrics;

/// Poll cycles that may wait for the engine before new ones are skipped.
const CHANNEL_CYCLES: usize = 256;

/// The point name stored on alerts of rules that watch a whole device (communication loss
/// without a point).
pub const ANY_POINT: &str = "_device";

/// What the collector needs to evaluate alerts: the rules, where alerts live, and the
/// planned-works register if there is one.
#[derive(Clone)]
pub struct Alerting {
    pub rules: RuleSet,
    pub store: Arc<dyn AlertStore>,
    pub works: Option<Arc<dyn WorksStore>>,
    /// Where detectors keep what they learned across a restart.
    pub states: Option<Arc<dyn DetectorStateStore>>,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting").field("rules", &self.rules.rules.len()).finish_non_exhaustive()
    }
}

/// The running engine and notifiers.
pub(crate) struct Running {
    pub tx: mpsc::Sender<Arc<Vec<Reading>>>,
    pub engine: JoinHandle<()>,
    pub notifiers: TaskTracker,
}

fn point_of(rule: &Rule) -> PointName {
    rule.point.clone().unwrap_or_else(|| PointName::new(ANY_POINT).expect("ANY_POINT is a valid name"))
}

/// Prepares the store (webhook cursors), rebuilds rule state from the active alerts, and
/// starts the engine and one notifier per webhook.
pub(crate) async fn start(
    alerting: Alerting,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> Result<Running, StoreError> {
    let Alerting { rules: set, store, works, states } = alerting;
    // A webhook seen for the first time starts at the newest change: it is not sent the whole
    // history. This happens before the engine runs, so nothing the engine records is missed.
    let targets: Vec<notify::Target> = set
        .webhooks
        .iter()
        .cloned()
        .map(notify::Target::from)
        .chain(set.emails.iter().cloned().map(notify::Target::from))
        .collect();
    for t in &targets {
        if store.cursor(&t.consumer()).await?.is_none() {
            store.set_cursor(&t.consumer(), store.last_change().await?).await?;
        }
    }
    let wake = Arc::new(Notify::new());
    let notifiers = TaskTracker::new();
    for t in targets {
        notifiers.spawn(notify::run(t, store.clone(), wake.clone(), Duration::from_secs(2), cancel.clone()));
    }
    notifiers.close();
    let tick = set.tick;
    let mut engine = Engine::new(&set, store, metrics, Utc::now()).await?;
    engine.wake = wake;
    if let Some(states) = &states {
        engine.restore_states(states.as_ref()).await;
    }
    let (tx, rx) = mpsc::channel(CHANNEL_CYCLES);
    let (works_tx, works_rx) = watch::channel(Arc::<[PlannedWork]>::from(Vec::new()));
    if let Some(works) = works {
        tokio::spawn(refresh_works(works, works_tx, cancel.clone()));
    }
    let engine = tokio::spawn(engine.run(rx, works_rx, states, tick));
    Ok(Running { tx, engine, notifiers })
}

/// Rules and detectors evaluated together: readings and ticks in, transitions out. Pure and
/// synchronous; the engine adds the store.
#[derive(Debug)]
pub struct Core {
    evaluator: Evaluator,
    detectors: Detectors,
}

impl Core {
    /// The rules of `set` followed by its detectors' outputs, evaluated from `start`.
    pub fn new(set: &RuleSet, start: DateTime<Utc>) -> Core {
        let (detectors, outputs) = Detectors::new(&set.detectors, set.rules.len());
        let mut rules = set.rules.clone();
        rules.extend(outputs);
        Core { evaluator: Evaluator::new(rules, start), detectors }
    }

    pub fn rules(&self) -> &[Rule] {
        self.evaluator.rules()
    }

    pub fn on_reading(&mut self, r: &Reading, out: &mut Vec<Transition>) {
        self.evaluator.on_reading(r, out);
        let evaluator = &mut self.evaluator;
        self.detectors.on_reading(r, &mut |rule, cond, value, at| evaluator.set_condition(rule, cond, value, at, out));
    }

    pub fn on_tick(&mut self, now: DateTime<Utc>, out: &mut Vec<Transition>) {
        self.evaluator.on_tick(now, out);
    }

    /// Takes a new snapshot of the planned-works register.
    pub fn set_works(&mut self, works: &[PlannedWork]) {
        self.evaluator.set_works(works);
        self.detectors.set_works(works);
    }

    /// What the detectors learned, to save at `at`.
    pub fn save_detectors(&self, at: DateTime<Utc>) -> Vec<store::DetectorState> {
        self.detectors.save(at)
    }

    /// Gives saved states back to the detectors.
    pub fn restore_detectors(&mut self, states: &[store::DetectorState]) -> detect::Restored {
        self.detectors.restore(states)
    }
}

/// The alert engine: a [`Core`] whose transitions are written to an [`AlertStore`].
pub struct Engine {
    core: Core,
    /// The active alert of each rule that has one.
    ids: HashMap<usize, i64>,
    store: Arc<dyn AlertStore>,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    out: Vec<Transition>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("rules", &self.core.rules().len()).field("active", &self.ids.len()).finish()
    }
}

impl Engine {
    /// Builds the rules and detectors of `set` and resumes the episodes whose alerts are still
    /// active in `store`.
    pub async fn new(
        set: &RuleSet,
        store: Arc<dyn AlertStore>,
        metrics: Arc<Metrics>,
        start: DateTime<Utc>,
    ) -> Result<Engine, StoreError> {
        let mut core = Core::new(set, start);
        let mut ids = HashMap::new();
        for alert in store.active().await? {
            let found = core
                .rules()
                .iter()
                .position(|r| r.name == alert.rule && r.device == alert.device && point_of(r) == alert.point);
            match found {
                Some(i) => {
                    core.evaluator.restore_active(i);
                    ids.insert(i, alert.id);
                }
                None => {
                    info!(alert = alert.id, rule = %alert.rule, "active alert of a rule no longer configured; resolve it by hand")
                }
            }
        }
        if !ids.is_empty() {
            info!(active = ids.len(), "alert rules resume with their active alerts");
        }
        Ok(Engine { core, ids, store, metrics, wake: Arc::new(Notify::new()), out: Vec::new() })
    }

    /// The rules and detector outputs, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        self.core.rules()
    }

    /// Evaluates readings and records what changed.
    pub async fn on_readings(&mut self, batch: &[Reading]) {
        for r in batch {
            self.core.on_reading(r, &mut self.out);
        }
        self.flush().await;
    }

    /// Advances time-based conditions to `now` and ends expired shelving.
    pub async fn on_tick(&mut self, now: DateTime<Utc>) {
        self.core.on_tick(now, &mut self.out);
        match self.store.unshelve_expired(now).await {
            Ok(back) if !back.is_empty() => self.wake.notify_waiters(),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "cannot end expired shelving"),
        }
        self.flush().await;
    }

    async fn flush(&mut self) {
        if !self.out.is_empty() {
            for t in std::mem::take(&mut self.out) {
                self.apply(t).await;
            }
            self.wake.notify_waiters();
        }
    }

    /// Takes a new snapshot of the planned-works register.
    pub fn set_works(&mut self, works: &[PlannedWork]) {
        self.core.set_works(works);
    }

    /// Restores what the detectors learned before a restart. A state that cannot be read
    /// (another format version, a store error) is logged and the detector learns afresh.
    pub async fn restore_states(&mut self, states: &dyn DetectorStateStore) {
        match states.load_states().await {
            Ok(saved) => {
                let r = self.core.restore_detectors(&saved);
                if !r.restored.is_empty() {
                    info!(detectors = r.restored.len(), "detectors resume with what they learned before");
                }
                for (name, why) in r.dropped {
                    warn!(detector = %name, reason = %why, "saved detector state dropped; it learns afresh");
                }
            }
            Err(e) => warn!(error = %e, "cannot read saved detector states; detectors learn afresh"),
        }
    }

    /// Saves what the detectors learned; a failure is logged (the next save may succeed).
    pub async fn save_states(&self, states: &dyn DetectorStateStore, at: DateTime<Utc>) {
        let list = self.core.save_detectors(at);
        if list.is_empty() {
            return;
        }
        if let Err(e) = states.save_states(&list).await {
            warn!(error = %e, "cannot save detector states");
        }
    }

    /// Evaluates readings until the channel closes (the appender has stopped). A new
    /// snapshot of the planned-works register is taken between batches, never waited for.
    /// Detector states are saved every [`STATE_SAVE`] and when the engine stops.
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Arc<Vec<Reading>>>,
        mut works: watch::Receiver<Arc<[PlannedWork]>>,
        states: Option<Arc<dyn DetectorStateStore>>,
        tick: Duration,
    ) {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut save = tokio::time::interval_at(tokio::time::Instant::now() + STATE_SAVE, STATE_SAVE);
        save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if works.has_changed().unwrap_or(false) {
                let snapshot = works.borrow_and_update().clone();
                self.set_works(&snapshot);
            }
            tokio::select! {
                batch = rx.recv() => {
                    let Some(batch) = batch else { break };
                    self.on_readings(&batch).await;
                }
                _ = interval.tick() => self.on_tick(Utc::now()).await,
                _ = save.tick(), if states.is_some() => {
                    if let Some(states) = &states {
                        self.save_states(states.as_ref(), Utc::now()).await;
                    }
                }
            }
        }
        if let Some(states) = &states {
            self.save_states(states.as_ref(), Utc::now()).await;
        }
    }

    async fn apply(&mut self, t: Transition) {
        match t {
            Transition::Raise { rule, at, value } | Transition::Repeat { rule, at, value } => {
                let r = &self.core.rules()[rule];
                let shown = value.map(|v| format!("{v}")).unwrap_or_else(|| "-".to_owned());
                let new = NewAlert {
                    rule: r.name.clone(),
                    asset: r.asset.clone(),
                    device: r.device.clone(),
                    point: point_of(r),
                    severity: r.severity,
                    at,
                    value,
                    message_en: r.message_en.replace("{value}", &shown),
                    message_ja: r.message_ja.replace("{value}", &shown),
                };
                let store = self.store.clone();
                if let Some(raised) = self.retry("raise", || store.raise(&new)).await {
                    if raised.new {
                        self.metrics.alert_raised();
                        info!(alert = raised.alert.id, rule = %new.rule, asset = %new.asset, severity = %new.severity, "alert raised");
                    }
                    self.ids.insert(rule, raised.alert.id);
                }
            }
            Transition::Clear { rule, at } => {
                let Some(id) = self.ids.remove(&rule) else { return };
                let store = self.store.clone();
                match store.resolve(id, &Resolution::Auto, at).await {
                    Ok(_) => {
                        info!(alert = id, rule = %self.core.rules()[rule].name, "alert resolved: condition clear")
                    }
                    // Someone resolved it already (`mizumori alerts resolve`): nothing to do.
                    Err(StoreError::AlertTransition { .. } | StoreError::NoSuchAlert { .. }) => {
                        debug!(alert = id, "alert was resolved by hand before the condition cleared")
                    }
                    Err(_) => {
                        let how = Resolution::Auto;
                        self.retry("resolve", || store.resolve(id, &how, at)).await;
                    }
                }
            }
        }
    }

    /// Runs a store call, retrying a transient failure a few times; a change that still
    /// fails is logged and counted, and the engine goes on (the next episode will be seen).
    async fn retry<'a, T, F, Fut>(&self, what: &str, mut call: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>> + 'a,
    {
        for attempt in 1..=3u32 {
            match call().await {
                Ok(v) => return Some(v),
                Err(e) if e.is_transient() && attempt < 3 => {
                    warn!(error = %e, attempt, "alert store busy; retrying {what}");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(e) => {
                    error!(error = %e, "cannot {what} an alert");
                    self.metrics.alert_store_error();
                    return None;
                }
            }
        }
        None
    }
}

/// How often detector states are saved: a crash loses at most this much learning.
const STATE_SAVE: Duration = Duration::from_secs(300);

/// How often the planned-works register is read again: entries are planned hours or days
/// ahead, and a crew that enters work as it starts waits at most this long.
const WORKS_REFRESH: Duration = Duration::from_secs(60);

/// The register entries a snapshot holds: those overlapping a day back and a week ahead.
fn works_span(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (now - chrono::Duration::days(1), now + chrono::Duration::days(7))
}

/// Reads the planned-works register every [`WORKS_REFRESH`] and publishes a snapshot to the
/// engine when it changed. A failed read keeps the last snapshot (logged): the register being
/// unreadable must not stop alerting, and the previous plan is the best guess.
async fn refresh_works(store: Arc<dyn WorksStore>, tx: watch::Sender<Arc<[PlannedWork]>>, cancel: CancellationToken) {
    let mut interval = tokio::time::interval(WORKS_REFRESH);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = interval.tick() => {}
        }
        let (from, to) = works_span(Utc::now());
        match store.works(from, to).await {
            Ok(list) => {
                tx.send_if_modified(|old| {
                    let changed = **old != *list;
                    if changed {
                        info!(entries = list.len(), "planned works register read");
                        *old = Arc::from(list);
                    }
                    changed
                });
            }
            Err(e) => warn!(error = %e, "cannot read the planned works register; keeping the last snapshot"),
        }
    }
}

/// Hands an appended poll cycle to the engine without waiting.
pub(crate) fn offer(tx: &mpsc::Sender<Arc<Vec<Reading>>>, batch: Arc<Vec<Reading>>, metrics: &Metrics) {
    if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(batch) {
        let n = metrics.alert_batch_dropped();
        // One line per hundred skipped cycles is enough to see the engine falling behind.
        if n == 1 || n % 100 == 0 {
            warn!(skipped_total = n, "alert engine behind; a poll cycle was not evaluated");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{DeviceId, PointName};
    use store::{SqliteAlerts, SqliteDetectorStates};

    const RULES: &str = "[[detector]]\nname = \"dma01_burst\"\nkind = \"burst\"\nasset = \"dma01\"\n\
                         flow = \"fm01/flow\"\npressure = \"pl01/pressure\"\n";

    #[tokio::test]
    async fn an_engine_restarted_from_saved_states_has_learned_the_same() {
        let set = RuleSet::parse(std::path::Path::new("rules.toml"), RULES, &|_| None).unwrap();
        let alerts: Arc<dyn AlertStore> = Arc::new(SqliteAlerts::in_memory());
        let states = SqliteDetectorStates::in_memory();
        let t0: DateTime<Utc> = "2026-04-01T00:00:00Z".parse().unwrap();
        let mut engine = Engine::new(&set, alerts.clone(), Arc::default(), t0).await.unwrap();
        for s in 0..7200 {
            let t = t0 + chrono::Duration::seconds(s);
            let q = 100.0 + (s % 7) as f64;
            let batch = [
                Reading::good(DeviceId::new("fm01").unwrap(), PointName::new("flow").unwrap(), t, q),
                Reading::good(DeviceId::new("pl01").unwrap(), PointName::new("pressure").unwrap(), t, 3.0),
            ];
            engine.on_readings(&batch).await;
        }
        let end = t0 + chrono::Duration::hours(2);
        engine.save_states(&states, end).await;
        let saved = states.load_states().await.unwrap();
        assert_eq!(saved.len(), 1);
        assert_eq!((saved[0].name.as_str(), saved[0].version), ("dma01_burst", 1));

        let mut restarted = Engine::new(&set, alerts.clone(), Arc::default(), end).await.unwrap();
        restarted.restore_states(&states).await;
        assert_eq!(restarted.core.save_detectors(end), saved, "the restarted engine holds what was saved");

        // A state of another format version is dropped: the detector starts afresh.
        let old = store::DetectorState { version: 0, ..saved[0].clone() };
        let mut fresh = Engine::new(&set, alerts, Arc::default(), end).await.unwrap();
        let r = fresh.core.restore_detectors(&[old]);
        assert_eq!(r.restored, Vec::<String>::new());
        assert_eq!(r.dropped[0].0, "dma01_burst");
        assert_ne!(fresh.core.save_detectors(end), saved);
    }
}
