//! Host side of lineages: starting and stopping a lineage manager, and
//! asking it for new world inits and session interpreters. Readiness comes
//! back on a socket pair with SO_PASSCRED, which also tells us the host pid
//! of the new process (the kernel translates it).

use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::LinuxSubstrate;
use crate::cgroup::WorldCgroup;
use crate::config::UID_COUNT;
use crate::error::{Result, WorldError};
use crate::lineage::{self, LineageRecord, LineageSpec, ManagerReply, ManagerRequest};
use crate::supervisor::{LaunchResult, LaunchSpec};
use crate::{proto, sys};

/// A lineage's pool of world shells: inits made ahead of time (namespaces,
/// staged mounts, seccomp program) that a branch turns into worlds without
/// making them. See `docs/snapshots.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PoolState {
    /// Shells ready for a world.
    pub ready: usize,
    /// Shells being made.
    pub preparing: usize,
    /// Shells the manager keeps.
    pub want: usize,
    /// When the pool was asked for through a snapshot: the branch roots
    /// of that snapshot made ahead (see `snapshot/ready.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roots_ready: Option<usize>,
}

/// A process the manager forked, whose ready message is awaited.
#[derive(Debug)]
pub(crate) struct Pending {
    ready: OwnedFd,
}

impl Pending {
    /// Whether the ready message (or a hang-up) has arrived.
    pub(crate) fn ready_now(&self) -> bool {
        sys::poll_readable(self.ready.as_raw_fd(), 0).unwrap_or(false)
    }

    /// Waits for "ok"; returns the host pid and its start time.
    pub(crate) fn wait(self, what: &str, timeout: Duration) -> Result<(i32, u64)> {
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let (msg, pid) = sys::recv_with_pid(self.ready.as_raw_fd(), 4096, ms)
            .map_err(|e| WorldError::Launch(format!("{what}: no ready message: {e}")))?;
        if msg != b"ok" {
            let m = String::from_utf8_lossy(&msg).into_owned();
            return Err(WorldError::Launch(if m.is_empty() {
                format!("{what} died during setup")
            } else {
                m
            })
            .into());
        }
        let st = sys::process_start_time(pid)
            .ok_or_else(|| WorldError::Launch(format!("{what} vanished")))?;
        Ok((pid, st))
    }
}

fn launch_err(m: impl std::fmt::Display) -> crate::Error {
    WorldError::Launch(m.to_string()).into()
}

impl LinuxSubstrate {
    /// Starts a new lineage manager.
    pub(crate) fn launch_lineage(&self) -> Result<LineageRecord> {
        self.launch_lineage_as(false)
    }

    /// Starts a new lineage manager; for a `spare`, its cgroup gets the
    /// idle CPU class before it starts, and its first world shell waits in
    /// the spare's own cgroup (idle too), which becomes its world's (see
    /// `spare`).
    pub(crate) fn launch_lineage_as(&self, spare: bool) -> Result<LineageRecord> {
        let id = lineage::random_id("l");
        let cg = WorldCgroup::create_plain(&self.cfg.cgroup_name, &lineage::cgroup_id(&id))?;
        let first = if spare {
            cg.set_idle();
            let f =
                WorldCgroup::create_plain(&self.cfg.cgroup_name, &lineage::spare_cgroup_id(&id))?;
            f.set_idle();
            f.procs_files()
        } else {
            Vec::new()
        };
        // Best effort: without it (or without cpu.idle), shells wait in
        // the manager's cgroup.
        let pool_cg =
            WorldCgroup::create_plain(&self.cfg.cgroup_name, &lineage::pool_cgroup_id(&id)).ok();
        if let Some(p) = &pool_cg {
            p.set_idle();
        }
        let run = self.layout.lineage_run(&id);
        let res = (|| {
            fs::create_dir_all(&run).map_err(|e| WorldError::Io("create lineage dir", e))?;
            let spec = LineageSpec {
                lineage: id.clone(),
                sock: run.join("ctl.sock"),
                cgroup_procs: cg.procs_files(),
                pool_cgroup_procs: pool_cg
                    .as_ref()
                    .map(|p| p.procs_files())
                    .unwrap_or_default(),
                first_shell_cgroup_procs: first,
                uid_base: self.cfg.uid_base,
                uid_count: UID_COUNT,
            };
            let (prog, args) = self
                .cfg
                .supervisor_cmd
                .split_first()
                .ok_or_else(|| launch_err("empty supervisor_cmd"))?;
            let log = fs::File::create(run.join("log"))
                .map_err(|e| WorldError::Io("create lineage log", e))?;
            let json = serde_json::to_string(&spec).expect("spec serializes");
            let mut child = Command::new(prog)
                .args(args)
                .arg(json)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()
                .map_err(|e| launch_err(format!("start {}: {e}", prog.to_string_lossy())))?;
            let mut out = String::new();
            if let Some(mut so) = child.stdout.take() {
                let _ = so.read_to_string(&mut out);
            }
            let _ = child.wait();
            let (pid, start_time) = match serde_json::from_str::<LaunchResult>(out.trim()) {
                Ok(LaunchResult::Ready { pid, start_time }) => (pid, start_time),
                Ok(LaunchResult::Failed(m)) => return Err(launch_err(m)),
                Err(_) => {
                    return Err(launch_err(format!(
                        "supervisor gave no result (is supervisor_cmd right?): {}",
                        out.trim()
                    )))
                }
            };
            let rec = LineageRecord {
                id: id.clone(),
                pid,
                start_time,
                created_at: super::now(),
            };
            rec.save(&self.layout)
                .map_err(|e| WorldError::Io("save lineage record", e))?;
            Ok(rec)
        })();
        if res.is_err() {
            let _ = self.stop_lineage(&id);
        }
        res
    }

    /// Kills a lineage manager (and with it every process of the lineage)
    /// and removes its traces.
    pub(crate) fn stop_lineage(&self, id: &str) -> Result<()> {
        let t0 = std::time::Instant::now();
        if let Some(r) = LineageRecord::load(&self.layout, id) {
            if r.alive() {
                if let Ok(pfd) = sys::pidfd_open(r.pid) {
                    if r.alive() {
                        let _ = sys::pidfd_kill(&pfd, libc::SIGKILL);
                        let _ = sys::poll_readable(pfd.as_raw_fd(), 5000);
                    }
                }
            }
        }
        crate::snapshot::trace("stop lineage: manager gone", t0);
        for name in [
            lineage::cgroup_id(id),
            lineage::pool_cgroup_id(id),
            lineage::spare_cgroup_id(id),
        ] {
            let cg = WorldCgroup::open(&self.cfg.cgroup_name, &name);
            if cg.exists() {
                cg.kill_all(Duration::from_secs(10))?;
                cg.remove()?;
            }
        }
        crate::snapshot::trace("stop lineage: cgroups removed", t0);
        let run = self.layout.lineage_run(id);
        if run.exists() {
            fs::remove_dir_all(&run).map_err(|e| WorldError::Io("remove lineage dir", e))?;
        }
        let meta = self.layout.lineage_meta(id);
        if meta.exists() {
            fs::remove_file(&meta).map_err(|e| WorldError::Io("remove lineage record", e))?;
        }
        Ok(())
    }

    /// Stops a lineage once no world and no snapshot uses it.
    pub(crate) fn release_lineage(&self, id: &str) -> Result<()> {
        let worlds = super::record::WorldRecord::all_ids(&self.layout)
            .iter()
            .filter_map(|w| super::record::WorldRecord::load(&self.layout, w).ok())
            .any(|r| r.lineage.as_deref() == Some(id));
        let snaps = crate::snapshot::SnapshotRecord::all(&self.layout)
            .iter()
            .any(|s| s.lineage == id);
        if !worlds && !snaps {
            self.stop_lineage(id)?;
        }
        Ok(())
    }

    /// Connects to a live lineage manager.
    pub(crate) fn manager(&self, id: &str) -> Result<UnixStream> {
        let r = LineageRecord::load(&self.layout, id)
            .filter(LineageRecord::alive)
            .ok_or_else(|| {
                launch_err(format!(
                    "lineage {id} is gone (its manager died; destroy its worlds)"
                ))
            })?;
        let _ = r;
        let c = UnixStream::connect(self.layout.lineage_run(id).join("ctl.sock"))
            .map_err(|e| launch_err(format!("lineage {id} does not answer: {e}")))?;
        sys::set_timeouts(c.as_raw_fd(), 30_000);
        Ok(c)
    }

    /// Asks the manager for a new world init; the world's control socket
    /// is bound here (as host root) and handed over.
    pub(crate) fn request_world(
        &self,
        conn: &UnixStream,
        spec: &LaunchSpec,
        cg: &WorldCgroup,
    ) -> Result<Pending> {
        let (l, cg_fds) = prepare_world(spec, cg)?;
        self.send_world(conn, spec, &l, &cg_fds)
    }

    /// The manager's part of [`Self::request_world`], with the listener and
    /// cgroup fds made by [`prepare_world`] (possibly on another thread).
    pub(crate) fn send_world(
        &self,
        conn: &UnixStream,
        spec: &LaunchSpec,
        l: &UnixListener,
        cg_fds: &[OwnedFd],
    ) -> Result<Pending> {
        let mut fds = vec![l.as_raw_fd()];
        let (mine, theirs) = sys::socketpair()?;
        sys::pass_cred(mine.as_raw_fd())?;
        fds.push(theirs.as_raw_fd());
        fds.extend(cg_fds.iter().map(|f| f.as_raw_fd()));
        let req = ManagerRequest::NewWorld { spec: spec.clone() };
        self.manager_call(conn, &req, &fds)?;
        Ok(Pending { ready: mine })
    }

    /// Asks the manager for a session interpreter. `fds` are the session
    /// listener, net/uts/ipc/cgroup/pid/mnt namespace fds and the
    /// cgroup.procs fds; the ready socket is added here.
    pub(crate) fn request_session(
        &self,
        conn: &UnixStream,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        listener: &UnixListener,
        ns: &[OwnedFd],
        cg: &[OwnedFd],
    ) -> Result<Pending> {
        let (mine, theirs) = sys::socketpair()?;
        sys::pass_cred(mine.as_raw_fd())?;
        let mut fds = vec![listener.as_raw_fd(), theirs.as_raw_fd()];
        fds.extend(ns.iter().map(|f| f.as_raw_fd()));
        fds.extend(cg.iter().map(|f| f.as_raw_fd()));
        self.manager_call(conn, &ManagerRequest::NewSession { argv, env }, &fds)?;
        Ok(Pending { ready: mine })
    }

    fn manager_call(
        &self,
        conn: &UnixStream,
        req: &ManagerRequest,
        fds: &[i32],
    ) -> Result<ManagerReply> {
        proto::send_msg(conn.as_fd(), req, fds)?;
        match proto::recv_msg::<ManagerReply>(conn.as_fd())?.0 {
            ManagerReply::Failed { msg } => Err(launch_err(msg)),
            r => Ok(r),
        }
    }

    /// Sets how many world shells the lineage manager keeps ready (see
    /// [`PoolState`]); `grow_only` never lowers the number.
    pub(crate) fn pool_call(
        &self,
        conn: &UnixStream,
        want: usize,
        grow_only: bool,
        binds: &[String],
    ) -> Result<PoolState> {
        let req = ManagerRequest::Pool {
            want: want.min(u32::MAX as usize) as u32,
            grow_only,
            binds: binds.to_vec(),
        };
        match self.manager_call(conn, &req, &[])? {
            ManagerReply::Pool {
                ready,
                preparing,
                want,
            } => Ok(PoolState {
                ready: ready as usize,
                preparing: preparing as usize,
                want: want as usize,
                roots_ready: None,
            }),
            r => Err(launch_err(format!(
                "lineage manager: unexpected reply {r:?}"
            ))),
        }
    }
}

/// The host's part of a world request: binds the world's control socket
/// (as host root) and opens its cgroup.procs files.
pub(crate) fn prepare_world(
    spec: &LaunchSpec,
    cg: &WorldCgroup,
) -> Result<(UnixListener, Vec<OwnedFd>)> {
    Ok((bind_world_sock(spec)?, cg.open_procs()?))
}

/// Binds a world's control socket (as host root).
pub(crate) fn bind_world_sock(spec: &LaunchSpec) -> Result<UnixListener> {
    let _ = fs::remove_file(&spec.sock);
    UnixListener::bind(&spec.sock)
        .map_err(|e| WorldError::Io("bind world control socket", e).into())
}

/// Opens the namespaces of a world's init (host pid) in the order
/// [`crate::supervisor::session::NS_ORDER`] wants.
pub(crate) fn world_ns_fds(init_pid: i32) -> Result<Vec<OwnedFd>> {
    crate::supervisor::session::NS_ORDER
        .iter()
        .map(|(n, _)| {
            fs::File::open(format!("/proc/{init_pid}/ns/{n}"))
                .map(OwnedFd::from)
                .map_err(|e| WorldError::Io("open world namespace", e).into())
        })
        .collect()
}

/// Pending wrapper for a ready socket created elsewhere.
pub(crate) fn pending(ready: OwnedFd) -> Pending {
    Pending { ready }
}
