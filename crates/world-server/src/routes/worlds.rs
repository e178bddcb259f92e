//! `/v1/worlds`: create, list, inspect, destroy, run code, snapshot,
//! branch, pause/resume, metadata. Exec is in `exec.rs`, push-down in
//! `verses.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use world_substrate::snapshot::{BranchOptions, Branched, SnapshotError, SnapshotInfo, MAX_BRANCH};
use world_substrate::{CreateOptions, Limits, WorldId};

use super::views::{CodeView, SnapshotView, WorldView};
use super::{metadata_in, no_nul, seconds, world_id, St};
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

/// What a new world is made from.
#[derive(Debug, Clone, Default)]
pub struct CreateSpec {
    /// Id to use.
    pub id: Option<String>,
    /// Image (default `host`).
    pub image: Option<String>,
    /// CPU quota.
    pub vcpus: Option<u32>,
    /// Memory MiB.
    pub memory_mib: Option<u64>,
    /// Processes.
    pub pids_max: Option<u32>,
    /// Disk MiB (0: no limit).
    pub disk_mib: Option<u64>,
    /// Start from this snapshot (a branch of one) instead of an image.
    pub snapshot_id: Option<String>,
    /// User metadata.
    pub metadata: Metadata,
    /// TTL.
    pub ttl: Ttl,
}

/// `POST /v1/worlds` body.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateReq {
    id: Option<String>,
    image: Option<String>,
    vcpus: Option<u32>,
    memory_mib: Option<u64>,
    pids_max: Option<u32>,
    disk_mib: Option<u64>,
    snapshot_id: Option<String>,
    metadata: Option<BTreeMap<String, Value>>,
    ttl_seconds: Option<u64>,
    ttl_action: Option<TtlAction>,
}

/// What happens when a TTL expires.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TtlAction {
    /// Destroy the world.
    Stop,
    /// Freeze it.
    Pause,
}

impl TtlAction {
    /// The stored name.
    pub fn name(self) -> String {
        match self {
            TtlAction::Stop => "stop".into(),
            TtlAction::Pause => "pause".into(),
        }
    }
}

/// Creates a world (from an image, or as a branch of a snapshot) and
/// records its metadata.
pub async fn create_world(st: &Arc<AppState>, spec: CreateSpec) -> Result<WorldView, ApiError> {
    if let Some(s) = &spec.snapshot_id {
        if spec.image.is_some() || spec.id.is_some() {
            return Err(ApiError::bad_request(
                "give either snapshot_id or image/id: a world from a snapshot is a branch of it",
            ));
        }
        no_nul(s, "snapshot_id")?;
    }
    st.run(move |st| {
        let id = match &spec.snapshot_id {
            Some(snap) => {
                let b = st.engine.branch(snap, 1, &BranchOptions::default())?;
                b.children
                    .into_iter()
                    .next()
                    .ok_or_else(|| ApiError::internal("branch made no world"))?
            }
            None => {
                let d = Limits::default();
                let opts = CreateOptions {
                    id: spec.id.as_deref().map(world_id).transpose()?,
                    image: spec.image.clone(),
                    limits: Limits {
                        vcpu_count: spec.vcpus.unwrap_or(d.vcpu_count),
                        mem_size_mib: spec.memory_mib.unwrap_or(d.mem_size_mib),
                        pids_max: spec.pids_max.unwrap_or(d.pids_max),
                        disk_mib: match spec.disk_mib {
                            Some(0) => None,
                            Some(n) => Some(n),
                            None => d.disk_mib,
                        },
                    },
                };
                if let Some(i) = &opts.image {
                    no_nul(i, "image")?;
                }
                opts.limits.validate().map_err(ApiError::bad_request)?;
                st.engine.world_create(&opts)?.id
            }
        };
        let meta = WorldMeta {
            metadata: spec.metadata.clone(),
            ttl: spec.ttl.clone(),
            snapshot_id: spec.snapshot_id.clone(),
            ..WorldMeta::default()
        };
        st.meta
            .update(|m| m.worlds.insert(id.to_string(), meta.clone()));
        let info = st.engine.world_inspect(&id)?;
        Ok(WorldView::new(st, info, meta))
    })
    .await
}

/// One world.
pub async fn get_world(st: &Arc<AppState>, id: WorldId) -> Result<WorldView, ApiError> {
    st.run(move |st| {
        let info = st.engine.world_inspect(&id)?;
        Ok(WorldView::new(st, info, st.meta.world(id.as_str())))
    })
    .await
}

/// Every world.
pub async fn list_worlds(st: &Arc<AppState>) -> Result<Vec<WorldView>, ApiError> {
    st.run(|st| {
        let all = st.meta.snapshot();
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
        st.ensure_not_paused(&id)?;
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
        st.meta.update(|f| f.snapshots.insert(snap.id.clone(), m));
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
    if count == 0 || count > MAX_BRANCH {
        return Err(ApiError::bad_request(format!(
            "count {count} out of range 1..={MAX_BRANCH}"
        )));
    }
    no_nul(&source, "source")?;
    st.run(move |st| {
        if let Some(w) = WorldId::new(&source) {
            st.ensure_not_paused(&w)?;
        }
        let source_world = WorldId::new(&source)
            .filter(|w| st.engine.world_inspect(w).is_ok())
            .map(|w| w.to_string());
        let b = st.engine.branch(&source, count, &opts)?;
        if let Some(s) = &b.snapshot {
            if let Some(w) = source_world.as_deref().and_then(WorldId::new) {
                if let Ok(info) = st.engine.world_inspect(&w) {
                    let l = info.limits;
                    st.meta.update(|f| {
                        f.snapshots.entry(s.clone()).or_insert_with(|| SnapMeta {
                            image_id: Some(info.image.clone()),
                            spec: Some((l.vcpu_count, l.mem_size_mib, l.disk_mib.unwrap_or(0))),
                            ..SnapMeta::default()
                        });
                    });
                }
            }
        }
        st.meta.update(|f| {
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
        });
        Ok(b)
    })
    .await
}

async fn create(
    st: St,
    Body(r): Body<CreateReq>,
) -> Result<(StatusCode, Json<WorldView>), ApiError> {
    let spec = CreateSpec {
        id: r.id,
        image: r.image,
        vcpus: r.vcpus,
        memory_mib: r.memory_mib,
        pids_max: r.pids_max,
        disk_mib: r.disk_mib,
        snapshot_id: r.snapshot_id,
        metadata: metadata_in(r.metadata)?,
        ttl: Ttl::from_now(r.ttl_seconds, r.ttl_action.map(TtlAction::name)),
    };
    Ok((StatusCode::CREATED, Json(create_world(&st, spec).await?)))
}

async fn list(st: St) -> Result<Json<Vec<WorldView>>, ApiError> {
    Ok(Json(list_worlds(&st).await?))
}

async fn inspect(st: St, Path(id): Path<String>) -> Result<Json<WorldView>, ApiError> {
    Ok(Json(get_world(&st, world_id(&id)?).await?))
}

async fn destroy(st: St, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = world_id(&id)?;
    let i2 = id.clone();
    st.run(move |st| st.destroy_world(&i2)).await?;
    Ok(Json(json!({"destroyed": id.to_string()})))
}

/// `POST /v1/worlds/{id}/run-code` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunCodeReq {
    code: String,
    session: Option<String>,
    timeout: Option<f64>,
}

/// Runs code in a session of a world.
pub async fn run_code_in(
    st: &Arc<AppState>,
    id: WorldId,
    session: Option<String>,
    code: String,
    timeout: Option<f64>,
) -> Result<CodeView, ApiError> {
    no_nul(&code, "code")?;
    let timeout = seconds(timeout, "timeout")?;
    let session = session.unwrap_or_else(|| "default".into());
    st.run(move |st| {
        st.ensure_not_paused(&id)?;
        Ok(st.engine.run_code(&id, &session, &code, timeout)?.into())
    })
    .await
}

async fn run_code(
    st: St,
    Path(id): Path<String>,
    Body(r): Body<RunCodeReq>,
) -> Result<Json<CodeView>, ApiError> {
    Ok(Json(
        run_code_in(&st, world_id(&id)?, r.session, r.code, r.timeout).await?,
    ))
}

/// `POST /v1/worlds/{id}/snapshot` body.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SnapshotReq {
    name: Option<String>,
    metadata: Option<BTreeMap<String, Value>>,
    ttl_seconds: Option<u64>,
}

async fn snapshot(
    st: St,
    Path(id): Path<String>,
    OptBody(r): OptBody<SnapshotReq>,
) -> Result<(StatusCode, Json<SnapshotView>), ApiError> {
    let meta = SnapMeta {
        metadata: metadata_in(r.metadata)?,
        ttl: Ttl::from_now(r.ttl_seconds, None),
        ..SnapMeta::default()
    };
    let info = snapshot_world(&st, world_id(&id)?, r.name, meta, false).await?;
    let m = st.meta.snap(&info.id);
    Ok((StatusCode::CREATED, Json(SnapshotView::new(info, m))))
}

/// `POST /v1/worlds/{id}/branch` and `/v1/snapshots/{id}/branch` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchReq {
    /// Number of children.
    pub count: usize,
    /// Seed `random` in children (default true).
    pub apply_seeds: Option<bool>,
    /// Start declared services (default true).
    pub start_services: Option<bool>,
    /// Keep the implicit snapshot of a world (default true).
    pub keep_snapshot: Option<bool>,
    /// Metadata of every child.
    pub metadata: Option<BTreeMap<String, Value>>,
}

impl BranchReq {
    /// The substrate's options.
    pub fn options(&self) -> BranchOptions {
        let d = BranchOptions::default();
        BranchOptions {
            apply_seeds: self.apply_seeds.unwrap_or(d.apply_seeds),
            start_services: self.start_services.unwrap_or(d.start_services),
            keep_snapshot: self.keep_snapshot.unwrap_or(true),
            ..d
        }
    }
}

async fn branch(
    st: St,
    Path(id): Path<String>,
    Body(r): Body<BranchReq>,
) -> Result<(StatusCode, Json<Branched>), ApiError> {
    let id = world_id(&id)?;
    let opts = r.options();
    let m = metadata_in(r.metadata)?;
    let b = branch_source(&st, id.to_string(), r.count, opts, m).await?;
    Ok((StatusCode::CREATED, Json(b)))
}

/// Pauses or resumes a world.
pub async fn set_paused(st: &Arc<AppState>, id: WorldId, paused: bool) -> Result<(), ApiError> {
    st.run(move |st| {
        let info = st.engine.world_inspect(&id)?;
        if !info.state.can_exec() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "refused",
                format!(
                    "world {id} is {}; it cannot be paused or resumed",
                    info.state
                ),
            ));
        }
        if st.meta.world(id.as_str()).paused == paused {
            return Ok(());
        }
        st.set_frozen(&id, paused)?;
        st.meta
            .update(|m| m.worlds.entry(id.to_string()).or_default().paused = paused);
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
        st.meta
            .update(|f| f.worlds.entry(id.to_string()).or_default().metadata = m);
        Ok(WorldView::new(st, info, st.meta.world(id.as_str())))
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
