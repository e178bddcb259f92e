//! Rebuilding a [`VerseTree`] from stored parts (a database, a JSON file),
//! checking that the parts are consistent before anything is trusted.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Partition, PartitionStatus, Verse, VerseError, VerseStatus, VerseTree};
use crate::ids::VerseId;
use crate::prob::{Prob, PROB_SCALE};
use crate::seed::child_seed;
use crate::trit::gf3_sum;

/// The stored form of a tree: its verses and partitions. This is also the
/// tree's serde form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TreeParts {
    /// Every verse.
    pub verses: Vec<Verse>,
    /// Every partition.
    pub partitions: Vec<Partition>,
}

impl schemars::JsonSchema for VerseTree {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "VerseTree".into()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        TreeParts::json_schema(g)
    }
}

impl From<VerseTree> for TreeParts {
    fn from(tree: VerseTree) -> TreeParts {
        TreeParts {
            verses: tree.verses,
            partitions: tree.partitions,
        }
    }
}

impl TryFrom<TreeParts> for VerseTree {
    type Error = VerseError;
    fn try_from(parts: TreeParts) -> Result<VerseTree, VerseError> {
        VerseTree::from_parts(parts.verses, parts.partitions)
    }
}

fn corrupt(msg: String) -> VerseError {
    VerseError::Corrupt(msg)
}

impl VerseTree {
    /// Rebuilds a tree from its verses and partitions, in any order.
    ///
    /// Ids must be exactly 1..=n for verses and for partitions (no gaps),
    /// and everything the tree's own changes guarantee is checked again:
    /// parent and child links agree both ways, parents have smaller ids,
    /// probabilities are positive and sum to 1, seeds and `gf3_sum` are the
    /// derived ones, names are non-empty and unique per partition, only a
    /// verse's last partition may be open, winners are children, statuses
    /// follow from the resolutions, and no outcome class has two open
    /// partitions. The next ids continue after the largest.
    pub fn from_parts(
        mut verses: Vec<Verse>,
        mut partitions: Vec<Partition>,
    ) -> Result<VerseTree, VerseError> {
        verses.sort_by_key(|v| v.id);
        partitions.sort_by_key(|p| p.id);
        for (i, v) in verses.iter().enumerate() {
            if v.id.0 != i as u64 + 1 {
                return Err(corrupt(format!(
                    "verse ids must be v1..=v{} without gaps or repeats, found {} at position {}",
                    verses.len(),
                    v.id,
                    i + 1
                )));
            }
        }
        for (i, p) in partitions.iter().enumerate() {
            if p.id.0 != i as u64 + 1 {
                return Err(corrupt(format!(
                    "partition ids must be p1..=p{} without gaps or repeats, found {} at position {}",
                    partitions.len(),
                    p.id,
                    i + 1
                )));
            }
        }
        let tree = VerseTree { verses, partitions };
        for v in &tree.verses {
            tree.check_verse(v)?;
        }
        for p in &tree.partitions {
            tree.check_partition_record(p)?;
        }
        tree.check_statuses()?;
        tree.check_classes()?;
        Ok(tree)
    }

    /// The tree's verses and partitions, for storing.
    pub fn into_parts(self) -> (Vec<Verse>, Vec<Partition>) {
        (self.verses, self.partitions)
    }

    fn check_verse(&self, v: &Verse) -> Result<(), VerseError> {
        let id = v.id;
        if v.name.is_empty() {
            return Err(corrupt(format!("verse {id} has an empty name")));
        }
        match (v.parent, v.parent_partition) {
            (None, None) => {
                if v.index != 0 || v.prob != Prob::ONE || v.trit.is_some() {
                    return Err(corrupt(format!(
                        "root {id} must have index 0, probability 1 and no trit"
                    )));
                }
            }
            (Some(parent), Some(pid)) => {
                if parent >= id {
                    return Err(corrupt(format!(
                        "verse {id} has parent {parent}, not an older verse"
                    )));
                }
                let parent_verse = self
                    .verse(parent)
                    .map_err(|_| corrupt(format!("verse {id} has unknown parent {parent}")))?;
                let p = self
                    .partition_info(pid)
                    .map_err(|_| corrupt(format!("verse {id} is in unknown partition {pid}")))?;
                if p.parent != parent {
                    return Err(corrupt(format!(
                        "verse {id} has parent {parent} but its partition {pid} splits {}",
                        p.parent
                    )));
                }
                let listed = usize::try_from(v.index)
                    .ok()
                    .and_then(|i| p.children.get(i));
                if listed != Some(&id) {
                    return Err(corrupt(format!(
                        "verse {id} claims index {} in {pid}, which does not list it there",
                        v.index
                    )));
                }
                if v.trit.is_none() {
                    return Err(corrupt(format!("child verse {id} has no trit")));
                }
                if v.prob.is_zero() {
                    return Err(corrupt(format!("child verse {id} has probability 0")));
                }
                if v.seed != child_seed(parent_verse.seed, v.index) {
                    return Err(corrupt(format!(
                        "verse {id} has seed {:#x}, expected child_seed(parent seed, {})",
                        v.seed, v.index
                    )));
                }
            }
            _ => {
                return Err(corrupt(format!(
                    "verse {id} must have both a parent and a parent partition, or neither"
                )))
            }
        }
        let mut prev = None;
        for (k, &pid) in v.partitions.iter().enumerate() {
            let p = self
                .partition_info(pid)
                .map_err(|_| corrupt(format!("verse {id} lists unknown partition {pid}")))?;
            if p.parent != id {
                return Err(corrupt(format!(
                    "verse {id} lists {pid}, which splits {}",
                    p.parent
                )));
            }
            if prev.is_some_and(|q| q >= pid) {
                return Err(corrupt(format!(
                    "verse {id} lists its partitions out of order"
                )));
            }
            if p.is_open() && k + 1 != v.partitions.len() {
                return Err(corrupt(format!(
                    "verse {id} has open partition {pid} before a later one"
                )));
            }
            prev = Some(pid);
        }
        Ok(())
    }

    fn check_partition_record(&self, p: &Partition) -> Result<(), VerseError> {
        let pid = p.id;
        let parent = self
            .verse(p.parent)
            .map_err(|_| corrupt(format!("partition {pid} splits unknown verse {}", p.parent)))?;
        if !parent.partitions.contains(&pid) {
            return Err(corrupt(format!(
                "verse {} does not list its partition {pid}",
                p.parent
            )));
        }
        if p.children.len() < 2 {
            return Err(corrupt(format!(
                "partition {pid} has fewer than 2 children"
            )));
        }
        let mut names = BTreeSet::new();
        let mut sum: u128 = 0;
        let mut trits = Vec::with_capacity(p.children.len());
        for (i, &c) in p.children.iter().enumerate() {
            let child = self
                .verse(c)
                .map_err(|_| corrupt(format!("partition {pid} lists unknown child {c}")))?;
            if child.parent_partition != Some(pid) || child.index as usize != i {
                return Err(corrupt(format!(
                    "partition {pid} lists {c} at index {i}, but {c} does not agree"
                )));
            }
            if !names.insert(child.name.as_str()) {
                return Err(corrupt(format!(
                    "partition {pid} has two children named {:?}",
                    child.name
                )));
            }
            sum += u128::from(child.prob.raw());
            trits.extend(child.trit);
        }
        if sum != u128::from(PROB_SCALE) {
            return Err(corrupt(format!(
                "children of {pid} have probabilities summing to {}, not 1",
                crate::prob::fmt_fixed(sum)
            )));
        }
        if gf3_sum(trits) != p.gf3_sum {
            return Err(corrupt(format!(
                "partition {pid} records a gf3_sum its children's trits do not have"
            )));
        }
        if let PartitionStatus::Resolved { winner } = p.status {
            if !p.children.contains(&winner) {
                return Err(corrupt(format!(
                    "partition {pid} resolved to {winner}, not a child"
                )));
            }
        }
        Ok(())
    }

    /// A verse is evaporated exactly when its parent is, or when its parent
    /// partition resolved to another child.
    fn check_statuses(&self) -> Result<(), VerseError> {
        for v in &self.verses {
            let expected_dead = match (v.parent, v.parent_partition) {
                (Some(parent), Some(pid)) => {
                    let parent_dead = !self.verse(parent)?.is_live();
                    let lost = self
                        .partition_info(pid)?
                        .winner()
                        .is_some_and(|w: VerseId| w != v.id);
                    parent_dead || lost
                }
                _ => false,
            };
            let expected = if expected_dead {
                VerseStatus::Evaporated
            } else {
                VerseStatus::Live
            };
            if v.status != expected {
                return Err(corrupt(format!(
                    "verse {} is {:?} but its resolutions make it {:?}",
                    v.id, v.status, expected
                )));
            }
        }
        Ok(())
    }
}
