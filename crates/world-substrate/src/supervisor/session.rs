//! Start of a session interpreter, forked by the lineage manager: the
//! process stays *active* in the lineage pid namespace (so the templates
//! forked from it can place branch children in any world of the lineage)
//! and enters its world's cgroup and net, uts, ipc, cgroup and mount
//! namespaces, with its children's pid namespace set to the world's. Then
//! it is locked down (session capability set, session seccomp policy) and
//! executes the Python agent.
//!
//! Fixed fd numbers seen by the agent: 3 listener, 4 lineage pid ns,
//! 5 world pid ns, 6 ready socket.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use super::sandbox;
// Signal filter: see `super::sigguard`.
use crate::seccomp::Program;
use crate::sys;

/// Namespace types, in the order their fds arrive (mount last: entering it
/// changes our root and cwd).
pub const NS_ORDER: [(&str, libc::c_int); 6] = [
    ("net", libc::CLONE_NEWNET),
    ("uts", libc::CLONE_NEWUTS),
    ("ipc", libc::CLONE_NEWIPC),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("pid", libc::CLONE_NEWPID),
    ("mnt", libc::CLONE_NEWNS),
];

/// Fd of the listening socket in the agent.
pub const FD_LISTEN: i32 = 3;
/// Fd of the lineage pid namespace in the agent.
pub const FD_LINEAGE_PIDNS: i32 = 4;
/// Fd of the world pid namespace in the agent.
pub const FD_WORLD_PIDNS: i32 = 5;
/// Fd of the ready socket in the agent.
pub const FD_READY: i32 = 6;

fn setns(fd: i32, t: libc::c_int) -> std::io::Result<()> {
    // SAFETY: setns on a namespace fd we own.
    sys::cvt(unsafe { libc::setns(fd, t) } as libc::c_long).map(drop)
}

/// Runs in the child the manager forked. Never returns.
pub fn start(argv: &[String], env: &[(String, String)], mut fds: Vec<OwnedFd>) -> ! {
    if fds.len() < 8 {
        sys::exit_now(1);
    }
    let cg = fds.split_off(8);
    let ready = fds[1].as_raw_fd();
    let fail = |m: String| -> ! {
        let _ = sys::write_all(ready, format!("session start: {m}").as_bytes());
        sys::exit_now(1)
    };
    // Still in the manager's mount namespace: /proc is the host's, where
    // this process is visible, so /proc/self works.
    let lineage_pidns = match std::fs::File::open("/proc/self/ns/pid") {
        Ok(f) => OwnedFd::from(f),
        Err(e) => fail(format!("open lineage pid namespace: {e}")),
    };
    for f in &cg {
        if let Err(e) = sys::write_all(f.as_raw_fd(), b"0") {
            fail(format!("join world cgroup: {e}"));
        }
    }
    drop(cg);
    for (i, (name, t)) in NS_ORDER.iter().enumerate() {
        if let Err(e) = setns(fds[2 + i].as_raw_fd(), *t) {
            fail(format!("enter {name} namespace: {e}"));
        }
    }
    // Signals from the session go through the lineage's signal guard
    // (installed while we still hold the lineage capabilities and before
    // the fd shuffle below; the guard socket is closed by close_range).
    if let Err(e) = super::sigguard::install_in_session() {
        fail(e);
    }
    // SAFETY: setsid has no memory effects; own session and process group.
    unsafe { libc::setsid() };
    let Ok(null) = sys::dev_null() else {
        fail("open /dev/null".into())
    };
    // Move the kept fds to their fixed numbers (high temporaries first, so
    // no dup2 clobbers a source).
    let keep = [
        (fds[0].as_raw_fd(), FD_LISTEN),
        (lineage_pidns.as_raw_fd(), FD_LINEAGE_PIDNS),
        (fds[6].as_raw_fd(), FD_WORLD_PIDNS),
        (fds[1].as_raw_fd(), FD_READY),
    ];
    let mut tmp = Vec::new();
    for (src, _) in keep {
        // SAFETY: F_DUPFD_CLOEXEC on a valid fd into the range >= 100.
        let t = unsafe { libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 100) };
        if t < 0 {
            fail("dup fd".into());
        }
        tmp.push(t);
    }
    // Received fds are all >= 3, so stdio can be set first.
    for i in 0..3 {
        let _ = sys::dup2(null.as_raw_fd(), i);
    }
    for (t, (_, dst)) in tmp.iter().zip(keep) {
        if sys::dup2(*t, dst).is_err() {
            fail("dup2".into());
        }
    }
    // SAFETY: closing every fd above the fixed ones (the temporaries and
    // everything inherited from the manager).
    unsafe { libc::syscall(libc::SYS_close_range, 7u32, u32::MAX, 0u32) };
    std::mem::forget(fds);
    std::mem::forget(lineage_pidns);
    std::mem::forget(null);
    let (Some(argv_c), Some(env_c)) = (
        argv.iter()
            .map(|s| CString::new(s.as_str()).ok())
            .collect::<Option<Vec<_>>>(),
        env.iter()
            .map(|(k, v)| CString::new(format!("{k}={v}")).ok())
            .collect::<Option<Vec<_>>>(),
    ) else {
        fail("argument contains NUL".into())
    };
    if argv_c.is_empty() {
        fail("empty argv".into());
    }
    let mut argv_p: Vec<*const libc::c_char> = argv_c.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut env_p: Vec<*const libc::c_char> = env_c.iter().map(|c| c.as_ptr()).collect();
    env_p.push(std::ptr::null());
    let prog = match Program::session_policy() {
        Ok(p) => p,
        Err(e) => fail(e.to_string()),
    };
    if let Err((step, e)) =
        sandbox::lock_down_with(&prog, sandbox::SESSION_CAPS, sandbox::KEEP_CAPS)
    {
        fail(format!("{step}: errno {e}"));
    }
    // SAFETY: NUL-terminated argv/envp arrays of live C strings.
    unsafe { libc::execve(argv_c[0].as_ptr(), argv_p.as_ptr(), env_p.as_ptr()) };
    fail(format!(
        "execute {}: {}",
        argv[0],
        std::io::Error::last_os_error()
    ))
}
