//! `/v1/worlds/{id}/exec` (captured) and `/v1/worlds/{id}/exec/stream`
//! (server-sent events); the Morph instance routes reuse both.

use std::convert::Infallible;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use world_engine::actions::{self, Command, ExecResponse};
use world_substrate::{ExecRequest, ExecStdio, WorldId};

use super::{world_id, St};
use crate::extract::Body;
use crate::state::AppState;
use crate::ApiError;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/worlds/{id}/exec", post(exec))
        .route("/v1/worlds/{id}/exec/stream", post(exec_stream))
}

/// Turns a command into an argv (`sh -c` for shell lines), checked.
pub fn argv_of(c: Command) -> Result<Vec<String>, ApiError> {
    Ok(c.argv()?)
}

/// Runs a command in a world and captures its output.
pub async fn exec_captured(
    st: &Arc<AppState>,
    id: WorldId,
    req: ExecRequest,
    stdin: Vec<u8>,
) -> Result<ExecResponse, ApiError> {
    st.run(move |st| {
        let t = Instant::now();
        let r = st.engine.world_exec_output(&id, &req, &stdin);
        let duration_ms = t.elapsed().as_secs_f64() * 1000.0;
        Ok(ExecResponse::from_outcome(r, duration_ms)?)
    })
    .await
}

async fn exec(
    st: St,
    Path(id): Path<String>,
    Body(r): Body<actions::ExecRequest>,
) -> Result<Json<ExecResponse>, ApiError> {
    let id = world_id(&id)?;
    let (req, stdin) = r.to_substrate()?;
    Ok(Json(exec_captured(&st, id, req, stdin).await?))
}

async fn exec_stream(
    st: St,
    Path(id): Path<String>,
    Body(r): Body<actions::ExecRequest>,
) -> Result<Response, ApiError> {
    let id = world_id(&id)?;
    if r.stdin.is_some() {
        return Err(ApiError::bad_request(
            "stdin is not supported by the streaming exec; use /exec",
        ));
    }
    let (req, _) = r.to_substrate()?;
    exec_sse(&st, id, req).await
}

fn event(kind: &str, content: &str) -> Result<Event, Infallible> {
    Ok(Event::default().data(serde_json::json!({"type": kind, "content": content}).to_string()))
}

/// Decodes UTF-8 across chunk boundaries: returns the complete text and
/// keeps an incomplete trailing sequence in `carry`.
pub fn decode(carry: &mut Vec<u8>, chunk: &[u8]) -> String {
    carry.extend_from_slice(chunk);
    let keep = match std::str::from_utf8(carry) {
        Ok(_) => 0,
        Err(e) if e.error_len().is_none() => carry.len() - e.valid_up_to(),
        Err(_) => 0,
    };
    let tail = carry.split_off(carry.len() - keep);
    let text = String::from_utf8_lossy(carry).into_owned();
    *carry = tail;
    text
}

/// Runs a command in a world, streaming `{"type": "stdout"|"stderr",
/// "content"}` events as it writes, then `{"type": "exit_code"}` and
/// `[DONE]` (the Morph SSE protocol).
pub async fn exec_sse(
    st: &Arc<AppState>,
    id: WorldId,
    req: ExecRequest,
) -> Result<Response, ApiError> {
    let i2 = id.clone();
    st.run(move |st| st.ensure_running(&i2)).await?;
    let io = |e: std::io::Error| ApiError::internal(format!("exec stream: {e}"));
    let (out_r, out_w) = std::os::unix::net::UnixStream::pair().map_err(io)?;
    let (err_r, err_w) = std::os::unix::net::UnixStream::pair().map_err(io)?;
    out_r.set_nonblocking(true).map_err(io)?;
    err_r.set_nonblocking(true).map_err(io)?;
    let mut out_r = tokio::net::UnixStream::from_std(out_r).map_err(io)?;
    let mut err_r = tokio::net::UnixStream::from_std(err_r).map_err(io)?;
    let st2 = st.clone();
    let mut job = tokio::task::spawn_blocking(move || {
        let stdio = ExecStdio {
            stdin: None,
            stdout: Some(out_w.as_fd()),
            stderr: Some(err_w.as_fd()),
            cancel: None,
        };
        st2.engine.world_exec(&id, &req, stdio)
    });
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(64);
    tokio::spawn(async move {
        let (mut ob, mut eb) = (vec![0u8; 16384], vec![0u8; 16384]);
        let (mut oc, mut ec) = (Vec::new(), Vec::new());
        let (mut out_open, mut err_open) = (true, true);
        let mut result = None;
        let mut grace = None;
        loop {
            if result.is_some() && !out_open && !err_open {
                break;
            }
            let deadline =
                grace.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                n = out_r.read(&mut ob), if out_open => match n {
                    Ok(n) if n > 0 => {
                        let s = decode(&mut oc, &ob[..n]);
                        if !s.is_empty() && tx.send(event("stdout", &s)).await.is_err() { return; }
                    }
                    _ => out_open = false,
                },
                n = err_r.read(&mut eb), if err_open => match n {
                    Ok(n) if n > 0 => {
                        let s = decode(&mut ec, &eb[..n]);
                        if !s.is_empty() && tx.send(event("stderr", &s)).await.is_err() { return; }
                    }
                    _ => err_open = false,
                },
                r = &mut job, if result.is_none() => {
                    result = Some(r);
                    // Output of background processes still holding the
                    // pipes is not waited for beyond a short grace.
                    grace = Some(tokio::time::Instant::now() + Duration::from_millis(200));
                },
                _ = tokio::time::sleep_until(deadline), if grace.is_some() => break,
            }
        }
        let code = match result {
            Some(Ok(Ok(s))) => s.shell_code(),
            Some(Ok(Err(e))) => {
                let _ = tx.send(event("stderr", &format!("{e}\n"))).await;
                e.kind().exec_exit_code().unwrap_or(125)
            }
            _ => 125,
        };
        let _ = tx.send(event("exit_code", &code.to_string())).await;
        let _ = tx.send(Ok(Event::default().data("[DONE]"))).await;
    });
    Ok(Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx)).into_response())
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn utf8_split_across_chunks_is_kept_whole() {
        let s = "héllo".as_bytes();
        let mut c = Vec::new();
        let a = decode(&mut c, &s[..2]);
        let b = decode(&mut c, &s[2..]);
        assert_eq!(format!("{a}{b}"), "héllo");
        assert_eq!(a, "h");
    }
}
