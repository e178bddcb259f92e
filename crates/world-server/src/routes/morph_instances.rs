//! Morph `/api/instance...`: an instance is a world. Start from a
//! snapshot (a branch of one), list with metadata filters, get, stop
//! (= destroy), pause/resume (cgroup freezer), set metadata, TTL with
//! `ttl_action`, exec (captured and SSE), snapshot, and
//! `branch?count=N`. What this runtime does not have answers 501
//! `unsupported`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Path;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use world_substrate::snapshot::BranchOptions;
use world_substrate::{ExecRequest, WorldId};

use super::exec::{argv_of, exec_captured, exec_sse};
use super::services::{expose_service, hide_service, ExposeReq};
use super::views::WorldView;
use super::worlds::{
    branch_source, create_world, get_world, list_worlds, replace_metadata, set_paused,
    snapshot_world, TtlAction,
};
use super::{matches_filter, metadata_in, seconds, world_id, St};
use crate::extract::{Body, OptBody, Q};
use crate::meta::{SnapMeta, Ttl};
use crate::state::AppState;
use crate::ApiError;
use world_engine::actions::{Command, CreateRequest, MetadataIn};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/instance", get(list).post(start))
        .route("/instance/list", get(list_paginated))
        .route("/instance/{id}", get(inspect).delete(stop))
        .route("/instance/{id}/pause", post(pause))
        .route("/instance/{id}/resume", post(resume))
        .route("/instance/{id}/metadata", post(set_metadata))
        .route("/instance/{id}/ttl", post(set_ttl))
        .route("/instance/{id}/exec", post(exec))
        .route("/instance/{id}/exec/sse", post(exec_stream))
        .route("/instance/{id}/snapshot", post(snapshot))
        .route("/instance/{id}/branch", post(branch))
        .route("/instance/{id}/http", post(expose_http))
        .route("/instance/{id}/http/{name}", delete(hide_http))
        .route("/instance/{id}/reboot", post(unsupported))
        .route("/instance/{id}/wake-on", post(unsupported))
        .route("/instance/{id}/ssh/key", get(unsupported).post(unsupported))
}

/// A world in Morph's instance shape.
pub fn view(w: &WorldView) -> Value {
    let status = if w.paused {
        "paused"
    } else if w.info.state.can_exec() {
        "ready"
    } else {
        "error"
    };
    json!({
        "id": w.info.id,
        "object": "instance",
        "created": w.info.created_at,
        "status": status,
        "spec": {
            "vcpus": w.info.limits.vcpu_count,
            "memory": w.info.limits.mem_size_mib,
            "disk_size": w.info.limits.disk_mib.unwrap_or(0),
        },
        "refs": {
            "snapshot_id": w.snapshot_id.clone().unwrap_or_default(),
            "image_id": w.info.image,
        },
        "networking": {"internal_ip": null, "http_services": w.http_services},
        "ttl": {
            "ttl_seconds": w.ttl.ttl_seconds,
            "ttl_expire_at": w.ttl.ttl_expire_at,
            "ttl_action": w.ttl.ttl_action,
        },
        "wake_on": {"wake_on_ssh": false, "wake_on_http": false},
        "metadata": w.metadata,
    })
}

/// Starts a world from a snapshot; Morph's instance view of it.
pub async fn start_from(
    st: &Arc<AppState>,
    snapshot: String,
    metadata: Option<MetadataIn>,
    ttl_seconds: Option<u64>,
    ttl_action: Option<TtlAction>,
) -> Result<Value, ApiError> {
    let spec = CreateRequest {
        snapshot_id: Some(snapshot),
        metadata,
        ttl_seconds,
        ttl_action,
        ..CreateRequest::default()
    };
    Ok(view(&create_world(st, spec).await?))
}

async fn list(st: St, Q(q): Q<BTreeMap<String, String>>) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = list_worlds(&st)
        .await?
        .iter()
        .filter(|w| matches_filter(&w.metadata, &q))
        .map(view)
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

async fn list_paginated(
    st: St,
    Q(q): Q<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = list_worlds(&st)
        .await?
        .iter()
        .filter(|w| matches_filter(&w.metadata, &q))
        .map(view)
        .collect();
    Ok(Json(super::morph_snapshots::paginate(
        data,
        &q,
        "instances",
    )?))
}

/// `?snapshot_id=`.
#[derive(Debug, Deserialize)]
pub struct StartQ {
    snapshot_id: String,
}

/// `POST /api/instance` body.
#[derive(Debug, Deserialize, Default, schemars::JsonSchema)]
pub struct StartReq {
    metadata: Option<BTreeMap<String, Value>>,
    ttl_seconds: Option<u64>,
    ttl_action: Option<TtlAction>,
}

async fn start(
    st: St,
    Q(q): Q<StartQ>,
    OptBody(r): OptBody<StartReq>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        start_from(&st, q.snapshot_id, r.metadata, r.ttl_seconds, r.ttl_action).await?,
    ))
}

async fn inspect(st: St, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&get_world(&st, world_id(&id)?).await?)))
}

async fn stop(st: St, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = world_id(&id)?;
    let i2 = id.clone();
    st.run(move |st| st.destroy_world(&i2)).await?;
    Ok(Json(
        json!({"id": id, "object": "instance", "deleted": true}),
    ))
}

async fn pause(st: St, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = world_id(&id)?;
    set_paused(&st, id.clone(), true).await?;
    Ok(Json(view(&get_world(&st, id).await?)))
}

async fn resume(st: St, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = world_id(&id)?;
    set_paused(&st, id.clone(), false).await?;
    Ok(Json(view(&get_world(&st, id).await?)))
}

async fn set_metadata(
    st: St,
    Path(id): Path<String>,
    OptBody(m): OptBody<BTreeMap<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let m = metadata_in(Some(m))?;
    Ok(Json(view(&replace_metadata(&st, world_id(&id)?, m).await?)))
}

/// `POST /api/instance/{id}/ttl` body.
#[derive(Debug, Deserialize, Default, schemars::JsonSchema)]
pub struct TtlReq {
    ttl_seconds: Option<u64>,
    ttl_action: Option<TtlAction>,
}

async fn set_ttl(
    st: St,
    Path(id): Path<String>,
    OptBody(r): OptBody<TtlReq>,
) -> Result<Json<Value>, ApiError> {
    let id = world_id(&id)?;
    let w = get_world(&st, id.clone()).await?;
    // Without a new action the current one stays (Morph's rule).
    let action = r.ttl_action.or(w.ttl.ttl_action);
    let ttl = Ttl::from_now(r.ttl_seconds, action);
    st.engine
        .meta_update(|f| f.worlds.entry(id.to_string()).or_default().ttl = ttl)?;
    Ok(Json(view(&get_world(&st, id).await?)))
}

/// `POST /api/instance/{id}/exec` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ExecReq {
    command: Command,
    timeout: Option<f64>,
}

fn exec_request(r: ExecReq) -> Result<ExecRequest, ApiError> {
    let mut req = ExecRequest::new(&argv_of(r.command)?);
    req.timeout = seconds(r.timeout, "timeout")?;
    Ok(req)
}

async fn exec(
    st: St,
    Path(id): Path<String>,
    Body(r): Body<ExecReq>,
) -> Result<Json<Value>, ApiError> {
    let id = world_id(&id)?;
    let v = exec_captured(&st, id, exec_request(r)?, Vec::new()).await?;
    Ok(Json(
        json!({"exit_code": v.exit_code, "stdout": v.stdout, "stderr": v.stderr}),
    ))
}

async fn exec_stream(
    st: St,
    Path(id): Path<String>,
    Body(r): Body<ExecReq>,
) -> Result<Response, ApiError> {
    let id = world_id(&id)?;
    exec_sse(&st, id, exec_request(r)?).await
}

/// `?digest=`.
#[derive(Debug, Deserialize, Default)]
pub struct SnapQ {
    digest: Option<String>,
}

/// `POST /api/instance/{id}/snapshot` body.
#[derive(Debug, Deserialize, Default, schemars::JsonSchema)]
pub struct SnapReq {
    metadata: Option<BTreeMap<String, Value>>,
    ttl_seconds: Option<u64>,
}

async fn snapshot(
    st: St,
    Path(id): Path<String>,
    Q(q): Q<SnapQ>,
    OptBody(r): OptBody<SnapReq>,
) -> Result<Json<Value>, ApiError> {
    let id: WorldId = world_id(&id)?;
    if let Some(d) = &q.digest {
        let all = st.engine.meta_all()?;
        if let Some((sid, _)) = all
            .snapshots
            .iter()
            .find(|(_, m)| m.digest.as_deref() == Some(d))
        {
            if let Ok(info) = super::snapshots::one(&st, sid.clone()).await {
                return Ok(Json(super::morph_snapshots::view(
                    &info,
                    &st.engine.snapshot_meta(&info.id)?,
                )));
            }
        }
    }
    let meta = SnapMeta {
        metadata: metadata_in(r.metadata)?,
        ttl: Ttl::from_now(r.ttl_seconds, None),
        digest: q.digest,
        ..SnapMeta::default()
    };
    let info = snapshot_world(&st, id, None, meta, false).await?;
    Ok(Json(super::morph_snapshots::view(
        &info,
        &st.engine.snapshot_meta(&info.id)?,
    )))
}

/// `?count=N`.
#[derive(Debug, Deserialize)]
pub struct BranchQ {
    count: usize,
}

async fn branch(st: St, Path(id): Path<String>, Q(q): Q<BranchQ>) -> Result<Json<Value>, ApiError> {
    let id = world_id(&id)?;
    let meta = st.engine.world_meta(id.as_str())?.metadata;
    let opts = BranchOptions {
        keep_snapshot: true,
        ..BranchOptions::default()
    };
    let b = branch_source(&st, id.to_string(), q.count, opts, meta).await?;
    let sid = b
        .snapshot
        .clone()
        .ok_or_else(|| ApiError::internal("branch kept no snapshot"))?;
    let snap = super::snapshots::one(&st, sid).await?;
    let mut instances = Vec::new();
    for c in b.children {
        instances.push(view(&get_world(&st, c).await?));
    }
    Ok(Json(json!({
        "snapshot": super::morph_snapshots::view(&snap, &st.engine.snapshot_meta(&snap.id)?),
        "instances": instances,
    })))
}

async fn expose_http(
    st: St,
    Path(id): Path<String>,
    Body(r): Body<ExposeReq>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&expose_service(&st, world_id(&id)?, r).await?)))
}

async fn hide_http(
    st: St,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&hide_service(&st, world_id(&id)?, name).await?)))
}

async fn unsupported(uri: axum::http::Uri) -> ApiError {
    ApiError::unsupported(format!(
        "{} is not supported by WorldRuntime (no SSH, reboot or wake-on in this Morph subset; see docs/api.md)",
        uri.path()
    ))
}
