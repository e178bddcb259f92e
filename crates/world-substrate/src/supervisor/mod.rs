//! The per-world supervisor: the only code that forks and enters namespaces.
//!
//! Process tree of one lineage (all single-threaded, no daemon):
//!
//! ```text
//! create() ──spawn──> launcher (host)        exits once the manager is ready
//!             └─fork─> unsharer               unshare(user, mnt, pid), exits
//!                └─fork─> manager             PID 1 of the lineage pid ns; serves
//!                    │                        lineage.sock; reaps
//!                    ├─clone─> world init     PID 1 of a world pid ns (+mnt,net,uts,ipc,
//!                    │   │                    cgroup ns): mounts, pivot_root, ctl.sock
//!                    │   │                    (or a pooled shell, cloned ahead of time:
//!                    │   │                    mounts staged, waits for a world, see manager)
//!                    │   └─fork─> agent       one per request: exec/copy, subreaper
//!                    │       └─fork─> command caps cut, no_new_privs, seccomp, execve
//!                    └─fork─> session         python agent, active in the lineage pid ns,
//!                        │                    setns'd into its world; children in the world
//!                        └─fork─> template    frozen copy at a snapshot (own cgroup)
//!                            └─fork─> session of a branch child (setns into the child)
//! ```
//!
//! The launcher is started by `Substrate::create` of [`crate::LinuxSubstrate`] as
//! `<supervisor_cmd...> <lineage-spec-json>`; a program embedding this crate
//! dispatches that to [`supervisor_main`]. Worlds and sessions are then
//! started by requests on the manager's socket.

mod agent;
mod init;
mod manager;
mod rootfs;
pub(crate) mod sandbox;
pub mod session;
mod sigguard;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::lineage::LineageSpec;
use crate::sys;

/// Everything the launcher needs, passed as one JSON argument.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchSpec {
    /// World id (= hostname).
    pub id: String,
    /// Host path of the world's root subvolume.
    pub root: PathBuf,
    /// Host directories (relative to `/`) to bind read-only into the root.
    pub binds: Vec<String>,
    /// Control socket path.
    pub sock: PathBuf,
    /// cgroup.procs files to join before creating the namespaces.
    pub cgroup_procs: Vec<PathBuf>,
    /// First host uid/gid of the world range.
    pub uid_base: u32,
    /// Number of ids mapped.
    pub uid_count: u32,
    /// Extra environment of every command run in the world (`WORLD_ID`,
    /// `WORLD_SEED`, ...).
    #[serde(default)]
    pub env: Vec<(String, String)>,
}

/// What the launcher prints on stdout (one JSON line).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LaunchResult {
    /// The world is ready; its init has this host pid and start time.
    Ready {
        /// Host pid of the world's init.
        pid: i32,
        /// Start time of that pid (from /proc/PID/stat).
        start_time: u64,
    },
    /// Setup failed.
    Failed(String),
}

/// Entry point of the hidden supervisor command. `args` are the arguments
/// after the hidden marker (exactly one: the launch spec JSON, a
/// [`crate::lineage::LineageSpec`]). Never returns. Call it first thing in
/// `main`, before any thread is started:
///
/// ```no_run
/// let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
/// if args.get(1).map(|a| a == world_substrate::SUPERVISOR_ARG).unwrap_or(false) {
///     world_substrate::supervisor_main(&args[2..]);
/// }
/// ```
pub fn supervisor_main(args: &[std::ffi::OsString]) -> ! {
    // Whatever the caller's caller left open without O_CLOEXEC (a
    // terminal, a pipe to a CI runner) would otherwise reach the manager,
    // every init and every command in every world of the lineage. Keep
    // only stdin, stdout (the result line) and stderr (the lineage log).
    // SAFETY: close_range with constant bounds; no fd above 2 is in use
    // yet (the standard library holds none).
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if args
        .first()
        .is_some_and(|a| a == crate::linux::job::JOB_ARG)
    {
        crate::linux::job::job_main(&args[1..]);
    }
    let res = match args
        .first()
        .and_then(|a| serde_json::from_slice::<LineageSpec>(a.as_encoded_bytes()).ok())
    {
        Some(spec) => launch(&spec).unwrap_or_else(LaunchResult::Failed),
        None => LaunchResult::Failed("usage: __world-supervisor <launch-spec-json>".into()),
    };
    let ok = matches!(res, LaunchResult::Ready { .. });
    let line = serde_json::to_string(&res).unwrap_or_default();
    let _ = writeln!(std::io::stdout(), "{line}");
    let _ = std::io::stdout().flush();
    sys::exit_now(if ok { 0 } else { 1 })
}

/// Namespaces of a lineage: its user namespace, its pid namespace (the
/// manager is PID 1) and a private mount namespace for the manager.
const LINEAGE_NS: libc::c_int = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID;

fn launch(spec: &LineageSpec) -> Result<LaunchResult, String> {
    // SAFETY: setsid has no memory effects; detaches from the caller's
    // terminal so its Ctrl-C does not reach the lineage.
    unsafe { libc::setsid() };
    let me = sys::getpid().to_string();
    for f in &spec.cgroup_procs {
        std::fs::write(f, &me).map_err(|e| format!("join cgroup {}: {e}", f.display()))?;
    }
    // Every process of the lineage inherits this score, so the OOM killer
    // takes world processes before host services (typically 0 or below).
    // Written by host root holding CAP_SYS_RESOURCE, it is also the
    // lineage's floor (`oom_score_adj_min`): no process of a world (none
    // holds that capability in the host's user namespace) can go below
    // it. Without the capability the score is still set, but the floor
    // stays the caller's.
    let _ = std::fs::write("/proc/self/oom_score_adj", crate::OOM_SCORE_ADJ.to_string());
    // The pool cgroup's procs files, opened here as host root for the
    // manager's shells (see `manager`); none if they cannot be opened.
    let open_all = |files: &[PathBuf]| -> Vec<std::os::fd::OwnedFd> {
        files
            .iter()
            .map(|f| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(f)
                    .map(Into::into)
            })
            .collect::<std::io::Result<_>>()
            .unwrap_or_default()
    };
    let pool_cg = manager::PoolCgroups {
        pool: open_all(&spec.pool_cgroup_procs),
        first: open_all(&spec.first_shell_cgroup_procs),
    };
    let _ = std::fs::remove_file(&spec.sock);
    let listener =
        UnixListener::bind(&spec.sock).map_err(|e| format!("bind {}: {e}", spec.sock.display()))?;
    let (up_r, up_w) = sys::pipe().map_err(|e| e.to_string())?;
    let (go_r, go_w) = sys::pipe().map_err(|e| e.to_string())?;
    let (rdy_r, rdy_w) = sys::pipe().map_err(|e| e.to_string())?;
    let pid = sys::fork().map_err(|e| format!("fork: {e}"))?;
    if pid == 0 {
        drop((up_r, go_w, rdy_r));
        unsharer(spec, listener, up_w, go_r, rdy_w, pool_cg);
    }
    drop((up_w, go_r, rdy_w, listener, pool_cg));
    let fail = |msg: String| {
        // SAFETY: kill of our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = sys::waitpid(pid, 0);
        Err(msg)
    };
    let mut b = [0u8; 1];
    if sys::read(up_r.as_raw_fd(), &mut b).ok() != Some(1) {
        return fail("unshare namespaces failed (see the world log)".into());
    }
    let map = format!("0 {} {}\n", spec.uid_base, spec.uid_count);
    for (file, what) in [("uid_map", &map), ("gid_map", &map)] {
        if let Err(e) = std::fs::write(format!("/proc/{pid}/{file}"), what) {
            return fail(format!("write {file}: {e}"));
        }
    }
    if sys::write_all(go_w.as_raw_fd(), b"g").is_err() {
        return fail("unsharer died".into());
    }
    let mut pb = [0u8; 4];
    let got = sys::read(up_r.as_raw_fd(), &mut pb).unwrap_or(0);
    let _ = sys::waitpid(pid, 0);
    if got != 4 {
        return Err("fork of lineage manager failed (see the world log)".into());
    }
    let mgr = i32::from_le_bytes(pb);
    let msg = sys::read_to_end(rdy_r.as_raw_fd(), 4096).unwrap_or_default();
    if msg != b"ok" {
        // SAFETY: kill of the manager we just started.
        unsafe { libc::kill(mgr, libc::SIGKILL) };
        let m = String::from_utf8_lossy(&msg).into_owned();
        return Err(if m.is_empty() {
            "lineage manager died during setup".into()
        } else {
            m
        });
    }
    let start_time = sys::process_start_time(mgr).ok_or("lineage manager vanished")?;
    Ok(LaunchResult::Ready {
        pid: mgr,
        start_time,
    })
}

fn unsharer(
    spec: &LineageSpec,
    listener: UnixListener,
    up: std::os::fd::OwnedFd,
    go: std::os::fd::OwnedFd,
    rdy: std::os::fd::OwnedFd,
    pool_cg: manager::PoolCgroups,
) -> ! {
    // The lineage's user namespace is owned by the worlds' root uid, not
    // by host root: the kernel charges per-user limits of everything
    // inside it (inotify instances and watches, user namespaces, ...) to
    // its owner, so worlds can exhaust only their own budget, never host
    // root's. Dropping root here costs nothing: the creator gets every
    // capability in the new namespace, and what needs host root (cgroup
    // files, the listener) was opened before.
    let base = spec.uid_base;
    // SAFETY: setgroups, setresgid and setresuid with plain integers (an
    // empty group list); single-threaded process.
    let dropped = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setresgid(base, base, base) == 0
            && libc::setresuid(base, base, base) == 0
    };
    if !dropped {
        eprintln!(
            "lineage {}: become uid {base}: {}",
            spec.lineage,
            std::io::Error::last_os_error()
        );
        sys::exit_now(1);
    }
    // SAFETY: unshare with namespace flags; single-threaded process.
    if unsafe { libc::unshare(LINEAGE_NS) } != 0 {
        eprintln!(
            "lineage {}: unshare: {}",
            spec.lineage,
            std::io::Error::last_os_error()
        );
        sys::exit_now(1);
    }
    if sys::write_all(up.as_raw_fd(), b"u").is_err() {
        sys::exit_now(1);
    }
    let mut b = [0u8; 1];
    if sys::read(go.as_raw_fd(), &mut b).ok() != Some(1) {
        sys::exit_now(1);
    }
    match sys::fork() {
        Ok(0) => {
            drop((up, go));
            manager::manager_main(spec, listener, rdy, pool_cg)
        }
        Ok(pid) => {
            let _ = sys::write_all(up.as_raw_fd(), &pid.to_le_bytes());
            sys::exit_now(0)
        }
        Err(e) => {
            eprintln!("lineage {}: fork manager: {e}", spec.lineage);
            sys::exit_now(1)
        }
    }
}
