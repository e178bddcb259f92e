//! Step 4: commit in block order, re-executing the flagged operations and
//! applying the tree changes.

use super::speculate::Chunk;
use crate::ledger::logic::{apply, commit, StateMut};
use crate::ledger::{Applied, LedgerError, Op};

/// Appends the block's results to `results`, re-executing the flagged
/// operations and committing the tree changes in block order; returns the
/// number of re-executed operations.
pub(super) fn finish<S: StateMut>(
    state: &mut S,
    ops: &[Op],
    chunks: Vec<Chunk>,
    flags: &[bool],
    results: &mut Vec<Result<Applied, LedgerError>>,
) -> usize {
    let base = results.len();
    let mut tree_plans = Vec::new();
    for chunk in chunks {
        results.extend(chunk.results);
        tree_plans.extend(chunk.tree_plans);
    }
    let mut tree_plans = tree_plans.into_iter().peekable();
    let mut reexecuted = 0;
    for (i, op) in ops.iter().enumerate() {
        let planned = tree_plans.next_if(|(j, _)| *j == i).map(|(_, p)| p);
        if flags[i] {
            reexecuted += 1;
            results[base + i] = apply(state, op);
        } else if let Some(plan) = planned {
            results[base + i] = commit(state, op, plan);
        }
    }
    reexecuted
}
