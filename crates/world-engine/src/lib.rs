//! # world-engine: where the ledger, the records and the substrate meet
//!
//! The CLI (and later the HTTP daemon) turns a request into a call on
//! [`Engine`]; the engine validates it, runs it against the domain logic in
//! `world-core`, and records it through `world-store`. How long the database
//! stays open is the engine's [`StoreMode`]: per call for one-shot commands
//! (many `world` processes share one file), a lease for long-lived processes
//! (see [`lease`]).
#![deny(missing_docs)]

pub mod actions;
pub mod branch;
mod error;
pub mod lease;
pub mod meta;
pub mod multiverse;
pub mod python;
mod reaper;
mod trace;
pub mod verse;
pub mod world;

pub use error::{Error, ErrorKind, Result};
pub use lease::{StoreHandle, StoreMode};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use world_store::{LedgerCache, OpenOptions, SpoolOptions, Store};
use world_substrate::{LinuxSubstrate, SubstrateConfig};

/// The entry point for every operation.
#[derive(Debug, Clone)]
pub struct Engine {
    db: PathBuf,
    open: OpenOptions,
    substrate: Option<LinuxSubstrate>,
    lease: Option<Arc<lease::Lease>>,
    /// Write records in line even when held (benchmarks compare).
    inline: bool,
    /// Releases collapsed worlds in the background (held engines).
    reaper: Option<Arc<reaper::Reaper>>,
    /// Metadata, TTLs and services of worlds and snapshots, in memory
    /// (shared by clones; see [`meta`]).
    meta: Arc<meta::MetaCache>,
}

impl Engine {
    /// An engine recording into the database at `db`.
    pub fn new(db: impl Into<PathBuf>) -> Self {
        Self {
            db: db.into(),
            open: OpenOptions {
                ledger_cache: Some(LedgerCache::default()),
                ..OpenOptions::default()
            },
            substrate: None,
            lease: None,
            inline: false,
            reaper: None,
            meta: Arc::default(),
        }
    }

    /// Sets how the database is held open (default: per call). Clones of
    /// the engine made afterwards share the lease. A held database writes
    /// its records behind, through a record spool (see [`lease`]).
    pub fn with_store_mode(mut self, mode: StoreMode) -> Self {
        if matches!(mode, StoreMode::Held { .. }) && !self.inline {
            let spool = self.open.spool.get_or_insert_with(SpoolOptions::default);
            // The writer only uses CPU time the worlds and the operations
            // on the critical path do not want.
            if spool.writer_priority.is_none() {
                spool.writer_priority = Some(|background| {
                    let _ = world_substrate::set_thread_background(background);
                });
            }
        }
        if matches!(mode, StoreMode::Held { .. }) && self.reaper.is_none() {
            self.reaper = reaper::Reaper::start().map(Arc::new);
        }
        self.lease = lease::Lease::start(self.db.clone(), self.open.clone(), mode);
        self
    }

    /// Releases collapsed worlds: on the reaper thread when this engine
    /// has one (held), else now.
    pub(crate) fn release(&self, c: world_substrate::snapshot::Collapsing) -> Result<()> {
        match &self.reaper {
            Some(r) => Ok(r.release(c)?),
            None => Ok(c.finish()?),
        }
    }

    /// Writes records in line even when the database is held, as every
    /// call did before the record spool (call before
    /// [`Engine::with_store_mode`]; `world bench verses` compares the two).
    pub fn with_inline_records(mut self) -> Self {
        self.inline = true;
        self.open.spool = None;
        self
    }

    /// Sets how a held database's record spool writes (call before
    /// [`Engine::with_store_mode`]).
    pub fn with_spool_options(mut self, opts: SpoolOptions) -> Self {
        self.open.spool = Some(opts);
        self
    }

    /// Uses `cfg` for worlds (state and run directories, supervisor command).
    pub fn with_substrate(mut self, cfg: SubstrateConfig) -> Self {
        self.substrate = Some(LinuxSubstrate::new(cfg));
        self
    }

    /// The world substrate, or a clear error when this engine has none.
    pub fn substrate(&self) -> Result<&LinuxSubstrate> {
        self.substrate
            .as_ref()
            .ok_or_else(|| Error::Invalid("worlds are not configured in this engine".into()))
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        &self.db
    }

    /// The store for one unit of work: a fresh opening (per-call mode) or a
    /// connection to the leased database, once every spooled record is in
    /// its tables. Drop it when the work is done.
    pub fn store(&self) -> Result<StoreHandle> {
        match &self.lease {
            Some(lease) => lease.acquire(true),
            None => Ok(lease::per_call(Store::open_with(&self.db, &self.open)?)),
        }
    }

    /// Spooled record batches not yet written to the tables (0 unless the
    /// database is held; see [`lease`]).
    pub fn records_pending(&self) -> Result<usize> {
        Ok(self.verse_store()?.records_pending())
    }

    /// Waits until every spooled record is written to the tables.
    pub fn sync_records(&self) -> Result<()> {
        Ok(self.verse_store()?.sync_records()?)
    }

    /// The store for a ledger or verse operation: like [`Engine::store`],
    /// but without waiting for spooled records, so it may only be used for
    /// what the store keeps current in memory (the ledger, verse-to-world
    /// links, latest scores), for tables no spooled batch writes
    /// (`world_meta`) and for writes.
    pub(crate) fn verse_store(&self) -> Result<StoreHandle> {
        match &self.lease {
            Some(lease) => lease.acquire(false),
            None => self.store(),
        }
    }
}
