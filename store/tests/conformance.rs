//! One conformance suite, run against both backends.
//!
//! Every case in `cases` runs once on a fresh SQLite file and once on a fresh database of a
//! real InfluxDB server, whose base URL `scripts/test` exports as `MIZUMORI_TEST_INFLUX_URL`.
//! Without that variable the InfluxDB cases are skipped with a message locally, and fail when
//! `CI=true`: CI must never pass by skipping the server.

use std::sync::Arc;

use store::{InfluxAuth, InfluxStore, SqliteStore, Store};

#[path = "conformance/cases.rs"]
mod cases;

struct Harness {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    influx: Option<Arc<InfluxStore>>,
}

impl Harness {
    /// Drops the test's InfluxDB database. Not done in `Drop`: the HTTP client belongs to the
    /// test's runtime. A case that panics leaves its database in the throwaway server.
    async fn cleanup(self) {
        if let Some(influx) = &self.influx {
            influx.drop_database().await.unwrap();
        }
    }
}

async fn sqlite_store() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("conformance.sqlite")).await.unwrap();
    Harness { store: Arc::new(store), _dir: Some(dir), influx: None }
}

async fn influx_store(case: &str) -> Option<Harness> {
    let Ok(base) = std::env::var("MIZUMORI_TEST_INFLUX_URL") else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but MIZUMORI_TEST_INFLUX_URL is not set: scripts/test starts InfluxDB and sets it");
        }
        eprintln!("skipping InfluxDB case {case}: MIZUMORI_TEST_INFLUX_URL is not set (run scripts/test)");
        return None;
    };
    let database = format!("conf_{case}_{}", std::process::id());
    let store = Arc::new(InfluxStore::connect(&base, &database, InfluxAuth::none()).await.unwrap());
    Some(Harness { store: store.clone(), _dir: None, influx: Some(store) })
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let h = super::sqlite_store().await;
                    super::cases::$case(&*h.store).await;
                }
            )*
        }
        mod influx {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(h) = super::influx_store(stringify!($case)).await else { return };
                    super::cases::$case(&*h.store).await;
                    h.cleanup().await;
                }
            )*
        }
    };
}

conformance!(
    latest_is_newest_per_series,
    same_time_overwrites,
    text_with_quotes_and_backslashes_round_trips,
    failed_reads_keep_their_quality_without_a_value,
    nan_is_rejected_and_nothing_of_the_batch_is_written,
    line_breaks_in_text_are_rejected_and_nothing_is_written,
    unsafe_names_cannot_reach_the_store,
    windowed_aggregation_uses_good_values_only,
    range_is_half_open_ordered_and_limited,
    series_lists_every_device_and_point,
    health_answers,
);
