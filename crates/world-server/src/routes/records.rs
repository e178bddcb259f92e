//! `/v1/ledger`, `/v1/entities`, `/v1/branches`, `/v1/resolutions`,
//! `/v1/metrics`: reading the records and applying ledger operations.

use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use world_core::ledger::Op;

use super::St;
use crate::extract::{Body, Q};
use crate::state::AppState;
use crate::ApiError;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/ledger", get(ledger))
        .route("/v1/ledger/ops", post(apply))
        .route("/v1/ledger/journal", get(journal))
        .route("/v1/entities", get(entities))
        .route("/v1/branches", get(branches))
        .route("/v1/resolutions", get(resolutions))
        .route("/v1/metrics", get(metrics))
}

/// `?limit=N&type=T`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQ {
    limit: Option<usize>,
    #[serde(rename = "type")]
    entity_type: Option<String>,
}

impl ListQ {
    fn limit(&self) -> usize {
        self.limit.unwrap_or(1000).min(100_000)
    }
}

/// JSON text of a record type, its fields in their declared order (a
/// `serde_json::Value` would sort them): `world --json` prints the same.
struct RawJson(String);

impl IntoResponse for RawJson {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<RawJson, ApiError> {
    serde_json::to_string(v)
        .map(RawJson)
        .map_err(|e| ApiError::internal(format!("serialize: {e}")))
}

async fn ledger(st: St) -> Result<RawJson, ApiError> {
    st.run(|st| to_json(&st.engine.ledger()?)).await
}

/// Applies one ledger operation (`{"op": "deposit", ...}`: the
/// serde form of `world_core::ledger::Op`).
async fn apply(st: St, Body(op): Body<Op>) -> Result<RawJson, ApiError> {
    st.run(move |st| to_json(&st.engine.apply(op)?)).await
}

/// Runs a records query on a connection of the daemon's store and answers
/// its rows as JSON.
async fn query<T, F>(st: St, f: F) -> Result<RawJson, ApiError>
where
    T: serde::Serialize,
    F: FnOnce(&world_store::Store) -> world_store::Result<T> + Send + 'static,
{
    st.run(move |st| {
        let store = st.engine.store()?;
        to_json(&f(&store).map_err(world_engine::Error::from)?)
    })
    .await
}

async fn journal(st: St, Q(q): Q<ListQ>) -> Result<RawJson, ApiError> {
    query(st, move |s| s.journal(q.limit())).await
}

async fn entities(st: St, Q(q): Q<ListQ>) -> Result<RawJson, ApiError> {
    query(st, move |s| s.entities(q.entity_type.as_deref(), q.limit())).await
}

async fn branches(st: St, Q(q): Q<ListQ>) -> Result<RawJson, ApiError> {
    query(st, move |s| s.branches(q.limit())).await
}

async fn resolutions(st: St, Q(q): Q<ListQ>) -> Result<RawJson, ApiError> {
    query(st, move |s| s.resolutions(q.limit())).await
}

async fn metrics(st: St) -> Result<RawJson, ApiError> {
    query(st, |s| s.metric_summary()).await
}
