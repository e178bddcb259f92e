//! The record spool: durable write-behind for a database held open by one
//! long-lived process.
//!
//! DuckDB spends 0.5–2 ms on every statement here, and a verse operation
//! records 10–25 of them; written in line, the records were most of a
//! push_down → run → pull_up cycle. A store opened with a spool
//! ([`OpenOptions::spool`](crate::OpenOptions)) therefore commits a batch
//! of writes in two steps:
//!
//! 1. **Durable, on the caller's thread.** The batch (the rows and
//!    statements of one transaction, as data) is appended as one JSON line
//!    to `<db>.spool` and `fdatasync`ed (≈ 0.1 ms). From here on it is
//!    committed: a crash loses nothing, because whoever opens the database
//!    next replays the spool first ([`replay`]).
//! 2. **Visible, on the writer thread.** One writer per open database
//!    writes the batches in order, together with the last one's id in
//!    `record_spool.last_id` (so replaying twice writes nothing twice),
//!    all that have queued up (up to 64) in one DuckDB transaction (group
//!    commit), empties the file whenever it has caught up, and removes it
//!    when the database is closed.
//!
//! The writer may run in the background ([`SpoolOptions::writer_priority`];
//! the engine gives it nice 19 when running as root): it then only uses CPU
//! time the worlds and the operations on the critical path leave, and is
//! raised back for any group of batches someone is waiting for.
//!
//! What a spooled operation must read before its batch is written comes
//! from memory, never from a stale table: the ledger (the ledger cache, at
//! the journal head counted here), the verse-to-world links and the latest
//! scores ([`Links`], filled from the tables on a miss and kept current by
//! every spooled write). Everything else reads only after [`Spool::sync`]
//! (the engine's ordinary store handles sync when handed out), and every
//! direct write syncs first under the store's write lock, so the tables
//! only ever change in one order.
//!
//! A batch that cannot be appended (an I/O error) is cut off the file
//! again and stops the spool, so an id is never used twice and a batch its
//! caller saw fail is never replayed. A writer that panics counts as
//! failed. A batch the writer cannot write (a bug, a full disk) stops the writer:
//! the batch stays in the spool file, every later sync and append returns
//! the error, and the next opening of the database tries it again (and
//! refuses to open while it fails, naming the file). Timestamps that the
//! tables fill in (`created_at`, `resolved_at`, ...) are the writer's
//! time, normally within milliseconds of the operation.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fs::{File, OpenOptions as FileOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use duckdb::Connection;
use serde::{Deserialize, Serialize};
use world_core::ids::VerseId;

use crate::batch::{SpoolStep, Writes};
use crate::open::lock;
use crate::{Error, Result};

/// How a spooled store writes its records.
#[derive(Clone, Default)]
pub struct SpoolOptions {
    /// Wait this long before writing each group of batches, or until the
    /// spool is closed (crash tests use it to keep batches in the spool;
    /// normally zero). An engine holding records back this way does not
    /// hand its file back while they are pending.
    pub writer_delay: Duration,
    /// Moves the writer thread to the background (`true`: a low CPU
    /// priority) while nobody waits for it, and back (`false`) while
    /// someone does (a sync, a close), so a busy host never starves a
    /// waiting caller.
    pub writer_priority: Option<fn(bool)>,
}

impl SpoolOptions {
    /// The options, with `WORLD_RECORD_DELAY_MS` (0 to 600000; for crash
    /// tests) applied when set.
    pub fn from_env() -> std::result::Result<SpoolOptions, String> {
        let mut o = SpoolOptions::default();
        if let Some(v) = std::env::var_os("WORLD_RECORD_DELAY_MS").filter(|v| !v.is_empty()) {
            let v = v.to_string_lossy();
            let ms: u64 = v
                .trim()
                .parse()
                .ok()
                .filter(|n| *n <= 600_000)
                .ok_or_else(|| {
                    format!("WORLD_RECORD_DELAY_MS={v}: expected milliseconds from 0 to 600000")
                })?;
            o.writer_delay = Duration::from_millis(ms);
        }
        Ok(o)
    }
}

/// One line of the spool file.
#[derive(Serialize, Deserialize)]
struct Line {
    id: u64,
    steps: Vec<SpoolStep>,
}

/// A batch waiting for the writer.
struct Pending {
    id: u64,
    writes: Writes,
}

struct State {
    file: File,
    queue: VecDeque<Pending>,
    /// How many batches the writer is writing.
    in_flight: usize,
    next_id: u64,
    /// The ledger journal's head, counting spooled batches.
    head: u64,
    /// Why the writer stopped, if it failed.
    failed: Option<String>,
    /// Threads waiting for the writer to catch up.
    waiting: usize,
    stop: bool,
}

struct Core {
    path: PathBuf,
    delay: Duration,
    state: Mutex<State>,
    changed: Condvar,
    links: Mutex<Links>,
    /// Called when the spool stops taking batches (the store forgets its
    /// ledger cache, which may hold batches that will not be written now).
    on_fail: Box<dyn Fn() + Send + Sync>,
}

/// The spool of one open database (see the module docs).
pub(crate) struct Spool {
    core: Arc<Core>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SpoolOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolOptions")
            .field("writer_delay", &self.writer_delay)
            .field("writer_priority", &self.writer_priority.is_some())
            .finish()
    }
}

/// The spool file of the database at `db`.
pub fn spool_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".spool");
    db.with_file_name(name)
}

/// An error with its causes, on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Writes batches and the last one's id in one transaction.
fn write_batches(conn: &Connection, batches: Vec<Pending>) -> Result<()> {
    let Some(last) = batches.last().map(|p| p.id) else {
        return Ok(());
    };
    crate::open::transaction(conn, |conn| {
        for p in batches {
            p.writes.flush(conn)?;
        }
        conn.prepare_cached("UPDATE record_spool SET last_id = ?")?
            .execute([last])?;
        Ok(())
    })
}

/// Most batches the writer commits in one transaction.
const GROUP_MAX: usize = 64;

/// Writes every batch of the spool file at `path` that the database does
/// not hold yet, then removes the file. Returns the last batch id written
/// (or seen) and how many batches this wrote. Called when the database is
/// opened, before anything reads it.
pub(crate) fn replay(conn: &Connection, path: &Path) -> Result<(u64, usize)> {
    let last = || -> Result<u64> {
        Ok(conn.query_row("SELECT last_id FROM record_spool", [], |r| r.get(0))?)
    };
    let mut file = match FileOptions::new().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((last()?, 0)),
        Err(e) => return Err(spool_error(path, &e)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| spool_error(path, &e))?;
    let mut seen = last()?;
    let mut written = 0;
    // A line is complete once its newline is written; a crash in the middle
    // of an append leaves an unterminated tail (possibly cut inside a
    // character), which was never acknowledged and is dropped.
    let complete = bytes
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(&bytes[..0], |end| &bytes[..end]);
    for (n, raw) in complete.split(|b| *b == b'\n').enumerate() {
        if raw.is_empty() {
            continue;
        }
        let line: Line = serde_json::from_slice(raw).map_err(|e| Error::Spool {
            path: path.to_path_buf(),
            message: format!("line {} is not a spooled batch: {e}", n + 1),
        })?;
        if line.id <= seen {
            continue;
        }
        let batch = Pending {
            id: line.id,
            writes: Writes::from_spool(line.steps),
        };
        write_batches(conn, vec![batch]).map_err(|e| Error::Spool {
            path: path.to_path_buf(),
            message: format!(
                "batch {} (line {}) cannot be written: {}; move the file aside to open the database without it",
                line.id,
                n + 1,
                chain(&e)
            ),
        })?;
        seen = line.id;
        written += 1;
    }
    // Everything is in the tables (and this opening holds the database):
    // the file has done its work.
    drop(file);
    std::fs::remove_file(path).map_err(|e| spool_error(path, &e))?;
    Ok((seen, written))
}

fn spool_error(path: &Path, e: &std::io::Error) -> Error {
    Error::Spool {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl Spool {
    /// Starts the spool of a freshly opened (and replayed) database: `conn`
    /// becomes the writer's connection, `last_id` is the last batch id the
    /// database holds and `head` its journal head.
    pub(crate) fn start(
        conn: Connection,
        path: PathBuf,
        last_id: u64,
        head: u64,
        opts: &SpoolOptions,
        on_fail: Box<dyn Fn() + Send + Sync>,
    ) -> Result<Spool> {
        let file = FileOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| spool_error(&path, &e))?;
        let core = Arc::new(Core {
            path,
            delay: opts.writer_delay,
            state: Mutex::new(State {
                file,
                queue: VecDeque::new(),
                in_flight: 0,
                next_id: last_id + 1,
                head,
                failed: None,
                waiting: 0,
                stop: false,
            }),
            changed: Condvar::new(),
            links: Mutex::new(Links::default()),
            on_fail,
        });
        let c = core.clone();
        let priority = opts.writer_priority;
        let writer = std::thread::Builder::new()
            .name("record-writer".into())
            .spawn(move || write_loop(&c, conn, priority))
            .map_err(|e| spool_error(&core.path, &e))?;
        Ok(Spool {
            core,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The ledger journal's head, counting spooled batches.
    pub(crate) fn head(&self) -> u64 {
        lock(&self.core.state).head
    }

    /// Commits `writes` (which append `journal_rows` rows to the ledger
    /// journal): durable when this returns, written to the tables later.
    pub(crate) fn append(&self, writes: Writes, journal_rows: u64) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let steps = writes.to_spool()?;
        let mut st = lock(&self.core.state);
        if let Some(why) = &st.failed {
            return Err(self.failed(why));
        }
        let id = st.next_id;
        let mut line = serde_json::to_string(&Line { id, steps })?;
        line.push('\n');
        let path = &self.core.path;
        let before = st.file.metadata().map(|m| m.len());
        let written = st
            .file
            .write_all(line.as_bytes())
            .and_then(|()| st.file.sync_data());
        if let Err(e) = written {
            // The caller is told the batch failed (and undoes its work), so
            // it must not be replayed: cut it off again. Either way this
            // spool takes no more batches (an id is never used twice).
            let cut =
                before.and_then(|len| st.file.set_len(len).and_then(|()| st.file.sync_data()));
            st.failed = Some(match cut {
                Ok(()) => format!("appending batch {id} failed: {e}"),
                Err(c) => format!(
                    "appending batch {id} failed: {e}, and cutting it off failed: {c} (a replay may write it)"
                ),
            });
            drop(st);
            (self.core.on_fail)();
            self.core.changed.notify_all();
            return Err(spool_error(path, &e));
        }
        st.next_id += 1;
        st.head += journal_rows;
        st.queue.push_back(Pending { id, writes });
        drop(st);
        self.core.changed.notify_all();
        Ok(())
    }

    /// Waits until every spooled batch is in the tables (or the writer has
    /// failed, which is returned).
    pub(crate) fn sync(&self) -> Result<()> {
        let mut st = lock(&self.core.state);
        loop {
            if let Some(why) = &st.failed {
                return Err(self.failed(why));
            }
            if st.queue.is_empty() && st.in_flight == 0 {
                return Ok(());
            }
            st.waiting += 1;
            self.core.changed.notify_all();
            st = self
                .core
                .changed
                .wait(st)
                .unwrap_or_else(|p| p.into_inner());
            st.waiting -= 1;
        }
    }

    /// How many batches wait for the writer (including the one it writes).
    pub(crate) fn pending(&self) -> usize {
        let st = lock(&self.core.state);
        st.queue.len() + st.in_flight
    }

    /// Whether the spool has stopped (its writer failed).
    pub(crate) fn has_failed(&self) -> bool {
        lock(&self.core.state).failed.is_some()
    }

    fn failed(&self, why: &str) -> Error {
        Error::Spool {
            path: self.core.path.clone(),
            message: format!("the record writer stopped: {why}; the batch is kept in the spool and is retried when the database is next opened"),
        }
    }

    /// The verse-to-world links and scores known in memory.
    pub(crate) fn links(&self) -> MutexGuard<'_, Links> {
        lock(&self.core.links)
    }
}

impl Drop for Spool {
    /// Writes what is spooled, then stops the writer (closing its
    /// connection).
    fn drop(&mut self) {
        lock(&self.core.state).stop = true;
        self.core.changed.notify_all();
        if let Some(w) = lock(&self.writer).take() {
            let _ = w.join();
        }
    }
}

fn write_loop(core: &Core, conn: Connection, priority: Option<fn(bool)>) {
    let mut background = false;
    loop {
        let mut st = lock(&core.state);
        while st.queue.is_empty() && !st.stop {
            st = core.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        // In the background unless someone waits for this group.
        let want = st.waiting == 0 && !st.stop;
        if let Some(set) = priority.filter(|_| want != background) {
            set(want);
            background = want;
        }
        if st.failed.is_some() {
            // Keep the failed batch (and those after it) in the file.
            return;
        }
        if st.queue.is_empty() {
            // Stopping, and everything is written: remove the (empty) file
            // while this connection still holds the database, so no other
            // process can have started a spool of its own there.
            if st.file.metadata().is_ok_and(|m| m.len() == 0) {
                let _ = std::fs::remove_file(&core.path);
            }
            return;
        }
        // Group commit: whatever has queued up goes in one transaction.
        let n = st.queue.len().min(GROUP_MAX);
        let group: Vec<Pending> = st.queue.drain(..n).collect();
        let ids = (group[0].id, group[n - 1].id);
        st.in_flight = n;
        if !core.delay.is_zero() {
            // Held back (crash tests), until the delay passes or the spool
            // is closed.
            let until = std::time::Instant::now() + core.delay;
            while !st.stop {
                let now = std::time::Instant::now();
                if now >= until {
                    break;
                }
                st = core
                    .changed
                    .wait_timeout(st, until - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        drop(st);
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write_batches(&conn, group)))
                .unwrap_or_else(|_| Err(Error::Corrupt("the record writer panicked".into())));
        let mut st = lock(&core.state);
        st.in_flight = 0;
        match r {
            Ok(()) => {
                if st.queue.is_empty() {
                    // Caught up: every line of the file is in the tables.
                    // (Not fsynced: if this is lost, replay skips the
                    // lines by their ids.)
                    let _ = st.file.set_len(0);
                }
            }
            Err(e) => st.failed = Some(format!("batches {} to {}: {}", ids.0, ids.1, chain(&e))),
        }
        let failed = st.failed.is_some();
        drop(st);
        if failed {
            (core.on_fail)();
        }
        core.changed.notify_all();
    }
}

/// Verse-to-world links and latest scores, as far as this opening knows
/// them. An entry, once present, is current: it came from the tables (when
/// only this process could write them) or from a spooled write since.
#[derive(Default)]
pub(crate) struct Links {
    /// Each known verse's link: its world and snapshot, or none.
    verse: HashMap<VerseId, Option<(String, Option<String>)>>,
    /// For some worlds, every verse linked to them.
    world: HashMap<String, BTreeSet<VerseId>>,
    /// Each known verse's latest recorded score.
    score: HashMap<VerseId, Option<f64>>,
}

impl Links {
    /// The link of `v`, if known (`Some(None)`: known to have none).
    pub(crate) fn get(&self, v: VerseId) -> Option<Option<(String, Option<String>)>> {
        self.verse.get(&v).cloned()
    }

    /// Remembers `v`'s link as read from the tables.
    pub(crate) fn learn(&mut self, v: VerseId, link: Option<(String, Option<String>)>) {
        self.verse.entry(v).or_insert(link);
    }

    /// Links `v` to `world` (replacing any link it had).
    pub(crate) fn link(&mut self, v: VerseId, world: &str, snapshot: Option<&str>) {
        if let Some(Some((old, _))) = self.verse.get(&v) {
            if let Some(set) = self.world.get_mut(old) {
                set.remove(&v);
            }
        }
        self.verse
            .insert(v, Some((world.to_string(), snapshot.map(str::to_string))));
        if let Some(set) = self.world.get_mut(world) {
            set.insert(v);
        }
    }

    /// Notes that `world` is new: no verse is linked to it yet.
    pub(crate) fn new_world(&mut self, world: &str) {
        self.world.insert(world.to_string(), BTreeSet::new());
    }

    /// Every verse linked to `world`, if known.
    pub(crate) fn verses_of(&self, world: &str) -> Option<BTreeSet<VerseId>> {
        self.world.get(world).cloned()
    }

    /// Remembers every verse linked to `world`, given the verses the tables
    /// link to it (whose links must be known by now): those still linked
    /// to it, and any linked to it since.
    pub(crate) fn learn_world(
        &mut self,
        world: &str,
        from_tables: &[VerseId],
    ) -> BTreeSet<VerseId> {
        let mut set: BTreeSet<VerseId> = from_tables
            .iter()
            .copied()
            .filter(|v| matches!(self.verse.get(v), Some(Some((w, _))) if w == world))
            .collect();
        set.extend(
            self.verse
                .iter()
                .filter(|(_, l)| matches!(l, Some((w, _)) if w == world))
                .map(|(v, _)| *v),
        );
        self.world.insert(world.to_string(), set.clone());
        set
    }

    /// The latest score of `v`, if known.
    pub(crate) fn score(&self, v: VerseId) -> Option<Option<f64>> {
        self.score.get(&v).copied()
    }

    /// Remembers `v`'s latest score as read from the tables.
    pub(crate) fn learn_score(&mut self, v: VerseId, score: Option<f64>) {
        self.score.entry(v).or_insert(score);
    }

    /// Notes a new run of `v` that reported `score`.
    pub(crate) fn ran(&mut self, v: VerseId, score: Option<f64>) {
        if let Some(s) = score {
            self.score.insert(v, Some(s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_follow_relinks_and_new_worlds() {
        let (a, b) = (VerseId(1), VerseId(2));
        let mut l = Links::default();
        l.new_world("w1");
        l.link(a, "w1", None);
        assert_eq!(l.verses_of("w1").unwrap().len(), 1);
        // The tables (stale) still say b runs in w1, but b moved since.
        l.link(b, "w2", Some("s"));
        assert_eq!(l.learn_world("w0", &[b]), BTreeSet::new());
        l.link(a, "w2", None);
        assert!(l.verses_of("w1").unwrap().is_empty());
        assert_eq!(l.learn_world("w2", &[]), [a, b].into_iter().collect());
        l.learn(a, None);
        assert_eq!(
            l.get(a),
            Some(Some(("w2".into(), None))),
            "learn never overrides"
        );
        l.learn_score(a, Some(1.0));
        l.ran(a, None);
        assert_eq!(l.score(a), Some(Some(1.0)));
        l.ran(a, Some(2.0));
        assert_eq!(l.score(a), Some(Some(2.0)));
    }
}
