//! Reference games with exact equilibrium, optimum and uniform-random
//! values, matching the table in `shared/semantics.md`. The seed's three
//! verses map onto them: `nash` plays the equilibrium, `optimal` the social
//! optimum, `chaos` uniform random strategies.

use serde::{Deserialize, Serialize};

use super::{wev, GameSense, WevError, WevReport};

/// The reference values of one game.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GameValues {
    /// Value of the worst Nash equilibrium.
    pub nash: f64,
    /// Value of the social optimum.
    pub optimum: f64,
    /// Expected value when every player picks uniformly at random.
    pub uniform_random: Option<f64>,
    /// Cost or welfare.
    pub sense: GameSense,
}

impl GameValues {
    /// Price of anarchy and WEV of the game.
    pub fn report(&self) -> Result<WevReport, WevError> {
        wev(self.nash, self.optimum, self.sense)
    }
}

/// Pigou's network: one unit of traffic over two roads, `l1(x) = x^p`,
/// `l2(x) = 1` (cost game).
///
/// Nash: everyone takes road 1 (it never costs more than 1): cost 1.
/// Optimum: road 1 carries `x* = (1/(p+1))^(1/p)`, cost `x*^(p+1) + 1 - x*`
/// (3/4 for p = 1, `1 - 2/(3 sqrt 3)` for p = 2). Uniform random: half the
/// traffic on each road, cost `0.5 * 0.5^p + 0.5` (3/4 for p = 1). For
/// `p = 0` both roads cost 1 and every value is 1.
pub fn pigou(p: u32) -> GameValues {
    let half = 0.5f64;
    let uniform = half * half.powi(p as i32) + half;
    if p == 0 {
        return GameValues {
            nash: 1.0,
            optimum: 1.0,
            uniform_random: Some(1.0),
            sense: GameSense::Cost,
        };
    }
    let pf = f64::from(p);
    let x = (1.0 / (pf + 1.0)).powf(1.0 / pf);
    GameValues {
        nash: 1.0,
        optimum: x.powf(pf + 1.0) + 1.0 - x,
        uniform_random: Some(uniform),
        sense: GameSense::Cost,
    }
}

/// Braess's network with the free shortcut: edges s-v: x, v-t: 1, s-w: 1,
/// w-t: x, v-w: 0, one unit of traffic (cost game).
///
/// Nash: everyone takes s-v-w-t, cost 2. Optimum: half on s-v-t, half on
/// s-w-t, cost 3/2. Uniform random over the three paths: s-v and w-t carry
/// 2/3 each, so the paths cost 5/3, 5/3 and 4/3: mean 14/9.
pub fn braess() -> GameValues {
    GameValues {
        nash: 2.0,
        optimum: 1.5,
        uniform_random: Some(14.0 / 9.0),
        sense: GameSense::Cost,
    }
}

/// The prisoner's dilemma with payoffs CC 3,3 / CD 0,4 / DD 1,1 (welfare
/// game): Nash DD gives 2, the optimum CC 6, uniform random play
/// (6 + 4 + 4 + 2) / 4 = 4.
pub fn prisoners_dilemma() -> GameValues {
    GameValues {
        nash: 2.0,
        optimum: 6.0,
        uniform_random: Some(4.0),
        sense: GameSense::Welfare,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn pigou_linear() {
        let g = pigou(1);
        assert_eq!(g.nash, 1.0);
        assert!(close(g.optimum, 0.75));
        assert!(close(g.uniform_random.unwrap(), 0.75));
        let r = g.report().unwrap();
        assert!(close(r.poa, 4.0 / 3.0));
        assert!(close(r.wev, 1.0 / 3.0));
        assert!(close(r.wev_abs, 0.25));
    }

    #[test]
    fn pigou_quadratic() {
        let g = pigou(2);
        let opt = 1.0 - 2.0 / (3.0 * 3f64.sqrt());
        assert!(close(g.optimum, opt));
        let r = g.report().unwrap();
        assert!(close(r.poa, 1.0 / opt));
        assert!((r.poa - 1.626).abs() < 1e-3, "{}", r.poa);
        assert!((r.wev - 0.626).abs() < 1e-3);
        assert!(close(g.uniform_random.unwrap(), 0.625));
    }

    #[test]
    fn pigou_degenerate_and_steep() {
        assert_eq!(pigou(0).report().unwrap().poa, 1.0);
        // PoA of Pigou grows without bound with p (~ p / ln p).
        assert!(pigou(10).report().unwrap().poa > pigou(2).report().unwrap().poa);
    }

    #[test]
    fn braess_values() {
        let g = braess();
        assert_eq!(g.sense, GameSense::Cost);
        assert_eq!((g.nash, g.optimum), (2.0, 1.5));
        assert!(close(g.uniform_random.unwrap(), 14.0 / 9.0));
        let r = g.report().unwrap();
        assert!(close(r.poa, 4.0 / 3.0));
        assert!(close(r.wev, 1.0 / 3.0));
    }

    #[test]
    fn prisoners_dilemma_values() {
        let g = prisoners_dilemma();
        let r = g.report().unwrap();
        assert_eq!(r.poa, 3.0);
        assert_eq!(r.wev, 2.0);
        assert_eq!(r.wev_abs, 4.0);
        assert_eq!(g.uniform_random, Some(4.0));
    }
}
