//! JSON shapes of WorldRuntime's own API (the Morph shapes live in the
//! `morph_*` files).

use serde::Serialize;
use world_substrate::snapshot::SnapshotInfo;
use world_substrate::WorldInfo;

use crate::meta::{Metadata, SnapMeta, Ttl, WorldMeta};
use crate::state::AppState;

/// An exposed service as clients see it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ServiceView {
    /// Name.
    pub name: String,
    /// Port in the world.
    pub port: u16,
    /// URL on the daemon that reaches it.
    pub url: String,
}

/// A world: the engine's info plus what the daemon keeps.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct WorldView {
    /// The engine's view.
    #[serde(flatten)]
    pub info: WorldInfo,
    /// Frozen by pause (`state` is `paused`; kept for older clients).
    pub paused: bool,
    /// User metadata.
    pub metadata: Metadata,
    /// TTL.
    pub ttl: Ttl,
    /// Snapshot it started from.
    pub snapshot_id: Option<String>,
    /// Exposed services.
    pub http_services: Vec<ServiceView>,
}

impl WorldView {
    /// Joins an engine view with the daemon's metadata.
    pub fn new(st: &AppState, info: WorldInfo, meta: WorldMeta) -> WorldView {
        let base = st.public_url();
        WorldView {
            http_services: meta
                .http_services
                .iter()
                .map(|s| ServiceView {
                    name: s.name.clone(),
                    port: s.port,
                    url: format!("{base}/v1/services/{}/{}/", info.id, s.name),
                })
                .collect(),
            paused: info.state == world_substrate::WorldState::Paused,
            info,
            metadata: meta.metadata,
            ttl: meta.ttl,
            snapshot_id: meta.snapshot_id,
        }
    }
}

/// A snapshot: the engine's info plus metadata.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SnapshotView {
    /// The engine's view.
    #[serde(flatten)]
    pub info: SnapshotInfo,
    /// The original design's field name for the id.
    pub snapshot_id: String,
    /// User metadata.
    pub metadata: Metadata,
    /// TTL.
    pub ttl: Ttl,
}

impl SnapshotView {
    /// Joins an engine view with the daemon's metadata.
    pub fn new(info: SnapshotInfo, meta: SnapMeta) -> SnapshotView {
        SnapshotView {
            snapshot_id: info.id.clone(),
            info,
            metadata: meta.metadata,
            ttl: meta.ttl,
        }
    }
}

/// The answer to a destroy.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Destroyed {
    /// The world destroyed.
    pub destroyed: String,
}

/// The answer to a snapshot's delete.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Deleted {
    /// The snapshot deleted.
    pub deleted: String,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Health {
    /// Always true when it answers.
    pub ok: bool,
    /// The daemon's version.
    pub version: String,
    /// Its public URL.
    pub url: String,
    /// The database it serves (absolute).
    pub db: std::path::PathBuf,
}

/// The original design's snapshot answer.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SandboxSnapshot {
    /// Its id.
    pub snapshot_id: String,
    /// Its name.
    pub name: String,
    /// The world it was taken from.
    pub world: String,
    /// Time taken, ms.
    pub snapshot_ms: f64,
    /// What the user may lose.
    pub warnings: Vec<String>,
}
