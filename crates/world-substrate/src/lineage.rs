//! Lineages: the namespace layout that makes branching flat.
//!
//! Every world belongs to a *lineage*: the tree of worlds branched from one
//! `create`. A lineage has one user namespace and one pid namespace, whose
//! PID 1 is the lineage manager (see [`crate::supervisor`]). Each world is
//! a child pid namespace (plus its own mount, net, uts, ipc and cgroup
//! namespaces) of the lineage pid namespace, so a branch of a branch of a
//! branch is still one level below the lineage: generations never nest.
//! Session interpreters are *active* in the lineage pid namespace (their
//! children go into their world's pid namespace), because a forked
//! template can only place its children in descendants of its own pid
//! namespace. See `docs/snapshots.md` (text in [`crate::snapshot`]).
//!
//! This module holds the wire types between the host library and a
//! lineage manager, and the manager's on-disk record.

use std::fs;

use serde::{Deserialize, Serialize};

use crate::storage::Layout;
use crate::supervisor::LaunchSpec;
use crate::sys;

/// What the launcher needs to start a lineage manager (one JSON argument).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineageSpec {
    /// Lineage id (`l-` + 12 hex digits).
    pub lineage: String,
    /// The manager's control socket.
    pub sock: std::path::PathBuf,
    /// cgroup.procs files the manager joins (its own, limit-free cgroup).
    pub cgroup_procs: Vec<std::path::PathBuf>,
    /// cgroup.procs files of the lineage's pool cgroup ([`pool_cgroup_id`],
    /// `SCHED_IDLE`), where pooled world shells wait; the launcher opens
    /// them for the manager. Empty: shells stay in the manager's cgroup.
    #[serde(default)]
    pub pool_cgroup_procs: Vec<std::path::PathBuf>,
    /// cgroup.procs files the manager's first world shell joins instead of
    /// the pool cgroup: a spare's own cgroup ([`spare_cgroup_id`]), which
    /// becomes its world's. Empty for other lineages.
    #[serde(default)]
    pub first_shell_cgroup_procs: Vec<std::path::PathBuf>,
    /// First host uid/gid of the world range.
    pub uid_base: u32,
    /// Number of ids mapped.
    pub uid_count: u32,
}

/// A request to a lineage manager. Fds travel alongside (SCM_RIGHTS).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ManagerRequest {
    /// Start a world init. Fds: `[ctl listener, ready socket, cgroup.procs...]`.
    NewWorld {
        /// The world's root, binds, id.
        spec: LaunchSpec,
    },
    /// Start a session interpreter in a world. Fds: `[session listener,
    /// ready socket, net, uts, ipc, cgroup, pid, mnt namespace of the
    /// world's init, cgroup.procs...]`.
    NewSession {
        /// Program and arguments (run with execve, no PATH search).
        argv: Vec<String>,
        /// Complete environment.
        env: Vec<(String, String)>,
    },
    /// Sets how many pooled world shells the manager keeps ready (see
    /// `supervisor::manager`). Reply: [`ManagerReply::Pool`].
    Pool {
        /// Shells to keep.
        want: u32,
        /// Only raise the number (a branch's hint), never lower it.
        grow_only: bool,
        /// The image binds the lineage's worlds get; shells are staged for
        /// them.
        binds: Vec<String>,
    },
    /// Health check.
    Ping,
}

/// A lineage manager's reply to one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum ManagerReply {
    /// The process was forked; readiness comes on the ready socket.
    Forked {
        /// Its pid in the lineage pid namespace.
        pid: i32,
    },
    /// Ping answered.
    Done,
    /// The pool after a [`ManagerRequest::Pool`].
    Pool {
        /// Shells ready for a world.
        ready: u32,
        /// Shells still preparing.
        preparing: u32,
        /// Shells the manager keeps.
        want: u32,
    },
    /// The request failed.
    Failed {
        /// Why.
        msg: String,
    },
}

/// The stored record of a lineage manager.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineageRecord {
    /// Lineage id.
    pub id: String,
    /// Host pid of the manager.
    pub pid: i32,
    /// Its start time (pid reuse guard).
    pub start_time: u64,
    /// Seconds since the epoch.
    pub created_at: u64,
}

impl LineageRecord {
    /// Loads the record of lineage `id`. Nothing is read for an `id` that
    /// is not a lineage id (it names paths, cgroups and sockets), and a
    /// record whose id is not the one asked for, or whose pid is not a
    /// process id, is treated as no record.
    pub fn load(l: &Layout, id: &str) -> Option<LineageRecord> {
        if !valid_lineage_id(id) {
            return None;
        }
        let r: LineageRecord = serde_json::from_slice(&fs::read(l.lineage_meta(id)).ok()?).ok()?;
        (r.id == id && r.pid > 0).then_some(r)
    }

    /// Saves a record atomically.
    pub fn save(&self, l: &Layout) -> std::io::Result<()> {
        let p = l.lineage_meta(&self.id);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d)?;
        }
        let tmp = p.with_extension("json.tmp");
        fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).expect("record serializes"),
        )?;
        fs::rename(&tmp, &p)
    }

    /// Whether the manager is alive.
    pub fn alive(&self) -> bool {
        self.pid > 0 && sys::live_start_time(self.pid) == Some(self.start_time)
    }

    /// Ids of all recorded lineages.
    pub fn all_ids(l: &Layout) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(l.state.join("meta/lineages"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.strip_suffix(".json").map(str::to_string)
            })
            .collect();
        v.sort();
        v
    }
}

/// Whether `s` is a lineage id (`l-` + 12 hex digits, as [`random_id`]
/// makes them).
pub fn valid_lineage_id(s: &str) -> bool {
    s.strip_prefix("l-")
        .is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A fresh id with a prefix: `<prefix>-` + 12 hex digits.
pub fn random_id(prefix: &str) -> String {
    let r = crate::types::WorldId::random();
    format!("{prefix}-{}", &r.as_str()[2..])
}

/// Name of the cgroup of a lineage manager (the `.` keeps it apart from
/// world ids, which cannot contain one).
pub fn cgroup_id(lineage: &str) -> String {
    format!("lineage.{lineage}")
}

/// Name of the cgroup a spare's world shell waits in (see
/// `linux/spare.rs`); renamed to the world's id when the spare is taken.
pub fn spare_cgroup_id(lineage: &str) -> String {
    format!("spare.{lineage}")
}

/// Name of the cgroup where a lineage's pooled world shells wait: CPU
/// class `SCHED_IDLE`, so making them never slows anything else down.
pub fn pool_cgroup_id(lineage: &str) -> String {
    format!("lineage.{lineage}.pool")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineage_ids_are_what_random_id_makes() {
        assert!(valid_lineage_id(&random_id("l")));
        for bad in [
            "",
            "l-",
            "l-123",
            "l-../../etc",
            "w-0123456789ab",
            "l-0123456789abc",
            "l-0123456789aZ",
        ] {
            assert!(!valid_lineage_id(bad), "{bad}");
        }
    }
}
