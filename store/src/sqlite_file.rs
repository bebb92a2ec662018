//! One SQLite connection behind a mutex, driven from async code on tokio's blocking pool: the
//! shape the accounts, alerts and risk stores share. They keep rows that change in place
//! beside the readings, usually in the embedded store's own file. Also the one query the risk
//! and sewer runs share: the distinct values of a run's column that their filters offer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, params};

use crate::StoreError;

#[derive(Debug)]
pub(crate) struct SqliteFile {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteFile {
    /// Opens (creating the file and its directory if needed) and applies `schema`.
    pub(crate) async fn open(path: &Path, schema: &'static str) -> Result<Arc<Self>, StoreError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let err = |source| StoreError::Sqlite { path: path.display().to_string(), source };
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| err(rusqlite::Error::InvalidPath(PathBuf::from(format!("{}: {e}", dir.display())))))?;
            }
            let conn = Connection::open(&path).map_err(err)?;
            Self::init(path.clone(), conn, schema).map_err(err)
        })
        .await
        .expect("open task does not panic")
    }

    /// An empty database in memory with `schema` applied.
    pub(crate) fn in_memory(schema: &'static str) -> Arc<Self> {
        let conn = Connection::open_in_memory().expect("SQLite can always open a memory database");
        Self::init(PathBuf::from(":memory:"), conn, schema).expect("the schema applies to a fresh memory database")
    }

    fn init(path: PathBuf, conn: Connection, schema: &str) -> rusqlite::Result<Arc<Self>> {
        // WAL and a busy timeout as in the readings store, which usually shares the file and
        // writes every second; foreign keys so deleting a parent row ends its children.
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;")?;
        conn.execute_batch(schema)?;
        Ok(Arc::new(SqliteFile { path, conn: Mutex::new(conn) }))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection on the blocking pool.
    pub(crate) async fn call<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = this.conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn).map_err(|source| StoreError::Sqlite { path: this.path.display().to_string(), source })
        })
        .await
        .expect("a SQLite task does not panic")
    }
}

/// A run's text column whose distinct values a filter form offers. SQLite cannot bind a table
/// or column name, so [`distinct_values`] pastes them into its SQL: they come only from this
/// fixed list, never from a request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RunColumn {
    RiskMaterial,
    RiskDistrict,
    SewerMaterial,
    SewerDistrict,
}

impl RunColumn {
    fn table_and_column(self) -> (&'static str, &'static str) {
        match self {
            RunColumn::RiskMaterial => ("risk_pipe", "material"),
            RunColumn::RiskDistrict => ("risk_pipe", "district"),
            RunColumn::SewerMaterial => ("sewer_span", "material"),
            RunColumn::SewerDistrict => ("sewer_span", "district"),
        }
    }
}

/// The distinct values of `column` among the rows of `run`, sorted, without NULL (a main or
/// span with no district offers no choice; materials are NOT NULL).
pub(crate) fn distinct_values(c: &Connection, run: i64, column: RunColumn) -> rusqlite::Result<Vec<String>> {
    let (table, column) = column.table_and_column();
    let mut stmt = c.prepare(&format!(
        "SELECT DISTINCT {column} FROM {table} WHERE run = ?1 AND {column} IS NOT NULL ORDER BY {column}"
    ))?;
    let v = stmt.query_map(params![run], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_values_are_of_the_run_sorted_and_without_null() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE risk_pipe (run INTEGER, material TEXT NOT NULL, district TEXT);
             CREATE TABLE sewer_span (run INTEGER, material TEXT NOT NULL, district TEXT);
             INSERT INTO risk_pipe VALUES (1, 'PVC', 'b'), (1, 'CI', NULL), (1, 'PVC', 'a'), (2, 'AC', 'z');
             INSERT INTO sewer_span VALUES (1, 'VP', '南'), (1, 'RC', '北'), (1, 'RC', '北'), (2, 'HP', NULL);",
        )
        .unwrap();
        let check = |run, column, expected: &[&str]| assert_eq!(distinct_values(&c, run, column).unwrap(), expected);
        check(1, RunColumn::RiskMaterial, &["CI", "PVC"]);
        check(1, RunColumn::RiskDistrict, &["a", "b"]);
        check(2, RunColumn::RiskMaterial, &["AC"]);
        check(1, RunColumn::SewerMaterial, &["RC", "VP"]);
        check(1, RunColumn::SewerDistrict, &["北", "南"]);
        check(2, RunColumn::SewerDistrict, &[]);
        check(3, RunColumn::SewerMaterial, &[]);
    }
}
