//! `world bench ledger | substrate`: throughput and latency tables.
//!
//! Benchmarks are measured, never asserted: each row reports p50 and p90
//! over several runs, beside a baseline measured in the same run (serial
//! execution for the parallel executor; `unshare` and `bwrap` for worlds).

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use world_core::ids::{Owner, Token, VerseId};
use world_core::ledger::{Ledger, Op};
use world_core::parallel::{execute_parallel, execute_serial};
use world_core::workload::{self, Mix};
use world_engine::Engine;

use crate::args::BenchCmd;
use crate::output::{out, outln};
use crate::output::{table, Out};

/// Runs one benchmark.
pub fn run(engine: &Engine, out: &Out, cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Ledger { ops, runs } => ledger(out, ops.max(1000), runs.max(3)),
        BenchCmd::Clients {
            n,
            url,
            ssh_port,
            python,
        } => crate::cmd_bench_clients::run(out, n.max(3), &url, ssh_port, &python),
        BenchCmd::Substrate { n, idle } => {
            let report =
                world_substrate::bench::bench_substrate(engine.substrate()?, n.max(3), idle)?;
            print_report(out, &report)
        }
        BenchCmd::Verses { n, mb } => verses(engine, out, n.max(3), mb),
        BenchCmd::Peers { n, snapshots } => peers(engine, out, n.max(3), snapshots),
        BenchCmd::Branch { n, sizes, session } => {
            use crate::args::BenchSession;
            use world_substrate::bench::Session;
            let sessions: &[Session] = match session {
                BenchSession::Idle => &[Session::Idle],
                BenchSession::Mb100 => &[Session::Mb100],
                BenchSession::Both => &[Session::Idle, Session::Mb100],
            };
            let report = world_substrate::bench::bench_branch(
                engine.substrate()?,
                n.max(3),
                &sizes,
                sessions,
            )?;
            print_report(out, &report)
        }
    }
}

/// `world bench peers`: the table, with the load average at start and end.
fn peers(engine: &Engine, out: &Out, n: usize, snapshots: usize) -> Result<()> {
    let load = || {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let before = load();
    let dir = world_substrate::bench_peers::peers_dir();
    eprintln!(
        "world bench peers: {n} interleaved rounds, bundles from {} ...",
        dir.display()
    );
    let rows = world_substrate::bench_peers::bench_peers(engine.substrate()?, n, snapshots, &dir)?;
    let after = load();
    let json: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name, "n": r.n,
                "p50_ms": r.p50.is_finite().then_some(r.p50),
                "p90_ms": r.p90.is_finite().then_some(r.p90),
                "ratio_to_world": r.ratio, "note": r.note,
            })
        })
        .collect();
    let doc = serde_json::json!({"load_start": before, "load_end": after, "rows": json});
    out.emit(&doc, || {
        out!("load average at start {before}, at end {after}\n");
        outln!(
            "{:<52} {:>4} {:>10} {:>10} {:>8}",
            "operation",
            "n",
            "p50",
            "p90",
            "x world"
        );
        for r in &rows {
            match &r.note {
                Some(note) if r.n == 0 => outln!("{:<52}    -  {note}", r.name),
                _ => outln!(
                    "{:<52} {:>4} {:>7.2} ms {:>7.2} ms {:>8}",
                    r.name,
                    r.n,
                    r.p50,
                    r.p90,
                    r.ratio.map_or_else(String::new, |x| format!("{x:.2}x"))
                ),
            }
        }
    })
}

fn print_report(out: &Out, report: &world_substrate::bench::BenchReport) -> Result<()> {
    let rows: Vec<_> = report
        .rows
        .iter()
        .map(|r| serde_json::json!({"name": r.name, "n": r.n, "p50": r.p50, "p90": r.p90, "unit": r.unit}))
        .collect();
    out.emit(&rows, || out!("{report}"))
}

#[derive(Debug, Serialize)]
struct Row {
    bench: String,
    ops: usize,
    runs: usize,
    p50_ops_per_s: f64,
    p90_ops_per_s: f64,
    baseline: String,
    ratio_p50: Option<f64>,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Ops per second of `f` over `runs`, each on a fresh clone of `ledger`.
fn rate(
    ledger: &Ledger,
    ops: &[Op],
    runs: usize,
    mut f: impl FnMut(&mut Ledger, &[Op]),
) -> Vec<f64> {
    (0..runs)
        .map(|_| {
            let mut l = ledger.clone();
            let t = Instant::now();
            f(&mut l, ops);
            ops.len() as f64 / t.elapsed().as_secs_f64()
        })
        .collect()
}

fn ledger(out: &Out, n: usize, runs: usize) -> Result<()> {
    // Enough untouched cells for conflict-free batches: a conflict-free
    // push_down or pull_up uses all of one owner's cells (see
    // world_core::workload).
    let owners = n + 16;
    let base = workload::setup_ledger(owners, 3, 1_000_000);
    let mut rows = Vec::new();
    let kinds = [
        ("transfer", Mix::TRANSFERS),
        (
            "push_down",
            Mix {
                transfer: 0,
                push_down: 1,
                pull_up: 0,
            },
        ),
        (
            "pull_up",
            Mix {
                transfer: 0,
                push_down: 0,
                pull_up: 1,
            },
        ),
        ("mixed", Mix::MIXED),
    ];
    for (name, mix) in kinds {
        eprintln!("bench ledger: {name} x {n}, {runs} runs");
        let ops = workload::batch(&base, n, 0.0, 7, mix);
        let mut r = rate(&base, &ops, runs, |l, o| {
            std::hint::black_box(execute_serial(l, o));
        });
        rows.push(Row {
            bench: format!("in-memory {name}, 1 thread"),
            ops: n,
            runs,
            p50_ops_per_s: pct(&mut r, 0.5),
            p90_ops_per_s: pct(&mut r, 0.1), // 90% of runs were at least this fast
            baseline: "goal 1,000,000/s".into(),
            ratio_p50: None,
        });
    }
    for conflict in [0.0, 0.1, 0.5] {
        eprintln!(
            "bench ledger: parallel at {:.0}% conflicts",
            conflict * 100.0
        );
        let ops = workload::mixed_batch(&base, n, conflict, 11);
        let mut serial = rate(&base, &ops, runs, |l, o| {
            std::hint::black_box(execute_serial(l, o));
        });
        let mut par = rate(&base, &ops, runs, |l, o| {
            std::hint::black_box(execute_parallel(l, o, 2));
        });
        let (s50, p50) = (pct(&mut serial, 0.5), pct(&mut par, 0.5));
        rows.push(Row {
            bench: format!(
                "parallel executor, 2 threads, {:.0}% conflicts",
                conflict * 100.0
            ),
            ops: n,
            runs,
            p50_ops_per_s: p50,
            p90_ops_per_s: pct(&mut par, 0.1),
            baseline: format!("serial {s50:.0}/s"),
            ratio_p50: Some(p50 / s50),
        });
    }
    rows.push(persisted(runs, 1000)?);
    rows.push(persisted(runs, 10_000)?);
    out.emit(&rows, || {
        let r: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.bench.clone(),
                    r.ops.to_string(),
                    r.runs.to_string(),
                    format!("{:.0}", r.p50_ops_per_s),
                    format!("{:.0}", r.p90_ops_per_s),
                    r.baseline.clone(),
                    r.ratio_p50.map_or("-".into(), |x| format!("{x:.2}x")),
                ]
            })
            .collect();
        out!(
            "{}",
            table(
                &[
                    "benchmark",
                    "ops",
                    "runs",
                    "p50 ops/s",
                    "p90 ops/s",
                    "baseline (same run)",
                    "speed-up p50"
                ],
                &r
            )
        );
        outln!("p90 ops/s: 90% of runs were at least this fast.");
    })
}

/// Batches of `batch` transfers committed into a DuckDB file, one
/// transaction each (load the ledger, apply, append the journal, upsert
/// the balances).
fn persisted(runs: usize, batch: usize) -> Result<Row> {
    eprintln!("bench ledger: persisted batches of {batch} into DuckDB, {runs} runs");
    let dir = std::env::temp_dir().join(format!("world-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.duckdb");
    let result = (|| -> Result<Row> {
        let store = world_store::Store::open(&path)?;
        let usd = Token::new(workload::TOKEN)?;
        let owners = batch * runs / 2 + 16;
        let mut setup = vec![
            Op::CreateRoot {
                name: "bench".into(),
                seed: 1,
            },
            Op::Partition {
                parent: VerseId(1),
                children: workload::children_specs(3),
                allow_nonconserving: false,
            },
        ];
        for i in 0..owners {
            let o = Owner::new(&format!("o{i}"))?;
            setup.push(Op::Deposit {
                token: usd.clone(),
                verse: VerseId(1),
                owner: o.clone(),
                amount: 2_000_000,
            });
            setup.push(Op::PushDown {
                token: usd.clone(),
                owner: o,
                parent: VerseId(1),
                amount: 1_000_000,
            });
        }
        store.apply(&setup)?;
        let mut rates = Vec::new();
        for run in 0..runs {
            let ledger = store.load_ledger()?;
            let ops = workload::transfer_batch(&ledger, batch, 0.0, run as u64);
            let t = Instant::now();
            store.apply(&ops)?;
            rates.push(batch as f64 / t.elapsed().as_secs_f64());
        }
        Ok(Row {
            bench: format!("persisted into DuckDB, batches of {batch}"),
            ops: batch,
            runs,
            p50_ops_per_s: pct(&mut rates, 0.5),
            p90_ops_per_s: pct(&mut rates, 0.1),
            baseline: "goal 50,000/s".into(),
            ratio_p50: None,
        })
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// `world bench verses`: full push_down -> run -> pull_up cycles of 3
/// verses from a world whose Python session holds `mb` MB, then a push_down
/// to 27 verses (three levels of three). Each cycle's winner is pushed
/// down again, so the cycles also exercise nesting.
fn verses(engine: &Engine, out: &Out, n: usize, mb: usize) -> Result<()> {
    use world_engine::multiverse::WorldOracle;
    use world_engine::verse::default_children;
    use world_substrate::bench::{BenchReport, BenchRow};
    let row = |name: &str, v: &mut Vec<f64>, unit: &'static str| BenchRow {
        name: name.to_string(),
        n: v.len(),
        p50: pct(v, 0.5),
        p90: pct(v, 0.9),
        unit,
    };
    let world = engine
        .world_create(&world_substrate::CreateOptions {
            limits: world_substrate::Limits {
                mem_size_mib: (mb as u64) * 4 + 512,
                ..Default::default()
            },
            ..Default::default()
        })?
        .id;
    let mut made = vec![world.clone()];
    // The unresolved push_downs' snapshots (pull_up deletes the others).
    let mut snaps: Vec<String> = Vec::new();
    let result = (|| -> Result<BenchReport> {
        engine.run_code(
            &world,
            "default",
            &format!("import gc; data = b'x' * ({mb} << 20); gc.freeze()"),
            None,
        )?;
        let (mut pd, mut run, mut up, mut cycle, mut user) =
            (vec![], vec![], vec![], vec![], vec![]);
        let mut idle_cycle = Vec::new();
        let mut current = world.clone();
        // One cycle: push_down, run "len(data)" in each verse, pull_up
        // choosing optimal. Returns (push_down, run, user code, pull_up) ms.
        let one = |engine: &Engine,
                   current: &mut world_substrate::WorldId,
                   made: &mut Vec<world_substrate::WorldId>|
         -> Result<[f64; 4]> {
            let t = Instant::now();
            let p = engine.push_down(current, default_children(), false)?;
            let t_pd = t.elapsed().as_secs_f64() * 1e3;
            made.extend(p.verses.iter().map(|v| v.world.clone()));
            let codes: Vec<_> = p
                .verses
                .iter()
                .map(|v| (v.verse, "len(data)".to_string()))
                .collect();
            let t1 = Instant::now();
            let r = engine.run_verses(&codes, "default", None)?;
            let t_run = t1.elapsed().as_secs_f64() * 1e3;
            let code_ms = r.iter().map(|x| x.run.duration_ms).fold(0.0, f64::max);
            let t2 = Instant::now();
            let u = engine.pull_up(p.partition, &WorldOracle::Explicit(p.verses[1].verse), None)?;
            let t_up = t2.elapsed().as_secs_f64() * 1e3;
            *current = u.winner_world.clone();
            Ok([t_pd, t_run, code_ms, t_up])
        };
        // Back to back: the record writer catches up in the background.
        let busy = Instant::now();
        for i in 0..n {
            eprintln!("bench verses: cycle {}/{n}", i + 1);
            let [t_pd, t_run, code_ms, t_up] = one(engine, &mut current, &mut made)?;
            pd.push(t_pd);
            run.push(t_run);
            up.push(t_up);
            user.push(code_ms);
            cycle.push(t_pd + t_run + t_up - code_ms);
        }
        let pending = engine.records_pending()?;
        let t = Instant::now();
        engine.sync_records()?;
        let mut drain = vec![t.elapsed().as_secs_f64() * 1e3];
        let mut sustained = vec![busy.elapsed().as_secs_f64() * 1e3 / n as f64];
        // One at a time, the records written before the next cycle;
        // interleaved with the same cycle on an engine that writes its
        // records in line (a held database of its own, no spool).
        let dir = tempfile::tempdir()?;
        let inline_engine = Engine::new(dir.path().join("inline.duckdb"))
            .with_substrate(engine.substrate()?.config().clone())
            .with_inline_records()
            .with_store_mode(world_engine::StoreMode::held());
        let mut inline_cycle = Vec::new();
        for i in 0..n {
            eprintln!("bench verses: cycle {}/{n}, records written between", i + 1);
            let [t_pd, t_run, code_ms, t_up] = one(engine, &mut current, &mut made)?;
            idle_cycle.push(t_pd + t_run + t_up - code_ms);
            engine.sync_records()?;
            eprintln!("bench verses: cycle {}/{n}, records in line", i + 1);
            let [t_pd, t_run, code_ms, t_up] = one(&inline_engine, &mut current, &mut made)?;
            inline_cycle.push(t_pd + t_run + t_up - code_ms);
        }
        eprintln!("bench verses: 27 verses (three levels of three)");
        let t = Instant::now();
        let l1 = engine.push_down(&current, default_children(), false)?;
        snaps.extend(l1.snapshot.clone());
        let mut leaves = 0;
        for v in &l1.verses {
            made.push(v.world.clone());
            let l2 = engine.push_down(&v.world, default_children(), false)?;
            snaps.extend(l2.snapshot.clone());
            for w in &l2.verses {
                made.push(w.world.clone());
                let l3 = engine.push_down(&w.world, default_children(), false)?;
                snaps.extend(l3.snapshot.clone());
                made.extend(l3.verses.iter().map(|x| x.world.clone()));
                leaves += l3.verses.len();
            }
        }
        let mut t27 = vec![t.elapsed().as_secs_f64() * 1e3];
        // The substrate's share of a push_down, measured alone: snapshot
        // and branch of 3 from the same live world, no ledger, no records.
        let sub = engine.substrate()?;
        let mut floor = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            let b = sub.branch_world(&current, 3, &Default::default())?;
            floor.push(t.elapsed().as_secs_f64() * 1e3);
            for c in &b.children {
                let _ = world_substrate::Substrate::destroy(sub, c);
            }
        }
        let mut fork =
            world_substrate::bench::python_fork_baseline(n, mb, true).unwrap_or_default();
        let mut rep = BenchReport::default();
        let rows: [(String, &mut Vec<f64>); 12] = [
            ("push_down into 3 verses (snapshot + branch + ledger)".into(), &mut pd),
            ("run in 3 verses in parallel (wall)".into(), &mut run),
            ("  of which the user code itself (slowest verse)".into(), &mut user),
            ("pull_up (oracle + collapse 2 worlds + ledger)".into(), &mut up),
            ("full cycle minus user code (goal <= 30 ms)".into(), &mut cycle),
            ("  the same, records written between cycles (writer idle)".into(), &mut idle_cycle),
            (
                "baseline: the same, records written in line (no spool), interleaved".into(),
                &mut inline_cycle,
            ),
            (
                format!("records still to write after {n} cycles back to back ({pending} batches)"),
                &mut drain,
            ),
            (
                "sustained: wall time per back-to-back cycle, records included".into(),
                &mut sustained,
            ),
            (format!("push_down to {leaves} verses, three levels of three"), &mut t27),
            (
                "baseline: snapshot + branch 3 of the same world alone (substrate)".into(),
                &mut floor,
            ),
            (
                format!("baseline: os.fork() of a {mb} MB Python process (huge-page malloc, as sessions)"),
                &mut fork,
            ),
        ];
        for (name, v) in rows {
            // The fork baseline is missing when python3 cannot run here.
            if !v.is_empty() {
                rep.rows.push(row(&name, v, "ms"));
            }
        }
        Ok(rep)
    })();
    for w in made.iter().rev() {
        let _ = engine.world_destroy(w);
    }
    for s in &snaps {
        let _ = engine.snapshot_delete(s);
    }
    print_report(out, &result?)
}
