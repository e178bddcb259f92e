//! Pseudo-terminals for interactive commands (`ssh` with a pty).
//!
//! A world's terminal is made inside the world: for an exec with
//! [`crate::ExecRequest::tty`], the world's agent opens the pair from the
//! world's own devpts instance ([`WORLD_PTMX`]), so the slave's name
//! (`/dev/pts/0`) means the same inside the world and `tty`, `ttyname(3)`
//! and job control work. The agent sends the master back over the socket
//! the caller passed as stdio ([`receive_master`]), and the command's
//! session takes the slave as its controlling terminal.
//!
//! The host never walks a path of the world to get there. What it gets
//! back is checked before use: one fd, the `ptmx` device, answering
//! `TIOCGPTN` (only a master does), made non-blocking. Reading it is
//! bounded by the caller's buffer like any stream. The slave is taken
//! with `TIOCGPTPEER`, never by path, so nothing can swap the device in
//! between. A world cannot type into its terminal (`TIOCSTI` and
//! `TIOCLINUX` are refused by the default seccomp policy) and cannot reach
//! any terminal of the host or of another world.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// The multiplexer of a world's own devpts instance, as the world's agent
/// sees it (`/dev/ptmx` is a symlink the world could change).
pub const WORLD_PTMX: &CStr = c"/dev/pts/ptmx";

/// The message that carries a master from a world's agent.
pub const MASTER_MSG: &str = "pty-master";

/// A terminal pair: the master (non-blocking, for an event loop) stays
/// with the caller, the slave (blocking) goes to the command.
#[derive(Debug)]
pub struct Pty {
    /// The controlling side (read the command's output, write its input).
    pub master: OwnedFd,
    /// The command's side.
    pub slave: OwnedFd,
}

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinSize {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

impl WinSize {
    /// A size from what a client sent; 0 or out-of-range values are
    /// clamped (0 becomes the classic 24×80).
    pub fn clamped(rows: u32, cols: u32) -> WinSize {
        let fit = |v: u32, dflt: u16| {
            if v == 0 {
                dflt
            } else {
                v.min(u32::from(u16::MAX)) as u16
            }
        };
        WinSize {
            rows: fit(rows, 24),
            cols: fit(cols, 80),
        }
    }
}

impl Pty {
    /// Opens a new pair of the given size from the host's `/dev/ptmx`.
    pub fn open(size: WinSize) -> io::Result<Pty> {
        Pty::open_at(c"/dev/ptmx", size)
    }

    /// Opens a new pair from the multiplexer at `ptmx`.
    pub fn open_at(ptmx: &CStr, size: WinSize) -> io::Result<Pty> {
        // SAFETY: NUL-terminated path; the returned fd is checked.
        let m = unsafe {
            libc::open(
                ptmx.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        if m < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `m` is a fresh fd we own.
        let master = unsafe { OwnedFd::from_raw_fd(m) };
        let mut unlock: libc::c_int = 0;
        // SAFETY: TIOCSPTLCK takes a pointer to an int that outlives the call.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: TIOCGPTPEER takes open flags as an integer and returns a
        // new fd for this master's slave.
        let s = unsafe {
            libc::ioctl(
                master.as_raw_fd(),
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        if s < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `s` is a fresh fd we own.
        let slave = unsafe { OwnedFd::from_raw_fd(s) };
        set_size(master.as_fd(), size)?;
        Ok(Pty { master, slave })
    }
}

/// Receives a master sent by a world's agent on `sock` (waiting at most
/// `timeout`), checks it is one and makes it non-blocking. An agent that
/// sends anything else, or nothing, is an error.
pub fn receive_master(sock: BorrowedFd<'_>, timeout: Duration) -> io::Result<OwnedFd> {
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    let r = loop {
        // SAFETY: one pollfd that outlives the call.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r >= 0 {
            break r;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    if r == 0 {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the world sent no terminal",
        ));
    }
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    // A frame that starts and never finishes must not hold the caller:
    // every read of it waits at most `timeout`.
    let tv = libc::timeval {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: setsockopt with a timeval that outlives the call.
    if unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    let (msg, mut fds) = crate::proto::recv_msg::<String>(sock)
        .map_err(|e| bad(&format!("no terminal from the world: {e}")))?;
    if msg != MASTER_MSG || fds.len() != 1 {
        return Err(bad("the world sent something else than a terminal"));
    }
    let fd = fds.remove(0);
    check_master(fd.as_fd())?;
    // SAFETY: fcntl on a live fd with integer arguments.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    // SAFETY: as above.
    if fl < 0 || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Whether `fd` is a pty master: the `ptmx` character device (5:2, on
/// devpts or devtmpfs), and `TIOCGPTN` answers (only a master does).
pub fn check_master(fd: BorrowedFd<'_>) -> io::Result<()> {
    let not = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the world sent a file that is not a terminal master",
        )
    };
    // SAFETY: stat is plain data; zeroed is valid and fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a live fd and a stat we own.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(5, 2) {
        return Err(not());
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int we own.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGPTN, &mut n) } != 0 {
        return Err(not());
    }
    Ok(())
}

/// Sets the terminal size (the command gets `SIGWINCH`).
pub fn set_size(master: std::os::fd::BorrowedFd<'_>, size: WinSize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize that outlives the call.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{Read, Write};

    #[test]
    fn a_pair_carries_bytes_and_size() {
        let p = Pty::open(WinSize {
            rows: 30,
            cols: 100,
        })
        .unwrap();
        let mut slave = std::fs::File::from(p.slave);
        let mut master = std::fs::File::from(p.master);
        slave.write_all(b"hi\n").unwrap();
        let mut buf = [0u8; 16];
        let n = loop {
            match master.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                r => break r.unwrap(),
            }
        };
        assert_eq!(&buf[..n], b"hi\r\n", "the line discipline maps NL to CRNL");
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes a winsize we own.
        let r = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!(r, 0);
        assert_eq!((ws.ws_row, ws.ws_col), (30, 100));
    }

    #[test]
    fn a_master_passes_the_check_and_nothing_else_does() {
        let p = Pty::open(WinSize::clamped(0, 0)).unwrap();
        check_master(p.master.as_fd()).unwrap();
        assert!(
            check_master(p.slave.as_fd()).is_err(),
            "a slave is no master"
        );
        let f = std::fs::File::open("/dev/null").unwrap();
        assert!(check_master(f.as_fd()).is_err());
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        // A frame with a non-terminal fd is refused, one with a master taken.
        crate::proto::send_msg(a.as_fd(), &MASTER_MSG, &[f.as_raw_fd()]).unwrap();
        assert!(receive_master(b.as_fd(), Duration::from_secs(1)).is_err());
        crate::proto::send_msg(a.as_fd(), &MASTER_MSG, &[p.master.as_raw_fd()]).unwrap();
        receive_master(b.as_fd(), Duration::from_secs(1)).unwrap();
        let t = std::time::Instant::now();
        let e = receive_master(b.as_fd(), Duration::from_millis(50)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    proptest! {
        #[test]
        fn sizes_are_never_zero(rows in any::<u32>(), cols in any::<u32>()) {
            let s = WinSize::clamped(rows, cols);
            prop_assert!(s.rows > 0 && s.cols > 0);
            if rows > 0 && rows <= u32::from(u16::MAX) { prop_assert_eq!(u32::from(s.rows), rows); }
        }
    }
}
