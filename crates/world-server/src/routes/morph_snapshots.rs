//! Morph `/api/snapshot...`: snapshots (create from an image, list with
//! metadata filters, get, delete, set metadata, set ttl, boot).
//!
//! A Morph snapshot "from an image" is made by creating a world from the
//! image with the requested limits, snapshotting it and destroying the
//! world (the snapshot outlives it).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use world_substrate::snapshot::SnapshotInfo;
use world_substrate::Limits;

use super::worlds::{create_world, snapshot_world};
use super::{matches_filter, metadata_in, St};
use crate::extract::{OptBody, Q};
use crate::meta::{SnapMeta, Ttl};
use crate::state::AppState;
use crate::ApiError;
use world_engine::actions::CreateRequest;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/snapshot", get(list).post(create))
        .route("/snapshot/list", get(list_paginated))
        .route("/snapshot/{id}", get(inspect).delete(delete))
        .route("/snapshot/{id}/metadata", post(set_metadata))
        .route("/snapshot/{id}/ttl", post(set_ttl))
        .route("/snapshot/{id}/boot", post(boot))
}

/// A snapshot in Morph's shape.
pub fn view(info: &SnapshotInfo, m: &SnapMeta) -> Value {
    let d = Limits::default();
    let (vcpus, memory, disk) =
        m.spec
            .unwrap_or((d.vcpu_count, d.mem_size_mib, d.disk_mib.unwrap_or(0)));
    json!({
        "id": info.id,
        "object": "snapshot",
        "created": info.created_at,
        "status": "ready",
        "spec": {"vcpus": vcpus, "memory": memory, "disk_size": disk},
        "refs": {"image_id": m.image_id.clone().unwrap_or_else(|| "host".into())},
        "digest": m.digest,
        "metadata": m.metadata,
        "ttl": {"ttl_seconds": m.ttl.ttl_seconds, "ttl_expire_at": m.ttl.ttl_expire_at},
        "name": info.name,
        "world": info.world,
    })
}

async fn filtered(
    st: &Arc<AppState>,
    q: &BTreeMap<String, String>,
) -> Result<Vec<Value>, ApiError> {
    let all = super::snapshots::all(st).await?;
    let meta = st.engine.meta_all()?;
    let of = |id: &str| meta.snapshots.get(id).cloned().unwrap_or_default();
    Ok(all
        .iter()
        .filter(|s| matches_filter(&s.metadata, q))
        .filter(|s| {
            q.get("digest")
                .is_none_or(|d| of(&s.info.id).digest.as_deref() == Some(d))
        })
        .map(|s| view(&s.info, &of(&s.info.id)))
        .collect())
}

async fn list(st: St, Q(q): Q<BTreeMap<String, String>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"object": "list", "data": filtered(&st, &q).await?}),
    ))
}

/// Pagination of a list: `page` (1-based) and `limit`.
pub fn paginate(
    all: Vec<Value>,
    q: &BTreeMap<String, String>,
    key: &str,
) -> Result<Value, ApiError> {
    let num = |k: &str, d: usize| -> Result<usize, ApiError> {
        q.get(k).map_or(Ok(d), |v| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::bad_request(format!("{k} must be a positive integer")))
        })
    };
    let (page, limit) = (num("page", 1)?, num("limit", 50)?.min(1000));
    let total = all.len();
    let pages = total.div_ceil(limit).max(1);
    let items: Vec<Value> = all
        .into_iter()
        .skip((page - 1).saturating_mul(limit))
        .take(limit)
        .collect();
    Ok(json!({
        key: items, "total": total, "page": page, "size": limit,
        "total_pages": pages, "has_next": page < pages, "has_prev": page > 1,
    }))
}

async fn list_paginated(
    st: St,
    Q(q): Q<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let all = filtered(&st, &q).await?;
    Ok(Json(paginate(all, &q, "snapshots")?))
}

/// `POST /api/snapshot` body (Morph's; unknown fields are ignored).
#[derive(Debug, Deserialize, Default, schemars::JsonSchema)]
pub struct CreateReq {
    image_id: Option<String>,
    vcpus: Option<u32>,
    memory: Option<u64>,
    disk_size: Option<u64>,
    digest: Option<String>,
    metadata: Option<BTreeMap<String, Value>>,
    ttl_seconds: Option<u64>,
}

async fn create(st: St, OptBody(r): OptBody<CreateReq>) -> Result<Json<Value>, ApiError> {
    let metadata = metadata_in(r.metadata)?;
    if let Some(d) = &r.digest {
        let all = st.engine.meta_all()?;
        if let Some((id, _)) = all
            .snapshots
            .iter()
            .find(|(_, m)| m.digest.as_deref() == Some(d))
        {
            if let Ok(info) = super::snapshots::one(&st, id.clone()).await {
                return Ok(Json(view(&info, &st.engine.snapshot_meta(&info.id)?)));
            }
        }
    }
    if r.ttl_seconds == Some(0) {
        return Err(ApiError::bad_request(
            "ttl_seconds must be greater than zero",
        ));
    }
    let w = create_world(
        &st,
        CreateRequest {
            image: Some(r.image_id.unwrap_or_else(|| "host".into())),
            vcpus: r.vcpus,
            memory_mib: r.memory,
            disk_mib: r.disk_size,
            ..CreateRequest::default()
        },
    )
    .await?;
    let id = w.info.id.clone();
    let meta = SnapMeta {
        metadata,
        ttl: Ttl::from_now(r.ttl_seconds, None),
        digest: r.digest,
        ..SnapMeta::default()
    };
    let snap = snapshot_world(&st, id.clone(), None, meta, false).await;
    let i2 = id.clone();
    let destroyed = st.run(move |st| st.destroy_world(&i2)).await;
    let snap = snap?;
    destroyed?;
    Ok(Json(view(&snap, &st.engine.snapshot_meta(&snap.id)?)))
}

async fn inspect(st: St, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let info = super::snapshots::one(&st, id).await?;
    Ok(Json(view(&info, &st.engine.snapshot_meta(&info.id)?)))
}

async fn delete(st: St, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = super::snapshots::remove(&st, id).await?;
    Ok(Json(
        json!({"id": id, "object": "snapshot", "deleted": true}),
    ))
}

async fn set_metadata(
    st: St,
    Path(id): Path<String>,
    OptBody(m): OptBody<BTreeMap<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let m = metadata_in(Some(m))?;
    let info = super::snapshots::one(&st, id).await?;
    st.engine
        .meta_update(|f| f.snapshots.entry(info.id.clone()).or_default().metadata = m)?;
    Ok(Json(view(&info, &st.engine.snapshot_meta(&info.id)?)))
}

/// `{"ttl_seconds": N | null}`.
#[derive(Debug, Deserialize, Default, schemars::JsonSchema)]
pub struct TtlReq {
    ttl_seconds: Option<u64>,
}

async fn set_ttl(
    st: St,
    Path(id): Path<String>,
    OptBody(r): OptBody<TtlReq>,
) -> Result<Json<Value>, ApiError> {
    if r.ttl_seconds == Some(0) {
        return Err(ApiError::bad_request(
            "ttl_seconds must be greater than zero",
        ));
    }
    let info = super::snapshots::one(&st, id).await?;
    st.engine.meta_update(|f| {
        f.snapshots.entry(info.id.clone()).or_default().ttl = Ttl::from_now(r.ttl_seconds, None)
    })?;
    Ok(Json(view(&info, &st.engine.snapshot_meta(&info.id)?)))
}

/// `POST /api/snapshot/{id}/boot` body: limits are inherited from the
/// snapshot (a branch cannot change them); metadata and TTL apply.
#[derive(Debug, Deserialize, Default, schemars::JsonSchema)]
pub struct BootReq {
    metadata: Option<BTreeMap<String, Value>>,
    ttl_seconds: Option<u64>,
    ttl_action: Option<crate::meta::TtlAction>,
}

async fn boot(
    st: St,
    Path(id): Path<String>,
    OptBody(r): OptBody<BootReq>,
) -> Result<Json<Value>, ApiError> {
    let info = super::snapshots::one(&st, id).await?;
    let w =
        super::morph_instances::start_from(&st, info.id, r.metadata, r.ttl_seconds, r.ttl_action)
            .await?;
    Ok(Json(w))
}
