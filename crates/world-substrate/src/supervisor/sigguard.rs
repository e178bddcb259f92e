//! The signal guard of a lineage: a seccomp user-notification supervisor
//! that keeps signals sent by session interpreters inside their own world.
//!
//! # Why it exists
//! Session interpreters are *active* in the lineage pid namespace `P_L`
//! (see [`crate::snapshot`]), where every process of every world of the
//! lineage has a pid, and they hold the same uids and CAP_KILL as every
//! other world process of the lineage. Without this guard, code in a
//! session could `kill(pid)` any process of a sibling, parent or child
//! world by guessing its pid. A classic seccomp filter cannot tell which
//! world a pid belongs to; the guard can.
//!
//! # How
//! * Every session process started by the lineage manager installs, right
//!   before it executes the interpreter, a second seccomp filter that
//!   returns `SECCOMP_RET_USER_NOTIF` for `kill`, `tkill`, `tgkill`,
//!   `rt_sigqueueinfo`, `rt_tgsigqueueinfo` and `pidfd_send_signal`, and
//!   for the calls that act on another process by pid without a signal
//!   (`prlimit64`, `setpriority`, `sched_set*`, `ioprio_set`,
//!   `migrate_pages`, `move_pages`, `get_robust_list`, and `fcntl` with
//!   `F_SETOWN`/`F_SETOWN_EX`, which make the kernel signal a pid)
//!   (created with `SECCOMP_FILTER_FLAG_NEW_LISTENER`). It sends the
//!   listener fd to the guard over a datagram socket and closes its copy.
//!   Templates, branch-child sessions and every program a session runs
//!   inherit the filter (filters survive `fork` and `execve`), so one
//!   listener covers a session and everything descending from it. The
//!   kernel allows only one listener per filter chain, so code in a
//!   session cannot install its own; and a filter it adds can only make
//!   the result stricter (seccomp takes the most restrictive action).
//! * The guard is a single-threaded child of the lineage manager (so it
//!   sees the whole lineage pid namespace), with its own mount namespace
//!   holding a `/proc` of `P_L`. It polls all listeners and decides:
//!   - caller not active in `P_L` (a program a session started, living in
//!     its world's pid namespace): `CONTINUE`. The kernel resolves its
//!     pids in its world's pid namespace, which only holds that world.
//!   - caller in `P_L` (a session): its *world* is its
//!     `pid_for_children` namespace. Signals to itself (`kill(own pid)`,
//!     `tgkill(own tgid, ..)`, `rt_*sigqueueinfo(own tgid, ..)`, `tkill`
//!     of its own thread) and to its own process group (`kill(0, ..)`):
//!     `CONTINUE` (a live caller's own pid and group cannot be recycled).
//!   - any other target: the guard opens a pidfd for it (a thread pidfd
//!     for the thread-directed calls) and reads the target's pid
//!     namespace from that pidfd (`PIDFD_GET_PID_NAMESPACE`, which binds
//!     to that exact process, not to a number). A target in the caller's
//!     world (its own subprocesses, the world's other processes) or a
//!     session of the same world is signalled *by the guard* through that
//!     pidfd (with the caller's siginfo for the `sigqueueinfo` calls, read
//!     from its memory), so a pid recycled between the check and the
//!     signal can never redirect it. Anything else (another world's
//!     processes or sessions, templates, the manager, world inits):
//!     `ESRCH`, the answer for a free pid, so that `kill(pid, 0)` cannot
//!     probe which pids exist outside the caller's world. `kill(-pgid)`
//!     signals the members of the group one by one through pidfds, and
//!     only if every member is in the caller's world (else `ESRCH`).
//!   - a target the guard cannot inspect, or a `pidfd_send_signal` fd that
//!     is not a pidfd (a `/proc/<pid>` directory): `EPERM` (fail closed).
//! * Should the guard die, the filter makes those calls fail with
//!   `ENOSYS`: signals are refused, never let through.
//!
//! # Why not landlock signal scoping
//! `LANDLOCK_SCOPE_SIGNAL` (ABI 6) lets a process signal only processes of
//! its own landlock domain *or domains nested below it*. Domains only
//! nest (`landlock_restrict_self` adds a layer; a process can never enter
//! a sibling domain), at most 16 deep. A branch child's session is a fork
//! of its parent's template, so its domain would be nested in the
//! parent's: the parent could still signal its children, and a lineage
//! would stop at 16 generations (issue 4 wants 200). It does not fit.
//!
//! # What a signalled process sees
//! A signal the guard delivers on the caller's behalf carries the guard as
//! sender (`si_pid` 0 or the guard's pid in `P_L`, `si_uid` 0) instead of
//! the session, except for `sigqueueinfo` calls, whose siginfo is the
//! caller's own. Self-signals and process-group signals keep their normal
//! sender.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::sys;

/// The manager's sending end of the guard socket (`-1` before start).
/// Inherited by session children, which send their listener on it.
static GUARD_TX: AtomicI32 = AtomicI32::new(-1);

const PIDFD_THREAD: libc::c_uint = libc::O_EXCL as libc::c_uint;
const PIDFD_SIGNAL_THREAD: libc::c_uint = 1;
const PIDFD_SIGNAL_PROCESS_GROUP: libc::c_uint = 4;
const PIDFD_GET_PID_NAMESPACE: libc::c_ulong = 0xFF05;
const PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE: libc::c_ulong = 0xFF06;
/// `_IOWR(0xFF, 11, struct pidfd_info)` with the 64-byte version 0 struct.
const PIDFD_GET_INFO: libc::c_ulong = 0xC040_FF0B;
const PIDFD_INFO_PID: u64 = 1;

/// Syscalls whose target the guard checks: the signals, every call that
/// acts on another process named by pid (limits, priority, scheduling,
/// I/O priority, memory placement, robust futex lists), and the two
/// reads whose pid is not their first argument (`getpriority`,
/// `ioprio_get`). See also [`PID_READS`].
/// `fcntl` is checked too, for `F_SETOWN` and `F_SETOWN_EX` only (see
/// [`notify_program`]).
const GUARDED: [libc::c_long; 18] = [
    libc::SYS_kill,
    libc::SYS_tkill,
    libc::SYS_tgkill,
    libc::SYS_rt_sigqueueinfo,
    libc::SYS_rt_tgsigqueueinfo,
    libc::SYS_pidfd_send_signal,
    libc::SYS_prlimit64,
    libc::SYS_setpriority,
    libc::SYS_sched_setscheduler,
    libc::SYS_sched_setparam,
    libc::SYS_sched_setaffinity,
    libc::SYS_sched_setattr,
    libc::SYS_ioprio_set,
    libc::SYS_migrate_pages,
    libc::SYS_move_pages,
    libc::SYS_get_robust_list,
    libc::SYS_getpriority,
    libc::SYS_ioprio_get,
];

/// Calls that read something of a process named by their first argument
/// (which would tell whether that pid exists). They reach the guard only
/// for a pid other than 0: glibc and Python make them often with 0 (the
/// caller), and a round trip each would slow every branch.
const PID_READS: [libc::c_long; 7] = [
    libc::SYS_getpgid,
    libc::SYS_getsid,
    libc::SYS_sched_getscheduler,
    libc::SYS_sched_getparam,
    libc::SYS_sched_getaffinity,
    libc::SYS_sched_getattr,
    libc::SYS_sched_rr_get_interval,
];

/// `fcntl` commands that make the kernel signal a pid or group (SIGIO,
/// or any signal with `F_SETSIG`).
const F_SETOWN: i32 = 8;
const F_SETOWN_EX: i32 = 15;

/// Starts the guard (a child of the manager). Call in the manager before
/// any session is started.
pub(super) fn start() -> Result<(), String> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints.
    sys::cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } as libc::c_long)
    .map_err(|e| format!("signal guard socket: {e}"))?;
    // SAFETY: two fresh fds we now own.
    let (rx, tx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    match sys::fork().map_err(|e| format!("fork signal guard: {e}"))? {
        0 => {
            drop(tx);
            guard_main(rx)
        }
        _ => {
            drop(rx);
            GUARD_TX.store(std::os::fd::IntoRawFd::into_raw_fd(tx), Ordering::SeqCst);
            Ok(())
        }
    }
}

/// Closes the manager's guard socket in a forked child that must not hold
/// it (world inits).
pub(super) fn close_in_child() {
    let fd = GUARD_TX.swap(-1, Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: closing an fd this process owns and no longer uses.
        unsafe { libc::close(fd) };
    }
}

/// The notifying filter: `USER_NOTIF` for every [`GUARDED`] call, for the
/// [`PID_READS`] with a pid other than 0, and for
/// `fcntl(fd, F_SETOWN | F_SETOWN_EX, ..)`; everything else is allowed
/// (the session's main filter has judged it already).
fn notify_program() -> Vec<libc::sock_filter> {
    let ins = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let (ld, jeq, ret) = (0x20, 0x15, 0x06);
    let g = GUARDED.len();
    let r = PID_READS.len();
    // Layout: 0 ld nr | 1..=g jeq guarded | r blocks of 3: jeq read, ld
    // arg0, jeq 0 | fcntl block of 4: jeq fcntl, ld arg1, jeq F_SETOWN,
    // jeq F_SETOWN_EX | allow | notify.
    let reads_at = 1 + g;
    let fcntl_at = reads_at + 3 * r;
    let allow = fcntl_at + 4;
    let notify = allow + 1;
    let to = |from: usize, target: usize| (target - from - 1) as u8;
    let mut f = vec![ins(ld, 0, 0, 0)]; // ld nr
    for (i, nr) in GUARDED.iter().enumerate() {
        f.push(ins(jeq, to(i + 1, notify), 0, *nr as u32));
    }
    for (j, nr) in PID_READS.iter().enumerate() {
        let at = reads_at + 3 * j;
        f.push(ins(jeq, 0, 2, *nr as u32)); // not this call: next block
        f.push(ins(ld, 0, 0, 16)); // ld args[0] (low word)
        f.push(ins(jeq, to(at + 2, allow), to(at + 2, notify), 0));
    }
    f.push(ins(jeq, 0, to(fcntl_at, allow), libc::SYS_fcntl as u32));
    f.push(ins(ld, 0, 0, 24)); // ld args[1] (low word)
    f.push(ins(jeq, to(fcntl_at + 2, notify), 0, F_SETOWN as u32));
    f.push(ins(jeq, to(fcntl_at + 3, notify), 0, F_SETOWN_EX as u32));
    f.push(ins(ret, 0, 0, 0x7fff_0000)); // allow
    f.push(ins(ret, 0, 0, libc::SECCOMP_RET_USER_NOTIF));
    f
}

/// In a session child forked by the manager (still holding its lineage
/// capabilities): installs the notifying filter and hands its listener to
/// the guard. The architecture check lives in the main session filter.
pub(super) fn install_in_session() -> Result<(), String> {
    let tx = GUARD_TX.load(Ordering::SeqCst);
    if tx < 0 {
        return Err("signal guard is not running".into());
    }
    let prog = notify_program();
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: seccomp(2) with a valid sock_fprog whose array outlives the
    // call (the kernel copies it).
    let lfd = sys::cvt(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    })
    .map_err(|e| format!("install signal filter: {e}"))? as RawFd;
    // SAFETY: a fresh fd we now own.
    let lfd = unsafe { OwnedFd::from_raw_fd(lfd) };
    send_fd(tx, lfd.as_raw_fd()).map_err(|e| format!("hand filter to signal guard: {e}"))
}

fn send_fd(sock: RawFd, fd: RawFd) -> std::io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = [0u64; 4];
    // SAFETY: msghdr over live locals; CMSG_* walk the buffer we own,
    // sized for one int (CMSG_SPACE(4) = 24 <= 32 bytes).
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(4) as usize;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>(), fd);
        sys::cvt(libc::sendmsg(sock, &msg, 0) as libc::c_long).map(drop)
    }
}

fn recv_fd(sock: RawFd) -> Option<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = [0u64; 4];
    // SAFETY: msghdr over live locals; the kernel fills at most
    // msg_controllen bytes of `cbuf`; CMSG_* stay inside it.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        if libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT) < 0 {
            return None;
        }
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS
        {
            return None;
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
        Some(OwnedFd::from_raw_fd(fd))
    }
}

/// What to answer a notification.
enum Verdict {
    /// Let the kernel run the syscall as asked.
    Continue,
    /// The guard did it; the syscall returns this value.
    Value(i64),
    /// The syscall fails with this errno.
    Errno(i32),
}

struct Guard {
    /// Inode of the lineage pid namespace.
    lineage: u64,
    /// Whether `/proc` is the lineage's (for process-group lookups).
    proc_ok: bool,
}

fn guard_main(rx: OwnedFd) -> ! {
    // Keep stdio (stderr is the lineage log) and the socket as fd 3 only:
    // the manager's other fds (its ready pipe above all) must not stay
    // open here.
    if sys::dup2(rx.as_raw_fd(), 3).is_err() {
        sys::exit_now(1);
    }
    std::mem::forget(rx);
    // SAFETY: closing every fd above 3 (inherited from the manager).
    unsafe { libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) };
    // SAFETY: fd 3 is the guard socket, owned from here on.
    let rx = unsafe { OwnedFd::from_raw_fd(3) };
    // SAFETY: prctl with a pointer to a NUL-terminated name.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"world-sigguard".as_ptr(), 0, 0, 0) };
    sys::reset_signals();
    let lineage = match ns_of_self() {
        Some(i) => i,
        None => {
            eprintln!("signal guard: cannot read the lineage pid namespace");
            sys::exit_now(1)
        }
    };
    let proc_ok = private_proc();
    if !proc_ok {
        eprintln!("signal guard: no /proc of the lineage; kill(-pgid) will be refused");
    }
    let g = Guard { lineage, proc_ok };
    let mut listeners: Vec<OwnedFd> = Vec::new();
    loop {
        let mut pfds: Vec<libc::pollfd> = std::iter::once(rx.as_raw_fd())
            .chain(listeners.iter().map(|l| l.as_raw_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: a valid array of pollfds of the given length.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
        if r < 0 {
            continue;
        }
        if pfds[0].revents & libc::POLLIN != 0 {
            while let Some(l) = recv_fd(rx.as_raw_fd()) {
                listeners.push(l);
            }
        }
        let mut gone = Vec::new();
        for (i, p) in pfds.iter().enumerate().skip(1) {
            if p.revents & libc::POLLIN != 0 {
                g.serve_one(p.fd);
            } else if p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                gone.push(i - 1);
            }
        }
        for i in gone.into_iter().rev() {
            listeners.swap_remove(i);
        }
    }
}

/// Gives the guard its own mount namespace with a `/proc` of the lineage
/// pid namespace (the manager's `/proc` is the host's).
fn private_proc() -> bool {
    // SAFETY: unshare with a namespace flag; single-threaded process.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return false;
    }
    sys::mount(
        Some(std::path::Path::new("proc")),
        std::path::Path::new("/proc"),
        Some("proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    )
    .is_ok()
}

fn ns_of_self() -> Option<u64> {
    std::fs::metadata("/proc/self/ns/pid")
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
}

fn pidfd(pid: i32, flags: libc::c_uint) -> Result<OwnedFd, i32> {
    if pid <= 0 {
        return Err(libc::ESRCH);
    }
    // SAFETY: plain syscall with integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) };
    if r < 0 {
        return Err(errno());
    }
    // SAFETY: a fresh fd we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EPERM)
}

/// Inode of a pid namespace of the process behind `pfd`.
fn pidns_of(pfd: &OwnedFd, which: libc::c_ulong) -> Option<u64> {
    // SAFETY: a pidfs ioctl without argument on a valid fd.
    let r = unsafe { libc::ioctl(pfd.as_raw_fd(), which as _, 0) };
    if r < 0 {
        return None;
    }
    // SAFETY: a fresh namespace fd we now own.
    let ns = unsafe { OwnedFd::from_raw_fd(r) };
    // SAFETY: fstat into a zeroed stat buffer we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and buffer.
    (unsafe { libc::fstat(ns.as_raw_fd(), &mut st) } == 0).then_some(st.st_ino)
}

/// `(pid, tgid)` in our pid namespace of the task behind `pfd`.
fn ids_of(pfd: &OwnedFd) -> Option<(i32, i32)> {
    let mut info = [0u64; 8];
    info[0] = PIDFD_INFO_PID;
    // SAFETY: PIDFD_GET_INFO fills at most 64 bytes of `info`.
    let r = unsafe { libc::ioctl(pfd.as_raw_fd(), PIDFD_GET_INFO as _, info.as_mut_ptr()) };
    if r < 0 || info[0] & PIDFD_INFO_PID == 0 {
        return None;
    }
    // Layout: mask, cgroupid, then u32 pid, tgid, ppid ...
    let pid = (info[2] & 0xffff_ffff) as i32;
    let tgid = (info[2] >> 32) as i32;
    Some((pid, tgid))
}

fn send(pfd: &OwnedFd, sig: i32, info: Option<&[u8; 128]>, flags: libc::c_uint) -> Verdict {
    let ip = info.map_or(std::ptr::null(), |i| i.as_ptr());
    // SAFETY: valid pidfd; `ip` is null or a 128-byte siginfo we own.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pfd.as_raw_fd(), sig, ip, flags) };
    if r < 0 {
        Verdict::Errno(errno())
    } else {
        Verdict::Value(0)
    }
}

impl Guard {
    fn serve_one(&self, lfd: RawFd) {
        // SAFETY: seccomp_notif is plain old data; zeroed as the kernel
        // requires before NOTIF_RECV.
        let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: NOTIF_RECV into a valid struct.
        if unsafe { libc::ioctl(lfd, libc::SECCOMP_IOCTL_NOTIF_RECV as _, &mut n) } != 0 {
            return;
        }
        let v = self.decide(lfd, &n);
        let mut resp = libc::seccomp_notif_resp {
            id: n.id,
            val: 0,
            error: 0,
            flags: 0,
        };
        match v {
            Verdict::Continue => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
            Verdict::Value(x) => resp.val = x,
            Verdict::Errno(e) => resp.error = -e,
        }
        // SAFETY: NOTIF_SEND with a valid response (fails harmlessly if the
        // caller is gone).
        unsafe { libc::ioctl(lfd, libc::SECCOMP_IOCTL_NOTIF_SEND as _, &resp) };
    }

    fn id_valid(lfd: RawFd, id: u64) -> bool {
        // SAFETY: NOTIF_ID_VALID reads a u64 we own.
        unsafe { libc::ioctl(lfd, libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _, &id) == 0 }
    }

    /// The world of a process in our pid namespace: its pid namespace, or
    /// for a process of the lineage pid namespace (a session) the pid
    /// namespace of its children. `None`: lineage infrastructure or not
    /// inspectable.
    fn world_of(&self, pfd: &OwnedFd) -> Option<u64> {
        let active = pidns_of(pfd, PIDFD_GET_PID_NAMESPACE)?;
        if active != self.lineage {
            return Some(active);
        }
        let children = pidns_of(pfd, PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE)?;
        (children != self.lineage).then_some(children)
    }

    fn decide(&self, lfd: RawFd, n: &libc::seccomp_notif) -> Verdict {
        let caller = match pidfd(n.pid as i32, PIDFD_THREAD) {
            Ok(p) => p,
            Err(_) => return Verdict::Errno(libc::ESRCH),
        };
        // The pidfd is the caller only if the notification still waits.
        if !Self::id_valid(lfd, n.id) {
            return Verdict::Errno(libc::ESRCH);
        }
        let Some(active) = pidns_of(&caller, PIDFD_GET_PID_NAMESPACE) else {
            return Verdict::Errno(libc::EPERM);
        };
        if active != self.lineage {
            // A program in its world's pid namespace: it can only name
            // processes of that world.
            return Verdict::Continue;
        }
        let Some((_, caller_tgid)) = ids_of(&caller) else {
            return Verdict::Errno(libc::EPERM);
        };
        let world = self.world_of(&caller);
        let a = n.data.args;
        let nr = n.data.nr as libc::c_long;
        let int = |i: usize| a[i] as i32;
        let in_world = |pfd: &OwnedFd| world.is_some() && self.world_of(pfd) == world;
        let target = |pid: i32, thread: bool| -> Result<OwnedFd, Verdict> {
            // Every failure reads as a free pid: pidfd_open's EINVAL for a
            // thread that leads no group would otherwise tell that it
            // exists.
            let p = pidfd(pid, if thread { PIDFD_THREAD } else { 0 })
                .map_err(|_| Verdict::Errno(libc::ESRCH))?;
            if in_world(&p) {
                Ok(p)
            } else {
                // Outside the caller's world a process does not exist for
                // it: the same answer as a free pid, so probing
                // (`kill(pid, 0)`) learns nothing.
                Err(Verdict::Errno(libc::ESRCH))
            }
        };
        // Calls that act on a process by pid without a pidfd form: a
        // session may aim them at itself (0, its pid, its calling thread)
        // only. The answer is EPERM for any other pid, existing or not, so
        // it tells nothing about which pids exist.
        // Reads of another process answer ESRCH, as for a free pid.
        let own_else = |pid: i32, errno: i32| {
            if pid == 0 || pid == caller_tgid || pid == n.pid as i32 {
                Verdict::Continue
            } else {
                Verdict::Errno(errno)
            }
        };
        let only_own = |pid: i32| own_else(pid, libc::EPERM);
        let read_own = |pid: i32| own_else(pid, libc::ESRCH);
        match nr {
            libc::SYS_getpgid
            | libc::SYS_getsid
            | libc::SYS_sched_getscheduler
            | libc::SYS_sched_getparam
            | libc::SYS_sched_getaffinity
            | libc::SYS_sched_getattr
            | libc::SYS_sched_rr_get_interval => read_own(int(0)),
            libc::SYS_getpriority if int(0) == libc::PRIO_PROCESS as i32 => read_own(int(1)),
            libc::SYS_getpriority => Verdict::Errno(libc::ESRCH),
            libc::SYS_ioprio_get if int(0) == 1 => read_own(int(1)),
            libc::SYS_ioprio_get => Verdict::Errno(libc::ESRCH),
            libc::SYS_prlimit64
            | libc::SYS_sched_setscheduler
            | libc::SYS_sched_setparam
            | libc::SYS_sched_setaffinity
            | libc::SYS_sched_setattr
            | libc::SYS_migrate_pages
            | libc::SYS_move_pages
            | libc::SYS_get_robust_list => only_own(int(0)),
            // PRIO_PGRP and PRIO_USER reach the group or every process of
            // the lineage's uid.
            libc::SYS_setpriority if int(0) == libc::PRIO_PROCESS as i32 => only_own(int(1)),
            libc::SYS_setpriority => Verdict::Errno(libc::EPERM),
            // IOPRIO_WHO_PROCESS = 1; PGRP and USER as above.
            libc::SYS_ioprio_set if int(0) == 1 => only_own(int(1)),
            libc::SYS_ioprio_set => Verdict::Errno(libc::EPERM),
            // F_SETOWN to a pid (or -pgid); F_SETOWN_EX's target sits
            // behind a pointer, so it is refused outright.
            libc::SYS_fcntl if int(1) == F_SETOWN => only_own(int(2)),
            libc::SYS_fcntl if int(1) == F_SETOWN_EX => Verdict::Errno(libc::EPERM),
            libc::SYS_fcntl => Verdict::Continue,
            libc::SYS_kill => {
                let (pid, sig) = (int(0), int(1));
                if pid == caller_tgid || pid == 0 {
                    Verdict::Continue
                } else if pid == -1 {
                    Verdict::Errno(libc::EPERM)
                } else if pid < 0 {
                    self.kill_group(-pid, sig, &in_world)
                } else {
                    match target(pid, false) {
                        Ok(p) => send(&p, sig, None, 0),
                        Err(v) => v,
                    }
                }
            }
            libc::SYS_tkill => {
                let (tid, sig) = (int(0), int(1));
                if tid == n.pid as i32 {
                    return Verdict::Continue;
                }
                match target(tid, true) {
                    Ok(p) => send(&p, sig, None, PIDFD_SIGNAL_THREAD),
                    Err(v) => v,
                }
            }
            libc::SYS_tgkill | libc::SYS_rt_tgsigqueueinfo => {
                let (tgid, tid, sig) = (int(0), int(1), int(2));
                if tgid == caller_tgid {
                    // The kernel checks that tid is a thread of tgid: ours.
                    return Verdict::Continue;
                }
                let p = match target(tid, true) {
                    Ok(p) => p,
                    Err(v) => return v,
                };
                if ids_of(&p).map(|(_, t)| t) != Some(tgid) || tgid <= 0 {
                    return Verdict::Errno(libc::ESRCH);
                }
                let info = if nr == libc::SYS_rt_tgsigqueueinfo {
                    match read_siginfo(n.pid as i32, a[3]) {
                        Some(i) => Some(i),
                        None => return Verdict::Errno(libc::EFAULT),
                    }
                } else {
                    None
                };
                if !Self::id_valid(lfd, n.id) {
                    return Verdict::Errno(libc::ESRCH);
                }
                send(&p, sig, info.as_ref(), PIDFD_SIGNAL_THREAD)
            }
            libc::SYS_rt_sigqueueinfo => {
                let (tgid, sig) = (int(0), int(1));
                if tgid == caller_tgid {
                    return Verdict::Continue;
                }
                let p = match target(tgid, false) {
                    Ok(p) => p,
                    Err(v) => return v,
                };
                let Some(info) = read_siginfo(n.pid as i32, a[2]) else {
                    return Verdict::Errno(libc::EFAULT);
                };
                if !Self::id_valid(lfd, n.id) {
                    return Verdict::Errno(libc::ESRCH);
                }
                send(&p, sig, Some(&info), 0)
            }
            libc::SYS_pidfd_send_signal => {
                let (fd, sig, flags) = (int(0), int(1), a[3] as libc::c_uint);
                // SAFETY: pidfd_getfd copies the caller's fd into ours.
                let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, caller.as_raw_fd(), fd, 0) };
                if r < 0 {
                    return Verdict::Errno(libc::EBADF);
                }
                // SAFETY: a fresh fd we now own.
                let p = unsafe { OwnedFd::from_raw_fd(r as RawFd) };
                if !Self::id_valid(lfd, n.id) {
                    return Verdict::Errno(libc::ESRCH);
                }
                let own = ids_of(&p).map(|(_, t)| t) == Some(caller_tgid);
                if !own && (!in_world(&p) || flags & PIDFD_SIGNAL_PROCESS_GROUP != 0) {
                    return Verdict::Errno(libc::EPERM);
                }
                let info = if a[2] != 0 {
                    match read_siginfo(n.pid as i32, a[2]) {
                        Some(i) => Some(i),
                        None => return Verdict::Errno(libc::EFAULT),
                    }
                } else {
                    None
                };
                if own && (info.is_some() || flags & PIDFD_SIGNAL_PROCESS_GROUP != 0) {
                    // Self-directed siginfo rules and the caller's own group:
                    // the kernel judges those best as the caller; its own
                    // process cannot be recycled while it waits here.
                    return Verdict::Continue;
                }
                send(&p, sig, info.as_ref(), flags)
            }
            _ => Verdict::Errno(libc::EPERM),
        }
    }

    /// `kill(-pgid, sig)`: every member must be in the caller's world; each
    /// is signalled through its own pidfd.
    fn kill_group(&self, pgid: i32, sig: i32, in_world: &dyn Fn(&OwnedFd) -> bool) -> Verdict {
        if !self.proc_ok {
            return Verdict::Errno(libc::EPERM);
        }
        let mut members = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // Fields after the command name (which ends with the last ')'):
            // state ppid pgrp ...
            let Some(rest) = stat.rsplit_once(')').map(|x| x.1) else {
                continue;
            };
            if rest.split_whitespace().nth(2).and_then(|s| s.parse().ok()) != Some(pgid) {
                continue;
            }
            let Ok(p) = pidfd(pid, 0) else { continue };
            if !in_world(&p) {
                return Verdict::Errno(libc::ESRCH);
            }
            members.push(p);
        }
        if members.is_empty() {
            return Verdict::Errno(libc::ESRCH);
        }
        let mut last = Verdict::Errno(libc::ESRCH);
        for p in &members {
            match send(p, sig, None, 0) {
                Verdict::Value(v) => last = Verdict::Value(v),
                e if matches!(last, Verdict::Errno(_)) => last = e,
                _ => {}
            }
        }
        last
    }
}

/// Reads a caller's 128-byte siginfo at `addr`.
fn read_siginfo(pid: i32, addr: u64) -> Option<[u8; 128]> {
    let mut buf = [0u8; 128];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: reads into our own buffer; the remote address is only
    // dereferenced by the kernel, in the caller's address space.
    let r = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    (r == buf.len() as isize).then_some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_program_jumps_land_on_notify() {
        let p = notify_program();
        let notify = p.len() - 1;
        let allow = p.len() - 2;
        let g = GUARDED.len();
        for (i, ins) in p.iter().enumerate().skip(1).take(g) {
            assert_eq!(i + 1 + ins.jt as usize, notify, "rule {i}");
        }
        assert_eq!(p[notify].k, libc::SECCOMP_RET_USER_NOTIF);
        assert_eq!(p[allow].k, 0x7fff_0000);
        let f = 1 + g + 3 * PID_READS.len();
        // fcntl: not fcntl -> allow; F_SETOWN / F_SETOWN_EX -> notify.
        assert_eq!(p[f].k, libc::SYS_fcntl as u32);
        assert_eq!(f + 1 + p[f].jf as usize, allow);
        assert_eq!(p[f + 1].k, 24);
        assert_eq!(f + 2 + 1 + p[f + 2].jt as usize, notify);
        assert_eq!(f + 3 + 1 + p[f + 3].jt as usize, notify);
        assert_eq!((p[f + 2].k, p[f + 3].k), (8, 15));
    }

    /// Runs the filter program on a syscall the way the kernel would
    /// (only the instructions it uses), for the property test below.
    fn run(p: &[libc::sock_filter], nr: u32, args: [u32; 6]) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            match i.code {
                0x20 => {
                    acc = match i.k {
                        0 => nr,
                        k => args[((k - 16) / 8) as usize],
                    };
                    pc += 1;
                }
                0x15 => pc += 1 + if acc == i.k { i.jt } else { i.jf } as usize,
                0x06 => return i.k,
                c => panic!("unexpected instruction {c:#x}"),
            }
        }
    }

    proptest::proptest! {
        /// Exactly the guarded calls, the pid reads with a pid other than
        /// 0, and fcntl with F_SETOWN(_EX) reach the guard; every other
        /// call is allowed.
        #[test]
        fn only_guarded_calls_notify(nr in 0u32..460, args in proptest::array::uniform6(0u32..40)) {
            let want = GUARDED.contains(&(nr as libc::c_long))
                || (PID_READS.contains(&(nr as libc::c_long)) && args[0] != 0)
                || (nr == libc::SYS_fcntl as u32 && (args[1] == 8 || args[1] == 15));
            let got = run(&notify_program(), nr, args) == libc::SECCOMP_RET_USER_NOTIF;
            proptest::prop_assert_eq!(got, want);
        }
    }
}
