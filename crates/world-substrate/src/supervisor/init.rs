//! PID 1 of a world: becomes root of the world's user namespace, builds the
//! root filesystem, then serves the control socket (one forked agent per
//! connection) and reaps every orphan, until destroy kills it. Its setup is
//! split in two ([`Shell`]): the part that needs no world can run ahead of
//! time, in a pooled shell (see `manager`).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use super::{agent, rootfs, LaunchSpec};
use crate::seccomp::Program;
use crate::sys;

pub(super) fn become_root() -> std::io::Result<()> {
    // SAFETY: credential syscalls with integer/null args; we hold
    // CAP_SETUID/CAP_SETGID in the new user namespace.
    unsafe {
        sys::cvt(libc::setgroups(0, std::ptr::null()) as libc::c_long)?;
        sys::cvt(libc::setresgid(0, 0, 0) as libc::c_long)?;
        sys::cvt(libc::setresuid(0, 0, 0) as libc::c_long)?;
    }
    Ok(())
}

/// A world init before it has a root: its namespaces exist, its mounts
/// are staged (see [`rootfs::stage`]), its seccomp program is compiled and
/// SIGCHLD comes on a signalfd. [`Shell::adopt`] turns it into a world.
pub(super) struct Shell {
    prog: Program,
    sfd: OwnedFd,
    stage: PathBuf,
    binds: Vec<String>,
}

impl Shell {
    /// Everything of a world init's setup that does not depend on the
    /// world: runs in the init's fresh namespaces, before or long before it
    /// gets a world (a pooled shell).
    pub(super) fn prepare(stage: &Path, binds: &[String]) -> Result<Shell, String> {
        become_root().map_err(|e| format!("become world root: {e}"))?;
        let null = sys::dev_null().map_err(|e| e.to_string())?;
        let _ = sys::dup2(null.as_raw_fd(), 0);
        let _ = sys::dup2(null.as_raw_fd(), 1);
        drop(null);
        rootfs::stage(stage, binds).map_err(|e| format!("root filesystem: {e}"))?;
        rootfs::loopback_up().map_err(|e| format!("loopback: {e}"))?;
        let prog = Program::default_policy().map_err(|e| e.to_string())?;
        // SAFETY: prctl with integer args. Not dumpable: world processes
        // cannot ptrace us or open /proc/1/fd.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        let sfd = sigchld_fd().map_err(|e| format!("signalfd: {e}"))?;
        Ok(Shell {
            prog,
            sfd,
            stage: stage.to_path_buf(),
            binds: binds.to_vec(),
        })
    }

    /// Becomes the world `spec` describes: environment, root (the staged
    /// mounts moved in, then pivot), hostname; reports ready on `rdy` and
    /// serves. Never returns.
    pub(super) fn adopt(self, spec: &LaunchSpec, listener: UnixListener, rdy: OwnedFd) -> ! {
        let fail = |m: String| -> ! {
            let _ = sys::write_all(rdy.as_raw_fd(), m.as_bytes());
            sys::exit_now(1)
        };
        if spec.binds != self.binds {
            fail("world shell was prepared for another image".into());
        }
        for (k, v) in &spec.env {
            // Single-threaded process: setting the environment is safe;
            // every agent forked from here passes WORLD_* variables on to
            // commands.
            std::env::set_var(k, v);
        }
        if let Err(e) = rootfs::enter(&spec.root, &self.stage, &spec.binds) {
            fail(format!("root filesystem: {e}"));
        }
        if let Err(e) = rootfs::set_hostname(&spec.id) {
            fail(format!("hostname: {e}"));
        }
        let _ = sys::write_all(rdy.as_raw_fd(), b"ok");
        drop(rdy);
        serve(&listener, &self.sfd, &self.prog)
    }
}

/// Runs a fresh world's init: [`Shell::prepare`] then [`Shell::adopt`].
/// Never returns.
pub fn world_init(stage: &Path, spec: &LaunchSpec, listener: UnixListener, rdy: OwnedFd) -> ! {
    match Shell::prepare(stage, &spec.binds) {
        Ok(shell) => shell.adopt(spec, listener, rdy),
        Err(e) => {
            let _ = sys::write_all(rdy.as_raw_fd(), e.as_bytes());
            sys::exit_now(1)
        }
    }
}

pub(super) fn sigchld_fd() -> std::io::Result<OwnedFd> {
    // SAFETY: building a sigset on the stack, blocking SIGCHLD and creating
    // a signalfd for it; all pointers are to live locals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = sys::cvt(
            libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) as libc::c_long,
        )?;
        Ok(OwnedFd::from_raw_fd(fd as i32))
    }
}

pub(super) fn reap(sfd: &OwnedFd) {
    let mut buf = [0u8; 128 * 8];
    while sys::read(sfd.as_raw_fd(), &mut buf)
        .map(|n| n > 0)
        .unwrap_or(false)
    {}
    while let Ok((p, _)) = sys::waitpid(-1, libc::WNOHANG) {
        if p <= 0 {
            break;
        }
    }
}

fn serve(listener: &UnixListener, sfd: &OwnedFd, prog: &Program) -> ! {
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
            reap(sfd);
        }
        if fds[0].revents & libc::POLLIN != 0 {
            // SAFETY: accept4 on our listening socket; null address out-ptrs.
            let c = unsafe {
                libc::accept4(
                    lfd,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            };
            if c < 0 {
                continue;
            }
            // SAFETY: accept4 returned a fresh fd that we own.
            let conn = unsafe { OwnedFd::from_raw_fd(c) };
            match sys::fork() {
                Ok(0) => {
                    // SAFETY: closing fds this agent must not hold.
                    unsafe {
                        libc::close(lfd);
                        libc::close(sfd.as_raw_fd());
                    }
                    agent::run(conn, prog)
                }
                Ok(_) => drop(conn),
                Err(e) => {
                    let r = crate::proto::Reply::Failed {
                        kind: crate::proto::FailKind::Other,
                        msg: format!(
                            "world cannot start a process ({e}); its pids limit may be exhausted"
                        ),
                    };
                    let _ = crate::proto::send_reply(conn.as_raw_fd(), &r);
                }
            }
        }
    }
}
