//! Caches in front of the store, for what many clients ask at once: the overview, charts and
//! the risk table under a control room's worth of open browsers (`bench/dashboard_load.sh`).
//!
//! * **Aggregates of readings** over "the last 30 days" (or 24 h, or the overview's 10-minute
//!   means now and yesterday) are kept for one window of the chart, at most 60 s and at least
//!   1 s: a 30-day chart at 720 px has hour-long windows. A live view never shows them stale,
//!   though: every request asks the store again for the windows from the cached answer's last
//!   (open) window up to now — one small query — and joins them to the cached ones, so a
//!   reading stored a moment ago is on the next chart. A fixed (custom) range is kept for 60 s,
//!   for the readings that arrive late. An aggregate carries the `from` and `to` it covers,
//!   and pages draw with those, so a chart and its axis always agree.
//! * **Risk runs** never change once saved (a new ranking is a new run), so a page of a run,
//!   its matrix, its filter choices and its summary are kept by run id until evicted by size.
//!   Which run is the newest is asked of the store on every request (one indexed row), so a
//!   new run shows on the next page.
//! * **The latest readings** are kept for one second: the overview and device pages are
//!   "live" within a second (the collector stores a point at most about once a second, and
//!   pages refresh every 30 s), and fifty clients cost one query a second instead of fifty.
//!   The overview's districts section (about forty series: inflow and pressure now and
//!   yesterday, the 24-hour inflow chart, the night flows) is likewise built once a second per
//!   language and shared by the views of that second. These are the places a page may be up
//!   to a second behind the store.
//!
//! Every cache coalesces concurrent misses for one key into one store call (moka's
//! `try_get_with`), so fifty clients opening the same chart cost one query. The live tails are
//! not cached at all, but identical tail queries *in flight at the same moment* are run once
//! and shared (`TailFlights`): the overview asks for 36 tails per view, and under fifty clients
//! each tail was being asked of the one reader connection dozens of times at once. A request
//! that starts after a tail query has finished asks again, so this adds no staleness. Sizes are bounded
//! by weight (windows, rows), not by entry count. Alerts and sessions are never cached: what a
//! crew member just did must show on the next page.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, DurationRound, Utc};
use model::Reading;
use moka::Expiry;
use moka::future::Cache;
use store::risk::{MatrixCell, RegisterSummary, RiskFilter, RiskPage, RiskQuery, RiskRun};
use store::{SeriesKey, Store, StoreError, Window, WindowQuery};

use crate::AppError;

/// How long the latest readings are kept.
const LATEST_FRESH: StdDuration = StdDuration::from_secs(1);
/// The longest a recent aggregate is kept.
const MAX_FRESH: StdDuration = StdDuration::from_secs(60);
/// The shortest: below this the cache would only add work.
const MIN_FRESH: StdDuration = StdDuration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AggKey {
    /// The last `span_ms` before now, moved back by `back_ms` (yesterday's comparison).
    Recent { series: SeriesKey, window_ms: i64, span_ms: i64, back_ms: i64 },
    /// A range given by its ends.
    Fixed { series: SeriesKey, window_ms: i64, from_ms: i64, to_ms: i64 },
}

/// Windows of one series over `[from, to)`, as the store answered at one moment.
#[derive(Debug)]
pub(crate) struct Aggregated {
    /// Unique per answer of the store: a drawing of it can be cached under this id.
    pub id: u64,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub windows: Vec<Window>,
    window_ms: i64,
    fresh_for: StdDuration,
}

/// Each aggregate expires after its own freshness.
struct PerEntry;

impl Expiry<AggKey, Arc<Aggregated>> for PerEntry {
    fn expire_after_create(&self, _: &AggKey, value: &Arc<Aggregated>, _: Instant) -> Option<StdDuration> {
        Some(value.fresh_for)
    }
}

/// A drawing (an SVG) of aggregates; it lives as long as the freshest of them would.
#[derive(Debug)]
pub(crate) struct Drawing {
    pub svg: String,
    fresh_for: StdDuration,
}

impl Expiry<String, Arc<Drawing>> for PerEntry {
    fn expire_after_create(&self, _: &String, value: &Arc<Drawing>, _: Instant) -> Option<StdDuration> {
        Some(value.fresh_for)
    }
}

/// A run's material codes and its districts.
type Choices = (Vec<String>, Vec<String>);

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// How long an aggregate of windows `window_ms` wide stays fresh.
pub(crate) fn freshness(window_ms: i64) -> StdDuration {
    StdDuration::from_millis(window_ms.max(0) as u64).clamp(MIN_FRESH, MAX_FRESH)
}

/// A live tail: one series' windows from `from_ms` up to `to_ms` (the end of the current second).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TailKey {
    series: SeriesKey,
    window_ms: i64,
    from_ms: i64,
    to_ms: i64,
}

type TailAnswer = Result<Arc<Vec<Window>>, Arc<StoreError>>;

/// Tail queries running now, each shared by every request that asks the same while it runs.
/// An entry lives only while its query runs: it is removed by the request that ran it, so the
/// next request after that asks the store again (nothing is kept, nothing can be stale).
#[derive(Default)]
struct TailFlights(std::sync::Mutex<std::collections::HashMap<TailKey, Arc<tokio::sync::OnceCell<TailAnswer>>>>);

impl TailFlights {
    async fn run(&self, store: &Arc<dyn Store>, key: TailKey, q: WindowQuery) -> TailAnswer {
        self.share(key, || async { store.aggregate(&q).await.map(Arc::new).map_err(Arc::new) }).await
    }

    /// Runs `query` unless the same key's query is running now, whose answer is then shared.
    async fn share<F, Fut>(&self, key: TailKey, query: F) -> TailAnswer
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = TailAnswer>,
    {
        let cell = {
            let mut flights = self.0.lock().unwrap_or_else(|p| p.into_inner());
            flights.entry(key.clone()).or_default().clone()
        };
        // If the request running the query is dropped (client gone), the next waiter runs it.
        let answer = cell.get_or_init(query).await.clone();
        let mut flights = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if flights.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            flights.remove(&key);
        }
        answer
    }
}

/// The dashboard's caches; one per [`crate::AppState`].
pub struct Caches {
    tails: TailFlights,
    overview_districts: Cache<(crate::i18n::Lang, i64), Arc<String>>,
    latest: Cache<(), Arc<Vec<Reading>>>,
    aggregates: Cache<AggKey, Arc<Aggregated>>,
    drawings: Cache<String, Arc<Drawing>>,
    risk_rows: Cache<(i64, String), Arc<RiskPage>>,
    risk_matrix: Cache<(i64, String), Arc<Vec<MatrixCell>>>,
    risk_choices: Cache<i64, Arc<Choices>>,
    risk_summary: Cache<(i64, i32, i32), Arc<RegisterSummary>>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("aggregates", &self.aggregates.entry_count())
            .field("risk_rows", &self.risk_rows.entry_count())
            .finish_non_exhaustive()
    }
}

impl Default for Caches {
    fn default() -> Self {
        // Weights: a window is ~60 bytes, a risk row ~300; so at most ~30 MB and ~15 MB.
        let weight = |n: usize| u32::try_from(n + 1).unwrap_or(u32::MAX);
        Caches {
            tails: TailFlights::default(),
            overview_districts: Cache::builder().max_capacity(8).time_to_live(LATEST_FRESH).build(),
            latest: Cache::builder().max_capacity(1).time_to_live(LATEST_FRESH).build(),
            aggregates: Cache::builder()
                .max_capacity(500_000)
                .weigher(move |_, v: &Arc<Aggregated>| weight(v.windows.len()))
                .expire_after(PerEntry)
                .build(),
            // Weighed in KB of SVG: at most ~20 MB.
            drawings: Cache::builder()
                .max_capacity(20_000)
                .weigher(move |_, v: &Arc<Drawing>| weight(v.svg.len() / 1024))
                .expire_after(PerEntry)
                .build(),
            risk_rows: Cache::builder()
                .max_capacity(50_000)
                .weigher(move |_, v: &Arc<RiskPage>| weight(v.rows.len()))
                .build(),
            risk_matrix: Cache::builder().max_capacity(10_000).build(),
            risk_choices: Cache::builder().max_capacity(100).build(),
            risk_summary: Cache::builder().max_capacity(100).build(),
        }
    }
}

fn shared(e: Arc<StoreError>) -> AppError {
    AppError::SharedStore(e)
}

impl Caches {
    /// The overview's districts section of this second in this language, built by `build`
    /// once however many views ask at once; `None` when `build` failed (errors are not kept).
    pub(crate) async fn overview_districts(
        &self,
        lang: crate::i18n::Lang,
        second: i64,
        build: impl std::future::Future<Output = Result<String, AppError>>,
    ) -> Option<Arc<String>> {
        self.overview_districts.optionally_get_with((lang, second), async move { build.await.ok().map(Arc::new) }).await
    }

    /// The newest reading of every series, at most [`LATEST_FRESH`] old.
    pub(crate) async fn latest(&self, store: &Arc<dyn Store>) -> Result<Arc<Vec<Reading>>, AppError> {
        let store = store.clone();
        self.latest
            .try_get_with((), async move { Ok::<_, StoreError>(Arc::new(store.latest().await?)) })
            .await
            .map_err(shared)
    }

    async fn aggregate(
        &self,
        store: &Arc<dyn Store>,
        key: AggKey,
        q: WindowQuery,
    ) -> Result<Arc<Aggregated>, AppError> {
        let store = store.clone();
        self.aggregates
            .try_get_with(key, async move {
                let windows = store.aggregate(&q).await?;
                let fresh_for = freshness(q.window_ms);
                let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok::<_, StoreError>(Arc::new(Aggregated {
                    id,
                    from: q.from,
                    to: q.to,
                    window_ms: q.window_ms,
                    windows,
                    fresh_for,
                }))
            })
            .await
            .map_err(shared)
    }

    /// The newest ranking run, asked of the store every time (one indexed row): a run saved a
    /// moment ago shows on the next page. What is cached is keyed by the run's id, and a
    /// saved run never changes, so nothing of an older run is ever shown as the newest.
    pub(crate) async fn latest_run(&self, risk: &Arc<dyn store::RiskStore>) -> Result<Option<RiskRun>, AppError> {
        Ok(risk.latest_run().await?)
    }

    /// Windows over the `span` that ends `back` before now.
    pub(crate) async fn recent(
        &self,
        store: &Arc<dyn Store>,
        series: &SeriesKey,
        span: Duration,
        back: Duration,
        window_ms: i64,
    ) -> Result<Arc<Aggregated>, AppError> {
        let key = AggKey::Recent {
            series: series.clone(),
            window_ms,
            span_ms: span.num_milliseconds(),
            back_ms: back.num_milliseconds(),
        };
        let to = Utc::now() - back;
        let q =
            WindowQuery { device: series.device.clone(), point: series.point.clone(), from: to - span, to, window_ms };
        let cached = self.aggregate(store, key, q).await?;
        if back > Duration::zero() {
            // A past span (yesterday's comparison) gains no new readings.
            return Ok(cached);
        }
        self.with_fresh_tail(store, series, span, &cached).await
    }

    /// A live view: the cached windows before the last (open) one they had, and from that
    /// window on asked of the store again — one small query — so a reading stored after the
    /// cache was filled shows on the very next request. Only a reading stored late with an
    /// older time than the cache's end waits for the cache to expire (at most 60 s).
    async fn with_fresh_tail(
        &self,
        store: &Arc<dyn Store>,
        series: &SeriesKey,
        span: Duration,
        cached: &Arc<Aggregated>,
    ) -> Result<Arc<Aggregated>, AppError> {
        let window_ms = cached.window_ms;
        // The end of the current second: requests within one second share one drawing, and a
        // reading stored this very second is inside the range.
        let now = Utc::now().duration_trunc(Duration::seconds(1)).unwrap_or_else(|_| Utc::now()) + Duration::seconds(1);
        let from = now - span;
        let bucket = |t: DateTime<Utc>| t.timestamp_millis().div_euclid(window_ms) * window_ms;
        let boundary = bucket(cached.to);
        let tail_from = DateTime::<Utc>::from_timestamp_millis(boundary).unwrap_or(from).max(from);
        let q = WindowQuery {
            device: series.device.clone(),
            point: series.point.clone(),
            from: tail_from,
            to: now,
            window_ms,
        };
        let key = TailKey {
            series: series.clone(),
            window_ms,
            from_ms: tail_from.timestamp_millis(),
            to_ms: now.timestamp_millis(),
        };
        let tail = if tail_from < now { self.tails.run(store, key, q).await.map_err(shared)? } else { Arc::default() };
        let first = bucket(from);
        let mut windows: Vec<Window> = cached
            .windows
            .iter()
            .filter(|w| (first..boundary).contains(&w.start.timestamp_millis()))
            .cloned()
            .chain(tail.iter().cloned())
            .collect();
        windows.sort_by_key(|w| w.start);
        // The id names the content, so a drawing of it is shared until something changes.
        let mut h = std::hash::DefaultHasher::new();
        (cached.id, now.timestamp_millis(), windows.len()).hash(&mut h);
        for w in windows.iter().rev().take(2) {
            (w.start, w.count, w.mean.to_bits(), w.min.to_bits(), w.max.to_bits(), w.last.to_bits()).hash(&mut h);
        }
        Ok(Arc::new(Aggregated { id: h.finish(), from, to: now, window_ms, windows, fresh_for: MIN_FRESH }))
    }

    /// Windows over `[from, to)`.
    pub(crate) async fn fixed(
        &self,
        store: &Arc<dyn Store>,
        series: &SeriesKey,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        window_ms: i64,
    ) -> Result<Arc<Aggregated>, AppError> {
        let key = AggKey::Fixed {
            series: series.clone(),
            window_ms,
            from_ms: from.timestamp_millis(),
            to_ms: to.timestamp_millis(),
        };
        let q = WindowQuery { device: series.device.clone(), point: series.point.clone(), from, to, window_ms };
        self.aggregate(store, key, q).await
    }

    /// The drawing `what` (e.g. `line 720`) of these aggregates, drawn by `draw` on the
    /// blocking pool once for all who ask while the aggregates are fresh.
    pub(crate) async fn drawing(
        &self,
        what: &str,
        of: &[&Arc<Aggregated>],
        draw: impl FnOnce() -> String + Send + 'static,
    ) -> Result<Arc<Drawing>, AppError> {
        let ids: Vec<String> = of.iter().map(|a| a.id.to_string()).collect();
        let key = format!("{what} {}", ids.join(","));
        let fresh_for = of.iter().map(|a| a.fresh_for).min().unwrap_or(MIN_FRESH);
        self.drawings
            .try_get_with(key, async move {
                // Drawing is CPU work: keep it off the async workers.
                let svg = tokio::task::spawn_blocking(draw).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(Arc::new(Drawing { svg, fresh_for }))
            })
            .await
            .map_err(|e| AppError::Internal(format!("chart task: {e}")))
    }

    /// A page of run `run`. The key is the query's `Debug` text: every field of it, in order.
    pub(crate) async fn risk_rows(
        &self,
        risk: &Arc<dyn store::RiskStore>,
        run: i64,
        query: &RiskQuery,
    ) -> Result<Arc<RiskPage>, AppError> {
        let (risk, q) = (risk.clone(), query.clone());
        self.risk_rows
            .try_get_with((run, format!("{query:?}")), async move {
                Ok::<_, StoreError>(Arc::new(risk.rows(run, &q).await?))
            })
            .await
            .map_err(shared)
    }

    pub(crate) async fn risk_matrix(
        &self,
        risk: &Arc<dyn store::RiskStore>,
        run: i64,
        filter: &RiskFilter,
    ) -> Result<Arc<Vec<MatrixCell>>, AppError> {
        let (risk, f) = (risk.clone(), filter.clone());
        self.risk_matrix
            .try_get_with((run, format!("{filter:?}")), async move {
                Ok::<_, StoreError>(Arc::new(risk.matrix(run, &f).await?))
            })
            .await
            .map_err(shared)
    }

    /// The run's material codes and districts.
    pub(crate) async fn risk_choices(
        &self,
        risk: &Arc<dyn store::RiskStore>,
        run: i64,
    ) -> Result<Arc<Choices>, AppError> {
        let risk = risk.clone();
        self.risk_choices
            .try_get_with(run, async move {
                Ok::<_, StoreError>(Arc::new((risk.materials(run).await?, risk.districts(run).await?)))
            })
            .await
            .map_err(shared)
    }

    pub(crate) async fn risk_summary(
        &self,
        risk: &Arc<dyn store::RiskStore>,
        run: i64,
        year: i32,
        years: i32,
    ) -> Result<Arc<RegisterSummary>, AppError> {
        let risk = risk.clone();
        self.risk_summary
            .try_get_with((run, year, years), async move {
                Ok::<_, StoreError>(Arc::new(risk.summary(run, year, years).await?))
            })
            .await
            .map_err(shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_is_one_window_within_bounds() {
        assert_eq!(freshness(5_000), StdDuration::from_secs(5));
        assert_eq!(freshness(3_600_000), MAX_FRESH, "30 days at 720 px: hour-long windows");
        assert_eq!(freshness(10), MIN_FRESH);
        assert_eq!(freshness(-1), MIN_FRESH);
    }

    fn key(from_ms: i64) -> TailKey {
        let series = SeriesKey { device: "fm01".parse().unwrap(), point: "flow".parse().unwrap() };
        TailKey { series, window_ms: 60_000, from_ms, to_ms: from_ms + 60_000 }
    }

    #[tokio::test]
    async fn identical_tails_in_flight_run_once_and_a_later_one_runs_again() {
        let flights = Arc::new(TailFlights::default());
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ask = |k: TailKey| {
            let (flights, runs) = (flights.clone(), runs.clone());
            tokio::spawn(async move {
                flights
                    .share(k, || async move {
                        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        tokio::time::sleep(StdDuration::from_millis(100)).await;
                        Ok(Arc::new(Vec::new()))
                    })
                    .await
            })
        };
        let together: Vec<_> = (0..20).map(|_| ask(key(0))).chain([ask(key(1))]).collect();
        for t in together {
            t.await.unwrap().unwrap();
        }
        assert_eq!(
            runs.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "20 identical at once run once, another key once"
        );
        ask(key(0)).await.unwrap().unwrap();
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 3, "nothing is kept once the query is done");
        assert!(flights.0.lock().unwrap().is_empty());
    }
}
