//! Ready roots: branch roots of a snapshot made ahead of its next branch.
//!
//! Every branch child needs a writable btrfs snapshot of the snapshot's
//! root. Those are the kernel's share of a branch (the floor row of
//! `world bench branch`: 100 roots take 130-180 ms here, with 16 threads
//! sharing transaction commits), and the one step of a big branch that no
//! amount of host-side work removes. But they depend on nothing the
//! branch request brings: a root made a minute earlier is the same root.
//! So a snapshot that was branched keeps as many roots ready as its
//! biggest branch used (at most [`crate::SubstrateConfig::pool_max`], the
//! shell pool's limit; the number is `roots.want` in the snapshot's run
//! directory), and the next branch renames them into place instead of
//! making them. The workloads that branch one state again and again (RL
//! rollouts, search from a saved state) get their roots for free; a
//! first branch, or one bigger than what is ready, makes the rest as
//! before. `world pool SNAPSHOT --size N` sets it ahead of a branch, and 0
//! drops them.
//!
//! **Layout.** `fs/ready/<sid>/r-<random>`, a private directory. A root
//! is complete when it exists (the snapshot ioctl is atomic), and has
//! never been seen by any process: it is the same as one a branch makes.
//! A branch claims them all at once, before it starts, by renaming them
//! into its staging directory (of two branches that pick the same root,
//! one wins and the other makes its own); it then knows how many it still
//! has to make, and with how many threads.
//!
//! **Refill.** After a `branch` of an existing snapshot (not a snapshot
//! and branch in one call, whose snapshot, push_down's included, is
//! usually deleted or collapsed soon), a detached job
//! ([`crate::linux::job`], idle CPU class) makes roots one at a time until
//! as many as wanted are ready (read before each, so lowering it stops
//! the job). One job per snapshot (`roots.job` lock in the
//! snapshot's run directory); each root is made under `roots.lock`, which
//! deleting the snapshot takes too, so a deletion waits for at most one
//! root and the job, finding the snapshot gone, stops; unmounting the
//! store holds every snapshot's `roots.lock` for the same reason. A job
//! that finishes while a branch asks for more looks again once its lock
//! is free. Ready roots stay until the snapshot is deleted or `world pool
//! SNAPSHOT --size 0` (they cost btrfs metadata only, no memory); `repair`
//! deletes those of snapshots that are gone.

use std::fs;
use std::path::{Path, PathBuf};

use super::record::SnapshotRecord;
use crate::error::{Result, WorldError};
use crate::lineage::random_id;
use crate::linux::job::{lock_existing, try_lock, Work, REFILL_DELAY};
use crate::storage::{Layout, Lock};
use crate::{btrfs, LinuxSubstrate};

/// Held by the job of a snapshot for its whole run.
const JOB_LOCK: &str = "roots.job";

/// Held while one root is made, and while the snapshot is deleted.
const ROOT_LOCK: &str = "roots.lock";

/// How many roots the snapshot keeps ready (a number, in its run dir).
const WANT_FILE: &str = "roots.want";

/// The directory of `sid`'s ready roots.
pub(super) fn ready_dir(l: &Layout, sid: &str) -> PathBuf {
    l.mount_point().join("ready").join(sid)
}

/// `sid`'s ready roots now.
fn ready_roots(l: &Layout, sid: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(ready_dir(l, sid))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("r-"))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// Deletes the subvolumes in `dir`, then `dir`. A root a branch renamed
/// away meanwhile is not an error.
fn delete_all(dir: &Path) -> Result<()> {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        match btrfs::subvol_delete(&e.path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(WorldError::Io("delete ready root", e).into())
            }
            _ => {}
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(WorldError::Io("remove ready roots dir", e).into())
        }
        _ => Ok(()),
    }
}

impl LinuxSubstrate {
    /// How many roots of snapshot `sid` are ready.
    pub fn ready_root_count(&self, sid: &str) -> usize {
        ready_roots(self.layout(), sid).len()
    }

    /// Up to `n` ready roots of `sid` for a branch to take (by renaming;
    /// another branch may take one first).
    pub(super) fn ready_roots_for(&self, sid: &str, n: usize) -> Vec<PathBuf> {
        let mut v = ready_roots(self.layout(), sid);
        v.truncate(n);
        v
    }

    /// How many roots of `sid` are to be kept ready (0 when never set).
    fn roots_wanted(&self, sid: &str) -> usize {
        fs::read_to_string(self.layout().snapshot_run(sid).join(WANT_FILE))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Keeps `want` roots of `sid` ready (at most the pool limit; with
    /// `grow_only`, never fewer than before) and starts a job making them,
    /// unless they are ready or a job runs. Never fails the caller.
    pub(super) fn refill_roots(&self, sid: &str, want: usize, grow_only: bool) {
        let run = self.layout().snapshot_run(sid);
        if !run.is_dir() {
            return;
        }
        let mut want = want.min(self.config().pool_max);
        if grow_only {
            want = want.max(self.roots_wanted(sid));
        }
        // Replaced whole, never truncated in place: a job reading it
        // meanwhile sees the old number or the new one.
        let tmp = run.join(format!("{WANT_FILE}.{}", std::process::id()));
        if fs::write(&tmp, want.to_string()).is_err()
            || fs::rename(&tmp, run.join(WANT_FILE)).is_err()
        {
            let _ = fs::remove_file(&tmp);
            return;
        }
        if want == 0 || self.ready_root_count(sid) >= want {
            return;
        }
        // Both lock files exist before the job starts: it never creates a
        // file in the run directory (a deletion may be emptying it).
        let root_lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(run.join(ROOT_LOCK));
        if root_lock.is_err() || try_lock(&run.join(JOB_LOCK)).is_none() {
            return;
        }
        self.start_job(
            Work::Roots {
                snapshot: sid.to_string(),
            },
            &run.join("roots.log"),
        );
    }

    /// The refill job of `sid` (see the module docs).
    pub(crate) fn roots_job(&self, sid: &str) -> Result<()> {
        let run = self.layout().snapshot_run(sid);
        // Never creates a file in the run directory (see `refill_roots`):
        // a deleted snapshot has no lock files left.
        let Some(mut job) = lock_existing(&run.join(JOB_LOCK), false) else {
            return Ok(());
        };
        if !self.store_mounted() {
            return Ok(());
        }
        std::thread::sleep(REFILL_DELAY);
        self.join_idle_cgroup();
        loop {
            let asked = self.roots_wanted(sid);
            let made = self.fill_roots(sid)?;
            // A branch or `world pool` that asked for more while this job
            // was finishing found the job lock held and started none: look
            // again once the lock is free, and go on if nobody else took
            // it, unless this round made nothing and nobody asked for a
            // different number meanwhile (then it stopped for a reason
            // that still holds). Counting what is ready would not do:
            // `world pool --size 0` may have deleted what this round made.
            drop(job);
            let wanted = self.roots_wanted(sid);
            let now = self.ready_root_count(sid);
            if !self.store_mounted() || now >= wanted || (made == 0 && wanted == asked) {
                return Ok(());
            }
            match lock_existing(&run.join(JOB_LOCK), false) {
                Some(j) => job = j,
                None => return Ok(()),
            }
        }
    }

    /// Makes roots of `sid` one at a time until as many as wanted are
    /// ready, or the snapshot or the store is gone; returns how many it
    /// made.
    fn fill_roots(&self, sid: &str) -> Result<usize> {
        let run = self.layout().snapshot_run(sid);
        let src = self.layout().snapshot_root(sid);
        let dir = ready_dir(self.layout(), sid);
        let mut made = 0;
        loop {
            if !self.store_mounted() || !run.is_dir() {
                return Ok(made);
            }
            let Some(_lock) = lock_existing(&run.join(ROOT_LOCK), true) else {
                return Ok(made);
            };
            // Deleted (or being deleted) while we waited.
            if !src.exists() || SnapshotRecord::load(self.layout(), sid).is_none() {
                return Ok(made);
            }
            // Read each time: `world pool SNAP --size 0` lowers it.
            if ready_roots(self.layout(), sid).len() >= self.roots_wanted(sid) {
                return Ok(made);
            }
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent).map_err(|e| WorldError::Io("create ready dir", e))?;
                crate::access::private_dir(parent)
                    .map_err(|e| WorldError::Io("restrict ready dir", e))?;
            }
            fs::create_dir_all(&dir).map_err(|e| WorldError::Io("create ready dir", e))?;
            btrfs::snapshot(&src, &dir.join(random_id("r")), false)
                .map_err(|e| WorldError::Io("make a ready root", e))?;
            made += 1;
        }
    }

    /// Sets how many roots of `sid` are kept ready: 0 deletes them (after
    /// the one being made, if any), more starts a refill.
    pub(super) fn set_ready_roots(&self, sid: &str, want: usize) -> Result<()> {
        self.refill_roots(sid, want, false);
        if want.min(self.config().pool_max) > 0 {
            return Ok(());
        }
        let run = self.layout().snapshot_run(sid);
        let _lock = Lock::take(&run.join(ROOT_LOCK)).ok();
        delete_all(&ready_dir(self.layout(), sid))
    }

    /// Deletes the ready roots of `sid` for the deletion of the snapshot,
    /// and returns the lock that keeps a job from making another: the
    /// caller holds it until the snapshot's root is gone.
    pub(super) fn drop_ready_roots(&self, sid: &str) -> Result<Option<Lock>> {
        let run = self.layout().snapshot_run(sid);
        let lock = if run.is_dir() {
            Some(
                Lock::take(&run.join(ROOT_LOCK))
                    .map_err(|e| WorldError::Io("lock ready roots", e))?,
            )
        } else {
            None
        };
        delete_all(&ready_dir(self.layout(), sid))?;
        Ok(lock)
    }

    /// Ready roots of snapshots that are gone (`repair`), except those of
    /// `busy` ones (an operation in flight is deleting them); returns what
    /// it deleted, as `ready/<sid>`.
    pub(super) fn drop_orphan_ready_roots(&self, busy: &[String]) -> Result<Vec<String>> {
        let mut gone = Vec::new();
        for e in fs::read_dir(self.layout().mount_point().join("ready"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let sid = e.file_name().to_string_lossy().into_owned();
            if busy.contains(&sid) || self.layout().snapshot_meta(&sid).exists() {
                continue;
            }
            let _lock = self.roots_lock(&sid);
            delete_all(&e.path())?;
            gone.push(format!("ready/{sid}"));
        }
        Ok(gone)
    }

    /// The lock a root being made holds, when the snapshot's run directory
    /// exists (a job can only run while it does).
    fn roots_lock(&self, sid: &str) -> Option<Lock> {
        let run = self.layout().snapshot_run(sid);
        if run.is_dir() {
            Lock::take(&run.join(ROOT_LOCK)).ok()
        } else {
            None
        }
    }

    /// Holds the root lock of every snapshot, so that no job is inside a
    /// btrfs snapshot of the store (`unmount_storage`: the store would be
    /// busy). Jobs waiting on them find the store gone and stop.
    pub(crate) fn hold_all_roots_locks(&self) -> Vec<Lock> {
        fs::read_dir(self.layout().run.join("snapshots"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| self.roots_lock(&e.file_name().to_string_lossy()))
            .collect()
    }
}
