//! Step 2: decide which operations must be re-executed.

use std::collections::HashSet;

use super::fan_out;
use super::speculate::Chunk;
use crate::hash::FxBuild;
use crate::ledger::Op;

/// One flag per operation: `true` if it must be re-executed.
pub(super) fn find(ops: &[Op], chunks: &[Chunk], threads: usize) -> Vec<bool> {
    let mut flags = vec![false; ops.len()];
    // Every operation reads the tree; tree changes write it.
    if let Some(first) = ops.iter().position(Op::changes_tree) {
        flags[first + 1..].iter_mut().for_each(|f| *f = true);
        // A resolve reads the balances it evaporates.
        if first > 0 && matches!(ops[first], Op::Resolve { .. }) {
            flags[first] = true;
        }
    }
    // A cell touched by an earlier operation: each thread scans the cells
    // of its own shards, in batch order.
    let total: usize = chunks.iter().map(|c| c.reads.len()).sum();
    let hits = fan_out(threads, |t| {
        let mut seen: HashSet<u64, FxBuild> =
            HashSet::with_capacity_and_hasher(total / threads + 16, FxBuild::default());
        let mut hits = Vec::new();
        for chunk in chunks {
            for r in &chunk.reads {
                if r.shard as usize % threads == t && !seen.insert(r.hash) {
                    hits.push(r.op);
                }
            }
        }
        hits
    });
    for op in hits.into_iter().flatten() {
        flags[op] = true;
    }
    flags
}
