//! Verses that run in worlds: the verse-to-world links, the runs of code in
//! verses (with their scores), and the ledger batches of `push_down` and
//! `pull_up` over worlds, written in the same transaction as their links.

use duckdb::params;
use serde::Serialize;
use world_core::ids::VerseId;
use world_core::ledger::{Applied, Effect, Op};

use crate::ledger_io::ResolutionMeta;
use crate::{Error, NewEntity, Result, Store};

/// One run of code in a verse, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct VerseRun {
    /// Run id.
    pub run_id: String,
    /// The verse.
    pub verse_id: String,
    /// Its world.
    pub world_id: String,
    /// The code.
    pub code: String,
    /// What it printed.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
    /// Traceback or failure.
    pub error: Option<String>,
    /// Whether it timed out.
    pub timed_out: bool,
    /// How long it ran.
    pub duration_ms: f64,
    /// The score it reported (a `WORLD_SCORE` line).
    pub score: Option<f64>,
}

impl Store {
    /// The world a verse runs in.
    pub fn world_of_verse(&self, verse: VerseId) -> Result<Option<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT world_id FROM verse_worlds WHERE verse_id = ?")?;
        let mut rows = stmt.query_map([verse.to_string()], |r| r.get::<_, String>(0))?;
        Ok(rows.next().transpose()?)
    }

    /// The snapshot a verse's world was branched from, if any.
    pub fn snapshot_of_verse(&self, verse: VerseId) -> Result<Option<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT snapshot_id FROM verse_worlds WHERE verse_id = ?")?;
        let mut rows = stmt.query_map([verse.to_string()], |r| r.get::<_, Option<String>>(0))?;
        Ok(rows.next().transpose()?.flatten())
    }

    /// The live verse a world currently runs, if any.
    pub fn verse_of_world(&self, world: &str) -> Result<Option<VerseId>> {
        let mut stmt = self.conn.prepare(
            "SELECT w.verse_id FROM verse_worlds w JOIN verses v USING (verse_id)
             WHERE w.world_id = ? AND v.status = 'live' ORDER BY v.num DESC LIMIT 1",
        )?;
        let mut rows = stmt.query_map([world], |r| r.get::<_, String>(0))?;
        match rows.next().transpose()? {
            Some(v) => {
                Ok(Some(v.parse().map_err(|_| {
                    Error::Corrupt(format!("bad verse id {v:?}"))
                })?))
            }
            None => Ok(None),
        }
    }

    /// Commits a push_down over worlds: `ops` (an optional `CreateRoot`
    /// for the world's verse, the `Partition`, then the `PushDown`s) and
    /// the links of the root (to `parent_world`) and of the children (to
    /// `child_worlds`, in order), all in one transaction.
    /// `child_entities` (the children's entity rows) are inserted in the
    /// same transaction, each with a `runtime_metrics` row carrying
    /// `snapshot_time_ms` and `branch_time_ms`.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_push_down(
        &self,
        ops: &[Op],
        parent_world: &str,
        child_worlds: &[String],
        child_entities: &[NewEntity],
        snapshot: Option<&str>,
        snapshot_time_ms: Option<f64>,
        branch_time_ms: Option<f64>,
    ) -> Result<Vec<Applied>> {
        self.apply_and(ops, &ResolutionMeta::default(), |conn, _ledger, applied| {
            for e in child_entities {
                crate::records::insert_entity(conn, e)?;
                crate::records::insert_metric(conn, &e.entity_id, [None, snapshot_time_ms, branch_time_ms, None])?;
            }
            let mut link = conn.prepare(
                "INSERT INTO verse_worlds (verse_id, world_id, snapshot_id) VALUES (?, ?, ?)
                 ON CONFLICT DO UPDATE SET world_id = excluded.world_id, snapshot_id = excluded.snapshot_id,
                 linked_at = now()",
            )?;
            for a in applied {
                match &a.effect {
                    Effect::RootCreated { verse } => {
                        link.execute(params![verse.to_string(), parent_world, Option::<String>::None])?;
                    }
                    Effect::Partitioned {
                        partition,
                        children,
                        ..
                    } => {
                        if children.len() != child_worlds.len() {
                            return Err(Error::Corrupt(format!(
                                "{} verses but {} worlds",
                                children.len(),
                                child_worlds.len()
                            )));
                        }
                        for (v, w) in children.iter().zip(child_worlds) {
                            link.execute(params![v.to_string(), w, snapshot])?;
                            conn.execute(
                                "UPDATE world_runtime_entities SET snapshot_id = ? WHERE entity_id = ?",
                                params![snapshot, v.to_string()],
                            )?;
                        }
                        conn.execute(
                            "UPDATE world_branches SET snapshot_time_ms = ? WHERE branch_id = ?",
                            params![snapshot_time_ms, partition.to_string()],
                        )?;
                    }
                    _ => {}
                }
            }
            Ok(())
        })
    }

    /// Commits a pull_up over worlds: the `Resolve` and the `PullUp`s in
    /// `ops`, the collapse of the losing verses' worlds, and the link of
    /// the parent verse to the winner's world (its successor).
    pub fn commit_pull_up(
        &self,
        ops: &[Op],
        meta: &ResolutionMeta,
        collapsed_worlds: &[String],
        parent: VerseId,
        winner_world: &str,
    ) -> Result<Vec<Applied>> {
        self.apply_and(ops, meta, |conn, _ledger, _applied| {
            for w in collapsed_worlds {
                conn.execute(
                    "UPDATE world_runtime_entities SET state = 'collapsed', resolved_at = CURRENT_TIMESTAMP
                     WHERE entity_id = ?",
                    [w],
                )?;
            }
            conn.execute(
                "INSERT INTO verse_worlds (verse_id, world_id) VALUES (?, ?)
                 ON CONFLICT DO UPDATE SET world_id = excluded.world_id, linked_at = now()",
                params![parent.to_string(), winner_world],
            )?;
            Ok(())
        })
    }

    /// Records a run of code in a verse.
    pub fn insert_verse_run(&self, r: &VerseRun) -> Result<()> {
        self.conn.execute(
            "INSERT INTO verse_runs (run_id, verse_id, world_id, code, stdout, stderr, error, timed_out, duration_ms, score)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                r.run_id, r.verse_id, r.world_id, r.code, r.stdout, r.stderr, r.error, r.timed_out,
                r.duration_ms, r.score
            ],
        )?;
        self.insert_timing("verse_run", Some(&r.verse_id), r.duration_ms)?;
        Ok(())
    }

    /// The most recent score each verse reported (None when it reported none).
    pub fn latest_scores(&self, verses: &[VerseId]) -> Result<Vec<(VerseId, Option<f64>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT score FROM verse_runs WHERE verse_id = ? AND score IS NOT NULL
             ORDER BY ran_at DESC, run_id DESC LIMIT 1",
        )?;
        verses
            .iter()
            .map(|v| {
                let mut rows = stmt.query_map([v.to_string()], |r| r.get::<_, f64>(0))?;
                Ok((*v, rows.next().transpose()?))
            })
            .collect()
    }

    /// Recorded runs of a verse, newest first.
    pub fn verse_runs(&self, verse: VerseId, limit: usize) -> Result<Vec<VerseRun>> {
        let mut stmt = self.conn.prepare(
            "SELECT run_id, verse_id, world_id, code, stdout, stderr, error, timed_out, duration_ms, score
             FROM verse_runs WHERE verse_id = ? ORDER BY ran_at DESC, run_id DESC LIMIT ?",
        )?;
        let rows = stmt.query_map(params![verse.to_string(), limit as i64], |r| {
            Ok(VerseRun {
                run_id: r.get(0)?,
                verse_id: r.get(1)?,
                world_id: r.get(2)?,
                code: r.get(3)?,
                stdout: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                stderr: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                error: r.get(6)?,
                timed_out: r.get(7)?,
                duration_ms: r.get(8)?,
                score: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}
