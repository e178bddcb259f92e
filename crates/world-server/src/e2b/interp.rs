//! E2B's code interpreter (port 49999): `POST /execute` streaming one
//! JSON object per line, and `/contexts`. A context is a persistent Python
//! session of the world (the default one is the session `default`, the
//! same one `world run-code` and `/v1/worlds/{id}/run-code` use), so a
//! snapshot, a branch or an E2B `fork` carries its variables.
//!
//! `/execute` answers `number_of_executions`, then `stdout`/`stderr`
//! lines as the code writes them, then the last expression's value as
//! the main `result` (`text` is its `repr`, with `html`, `png`, ... from
//! its IPython `_repr_*_` methods) or an `error` (`name`, `value`,
//! `traceback`), then `end_of_execution`. Python only: another language
//! is a 400.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use world_substrate::session::CodeResult;

use super::Sandbox;
use crate::state::AppState;

/// The session behind E2B's default context.
pub const DEFAULT_CONTEXT: &str = "default";

/// Most contexts per sandbox.
const MAX_CONTEXTS: usize = 64;

/// Most bytes of rich formats passed on per result.
const FORMATS_MAX: usize = 8 << 20;

/// Where a context starts when none is asked for (the world's home).
const HOME: &str = "/root";

/// The interpreter's errors: a status and a plain-text body, which is
/// what the code-interpreter SDK reads.
#[derive(Debug)]
pub struct InterpError(StatusCode, String);

impl IntoResponse for InterpError {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.1,
        )
            .into_response()
    }
}

impl From<crate::ApiError> for InterpError {
    fn from(e: crate::ApiError) -> Self {
        InterpError(e.status, e.message)
    }
}

fn bad(m: impl Into<String>) -> InterpError {
    InterpError(StatusCode::BAD_REQUEST, m.into())
}

fn python_only(language: Option<&str>) -> Result<(), InterpError> {
    match language.map(str::to_ascii_lowercase).as_deref() {
        None | Some("python") | Some("python3") | Some("py") => Ok(()),
        Some(l) => Err(bad(format!(
            "language {l:?} is not available: this interpreter runs Python"
        ))),
    }
}

/// Whether `id` names a context of the sandbox (the default one always).
fn has_context(st: &AppState, sb: &Sandbox, id: &str) -> Result<bool, crate::ApiError> {
    Ok(id == DEFAULT_CONTEXT
        || st
            .engine
            .world_meta(sb.id.as_str())?
            .contexts
            .contains_key(id))
}

fn not_found(id: &str) -> InterpError {
    InterpError(StatusCode::NOT_FOUND, format!("Context {id} not found"))
}

/// `POST /execute` body.
#[derive(Debug, Deserialize)]
pub struct ExecuteReq {
    code: String,
    #[serde(default)]
    context_id: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    env_vars: Option<BTreeMap<String, String>>,
}

fn line(v: Value) -> Result<Bytes, Infallible> {
    let mut s = v.to_string();
    s.push('\n');
    Ok(Bytes::from(s))
}

/// A `stdout`/`stderr` line of what was read, whole UTF-8 characters only
/// (an incomplete one waits in `carry` for the next read).
fn text_line(kind: &str, carry: &mut Vec<u8>, chunk: &[u8]) -> Option<Value> {
    let text = crate::routes::exec::decode(carry, chunk);
    (!text.is_empty()).then(|| json!({"type": kind, "text": text, "timestamp": now()}))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// E2B's `error`: the exception's name and value from the traceback's last
/// line ("NameError: name 'y' is not defined").
pub fn error_parts(tb: &str) -> (String, String) {
    let last = tb.trim_end().lines().last().unwrap_or("").trim();
    match last.split_once(": ") {
        Some((n, v)) if !n.contains(' ') => (n.to_string(), v.to_string()),
        _ if !last.is_empty() && !last.contains(' ') => (last.to_string(), String::new()),
        _ => ("Error".to_string(), last.to_string()),
    }
}

/// The main result of a cell: `text` and the rich formats by E2B's names.
pub fn result_line(r: &CodeResult) -> Option<Value> {
    let text = r.value_repr.as_ref()?;
    let mut v = json!({"type": "result", "text": text, "is_main_result": true});
    let mut extra = serde_json::Map::new();
    // The agent caps its formats, but it runs in the world: the host caps
    // them again (count and size) before copying any.
    let mut left = FORMATS_MAX;
    for (mime, data) in r.formats.iter().take(16) {
        let size = match data {
            Value::String(s) => s.len(),
            other => other.to_string().len(),
        };
        if size > left {
            continue;
        }
        left -= size;
        let key = match mime.as_str() {
            "text/html" => "html",
            "text/markdown" => "markdown",
            "image/svg+xml" => "svg",
            "image/png" => "png",
            "image/jpeg" => "jpeg",
            "text/latex" => "latex",
            "application/json" => "json",
            "application/javascript" => "javascript",
            _ => {
                extra.insert(mime.clone(), data.clone());
                continue;
            }
        };
        v[key] = data.clone();
    }
    v["extra"] = Value::Object(extra);
    Some(v)
}

/// Code that sets the environment for one execution and gives back what
/// to restore.
fn env_code(env: &BTreeMap<String, String>) -> (String, String) {
    let set = serde_json::to_string(env).unwrap_or_else(|_| "{}".into());
    (
        format!(
            "import os as __e2b_os\n__e2b_env_saved = {{k: __e2b_os.environ.get(k) for k in {set}}}\n__e2b_os.environ.update({set})"
        ),
        "for __k, __v in __e2b_env_saved.items():\n    if __v is None: __e2b_os.environ.pop(__k, None)\n    else: __e2b_os.environ[__k] = __v\ndel __e2b_env_saved".into(),
    )
}

/// `POST /execute`.
pub async fn execute(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    body: Bytes,
) -> Result<Response, InterpError> {
    let r: ExecuteReq =
        serde_json::from_slice(&body).map_err(|e| bad(format!("bad request: {e}")))?;
    if r.context_id.is_some() && r.language.is_some() {
        return Err(bad("give a context or a language, not both"));
    }
    python_only(r.language.as_deref())?;
    let ctx = r.context_id.unwrap_or_else(|| DEFAULT_CONTEXT.into());
    if !has_context(&st, &sb, &ctx)? {
        return Err(not_found(&ctx));
    }
    let env = r.env_vars.unwrap_or_default();
    if env
        .keys()
        .any(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
        || env.values().any(|v| v.contains('\0'))
    {
        return Err(bad("bad env_vars"));
    }
    let io = |e: std::io::Error| InterpError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let pair = || super::stream_pair().map_err(io);
    let (mut out_r, out_w) = pair()?;
    let (mut err_r, err_w) = pair()?;
    let (st2, id, code) = (st.clone(), sb.id.clone(), r.code);
    let permit = st.long_call()?;
    let mut job = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let e = &st2.engine;
        let (set, restore) = env_code(&env);
        if !env.is_empty() {
            e.run_code(&id, &ctx, &set, None)?;
        }
        let r = e.run_code_stream(&id, &ctx, &code, None, out_w.as_fd(), err_w.as_fd());
        if !env.is_empty() {
            let _ = e.run_code(&id, &ctx, &restore, None);
        }
        r
    });
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(32);
    tokio::spawn(async move {
        let (mut ob, mut eb) = (vec![0u8; 32 << 10], vec![0u8; 32 << 10]);
        let (mut out_open, mut err_open) = (true, true);
        let (mut oc, mut ec) = (Vec::new(), Vec::new());
        let mut result = None;
        let mut grace = None;
        let mut keepalive = tokio::time::interval(Duration::from_secs(5));
        keepalive.tick().await;
        let mut gone = false;
        loop {
            if result.is_some() && !out_open && !err_open {
                break;
            }
            let deadline =
                grace.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
            let msg = tokio::select! {
                n = out_r.read(&mut ob), if out_open => match n {
                    Ok(n) if n > 0 => text_line("stdout", &mut oc, &ob[..n]),
                    _ => { out_open = false; None }
                },
                n = err_r.read(&mut eb), if err_open => match n {
                    Ok(n) if n > 0 => text_line("stderr", &mut ec, &eb[..n]),
                    _ => { err_open = false; None }
                },
                _ = keepalive.tick() => Some(json!({"type": "keepalive"})),
                r = &mut job, if result.is_none() => {
                    result = Some(r);
                    grace = Some(tokio::time::Instant::now() + Duration::from_millis(200));
                    None
                }
                _ = tokio::time::sleep_until(deadline), if grace.is_some() => break,
            };
            if let Some(m) = msg {
                if !gone && tx.send(line(m)).await.is_err() {
                    gone = true;
                }
            }
        }
        if gone {
            return;
        }
        let mut tail = Vec::new();
        match result {
            Some(Ok(Ok(r))) => {
                tail.push(json!({"type": "number_of_executions",
                    "execution_count": r.execution_count.unwrap_or(0)}));
                if let Some(tb) = &r.error {
                    let (name, value) = error_parts(tb);
                    tail.push(
                        json!({"type": "error", "name": name, "value": value, "traceback": tb}),
                    );
                } else if let Some(res) = result_line(&r) {
                    tail.push(res);
                }
            }
            Some(Ok(Err(e))) => {
                tail.push(json!({"type": "error", "name": "UnexpectedEndOfExecution",
                    "value": e.to_string(), "traceback": e.to_string()}));
            }
            _ => tail.push(json!({"type": "error", "name": "UnexpectedEndOfExecution",
                "value": "the execution task failed", "traceback": ""})),
        }
        tail.push(json!({"type": "end_of_execution"}));
        for m in tail {
            if tx.send(line(m)).await.is_err() {
                return;
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response())
}

/// `POST /contexts` body.
#[derive(Debug, Deserialize, Default)]
pub struct ContextReq {
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    language: Option<String>,
}

fn context_json(id: &str, cwd: &str) -> Value {
    json!({"id": id, "language": "python", "cwd": cwd})
}

/// Starts session `name` in `cwd`.
fn start_in(st: &AppState, sb: &Sandbox, name: &str, cwd: &str) -> Result<(), crate::ApiError> {
    st.engine.session_start(&sb.id, name)?;
    let code = format!(
        "import os as __o\n__o.chdir({})\ndel __o",
        serde_json::to_string(cwd).unwrap_or_default()
    );
    let r = st.engine.run_code(&sb.id, name, &code, None)?;
    if let Some(e) = r.error {
        let _ = st.engine.session_stop(&sb.id, name);
        return Err(crate::ApiError::bad_request(format!(
            "cwd {cwd}: {}",
            error_parts(&e).1
        )));
    }
    Ok(())
}

/// `POST /contexts`.
pub async fn create_context(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    body: Bytes,
) -> Result<Json<Value>, InterpError> {
    let r: ContextReq = if body.iter().all(u8::is_ascii_whitespace) {
        ContextReq::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| bad(format!("bad request: {e}")))?
    };
    python_only(r.language.as_deref())?;
    let cwd = r.cwd.unwrap_or_else(|| HOME.into());
    if !cwd.starts_with('/') || cwd.contains('\0') || cwd.len() > 4096 {
        return Err(bad("cwd must be an absolute path"));
    }
    let name = world_substrate::lineage::random_id("ctx");
    let (n2, c2, sb2) = (name.clone(), cwd.clone(), sb.clone());
    st.run(move |st| {
        // Counted and claimed in one step, so concurrent creates cannot
        // pass the cap together.
        let claimed = st.engine.meta_update(|m| {
            let w = m.worlds.entry(sb2.id.to_string()).or_default();
            if w.contexts.len() >= MAX_CONTEXTS {
                return false;
            }
            w.contexts.insert(n2.clone(), c2.clone());
            true
        })?;
        if !claimed {
            return Err(crate::ApiError::bad_request(format!(
                "at most {MAX_CONTEXTS} contexts per sandbox"
            )));
        }
        if let Err(e) = start_in(st, &sb2, &n2, &c2) {
            st.engine.meta_update(|m| {
                if let Some(w) = m.worlds.get_mut(sb2.id.as_str()) {
                    w.contexts.remove(&n2);
                }
            })?;
            return Err(e);
        }
        Ok(())
    })
    .await?;
    Ok(Json(context_json(&name, &cwd)))
}

/// `GET /contexts`: the default context and those made here.
pub async fn list_contexts(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
) -> Result<Json<Value>, InterpError> {
    let mut v = vec![context_json(DEFAULT_CONTEXT, HOME)];
    let meta = st
        .engine
        .world_meta(sb.id.as_str())
        .map_err(crate::ApiError::from)?;
    for (id, cwd) in meta.contexts {
        v.push(context_json(&id, &cwd));
    }
    Ok(Json(Value::Array(v)))
}

/// `DELETE /contexts/{id}`.
pub async fn remove_context(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    Path(id): Path<String>,
) -> Result<Json<Value>, InterpError> {
    if !has_context(&st, &sb, &id)? || id == DEFAULT_CONTEXT {
        return Err(not_found(&id));
    }
    st.run(move |st| {
        let _ = st.engine.session_stop(&sb.id, &id);
        st.engine.meta_update(|m| {
            if let Some(w) = m.worlds.get_mut(sb.id.as_str()) {
                w.contexts.remove(&id);
            }
        })?;
        Ok(())
    })
    .await?;
    Ok(Json(Value::Null))
}

/// `POST /contexts/{id}/restart`: a fresh interpreter, same id and cwd.
pub async fn restart_context(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    Path(id): Path<String>,
) -> Result<Json<Value>, InterpError> {
    if !has_context(&st, &sb, &id)? {
        return Err(not_found(&id));
    }
    let cwd = st
        .engine
        .world_meta(sb.id.as_str())
        .map_err(crate::ApiError::from)?
        .contexts
        .get(&id)
        .cloned()
        .unwrap_or_else(|| HOME.into());
    st.run(move |st| {
        let _ = st.engine.session_stop(&sb.id, &id);
        start_in(st, &sb, &id, &cwd)
    })
    .await?;
    Ok(Json(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_split_into_name_and_value() {
        let tb = "Traceback (most recent call last):\n  File \"<cell-1>\", line 1\nNameError: name 'y' is not defined\n";
        assert_eq!(
            error_parts(tb),
            ("NameError".into(), "name 'y' is not defined".into())
        );
        assert_eq!(
            error_parts("KeyboardInterrupt\n"),
            ("KeyboardInterrupt".into(), String::new())
        );
        assert_eq!(error_parts("").0, "Error");
    }

    #[test]
    fn rich_formats_take_e2b_names() {
        let mut r = CodeResult {
            value_repr: Some("2".into()),
            ..CodeResult::default()
        };
        r.formats.insert("text/html".into(), json!("<b>2</b>"));
        r.formats.insert("application/x-custom".into(), json!("z"));
        let v = result_line(&r).unwrap();
        assert_eq!(v["html"], "<b>2</b>");
        assert_eq!(v["extra"]["application/x-custom"], "z");
        assert_eq!(v["is_main_result"], true);
        assert!(result_line(&CodeResult::default()).is_none());
    }
}
