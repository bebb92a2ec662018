//! Settings that people change at run time (e.g. the dashboard's open-data publication), as
//! named text values in SQLite beside the accounts: who changed each and when is kept with it.
//!
//! The store does not know what a setting means: callers keep a value as text (JSON, say) and
//! check it themselves. A value that was never set reads as `None`, so every setting has a
//! default in the code that reads it.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{OptionalExtension, params};

use crate::StoreError;
use crate::sqlite_file::SqliteFile;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS setting (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_ms INTEGER NOT NULL
);
";

/// A stored setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub changed_by: String,
    pub changed_at: DateTime<Utc>,
}

/// Settings by role.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The setting `name`, if it was ever set.
    async fn get(&self, name: &str) -> Result<Option<Setting>, StoreError>;

    /// Sets `name` to `value` (replacing what was there), recording who and when.
    async fn put(&self, name: &str, value: &str, by: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
}

/// Settings in a SQLite file (the embedded store's file, or the accounts file).
#[derive(Debug, Clone)]
pub struct SqliteSettings {
    inner: Arc<SqliteFile>,
}

impl SqliteSettings {
    /// Opens (creating if needed) the settings table in the SQLite file at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(SqliteSettings { inner: SqliteFile::open(path, SCHEMA).await? })
    }

    /// Empty settings in memory: every setting reads as its default.
    pub fn in_memory() -> Self {
        SqliteSettings { inner: SqliteFile::in_memory(SCHEMA) }
    }
}

#[async_trait]
impl SettingsStore for SqliteSettings {
    async fn get(&self, name: &str) -> Result<Option<Setting>, StoreError> {
        let name = name.to_owned();
        self.inner
            .call(move |c| {
                c.query_row("SELECT value, changed_by, changed_ms FROM setting WHERE name = ?1", params![name], |r| {
                    Ok(Setting {
                        value: r.get(0)?,
                        changed_by: r.get(1)?,
                        changed_at: Utc.timestamp_millis_opt(r.get(2)?).single().unwrap_or(DateTime::<Utc>::MIN_UTC),
                    })
                })
                .optional()
            })
            .await
    }

    async fn put(&self, name: &str, value: &str, by: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let (name, value, by) = (name.to_owned(), value.to_owned(), by.to_owned());
        self.inner
            .call(move |c| {
                c.execute(
                    "INSERT INTO setting (name, value, changed_by, changed_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(name) DO UPDATE SET value = excluded.value, changed_by = excluded.changed_by,
                     changed_ms = excluded.changed_ms",
                    params![name, value, by, at.timestamp_millis()],
                )
                .map(drop)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settings_default_to_unset_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        let s = SqliteSettings::open(&path).await.unwrap();
        assert_eq!(s.get("open_data").await.unwrap(), None);
        let at = Utc.timestamp_millis_opt(1_780_000_000_000).unwrap();
        s.put("open_data", "{\"enabled\":true}", "admin", at).await.unwrap();
        s.put("open_data", "{\"enabled\":false}", "kato", at).await.unwrap();
        drop(s);
        let s = SqliteSettings::open(&path).await.unwrap();
        let got = s.get("open_data").await.unwrap().unwrap();
        assert_eq!(got, Setting { value: "{\"enabled\":false}".into(), changed_by: "kato".into(), changed_at: at });
    }
}
