//! Shared state of the daemon and the bridge from async handlers to the
//! synchronous engine.

use std::sync::{Arc, Mutex};

use world_engine::{Engine, StoreMode};
use world_substrate::WorldId;

use crate::{ApiError, Error, ServerConfig};

/// Everything handlers share.
pub struct AppState {
    /// The engine over the database and the substrate.
    pub engine: Engine,
    /// The bearer token.
    pub token: String,
    /// Where a daemon from before the `world_meta` table kept metadata
    /// (moved into the database at start: [`world_engine::Engine::meta_import`]).
    legacy_meta: std::path::PathBuf,
    /// `http://ADDR` of the TCP listener, for URLs handed to clients.
    public_url: Mutex<String>,
    /// Largest accepted body.
    pub body_limit: usize,
    /// Log every request on stderr.
    pub log_requests: bool,
    /// Processes started through the E2B door, for `SendSignal`.
    pub e2b: crate::e2b::Procs,
    /// Permits for calls that hold a blocking thread as long as a program
    /// runs (SSH channels, E2B commands, file streams, interpreter runs):
    /// fewer than the pool has threads, so short calls always find one.
    pub long_calls: Arc<tokio::sync::Semaphore>,
}

/// Long-lived calls at once (the blocking pool has 256 threads).
pub const LONG_CALLS: usize = 160;

impl AppState {
    /// A permit for a long-lived call, or why not.
    pub fn long_call(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        self.long_calls.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "busy",
                format!("{LONG_CALLS} long-running calls (shells, commands, file streams) are running: end some first"),
            )
        })
    }
}

impl AppState {
    /// Prepares the state (token, metadata file) without touching worlds.
    pub fn new(cfg: &ServerConfig) -> Result<AppState, Error> {
        let token = crate::token::load_or_create_token(&cfg.substrate.state_dir)?;
        let legacy_meta = cfg.substrate.state_dir.join("server").join("meta.json");
        let spool = world_store::SpoolOptions::from_env()
            .map_err(|e| Error::Io(e, std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
        Ok(AppState {
            // One long-lived lease on the database: every request gets its
            // own connection to it, and the file is handed back when idle so
            // that `world` commands in other processes get in.
            engine: Engine::new(cfg.db.clone())
                .with_substrate(cfg.substrate.clone())
                .with_spool_options(spool)
                .with_store_mode(StoreMode::held()),
            token,
            legacy_meta,
            public_url: Mutex::new(format!("http://{}", cfg.listen)),
            body_limit: cfg.body_limit,
            log_requests: cfg.log_requests,
            e2b: crate::e2b::Procs::default(),
            long_calls: Arc::new(tokio::sync::Semaphore::new(LONG_CALLS)),
        })
    }

    /// The base URL clients reach the daemon at.
    pub fn public_url(&self) -> String {
        self.public_url
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets the base URL once the listener is bound.
    pub fn set_public_url(&self, url: String) {
        *self.public_url.lock().unwrap_or_else(|p| p.into_inner()) = url;
    }

    /// Runs `f` on the blocking pool. Engine calls need no lock of their
    /// own: each gets its own connection to the daemon's leased database.
    pub async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
    {
        let st = self.clone();
        tokio::task::spawn_blocking(move || f(&st))
            .await
            .map_err(|e| ApiError::internal(format!("request task failed: {e}")))?
    }

    /// Fails unless the world can run commands now: 409 `world_paused`
    /// when it is paused, 409 `refused` when its supervisor is gone.
    pub fn ensure_running(&self, id: &WorldId) -> Result<(), ApiError> {
        let w = self.engine.world_inspect(id)?;
        if w.state.can_exec() {
            return Ok(());
        }
        let e = world_substrate::Error::from(world_substrate::WorldError::NotRunning(
            id.to_string(),
            w.state,
        ));
        Err(e.into())
    }

    /// Destroys a world (paused or not) and forgets its metadata.
    pub fn destroy_world(&self, id: &WorldId) -> Result<(), ApiError> {
        self.engine.world_destroy(id)?;
        self.engine.meta_update(|m| m.worlds.remove(id.as_str()))?;
        Ok(())
    }

    /// At start: repair what a crash left (the engine marks lost worlds in
    /// the records) and drop metadata of worlds and snapshots that are gone.
    pub async fn recover(self: &Arc<Self>) {
        let r = self
            .run(|st| {
                let rep = st.engine.repair()?;
                let worlds: Vec<String> = st
                    .engine
                    .world_list()?
                    .into_iter()
                    .map(|w| w.id.to_string())
                    .collect();
                let snaps: Vec<String> = st.engine.snapshots()?.into_iter().map(|s| s.id).collect();
                st.engine.meta_import(&st.legacy_meta)?;
                st.engine.meta_update(|m| {
                    m.worlds.retain(|k, _| worlds.contains(k));
                    m.snapshots.retain(|k, _| snaps.contains(k));
                })?;
                Ok((rep, worlds.len(), snaps.len()))
            })
            .await;
        match r {
            Ok((rep, w, s)) => println!(
                "world-serve: recovered {w} world(s), {s} snapshot(s); {} record(s) marked lost, {} half-made world(s) removed",
                rep.lost.len(),
                rep.substrate.removed_worlds.len()
            ),
            Err(e) => eprintln!("world-serve: repair at start failed: {e}"),
        }
    }
}
