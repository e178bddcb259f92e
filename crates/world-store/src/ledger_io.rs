//! Loading the verse ledger from the database and committing operations.
//!
//! The ledger's state lives in `verses`, `partitions` and `balances`; every
//! committed operation is also a row of the append-only `ledger_journal`.
//! [`Store::apply`] loads the state, applies a batch in memory with
//! `world_core` (which validates every operation), and writes the journal
//! rows, the changed balances and the tree changes in **one** transaction. A
//! batch with a failing operation writes nothing. Replaying the journal into
//! an empty ledger ([`Store::replay_journal`]) must give the stored state:
//! the durability test checks exactly that after `kill -9`.

use std::collections::BTreeMap;
use std::time::Instant;

use duckdb::types::Value;
use duckdb::{params, Connection};
use serde::Serialize;
use world_core::ids::{Owner, PartitionId, Token, VerseId};
use world_core::ledger::{Applied, BalanceKey, Effect, Ledger, Op};
use world_core::prob::Prob;
use world_core::trit::Trit;
use world_core::verse::{Partition, PartitionStatus, Verse, VerseStatus};
use world_core::wev::{GameSense, WevReport};

use crate::batch::{opt_f64, opt_text, text, Writes};
use crate::{records, Error, Result, Store};

/// Extra facts recorded with a resolution.
#[derive(Debug, Clone, Default)]
pub struct ResolutionMeta {
    /// Price of anarchy and WEV measured for the resolved partition.
    pub wev: Option<(WevReport, GameSense)>,
    /// Time the whole pull-up took, when the caller measured it (otherwise
    /// the store's own commit time is recorded).
    pub pull_up_time_ms: Option<f64>,
}

/// One journal row, as stored.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct JournalRow {
    /// Commit order, from 1.
    pub seq: u64,
    /// Operation kind.
    pub op: String,
    /// The operation as JSON.
    pub op_json: String,
    /// Its effect as JSON.
    pub effect_json: String,
    /// When it was applied.
    pub applied_at: String,
}

/// The id of the resolution row recorded for a partition.
pub fn resolution_id(partition: PartitionId) -> String {
    format!("r-{partition}")
}

impl Store {
    /// Loads the whole ledger (tree and balances), from the ledger cache
    /// when the journal has not moved since it was filled.
    pub fn load_ledger(&self) -> Result<Ledger> {
        if let Some(sp) = self.spool() {
            // Only this process writes the file while it holds it, and the
            // spool counts the journal's head.
            if let Some(l) = self.cached_ledger(sp.head()) {
                return Ok(l);
            }
            let _write = self.write_lock();
            // A spooled commit may have filled the cache meanwhile.
            if let Some(l) = self.cached_ledger(sp.head()) {
                return Ok(l);
            }
            sp.sync()?;
            let l = load(&self.conn)?;
            self.cache_ledger(sp.head(), l.clone());
            return Ok(l);
        }
        self.in_read_transaction(|conn| {
            let seq = journal_head(conn)?;
            if let Some(l) = self.cached_ledger(seq) {
                return Ok(l);
            }
            let l = load(conn)?;
            self.cache_ledger(seq, l.clone());
            Ok(l)
        })
    }

    /// Loads the ledger from its tables, bypassing the cache.
    pub fn load_ledger_uncached(&self) -> Result<Ledger> {
        load(&self.conn)
    }

    /// Applies `ops` in order as one all-or-nothing batch and commits it.
    ///
    /// On the first refused operation nothing is written and its error is
    /// returned (wrapped with its index when the batch has several).
    pub fn apply(&self, ops: &[Op]) -> Result<Vec<Applied>> {
        self.apply_with(ops, &ResolutionMeta::default())
    }

    /// Like [`Store::apply`], recording `meta` with any resolution in the batch.
    pub fn apply_with(&self, ops: &[Op], meta: &ResolutionMeta) -> Result<Vec<Applied>> {
        self.apply_and(ops, meta, |_, _, _| Ok(()), |_, _| {})
    }

    /// Applies `ops`, then lets `extra` add writes given the new ledger and
    /// the effects; everything commits in one transaction. `committed`
    /// runs once it has (with a spool, still under the write lock, so the
    /// in-memory links it updates move with the ledger).
    pub(crate) fn apply_and(
        &self,
        ops: &[Op],
        meta: &ResolutionMeta,
        extra: impl FnOnce(&mut Writes, &Ledger, &[Applied]) -> Result<()>,
        committed: impl FnOnce(&Store, &[Applied]),
    ) -> Result<Vec<Applied>> {
        if self.spool().is_some() {
            let (_, r) = self.spooled(
                ops,
                meta,
                |w, ledger, applied| {
                    extra(w, ledger, applied)?;
                    Ok(|| ())
                },
                |_, _| Ok(()),
                committed,
            );
            return r;
        }
        let r = self.transact(ops, meta, |conn, mut w, ledger, applied| {
            extra(&mut w, ledger, applied)?;
            w.flush(conn)
        });
        if let Ok(applied) = &r {
            committed(self, applied);
        }
        r
    }

    /// [`Store::apply_during`] with a record spool: the batch is validated
    /// against the cached ledger at the spool's journal head, its rows are
    /// gathered (`early`, which also gives the work to run), the work runs,
    /// `late` completes the rows, and the whole is appended to the spool
    /// (durable) instead of written in line. A refusal, a failing `late`
    /// or a failing append spools nothing.
    fn spooled<T, D: FnOnce() -> T>(
        &self,
        ops: &[Op],
        meta: &ResolutionMeta,
        early: impl FnOnce(&mut Writes, &Ledger, &[Applied]) -> Result<D>,
        late: impl FnOnce(&mut Writes, &T) -> Result<()>,
        committed: impl FnOnce(&Store, &[Applied]),
    ) -> (Option<T>, Result<Vec<Applied>>) {
        let start = Instant::now();
        let sp = self.spool().expect("spooled() needs a spool");
        let _write = self.write_lock();
        let head = sp.head();
        let mut ledger = match self.cached_ledger(head) {
            Some(l) => l,
            None => {
                let loaded = sp.sync().and_then(|()| load(&self.conn));
                match loaded {
                    Ok(l) => {
                        self.cache_ledger(head, l.clone());
                        l
                    }
                    Err(e) => return (None, Err(e)),
                }
            }
        };
        let (applied, mut w) = match self.plan(None, head, &mut ledger, ops, meta, start) {
            Ok(x) => x,
            Err(e) => return (None, Err(e)),
        };
        let work = match early(&mut w, &ledger, &applied) {
            Ok(work) => work,
            Err(e) => return (None, Err(e)),
        };
        let t = work();
        let r = late(&mut w, &t).and_then(|()| sp.append(w, ops.len() as u64));
        match r {
            Ok(()) => {
                self.cache_ledger(head + ops.len() as u64, ledger);
                committed(self, &applied);
                (Some(t), Ok(applied))
            }
            Err(e) => (Some(t), Err(e)),
        }
    }

    /// Like [`Store::apply_and`], running `during` on another thread while
    /// the transaction writes its rows, so that slow work the records
    /// describe (a branch) and the writing overlap:
    ///
    /// 1. the batch is validated; a refusal returns `(None, Err)` and
    ///    `during` never runs;
    /// 2. `during` starts; meanwhile the rows (from the batch and `early`)
    ///    are written, except the inserts into the tables named in `hold`;
    /// 3. when `during` is done, `late` sees its result and completes the
    ///    held rows (or fails, e.g. because `during` did), and the
    ///    transaction commits.
    ///
    /// `during`'s result is returned whatever happens to the transaction,
    /// so the caller can undo the work when the commit failed. `committed`
    /// as in [`Store::apply_and`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply_during<T: Send>(
        &self,
        ops: &[Op],
        meta: &ResolutionMeta,
        during: impl FnOnce() -> T + Send,
        early: impl FnOnce(&mut Writes, &Ledger, &[Applied]) -> Result<()>,
        hold: &[&'static str],
        late: impl FnOnce(&mut Writes, &T) -> Result<()>,
        committed: impl FnOnce(&Store, &[Applied]),
    ) -> (Option<T>, Result<Vec<Applied>>) {
        if self.spool().is_some() {
            return self.spooled(
                ops,
                meta,
                |w, ledger, applied| {
                    early(w, ledger, applied)?;
                    Ok(during)
                },
                late,
                committed,
            );
        }
        let mut outcome: Option<T> = None;
        let result = self.transact(ops, meta, |conn, mut w, ledger, applied| {
            early(&mut w, ledger, applied)?;
            let mut later = w.split_off(hold);
            let (t, written) = std::thread::scope(|s| {
                let worker = s.spawn(during);
                let written = w.flush(conn);
                match worker.join() {
                    Ok(t) => (t, written),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            });
            let t = outcome.insert(t);
            written?;
            late(&mut later, t)?;
            later.flush(conn)
        });
        if let Ok(applied) = &result {
            committed(self, applied);
        }
        (outcome, result)
    }

    /// One ledger transaction: takes the ledger (cached or loaded),
    /// applies `ops` (a refusal writes nothing), gathers the batch's rows,
    /// lets `write` add to and write them, commits, and caches the new
    /// ledger.
    fn transact(
        &self,
        ops: &[Op],
        meta: &ResolutionMeta,
        write: impl FnOnce(&Connection, Writes, &Ledger, &[Applied]) -> Result<()>,
    ) -> Result<Vec<Applied>> {
        let start = Instant::now();
        let committed = self.in_transaction(|conn| {
            let head = journal_head(conn)?;
            let mut ledger = match self.cached_ledger(head) {
                Some(l) => l,
                None => {
                    // The cache holds the state before the batch for the
                    // rest of the transaction (the write lock is held).
                    let l = load(conn)?;
                    self.cache_ledger(head, l.clone());
                    l
                }
            };
            let (applied, w) = self.plan(Some(conn), head, &mut ledger, ops, meta, start)?;
            write(conn, w, &ledger, &applied)?;
            Ok((head + ops.len() as u64, ledger, applied))
        });
        match committed {
            Ok((head, ledger, applied)) => {
                self.cache_ledger(head, ledger);
                Ok(applied)
            }
            Err(e) => {
                // A failed commit may have left the cache and the file apart.
                if !matches!(e, Error::BatchOp { .. } | Error::Ledger(_)) {
                    self.forget_ledger();
                }
                Err(e)
            }
        }
    }

    /// Applies `ops` to `ledger` (the state at journal position `head`;
    /// the first refusal is the error) and gathers the batch's rows. With
    /// `conn` large batches may stream through DuckDB's appender; without
    /// (a spooled batch) every row stays data.
    fn plan(
        &self,
        conn: Option<&Connection>,
        head: u64,
        ledger: &mut Ledger,
        ops: &[Op],
        meta: &ResolutionMeta,
        start: Instant,
    ) -> Result<(Vec<Applied>, Writes)> {
        let mut applied = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            match ledger.apply(op) {
                Ok(a) => applied.push(a),
                Err(source) if ops.len() > 1 => return Err(Error::BatchOp { index, source }),
                Err(e) => return Err(e.into()),
            }
        }
        let mut w = Writes::default();
        let existed = |k: &BalanceKey| self.cached_balance(head, k).is_none_or(|v| v > 0);
        persist(
            conn,
            &mut w,
            head + 1,
            ledger,
            &existed,
            ops,
            &applied,
            meta,
            start,
        )?;
        Ok((applied, w))
    }

    /// Rebuilds a ledger by replaying the journal from an empty one.
    pub fn replay_journal(&self) -> Result<Ledger> {
        let mut ledger = Ledger::new();
        let mut stmt = self
            .conn
            .prepare("SELECT seq, op_json FROM ledger_journal ORDER BY seq")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (seq, json) = row?;
            let op: Op = serde_json::from_str(&json)?;
            ledger
                .apply(&op)
                .map_err(|e| Error::Corrupt(format!("journal row {seq} does not replay: {e}")))?;
        }
        Ok(ledger)
    }

    /// The last `limit` journal rows, oldest first.
    pub fn journal(&self, limit: usize) -> Result<Vec<JournalRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT * FROM (SELECT seq, op, op_json, effect_json, CAST(applied_at AS VARCHAR)
             FROM ledger_journal ORDER BY seq DESC LIMIT ?) ORDER BY seq",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(JournalRow {
                seq: r.get(0)?,
                op: r.get(1)?,
                op_json: r.get(2)?,
                effect_json: r.get(3)?,
                applied_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Number of committed journal rows.
    pub fn journal_len(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM ledger_journal", [], |r| r.get(0))?)
    }
}

fn status_str(s: &VerseStatus) -> &'static str {
    match s {
        VerseStatus::Live => "live",
        VerseStatus::Evaporated => "evaporated",
    }
}

fn parse_id<T: std::str::FromStr>(s: &str, what: &str) -> Result<T> {
    s.parse()
        .map_err(|_| Error::Corrupt(format!("bad {what} id {s:?}")))
}

fn list_strings(v: duckdb::types::Value) -> Result<Vec<String>> {
    match v {
        duckdb::types::Value::List(items) => items
            .into_iter()
            .map(|i| match i {
                duckdb::types::Value::Text(s) => Ok(s),
                other => Err(Error::Corrupt(format!(
                    "expected text in list, got {other:?}"
                ))),
            })
            .collect(),
        duckdb::types::Value::Null => Ok(Vec::new()),
        other => Err(Error::Corrupt(format!("expected a list, got {other:?}"))),
    }
}

/// SQL for one `VARCHAR[]` parameter bound as the text [`text_list`] makes.
///
/// DuckDB's C API before 2.0 cannot bind list parameters ("binding List
/// parameters is not yet supported"), so a list travels as one text: each
/// item preceded by U+001F (unit separator). `string_split` cuts it at every
/// separator, giving an empty first item that `[2:]` drops; an empty list
/// is the empty text (`['']` sliced to `[]`). Ids never hold U+001F.
macro_rules! varchar_list_param {
    () => {
        "string_split(?, chr(31))[2:]"
    };
}
pub(crate) use varchar_list_param;

/// Encodes a list of strings for a [`varchar_list_param!`] parameter.
///
/// The items are ids (names validated by `world-core`), which never hold
/// U+001F; an item that did would be split in two, so one is refused.
pub(crate) fn text_list(items: impl IntoIterator<Item = String>) -> Result<duckdb::types::Value> {
    let mut out = String::new();
    for item in items {
        if item.contains(LIST_SEPARATOR) {
            return Err(Error::Corrupt(format!(
                "list item {item:?} holds the list separator U+001F"
            )));
        }
        out.push(LIST_SEPARATOR);
        out.push_str(&item);
    }
    Ok(duckdb::types::Value::Text(out))
}

/// The separator [`text_list`] puts before each item.
const LIST_SEPARATOR: char = '\u{1f}';

fn load(conn: &Connection) -> Result<Ledger> {
    let mut partitions: Vec<Partition> = Vec::new();
    {
        let mut stmt = conn.prepare(
            "SELECT partition_id, parent_verse, children, gf3_sum, status, winner
             FROM partitions ORDER BY num",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, duckdb::types::Value>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })?;
        for row in rows {
            let (id, parent, children, gf3_sum, status, winner) = row?;
            let children = list_strings(children)?
                .iter()
                .map(|c| parse_id::<VerseId>(c, "verse"))
                .collect::<Result<Vec<_>>>()?;
            let status = match (status.as_str(), winner) {
                ("open", _) => PartitionStatus::Open,
                ("resolved", Some(w)) => PartitionStatus::Resolved {
                    winner: parse_id(&w, "verse")?,
                },
                (s, w) => {
                    return Err(Error::Corrupt(format!(
                        "partition {id}: status {s} winner {w:?}"
                    )))
                }
            };
            partitions.push(Partition {
                id: parse_id(&id, "partition")?,
                parent: parse_id(&parent, "verse")?,
                children,
                gf3_sum,
                status,
            });
        }
    }
    let mut by_parent: BTreeMap<VerseId, Vec<PartitionId>> = BTreeMap::new();
    for p in &partitions {
        by_parent.entry(p.parent).or_default().push(p.id);
    }
    let mut verses: Vec<Verse> = Vec::new();
    {
        let mut stmt = conn.prepare(
            "SELECT verse_id, name, parent_verse, parent_partition, child_index, cond_prob, trit, seed, status
             FROM verses ORDER BY num",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, u64>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, u64>(7)?,
                r.get::<_, String>(8)?,
            ))
        })?;
        for row in rows {
            let (id, name, parent, parent_partition, index, prob, trit, seed, status) = row?;
            let id: VerseId = parse_id(&id, "verse")?;
            verses.push(Verse {
                id,
                name,
                parent: parent.map(|p| parse_id(&p, "verse")).transpose()?,
                parent_partition: parent_partition
                    .map(|p| parse_id(&p, "partition"))
                    .transpose()?,
                index,
                prob: Prob::new(prob).map_err(|e| Error::Corrupt(format!("verse {id}: {e}")))?,
                trit: trit
                    .map(Trit::try_from)
                    .transpose()
                    .map_err(|e| Error::Corrupt(format!("verse {id}: {e}")))?,
                seed,
                status: match status.as_str() {
                    "live" => VerseStatus::Live,
                    "evaporated" => VerseStatus::Evaporated,
                    s => return Err(Error::Corrupt(format!("verse {id}: status {s}"))),
                },
                partitions: by_parent.remove(&id).unwrap_or_default(),
            });
        }
    }
    let tree = world_core::verse::VerseTree::from_parts(verses, partitions)
        .map_err(|e| Error::Corrupt(e.to_string()))?;
    let mut balances = Vec::new();
    {
        let mut stmt = conn.prepare("SELECT token, verse_id, owner, amount FROM balances")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u64>(3)?,
            ))
        })?;
        for row in rows {
            let (token, verse, owner, amount) = row?;
            let key = BalanceKey {
                token: Token::new(&token).map_err(|e| Error::Corrupt(e.to_string()))?,
                verse: parse_id(&verse, "verse")?,
                owner: Owner::new(&owner).map_err(|e| Error::Corrupt(e.to_string()))?,
            };
            balances.push((key, amount));
        }
    }
    Ledger::from_parts(tree, balances).map_err(|e| Error::Corrupt(e.to_string()))
}

/// The journal's position: its largest seq (0 when empty).
pub(crate) fn journal_head(conn: &Connection) -> Result<u64> {
    Ok(conn.query_row(
        "SELECT coalesce(max(seq), 0) FROM ledger_journal",
        [],
        |r| r.get(0),
    )?)
}

/// The push_down branch row, as a [`Writes`] step head and row.
pub(crate) const BRANCH_HEAD: &str = "world_branches \
     (branch_id, parent_entity_id, child_entity_ids, branch_type, gf3_sum, snapshot_time_ms)";
/// One push_down branch row's placeholders.
pub(crate) const BRANCH_ROW: &str =
    concat!("(?, ?, ", varchar_list_param!(), ", 'push_down', ?, ?)");
/// Column index of `snapshot_time_ms` in [`BRANCH_ROW`].
pub(crate) const BRANCH_SNAPSHOT_MS_COL: usize = 4;

/// Above this many journal rows or balance cells, a commit streams them
/// through DuckDB's appender instead of multi-row statements.
const BULK: usize = 64;

/// Writes a committed batch: journal rows, changed balances, tree changes
/// and the seed tables. `existed` says whether a balance cell held a value
/// before the batch (so it is updated or deleted, not inserted).
#[allow(clippy::too_many_arguments)]
fn persist(
    conn: Option<&Connection>,
    w: &mut Writes,
    next_seq: u64,
    ledger: &Ledger,
    existed: &dyn Fn(&BalanceKey) -> bool,
    ops: &[Op],
    applied: &[Applied],
    meta: &ResolutionMeta,
    start: Instant,
) -> Result<()> {
    // 1. Journal rows, appended. (A spooled batch, `conn` None, is data:
    // no appender, only multi-row statements.)
    if let Some(conn) = conn.filter(|_| ops.len() > BULK) {
        let mut app =
            conn.appender_with_columns("ledger_journal", &["seq", "op", "op_json", "effect_json"])?;
        for (i, (op, a)) in ops.iter().zip(applied).enumerate() {
            app.append_row(params![
                next_seq + i as u64,
                op.kind(),
                serde_json::to_string(op)?,
                serde_json::to_string(&a.effect)?
            ])?;
        }
        app.flush()?;
    } else {
        for (i, (op, a)) in ops.iter().zip(applied).enumerate() {
            w.insert(
                "ledger_journal (seq, op, op_json, effect_json)",
                "(?, ?, ?, ?)",
                vec![
                    Value::UBigInt(next_seq + i as u64),
                    text(op.kind()),
                    text(serde_json::to_string(op)?),
                    text(serde_json::to_string(&a.effect)?),
                ],
            );
        }
    }
    // 2. Balances: the last value written to each cell wins.
    let mut cells: BTreeMap<&BalanceKey, u64> = BTreeMap::new();
    for a in applied {
        for (k, v) in &a.balance_writes {
            cells.insert(k, *v);
        }
    }
    if let Some(conn) = conn.filter(|_| cells.len() > BULK) {
        conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS balance_stage (token VARCHAR, verse_id VARCHAR, owner VARCHAR, amount UBIGINT);
             DELETE FROM balance_stage;",
        )?;
        {
            let mut app = conn.appender("balance_stage")?;
            for (k, v) in &cells {
                app.append_row(params![
                    k.token.as_str(),
                    k.verse.to_string(),
                    k.owner.as_str(),
                    *v
                ])?;
            }
            app.flush()?;
        }
        conn.execute_batch(
            "INSERT INTO balances SELECT * FROM balance_stage WHERE amount > 0
               ON CONFLICT DO UPDATE SET amount = excluded.amount;
             DELETE FROM balances b USING balance_stage s
               WHERE s.amount = 0 AND b.token = s.token AND b.verse_id = s.verse_id AND b.owner = s.owner;",
        )?;
    } else if !cells.is_empty() {
        // Cells that held a value are deleted (emptied or changed); cells
        // with a value now are inserted. No upserts: DuckDB's are slow.
        let mut gone = Vec::new();
        for (k, v) in &cells {
            if existed(k) {
                gone.extend([
                    text(k.token.as_str()),
                    text(k.verse.to_string()),
                    text(k.owner.as_str()),
                ]);
            }
            if *v > 0 {
                w.insert(
                    "balances (token, verse_id, owner, amount)",
                    "(?, ?, ?, ?)",
                    vec![
                        text(k.token.as_str()),
                        text(k.verse.to_string()),
                        text(k.owner.as_str()),
                        Value::UBigInt(*v),
                    ],
                );
            }
        }
        // The deletes must run before the inserts of the same keys.
        for chunk in gone.chunks(3 * 256) {
            let tuples = vec!["(?, ?, ?)"; chunk.len() / 3].join(", ");
            w.exec_first(
                format!(
                    "DELETE FROM balances b USING (VALUES {tuples}) v(t, vv, o)
                     WHERE b.token = v.t AND b.verse_id = v.vv AND b.owner = v.o"
                ),
                chunk.to_vec(),
            );
        }
    }
    // 3. Tree changes and the seed tables.
    let elapsed_ms = || start.elapsed().as_secs_f64() * 1000.0;
    for (op, a) in ops.iter().zip(applied) {
        match &a.effect {
            Effect::RootCreated { verse } => insert_verse(w, ledger, *verse)?,
            Effect::Partitioned {
                partition,
                children,
                gf3_sum,
            } => {
                let p = ledger.tree().partition_info(*partition)?;
                for c in children {
                    insert_verse(w, ledger, *c)?;
                }
                w.insert(
                    "partitions (partition_id, num, parent_verse, children, gf3_sum, status)",
                    concat!("(?, ?, ?, ", varchar_list_param!(), ", ?, 'open')"),
                    vec![
                        text(partition.to_string()),
                        Value::UBigInt(partition.0),
                        text(p.parent.to_string()),
                        text_list(children.iter().map(|c| c.to_string()))?,
                        Value::BigInt(*gf3_sum),
                    ],
                );
                w.insert(
                    BRANCH_HEAD,
                    BRANCH_ROW,
                    vec![
                        text(partition.to_string()),
                        text(p.parent.to_string()),
                        text_list(children.iter().map(|c| c.to_string()))?,
                        Value::BigInt(*gf3_sum),
                        Value::Null,
                    ],
                );
                records::metric_row(
                    w,
                    &p.parent.to_string(),
                    [None, None, Some(elapsed_ms()), None],
                );
            }
            Effect::Moved => {}
            Effect::Resolved {
                evaporated,
                evaporated_value,
            } => {
                let Op::Resolve {
                    partition,
                    winner,
                    oracle_source,
                } = op
                else {
                    return Err(Error::Corrupt(
                        "resolution effect from a non-resolve op".into(),
                    ));
                };
                record_resolution(
                    w,
                    ledger,
                    *partition,
                    *winner,
                    oracle_source,
                    evaporated,
                    evaporated_value,
                    meta,
                    elapsed_ms(),
                )?;
            }
        }
    }
    let kind = if ops.len() == 1 {
        ops[0].kind()
    } else {
        "ledger_batch"
    };
    records::timing_row(w, kind, None, elapsed_ms());
    Ok(())
}

fn insert_verse(w: &mut Writes, ledger: &Ledger, id: VerseId) -> Result<()> {
    let v = ledger.tree().verse(id)?;
    let trit = v.trit.map(|t| Value::Int(t.value() as i32));
    w.insert(
        "verses (verse_id, num, name, parent_verse, parent_partition, child_index, cond_prob, trit, seed, status)",
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            text(id.to_string()),
            Value::UBigInt(id.0),
            text(v.name.clone()),
            opt_text(v.parent.map(|p| p.to_string())),
            opt_text(v.parent_partition.map(|p| p.to_string())),
            Value::UInt(v.index),
            Value::UBigInt(v.prob.raw()),
            trit.clone().unwrap_or(Value::Null),
            Value::UBigInt(v.seed),
            text(status_str(&v.status)),
        ],
    );
    records::entity_row(
        w,
        &crate::NewEntity {
            entity_id: id.to_string(),
            entity_type: "verse".into(),
            parent_id: v.parent.map(|p| p.to_string()),
            trit: v.trit.map(|t| t.value()),
            state: world_core::lifecycle::State::Running,
            ..Default::default()
        },
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn record_resolution(
    w: &mut Writes,
    ledger: &Ledger,
    partition: PartitionId,
    winner: VerseId,
    oracle_source: &str,
    evaporated: &[VerseId],
    evaporated_value: &BTreeMap<Token, u128>,
    meta: &ResolutionMeta,
    store_ms: f64,
) -> Result<()> {
    let p = ledger.tree().partition_info(partition)?;
    let rid = resolution_id(partition);
    w.exec(
        "UPDATE partitions SET status = 'resolved', winner = ?, resolved_at = now()
         WHERE partition_id = ?",
        vec![text(winner.to_string()), text(partition.to_string())],
    );
    if !evaporated.is_empty() {
        for v in evaporated {
            w.exec(
                "UPDATE verses SET status = 'evaporated', evaporated_at = now() WHERE verse_id = ?",
                vec![text(v.to_string())],
            );
        }
        w.collapse(evaporated.iter().map(|v| v.to_string()));
    }
    w.exec(
        "UPDATE world_runtime_entities SET resolved_at = now() WHERE entity_id = ?",
        vec![text(winner.to_string())],
    );
    let wev = meta.wev.as_ref().map(|(w, _)| w.wev);
    w.insert(
        "verse_resolutions (resolution_id, verses, winning_verse, oracle_source, wev_extracted, pull_up_time_ms)",
        concat!("(?, ", varchar_list_param!(), ", ?, ?, ?, ?)"),
        vec![
            text(rid.clone()),
            text_list(p.children.iter().map(|c| c.to_string()))?,
            text(winner.to_string()),
            text(oracle_source),
            opt_f64(wev),
            Value::Double(meta.pull_up_time_ms.unwrap_or(store_ms)),
        ],
    );
    let (poa, wev_abs, sense) = match &meta.wev {
        Some((w, s)) => (
            Some(w.poa),
            Some(w.wev_abs),
            Some(match s {
                GameSense::Cost => "cost",
                GameSense::Welfare => "welfare",
            }),
        ),
        None => (None, None, None),
    };
    w.insert(
        "resolution_details",
        "(?, ?, ?, ?, ?, ?)",
        vec![
            text(rid.clone()),
            text(partition.to_string()),
            opt_f64(poa),
            opt_f64(wev),
            opt_f64(wev_abs),
            opt_text(sense),
        ],
    );
    for (token, amount) in evaporated_value {
        w.insert(
            "evaporated_values",
            "(?, ?, ?)",
            vec![
                text(rid.clone()),
                text(token.as_str()),
                Value::HugeInt(*amount as i128),
            ],
        );
    }
    Ok(())
}

impl From<world_core::verse::VerseError> for Error {
    fn from(e: world_core::verse::VerseError) -> Self {
        Error::Corrupt(e.to_string())
    }
}
