//! Thin, documented wrappers over the raw Linux system calls this crate uses
//! (mount, pidfd, poll, fds, /proc parsing). Everything `unsafe` that is not
//! specific to one subsystem lives here, so the other modules stay safe code.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Turns a `-1`-on-error libc return value into an `io::Result`.
pub fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Converts a path to a C string (paths never contain NUL here).
pub fn cpath(p: impl AsRef<OsStr>) -> io::Result<CString> {
    CString::new(p.as_ref().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// `mount(2)`.
pub fn mount(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let src = src.map(cpath).transpose()?;
    let target_c = cpath(target)?;
    let fstype = fstype.map(cpath).transpose()?;
    let data = data.map(cpath).transpose()?;
    // SAFETY: all pointers are either null or point to NUL-terminated strings
    // that outlive the call.
    let r = unsafe {
        libc::mount(
            src.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target_c.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr().cast::<libc::c_void>()),
        )
    };
    cvt(r as libc::c_long)
        .map(drop)
        .map_err(|e| io::Error::new(e.kind(), format!("mount {}: {e}", target.display())))
}

/// `umount2(2)`.
pub fn umount2(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let t = cpath(target)?;
    // SAFETY: `t` is a valid NUL-terminated string.
    cvt(unsafe { libc::umount2(t.as_ptr(), flags) } as libc::c_long).map(drop)
}

/// `pivot_root(".", ".")` followed by a lazy unmount of the old root: the
/// standard way to switch root without a temporary directory.
pub fn pivot_to(new_root: &Path) -> io::Result<()> {
    let root = cpath(new_root)?;
    let dot = cpath(".")?;
    // SAFETY: valid C strings; the syscalls do not retain the pointers.
    unsafe {
        cvt(libc::chdir(root.as_ptr()) as libc::c_long)?;
        cvt(libc::syscall(
            libc::SYS_pivot_root,
            dot.as_ptr(),
            dot.as_ptr(),
        ))?;
        cvt(libc::umount2(dot.as_ptr(), libc::MNT_DETACH) as libc::c_long)?;
        cvt(libc::chdir(c"/".as_ptr()) as libc::c_long)?;
    }
    Ok(())
}

/// `pipe2(O_CLOEXEC)`: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as libc::c_long)?;
    // SAFETY: pipe2 returned two fresh fds that we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Writes all of `buf` to a raw fd (retrying on EINTR).
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Reads up to `buf.len()` bytes (retrying on EINTR); 0 means EOF.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is a valid mutable slice.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Reads until EOF or `max` bytes.
pub fn read_to_end(fd: RawFd, max: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < max {
        let n = read(fd, &mut buf)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(out)
}

/// Reads until EOF or `max` bytes, but no later than `deadline`: a peer
/// that trickles a byte at a time cannot hold the reader longer. Past the
/// deadline the error is `TimedOut`.
pub fn read_to_end_by(fd: RawFd, max: usize, deadline: std::time::Instant) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < max {
        if !poll_readable(fd, ms_until(deadline))? {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no whole answer in time",
            ));
        }
        let n = read(fd, &mut buf)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n.min(max - out.len())]);
    }
    Ok(out)
}

/// Milliseconds from now until `deadline` for `poll(2)` (0 once passed).
pub fn ms_until(deadline: std::time::Instant) -> i32 {
    deadline
        .saturating_duration_since(std::time::Instant::now())
        .as_millis()
        .min(i32::MAX as u128) as i32
}

/// `pidfd_open(2)`.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the kernel returned a fresh fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(2)`.
pub fn pidfd_kill(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: valid pidfd, null siginfo, no flags.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// Waits until `fd` is readable or `timeout_ms` passes (-1: forever).
/// Returns whether it became readable.
pub fn poll_readable(fd: RawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if r >= 0 {
            return Ok(r > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Waits until `a` or `b` is readable (or hung up) or `timeout_ms`
/// passes (-1: forever); returns which of the two fired.
pub fn poll2(
    a: std::os::fd::BorrowedFd<'_>,
    b: std::os::fd::BorrowedFd<'_>,
    timeout_ms: i32,
) -> io::Result<(bool, bool)> {
    let ev = libc::POLLIN | libc::POLLRDHUP;
    let mut p = [
        libc::pollfd {
            fd: a.as_raw_fd(),
            events: ev,
            revents: 0,
        },
        libc::pollfd {
            fd: b.as_raw_fd(),
            events: ev,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: two valid pollfds.
        let r = unsafe { libc::poll(p.as_mut_ptr(), 2, timeout_ms) };
        if r >= 0 {
            return Ok((p[0].revents != 0, p[1].revents != 0));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The start time (clock ticks since boot, field 22 of /proc/PID/stat) of a
/// process, used with the pid to recognise a process despite pid reuse.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields restart after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// [`process_start_time`] of a process that still runs: `None` for a
/// zombie (dead, not yet reaped: a lineage manager killed while its
/// parent, the host's PID 1, has not reaped it yet).
pub fn live_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    if matches!(f.next()?, "Z" | "X" | "x") {
        return None;
    }
    f.nth(18)?.parse().ok()
}

/// `_exit(2)`: leaves a forked child without running destructors.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// `getpid(2)`.
pub fn getpid() -> i32 {
    // SAFETY: trivial syscall.
    unsafe { libc::getpid() }
}

/// Opens /dev/null read-write.
pub fn dev_null() -> io::Result<OwnedFd> {
    Ok(std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into())
}

/// `dup2(2)` that also clears close-on-exec on the target.
pub fn dup2(src: RawFd, dst: RawFd) -> io::Result<()> {
    if src == dst {
        // SAFETY: F_SETFD on a valid fd.
        cvt(unsafe { libc::fcntl(dst, libc::F_SETFD, 0) } as libc::c_long)?;
        return Ok(());
    }
    // SAFETY: both are valid fd numbers; dup2 does not touch memory.
    cvt(unsafe { libc::dup2(src, dst) } as libc::c_long).map(drop)
}

/// Resets all signal dispositions to default and unblocks all signals, as a
/// fresh process expects (Rust ignores SIGPIPE; the supervisor blocks SIGCHLD).
pub fn reset_signals() {
    for sig in 1..libc::SIGRTMIN() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: setting SIG_DFL is always valid for catchable signals.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: an empty, initialised sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// `fork(2)`. Only call from a single-threaded process.
///
/// Returns 0 in the child and the child's pid in the parent.
pub fn fork() -> io::Result<i32> {
    // SAFETY: callers (supervisor and agents) are single-threaded processes,
    // so the child has a consistent copy of all memory, locks included.
    let pid = unsafe { libc::fork() };
    cvt(pid as libc::c_long).map(|p| p as i32)
}

/// `waitpid(2)`; returns (pid, raw status).
pub fn waitpid(pid: i32, flags: i32) -> io::Result<(i32, i32)> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r >= 0 {
            return Ok((r, status));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `clone(2)` used like `fork(2)` (no new stack), creating the namespaces
/// in `flags`. Only call from a single-threaded process. Returns 0 in the
/// child and the child's pid in the parent.
pub fn clone_fork(flags: libc::c_int) -> io::Result<i32> {
    if flags == 0 {
        return fork();
    }
    // SAFETY: raw clone without CLONE_VM and with a null stack behaves like
    // fork: the child gets a copy-on-write copy of this single-threaded
    // process. Arguments: flags, stack, parent_tid, child_tid, tls.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    cvt(pid).map(|p| p as i32)
}

/// `accept4(SOCK_CLOEXEC)` on a listening socket; `None` on error.
pub fn accept(lfd: RawFd) -> Option<OwnedFd> {
    // SAFETY: accept4 on a listening socket with null address out-ptrs.
    let c = unsafe {
        libc::accept4(
            lfd,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    // SAFETY: a fresh fd we own.
    (c >= 0).then(|| unsafe { OwnedFd::from_raw_fd(c) })
}

/// Sets send and receive timeouts on a socket.
pub fn set_timeouts(fd: RawFd, ms: u64) {
    let tv = libc::timeval {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_usec: ((ms % 1000) * 1000) as libc::suseconds_t,
    };
    for opt in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
        // SAFETY: setsockopt with a pointer to a live timeval and its size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
    }
}

/// A connected `AF_UNIX` stream socket pair (close-on-exec).
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } as libc::c_long)?;
    // SAFETY: two fresh fds we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Turns on SO_PASSCRED: every message read from `fd` then carries the
/// sender's pid, translated by the kernel into our pid namespace.
pub fn pass_cred(fd: RawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with a pointer to a live int and its size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    } as libc::c_long)
    .map(drop)
}

/// Reads one message (up to `max` bytes) with the sender's credentials;
/// returns the bytes and the sender pid (0 when none came). Waits at most
/// `timeout_ms` (-1: forever); a timeout is `TimedOut`.
pub fn recv_with_pid(fd: RawFd, max: usize, timeout_ms: i32) -> io::Result<(Vec<u8>, i32)> {
    if !poll_readable(fd, timeout_ms)? {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer"));
    }
    let mut buf = vec![0u8; max];
    let mut cbuf = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: zeroed msghdr is valid; buffers outlive the call.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.as_mut_ptr().cast();
    mh.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    let n = loop {
        // SAFETY: mh describes live, writable buffers.
        let n = unsafe { libc::recvmsg(fd, &mut mh, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut pid = 0;
    // SAFETY: walking control messages the kernel wrote into cbuf with the
    // CMSG_* accessors; SCM_CREDENTIALS data is a struct ucred.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&mh);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_CREDENTIALS {
                let u = libc::CMSG_DATA(c).cast::<libc::ucred>().read_unaligned();
                pid = u.pid;
            }
            c = libc::CMSG_NXTHDR(&mh, c);
        }
    }
    buf.truncate(n);
    Ok((buf, pid))
}

/// Sets the calling thread's nice value: 19 (background) or 0. Only as
/// root, which may always raise it back; otherwise it does nothing.
pub fn set_thread_background(background: bool) -> io::Result<()> {
    // SAFETY: geteuid, gettid and setpriority take and return plain
    // integers and touch no memory of ours.
    unsafe {
        if libc::geteuid() != 0 {
            return Ok(());
        }
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let nice = if background { 19 } else { 0 };
        cvt(libc::setpriority(libc::PRIO_PROCESS, tid, nice) as libc::c_long).map(drop)
    }
}

/// `TMPFS_MAGIC` (linux/magic.h).
const TMPFS_MAGIC: libc::c_long = 0x0102_1994;

/// Whether `path` is on a tmpfs (`statfs(2)`).
pub fn is_tmpfs(path: &Path) -> io::Result<bool> {
    let p = cpath(path)?;
    // SAFETY: statfs is plain data; all-zero is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `p` is NUL-terminated and `st` a live, writable statfs.
    cvt(unsafe { libc::statfs(p.as_ptr(), &mut st) } as libc::c_long)?;
    Ok(st.f_type as libc::c_long == TMPFS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_tmpfs_agrees_with_stat() {
        assert!(!is_tmpfs(Path::new("/proc")).unwrap());
        let o = std::process::Command::new("stat")
            .args(["-f", "-c", "%T", "/dev/shm"])
            .output()
            .unwrap();
        let shm = String::from_utf8_lossy(&o.stdout).trim() == "tmpfs";
        assert_eq!(is_tmpfs(Path::new("/dev/shm")).unwrap(), shm);
    }

    #[test]
    fn a_zombie_has_a_start_time_but_is_not_live() {
        let mut c = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = c.id() as i32;
        let st = process_start_time(pid).unwrap();
        assert_eq!(live_start_time(pid), Some(st));
        c.kill().unwrap();
        // Not reaped yet: a zombie.
        let t0 = std::time::Instant::now();
        while live_start_time(pid).is_some() && t0.elapsed().as_secs() < 5 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(live_start_time(pid), None);
        assert_eq!(process_start_time(pid), Some(st));
        c.wait().unwrap();
    }
}
