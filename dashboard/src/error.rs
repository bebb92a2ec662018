//! One error type for every handler, mapped to a response in one place.

use axum::http::StatusCode;
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
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, m).into_response(),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, format!("not found: {m}")).into_response(),
            AppError::Store(e) => {
                error!(error = %e, "store error while answering a request");
                let status =
                    if e.is_transient() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
                (status, "internal error: the store did not answer; see the server log").into_response()
            }
        }
    }
}
