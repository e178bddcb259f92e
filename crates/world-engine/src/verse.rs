//! Verse operations on the ledger alone (no worlds): create a root verse,
//! partition it, move balances down and up, transfer, resolve with an
//! oracle. Every call is one store transaction.

use std::time::Instant;

use serde::Serialize;
use world_core::ids::{Owner, PartitionId, Token, VerseId};
use world_core::ledger::{Applied, Effect, Ledger, Op};
use world_core::oracle;
use world_core::prob::Prob;
use world_core::verse::{ChildSpec, PartitionStatus};
use world_core::wev::{self, GameSense, WevReport};
use world_store::ledger_io::{resolution_id, ResolutionMeta};

use crate::{Engine, Error, Result};

/// The original design's default partition: nash (-1, 0.45), optimal (0,
/// 0.35), chaos (+1, 0.20).
pub fn default_children() -> Vec<ChildSpec> {
    use world_core::trit::Trit;
    vec![
        ChildSpec {
            name: "nash".into(),
            prob: Prob::new(450_000_000).expect("in range"),
            trit: Trit::Minus,
        },
        ChildSpec {
            name: "optimal".into(),
            prob: Prob::new(350_000_000).expect("in range"),
            trit: Trit::Zero,
        },
        ChildSpec {
            name: "chaos".into(),
            prob: Prob::new(200_000_000).expect("in range"),
            trit: Trit::Plus,
        },
    ]
}

/// How a partition is resolved.
#[derive(Debug, Clone)]
pub enum OracleChoice {
    /// The caller names the winner.
    Explicit(VerseId),
    /// The child with the highest (or lowest) reported score wins.
    Score {
        /// Scores per child; a child without one cannot win.
        scores: Vec<(VerseId, f64)>,
        /// Highest wins when true, lowest otherwise.
        highest: bool,
    },
    /// A draw weighted by the children's conditional probabilities.
    Weighted {
        /// Seed of the draw (reproducible).
        seed: u64,
    },
}

impl OracleChoice {
    /// The `oracle_source` string recorded for this oracle.
    pub fn source(&self) -> String {
        match self {
            OracleChoice::Explicit(_) => "explicit".into(),
            OracleChoice::Score { highest: true, .. } => "score:highest".into(),
            OracleChoice::Score { highest: false, .. } => "score:lowest".into(),
            OracleChoice::Weighted { seed } => format!("weighted:seed={seed}"),
        }
    }
}

/// Game values from which PoA and WEV are computed at resolution.
#[derive(Debug, Clone, Copy)]
pub struct GameInput {
    /// Cost (or welfare) of the worst Nash equilibrium.
    pub nash: f64,
    /// Cost (or welfare) of the optimum.
    pub optimum: f64,
    /// Cost game or welfare game.
    pub sense: GameSense,
}

/// What a resolution did.
#[derive(Debug, Clone, Serialize)]
pub struct ResolveOutcome {
    /// The resolution row's id.
    pub resolution_id: String,
    /// The resolved partition.
    pub partition: PartitionId,
    /// The surviving verse.
    pub winner: VerseId,
    /// The oracle that decided.
    pub oracle_source: String,
    /// Every evaporated verse.
    pub evaporated: Vec<VerseId>,
    /// Evaporated balances per token.
    pub evaporated_value: Vec<(String, u128)>,
    /// PoA/WEV when a game was given.
    pub wev: Option<WevReport>,
    /// Time the resolution took, in ms.
    pub pull_up_time_ms: f64,
}

impl Engine {
    /// Loads the current ledger (for listings).
    pub fn ledger(&self) -> Result<Ledger> {
        Ok(self.verse_store()?.load_ledger()?)
    }

    /// Applies one ledger operation and returns what it did.
    pub fn apply(&self, op: Op) -> Result<Applied> {
        let mut v = self.verse_store()?.apply(std::slice::from_ref(&op))?;
        Ok(v.remove(0))
    }

    /// Applies a batch of operations atomically.
    pub fn apply_batch(&self, ops: &[Op]) -> Result<Vec<Applied>> {
        Ok(self.verse_store()?.apply(ops)?)
    }

    /// Creates a root verse (a whole outcome space).
    pub fn verse_create(&self, name: &str, seed: u64) -> Result<VerseId> {
        if name.trim().is_empty() {
            return Err(Error::Invalid("a verse name must not be empty".into()));
        }
        match self
            .apply(Op::CreateRoot {
                name: name.to_string(),
                seed,
            })?
            .effect
        {
            Effect::RootCreated { verse } => Ok(verse),
            other => Err(Error::Invalid(format!("unexpected effect {other:?}"))),
        }
    }

    /// Partitions `parent` into `children`.
    pub fn verse_partition(
        &self,
        parent: VerseId,
        children: Vec<ChildSpec>,
        allow_nonconserving: bool,
    ) -> Result<(PartitionId, Vec<VerseId>, i64)> {
        match self
            .apply(Op::Partition {
                parent,
                children,
                allow_nonconserving,
            })?
            .effect
        {
            Effect::Partitioned {
                partition,
                children,
                gf3_sum,
            } => Ok((partition, children, gf3_sum)),
            other => Err(Error::Invalid(format!("unexpected effect {other:?}"))),
        }
    }

    /// Resolves `partition` with `oracle`, recording PoA/WEV when `game` is given.
    pub fn verse_resolve(
        &self,
        partition: PartitionId,
        oracle_choice: &OracleChoice,
        game: Option<GameInput>,
    ) -> Result<ResolveOutcome> {
        let start = Instant::now();
        let wev_report = game
            .map(|g| wev::wev(g.nash, g.optimum, g.sense).map(|w| (w, g.sense)))
            .transpose()?;
        let store = self.verse_store()?;
        let ledger = store.load_ledger()?;
        let p = ledger.tree().partition_info(partition)?;
        if let PartitionStatus::Resolved { winner } = p.status {
            return Err(Error::Invalid(format!(
                "partition {partition} is already resolved (winner {winner}); a partition resolves once"
            )));
        }
        let winner = match oracle_choice {
            OracleChoice::Explicit(v) => *v,
            OracleChoice::Score { scores, highest } => {
                for (v, _) in scores {
                    if !p.children.contains(v) {
                        return Err(Error::Invalid(format!(
                            "{v} is not a child of partition {partition}"
                        )));
                    }
                }
                let table: Vec<(VerseId, Option<f64>)> = p
                    .children
                    .iter()
                    .map(|c| (*c, scores.iter().find(|(v, _)| v == c).map(|(_, s)| *s)))
                    .collect();
                oracle::choose_by_score(&table, *highest)?
            }
            OracleChoice::Weighted { seed } => {
                let table = p
                    .children
                    .iter()
                    .map(|c| Ok((*c, ledger.tree().verse(*c)?.prob)))
                    .collect::<Result<Vec<_>>>()?;
                oracle::choose_weighted(&table, *seed)
            }
        };
        let source = oracle_choice.source();
        let meta = ResolutionMeta {
            wev: wev_report,
            pull_up_time_ms: None,
        };
        let applied = store.apply_with(
            &[Op::Resolve {
                partition,
                winner,
                oracle_source: source.clone(),
            }],
            &meta,
        )?;
        let (evaporated, evaporated_value) = resolved_parts(&applied[0].effect)?;
        Ok(ResolveOutcome {
            resolution_id: resolution_id(partition),
            partition,
            winner,
            oracle_source: source,
            evaporated,
            evaporated_value,
            wev: wev_report.map(|(w, _)| w),
            pull_up_time_ms: start.elapsed().as_secs_f64() * 1000.0,
        })
    }
}

/// Balances per token, as (token, amount).
pub type TokenAmounts = Vec<(String, u128)>;

/// The evaporated verses and per-token values of a resolution's effect.
pub(crate) fn resolved_parts(effect: &Effect) -> Result<(Vec<VerseId>, TokenAmounts)> {
    match effect {
        Effect::Resolved {
            evaporated,
            evaporated_value,
        } => Ok((
            evaporated.clone(),
            evaporated_value
                .iter()
                .map(|(t, v)| (t.as_str().to_string(), *v))
                .collect(),
        )),
        other => Err(Error::Invalid(format!("unexpected effect {other:?}"))),
    }
}

/// Parses a token name with a clear error.
pub fn token(s: &str) -> Result<Token> {
    Token::new(s).map_err(|e| Error::Invalid(format!("token {s:?}: {e}")))
}

/// Parses an owner name with a clear error.
pub fn owner(s: &str) -> Result<Owner> {
    Owner::new(s).map_err(|e| Error::Invalid(format!("owner {s:?}: {e}")))
}
