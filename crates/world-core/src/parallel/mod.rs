//! Monad-style optimistic parallel execution of a batch of operations.
//!
//! 1. **Speculate** (parallel over contiguous chunks of the batch): plan
//!    every operation against the pre-batch state through a recording view
//!    that notes each balance cell read (`speculate`). Every operation also
//!    reads the verse tree.
//! 2. **Find conflicts** (parallel over cell shards): an operation must be
//!    re-executed if it reads a cell that an earlier operation of the batch
//!    may write, or if an earlier operation changes the tree (create_root,
//!    partition, resolve write a single global "tree" key), or if it is a
//!    resolve preceded by any operation (a resolve reads every balance of
//!    the verses it evaporates) (`conflicts`).
//! 3. **Write** (parallel over cell shards): the planned writes of every
//!    operation without conflict (`commit`).
//! 4. **Commit in order** (one thread): keep the speculative result of each
//!    operation without conflict; re-execute the others against the current
//!    state; apply tree changes.
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
//! after a tree change. Conflicts are found by 64-bit cell hashes: a
//! collision only causes a needless re-execution.

mod commit;
mod conflicts;
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

/// Applies `ops` with optimistic concurrency on `threads` threads (at
/// least 1). The per-operation results and the final ledger are exactly
/// those of [`execute_serial`].
pub fn execute_parallel(
    ledger: &mut Ledger,
    ops: &[Op],
    threads: usize,
) -> (Vec<Result<Applied, LedgerError>>, ExecStats) {
    let threads = threads.clamp(1, ops.len().max(1));
    let chunks = speculate::run(ledger, ops, threads);
    let flags = conflicts::find(ops, &chunks, threads);
    commit::write_clean(ledger.store_mut(), &chunks, &flags, threads);
    let (results, reexecuted) = commit::finish(ledger, ops, chunks, &flags);
    (
        results,
        ExecStats {
            ops: ops.len(),
            reexecuted,
        },
    )
}

/// Runs `work(i)` for `i` in `0..n`, item `n - 1` on the calling thread
/// and the others on scoped threads; returns the results in item order.
fn fan_out<T: Send>(n: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    fan_out_each((0..n).collect(), work)
}

/// Runs `work(item)` for every item, the last on the calling thread and
/// the others on scoped threads; returns the results in item order.
fn fan_out_each<I: Send, T: Send>(items: Vec<I>, work: impl Fn(I) -> T + Sync) -> Vec<T> {
    if items.len() <= 1 {
        return items.into_iter().map(&work).collect();
    }
    std::thread::scope(|s| {
        let work = &work;
        let mut items = items;
        let last = items.pop();
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| s.spawn(move || work(item)))
            .collect();
        let last = last.map(work);
        let mut out: Vec<T> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect();
        out.extend(last);
        out
    })
}

#[cfg(test)]
mod tests;
