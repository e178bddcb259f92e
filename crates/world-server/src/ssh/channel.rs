//! One SSH session channel from its first request to its close: collects
//! the terminal and environment, starts the program in the world through
//! the engine's exec, and pumps bytes both ways with flow control.
//!
//! Memory stays bounded whatever the program or the client does: output
//! is read 32 KiB at a time and written only as the client's window
//! allows; input goes through a queue of [`STDIN_QUEUE`] packets, and a
//! full queue holds the connection (the client's window then closes).
//!
//! A program runs as long as its channel: no exec timeout applies, and
//! when the client closes the channel (or the connection drops) the
//! program's whole process tree is killed through the exec's cancel fd,
//! so nothing a client left behind keeps a daemon thread.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use russh::server::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use world_engine::ErrorKind;
use world_substrate::pty;
use world_substrate::{ExecStdio, WorldId};

use super::program::{accepted_env, exec_request, Program, Terminal};
use crate::state::AppState;

/// Input packets handed to the writer at once.
pub const STDIN_QUEUE: usize = 16;

/// Input bytes held for a program that does not read them yet; past this
/// the program is ended (it is not reading what its client sends).
pub const INPUT_CAP: usize = 64 << 20;

/// How long output of background processes that still hold the program's
/// streams is forwarded after it exits.
const GRACE: Duration = Duration::from_millis(200);

/// How long the world's agent may take to send a terminal's master.
const MASTER_WAIT: Duration = Duration::from_secs(10);

/// Exit status sent when the program could not start: unknown or paused
/// world, or a runtime failure (as the HTTP stream reports it).
const NOT_STARTED: u32 = 255;

/// Runs one channel to its end.
pub async fn run(st: Arc<AppState>, world: Result<WorldId, String>, channel: russh::Channel<Msg>) {
    let (mut rd, wr) = channel.split();
    let mut tty: Option<Terminal> = None;
    let mut env = Vec::new();
    // Requests before the program: a terminal, variables, then the program.
    let program = loop {
        match rd.wait().await {
            Some(ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                ..
            }) => tty = Some(Terminal::new(&term, col_width, row_height)),
            Some(ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            }) if accepted_env(&variable_name, &variable_value) && env.len() < 32 => {
                env.retain(|(k, _): &(String, String)| *k != variable_name);
                env.push((variable_name, variable_value))
            }
            Some(ChannelMsg::Exec { command, .. }) => {
                break Program::Exec(String::from_utf8_lossy(&command).into_owned())
            }
            Some(ChannelMsg::RequestShell { .. }) => break Program::Shell,
            Some(ChannelMsg::RequestSubsystem { name, .. }) => match Program::subsystem(&name) {
                Some(p) => break p,
                None => continue,
            },
            Some(ChannelMsg::Close) | None => return,
            Some(_) => {}
        }
    };
    if program == Program::Sftp {
        tty = None;
    }
    let code = match start(&st, world, &program, tty.as_ref(), &env).await {
        Ok(started) => pump(started, &mut rd, &wr).await,
        Err(msg) => {
            let mut e = wr.make_writer_ext(Some(1));
            let _ = e.write_all(format!("world: {msg}\n").as_bytes()).await;
            let _ = e.flush().await;
            NOT_STARTED
        }
    };
    let _ = wr.exit_status(code).await;
    let _ = wr.eof().await;
    let _ = wr.close().await;
}

/// The program's side of the streams once it runs.
struct Started {
    io: Streams,
    /// Closing it kills the program's whole tree.
    cancel: OwnedFd,
    job: tokio::task::JoinHandle<Result<world_substrate::ExecStatus, world_engine::Error>>,
}

enum Streams {
    /// Without a terminal: stdin, stdout, stderr as socket pairs.
    Pipes {
        stdin: tokio::net::UnixStream,
        stdout: tokio::net::UnixStream,
        stderr: tokio::net::UnixStream,
    },
    /// With one: the master (non-blocking) for output and input, and a
    /// third handle on it for size changes. Tokio's pipe types drive it:
    /// a pty master polls and reads like a pipe end.
    Tty {
        output: pipe::Receiver,
        input: pipe::Sender,
        control: OwnedFd,
    },
}

async fn start(
    st: &Arc<AppState>,
    world: Result<WorldId, String>,
    program: &Program,
    tty: Option<&Terminal>,
    env: &[(String, String)],
) -> Result<Started, String> {
    let id = world?;
    let i2 = id.clone();
    st.run(move |st| st.ensure_running(&i2))
        .await
        .map_err(|e| e.message)?;
    let mut req = exec_request(program, tty, env);
    // As long as the client stays (a shell, a long copy): the program ends
    // with its channel, through the cancel fd, not at the exec timeout.
    req.timeout = Some(world_substrate::config::MAX_EXEC_TIMEOUT);
    let (cancel_r, cancel_w) =
        std::io::pipe().map_err(|e| format!("cannot set up the streams: {e}"))?;
    let cancel_w = OwnedFd::from(cancel_w);
    let permit = st.long_call().map_err(|e| e.message)?;
    let io = |e: std::io::Error| format!("cannot set up the streams: {e}");
    let st2 = st.clone();
    match tty {
        Some(t) => {
            // The world's agent makes the terminal in the world and sends
            // its master back over this socket (see `world_substrate::pty`).
            let (host_ctl, world_ctl) = std::os::unix::net::UnixStream::pair().map_err(io)?;
            let world_ctl = OwnedFd::from(world_ctl);
            let mut job = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let stdio = ExecStdio {
                    stdin: Some(world_ctl.as_fd()),
                    stdout: Some(world_ctl.as_fd()),
                    stderr: Some(world_ctl.as_fd()),
                    cancel: Some(cancel_r.as_fd()),
                };
                st2.engine.world_exec(&id, &req, stdio)
            });
            let mut got = tokio::task::spawn_blocking(move || {
                pty::receive_master(host_ctl.as_fd(), MASTER_WAIT)
            });
            // Whichever comes first: the master, or the end of the exec (a
            // command that failed, or one so short it ended already).
            let (master, job) = tokio::select! {
                biased;
                m = &mut got => (m, job),
                r = &mut job => match r {
                    Ok(Ok(status)) => (got.await, tokio::spawn(async move { Ok(status) })),
                    Ok(Err(e)) => return Err(e.to_string()),
                    Err(e) => return Err(e.to_string()),
                },
            };
            let master = master
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            pty::set_size(master.as_fd(), t.size).map_err(io)?;
            let input = pipe::Sender::from_owned_fd_unchecked(master.try_clone().map_err(io)?)
                .map_err(io)?;
            let control = master.try_clone().map_err(io)?;
            let output = pipe::Receiver::from_owned_fd_unchecked(master).map_err(io)?;
            Ok(Started {
                cancel: cancel_w,
                io: Streams::Tty {
                    output,
                    input,
                    control,
                },
                job,
            })
        }
        None => {
            let pair = || -> Result<(tokio::net::UnixStream, OwnedFd), String> {
                let (a, b) = std::os::unix::net::UnixStream::pair().map_err(io)?;
                a.set_nonblocking(true).map_err(io)?;
                Ok((tokio::net::UnixStream::from_std(a).map_err(io)?, b.into()))
            };
            let (stdin, in_w) = pair()?;
            let (stdout, out_w) = pair()?;
            let (stderr, err_w) = pair()?;
            let job = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let stdio = ExecStdio {
                    stdin: Some(in_w.as_fd()),
                    stdout: Some(out_w.as_fd()),
                    stderr: Some(err_w.as_fd()),
                    cancel: Some(cancel_r.as_fd()),
                };
                st2.engine.world_exec(&id, &req, stdio)
            });
            Ok(Started {
                cancel: cancel_w,
                io: Streams::Pipes {
                    stdin,
                    stdout,
                    stderr,
                },
                job,
            })
        }
    }
}

/// Pumps until the program has exited and its output is forwarded (or the
/// grace for background holders ran out); returns its exit status.
async fn pump(s: Started, rd: &mut ChannelReadHalf, wr: &ChannelWriteHalf<Msg>) -> u32 {
    let (in_tx, in_rx) = mpsc::channel::<Bytes>(STDIN_QUEUE);
    let mut in_tx = Some(in_tx);
    let mut master_for_resize = None;
    let mut outputs = tokio::task::JoinSet::new();
    let input = match s.io {
        Streams::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            outputs.spawn(copy_out(stdout, wr.make_writer()));
            outputs.spawn(copy_out(stderr, wr.make_writer_ext(Some(1))));
            tokio::spawn(copy_in(in_rx, stdin, true))
        }
        Streams::Tty {
            output,
            input,
            control,
        } => {
            master_for_resize = Some(control);
            outputs.spawn(copy_out(output, wr.make_writer()));
            // End of input on a terminal changes nothing: the master stays
            // open for output (as under `sshd`).
            tokio::spawn(copy_in(in_rx, input, false))
        }
    };
    let mut job = s.job;
    let mut cancel = Some(s.cancel);
    let mut result = None;
    let mut grace: Option<tokio::time::Instant> = None;
    let mut client_open = true;
    // Input the program has not taken yet. Reading the channel never waits
    // on the program: russh tops up the client's window as data arrives,
    // so its only brake is to stop reading the connection, which also
    // stops the client's window adjustments for our output, and a program
    // that writes while its input still comes (`cat`) would deadlock. Past
    // INPUT_CAP of unread input the program is ended instead.
    let mut overflow = false;
    let mut queue: std::collections::VecDeque<Bytes> = std::collections::VecDeque::new();
    let mut queued = 0usize;
    let mut eof = false;
    loop {
        if result.is_some() && outputs.is_empty() {
            break;
        }
        if eof && queue.is_empty() {
            in_tx = None;
        }
        let deadline =
            grace.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
        let tx = in_tx.clone();
        tokio::select! {
            m = rd.wait(), if client_open => match m {
                Some(ChannelMsg::Data { data }) => {
                    if in_tx.is_some() && queued + data.len() > INPUT_CAP {
                        // The program does not read what it is sent: it is
                        // ended rather than held for without bound.
                        overflow = true;
                        cancel = None;
                        in_tx = None;
                        queue.clear();
                        queued = 0;
                    } else if in_tx.is_some() {
                        queued += data.len();
                        queue.push_back(data);
                    }
                }
                Some(ChannelMsg::Eof) => eof = true,
                Some(ChannelMsg::WindowChange { col_width, row_height, .. }) => {
                    if let Some(m) = &master_for_resize {
                        let _ = pty::set_size(m.as_fd(), pty::WinSize::clamped(row_height, col_width));
                    }
                }
                Some(ChannelMsg::Close) | None => {
                    // The client is gone: the program is killed (its whole
                    // tree, through the exec's cancel fd) and every handle
                    // on its streams is closed.
                    client_open = false;
                    cancel = None;
                    in_tx = None;
                    queue.clear();
                    master_for_resize = None;
                    outputs.shutdown().await;
                }
                Some(_) => {}
            },
            p = async { tx.expect("guarded").reserve_owned().await }, if in_tx.is_some() && !queue.is_empty() => match p {
                Ok(permit) => {
                    if let Some(b) = queue.pop_front() {
                        queued -= b.len();
                        permit.send(b);
                    }
                }
                Err(_) => {
                    in_tx = None;
                    queue.clear();
                    queued = 0;
                }
            },
            _ = outputs.join_next(), if !outputs.is_empty() => {}
            r = &mut job, if result.is_none() => {
                result = Some(r);
                grace = Some(tokio::time::Instant::now() + GRACE);
            }
            _ = tokio::time::sleep_until(deadline), if grace.is_some() => break,
        }
    }
    drop(cancel);
    if overflow {
        let mut e = wr.make_writer_ext(Some(1));
        let _ = e
            .write_all(
                format!(
                    "world: the program left {} MiB of its input unread; it was ended\n",
                    INPUT_CAP >> 20
                )
                .as_bytes(),
            )
            .await;
        let _ = e.flush().await;
    }
    outputs.abort_all();
    input.abort();
    match result {
        Some(Ok(Ok(status))) => status.shell_code() as u32,
        Some(Ok(Err(e))) => {
            let mut w = wr.make_writer_ext(Some(1));
            let _ = w.write_all(format!("world: {e}\n").as_bytes()).await;
            let _ = w.flush().await;
            match e.kind() {
                ErrorKind::CommandNotFound => 127,
                ErrorKind::NotExecutable => 126,
                _ => NOT_STARTED,
            }
        }
        _ => NOT_STARTED,
    }
}

/// Copies the program's output to the channel. Ends at end of file or at
/// an error (a pty master reads `EIO` once every holder of the slave has
/// closed it).
async fn copy_out(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
    let mut buf = vec![0u8; 32 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.flush().await;
}

/// Copies the client's input to the program; at its end, shuts the
/// program's input down when `shutdown` (a socket). A terminal's master
/// stays open through the other handles on it.
async fn copy_in(mut rx: mpsc::Receiver<Bytes>, mut to: impl AsyncWrite + Unpin, shutdown: bool) {
    while let Some(b) = rx.recv().await {
        if to.write_all(&b).await.is_err() {
            return;
        }
    }
    if shutdown {
        let _ = to.shutdown().await;
    }
}
