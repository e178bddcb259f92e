//! `/v1/worlds`: create, list, inspect, destroy, run code, snapshot,
//! branch, pause/resume, metadata. Exec is in `exec.rs`, push-down in
//! `verses.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use world_engine::actions::{
    BranchRequest, CodeResponse, CreateFrom, CreateRequest, RunCodeRequest, SnapshotRequest,
};
use world_substrate::snapshot::{BranchOptions, Branched, SnapshotError, SnapshotInfo};
use world_substrate::WorldId;

use super::views::{Destroyed, SnapshotView, WorldView};
use super::{metadata_in, no_nul, world_id, St};
use crate::extract::{Body, OptBody};
use crate::meta::{Metadata, SnapMeta, Ttl, WorldMeta};
use crate::state::AppState;
use crate::ApiError;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/worlds", post(create).get(list))
        .route("/v1/worlds/{id}", get(inspect).delete(destroy))
        .route("/v1/worlds/{id}/run-code", post(run_code))
        .route("/v1/worlds/{id}/snapshot", post(snapshot))
        .route("/v1/worlds/{id}/branch", post(branch))
        .route("/v1/worlds/{id}/pause", post(pause))
        .route("/v1/worlds/{id}/resume", post(resume))
        .route("/v1/worlds/{id}/metadata", axum::routing::put(set_metadata))
}

pub use crate::meta::TtlAction;

/// Creates a world (from an image, or as a branch of a snapshot) and
/// records its metadata and TTL: every door's create.
pub async fn create_world(st: &Arc<AppState>, req: CreateRequest) -> Result<WorldView, ApiError> {
    let (from, metadata) = req.checked()?;
    let ttl = Ttl::from_now(req.ttl_seconds, req.ttl_action);
    let snapshot_id = req.snapshot_id;
    st.run(move |st| {
        let id = match from {
            CreateFrom::Snapshot(snap) => {
                let b = st.engine.branch(&snap, 1, &BranchOptions::default())?;
                b.children
                    .into_iter()
                    .next()
                    .ok_or_else(|| ApiError::internal("branch made no world"))?
            }
            CreateFrom::Image(opts) => st.engine.world_create(&opts)?.id,
        };
        let meta = WorldMeta {
            metadata,
            ttl,
            snapshot_id,
            ..WorldMeta::default()
        };
        st.engine
            .meta_update(|m| m.worlds.insert(id.to_string(), meta.clone()))?;
        let info = st.engine.world_inspect(&id)?;
        Ok(WorldView::new(st, info, meta))
    })
    .await
}

/// One world.
pub async fn get_world(st: &Arc<AppState>, id: WorldId) -> Result<WorldView, ApiError> {
    st.run(move |st| {
        let info = st.engine.world_inspect(&id)?;
        Ok(WorldView::new(st, info, st.engine.world_meta(id.as_str())?))
    })
    .await
}

/// Every world.
pub async fn list_worlds(st: &Arc<AppState>) -> Result<Vec<WorldView>, ApiError> {
    st.run(|st| {
        let all = st.engine.meta_all()?;
        Ok(st
            .engine
            .world_list()?
            .into_iter()
            .map(|i| {
                let m = all.worlds.get(i.id.as_str()).cloned().unwrap_or_default();
                WorldView::new(st, i, m)
            })
            .collect())
    })
    .await
}

/// Snapshots a world and records the snapshot's metadata. A name that
/// is taken falls back to `NAME-<world>` and then to an automatic name
/// when `unique_fallback` is set (the original design reuses names).
pub async fn snapshot_world(
    st: &Arc<AppState>,
    id: WorldId,
    name: Option<String>,
    meta: SnapMeta,
    unique_fallback: bool,
) -> Result<SnapshotInfo, ApiError> {
    if let Some(n) = &name {
        no_nul(n, "name")?;
    }
    st.run(move |st| {
        let info = st.engine.world_inspect(&id)?;
        let mut r = st.engine.snapshot(&id, name.as_deref());
        if unique_fallback {
            if let Err(world_engine::Error::Substrate(world_substrate::Error::Snapshot(
                SnapshotError::NameTaken(_),
            ))) = &r
            {
                let alt = format!("{}-{id}", name.as_deref().unwrap_or("snap"));
                r = st.engine.snapshot(&id, Some(&alt));
                if r.is_err() {
                    r = st.engine.snapshot(&id, None);
                }
            }
        }
        let snap = r?;
        let l = info.limits;
        let m = SnapMeta {
            image_id: Some(info.image.clone()),
            spec: Some((l.vcpu_count, l.mem_size_mib, l.disk_mib.unwrap_or(0))),
            ..meta
        };
        st.engine
            .meta_update(|f| f.snapshots.insert(snap.id.clone(), m))?;
        Ok(snap)
    })
    .await
}

/// Branches a snapshot or a running world into `count` worlds and
/// records their origin.
pub async fn branch_source(
    st: &Arc<AppState>,
    source: String,
    count: usize,
    opts: BranchOptions,
    metadata: Metadata,
) -> Result<Branched, ApiError> {
    world_engine::actions::check_count(count)?;
    no_nul(&source, "source")?;
    st.run(move |st| {
        let source_world = WorldId::new(&source)
            .filter(|w| st.engine.world_inspect(w).is_ok())
            .map(|w| w.to_string());
        let b = st.engine.branch(&source, count, &opts)?;
        if let Some(s) = &b.snapshot {
            if let Some(w) = source_world.as_deref().and_then(WorldId::new) {
                if let Ok(info) = st.engine.world_inspect(&w) {
                    let l = info.limits;
                    st.engine.meta_update(|f| {
                        f.snapshots.entry(s.clone()).or_insert_with(|| SnapMeta {
                            image_id: Some(info.image.clone()),
                            spec: Some((l.vcpu_count, l.mem_size_mib, l.disk_mib.unwrap_or(0))),
                            ..SnapMeta::default()
                        });
                    })?;
                }
            }
        }
        st.engine.meta_update(|f| {
            for c in &b.children {
                f.worlds.insert(
                    c.to_string(),
                    WorldMeta {
                        metadata: metadata.clone(),
                        snapshot_id: b.snapshot.clone(),
                        ..WorldMeta::default()
                    },
                );
            }
        })?;
        Ok(b)
    })
    .await
}

async fn create(
    st: St,
    Body(r): Body<CreateRequest>,
) -> Result<(StatusCode, Json<WorldView>), ApiError> {
    Ok((StatusCode::CREATED, Json(create_world(&st, r).await?)))
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

/// Runs code in a session of a world.
pub async fn run_code_in(
    st: &Arc<AppState>,
    id: WorldId,
    r: RunCodeRequest,
) -> Result<CodeResponse, ApiError> {
    let (session, timeout) = r.checked()?;
    st.run(move |st| Ok(st.engine.run_code(&id, &session, &r.code, timeout)?.into()))
        .await
}

async fn run_code(
    st: St,
    Path(id): Path<String>,
    Body(r): Body<RunCodeRequest>,
) -> Result<Json<CodeResponse>, ApiError> {
    Ok(Json(run_code_in(&st, world_id(&id)?, r).await?))
}

async fn snapshot(
    st: St,
    Path(id): Path<String>,
    OptBody(r): OptBody<SnapshotRequest>,
) -> Result<(StatusCode, Json<SnapshotView>), ApiError> {
    let (name, metadata) = r.checked()?;
    let meta = SnapMeta {
        metadata,
        ttl: Ttl::from_now(r.ttl_seconds, None),
        ..SnapMeta::default()
    };
    let info = snapshot_world(&st, world_id(&id)?, name, meta, false).await?;
    let m = st.engine.snapshot_meta(&info.id)?;
    Ok((StatusCode::CREATED, Json(SnapshotView::new(info, m))))
}

async fn branch(
    st: St,
    Path(id): Path<String>,
    Body(r): Body<BranchRequest>,
) -> Result<(StatusCode, Json<Branched>), ApiError> {
    let id = world_id(&id)?;
    let opts = r.options()?;
    let m = metadata_in(r.metadata)?;
    let b = branch_source(&st, id.to_string(), r.count, opts, m).await?;
    Ok((StatusCode::CREATED, Json(b)))
}

/// Pauses or resumes a world ([`world_engine::Engine::world_pause`]:
/// asking for the state it is in already changes nothing).
pub async fn set_paused(st: &Arc<AppState>, id: WorldId, paused: bool) -> Result<(), ApiError> {
    st.run(move |st| {
        if paused {
            st.engine.world_pause(&id)?;
        } else {
            st.engine.world_resume(&id)?;
        }
        Ok(())
    })
    .await
}

async fn pause(st: St, Path(id): Path<String>) -> Result<Json<WorldView>, ApiError> {
    let id = world_id(&id)?;
    set_paused(&st, id.clone(), true).await?;
    Ok(Json(get_world(&st, id).await?))
}

async fn resume(st: St, Path(id): Path<String>) -> Result<Json<WorldView>, ApiError> {
    let id = world_id(&id)?;
    set_paused(&st, id.clone(), false).await?;
    Ok(Json(get_world(&st, id).await?))
}

/// Replaces a world's metadata (404 for an unknown world).
pub async fn replace_metadata(
    st: &Arc<AppState>,
    id: WorldId,
    m: Metadata,
) -> Result<WorldView, ApiError> {
    st.run(move |st| {
        let info = st.engine.world_inspect(&id)?;
        st.engine
            .meta_update(|f| f.worlds.entry(id.to_string()).or_default().metadata = m)?;
        Ok(WorldView::new(st, info, st.engine.world_meta(id.as_str())?))
    })
    .await
}

async fn set_metadata(
    st: St,
    Path(id): Path<String>,
    Body(m): Body<BTreeMap<String, Value>>,
) -> Result<Json<WorldView>, ApiError> {
    let m = metadata_in(Some(m))?;
    Ok(Json(replace_metadata(&st, world_id(&id)?, m).await?))
}
