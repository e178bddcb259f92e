//! Verses over worlds: `POST /v1/worlds/{id}/push-down`,
//! `POST /v1/verses/run`, `POST /v1/partitions/{p}/pull-up`.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use world_core::ids::{PartitionId, VerseId};
use world_core::prob::Prob;
use world_core::trit::Trit;
use world_core::verse::ChildSpec;
use world_engine::actions::PullUpRequest;
use world_engine::multiverse::{PulledUp, PushedDown, VerseResult};
use world_engine::verse::default_children;

use super::{no_nul, seconds, world_id, St};
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

/// A number or a string (probabilities and trits come as either).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum NumOrStr {
    /// A JSON number.
    Num(f64),
    /// A JSON string.
    Str(String),
}

impl NumOrStr {
    fn text(&self) -> String {
        match self {
            NumOrStr::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            NumOrStr::Num(n) => format!("{n}"),
            NumOrStr::Str(s) => s.clone(),
        }
    }
}

/// One child of a push-down.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildReq {
    name: String,
    prob: NumOrStr,
    trit: NumOrStr,
}

/// `POST /v1/worlds/{id}/push-down` body.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PushDownReq {
    /// Children (default: nash -1 0.45, optimal 0 0.35, chaos +1 0.20).
    children: Option<Vec<ChildReq>>,
    /// Allow a partition whose trits do not sum to 0 mod 3.
    allow_nonconserving: Option<bool>,
}

fn child(c: ChildReq) -> Result<ChildSpec, ApiError> {
    no_nul(&c.name, "child name")?;
    let p = c.prob.text();
    let prob = Prob::parse(&p).map_err(|e| {
        ApiError::bad_request(format!("child {:?}: probability {p:?}: {e}", c.name))
    })?;
    let t = c.trit.text();
    let trit: Trit = t.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "child {:?}: trit {t:?} must be -1, 0 or +1",
            c.name
        ))
    })?;
    Ok(ChildSpec {
        name: c.name,
        prob,
        trit,
    })
}

async fn push_down(
    st: St,
    Path(id): Path<String>,
    OptBody(r): OptBody<PushDownReq>,
) -> Result<(StatusCode, Json<PushedDown>), ApiError> {
    let id = world_id(&id)?;
    let children = match r.children {
        None => default_children(),
        Some(c) if c.is_empty() => return Err(ApiError::bad_request("children must not be empty")),
        Some(c) if c.len() > 64 => return Err(ApiError::bad_request("at most 64 children")),
        Some(c) => c.into_iter().map(child).collect::<Result<_, _>>()?,
    };
    let allow = r.allow_nonconserving.unwrap_or(false);
    let p = st
        .run(move |st| {
            st.ensure_not_paused(&id)?;
            let p = st.engine.push_down(&id, children, allow)?;
            st.meta.update(|m| {
                for v in &p.verses {
                    let mut wm = WorldMeta::default();
                    wm.metadata.insert("verse".into(), v.name.clone());
                    wm.metadata.insert("verse_id".into(), v.verse.to_string());
                    wm.metadata.insert("trit".into(), v.trit.to_string());
                    m.worlds.insert(v.world.to_string(), wm);
                }
            });
            Ok(p)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// One verse's code.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerseCode {
    verse: String,
    code: String,
}

/// `POST /v1/verses/run` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunReq {
    /// Run `code` in every child of this partition...
    partition: Option<String>,
    /// ...this code.
    code: Option<String>,
    /// And/or per-verse code.
    runs: Option<Vec<VerseCode>>,
    /// Session name (default `default`).
    session: Option<String>,
    /// Seconds per run.
    timeout: Option<f64>,
}

fn verse_id(s: &str) -> Result<VerseId, ApiError> {
    s.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "{s:?} is not a verse id (expected v<number>, e.g. v1)"
        ))
    })
}

fn partition_id(s: &str) -> Result<PartitionId, ApiError> {
    s.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "{s:?} is not a partition id (expected p<number>, e.g. p1)"
        ))
    })
}

async fn run(st: St, Body(r): Body<RunReq>) -> Result<Json<Vec<VerseResult>>, ApiError> {
    let timeout = seconds(r.timeout, "timeout")?;
    let session = r.session.unwrap_or_else(|| "default".into());
    let mut runs = Vec::new();
    for v in r.runs.unwrap_or_default() {
        no_nul(&v.code, "code")?;
        runs.push((verse_id(&v.verse)?, v.code));
    }
    let part = match (&r.partition, &r.code) {
        (Some(p), Some(c)) => {
            no_nul(c, "code")?;
            Some((partition_id(p)?, c.clone()))
        }
        (None, None) => None,
        _ => return Err(ApiError::bad_request("`partition` and `code` go together")),
    };
    if runs.is_empty() && part.is_none() {
        return Err(ApiError::bad_request(
            "nothing to run: give `partition` and `code`, or `runs`",
        ));
    }
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
    let p = partition_id(&p)?;
    let oracle = r.oracle()?;
    let game = r.game()?;
    let r = st
        .run(move |st| {
            let r = st.engine.pull_up(p, &oracle, game)?;
            st.meta.update(|m| {
                for w in &r.collapsed_worlds {
                    m.worlds.remove(w);
                }
            });
            Ok(r)
        })
        .await?;
    Ok(Json(r))
}
