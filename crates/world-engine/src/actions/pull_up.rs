//! `pull-up`: resolve a partition over worlds with an oracle (`world
//! pull-up`, `POST /v1/partitions/{p}/pull-up`).

use serde::{Deserialize, Serialize};
use world_core::ids::VerseId;
use world_core::wev::GameSense;

use crate::multiverse::WorldOracle;
use crate::verse::GameInput;
use crate::{Error, Result};

/// Which oracle resolves a partition over worlds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OracleKind {
    /// The caller names the winner (`winner`).
    Explicit,
    /// The best recorded `WORLD_SCORE`.
    Score,
    /// A draw weighted by probability (`seed`).
    Weighted,
    /// A command run in every verse's world prints a number (`argv`).
    Command,
}

/// Game values for PoA and WEV.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GameRequest {
    /// Cost (or welfare) of the worst Nash equilibrium.
    pub nash: f64,
    /// Cost (or welfare) of the optimum.
    pub optimum: f64,
    /// Costs (default) or welfare.
    #[serde(default)]
    pub sense: Option<GameSense>,
}

/// `pull-up`: resolve a partition over worlds and pull balances up
/// (`world pull-up`, `POST /v1/partitions/{p}/pull-up`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PullUpRequest {
    /// Which oracle decides.
    pub oracle: OracleKind,
    /// The winner (explicit oracle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<String>,
    /// Lowest score wins (score and command oracles); absent or `null`
    /// is highest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowest: Option<bool>,
    /// Seed of the weighted draw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The command oracle's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Game values to record PoA and WEV.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub game: Option<GameRequest>,
}

impl PullUpRequest {
    /// The oracle, with what its kind needs checked.
    pub fn oracle(&self) -> Result<WorldOracle> {
        let highest = !self.lowest.unwrap_or(false);
        Ok(match self.oracle {
            OracleKind::Explicit => {
                let w = self.winner.as_deref().ok_or_else(|| {
                    Error::Invalid("the explicit oracle needs a winner verse".into())
                })?;
                WorldOracle::Explicit(
                    w.parse::<VerseId>()
                        .map_err(|e| Error::Invalid(format!("winner {w:?}: {e}")))?,
                )
            }
            OracleKind::Score => WorldOracle::Score { highest },
            OracleKind::Weighted => WorldOracle::Weighted {
                seed: self
                    .seed
                    .ok_or_else(|| Error::Invalid("the weighted oracle needs a seed".into()))?,
            },
            OracleKind::Command => {
                let argv = self.argv.clone().unwrap_or_default();
                if argv.first().is_none_or(String::is_empty) {
                    return Err(Error::Invalid("the command oracle needs a command".into()));
                }
                if argv.iter().any(|a| a.contains('\0')) {
                    return Err(Error::Invalid(
                        "the command must not contain NUL bytes".into(),
                    ));
                }
                WorldOracle::Command { argv, highest }
            }
        })
    }

    /// The game values, checked to be finite.
    pub fn game(&self) -> Result<Option<GameInput>> {
        let Some(g) = self.game else {
            return Ok(None);
        };
        if !g.nash.is_finite() || !g.optimum.is_finite() {
            return Err(Error::Invalid("game values must be finite numbers".into()));
        }
        Ok(Some(GameInput {
            nash: g.nash,
            optimum: g.optimum,
            sense: g.sense.unwrap_or(GameSense::Cost),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn req(oracle: OracleKind) -> PullUpRequest {
        PullUpRequest {
            oracle,
            winner: None,
            lowest: None,
            seed: None,
            argv: None,
            game: None,
        }
    }

    #[test]
    fn each_oracle_checks_what_it_needs() {
        assert!(req(OracleKind::Explicit).oracle().is_err());
        assert!(req(OracleKind::Weighted).oracle().is_err());
        assert!(req(OracleKind::Command).oracle().is_err());
        assert!(matches!(
            req(OracleKind::Score).oracle().unwrap(),
            WorldOracle::Score { highest: true }
        ));
        let mut r = req(OracleKind::Explicit);
        r.winner = Some("v3".into());
        assert!(matches!(r.oracle().unwrap(), WorldOracle::Explicit(_)));
        r.winner = Some("nope".into());
        assert!(r.oracle().is_err());
        let mut g = req(OracleKind::Score);
        g.game = Some(GameRequest {
            nash: f64::NAN,
            optimum: 1.0,
            sense: None,
        });
        assert!(g.game().is_err());
    }

    #[test]
    fn the_wire_shape_is_stable() {
        let v: PullUpRequest = serde_json::from_str(
            r#"{"oracle":"score","lowest":true,"game":{"nash":4,"optimum":3,"sense":"welfare"}}"#,
        )
        .unwrap();
        assert!(v.lowest == Some(true) && v.game.unwrap().sense == Some(GameSense::Welfare));
        assert!(serde_json::from_str::<PullUpRequest>(r#"{"oracle":"magic"}"#).is_err());
        assert!(serde_json::from_str::<PullUpRequest>(r#"{"oracle":"score","x":1}"#).is_err());
    }

    proptest! {
        /// What a door serializes, the other reads back the same.
        #[test]
        fn round_trips(lowest in proptest::option::of(any::<bool>()), seed in proptest::option::of(any::<u64>()),
                       argv in proptest::option::of(proptest::collection::vec("[a-z]{1,5}", 0..3))) {
            let r = PullUpRequest { oracle: OracleKind::Weighted, winner: None, lowest, seed, argv, game: None };
            let back: PullUpRequest = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
            prop_assert_eq!(back, r);
        }
    }
}
