//! Deterministic branch seeds (`docs/semantics.md`, "Deterministic seeds"):
//! the seed of child `index` of a world with seed `parent` is output
//! `index` of SplitMix64 seeded with `parent`. A reimplementation of
//! `world_core::seed::child_seed` (this crate does not depend on
//! world-core), checked against the same published vectors.

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Output `n` of SplitMix64 seeded with `seed`.
pub fn splitmix64(seed: u64, n: u64) -> u64 {
    mix(seed.wrapping_add(n.wrapping_add(1).wrapping_mul(GAMMA)))
}

/// The seed of child `index` of a world whose seed is `parent_seed`.
pub fn child_seed(parent_seed: u64, index: u64) -> u64 {
    splitmix64(parent_seed, index)
}

/// A fresh random seed for a root world.
pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 8 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        return mix(t ^ u64::from(std::process::id()));
    }
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_vectors() {
        assert_eq!(splitmix64(0, 0), 0xe220a8397b1dcdaf);
        let s = 0x6761795f636f6c6f;
        let want = [
            (0, 0xf061ebbc2ca74d78u64),
            (1, 0x34dc5aa0b7117465),
            (2, 0x34370514cc4e9a8c),
            (5, 0xb5222cb8ae6e1886),
            (9, 0xd726fcf3f1d357d5),
        ];
        for (n, v) in want {
            assert_eq!(child_seed(s, n), v, "output {n}");
        }
        assert_ne!(random_seed(), random_seed());
    }
}
