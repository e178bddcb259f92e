//! Changes to the verse tree: new roots, partitions and resolutions. Each
//! change is checked completely by a `check_*` method before anything is
//! written, so a failing change leaves the tree as it was.

use std::collections::BTreeSet;

use super::{ChildSpec, Partition, PartitionStatus, Verse, VerseError, VerseStatus, VerseTree};
use crate::ids::{PartitionId, VerseId};
use crate::prob::{Prob, PROB_SCALE};
use crate::seed::child_seed;
use crate::trit::{gf3_residue, gf3_sum};

impl VerseTree {
    /// An empty tree.
    pub fn new() -> VerseTree {
        VerseTree::default()
    }

    /// Checks a root name: it must not be empty.
    pub fn check_root(name: &str) -> Result<(), VerseError> {
        if name.is_empty() {
            return Err(VerseError::EmptyName { index: 0 });
        }
        Ok(())
    }

    /// Adds a root verse: a whole outcome space of its own, live, with
    /// probability 1 and the given seed.
    pub fn create_root(&mut self, name: &str, seed: u64) -> Result<VerseId, VerseError> {
        VerseTree::check_root(name)?;
        let id = self.next_verse_id();
        self.verses.push(Verse {
            id,
            name: name.to_owned(),
            parent: None,
            parent_partition: None,
            index: 0,
            prob: Prob::ONE,
            trit: None,
            seed,
            status: VerseStatus::Live,
            partitions: Vec::new(),
        });
        Ok(id)
    }

    /// Checks everything [`VerseTree::partition`] checks and returns the
    /// raw trit sum it would record.
    pub fn check_partition(
        &self,
        parent: VerseId,
        children: &[ChildSpec],
        allow_nonconserving: bool,
    ) -> Result<i64, VerseError> {
        self.live_verse(parent)?;
        if let Some((holder, partition)) = self.open_partition_in_class(parent) {
            return Err(if holder == parent {
                VerseError::AlreadyPartitioned {
                    verse: parent,
                    partition,
                }
            } else {
                VerseError::ClassPartitioned {
                    verse: parent,
                    holder,
                    partition,
                }
            });
        }
        if children.len() < 2 {
            return Err(VerseError::TooFewChildren(children.len()));
        }
        if u32::try_from(children.len()).is_err() {
            return Err(VerseError::TooManyChildren(children.len()));
        }
        let mut names = BTreeSet::new();
        let mut sum: u128 = 0;
        for (index, child) in children.iter().enumerate() {
            if child.name.is_empty() {
                return Err(VerseError::EmptyName { index });
            }
            if !names.insert(child.name.as_str()) {
                return Err(VerseError::DuplicateName(child.name.clone()));
            }
            if child.prob.is_zero() {
                return Err(VerseError::ZeroProb(child.name.clone()));
            }
            sum += u128::from(child.prob.raw());
        }
        if sum != u128::from(PROB_SCALE) {
            return Err(VerseError::ProbSum(sum));
        }
        let gf3 = gf3_sum(children.iter().map(|c| c.trit));
        if !allow_nonconserving && gf3_residue(gf3) != 0 {
            return Err(VerseError::NonConserving(gf3));
        }
        Ok(gf3)
    }

    /// Splits live verse `parent` into `children`.
    ///
    /// The parent must be live and neither it nor a verse of its outcome
    /// class may have an open partition; there must be >= 2 children with
    /// non-empty unique names, each with probability > 0, summing to exactly
    /// 1; their trits must sum to 0 mod 3 unless `allow_nonconserving`.
    /// Child `i` gets seed `child_seed(parent.seed, i)`.
    pub fn partition(
        &mut self,
        parent: VerseId,
        children: &[ChildSpec],
        allow_nonconserving: bool,
    ) -> Result<PartitionId, VerseError> {
        let gf3 = self.check_partition(parent, children, allow_nonconserving)?;
        let pid = self.next_partition_id();
        let parent_seed = self.verse(parent)?.seed;
        let first = self.next_verse_id().0;
        let mut ids = Vec::with_capacity(children.len());
        for (i, child) in children.iter().enumerate() {
            // check_partition bounded the count by u32::MAX.
            let index = i as u32;
            let id = VerseId(first + u64::from(index));
            ids.push(id);
            self.verses.push(Verse {
                id,
                name: child.name.clone(),
                parent: Some(parent),
                parent_partition: Some(pid),
                index,
                prob: child.prob,
                trit: Some(child.trit),
                seed: child_seed(parent_seed, index),
                status: VerseStatus::Live,
                partitions: Vec::new(),
            });
        }
        self.partitions.push(Partition {
            id: pid,
            parent,
            children: ids,
            gf3_sum: gf3,
            status: PartitionStatus::Open,
        });
        if let Some(p) = self.verse_mut(parent) {
            p.partitions.push(pid);
        }
        Ok(pid)
    }

    /// Checks everything [`VerseTree::resolve`] checks and returns the
    /// verses it would evaporate, in id order.
    pub fn check_resolve(
        &self,
        partition: PartitionId,
        winner: VerseId,
    ) -> Result<Vec<VerseId>, VerseError> {
        let part = self.partition_info(partition)?;
        self.live_verse(part.parent)?;
        if let PartitionStatus::Resolved { winner: w } = part.status {
            return Err(VerseError::AlreadyResolved {
                partition,
                winner: w,
            });
        }
        if !part.children.contains(&winner) {
            return Err(VerseError::NotAChild {
                partition,
                verse: winner,
            });
        }
        let mut out = Vec::new();
        for &child in part.children.iter().filter(|&&c| c != winner) {
            self.collect_live_subtree(child, &mut out);
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Resolves open `partition` to `winner`: every other child and its
    /// whole subtree evaporates. Returns the verses that evaporated (live
    /// before, in id order). The parent may then be partitioned again.
    pub fn resolve(
        &mut self,
        partition: PartitionId,
        winner: VerseId,
    ) -> Result<Vec<VerseId>, VerseError> {
        let evaporated = self.check_resolve(partition, winner)?;
        for &v in &evaporated {
            if let Some(verse) = self.verse_mut(v) {
                verse.status = VerseStatus::Evaporated;
            }
        }
        if let Some(p) = Self::slot(partition.0).and_then(|i| self.partitions.get_mut(i)) {
            p.status = PartitionStatus::Resolved { winner };
        }
        Ok(evaporated)
    }

    /// Live verses of the subtree under (and including) `root`.
    fn collect_live_subtree(&self, root: VerseId, out: &mut Vec<VerseId>) {
        let mut stack = vec![root];
        while let Some(v) = stack.pop() {
            let Some(verse) = self.get(v) else { continue };
            if !verse.is_live() {
                // Everything below an evaporated verse has evaporated too.
                continue;
            }
            out.push(v);
            for &p in &verse.partitions {
                if let Some(part) = self.get_partition(p) {
                    stack.extend(part.children.iter().copied());
                }
            }
        }
    }

    /// The verse with this id (always present for checked ids).
    fn verse_mut(&mut self, id: VerseId) -> Option<&mut Verse> {
        self.verses.get_mut(Self::slot(id.0)?)
    }
}
