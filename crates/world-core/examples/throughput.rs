//! Quick in-memory throughput check of the ledger and the parallel
//! executor. Run in release mode:
//!
//! ```text
//! cargo run --release -p world-core --example throughput [n_ops] [owners]
//! ```
//!
//! Prints operations per second for serial execution and for
//! `execute_parallel` with 1 and 2 threads, at 0%, 10% and 50% conflicts,
//! for transfer batches and mixed transfer/push_down/pull_up batches. Each
//! figure is the best of five runs on a fresh copy of the ledger (the copy
//! is not timed). `throughput only serial|p1|p2 N RATE [BLOCK]` runs one
//! mode for profiling; `throughput conflicts N OWNERS CHILDREN` prints the
//! real conflict counts of generated batches.

use std::time::{Duration, Instant};

use world_core::parallel::{execute_parallel, execute_serial};
use world_core::workload::{mixed_batch, setup_ledger, transfer_batch};
use world_core::{Ledger, Op};

fn best<F: FnMut(&mut Ledger) -> usize>(base: &Ledger, mut run: F) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut extra = 0;
    for _ in 0..5 {
        let mut l = base.clone();
        let t = Instant::now();
        extra = run(&mut l);
        best = best.min(t.elapsed());
        drop(l);
    }
    (best, extra)
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn report(name: &str, base: &Ledger, ops: &[Op]) {
    let n = ops.len();
    let (serial, _) = best(base, |l| {
        let r = execute_serial(l, ops);
        assert!(r.iter().all(Result::is_ok));
        0
    });
    let (p1, _) = best(base, |l| execute_parallel(l, ops, 1).1.reexecuted);
    let (p2, re) = best(base, |l| execute_parallel(l, ops, 2).1.reexecuted);
    println!(
        "{name:<22} serial {:>10.0} ops/s | parallel x1 {:>10.0} | x2 {:>10.0} | x2/x1 {:.2} x2/serial {:.2} | reexecuted {re}",
        rate(n, serial),
        rate(n, p1),
        rate(n, p2),
        p1.as_secs_f64() / p2.as_secs_f64(),
        serial.as_secs_f64() / p2.as_secs_f64(),
    );
}

/// `throughput only MODE N RATE [BLOCK]`: run one mode (`serial`, `p1`,
/// `p2`, or `none` for the setup alone) ten times on a transfer batch, for
/// profiling (`perf stat`, `perf record`).
fn only(mut args: impl Iterator<Item = String>) {
    let mode = args.next().unwrap_or_default();
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let r: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0.0);
    let block: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(world_core::parallel::BLOCK_OPS);
    let base = setup_ledger(n / 2 + 1, 4, 1_000_000);
    let ops = transfer_batch(&base, n, r, 7);
    let mut total = Duration::ZERO;
    for _ in 0..10 {
        let mut l = base.clone();
        let t = Instant::now();
        match mode.as_str() {
            "none" => {}
            "serial" => drop(execute_serial(&mut l, &ops)),
            "p1" => drop(world_core::parallel::execute_parallel_blocks(
                &mut l, &ops, 1, block,
            )),
            _ => drop(world_core::parallel::execute_parallel_blocks(
                &mut l, &ops, 2, block,
            )),
        }
        total += t.elapsed();
    }
    println!("{mode}: {:.0} ops/s (wall)", rate(10 * n, total));
}

/// `throughput conflicts N OWNERS CHILDREN`: the real conflict counts of
/// generated batches at 0%, 10% and 50% asked, for sizing a bench.
fn conflicts(mut args: impl Iterator<Item = String>) {
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let owners: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(n);
    let children: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let base = setup_ledger(owners, children, 1_000_000);
    for r in [0.0, 0.1, 0.5] {
        let t = world_core::workload::count_conflicts(&base, &transfer_batch(&base, n, r, 7));
        let m = world_core::workload::count_conflicts(&base, &mixed_batch(&base, n, r, 7));
        println!(
            "asked {:>3.0}%: transfer {t} conflicts, mixed {m} conflicts (of {n})",
            r * 100.0
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    match args.peek().map(String::as_str) {
        Some("only") => {
            args.next();
            return only(args);
        }
        Some("conflicts") => {
            args.next();
            return conflicts(args);
        }
        _ => {}
    }
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let owners: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(n);
    let base = setup_ledger(owners, 4, 1_000_000);
    println!("ledger: {} cells, batch of {n} ops", base.cell_count());
    for r in [0.0, 0.1, 0.5] {
        let ops = transfer_batch(&base, n, r, 7);
        report(
            &format!("transfer {:>3.0}% conflict", r * 100.0),
            &base,
            &ops,
        );
    }
    for r in [0.0, 0.1, 0.5] {
        let ops = mixed_batch(&base, n, r, 7);
        report(
            &format!("mixed    {:>3.0}% conflict", r * 100.0),
            &base,
            &ops,
        );
    }
}
