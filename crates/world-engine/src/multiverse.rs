//! Verses over worlds: `push_down`, parallel runs, oracles, `pull_up`.
//!
//! * [`Engine::push_down`] splits a world into verses: the world's verse
//!   (a root verse is created for a world that has none, seeded with the
//!   world's seed) is partitioned in the ledger, one child world per verse
//!   is branched from a snapshot of the world, and every owner's balance in
//!   the world's verse is pushed down into all of them. The branch happens
//!   first; the ledger and the links are then committed in one
//!   transaction, and if that fails the children are destroyed: nothing is
//!   left half-made.
//! * [`Engine::run_verses`] runs code in every verse's world in parallel
//!   (one thread per verse; the sessions are separate processes), records
//!   each run with its `WORLD_SCORE` (a line `WORLD_SCORE {json}` or
//!   `WORLD_SCORE <number>` printed by the code; for JSON the `score`
//!   field, else `social_cost`), and never lets one failing verse spoil
//!   the others.
//! * [`Engine::pull_up`] asks an oracle for the winner, resolves the
//!   partition, pulls every owner's balance in the winner back up into the
//!   parent verse, and links the parent verse to the winner's world, which
//!   carries on as its successor (all one commit); then the other verses'
//!   worlds (their entities `collapsed`) and the snapshot the verses were
//!   branched from collapse: gone at once, their storage released in the
//!   background by a held engine (see `LinuxSubstrate::collapse` and
//!   the `reaper` module). The parent's old world is left running (it still
//!   holds the pre-split state); destroy it when it is no longer needed.
//!
//! In a held engine none of these waits for DuckDB: the ledger and the
//! links are read from memory and the records are spooled
//! (`world_store::spool`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use world_core::ids::{PartitionId, VerseId};
use world_core::ledger::{Effect, Op};
use world_core::oracle;
use world_core::verse::{ChildSpec, PartitionStatus};
use world_core::wev::{self, GameSense, WevReport};
use world_store::ledger_io::{resolution_id, ResolutionMeta};
use world_store::verse_worlds::VerseRun;
use world_substrate::snapshot::BranchOptions;
use world_substrate::{ExecRequest, Substrate, WorldId};

use crate::verse::GameInput;
use crate::{Engine, Error, Result};

/// One verse of a push_down.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct VerseWorld {
    /// The verse.
    pub verse: VerseId,
    /// Its name (nash, optimal, chaos, ...).
    pub name: String,
    /// Its trit.
    pub trit: i8,
    /// Its conditional probability, as a decimal.
    pub prob: String,
    /// Its seed (also the world's `WORLD_SEED`).
    pub seed: u64,
    /// The world that runs it.
    pub world: WorldId,
}

/// What a push_down did.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PushedDown {
    /// The parent world.
    pub world: WorldId,
    /// The parent verse.
    pub parent: VerseId,
    /// The new partition.
    pub partition: PartitionId,
    /// Sum of the children's trits.
    pub gf3_sum: i64,
    /// The verses and their worlds.
    pub verses: Vec<VerseWorld>,
    /// Snapshot time, ms.
    pub snapshot_ms: Option<f64>,
    /// The snapshot the verses were branched from; pull_up deletes it.
    pub snapshot: Option<String>,
    /// Branch time, ms.
    pub branch_ms: f64,
    /// Whole push_down, ms.
    pub total_ms: f64,
    /// Balances pushed down: (token, owner, amount).
    pub pushed: Vec<(String, String, u64)>,
}

/// The result of running code in one verse.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct VerseResult {
    /// The verse.
    pub verse: VerseId,
    /// Its world.
    pub world: WorldId,
    /// Output, error, timing and score.
    pub run: VerseRun,
}

/// How a partition over worlds is resolved.
#[derive(Debug, Clone)]
pub enum WorldOracle {
    /// The caller names the winner.
    Explicit(VerseId),
    /// The best recorded `WORLD_SCORE` wins.
    Score {
        /// Highest wins when true.
        highest: bool,
    },
    /// A draw weighted by the children's conditional probabilities.
    Weighted {
        /// Seed of the draw.
        seed: u64,
    },
    /// A command run in every verse's world prints a number (its last
    /// line of output); the best number wins.
    Command {
        /// The command.
        argv: Vec<String>,
        /// Highest wins when true.
        highest: bool,
    },
}

impl WorldOracle {
    fn source(&self) -> String {
        match self {
            WorldOracle::Explicit(_) => "explicit".into(),
            WorldOracle::Score { highest } => {
                format!("score:{}", if *highest { "highest" } else { "lowest" })
            }
            WorldOracle::Weighted { seed } => format!("weighted:seed={seed}"),
            WorldOracle::Command { argv, highest } => format!(
                "command:{}:{}",
                if *highest { "highest" } else { "lowest" },
                argv.join(" ")
            ),
        }
    }
}

/// What a pull_up did.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PulledUp {
    /// The resolution record's id.
    pub resolution_id: String,
    /// The partition.
    pub partition: PartitionId,
    /// The winner.
    pub winner: VerseId,
    /// The winner's world, now the parent verse's world.
    pub winner_world: WorldId,
    /// The oracle.
    pub oracle_source: String,
    /// Every evaporated verse.
    pub evaporated: Vec<VerseId>,
    /// Worlds destroyed with them.
    pub collapsed_worlds: Vec<String>,
    /// Evaporated balances per token.
    pub evaporated_value: Vec<(String, u128)>,
    /// Balances pulled up: (token, owner, amount).
    pub pulled: Vec<(String, String, u64)>,
    /// PoA and WEV, when a game was given.
    pub wev: Option<WevReport>,
    /// The whole pull_up, ms.
    pub pull_up_ms: f64,
}

/// Parses a score from output: the last `WORLD_SCORE` line.
pub fn parse_score(stdout: &str) -> Option<f64> {
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("WORLD_SCORE"))?;
    let rest = line.trim();
    if let Ok(x) = rest.parse::<f64>() {
        return x.is_finite().then_some(x);
    }
    let v: serde_json::Value = serde_json::from_str(rest).ok()?;
    v.get("score")
        .or_else(|| v.get("social_cost"))
        .and_then(|s| s.as_f64())
        .filter(|x| x.is_finite())
}

/// A run's id: the verse, then the time in nanoseconds (fixed-width hex,
/// so ids of one verse sort by time even when their rows are written in
/// one transaction), then a random tail.
fn run_id(verse: VerseId) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!(
        "run-{verse}-{nanos:016x}{:04x}",
        world_core::seed::splitmix64_output(nanos, verse.0) & 0xffff
    )
}

impl Engine {
    /// The world a verse runs in (a clear error if none).
    pub fn world_of_verse(&self, verse: VerseId) -> Result<WorldId> {
        let w = self
            .verse_store()?
            .world_of_verse(verse)?
            .ok_or_else(|| Error::Invalid(format!("verse {verse} does not run in a world")))?;
        crate::world::world_id(&w)
    }

    /// The live verse a world runs, creating (and linking) a root verse
    /// seeded with the world's seed when it has none.
    pub fn verse_for_world(&self, world: &WorldId) -> Result<VerseId> {
        let sub = self.substrate()?;
        sub.inspect(world)?;
        let store = self.verse_store()?;
        if let Some(v) = store.verse_of_world(world.as_str())? {
            return Ok(v);
        }
        let seed = sub.world_origin(world).map(|o| o.seed).unwrap_or(0);
        Ok(store.commit_world_root(world.as_str(), seed)?)
    }

    /// Splits `world` into verses (default: nash / optimal / chaos).
    pub fn push_down(
        &self,
        world: &WorldId,
        children: Vec<ChildSpec>,
        allow_nonconserving: bool,
    ) -> Result<PushedDown> {
        let t0 = Instant::now();
        let sub = self.substrate()?;
        let info = sub.inspect(world)?;
        crate::trace::mark("push_down: inspect", t0);
        if !info.state.can_exec() {
            return Err(Error::Invalid(format!(
                "world {world} is {}; it cannot be pushed down",
                info.state
            )));
        }
        // Validate the partition before touching any world.
        let store = self.verse_store()?;
        let mut ledger = store.load_ledger()?;
        crate::trace::mark("push_down: open + load ledger", t0);
        let mut ops = Vec::new();
        let (parent, new_root_seed) = match store.verse_of_world(world.as_str())? {
            Some(v) => (v, None),
            None => {
                // A world without a verse gets a root, seeded with the
                // world's seed; validated here on a copy of the ledger.
                let seed = sub.world_origin(world).map(|o| o.seed).unwrap_or(0);
                let op = Op::CreateRoot {
                    name: world.to_string(),
                    seed,
                };
                match ledger.apply(&op)?.effect {
                    Effect::RootCreated { verse } => (verse, Some(seed)),
                    other => return Err(Error::Invalid(format!("unexpected effect {other:?}"))),
                }
            }
        };
        ledger.apply(&Op::Partition {
            parent,
            children: children.clone(),
            allow_nonconserving,
        })?;
        // The partition is valid. A new root is committed on its own first,
        // so that the partition names the id the ledger really gave it (a
        // concurrent push_down of another new world takes the next one).
        let parent = match new_root_seed {
            Some(seed) => store.commit_world_root(world.as_str(), seed)?,
            None => parent,
        };
        ops.push(Op::Partition {
            parent,
            children: children.clone(),
            allow_nonconserving,
        });
        let mut pushed = Vec::new();
        for (k, amount) in ledger
            .balances()
            .filter(|(k, _)| k.verse == parent)
            .collect::<Vec<_>>()
        {
            let op = Op::PushDown {
                token: k.token.clone(),
                owner: k.owner.clone(),
                parent,
                amount,
            };
            ledger.apply(&op)?;
            pushed.push((
                k.token.as_str().to_string(),
                k.owner.as_str().to_string(),
                amount,
            ));
            ops.push(op);
        }
        // The children's and the snapshot's ids are chosen here, so the
        // records can be written while the branch runs (the transaction
        // commits only once it has succeeded): see
        // `Store::commit_push_down`.
        let child_ids: Vec<WorldId> = (0..children.len()).map(|_| WorldId::random()).collect();
        let snapshot_id = world_substrate::snapshot::new_snapshot_id();
        let child_worlds: Vec<String> = child_ids.iter().map(|c| c.to_string()).collect();
        let entities: Vec<world_store::NewEntity> = child_ids
            .iter()
            .map(|c| world_store::NewEntity {
                entity_id: c.to_string(),
                entity_type: "sandbox".into(),
                parent_id: Some(world.to_string()),
                snapshot_id: Some(snapshot_id.clone()),
                state: world_core::lifecycle::State::Running,
                memory_mib: i32::try_from(info.limits.mem_size_mib).ok(),
                vcpu_count: i32::try_from(info.limits.vcpu_count).ok(),
                ..Default::default()
            })
            .collect();
        let opts = BranchOptions {
            keep_snapshot: true,
            child_ids: child_ids.clone(),
            snapshot_id: Some(snapshot_id.clone()),
            ..BranchOptions::default()
        };
        let (branched, committed) = store.commit_push_down(
            &ops,
            world.as_str(),
            &child_worlds,
            &entities,
            Some(&snapshot_id),
            || {
                let b = sub.branch_world(world, children.len(), &opts);
                crate::trace::mark("push_down: snapshot + branch", t0);
                b
            },
            |b| match b {
                Ok(b) => Ok((b.snapshot_ms, Some(b.branch_ms))),
                Err(e) => Err(format!("the branch failed: {e}")),
            },
        );
        let (branched, applied) = match (branched, committed) {
            (Some(Ok(b)), Ok(applied)) => (b, applied),
            // The branch failed: nothing was recorded; report the branch's error.
            (Some(Err(e)), _) => return Err(e.into()),
            // The records could not be written: undo the branch.
            (Some(Ok(b)), Err(e)) => {
                for c in &b.children {
                    let _ = sub.destroy(c);
                }
                if let Some(s) = &b.snapshot {
                    let _ = sub.delete_snapshot(s);
                }
                return Err(e.into());
            }
            // Refused before branching.
            (None, Err(e)) => return Err(e.into()),
            (None, Ok(_)) => {
                return Err(Error::Invalid(
                    "push_down committed without branching".into(),
                ))
            }
        };
        crate::trace::mark("push_down: commit", t0);
        let (partition, verses, gf3_sum) = applied
            .iter()
            .find_map(|a| match &a.effect {
                Effect::Partitioned {
                    partition,
                    children,
                    gf3_sum,
                } => Some((*partition, children.clone(), *gf3_sum)),
                _ => None,
            })
            .ok_or_else(|| Error::Invalid("push_down made no partition".into()))?;
        let verses = verses
            .iter()
            .zip(&children)
            .zip(branched.children.iter().zip(&branched.seeds))
            .map(|((v, spec), (w, seed))| VerseWorld {
                verse: *v,
                name: spec.name.clone(),
                trit: spec.trit.value(),
                prob: spec.prob.to_string(),
                seed: *seed,
                world: w.clone(),
            })
            .collect();
        let total_ms = t0.elapsed().as_secs_f64() * 1000.0;
        store.insert_timing("push_down_world", Some(world.as_str()), total_ms)?;
        Ok(PushedDown {
            world: world.clone(),
            parent,
            partition,
            gf3_sum,
            verses,
            snapshot_ms: branched.snapshot_ms,
            snapshot: branched.snapshot.clone(),
            branch_ms: branched.branch_ms,
            total_ms,
            pushed,
        })
    }

    /// Runs `code[i]` in verse `verses[i]`'s world, all in parallel.
    pub fn run_verses(
        &self,
        runs: &[(VerseId, String)],
        session: &str,
        timeout: Option<Duration>,
    ) -> Result<Vec<VerseResult>> {
        let t0 = Instant::now();
        let sub = self.substrate()?;
        let store = self.verse_store()?;
        crate::trace::mark("run_verses: store", t0);
        let live = store.live_verse_worlds(&runs.iter().map(|(v, _)| *v).collect::<Vec<_>>())?;
        crate::trace::mark("run_verses: live verses", t0);
        let mut targets = Vec::new();
        for (v, code) in runs {
            let Some(w) = live.get(v) else {
                // Unknown or evaporated: the ledger says which, precisely.
                store.load_ledger()?.tree().live_verse(*v)?;
                return Err(Error::Invalid(format!("verse {v} does not run in a world")));
            };
            targets.push((*v, crate::world::world_id(w)?, code.clone()));
        }
        // Runs take as long as the user's code: do not hold the database.
        drop(store);
        crate::trace::mark("run_verses: targets", t0);
        let results: Vec<VerseResult> = std::thread::scope(|s| {
            let handles: Vec<_> = targets
                .iter()
                .map(|(v, w, code)| {
                    s.spawn(move || {
                        let t = Instant::now();
                        let r = sub.run_code(w, session, code, timeout);
                        let ms = t.elapsed().as_secs_f64() * 1000.0;
                        let run = match r {
                            Ok(r) => {
                                let stdout = String::from_utf8_lossy(&r.stdout).into_owned();
                                VerseRun {
                                    run_id: run_id(*v),
                                    verse_id: v.to_string(),
                                    world_id: w.to_string(),
                                    code: code.clone(),
                                    score: parse_score(&stdout),
                                    stdout,
                                    stderr: String::from_utf8_lossy(&r.stderr).into_owned(),
                                    error: r.error.clone(),
                                    timed_out: r.timed_out,
                                    duration_ms: r.duration_ms,
                                }
                            }
                            Err(e) => VerseRun {
                                run_id: run_id(*v),
                                verse_id: v.to_string(),
                                world_id: w.to_string(),
                                code: code.clone(),
                                stdout: String::new(),
                                stderr: String::new(),
                                error: Some(e.to_string()),
                                timed_out: false,
                                duration_ms: ms,
                                score: None,
                            },
                        };
                        VerseResult {
                            verse: *v,
                            world: w.clone(),
                            run,
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("verse run thread panicked"))
                .collect()
        });
        crate::trace::mark("run_verses: runs", t0);
        let store = self.verse_store()?;
        store.insert_verse_runs(&results.iter().map(|r| r.run.clone()).collect::<Vec<_>>())?;
        crate::trace::mark("run_verses: recorded", t0);
        Ok(results)
    }

    /// Resolves a partition over worlds with `oracle` and pulls balances up.
    pub fn pull_up(
        &self,
        partition: PartitionId,
        oracle_choice: &WorldOracle,
        game: Option<GameInput>,
    ) -> Result<PulledUp> {
        let t0 = Instant::now();
        let sub = self.substrate()?;
        let wev_report = game
            .map(|g| wev::wev(g.nash, g.optimum, g.sense).map(|w| (w, g.sense)))
            .transpose()?;
        let store = self.verse_store()?;
        let ledger = store.load_ledger()?;
        let p = ledger.tree().partition_info(partition)?.clone();
        if let PartitionStatus::Resolved { winner } = p.status {
            return Err(Error::Invalid(format!(
                "partition {partition} is already resolved (winner {winner}); a partition resolves once"
            )));
        }
        // Everything that could evaporate: every child and its subtree.
        let mut subtree = Vec::new();
        for c in &p.children {
            subtree.push(*c);
            subtree.extend(ledger.tree().descendants(*c)?);
        }
        let links = store.verse_links(&subtree)?;
        let mut worlds = BTreeMap::new();
        for c in &p.children {
            let (w, _) = links.get(c).ok_or_else(|| {
                Error::Invalid(format!(
                    "verse {c} of {partition} does not run in a world; use `world verse resolve`"
                ))
            })?;
            worlds.insert(*c, w.clone());
        }
        let winner = match oracle_choice {
            WorldOracle::Explicit(v) => *v,
            WorldOracle::Score { highest } => {
                oracle::choose_by_score(&store.latest_scores(&p.children)?, *highest)?
            }
            WorldOracle::Weighted { seed } => {
                let table = p
                    .children
                    .iter()
                    .map(|c| Ok((*c, ledger.tree().verse(*c)?.prob)))
                    .collect::<Result<Vec<_>>>()?;
                oracle::choose_weighted(&table, *seed)
            }
            WorldOracle::Command { argv, highest } => {
                let mut scores = Vec::new();
                for c in &p.children {
                    let w = crate::world::world_id(&worlds[c])?;
                    let out = sub.exec_output(&w, &ExecRequest::new(argv), b"")?;
                    let text = String::from_utf8_lossy(&out.stdout);
                    let score = text
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .and_then(|l| l.trim().parse::<f64>().ok())
                        .filter(|_| out.status.exit_code == 0);
                    scores.push((*c, score));
                }
                oracle::choose_by_score(&scores, *highest)?
            }
        };
        if !p.children.contains(&winner) {
            return Err(Error::Invalid(format!(
                "{winner} is not a child of partition {partition}"
            )));
        }
        let winner_world = worlds[&winner].clone();
        // Everything that evaporates: the losing children and their subtrees.
        let mut evaporating = Vec::new();
        for c in p.children.iter().filter(|c| **c != winner) {
            evaporating.push(*c);
            evaporating.extend(ledger.tree().descendants(*c)?);
        }
        let mut collapsed_worlds = Vec::new();
        for v in &evaporating {
            if let Some((w, _)) = links.get(v) {
                if !collapsed_worlds.contains(w) && *w != winner_world {
                    collapsed_worlds.push(w.clone());
                }
            }
        }
        // Pull up every owner's whole balance in the winner after resolving.
        let mut ops = vec![Op::Resolve {
            partition,
            winner,
            oracle_source: oracle_choice.source(),
        }];
        let mut pulled = Vec::new();
        for (k, amount) in ledger.balances().filter(|(k, _)| k.verse == winner) {
            pulled.push((
                k.token.as_str().to_string(),
                k.owner.as_str().to_string(),
                amount,
            ));
            ops.push(Op::PullUp {
                token: k.token,
                owner: k.owner,
                partition,
                amount,
            });
        }
        let meta = ResolutionMeta {
            wev: wev_report,
            pull_up_time_ms: Some(t0.elapsed().as_secs_f64() * 1000.0),
        };
        let snapshot = links.get(&winner).and_then(|(_, s)| s.clone());
        crate::trace::mark("pull_up: load + oracle", t0);
        let committed =
            store.commit_pull_up(&ops, &meta, &collapsed_worlds, p.parent, &winner_world);
        let applied = match committed {
            Ok(a) => a,
            Err(e) => {
                // The push_down's snapshot (its frozen session templates
                // hold memory) is not needed whether or not this went
                // through.
                if let Some(snap) = snapshot.as_deref() {
                    let _ = sub.delete_snapshot(snap);
                }
                return Err(e.into());
            }
        };
        crate::trace::mark("pull_up: commit", t0);
        // The ledger has committed: the losing worlds and the snapshot go
        // (gone at once; their storage and cgroups are released later, in
        // the background when this engine is long-lived).
        let ids: Vec<WorldId> = collapsed_worlds
            .iter()
            .filter_map(|w| crate::world::world_id(w).ok())
            .collect();
        let collapsing = sub.collapse(&ids, snapshot.as_deref())?;
        if let Some(snap) = collapsing.snapshot() {
            store.mark_deleted(snap)?;
        }
        self.release(collapsing)?;
        crate::trace::mark("pull_up: losers collapsed", t0);
        let (evaporated, evaporated_value) = crate::verse::resolved_parts(&applied[0].effect)?;
        let pull_up_ms = t0.elapsed().as_secs_f64() * 1000.0;
        store.insert_timing("pull_up_world", Some(&winner.to_string()), pull_up_ms)?;
        Ok(PulledUp {
            resolution_id: resolution_id(partition),
            partition,
            winner,
            winner_world: crate::world::world_id(&winner_world)?,
            oracle_source: oracle_choice.source(),
            evaporated,
            collapsed_worlds,
            evaporated_value,
            pulled,
            wev: wev_report.map(|(w, _)| w),
            pull_up_ms,
        })
    }
}

/// Costs as a game: `GameSense::Cost` with the given Nash and optimum.
pub fn cost_game(nash: f64, optimum: f64) -> GameInput {
    GameInput {
        nash,
        optimum,
        sense: GameSense::Cost,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_score;

    #[test]
    fn scores_parse_from_the_last_line() {
        assert_eq!(parse_score("x\nWORLD_SCORE 1.5\n"), Some(1.5));
        assert_eq!(
            parse_score("WORLD_SCORE 1\nWORLD_SCORE {\"social_cost\": 0.75}\n"),
            Some(0.75)
        );
        assert_eq!(
            parse_score("WORLD_SCORE {\"score\": 2, \"social_cost\": 0.75}"),
            Some(2.0)
        );
        assert_eq!(parse_score("nothing"), None);
        assert_eq!(parse_score("WORLD_SCORE nan"), None);
        assert_eq!(parse_score("WORLD_SCORE {\"other\": 1}"), None);
    }
}
