//! Lookups in the verse tree: verses, partitions, paths, subtrees and
//! probabilities. Nothing here changes the tree.

use super::{Partition, PartitionStatus, Verse, VerseError, VerseTree};
use crate::ids::{PartitionId, VerseId};
use crate::prob::Prob;

impl VerseTree {
    /// The vector slot of id `n` (ids count from 1).
    #[inline]
    pub(super) fn slot(n: u64) -> Option<usize> {
        usize::try_from(n.checked_sub(1)?).ok()
    }

    #[inline]
    pub(super) fn get(&self, id: VerseId) -> Option<&Verse> {
        self.verses.get(Self::slot(id.0)?)
    }

    #[inline]
    pub(super) fn get_partition(&self, id: PartitionId) -> Option<&Partition> {
        self.partitions.get(Self::slot(id.0)?)
    }

    /// The verse with this id, live or evaporated.
    #[inline]
    pub fn verse(&self, id: VerseId) -> Result<&Verse, VerseError> {
        self.get(id).ok_or(VerseError::UnknownVerse(id))
    }

    /// The verse with this id, which must be live.
    #[inline]
    pub fn live_verse(&self, id: VerseId) -> Result<&Verse, VerseError> {
        let verse = self.verse(id)?;
        if verse.is_live() {
            Ok(verse)
        } else {
            Err(self.evaporated_error(id))
        }
    }

    /// The error for evaporated verse `id`, naming the resolution that
    /// ruled it out: the nearest partition on its path that resolved to
    /// another child.
    fn evaporated_error(&self, id: VerseId) -> VerseError {
        let mut cur = id;
        while let Some(verse) = self.get(cur) {
            let (Some(parent), Some(pid)) = (verse.parent, verse.parent_partition) else {
                break;
            };
            if let Some(PartitionStatus::Resolved { winner }) =
                self.get_partition(pid).map(|p| p.status)
            {
                if winner != cur {
                    return VerseError::Evaporated {
                        verse: id,
                        partition: pid,
                        winner,
                    };
                }
            }
            cur = parent;
        }
        // Unreachable in a consistent tree; still say what is wrong.
        VerseError::Corrupt(format!(
            "verse {id} is evaporated but no resolution rules it out"
        ))
    }

    /// The partition with this id.
    #[inline]
    pub fn partition_info(&self, id: PartitionId) -> Result<&Partition, VerseError> {
        self.get_partition(id)
            .ok_or(VerseError::UnknownPartition(id))
    }

    /// The open partition of `verse`, if it has one (always its last).
    #[inline]
    pub fn open_partition_of(&self, verse: VerseId) -> Option<PartitionId> {
        let last = *self.get(verse)?.partitions.last()?;
        self.get_partition(last)
            .filter(|p| p.is_open())
            .map(|p| p.id)
    }

    /// The ids the next verse and partition will get.
    pub fn next_verse_id(&self) -> VerseId {
        VerseId(self.verses.len() as u64 + 1)
    }

    /// The id the next partition will get.
    pub fn next_partition_id(&self) -> PartitionId {
        PartitionId(self.partitions.len() as u64 + 1)
    }

    /// The number of verses, live or evaporated.
    pub fn len(&self) -> usize {
        self.verses.len()
    }

    /// Whether the tree has no verse.
    pub fn is_empty(&self) -> bool {
        self.verses.is_empty()
    }

    /// Every verse in id order.
    pub fn verses(&self) -> impl Iterator<Item = &Verse> + '_ {
        self.verses.iter()
    }

    /// Every partition in id order.
    pub fn partitions(&self) -> impl Iterator<Item = &Partition> + '_ {
        self.partitions.iter()
    }

    /// Every root verse in id order.
    pub fn roots(&self) -> impl Iterator<Item = &Verse> + '_ {
        self.verses.iter().filter(|v| v.is_root())
    }

    /// The root of `id`'s tree.
    pub fn root_of(&self, id: VerseId) -> Result<VerseId, VerseError> {
        let mut cur = self.verse(id)?;
        while let Some(parent) = cur.parent {
            cur = self.verse(parent)?;
        }
        Ok(cur.id)
    }

    /// The verses from the root down to `id`, both included.
    pub fn path(&self, id: VerseId) -> Result<Vec<VerseId>, VerseError> {
        let mut out = Vec::new();
        let mut cur = Some(id);
        while let Some(v) = cur {
            out.push(v);
            cur = self.verse(v)?.parent;
        }
        out.reverse();
        Ok(out)
    }

    /// The absolute (prior) probability of `id`: the product of the
    /// conditional probabilities along its path, each product rounded down.
    pub fn absolute_prob(&self, id: VerseId) -> Result<Prob, VerseError> {
        let mut p = Prob::ONE;
        for v in self.path(id)? {
            p = p.mul(self.verse(v)?.prob);
        }
        Ok(p)
    }

    /// The children of `id` over all its partitions, in id order.
    pub fn children(&self, id: VerseId) -> Result<Vec<VerseId>, VerseError> {
        let mut out = Vec::new();
        for &p in &self.verse(id)?.partitions {
            out.extend_from_slice(&self.partition_info(p)?.children);
        }
        Ok(out)
    }

    /// Every verse strictly below `id`, live or evaporated, in id order.
    pub fn descendants(&self, id: VerseId) -> Result<Vec<VerseId>, VerseError> {
        let mut out = Vec::new();
        let mut stack = self.children(id)?;
        while let Some(v) = stack.pop() {
            out.push(v);
            stack.extend(self.children(v)?);
        }
        out.sort_unstable();
        Ok(out)
    }
}
