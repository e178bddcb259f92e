//! The control-socket protocol between a client (`world exec`, any process)
//! and a world's supervisor: one length-prefixed JSON request sent together
//! with its file descriptors (SCM_RIGHTS), one JSON reply, then close.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::types::{ExecRequest, ExecStatus};

/// Largest request accepted.
pub const MAX_REQUEST: usize = 1 << 20;

/// Errors of the wire protocol.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// Socket I/O failed.
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
    /// The peer sent something unreadable.
    #[error("control socket: bad message: {0}")]
    Bad(String),
    /// The peer closed the connection before sending anything.
    #[error("control socket: closed by peer")]
    Closed,
}

/// A request. File descriptors travel alongside: exec sends
/// `[stdin, stdout, stderr]`, copies send `[stream]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Run a command.
    Exec(ExecRequest),
    /// Unpack the tar stream read from the fd into directory `dest`.
    CopyIn {
        /// Destination directory inside the world.
        dest: String,
    },
    /// Write a tar stream of `src` (file or directory) to the fd.
    CopyOut {
        /// Source path inside the world.
        src: String,
    },
    /// Health check.
    Ping,
}

/// Why a request failed inside the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailKind {
    /// The program was not found in PATH.
    NotFound,
    /// The program exists but cannot be executed.
    PermissionDenied,
    /// The working directory or path does not exist.
    NoSuchPath,
    /// The request was malformed.
    BadRequest,
    /// Anything else.
    Other,
}

/// The supervisor's reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// The command ended.
    Exited(ExecStatus),
    /// A copy or ping finished.
    Done,
    /// The request failed before or instead of running.
    Failed {
        /// Category.
        kind: FailKind,
        /// Human-readable message.
        msg: String,
    },
}

/// Sends a request with fds over a connected stream socket.
pub fn send_request(sock: BorrowedFd<'_>, req: &Request, fds: &[RawFd]) -> Result<(), ProtoError> {
    send_msg(sock, req, fds)
}

/// Receives a request and its fds (close-on-exec) from a stream socket.
pub fn recv_request(sock: BorrowedFd<'_>) -> Result<(Request, Vec<OwnedFd>), ProtoError> {
    recv_msg(sock)
}

/// Sends any serializable message, length-prefixed, with up to 64 fds
/// attached (SCM_RIGHTS). Used by every control channel of the crate:
/// world init, lineage manager, session agents and templates.
pub fn send_msg<T: Serialize>(
    sock: BorrowedFd<'_>,
    req: &T,
    fds: &[RawFd],
) -> Result<(), ProtoError> {
    let body = serde_json::to_vec(req).map_err(|e| ProtoError::Bad(e.to_string()))?;
    let mut msg = (body.len() as u32).to_le_bytes().to_vec();
    msg.extend_from_slice(&body);
    let fd_bytes = std::mem::size_of_val(fds);
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(fd_bytes as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: msg.as_ptr() as *mut libc::c_void,
        iov_len: msg.len(),
    };
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    if !fds.is_empty() {
        mh.msg_control = cbuf.as_mut_ptr().cast();
        mh.msg_controllen = space as _;
        // SAFETY: the control buffer is large enough for one header holding
        // `fds.len()` ints (CMSG_SPACE), and is 8-byte aligned.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&mh);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(fd_bytes as u32) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast(), fds.len());
        }
    }
    // SAFETY: mh points at live buffers for the duration of the call.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &mh, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error().into());
    }
    let n = n as usize;
    if n < msg.len() {
        crate::sys::write_all(sock.as_raw_fd(), &msg[n..])?;
    }
    Ok(())
}

/// Receives one length-prefixed message and its fds (close-on-exec).
/// EOF before the first byte is `ProtoError::Closed`.
///
/// Reads exactly one frame (the 4-byte length, then the body), never a
/// byte of the next one, so a peer may send several messages without
/// waiting for answers and none is lost. The fds
/// travel with the frame's first bytes: the kernel hands them over with
/// the first read of the segment that carries them.
pub fn recv_msg<T: serde::de::DeserializeOwned>(
    sock: BorrowedFd<'_>,
) -> Result<(T, Vec<OwnedFd>), ProtoError> {
    let mut head = [0u8; 4];
    let mut fds = Vec::new();
    let mut got = 0;
    while got < head.len() {
        let n = recv_with_fds(sock, &mut head[got..], &mut fds)?;
        if n == 0 {
            return Err(if got == 0 {
                ProtoError::Closed
            } else {
                ProtoError::Bad("short request".into())
            });
        }
        got += n;
    }
    let len = u32::from_le_bytes(head) as usize;
    if len > MAX_REQUEST {
        return Err(ProtoError::Bad("request too large".into()));
    }
    let mut body = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = recv_with_fds(sock, &mut body[got..], &mut fds)?;
        if n == 0 {
            return Err(ProtoError::Bad("short request".into()));
        }
        got += n;
    }
    let req = serde_json::from_slice(&body).map_err(|e| ProtoError::Bad(e.to_string()))?;
    Ok((req, fds))
}

/// One `recvmsg` into `buf`; fds that arrive with it are appended to `fds`.
fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> Result<usize, ProtoError> {
    let mut cbuf = [0u64; 40];
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
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut mh, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e.into());
        }
    };
    // SAFETY: walking the control messages the kernel wrote into cbuf, using
    // the CMSG_* accessors; SCM_RIGHTS data is an array of ints we now own.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&mh);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                let cnt = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..cnt {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&mh, c);
        }
    }
    Ok(n)
}

/// Longest reply line read from a session agent or snapshot template
/// (both run code of the world, so both may lie or flood).
pub const LINE_MAX: u64 = 64 << 10;

/// Reads one newline-terminated reply line of at most [`LINE_MAX`] bytes
/// from code of a world: a longer or unterminated line is an error,
/// never a growing buffer.
pub fn read_line_bounded(r: &mut impl io::BufRead) -> io::Result<String> {
    let mut line = String::new();
    io::BufRead::read_line(&mut io::Read::take(r, LINE_MAX), &mut line)?;
    if !line.ends_with('\n') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            if line.len() as u64 >= LINE_MAX {
                format!("reply longer than {LINE_MAX} bytes")
            } else {
                "connection closed before a whole reply".to_string()
            },
        ));
    }
    Ok(line)
}

/// A reader that gives up at a deadline: each read first waits for data
/// for at most the time left, so a peer trickling a byte at a time holds
/// the reader no longer than the deadline in all (the error is
/// `TimedOut`). Wrap it in a `BufReader` for [`read_line_bounded`].
#[derive(Debug)]
pub struct ByDeadline<T> {
    /// The socket read.
    pub inner: T,
    /// When reading stops.
    pub deadline: std::time::Instant,
}

impl<T: io::Read + std::os::fd::AsFd> io::Read for ByDeadline<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.inner.as_fd().as_raw_fd();
        if !crate::sys::poll_readable(fd, crate::sys::ms_until(self.deadline))? {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no whole reply in time",
            ));
        }
        self.inner.read(buf)
    }
}

/// Writes the reply (one JSON document).
pub fn send_reply(sock: RawFd, r: &Reply) -> Result<(), ProtoError> {
    let body = serde_json::to_vec(r).map_err(|e| ProtoError::Bad(e.to_string()))?;
    crate::sys::write_all(sock, &body).map_err(Into::into)
}

/// Reads the reply until the supervisor closes the connection, waiting no
/// later than `deadline` (then the error is a `TimedOut` I/O error).
pub fn recv_reply(sock: BorrowedFd<'_>, deadline: std::time::Instant) -> Result<Reply, ProtoError> {
    let b = crate::sys::read_to_end_by(sock.as_raw_fd(), MAX_REQUEST, deadline)?;
    if b.is_empty() {
        return Err(ProtoError::Bad("supervisor closed without reply".into()));
    }
    serde_json::from_slice(&b).map_err(|e| ProtoError::Bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines_are_bounded() {
        let mut ok = io::Cursor::new(b"{\"ok\":1}\nrest".to_vec());
        assert_eq!(read_line_bounded(&mut ok).unwrap(), "{\"ok\":1}\n");
        let mut long = io::Cursor::new(vec![b'x'; LINE_MAX as usize + 10]);
        let e = read_line_bounded(&mut long).unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
        let mut cut = io::Cursor::new(b"{\"ok\"".to_vec());
        assert!(read_line_bounded(&mut cut).is_err());
    }
    use std::os::fd::AsFd;

    /// A peer that trickles a byte at a time, never ending its line,
    /// holds the reader no longer than the deadline in all.
    #[test]
    fn a_trickling_peer_is_cut_off_at_the_deadline() {
        let (a, b) = crate::sys::socketpair().unwrap();
        let writer = std::thread::spawn(move || {
            for _ in 0..40 {
                if crate::sys::write_all(b.as_raw_fd(), b"x").is_err() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        let t0 = std::time::Instant::now();
        let mut r = io::BufReader::new(ByDeadline {
            inner: std::fs::File::from(a),
            deadline: t0 + std::time::Duration::from_millis(400),
        });
        let e = read_line_bounded(&mut r).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(t0.elapsed() < std::time::Duration::from_millis(1500));
        drop(r);
        writer.join().unwrap();
    }

    /// Messages sent back to back, some with fds, come out one at a time
    /// with their own fds: a pipelining peer loses nothing.
    #[test]
    fn pipelined_messages_keep_their_frames_and_fds() {
        let (a, b) = crate::sys::socketpair().unwrap();
        let (x, _y) = crate::sys::socketpair().unwrap();
        for i in 0..20u32 {
            let fds: Vec<RawFd> = if i % 2 == 0 {
                vec![x.as_raw_fd(), x.as_raw_fd()]
            } else {
                vec![]
            };
            send_msg(a.as_fd(), &serde_json::json!({ "i": i }), &fds).unwrap();
        }
        for i in 0..20u32 {
            let (v, fds): (serde_json::Value, _) = recv_msg(b.as_fd()).unwrap();
            assert_eq!(v["i"], i);
            assert_eq!(fds.len(), if i % 2 == 0 { 2 } else { 0 }, "message {i}");
        }
        drop(a);
        assert!(matches!(
            recv_msg::<serde_json::Value>(b.as_fd()),
            Err(ProtoError::Closed)
        ));
    }
}
