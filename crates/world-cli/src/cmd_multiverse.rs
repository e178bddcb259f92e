//! `world push-down | run-verses | pull-up`: verses over worlds.
//!
//! All three go through a running daemon ([`Via::Daemon`]). The engine's
//! results and the daemon's answers are the same JSON: both are printed
//! from that JSON (`--json` as it is, tables from the fields below).

use anyhow::Result;
use serde::Deserialize;
use serde_json::Value;
use world_core::ids::VerseId;
use world_core::wev::GameSense;
use world_core::wev::WevReport;
use world_engine::actions::{self, GameRequest, OracleKind, PullUpRequest};
use world_engine::world::world_id;
use world_engine::Error;

use crate::args::{PullUpArgs, RunVersesArgs, Sense, WorldOracleKind};
use crate::cmd_verse::{child_request, partition_id};
use crate::output::{opt, table, Out};
use crate::output::{out, outln};
use crate::remote::{enc, Via};

/// What the push-down table shows of `world_engine::multiverse::PushedDown`.
#[derive(Deserialize)]
struct PushedDown {
    world: String,
    parent: VerseId,
    partition: String,
    gf3_sum: i64,
    verses: Vec<VerseWorld>,
    snapshot_ms: Option<f64>,
    branch_ms: f64,
    total_ms: f64,
    pushed: Vec<Value>,
}

/// One verse of [`PushedDown`].
#[derive(Deserialize)]
struct VerseWorld {
    verse: VerseId,
    name: String,
    trit: i8,
    prob: String,
    seed: u64,
    world: String,
}

/// What the run-verses table shows of `world_engine::multiverse::VerseResult`.
#[derive(Deserialize)]
struct VerseResult {
    verse: VerseId,
    world: String,
    run: VerseRun,
}

/// Of `world_store::verse_worlds::VerseRun`.
#[derive(Deserialize)]
struct VerseRun {
    error: Option<String>,
    timed_out: bool,
    duration_ms: f64,
    score: Option<f64>,
}

/// What pull-up prints of `world_engine::multiverse::PulledUp`.
#[derive(Deserialize)]
struct PulledUp {
    resolution_id: String,
    partition: String,
    winner: VerseId,
    winner_world: String,
    oracle_source: String,
    evaporated: Vec<VerseId>,
    evaporated_value: Vec<(String, u128)>,
    wev: Option<WevReport>,
    pull_up_ms: f64,
}

/// `world push-down`.
pub fn push_down(
    via: &Via,
    out: &Out,
    world: &str,
    children: &[String],
    allow: bool,
) -> Result<()> {
    let req = actions::PushDownRequest {
        children: if children.is_empty() {
            None
        } else {
            Some(
                children
                    .iter()
                    .map(|c| child_request(c))
                    .collect::<Result<Vec<_>>>()?,
            )
        },
        allow_nonconserving: Some(allow),
    };
    let specs = req.children()?;
    let world = world_id(world)?;
    let raw = match via {
        Via::Local(engine) => serde_json::to_string(&engine.push_down(&world, specs, allow)?)?,
        Via::Daemon(d) => {
            let path = format!("/v1/worlds/{}/push-down", enc(world.as_str()));
            d.post_text(&path, &req)?
        }
    };
    let p: PushedDown = serde_json::from_str(&raw)?;
    out.emit_raw(&raw, || {
        outln!(
            "{} pushed down into {} (verse {} -> partition {}, gf3_sum {})",
            p.world,
            p.verses.len(),
            p.parent,
            p.partition,
            p.gf3_sum
        );
        let rows: Vec<Vec<String>> = p
            .verses
            .iter()
            .map(|v| {
                vec![
                    v.verse.to_string(),
                    v.name.clone(),
                    crate::output::trit(i64::from(v.trit)),
                    v.prob.clone(),
                    v.world.to_string(),
                    format!("{:#018x}", v.seed),
                ]
            })
            .collect();
        out!(
            "{}",
            table(&["verse", "name", "trit", "prob", "world", "seed"], &rows)
        );
        outln!(
            "snapshot {} ms, branch {:.1} ms, total {:.1} ms; {} balance(s) pushed down",
            p.snapshot_ms.map_or("-".into(), |s| format!("{s:.1}")),
            p.branch_ms,
            p.total_ms,
            p.pushed.len()
        );
    })
}

/// `world run-verses`: exits 0 when every verse's code succeeded, 1 otherwise.
pub fn run_verses(via: &Via, out: &Out, a: RunVersesArgs) -> Result<i32> {
    if a.partition.is_some() != a.code.is_some() {
        return Err(Error::Invalid("--partition and --code go together".into()).into());
    }
    let mut runs = Vec::new();
    for v in &a.verses {
        let (verse, code) = v
            .split_once('=')
            .ok_or_else(|| Error::Invalid(format!("--verse {v:?} must be VERSE=CODE")))?;
        runs.push(actions::VerseCode {
            verse: verse.to_string(),
            code: code.to_string(),
        });
    }
    let req = actions::RunVersesRequest {
        partition: a.partition.clone(),
        code: a.code.clone(),
        runs: (!runs.is_empty()).then_some(runs),
        session: Some(a.session.clone()),
        timeout: a.timeout,
    };
    let actions::VerseRuns {
        partition,
        runs: named,
        timeout,
        ..
    } = req.checked()?;
    let raw = match via {
        Via::Local(engine) => {
            // The partition's children first, then the named verses.
            let mut runs = Vec::new();
            if let Some((p, code)) = &partition {
                let ledger = engine.ledger()?;
                for c in &ledger
                    .tree()
                    .partition_info(*p)
                    .map_err(Error::from)?
                    .children
                {
                    runs.push((*c, code.clone()));
                }
            }
            runs.extend(named);
            serde_json::to_string(&engine.run_verses(&runs, &a.session, timeout)?)?
        }
        Via::Daemon(d) => d.post_text("/v1/verses/run", &req)?,
    };
    let results: Vec<VerseResult> = serde_json::from_str(&raw)?;
    let failed = results
        .iter()
        .filter(|r| r.run.error.is_some() || r.run.timed_out)
        .count();
    out.emit_raw(&raw, || {
        let rows: Vec<Vec<String>> = results
            .iter()
            .map(|r| {
                let status = if r.run.timed_out {
                    "timeout".to_string()
                } else if let Some(e) = &r.run.error {
                    e.lines().last().unwrap_or("error").to_string()
                } else {
                    "ok".into()
                };
                vec![
                    r.verse.to_string(),
                    r.world.to_string(),
                    format!("{:.1}", r.run.duration_ms),
                    opt(&r.run.score),
                    status,
                ]
            })
            .collect();
        out!(
            "{}",
            table(&["verse", "world", "ms", "score", "status"], &rows)
        );
    })?;
    Ok(if failed > 0 { 1 } else { 0 })
}

/// `world pull-up`.
pub fn pull_up(via: &Via, out: &Out, a: PullUpArgs) -> Result<()> {
    let partition = partition_id(&a.partition)?;
    // One typed request, run here or sent to the daemon as it is.
    let req = PullUpRequest {
        oracle: match a.oracle {
            WorldOracleKind::Explicit => OracleKind::Explicit,
            WorldOracleKind::Score => OracleKind::Score,
            WorldOracleKind::Weighted => OracleKind::Weighted,
            WorldOracleKind::Command => OracleKind::Command,
        },
        winner: a.winner.clone(),
        lowest: Some(a.lowest),
        seed: a.seed,
        argv: (!a.argv.is_empty()).then(|| a.argv.clone()),
        game: match (a.nash, a.optimum) {
            (Some(nash), Some(optimum)) => Some(GameRequest {
                nash,
                optimum,
                sense: Some(match a.sense {
                    Sense::Cost => GameSense::Cost,
                    Sense::Welfare => GameSense::Welfare,
                }),
            }),
            _ => None,
        },
    };
    let oracle = req.oracle()?;
    let game = req.game()?;
    let raw = match via {
        Via::Local(engine) => serde_json::to_string(&engine.pull_up(partition, &oracle, game)?)?,
        Via::Daemon(d) => {
            let path = format!("/v1/partitions/{}/pull-up", enc(&partition.to_string()));
            d.post_text(&path, &req)?
        }
    };
    let r: PulledUp = serde_json::from_str(&raw)?;
    out.emit_raw(&raw, || {
        outln!(
            "{} resolved by {}: {} survives in {}; collapsed {}",
            r.partition,
            r.oracle_source,
            r.winner,
            r.winner_world,
            crate::output::join(&r.evaporated)
        );
        crate::output::resolution_tail(&r.evaporated_value, r.wev.as_ref());
        outln!(
            "pull_up {:.1} ms, recorded as {}",
            r.pull_up_ms,
            r.resolution_id
        );
    })
}
