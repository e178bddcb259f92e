//! E2B's control plane (what `e2b.Sandbox.create/list/kill/connect`,
//! `set_timeout` and `pause` call), over the same worlds and metadata as
//! the native routes. A sandbox is a world; its id is the world's id.
//!
//! * `POST /v2/sandboxes` `{templateID, timeout, metadata, envVars,
//!   autoPause}`: 201 with `{templateID, sandboxID, clientID, envdVersion,
//!   envdAccessToken}`. `base` (E2B's default) and `host` are the host
//!   image; any other template is an image of that name. `timeout`
//!   (default 300 s) is the world's TTL: at expiry it is destroyed, or
//!   paused with `autoPause`. `envVars` reach every command run through
//!   the sandbox's agent.
//! * `GET /v2/sandboxes?metadata=&state=&limit=&nextToken=`: E2B encodes
//!   the metadata filter twice (see [`metadata_filter`]); pages carry
//!   `x-next-token`.
//! * `POST /sandboxes/{id}/fork {count, timeout}`: our branch of the
//!   running sandbox: every child starts with its files and its sessions'
//!   memory, its metadata and envVars; 201 with `[{"sandbox": ...}]`.
//! * `POST /sandboxes/{id}/snapshots {name}` (201 `{snapshotID,
//!   names}`), `GET /snapshots?sandboxID=&name=`, `DELETE
//!   /templates/{id}`: our snapshots (files and session memory); a
//!   snapshot's id or name is a template for `Sandbox.create`.
//! * `GET`/`DELETE /sandboxes/{id}`, `POST /sandboxes/{id}/timeout`,
//!   `POST /sandboxes/{id}/pause` (409 when already paused), `POST
//!   /v2/sandboxes/{id}/connect` (resumes a paused sandbox).
//!
//! Errors are the daemon's JSON errors, which also carry E2B's
//! `{"code": STATUS, "message"}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::extract::{Body, OptBody};
use crate::meta::{Metadata, Ttl, TtlAction};
use crate::routes::views::WorldView;
use crate::routes::worlds::{create_world, get_world, list_worlds, set_paused};
use crate::routes::{world_id, St};
use crate::state::AppState;
use crate::ApiError;
use world_engine::actions::CreateRequest;

/// The envd version we answer: new enough that the SDK takes its most
/// direct paths (no `user` parameter, octet-stream uploads).
pub const ENVD_VERSION: &str = "0.6.4";

/// E2B's default sandbox lifetime, seconds.
const DEFAULT_TIMEOUT: u64 = 300;

/// The longest lifetime accepted (E2B's own cap is 24 h on paid plans).
const MAX_TIMEOUT: u64 = 7 * 86_400;

/// Sandboxes per page when the client gives no limit.
const PAGE: usize = 100;

/// The control-plane routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v2/sandboxes", post(create).get(list))
        .route("/sandboxes/{id}", get(detail).delete(kill))
        .route("/sandboxes/{id}/timeout", post(timeout))
        .route("/sandboxes/{id}/pause", post(pause))
        .route("/v2/sandboxes/{id}/connect", post(connect))
        .route("/sandboxes/{id}/fork", post(fork))
        .route("/sandboxes/{id}/snapshots", post(snapshot))
        .route("/snapshots", get(snapshots))
        .route("/templates/{id}", axum::routing::delete(delete_snapshot))
}

/// `POST /v2/sandboxes` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewSandbox {
    #[serde(rename = "templateID")]
    template_id: String,
    timeout: Option<u64>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    env_vars: Option<BTreeMap<String, String>>,
    #[serde(default)]
    auto_pause: Option<bool>,
    // Accepted and not enforced yet (networking is issue 16): every world
    // has only its loopback.
    #[serde(default, rename = "allow_internet_access")]
    _allow_internet_access: Option<bool>,
    #[serde(default)]
    _secure: Option<bool>,
}

/// The image behind an E2B template name.
fn image_of(template: &str) -> Option<String> {
    match template {
        "base" | "host" | "" | "code-interpreter-v1" | "code-interpreter" => None,
        other => Some(other.to_string()),
    }
}

fn lifetime(t: Option<u64>) -> Result<u64, ApiError> {
    let t = t.unwrap_or(DEFAULT_TIMEOUT);
    if t == 0 || t > MAX_TIMEOUT {
        return Err(ApiError::bad_request(format!(
            "timeout must be 1..={MAX_TIMEOUT} seconds"
        )));
    }
    Ok(t)
}

fn check_env(env: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if env.len() > 256 {
        return Err(ApiError::bad_request("at most 256 envVars"));
    }
    for (k, v) in env {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            return Err(ApiError::bad_request(format!(
                "envVars name {k:?} must be non-empty, without '=' or NUL"
            )));
        }
        if k.len() + v.len() > 32 << 10 {
            return Err(ApiError::bad_request(format!("envVars {k:?} is too long")));
        }
    }
    Ok(())
}

/// The `Sandbox` answer of create and connect.
fn sandbox_json(st: &AppState, id: &str, template: &str) -> Value {
    json!({
        "templateID": template,
        "sandboxID": id,
        "clientID": "worldruntime",
        "alias": template,
        "envdVersion": ENVD_VERSION,
        "envdAccessToken": st.token,
        // The code interpreter's SDK sends only this on its context calls.
        "trafficAccessToken": st.token,
    })
}

async fn create(st: St, Body(r): Body<NewSandbox>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let secs = lifetime(r.timeout)?;
    let env = r.env_vars.unwrap_or_default();
    check_env(&env)?;
    let template = if r.template_id.is_empty() {
        "base".to_string()
    } else {
        r.template_id
    };
    let action = if r.auto_pause == Some(true) {
        TtlAction::Pause
    } else {
        TtlAction::Stop
    };
    // A snapshot's id or name is a template too (E2B's `create_snapshot`
    // then `Sandbox.create(snapshot_id)`).
    let snapshot = match image_of(&template) {
        Some(t) => crate::routes::snapshots::one(&st, t)
            .await
            .ok()
            .map(|s| s.id),
        None => None,
    };
    let spec = CreateRequest {
        image: if snapshot.is_some() {
            None
        } else {
            image_of(&template)
        },
        snapshot_id: snapshot,
        metadata: r.metadata,
        ttl_seconds: Some(secs),
        ttl_action: Some(action),
        ..CreateRequest::default()
    };
    let w = create_world(&st, spec).await?;
    let id = w.info.id.to_string();
    let (t2, i2) = (template.clone(), id.clone());
    st.run(move |st| {
        st.engine.meta_update(|m| {
            let e = m.worlds.entry(i2).or_default();
            e.env = env;
            e.template = Some(t2);
        })?;
        Ok(())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(sandbox_json(&st, &id, &template))))
}

/// E2B's `SandboxState`: `paused` or `running` (a world that is dead is
/// neither; it is listed as `running` until the reaper marks it lost).
fn state_of(w: &WorldView) -> &'static str {
    if w.paused {
        "paused"
    } else {
        "running"
    }
}

fn rfc3339(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs.min(i64::MAX as u64) as i64, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A `ListedSandbox` / `SandboxDetail`.
fn listed(st: &AppState, w: &WorldView) -> Result<Value, ApiError> {
    let meta = st.engine.world_meta(w.info.id.as_str())?;
    let template = meta.template.unwrap_or_else(|| "base".into());
    let end = w
        .ttl
        .ttl_expire_at
        .unwrap_or(w.info.created_at + MAX_TIMEOUT);
    let metadata: BTreeMap<&String, &String> = w.metadata.iter().collect();
    Ok(json!({
        "templateID": template,
        "alias": template,
        "sandboxID": w.info.id,
        "clientID": "worldruntime",
        "startedAt": rfc3339(w.info.created_at),
        "endAt": rfc3339(end),
        "cpuCount": w.info.limits.vcpu_count.max(1),
        "memoryMB": w.info.limits.mem_size_mib,
        "diskSizeMB": w.info.limits.disk_mib.unwrap_or(0),
        "state": state_of(w),
        "envdVersion": ENVD_VERSION,
        "metadata": metadata,
    }))
}

/// One page of `all` from `from`, with `x-next-token` when more follow.
fn page(all: Vec<Value>, from: usize, limit: usize) -> Result<Response, ApiError> {
    let total = all.len();
    let page: Vec<Value> = all.into_iter().skip(from).take(limit).collect();
    let mut headers = HeaderMap::new();
    if from + page.len() < total {
        headers.insert(
            "x-next-token",
            HeaderValue::from_str(&(from + page.len()).to_string())
                .map_err(|e| ApiError::internal(e.to_string()))?,
        );
    }
    Ok((headers, Json(page)).into_response())
}

/// The `limit` and `nextToken` parameters of a listing.
fn paging(k: &str, v: &str, limit: &mut usize, from: &mut usize) -> Result<(), ApiError> {
    match k {
        "limit" => {
            *limit = v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| ApiError::bad_request("limit must be 1..=1000"))?
        }
        "nextToken" => {
            *from = v
                .parse()
                .map_err(|_| ApiError::bad_request("nextToken is not one we gave"))?
        }
        _ => {}
    }
    Ok(())
}

/// Decodes E2B's metadata filter. The SDK quotes each key and value,
/// form-encodes the pairs, and the HTTP layer encodes that string once
/// more as the `metadata` parameter: so after the query string is parsed,
/// the value is form-encoded pairs whose parts are percent-encoded once
/// more.
pub fn metadata_filter(raw: &str) -> Metadata {
    form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| {
            let un = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (un(&k), un(&v))
        })
        .collect()
}

async fn list(st: St, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let mut filter = Metadata::new();
    let mut states: Option<Vec<String>> = None;
    let mut limit = PAGE;
    let mut from = 0usize;
    for (k, v) in form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        match &*k {
            "metadata" => filter.extend(metadata_filter(&v)),
            "state" => states = Some(v.split(',').map(str::to_string).collect()),
            k => paging(k, &v, &mut limit, &mut from)?,
        }
    }
    let mut all = list_worlds(&st).await?;
    all.sort_by(|a, b| {
        (a.info.created_at, a.info.id.as_str()).cmp(&(b.info.created_at, b.info.id.as_str()))
    });
    let picked: Vec<Value> = all
        .iter()
        .filter(|w| filter.iter().all(|(k, v)| w.metadata.get(k) == Some(v)))
        .filter(|w| {
            states
                .as_ref()
                .is_none_or(|s| s.iter().any(|x| x == state_of(w)))
        })
        .map(|w| listed(&st, w))
        .collect::<Result<_, _>>()?;
    page(picked, from, limit)
}

async fn detail(st: St, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let w = get_world(&st, world_id(&id)?).await?;
    let mut v = listed(&st, &w)?;
    v["envdAccessToken"] = json!(st.token);
    Ok(Json(v))
}

async fn kill(st: St, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = world_id(&id)?;
    st.run(move |st| st.destroy_world(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeoutReq {
    timeout: u64,
}

/// Sets the sandbox's remaining lifetime from now, keeping its action.
async fn set_lifetime(
    st: &Arc<AppState>,
    id: world_substrate::WorldId,
    secs: u64,
) -> Result<(), ApiError> {
    st.run(move |st| {
        st.engine.world_inspect(&id)?;
        st.engine.meta_update(|m| {
            let e = m.worlds.entry(id.to_string()).or_default();
            let action = e.ttl.ttl_action.or(Some(TtlAction::Stop));
            e.ttl = Ttl::from_now(Some(secs), action);
        })?;
        Ok(())
    })
    .await
}

async fn timeout(
    st: St,
    Path(id): Path<String>,
    Body(r): Body<TimeoutReq>,
) -> Result<StatusCode, ApiError> {
    let secs = lifetime(Some(r.timeout))?;
    set_lifetime(&st, world_id(&id)?, secs).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pause(st: St, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = world_id(&id)?;
    if get_world(&st, id.clone()).await?.paused {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "world_paused",
            format!("sandbox {id} is already paused"),
        ));
    }
    set_paused(&st, id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, Default, schemars::JsonSchema)]
pub(crate) struct ConnectReq {
    timeout: Option<u64>,
}

async fn connect(
    st: St,
    Path(id): Path<String>,
    OptBody(r): OptBody<ConnectReq>,
) -> Result<Json<Value>, ApiError> {
    let id = world_id(&id)?;
    let w = get_world(&st, id.clone()).await?;
    if w.paused {
        set_paused(&st, id.clone(), false).await?;
    }
    if let Some(t) = r.timeout {
        set_lifetime(&st, id.clone(), lifetime(Some(t))?).await?;
    }
    let template = st
        .engine
        .world_meta(id.as_str())?
        .template
        .unwrap_or_else(|| "base".into());
    Ok(Json(sandbox_json(&st, id.as_str(), &template)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_sdks_double_encoding_decodes() {
        // What e2b 2.63 sends for {"user": "alice smith", "k": "a&b=c"},
        // after the query string itself is parsed.
        let m = metadata_filter("user=alice%2520smith&k=a%2526b%253Dc");
        assert_eq!(m.get("user").map(String::as_str), Some("alice smith"));
        assert_eq!(m.get("k").map(String::as_str), Some("a&b=c"));
    }

    proptest! {
        /// Whatever the metadata, the SDK's encoding decodes to it.
        #[test]
        fn metadata_round_trips(k in "[ -~]{1,12}", v in "[ -~]{0,12}") {
            let q = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
            let inner: String = form_urlencoded::Serializer::new(String::new())
                .append_pair(&q(&k), &q(&v))
                .finish();
            let m = metadata_filter(&inner);
            prop_assert_eq!(m.get(&k), Some(&v));
        }

        #[test]
        fn times_are_rfc3339(s in 0u64..4_000_000_000) {
            let t = rfc3339(s);
            prop_assert_eq!(chrono::DateTime::parse_from_rfc3339(&t).unwrap().timestamp() as u64, s);
        }
    }
}

/// E2B's cap on forks per call.
const MAX_FORKS: usize = 20;

#[derive(Debug, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForkReq {
    timeout: Option<u64>,
    count: Option<usize>,
}

async fn fork(
    st: St,
    Path(id): Path<String>,
    OptBody(r): OptBody<ForkReq>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = world_id(&id)?;
    let count = r.count.unwrap_or(1);
    if !(1..=MAX_FORKS).contains(&count) {
        return Err(ApiError::bad_request(format!(
            "count must be 1..={MAX_FORKS}"
        )));
    }
    let secs = lifetime(r.timeout)?;
    let parent = get_world(&st, id.clone()).await?;
    let pmeta = st.engine.world_meta(id.as_str())?;
    let opts = world_substrate::snapshot::BranchOptions::default();
    let b = crate::routes::worlds::branch_source(
        &st,
        id.to_string(),
        count,
        opts,
        parent.metadata.clone(),
    )
    .await?;
    let template = pmeta.template.clone().unwrap_or_else(|| "base".into());
    let kids = b.children.clone();
    let action = pmeta.ttl.ttl_action.unwrap_or(TtlAction::Stop);
    st.run(move |st| {
        st.engine.meta_update(|m| {
            for c in &kids {
                let e = m.worlds.entry(c.to_string()).or_default();
                e.env = pmeta.env.clone();
                e.template = pmeta.template.clone();
                // The sessions are forked with their memory: so are the
                // code-interpreter contexts that name them.
                e.contexts = pmeta.contexts.clone();
                e.ttl = Ttl::from_now(Some(secs), Some(action));
            }
        })?;
        Ok(())
    })
    .await?;
    let out: Vec<Value> = b
        .children
        .iter()
        .map(|c| json!({ "sandbox": sandbox_json(&st, c.as_str(), &template) }))
        .collect();
    Ok((StatusCode::CREATED, Json(Value::Array(out))))
}

#[derive(Debug, Deserialize, Default, schemars::JsonSchema)]
pub(crate) struct SnapshotReq {
    name: Option<String>,
    /// E2B's `mode`: memory is always kept here (sessions' memory).
    #[serde(default)]
    _memory: Option<bool>,
}

fn snapshot_json(s: &world_substrate::snapshot::SnapshotInfo) -> Value {
    json!({"snapshotID": s.id, "names": [s.name]})
}

async fn snapshot(
    st: St,
    Path(id): Path<String>,
    OptBody(r): OptBody<SnapshotReq>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = world_id(&id)?;
    let info = crate::routes::worlds::snapshot_world(
        &st,
        id,
        r.name.filter(|n| !n.is_empty()),
        crate::meta::SnapMeta::default(),
        false,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(snapshot_json(&info))))
}

async fn snapshots(st: St, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let (mut world, mut name, mut limit, mut from) = (None, None, PAGE, 0usize);
    for (k, v) in form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        match &*k {
            "sandboxID" => world = Some(v.into_owned()),
            "name" => name = Some(v.into_owned()),
            k => paging(k, &v, &mut limit, &mut from)?,
        }
    }
    let mut all = crate::routes::snapshots::all(&st).await?;
    all.sort_by(|a, b| (a.info.created_at, &a.info.id).cmp(&(b.info.created_at, &b.info.id)));
    let picked: Vec<Value> = all
        .iter()
        .filter(|s| world.as_deref().is_none_or(|w| s.info.world.as_str() == w))
        .filter(|s| name.as_deref().is_none_or(|n| s.info.name == n))
        .map(|s| snapshot_json(&s.info))
        .collect();
    page(picked, from, limit)
}

async fn delete_snapshot(st: St, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    crate::routes::snapshots::remove(&st, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
