//! Verses that run in worlds: the verse-to-world links, the runs of code in
//! verses (with their scores), and the ledger batches of `push_down` and
//! `pull_up` over worlds, written in the same transaction as their links.

use duckdb::params;
use serde::Serialize;
use world_core::ids::VerseId;
use world_core::ledger::{Applied, Effect, Op};

use crate::batch::{opt_f64, opt_text, text, Writes};
use crate::ledger_io::ResolutionMeta;
use crate::{records, Error, NewEntity, Result, Store};

/// One run of code in a verse, as recorded.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
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

/// Adds a verse-to-world link row to `w`.
fn link(w: &mut Writes, verse: &str, world: &str, snapshot: Option<&str>) {
    w.insert(
        "verse_worlds (verse_id, world_id, snapshot_id)",
        "(?, ?, ?)",
        vec![text(verse), text(world), opt_text(snapshot)],
    );
}

impl Store {
    /// The world a verse runs in.
    pub fn world_of_verse(&self, verse: VerseId) -> Result<Option<String>> {
        if self.spool().is_some() {
            return Ok(self.verse_links(&[verse])?.remove(&verse).map(|(w, _)| w));
        }
        let mut stmt = self
            .conn
            .prepare("SELECT world_id FROM verse_worlds WHERE verse_id = ?")?;
        let mut rows = stmt.query_map([verse.to_string()], |r| r.get::<_, String>(0))?;
        Ok(rows.next().transpose()?)
    }

    /// The snapshot a verse's world was branched from, if any.
    pub fn snapshot_of_verse(&self, verse: VerseId) -> Result<Option<String>> {
        if self.spool().is_some() {
            return Ok(self
                .verse_links(&[verse])?
                .remove(&verse)
                .and_then(|(_, s)| s));
        }
        let mut stmt = self
            .conn
            .prepare("SELECT snapshot_id FROM verse_worlds WHERE verse_id = ?")?;
        let mut rows = stmt.query_map([verse.to_string()], |r| r.get::<_, Option<String>>(0))?;
        Ok(rows.next().transpose()?.flatten())
    }

    /// The live verse a world currently runs, if any.
    pub fn verse_of_world(&self, world: &str) -> Result<Option<VerseId>> {
        if let Some(sp) = self.spool() {
            let known = sp.links().verses_of(world);
            let linked = match known {
                Some(set) => set,
                None => {
                    // Every verse the tables link to the world, with their
                    // links, corrected by what was spooled since.
                    let from_tables: Vec<VerseId> = self
                        .conn
                        .prepare_cached("SELECT verse_id FROM verse_worlds WHERE world_id = ?")?
                        .query_map([world], |r| r.get::<_, String>(0))?
                        .map(|v| {
                            let v = v?;
                            v.parse()
                                .map_err(|_| Error::Corrupt(format!("bad verse id {v:?}")))
                        })
                        .collect::<Result<_>>()?;
                    self.verse_links(&from_tables)?;
                    sp.links().learn_world(world, &from_tables)
                }
            };
            // The live one made last (the verses table's status may lag;
            // the ledger's is current).
            let ledger = self.load_ledger()?;
            return Ok(linked
                .into_iter()
                .rev()
                .find(|v| ledger.tree().verse(*v).is_ok_and(|x| x.is_live())));
        }
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

    /// Creates the root verse of `world` (seeded with `seed`) and links it
    /// to the world, in one transaction.
    pub fn commit_world_root(&self, world: &str, seed: u64) -> Result<VerseId> {
        let op = Op::CreateRoot {
            name: world.to_string(),
            seed,
        };
        let applied = self.apply_and(
            std::slice::from_ref(&op),
            &ResolutionMeta::default(),
            |w, _, applied| {
                for a in applied {
                    if let Effect::RootCreated { verse } = &a.effect {
                        link(w, &verse.to_string(), world, None);
                    }
                }
                Ok(())
            },
            |store, applied| {
                if let Some(sp) = store.spool() {
                    for a in applied {
                        if let Effect::RootCreated { verse } = &a.effect {
                            sp.links().link(*verse, world, None);
                        }
                    }
                }
            },
        )?;
        match applied[0].effect {
            Effect::RootCreated { verse } => Ok(verse),
            ref other => Err(Error::Corrupt(format!("unexpected effect {other:?}"))),
        }
    }

    /// Commits a push_down over worlds: `ops` (an optional `CreateRoot`
    /// for the world's verse, the `Partition`, then the `PushDown`s), the
    /// links of the root (to `parent_world`) and of the children (to
    /// `child_worlds`, in order), the children's entity rows
    /// (`child_entities`) each with a `runtime_metrics` row, all in one
    /// transaction, overlapped with the branch it records:
    /// `branch` runs on another thread while the transaction writes the
    /// ledger, the verses, the entities and the links (the children's ids
    /// and the snapshot id are chosen before branching); then `timings`
    /// reads the branch's outcome and gives its snapshot and branch times,
    /// or an error (the branch failed) that rolls everything back.
    /// `branch`'s result comes back whatever happened, for undoing.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_push_down<T: Send>(
        &self,
        ops: &[Op],
        parent_world: &str,
        child_worlds: &[String],
        child_entities: &[NewEntity],
        snapshot: Option<&str>,
        branch: impl FnOnce() -> T + Send,
        timings: impl FnOnce(&T) -> std::result::Result<(Option<f64>, Option<f64>), String>,
    ) -> (Option<T>, Result<Vec<Applied>>) {
        // The partition's id, from the batch's effects (early) to the
        // held branch row (late).
        let partition = std::cell::RefCell::new(None::<String>);
        let early = |w: &mut Writes, _ledger: &world_core::ledger::Ledger, applied: &[Applied]| {
            for e in child_entities {
                records::entity_row(w, e);
            }
            for a in applied {
                match &a.effect {
                    Effect::RootCreated { verse } => {
                        link(w, &verse.to_string(), parent_world, None);
                    }
                    Effect::Partitioned {
                        partition: p,
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
                        for (v, world) in children.iter().zip(child_worlds) {
                            let v = v.to_string();
                            link(w, &v, world, snapshot);
                            w.set(
                                records::ENTITY_HEAD,
                                0,
                                &v,
                                records::ENTITY_SNAPSHOT_COL,
                                opt_text(snapshot),
                            );
                        }
                        *partition.borrow_mut() = Some(p.to_string());
                    }
                    _ => {}
                }
            }
            Ok(())
        };
        let late = |w: &mut Writes, t: &T| {
            let (snapshot_ms, branch_ms) = timings(t).map_err(Error::Aborted)?;
            for e in child_entities {
                records::metric_row(w, &e.entity_id, [None, snapshot_ms, branch_ms, None]);
            }
            if let Some(p) = partition.borrow().as_deref() {
                w.set(
                    crate::ledger_io::BRANCH_HEAD,
                    0,
                    p,
                    crate::ledger_io::BRANCH_SNAPSHOT_MS_COL,
                    opt_f64(snapshot_ms),
                );
            }
            Ok(())
        };
        self.apply_during(
            ops,
            &ResolutionMeta::default(),
            branch,
            early,
            &[records::METRIC_HEAD, crate::ledger_io::BRANCH_HEAD],
            late,
            |store, applied| {
                if let Some(sp) = store.spool() {
                    let mut links = sp.links();
                    for a in applied {
                        match &a.effect {
                            Effect::RootCreated { verse } => links.link(*verse, parent_world, None),
                            Effect::Partitioned { children, .. } => {
                                // The children's worlds are new: nothing else runs in them.
                                for (v, world) in children.iter().zip(child_worlds) {
                                    links.new_world(world);
                                    links.link(*v, world, snapshot);
                                }
                            }
                            _ => {}
                        }
                    }
                }
            },
        )
    }

    /// Commits a pull_up over worlds: the `Resolve` and the `PullUp`s in
    /// `ops`, the collapse of the losing verses' worlds, and the link of
    /// the parent verse to the winner's world (its successor), in one
    /// transaction.
    pub fn commit_pull_up(
        &self,
        ops: &[Op],
        meta: &ResolutionMeta,
        collapsed_worlds: &[String],
        parent: VerseId,
        winner_world: &str,
    ) -> Result<Vec<Applied>> {
        self.apply_and(
            ops,
            meta,
            |w, _, _| {
                w.collapse(collapsed_worlds.iter().cloned());
                // The parent verse now runs in the winner's world (replacing
                // its old link; a delete and an insert are cheaper than an
                // upsert in DuckDB).
                w.exec(
                    "DELETE FROM verse_worlds WHERE verse_id = ?",
                    vec![text(parent.to_string())],
                );
                link(w, &parent.to_string(), winner_world, None);
                Ok(())
            },
            |store, _| {
                if let Some(sp) = store.spool() {
                    sp.links().link(parent, winner_world, None);
                }
            },
        )
    }

    /// Marks an entity `deleted` (resolved now). With a record spool this
    /// is written behind, like the operation it completes; a missing row
    /// is not an error.
    pub fn mark_deleted(&self, entity_id: &str) -> Result<()> {
        let mut w = Writes::default();
        w.exec(
            "UPDATE world_runtime_entities SET state = 'deleted', resolved_at = now()
             WHERE entity_id = ?",
            vec![text(entity_id)],
        );
        match self.spool() {
            Some(sp) => {
                let _write = self.write_lock();
                sp.append(w, 0)
            }
            None => self.in_transaction(|conn| w.flush(conn)),
        }
    }

    /// Records a run of code in a verse.
    pub fn insert_verse_run(&self, r: &VerseRun) -> Result<()> {
        self.insert_verse_runs(std::slice::from_ref(r))
    }

    /// Records several runs (and their timings) in one transaction.
    pub fn insert_verse_runs(&self, runs: &[VerseRun]) -> Result<()> {
        let mut w = Writes::default();
        for r in runs {
            w.insert(
                "verse_runs (run_id, verse_id, world_id, code, stdout, stderr, error, timed_out, duration_ms, score)",
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                vec![
                    text(r.run_id.clone()),
                    text(r.verse_id.clone()),
                    text(r.world_id.clone()),
                    text(r.code.clone()),
                    text(r.stdout.clone()),
                    text(r.stderr.clone()),
                    opt_text(r.error.clone()),
                    duckdb::types::Value::Boolean(r.timed_out),
                    duckdb::types::Value::Double(r.duration_ms),
                    opt_f64(r.score),
                ],
            );
            crate::records::timing_row(&mut w, "verse_run", Some(&r.verse_id), r.duration_ms);
        }
        if let Some(sp) = self.spool() {
            let _write = self.write_lock();
            sp.append(w, 0)?;
            let mut links = sp.links();
            for r in runs {
                if let Ok(v) = r.verse_id.parse::<VerseId>() {
                    links.ran(v, r.score);
                }
            }
            return Ok(());
        }
        self.in_transaction(|conn| w.flush(conn))
    }

    /// The world of each of `verses` that is live and runs in one, in one
    /// query (verses missing from the answer are unknown, evaporated or
    /// without a world).
    pub fn live_verse_worlds(
        &self,
        verses: &[VerseId],
    ) -> Result<std::collections::BTreeMap<VerseId, String>> {
        if self.spool().is_some() {
            let ledger = self.load_ledger()?;
            let live: Vec<VerseId> = verses
                .iter()
                .copied()
                .filter(|v| ledger.tree().verse(*v).is_ok_and(|x| x.is_live()))
                .collect();
            return Ok(self
                .verse_links(&live)?
                .into_iter()
                .map(|(v, (w, _))| (v, w))
                .collect());
        }
        let mut stmt = self.conn.prepare_cached(concat!(
            "SELECT w.verse_id, w.world_id FROM verse_worlds w JOIN verses v USING (verse_id)
             WHERE v.status = 'live' AND w.verse_id IN (SELECT unnest(",
            crate::ledger_io::varchar_list_param!(),
            "))"
        ))?;
        let ids = crate::ledger_io::text_list(verses.iter().map(|v| v.to_string()))?;
        let rows = stmt.query_map([ids], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = std::collections::BTreeMap::new();
        for row in rows {
            let (v, w) = row?;
            let v: VerseId = v
                .parse()
                .map_err(|_| Error::Corrupt(format!("bad verse id {v:?}")))?;
            out.insert(v, w);
        }
        Ok(out)
    }

    /// The world (and the snapshot it was branched from) of each of
    /// `verses` that runs in one, in one query.
    pub fn verse_links(
        &self,
        verses: &[VerseId],
    ) -> Result<std::collections::BTreeMap<VerseId, (String, Option<String>)>> {
        let Some(sp) = self.spool() else {
            return self.verse_links_from_tables(verses);
        };
        let mut out = std::collections::BTreeMap::new();
        let mut missing = Vec::new();
        {
            let links = sp.links();
            for v in verses {
                match links.get(*v) {
                    Some(Some(l)) => {
                        out.insert(*v, l);
                    }
                    Some(None) => {}
                    None => missing.push(*v),
                }
            }
        }
        if !missing.is_empty() {
            // Read while holding the write lock, so no spooled write can
            // change these links between the read and `learn`.
            let _write = self.write_lock();
            let found = self.verse_links_from_tables(&missing)?;
            let mut links = sp.links();
            for v in missing {
                links.learn(v, found.get(&v).cloned());
                if let Some(Some(l)) = links.get(v) {
                    out.insert(v, l);
                }
            }
        }
        Ok(out)
    }

    /// [`Store::verse_links`], read from the tables.
    fn verse_links_from_tables(
        &self,
        verses: &[VerseId],
    ) -> Result<std::collections::BTreeMap<VerseId, (String, Option<String>)>> {
        let mut stmt = self.conn.prepare_cached(concat!(
            "SELECT verse_id, world_id, snapshot_id FROM verse_worlds
             WHERE verse_id IN (SELECT unnest(",
            crate::ledger_io::varchar_list_param!(),
            "))"
        ))?;
        let ids = crate::ledger_io::text_list(verses.iter().map(|v| v.to_string()))?;
        let rows = stmt.query_map([ids], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        let mut out = std::collections::BTreeMap::new();
        for row in rows {
            let (v, w, s) = row?;
            let v: VerseId = v
                .parse()
                .map_err(|_| Error::Corrupt(format!("bad verse id {v:?}")))?;
            out.insert(v, (w, s));
        }
        Ok(out)
    }

    /// The most recent score each verse reported (None when it reported none).
    pub fn latest_scores(&self, verses: &[VerseId]) -> Result<Vec<(VerseId, Option<f64>)>> {
        if let Some(sp) = self.spool() {
            let missing: Vec<VerseId> = {
                let links = sp.links();
                verses
                    .iter()
                    .copied()
                    .filter(|v| links.score(*v).is_none())
                    .collect()
            };
            if !missing.is_empty() {
                let _write = self.write_lock();
                let found = self.latest_scores_from_tables(&missing)?;
                let mut links = sp.links();
                for (v, s) in found {
                    links.learn_score(v, s);
                }
            }
            let links = sp.links();
            return Ok(verses
                .iter()
                .map(|v| (*v, links.score(*v).flatten()))
                .collect());
        }
        self.latest_scores_from_tables(verses)
    }

    /// [`Store::latest_scores`], read from the tables.
    fn latest_scores_from_tables(&self, verses: &[VerseId]) -> Result<Vec<(VerseId, Option<f64>)>> {
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
