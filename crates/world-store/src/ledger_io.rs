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

use duckdb::{params, Connection};
use serde::Serialize;
use world_core::ids::{Owner, PartitionId, Token, VerseId};
use world_core::ledger::{Applied, BalanceKey, Effect, Ledger, Op};
use world_core::prob::Prob;
use world_core::trit::Trit;
use world_core::verse::{Partition, PartitionStatus, Verse, VerseStatus};
use world_core::wev::{GameSense, WevReport};

use crate::{Error, Result, Store};

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
#[derive(Debug, Clone, Serialize)]
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
        let (seq, ledger) = self.in_read_transaction(|conn| {
            let seq = journal_head(conn)?;
            match self.cached_ledger(seq) {
                Some(l) => Ok((seq, l)),
                None => Ok((seq, load(conn)?)),
            }
        })?;
        self.cache_ledger(seq, ledger.clone());
        Ok(ledger)
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
        self.apply_and(ops, meta, |_, _, _| Ok(()))
    }

    /// Applies `ops`, then runs `extra` with the connection, the new ledger
    /// and the effects, all in the same transaction.
    pub(crate) fn apply_and(
        &self,
        ops: &[Op],
        meta: &ResolutionMeta,
        extra: impl FnOnce(&Connection, &Ledger, &[Applied]) -> Result<()>,
    ) -> Result<Vec<Applied>> {
        let start = Instant::now();
        let committed = self.in_transaction(|conn| {
            let head = journal_head(conn)?;
            let mut ledger = match self.cached_ledger(head) {
                Some(l) => l,
                None => load(conn)?,
            };
            let mut applied = Vec::with_capacity(ops.len());
            for (index, op) in ops.iter().enumerate() {
                match ledger.apply(op) {
                    Ok(a) => applied.push(a),
                    Err(source) if ops.len() > 1 => return Err(Error::BatchOp { index, source }),
                    Err(e) => return Err(e.into()),
                }
            }
            persist(conn, head + 1, &ledger, ops, &applied, meta, start)?;
            extra(conn, &ledger, &applied)?;
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

/// Binds a list of strings as a `VARCHAR[]` parameter.
pub(crate) fn text_list(items: impl IntoIterator<Item = String>) -> duckdb::types::Value {
    duckdb::types::Value::List(items.into_iter().map(duckdb::types::Value::Text).collect())
}

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
fn journal_head(conn: &Connection) -> Result<u64> {
    Ok(conn.query_row(
        "SELECT coalesce(max(seq), 0) FROM ledger_journal",
        [],
        |r| r.get(0),
    )?)
}

fn persist(
    conn: &Connection,
    next_seq: u64,
    ledger: &Ledger,
    ops: &[Op],
    applied: &[Applied],
    meta: &ResolutionMeta,
    start: Instant,
) -> Result<()> {
    // 1. Journal rows, appended.
    {
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
    }
    // 2. Balances: the last value written to each cell wins.
    let mut cells: BTreeMap<&BalanceKey, u64> = BTreeMap::new();
    for a in applied {
        for (k, v) in &a.balance_writes {
            cells.insert(k, *v);
        }
    }
    if !cells.is_empty() {
        if cells.len() <= 8 {
            let mut up = conn.prepare(
                "INSERT INTO balances VALUES (?, ?, ?, ?)
                 ON CONFLICT DO UPDATE SET amount = excluded.amount",
            )?;
            let mut del = conn
                .prepare("DELETE FROM balances WHERE token = ? AND verse_id = ? AND owner = ?")?;
            for (k, v) in &cells {
                if *v == 0 {
                    del.execute(params![
                        k.token.as_str(),
                        k.verse.to_string(),
                        k.owner.as_str()
                    ])?;
                } else {
                    up.execute(params![
                        k.token.as_str(),
                        k.verse.to_string(),
                        k.owner.as_str(),
                        *v
                    ])?;
                }
            }
        } else {
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
        }
    }
    // 3. Tree changes and the seed tables.
    let elapsed_ms = || start.elapsed().as_secs_f64() * 1000.0;
    for (op, a) in ops.iter().zip(applied) {
        match &a.effect {
            Effect::RootCreated { verse } => insert_verse(conn, ledger, *verse)?,
            Effect::Partitioned {
                partition,
                children,
                gf3_sum,
            } => {
                let p = ledger.tree().partition_info(*partition)?;
                for c in children {
                    insert_verse(conn, ledger, *c)?;
                }
                conn.execute(
                    "INSERT INTO partitions (partition_id, num, parent_verse, children, gf3_sum, status)
                     VALUES (?, ?, ?, ?, ?, 'open')",
                    params![
                        partition.to_string(),
                        partition.0,
                        p.parent.to_string(),
                        text_list(children.iter().map(|c| c.to_string())),
                        *gf3_sum
                    ],
                )?;
                conn.execute(
                    "INSERT INTO world_branches (branch_id, parent_entity_id, child_entity_ids, branch_type, gf3_sum)
                     VALUES (?, ?, ?, 'push_down', ?)",
                    params![
                        partition.to_string(),
                        p.parent.to_string(),
                        text_list(children.iter().map(|c| c.to_string())),
                        *gf3_sum
                    ],
                )?;
                conn.execute(
                    "INSERT INTO runtime_metrics (metric_id, entity_id, branch_time_ms)
                     VALUES (gen_random_uuid()::VARCHAR, ?, ?)",
                    params![p.parent.to_string(), elapsed_ms()],
                )?;
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
                    conn,
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
    conn.execute(
        "INSERT INTO operation_timings (timing_id, operation, duration_ms)
         VALUES (gen_random_uuid()::VARCHAR, ?, ?)",
        params![kind, elapsed_ms()],
    )?;
    Ok(())
}

fn insert_verse(conn: &Connection, ledger: &Ledger, id: VerseId) -> Result<()> {
    let v = ledger.tree().verse(id)?;
    let trit = v.trit.map(|t| t.value() as i32);
    conn.prepare_cached(
        "INSERT INTO verses (verse_id, num, name, parent_verse, parent_partition, child_index, cond_prob, trit, seed, status)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
            id.to_string(),
            id.0,
            v.name,
            v.parent.map(|p| p.to_string()),
            v.parent_partition.map(|p| p.to_string()),
            v.index,
            v.prob.raw(),
            trit,
            v.seed,
            status_str(&v.status)
    ])?;
    conn.prepare_cached(
        "INSERT INTO world_runtime_entities (entity_id, entity_type, parent_id, trit, state)
         VALUES (?, 'verse', ?, ?, 'running')",
    )?
    .execute(params![
        id.to_string(),
        v.parent.map(|p| p.to_string()),
        trit
    ])?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn record_resolution(
    conn: &Connection,
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
    conn.execute(
        "UPDATE partitions SET status = 'resolved', winner = ?, resolved_at = CURRENT_TIMESTAMP
         WHERE partition_id = ?",
        params![winner.to_string(), partition.to_string()],
    )?;
    {
        let mut v = conn.prepare(
            "UPDATE verses SET status = 'evaporated', evaporated_at = CURRENT_TIMESTAMP WHERE verse_id = ?",
        )?;
        let mut e = conn.prepare(
            "UPDATE world_runtime_entities SET state = 'collapsed', resolved_at = CURRENT_TIMESTAMP
             WHERE entity_id = ?",
        )?;
        for id in evaporated {
            v.execute([id.to_string()])?;
            e.execute([id.to_string()])?;
        }
    }
    conn.execute(
        "UPDATE world_runtime_entities SET resolved_at = CURRENT_TIMESTAMP WHERE entity_id = ?",
        [winner.to_string()],
    )?;
    let wev = meta.wev.as_ref().map(|(w, _)| w.wev);
    conn.execute(
        "INSERT INTO verse_resolutions (resolution_id, verses, winning_verse, oracle_source, wev_extracted, pull_up_time_ms)
         VALUES (?, ?, ?, ?, ?, ?)",
        params![
            rid,
            text_list(p.children.iter().map(|c| c.to_string())),
            winner.to_string(),
            oracle_source,
            wev,
            meta.pull_up_time_ms.unwrap_or(store_ms)
        ],
    )?;
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
    conn.execute(
        "INSERT INTO resolution_details VALUES (?, ?, ?, ?, ?, ?)",
        params![rid, partition.to_string(), poa, wev, wev_abs, sense],
    )?;
    let mut ev = conn.prepare("INSERT INTO evaporated_values VALUES (?, ?, ?)")?;
    for (token, amount) in evaporated_value {
        ev.execute(params![rid, token.as_str(), *amount as i128])?;
    }
    Ok(())
}

impl From<world_core::verse::VerseError> for Error {
    fn from(e: world_core::verse::VerseError) -> Self {
        Error::Corrupt(e.to_string())
    }
}
