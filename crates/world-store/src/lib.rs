//! # world-store: the DuckDB records of WorldRuntime
//!
//! One embedded DuckDB file holds everything WorldRuntime records:
//!
//! * the original design's four tables, **verbatim** (`world_runtime_entities`,
//!   `world_branches`, `verse_resolutions`, `runtime_metrics`), so queries
//!   written against the seed work unchanged;
//! * tables beside them for the verse ledger (`verses`, `partitions`,
//!   `balances`, the append-only `ledger_journal`), resolution details,
//!   per-operation timings and the schema version.
//!
//! [`Store`] is the one API everything else uses. Connections are short-lived:
//! DuckDB lets one process hold a database file at a time, so [`Store::open`]
//! retries with backoff while another `world` process holds it (see
//! [`open`]). Every ledger change is one DuckDB transaction that writes the
//! journal row and the new state together, so a committed operation survives
//! `kill -9` and the journal and the balances always agree.
//!
//! A long-lived process may open the file with a **record spool**
//! ([`OpenOptions::spool`]): a transaction's writes are then made durable
//! in a side file at once and written to the tables by a background writer
//! (see [`spool`]).
#![deny(missing_docs)]

mod batch;
mod error;
pub mod ledger_io;
pub mod meta_io;
pub mod open;
pub mod path;
pub mod records;
pub mod schema;
pub mod spool;
pub mod storage;
pub mod verse_worlds;

pub use error::{Error, Result};
pub use open::{LedgerCache, OpenOptions, Store};
pub use records::{BranchRow, EntityRow, MetricSummary, NewEntity, ResolutionRow};
pub use spool::{spool_path, SpoolOptions};
