//! Stage 3 of a branch: the snapshot's templates fork the children's
//! sessions, in batches.
//!
//! A template is a frozen copy of a session (`session/agent.py`). For
//! each ready child the host opens the child world's namespaces and
//! binds its session socket; a template then forks a session into them.
//! One request per child cost a round trip through the template's Python
//! loop each (measured ~0.6-2 ms per child while 100 children start, the
//! slowest stage of a large branch). Instead the host sends one
//! `branch_many` message per template for every child that is ready by
//! then (up to [`FORK_BATCH`]), and the template forks them all before it
//! replies once: when children arrive faster than the template forks,
//! batches grow by themselves; when they arrive one by one, nothing waits.
//!
//! The host first pings each template: one made by this version says
//! `"batches": true`. One made by an earlier version (a snapshot taken
//! before an upgrade of the binary) does not, and gets the old one-child
//! `branch` requests; it never sees a batch's fds, which it would not
//! close (and of which it reads only 64).
//!
//! What a template reports is a claim: each forked session proves itself
//! on its own ready socket, and [`Forked::adopt`] checks it against the
//! kernel (see `adopt.rs`) before moving it into its world's cgroups.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::ops::{failed, reply_line, trace_child, REPLY_WAIT};
use super::record::SnapshotRecord;
use super::BranchOptions;
use crate::cgroup::WorldCgroup;
use crate::error::Result;
use crate::linux::lineage::{pending, world_ns_fds, Pending};
use crate::session::write_pid;
use crate::types::WorldId;
use crate::{proto, sys, LinuxSubstrate};

/// Children one `branch_many` message forks at most. Each takes 8 fds
/// (listener, ready socket, six namespaces); the agent accepts up to
/// `SCM_MAX_FD` (253) per message.
const FORK_BATCH: usize = 16;

/// Fds each child of a `branch_many` request takes.
const FDS_PER_CHILD: usize = 8;

/// A session of a branch child, prepared in stage 1: its pid file path,
/// bound socket and the child world's cgroup (the host moves the session
/// there once its template has forked it).
pub(super) type SessionFds = (PathBuf, UnixListener, WorldCgroup);

/// A child whose init is up: its index, init pid and its sessions' fds.
pub(super) type ReadyChild = (usize, i32, Vec<SessionFds>);

/// A branch child's session, forked by its template: handed to the thread
/// that waits for it, moves it into its world's cgroups and writes its
/// pid file.
pub(super) struct Forked {
    pidfile: PathBuf,
    ready: Pending,
    cgroup: WorldCgroup,
    /// Host pids of the template that forked it.
    template: Vec<i32>,
    session: String,
}

impl Forked {
    /// Waits for the session's ready message, checks that the process it
    /// names is a child of its template (the pid travels as socket
    /// credentials, which code in the lineage can forge), moves it into
    /// its world's cgroups and records it.
    pub(super) fn adopt(self) -> Result<()> {
        let (pid, st) = self.ready.wait("branch session", Duration::from_secs(30))?;
        if !super::adopt::is_child_of(pid, &self.template) {
            return Err(failed(format!(
                "the session '{}' a template forked named pid {pid}, which is not its child",
                self.session
            )));
        }
        self.cgroup.adopt(pid)?;
        write_pid(&self.pidfile, pid, st);
        Ok(())
    }
}

/// One template of the snapshot, as the fork stage talks to it.
struct Template<'a> {
    session: &'a str,
    conn: UnixStream,
    /// Host pids allowed to have forked this session's children.
    parents: Vec<i32>,
    /// Whether it takes `branch_many` (its ping says so).
    batches: bool,
}

impl Template<'_> {
    /// Has the template fork one session per child of `kids`, whose fds
    /// are `fds` (8 per child, in order).
    fn fork(&self, kids: &[serde_json::Value], fds: &[RawFd]) -> Result<()> {
        if self.batches {
            let req = serde_json::json!({"op": "branch_many", "children": kids});
            let v = self.call(&req, fds)?;
            if v.get("ok").is_none() {
                return Err(failed(format!("template '{}': {v}", self.session)));
            }
            let n = v.get("pids").and_then(|p| p.as_array()).map_or(0, Vec::len);
            if n != kids.len() {
                return Err(failed(format!(
                    "template '{}' forked {n} of {} sessions",
                    self.session,
                    kids.len()
                )));
            }
            return Ok(());
        }
        for (kid, fds) in kids.iter().zip(fds.chunks(FDS_PER_CHILD)) {
            let mut req = kid.clone();
            req["op"] = "branch".into();
            let v = self.call(&req, fds)?;
            if v.get("ok").is_none() {
                return Err(failed(format!("template '{}': {v}", self.session)));
            }
        }
        Ok(())
    }

    fn call(&self, req: &serde_json::Value, fds: &[RawFd]) -> Result<serde_json::Value> {
        proto::send_msg(self.conn.as_fd(), req, fds)?;
        reply_line(&self.conn, Instant::now() + REPLY_WAIT)
            .map_err(|e| failed(format!("template '{}': {e}", self.session)))
    }
}

impl LinuxSubstrate {
    /// Stage 3 of a branch: the templates fork one session per child, as
    /// children become ready, in batches of those ready by then.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn branch_sessions(
        &self,
        sr: &SnapshotRecord,
        ids: &[WorldId],
        seeds: &[u64],
        opts: &BranchOptions,
        ready: mpsc::Receiver<ReadyChild>,
        up: mpsc::Sender<Forked>,
        t0: Instant,
    ) -> Result<()> {
        let mut templates = Vec::new();
        for s in &sr.sessions {
            let tsock = self.layout().snapshot_run(&sr.id).join(format!("{s}.sock"));
            let conn = UnixStream::connect(&tsock)
                .map_err(|e| failed(format!("template of session '{s}' does not answer: {e}")))?;
            sys::set_timeouts(conn.as_raw_fd(), 30_000);
            // Records of older versions carry no names: any of the
            // snapshot's templates then.
            let named: Vec<i32> = sr
                .template_pids
                .iter()
                .filter(|(n, _)| n == s)
                .map(|(_, p)| *p)
                .collect();
            let parents = if named.is_empty() {
                sr.template_pids.iter().map(|(_, p)| *p).collect()
            } else {
                named
            };
            let mut t = Template {
                session: s,
                conn,
                parents,
                batches: false,
            };
            let v = t.call(&serde_json::json!({"op": "ping"}), &[])?;
            t.batches = v.get("batches").and_then(|b| b.as_bool()) == Some(true);
            templates.push(t);
        }
        while let Ok(first) = ready.recv() {
            let mut batch = vec![first];
            while batch.len() < FORK_BATCH {
                match ready.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            let ns: Vec<Vec<OwnedFd>> = batch
                .iter()
                .map(|(_, pid, _)| world_ns_fds(*pid))
                .collect::<Result<_>>()?;
            let kids: Vec<serde_json::Value> = batch
                .iter()
                .map(|(i, _, _)| {
                    serde_json::json!({
                        "world": ids[*i].as_str(), "seed": seeds[*i],
                        "apply_seed": opts.apply_seeds,
                    })
                })
                .collect();
            // Session `t` of every child of the batch, template by template.
            let mut per_child: Vec<_> = batch
                .into_iter()
                .map(|(i, _, fds)| (i, fds.into_iter()))
                .collect();
            for t in &templates {
                let mut fds = Vec::with_capacity(per_child.len() * FDS_PER_CHILD);
                let mut forked = Vec::with_capacity(per_child.len());
                for ((i, sessions), ns) in per_child.iter_mut().zip(&ns) {
                    let (pidfile, l, cgroup) = sessions
                        .next()
                        .ok_or_else(|| failed("a branch child lacks a session socket"))?;
                    let (mine, theirs) = sys::socketpair()?;
                    sys::pass_cred(mine.as_raw_fd())?;
                    fds.extend([l.as_raw_fd(), theirs.as_raw_fd()]);
                    fds.extend(ns.iter().map(|f| f.as_raw_fd()));
                    forked.push((*i, l, theirs, pidfile, mine, cgroup));
                }
                t.fork(&kids, &fds)?;
                for (i, l, theirs, pidfile, mine, cgroup) in forked {
                    drop((l, theirs));
                    trace_child(i, "session forked", t0);
                    // The pid file thread stops early only when it failed;
                    // its error is reported.
                    let _ = up.send(Forked {
                        pidfile,
                        ready: pending(mine),
                        cgroup,
                        template: t.parents.clone(),
                        session: t.session.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}
