//! Property test: optimistic parallel execution gives exactly the results
//! and the final ledger of serial execution, on random batches over a few
//! cells (so that conflicts are frequent), with invalid and tree-changing
//! operations mixed in, for any thread count and block size.

mod common;

use common::{choice, make_op, warm_up, Choice};
use proptest::prelude::*;
use world_core::parallel::{execute_parallel, execute_parallel_blocks, execute_serial};
use world_core::workload::{mixed_batch, setup_ledger, transfer_batch};
use world_core::Ledger;

/// A batch made against the starting ledger, then against the ledger as the
/// batch so far leaves it, so that later operations depend on earlier ones.
fn batch(start: &Ledger, choices: &[Choice]) -> Vec<world_core::Op> {
    let mut scratch = start.clone();
    choices
        .iter()
        .map(|&c| {
            // Mostly balance operations: tree changes force re-execution of
            // everything after them and would hide balance conflicts.
            let c = if c.kind % 100 < 9 && c.x % 4 != 0 {
                Choice { kind: 50, ..c }
            } else {
                c
            };
            let op = make_op(&scratch, c);
            let _ = scratch.apply(&op);
            op
        })
        .collect()
}

proptest! {
    #[test]
    fn parallel_equals_serial(
        warm in prop::collection::vec(choice(), 0..300),
        ops in prop::collection::vec(choice(), 0..150),
        threads in 1usize..5,
        block in 1usize..80,
    ) {
        let mut start = setup_ledger(3, 3, 40);
        warm_up(&mut start, &warm);
        let ops = batch(&start, &ops);
        let mut serial = start.clone();
        let want = execute_serial(&mut serial, &ops);
        let mut par = start.clone();
        let (got, stats) = execute_parallel_blocks(&mut par, &ops, threads, block);
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(&par, &serial);
        prop_assert_eq!(stats.ops, ops.len());
        let mut par = start.clone();
        let (got, _) = execute_parallel(&mut par, &ops, threads);
        prop_assert_eq!(got, want);
        prop_assert_eq!(par, serial);
    }

    #[test]
    fn generated_workloads_equal_serial(
        seed in any::<u64>(),
        rate in prop::sample::select(vec![0.0, 0.1, 0.5, 1.0]),
        mixed in any::<bool>(),
        threads in 1usize..4,
    ) {
        let start = setup_ledger(40, 3, 100);
        let ops = if mixed { mixed_batch(&start, 120, rate, seed) } else { transfer_batch(&start, 120, rate, seed) };
        let mut serial = start.clone();
        let want = execute_serial(&mut serial, &ops);
        prop_assert!(want.iter().all(Result::is_ok));
        let mut par = start.clone();
        let (got, stats) = execute_parallel_blocks(&mut par, &ops, threads, 50);
        prop_assert_eq!(got, want);
        prop_assert_eq!(par, serial);
        let conflicts = world_core::workload::count_conflicts(&start, &ops);
        // Re-executions are the conflicts, counted per block.
        prop_assert!(stats.reexecuted <= conflicts);
    }
}
