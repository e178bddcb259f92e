//! Files of E2B's agent: `filesystem.Filesystem` `Stat`, `ListDir`,
//! `MakeDir`, `Remove` (Connect unary calls) and plain `GET`/`POST
//! /files`. Every operation is a command run in the world (`find`,
//! `mkdir`, `rm`, `cat`, with the path as an argument, never in the
//! script), so it happens inside the world under its limits and sees only
//! its files. Reads and writes stream; the host never holds a file.
//!
//! A relative path is taken from `/root`, the home of the world's user.

use std::os::fd::AsFd;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Multipart, RawQuery, Request, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use world_substrate::{ExecRequest, ExecStdio};

use super::connect::{unary, Code, ConnectError};
use super::Sandbox;
use crate::state::AppState;

/// Most entries one listing answers (each becomes a JSON object here).
const MAX_ENTRIES: usize = 50_000;

/// Exit codes of the scripts below.
const GONE: i32 = 44;
const NOT_DIR: i32 = 45;
const EXISTS: i32 = 46;
const IS_DIR: i32 = 47;

/// Fields `find -printf` writes per entry, NUL-terminated each: type,
/// size, mode (octal), owner, group, mtime (epoch, fractional), symlink
/// target, path.
const FIELDS: &str = r"%y\0%s\0%m\0%u\0%g\0%T@\0%l\0%p\0";

/// The path in the world for what a client sent.
fn world_path(p: &str) -> Result<String, ConnectError> {
    if p.is_empty() || p.contains('\0') || p.len() > 4096 {
        return Err(ConnectError::new(Code::InvalidArgument, "bad path"));
    }
    Ok(if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/root/{p}")
    })
}

/// Runs `script` with `sh -c` and the given arguments in the sandbox.
async fn sh(
    st: &Arc<AppState>,
    sb: &Sandbox,
    script: &str,
    args: &[&str],
) -> Result<world_substrate::ExecOutput, ConnectError> {
    let mut argv = vec![
        "/bin/sh".to_string(),
        "-c".into(),
        script.into(),
        "sh".into(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    let req = ExecRequest::new(&argv);
    let id = sb.id.clone();
    st.run(move |st| Ok(st.engine.world_exec_output(&id, &req, b"")?))
        .await
        .map_err(ConnectError::from)
}

fn failure(o: &world_substrate::ExecOutput, path: &str) -> ConnectError {
    let stderr = String::from_utf8_lossy(&o.stderr).trim().to_string();
    match o.status.exit_code {
        GONE => ConnectError::new(Code::NotFound, format!("path '{path}' does not exist")),
        NOT_DIR => ConnectError::new(
            Code::InvalidArgument,
            format!("path '{path}' is not a directory"),
        ),
        EXISTS => ConnectError::new(Code::AlreadyExists, format!("path '{path}' already exists")),
        IS_DIR => ConnectError::new(
            Code::InvalidArgument,
            format!("path '{path}' is a directory"),
        ),
        // The world refused (a parent that is a file, a directory that is
        // not empty, no permission): the request cannot be done as asked.
        c => ConnectError::new(
            Code::FailedPrecondition,
            format!(
                "{path}: {} (exit {c})",
                if stderr.is_empty() {
                    "refused"
                } else {
                    &stderr
                }
            ),
        ),
    }
}

/// Parses `find -printf FIELDS` output into EntryInfo JSON objects.
pub fn entries(out: &[u8]) -> Result<Vec<Value>, ConnectError> {
    let tail = &out[out.len().saturating_sub(160)..];
    if String::from_utf8_lossy(tail).contains("[world-runtime: output truncated:") {
        return Err(ConnectError::new(
            Code::ResourceExhausted,
            "the listing is larger than 16 MiB; list a smaller depth",
        ));
    }
    let parts: Vec<&[u8]> = out.split(|b| *b == 0).collect();
    if parts.len() / 8 > MAX_ENTRIES {
        return Err(ConnectError::new(
            Code::ResourceExhausted,
            format!("more than {MAX_ENTRIES} entries; list a smaller depth"),
        ));
    }
    let mut v = Vec::new();
    for f in parts.chunks_exact(8) {
        let s = |i: usize| String::from_utf8_lossy(f[i]).into_owned();
        let path = s(7);
        let name = path.rsplit('/').next().unwrap_or("").to_string();
        let ty = match f[0] {
            b"d" => "FILE_TYPE_DIRECTORY",
            b"l" => "FILE_TYPE_SYMLINK",
            _ => "FILE_TYPE_FILE",
        };
        let mode = u32::from_str_radix(&s(2), 8).unwrap_or(0);
        let mtime = s(5)
            .split('.')
            .next()
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(0);
        let time = chrono::DateTime::from_timestamp(mtime, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut e = json!({
            "name": name, "type": ty, "path": path, "size": s(1), "mode": mode,
            "permissions": permissions(f[0], mode), "owner": s(3), "group": s(4),
            "modifiedTime": time,
        });
        if f[0] == b"l" {
            e["symlinkTarget"] = json!(s(6));
        }
        v.push(e);
    }
    Ok(v)
}

fn permissions(kind: &[u8], mode: u32) -> String {
    let mut p = String::with_capacity(10);
    p.push(match kind {
        b"d" => 'd',
        b"l" => 'l',
        _ => '-',
    });
    for shift in [6, 3, 0] {
        let b = (mode >> shift) & 7;
        p.push(if b & 4 != 0 { 'r' } else { '-' });
        p.push(if b & 2 != 0 { 'w' } else { '-' });
        p.push(if b & 1 != 0 { 'x' } else { '-' });
    }
    p
}

/// Runs a script that ends with `find -printf FIELDS` for one path and
/// answers `{"entry": ...}`; errors name `path`.
async fn one_entry(
    st: &Arc<AppState>,
    sb: &Sandbox,
    script: &str,
    args: &[&str],
    path: &str,
) -> Result<Json<Value>, ConnectError> {
    let o = sh(st, sb, script, args).await?;
    if o.status.exit_code != 0 {
        return Err(failure(&o, path));
    }
    let e = entries(&o.stdout)?
        .into_iter()
        .next()
        .ok_or_else(|| failure(&o, path))?;
    Ok(Json(json!({ "entry": e })))
}

#[derive(Debug, Deserialize)]
struct PathReq {
    path: String,
    #[serde(default)]
    depth: Option<u32>,
}

/// `Stat`.
pub async fn stat(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ConnectError> {
    let r: PathReq = unary(&headers, &body)?;
    let p = world_path(&r.path)?;
    let script = format!("[ -e \"$1\" ] || [ -L \"$1\" ] || exit {GONE}; exec find \"$1\" -maxdepth 0 -printf '{FIELDS}'");
    one_entry(&st, &sb, &script, &[&p], &p).await
}

/// `ListDir` (depth 1: the directory's entries; more: their contents too).
pub async fn list_dir(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ConnectError> {
    let r: PathReq = unary(&headers, &body)?;
    let p = world_path(&r.path)?;
    let depth = r.depth.unwrap_or(1).clamp(1, 64).to_string();
    let script = format!(
        "[ -e \"$1\" ] || exit {GONE}; [ -d \"$1\" ] || exit {NOT_DIR}; \
         exec find \"$1\" -mindepth 1 -maxdepth \"$2\" -printf '{FIELDS}'"
    );
    let o = sh(&st, &sb, &script, &[&p, &depth]).await?;
    if o.status.exit_code != 0 {
        return Err(failure(&o, &p));
    }
    Ok(Json(json!({ "entries": entries(&o.stdout)? })))
}

/// Runs a path script for a unary call: `{}` when it exits 0, else the
/// error its exit code means.
async fn path_rpc(
    st: &Arc<AppState>,
    sb: &Sandbox,
    headers: &HeaderMap,
    body: &[u8],
    script: &str,
) -> Result<Json<Value>, ConnectError> {
    let r: PathReq = unary(headers, body)?;
    let p = world_path(&r.path)?;
    let o = sh(st, sb, script, &[&p]).await?;
    if o.status.exit_code != 0 {
        return Err(failure(&o, &p));
    }
    Ok(Json(json!({})))
}

/// `MakeDir` (parents too; an existing path is `already_exists`).
pub async fn make_dir(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ConnectError> {
    let script = format!("[ -e \"$1\" ] && exit {EXISTS}; mkdir -p -- \"$1\"");
    path_rpc(&st, &sb, &headers, &body, &script).await
}

/// `Remove` (a file, a link or a whole directory).
pub async fn remove(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ConnectError> {
    let script = format!("[ -e \"$1\" ] || [ -L \"$1\" ] || exit {GONE}; rm -rf -- \"$1\"");
    path_rpc(&st, &sb, &headers, &body, &script).await
}

#[derive(Debug, Deserialize)]
struct MoveReq {
    source: String,
    destination: String,
}

/// `Move` (rename; the destination must not exist as a directory to
/// merge into: it is replaced like `mv -T`).
pub async fn move_entry(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ConnectError> {
    let r: MoveReq = unary(&headers, &body)?;
    let (from, to) = (world_path(&r.source)?, world_path(&r.destination)?);
    let script = format!(
        "[ -e \"$1\" ] || [ -L \"$1\" ] || exit {GONE}; mkdir -p -- \"$(dirname -- \"$2\")\" && \
         mv -T -- \"$1\" \"$2\" && exec find \"$2\" -maxdepth 0 -printf '{FIELDS}'"
    );
    one_entry(&st, &sb, &script, &[&from, &to], &from).await
}

fn query_path(q: &Option<String>) -> Option<String> {
    form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "path")
        .map(|(_, v)| v.into_owned())
}

/// `GET /files?path=`: the file's bytes, streamed.
pub async fn read(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    RawQuery(q): RawQuery,
) -> Result<Response, ConnectError> {
    let p = world_path(
        &query_path(&q)
            .ok_or_else(|| ConnectError::new(Code::InvalidArgument, "path is required"))?,
    )?;
    let check =
        format!("[ -e \"$1\" ] || exit {GONE}; [ -d \"$1\" ] && exit {IS_DIR}; [ -r \"$1\" ]");
    let o = sh(&st, &sb, &check, &[&p]).await?;
    if o.status.exit_code != 0 {
        return Err(failure(&o, &p));
    }
    let io = |e: std::io::Error| ConnectError::new(Code::Internal, format!("streams: {e}"));
    let (mut out, w) = super::stream_pair().map_err(io)?;
    let req = ExecRequest::new(&["cat", "--", &p]);
    let (st2, id) = (st.clone(), sb.id.clone());
    let permit = st
        .long_call()
        .map_err(|e| ConnectError::new(Code::ResourceExhausted, e.message))?;
    let job = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let stdio = ExecStdio {
            stdin: None,
            stdout: Some(w.as_fd()),
            stderr: None,
            cancel: None,
        };
        st2.engine.world_exec(&id, &req, stdio)
    });
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match out.read(&mut buf).await {
                Ok(0) => {
                    // A read that did not end well must not look whole: the
                    // response is cut off with an error.
                    let ok = matches!(job.await, Ok(Ok(s)) if s.exit_code == 0);
                    if !ok {
                        let _ = tx
                            .send(Err(std::io::Error::other("the read failed in the world")))
                            .await;
                    }
                    break;
                }
                Ok(n) => {
                    if tx
                        .send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response())
}

/// Streams `chunks` into `path` in the world (parents made, the file
/// replaced), through `cat` reading its stdin.
async fn write_one<S>(
    st: &Arc<AppState>,
    sb: &Sandbox,
    path: &str,
    mut chunks: S,
) -> Result<Value, ConnectError>
where
    S: futures_util::Stream<Item = Result<Bytes, ConnectError>> + Unpin,
{
    let io = |e: std::io::Error| ConnectError::new(Code::Internal, format!("streams: {e}"));
    let (mut input, r) = super::stream_pair().map_err(io)?;
    // Into a new file beside the target, moved over it only once the
    // whole body arrived (a broken upload leaves the old file as it was).
    let tmp = format!("{path}.upload-{}", world_substrate::lineage::random_id("t"));
    let script = format!(
        "[ -d \"$1\" ] && exit {IS_DIR}; mkdir -p -- \"$(dirname -- \"$1\")\" && cat > \"$2\""
    );
    let req = ExecRequest::new(&["/bin/sh", "-c", &script, "sh", path, &tmp]);
    let (st2, id) = (st.clone(), sb.id.clone());
    let permit = st
        .long_call()
        .map_err(|e| ConnectError::new(Code::ResourceExhausted, e.message))?;
    let job = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let stdio = ExecStdio {
            stdin: Some(r.as_fd()),
            stdout: None,
            stderr: None,
            cancel: None,
        };
        st2.engine.world_exec(&id, &req, stdio)
    });
    let mut failed = None;
    while let Some(c) = futures_util::StreamExt::next(&mut chunks).await {
        match c {
            Ok(b) => {
                if input.write_all(&b).await.is_err() {
                    break; // the writer ended (an error it reports below)
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    drop(input);
    let status = job
        .await
        .map_err(|e| ConnectError::new(Code::Internal, e.to_string()))?
        .map_err(|e| ConnectError::from(crate::ApiError::from(e)))?;
    let finish = if failed.is_none() && status.exit_code == 0 {
        "mv -f -- \"$1\" \"$2\""
    } else {
        "rm -f -- \"$1\""
    };
    let o = sh(st, sb, finish, &[&tmp, path]).await?;
    if let Some(e) = failed {
        return Err(e);
    }
    if o.status.exit_code != 0 {
        return Err(failure(&o, path));
    }
    match status.exit_code {
        0 => {}
        IS_DIR => {
            return Err(ConnectError::new(
                Code::InvalidArgument,
                format!("path '{path}' is a directory"),
            ))
        }
        c => {
            return Err(ConnectError::new(
                Code::Internal,
                format!("writing {path} failed (exit {c}); is the world's disk full?"),
            ))
        }
    }
    let name = path.rsplit('/').next().unwrap_or("").to_string();
    Ok(json!({"name": name, "type": "file", "path": path}))
}

/// `POST /files`: multipart (one part per file, named by its filename or
/// the `path` parameter) or a raw `application/octet-stream` body for
/// `?path=`. Answers the written entries.
pub async fn write(
    State(st): State<Arc<AppState>>,
    Extension(sb): Extension<Sandbox>,
    RawQuery(q): RawQuery,
    req: Request,
) -> Result<Json<Value>, ConnectError> {
    let qpath = query_path(&q);
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if req
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v != "identity")
    {
        return Err(ConnectError::new(
            Code::Unimplemented,
            "compressed uploads are not supported",
        ));
    }
    let mut written = Vec::new();
    if ct.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| ConnectError::new(Code::InvalidArgument, e.body_text()))?;
        loop {
            let field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(ConnectError::new(Code::InvalidArgument, e.body_text())),
            };
            let target = match (&qpath, field.file_name()) {
                (Some(p), _) if written.is_empty() => p.clone(),
                (_, Some(f)) => f.to_string(),
                _ => {
                    return Err(ConnectError::new(
                        Code::InvalidArgument,
                        "a part names no file",
                    ))
                }
            };
            let p = world_path(&target)?;
            let chunks = futures_util::stream::unfold(field, |mut f| async move {
                match f.chunk().await {
                    Ok(Some(b)) => Some((Ok(b), f)),
                    Ok(None) => None,
                    Err(e) => Some((
                        Err(ConnectError::new(Code::InvalidArgument, e.body_text())),
                        f,
                    )),
                }
            });
            written.push(write_one(&st, &sb, &p, Box::pin(chunks)).await?);
        }
    } else {
        let p = world_path(
            &qpath.ok_or_else(|| ConnectError::new(Code::InvalidArgument, "path is required"))?,
        )?;
        let body = req.into_body().into_data_stream();
        let chunks = futures_util::StreamExt::map(body, |r| {
            r.map_err(|e| ConnectError::new(Code::InvalidArgument, e.to_string()))
        });
        written.push(write_one(&st, &sb, &p, Box::pin(chunks)).await?);
    }
    if written.is_empty() {
        return Err(ConnectError::new(
            Code::InvalidArgument,
            "no file in the request",
        ));
    }
    Ok(Json(Value::Array(written)))
}

use axum::extract::FromRequest;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_output_parses() {
        let out = b"f\x005\x00644\x00root\x00root\x001700000000.5\x00\x00/root/a b\x00d\x004096\x00755\x00root\x00root\x001700000000.0\x00\x00/root/d\x00l\x001\x00777\x00root\x00root\x000.0\x00/x\x00/root/l\x00";
        let e = entries(out).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0]["name"], "a b");
        assert_eq!(e[0]["type"], "FILE_TYPE_FILE");
        assert_eq!(e[0]["permissions"], "-rw-r--r--");
        assert_eq!(e[1]["type"], "FILE_TYPE_DIRECTORY");
        assert_eq!(e[2]["symlinkTarget"], "/x");
        assert!(world_path("").is_err());
        assert_eq!(world_path("x").unwrap(), "/root/x");
    }
}
