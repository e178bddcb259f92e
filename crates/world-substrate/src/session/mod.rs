//! Code sessions: persistent Python interpreters in a world (the original
//! design's `execute_code`), Jupyter-like. Variables persist across calls;
//! stdout and stderr stream into the caller's pipes or fds (including the
//! output of subprocesses); the repr of a last expression comes back; an
//! exception comes back as its traceback and leaves the session alive; a
//! timeout raises `KeyboardInterrupt` in the running code (SIGALRM) and
//! leaves the session alive. Several named sessions per world, each its
//! own process. The agent is `agent.py` (embedded, run as `python3 -c`).
//!
//! Files of a session: `<run>/worlds/<id>/sessions/<name>.sock` (its
//! listener, bound by the host), `.pid` (host pid and start time) and
//! `.lock` (held while code runs; a snapshot takes it, so it never forks a
//! session in the middle of a cell).
//!
//! A session process is *active* in the lineage pid namespace: inside the
//! world, `ps` does not show it (its children do show), `/proc/self` does
//! not resolve in it (use `os.getpid()`), and `os.getppid()` is 1 (the
//! lineage manager). See [`crate::snapshot`] for why.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cgroup::WorldCgroup;
use crate::error::{Result, WorldError};
use crate::linux::lineage::world_ns_fds;
use crate::linux::record::WorldRecord;
use crate::types::WorldId;
use crate::{proto, sys, LinuxSubstrate};

/// The agent program. It reaches the interpreter in the environment
/// variable `WORLD_AGENT` (popped before any user code runs), so `ps`
/// shows a short command line.
pub const AGENT_PY: &str = include_str!("agent.py");
/// The `-c` program that runs the agent. It also drops
/// [`MALLOC_TUNABLES`] from the environment, so user code and the commands
/// it starts never see it.
pub const AGENT_BOOT: &str = "import os;os.environ.pop('GLIBC_TUNABLES',None);\
exec(compile(os.environ.pop('WORLD_AGENT'),'<world-agent>','exec'))";
/// glibc tunables of a session interpreter: malloc advises transparent huge
/// pages (`MADV_HUGEPAGE`) for its large chunks and its heap. A `fork()`
/// then copies one page-table entry per 2 MiB instead of 512, so
/// snapshotting and branching a session that holds 100 MB cost about what
/// an idle one does (measured: `os.fork()` of a 100 MB Python 2.0 ms
/// without, 0.5 ms with). A child's first write to a shared huge page
/// splits it and copies only the 4 KiB page written (Linux >= 5.8), so
/// memory stays shared page by page as before. Only the interpreter reads
/// it, at start; [`AGENT_BOOT`] removes it from the environment.
pub const MALLOC_TUNABLES: &str = "glibc.malloc.hugetlb=1";
/// Interpreter used in worlds (the host image's read-only /usr).
pub const PYTHON: &str = "/usr/bin/python3";
/// Largest reply (the result's repr, an error's traceback) read from a
/// session agent; a longer one is an error, not an allocation.
pub const REPLY_MAX: usize = 64 << 20;
/// How long after a cell's timeout the host still waits for the session's
/// answer before it kills the session.
pub const RUN_GRACE: Duration = Duration::from_secs(5);
/// Name of the session `run_code` uses when none is given.
pub const DEFAULT_SESSION: &str = "default";

/// Errors of code sessions.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Bad session name.
    #[error("invalid session name '{0}': use 1-32 of [a-z0-9_-]")]
    InvalidName(String),
    /// No such session.
    #[error("no session '{1}' in world '{0}'")]
    NotFound(String, String),
    /// Name taken.
    #[error("session '{1}' already exists in world '{0}'")]
    Exists(String, String),
    /// Still running code after the wait.
    #[error("session '{1}' in world '{0}' is busy running code (waited {2} ms); retry later")]
    Busy(String, String, u64),
    /// The interpreter is gone.
    #[error("session '{1}' in world '{0}' is gone (it exited or was killed); run code again to start a new one")]
    Died(String, String),
    /// The agent answered with an error.
    #[error("session '{1}' in world '{0}': {2}")]
    Agent(String, String, String),
    /// The code kept running past its timeout and the grace after it
    /// (it blocked or caught the interrupt); the session was killed.
    #[error("session '{1}' in world '{0}' did not stop within {3} s after its timeout of {2} s (the code blocked or caught the interrupt); the session was killed and starts afresh on the next run (its variables are gone)")]
    Unresponsive(String, String, f64, u64),
    /// Starting the interpreter failed.
    #[error("cannot start session '{1}' in world '{0}': {2}")]
    Start(String, String, String),
}

/// Result of running code in a session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CodeResult {
    /// Everything written to stdout (empty for the streaming variant).
    pub stdout: Vec<u8>,
    /// Everything written to stderr (empty for the streaming variant).
    pub stderr: Vec<u8>,
    /// `repr()` of the last expression, if the code ended with one whose
    /// value is not `None`.
    pub value_repr: Option<String>,
    /// Traceback of an uncaught exception (the session stays alive).
    pub error: Option<String>,
    /// Whether the timeout interrupted the code.
    pub timed_out: bool,
    /// Time spent running the code inside the session, ms.
    pub duration_ms: f64,
    /// Rich representations of the last expression's value by MIME type
    /// (from IPython's `_repr_*_` methods: `text/html`, `image/png` as
    /// base64, ...), at most 8 MiB in all.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub formats: std::collections::BTreeMap<String, serde_json::Value>,
    /// How many cells the session has run, this one included (absent
    /// from a session started by an older agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_count: Option<u64>,
}

/// The exit code every front door reports for a cell of code:
/// [`crate::types::TIMEOUT_EXIT_CODE`] when its timeout interrupted it, 1
/// when it raised, else 0.
pub fn cell_exit_code(timed_out: bool, raised: bool) -> i32 {
    if timed_out {
        crate::types::TIMEOUT_EXIT_CODE
    } else if raised {
        1
    } else {
        0
    }
}

impl CodeResult {
    /// [`cell_exit_code`] of this result.
    pub fn shell_code(&self) -> i32 {
        cell_exit_code(self.timed_out, self.error.is_some())
    }
}

#[derive(Debug, Deserialize)]
struct RunReply {
    value: Option<String>,
    error: Option<String>,
    #[serde(default)]
    timed_out: bool,
    #[serde(default)]
    duration_ms: f64,
    #[serde(default)]
    formats: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    count: Option<u64>,
}

/// Whether `name` is a valid session name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// An exclusive `flock` on a session's lock file, held until dropped.
#[derive(Debug)]
pub(crate) struct SessionLock(#[allow(dead_code)] fs::File);

impl SessionLock {
    /// Takes the lock, waiting up to `wait` (`None`: forever).
    pub(crate) fn take(
        path: &std::path::Path,
        wait: Option<Duration>,
    ) -> std::io::Result<Option<Self>> {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        let deadline = wait.map(|w| Instant::now() + w);
        loop {
            let flags = if deadline.is_some() {
                libc::LOCK_EX | libc::LOCK_NB
            } else {
                libc::LOCK_EX
            };
            // SAFETY: flock on a valid fd.
            if unsafe { libc::flock(f.as_raw_fd(), flags) } == 0 {
                return Ok(Some(SessionLock(f)));
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK)
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            match deadline {
                Some(d) if Instant::now() >= d => return Ok(None),
                _ => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    }
}

/// Paths of one session's files.
#[derive(Debug, Clone)]
pub(crate) struct SessionPaths {
    pub sock: PathBuf,
    pub pid: PathBuf,
    pub lock: PathBuf,
}

impl LinuxSubstrate {
    pub(crate) fn session_paths(&self, id: &WorldId, name: &str) -> SessionPaths {
        let d = self.layout().session_dir(id.as_str());
        SessionPaths {
            sock: d.join(format!("{name}.sock")),
            pid: d.join(format!("{name}.pid")),
            lock: d.join(format!("{name}.lock")),
        }
    }

    fn check_name(name: &str) -> Result<()> {
        if valid_name(name) {
            Ok(())
        } else {
            Err(SessionError::InvalidName(name.into()).into())
        }
    }

    /// Starts a named Python session in a running world.
    pub fn start_session(&self, id: &WorldId, name: &str) -> Result<()> {
        Self::check_name(name)?;
        let rec = self.running(id)?;
        let p = self.session_paths(id, name);
        fs::create_dir_all(p.sock.parent().expect("session dir"))
            .map_err(|e| WorldError::Io("create session dir", e))?;
        if UnixStream::connect(&p.sock).is_ok() {
            return Err(SessionError::Exists(id.to_string(), name.into()).into());
        }
        let _ = fs::remove_file(&p.sock);
        let lineage = rec.lineage.clone().ok_or_else(|| {
            SessionError::Start(
                id.to_string(),
                name.into(),
                "world has no lineage (made by an older version)".into(),
            )
        })?;
        let start = (|| {
            let listener = UnixListener::bind(&p.sock)
                .map_err(|e| WorldError::Io("bind session socket", e))?;
            let ns = world_ns_fds(rec.pid)?;
            let cg = WorldCgroup::open(&self.config().cgroup_name, id.as_str()).open_procs()?;
            let mut env = session_env(&rec, name);
            env.push(("WORLD_AGENT".into(), AGENT_PY.into()));
            // -I (isolated): no PYTHON* variables, no user site directory
            // (usercustomize), and neither the working directory nor the
            // script's is put on sys.path, so files a world plants
            // (`/json.py`, `~/.local/lib/python3*/site-packages/usercustomize.py`)
            // never run with the session's powers.
            let argv = vec![
                PYTHON.to_string(),
                "-I".to_string(),
                "-c".to_string(),
                AGENT_BOOT.to_string(),
            ];
            let conn = self.manager(&lineage)?;
            let pending = self.request_session(&conn, argv, env, &listener, &ns, &cg)?;
            drop((listener, ns, cg));
            let (pid, st) = pending.wait("session", Duration::from_secs(30))?;
            write_pid(&p.pid, pid, st);
            Ok::<(), crate::Error>(())
        })();
        if let Err(e) = start {
            let _ = fs::remove_file(&p.sock);
            return Err(SessionError::Start(id.to_string(), name.into(), e.to_string()).into());
        }
        Ok(())
    }

    /// Names of the sessions of a world.
    pub fn sessions(&self, id: &WorldId) -> Result<Vec<String>> {
        WorldRecord::load(self.layout(), id)?;
        let mut v: Vec<String> = fs::read_dir(self.layout().session_dir(id.as_str()))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.strip_suffix(".sock").map(str::to_string)
            })
            .collect();
        v.sort();
        Ok(v)
    }

    /// Stops (kills) a session; its variables are gone.
    pub fn stop_session(&self, id: &WorldId, name: &str) -> Result<()> {
        Self::check_name(name)?;
        WorldRecord::load(self.layout(), id)?;
        let p = self.session_paths(id, name);
        if !p.sock.exists() {
            return Err(SessionError::NotFound(id.to_string(), name.into()).into());
        }
        if let Some((pid, st)) = read_pid(&p.pid) {
            if let Ok(pfd) = sys::pidfd_open(pid) {
                if sys::process_start_time(pid) == Some(st) {
                    let _ = sys::pidfd_kill(&pfd, libc::SIGKILL);
                    let _ = sys::poll_readable(pfd.as_raw_fd(), 2000);
                }
            }
        }
        for f in [&p.sock, &p.pid, &p.lock] {
            let _ = fs::remove_file(f);
        }
        Ok(())
    }

    /// Host pid of a session (for measurements), if alive.
    pub fn session_pid(&self, id: &WorldId, name: &str) -> Option<i32> {
        let (pid, st) = read_pid(&self.session_paths(id, name).pid)?;
        (sys::process_start_time(pid) == Some(st)).then_some(pid)
    }

    /// Runs Python code in session `session` (started on first use),
    /// capturing stdout and stderr. `timeout` (without one, the configured
    /// default: see [`LinuxSubstrate::run_limit`]) interrupts the code
    /// with `KeyboardInterrupt`; the session stays alive. Code that blocks
    /// or catches the interrupt is given [`RUN_GRACE`] more, then its
    /// session is killed and the call fails with
    /// [`SessionError::Unresponsive`]: the host never waits without end.
    pub fn run_code(
        &self,
        id: &WorldId,
        session: &str,
        code: &str,
        timeout: Option<Duration>,
    ) -> Result<CodeResult> {
        let (out_r, out_w) = sys::pipe()?;
        let (err_r, err_w) = sys::pipe()?;
        let t = self.run_limit(timeout);
        let (conn, lock) = self.send_run(id, session, code, t, out_w.as_fd(), err_w.as_fd())?;
        drop((out_w, err_w));
        let deadline = Instant::now() + t + RUN_GRACE;
        let (reply, out, err) = pump(&conn, &out_r, &err_r, deadline);
        let mut r = self.finish_run(id, session, reply, t, lock)?;
        r.stdout = out;
        r.stderr = err;
        Ok(r)
    }

    /// Like [`LinuxSubstrate::run_code`], but the code's stdout and stderr
    /// go straight to the given fds as they are written (streaming); the
    /// result's `stdout`/`stderr` are empty.
    pub fn run_code_stream(
        &self,
        id: &WorldId,
        session: &str,
        code: &str,
        timeout: Option<Duration>,
        stdout: BorrowedFd<'_>,
        stderr: BorrowedFd<'_>,
    ) -> Result<CodeResult> {
        let t = self.run_limit(timeout);
        let (conn, lock) = self.send_run(id, session, code, t, stdout, stderr)?;
        let deadline = Instant::now() + t + RUN_GRACE;
        let reply = sys::read_to_end_by(conn.as_raw_fd(), REPLY_MAX, deadline);
        self.finish_run(id, session, reply, t, lock)
    }

    fn send_run(
        &self,
        id: &WorldId,
        session: &str,
        code: &str,
        timeout: Duration,
        out: BorrowedFd<'_>,
        err: BorrowedFd<'_>,
    ) -> Result<(UnixStream, SessionLock)> {
        Self::check_name(session)?;
        self.running(id)?;
        let p = self.session_paths(id, session);
        if !p.sock.exists() {
            self.start_session(id, session)?;
        }
        let lock = SessionLock::take(&p.lock, None)
            .map_err(|e| WorldError::Io("lock session", e))?
            .expect("blocking lock");
        let conn = UnixStream::connect(&p.sock)
            .map_err(|_| SessionError::Died(id.to_string(), session.into()))?;
        let req = serde_json::json!({
            "op": "run",
            "code": code,
            "timeout_ms": timeout.as_millis().max(1) as u64,
        });
        proto::send_msg(conn.as_fd(), &req, &[out.as_raw_fd(), err.as_raw_fd()])?;
        Ok((conn, lock))
    }

    fn finish_run(
        &self,
        id: &WorldId,
        session: &str,
        reply: std::io::Result<Vec<u8>>,
        timeout: Duration,
        lock: SessionLock,
    ) -> Result<CodeResult> {
        let b = match reply {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                // The code kept the interpreter past its interrupt: the
                // session cannot be trusted to answer again.
                let _ = self.stop_session(id, session);
                drop(lock);
                return Err(SessionError::Unresponsive(
                    id.to_string(),
                    session.into(),
                    timeout.as_secs_f64(),
                    RUN_GRACE.as_secs(),
                )
                .into());
            }
            Err(e) => return Err(WorldError::Io("read session reply", e).into()),
        };
        drop(lock);
        if b.is_empty() {
            return Err(SessionError::Died(id.to_string(), session.into()).into());
        }
        let line = String::from_utf8_lossy(&b);
        let v: serde_json::Value = serde_json::from_str(line.trim()).map_err(|e| {
            SessionError::Agent(id.to_string(), session.into(), format!("bad reply: {e}"))
        })?;
        if let Some(e) = v
            .get("error")
            .and_then(|e| e.as_str())
            .filter(|_| v.get("duration_ms").is_none())
        {
            return Err(SessionError::Agent(id.to_string(), session.into(), e.into()).into());
        }
        let r: RunReply = serde_json::from_value(v).map_err(|e| {
            SessionError::Agent(id.to_string(), session.into(), format!("bad reply: {e}"))
        })?;
        Ok(CodeResult {
            stdout: Vec::new(),
            stderr: Vec::new(),
            value_repr: r.value,
            error: r.error,
            timed_out: r.timed_out,
            duration_ms: r.duration_ms,
            formats: r.formats,
            execution_count: r.count,
        })
    }
}

fn session_env(rec: &WorldRecord, name: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("HOME", "/root"),
        ("TERM", "xterm"),
        ("LANG", "C.UTF-8"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.push(("HOSTNAME".into(), rec.id.to_string()));
    env.push(("WORLD_SESSION".into(), name.into()));
    env.push(("GLIBC_TUNABLES".into(), MALLOC_TUNABLES.into()));
    env.extend(crate::linux::world_env(&rec.id, rec.seed));
    env
}

pub(crate) fn write_pid(p: &std::path::Path, pid: i32, st: u64) {
    let _ = fs::write(p, format!("{pid} {st}"));
}

pub(crate) fn read_pid(p: &std::path::Path) -> Option<(i32, u64)> {
    let s = fs::read_to_string(p).ok()?;
    let mut it = s.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Collects output until the reply arrives on `conn`, by `deadline`;
/// returns the reply (a `TimedOut` error past the deadline) and the
/// captured stdout and stderr (bounded: see [`crate::capture`]).
fn pump(
    conn: &UnixStream,
    out_r: &OwnedFd,
    err_r: &OwnedFd,
    deadline: Instant,
) -> (std::io::Result<Vec<u8>>, Vec<u8>, Vec<u8>) {
    let mut pump = crate::capture::Pump::new(out_r, err_r);
    pump.until_readable(conn.as_raw_fd(), deadline);
    let reply = sys::read_to_end_by(conn.as_raw_fd(), REPLY_MAX, deadline);
    let (out, err) = pump.finish();
    (reply, out.into_bytes(), err.into_bytes())
}
