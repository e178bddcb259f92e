//! The lineage manager: PID 1 of a lineage's pid namespace, root of its
//! user namespace. Starts world inits (each in a new child pid namespace
//! plus mount/net/uts/ipc/cgroup namespaces) and session interpreters
//! (active in the lineage pid namespace, entered into their world's
//! namespaces). Never runs user code; reaps every orphan of the lineage.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

use super::{init, session, sigguard};
use crate::lineage::{LineageSpec, ManagerReply, ManagerRequest};
use crate::proto::{self, ProtoError};
use crate::sys;

const WORLD_NS: libc::c_int = libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWPID;

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
pub fn manager_main(spec: &LineageSpec, listener: UnixListener, rdy: OwnedFd) -> ! {
    let sfd = match setup() {
        Ok(f) => f,
        Err(e) => {
            let _ = sys::write_all(rdy.as_raw_fd(), e.as_bytes());
            sys::exit_now(1)
        }
    };
    let _ = sys::write_all(rdy.as_raw_fd(), b"ok");
    drop(rdy);
    let _ = spec;
    let lfd = listener.as_raw_fd();
    loop {
        let mut fds = [
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
        // SAFETY: two valid pollfds.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            continue;
        }
        if fds[1].revents != 0 {
            init::reap(&sfd);
        }
        if fds[0].revents & libc::POLLIN != 0 {
            if let Some(conn) = sys::accept(lfd) {
                sys::set_timeouts(conn.as_raw_fd(), 30_000);
                serve_conn(&conn, lfd, &sfd);
            }
        }
    }
}

fn serve_conn(conn: &OwnedFd, lfd: RawFd, sfd: &OwnedFd) {
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
        let r = match req {
            ManagerRequest::Ping => ManagerReply::Done,
            ManagerRequest::NewWorld { spec } => {
                spawn(conn, lfd, sfd, fds, |fds| new_world(&spec, fds), WORLD_NS)
            }
            ManagerRequest::NewSession { argv, env } => spawn(
                conn,
                lfd,
                sfd,
                fds,
                |fds| session::start(&argv, &env, fds),
                0,
            ),
        };
        if reply(conn, &r).is_err() {
            return;
        }
    }
}

fn reply(conn: &OwnedFd, r: &ManagerReply) -> Result<(), ProtoError> {
    proto::send_msg(conn.as_fd(), r, &[])
}

fn spawn(
    conn: &OwnedFd,
    lfd: RawFd,
    sfd: &OwnedFd,
    fds: Vec<OwnedFd>,
    child: impl FnOnce(Vec<OwnedFd>),
    flags: libc::c_int,
) -> ManagerReply {
    match sys::clone_fork(flags) {
        Ok(0) => {
            // SAFETY: closing the manager's own fds in the child.
            unsafe {
                libc::close(lfd);
                libc::close(sfd.as_raw_fd());
                libc::close(conn.as_raw_fd());
            }
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
fn new_world(spec: &crate::supervisor::LaunchSpec, mut fds: Vec<OwnedFd>) -> ! {
    if fds.len() < 2 {
        sys::exit_now(1);
    }
    sigguard::close_in_child();
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
    init::world_init(spec, listener, rdy)
}
