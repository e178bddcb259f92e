//! JSON shapes of WorldRuntime's own API (the Morph shapes live in the
//! `morph_*` files).

use serde::Serialize;
use world_substrate::snapshot::SnapshotInfo;
use world_substrate::{CodeResult, WorldInfo};

use crate::meta::{Metadata, SnapMeta, Ttl, WorldMeta};
use crate::state::AppState;

/// An exposed service as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    /// Name.
    pub name: String,
    /// Port in the world.
    pub port: u16,
    /// URL on the daemon that reaches it.
    pub url: String,
}

/// A world: the engine's info plus what the daemon keeps.
#[derive(Debug, Clone, Serialize)]
pub struct WorldView {
    /// The engine's view.
    #[serde(flatten)]
    pub info: WorldInfo,
    /// Frozen by pause.
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
            info,
            paused: meta.paused,
            metadata: meta.metadata,
            ttl: meta.ttl,
            snapshot_id: meta.snapshot_id,
        }
    }
}

/// A snapshot: the engine's info plus metadata.
#[derive(Debug, Clone, Serialize)]
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

/// The result of running code in a session.
#[derive(Debug, Clone, Serialize)]
pub struct CodeView {
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
    /// `repr()` of the last expression.
    pub value: Option<String>,
    /// Traceback of an uncaught exception.
    pub error: Option<String>,
    /// Whether the timeout interrupted it.
    pub timed_out: bool,
    /// Time in the session, ms.
    pub duration_ms: f64,
    /// 0 ok, 1 exception, 124 timeout (like `world run-code`).
    pub exit_code: i32,
}

impl From<CodeResult> for CodeView {
    fn from(r: CodeResult) -> CodeView {
        CodeView {
            stdout: String::from_utf8_lossy(&r.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&r.stderr).into_owned(),
            exit_code: r.shell_code(),
            value: r.value_repr,
            error: r.error,
            timed_out: r.timed_out,
            duration_ms: r.duration_ms,
        }
    }
}
