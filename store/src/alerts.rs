//! Alerts and their lifecycle, in SQLite: raise-or-update, acknowledge, resolve, shelve,
//! query, and an outbox of state changes that notifiers read in order.
//!
//! Alerts live in the embedded SQLite file (tables `alert`, `alert_change`, `alert_cursor`),
//! also when readings live in InfluxDB: then in the same SQLite file as the accounts. A
//! time-series database has no updates in place, and an alert's life is a row that changes.
//!
//! Every state change appends a row to `alert_change` in the same transaction, so a notifier
//! that remembers the last change it delivered (`alert_cursor`) sends exactly one message per
//! change, across restarts, whichever process (collector or CLI) made the change. This module
//! evaluates no rules and sends nothing: the collector does.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use model::{Alert, AlertState, DeviceId, NewAlert, PointName, Severity};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::StoreError;
use crate::sqlite_file::SqliteFile;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alert (
    id               INTEGER PRIMARY KEY,
    rule             TEXT NOT NULL,
    asset            TEXT NOT NULL,
    device           TEXT NOT NULL,
    point            TEXT NOT NULL,
    severity         TEXT NOT NULL,
    state            TEXT NOT NULL,
    first_ms         INTEGER NOT NULL,
    last_ms          INTEGER NOT NULL,
    count            INTEGER NOT NULL,
    value            REAL,
    message_ja       TEXT NOT NULL,
    message_en       TEXT NOT NULL,
    ack_by           TEXT,
    ack_ms           INTEGER,
    ack_comment      TEXT,
    resolved_by      TEXT,
    resolved_ms      INTEGER,
    resolve_note     TEXT,
    shelved_until_ms INTEGER
);
-- At most one active alert per rule, device and point: a repeat must update it.
CREATE UNIQUE INDEX IF NOT EXISTS alert_active ON alert(rule, device, point) WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS alert_last ON alert(last_ms);
CREATE TABLE IF NOT EXISTS alert_change (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL REFERENCES alert(id),
    state    TEXT NOT NULL,
    at_ms    INTEGER NOT NULL,
    by       TEXT,
    note     TEXT
);
CREATE TABLE IF NOT EXISTS alert_cursor (
    consumer TEXT PRIMARY KEY,
    seq      INTEGER NOT NULL
);
";

const COLUMNS: &str = "id, rule, asset, device, point, severity, state, first_ms, last_ms, count, value, message_ja, \
     message_en, ack_by, ack_ms, ack_comment, resolved_by, resolved_ms, resolve_note, shelved_until_ms";

/// What `raise` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    pub alert: Alert,
    /// True when a new alert was made; false when an active one was updated (a repeat).
    pub new: bool,
}

/// How an alert is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The rule saw the condition clear for long enough.
    Auto,
    /// A person closed it.
    Manual { by: String, note: Option<String> },
}

/// A query over alerts; every filter is optional. Time filters select alerts active at some
/// moment of `[from, to)`: raised before `to` and last seen at or after `from`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertQuery {
    pub state: Option<AlertState>,
    pub severity: Option<Severity>,
    pub asset: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// At most this many, newest first; 0 means no limit.
    pub limit: usize,
}

/// One state change of an alert, as the notifiers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertChange {
    /// Position in the outbox; increases with every change.
    pub seq: i64,
    /// The state the alert entered.
    pub state: AlertState,
    pub at: DateTime<Utc>,
    pub by: Option<String>,
    pub note: Option<String>,
    /// The alert as it is now (its state may have moved on since this change).
    pub alert: Alert,
}

/// Alerts by role.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Raises a new alert, or updates the active alert of the same rule, device and point
    /// (last seen, count, value, severity, message). A shelved alert whose time is up opens
    /// again.
    async fn raise(&self, new: &NewAlert) -> Result<Raised, StoreError>;

    /// Open (or shelved) → acknowledged.
    async fn acknowledge(&self, id: i64, by: &str, comment: &str, at: DateTime<Utc>) -> Result<Alert, StoreError>;

    /// Any active state → resolved.
    async fn resolve(&self, id: i64, how: &Resolution, at: DateTime<Utc>) -> Result<Alert, StoreError>;

    /// Open or acknowledged → shelved until `until`.
    async fn shelve(&self, id: i64, until: DateTime<Utc>, by: &str, at: DateTime<Utc>) -> Result<Alert, StoreError>;

    /// Shelved alerts whose time is up at `now` → open; returns them.
    async fn unshelve_expired(&self, now: DateTime<Utc>) -> Result<Vec<Alert>, StoreError>;

    async fn alert(&self, id: i64) -> Result<Option<Alert>, StoreError>;

    /// Alerts matching `query`, newest (by last seen) first.
    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>, StoreError>;

    /// Every alert that is not resolved.
    async fn active(&self) -> Result<Vec<Alert>, StoreError> {
        let all = self.alerts(&AlertQuery::default()).await?;
        Ok(all.into_iter().filter(|a| a.state.is_active()).collect())
    }

    /// How many alerts are active (not resolved), by severity; severities without any are
    /// left out. For dashboards that show the counts on every page.
    async fn active_by_severity(&self) -> Result<Vec<(Severity, u64)>, StoreError> {
        let mut counts: Vec<(Severity, u64)> = Vec::new();
        for a in self.active().await? {
            match counts.iter_mut().find(|(s, _)| *s == a.severity) {
                Some(c) => c.1 += 1,
                None => counts.push((a.severity, 1)),
            }
        }
        Ok(counts)
    }

    /// State changes after `seq`, oldest first, at most `limit`.
    async fn changes_after(&self, seq: i64, limit: usize) -> Result<Vec<AlertChange>, StoreError>;

    /// The newest change's `seq` (0 when there is none).
    async fn last_change(&self) -> Result<i64, StoreError>;

    /// The last change `consumer` delivered, if it ever recorded one.
    async fn cursor(&self, consumer: &str) -> Result<Option<i64>, StoreError>;

    async fn set_cursor(&self, consumer: &str, seq: i64) -> Result<(), StoreError>;
}

/// Alerts in a SQLite file (the embedded store's file, or the accounts file).
#[derive(Debug, Clone)]
pub struct SqliteAlerts {
    inner: Arc<SqliteFile>,
}

fn millis_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn conversion(col: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
}

fn alert_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Alert> {
    let time =
        |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> { Ok(row.get::<_, Option<i64>>(i)?.map(millis_to_time)) };
    Ok(Alert {
        id: row.get(0)?,
        rule: row.get(1)?,
        asset: row.get(2)?,
        device: DeviceId::new(row.get::<_, String>(3)?).map_err(|e| conversion(3, e))?,
        point: PointName::new(row.get::<_, String>(4)?).map_err(|e| conversion(4, e))?,
        severity: row.get::<_, String>(5)?.parse().map_err(|e| conversion(5, e))?,
        state: row.get::<_, String>(6)?.parse().map_err(|e| conversion(6, e))?,
        first_seen: millis_to_time(row.get(7)?),
        last_seen: millis_to_time(row.get(8)?),
        count: row.get(9)?,
        value: row.get(10)?,
        message_ja: row.get(11)?,
        message_en: row.get(12)?,
        acknowledged_by: row.get(13)?,
        acknowledged_at: time(14)?,
        ack_comment: row.get(15)?,
        resolved_by: row.get(16)?,
        resolved_at: time(17)?,
        resolve_note: row.get(18)?,
        shelved_until: time(19)?,
    })
}

fn get(tx: &Connection, id: i64) -> rusqlite::Result<Option<Alert>> {
    tx.query_row(&format!("SELECT {COLUMNS} FROM alert WHERE id = ?1"), params![id], alert_from_row).optional()
}

fn record(
    tx: &Transaction<'_>,
    id: i64,
    state: AlertState,
    at: DateTime<Utc>,
    by: Option<&str>,
    note: Option<&str>,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO alert_change (alert_id, state, at_ms, by, note) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, state.as_str(), at.timestamp_millis(), by, note],
    )?;
    Ok(())
}

/// One requested state change: what it is called (for errors), the states it may start from,
/// the state it leads to, and who asked, when and why.
struct Step<'a> {
    action: &'static str,
    allowed: &'a [AlertState],
    to: AlertState,
    at: DateTime<Utc>,
    by: Option<&'a str>,
    note: Option<&'a str>,
}

/// Runs a state transition: finds alert `id`, checks that `step.allowed` permits its state,
/// applies `update`, records the change; all in one transaction.
fn transition(
    c: &mut Connection,
    id: i64,
    step: Step<'_>,
    update: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<()>,
) -> rusqlite::Result<Result<Alert, StoreError>> {
    let Step { action, allowed, to, at, by, note } = step;
    let tx = c.transaction()?;
    let Some(alert) = get(&tx, id)? else {
        return Ok(Err(StoreError::NoSuchAlert { id }));
    };
    if !allowed.contains(&alert.state) {
        return Ok(Err(StoreError::AlertTransition { id, state: alert.state.as_str(), action }));
    }
    update(&tx)?;
    record(&tx, id, to, at, by, note)?;
    let alert = get(&tx, id)?.expect("the row updated in this transaction exists");
    tx.commit()?;
    Ok(Ok(alert))
}

impl SqliteAlerts {
    /// Opens (creating if needed) the alert tables in the SQLite file at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(SqliteAlerts { inner: SqliteFile::open(path, SCHEMA).await? })
    }

    /// An empty alert store in memory. The dashboard starts with this until it is given the
    /// real one, so its pages work (and show no alerts) without alerting set up.
    pub fn in_memory() -> Self {
        SqliteAlerts { inner: SqliteFile::in_memory(SCHEMA) }
    }

    pub fn path(&self) -> &Path {
        self.inner.path()
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.inner.call(f).await
    }
}

#[async_trait]
impl AlertStore for SqliteAlerts {
    async fn raise(&self, new: &NewAlert) -> Result<Raised, StoreError> {
        let n = new.clone();
        self.call(move |c| {
            let tx = c.transaction()?;
            let at = n.at.timestamp_millis();
            let active: Option<Alert> = tx
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM alert WHERE rule = ?1 AND device = ?2 AND point = ?3 AND state <> 'resolved'"
                    ),
                    params![n.rule, n.device.as_str(), n.point.as_str()],
                    alert_from_row,
                )
                .optional()?;
            let (id, is_new) = match active {
                Some(a) => {
                    tx.execute(
                        "UPDATE alert SET last_ms = max(last_ms, ?2), count = count + 1, value = ?3, severity = ?4,
                         message_ja = ?5, message_en = ?6 WHERE id = ?1",
                        params![a.id, at, n.value, n.severity.as_str(), n.message_ja, n.message_en],
                    )?;
                    if a.state == AlertState::Shelved && a.shelved_until.is_none_or(|u| u <= n.at) {
                        tx.execute(
                            "UPDATE alert SET state = 'open', shelved_until_ms = NULL WHERE id = ?1",
                            params![a.id],
                        )?;
                        record(&tx, a.id, AlertState::Open, n.at, None, Some("shelving ended"))?;
                    }
                    (a.id, false)
                }
                None => {
                    tx.execute(
                        "INSERT INTO alert (rule, asset, device, point, severity, state, first_ms, last_ms, count,
                         value, message_ja, message_en) VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?6, 1, ?7, ?8, ?9)",
                        params![
                            n.rule,
                            n.asset,
                            n.device.as_str(),
                            n.point.as_str(),
                            n.severity.as_str(),
                            at,
                            n.value,
                            n.message_ja,
                            n.message_en
                        ],
                    )?;
                    let id = tx.last_insert_rowid();
                    record(&tx, id, AlertState::Open, n.at, None, None)?;
                    (id, true)
                }
            };
            let alert = get(&tx, id)?.expect("the row written in this transaction exists");
            tx.commit()?;
            Ok(Raised { alert, new: is_new })
        })
        .await
    }

    async fn acknowledge(&self, id: i64, by: &str, comment: &str, at: DateTime<Utc>) -> Result<Alert, StoreError> {
        let (by, comment) = (by.to_owned(), comment.to_owned());
        self.call(move |c| {
            use AlertState::*;
            transition(
                c,
                id,
                Step {
                    action: "acknowledge",
                    allowed: &[Open, Shelved],
                    to: Acknowledged,
                    at,
                    by: Some(&by),
                    note: Some(&comment),
                },
                |tx| {
                    tx.execute(
                        "UPDATE alert SET state = 'acknowledged', ack_by = ?2, ack_ms = ?3, ack_comment = ?4,
                     shelved_until_ms = NULL WHERE id = ?1",
                        params![id, by, at.timestamp_millis(), comment],
                    )
                    .map(drop)
                },
            )
        })
        .await?
    }

    async fn resolve(&self, id: i64, how: &Resolution, at: DateTime<Utc>) -> Result<Alert, StoreError> {
        let (by, note) = match how {
            Resolution::Auto => (None, None),
            Resolution::Manual { by, note } => (Some(by.clone()), note.clone()),
        };
        self.call(move |c| {
            use AlertState::*;
            let (b, n) = (by.clone(), note.clone());
            transition(
                c,
                id,
                Step {
                    action: "resolve",
                    allowed: &[Open, Acknowledged, Shelved],
                    to: Resolved,
                    at,
                    by: by.as_deref(),
                    note: note.as_deref(),
                },
                |tx| {
                    tx.execute(
                        "UPDATE alert SET state = 'resolved', resolved_by = ?2, resolved_ms = ?3, resolve_note = ?4,
                     shelved_until_ms = NULL WHERE id = ?1",
                        params![id, b, at.timestamp_millis(), n],
                    )
                    .map(drop)
                },
            )
        })
        .await?
    }

    async fn shelve(&self, id: i64, until: DateTime<Utc>, by: &str, at: DateTime<Utc>) -> Result<Alert, StoreError> {
        let by = by.to_owned();
        let note = format!("until {}", until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        self.call(move |c| {
            use AlertState::*;
            transition(
                c,
                id,
                Step {
                    action: "shelve",
                    allowed: &[Open, Acknowledged],
                    to: Shelved,
                    at,
                    by: Some(&by),
                    note: Some(&note),
                },
                |tx| {
                    tx.execute(
                        "UPDATE alert SET state = 'shelved', shelved_until_ms = ?2 WHERE id = ?1",
                        params![id, until.timestamp_millis()],
                    )
                    .map(drop)
                },
            )
        })
        .await?
    }

    async fn unshelve_expired(&self, now: DateTime<Utc>) -> Result<Vec<Alert>, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let ids: Vec<i64> = {
                let mut stmt =
                    tx.prepare("SELECT id FROM alert WHERE state = 'shelved' AND shelved_until_ms <= ?1 ORDER BY id")?;
                stmt.query_map(params![now.timestamp_millis()], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
            };
            let mut out = Vec::new();
            for id in ids {
                tx.execute("UPDATE alert SET state = 'open', shelved_until_ms = NULL WHERE id = ?1", params![id])?;
                record(&tx, id, AlertState::Open, now, None, Some("shelving ended"))?;
                out.extend(get(&tx, id)?);
            }
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn alert(&self, id: i64) -> Result<Option<Alert>, StoreError> {
        self.call(move |c| get(c, id)).await
    }

    async fn alerts(&self, q: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
        let q = q.clone();
        self.call(move |c| {
            // Every filter is a bound parameter; a NULL parameter disables its filter.
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM alert
                 WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR severity = ?2) AND (?3 IS NULL OR asset = ?3)
                   AND (?4 IS NULL OR last_ms >= ?4) AND (?5 IS NULL OR first_ms < ?5)
                 ORDER BY last_ms DESC, id DESC LIMIT ?6"
            ))?;
            let limit = if q.limit == 0 { -1 } else { q.limit as i64 };
            let rows = stmt.query_map(
                params![
                    q.state.map(AlertState::as_str),
                    q.severity.map(Severity::as_str),
                    q.asset,
                    q.from.map(|t| t.timestamp_millis()),
                    q.to.map(|t| t.timestamp_millis()),
                    limit
                ],
                alert_from_row,
            )?;
            rows.collect()
        })
        .await
    }

    async fn active_by_severity(&self) -> Result<Vec<(Severity, u64)>, StoreError> {
        self.call(|c| {
            // One grouped count, prepared once: dashboards ask on every page view.
            let mut stmt =
                c.prepare_cached("SELECT severity, count(*) FROM alert WHERE state <> 'resolved' GROUP BY severity")?;
            let rows = stmt.query_map([], |r| {
                let severity: Severity = r.get::<_, String>(0)?.parse().map_err(|e| conversion(0, e))?;
                Ok((severity, r.get::<_, i64>(1)?.max(0) as u64))
            })?;
            rows.collect()
        })
        .await
    }

    async fn changes_after(&self, seq: i64, limit: usize) -> Result<Vec<AlertChange>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT seq, alert_id, state, at_ms, by, note FROM alert_change WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![seq, limit as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?.parse::<AlertState>().map_err(|e| conversion(2, e))?,
                        millis_to_time(r.get(3)?),
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut out = Vec::with_capacity(rows.len());
            for (seq, id, state, at, by, note) in rows {
                let alert = get(c, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
                out.push(AlertChange { seq, state, at, by, note, alert });
            }
            Ok(out)
        })
        .await
    }

    async fn last_change(&self) -> Result<i64, StoreError> {
        self.call(|c| c.query_row("SELECT coalesce(max(seq), 0) FROM alert_change", [], |r| r.get(0))).await
    }

    async fn cursor(&self, consumer: &str) -> Result<Option<i64>, StoreError> {
        let consumer = consumer.to_owned();
        self.call(move |c| {
            c.query_row("SELECT seq FROM alert_cursor WHERE consumer = ?1", params![consumer], |r| r.get(0)).optional()
        })
        .await
    }

    async fn set_cursor(&self, consumer: &str, seq: i64) -> Result<(), StoreError> {
        let consumer = consumer.to_owned();
        self.call(move |c| {
            c.execute(
                "INSERT INTO alert_cursor (consumer, seq) VALUES (?1, ?2)
                 ON CONFLICT(consumer) DO UPDATE SET seq = excluded.seq",
                params![consumer, seq],
            )
            .map(drop)
        })
        .await
    }
}
