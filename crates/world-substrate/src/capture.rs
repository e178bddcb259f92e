//! Bounded capture of what a world writes for the host to hold: the
//! output of `exec` and `run_code` when the caller asks for it whole
//! (the daemon's JSON answers, the SDKs) rather than streamed to its fds.
//!
//! A world may print forever; its own memory limit does not cover what
//! the host buffers for it. So each stream keeps its first
//! [`CAPTURE_MAX`] bytes and, past that, reads and drops the rest (the
//! writer is never blocked, so the command still ends as it would) and
//! ends the kept text with a marker saying how much was dropped:
//! `\n[world-runtime: output truncated: kept the first 16777216 bytes,
//! dropped 123 more]\n`. Streaming (`world exec` in a terminal, the
//! daemon's `/exec/stream`) is not captured and has no such bound.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Bytes kept of each captured stream (stdout, stderr): 16 MiB.
pub const CAPTURE_MAX: usize = 16 << 20;

/// One captured stream: its first `max` bytes and a count of the rest.
#[derive(Debug)]
pub struct Capture {
    buf: Vec<u8>,
    max: usize,
    dropped: u64,
}

impl Default for Capture {
    fn default() -> Self {
        Capture::new(CAPTURE_MAX)
    }
}

impl Capture {
    /// An empty capture keeping at most `max` bytes.
    pub fn new(max: usize) -> Capture {
        Capture {
            buf: Vec::new(),
            max,
            dropped: 0,
        }
    }

    /// Adds what was read: kept up to the bound, counted past it.
    pub fn push(&mut self, data: &[u8]) {
        let room = self.max.saturating_sub(self.buf.len());
        let keep = room.min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        self.dropped += (data.len() - keep) as u64;
    }

    /// Whether anything was dropped.
    pub fn truncated(&self) -> bool {
        self.dropped > 0
    }

    /// The kept bytes, ending with the truncation marker if any were
    /// dropped.
    pub fn into_bytes(mut self) -> Vec<u8> {
        if self.dropped > 0 {
            self.buf
                .extend_from_slice(marker(self.max, self.dropped).as_bytes());
        }
        self.buf
    }
}

/// The line that ends a truncated stream.
pub fn marker(kept: usize, dropped: u64) -> String {
    format!("\n[world-runtime: output truncated: kept the first {kept} bytes, dropped {dropped} more]\n")
}

fn set_nonblock(fd: RawFd) {
    // SAFETY: fcntl flag manipulation on a valid fd.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

/// Most bytes one [`drain`] call reads before it lets its caller look at
/// its other fds again: a writer faster than the host must not keep the
/// host reading one pipe forever.
const DRAIN_ROUND: usize = 1 << 20;

/// Reads what is available on non-blocking `fd` into `cap`, at most
/// [`DRAIN_ROUND`] bytes; true at end of file (or on an error other than
/// "nothing yet").
fn drain(fd: RawFd, cap: &mut Capture) -> bool {
    let mut buf = [0u8; 16384];
    let mut read = 0;
    loop {
        if read >= DRAIN_ROUND {
            return false;
        }
        // SAFETY: reading into a valid buffer of its own length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            cap.push(&buf[..n as usize]);
            read += n as usize;
            continue;
        }
        // n == 0: EOF; n < 0: EAGAIN (more later) or error.
        return n == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN);
    }
}

/// A command's stdout and stderr pipes, captured until its answer
/// arrives on another fd.
pub(crate) struct Pump<'a> {
    out_r: &'a OwnedFd,
    err_r: &'a OwnedFd,
    /// Captured stdout.
    pub out: Capture,
    /// Captured stderr.
    pub err: Capture,
}

impl<'a> Pump<'a> {
    /// Captures from the read ends of a command's stdout and stderr.
    pub(crate) fn new(out_r: &'a OwnedFd, err_r: &'a OwnedFd) -> Pump<'a> {
        set_nonblock(out_r.as_raw_fd());
        set_nonblock(err_r.as_raw_fd());
        Pump {
            out_r,
            err_r,
            out: Capture::default(),
            err: Capture::default(),
        }
    }

    /// Captures until `done` is readable (the command's answer) or
    /// `deadline` passes; returns whether `done` became readable.
    pub(crate) fn until_readable(&mut self, done: RawFd, deadline: std::time::Instant) -> bool {
        let (mut out_open, mut err_open) = (true, true);
        loop {
            // Checked first: a command printing without end keeps the
            // pipes readable and must not outlast the deadline.
            if std::time::Instant::now() >= deadline {
                return crate::sys::poll_readable(done, 0).unwrap_or(false);
            }
            let mut p = [
                libc::pollfd {
                    fd: if out_open { self.out_r.as_raw_fd() } else { -1 },
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: if err_open { self.err_r.as_raw_fd() } else { -1 },
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: done,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: three valid pollfds (negative fds are ignored).
            let n = unsafe { libc::poll(p.as_mut_ptr(), 3, crate::sys::ms_until(deadline)) };
            if n < 0 {
                continue;
            }
            if n == 0 {
                return false;
            }
            if p[0].revents != 0 && drain(self.out_r.as_raw_fd(), &mut self.out) {
                out_open = false;
            }
            if p[1].revents != 0 && drain(self.err_r.as_raw_fd(), &mut self.err) {
                err_open = false;
            }
            if p[2].revents != 0 {
                return true;
            }
        }
    }

    /// Takes what is left in the pipes now, one bounded round each (the
    /// command has ended; background processes may still hold and feed
    /// them), and returns both captures.
    pub(crate) fn finish(mut self) -> (Capture, Capture) {
        drain(self.out_r.as_raw_fd(), &mut self.out);
        drain(self.err_r.as_raw_fd(), &mut self.err);
        (self.out, self.err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_short_stream_is_kept_whole() {
        let mut c = Capture::new(10);
        c.push(b"hello");
        assert!(!c.truncated());
        assert_eq!(c.into_bytes(), b"hello");
    }

    #[test]
    fn a_long_stream_keeps_its_start_and_says_how_much_went() {
        let mut c = Capture::new(4);
        c.push(b"abc");
        c.push(b"defgh");
        assert!(c.truncated());
        let s = String::from_utf8(c.into_bytes()).unwrap();
        assert_eq!(
            s,
            "abcd\n[world-runtime: output truncated: kept the first 4 bytes, dropped 4 more]\n"
        );
    }

    proptest! {
        /// Whatever arrives in whatever chunks: at most `max` bytes are
        /// kept, they are the stream's first bytes, and kept + dropped is
        /// everything.
        #[test]
        fn kept_is_a_prefix_and_nothing_is_lost_from_the_count(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..32),
            max in 0usize..256,
        ) {
            let mut c = Capture::new(max);
            let all: Vec<u8> = chunks.concat();
            for ch in &chunks {
                c.push(ch);
            }
            prop_assert!(c.buf.len() <= max);
            prop_assert_eq!(&c.buf[..], &all[..c.buf.len()]);
            prop_assert_eq!(c.buf.len() as u64 + c.dropped, all.len() as u64);
            prop_assert_eq!(c.truncated(), all.len() > max);
        }
    }
}
