//! The HTTP layer: one file per resource. Handlers parse the request into
//! a typed value, call the engine on the blocking pool and answer JSON.

pub(crate) mod exec;
mod images;
mod morph_images;
pub(crate) mod morph_instances;
pub(crate) mod morph_snapshots;
mod records;
pub(crate) mod sandboxes;
pub(crate) mod services;
pub(crate) mod snapshots;
mod verses;
pub(crate) mod views;
pub(crate) mod worlds;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{middleware, Json, Router};
use serde_json::Value;
use world_substrate::WorldId;

use crate::meta::Metadata;
use crate::state::AppState;
use crate::ApiError;

/// Shared state as handlers see it.
pub type St = axum::extract::State<Arc<AppState>>;

/// The whole router.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.body_limit;
    let log = state.log_requests;
    let app = Router::new()
        .route("/openapi.json", get(openapi))
        .route("/v1/health", get(health))
        .merge(worlds::routes())
        .merge(exec::routes())
        .merge(snapshots::routes())
        .merge(images::routes())
        .merge(verses::routes())
        .merge(records::routes())
        .merge(sandboxes::routes())
        .merge(services::routes())
        .merge(crate::e2b::control::routes())
        .nest(
            "/api",
            Router::new()
                .merge(morph_images::routes())
                .merge(morph_snapshots::routes())
                .merge(morph_instances::routes()),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_token,
        ))
        // Requests for an E2B sandbox's agent go there first, with their
        // own credential.
        .layer(middleware::from_fn_with_state(
            (
                state.clone(),
                crate::e2b::envd_router(state.clone()),
                crate::e2b::interp_router(state.clone()),
            ),
            crate::e2b::dispatch,
        ))
        .with_state(state);
    if log {
        // Outermost, so refused (401) requests are logged too.
        app.layer(middleware::from_fn(log_request))
    } else {
        app
    }
}

/// `world serve --log-requests`: one line per request on stderr, written
/// when the answer's head is ready: `world-serve: METHOD PATH STATUS MS`.
async fn log_request(
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let t = std::time::Instant::now();
    let r = next.run(req).await;
    eprintln!(
        "world-serve: {method} {path} {} {:.1}ms",
        r.status().as_u16(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    r
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

async fn health(st: St) -> Json<views::Health> {
    // The database it serves (absolute), so that `world` sends a command
    // here only when it means the same file.
    let db = st.engine.db_path();
    let db = std::path::absolute(db).unwrap_or_else(|_| db.to_path_buf());
    Json(views::Health {
        ok: true,
        version: env!("CARGO_PKG_VERSION").into(),
        url: st.public_url(),
        db,
    })
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!("no route {} (see /openapi.json)", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {} (see /openapi.json)",
            uri.path()
        ),
    )
}

/// Parses a world id from a path with a 400 on garbage.
pub fn world_id(s: &str) -> Result<WorldId, ApiError> {
    Ok(world_engine::world::world_id(s)?)
}

/// Turns JSON metadata into strings, with size limits
/// ([`world_engine::actions::metadata`]).
pub fn metadata_in(v: Option<BTreeMap<String, Value>>) -> Result<Metadata, ApiError> {
    Ok(world_engine::actions::metadata(v)?)
}

/// Whether `m` has every `metadata[k]=v` filter of a query string.
pub fn matches_filter(m: &Metadata, query: &BTreeMap<String, String>) -> bool {
    query.iter().all(|(k, v)| {
        match k
            .strip_prefix("metadata[")
            .and_then(|r| r.strip_suffix(']'))
        {
            Some(key) => m.get(key) == Some(v),
            None => true,
        }
    })
}

/// A positive, finite number of seconds, or a 400
/// ([`world_engine::actions::seconds`]).
pub fn seconds(t: Option<f64>, what: &str) -> Result<Option<std::time::Duration>, ApiError> {
    Ok(world_engine::actions::seconds(t, what)?)
}

/// Refuses strings with NUL bytes (they cannot reach a process).
pub fn no_nul(s: &str, what: &str) -> Result<(), ApiError> {
    Ok(world_engine::actions::no_nul(s, what)?)
}
