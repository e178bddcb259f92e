//! Outcome classes and outcome leaves.
//!
//! When partition `p` of `V` resolves to `W`, `V` and `W` denote the same
//! possible outcomes. Live verses joined by such resolved-winner edges form
//! an *outcome class*; its *top* is the member that is a root or a child of
//! an open partition. A class has at most one open partition, so classes
//! form a tree whose edges are open partitions. An *outcome leaf* is a live
//! verse with no partition of its own whose class has no open partition;
//! the verses "containing" it are the members of every class on its path.

use std::collections::BTreeMap;

use super::{PartitionStatus, VerseError, VerseTree};
use crate::ids::{PartitionId, VerseId};

/// Per-verse class information for the live verses (slot-indexed).
struct Classes {
    /// The slot of each live verse's class top; `None` if evaporated.
    top: Vec<Option<usize>>,
    /// Whether the class with this top slot has an open partition.
    open: Vec<bool>,
}

impl VerseTree {
    fn classes(&self) -> Classes {
        let n = self.verses.len();
        let mut top = vec![None; n];
        let mut open = vec![false; n];
        // Parents have smaller ids than children, so one pass in id order
        // sees every parent first.
        for (i, v) in self.verses.iter().enumerate() {
            if !v.is_live() {
                continue;
            }
            let t = match (v.parent, v.parent_partition) {
                (Some(parent), Some(pid)) => {
                    let resolved = self.get_partition(pid).is_some_and(|p| !p.is_open());
                    let parent_top =
                        Self::slot(parent.0).and_then(|s| top.get(s).copied().flatten());
                    match (resolved, parent_top) {
                        (true, Some(pt)) => pt,
                        _ => i,
                    }
                }
                _ => i,
            };
            top[i] = Some(t);
            if self.open_partition_of(v.id).is_some() {
                open[t] = true;
            }
        }
        Classes { top, open }
    }

    /// The top of `id`'s outcome class: climb while the verse is the
    /// winner of a resolved partition.
    fn class_top(&self, id: VerseId) -> VerseId {
        let mut cur = id;
        while let Some(v) = self.get(cur) {
            match (
                v.parent,
                v.parent_partition.and_then(|p| self.get_partition(p)),
            ) {
                (Some(parent), Some(p)) if !p.is_open() => cur = parent,
                _ => break,
            }
        }
        cur
    }

    /// The open partition in `id`'s outcome class, with the verse holding
    /// it, if any.
    pub(super) fn open_partition_in_class(&self, id: VerseId) -> Option<(VerseId, PartitionId)> {
        let mut stack = vec![self.class_top(id)];
        while let Some(v) = stack.pop() {
            for &pid in &self.get(v)?.partitions {
                let p = self.get_partition(pid)?;
                match p.status {
                    PartitionStatus::Open => return Some((v, pid)),
                    PartitionStatus::Resolved { winner } => stack.push(winner),
                }
            }
        }
        None
    }

    /// The outcome leaves: live verses with no partition whose outcome
    /// class has no open partition, in id order. Without re-partitioning
    /// after a resolution these are exactly the live verses with no live
    /// child.
    pub fn live_leaves(&self) -> Vec<VerseId> {
        let c = self.classes();
        self.verses
            .iter()
            .enumerate()
            .filter(|(i, v)| v.partitions.is_empty() && c.top[*i].is_some_and(|t| !c.open[t]))
            .map(|(_, v)| v.id)
            .collect()
    }

    /// The live verses whose event contains live verse `id`'s event: the
    /// members of every outcome class on its path (itself included), in id
    /// order. For an outcome leaf these are the verses whose balances pay
    /// out if that outcome happens.
    pub fn outcome_verses(&self, id: VerseId) -> Result<Vec<VerseId>, VerseError> {
        self.live_verse(id)?;
        let c = self.classes();
        let mut on_path = vec![false; self.verses.len()];
        for v in self.path(id)? {
            if let Some(t) = Self::slot(v.0).and_then(|s| c.top[s]) {
                on_path[t] = true;
            }
        }
        Ok(self
            .verses
            .iter()
            .enumerate()
            .filter(|(i, _)| c.top[*i].is_some_and(|t| on_path[t]))
            .map(|(_, v)| v.id)
            .collect())
    }

    /// For every outcome leaf, the sum of `per_verse[slot]` over the live
    /// verses containing it. `per_verse` is indexed by slot (id - 1);
    /// missing slots count as 0.
    pub(crate) fn outcome_totals_with(&self, per_verse: &[u128]) -> BTreeMap<VerseId, u128> {
        let c = self.classes();
        let n = self.verses.len();
        let mut class_sum = vec![0u128; n];
        for (i, t) in c.top.iter().enumerate() {
            if let Some(t) = t {
                class_sum[*t] += per_verse.get(i).copied().unwrap_or(0);
            }
        }
        // atom[t] = class_sum[t] + atom[class of t's parent]; parents first.
        let mut atom = vec![0u128; n];
        for i in 0..n {
            if c.top[i] != Some(i) {
                continue;
            }
            let above = self.verses[i]
                .parent
                .and_then(|p| Self::slot(p.0))
                .and_then(|s| c.top[s])
                .map_or(0, |pt| atom[pt]);
            atom[i] = above + class_sum[i];
        }
        let mut out = BTreeMap::new();
        for (i, v) in self.verses.iter().enumerate() {
            if let Some(t) = c.top[i] {
                if v.partitions.is_empty() && !c.open[t] {
                    out.insert(v.id, atom[t]);
                }
            }
        }
        out
    }

    /// Checks that no outcome class holds more than one open partition.
    pub(super) fn check_classes(&self) -> Result<(), VerseError> {
        let c = self.classes();
        let mut seen: Vec<Option<VerseId>> = vec![None; self.verses.len()];
        for (i, v) in self.verses.iter().enumerate() {
            let Some(t) = c.top[i] else { continue };
            if self.open_partition_of(v.id).is_some() {
                if let Some(other) = seen[t] {
                    return Err(VerseError::Corrupt(format!(
                        "{other} and {} have the same outcomes and both have an open partition",
                        v.id
                    )));
                }
                seen[t] = Some(v.id);
            }
        }
        Ok(())
    }
}
