//! `/v1/snapshots`: list, inspect, delete, branch.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use world_substrate::snapshot::{Branched, SnapshotInfo};

use super::views::{Deleted, SnapshotView};
use super::worlds::branch_source;
use super::{metadata_in, no_nul, St};
use crate::extract::Body;
use crate::state::AppState;
use crate::ApiError;
use world_engine::actions::BranchRequest;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/snapshots", get(list))
        .route("/v1/snapshots/{id}", get(inspect).delete(delete))
        .route("/v1/snapshots/{id}/branch", post(branch))
}

/// Every snapshot with its metadata.
pub async fn all(st: &Arc<AppState>) -> Result<Vec<SnapshotView>, ApiError> {
    st.run(|st| {
        let m = st.engine.meta_all()?;
        Ok(st
            .engine
            .snapshots()?
            .into_iter()
            .map(|s| {
                let meta = m.snapshots.get(&s.id).cloned().unwrap_or_default();
                SnapshotView::new(s, meta)
            })
            .collect())
    })
    .await
}

/// One snapshot by id or name.
pub async fn one(st: &Arc<AppState>, id: String) -> Result<SnapshotInfo, ApiError> {
    no_nul(&id, "snapshot id")?;
    st.run(move |st| Ok(st.engine.substrate()?.snapshot_info(&id)?))
        .await
}

/// Deletes a snapshot and its metadata.
pub async fn remove(st: &Arc<AppState>, id: String) -> Result<String, ApiError> {
    let info = one(st, id).await?;
    st.run(move |st| {
        st.engine.snapshot_delete(&info.id)?;
        st.engine.meta_update(|m| m.snapshots.remove(&info.id))?;
        Ok(info.id)
    })
    .await
}

async fn list(st: St) -> Result<Json<Vec<SnapshotView>>, ApiError> {
    Ok(Json(all(&st).await?))
}

async fn inspect(st: St, Path(id): Path<String>) -> Result<Json<SnapshotView>, ApiError> {
    let info = one(&st, id).await?;
    let m = st.engine.snapshot_meta(&info.id)?;
    Ok(Json(SnapshotView::new(info, m)))
}

async fn delete(st: St, Path(id): Path<String>) -> Result<Json<Deleted>, ApiError> {
    let id = remove(&st, id).await?;
    Ok(Json(Deleted { deleted: id }))
}

async fn branch(
    st: St,
    Path(id): Path<String>,
    Body(r): Body<BranchRequest>,
) -> Result<(StatusCode, Json<Branched>), ApiError> {
    let info = one(&st, id).await?;
    let opts = r.options()?;
    let m = metadata_in(r.metadata)?;
    let b = branch_source(&st, info.id, r.count, opts, m).await?;
    Ok((StatusCode::CREATED, Json(b)))
}
