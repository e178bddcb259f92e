//! Deterministic seeds: SplitMix64 and the derivation of a child verse's
//! seed from its parent's seed and its index in the partition.
//!
//! Output `n` of seed `s` is `mix(s + (n + 1) * GAMMA)` (wrapping), so the
//! `n`-th value of a [`SplitMix64`] started at `s` equals
//! [`splitmix64_output`]`(s, n)`.

use serde::{Deserialize, Serialize};

/// The SplitMix64 increment (the golden ratio in 64-bit fixed point).
pub const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finaliser.
#[inline]
pub fn splitmix64_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Output `n` (counting from 0) of SplitMix64 seeded with `seed`.
#[inline]
pub fn splitmix64_output(seed: u64, n: u64) -> u64 {
    splitmix64_mix(seed.wrapping_add(n.wrapping_add(1).wrapping_mul(GAMMA)))
}

/// The seed of child `child_index` of a verse with seed `parent_seed`.
pub fn child_seed(parent_seed: u64, child_index: u32) -> u64 {
    splitmix64_output(parent_seed, u64::from(child_index))
}

/// A SplitMix64 generator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose first output is `splitmix64_output(seed, 0)`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        splitmix64_mix(self.state)
    }

    /// A value in `0..bound` (multiply-shift; `bound` 0 gives 0).
    #[inline]
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A float in `[0, 1)` from the top 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Iterator for SplitMix64 {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        Some(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 0x6761_795f_636f_6c6f;

    #[test]
    fn vectors_from_semantics() {
        assert_eq!(splitmix64_output(0, 0), 0xe220_a839_7b1d_cdaf);
        for (n, want) in [
            (0, 0xf061_ebbc_2ca7_4d78),
            (1, 0x34dc_5aa0_b711_7465),
            (2, 0x3437_0514_cc4e_9a8c),
            (5, 0xb522_2cb8_ae6e_1886),
            (9, 0xd726_fcf3_f1d3_57d5),
        ] {
            assert_eq!(splitmix64_output(S, n), want, "output {n}");
        }
    }

    #[test]
    fn generator_matches_outputs() {
        let g: Vec<u64> = SplitMix64::new(S).take(10).collect();
        for (n, v) in g.iter().enumerate() {
            assert_eq!(*v, splitmix64_output(S, n as u64));
        }
        assert_eq!(g[9], 0xd726_fcf3_f1d3_57d5);
    }

    #[test]
    fn child_seeds() {
        assert_eq!(child_seed(S, 0), 0xf061_ebbc_2ca7_4d78);
        assert_eq!(child_seed(S, 2), 0x3437_0514_cc4e_9a8c);
        assert_ne!(child_seed(S, 0), child_seed(S, 1));
    }

    #[test]
    fn below_stays_below() {
        let mut g = SplitMix64::new(1);
        for bound in [1u64, 2, 3, 10, 1 << 40] {
            for _ in 0..100 {
                assert!(g.below(bound) < bound);
            }
        }
        assert_eq!(g.below(0), 0);
        let f = g.next_f64();
        assert!((0.0..1.0).contains(&f));
    }
}
