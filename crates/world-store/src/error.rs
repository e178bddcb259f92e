//! The store's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// DuckDB reported an error.
    #[error("database error")]
    Db(#[from] duckdb::Error),
    /// The database file is held by another process for longer than we wait.
    #[error("database {path} is busy (held by another world process) after waiting {waited_ms} ms; retry, or stop the other process")]
    Busy {
        /// The database file.
        path: PathBuf,
        /// How long we waited.
        waited_ms: u64,
    },
    /// A directory for the database could not be created.
    #[error("cannot create directory {path}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file was written by a newer WorldRuntime.
    #[error("database schema version {found} is newer than this build understands ({supported}); upgrade world")]
    SchemaTooNew {
        /// Version found in the file.
        found: i64,
        /// Latest version this build knows.
        supported: i64,
    },
    /// A ledger operation was refused; nothing was written.
    #[error(transparent)]
    Ledger(#[from] world_core::ledger::LedgerError),
    /// Operation `index` of a batch was refused; nothing of the batch was written.
    #[error("operation {index} of the batch was refused: {source}")]
    BatchOp {
        /// Position in the batch, from 0.
        index: usize,
        /// Why it was refused.
        source: world_core::ledger::LedgerError,
    },
    /// The stored ledger state is inconsistent.
    #[error("stored ledger state is inconsistent: {0}")]
    Corrupt(String),
    /// The work a transaction records failed; nothing was committed.
    #[error("not recorded: {0}")]
    Aborted(String),
    /// JSON (de)serialisation of a journal row failed.
    #[error("journal encoding")]
    Json(#[from] serde_json::Error),
    /// The record spool (write-behind file) failed: see `spool`.
    #[error("record spool {path}: {message}")]
    Spool {
        /// The spool file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The file was written by a newer DuckDB than this build links, in a
    /// storage format it cannot read (see `storage`).
    #[error("database {} was written by DuckDB {}, whose storage format this build's DuckDB {library} cannot read: export it with the Python duckdb package of that version (`EXPORT DATABASE 'dir'`) and import it into a new file (`IMPORT DATABASE 'dir'`), or move the file aside to start a new one (or set WORLD_DB)", path.display(), written_by.as_deref().unwrap_or("of a newer version"))]
    StorageTooNew {
        /// The database file.
        path: PathBuf,
        /// The DuckDB version its header names, if it names one.
        written_by: Option<String>,
        /// The DuckDB version this build links.
        library: String,
    },
    /// A named record does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// What kind of record.
        kind: &'static str,
        /// Its id.
        id: String,
    },
}

/// Result alias for the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;
