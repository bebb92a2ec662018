//! The planned-works register: work the utility itself schedules on a district or an asset
//! (hydrant flushing, valve work, pump maintenance), from when to when, who, and why.
//!
//! Alert detectors read it to tell planned work from an incident: water leaving a district
//! through a hydrant a crew opened looks exactly like a burst in flow and pressure, and a pump
//! stopped for maintenance shows the same status bits as a pump that tripped. Entries live in
//! the same SQLite file as the alerts (table `planned_work`). This module judges nothing: the
//! collector's detectors do.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, params};

use crate::StoreError;
use crate::sqlite_file::SqliteFile;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS planned_work (
    id         INTEGER PRIMARY KEY,
    target     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    from_ms    INTEGER NOT NULL,
    to_ms      INTEGER NOT NULL,
    by         TEXT NOT NULL,
    note       TEXT,
    created_ms INTEGER NOT NULL,
    CHECK (to_ms > from_ms)
);
CREATE INDEX IF NOT EXISTS planned_work_to ON planned_work(to_ms);
";

/// The longest planned window accepted: a register entry that silences burst detection in a
/// district for months is a typo, not a plan.
pub const MAX_WORK_DAYS: i64 = 31;

/// What kind of work is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkKind {
    /// Hydrant flushing: water leaves the district at a hydrant.
    Flushing,
    /// Valve operation or other work on mains: flows and pressures change.
    ValveWork,
    /// A pump stopped or tested for maintenance: its status bits are not a failure.
    PumpMaintenance,
    /// Anything else worth knowing; no detector acts on it.
    Other,
}

impl WorkKind {
    pub const ALL: [WorkKind; 4] =
        [WorkKind::Flushing, WorkKind::ValveWork, WorkKind::PumpMaintenance, WorkKind::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkKind::Flushing => "flushing",
            WorkKind::ValveWork => "valve_work",
            WorkKind::PumpMaintenance => "pump_maintenance",
            WorkKind::Other => "other",
        }
    }

    /// Work that changes a district's inflow and pressure the way a burst does.
    pub fn moves_water(self) -> bool {
        matches!(self, WorkKind::Flushing | WorkKind::ValveWork)
    }
}

impl std::fmt::Display for WorkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for WorkKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let names: Vec<_> = WorkKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown kind of work {s:?}: use one of {}", names.join(", "))
        })
    }
}

/// One entry of the register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedWork {
    pub id: i64,
    /// The district or asset the work is on, as alerts name it (`dma03`, `ps01`).
    pub target: String,
    pub kind: WorkKind,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Who planned it.
    pub by: String,
    pub note: Option<String>,
    pub created: DateTime<Utc>,
}

impl PlannedWork {
    /// Whether the work is in progress at `t` (its window is `[from, to)`).
    pub fn covers(&self, t: DateTime<Utc>) -> bool {
        self.from <= t && t < self.to
    }
}

/// An entry to add; [`NewWork::check`] is the one place its fields are validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWork {
    pub target: String,
    pub kind: WorkKind,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub by: String,
    pub note: Option<String>,
}

impl NewWork {
    /// Checks the fields; the error names the field and the bad value.
    pub fn check(&self) -> Result<(), StoreError> {
        let bad = |field: &'static str, value: String, reason: &str| {
            Err(StoreError::InvalidWork { field, value, reason: reason.to_owned() })
        };
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        };
        if !name_ok(&self.target) {
            return bad(
                "target",
                self.target.clone(),
                "give the district or asset as alerts name it (1-64 letters, digits, _ - . /)",
            );
        }
        if self.by.trim().is_empty() || self.by.len() > 100 {
            return bad("by", self.by.clone(), "say who planned the work (1-100 characters)");
        }
        if self.to <= self.from {
            return bad("to", self.to.to_rfc3339(), "must be after from");
        }
        if self.to - self.from > chrono::Duration::days(MAX_WORK_DAYS) {
            return bad(
                "to",
                self.to.to_rfc3339(),
                &format!("the window is longer than {MAX_WORK_DAYS} days; enter long works in parts"),
            );
        }
        if self.note.as_ref().is_some_and(|n| n.len() > 1000) {
            return bad("note", format!("{} characters", self.note.as_ref().map_or(0, String::len)), "at most 1000");
        }
        Ok(())
    }
}

/// The register by role.
#[async_trait]
pub trait WorksStore: Send + Sync {
    /// Adds an entry after [`NewWork::check`]; returns it with its id.
    async fn add_work(&self, new: &NewWork, now: DateTime<Utc>) -> Result<PlannedWork, StoreError>;

    /// Entries whose window overlaps `[from, to)`, by start time.
    async fn works(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<PlannedWork>, StoreError>;

    /// Removes an entry (planned by mistake, or cancelled); false when there was none.
    async fn remove_work(&self, id: i64) -> Result<bool, StoreError>;
}

/// The register in a SQLite file (the one that holds the alerts).
#[derive(Debug, Clone)]
pub struct SqliteWorks {
    inner: Arc<SqliteFile>,
}

fn millis_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn work_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PlannedWork> {
    let kind: String = row.get(2)?;
    Ok(PlannedWork {
        id: row.get(0)?,
        target: row.get(1)?,
        kind: kind
            .parse()
            .map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into()))?,
        from: millis_to_time(row.get(3)?),
        to: millis_to_time(row.get(4)?),
        by: row.get(5)?,
        note: row.get(6)?,
        created: millis_to_time(row.get(7)?),
    })
}

impl SqliteWorks {
    /// Opens (creating if needed) the register table in the SQLite file at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(SqliteWorks { inner: SqliteFile::open(path, SCHEMA).await? })
    }

    /// An empty register in memory (tests).
    pub fn in_memory() -> Self {
        SqliteWorks { inner: SqliteFile::in_memory(SCHEMA) }
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.inner.call(f).await
    }
}

#[async_trait]
impl WorksStore for SqliteWorks {
    async fn add_work(&self, new: &NewWork, now: DateTime<Utc>) -> Result<PlannedWork, StoreError> {
        new.check()?;
        let n = new.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO planned_work (target, kind, from_ms, to_ms, by, note, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    n.target,
                    n.kind.as_str(),
                    n.from.timestamp_millis(),
                    n.to.timestamp_millis(),
                    n.by,
                    n.note,
                    now.timestamp_millis()
                ],
            )?;
            let id = c.last_insert_rowid();
            c.query_row(
                "SELECT id, target, kind, from_ms, to_ms, by, note, created_ms FROM planned_work WHERE id = ?1",
                params![id],
                work_from_row,
            )
        })
        .await
    }

    async fn works(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<PlannedWork>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, target, kind, from_ms, to_ms, by, note, created_ms FROM planned_work
                 WHERE to_ms > ?1 AND from_ms < ?2 ORDER BY from_ms, id",
            )?;
            let rows = stmt.query_map(params![from.timestamp_millis(), to.timestamp_millis()], work_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn remove_work(&self, id: i64) -> Result<bool, StoreError> {
        self.call(move |c| Ok(c.execute("DELETE FROM planned_work WHERE id = ?1", params![id])? == 1)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn flushing(target: &str, from: &str, to: &str) -> NewWork {
        NewWork {
            target: target.into(),
            kind: WorkKind::Flushing,
            from: t(from),
            to: t(to),
            by: "tanaka".into(),
            note: Some("annual programme".into()),
        }
    }

    #[tokio::test]
    async fn entries_are_found_by_overlap_and_removed() {
        let w = SqliteWorks::in_memory();
        let now = t("2026-04-01T00:00:00Z");
        let a = w.add_work(&flushing("dma01", "2026-04-01T01:00:00Z", "2026-04-01T02:00:00Z"), now).await.unwrap();
        let b = w.add_work(&flushing("dma02", "2026-04-01T03:00:00Z", "2026-04-01T04:00:00Z"), now).await.unwrap();
        assert_eq!(a.target, "dma01");
        assert_eq!(a.note.as_deref(), Some("annual programme"));
        let ids = |v: Vec<PlannedWork>| v.into_iter().map(|w| w.id).collect::<Vec<_>>();
        assert_eq!(ids(w.works(t("2026-04-01T00:00:00Z"), t("2026-04-02T00:00:00Z")).await.unwrap()), [a.id, b.id]);
        // The window is half open: ending at 02:00 is not in progress at 02:00.
        assert_eq!(
            ids(w.works(t("2026-04-01T02:00:00Z"), t("2026-04-01T03:00:00Z")).await.unwrap()),
            Vec::<i64>::new()
        );
        assert_eq!(ids(w.works(t("2026-04-01T01:59:00Z"), t("2026-04-01T03:01:00Z")).await.unwrap()), [a.id, b.id]);
        assert!(a.covers(t("2026-04-01T01:00:00Z")) && !a.covers(t("2026-04-01T02:00:00Z")));
        assert!(w.remove_work(a.id).await.unwrap());
        assert!(!w.remove_work(a.id).await.unwrap(), "already gone");
        assert_eq!(ids(w.works(t("2026-04-01T00:00:00Z"), t("2026-04-02T00:00:00Z")).await.unwrap()), [b.id]);
    }

    #[track_caller]
    fn check_rejected(new: NewWork, field: &str, says: &str) {
        let e = new.check().unwrap_err().to_string();
        assert!(e.contains(&format!("field `{field}`")) && e.contains(says), "{e}");
    }

    #[tokio::test]
    async fn bad_entries_are_refused_with_the_field_named_and_nothing_stored() {
        let good = flushing("dma01", "2026-04-01T01:00:00Z", "2026-04-01T02:00:00Z");
        check_rejected(NewWork { target: "dma 01".into(), ..good.clone() }, "target", "\"dma 01\"");
        check_rejected(NewWork { target: String::new(), ..good.clone() }, "target", "district or asset");
        check_rejected(NewWork { by: " ".into(), ..good.clone() }, "by", "who planned");
        check_rejected(NewWork { to: good.from, ..good.clone() }, "to", "after from");
        check_rejected(NewWork { to: good.from + chrono::Duration::days(40), ..good.clone() }, "to", "31 days");
        let w = SqliteWorks::in_memory();
        let bad = NewWork { to: good.from - chrono::Duration::hours(1), ..good };
        assert!(w.add_work(&bad, t("2026-04-01T00:00:00Z")).await.is_err());
        assert_eq!(
            w.works(t("2026-01-01T00:00:00Z"), t("2027-01-01T00:00:00Z")).await.unwrap(),
            Vec::<PlannedWork>::new()
        );
        assert_eq!("valve_work".parse::<WorkKind>(), Ok(WorkKind::ValveWork));
        assert!("hydrant".parse::<WorkKind>().unwrap_err().contains("flushing, valve_work, pump_maintenance, other"));
    }
}
