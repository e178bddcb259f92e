//! Step 1: plan every operation against the pre-batch state, recording the
//! balance cells each one reads.

use std::collections::BTreeMap;

use super::fan_out;
use crate::ids::{Token, VerseId};
use crate::ledger::logic::{plan, Plan, StateView};
use crate::ledger::store::{key_hash, shard_of};
use crate::ledger::{evaporated_value, BalanceKey, Ledger, LedgerError, Op};
use crate::verse::VerseTree;

/// One cell read during speculation.
#[derive(Debug, Clone, Copy)]
pub(super) struct Read {
    /// The index of the operation in the batch.
    pub(super) op: usize,
    /// The position of the read in the operation's reads (and, for a
    /// successful balance operation, in its writes).
    pub(super) slot: u32,
    /// The cell's shard.
    pub(super) shard: u32,
    /// The cell's hash: its identity when looking for conflicts.
    pub(super) hash: u64,
}

/// The speculative plans of a contiguous part of the batch.
pub(super) struct Chunk {
    /// The batch index of the first operation.
    pub(super) start: usize,
    /// One plan per operation.
    pub(super) plans: Vec<Result<Plan, LedgerError>>,
    /// Every cell read, in batch order.
    pub(super) reads: Vec<Read>,
}

/// A read-only view of the snapshot that records every cell read.
struct Recorder<'a> {
    ledger: &'a Ledger,
    reads: &'a mut Vec<Read>,
    op: usize,
    slot: u32,
}

impl StateView for Recorder<'_> {
    fn tree(&self) -> &VerseTree {
        self.ledger.tree()
    }

    #[inline]
    fn read(&mut self, key: &BalanceKey) -> u64 {
        let shard = shard_of(key);
        self.reads.push(Read {
            op: self.op,
            slot: self.slot,
            shard: shard as u32,
            hash: key_hash(key),
        });
        self.slot += 1;
        self.ledger.store().get_in(shard, key)
    }

    fn evaporated_value(&mut self, verses: &[VerseId]) -> BTreeMap<Token, u128> {
        // Resolves are re-executed unless first in the batch, so this read
        // needs no record (see `conflicts`).
        evaporated_value(self.ledger.store(), verses)
    }
}

fn speculate_chunk(ledger: &Ledger, ops: &[Op], start: usize) -> Chunk {
    let mut reads = Vec::with_capacity(ops.len() * 2);
    let mut plans = Vec::with_capacity(ops.len());
    for (k, op) in ops.iter().enumerate() {
        let mut view = Recorder {
            ledger,
            reads: &mut reads,
            op: start + k,
            slot: 0,
        };
        plans.push(plan(&mut view, op));
    }
    Chunk {
        start,
        plans,
        reads,
    }
}

/// Speculates `ops` in `threads` contiguous chunks.
pub(super) fn run(ledger: &Ledger, ops: &[Op], threads: usize) -> Vec<Chunk> {
    let size = ops.len().div_ceil(threads).max(1);
    let parts = ops.len().div_ceil(size);
    fan_out(parts, |k| {
        let start = k * size;
        let end = (start + size).min(ops.len());
        speculate_chunk(ledger, &ops[start..end], start)
    })
}
