//! Services in worlds: a world's TCP port exposed as an HTTP route of the
//! daemon, `ANY /v1/services/{world}/{name}/{path}` (bearer token
//! required, like every route). `POST /v1/worlds/{id}/services {name,
//! port}` declares one, `DELETE /v1/worlds/{id}/services/{name}` removes
//! it; they go with the world. Morph's `expose_http_service` maps here.
//!
//! Each request is relayed through a small Python relay started with
//! exec in the world (worlds have their own network namespace, which the
//! daemon does not enter): the request is written to the relay's stdin
//! with `Connection: close`, the response read back from its stdout.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, post};
use axum::{Json, Router};
use serde::Deserialize;
use world_substrate::{ExecRequest, ExecStdio, WorldId};

use super::views::WorldView;
use super::{world_id, St};
use crate::extract::Body;
use crate::meta::HttpService;
use crate::state::AppState;
use crate::ApiError;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/worlds/{id}/services", post(expose))
        .route("/v1/worlds/{id}/services/{name}", delete(hide))
        .route("/v1/services/{world}/{name}", any(proxy_root))
        .route("/v1/services/{world}/{name}/", any(proxy_root))
        .route("/v1/services/{world}/{name}/{*rest}", any(proxy))
}

/// `{name, port}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ExposeReq {
    /// Service name (1-64 of `[A-Za-z0-9._-]`).
    pub name: String,
    /// TCP port in the world.
    pub port: u16,
    /// Morph's auth mode (every route needs the token here; accepted and ignored).
    #[serde(default)]
    pub auth_mode: Option<String>,
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Declares a service of a world.
pub async fn expose_service(
    st: &Arc<AppState>,
    id: WorldId,
    r: ExposeReq,
) -> Result<WorldView, ApiError> {
    if !valid_name(&r.name) {
        return Err(ApiError::bad_request(format!(
            "service name {:?}: use 1-64 of [A-Za-z0-9._-]",
            r.name.chars().take(70).collect::<String>()
        )));
    }
    if let Some(m) = r
        .auth_mode
        .as_deref()
        .filter(|m| *m != "api_key" && *m != "none")
    {
        return Err(ApiError::bad_request(format!(
            "auth_mode {m:?}: expected \"api_key\" (every route needs the token)"
        )));
    }
    if r.port == 0 {
        return Err(ApiError::bad_request("port must be 1-65535"));
    }
    st.run(move |st| {
        let info = st.engine.world_inspect(&id)?;
        st.engine.meta_update(|f| {
            let w = f.worlds.entry(id.to_string()).or_default();
            w.http_services.retain(|s| s.name != r.name);
            w.http_services.push(HttpService {
                name: r.name,
                port: r.port,
            });
        })?;
        Ok(WorldView::new(st, info, st.engine.world_meta(id.as_str())?))
    })
    .await
}

/// Removes a service of a world (404 if it has none of that name).
pub async fn hide_service(
    st: &Arc<AppState>,
    id: WorldId,
    name: String,
) -> Result<WorldView, ApiError> {
    st.run(move |st| {
        let info = st.engine.world_inspect(&id)?;
        let removed = st.engine.meta_update(|f| {
            let w = f.worlds.entry(id.to_string()).or_default();
            let n = w.http_services.len();
            w.http_services.retain(|s| s.name != name);
            n != w.http_services.len()
        })?;
        if !removed {
            return Err(ApiError::not_found(format!(
                "world {id} has no service {name:?}"
            )));
        }
        Ok(WorldView::new(st, info, st.engine.world_meta(id.as_str())?))
    })
    .await
}

async fn expose(
    st: St,
    Path(id): Path<String>,
    Body(r): Body<ExposeReq>,
) -> Result<(StatusCode, Json<WorldView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(expose_service(&st, world_id(&id)?, r).await?),
    ))
}

async fn hide(
    st: St,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<WorldView>, ApiError> {
    Ok(Json(hide_service(&st, world_id(&id)?, name).await?))
}

async fn proxy_root(
    st: St,
    Path((world, name)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    relay(&st, world, name, String::new(), method, uri, headers, body).await
}

async fn proxy(
    st: St,
    Path((world, name, rest)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    relay(&st, world, name, rest, method, uri, headers, body).await
}

const RELAY: &str = r#"
import socket, sys, threading
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=55)
except OSError as e:
    sys.stderr.write("connect: %s\n" % e); sys.exit(3)
def up():
    while True:
        b = sys.stdin.buffer.read1(65536)
        if not b: break
        s.sendall(b)
    try: s.shutdown(socket.SHUT_WR)
    except OSError: pass
threading.Thread(target=up, daemon=True).start()
while True:
    b = s.recv(65536)
    if not b: break
    sys.stdout.buffer.write(b); sys.stdout.buffer.flush()
"#;

/// Hop-by-hop headers that are not forwarded.
const HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "proxy-authorization",
    "authorization",
    // Every header the daemon takes its token in: a world's service must
    // never see it.
    "x-api-key",
    "x-access-token",
    "e2b-traffic-access-token",
    "host",
    "content-length",
    "trailer",
];

#[allow(clippy::too_many_arguments)]
async fn relay(
    st: &Arc<AppState>,
    world: String,
    name: String,
    rest: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = world_id(&world)?;
    let svc = st
        .engine
        .world_meta(id.as_str())?
        .http_services
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ApiError::not_found(format!("world {id} has no service {name:?}")))?;
    // The path arrives percent-decoded: encode it again, so that nothing
    // a client sends (CR, LF, spaces) can end the request line early and
    // add headers or a second request.
    let mut req = format!("{method} /{}", encode_path(&rest));
    if let Some(q) = uri.query() {
        req.push('?');
        req.push_str(q);
    }
    req.push_str(&format!(
        " HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
        svc.port,
        body.len()
    ));
    for (k, v) in &headers {
        if !HOP.contains(&k.as_str()) {
            if let Ok(v) = v.to_str() {
                // Nor under any other name.
                if !st.token.is_empty() && v.contains(st.token.as_str()) {
                    continue;
                }
                req.push_str(&format!("{k}: {v}\r\n"));
            }
        }
    }
    req.push_str("\r\n");
    let mut raw_req = req.into_bytes();
    raw_req.extend_from_slice(&body);
    let port = svc.port;
    let out = st
        .run(move |st| {
            let io = |e: std::io::Error| ApiError::internal(format!("service relay: {e}"));
            let (mut in_w, in_r) = std::os::unix::net::UnixStream::pair().map_err(io)?;
            let (out_r, out_w) = std::os::unix::net::UnixStream::pair().map_err(io)?;
            let (err_r, err_w) = std::os::unix::net::UnixStream::pair().map_err(io)?;
            let writer = std::thread::spawn(move || {
                let _ = in_w.write_all(&raw_req);
                let _ = in_w.shutdown(std::net::Shutdown::Write);
            });
            let reader = std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = (&out_r).take(RESPONSE_MAX + 1).read_to_end(&mut v);
                v
            });
            let errs = std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = (&err_r).take(64 << 10).read_to_end(&mut v);
                v
            });
            let mut er = ExecRequest::new(&["python3", "-c", RELAY, &port.to_string()]);
            er.timeout = Some(Duration::from_secs(60));
            let status = {
                let stdio = ExecStdio {
                    stdin: Some(in_r.as_fd()),
                    stdout: Some(out_w.as_fd()),
                    stderr: Some(err_w.as_fd()),
                    cancel: None,
                };
                st.engine.world_exec(&id, &er, stdio)
            };
            drop((in_r, out_w, err_w));
            let _ = writer.join();
            let out = reader.join().unwrap_or_default();
            let err = errs.join().unwrap_or_default();
            let status = status?;
            if out.len() as u64 > RESPONSE_MAX {
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "service_response_too_large",
                    format!("the service on port {port} in world {id} answered more than {RESPONSE_MAX} bytes; the relay keeps at most that"),
                ));
            }
            if out.is_empty() {
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "service_unreachable",
                    format!(
                        "nothing answered on port {port} in world {id} (relay exit {}): {}",
                        status.exit_code,
                        String::from_utf8_lossy(&err).trim()
                    ),
                ));
            }
            Ok(out)
        })
        .await?;
    parse_response(&out)
}

/// Largest response (head and body) the relay reads from a world's
/// service: it is held in the daemon's memory, outside the world's limits.
pub const RESPONSE_MAX: u64 = 16 << 20;

/// Percent-encodes every byte of a decoded path that is not an unreserved
/// character, a sub-delimiter, `:`, `@` or `/` (RFC 3986 `pchar`s and `/`).
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Turns a raw HTTP/1.x response into an axum response.
fn parse_response(raw: &[u8]) -> Result<Response, ApiError> {
    let bad = |m: &str| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "service_bad_response",
            m.to_string(),
        )
    };
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("the service's answer has no HTTP header"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("the service's answer has no HTTP status line"))?;
    let mut body = raw[split + 4..].to_vec();
    let mut resp_headers = HeaderMap::new();
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.contains("chunked") {
                chunked = true;
            }
            if HOP.contains(&k.as_str()) {
                continue;
            }
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                resp_headers.append(n, v);
            }
        }
    }
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
            let n = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..p])
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim(),
                16,
            )
            .unwrap_or(0);
            if n == 0 || rest.len() < p + 2 + n {
                break;
            }
            out.extend_from_slice(&rest[p + 2..p + 2 + n]);
            rest = &rest[(p + 2 + n + 2).min(rest.len())..];
        }
        body = out;
    }
    let status = StatusCode::from_u16(status).map_err(|_| bad("invalid status"))?;
    let mut r = (status, body).into_response();
    r.headers_mut().extend(resp_headers);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn relayed_paths_cannot_break_the_request_line() {
        assert_eq!(encode_path("a/b-c_d.e~f"), "a/b-c_d.e~f");
        assert_eq!(
            encode_path("x HTTP/1.1\r\nEvil: 1\r\n\r\nGET /y"),
            "x%20HTTP/1.1%0D%0AEvil:%201%0D%0A%0D%0AGET%20/y"
        );
        assert_eq!(encode_path("100%"), "100%25");
        assert_eq!(encode_path("é"), "%C3%A9");
    }

    proptest! {
        /// Whatever the decoded path holds, the request line gets only
        /// visible ASCII: no space, CR, LF or other control byte.
        #[test]
        fn encoded_paths_hold_only_request_line_safe_bytes(s in "\\PC{0,40}|[\\x00-\\x7f]{0,40}") {
            let e = encode_path(&s);
            prop_assert!(e.bytes().all(|b| b > 0x20 && b < 0x7f), "{e}");
        }
    }
}
