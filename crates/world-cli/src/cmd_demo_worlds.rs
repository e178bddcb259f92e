//! `world demo` (wev) and `world demo chromatic`: the original design's
//! scenarios over real worlds.
//!
//! **wev** — 1. create a world and load the routing game (Braess, many
//! agents) into its Python session; 2. push it down into nash (-1, 0.45) /
//! optimal (0, 0.35) / chaos (+1, 0.20), one world each, with 1,000 usd of
//! balances pushed into every verse; 3. each verse evolves its strategy in
//! parallel (selfish best response, social optimum, uniform random); 4. the
//! score oracle resolves: the verse whose run reported the **lowest social
//! cost** wins — the outcome a planner would make real — and Braess is
//! used because there the optimum (3/2) beats random play (14/9) by more
//! than sampling noise, so the winner is always `optimal`; 5. pull up:
//! the losers collapse, the balances come back, and PoA = C(nash verse) /
//! C(optimal verse) and WEV = PoA - 1 are recorded, next to the exact 4/3
//! and 1/3.
//!
//! **chromatic** — the three-agent walk: generator (+1) in the chaos
//! verse, coordinator (0) in optimal, validator (-1) in nash, each step's
//! output passed on to the next verse, with the GF(3) sum checked after
//! every step and 0 mod 3 after every round.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use world_core::ids::VerseId;
use world_core::ledger::Op;
use world_core::wev::games;
use world_engine::multiverse::{cost_game, PushedDown, WorldOracle};
use world_engine::python;
use world_engine::verse::{default_children, owner, token};
use world_engine::{Engine, Error};
use world_substrate::{CreateOptions, WorldId};

use crate::args::DemoArgs;
use crate::output::{out, outln};
use crate::output::{table, Out};

struct Progress {
    json: bool,
    total: usize,
    start: Instant,
}

impl Progress {
    fn step(&self, n: usize, msg: &str) {
        if !self.json {
            eprintln!(
                "[{n}/{}] {msg}  ({:.2} s)",
                self.total,
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

/// Creates the demo's world, destroying it again if a later step fails.
struct DemoWorld<'a> {
    engine: &'a Engine,
    ids: Vec<WorldId>,
    keep: bool,
}

impl Drop for DemoWorld<'_> {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for id in &self.ids {
            let _ = self.engine.world_destroy(id);
        }
    }
}

fn need_root() -> Result<()> {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !root {
        return Err(Error::Invalid(
            "worlds need root (namespaces, a loop-mounted btrfs store, cgroups); run as root, or `world demo ledger`".into(),
        )
        .into());
    }
    Ok(())
}

/// Runs `code` in the default session of `world`, failing on an exception.
fn cell(engine: &Engine, world: &WorldId, code: &str) -> Result<String> {
    let r = engine.run_code(
        world,
        "default",
        code,
        Some(std::time::Duration::from_secs(120)),
    )?;
    if let Some(e) = r.error {
        bail!("code in {world} failed:\n{e}");
    }
    Ok(String::from_utf8_lossy(&r.stdout).into_owned())
}

fn prefixed(stdout: &str, prefix: &str) -> Result<(String, Value)> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with(prefix))
        .with_context(|| format!("no {prefix} line in: {stdout}"))?;
    let v: Value = serde_json::from_str(line[prefix.len()..].trim())?;
    Ok((line.to_string(), v))
}

fn verse_named<'a>(p: &'a PushedDown, name: &str) -> &'a world_engine::multiverse::VerseWorld {
    p.verses
        .iter()
        .find(|v| v.name == name)
        .expect("default verses")
}

/// `world demo` (wev).
pub fn wev(engine: &Engine, out: &Out, a: DemoArgs) -> Result<()> {
    need_root()?;
    let p = Progress {
        json: out.json,
        total: 5,
        start: Instant::now(),
    };
    let mut keep = DemoWorld {
        engine,
        ids: Vec::new(),
        keep: a.keep,
    };
    p.step(1, &format!("creating a world and loading a Braess routing game with {} agents into its Python session", a.agents));
    let created = engine.world_create(&CreateOptions::default())?;
    let world = created.id.clone();
    keep.ids.push(world.clone());
    cell(engine, &world, python::ROUTING_GAME)?;
    cell(
        engine,
        &world,
        &format!("setup(game='braess', agents={}, seed={})", a.agents, a.seed),
    )?;
    let root = engine.verse_for_world(&world)?;
    let usd = token("usd")?;
    engine.apply_batch(&[
        Op::Deposit {
            token: usd.clone(),
            verse: root,
            owner: owner("alice")?,
            amount: 600,
        },
        Op::Deposit {
            token: usd.clone(),
            verse: root,
            owner: owner("bob")?,
            amount: 400,
        },
    ])?;

    p.step(2, "push_down into nash (-1, 0.45) / optimal (0, 0.35) / chaos (+1, 0.20): snapshot, one world per verse, balances pushed down");
    let pd = engine.push_down(&world, default_children(), false)?;
    keep.ids.extend(pd.verses.iter().map(|v| v.world.clone()));

    p.step(3, "each verse evolves its strategy in parallel: selfish best response / social optimum / uniform random");
    let strategy = |name: &str| match name {
        "nash" => "selfish",
        "optimal" => "optimal",
        _ => "random",
    };
    let runs: Vec<(VerseId, String)> = pd
        .verses
        .iter()
        .map(|v| {
            (
                v.verse,
                format!("evolve('{}'); report()", strategy(&v.name)),
            )
        })
        .collect();
    let results = engine.run_verses(&runs, "default", Some(std::time::Duration::from_secs(120)))?;
    for r in &results {
        if let Some(e) = &r.run.error {
            bail!("verse {} failed: {e}", r.verse);
        }
    }
    let cost = |name: &str| -> Result<f64> {
        let v = verse_named(&pd, name).verse;
        results
            .iter()
            .find(|r| r.verse == v)
            .and_then(|r| r.run.score)
            .with_context(|| format!("verse {name} reported no score"))
    };
    let (c_nash, c_opt, c_chaos) = (cost("nash")?, cost("optimal")?, cost("chaos")?);

    p.step(
        4,
        "oracle: the verse with the lowest measured social cost wins",
    );
    p.step(
        5,
        "pull_up: losers collapse, balances come back, PoA and WEV recorded",
    );
    let up = engine.pull_up(
        pd.partition,
        &WorldOracle::Score { highest: false },
        Some(cost_game(c_nash, c_opt)),
    )?;
    keep.ids
        .retain(|w| !up.collapsed_worlds.contains(&w.to_string()));
    let ledger = engine.ledger()?;
    let back: u64 = ["alice", "bob"]
        .iter()
        .map(|o| ledger.balance(&usd, root, &owner(o).expect("valid")))
        .sum();
    let exact = games::braess();
    let wevr = up.wev.context("game given")?;
    let db = engine.db_path().display().to_string();
    let rows: Vec<Vec<String>> = pd
        .verses
        .iter()
        .map(|v| {
            let r = results.iter().find(|r| r.verse == v.verse).expect("ran");
            vec![
                v.verse.to_string(),
                v.name.clone(),
                crate::output::trit(i64::from(v.trit)),
                v.prob.clone(),
                strategy(&v.name).to_string(),
                format!("{:.4}", r.run.score.unwrap_or(f64::NAN)),
                format!("{:.1}", r.run.duration_ms),
                v.world.to_string(),
                if v.verse == up.winner {
                    "survives".into()
                } else {
                    "collapsed".into()
                },
            ]
        })
        .collect();
    out.emit(
        &json!({
            "world": world.to_string(), "root_verse": root.to_string(), "partition": pd.partition.to_string(),
            "gf3_sum": pd.gf3_sum, "push_down_ms": pd.total_ms, "snapshot_ms": pd.snapshot_ms, "branch_ms": pd.branch_ms,
            "costs": {"nash": c_nash, "optimal": c_opt, "chaos": c_chaos},
            "exact": {"nash": exact.nash, "optimal": exact.optimum, "chaos": exact.uniform_random},
            "winner": up.winner.to_string(), "winner_world": up.winner_world.to_string(),
            "poa": wevr.poa, "wev": wevr.wev, "wev_abs": wevr.wev_abs,
            "evaporated_value": up.evaporated_value, "pull_up_ms": up.pull_up_ms,
            "root_balance_after": back, "db": db,
        }),
        || {
            outln!();
            out!("{}", table(&["verse", "name", "trit", "prob", "strategy", "social_cost", "run_ms", "world", "outcome"], &rows));
            outln!();
            outln!("exact costs (continuum Braess): nash 2, optimal 3/2, uniform random 14/9 = {:.4}", exact.uniform_random.unwrap_or(f64::NAN));
            outln!("GF(3): trits -1 + 0 + +1 = {} (conserved)", pd.gf3_sum);
            outln!("price of anarchy: {:.4} (exact 4/3 = 1.3333)   WEV = PoA - 1: {:.4} (exact 1/3 = 0.3333)", wevr.poa, wevr.wev);
            outln!(
                "push_down {:.1} ms (snapshot {} ms, branch {:.1} ms), pull_up {:.1} ms",
                pd.total_ms,
                pd.snapshot_ms.map_or("-".into(), |s| format!("{s:.1}")),
                pd.branch_ms,
                up.pull_up_ms
            );
            for (t, v) in &up.evaporated_value {
                outln!("evaporated with the collapsed verses: {v} {t} (their copies of the balances)");
            }
            outln!("balances pulled back into the world's verse {root}: {back} usd (deposited 1000)");
            outln!("surviving world: {} ({})", up.winner_world, if a.keep { "kept" } else { "destroyed at exit; --keep keeps it" });
            outln!("records: {db}");
            outln!("  duckdb {db} \"SELECT * FROM verse_resolutions ORDER BY resolved_at DESC LIMIT 3\"");
        },
    )
}

/// `world demo chromatic`.
pub fn chromatic(engine: &Engine, out: &Out, a: DemoArgs) -> Result<()> {
    need_root()?;
    const ROUNDS: usize = 3;
    let p = Progress {
        json: out.json,
        total: 4,
        start: Instant::now(),
    };
    let mut keep = DemoWorld {
        engine,
        ids: Vec::new(),
        keep: a.keep,
    };
    p.step(1, "creating a world and loading the chromatic walk");
    let world = engine.world_create(&CreateOptions::default())?.id;
    keep.ids.push(world.clone());
    cell(engine, &world, python::CHROMATIC_WALK)?;
    cell(
        engine,
        &world,
        &format!(
            "chromatic_setup(game='pigou', agents={}, seed={})",
            a.agents, a.seed
        ),
    )?;
    p.step(2, "push_down into nash / optimal / chaos");
    let pd = engine.push_down(&world, default_children(), false)?;
    keep.ids.extend(pd.verses.iter().map(|v| v.world.clone()));
    let (gen, coord, val) = (
        verse_named(&pd, "chaos"),
        verse_named(&pd, "optimal"),
        verse_named(&pd, "nash"),
    );
    p.step(3, &format!("{ROUNDS} rounds: generator (+1, chaos) -> coordinator (0, optimal) -> validator (-1, nash)"));
    let mut steps = Vec::new();
    let mut previous: Option<String> = None;
    let mut trit_sum: i64 = 0;
    for round in 1..=ROUNDS {
        for (agent, v, call) in [
            ("generator", gen, "generate_proposals"),
            ("coordinator", coord, "coordinate_proposals"),
            ("validator", val, "validate_proposals"),
        ] {
            let arg = match (&previous, agent) {
                (None, _) => String::new(),
                (Some(line), "generator") => format!("previous={}", serde_json::to_string(line)?),
                (Some(line), _) => serde_json::to_string(line)?,
            };
            let stdout = cell(engine, &v.world, &format!("{call}({arg})"))?;
            let (line, step) = prefixed(&stdout, "WORLD_STEP")?;
            trit_sum += i64::from(v.trit);
            let gf3 = step
                .get("gf3")
                .and_then(|g| g.get("sum"))
                .and_then(|s| s.as_i64());
            if gf3.map(|g| g.rem_euclid(3)) != Some(trit_sum.rem_euclid(3)) {
                bail!("GF(3) broken at round {round}, {agent}: the walk says {gf3:?}, the verses' trits sum to {trit_sum}");
            }
            steps.push(
                json!({"round": round, "agent": agent, "verse": v.verse.to_string(), "trit": v.trit,
                "gf3_running": trit_sum.rem_euclid(3), "step": step}),
            );
            previous = Some(line);
        }
        if trit_sum.rem_euclid(3) != 0 {
            bail!("GF(3) not conserved after round {round}: {trit_sum}");
        }
    }
    p.step(
        4,
        "pull_up: the oracle picks the coordinator's verse (the seed's `oracle-result :optimal`)",
    );
    let up = engine.pull_up(pd.partition, &WorldOracle::Explicit(coord.verse), None)?;
    keep.ids
        .retain(|w| !up.collapsed_worlds.contains(&w.to_string()));
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            let st = &s["step"];
            let n = st
                .get("proposals")
                .and_then(|p| p.as_array())
                .map_or(0, |p| p.len());
            let summary = match s["agent"].as_str() {
                Some("generator") => format!("{n} proposals"),
                Some("coordinator") => format!(
                    "ranked {n}, best {}",
                    st.get("best").map_or("-".into(), |b| b.to_string())
                ),
                _ => format!(
                    "{} of {n} pass the Nash test",
                    st.get("valid")
                        .and_then(|v| v.as_array())
                        .map_or(0, |v| v.len())
                ),
            };
            vec![
                s["round"].to_string(),
                s["agent"].as_str().unwrap_or("").to_string(),
                s["verse"].as_str().unwrap_or("").to_string(),
                crate::output::trit(s["trit"].as_i64().unwrap_or(0)),
                s["gf3_running"].to_string(),
                summary,
            ]
        })
        .collect();
    out.emit(
        &json!({"steps": steps, "winner": up.winner.to_string(), "gf3_sum": pd.gf3_sum}),
        || {
            outln!();
            out!(
                "{}",
                table(&["round", "agent", "verse", "trit", "gf3", "result"], &rows)
            );
            outln!(
                "GF(3) held at every step; 0 mod 3 after each of the {ROUNDS} rounds. {} survives.",
                up.winner
            );
        },
    )
}
