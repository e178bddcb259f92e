//! The verse tree: verses (events), their partitions into disjoint child
//! verses, and resolution, which keeps one child and evaporates the others
//! with their whole subtrees.
//!
//! [`VerseTree`] owns every [`Verse`] and [`Partition`]; ids are allocated
//! sequentially from 1, so a parent always has a smaller id than its
//! children. `tree` holds the changes, `query` the lookups, `outcome` the
//! outcome classes (see the crate docs) and `load` the rebuild from stored
//! parts.

mod load;
mod outcome;
mod query;
mod tree;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ids::{PartitionId, VerseId};
use crate::prob::Prob;
use crate::trit::Trit;

pub use load::TreeParts;

/// Whether a verse can still happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerseStatus {
    /// Not ruled out by any resolution.
    Live,
    /// Ruled out: a partition above it (or its own parent partition)
    /// resolved to another child.
    Evaporated,
}

/// One verse: an event in the outcome space of its root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Verse {
    /// Its id.
    pub id: VerseId,
    /// Its name (unique among the children of one partition).
    pub name: String,
    /// The verse it refines; `None` for a root.
    pub parent: Option<VerseId>,
    /// The partition of `parent` it belongs to; `None` for a root.
    pub parent_partition: Option<PartitionId>,
    /// Its index among the children of its partition; 0 for a root.
    pub index: u32,
    /// Its probability given its parent; [`Prob::ONE`] for a root.
    pub prob: Prob,
    /// Its trit; `None` for a root.
    pub trit: Option<Trit>,
    /// Its seed: chosen for a root, `child_seed(parent.seed, index)` below.
    pub seed: u64,
    /// Live or evaporated.
    pub status: VerseStatus,
    /// Its partitions, oldest first; only the last may be open.
    pub partitions: Vec<PartitionId>,
}

impl Verse {
    /// Whether the verse is live.
    pub fn is_live(&self) -> bool {
        self.status == VerseStatus::Live
    }

    /// Whether the verse is a root (a whole outcome space).
    pub fn is_root(&self) -> bool {
        self.parent.is_none()
    }
}

/// One child asked for in a partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChildSpec {
    /// Its name, non-empty and unique within the partition.
    pub name: String,
    /// Its probability given the parent; the children sum to exactly 1.
    pub prob: Prob,
    /// Its trit; the children's trits sum to 0 mod 3 unless allowed.
    pub trit: Trit,
}

impl ChildSpec {
    /// A child spec.
    pub fn new(name: impl Into<String>, prob: Prob, trit: Trit) -> ChildSpec {
        ChildSpec {
            name: name.into(),
            prob,
            trit,
        }
    }
}

/// Whether a partition is still undecided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PartitionStatus {
    /// Undecided: every child is possible.
    Open,
    /// Decided: only `winner` is left.
    Resolved {
        /// The surviving child.
        winner: VerseId,
    },
}

/// A split of one verse into >= 2 disjoint, exhaustive child verses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Partition {
    /// Its id.
    pub id: PartitionId,
    /// The verse it splits.
    pub parent: VerseId,
    /// Its children in index order.
    pub children: Vec<VerseId>,
    /// The raw sum of the children's trits.
    pub gf3_sum: i64,
    /// Open or resolved.
    pub status: PartitionStatus,
}

impl Partition {
    /// Whether the partition is still open.
    pub fn is_open(&self) -> bool {
        self.status == PartitionStatus::Open
    }

    /// The winner, once resolved.
    pub fn winner(&self) -> Option<VerseId> {
        match self.status {
            PartitionStatus::Open => None,
            PartitionStatus::Resolved { winner } => Some(winner),
        }
    }
}

/// An invalid change to, or lookup in, the verse tree.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerseError {
    /// No verse has this id.
    #[error("unknown verse {0}")]
    UnknownVerse(VerseId),
    /// No partition has this id.
    #[error("unknown partition {0}")]
    UnknownPartition(PartitionId),
    /// The verse was ruled out by a resolution.
    #[error("verse {verse} has evaporated (partition {partition} resolved to {winner})")]
    Evaporated {
        /// The verse named.
        verse: VerseId,
        /// The resolution that ruled it out.
        partition: PartitionId,
        /// That resolution's winner.
        winner: VerseId,
    },
    /// The verse, or a verse with the same outcomes, is already split.
    #[error("verse {verse} already has open partition {partition}")]
    AlreadyPartitioned {
        /// The verse named.
        verse: VerseId,
        /// The open partition.
        partition: PartitionId,
    },
    /// A verse equal to this one after a resolution is already split.
    #[error(
        "verse {verse} has the same outcomes as {holder} (a resolved winner), \
         which already has open partition {partition}"
    )]
    ClassPartitioned {
        /// The verse named.
        verse: VerseId,
        /// The verse that holds the open partition.
        holder: VerseId,
        /// The open partition.
        partition: PartitionId,
    },
    /// Fewer than two children.
    #[error("a partition needs at least 2 children, got {0}")]
    TooFewChildren(usize),
    /// More children than a `u32` index can number.
    #[error("a partition can have at most 4294967295 children, got {0}")]
    TooManyChildren(usize),
    /// A root or child with an empty name.
    #[error("verse names must not be empty (child {index})")]
    EmptyName {
        /// The child's index (0 for a root).
        index: usize,
    },
    /// Two children with the same name.
    #[error("child name {0:?} appears twice in the partition")]
    DuplicateName(String),
    /// A child with probability 0.
    #[error("child {0:?} has probability 0; every child must be possible")]
    ZeroProb(String),
    /// Probabilities that do not sum to exactly 1.
    #[error("child probabilities sum to {}, must be exactly 1", crate::prob::fmt_fixed(*.0))]
    ProbSum(u128),
    /// Trits that do not sum to 0 mod 3.
    #[error("child trits sum to {0}, not 0 mod 3 (GF(3) conservation); allow it explicitly to record it anyway")]
    NonConserving(i64),
    /// A partition that was resolved before.
    #[error("partition {partition} is already resolved (winner {winner})")]
    AlreadyResolved {
        /// The partition named.
        partition: PartitionId,
        /// Its winner.
        winner: VerseId,
    },
    /// A winner that is not a child of the partition.
    #[error("{verse} is not a child of partition {partition}")]
    NotAChild {
        /// The partition named.
        partition: PartitionId,
        /// The would-be winner.
        verse: VerseId,
    },
    /// Stored parts that do not form a consistent tree.
    #[error("inconsistent verse tree: {0}")]
    Corrupt(String),
}

/// Every verse and partition, with the rules that keep them a tree.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "TreeParts", try_from = "TreeParts")]
pub struct VerseTree {
    /// `verses[i]` has id `i + 1`.
    verses: Vec<Verse>,
    /// `partitions[i]` has id `i + 1`.
    partitions: Vec<Partition>,
}

#[cfg(test)]
mod tests;

impl VerseError {
    /// Whether the error names a verse or partition that does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            VerseError::UnknownVerse(_) | VerseError::UnknownPartition(_)
        )
    }
}
