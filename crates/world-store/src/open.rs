//! Opening the database: one process at a time, with retry and backoff.
//!
//! DuckDB allows a single process to hold a database file read-write, and
//! refuses other processes while it does. WorldRuntime therefore keeps
//! connections short: every `world` command opens the file, does its work in
//! one transaction and closes it. When the file is held by another `world`
//! process, [`Store::open`] retries with exponential backoff (1 ms doubling
//! to 50 ms, with jitter) until [`OpenOptions::busy_timeout`] passes, then
//! fails with [`Error::Busy`]. Long-running work (the demo, a daemon) must
//! likewise not hold the file for long: `world_engine`'s store lease keeps it
//! open while requests keep coming and closes it when idle.
//!
//! Within one process, [`Store::try_clone`] gives further connections to the
//! same open database (DuckDB instance). Clones share two things: a write
//! lock, so that this process runs one read-modify-write transaction at a
//! time (DuckDB would abort one of two conflicting ones), and the **ledger
//! cache**: the ledger as of a journal position. A transaction that finds the
//! journal still at the cached position reuses it instead of reading the
//! ledger tables again; any commit by another process moves the journal and
//! so invalidates the cache.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use duckdb::Connection;
use world_core::ledger::Ledger;

use crate::spool::{self, Spool, SpoolOptions};
use crate::{schema, Error, Result};

/// Prepared statements kept per connection. DuckDB plans a small statement
/// in about a millisecond; a commit's statements recur with the same shapes.
const STATEMENT_CACHE: usize = 128;

/// How to open a store.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// How long to wait for another process to release the file.
    pub busy_timeout: Duration,
    /// A ledger cache to use (and keep) across openings of the file; by
    /// default every opening starts with an empty one.
    pub ledger_cache: Option<LedgerCache>,
    /// Write records behind, through a spool (see [`crate::spool`]): for
    /// a process that holds the file open across many operations. `None`
    /// (the default) writes every transaction in line.
    pub spool: Option<SpoolOptions>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(60),
            ledger_cache: None,
            spool: None,
        }
    }
}

/// The ledger as of a journal position, shared by the connections (and
/// successive openings) that hold a clone of it. It is only ever used after
/// checking, inside a transaction, that the journal is still at that
/// position, so a commit by another process simply makes it miss.
#[derive(Clone, Default)]
pub struct LedgerCache(Arc<Mutex<Option<(u64, Ledger)>>>);

impl std::fmt::Debug for LedgerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head = lock(&self.0).as_ref().map(|(s, _)| *s);
        f.debug_struct("LedgerCache").field("head", &head).finish()
    }
}

/// An open WorldRuntime database.
pub struct Store {
    pub(crate) conn: Connection,
    path: Option<PathBuf>,
    shared: Arc<Shared>,
}

/// What the connections of one open database in this process share.
#[derive(Default)]
struct Shared {
    /// Held for the whole of a read-modify-write transaction.
    write: Mutex<()>,
    /// The ledger as of a journal position.
    ledger: LedgerCache,
    /// The record spool, when records are written behind.
    spool: Option<Spool>,
    /// Spooled batches a killed holder left, written when this opened.
    replayed: usize,
}

/// Locks `m`, also after another holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` with default options.
    pub fn open(path: &Path) -> Result<Store> {
        Self::open_with(path, &OpenOptions::default())
    }

    /// Opens the database at `path`, waiting for other processes as configured.
    pub fn open_with(path: &Path, opts: &OpenOptions) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let start = Instant::now();
        let mut delay = Duration::from_millis(1);
        let mut attempt: u64 = 0;
        loop {
            match Connection::open(path) {
                Ok(conn) => {
                    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                    // Another process may still be migrating a fresh file, so
                    // a lock error during migration is retried as well.
                    match schema::migrate(&conn) {
                        Ok(_) => return Self::opened(conn, path, opts),
                        Err(Error::Db(e)) if is_busy(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(e) if is_busy(&e) => {}
                Err(e) if crate::storage::is_too_new(&e) => {
                    return Err(Error::StorageTooNew {
                        path: path.to_path_buf(),
                        written_by: crate::storage::written_by(path),
                        library: crate::storage::library_version()
                            .unwrap_or_else(|_| "(unknown)".into()),
                    })
                }
                Err(e) => return Err(e.into()),
            }
            if start.elapsed() >= opts.busy_timeout {
                return Err(Error::Busy {
                    path: path.to_path_buf(),
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            attempt += 1;
            std::thread::sleep(delay + jitter(attempt, delay));
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }

    /// A freshly opened and migrated file: replays its record spool (a
    /// previous holder's batches not yet in the tables) and, if asked,
    /// starts this opening's own.
    fn opened(conn: Connection, path: &Path, opts: &OpenOptions) -> Result<Store> {
        let spool_file = spool::spool_path(path);
        let (last_id, replayed) = spool::replay(&conn, &spool_file)?;
        let cache = opts.ledger_cache.clone().unwrap_or_default();
        let spool = match &opts.spool {
            Some(o) => {
                let head = crate::ledger_io::journal_head(&conn)?;
                let writer = conn.try_clone()?;
                writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                // A spool that stops may leave the cache ahead of the
                // tables: it is forgotten then.
                let forget = cache.clone();
                Some(Spool::start(
                    writer,
                    spool_file,
                    last_id,
                    head,
                    o,
                    Box::new(move || *lock(&forget.0) = None),
                )?)
            }
            None => None,
        };
        Ok(Store {
            conn,
            path: Some(path.to_path_buf()),
            shared: Arc::new(Shared {
                write: Mutex::new(()),
                ledger: cache,
                spool,
                replayed,
            }),
        })
    }

    /// The record spool, when this database writes records behind.
    pub(crate) fn spool(&self) -> Option<&Spool> {
        self.shared.spool.as_ref()
    }

    /// Waits until every spooled record is in the tables (at once without
    /// a spool). Reads of anything but the ledger, the verse links and the
    /// scores should follow a sync.
    pub fn sync_records(&self) -> Result<()> {
        match self.spool() {
            Some(s) => s.sync(),
            None => Ok(()),
        }
    }

    /// How many spooled batches a killed holder had left, which this
    /// opening wrote to the tables before anything read them.
    pub fn replayed_batches(&self) -> usize {
        self.shared.replayed
    }

    /// Spooled batches not yet in the tables (0 without a spool).
    pub fn records_pending(&self) -> usize {
        self.spool().map_or(0, Spool::pending)
    }

    /// Whether the record writer will still write the pending batches (it
    /// has not failed).
    pub fn records_flowing(&self) -> bool {
        self.records_pending() > 0 && !self.spool().is_some_and(Spool::has_failed)
    }

    /// Runs a direct write: with a spool, under the write lock and after
    /// every spooled batch, so the tables change in one order.
    pub(crate) fn write_direct<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        match self.spool() {
            Some(s) => {
                let _write = lock(&self.shared.write);
                s.sync()?;
                f(&self.conn)
            }
            None => f(&self.conn),
        }
    }

    /// Runs a direct write to tables no spooled batch ever writes
    /// (`world_meta`): under the write lock, without waiting for the
    /// spooled records (which may be held back far longer than a caller
    /// should wait), since nothing orders the two.
    pub(crate) fn write_unspooled<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let _write = lock(&self.shared.write);
        f(&self.conn)
    }

    /// Holds this process's write lock (one read-modify-write at a time).
    pub(crate) fn write_lock(&self) -> MutexGuard<'_, ()> {
        lock(&self.shared.write)
    }

    /// Opens a private in-memory database (tests, benchmarks).
    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        schema::migrate(&conn)?;
        Ok(Store {
            conn,
            path: None,
            shared: Arc::default(),
        })
    }

    /// Another connection to the same open database, sharing this one's
    /// write lock and ledger cache. Cheap (no file is opened); the database
    /// closes when the last of its connections is dropped.
    pub fn try_clone(&self) -> Result<Store> {
        let conn = self.conn.try_clone()?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Store {
            conn,
            path: self.path.clone(),
            shared: self.shared.clone(),
        })
    }

    /// The cached ledger, when the journal is still at `seq`.
    pub(crate) fn cached_ledger(&self, seq: u64) -> Option<Ledger> {
        lock(&self.shared.ledger.0)
            .as_ref()
            .filter(|(s, _)| *s == seq)
            .map(|(_, l)| l.clone())
    }

    /// A balance cell in the cached ledger, when it is at `seq`.
    pub(crate) fn cached_balance(
        &self,
        seq: u64,
        key: &world_core::ledger::BalanceKey,
    ) -> Option<u64> {
        lock(&self.shared.ledger.0)
            .as_ref()
            .filter(|(s, _)| *s == seq)
            .map(|(_, l)| l.balance_of(key))
    }

    /// Remembers `ledger` as the state at journal position `seq`.
    pub(crate) fn cache_ledger(&self, seq: u64, ledger: Ledger) {
        *lock(&self.shared.ledger.0) = Some((seq, ledger));
    }

    /// Forgets the cached ledger.
    pub(crate) fn forget_ledger(&self) {
        *lock(&self.shared.ledger.0) = None;
    }

    /// The file this store was opened from (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))?)
    }

    /// Direct access for read-only ad-hoc queries (the CLI's `sql` command).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` inside one transaction; commits on `Ok`, rolls back on `Err`.
    /// Holds the process-wide write lock of this database throughout.
    pub(crate) fn in_transaction<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let _write = lock(&self.shared.write);
        if let Some(s) = self.spool() {
            s.sync()?;
        }
        self.in_read_transaction(f)
    }

    /// Runs `f` inside one transaction without the write lock: for reads
    /// that must see one consistent state.
    pub(crate) fn in_read_transaction<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        transaction(&self.conn, f)
    }
}

/// Runs `f` in one transaction on `conn`: committed when it succeeds,
/// rolled back (and its error returned) when it fails.
pub(crate) fn transaction<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    conn.execute_batch("BEGIN TRANSACTION")?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Whether a DuckDB error means "another process holds the file".
fn is_busy(e: &duckdb::Error) -> bool {
    let msg = e.to_string();
    msg.contains("Could not set lock") || msg.contains("Conflicting lock")
}

/// A small deterministic jitter (0..delay/2) so that waiting processes do not
/// retry in lock-step.
fn jitter(attempt: u64, delay: Duration) -> Duration {
    let r = world_core::seed::splitmix64_output(std::process::id() as u64, attempt);
    let half = (delay.as_micros() as u64 / 2).max(1);
    Duration::from_micros(r % half)
}
