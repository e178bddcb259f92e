//! `world demo ledger`: the verse ledger alone, without worlds.
//!
//! Walks the ledger through the whole lifecycle against the real database,
//! with the social costs of the Pigou routing game computed by
//! `world_core::wev::games`: create a root verse, deposit, partition into
//! nash / optimal / chaos (GF(3) checked), push every balance down, let the
//! score oracle pick the verse with the lowest social cost, resolve (the
//! other verses evaporate), pull the balances back up, and print PoA and
//! WEV. The worlds scenarios are in `cmd_demo_worlds`.

use std::time::Instant;

use anyhow::Result;
use serde_json::json;
use world_core::ids::VerseId;
use world_core::ledger::Op;
use world_core::wev::games;
use world_core::wev::GameSense;
use world_engine::verse::{default_children, owner, token, GameInput, OracleChoice};
use world_engine::Engine;

use crate::args::DemoArgs;
use crate::output::{out, outln};
use crate::output::{table, Out};

fn step(out: &Out, n: usize, msg: &str) {
    if !out.json {
        eprintln!("[{n}/6] {msg}");
    }
}

/// Runs the ledger walkthrough.
pub fn ledger(engine: &Engine, out: &Out, a: DemoArgs) -> Result<()> {
    let started = Instant::now();
    let usd = token("usd")?;
    let (alice, bob) = (owner("alice")?, owner("bob")?);
    let game = games::pigou(1);

    step(
        out,
        1,
        "creating a root verse and depositing 1000 usd (alice 600, bob 400)",
    );
    let root = engine.verse_create("demo", a.seed)?;
    engine.apply_batch(&[
        Op::Deposit {
            token: usd.clone(),
            verse: root,
            owner: alice.clone(),
            amount: 600,
        },
        Op::Deposit {
            token: usd.clone(),
            verse: root,
            owner: bob.clone(),
            amount: 400,
        },
    ])?;

    step(
        out,
        2,
        "partitioning into nash (-1, 0.45) / optimal (0, 0.35) / chaos (+1, 0.20), GF(3) checked",
    );
    let specs = default_children();
    let (partition, verses, gf3) = engine.verse_partition(root, specs.clone(), false)?;

    step(out, 3, "pushing every balance down into all three verses");
    engine.apply_batch(&[
        Op::PushDown {
            token: usd.clone(),
            owner: alice.clone(),
            parent: root,
            amount: 600,
        },
        Op::PushDown {
            token: usd.clone(),
            owner: bob.clone(),
            parent: root,
            amount: 400,
        },
    ])?;

    step(
        out,
        4,
        "each verse plays the Pigou routing game with its strategy (selfish / optimal / random)",
    );
    let costs = [
        game.nash,
        game.optimum,
        game.uniform_random.unwrap_or(game.optimum),
    ];
    let scores: Vec<(VerseId, f64)> = verses.iter().copied().zip(costs).collect();

    step(
        out,
        5,
        "oracle: lowest social cost wins (ties go to the lower child index)",
    );
    let r = engine.verse_resolve(
        partition,
        &OracleChoice::Score {
            scores: scores.clone(),
            highest: false,
        },
        Some(GameInput {
            nash: game.nash,
            optimum: game.optimum,
            sense: GameSense::Cost,
        }),
    )?;

    step(out, 6, "pulling the surviving balances back up to the root");
    engine.apply_batch(&[
        Op::PullUp {
            token: usd.clone(),
            owner: alice.clone(),
            partition,
            amount: 600,
        },
        Op::PullUp {
            token: usd.clone(),
            owner: bob.clone(),
            partition,
            amount: 400,
        },
    ])?;

    let ledger = engine.ledger()?;
    let wev = r.wev.expect("game given");
    let rows: Vec<Vec<String>> = verses
        .iter()
        .zip(&specs)
        .zip(costs)
        .map(|((v, s), c)| {
            vec![
                v.to_string(),
                s.name.clone(),
                s.trit.to_string(),
                s.prob.to_string(),
                format!("{c:.4}"),
                if *v == r.winner {
                    "survives".into()
                } else {
                    "collapsed".into()
                },
            ]
        })
        .collect();
    let db = engine.db_path().display().to_string();
    out.emit(
        &json!({
            "root": root.to_string(), "partition": partition.to_string(), "gf3_sum": gf3,
            "verses": scores.iter().map(|(v, c)| json!({"verse": v.to_string(), "social_cost": c})).collect::<Vec<_>>(),
            "winner": r.winner.to_string(), "poa": wev.poa, "wev": wev.wev, "wev_abs": wev.wev_abs,
            "evaporated_value": r.evaporated_value, "db": db,
            "root_balance_after": ledger.balance(&usd, root, &alice) + ledger.balance(&usd, root, &bob),
        }),
        || {
            outln!();
            out!("{}", table(&["verse", "name", "trit", "prob", "social_cost", "outcome"], &rows));
            outln!();
            outln!("GF(3) sum of the partition: {gf3} (conserved: {})", gf3.rem_euclid(3) == 0);
            outln!("price of anarchy: {:.6} (exact 4/3)   WEV = PoA - 1: {:.6} (exact 1/3)", wev.poa, wev.wev);
            for (t, v) in &r.evaporated_value {
                outln!("evaporated with the collapsed verses: {v} {t}");
            }
            outln!(
                "root balance after pull-up: {} usd (deposited 1000)",
                ledger.balance(&usd, root, &alice) + ledger.balance(&usd, root, &bob)
            );
            outln!("done in {:.1} ms; records in {db}", started.elapsed().as_secs_f64() * 1000.0);
            outln!("see them:  duckdb {db} \"SELECT * FROM verse_resolutions ORDER BY resolved_at DESC LIMIT 5\"");
        },
    )
}
