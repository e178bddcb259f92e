//! Monad-style optimistic parallel execution of a batch of operations.
//!
//! A batch runs as consecutive blocks of [`BLOCK_OPS`] operations (so the
//! cells a block reads are still in cache when it writes them), on
//! `threads` threads kept for the whole batch (`pool`), with a barrier
//! between the steps of each block:
//!
//! 1. **Speculate** (parallel over contiguous chunks of the block): plan
//!    every operation against the pre-block state through a recording view
//!    that notes each balance cell read (`speculate`). Every operation also
//!    reads the verse tree.
//! 2. **Find conflicts** (parallel over cell shards): an operation must be
//!    re-executed if it reads a cell that an earlier operation of the block
//!    may write, or if an earlier operation changes the tree (create_root,
//!    partition, resolve write a single global "tree" key), or if it is a
//!    resolve preceded by any operation (a resolve reads every balance of
//!    the verses it evaporates) (`conflicts`).
//! 3. **Write** (parallel over cell shards): the planned writes of every
//!    operation without conflict (`commit`).
//! 4. **Commit in order** (the calling thread): keep the speculative result
//!    of each operation without conflict; re-execute the others against the
//!    current state; apply tree changes.
//!
//! Why the result equals serial execution: balance operations read every
//! cell they may write before looking at any value, so the cells an
//! operation touches depend only on the operation and the tree (see
//! `ledger::logic`); a successful operation writes exactly the cells it
//! read. An operation without conflict therefore reads only cells no
//! earlier operation touches, so it sees the same values as in serial
//! order and makes the same plan; two operations without conflict touch
//! disjoint cells, and an operation without conflict touches no cell of an
//! earlier re-executed one, so writing all of them in step 3 and then
//! re-executing the rest in order in step 4 gives every re-executed
//! operation the state serial execution would give it. Operations after
//! the first tree change are all re-executed, so no write of step 3 comes
//! after a tree change. Conflicts are found by 64-bit cell folds: a
//! collision only causes a needless re-execution.

mod barrier;
mod commit;
mod conflicts;
mod pool;
mod speculate;

use serde::{Deserialize, Serialize};

use crate::ledger::{Applied, Ledger, LedgerError, Op};

/// What a parallel execution did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExecStats {
    /// Operations in the batch.
    pub ops: usize,
    /// Operations re-executed after a conflict.
    pub reexecuted: usize,
}

/// Applies `ops` one after the other; each result is that of
/// [`Ledger::apply`].
pub fn execute_serial(ledger: &mut Ledger, ops: &[Op]) -> Vec<Result<Applied, LedgerError>> {
    ops.iter().map(|op| ledger.apply(op)).collect()
}

/// Operations per block: a batch runs as consecutive blocks of this many
/// operations, so that the cells a block reads while speculating are still
/// in cache when its writes land. Each block is a batch of its own for the
/// conflict rules (its snapshot is the state after the previous block).
pub const BLOCK_OPS: usize = 1024;

/// Applies `ops` with optimistic concurrency on `threads` threads (at
/// least 1). The per-operation results and the final ledger are exactly
/// those of [`execute_serial`].
pub fn execute_parallel(
    ledger: &mut Ledger,
    ops: &[Op],
    threads: usize,
) -> (Vec<Result<Applied, LedgerError>>, ExecStats) {
    execute_parallel_blocks(ledger, ops, threads, BLOCK_OPS)
}

/// [`execute_parallel`] with blocks of `block_ops` operations (at least 1)
/// instead of [`BLOCK_OPS`], for tuning.
pub fn execute_parallel_blocks(
    ledger: &mut Ledger,
    ops: &[Op],
    threads: usize,
    block_ops: usize,
) -> (Vec<Result<Applied, LedgerError>>, ExecStats) {
    let mut results = Vec::with_capacity(ops.len());
    let reexecuted = pool::run(ledger, ops, threads, block_ops, &mut results);
    (
        results,
        ExecStats {
            ops: ops.len(),
            reexecuted,
        },
    )
}

#[cfg(test)]
mod tests;
