//! One SQLite connection behind a mutex, driven from async code on tokio's blocking pool: the
//! shape the accounts, alerts and risk stores share. They keep rows that change in place
//! beside the readings, usually in the embedded store's own file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

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
