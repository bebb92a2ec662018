//! Accounts: users with a role and a password hash, and server-side login sessions.
//!
//! They live in the embedded SQLite file (tables `account` and `session`), also when readings
//! live in InfluxDB: a time-series database is the wrong place for credentials. This module
//! only stores and finds rows. It never sees a password or a session token: the dashboard
//! hashes passwords (argon2) and hands over a digest of each session token, so a copy of the
//! file gives neither a password nor a usable session.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::StoreError;
use crate::sqlite_file::SqliteFile;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS account (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_ms    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS session (
    id           TEXT PRIMARY KEY,
    account      TEXT NOT NULL REFERENCES account(name) ON DELETE CASCADE,
    csrf         TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS session_account ON session(account);
";

/// What a user may do is decided by their role; the dashboard maps roles to permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads dashboards, charts, the risk list and the alarm journal.
    Viewer,
    /// A maintenance crew member: a viewer who also acts on alerts.
    Crew,
    /// A waterworks engineer: crew rights plus alert rules, annotations and model runs.
    Engineer,
    /// A planner: a viewer who also edits the renewal plan and exports reports.
    Planner,
    /// Manages users, data sources and retention; may do everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Viewer, Role::Crew, Role::Engineer, Role::Planner, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Crew => "crew",
            Role::Engineer => "engineer",
            Role::Planner => "planner",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}; expected viewer, crew, engineer, planner or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// A user name: 1–64 characters from `[A-Za-z0-9_.-]`, like device names, so it is safe in
/// logs, URLs and HTML without escaping and cannot smuggle anything into a query.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct UserName(String);

/// The error of an invalid user name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid user name: use 1-64 characters from A-Z a-z 0-9 _ . -")]
pub struct InvalidUserName(pub String);

impl UserName {
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidUserName> {
        let name = name.into();
        if model::id::is_safe_name(&name) { Ok(UserName(name)) } else { Err(InvalidUserName(name)) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A stored user. The hash is a PHC string (`$argon2id$v=19$...`).
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub name: UserName,
    pub role: Role,
    pub password_hash: String,
    pub created: DateTime<Utc>,
}

impl fmt::Debug for User {
    // The hash is not a secret in the sense of a password, but it is offline-attackable
    // material: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// A stored session, joined with its user's current role (so a role change applies to open
/// sessions at once).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// A digest of the session token, never the token itself.
    pub id: String,
    pub user: UserName,
    pub role: Role,
    pub csrf: String,
    pub created: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("user", &self.user)
            .field("role", &self.role)
            .field("created", &self.created)
            .field("last_seen", &self.last_seen)
            .finish_non_exhaustive()
    }
}

/// Users and sessions, by role.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Adds a user; `Ok(false)` when the name is taken (nothing changes then).
    async fn add_user(&self, user: &User) -> Result<bool, StoreError>;

    /// Adds or replaces a user. Replacing ends all of that user's sessions, so a new password
    /// or a lowered role cannot be sidestepped by an open session.
    async fn put_user(&self, user: &User) -> Result<(), StoreError>;

    async fn user(&self, name: &UserName) -> Result<Option<User>, StoreError>;

    /// Every user, by name.
    async fn users(&self) -> Result<Vec<User>, StoreError>;

    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError>;

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError>;

    async fn touch_session(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    async fn delete_session(&self, id: &str) -> Result<(), StoreError>;

    /// Deletes sessions created before `created_before` or last seen before `seen_before`;
    /// returns how many.
    async fn purge_sessions(
        &self,
        created_before: DateTime<Utc>,
        seen_before: DateTime<Utc>,
    ) -> Result<usize, StoreError>;
}

/// Accounts in a SQLite file (usually the embedded store's own file).
#[derive(Debug, Clone)]
pub struct SqliteAccounts {
    inner: Arc<SqliteFile>,
}

fn millis_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn role_from_sql(col: usize, s: String) -> rusqlite::Result<Role> {
    s.parse::<Role>()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e)))
}

fn name_from_sql(col: usize, s: String) -> rusqlite::Result<UserName> {
    UserName::new(s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e)))
}

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        name: name_from_sql(0, row.get(0)?)?,
        role: role_from_sql(1, row.get(1)?)?,
        password_hash: row.get(2)?,
        created: millis_to_time(row.get(3)?),
    })
}

impl SqliteAccounts {
    /// Opens (creating if needed) the accounts tables in the SQLite file at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(SqliteAccounts { inner: SqliteFile::open(path, SCHEMA).await? })
    }

    /// An empty account store in memory: nobody can log in. The dashboard starts with this
    /// until it is given real accounts, so a forgotten wiring fails closed.
    pub fn in_memory() -> Self {
        SqliteAccounts { inner: SqliteFile::in_memory(SCHEMA) }
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
impl AccountStore for SqliteAccounts {
    async fn add_user(&self, user: &User) -> Result<bool, StoreError> {
        let u = user.clone();
        self.call(move |c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO account (name, role, password_hash, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![u.name.as_str(), u.role.as_str(), u.password_hash, u.created.timestamp_millis()],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        let u = user.clone();
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM session WHERE account = ?1", params![u.name.as_str()])?;
            tx.execute(
                "INSERT INTO account (name, role, password_hash, created_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash",
                params![u.name.as_str(), u.role.as_str(), u.password_hash, u.created.timestamp_millis()],
            )?;
            tx.commit()
        })
        .await
    }

    async fn user(&self, name: &UserName) -> Result<Option<User>, StoreError> {
        let name = name.clone();
        self.call(move |c| {
            c.query_row(
                "SELECT name, role, password_hash, created_ms FROM account WHERE name = ?1",
                params![name.as_str()],
                user_from_row,
            )
            .optional()
        })
        .await
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare("SELECT name, role, password_hash, created_ms FROM account ORDER BY name")?;
            let rows = stmt.query_map([], user_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let s = session.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO session (id, account, csrf, created_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.id, s.user.as_str(), s.csrf, s.created.timestamp_millis(), s.last_seen.timestamp_millis()],
            )?;
            Ok(())
        })
        .await
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let id = id.to_owned();
        self.call(move |c| {
            c.query_row(
                "SELECT s.id, a.name, a.role, s.csrf, s.created_ms, s.last_seen_ms
                 FROM session s JOIN account a ON a.name = s.account WHERE s.id = ?1",
                params![id],
                |row| {
                    Ok(SessionRecord {
                        id: row.get(0)?,
                        user: name_from_sql(1, row.get(1)?)?,
                        role: role_from_sql(2, row.get(2)?)?,
                        csrf: row.get(3)?,
                        created: millis_to_time(row.get(4)?),
                        last_seen: millis_to_time(row.get(5)?),
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn touch_session(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.call(move |c| {
            c.execute(
                "UPDATE session SET last_seen_ms = max(last_seen_ms, ?2) WHERE id = ?1",
                params![id, at.timestamp_millis()],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.call(move |c| {
            c.execute("DELETE FROM session WHERE id = ?1", params![id])?;
            Ok(())
        })
        .await
    }

    async fn purge_sessions(
        &self,
        created_before: DateTime<Utc>,
        seen_before: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.call(move |c| {
            c.execute(
                "DELETE FROM session WHERE created_ms < ?1 OR last_seen_ms < ?2",
                params![created_before.timestamp_millis(), seen_before.timestamp_millis()],
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn user(name: &str, role: Role, hash: &str) -> User {
        User {
            name: UserName::new(name).unwrap(),
            role,
            password_hash: hash.to_owned(),
            created: Utc.timestamp_millis_opt(1_700_000_000_000).unwrap(),
        }
    }

    fn session(id: &str, name: &str, at: DateTime<Utc>) -> SessionRecord {
        SessionRecord {
            id: id.to_owned(),
            user: UserName::new(name).unwrap(),
            role: Role::Viewer,
            csrf: format!("csrf-{id}"),
            created: at,
            last_seen: at,
        }
    }

    #[test]
    fn roles_and_names_round_trip_and_reject_bad_input() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
        for bad in ["", "a b", "x'--", "名前", &"a".repeat(65)] {
            assert!(UserName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn users_are_added_once_and_replaced_explicitly() {
        let dir = tempfile::tempdir().unwrap();
        let a = SqliteAccounts::open(&dir.path().join("a.sqlite")).await.unwrap();
        assert!(a.add_user(&user("kato", Role::Crew, "h1")).await.unwrap());
        assert!(!a.add_user(&user("kato", Role::Admin, "h2")).await.unwrap(), "a taken name is refused");
        let kato = UserName::new("kato").unwrap();
        let got = a.user(&kato).await.unwrap().unwrap();
        assert_eq!((got.role, got.password_hash.as_str()), (Role::Crew, "h1"));
        assert!(!format!("{got:?}").contains("h1"), "Debug hides the hash");

        a.put_user(&user("kato", Role::Engineer, "h3")).await.unwrap();
        let got = a.user(&kato).await.unwrap().unwrap();
        assert_eq!((got.role, got.password_hash.as_str()), (Role::Engineer, "h3"));
        assert_eq!(a.users().await.unwrap().len(), 1);
        assert!(a.user(&UserName::new("sato").unwrap()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn sessions_follow_their_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        let a = SqliteAccounts::open(&path).await.unwrap();
        a.add_user(&user("kato", Role::Crew, "h1")).await.unwrap();
        let t0 = Utc::now();
        a.create_session(&session("s1", "kato", t0)).await.unwrap();
        a.create_session(&session("s2", "kato", t0 - Duration::days(3))).await.unwrap();
        let s = a.session("s1").await.unwrap().unwrap();
        assert_eq!(s.role, Role::Crew, "the role comes from the user row");
        assert_eq!(s.csrf, "csrf-s1");
        assert!(a.session("nope").await.unwrap().is_none());
        assert!(a.create_session(&session("s3", "ghost", t0)).await.is_err(), "a session needs a user");

        a.touch_session("s1", t0 + Duration::minutes(5)).await.unwrap();
        let s = a.session("s1").await.unwrap().unwrap();
        assert_eq!(s.last_seen.timestamp_millis(), (t0 + Duration::minutes(5)).timestamp_millis());

        // Old sessions go; fresh ones stay.
        let purged = a.purge_sessions(t0 - Duration::days(1), t0 - Duration::days(1)).await.unwrap();
        assert_eq!(purged, 1);
        assert!(a.session("s2").await.unwrap().is_none());

        // A reopened file still has them.
        drop(a);
        let a = SqliteAccounts::open(&path).await.unwrap();
        assert!(a.session("s1").await.unwrap().is_some());

        // Replacing the user (new password or role) ends their sessions.
        a.put_user(&user("kato", Role::Viewer, "h9")).await.unwrap();
        assert!(a.session("s1").await.unwrap().is_none());

        a.create_session(&session("s4", "kato", t0)).await.unwrap();
        a.delete_session("s4").await.unwrap();
        assert!(a.session("s4").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn lives_beside_the_readings_in_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        let readings = crate::SqliteStore::open(&path).await.unwrap();
        let a = SqliteAccounts::open(&path).await.unwrap();
        a.add_user(&user("kato", Role::Crew, "h1")).await.unwrap();
        crate::Store::health(&readings).await.unwrap();
        assert_eq!(a.users().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn in_memory_starts_empty() {
        let a = SqliteAccounts::in_memory();
        assert!(a.users().await.unwrap().is_empty());
    }
}
