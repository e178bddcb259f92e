//! The persistent record of a world (`<state>/meta/worlds/<id>.json`) and
//! the liveness check of its init (pid + start time, immune to pid reuse).

use std::fs;

use serde::{Deserialize, Serialize};

use crate::error::WorldError;
use crate::storage::Layout;
use crate::sys;
use crate::types::{Limits, WorldId, WorldState};

/// What is stored about a world.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorldRecord {
    /// Id.
    pub id: WorldId,
    /// Image name.
    pub image: String,
    /// Limits asked for.
    pub limits: Limits,
    /// Limits not enforced.
    pub warnings: Vec<String>,
    /// Measured create time, ms.
    pub create_ms: f64,
    /// Seconds since the epoch.
    pub created_at: u64,
    /// Host pid of the world's init.
    pub pid: i32,
    /// Its start time.
    pub start_time: u64,
    /// Lineage (manager) the world belongs to.
    #[serde(default)]
    pub lineage: Option<String>,
    /// The world this one was branched from (through `snapshot`).
    #[serde(default)]
    pub parent: Option<WorldId>,
    /// The snapshot this world was branched from.
    #[serde(default)]
    pub snapshot: Option<String>,
    /// Index among the children of that branch call.
    #[serde(default)]
    pub branch_index: Option<u64>,
    /// Deterministic seed (`WORLD_SEED`).
    #[serde(default)]
    pub seed: u64,
    /// Declared services, started again in every branch.
    #[serde(default)]
    pub services: Vec<crate::snapshot::Service>,
    /// Bytes of data the world started with: what its snapshot held (see
    /// [`crate::snapshot::SnapshotRecord::disk_bytes`]); 0 for a world
    /// made from an image. Its disk limit leaves it only the rest to write.
    #[serde(default)]
    pub disk_inherited: u64,
}

impl WorldRecord {
    /// Loads a record.
    pub fn load(l: &Layout, id: &WorldId) -> Result<WorldRecord, WorldError> {
        let b = fs::read(l.world_meta(id.as_str()))
            .map_err(|_| WorldError::NotFound(id.to_string()))?;
        let r: WorldRecord =
            serde_json::from_slice(&b).map_err(|_| WorldError::NotFound(id.to_string()))?;
        // Trusted only if well formed: its id is the one asked for, and the
        // ids in it that reach paths, cgroups and sockets are valid
        // (`WorldId`s are checked as they are read).
        let ok = r.id == *id
            && r.pid > 0
            && r.lineage
                .as_deref()
                .is_none_or(crate::lineage::valid_lineage_id)
            && r.snapshot
                .as_deref()
                .is_none_or(crate::snapshot::valid_snapshot_id);
        if ok {
            Ok(r)
        } else {
            Err(WorldError::NotFound(id.to_string()))
        }
    }

    /// Saves a record atomically.
    pub fn save(&self, l: &Layout) -> Result<(), WorldError> {
        let p = l.world_meta(self.id.as_str());
        let tmp = p.with_extension("json.tmp");
        let b = serde_json::to_vec_pretty(self).expect("record serializes");
        fs::write(&tmp, b).map_err(|e| WorldError::Io("save world record", e))?;
        fs::rename(&tmp, &p).map_err(|e| WorldError::Io("save world record", e))
    }

    /// Whether the init recorded here is still the same live process.
    pub fn state(&self) -> WorldState {
        if self.pid > 0 && sys::process_start_time(self.pid) == Some(self.start_time) {
            WorldState::Running
        } else {
            WorldState::Lost
        }
    }

    /// Ids of all recorded worlds.
    pub fn all_ids(l: &Layout) -> Vec<WorldId> {
        let mut ids: Vec<WorldId> = fs::read_dir(l.state.join("meta/worlds"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                WorldId::new(n.strip_suffix(".json")?)
            })
            .collect();
        ids.sort();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(d: &std::path::Path) -> Layout {
        Layout::new(&crate::SubstrateConfig::with_dirs(
            d.join("state"),
            d.join("run"),
            vec![],
        ))
    }

    /// A record read back from disk is trusted only when well formed:
    /// planted or damaged ones are no record at all.
    #[test]
    fn only_well_formed_world_records_load() {
        let d = tempfile::tempdir().unwrap();
        let l = layout(d.path());
        std::fs::create_dir_all(l.state.join("meta/worlds")).unwrap();
        let id = WorldId::new("w-0123456789ab").unwrap();
        let good = serde_json::json!({
            "id": "w-0123456789ab", "image": "host",
            "limits": {"vcpu_count": 1, "mem_size_mib": 64, "pids_max": 64, "disk_mib": 64},
            "warnings": [], "create_ms": 1.0, "created_at": 0, "pid": 42, "start_time": 1,
            "lineage": "l-0123456789ab", "snapshot": "s-0123456789ab",
        });
        let write = |v: &serde_json::Value| {
            std::fs::write(l.world_meta(id.as_str()), v.to_string()).unwrap();
        };
        write(&good);
        assert!(WorldRecord::load(&l, &id).is_ok());
        for (field, bad) in [
            ("id", serde_json::json!("w-ffffffffffff")),
            ("id", serde_json::json!("../x")),
            ("lineage", serde_json::json!("../../etc")),
            ("snapshot", serde_json::json!("s-../x")),
            ("parent", serde_json::json!("a/b")),
            ("pid", serde_json::json!(0)),
        ] {
            let mut v = good.clone();
            v[field] = bad.clone();
            write(&v);
            assert!(WorldRecord::load(&l, &id).is_err(), "{field} = {bad}");
        }
    }
}
