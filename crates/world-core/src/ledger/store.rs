//! Balance storage: `bal[token][verse][owner]` as [`SHARDS`] hash maps
//! keyed by [`BalanceKey`].
//!
//! Sharding lets the parallel executor write disjoint shards from several
//! threads without locks. A cell's shard comes from a one-multiply fold of
//! its words ([`shard_of`]), so finding it costs little beside the map's own
//! hash. Cells holding 0 are removed, so two stores with the same non-zero
//! balances are equal.

use std::collections::HashMap;

use super::BalanceKey;
use crate::hash::FxBuild;

/// The number of shards (a power of two).
pub(crate) const SHARDS: usize = 64;

/// One shard: cells whose hash selects it.
pub(crate) type Shard = HashMap<BalanceKey, u64, FxBuild>;

/// A cheap 64-bit hash of a cell: the owner's and token's words xor-ed at
/// different rotations (distinct for distinct names of at most 7 bytes),
/// mixed with the verse by multiplications. Its top bits pick the cell's
/// shard; the parallel executor uses it as a cell's identity (a collision
/// only costs a needless re-execution).
#[inline]
pub(crate) fn cell_fold(key: &BalanceKey) -> u64 {
    let [a, b, c] = key.owner.words();
    let [t, u, _] = key.token.words();
    let names = a ^ b.rotate_left(21) ^ c.rotate_left(42) ^ t.rotate_left(7) ^ u.rotate_left(29);
    let mixed =
        names.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ key.verse.0.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    mixed.wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

/// The shard of a cell with fold `fold`: its top bits.
#[inline]
pub(crate) fn shard_of_fold(fold: u64) -> usize {
    (fold >> (64 - SHARDS.trailing_zeros())) as usize
}

/// The shard of a cell.
#[inline]
pub(crate) fn shard_of(key: &BalanceKey) -> usize {
    shard_of_fold(cell_fold(key))
}

/// Sets `key` to `value` in `shard`, removing it at 0.
#[inline]
pub(crate) fn set_in(shard: &mut Shard, key: &BalanceKey, value: u64) {
    match shard.get_mut(key) {
        Some(_) if value == 0 => {
            shard.remove(key);
        }
        Some(cell) => *cell = value,
        None if value == 0 => {}
        None => {
            shard.insert(key.clone(), value);
        }
    }
}

/// All balance cells.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Store {
    shards: Vec<Shard>,
}

impl Default for Store {
    fn default() -> Store {
        Store {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

impl Store {
    /// The balance of `key` (0 if absent).
    #[inline]
    pub(crate) fn get(&self, key: &BalanceKey) -> u64 {
        self.get_in(shard_of(key), key)
    }

    /// The balance of `key`, whose shard is `shard`.
    #[inline]
    pub(crate) fn get_in(&self, shard: usize, key: &BalanceKey) -> u64 {
        self.shards[shard].get(key).copied().unwrap_or(0)
    }

    /// Sets `key` to `value` (removing it at 0).
    #[inline]
    pub(crate) fn set(&mut self, key: &BalanceKey, value: u64) {
        set_in(&mut self.shards[shard_of(key)], key, value);
    }

    /// The shards, for writing from several threads.
    pub(crate) fn shards_mut(&mut self) -> &mut [Shard] {
        &mut self.shards
    }

    /// Every non-zero cell, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&BalanceKey, u64)> + '_ {
        self.shards
            .iter()
            .flat_map(|s| s.iter().map(|(k, v)| (k, *v)))
    }

    /// The number of non-zero cells.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    /// Every non-zero cell, sorted by key.
    pub(crate) fn sorted(&self) -> Vec<(BalanceKey, u64)> {
        let mut out: Vec<(BalanceKey, u64)> = self.iter().map(|(k, v)| (k.clone(), v)).collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.sorted().into_iter().map(|(k, v)| (k.to_string(), v)))
            .finish()
    }
}
