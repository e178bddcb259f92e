//! Token authentication: every request must carry the daemon's token, as
//! `Authorization: Bearer <token>` or, for E2B's SDKs, `X-API-KEY:
//! <token>`; anything else is 401 before a handler runs, so nothing is
//! done. (Requests to a sandbox's agent, routed by `E2b-Sandbox-Id`, are
//! checked by the E2B door itself: `crate::e2b`.)

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;
use crate::ApiError;

/// Constant-time comparison of two byte strings.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware.
pub async fn require_token(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .or_else(|| {
            req.headers()
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        });
    match given {
        Some(t) if same(t.as_bytes(), st.token.as_bytes()) => next.run(req).await,
        Some(_) => unauthorized("wrong API token"),
        None => unauthorized("missing `Authorization: Bearer <token>` header (see `world token`)"),
    }
}

fn unauthorized(msg: &str) -> Response {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", msg).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}
