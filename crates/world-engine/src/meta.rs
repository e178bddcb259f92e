//! What users and front doors attach to worlds and snapshots beyond
//! their substrate state: user metadata, TTLs, exposed services, E2B's
//! environment, template and interpreter contexts, Morph's digest.
//!
//! The engine owns it: one document per entity in DuckDB's `world_meta`
//! table (`world_store::meta_io`), read once into memory, and every
//! change written in one transaction before the memory copy changes
//! ([`Engine::meta_update`]): a change that cannot be written is not
//! made. Whether a world is paused is not here: that is its lifecycle
//! state ([`world_core::lifecycle::State`]), which the substrate reads
//! from the kernel. A daemon from before this table kept the same
//! documents in `<state_dir>/server/meta.json`; [`Engine::meta_import`]
//! moves such a file in once.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use world_store::meta_io::{MetaDoc, MetaKind};

pub use crate::actions::{Metadata, TtlAction};
use crate::{Engine, Error, Result};

/// A TTL: when it expires and what then happens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Ttl {
    /// Seconds from when it was set.
    pub ttl_seconds: Option<u64>,
    /// Expiry, seconds since the epoch.
    pub ttl_expire_at: Option<u64>,
    /// `stop` (destroy) or `pause` (freeze); snapshots ignore it.
    pub ttl_action: Option<TtlAction>,
}

impl Ttl {
    /// A TTL of `secs` from now (`None`: no TTL).
    pub fn from_now(secs: Option<u64>, action: Option<TtlAction>) -> Ttl {
        Ttl {
            ttl_seconds: secs,
            ttl_expire_at: secs.map(|s| now().saturating_add(s)),
            ttl_action: action,
        }
    }
}

/// A TCP port of a world exposed as an HTTP route of the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpService {
    /// Name (unique per world).
    pub name: String,
    /// Port inside the world.
    pub port: u16,
}

/// What is kept about a world beside its substrate state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorldMeta {
    /// User metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// TTL.
    #[serde(default)]
    pub ttl: Ttl,
    /// The snapshot it was started from.
    #[serde(default)]
    pub snapshot_id: Option<String>,
    /// Exposed services.
    #[serde(default)]
    pub http_services: Vec<HttpService>,
    /// Environment every command of the world gets through the E2B door
    /// (E2B's `envVars` at create).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The E2B template it was created from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Code-interpreter contexts made through the E2B door (each is a
    /// session of the world), with their working directory.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contexts: BTreeMap<String, String>,
}

/// What is kept about a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapMeta {
    /// User metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// TTL (action ignored).
    #[serde(default)]
    pub ttl: Ttl,
    /// Morph digest.
    #[serde(default)]
    pub digest: Option<String>,
    /// Image the snapshotted world came from.
    #[serde(default)]
    pub image_id: Option<String>,
    /// vcpus, memory MiB, disk MiB of the snapshotted world.
    #[serde(default)]
    pub spec: Option<(u32, u64, u64)>,
}

/// Everything: per world and per snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetaFile {
    /// Per world id.
    #[serde(default)]
    pub worlds: BTreeMap<String, WorldMeta>,
    /// Per snapshot id.
    #[serde(default)]
    pub snapshots: BTreeMap<String, SnapMeta>,
}

/// The documents in memory (`None` until first read).
#[derive(Debug, Default)]
pub(crate) struct MetaCache(Mutex<Option<MetaFile>>);

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn encode<T: Serialize>(id: &str, kind: MetaKind, v: &T) -> Result<MetaDoc> {
    Ok(MetaDoc {
        entity_id: id.to_string(),
        kind,
        doc: serde_json::to_string(v)
            .map_err(|e| Error::Invalid(format!("metadata of {id}: {e}")))?,
    })
}

/// The documents to write and the ids to delete to go from `old` to `new`.
fn diff(old: &MetaFile, new: &MetaFile) -> Result<(Vec<MetaDoc>, Vec<String>)> {
    let mut put = Vec::new();
    let mut delete = Vec::new();
    for (id, m) in &new.worlds {
        if old.worlds.get(id) != Some(m) {
            put.push(encode(id, MetaKind::World, m)?);
        }
    }
    for (id, m) in &new.snapshots {
        if old.snapshots.get(id) != Some(m) {
            put.push(encode(id, MetaKind::Snapshot, m)?);
        }
    }
    // An id is one entity: a world and a snapshot never share one, but a
    // document that moved kind is a put, not a delete.
    let kept = |id: &String| new.worlds.contains_key(id) || new.snapshots.contains_key(id);
    for id in old.worlds.keys().chain(old.snapshots.keys()) {
        if !kept(id) {
            delete.push(id.clone());
        }
    }
    Ok((put, delete))
}

impl Engine {
    fn meta_lock(&self) -> Result<MutexGuard<'_, Option<MetaFile>>> {
        let mut g = self.meta.0.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            let mut f = MetaFile::default();
            // No spooled batch writes `world_meta`: no need to wait for them.
            for d in self.verse_store()?.meta_all()? {
                // A document this build cannot read is left in the table
                // untouched (a later build may) and not served.
                let ok = match d.kind {
                    MetaKind::World => serde_json::from_str(&d.doc)
                        .map(|m| f.worlds.insert(d.entity_id.clone(), m))
                        .is_ok(),
                    MetaKind::Snapshot => serde_json::from_str(&d.doc)
                        .map(|m| f.snapshots.insert(d.entity_id.clone(), m))
                        .is_ok(),
                };
                if !ok {
                    eprintln!("world: unreadable metadata of {} left aside", d.entity_id);
                }
            }
            *g = Some(f);
        }
        Ok(g)
    }

    /// A copy of every document.
    pub fn meta_all(&self) -> Result<MetaFile> {
        Ok(self.meta_lock()?.clone().unwrap_or_default())
    }

    /// A world's document (the default when it has none).
    pub fn world_meta(&self, id: &str) -> Result<WorldMeta> {
        Ok(self
            .meta_lock()?
            .as_ref()
            .and_then(|f| f.worlds.get(id).cloned())
            .unwrap_or_default())
    }

    /// A snapshot's document (the default when it has none).
    pub fn snapshot_meta(&self, id: &str) -> Result<SnapMeta> {
        Ok(self
            .meta_lock()?
            .as_ref()
            .and_then(|f| f.snapshots.get(id).cloned())
            .unwrap_or_default())
    }

    /// Changes documents: `f` edits a copy, the changed documents are
    /// written in one transaction, and only then does the copy become the
    /// documents. When the write fails nothing changes and the error is
    /// returned.
    pub fn meta_update<T>(&self, f: impl FnOnce(&mut MetaFile) -> T) -> Result<T> {
        let mut g = self.meta_lock()?;
        let old = g.as_ref().cloned().unwrap_or_default();
        let mut new = old.clone();
        let r = f(&mut new);
        let (put, delete) = diff(&old, &new)?;
        self.verse_store()?.meta_write(&put, &delete)?;
        *g = Some(new);
        Ok(r)
    }

    /// Moves the documents of a `meta.json` written by a daemon from
    /// before the `world_meta` table into it (documents already in the
    /// table win), then renames the file `meta.json.imported`. No file:
    /// nothing to do. A file that does not parse is renamed
    /// `meta.json.bad` and nothing is imported.
    pub fn meta_import(&self, path: &Path) -> Result<usize> {
        let Ok(bytes) = std::fs::read(path) else {
            return Ok(0);
        };
        let Ok(file) = serde_json::from_slice::<MetaFile>(&bytes) else {
            let _ = std::fs::rename(path, path.with_extension("json.bad"));
            return Ok(0);
        };
        let n = self.meta_update(|m| {
            let mut n = 0;
            for (id, w) in file.worlds {
                if let std::collections::btree_map::Entry::Vacant(e) = m.worlds.entry(id) {
                    e.insert(w);
                    n += 1;
                }
            }
            for (id, s) in file.snapshots {
                if let std::collections::btree_map::Entry::Vacant(e) = m.snapshots.entry(id) {
                    e.insert(s);
                    n += 1;
                }
            }
            n
        })?;
        let _ = std::fs::rename(path, path.with_extension("json.imported"));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn world(k: &str, v: &str) -> WorldMeta {
        let mut w = WorldMeta::default();
        w.metadata.insert(k.into(), v.into());
        w
    }

    proptest! {
        /// Applying the diff from `old` to `new` to a table holding `old`
        /// leaves exactly `new`.
        #[test]
        fn the_diff_takes_old_to_new(old in proptest::collection::btree_map("[a-d]", "[x-z]", 0..4),
                                     new in proptest::collection::btree_map("[a-d]", "[x-z]", 0..4)) {
            let file = |m: &BTreeMap<String, String>| MetaFile {
                worlds: m.iter().map(|(k, v)| (k.clone(), world("k", v))).collect(),
                snapshots: BTreeMap::new(),
            };
            let (a, b) = (file(&old), file(&new));
            let (put, delete) = diff(&a, &b).unwrap();
            let mut table: BTreeMap<String, String> = a.worlds.iter()
                .map(|(k, w)| (k.clone(), serde_json::to_string(w).unwrap())).collect();
            for id in &delete { table.remove(id); }
            for d in &put { table.insert(d.entity_id.clone(), d.doc.clone()); }
            let want: BTreeMap<String, String> = b.worlds.iter()
                .map(|(k, w)| (k.clone(), serde_json::to_string(w).unwrap())).collect();
            prop_assert_eq!(table, want);
            // Nothing unchanged is written.
            for d in &put {
                prop_assert!(a.worlds.get(&d.entity_id) != b.worlds.get(&d.entity_id));
            }
        }
    }
}
