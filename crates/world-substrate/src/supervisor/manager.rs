//! The lineage manager: PID 1 of a lineage's pid namespace, root of its
//! user namespace. Starts world inits (each in a new child pid namespace
//! plus mount/net/uts/ipc/cgroup namespaces) and session interpreters
//! (active in the lineage pid namespace, entered into their world's
//! namespaces). Never runs user code; reaps every orphan of the lineage.
//!
//! It also keeps a **pool of world shells**: world inits made ahead of
//! time, whose namespaces, staged mounts, loopback and seccomp program
//! exist but which have no world yet (see `init::Shell`). A `NewWorld`
//! takes a ready shell when there is one (it only has to join its cgroup,
//! move its mounts into the root and pivot) and clones a fresh init
//! otherwise; both end in the same `Shell::adopt`. The host sets how many
//! shells to keep (`ManagerRequest::Pool`, sent after each branch); the
//! manager makes them one at a time, only after `REFILL_AFTER_MS` without a
//! request, so refilling never competes with a branch; and it lets them go
//! after `POOL_IDLE` without a pool request. Shells wait in the lineage's
//! pool cgroup (`lineage::pool_cgroup_id`, CPU class `SCHED_IDLE`: making
//! them only takes CPU time nothing else wants) until adopted, and die
//! with the lineage.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{init, session, sigguard};
use crate::lineage::{LineageSpec, ManagerReply, ManagerRequest};
use crate::proto::{self, ProtoError};
use crate::supervisor::LaunchSpec;
use crate::sys;

const WORLD_NS: libc::c_int = libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWPID;

/// Quiet time (no request) before the manager makes a missing shell.
const REFILL_AFTER_MS: i32 = 20;
/// A pool with no pool request for this long is emptied.
const POOL_IDLE: Duration = Duration::from_secs(300);

/// One pooled shell, as the manager sees it.
struct PoolShell {
    pid: i32,
    /// The manager's end of the shell's channel: the shell writes one byte
    /// when prepared; the adoption (`NewWorld`) goes the other way.
    chan: OwnedFd,
    ready: bool,
}

/// The cgroups the launcher opened for the manager's shells.
pub(crate) struct PoolCgroups {
    /// The lineage's pool cgroup.
    pub pool: Vec<OwnedFd>,
    /// The first shell's cgroup, if not the pool's.
    pub first: Vec<OwnedFd>,
}

/// The manager's pool of world shells.
struct Pool {
    /// Where shells stage their mounts: the lineage run directory, hidden
    /// by a tmpfs in each shell's own mount namespace.
    stage: PathBuf,
    /// The image binds the shells are staged for; none before the first
    /// pool request.
    binds: Option<Vec<String>>,
    want: usize,
    shells: Vec<PoolShell>,
    /// cgroup.procs fds of the lineage's `SCHED_IDLE` pool cgroup, which a
    /// new shell joins first (opened by the launcher as host root).
    cgroup: Vec<OwnedFd>,
    /// cgroup.procs fds the next shell joins instead of `cgroup`, once (a
    /// spare's cgroup, see `LineageSpec::first_shell_cgroup_procs`).
    first_cgroup: Vec<OwnedFd>,
    /// Last pool request (for `POOL_IDLE`).
    last_request: Instant,
    /// Last request that started a process (for `REFILL_AFTER_MS`): pool
    /// queries and pings do not hold a refill back.
    last_busy: Instant,
}

impl Pool {
    /// The fds a child other than a new shell must close: every shell's
    /// channel and the pool cgroup's files.
    fn raw_fds(&self) -> Vec<RawFd> {
        self.shells
            .iter()
            .map(|s| s.chan.as_raw_fd())
            .chain(self.cgroup.iter().map(|f| f.as_raw_fd()))
            .chain(self.first_cgroup.iter().map(|f| f.as_raw_fd()))
            .collect()
    }

    fn ready(&self) -> usize {
        self.shells.iter().filter(|s| s.ready).count()
    }

    fn preparing(&self) -> usize {
        self.shells.len() - self.ready()
    }

    fn needs_refill(&self) -> bool {
        self.binds.is_some() && self.shells.len() < self.want && self.preparing() == 0
    }

    /// Reads the ready bytes that arrived and drops shells that died. A
    /// shell that dies before it is ready stops the pool from growing until
    /// the next pool request, so a setup that keeps failing is not retried
    /// every few milliseconds (its error is in the lineage log).
    fn refresh(&mut self) {
        let mut failed = false;
        self.shells.retain_mut(|s| {
            if s.ready {
                // A ready shell never writes again: readable means gone.
                return !sys::poll_readable(s.chan.as_raw_fd(), 0).unwrap_or(true);
            }
            if !sys::poll_readable(s.chan.as_raw_fd(), 0).unwrap_or(true) {
                return true;
            }
            let mut b = [0u8; 1];
            match sys::read(s.chan.as_raw_fd(), &mut b) {
                Ok(1) if b[0] == b'r' => {
                    s.ready = true;
                    true
                }
                _ => {
                    kill(s.pid);
                    failed = true;
                    false
                }
            }
        });
        if failed {
            self.want = self.want.min(self.shells.len());
        }
    }

    /// A ready shell staged for `binds`, out of the pool.
    fn take(&mut self, binds: &[String]) -> Option<PoolShell> {
        if self.binds.as_deref() != Some(binds) {
            return None;
        }
        self.refresh();
        let i = self.shells.iter().position(|s| s.ready)?;
        Some(self.shells.remove(i))
    }

    /// Kills shells beyond `want`, those still preparing first.
    fn trim(&mut self) {
        while self.shells.len() > self.want {
            let i = self
                .shells
                .iter()
                .rposition(|s| !s.ready)
                .unwrap_or(self.shells.len() - 1);
            kill(self.shells.remove(i).pid);
        }
    }

    fn state(&self) -> ManagerReply {
        ManagerReply::Pool {
            ready: self.ready() as u32,
            preparing: self.preparing() as u32,
            want: self.want as u32,
        }
    }
}

fn kill(pid: i32) {
    // SAFETY: kill of a shell the manager forked (reaped via SIGCHLD).
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

fn setup() -> Result<OwnedFd, String> {
    init::become_root().map_err(|e| format!("become lineage root: {e}"))?;
    let null = sys::dev_null().map_err(|e| e.to_string())?;
    let _ = sys::dup2(null.as_raw_fd(), 0);
    let _ = sys::dup2(null.as_raw_fd(), 1);
    drop(null);
    sys::mount(
        None,
        std::path::Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )
    .map_err(|e| e.to_string())?;
    // SAFETY: prctl with integer args: not dumpable, so no world process
    // can trace the manager or open its /proc files.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    // Before any session exists: sessions hand it their signal filter.
    sigguard::start()?;
    init::sigchld_fd().map_err(|e| format!("signalfd: {e}"))
}

/// Runs the manager. Never returns.
pub fn manager_main(
    spec: &LineageSpec,
    listener: UnixListener,
    rdy: OwnedFd,
    pool_cgroup: PoolCgroups,
) -> ! {
    let sfd = match setup() {
        Ok(f) => f,
        Err(e) => {
            let _ = sys::write_all(rdy.as_raw_fd(), e.as_bytes());
            sys::exit_now(1)
        }
    };
    let _ = sys::write_all(rdy.as_raw_fd(), b"ok");
    drop(rdy);
    let lfd = listener.as_raw_fd();
    let mut pool = Pool {
        stage: spec
            .sock
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| "/".into()),
        binds: None,
        want: 0,
        shells: Vec::new(),
        cgroup: pool_cgroup.pool,
        first_cgroup: pool_cgroup.first,
        last_request: Instant::now(),
        last_busy: Instant::now(),
    };
    loop {
        let quiet = pool.last_busy.elapsed().as_millis().min(i32::MAX as u128) as i32;
        if pool.needs_refill() && quiet >= REFILL_AFTER_MS {
            spawn_shell(&mut pool, lfd, &sfd);
        }
        let mut fds = vec![
            libc::pollfd {
                fd: lfd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        fds.extend(pool.shells.iter().map(|s| libc::pollfd {
            fd: s.chan.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }));
        let idle_left = POOL_IDLE.saturating_sub(pool.last_request.elapsed());
        let timeout = if pool.needs_refill() {
            (REFILL_AFTER_MS - quiet).max(1)
        } else if !pool.shells.is_empty() {
            idle_left.as_millis().min(i32::MAX as u128) as i32 + 1
        } else {
            -1
        };
        // SAFETY: a vector of valid pollfds and its length.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if r < 0 {
            continue;
        }
        if r == 0 {
            if pool.last_request.elapsed() >= POOL_IDLE {
                pool.want = 0;
                pool.trim();
            }
            continue;
        }
        if fds[1].revents != 0 {
            init::reap(&sfd);
        }
        if fds[2..].iter().any(|f| f.revents != 0) {
            pool.refresh();
        }
        if fds[0].revents & libc::POLLIN != 0 {
            if let Some(conn) = sys::accept(lfd) {
                sys::set_timeouts(conn.as_raw_fd(), 30_000);
                serve_conn(&conn, lfd, &sfd, &mut pool);
            }
        }
    }
}

fn serve_conn(conn: &OwnedFd, lfd: RawFd, sfd: &OwnedFd, pool: &mut Pool) {
    loop {
        let (req, fds) = match proto::recv_msg::<ManagerRequest>(conn.as_fd()) {
            Ok(x) => x,
            Err(ProtoError::Closed) => return,
            Err(e) => {
                let _ = reply(conn, &ManagerReply::Failed { msg: e.to_string() });
                return;
            }
        };
        init::reap(sfd);
        if matches!(
            req,
            ManagerRequest::NewWorld { .. } | ManagerRequest::NewSession { .. }
        ) {
            pool.last_busy = Instant::now();
        }
        let others = pool.raw_fds();
        let close = |extra: &[RawFd]| {
            // SAFETY: closing the manager's own fds in a forked child.
            unsafe {
                libc::close(lfd);
                libc::close(sfd.as_raw_fd());
                libc::close(conn.as_raw_fd());
                for f in extra {
                    libc::close(*f);
                }
            }
        };
        let r = match req {
            ManagerRequest::Ping => ManagerReply::Done,
            ManagerRequest::Pool {
                want,
                grow_only,
                binds,
            } => {
                if pool.binds.as_ref() != Some(&binds) {
                    pool.want = 0;
                    pool.trim();
                    pool.binds = Some(binds);
                }
                // Failures seen so far count before this request re-opens
                // growth.
                pool.refresh();
                let want = want as usize;
                pool.want = if grow_only { pool.want.max(want) } else { want };
                pool.last_request = Instant::now();
                pool.trim();
                pool.state()
            }
            ManagerRequest::NewWorld { spec } => match adopt(pool, &spec, &fds) {
                Some(r) => r,
                None => {
                    let stage = pool.stage.clone();
                    spawn(
                        fds,
                        |fds| {
                            close(&others);
                            new_world(&stage, &spec, fds)
                        },
                        WORLD_NS,
                    )
                }
            },
            ManagerRequest::NewSession { argv, env } => spawn(
                fds,
                |fds| {
                    close(&others);
                    session::start(&argv, &env, fds)
                },
                0,
            ),
        };
        if reply(conn, &r).is_err() {
            return;
        }
    }
}

/// Hands a `NewWorld` (and its fds) to a ready pooled shell, if any.
fn adopt(pool: &mut Pool, spec: &LaunchSpec, fds: &[OwnedFd]) -> Option<ManagerReply> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    while let Some(sh) = pool.take(&spec.binds) {
        // Out of the idle pool cgroup before it is woken: a SCHED_IDLE
        // shell would wait behind every busy task (a branch's root
        // workers) before it could move itself. The pid is the shell's in
        // our pid namespace, as the files read it. Moved, the shell gets
        // no cgroup files (it would only move itself again); otherwise it
        // gets them and moves itself.
        let pid = sh.pid.to_string();
        let moved = fds
            .iter()
            .skip(2)
            .all(|f| sys::write_all(f.as_raw_fd(), pid.as_bytes()).is_ok());
        let pass = if moved {
            &raw[..raw.len().min(2)]
        } else {
            &raw[..]
        };
        let req = ManagerRequest::NewWorld { spec: spec.clone() };
        if proto::send_msg(sh.chan.as_fd(), &req, pass).is_ok() {
            return Some(ManagerReply::Forked { pid: sh.pid });
        }
        kill(sh.pid);
    }
    None
}

/// Clones one pooled shell (in the background: it reports ready on its
/// channel).
fn spawn_shell(pool: &mut Pool, lfd: RawFd, sfd: &OwnedFd) {
    let Some(binds) = pool.binds.clone() else {
        return;
    };
    let Ok((mine, theirs)) = sys::socketpair() else {
        pool.want = pool.shells.len();
        return;
    };
    let chans: Vec<RawFd> = pool.shells.iter().map(|s| s.chan.as_raw_fd()).collect();
    match sys::clone_fork(WORLD_NS) {
        Ok(0) => {
            // SAFETY: closing the manager's own fds in the child.
            unsafe {
                libc::close(lfd);
                libc::close(sfd.as_raw_fd());
                libc::close(mine.as_raw_fd());
                for f in chans {
                    libc::close(f);
                }
            }
            sys::reset_signals();
            // Wait (and prepare) in the idle pool cgroup (a spare's first
            // shell: in the spare's cgroup); without it, in the
            // manager's. The files go before anything else runs.
            let join = if pool.first_cgroup.is_empty() {
                &pool.cgroup
            } else {
                &pool.first_cgroup
            };
            for f in join {
                let _ = sys::write_all(f.as_raw_fd(), b"0");
            }
            for f in pool.cgroup.iter().chain(&pool.first_cgroup) {
                // SAFETY: closing the pool cgroups' fds in the child.
                unsafe { libc::close(f.as_raw_fd()) };
            }
            shell_main(&pool.stage, &binds, theirs)
        }
        Ok(pid) => {
            pool.first_cgroup.clear();
            pool.shells.push(PoolShell {
                pid,
                chan: mine,
                ready: false,
            })
        }
        // Out of processes or memory: stop growing until the next request.
        Err(_) => pool.want = pool.shells.len(),
    }
}

/// A pooled shell: prepares, says so, waits for its world.
fn shell_main(stage: &Path, binds: &[String], chan: OwnedFd) -> ! {
    sigguard::close_in_child();
    let shell = match init::Shell::prepare(stage, binds) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("world shell: {e}");
            sys::exit_now(1)
        }
    };
    if sys::write_all(chan.as_raw_fd(), b"r").is_err() {
        sys::exit_now(0);
    }
    let (req, fds) = match proto::recv_msg::<ManagerRequest>(chan.as_fd()) {
        Ok(x) => x,
        Err(_) => sys::exit_now(0),
    };
    drop(chan);
    let ManagerRequest::NewWorld { spec } = req else {
        sys::exit_now(1)
    };
    let (listener, rdy) = join_world(fds);
    shell.adopt(&spec, listener, rdy)
}

fn reply(conn: &OwnedFd, r: &ManagerReply) -> Result<(), ProtoError> {
    proto::send_msg(conn.as_fd(), r, &[])
}

fn spawn(fds: Vec<OwnedFd>, child: impl FnOnce(Vec<OwnedFd>), flags: libc::c_int) -> ManagerReply {
    match sys::clone_fork(flags) {
        Ok(0) => {
            sys::reset_signals();
            child(fds);
            sys::exit_now(1)
        }
        Ok(pid) => ManagerReply::Forked { pid },
        Err(e) => ManagerReply::Failed {
            msg: format!("lineage cannot start a process: {e}"),
        },
    }
}

/// A new world's init: joins the world cgroup, takes a cgroup namespace
/// rooted there, then runs the ordinary world init.
fn new_world(stage: &Path, spec: &LaunchSpec, fds: Vec<OwnedFd>) -> ! {
    sigguard::close_in_child();
    let (listener, rdy) = join_world(fds);
    init::world_init(stage, spec, listener, rdy)
}

/// The world part of an init's start, from a `NewWorld`'s fds `[ctl
/// listener, ready socket, cgroup.procs...]`: joins the world's cgroups and
/// takes a cgroup namespace rooted there. Exits (reporting on the ready
/// socket) when that fails.
fn join_world(mut fds: Vec<OwnedFd>) -> (UnixListener, OwnedFd) {
    if fds.len() < 2 {
        sys::exit_now(1);
    }
    let cg: Vec<OwnedFd> = fds.split_off(2);
    let rdy = fds.pop().expect("ready fd");
    let lst = fds.pop().expect("listener fd");
    let fail = |m: String| -> ! {
        let _ = sys::write_all(rdy.as_raw_fd(), m.as_bytes());
        sys::exit_now(1)
    };
    for f in &cg {
        if let Err(e) = sys::write_all(f.as_raw_fd(), b"0") {
            fail(format!("join world cgroup: {e}"));
        }
    }
    drop(cg);
    // SAFETY: unshare with a namespace flag; single-threaded process.
    if unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } != 0 {
        fail(format!(
            "cgroup namespace: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `lst` is a listening socket fd we own; ownership moves.
    let listener = unsafe { UnixListener::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(lst)) };
    (listener, rdy)
}
