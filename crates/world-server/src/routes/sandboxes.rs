//! The original design's endpoints: `POST /v1/sandboxes` (from an image,
//! or from `snapshot_id`, with `metadata`), `POST
//! /v1/sandboxes/{id}/snapshots {name}` answering `{snapshot_id}`, `POST
//! /v1/sandboxes/{id}/execute {code}` running Python in the sandbox's
//! session. A sandbox is a world.
//!
//! The original design's babashka client posts `snapshots` and `execute`
//! bodies without a `Content-Type`, so these routes take JSON bodies with
//! no content type ([`LaxBody`], [`OptBody`]); a non-JSON one is 415.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::views::{Destroyed, SandboxSnapshot, WorldView};
use super::worlds::{create_world, get_world, list_worlds, run_code_in, snapshot_world};
use super::{metadata_in, world_id, St};
use crate::extract::{LaxBody, OptBody};
use crate::meta::SnapMeta;
use crate::state::AppState;
use crate::ApiError;
use world_engine::actions::{CodeResponse, CreateRequest, RunCodeRequest};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/sandboxes", post(create).get(list))
        .route("/v1/sandboxes/{id}", get(inspect).delete(destroy))
        .route("/v1/sandboxes/{id}/snapshots", post(snapshot))
        .route("/v1/sandboxes/{id}/execute", post(execute))
}

/// `POST /v1/sandboxes` body (every field optional).
#[derive(Debug, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReq {
    snapshot_id: Option<String>,
    metadata: Option<BTreeMap<String, Value>>,
    image: Option<String>,
    vcpus: Option<u32>,
    memory_mib: Option<u64>,
    /// Kept as metadata `seed` (worlds take their seed from their lineage).
    seed: Option<Value>,
    ttl_seconds: Option<u64>,
}

async fn create(
    st: St,
    OptBody(r): OptBody<CreateReq>,
) -> Result<(StatusCode, Json<WorldView>), ApiError> {
    let mut metadata = r.metadata.unwrap_or_default();
    if let Some(s) = r.seed {
        metadata.insert("seed".into(), s);
    }
    let spec = CreateRequest {
        snapshot_id: r.snapshot_id,
        image: r.image,
        vcpus: r.vcpus,
        memory_mib: r.memory_mib,
        metadata: Some(metadata),
        ttl_seconds: r.ttl_seconds,
        ..CreateRequest::default()
    };
    Ok((StatusCode::CREATED, Json(create_world(&st, spec).await?)))
}

async fn list(st: St) -> Result<Json<Vec<WorldView>>, ApiError> {
    Ok(Json(list_worlds(&st).await?))
}

async fn inspect(st: St, Path(id): Path<String>) -> Result<Json<WorldView>, ApiError> {
    Ok(Json(get_world(&st, world_id(&id)?).await?))
}

async fn destroy(st: St, Path(id): Path<String>) -> Result<Json<Destroyed>, ApiError> {
    let id = world_id(&id)?;
    let i2 = id.clone();
    st.run(move |st| st.destroy_world(&i2)).await?;
    Ok(Json(Destroyed {
        destroyed: id.to_string(),
    }))
}

/// `POST /v1/sandboxes/{id}/snapshots` body.
#[derive(Debug, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotReq {
    name: Option<String>,
    metadata: Option<BTreeMap<String, Value>>,
}

async fn snapshot(
    st: St,
    Path(id): Path<String>,
    OptBody(r): OptBody<SnapshotReq>,
) -> Result<(StatusCode, Json<SandboxSnapshot>), ApiError> {
    let meta = SnapMeta {
        metadata: metadata_in(r.metadata)?,
        ..SnapMeta::default()
    };
    // The original design snapshots every world as "pre-split": a taken
    // name falls back to a unique one instead of failing.
    let info = snapshot_world(&st, world_id(&id)?, r.name, meta, true).await?;
    Ok((
        StatusCode::CREATED,
        Json(SandboxSnapshot {
            snapshot_id: info.id,
            name: info.name,
            world: info.world.to_string(),
            snapshot_ms: info.snapshot_ms,
            warnings: info.warnings,
        }),
    ))
}

async fn execute(
    st: St,
    Path(id): Path<String>,
    LaxBody(r): LaxBody<RunCodeRequest>,
) -> Result<Json<CodeResponse>, ApiError> {
    Ok(Json(run_code_in(&st, world_id(&id)?, r).await?))
}
