//! What alert detectors learned (noise levels, day profiles, baselines), kept across a
//! collector restart: one JSON document per detector with the version of its format, in the
//! SQLite file of the alerts (table `detector_state`). This module does not read the JSON:
//! each detector owns its format, and one whose version changed starts afresh.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::params;

use crate::StoreError;
use crate::sqlite_file::SqliteFile;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS detector_state (
    name     TEXT PRIMARY KEY,
    version  INTEGER NOT NULL,
    json     TEXT NOT NULL,
    saved_ms INTEGER NOT NULL
);
";

/// One detector's saved state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorState {
    /// The detector's name in the rules file.
    pub name: String,
    /// The version of the detector's format when it was saved.
    pub version: u32,
    pub json: String,
    pub saved: DateTime<Utc>,
}

#[async_trait]
pub trait DetectorStateStore: Send + Sync {
    /// Replaces the saved state of each detector in `states`, all in one transaction.
    async fn save_states(&self, states: &[DetectorState]) -> Result<(), StoreError>;

    /// Every saved state.
    async fn load_states(&self) -> Result<Vec<DetectorState>, StoreError>;
}

/// Detector states in a SQLite file (the one that holds the alerts).
#[derive(Debug, Clone)]
pub struct SqliteDetectorStates {
    inner: Arc<SqliteFile>,
}

impl SqliteDetectorStates {
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(SqliteDetectorStates { inner: SqliteFile::open(path, SCHEMA).await? })
    }

    pub fn in_memory() -> Self {
        SqliteDetectorStates { inner: SqliteFile::in_memory(SCHEMA) }
    }
}

#[async_trait]
impl DetectorStateStore for SqliteDetectorStates {
    async fn save_states(&self, states: &[DetectorState]) -> Result<(), StoreError> {
        let states = states.to_vec();
        self.inner
            .call(move |c| {
                let tx = c.transaction()?;
                for s in &states {
                    tx.execute(
                        "INSERT INTO detector_state (name, version, json, saved_ms) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(name) DO UPDATE SET version = excluded.version, json = excluded.json,
                         saved_ms = excluded.saved_ms",
                        params![s.name, s.version, s.json, s.saved.timestamp_millis()],
                    )?;
                }
                tx.commit()
            })
            .await
    }

    async fn load_states(&self) -> Result<Vec<DetectorState>, StoreError> {
        self.inner
            .call(|c| {
                let mut stmt = c.prepare("SELECT name, version, json, saved_ms FROM detector_state ORDER BY name")?;
                let rows = stmt.query_map([], |r| {
                    Ok(DetectorState {
                        name: r.get(0)?,
                        version: r.get(1)?,
                        json: r.get(2)?,
                        saved: Utc.timestamp_millis_opt(r.get(3)?).single().unwrap_or(DateTime::<Utc>::MIN_UTC),
                    })
                })?;
                rows.collect()
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_saved_state_replaces_the_one_before() {
        let s = SqliteDetectorStates::in_memory();
        let at: DateTime<Utc> = "2026-04-01T00:00:00Z".parse().unwrap();
        let state = |name: &str, version, json: &str| DetectorState {
            name: name.into(),
            version,
            json: json.into(),
            saved: at,
        };
        s.save_states(&[state("a", 1, "{}"), state("b", 1, "[1]")]).await.unwrap();
        s.save_states(&[state("a", 2, "{\"x\":1}")]).await.unwrap();
        assert_eq!(s.load_states().await.unwrap(), [state("a", 2, "{\"x\":1}"), state("b", 1, "[1]")]);
    }
}
