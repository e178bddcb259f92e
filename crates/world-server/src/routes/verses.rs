//! Verses over worlds: `POST /v1/worlds/{id}/push-down`,
//! `POST /v1/verses/run`, `POST /v1/partitions/{p}/pull-up`.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use world_engine::actions::{self, PullUpRequest, PushDownRequest, RunVersesRequest, VerseRuns};
use world_engine::multiverse::{PulledUp, PushedDown, VerseResult};

use super::{world_id, St};
use crate::extract::{Body, OptBody};
use crate::meta::WorldMeta;
use crate::state::AppState;
use crate::ApiError;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/worlds/{id}/push-down", post(push_down))
        .route("/v1/verses/run", post(run))
        .route("/v1/partitions/{p}/pull-up", post(pull_up))
}

async fn push_down(
    st: St,
    Path(id): Path<String>,
    OptBody(r): OptBody<PushDownRequest>,
) -> Result<(StatusCode, Json<PushedDown>), ApiError> {
    let id = world_id(&id)?;
    let children = r.children()?;
    let allow = r.allow_nonconserving.unwrap_or(false);
    let p = st
        .run(move |st| {
            let p = st.engine.push_down(&id, children, allow)?;
            st.engine.meta_update(|m| {
                for v in &p.verses {
                    let mut wm = WorldMeta::default();
                    wm.metadata.insert("verse".into(), v.name.clone());
                    wm.metadata.insert("verse_id".into(), v.verse.to_string());
                    wm.metadata.insert("trit".into(), v.trit.to_string());
                    m.worlds.insert(v.world.to_string(), wm);
                }
            })?;
            Ok(p)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(p)))
}

async fn run(st: St, Body(r): Body<RunVersesRequest>) -> Result<Json<Vec<VerseResult>>, ApiError> {
    let VerseRuns {
        partition: part,
        mut runs,
        session,
        timeout,
    } = r.checked()?;
    let results = st
        .run(move |st| {
            // The partition's children first, then `runs` (as `world run-verses`).
            let mut all = Vec::new();
            if let Some((p, code)) = part {
                let ledger = st.engine.ledger()?;
                let info = ledger
                    .tree()
                    .partition_info(p)
                    .map_err(world_engine::Error::from)?;
                for c in &info.children {
                    all.push((*c, code.clone()));
                }
            }
            all.append(&mut runs);
            Ok(st.engine.run_verses(&all, &session, timeout)?)
        })
        .await?;
    Ok(Json(results))
}

async fn pull_up(
    st: St,
    Path(p): Path<String>,
    Body(r): Body<PullUpRequest>,
) -> Result<Json<PulledUp>, ApiError> {
    let p = actions::partition_id(&p)?;
    let oracle = r.oracle()?;
    let game = r.game()?;
    let r = st
        .run(move |st| {
            let r = st.engine.pull_up(p, &oracle, game)?;
            st.engine.meta_update(|m| {
                for w in &r.collapsed_worlds {
                    m.worlds.remove(w);
                }
            })?;
            Ok(r)
        })
        .await?;
    Ok(Json(r))
}
