//! Stored records of snapshots (`<state>/meta/snapshots/<id>.json`) and
//! the journal of operations in flight (`<state>/meta/pending/`), which
//! [`crate::LinuxSubstrate::repair`] reads after a crash.

use std::fs;
use std::os::fd::AsRawFd;

use serde::{Deserialize, Serialize};

use crate::storage::Layout;
use crate::types::{Limits, WorldId};

/// A command started again in every branch of a world.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    /// Name (unique per world).
    pub name: String,
    /// The command; it runs in the background, its output goes to
    /// `/var/log/world-services/<name>.log` in the world.
    pub request: crate::types::ExecRequest,
}

/// What is stored about a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// Id (`s-` + 12 hex digits).
    pub id: String,
    /// Unique name (the id when none was given).
    pub name: String,
    /// The world it was taken from.
    pub world: WorldId,
    /// Lineage of that world (templates live in its manager's pid ns).
    pub lineage: String,
    /// Image of the world.
    pub image: String,
    /// Limits of the world (children get the same).
    pub limits: Limits,
    /// Seed of the world (children's seeds derive from it).
    pub seed: u64,
    /// Sessions captured (one template each).
    pub sessions: Vec<String>,
    /// Declared services of the world.
    pub services: Vec<Service>,
    /// Seconds since the epoch.
    pub created_at: u64,
    /// Measured time of the snapshot, ms.
    pub snapshot_ms: f64,
    /// Host pids of the templates, by session: checked by the host when
    /// it took them (see `snapshot/adopt.rs`), and the only processes
    /// whose children a branch adopts.
    #[serde(default)]
    pub template_pids: Vec<(String, i32)>,
    /// Bytes of data the snapshot holds, which its branch children start
    /// with and which count against their disk limits.
    #[serde(default)]
    pub disk_bytes: u64,
}

/// Whether `s` looks like an id from [`super::new_snapshot_id`]
/// (`s-` + 12 hex digits).
pub(crate) fn valid_snapshot_id(s: &str) -> bool {
    s.strip_prefix("s-")
        .is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether `n` is a valid snapshot or service name: 1-64 of
/// `[A-Za-z0-9._-]`.
pub(crate) fn valid_snapshot_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl SnapshotRecord {
    /// Loads the record of snapshot `id`. Nothing is read for an `id` that
    /// is not a snapshot id, and a record is trusted only if it is
    /// well-formed: its id is the one asked for, and every id and name in
    /// it that later reaches a path, a cgroup or a socket (world, lineage,
    /// sessions) is valid. Anything else is treated as no record.
    pub fn load(l: &Layout, id: &str) -> Option<SnapshotRecord> {
        if !valid_snapshot_id(id) {
            return None;
        }
        let r: SnapshotRecord =
            serde_json::from_slice(&fs::read(l.snapshot_meta(id)).ok()?).ok()?;
        r.is_well_formed(id).then_some(r)
    }

    /// See [`SnapshotRecord::load`].
    fn is_well_formed(&self, id: &str) -> bool {
        self.id == id
            && crate::lineage::valid_lineage_id(&self.lineage)
            && self.sessions.iter().all(|s| crate::session::valid_name(s))
            && valid_snapshot_name(&self.name)
            && self.services.iter().all(|s| valid_snapshot_name(&s.name))
            && self.template_pids.iter().all(|(_, pid)| *pid > 0)
    }

    /// Saves a record atomically.
    pub fn save(&self, l: &Layout) -> std::io::Result<()> {
        write_json(&l.snapshot_meta(&self.id), self)
    }

    /// All records, oldest first.
    pub fn all(l: &Layout) -> Vec<SnapshotRecord> {
        let mut v: Vec<SnapshotRecord> = fs::read_dir(l.state.join("meta/snapshots"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                SnapshotRecord::load(l, n.strip_suffix(".json")?)
            })
            .collect();
        v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        v
    }
}

/// Writes JSON atomically (tmp + rename), creating the directory.
pub(crate) fn write_json<T: Serialize>(p: &std::path::Path, v: &T) -> std::io::Result<()> {
    if let Some(d) = p.parent() {
        fs::create_dir_all(d)?;
    }
    let tmp = p.with_extension("json.tmp");
    fs::write(
        &tmp,
        serde_json::to_vec_pretty(v).expect("record serializes"),
    )?;
    fs::rename(&tmp, p)
}

/// What an operation in flight may leave behind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Journal {
    /// Operation id.
    pub op: String,
    /// Snapshot being made (deleted on rollback).
    pub snapshot: Option<String>,
    /// Worlds being made (destroyed on rollback).
    pub worlds: Vec<WorldId>,
    /// The world a snapshot freezes while it is taken (thawed on repair:
    /// a crash between freeze and thaw would leave it frozen for good).
    #[serde(default)]
    pub frozen: Option<WorldId>,
}

impl Journal {
    /// Whether every id in the journal is well-formed (a journal read back
    /// from disk drives deletions; a bad one is left alone, not obeyed).
    pub(crate) fn is_well_formed(&self) -> bool {
        // Its worlds are `WorldId`s, validated as they are read.
        self.snapshot.as_deref().is_none_or(valid_snapshot_id)
    }
}

/// A journal file held under an exclusive `flock` while the operation
/// runs; a crash releases the lock, so `repair` knows it is stale.
#[derive(Debug)]
pub struct JournalGuard {
    path: std::path::PathBuf,
    file: fs::File,
    /// The journal's content.
    pub journal: Journal,
}

impl JournalGuard {
    /// Creates and locks a journal.
    pub fn begin(l: &Layout, journal: Journal) -> std::io::Result<JournalGuard> {
        let dir = l.pending_dir();
        fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.json", journal.op));
        let file = fs::OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)?;
        // SAFETY: flock on a valid fd.
        crate::sys::cvt(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } as libc::c_long)?;
        let g = JournalGuard {
            path,
            file,
            journal,
        };
        g.write()?;
        Ok(g)
    }

    /// Rewrites the journal (call before creating anything it lists).
    ///
    /// No fsync: the journal guards against the *process* dying (`kill -9`
    /// mid-branch), and a dead process's writes are in the page cache for
    /// `repair` to read. A machine crash loses every process and mount
    /// anyway, and `repair` then also deletes subvolumes that have no
    /// record. An fsync here cost ~4 ms per snapshot and per branch.
    pub fn write(&self) -> std::io::Result<()> {
        use std::io::{Seek, Write};
        let mut f = &self.file;
        f.set_len(0)?;
        f.seek(std::io::SeekFrom::Start(0))?;
        f.write_all(&serde_json::to_vec(&self.journal).expect("journal serializes"))
    }

    /// The operation finished (or was rolled back): drop the journal.
    pub fn finish(self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Journals whose operation died (lock free), with their paths.
pub fn stale_journals(l: &Layout) -> Vec<(std::path::PathBuf, Journal)> {
    let mut out = Vec::new();
    for e in fs::read_dir(l.pending_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let p = e.path();
        let Ok(f) = fs::OpenOptions::new().read(true).write(true).open(&p) else {
            continue;
        };
        // SAFETY: non-blocking flock on a valid fd; released on drop.
        let free = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !free {
            continue;
        }
        let j = fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice::<Journal>(&b).ok())
            .filter(Journal::is_well_formed)
            .unwrap_or_default();
        out.push((p, j));
    }
    out
}
