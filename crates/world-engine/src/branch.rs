//! Code sessions, snapshots and branches of live worlds, with their records.
//!
//! * `snapshot` records an entity (`entity_type = 'snapshot'`, `parent_id`
//!   = the world, `state = 'snapshotted'`), a `world_branches` row
//!   (`branch_type = 'snapshot'`, the snapshot as its one child,
//!   `snapshot_time_ms`) and a `runtime_metrics` row for the world.
//! * `branch` records an entity per child (`sandbox`, `parent_id` = the
//!   source world, `snapshot_id`), a `world_branches` row (`branch_type =
//!   'fork'`, the children, `snapshot_time_ms` when the branch took the
//!   snapshot itself) and a `runtime_metrics` row per child with
//!   `branch_time_ms` (the whole call) and `memory_overhead_mb` (the PSS of
//!   the first child, measured once: measuring every child would cost more
//!   than branching it).
//! * If recording fails, the children are destroyed again: a failed branch
//!   leaves no world behind.

use std::time::Duration;

use serde::Serialize;
use world_store::NewEntity;
use world_substrate::snapshot::{
    BranchOptions, Branched, RepairReport, SnapshotError, SnapshotInfo,
};
use world_substrate::{CodeResult, Substrate, WorldId};

use crate::{Engine, Error, Result};

/// A fresh id for a record row.
fn record_id(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let r = world_core::seed::splitmix64_output(nanos ^ u64::from(std::process::id()), 0);
    format!("{prefix}-{r:016x}")
}

/// What a repair did, including the records it updated.
#[derive(Debug, Clone, Serialize)]
pub struct Repaired {
    /// What the substrate removed or found dead.
    pub substrate: RepairReport,
    /// Entities marked `lost`.
    pub lost: Vec<String>,
}

impl Engine {
    /// Runs `code` in a session of a world (started on first use).
    pub fn run_code(
        &self,
        id: &WorldId,
        session: &str,
        code: &str,
        timeout: Option<Duration>,
    ) -> Result<CodeResult> {
        Ok(self.substrate()?.run_code(id, session, code, timeout)?)
    }

    /// Starts session `name` of a world (an error if it already runs).
    pub fn session_start(&self, id: &WorldId, name: &str) -> Result<()> {
        Ok(self.substrate()?.start_session(id, name)?)
    }

    /// Names of a world's sessions.
    pub fn sessions(&self, id: &WorldId) -> Result<Vec<String>> {
        Ok(self.substrate()?.sessions(id)?)
    }

    /// Stops session `name` of a world; its variables are gone.
    pub fn session_stop(&self, id: &WorldId, name: &str) -> Result<()> {
        Ok(self.substrate()?.stop_session(id, name)?)
    }

    /// Like [`Engine::run_code`], streaming output into the given fds.
    pub fn run_code_stream(
        &self,
        id: &WorldId,
        session: &str,
        code: &str,
        timeout: Option<Duration>,
        stdout: std::os::fd::BorrowedFd<'_>,
        stderr: std::os::fd::BorrowedFd<'_>,
    ) -> Result<CodeResult> {
        Ok(self
            .substrate()?
            .run_code_stream(id, session, code, timeout, stdout, stderr)?)
    }

    /// Snapshots a running world (files and session memory) and records it.
    pub fn snapshot(&self, id: &WorldId, name: Option<&str>) -> Result<SnapshotInfo> {
        let sub = self.substrate()?;
        let info = sub.snapshot(id, name)?;
        let record = || -> Result<()> {
            let store = self.store()?;
            store.insert_entity(&NewEntity {
                entity_id: info.id.clone(),
                entity_type: "snapshot".into(),
                parent_id: Some(id.to_string()),
                state: world_core::lifecycle::State::Snapshotted,
                ..NewEntity::default()
            })?;
            store.insert_branch(
                &record_id("b"),
                id.as_str(),
                std::slice::from_ref(&info.id),
                "snapshot",
                Some(info.snapshot_ms),
                None,
            )?;
            store.insert_metric(id.as_str(), None, Some(info.snapshot_ms), None, None)?;
            Ok(())
        };
        if let Err(e) = record() {
            let _ = sub.delete_snapshot(&info.id);
            return Err(e);
        }
        Ok(info)
    }

    /// All snapshots.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        Ok(self.substrate()?.snapshots()?)
    }

    /// Deletes a snapshot (its children keep running) and marks it `deleted`.
    pub fn snapshot_delete(&self, snap: &str) -> Result<()> {
        let sub = self.substrate()?;
        let info = sub.snapshot_info(snap)?;
        sub.delete_snapshot(&info.id)?;
        match self.store()?.set_entity_state(
            &info.id,
            world_core::lifecycle::State::Destroyed,
            true,
        ) {
            Ok(()) | Err(world_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Branches `source` (a snapshot id or name, or a running world, which
    /// is snapshotted first) into `count` children, and records them.
    pub fn branch(&self, source: &str, count: usize, opts: &BranchOptions) -> Result<Branched> {
        let sub = self.substrate()?;
        let (branched, parent_world) = match sub.snapshot_info(source) {
            Ok(snap) => (sub.branch(&snap.id, count, opts)?, snap.world.clone()),
            Err(world_substrate::Error::Snapshot(SnapshotError::NotFound(_))) => {
                let id = crate::world::world_id(source).map_err(|_| {
                    Error::Invalid(format!("{source:?} is neither a snapshot nor a world id"))
                })?;
                // An unknown world gives the substrate's "no world" error.
                (sub.branch_world(&id, count, opts)?, id)
            }
            Err(e) => return Err(e.into()),
        };
        if let Err(e) = self.record_branch(&branched, &parent_world) {
            for c in &branched.children {
                let _ = sub.destroy(c);
            }
            return Err(e);
        }
        Ok(branched)
    }

    fn record_branch(&self, b: &Branched, parent: &WorldId) -> Result<()> {
        let sub = self.substrate()?;
        let pss_mb = b
            .children
            .first()
            .map(|c| world_substrate::bench::world_pss_kb(sub, c) as f64 / 1024.0);
        let limits = sub.inspect(parent).ok().map(|w| w.limits);
        let store = self.store()?;
        if !store.entity_exists(parent.as_str())? {
            // A world made outside this database (e.g. by the library
            // directly) gets a row, so the branch can reference it.
            store.insert_entity(&NewEntity {
                entity_id: parent.to_string(),
                entity_type: "sandbox".into(),
                state: world_core::lifecycle::State::Running,
                ..NewEntity::default()
            })?;
        }
        for (i, c) in b.children.iter().enumerate() {
            store.insert_entity(&NewEntity {
                entity_id: c.to_string(),
                entity_type: "sandbox".into(),
                parent_id: Some(parent.to_string()),
                snapshot_id: b.snapshot.clone(),
                state: world_core::lifecycle::State::Running,
                memory_mib: limits.and_then(|l| i32::try_from(l.mem_size_mib).ok()),
                vcpu_count: limits.and_then(|l| i32::try_from(l.vcpu_count).ok()),
                ..NewEntity::default()
            })?;
            store.insert_metric(
                c.as_str(),
                None,
                None,
                Some(b.branch_ms),
                if i == 0 { pss_mb } else { None },
            )?;
        }
        store.insert_branch(
            &record_id("b"),
            parent.as_str(),
            &b.children.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "fork",
            b.snapshot_ms,
            None,
        )?;
        Ok(())
    }

    /// Repairs what a crash left (half-made branches, orphaned subvolumes,
    /// dead lineages) and marks lost worlds in the records.
    pub fn repair(&self) -> Result<Repaired> {
        let rep = self.substrate()?.repair()?;
        let store = self.store()?;
        let mut lost = Vec::new();
        for w in rep.removed_worlds.iter().chain(&rep.dead_worlds) {
            if store
                .set_entity_state(w.as_str(), world_core::lifecycle::State::Lost, true)
                .is_ok()
            {
                lost.push(w.to_string());
            }
        }
        Ok(Repaired {
            substrate: rep,
            lost,
        })
    }
}
