//! Step 1: plan every operation against the pre-block state, recording the
//! balance cells each one reads.

use std::collections::BTreeMap;
use std::ops::Deref;

use crate::ids::{Token, VerseId};
use crate::ledger::logic::{plan, Plan, StateView};
use crate::ledger::store::{cell_fold, shard_of_fold, Shard};
use crate::ledger::{evaporated_value, Applied, BalanceKey, Effect, LedgerError, Op};
use crate::verse::VerseTree;

/// One cell read during speculation.
#[derive(Debug, Clone, Copy)]
pub(super) struct Read {
    /// The index of the operation in the block.
    pub(super) op: usize,
    /// The position of the read in the operation's reads (and, for a
    /// successful balance operation, in its writes).
    pub(super) slot: u32,
    /// The cell's shard.
    pub(super) shard: u32,
    /// The cell's fold: its identity when looking for conflicts.
    pub(super) id: u64,
}

/// The speculative results of a contiguous part of a block.
pub(super) struct Chunk {
    /// The block index of the first operation.
    pub(super) start: usize,
    /// One result per operation, final unless the operation is flagged for
    /// re-execution or changes the tree (then a placeholder).
    pub(super) results: Vec<Result<Applied, LedgerError>>,
    /// The plans of the tree changes that passed their checks, with their
    /// block indexes, in order.
    pub(super) tree_plans: Vec<(usize, Plan)>,
    /// Every cell read, in block order, split by the shard group (shard
    /// `s` is in group `s % groups`) that scans and writes it.
    pub(super) reads: Vec<Vec<Read>>,
}

/// The pre-block state as the speculating threads see it: the tree and
/// every shard, read-only. Shard `s` is `groups[s % n][s / n]`.
pub(super) struct Snapshot<'s, G> {
    pub(super) tree: &'s VerseTree,
    pub(super) groups: &'s [G],
}

impl<'m, G: Deref<Target = Vec<&'m mut Shard>>> Snapshot<'_, G> {
    #[inline]
    fn get_in(&self, shard: usize, key: &BalanceKey) -> u64 {
        let n = self.groups.len();
        self.groups[shard % n][shard / n]
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

/// A view of the snapshot that records every cell read.
struct Recorder<'r, 's, G> {
    snapshot: &'r Snapshot<'s, G>,
    reads: &'r mut [Vec<Read>],
    op: usize,
    slot: u32,
}

impl<'m, G: Deref<Target = Vec<&'m mut Shard>>> StateView for Recorder<'_, '_, G> {
    fn tree(&self) -> &VerseTree {
        self.snapshot.tree
    }

    #[inline]
    fn read(&mut self, key: &BalanceKey) -> u64 {
        let id = cell_fold(key);
        let shard = shard_of_fold(id);
        let groups = self.reads.len();
        self.reads[shard % groups].push(Read {
            op: self.op,
            slot: self.slot,
            shard: shard as u32,
            id,
        });
        self.slot += 1;
        self.snapshot.get_in(shard, key)
    }

    fn evaporated_value(&mut self, verses: &[VerseId]) -> BTreeMap<Token, u128> {
        // A resolve is re-executed unless it is first in its block, so this
        // read needs no record (see `conflicts`).
        let shards = self.snapshot.groups.iter().flat_map(|g| g.iter());
        evaporated_value(shards.flat_map(|s| s.iter().map(|(k, v)| (k, *v))), verses)
    }
}

/// Plans `ops`, the part of the block starting at index `start`.
pub(super) fn speculate_chunk<'m, G: Deref<Target = Vec<&'m mut Shard>>>(
    snapshot: &Snapshot<'_, G>,
    ops: &[Op],
    start: usize,
) -> Chunk {
    let groups = snapshot.groups.len();
    let mut reads: Vec<Vec<Read>> = (0..groups)
        .map(|_| Vec::with_capacity(ops.len() * 3 / groups + 4))
        .collect();
    let mut results = Vec::with_capacity(ops.len());
    let mut tree_plans = Vec::new();
    for (k, op) in ops.iter().enumerate() {
        let mut view = Recorder {
            snapshot,
            reads: &mut reads,
            op: start + k,
            slot: 0,
        };
        results.push(match plan(&mut view, op) {
            Err(e) => Err(e),
            Ok(p) if op.changes_tree() => {
                tree_plans.push((start + k, p));
                Ok(Applied {
                    effect: Effect::Moved,
                    balance_writes: Vec::new(),
                })
            }
            Ok(p) => Ok(Applied {
                effect: Effect::Moved,
                balance_writes: p.writes,
            }),
        });
    }
    Chunk {
        start,
        results,
        tree_plans,
        reads,
    }
}
