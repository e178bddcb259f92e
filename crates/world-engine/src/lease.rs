//! The store lease: how long the engine keeps the DuckDB file open.
//!
//! DuckDB lets one process hold a database file at a time. A one-shot `world`
//! command opens the file per unit of work ([`StoreMode::PerCall`], the
//! default): that costs 15–20 ms per opening and lets many processes share
//! the file. A long-lived process (the daemon, a benchmark, the demo) takes a
//! **lease** instead ([`StoreMode::Held`]):
//!
//! * the first call opens the file; every call gets its own connection to
//!   that one open database ([`Store::try_clone`], microseconds), so calls on
//!   several threads run side by side and the ledger cache stays warm;
//!   finished connections go back to a pool, so their prepared statements
//!   (DuckDB plans a statement in about half a millisecond) are reused;
//! * when no call has used it for `idle` (and the record writer has caught
//!   up), a reaper thread closes the file, so a `world` command in another
//!   process gets in within about that long;
//! * a lease held longer than `max_hold` under continuous load is handed
//!   back anyway: new calls wait for the running ones to finish (at most
//!   0.5 s, else the hand-back is put off by another `max_hold`, so a thread
//!   that already holds a connection never waits for itself), the file is
//!   closed for `yield_for`, then reopened. Other processes retry every
//!   ≤ 50 ms, so they are not starved by a busy daemon.
//!
//! The ledger cache survives closing and reopening (it is re-validated
//! against the journal inside every transaction).
//!
//! A held database writes its records behind, through a record spool
//! (`world_store::spool`): an operation's records are durable when it
//! returns and reach the tables a few milliseconds later. Handles from
//! [`crate::Engine::store`] wait for them; the verse operations take
//! theirs from `Engine::verse_store`, which does not, because they
//! read only what the store keeps current in memory. Closing the file
//! (idle, hand-back, drop) writes everything spooled first.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use world_store::{OpenOptions, Store};

use crate::Result;

/// How the engine opens the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// Open per unit of work and close right after (one-shot commands).
    PerCall,
    /// Keep the file open while it is in use (long-lived processes).
    Held {
        /// Close after this long without any call.
        idle: Duration,
        /// Hand the file back at least this often under load.
        max_hold: Duration,
        /// How long to keep it closed when handing it back.
        yield_for: Duration,
    },
}

impl StoreMode {
    /// The lease a long-lived process takes: idle 200 ms, handed back for
    /// 100 ms every 2 s under load.
    pub fn held() -> StoreMode {
        StoreMode::Held {
            idle: Duration::from_millis(200),
            max_hold: Duration::from_secs(2),
            yield_for: Duration::from_millis(100),
        }
    }
}

/// A store for one unit of work; dereferences to [`Store`].
pub struct StoreHandle {
    store: Option<Store>,
    lease: Option<Arc<Lease>>,
    /// The opening of the database this connection belongs to.
    generation: u64,
}

impl std::ops::Deref for StoreHandle {
    type Target = Store;
    fn deref(&self) -> &Store {
        self.store.as_ref().expect("store present until drop")
    }
}

impl Drop for StoreHandle {
    fn drop(&mut self) {
        let store = self.store.take();
        let Some(lease) = &self.lease else {
            return;
        };
        let mut st = lease.lock();
        match store {
            // Back to the pool when it belongs to the current opening and
            // is not inside a transaction (a panic mid-transaction).
            Some(s)
                if st.root.is_some()
                    && st.generation == self.generation
                    && s.connection().is_autocommit()
                    && st.pool.len() < POOL_MAX =>
            {
                st.pool.push(s)
            }
            other => drop(other),
        }
        st.active -= 1;
        st.last_used = Instant::now();
        drop(st);
        lease.changed.notify_all();
    }
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle")
            .field("store", &self.store)
            .field("leased", &self.lease.is_some())
            .finish()
    }
}

/// The shared lease of a [`StoreMode::Held`] engine.
#[derive(Debug)]
pub(crate) struct Lease {
    db: PathBuf,
    open: OpenOptions,
    idle: Duration,
    max_hold: Duration,
    yield_for: Duration,
    state: Mutex<LeaseState>,
    changed: Condvar,
}

/// How long a hand-back waits for the connections in use to come back.
const DRAIN_MAX: Duration = Duration::from_millis(500);

/// Most pooled connections kept.
const POOL_MAX: usize = 16;

#[derive(Debug)]
struct LeaseState {
    /// The open database (its first connection), if open.
    root: Option<Store>,
    /// Idle connections to `root`.
    pool: Vec<Store>,
    /// Counts openings, so that connections of an old one are not pooled.
    generation: u64,
    opened: Instant,
    last_used: Instant,
    /// Connections handed out and not yet dropped.
    active: usize,
    /// Closed on purpose until then (handing the file back).
    closed_until: Option<Instant>,
}

impl LeaseState {
    /// Closes the database: every pooled connection, then the root.
    fn close(&mut self) {
        self.pool.clear();
        self.root = None;
    }
}

impl Lease {
    /// A lease on `db`; starts a reaper thread that lives as long as it.
    pub(crate) fn start(db: PathBuf, open: OpenOptions, mode: StoreMode) -> Option<Arc<Lease>> {
        let StoreMode::Held {
            idle,
            max_hold,
            yield_for,
        } = mode
        else {
            return None;
        };
        let now = Instant::now();
        let lease = Arc::new(Lease {
            db,
            open,
            idle,
            max_hold,
            yield_for,
            state: Mutex::new(LeaseState {
                root: None,
                pool: Vec::new(),
                generation: 0,
                opened: now,
                last_used: now,
                active: 0,
                closed_until: None,
            }),
            changed: Condvar::new(),
        });
        let weak = Arc::downgrade(&lease);
        // Without a reaper (spawn failed) the file is still handed back
        // every `max_hold`; nothing else depends on it.
        let _ = std::thread::Builder::new()
            .name("store-lease".into())
            .spawn(move || reap(weak));
        Some(lease)
    }

    fn lock(&self) -> MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection to the leased database, opening it when needed. With
    /// `sync`, it comes after every spooled record is written (see
    /// `world_store::spool`); without, only the spool-aware reads (ledger,
    /// verse links, scores) may be used on it.
    pub(crate) fn acquire(self: &Arc<Self>, sync: bool) -> Result<StoreHandle> {
        let h = self.acquire_unsynced()?;
        if sync {
            h.sync_records()?;
        }
        Ok(h)
    }

    fn acquire_unsynced(self: &Arc<Self>) -> Result<StoreHandle> {
        let mut st = self.lock();
        let mut waited: Option<Instant> = None;
        loop {
            if let Some(until) = st.closed_until {
                let now = Instant::now();
                if now < until {
                    drop(st);
                    std::thread::sleep(until - now);
                    st = self.lock();
                    continue;
                }
                st.closed_until = None;
            }
            if st.root.is_some() && st.opened.elapsed() >= self.max_hold && !self.holding_back(&st)
            {
                if st.active > 0 && waited.get_or_insert_with(Instant::now).elapsed() >= DRAIN_MAX {
                    // Connections are not coming back (a long call, or this
                    // thread holds one itself): hand back next time.
                    st.opened = Instant::now();
                    continue;
                }
                if st.active > 0 {
                    st = self
                        .changed
                        .wait_timeout(st, Duration::from_millis(50))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    continue;
                }
                st.close();
                st.closed_until = Some(Instant::now() + self.yield_for);
                continue;
            }
            if st.root.is_none() {
                let store = Store::open_with(&self.db, &self.open)?;
                st.opened = Instant::now();
                st.generation += 1;
                st.root = Some(store);
            }
            let conn = match st.pool.pop() {
                Some(c) => c,
                None => st.root.as_ref().expect("opened above").try_clone()?,
            };
            st.active += 1;
            return Ok(StoreHandle {
                store: Some(conn),
                lease: Some(self.clone()),
                generation: st.generation,
            });
        }
    }

    /// Whether the records are held back on purpose (the spool's
    /// `writer_delay`, for crash tests) and still pending: then the file
    /// is not handed back, which would write them.
    fn holding_back(&self, st: &LeaseState) -> bool {
        self.open
            .spool
            .as_ref()
            .is_some_and(|o| !o.writer_delay.is_zero())
            && st.root.as_ref().is_some_and(|r| r.records_flowing())
    }

    /// Whether the file is open right now.
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.lock().root.is_some()
    }
}

/// Closes the file after the lease's `idle` without calls; exits with the
/// lease.
fn reap(lease: Weak<Lease>) {
    loop {
        let Some(l) = lease.upgrade() else {
            return;
        };
        let tick = (l.idle / 2).max(Duration::from_millis(10));
        drop(l);
        std::thread::sleep(tick);
        let Some(lease) = lease.upgrade() else {
            return;
        };
        let mut st = lease.lock();
        // Not while the record writer still catches up: closing would wait
        // for it with the lease locked.
        if st.root.is_some()
            && st.active == 0
            && st.last_used.elapsed() >= lease.idle
            && !st.root.as_ref().is_some_and(|r| r.records_flowing())
        {
            st.close();
        }
    }
}

/// A store that closes when dropped (per-call mode).
pub(crate) fn per_call(store: Store) -> StoreHandle {
    StoreHandle {
        store: Some(store),
        lease: None,
        generation: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(dir: &std::path::Path, idle_ms: u64, hold_ms: u64) -> Arc<Lease> {
        Lease::start(
            dir.join("w.duckdb"),
            OpenOptions::default(),
            StoreMode::Held {
                idle: Duration::from_millis(idle_ms),
                max_hold: Duration::from_millis(hold_ms),
                yield_for: Duration::from_millis(20),
            },
        )
        .unwrap()
    }

    #[test]
    fn a_held_store_is_shared_and_closed_when_idle() {
        let dir = tempfile::tempdir().unwrap();
        let l = lease(dir.path(), 50, 60_000);
        let a = l.acquire(true).unwrap();
        let b = l.acquire(true).unwrap();
        a.connection()
            .execute_batch("CREATE TABLE t(x INT); INSERT INTO t VALUES (1)")
            .unwrap();
        let n: i64 = b
            .connection()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "both handles see one database");
        drop((a, b));
        assert!(l.is_open());
        let deadline = Instant::now() + Duration::from_secs(5);
        while l.is_open() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!l.is_open(), "closed after idling");
        // Closed means another process may open it: this one, plainly.
        drop(Store::open(&dir.path().join("w.duckdb")).unwrap());
        assert_eq!(l.lock().active, 0);
    }

    #[test]
    fn a_thread_holding_a_connection_may_take_another_past_max_hold() {
        let dir = tempfile::tempdir().unwrap();
        let l = lease(dir.path(), 60_000, 30);
        let outer = l.acquire(true).unwrap();
        std::thread::sleep(Duration::from_millis(40));
        // Would wait forever for `outer` to come back without DRAIN_MAX.
        let inner = l.acquire(true).unwrap();
        drop((inner, outer));
        assert_eq!(l.lock().active, 0);
    }

    #[test]
    fn a_busy_lease_is_handed_back_and_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let l = lease(dir.path(), 60_000, 30);
        let first = l.acquire(true).unwrap();
        let opened = l.lock().opened;
        drop(first);
        std::thread::sleep(Duration::from_millis(40));
        let again = l.acquire(true).unwrap();
        assert!(l.lock().opened > opened, "reopened after max_hold");
        drop(again);
    }
}
