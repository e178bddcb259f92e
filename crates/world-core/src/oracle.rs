//! Pure choice rules for resolving a partition: by a score the verses'
//! runs reported, or by a probability-weighted deterministic draw. (An
//! explicit choice needs no rule; a command run in a world belongs to the
//! engine, which then feeds its output to one of these.)

use thiserror::Error;

use crate::ids::VerseId;
use crate::prob::Prob;
use crate::seed::splitmix64_output;

/// An oracle that could not choose.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OracleError {
    /// No candidate had a usable score.
    #[error("no verse reported a usable score ({0} candidates, all missing or NaN)")]
    NoScore(usize),
    /// No candidate with a positive probability.
    #[error("no verse to draw from ({0} candidates, total probability 0)")]
    NothingToDraw(usize),
}

/// The verse with the highest (`highest`) or lowest score. Verses without a
/// score, or with NaN, cannot win; ties go to the first in the slice (the
/// lowest child index).
pub fn choose_by_score(
    scores: &[(VerseId, Option<f64>)],
    highest: bool,
) -> Result<VerseId, OracleError> {
    let mut best: Option<(VerseId, f64)> = None;
    for &(verse, score) in scores {
        let Some(s) = score.filter(|s| !s.is_nan()) else {
            continue;
        };
        let better = match best {
            None => true,
            Some((_, b)) => {
                if highest {
                    s > b
                } else {
                    s < b
                }
            }
        };
        if better {
            best = Some((verse, s));
        }
    }
    best.map(|(v, _)| v)
        .ok_or(OracleError::NoScore(scores.len()))
}

/// A deterministic probability-weighted draw.
///
/// Let `r = splitmix64_output(seed, 0)` and `T` the sum of the raw
/// probabilities (`PROB_SCALE` for a real partition). The draw is
/// `x = (r * T) >> 64` (a u128 multiply-shift), uniform in `[0, T)`
/// without modulo bias beyond 2^-64; the winner is the first child whose
/// cumulative raw probability exceeds `x`. Children with probability 0
/// never win.
pub fn try_choose_weighted(
    children: &[(VerseId, Prob)],
    seed: u64,
) -> Result<VerseId, OracleError> {
    let total: u128 = children.iter().map(|(_, p)| u128::from(p.raw())).sum();
    if total == 0 {
        return Err(OracleError::NothingToDraw(children.len()));
    }
    let r = u128::from(splitmix64_output(seed, 0));
    let x = (r * total) >> 64;
    let mut cum = 0u128;
    for &(verse, p) in children {
        cum += u128::from(p.raw());
        if x < cum {
            return Ok(verse);
        }
    }
    // x < total = the final cum, so the loop always returns.
    Err(OracleError::NothingToDraw(children.len()))
}

/// [`try_choose_weighted`] for a partition's children, which always have
/// positive probabilities.
///
/// # Panics
/// If `children` is empty or all its probabilities are 0; use
/// [`try_choose_weighted`] for untrusted input.
pub fn choose_weighted(children: &[(VerseId, Prob)], seed: u64) -> VerseId {
    match try_choose_weighted(children, seed) {
        Ok(v) => v,
        Err(e) => panic!("choose_weighted: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prob::PROB_SCALE;

    fn v(n: u64) -> VerseId {
        VerseId(n)
    }

    #[test]
    fn score_highest_and_lowest() {
        let s = [(v(2), Some(1.0)), (v(3), Some(5.0)), (v(4), Some(-2.0))];
        assert_eq!(choose_by_score(&s, true), Ok(v(3)));
        assert_eq!(choose_by_score(&s, false), Ok(v(4)));
    }

    #[test]
    fn score_ties_go_first_and_nan_loses() {
        let s = [
            (v(2), None),
            (v(3), Some(f64::NAN)),
            (v(4), Some(1.0)),
            (v(5), Some(1.0)),
        ];
        assert_eq!(choose_by_score(&s, true), Ok(v(4)));
        assert_eq!(choose_by_score(&s, false), Ok(v(4)));
        let inf = [(v(2), Some(f64::INFINITY)), (v(3), Some(1e300))];
        assert_eq!(choose_by_score(&inf, true), Ok(v(2)));
        assert_eq!(choose_by_score(&inf, false), Ok(v(3)));
    }

    #[test]
    fn score_needs_one_score() {
        assert_eq!(choose_by_score(&[], true), Err(OracleError::NoScore(0)));
        let s = [(v(2), None), (v(3), Some(f64::NAN))];
        assert_eq!(choose_by_score(&s, true), Err(OracleError::NoScore(2)));
    }

    #[test]
    fn weighted_is_deterministic_and_follows_probs() {
        let kids = [
            (v(2), Prob::parse("0.45").unwrap()),
            (v(3), Prob::parse("0.35").unwrap()),
            (v(4), Prob::parse("0.20").unwrap()),
        ];
        assert_eq!(choose_weighted(&kids, 42), choose_weighted(&kids, 42));
        let mut counts = [0usize; 3];
        for seed in 0..20_000u64 {
            let w = choose_weighted(&kids, seed);
            counts[(w.0 - 2) as usize] += 1;
        }
        for (c, want) in counts.iter().zip([0.45, 0.35, 0.20]) {
            let got = *c as f64 / 20_000.0;
            assert!((got - want).abs() < 0.02, "{got} vs {want}");
        }
    }

    #[test]
    fn weighted_matches_the_documented_draw() {
        let kids = [
            (v(2), Prob::new(PROB_SCALE / 2).unwrap()),
            (v(3), Prob::new(PROB_SCALE / 2).unwrap()),
        ];
        for seed in [0u64, 1, 0x6761_795f_636f_6c6f] {
            let r = u128::from(splitmix64_output(seed, 0));
            let x = (r * u128::from(PROB_SCALE)) >> 64;
            let want = if x < u128::from(PROB_SCALE / 2) {
                v(2)
            } else {
                v(3)
            };
            assert_eq!(choose_weighted(&kids, seed), want);
        }
        // splitmix64_output(0, 0) = 0xe220a8397b1dcdaf, 0.88 of the range.
        assert_eq!(choose_weighted(&kids, 0), v(3));
    }

    #[test]
    fn weighted_skips_zero_and_rejects_empty() {
        let kids = [(v(2), Prob::ZERO), (v(3), Prob::ONE), (v(4), Prob::ZERO)];
        for seed in 0..100 {
            assert_eq!(choose_weighted(&kids, seed), v(3));
        }
        assert_eq!(
            try_choose_weighted(&[], 1),
            Err(OracleError::NothingToDraw(0))
        );
        assert_eq!(
            try_choose_weighted(&[(v(2), Prob::ZERO)], 1),
            Err(OracleError::NothingToDraw(1))
        );
    }
}
