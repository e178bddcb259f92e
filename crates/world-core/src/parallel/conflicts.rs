//! Step 2: decide which operations must be re-executed.

use super::speculate::Chunk;
use crate::ledger::Op;

/// Flags from the tree alone: every operation reads the tree and tree
/// changes write it, so everything after the first tree change is
/// re-executed; a resolve also reads the balances it evaporates, so it is
/// re-executed unless it comes first.
pub(super) fn tree_flags(ops: &[Op]) -> Vec<bool> {
    let mut flags = vec![false; ops.len()];
    if let Some(first) = ops.iter().position(Op::changes_tree) {
        flags[first + 1..].iter_mut().for_each(|f| *f = true);
        if first > 0 && matches!(ops[first], Op::Resolve { .. }) {
            flags[first] = true;
        }
    }
    flags
}

/// The operations that read a cell an earlier operation of the block
/// touched, among the cells of shard group `t` (each thread scans its own
/// group, in block order).
pub(super) fn scan(chunks: &[&Chunk], t: usize) -> Vec<usize> {
    let cells: usize = chunks.iter().map(|c| c.reads[t].len()).sum();
    let mut seen = Seen::with_room(cells);
    let mut hits = Vec::new();
    for chunk in chunks {
        for r in &chunk.reads[t] {
            if !seen.insert(r.id) {
                hits.push(r.op);
            }
        }
    }
    hits
}

/// A set of cell identities: open addressing with linear probing over a
/// power-of-two table at most half full. Identities are folds whose top
/// bits are the shard, so the slot comes from the bits just below those.
struct Seen {
    table: Vec<u64>,
    shift: u32,
}

impl Seen {
    fn with_room(n: usize) -> Seen {
        let size = (2 * n).next_power_of_two().max(16);
        Seen {
            table: vec![0; size],
            shift: 64 - size.trailing_zeros(),
        }
    }

    /// Adds `id`; false if it was there already.
    #[inline]
    fn insert(&mut self, id: u64) -> bool {
        // 0 marks an empty slot; an identity 0 is stored as 1 (a collision
        // with a real 1 only causes a needless re-execution).
        let id = id.max(1);
        let mask = self.table.len() - 1;
        let mut i = ((id << 6) >> self.shift) as usize;
        loop {
            match self.table[i] {
                0 => {
                    self.table[i] = id;
                    return true;
                }
                x if x == id => return false,
                _ => i = (i + 1) & mask,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_set_finds_repeats() {
        let mut s = Seen::with_room(100);
        let ids: Vec<u64> = (0..100u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        for &id in &ids {
            assert!(s.insert(id));
        }
        for &id in &ids {
            assert!(!s.insert(id));
        }
        // Identities differing only in their top (shard) bits still work.
        let mut s = Seen::with_room(4);
        assert!(s.insert(1 << 63));
        assert!(s.insert(1 << 62));
        assert!(!s.insert(1 << 63));
    }
}
