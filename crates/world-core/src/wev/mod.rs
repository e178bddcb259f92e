//! World extractable value: the price of anarchy of a game and the two
//! quantities derived from it, kept apart as `shared/semantics.md` asks:
//! `poa` (>= 1), `wev = poa - 1` (what `verse_resolutions.wev_extracted`
//! holds) and `wev_abs`, the absolute gap. (`evaporated_value`, the third
//! meaning, is a ledger quantity: see [`crate::Effect::Resolved`].)
//! Reference games with exact values live in [`games`].

pub mod games;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Whether a game's numbers are costs (lower is better) or welfare
/// (higher is better).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GameSense {
    /// Total cost: PoA = C_nash / C_opt.
    Cost,
    /// Total welfare: PoA = W_opt / W_nash.
    Welfare,
}

/// Price of anarchy and WEV of one game.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WevReport {
    /// Price of anarchy, >= 1.
    pub poa: f64,
    /// `poa - 1`, dimensionless.
    pub wev: f64,
    /// `C_nash - C_opt` (cost) or `W_opt - W_nash` (welfare), >= 0.
    pub wev_abs: f64,
}

/// Game values that give no meaningful price of anarchy.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum WevError {
    /// NaN or infinite input.
    #[error("{what} must be a finite number, got {value}")]
    NonFinite {
        /// `"nash"` or `"optimum"`.
        what: &'static str,
        /// The value.
        value: f64,
    },
    /// A zero or negative value where the ratio needs a positive one.
    #[error("{what} must be positive, got {value}")]
    NonPositive {
        /// `"nash"` or `"optimum"`.
        what: &'static str,
        /// The value.
        value: f64,
    },
    /// The equilibrium is better than the optimum.
    #[error("nash value {nash} is better than the optimum {optimum} (PoA {poa} < 1): not an equilibrium/optimum pair for a {sense:?} game")]
    BelowOne {
        /// The Nash value.
        nash: f64,
        /// The optimum.
        optimum: f64,
        /// The ratio found.
        poa: f64,
        /// Cost or welfare.
        sense: GameSense,
    },
}

/// Relative tolerance below 1 accepted for PoA (float rounding); such
/// values are clamped to exactly 1.
pub const POA_EPSILON: f64 = 1e-9;

/// Price of anarchy and WEV from the worst Nash value and the optimum.
///
/// Both values must be finite and positive (a cost game needs
/// `C_opt > 0`, a welfare game `W_nash > 0`, and the other value follows
/// from PoA >= 1). A PoA below 1 by more than [`POA_EPSILON`] is rejected.
pub fn wev(nash: f64, optimum: f64, sense: GameSense) -> Result<WevReport, WevError> {
    for (what, value) in [("nash", nash), ("optimum", optimum)] {
        if !value.is_finite() {
            return Err(WevError::NonFinite { what, value });
        }
        if value <= 0.0 {
            return Err(WevError::NonPositive { what, value });
        }
    }
    let (poa, gap) = match sense {
        GameSense::Cost => (nash / optimum, nash - optimum),
        GameSense::Welfare => (optimum / nash, optimum - nash),
    };
    if !poa.is_finite() {
        return Err(WevError::NonFinite {
            what: "nash",
            value: nash,
        });
    }
    if poa < 1.0 - POA_EPSILON {
        return Err(WevError::BelowOne {
            nash,
            optimum,
            poa,
            sense,
        });
    }
    let poa = poa.max(1.0);
    Ok(WevReport {
        poa,
        wev: poa - 1.0,
        wev_abs: gap.max(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_and_welfare() {
        let r = wev(1.0, 0.75, GameSense::Cost).unwrap();
        assert!((r.poa - 4.0 / 3.0).abs() < 1e-12);
        assert!((r.wev - 1.0 / 3.0).abs() < 1e-12);
        assert!((r.wev_abs - 0.25).abs() < 1e-12);
        let r = wev(2.0, 6.0, GameSense::Welfare).unwrap();
        assert_eq!(
            r,
            WevReport {
                poa: 3.0,
                wev: 2.0,
                wev_abs: 4.0
            }
        );
    }

    #[test]
    fn rejects_bad_values() {
        assert!(matches!(
            wev(f64::NAN, 1.0, GameSense::Cost),
            Err(WevError::NonFinite { what: "nash", .. })
        ));
        assert!(matches!(
            wev(1.0, f64::INFINITY, GameSense::Cost),
            Err(WevError::NonFinite {
                what: "optimum",
                ..
            })
        ));
        assert!(matches!(
            wev(1.0, 0.0, GameSense::Cost),
            Err(WevError::NonPositive {
                what: "optimum",
                ..
            })
        ));
        assert!(matches!(
            wev(0.0, 1.0, GameSense::Welfare),
            Err(WevError::NonPositive { what: "nash", .. })
        ));
        assert!(matches!(
            wev(-1.0, 1.0, GameSense::Cost),
            Err(WevError::NonPositive { .. })
        ));
        let err = wev(0.5, 1.0, GameSense::Cost).unwrap_err();
        assert!(matches!(err, WevError::BelowOne { .. }));
        assert!(err.to_string().contains("PoA 0.5 < 1"), "{err}");
        assert!(wev(1.0, 0.5, GameSense::Welfare).is_err());
    }

    #[test]
    fn tiny_rounding_is_clamped() {
        let r = wev(1.0 - 1e-12, 1.0, GameSense::Cost).unwrap();
        assert_eq!(r.poa, 1.0);
        assert_eq!(r.wev, 0.0);
        assert_eq!(r.wev_abs, 0.0);
        let r = wev(3.0, 3.0, GameSense::Welfare).unwrap();
        assert_eq!(
            r,
            WevReport {
                poa: 1.0,
                wev: 0.0,
                wev_abs: 0.0
            }
        );
    }
}
