//! `process.Process` of E2B's agent: `Start` (a server stream of start,
//! data and end events) and `SendSignal`. A process is one exec in the
//! world; its pid is a number this daemon gives it (the SDK only hands it
//! back to `SendSignal`), and a signal kills its whole process tree
//! through the exec's cancel fd.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use world_substrate::{ExecRequest, ExecStdio, WorldId};

use super::connect::{end_stream, envelope, first_message, unary, Code, ConnectError};
use super::Sandbox;
use crate::state::AppState;

/// Running processes started through the door, by (sandbox, pid): what
/// ends each one (the write end of its cancel pipe), its input when it
/// was started with `stdin`, and its config for `List`.
#[derive(Default)]
pub struct Procs {
    next: AtomicU32,
    running: Mutex<HashMap<(String, u32), Proc>>,
}

struct Proc {
    cancel: OwnedFd,
    stdin: Option<Arc<tokio::sync::Mutex<Option<tokio::net::UnixStream>>>>,
    config: Value,
}

impl Procs {
    fn add(&self, world: &str, p: Proc) -> u32 {
        let pid = 1000 + self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert((world.to_string(), pid), p);
        pid
    }
    fn remove(&self, world: &str, pid: u32) -> Option<Proc> {
        self.lock().remove(&(world.to_string(), pid))
    }
    fn stdin_of(
        &self,
        world: &str,
        pid: u32,
    ) -> Result<Arc<tokio::sync::Mutex<Option<tokio::net::UnixStream>>>, ConnectError> {
        let g = self.lock();
        let p = g.get(&(world.to_string(), pid)).ok_or_else(|| {
            ConnectError::new(Code::NotFound, format!("process with pid {pid} not found"))
        })?;
        p.stdin.clone().ok_or_else(|| {
            ConnectError::new(
                Code::FailedPrecondition,
                format!("process {pid} was started without stdin"),
            )
        })
    }
    fn list(&self, world: &str) -> Vec<Value> {
        let g = self.lock();
        let mut v: Vec<(u32, Value)> = g
            .iter()
            .filter(|((w, _), _)| w == world)
            .map(|((_, pid), p)| (*pid, json!({"pid": pid, "config": p.config})))
            .collect();
        v.sort_by_key(|(pid, _)| *pid);
        v.into_iter().map(|(_, j)| j).collect()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u32), Proc>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProcessConfig {
    cmd: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    envs: BTreeMap<String, String>,
    cwd: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartRequest {
    process: ProcessConfig,
    #[serde(default)]
    stdin: Option<bool>,
    #[serde(default)]
    pty: Option<Value>,
    #[serde(default)]
    _tag: Option<String>,
}

fn invalid(m: impl Into<String>) -> ConnectError {
    ConnectError::new(Code::InvalidArgument, m)
}

fn request_of(
    r: StartRequest,
    base_env: BTreeMap<String, String>,
    h: &HeaderMap,
) -> Result<ExecRequest, ConnectError> {
    if r.pty.is_some() {
        return Err(ConnectError::new(
            Code::Unimplemented,
            "pty processes are not supported through the E2B door yet; use SSH (world serve --ssh)",
        ));
    }
    let p = r.process;
    let mut argv = vec![p.cmd];
    argv.extend(p.args);
    if argv[0].is_empty() || argv.iter().any(|a| a.contains('\0')) {
        return Err(invalid("cmd must be non-empty and without NUL"));
    }
    let mut req = ExecRequest::new(&argv);
    let mut env = base_env;
    env.extend(p.envs);
    for (k, v) in &env {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            return Err(invalid(format!("bad environment variable {k:?}")));
        }
    }
    req.env = env.into_iter().collect();
    if let Some(c) = p.cwd.filter(|c| !c.is_empty()) {
        if !c.starts_with('/') || c.contains('\0') {
            return Err(invalid("cwd must be an absolute path"));
        }
        req.cwd = Some(c);
    }
    // The whole call's deadline, as the client sends it; none (E2B's
    // `timeout=0`) is the longest a command may run.
    req.timeout = Some(world_substrate::config::MAX_EXEC_TIMEOUT);
    if let Some(ms) = h
        .get("connect-timeout-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
    {
        req.timeout = Some(Duration::from_millis(ms));
    }
    Ok(req)
}

fn event(e: Value) -> Bytes {
    Bytes::from(envelope(0, json!({ "event": e }).to_string().as_bytes()))
}

/// `POST /process.Process/Start`.
pub async fn start(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ConnectError> {
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some("application/connect+json")
    {
        return Err(invalid(
            "Start is a server stream: send application/connect+json",
        ));
    }
    let msg = first_message(&body)?;
    let r: StartRequest =
        serde_json::from_slice(msg).map_err(|e| invalid(format!("bad StartRequest: {e}")))?;
    let base_env = st
        .engine
        .world_meta(sb.id.as_str())
        .map_err(crate::ApiError::from)?
        .env;
    let config = json!({"cmd": r.process.cmd, "args": r.process.args,
        "envs": r.process.envs, "cwd": r.process.cwd});
    let with_stdin = r.stdin == Some(true);
    let req = request_of(r, base_env, &headers)?;
    let io = |e: std::io::Error| ConnectError::new(Code::Internal, format!("streams: {e}"));
    let pair = || super::stream_pair().map_err(io);
    let (mut out_r, out_w) = pair()?;
    let (mut err_r, err_w) = pair()?;
    let permit = st
        .long_call()
        .map_err(|e| ConnectError::new(Code::ResourceExhausted, e.message))?;
    let (cancel_r, cancel_w) = std::io::pipe().map_err(io)?;
    let (stdin_host, stdin_world) = if with_stdin {
        let (a, b) = pair()?;
        (Some(Arc::new(tokio::sync::Mutex::new(Some(a)))), Some(b))
    } else {
        (None, None)
    };
    let pid = st.e2b.add(
        sb.id.as_str(),
        Proc {
            cancel: cancel_w.into(),
            stdin: stdin_host,
            config,
        },
    );
    let (st2, id2) = (st.clone(), sb.id.clone());
    let mut job = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let stdio = ExecStdio {
            stdin: stdin_world.as_ref().map(|f| f.as_fd()),
            stdout: Some(out_w.as_fd()),
            stderr: Some(err_w.as_fd()),
            cancel: Some(cancel_r.as_fd()),
        };
        st2.engine.world_exec(&id2, &req, stdio)
    });
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(32);
    let st3 = st.clone();
    let id3: WorldId = sb.id.clone();
    tokio::spawn(async move {
        // A client that went away stops being written to, but the output
        // is still read (and dropped) so the process never blocks on it.
        let mut gone = tx
            .send(Ok(event(json!({"start": {"pid": pid}}))))
            .await
            .is_err();
        let send = |tx: &mpsc::Sender<Result<Bytes, Infallible>>, b: Bytes, gone: &mut bool| {
            let tx = tx.clone();
            let skip = *gone;
            async move { skip || tx.send(Ok(b)).await.is_err() }
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let (mut ob, mut eb) = (vec![0u8; 32 << 10], vec![0u8; 32 << 10]);
        let (mut out_open, mut err_open) = (true, true);
        let mut result = None;
        let mut grace = None;
        let mut keepalive = tokio::time::interval(Duration::from_secs(30));
        keepalive.tick().await;
        loop {
            if result.is_some() && !out_open && !err_open {
                break;
            }
            let deadline =
                grace.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                n = out_r.read(&mut ob), if out_open => match n {
                    Ok(n) if n > 0 => {
                        let e = event(json!({"data": {"stdout": b64.encode(&ob[..n])}}));
                        gone = send(&tx, e, &mut gone).await;
                    }
                    _ => out_open = false,
                },
                n = err_r.read(&mut eb), if err_open => match n {
                    Ok(n) if n > 0 => {
                        let e = event(json!({"data": {"stderr": b64.encode(&eb[..n])}}));
                        gone = send(&tx, e, &mut gone).await;
                    }
                    _ => err_open = false,
                },
                _ = keepalive.tick() => {
                    gone = send(&tx, event(json!({"keepalive": {}})), &mut gone).await;
                }
                r = &mut job, if result.is_none() => {
                    result = Some(r);
                    grace = Some(tokio::time::Instant::now() + Duration::from_millis(200));
                }
                _ = tokio::time::sleep_until(deadline), if grace.is_some() => break,
            }
        }
        st3.e2b.remove(id3.as_str(), pid);
        let end = match result {
            Some(Ok(Ok(s))) if s.signal.is_some() || s.timed_out => {
                let why = if s.timed_out {
                    "timeout: killed"
                } else {
                    "signal: killed"
                };
                json!({"end": {"exitCode": -1, "exited": false, "status": why, "error": why}})
            }
            Some(Ok(Ok(s))) => json!({"end": {
                "exitCode": s.exit_code, "exited": true,
                "status": format!("exit status {}", s.exit_code)}}),
            Some(Ok(Err(e))) => {
                let code = match e.kind() {
                    world_engine::ErrorKind::CommandNotFound => 127,
                    world_engine::ErrorKind::NotExecutable => 126,
                    _ => 125,
                };
                json!({"end": {"exitCode": code, "exited": true,
                    "status": format!("exit status {code}"), "error": e.to_string()}})
            }
            _ => {
                json!({"end": {"exitCode": 125, "exited": false, "status": "lost", "error": "the exec task failed"}})
            }
        };
        if !gone {
            let _ = tx.send(Ok(event(end))).await;
            let _ = tx.send(Ok(Bytes::from(end_stream(None)))).await;
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Ok((
        [(header::CONTENT_TYPE, "application/connect+json")],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct Selector {
    pid: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct SignalRequest {
    process: Selector,
    #[serde(default)]
    signal: Option<String>,
}

/// `POST /process.Process/SendSignal`: SIGKILL and SIGTERM both end the
/// process's whole tree at once (the exec's cancel).
pub async fn send_signal(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ConnectError> {
    let r: SignalRequest = unary(&headers, &body)?;
    match r.signal.as_deref() {
        None | Some("SIGNAL_SIGKILL") | Some("SIGNAL_SIGTERM") => {}
        Some(s) => return Err(invalid(format!("signal {s} is not supported"))),
    }
    let pid = r
        .process
        .pid
        .ok_or_else(|| invalid("select the process by pid"))?;
    match st.e2b.remove(sb.id.as_str(), pid) {
        // Closing the write end fires the exec's cancel.
        Some(p) => {
            drop(p.cancel);
            Ok(Json(json!({})))
        }
        None => Err(ConnectError::new(
            Code::NotFound,
            format!("process with pid {pid} not found"),
        )),
    }
}

/// `POST /process.Process/List`: the processes started here that run.
pub async fn list(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ConnectError> {
    let _: Value = unary(&headers, &body)?;
    Ok(Json(json!({"processes": st.e2b.list(sb.id.as_str())})))
}

#[derive(Debug, Deserialize)]
struct InputRequest {
    process: Selector,
    #[serde(default)]
    input: Option<Input>,
}

#[derive(Debug, Deserialize)]
struct Input {
    stdin: Option<String>,
    pty: Option<String>,
}

/// How long writing a process's input may wait for it to read.
const INPUT_WAIT: Duration = Duration::from_secs(30);

/// `POST /process.Process/SendInput`: bytes to a process started with
/// `stdin`.
pub async fn send_input(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ConnectError> {
    let r: InputRequest = unary(&headers, &body)?;
    let pid = r
        .process
        .pid
        .ok_or_else(|| invalid("select the process by pid"))?;
    let input = r.input.ok_or_else(|| invalid("no input"))?;
    if input.pty.is_some() {
        return Err(ConnectError::new(
            Code::Unimplemented,
            "pty input is not supported",
        ));
    }
    let data = base64::engine::general_purpose::STANDARD
        .decode(input.stdin.unwrap_or_default())
        .map_err(|e| invalid(format!("stdin is not base64: {e}")))?;
    let stdin = st.e2b.stdin_of(sb.id.as_str(), pid)?;
    let mut g = stdin.lock().await;
    let w = g.as_mut().ok_or_else(|| {
        ConnectError::new(
            Code::FailedPrecondition,
            format!("the stdin of process {pid} is closed"),
        )
    })?;
    match tokio::time::timeout(INPUT_WAIT, tokio::io::AsyncWriteExt::write_all(w, &data)).await {
        Ok(Ok(())) => Ok(Json(json!({}))),
        Ok(Err(e)) => Err(ConnectError::new(
            Code::FailedPrecondition,
            format!("process {pid} no longer reads its input: {e}"),
        )),
        Err(_) => Err(ConnectError::new(
            Code::ResourceExhausted,
            format!(
                "process {pid} has not read its input for {} s",
                INPUT_WAIT.as_secs()
            ),
        )),
    }
}

#[derive(Debug, Deserialize)]
struct CloseStdinRequest {
    process: Selector,
}

/// `POST /process.Process/CloseStdin`: the process reads end of input.
pub async fn close_stdin(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ConnectError> {
    let r: CloseStdinRequest = unary(&headers, &body)?;
    let pid = r
        .process
        .pid
        .ok_or_else(|| invalid("select the process by pid"))?;
    let stdin = st.e2b.stdin_of(sb.id.as_str(), pid)?;
    let mut g = stdin.lock().await;
    if let Some(mut w) = g.take() {
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut w).await;
    }
    Ok(Json(json!({})))
}
