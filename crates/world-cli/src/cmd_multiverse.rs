//! `world push-down | run-verses | pull-up`: verses over worlds.

use std::time::Duration;

use anyhow::Result;
use world_engine::multiverse::WorldOracle;
use world_engine::verse::default_children;
use world_engine::world::world_id;
use world_engine::{Engine, Error};

use crate::args::{PullUpArgs, RunVersesArgs, WorldOracleKind};
use crate::cmd_verse::{child_spec, partition_id, verse_id};
use crate::output::{opt, table, Out};

/// `world push-down`.
pub fn push_down(
    engine: &Engine,
    out: &Out,
    world: &str,
    children: &[String],
    allow: bool,
) -> Result<()> {
    let specs = if children.is_empty() {
        default_children()
    } else {
        children
            .iter()
            .map(|c| child_spec(c))
            .collect::<Result<Vec<_>>>()?
    };
    let p = engine.push_down(&world_id(world)?, specs, allow)?;
    out.emit(&p, || {
        println!(
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
        print!(
            "{}",
            table(&["verse", "name", "trit", "prob", "world", "seed"], &rows)
        );
        println!(
            "snapshot {} ms, branch {:.1} ms, total {:.1} ms; {} balance(s) pushed down",
            p.snapshot_ms.map_or("-".into(), |s| format!("{s:.1}")),
            p.branch_ms,
            p.total_ms,
            p.pushed.len()
        );
    })
}

/// `world run-verses`: exits 0 when every verse's code succeeded, 1 otherwise.
pub fn run_verses(engine: &Engine, out: &Out, a: RunVersesArgs) -> Result<i32> {
    let mut runs = Vec::new();
    if let Some(p) = &a.partition {
        let p = partition_id(p)?;
        let code = a
            .code
            .clone()
            .ok_or_else(|| Error::Invalid("--partition needs --code".into()))?;
        let ledger = engine.ledger()?;
        for c in &ledger
            .tree()
            .partition_info(p)
            .map_err(Error::from)?
            .children
        {
            runs.push((*c, code.clone()));
        }
    }
    for v in &a.verses {
        let (verse, code) = v
            .split_once('=')
            .ok_or_else(|| Error::Invalid(format!("--verse {v:?} must be VERSE=CODE")))?;
        runs.push((verse_id(verse)?, code.to_string()));
    }
    if runs.is_empty() {
        return Err(Error::Invalid(
            "nothing to run: give --partition P --code CODE or --verse V=CODE".into(),
        )
        .into());
    }
    let timeout = match a.timeout {
        None => None,
        Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
        Some(t) => return Err(Error::Invalid(format!("--timeout {t} must be positive")).into()),
    };
    let results = engine.run_verses(&runs, &a.session, timeout)?;
    let failed = results
        .iter()
        .filter(|r| r.run.error.is_some() || r.run.timed_out)
        .count();
    out.emit(&results, || {
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
        print!(
            "{}",
            table(&["verse", "world", "ms", "score", "status"], &rows)
        );
    })?;
    Ok(if failed > 0 { 1 } else { 0 })
}

/// `world pull-up`.
pub fn pull_up(engine: &Engine, out: &Out, a: PullUpArgs) -> Result<()> {
    let partition = partition_id(&a.partition)?;
    let oracle = match a.oracle {
        WorldOracleKind::Explicit => {
            WorldOracle::Explicit(verse_id(a.winner.as_deref().ok_or_else(|| {
                Error::Invalid("the explicit oracle needs --winner VERSE".into())
            })?)?)
        }
        WorldOracleKind::Score => WorldOracle::Score { highest: !a.lowest },
        WorldOracleKind::Weighted => WorldOracle::Weighted {
            seed: a
                .seed
                .ok_or_else(|| Error::Invalid("the weighted oracle needs --seed N".into()))?,
        },
        WorldOracleKind::Command => {
            if a.argv.is_empty() {
                return Err(
                    Error::Invalid("the command oracle needs a command after --".into()).into(),
                );
            }
            WorldOracle::Command {
                argv: a.argv.clone(),
                highest: !a.lowest,
            }
        }
    };
    let game = crate::cmd_verse::game_input(a.nash, a.optimum, a.sense);
    let r = engine.pull_up(partition, &oracle, game)?;
    out.emit(&r, || {
        println!(
            "{} resolved by {}: {} survives in {}; collapsed {}",
            r.partition,
            r.oracle_source,
            r.winner,
            r.winner_world,
            crate::output::join(&r.evaporated)
        );
        crate::output::resolution_tail(&r.evaporated_value, r.wev.as_ref());
        println!(
            "pull_up {:.1} ms, recorded as {}",
            r.pull_up_ms, r.resolution_id
        );
    })
}
