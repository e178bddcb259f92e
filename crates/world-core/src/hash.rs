//! A small, fast, deterministic hasher for the ledger's in-memory maps.
//!
//! The keys it hashes are validated ids (at most 64 characters from a small
//! alphabet) and verse numbers, so the speed of an Fx-style multiply-rotate
//! hash matters more than resistance to chosen collisions. `finish` runs the
//! SplitMix64 finaliser so that every output bit is well mixed: `HashMap`
//! uses both the lowest and the highest bits.

use std::hash::{BuildHasherDefault, Hasher};

use crate::seed::splitmix64_mix;

const K: u64 = 0x517c_c1b7_2722_0a95;

/// Fx-style hasher with a SplitMix64 finaliser.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    state: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        splitmix64_mix(self.state)
    }
}

/// `BuildHasher` for [`FxHasher`].
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// Hashes one value with [`FxHasher`], exactly as a `HashMap<_, _, FxBuild>`
/// does.
#[cfg(test)]
pub(crate) fn fx_hash<T: std::hash::Hash + ?Sized>(value: &T) -> u64 {
    let mut h = FxHasher::default();
    value.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn same_as_build_hasher() {
        let b = FxBuild::default();
        assert_eq!(b.hash_one("abc"), fx_hash("abc"));
        assert_eq!(b.hash_one((1u64, "x")), fx_hash(&(1u64, "x")));
    }

    #[test]
    fn tail_bytes_matter() {
        assert_ne!(fx_hash(&[1u8, 2, 3][..]), fx_hash(&[1u8, 2, 3, 0][..]));
        assert_ne!(fx_hash("a"), fx_hash("b"));
        assert_ne!(fx_hash("abcdefgh1"), fx_hash("abcdefgh2"));
    }
}
