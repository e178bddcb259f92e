//! Client side of exec and copy: connects to a world's control socket, sends
//! the request with the caller's fds, and turns the reply into a result.
//! Safe to call from any thread (no forking here).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::LinuxSubstrate;
use crate::capture::Pump;
use crate::error::{ExecError, Result, WorldError};
use crate::proto::{self, FailKind, ProtoError, Reply, Request};
use crate::types::{ExecOutput, ExecRequest, ExecStatus, WorldId};
use crate::{sys, ExecStdio};

fn connect(s: &LinuxSubstrate, id: &WorldId) -> Result<UnixStream> {
    s.running(id)?;
    UnixStream::connect(s.control_socket(id)).map_err(|e| {
        WorldError::Launch(format!("world '{id}' does not answer ({e}); destroy it")).into()
    })
}

fn fail_to_err(kind: FailKind, msg: String) -> crate::Error {
    match kind {
        FailKind::NotFound => ExecError::CommandNotFound(msg),
        FailKind::PermissionDenied => ExecError::PermissionDenied(msg),
        FailKind::NoSuchPath => ExecError::NoSuchPath(msg),
        FailKind::BadRequest => ExecError::BadRequest(msg),
        FailKind::Other => ExecError::Failed(msg),
    }
    .into()
}

/// How long after a command's own timeout the host still waits for the
/// world's agent to report it killed (it kills the whole tree at the
/// timeout and answers at once; this only bounds a world whose agent
/// cannot answer).
pub const EXEC_GRACE: Duration = Duration::from_secs(10);

/// The request as sent: its timeout is the caller's (at most a week) or
/// the configured default, never none.
fn bounded(s: &LinuxSubstrate, req: &ExecRequest) -> (ExecRequest, Instant) {
    let mut req = req.clone();
    let t = s.run_limit(req.timeout);
    req.timeout = Some(t);
    (req, Instant::now() + t + EXEC_GRACE)
}

fn late(e: ProtoError) -> crate::Error {
    match e {
        ProtoError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => ExecError::Failed(
            "the world's agent did not answer in time after the command's timeout; \
             the world may be broken: destroy it"
                .into(),
        )
        .into(),
        e => e.into(),
    }
}

fn finish_exec(conn: &UnixStream, deadline: Instant) -> Result<ExecStatus> {
    match proto::recv_reply(conn.as_fd(), deadline).map_err(late)? {
        Reply::Exited(st) => Ok(st),
        Reply::Done => Err(ExecError::Failed("unexpected reply".into()).into()),
        Reply::Failed { kind, msg } => Err(fail_to_err(kind, msg)),
    }
}

fn finish_done(conn: &UnixStream, deadline: Instant) -> Result<()> {
    match proto::recv_reply(conn.as_fd(), deadline).map_err(late)? {
        Reply::Done => Ok(()),
        Reply::Exited(_) => Err(ExecError::Failed("unexpected reply".into()).into()),
        Reply::Failed { kind, msg } => Err(fail_to_err(kind, msg)),
    }
}

/// Runs a command with the caller's fds as stdio.
pub fn exec(
    s: &LinuxSubstrate,
    id: &WorldId,
    req: &ExecRequest,
    stdio: ExecStdio<'_>,
) -> Result<ExecStatus> {
    let conn = connect(s, id)?;
    let (req, deadline) = bounded(s, req);
    let null = sys::dev_null()?;
    let pick =
        |f: Option<std::os::fd::BorrowedFd<'_>>| f.map_or(null.as_raw_fd(), |b| b.as_raw_fd());
    let fds = [pick(stdio.stdin), pick(stdio.stdout), pick(stdio.stderr)];
    proto::send_request(conn.as_fd(), &Request::Exec(req), &fds)?;
    drop(null);
    if let Some(cancel) = stdio.cancel {
        if wait_or_cancel(&conn, cancel, deadline)? {
            // The agent killed the tree and closes without a reply, unless
            // the command ended on its own just before: then its status.
            return Ok(
                match proto::recv_reply(conn.as_fd(), Instant::now() + EXEC_GRACE) {
                    Ok(Reply::Exited(st)) => st,
                    _ => ExecStatus {
                        exit_code: 128 + libc::SIGKILL,
                        signal: Some(libc::SIGKILL),
                        timed_out: false,
                    },
                },
            );
        }
    }
    finish_exec(&conn, deadline)
}

/// Waits until the agent answers (`false`) or `cancel` fires (`true`): then
/// the connection is half-closed, which makes the agent kill the command's
/// tree.
fn wait_or_cancel(
    conn: &UnixStream,
    cancel: std::os::fd::BorrowedFd<'_>,
    deadline: Instant,
) -> Result<bool> {
    loop {
        let ms = deadline
            .saturating_duration_since(Instant::now())
            .as_millis()
            .min(i32::MAX as u128) as i32;
        let (answer, cancelled) = sys::poll2(conn.as_fd(), cancel, ms)?;
        if answer {
            return Ok(false);
        }
        if cancelled {
            let _ = conn.shutdown(std::net::Shutdown::Write);
            return Ok(true);
        }
        if ms == 0 {
            return Ok(false);
        }
    }
}

/// Runs a command, feeding `stdin` and capturing stdout/stderr (each
/// bounded: see [`crate::capture`]).
pub fn exec_output(
    s: &LinuxSubstrate,
    id: &WorldId,
    req: &ExecRequest,
    stdin: &[u8],
) -> Result<ExecOutput> {
    let conn = connect(s, id)?;
    let (req, deadline) = bounded(s, req);
    let (out_r, out_w) = sys::pipe()?;
    let (err_r, err_w) = sys::pipe()?;
    let (in_r, in_w) = sys::pipe()?;
    let fds = [in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];
    proto::send_request(conn.as_fd(), &Request::Exec(req), &fds)?;
    drop((in_r, out_w, err_w));
    let input = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let mut f = File::from(in_w);
        let _ = f.write_all(&input);
    });
    let mut pump = Pump::new(&out_r, &err_r);
    pump.until_readable(conn.as_raw_fd(), deadline);
    let status = finish_exec(&conn, deadline);
    let (out, err) = pump.finish();
    drop((out_r, err_r));
    let _ = feeder.join();
    Ok(ExecOutput {
        status: status?,
        stdout: out.into_bytes(),
        stderr: err.into_bytes(),
    })
}

/// When the host stops waiting for the end of a copy whose data has all
/// passed (the default run limit plus [`EXEC_GRACE`]).
fn copy_deadline(s: &LinuxSubstrate) -> Instant {
    Instant::now() + s.config().exec_timeout + EXEC_GRACE
}

fn stream_pair() -> Result<(OwnedFd, OwnedFd)> {
    Ok(sys::pipe()?)
}

/// Streams a tar of `host_src` into directory `world_dir`.
pub fn copy_in(s: &LinuxSubstrate, id: &WorldId, host_src: &Path, world_dir: &str) -> Result<()> {
    std::fs::symlink_metadata(host_src).map_err(|e| WorldError::Io("read copy source", e))?;
    let conn = connect(s, id)?;
    let (r, w) = stream_pair()?;
    let req = Request::CopyIn {
        dest: world_dir.to_string(),
    };
    proto::send_request(conn.as_fd(), &req, &[r.as_raw_fd()])?;
    drop(r);
    let src = host_src.to_path_buf();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        let name = src
            .file_name()
            .map_or_else(|| ".".into(), std::path::PathBuf::from);
        let mut b = tar::Builder::new(File::from(w));
        archive_tree(&mut b, &src, &name)?;
        b.into_inner()?.flush()
    });
    let res = finish_done(&conn, copy_deadline(s));
    let w = writer.join().unwrap_or(Ok(()));
    res?;
    w.map_err(|e| WorldError::Io("send files", e))?;
    Ok(())
}

/// Archives the host tree at `src` under the name `name`, reading it as
/// root through [`crate::tree::walk`]: whoever else may change the source
/// while it is copied cannot make us follow a symlink they swap in (the
/// tar crate's own walk checks an entry, then opens it by name).
fn archive_tree(b: &mut tar::Builder<File>, src: &Path, name: &Path) -> std::io::Result<()> {
    use crate::tree::Entry;
    let header = |m: &std::fs::Metadata, kind: tar::EntryType| {
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(m, tar::HeaderMode::Complete);
        h.set_entry_type(kind);
        h
    };
    crate::tree::walk(src, &mut |e| match e {
        Entry::Dir { rel, meta } => {
            let mut h = header(meta, tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, join_rel(name, rel), std::io::empty())
        }
        Entry::DirEnd { .. } => Ok(()),
        Entry::File { rel, file, meta } => {
            let mut h = header(meta, tar::EntryType::Regular);
            // The size read through the fd: a file that grows meanwhile is
            // cut there, one that shrinks is padded with zeros, so the
            // archive stays well formed.
            let n = meta.len();
            h.set_size(n);
            let data = (&mut *file).take(n).chain(std::io::repeat(0)).take(n);
            b.append_data(&mut h, join_rel(name, rel), data)
        }
        Entry::Symlink { rel, target, meta } => {
            let mut h = header(meta, tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, join_rel(name, rel), target)
        }
    })
}

/// `name/rel`, or `name` for the top itself.
fn join_rel(name: &Path, rel: &Path) -> std::path::PathBuf {
    if rel.as_os_str().is_empty() {
        name.to_path_buf()
    } else {
        name.join(rel)
    }
}

/// Streams a tar of `world_src` out into host directory `host_dir`.
///
/// At most `max` bytes of archive are read: past that the copy stops with
/// an error, keeping what was written (a world can stream without end).
pub fn copy_out(
    s: &LinuxSubstrate,
    id: &WorldId,
    world_src: &str,
    host_dir: &Path,
    max: u64,
) -> Result<()> {
    std::fs::create_dir_all(host_dir).map_err(|e| WorldError::Io("create copy destination", e))?;
    let conn = connect(s, id)?;
    let (r, w) = stream_pair()?;
    let req = Request::CopyOut {
        src: world_src.to_string(),
    };
    proto::send_request(conn.as_fd(), &req, &[w.as_raw_fd()])?;
    drop(w);
    // The archive comes from inside the world: the tar crate refuses
    // entries that would land outside `host_dir`; no ownership or setuid.
    let mut ar = tar::Archive::new(Bounded {
        inner: File::from(r),
        left: max,
        max,
    });
    ar.set_preserve_permissions(false);
    ar.set_preserve_ownerships(false);
    ar.set_unpack_xattrs(false);
    let unpacked = ar.unpack(host_dir);
    let mut rest = ar.into_inner().inner;
    if unpacked.is_ok() {
        let _ = std::io::copy(&mut rest, &mut std::io::sink());
        let _ = rest.read(&mut [0u8; 1]);
    }
    // Past the bound (or on any error) the stream is dropped unread: the
    // world's writer gets EPIPE and the copy ends.
    drop(rest);
    let done = finish_done(&conn, copy_deadline(s));
    unpacked.map_err(|e| WorldError::Io("unpack copied files", e))?;
    done
}

/// A reader that fails once more than `max` bytes were asked of it.
struct Bounded<R> {
    inner: R,
    left: u64,
    max: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more than allowed means the archive is too big.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(format!(
                    "the copy is larger than {} MiB (the world's disk limit); stopped",
                    self.max >> 20
                ))),
            };
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Health check of the control socket.
pub fn ping(s: &LinuxSubstrate, id: &WorldId) -> Result<()> {
    let conn = connect(s, id)?;
    proto::send_request(conn.as_fd(), &Request::Ping, &[])?;
    finish_done(&conn, Instant::now() + Duration::from_secs(10))
}
