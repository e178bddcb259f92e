//! Collapsing worlds in two steps: gone at once, released later.
//!
//! A pull_up destroys the losing verses' worlds and the push_down's
//! snapshot. Most of a teardown (killing what is left in the cgroups,
//! removing them, deleting the btrfs subvolumes, the run directories) only
//! releases resources; nobody can observe it. [`LinuxSubstrate::collapse`]
//! therefore does the observable part at once: every process of the worlds
//! is killed (their inits die, and with them their pid namespaces) and
//! their records, and the snapshot's, are removed, so `list`, `inspect`,
//! `exec`, `branch` and the rest see them gone. [`Collapsing::finish`]
//! releases the rest; a long-lived caller runs it on a background thread.
//!
//! The worlds and the snapshot are named in a pending journal (held under
//! `flock`) from the first step to the end of the second: while it is
//! held, `repair` leaves them alone; if the process dies in between,
//! `repair` finds the journal stale and finishes the teardown.

use std::fs;

use super::record::{Journal, JournalGuard, SnapshotRecord};
use super::SnapshotError;
use crate::error::{Result, WorldError};
use crate::linux::record::WorldRecord;
use crate::types::WorldId;
use crate::LinuxSubstrate;

/// Worlds (and a snapshot) that are gone but not yet released; see the
/// module docs. Dropping it unfinished finishes it.
#[derive(Debug)]
pub struct Collapsing {
    sub: LinuxSubstrate,
    journal: Option<JournalGuard>,
    worlds: Vec<(WorldId, WorldRecord)>,
    snapshot: Option<SnapshotRecord>,
}

impl LinuxSubstrate {
    /// Kills `worlds` and unlists them and `snapshot` (the observable part
    /// of destroying them); [`Collapsing::finish`] releases the rest.
    /// Worlds and a snapshot that do not exist (any more) are skipped.
    pub fn collapse(&self, worlds: &[WorldId], snapshot: Option<&str>) -> Result<Collapsing> {
        let mut recs = Vec::new();
        for id in worlds {
            match WorldRecord::load(self.layout(), id) {
                Ok(r) => recs.push((id.clone(), r)),
                Err(WorldError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let snap = match snapshot.map(|s| self.snapshot_record(s)) {
            None | Some(Err(crate::Error::Snapshot(SnapshotError::NotFound(_)))) => None,
            Some(Err(e)) => return Err(e),
            Some(Ok(r)) => Some(r),
        };
        let journal = JournalGuard::begin(
            self.layout(),
            Journal {
                op: crate::lineage::random_id("collapse"),
                snapshot: snap.as_ref().map(|s| s.id.clone()),
                worlds: recs.iter().map(|(id, _)| id.clone()).collect(),
                frozen: None,
            },
        )
        .map_err(|e| WorldError::Io("write collapse journal", e))?;
        for (id, r) in &recs {
            self.kill_init(r);
            let meta = self.layout().world_meta(id.as_str());
            if let Err(e) = fs::remove_file(&meta) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(WorldError::Io("remove world record", e).into());
                }
            }
        }
        if let Some(s) = &snap {
            let meta = self.layout().snapshot_meta(&s.id);
            if let Err(e) = fs::remove_file(&meta) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(WorldError::Io("remove snapshot record", e).into());
                }
            }
        }
        Ok(Collapsing {
            sub: self.clone(),
            journal: Some(journal),
            worlds: recs,
            snapshot: snap,
        })
    }
}

impl Collapsing {
    /// The worlds that were collapsed (those that existed).
    pub fn worlds(&self) -> impl Iterator<Item = &WorldId> {
        self.worlds.iter().map(|(id, _)| id)
    }

    /// The snapshot that was collapsed, if it existed.
    pub fn snapshot(&self) -> Option<&str> {
        self.snapshot.as_ref().map(|s| s.id.as_str())
    }

    /// Releases the worlds' cgroups, roots and run directories and the
    /// snapshot's templates and root (the worlds in parallel), then their
    /// lineages if nothing else uses them.
    pub fn finish(mut self) -> Result<()> {
        self.release()
    }

    fn release(&mut self) -> Result<()> {
        let Some(journal) = self.journal.take() else {
            return Ok(());
        };
        let worlds = std::mem::take(&mut self.worlds);
        let snapshot = self.snapshot.take();
        let sub = &self.sub;
        let mut results: Vec<Result<()>> = std::thread::scope(|s| {
            let hs: Vec<_> = worlds
                .iter()
                .map(|(id, r)| s.spawn(move || sub.teardown(id.as_str(), Some(r))))
                .collect();
            let snap = snapshot.as_ref().map(|r| sub.remove_snapshot_files(&r.id));
            let mut out: Vec<Result<()>> = hs
                .into_iter()
                .map(|h| h.join().expect("teardown thread panicked"))
                .collect();
            out.extend(snap);
            out
        });
        let mut lineages: Vec<&str> = worlds
            .iter()
            .filter_map(|(_, r)| r.lineage.as_deref())
            .collect();
        lineages.extend(snapshot.as_ref().map(|s| s.lineage.as_str()));
        lineages.sort_unstable();
        lineages.dedup();
        for l in lineages {
            results.push(sub.release_lineage(l));
        }
        // Done or not, the journal goes only when nothing failed: a failed
        // teardown is left to `repair`.
        match results.into_iter().find(|r| r.is_err()) {
            Some(e) => {
                drop(journal);
                e
            }
            None => {
                journal.finish();
                Ok(())
            }
        }
    }
}

impl Drop for Collapsing {
    fn drop(&mut self) {
        let _ = self.release();
    }
}
