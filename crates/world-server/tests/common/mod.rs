//! Test harness: a `world-serve` daemon in temporary directories (root
//! only), a tiny HTTP/1.1 client over TCP or the Unix socket, and
//! cleanup that leaves no world, snapshot or mount behind.

#![allow(dead_code)]

pub mod contract;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// A response: status, headers (lower-case names), body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub addr: String,
    pub token: String,
    /// `127.0.0.1:PORT` of the SSH door.
    pub ssh_addr: String,
    /// The daemon's `/openapi.json`, which every [`Daemon::req`] exchange
    /// is checked against (fetched at the first).
    pub contract: std::sync::OnceLock<contract::Contract>,
}

impl Daemon {
    /// Starts a daemon, or `None` (with a message) when not root.
    pub fn start() -> Option<Daemon> {
        if !is_root() {
            eprintln!("skipping: the daemon's world tests need root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut d = Daemon {
            dir,
            child: None,
            addr: String::new(),
            token: String::new(),
            ssh_addr: String::new(),
            contract: std::sync::OnceLock::new(),
        };
        d.spawn();
        Some(d)
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }
    pub fn socket(&self) -> PathBuf {
        self.run_dir().join("api.sock")
    }
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("world.duckdb")
    }
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Starts the daemon process (again) and waits until it listens.
    pub fn spawn(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_world-serve"))
            .args(["--listen", "127.0.0.1:0", "--ssh", "127.0.0.1:0", "--db"])
            .arg(self.db())
            .arg("--socket")
            .arg(self.socket())
            .env("WORLD_STATE_DIR", self.state())
            .env("WORLD_RUN_DIR", self.run_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let l = lines
                .next()
                .expect("daemon exited before listening")
                .unwrap();
            if let Some(a) = l.strip_prefix("world-serve listening on ssh://") {
                self.ssh_addr = a.to_string();
            }
            if let Some(a) = l.strip_prefix("world-serve listening on http://") {
                break a.to_string();
            }
        };
        // Keep draining stdout so the daemon never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        self.addr = addr;
        self.token = std::fs::read_to_string(self.state().join("api-token"))
            .unwrap()
            .trim()
            .to_string();
        self.child = Some(child);
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (graceful shutdown); returns the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        for _ in 0..200 {
            if let Ok(Some(s)) = c.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        c.wait().ok()
    }

    /// One JSON request with the token; the exchange is checked against
    /// the daemon's OpenAPI document ([`contract`]).
    pub fn req(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let b = body.map(|b| b.to_string().into_bytes());
        let r = self.raw(
            method,
            path,
            b.as_deref(),
            Some(&self.token),
            Some("application/json"),
        );
        self.contract().check(
            method,
            path,
            body,
            r.status,
            &r.body,
            r.header("content-type"),
        );
        r
    }

    /// The daemon's OpenAPI document, as a checker.
    pub fn contract(&self) -> &contract::Contract {
        self.contract.get_or_init(|| {
            let r = self.raw("GET", "/openapi.json", None, Some(&self.token), None);
            assert_eq!(r.status, 200, "/openapi.json: {}", r.text());
            contract::Contract::new(r.json())
        })
    }
    pub fn get(&self, path: &str) -> Resp {
        self.req("GET", path, None)
    }
    pub fn post(&self, path: &str, body: Value) -> Resp {
        self.req("POST", path, Some(&body))
    }
    pub fn delete(&self, path: &str) -> Resp {
        self.req("DELETE", path, None)
    }
    /// POST expecting `status`; returns the JSON body.
    pub fn ok(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let r = self.req(method, path, body.as_ref());
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        r.json()
    }

    pub fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        token: Option<&str>,
        ctype: Option<&str>,
    ) -> Resp {
        let s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
        http(s, method, path, body, token, ctype)
    }

    /// One request with exactly these headers (plus Host, Connection and
    /// Content-Length), no token added.
    pub fn with_headers(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\n\r\n",
            body.map_or(0, <[u8]>::len)
        ));
        exchange(s, &head, body)
    }

    pub fn unix(&self, method: &str, path: &str, body: Option<&[u8]>) -> Resp {
        let s = UnixStream::connect(self.socket()).unwrap();
        http(
            s,
            method,
            path,
            body,
            Some(&self.token),
            Some("application/json"),
        )
    }

    /// Destroys every world and snapshot through the API.
    pub fn clean_api(&self) {
        if let Some(v) = self.get("/v1/worlds").json().as_array() {
            for w in v {
                self.delete(&format!("/v1/worlds/{}", w["id"].as_str().unwrap()));
            }
        }
        if let Some(v) = self.get("/v1/snapshots").json().as_array() {
            for s in v {
                self.delete(&format!("/v1/snapshots/{}", s["id"].as_str().unwrap()));
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.clean_api();
            self.terminate();
        }
        // Whatever is left (a failed test): remove it through the substrate.
        let cfg = world_substrate::SubstrateConfig::with_dirs(self.state(), self.run_dir(), vec![]);
        let sub = world_substrate::LinuxSubstrate::new(cfg);
        use world_substrate::Substrate;
        if let Ok(ws) = sub.list() {
            for w in ws {
                let _ = sub.destroy(&w.id);
            }
        }
        if let Ok(ss) = sub.snapshots() {
            for s in ss {
                let _ = sub.delete_snapshot(&s.id);
            }
        }
        let _ = sub.repair();
        // A daemon killed with -9 in the middle of a create can leave a
        // lineage manager that no record names (a substrate gap, reported):
        // stop the processes that belong to this test's run directory.
        let run = self.run_dir().display().to_string();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.parse::<u32>().is_err() {
                    continue;
                }
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmd).contains(&format!("\"{run}/")) {
                    eprintln!("warning: killing leftover supervisor {name} of this test");
                    let _ = Command::new("kill").args(["-9", &name]).status();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = sub.repair();
        if let Err(e) = sub.unmount_storage() {
            eprintln!("warning: could not unmount the test store: {e}");
        }
    }
}

/// One HTTP/1.1 request with `Connection: close`; handles chunked bodies.
pub fn http<S: Read + Write>(
    s: S,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    token: Option<&str>,
    ctype: Option<&str>,
) -> Resp {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = body {
        if let Some(c) = ctype {
            head.push_str(&format!("Content-Type: {c}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    exchange(s, &head, body)
}

/// Writes a request head and body, reads the whole answer.
fn exchange<S: Read + Write>(mut s: S, head: &str, body: Option<&[u8]>) -> Resp {
    s.write_all(head.as_bytes()).unwrap();
    if let Some(b) = body {
        // The server may answer (413) before reading everything.
        let _ = s.write_all(b);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse(&raw)
}

/// Whether `raw` holds one whole response (headers and a body framed by
/// `Content-Length` or chunked encoding).
pub fn full_response(raw: &[u8]) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    body.len() >= len
}

pub fn parse(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
            let n =
                usize::from_str_radix(String::from_utf8_lossy(&rest[..p]).trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            if rest.len() < p + 2 + n + 2 {
                out.extend_from_slice(&rest[(p + 2).min(rest.len())..]);
                break;
            }
            out.extend_from_slice(&rest[p + 2..p + 2 + n]);
            rest = &rest[p + 2 + n + 2..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// Parses SSE `data:` lines into JSON events (and `[DONE]` as a string).
pub fn sse_events(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(|d| serde_json::from_str(d).unwrap_or(Value::String(d.to_string())))
        .collect()
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}
