//! One error type for every handler, mapped to a response in one place.

use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::header::{LOCATION, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::error;

/// A handler's failure: 4xx says what was wrong with the request; 5xx says "internal error"
/// and the log keeps the cause.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// No session. Pages go to the login form and come back to `next`; the API answers 401.
    #[error("login required")]
    LoginRequired { next: Option<String> },
    /// Logged in, but the role does not allow it.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The request is fine but the thing it acts on has moved on (an alert someone else
    /// already resolved).
    #[error("conflict: {0}")]
    Conflict(String),
    /// An unsafe request with a session but without that session's CSRF token.
    #[error("CSRF token missing or wrong")]
    Csrf,
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// A store error that a cache handed to every request waiting for the same value.
    #[error(transparent)]
    SharedStore(std::sync::Arc<store::StoreError>),
    /// A feature this server cannot offer now (PDF reports without a Japanese font); the message
    /// says why and what still works.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A failure of ours that the user cannot fix; the message goes to the log only.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<QueryRejection> for AppError {
    fn from(e: QueryRejection) -> Self {
        AppError::BadRequest(format!("bad query parameters: {}", e.body_text()))
    }
}

impl From<FormRejection> for AppError {
    fn from(e: FormRejection) -> Self {
        AppError::BadRequest(format!("bad form: {}", e.body_text()))
    }
}

impl From<JsonRejection> for AppError {
    fn from(e: JsonRejection) -> Self {
        AppError::BadRequest(format!("bad JSON body: {}", e.body_text()))
    }
}

impl From<PathRejection> for AppError {
    fn from(e: PathRejection) -> Self {
        AppError::BadRequest(format!("bad path: {}", e.body_text()))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut resp = self.response();
        // Error texts repeat what the client sent; a browser must never sniff them into HTML.
        resp.headers_mut().insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        resp
    }
}

impl AppError {
    fn response(self) -> Response {
        match self {
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, shorten_quoted(&m)).into_response(),
            AppError::NotFound(m) => {
                (StatusCode::NOT_FOUND, format!("not found: {}", shorten_quoted(&m))).into_response()
            }
            AppError::LoginRequired { next: Some(next) } => {
                let target = format!("/login?next={}", percent_encode(&next));
                let mut resp = StatusCode::SEE_OTHER.into_response();
                resp.headers_mut().insert(LOCATION, HeaderValue::from_str(&target).expect("percent-encoded is ASCII"));
                resp
            }
            AppError::LoginRequired { next: None } => {
                (StatusCode::UNAUTHORIZED, "login required: POST /login").into_response()
            }
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, m).into_response(),
            AppError::Conflict(m) => (StatusCode::CONFLICT, m).into_response(),
            AppError::Csrf => {
                (StatusCode::FORBIDDEN, "CSRF token missing or wrong: reload the page and try again").into_response()
            }
            AppError::Store(e) => {
                error!(error = %e, "store error while answering a request");
                let status =
                    if e.is_transient() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
                (status, "internal error: the store did not answer; see the server log").into_response()
            }
            AppError::SharedStore(e) => {
                error!(error = %e, "store error while answering a request");
                let status =
                    if e.is_transient() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
                (status, "internal error: the store did not answer; see the server log").into_response()
            }
            AppError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m).into_response(),
            AppError::Internal(m) => {
                error!(error = %m, "internal error while answering a request");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the server log").into_response()
            }
        }
    }
}

/// Quoted values longer than this are cut in messages to the client.
const MAX_ECHO_CHARS: usize = 60;

/// A message with each `"…"` value (as `{:?}` writes a request's text) cut to
/// `MAX_ECHO_CHARS`: a client that sends 20,000 characters gets a short answer whose reason is
/// still readable, not its own text back.
fn shorten_quoted(m: &str) -> String {
    let mut out = String::with_capacity(m.len().min(1024));
    let mut quoted: Option<String> = None;
    let mut escaped = false;
    let flush = |out: &mut String, q: &str| {
        let n = q.chars().count();
        if n > MAX_ECHO_CHARS {
            out.extend(q.chars().take(MAX_ECHO_CHARS));
            out.push_str(&format!("… ({n} characters)"));
        } else {
            out.push_str(q);
        }
    };
    for c in m.chars() {
        match quoted.as_mut() {
            Some(q) if c == '"' && !escaped => {
                flush(&mut out, q);
                out.push('"');
                quoted = None;
            }
            Some(q) => {
                escaped = c == '\\' && !escaped;
                q.push(c);
            }
            None => {
                out.push(c);
                if c == '"' {
                    quoted = Some(String::new());
                    escaped = false;
                }
            }
        }
    }
    if let Some(q) = quoted {
        flush(&mut out, &q);
    }
    out
}

/// Percent-encodes everything but unreserved characters and `/`, for a path in a query value.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(message: &str, expected: &str) {
        assert_eq!(shorten_quoted(message), expected);
    }

    #[test]
    fn long_quoted_values_are_cut_and_the_reason_kept() {
        check("w=\"abc\": too narrow", "w=\"abc\": too narrow");
        let long = "x".repeat(20_000);
        let expected = format!("w=\"{}… (20000 characters)\": too narrow", "x".repeat(60));
        check(&format!("w={long:?}: too narrow"), &expected);
        // An escaped quote inside the value does not end it.
        let tricky = format!("a\"{}", "y".repeat(100));
        let cut: String = format!("{tricky:?}").trim_matches('"').chars().take(60).collect();
        check(&format!("v={tricky:?}: bad"), &format!("v=\"{cut}… (103 characters)\": bad"));
        check("no quotes at all", "no quotes at all");
        check("unterminated \"abc", "unterminated \"abc");
    }
}
