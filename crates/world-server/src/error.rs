//! Errors: [`ApiError`] is what a client sees (a status and a stable code);
//! [`Error`] is what can stop the daemon from starting.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use world_engine::ErrorKind;

/// Failures that stop [`crate::serve`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file, socket or runtime could not be set up.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The engine failed while starting (repair, storage).
    #[error(transparent)]
    Engine(#[from] world_engine::Error),
}

/// An error answered to a client as
/// `{"error_code": CODE, "detail": MESSAGE, "status": STATUS}`.
///
/// Stable codes: `unauthorized` (401), `invalid_request` (400: malformed
/// JSON, wrong types, bad values), `unsupported_media_type` (415),
/// `payload_too_large` (413), `not_found` and `route_not_found` (404),
/// `method_not_allowed` (405), `refused` (409: against a rule, e.g. an
/// insufficient balance or a resolved partition), `world_paused` (409),
/// `command_not_found` / `not_executable` (422), `unsupported` (501: a
/// Morph feature this runtime does not have), `service_unreachable` /
/// `service_bad_response` (502: an exposed service in a world),
/// `busy` (503: the database is held too long by another process),
/// `internal` (500).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `invalid_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 501 `unsupported`.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, "unsupported", message)
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // `code` and `message` repeat the status and the detail in the
        // shape E2B's SDKs parse every error in (`{"code": 404, "message"}`).
        let body = json!({
            "error_code": self.code,
            "detail": self.message,
            "status": self.status.as_u16(),
            "code": self.status.as_u16(),
            "message": self.message,
        });
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<world_engine::Error> for ApiError {
    fn from(e: world_engine::Error) -> Self {
        use world_substrate::{Error as S, WorldError as W};
        // The whole chain: "database error" alone says nothing.
        let mut message = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            let m = s.to_string();
            if !message.contains(&m) {
                message.push_str(": ");
                message.push_str(&m);
            }
            src = s.source();
        }
        let input = matches!(
            e,
            world_engine::Error::Invalid(_)
                | world_engine::Error::Substrate(S::World(W::InvalidId(_) | W::InvalidLimits(_)))
        );
        match &e {
            world_engine::Error::Substrate(S::World(W::NotRunning(
                _,
                world_substrate::WorldState::Paused,
            ))) => return ApiError::new(StatusCode::CONFLICT, "world_paused", message),
            world_engine::Error::Substrate(S::World(W::Unsupported(_))) => {
                return ApiError::unsupported(message)
            }
            _ => {}
        }
        match e.kind() {
            ErrorKind::Refused if input => ApiError::bad_request(message),
            ErrorKind::Refused => ApiError::new(StatusCode::CONFLICT, "refused", message),
            ErrorKind::NotFound => ApiError::not_found(message),
            ErrorKind::Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message),
            ErrorKind::CommandNotFound => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "command_not_found",
                message,
            ),
            ErrorKind::NotExecutable => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_executable", message)
            }
            ErrorKind::Internal => ApiError::internal(message),
        }
    }
}

impl From<world_substrate::Error> for ApiError {
    fn from(e: world_substrate::Error) -> Self {
        world_engine::Error::from(e).into()
    }
}
