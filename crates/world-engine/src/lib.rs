//! # world-engine: where the ledger, the records and the substrate meet
//!
//! The CLI (and later the HTTP daemon) turns a request into a call on
//! [`Engine`]; the engine validates it, runs it against the domain logic in
//! `world-core`, and records it through `world-store`. The engine never
//! holds the database open between calls (see `world_store::open`), so many
//! `world` processes can work on one database at once.
#![deny(missing_docs)]

pub mod branch;
mod error;
pub mod multiverse;
pub mod python;
mod trace;
pub mod verse;
pub mod world;

pub use error::{Error, ErrorKind, Result};

use std::path::{Path, PathBuf};

use world_store::{OpenOptions, Store};
use world_substrate::{LinuxSubstrate, SubstrateConfig};

/// The entry point for every operation.
#[derive(Debug, Clone)]
pub struct Engine {
    db: PathBuf,
    open: OpenOptions,
    substrate: Option<LinuxSubstrate>,
}

impl Engine {
    /// An engine recording into the database at `db`.
    pub fn new(db: impl Into<PathBuf>) -> Self {
        Self {
            db: db.into(),
            open: OpenOptions::default(),
            substrate: None,
        }
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

    /// Opens the store for one unit of work; it closes when dropped.
    pub fn store(&self) -> Result<Store> {
        Ok(Store::open_with(&self.db, &self.open)?)
    }
}
