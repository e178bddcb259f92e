//! The E2B front door: the official `e2b` SDKs work against `world serve`
//! with `E2B_API_URL` and `E2B_SANDBOX_URL` both set to the daemon's
//! address and `E2B_API_KEY` to its token.
//!
//! * [`control`]: the control plane (`/v2/sandboxes`, `/sandboxes/...`),
//!   authenticated by `X-API-KEY` like every other route.
//! * The sandbox agent ("envd"): a request carrying `E2b-Sandbox-Id` is
//!   taken by [`dispatch`] before any other route, checked against
//!   `X-Access-Token` (the sandbox's `envdAccessToken`, which is the
//!   daemon's token) and routed to [`process`] (`process.Process/Start`,
//!   `SendSignal`, `List`, `SendInput`, `CloseStdin`) or [`fs`]
//!   (`filesystem.Filesystem/Stat`, `ListDir`, `MakeDir`, `Move`,
//!   `Remove`, `GET`/`POST /files`), or answers `GET /health`.
//!   [`connect`] holds the Connect protocol's framing and errors.
//!
//! A sandbox is a world, and every operation goes through the engine's
//! exec in that world. The door keeps no state of its own but the table
//! of running processes (so that `SendSignal` can find them).
//!
//! * The code interpreter (`E2b-Sandbox-Port: 49999`): [`interp`].
//!
//! Not here yet (issue 15): templates built from Dockerfiles, pty
//! processes, `Connect` (re-attaching to a process's output),
//! `StreamInput`, `Update`, directory watches, metrics; each answers
//! Connect `unimplemented` (or a 404).

pub mod connect;
pub mod control;
pub mod fs;
pub mod interp;
pub mod process;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use world_substrate::WorldId;

use self::connect::{Code, ConnectError};
use crate::state::AppState;

pub use process::Procs;

/// The agent's port as the SDK names it.
pub const ENVD_PORT: &str = "49983";

/// The code interpreter's port.
pub const INTERP_PORT: &str = "49999";

/// The code interpreter's routes.
pub fn interp_router(st: Arc<AppState>) -> Router {
    Router::new()
        .route("/execute", post(interp::execute))
        .route(
            "/contexts",
            post(interp::create_context).get(interp::list_contexts),
        )
        .route(
            "/contexts/{id}",
            axum::routing::delete(interp::remove_context),
        )
        .route("/contexts/{id}/restart", post(interp::restart_context))
        .route("/health", get(|| async { "OK" }))
        .fallback(|req: Request| async move {
            (
                StatusCode::NOT_FOUND,
                format!("no route {} on the code interpreter", req.uri().path()),
            )
        })
        .layer(DefaultBodyLimit::max(16 << 20))
        .with_state(st)
}

/// The sandbox a request to the agent is for (checked to exist).
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Its world.
    pub id: WorldId,
}

/// The agent's routes.
pub fn envd_router(st: Arc<AppState>) -> Router {
    Router::new()
        .route("/process.Process/Start", post(process::start))
        .route("/process.Process/SendSignal", post(process::send_signal))
        .route("/process.Process/List", post(process::list))
        .route("/process.Process/SendInput", post(process::send_input))
        .route("/process.Process/CloseStdin", post(process::close_stdin))
        .route("/filesystem.Filesystem/Move", post(fs::move_entry))
        .route("/filesystem.Filesystem/Stat", post(fs::stat))
        .route("/filesystem.Filesystem/ListDir", post(fs::list_dir))
        .route("/filesystem.Filesystem/MakeDir", post(fs::make_dir))
        .route("/filesystem.Filesystem/Remove", post(fs::remove))
        .route(
            "/files",
            get(fs::read)
                .post(fs::write)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/health", get(|| async { StatusCode::NO_CONTENT }))
        .fallback(|req: Request| async move {
            ConnectError::new(
                Code::Unimplemented,
                format!(
                    "{} is not served by this sandbox agent yet",
                    req.uri().path()
                ),
            )
        })
        // Calls are small JSON; only uploads (above) stream, bounded by the
        // world's disk limit.
        .layer(DefaultBodyLimit::max(connect::MAX_MESSAGE + 5))
        .with_state(st)
}

/// A connected socket pair for a command's stream: the daemon's end
/// (non-blocking, for tokio) and the end the command gets.
pub fn stream_pair() -> std::io::Result<(tokio::net::UnixStream, std::os::fd::OwnedFd)> {
    let (a, b) = std::os::unix::net::UnixStream::pair()?;
    a.set_nonblocking(true)?;
    Ok((tokio::net::UnixStream::from_std(a)?, b.into()))
}

/// E2B's answer for a sandbox the proxy cannot reach: the SDKs turn it
/// into `SandboxNotRunningException` ("was not found").
fn not_running(msg: String) -> Response {
    (
        StatusCode::BAD_GATEWAY,
        axum::Json(json!({"code": 502, "message": msg})),
    )
        .into_response()
}

/// Takes requests for a sandbox's agent (header `E2b-Sandbox-Id`) away
/// from the daemon's own routes.
pub async fn dispatch(
    State((st, envd, interp)): State<(Arc<AppState>, Router, Router)>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(sid) = req
        .headers()
        .get("e2b-sandbox-id")
        .map(|v| v.to_str().unwrap_or("").to_string())
    else {
        return next.run(req).await;
    };
    // The agent's calls carry `X-Access-Token`; the code interpreter's
    // context calls only `E2B-Traffic-Access-Token` (both are the token
    // create answered).
    let token_ok = ["x-access-token", "e2b-traffic-access-token"]
        .iter()
        .any(|h| {
            req.headers()
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| crate::auth::same(t.as_bytes(), st.token.as_bytes()))
        });
    if !token_ok {
        return ConnectError::new(
            Code::Unauthenticated,
            "missing or wrong X-Access-Token (the sandbox's envdAccessToken)",
        )
        .into_response();
    }
    let port = req
        .headers()
        .get("e2b-sandbox-port")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(ENVD_PORT)
        .to_string();
    let Ok(id) = world_engine::world::world_id(&sid) else {
        return not_running(format!("The sandbox {sid:?} was not found"));
    };
    let id2 = id.clone();
    let alive = st
        .run(move |st| {
            let w = st.engine.world_inspect(&id2)?;
            Ok((
                w.state.can_exec(),
                w.state == world_substrate::WorldState::Paused,
            ))
        })
        .await;
    match alive {
        Ok((true, false)) => {}
        Ok((_, true)) => {
            return ConnectError::new(
                Code::FailedPrecondition,
                format!("sandbox {sid} is paused; connect to it to resume it"),
            )
            .into_response()
        }
        _ => return not_running(format!("The sandbox {sid} was not found")),
    }
    let router = match port.as_str() {
        ENVD_PORT => envd,
        INTERP_PORT => interp,
        _ => {
            return not_running(format!(
                "The sandbox {sid} has no service on port {port} through this door"
            ))
        }
    };
    req.extensions_mut().insert(Sandbox { id });
    match tower::ServiceExt::oneshot(router, req).await {
        Ok(r) => r,
        Err(e) => match e {},
    }
}
