//! The one place errors become HTTP answers: a status code and
//! `{"error": {"code", "message", "problems"?}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kyc_core::api::{ErrorBody, ErrorDetail};
use kyc_core::request::{Problem, Rejected};
use kyc_core::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request breaks the contract; every problem is listed.
    #[error("{}", .0.summary())]
    Invalid(Rejected),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The session can no longer be used (`session_expired`, `session_cancelled`…).
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// The session's schedule window has not opened yet.
    #[error("{0}")]
    NotYetAvailable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The server cannot take this now (`busy`, `models_missing`…);
    /// `retry_after` seconds, when trying again later may help.
    #[error("{message}")]
    Unavailable {
        code: &'static str,
        message: String,
        retry_after: Option<u64>,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A single problem at `path`, reported like any validation failure.
    pub fn invalid(path: &str, message: impl Into<String>) -> Self {
        Self::Invalid(Rejected {
            problems: vec![Problem::new(path, message)],
            warnings: Vec::new(),
        })
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Gone { code, .. } => (StatusCode::GONE, code),
            Self::NotYetAvailable(_) => (StatusCode::FORBIDDEN, "not_yet_available"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Unavailable { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, code),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let retry_after = match &self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        };
        let (message, problems) = match self {
            Self::Invalid(rejected) => (
                format!(
                    "the request is invalid: {} problem{} found",
                    rejected.problems.len(),
                    if rejected.problems.len() == 1 {
                        ""
                    } else {
                        "s"
                    }
                ),
                rejected.problems,
            ),
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (
                    "an internal error occurred; the server log has the details".to_owned(),
                    Vec::new(),
                )
            }
            other => (other.to_string(), Vec::new()),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
                problems,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
