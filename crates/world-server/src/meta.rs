//! What the daemon knows beyond the engine: user metadata, TTLs, pause
//! state and exposed services of worlds and snapshots, kept in
//! `<state_dir>/server/meta.json` (written atomically on every change).
//! Entries of worlds and snapshots that no longer exist are dropped at
//! start.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
pub use world_engine::actions::TtlAction;

pub use world_engine::actions::Metadata;

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

/// What the daemon keeps about a world.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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

/// What the daemon keeps about a snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetaFile {
    /// Per world id.
    #[serde(default)]
    pub worlds: BTreeMap<String, WorldMeta>,
    /// Per snapshot id.
    #[serde(default)]
    pub snapshots: BTreeMap<String, SnapMeta>,
}

/// The file and its in-memory copy.
#[derive(Debug)]
pub struct MetaStore {
    path: PathBuf,
    inner: Mutex<MetaFile>,
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl MetaStore {
    /// Loads `path` (an unreadable file starts empty; it is kept aside as
    /// `meta.json.bad`).
    pub fn load(path: PathBuf) -> MetaStore {
        let inner = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|_| {
                let _ = std::fs::rename(&path, path.with_extension("json.bad"));
                MetaFile::default()
            }),
            Err(_) => MetaFile::default(),
        };
        MetaStore {
            path,
            inner: Mutex::new(inner),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MetaFile> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of everything.
    pub fn snapshot(&self) -> MetaFile {
        self.lock().clone()
    }

    /// The metadata of a world (default when unknown).
    pub fn world(&self, id: &str) -> WorldMeta {
        self.lock().worlds.get(id).cloned().unwrap_or_default()
    }

    /// The metadata of a snapshot (default when unknown).
    pub fn snap(&self, id: &str) -> SnapMeta {
        self.lock().snapshots.get(id).cloned().unwrap_or_default()
    }

    /// Changes the file and writes it.
    pub fn update<T>(&self, f: impl FnOnce(&mut MetaFile) -> T) -> T {
        let mut g = self.lock();
        let r = f(&mut g);
        self.save(&g);
        r
    }

    fn save(&self, m: &MetaFile) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = self.path.with_extension("json.tmp");
        if let Ok(b) = serde_json::to_vec_pretty(m) {
            if std::fs::write(&tmp, b).is_ok() {
                let _ = std::fs::rename(&tmp, &self.path);
            }
        }
    }
}
