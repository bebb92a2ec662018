//! The embedded store: one SQLite file in WAL mode.
//!
//! rusqlite is synchronous, so every call runs on tokio's blocking pool. There is one
//! connection for writes and one for reads: WAL lets the dashboard read while the collector
//! writes, and a single writer is all SQLite allows anyway.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use model::{DeviceId, PointName, Quality, Reading, Value};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{RangeQuery, ReadingSink, ReadingSource, Store, StoreError, Window, WindowQuery, validate};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS series (
    id     INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    point  TEXT NOT NULL,
    UNIQUE (device, point)
);
CREATE TABLE IF NOT EXISTS reading (
    series_id INTEGER NOT NULL REFERENCES series(id),
    ts_ms     INTEGER NOT NULL,
    value     REAL,
    text      TEXT,
    quality   TEXT NOT NULL,
    PRIMARY KEY (series_id, ts_ms)
) WITHOUT ROWID;
";

/// A store in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    writer: Mutex<Writer>,
    reader: Mutex<Connection>,
}

#[derive(Debug)]
struct Writer {
    conn: Connection,
    /// Series ids already looked up, so a write does not query `series` per reading; keyed by
    /// device then point so a lookup borrows the names instead of building a key.
    series_ids: HashMap<DeviceId, HashMap<PointName, i64>>,
}

fn millis_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its parent directory.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(path)).await.expect("open task does not panic")
    }

    fn open_blocking(path: PathBuf) -> Result<Self, StoreError> {
        let err = |source| StoreError::Sqlite { path: path.display().to_string(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(rusqlite::Error::InvalidPath(PathBuf::from(format!("{}: {e}", dir.display())))))?;
        }
        let writer = Connection::open(&path).map_err(err)?;
        // WAL: readers do not block the writer. synchronous=NORMAL in WAL mode never corrupts
        // the file; a power cut can lose the last transactions, which the collector's durable
        // buffer still holds until it sees them committed.
        // The cache and checkpoint sizes come from a profile of the collector at 50,000 readings/s
        // (BENCHMARKS.md): with SQLite's defaults (2 MB cache, a checkpoint every 4 MB of WAL)
        // a batch of 50,000 rows spilled its cache mid-transaction and checkpointed the same
        // index pages over and over, which took half of the writer's time.
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;
                 PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 16384;",
            )
            .map_err(err)?;
        writer.execute_batch(SCHEMA).map_err(err)?;
        let reader = Connection::open(&path).map_err(err)?;
        reader.execute_batch("PRAGMA busy_timeout = 5000;").map_err(err)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(Writer { conn: writer, series_ids: HashMap::new() }),
                reader: Mutex::new(reader),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn sqlite_err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite { path: self.inner.path.display().to_string(), source }
    }

    /// Runs `f` on the read connection on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = this.inner.reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn).map_err(this.sqlite_err())
        })
        .await
        .expect("read task does not panic")
    }

    fn write_blocking(&self, batch: &[Reading]) -> Result<(), StoreError> {
        let mut writer = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        let Writer { conn, series_ids } = &mut *writer;
        let tx = conn.transaction().map_err(self.sqlite_err())?;
        // Ids learnt inside this transaction are only cached once it commits.
        let mut new_ids = Vec::new();
        {
            let mut find = tx
                .prepare_cached("SELECT id FROM series WHERE device = ?1 AND point = ?2")
                .map_err(self.sqlite_err())?;
            let mut create =
                tx.prepare_cached("INSERT INTO series (device, point) VALUES (?1, ?2)").map_err(self.sqlite_err())?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO reading (series_id, ts_ms, value, text, quality) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(self.sqlite_err())?;
            let mut local: HashMap<(DeviceId, PointName), i64> = HashMap::new();
            for r in batch {
                let cached = series_ids.get(r.device.as_str()).and_then(|m| m.get(r.point.as_str()));
                let id = match cached.or_else(|| local.get(&(r.device.clone(), r.point.clone()))) {
                    Some(id) => *id,
                    None => {
                        let id = match find
                            .query_row(params![r.device.as_str(), r.point.as_str()], |row| row.get::<_, i64>(0))
                            .optional()
                            .map_err(self.sqlite_err())?
                        {
                            Some(id) => id,
                            None => {
                                create
                                    .execute(params![r.device.as_str(), r.point.as_str()])
                                    .map_err(self.sqlite_err())?;
                                tx.last_insert_rowid()
                            }
                        };
                        let key = (r.device.clone(), r.point.clone());
                        local.insert(key.clone(), id);
                        new_ids.push((key, id));
                        id
                    }
                };
                let (value, text) = match &r.value {
                    Value::Number(v) => (Some(*v), None),
                    Value::Text(t) => (None, Some(t.as_str())),
                    Value::Absent => (None, None),
                };
                insert
                    .execute(params![id, r.time.timestamp_millis(), value, text, r.quality.as_text()])
                    .map_err(self.sqlite_err())?;
            }
        }
        tx.commit().map_err(self.sqlite_err())?;
        for ((device, point), id) in new_ids {
            series_ids.entry(device).or_default().insert(point, id);
        }
        Ok(())
    }
}

fn reading_from_row(
    device: DeviceId,
    point: PointName,
    row: &rusqlite::Row<'_>,
    first: usize,
) -> rusqlite::Result<Reading> {
    let ts: i64 = row.get(first)?;
    let value: Option<f64> = row.get(first + 1)?;
    let text: Option<String> = row.get(first + 2)?;
    let quality: String = row.get(first + 3)?;
    let quality = quality
        .parse::<Quality>()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(first + 3, rusqlite::types::Type::Text, Box::new(e)))?;
    let value = match (value, text) {
        (Some(v), _) => Value::Number(v),
        (None, Some(t)) => Value::Text(t),
        (None, None) => Value::Absent,
    };
    Ok(Reading { device, point, time: millis_to_time(ts), value, quality })
}

fn name_err<E: std::error::Error + Send + Sync + 'static>(col: usize) -> impl Fn(E) -> rusqlite::Error {
    move |e| rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
}

#[async_trait]
impl ReadingSink for SqliteStore {
    async fn write(&self, batch: &[Reading]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        validate::batch(batch)?;
        let this = self.clone();
        let batch = batch.to_vec();
        tokio::task::spawn_blocking(move || this.write_blocking(&batch)).await.expect("write task does not panic")
    }
}

#[async_trait]
impl ReadingSource for SqliteStore {
    async fn latest(&self) -> Result<Vec<Reading>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT s.device, s.point, r.ts_ms, r.value, r.text, r.quality
                 FROM series s JOIN reading r ON r.series_id = s.id
                  AND r.ts_ms = (SELECT max(ts_ms) FROM reading WHERE series_id = s.id)
                 ORDER BY s.device, s.point",
            )?;
            let rows = stmt.query_map([], |row| {
                let device = DeviceId::new(row.get::<_, String>(0)?).map_err(name_err(0))?;
                let point = PointName::new(row.get::<_, String>(1)?).map_err(name_err(1))?;
                reading_from_row(device, point, row, 2)
            })?;
            rows.collect()
        })
        .await
    }

    async fn aggregate(&self, query: &WindowQuery) -> Result<Vec<Window>, StoreError> {
        if query.window_ms <= 0 {
            return Err(StoreError::Protocol { backend: "SQLite".into(), message: "window must be positive".into() });
        }
        let q = query.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT g.b, g.mean, g.mn, g.mx, r.value, g.cnt FROM (
                    SELECT (r.ts_ms / ?3) * ?3 AS b, avg(r.value) AS mean, min(r.value) AS mn, max(r.value) AS mx,
                           count(*) AS cnt, max(r.ts_ms) AS last_ts
                    FROM reading r JOIN series s ON s.id = r.series_id
                    WHERE s.device = ?1 AND s.point = ?2 AND r.ts_ms >= ?4 AND r.ts_ms < ?5
                      AND r.quality = 'good' AND r.value IS NOT NULL
                    GROUP BY b) g
                 JOIN series s ON s.device = ?1 AND s.point = ?2
                 JOIN reading r ON r.series_id = s.id AND r.ts_ms = g.last_ts
                 ORDER BY g.b",
            )?;
            let rows = stmt.query_map(
                params![
                    q.device.as_str(),
                    q.point.as_str(),
                    q.window_ms,
                    q.from.timestamp_millis(),
                    q.to.timestamp_millis()
                ],
                |row| {
                    Ok(Window {
                        start: millis_to_time(row.get(0)?),
                        mean: row.get(1)?,
                        min: row.get(2)?,
                        max: row.get(3)?,
                        last: row.get(4)?,
                        count: row.get::<_, i64>(5)? as u64,
                    })
                },
            )?;
            rows.collect()
        })
        .await
    }

    async fn range(&self, query: &RangeQuery) -> Result<Vec<Reading>, StoreError> {
        let q = query.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.ts_ms, r.value, r.text, r.quality FROM reading r JOIN series s ON s.id = r.series_id
                 WHERE s.device = ?1 AND s.point = ?2 AND r.ts_ms >= ?3 AND r.ts_ms < ?4
                 ORDER BY r.ts_ms LIMIT ?5",
            )?;
            let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
            let rows = stmt.query_map(
                params![q.device.as_str(), q.point.as_str(), q.from.timestamp_millis(), q.to.timestamp_millis(), limit],
                |row| reading_from_row(q.device.clone(), q.point.clone(), row, 0),
            )?;
            rows.collect()
        })
        .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite {}", self.inner.path.display())
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(()))).await
    }
}
