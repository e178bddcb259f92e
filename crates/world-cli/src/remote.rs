//! Routing `world` commands through a running daemon (`world serve`).
//!
//! When a daemon serves the same database, the commands that have an
//! endpoint (create, list, inspect, exec, destroy, run-code, snapshot,
//! snapshots, branch, push-down, run-verses, pull-up and the records) are
//! sent to it over its Unix socket, `<run_dir>/api.sock` (the path
//! [`world_server::ServerConfig::new`] binds by default), so that many
//! `world` calls share one daemon: its metadata, pause state and its lease
//! on the database. The answer is printed exactly as the in-process result
//! would be (the daemon answers the same JSON), with the same exit codes.
//!
//! Discovery ([`find`]) reads the bearer token from `<state_dir>/api-token`
//! (as `world token` does) and asks `GET /v1/health`; the daemon is used
//! only when it answers and reports the same database file. A missing
//! socket, a refused connection (a stale socket), a missing token or
//! another database means no daemon: the command runs in-process, silently.
//! [`Mode::Off`] (`--no-daemon`, `WORLD_NO_DAEMON=1`) always runs
//! in-process; [`Mode::Required`] (`--daemon`, `WORLD_DAEMON=1`) fails when
//! no daemon answers.
//!
//! The client is a minimal blocking HTTP/1.1 client over
//! [`std::os::unix::net::UnixStream`]: one request per connection
//! (`Connection: close`), bodies framed by `Content-Length`, chunked
//! encoding or the end of the connection, and server-sent events read as
//! they arrive (`world exec` streams through `/exec/stream`).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use world_engine::Engine;

/// Whether commands may, must or must not go through a daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Use a daemon when one answers, else run in-process.
    Auto,
    /// Always run in-process (`--no-daemon`).
    Off,
    /// Fail when no daemon answers (`--daemon`).
    Required,
}

/// Where a command runs.
pub enum Via<'a> {
    /// In this process, through the engine.
    Local(&'a Engine),
    /// In the daemon.
    Daemon(&'a Daemon),
}

/// Failures of a command sent to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The daemon answered with an error (`{"error_code", "detail"}`).
    #[error("{detail}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// The daemon's explanation.
        detail: String,
    },
    /// Talking to the socket failed.
    #[error("daemon at {socket}: {what}")]
    Io {
        /// The socket.
        socket: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The daemon answered something that is not what this client expects.
    #[error("daemon at {socket}: {what}")]
    Protocol {
        /// The socket.
        socket: PathBuf,
        /// What was wrong.
        what: String,
    },
    /// `--daemon` was given and no daemon can be used.
    #[error("--daemon: {0}")]
    Unavailable(String),
}

impl Error {
    /// The exit code `world` leaves with (the in-process codes: 3 refused
    /// or invalid, 4 not found, 5 busy, 126/127 for exec, else 1).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Api { code, .. } => match code.as_str() {
                "refused" | "world_paused" | "invalid_request" | "payload_too_large" => 3,
                "not_found" => 4,
                "busy" => 5,
                "command_not_found" => 127,
                "not_executable" => 126,
                _ => 1,
            },
            _ => 1,
        }
    }
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// A daemon that answered and serves our database.
#[derive(Debug, Clone)]
pub struct Daemon {
    socket: PathBuf,
    token: String,
}

/// How long discovery waits for `/v1/health`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Finds the daemon listening on `socket` that serves `db`, following
/// `mode`: `Ok(None)` means run in-process.
pub fn find(mode: Mode, socket: &Path, state_dir: &Path, db: &Path) -> Result<Option<Daemon>> {
    if mode == Mode::Off {
        return Ok(None);
    }
    match probe(socket, state_dir, db) {
        Ok(d) => Ok(Some(d)),
        Err(why) if mode == Mode::Required => Err(Error::Unavailable(why)),
        Err(_) => Ok(None),
    }
}

/// Why there is no usable daemon, or the daemon.
fn probe(socket: &Path, state_dir: &Path, db: &Path) -> std::result::Result<Daemon, String> {
    if !socket.exists() {
        return Err(format!(
            "no daemon socket at {} (start one with `world serve`)",
            socket.display()
        ));
    }
    let token_file = world_server::token_path(state_dir);
    let token = std::fs::read_to_string(&token_file)
        .map(|t| t.trim().to_string())
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("no daemon token at {}", token_file.display()))?;
    let d = Daemon {
        socket: socket.to_path_buf(),
        token,
    };
    let health = d
        .request("GET", "/v1/health", None, Some(PROBE_TIMEOUT))
        .and_then(|r| r.json_value(&d.socket))
        .map_err(|e| format!("no daemon answers on {}: {e}", socket.display()))?;
    let served = health["db"].as_str().map(PathBuf::from).ok_or_else(|| {
        format!(
            "the daemon on {} does not say which database it serves (an older daemon?)",
            socket.display()
        )
    })?;
    if !same_file(&served, db) {
        return Err(format!(
            "the daemon on {} serves {}, not {}",
            socket.display(),
            served.display(),
            db.display()
        ));
    }
    Ok(d)
}

/// Whether two paths name the same database file (it may not exist yet).
fn same_file(a: &Path, b: &Path) -> bool {
    let norm = |p: &Path| {
        p.canonicalize()
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    norm(a) == norm(b)
}

/// Percent-encodes one path segment or query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An answer whose head has been read.
struct Response {
    status: u16,
    body: BodyReader,
}

impl Response {
    fn read_all(mut self, socket: &Path) -> Result<(u16, Vec<u8>)> {
        let mut buf = Vec::new();
        self.body.read_to_end(&mut buf).map_err(|e| Error::Io {
            socket: socket.to_path_buf(),
            what: "read the answer",
            source: e,
        })?;
        Ok((self.status, buf))
    }

    /// The body as text when the status is 2xx, else the daemon's error.
    fn text(self, socket: &Path) -> Result<String> {
        let (status, body) = self.read_all(socket)?;
        if !(200..300).contains(&status) {
            return Err(api_error(status, &body));
        }
        String::from_utf8(body).map_err(|_| Error::Protocol {
            socket: socket.to_path_buf(),
            what: "answer is not UTF-8".into(),
        })
    }

    fn json_value(self, socket: &Path) -> Result<Value> {
        let text = self.text(socket)?;
        serde_json::from_str(&text).map_err(|e| Error::Protocol {
            socket: socket.to_path_buf(),
            what: format!("answer is not JSON: {e}"),
        })
    }
}

/// Turns an error answer into [`Error::Api`].
fn api_error(status: u16, body: &[u8]) -> Error {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    Error::Api {
        status,
        code: v["error_code"].as_str().unwrap_or("internal").to_string(),
        detail: v["detail"].as_str().map_or_else(
            || {
                format!(
                    "the daemon answered {status}: {}",
                    String::from_utf8_lossy(body)
                )
            },
            str::to_string,
        ),
    }
}

impl Daemon {
    /// The socket it listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn io(&self, what: &'static str) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            socket: self.socket.clone(),
            what,
            source,
        }
    }

    /// Sends one request and reads the answer's head.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        timeout: Option<Duration>,
    ) -> Result<Response> {
        let mut s = UnixStream::connect(&self.socket).map_err(self.io("connect"))?;
        s.set_read_timeout(timeout)
            .map_err(self.io("set a timeout"))?;
        let body = body.unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\nAccept: application/json, text/event-stream\r\n",
            self.token
        );
        if method != "GET" && method != "DELETE" {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes())
            .and_then(|_| s.write_all(body.as_bytes()))
            .and_then(|_| s.flush())
            .map_err(self.io("send the request"))?;
        let mut r = BufReader::new(s);
        let bad = |what: String| Error::Protocol {
            socket: self.socket.clone(),
            what,
        };
        let mut line = String::new();
        r.read_line(&mut line).map_err(self.io("read the answer"))?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| bad(format!("not an HTTP answer: {:?}", line.trim_end())))?;
        let mut framing = Framing::Eof;
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(self.io("read the answer"))? == 0 {
                return Err(bad("the answer ended inside its headers".into()));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                if k == "content-length" {
                    let n = v
                        .parse()
                        .map_err(|_| bad(format!("bad Content-Length {v:?}")))?;
                    framing = Framing::Length(n);
                } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                    framing = Framing::Chunked { left: 0 };
                }
            }
        }
        Ok(Response {
            status,
            body: BodyReader { r, framing },
        })
    }

    /// A request whose 2xx answer is returned as JSON text (as the daemon
    /// wrote it, so its field order is kept); error answers are [`Error::Api`].
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<String> {
        self.request(method, path, body.map(Value::to_string), None)?
            .text(&self.socket)
    }

    /// POSTs a typed request (one of [`world_engine::actions`], the type
    /// the daemon's route reads) and parses the answer into `T`.
    pub fn post<R: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &R,
    ) -> Result<T> {
        let text = self.post_text(path, body)?;
        self.parse("POST", path, &text)
    }

    /// POSTs a typed request; the answer as the daemon wrote it.
    pub fn post_text<R: serde::Serialize>(&self, path: &str, body: &R) -> Result<String> {
        self.request("POST", path, Some(self.encode(body)?), None)?
            .text(&self.socket)
    }

    fn encode<R: serde::Serialize>(&self, body: &R) -> Result<String> {
        serde_json::to_string(body).map_err(|e| Error::Protocol {
            socket: self.socket.clone(),
            what: format!("cannot encode the request: {e}"),
        })
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        text: &str,
    ) -> Result<T> {
        serde_json::from_str(text).map_err(|e| Error::Protocol {
            socket: self.socket.clone(),
            what: format!("unexpected answer to {method} {path}: {e}"),
        })
    }

    /// [`Daemon::call`], parsed into `T`.
    pub fn call_as<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T> {
        let text = self.call(method, path, body)?;
        self.parse(method, path, &text)
    }

    /// POSTs to a server-sent-events endpoint and calls `on_event` with
    /// each `data:` payload as it arrives, until `[DONE]` or the end.
    pub fn stream<R: serde::Serialize>(
        &self,
        path: &str,
        body: &R,
        mut on_event: impl FnMut(&str) -> std::io::Result<()>,
    ) -> Result<()> {
        let resp = self.request("POST", path, Some(self.encode(body)?), None)?;
        if !(200..300).contains(&resp.status) {
            let (status, body) = resp.read_all(&self.socket)?;
            return Err(api_error(status, &body));
        }
        let mut r = BufReader::new(resp.body);
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(self.io("read the stream"))? == 0 {
                return Ok(());
            }
            let Some(data) = line.trim_end_matches(['\r', '\n']).strip_prefix("data:") else {
                continue;
            };
            let data = data.strip_prefix(' ').unwrap_or(data);
            if data == "[DONE]" {
                return Ok(());
            }
            on_event(data).map_err(self.io("write the output"))?;
        }
    }
}

/// How an answer's body ends.
enum Framing {
    /// After this many more bytes.
    Length(u64),
    /// Chunked; `left` bytes remain in the current chunk (0: read a size line).
    Chunked { left: u64 },
    /// The last chunk was read.
    Done,
    /// When the daemon closes the connection.
    Eof,
}

/// Reads a body, undoing its framing.
struct BodyReader {
    r: BufReader<UnixStream>,
    framing: Framing,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        match &mut self.framing {
            Framing::Done | Framing::Length(0) => Ok(0),
            Framing::Eof => self.r.read(buf),
            Framing::Length(n) => {
                let want = buf.len().min(usize::try_from(*n).unwrap_or(usize::MAX));
                let got = self.r.read(&mut buf[..want])?;
                if got == 0 {
                    return Err(bad("the answer ended early"));
                }
                *n -= got as u64;
                Ok(got)
            }
            Framing::Chunked { left } => {
                if *left == 0 {
                    let mut size = String::new();
                    if self.r.read_line(&mut size)? == 0 {
                        return Err(bad("the answer ended inside a chunk"));
                    }
                    let hex = size.trim().split(';').next().unwrap_or("");
                    let n = u64::from_str_radix(hex, 16).map_err(|_| bad("bad chunk size"))?;
                    if n == 0 {
                        // Trailers, then the empty line.
                        loop {
                            size.clear();
                            if self.r.read_line(&mut size)? == 0 || size.trim().is_empty() {
                                break;
                            }
                        }
                        self.framing = Framing::Done;
                        return Ok(0);
                    }
                    *left = n;
                }
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let got = self.r.read(&mut buf[..want])?;
                if got == 0 {
                    return Err(bad("the answer ended inside a chunk"));
                }
                *left -= got as u64;
                if *left == 0 {
                    let mut crlf = [0u8; 2];
                    self.r.read_exact(&mut crlf)?;
                }
                Ok(got)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(enc("w-1.a_b~"), "w-1.a_b~");
        assert_eq!(enc("a b/c?é"), "a%20b%2Fc%3F%C3%A9");
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"5\r\nhello\r\n7;x=1\r\n, world\r\n0\r\n\r\n")
            .unwrap();
        drop(a);
        let mut r = BodyReader {
            r: BufReader::new(b),
            framing: Framing::Chunked { left: 0 },
        };
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello, world");
    }

    #[test]
    fn error_answers_keep_code_and_detail() {
        let e = api_error(
            404,
            br#"{"error_code":"not_found","detail":"no world w-x","status":404}"#,
        );
        assert_eq!(e.to_string(), "no world w-x");
        assert_eq!(e.exit_code(), 4);
        assert_eq!(api_error(503, b"{}").exit_code(), 1);
    }
}
