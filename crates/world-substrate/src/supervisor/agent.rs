//! One agent per control connection, forked by the world's init: reads the
//! request, runs the command (as a child subreaper, so the whole process
//! tree of the exec can be killed on timeout or when the client goes away),
//! or streams a tar in/out, then writes the reply and exits.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::sandbox;
use crate::proto::{self, FailKind, Reply, Request};
use crate::seccomp::Program;
use crate::sys;
use crate::types::{ExecRequest, ExecStatus};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Serves one connection. Never returns.
pub fn run(conn: OwnedFd, prog: &Program) -> ! {
    sys::reset_signals();
    let reply = match proto::recv_request(conn.as_fd()) {
        Ok((Request::Exec(r), fds)) => exec(&conn, r, fds, prog),
        Ok((Request::CopyIn { dest }, fds)) => copy(fds, prog, |f| copy_in(f, &dest)),
        Ok((Request::CopyOut { src }, fds)) => copy(fds, prog, |f| copy_out(f, &src)),
        Ok((Request::Ping, _)) => Some(Reply::Done),
        Err(e) => Some(failed(FailKind::BadRequest, e.to_string())),
    };
    if let Some(r) = reply {
        let _ = proto::send_reply(conn.as_raw_fd(), &r);
    }
    sys::exit_now(0)
}

fn failed(kind: FailKind, msg: String) -> Reply {
    Reply::Failed { kind, msg }
}

fn hostname() -> String {
    let mut b = [0u8; 65];
    // SAFETY: buffer and its length.
    unsafe { libc::gethostname(b.as_mut_ptr().cast(), b.len() - 1) };
    let n = b.iter().position(|c| *c == 0).unwrap_or(0);
    String::from_utf8_lossy(&b[..n]).into_owned()
}

fn build_env(r: &ExecRequest) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("PATH", DEFAULT_PATH.to_string()),
        ("HOME", "/root".into()),
        ("TERM", "xterm".into()),
        ("LANG", "C.UTF-8".into()),
        ("HOSTNAME", hostname()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    env.extend(std::env::vars().filter(|(k, _)| k.starts_with("WORLD_")));
    for (k, v) in &r.env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

fn cstrings<I: IntoIterator<Item = String>>(it: I) -> Option<Vec<CString>> {
    it.into_iter().map(|s| CString::new(s).ok()).collect()
}

const STEP_CWD: u8 = 1;
const STEP_EXEC: u8 = 2;
const STEP_SETUP: u8 = 3;

fn exec(conn: &OwnedFd, r: ExecRequest, fds: Vec<OwnedFd>, prog: &Program) -> Option<Reply> {
    if r.argv.is_empty() || r.argv[0].is_empty() {
        return Some(failed(FailKind::BadRequest, "empty command".into()));
    }
    if fds.len() != 3 {
        return Some(failed(
            FailKind::BadRequest,
            "exec needs stdin, stdout, stderr".into(),
        ));
    }
    // A terminal: made here, in the world's own devpts (so its name means
    // the same inside the world), its master sent back over the socket
    // the caller gave as stdio; the command gets the slave.
    let fds = if r.tty {
        match open_terminal(&fds[0]) {
            Ok(slave) => vec![slave.try_clone().ok(), slave.try_clone().ok(), Some(slave)]
                .into_iter()
                .collect::<Option<Vec<OwnedFd>>>()
                .unwrap_or_default(),
            Err(e) => {
                return Some(failed(
                    FailKind::Other,
                    format!("cannot open a terminal in the world: {e}"),
                ))
            }
        }
    } else {
        fds
    };
    if fds.len() != 3 {
        return Some(failed(
            FailKind::Other,
            "cannot duplicate the terminal".into(),
        ));
    }
    let env = build_env(&r);
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_PATH.to_string(), |(_, v)| v.clone());
    let prog_name = r.argv[0].clone();
    let candidates: Vec<String> = if prog_name.contains('/') {
        vec![prog_name.clone()]
    } else {
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{d}/{prog_name}"))
            .collect()
    };
    let cwd = r.cwd.clone().unwrap_or_else(|| "/root".into());
    let (Some(argv), Some(envp), Some(cands), Some(cwd_c)) = (
        cstrings(r.argv.clone()),
        cstrings(env.iter().map(|(k, v)| format!("{k}={v}"))),
        cstrings(candidates),
        CString::new(cwd.clone()).ok(),
    ) else {
        return Some(failed(FailKind::BadRequest, "argument contains NUL".into()));
    };
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    envp_p.push(std::ptr::null());

    // SAFETY: prctl with integer args.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let (err_r, err_w) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => return Some(failed(FailKind::Other, format!("pipe: {e}"))),
    };
    let child = match sys::fork() {
        Ok(0) => {
            drop(err_r);
            let report = |step: u8, errno: i32| -> ! {
                let mut m = [step, 0, 0, 0, 0];
                m[1..].copy_from_slice(&errno.to_le_bytes());
                let _ = sys::write_all(err_w.as_raw_fd(), &m);
                sys::exit_now(127)
            };
            // SAFETY: setsid; new session and process group for the exec.
            unsafe { libc::setsid() };
            for (i, fd) in fds.iter().enumerate() {
                if sys::dup2(fd.as_raw_fd(), i as i32).is_err() {
                    report(STEP_SETUP, libc::EBADF);
                }
            }
            // SAFETY: ioctl on fd 0 with an integer argument (0: never
            // steal a terminal that is another session's).
            if r.tty && unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
                report(STEP_SETUP, last_errno());
            }
            // SAFETY: valid C string.
            if unsafe { libc::chdir(cwd_c.as_ptr()) } != 0 {
                report(STEP_CWD, last_errno());
            }
            if let Err((_, e)) = sandbox::lock_down(prog) {
                report(STEP_SETUP, e);
            }
            let mut saw_eacces = false;
            for c in &cands {
                // SAFETY: NUL-terminated argv/envp arrays of live C strings.
                unsafe { libc::execve(c.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
                match last_errno() {
                    libc::ENOENT | libc::ENOTDIR => {}
                    libc::EACCES => saw_eacces = true,
                    e => report(STEP_EXEC, e),
                }
            }
            report(
                STEP_EXEC,
                if saw_eacces {
                    libc::EACCES
                } else {
                    libc::ENOENT
                },
            )
        }
        Ok(pid) => pid,
        Err(e) => {
            return Some(failed(
                FailKind::Other,
                format!("cannot start process ({e}); the world's pids limit may be exhausted"),
            ))
        }
    };
    drop(err_w);
    drop(fds);
    let msg = sys::read_to_end(err_r.as_raw_fd(), 5).unwrap_or_default();
    if msg.len() == 5 {
        let _ = sys::waitpid(child, 0);
        let errno = i32::from_le_bytes([msg[1], msg[2], msg[3], msg[4]]);
        let err = std::io::Error::from_raw_os_error(errno);
        return Some(match (msg[0], errno) {
            (STEP_CWD, _) => failed(FailKind::NoSuchPath, format!("cwd {cwd}: {err}")),
            (STEP_EXEC, libc::ENOENT) => failed(
                FailKind::NotFound,
                format!("{prog_name}: command not found"),
            ),
            (STEP_EXEC, libc::EACCES) => failed(
                FailKind::PermissionDenied,
                format!("{prog_name}: permission denied"),
            ),
            (STEP_EXEC, _) => failed(FailKind::Other, format!("{prog_name}: {err}")),
            _ => failed(FailKind::Other, format!("world setup for exec: {err}")),
        });
    }
    wait(conn, child, r.timeout.map(|t| Instant::now() + t))
}

/// Opens a terminal pair in the world's devpts, sends the master over
/// `ctl` and returns the slave.
fn open_terminal(ctl: &OwnedFd) -> std::io::Result<OwnedFd> {
    let p = crate::pty::Pty::open_at(crate::pty::WORLD_PTMX, crate::pty::WinSize::clamped(0, 0))?;
    proto::send_msg(
        ctl.as_fd(),
        &crate::pty::MASTER_MSG,
        &[p.master.as_raw_fd()],
    )
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(p.slave)
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn status_of(raw: i32, timed_out: bool) -> ExecStatus {
    if libc::WIFSIGNALED(raw) {
        let s = libc::WTERMSIG(raw);
        ExecStatus {
            exit_code: 128 + s,
            signal: Some(s),
            timed_out,
        }
    } else {
        ExecStatus {
            exit_code: libc::WEXITSTATUS(raw),
            signal: None,
            timed_out,
        }
    }
}

/// Waits for the command, the deadline, or the client hanging up.
fn wait(conn: &OwnedFd, child: i32, deadline: Option<Instant>) -> Option<Reply> {
    let Ok(pidfd) = sys::pidfd_open(child) else {
        let (_, st) = sys::waitpid(child, 0).ok()?;
        return Some(Reply::Exited(status_of(st, false)));
    };
    loop {
        let ms = deadline.map_or(-1, |d| {
            d.saturating_duration_since(Instant::now())
                .as_millis()
                .min(i32::MAX as u128) as i32
        });
        let mut p = [
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: conn.as_raw_fd(),
                events: libc::POLLIN | libc::POLLRDHUP,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds.
        let n = unsafe { libc::poll(p.as_mut_ptr(), 2, ms) };
        if n < 0 {
            continue;
        }
        if p[0].revents != 0 {
            let (_, st) = sys::waitpid(child, 0).ok()?;
            return Some(Reply::Exited(status_of(st, false)));
        }
        if p[1].revents != 0 {
            kill_tree(child);
            return None;
        }
        if n == 0 {
            let st = kill_tree(child).unwrap_or(libc::SIGKILL);
            return Some(Reply::Exited(status_of(st, true)));
        }
    }
}

fn children() -> Vec<i32> {
    let me = sys::getpid();
    if let Ok(s) = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")) {
        return s
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].split(' ').nth(1))
            .and_then(|x| x.parse::<i32>().ok());
        if ppid == Some(me) {
            out.push(pid);
        }
    }
    out
}

/// Kills the command and every descendant (orphans reparent to this
/// subreaper, so they are found on the next round). Returns the command's
/// wait status if it was reaped here.
fn kill_tree(child: i32) -> Option<i32> {
    // SAFETY: signalling the exec's own process group.
    unsafe { libc::kill(-child, libc::SIGKILL) };
    let mut status = None;
    for _ in 0..100_000 {
        for k in children() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(k, libc::SIGKILL) };
        }
        match sys::waitpid(-1, 0) {
            Ok((p, st)) if p == child => status = Some(st),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    status
}

fn copy(
    fds: Vec<OwnedFd>,
    prog: &Program,
    f: impl FnOnce(File) -> std::io::Result<()>,
) -> Option<Reply> {
    let Some(fd) = fds.into_iter().next() else {
        return Some(failed(
            FailKind::BadRequest,
            "copy needs a stream fd".into(),
        ));
    };
    if let Err((step, e)) = sandbox::lock_down(prog) {
        return Some(failed(FailKind::Other, format!("{step}: errno {e}")));
    }
    Some(match f(File::from(fd)) {
        Ok(()) => Reply::Done,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            failed(FailKind::NoSuchPath, e.to_string())
        }
        Err(e) => failed(FailKind::Other, e.to_string()),
    })
}

fn copy_in(stream: File, dest: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dest)?;
    let mut ar = tar::Archive::new(stream);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    ar.unpack(dest)
}

fn copy_out(stream: File, src: &str) -> std::io::Result<()> {
    let p = Path::new(src);
    let meta = std::fs::symlink_metadata(p)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{src}: {e}")))?;
    let name: PathBuf = p.file_name().map_or_else(|| ".".into(), PathBuf::from);
    let mut b = tar::Builder::new(stream);
    b.follow_symlinks(false);
    if meta.is_dir() {
        b.append_dir_all(&name, p)?;
    } else {
        b.append_path_with_name(p, &name)?;
    }
    b.into_inner()?;
    Ok(())
}
