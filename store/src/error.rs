use thiserror::Error;

/// Everything that can go wrong in a store.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("bad store URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },

    #[error("reading {device}/{point} at {time}: {reason}; nothing of this batch was written")]
    InvalidReading { device: String, point: String, time: String, reason: String },

    #[error("line protocol: {what} {value:?} {reason}")]
    LineProtocol { what: &'static str, value: String, reason: &'static str },

    #[error("{backend} is unreachable: {message}")]
    Unavailable { backend: String, message: String },

    #[error("{backend} rejected the request ({status}): {message}")]
    Rejected { backend: String, status: u16, message: String },

    #[error("unexpected answer from {backend}: {message}")]
    Protocol { backend: String, message: String },

    #[error("SQLite database {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },

    #[error("no alert {id}")]
    NoSuchAlert { id: i64 },

    #[error("alert {id} is {state}: cannot {action} it")]
    AlertTransition { id: i64, state: &'static str, action: &'static str },

    #[error("planned work, field `{field}`: {value:?}: {reason}")]
    InvalidWork { field: &'static str, value: String, reason: String },

    #[error("sewer ranking, span {span}, field `{field}`: {reason}; nothing of this run was saved")]
    InvalidSewerRow { span: String, field: &'static str, reason: String },

    #[error("cannot read secret from {path}: {source}")]
    Secret {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// True when the same request may succeed later (server down, network trouble, a busy
    /// database), as opposed to a request that will be refused however often it is sent.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unavailable { .. } => true,
            StoreError::Rejected { status, .. } => *status >= 500 || *status == 429,
            StoreError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }
}
