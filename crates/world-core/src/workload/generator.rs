//! The batch generator: picks conflict-free or conflicting operations and
//! keeps a scratch ledger to make sure each one is valid in batch order.

use std::collections::{BTreeMap, HashSet};

use super::{name, token, Mix};
use crate::ids::{Owner, PartitionId, Token, VerseId};
use crate::ledger::{BalanceKey, Ledger, Op};
use crate::seed::SplitMix64;

/// How far back (in cells written) a conflicting operation reaches.
pub(super) const RECENT: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Transfer,
    PushDown,
    PullUp,
}

struct Parent {
    verse: VerseId,
    partition: PartitionId,
    children: Vec<VerseId>,
    /// Owners with a balance in the parent, not yet used (shuffled).
    fresh: Vec<Owner>,
}

pub(super) struct Generator {
    scratch: Ledger,
    rng: SplitMix64,
    token: Token,
    /// Live verses with balances, and per verse every owner with a
    /// balance (`all`) and those not yet used (`fresh`, shuffled).
    verses: Vec<VerseId>,
    all: BTreeMap<VerseId, Vec<Owner>>,
    fresh: BTreeMap<VerseId, Vec<Owner>>,
    parents: Vec<Parent>,
    touched: HashSet<BalanceKey>,
    touched_list: Vec<BalanceKey>,
    next_verse: usize,
    new_owners: usize,
    /// Cells left in the `fresh` lists (some may have been touched since).
    fresh_cells: usize,
    /// Conflict-free transfers still expected in the batch.
    pub(super) fresh_transfers_left: usize,
}

impl Generator {
    pub(super) fn new(ledger: &Ledger, seed: u64) -> Generator {
        let tokens = ledger.tokens();
        let preferred = token();
        let token = if tokens.contains(&preferred) || tokens.is_empty() {
            preferred
        } else {
            tokens[0].clone()
        };
        let tree = ledger.tree();
        let mut all: BTreeMap<VerseId, Vec<Owner>> = BTreeMap::new();
        for (key, value) in ledger.balances() {
            if key.token == token && value > 0 && tree.live_verse(key.verse).is_ok() {
                all.entry(key.verse).or_default().push(key.owner);
            }
        }
        let mut rng = SplitMix64::new(seed);
        let mut fresh = all.clone();
        for owners in fresh.values_mut() {
            shuffle(owners, &mut rng);
        }
        let mut parents = Vec::new();
        for v in tree.verses().filter(|v| v.is_live()) {
            let Some(pid) = tree.open_partition_of(v.id) else {
                continue;
            };
            let Ok(part) = tree.partition_info(pid) else {
                continue;
            };
            let mut owners = all.get(&v.id).cloned().unwrap_or_default();
            shuffle(&mut owners, &mut rng);
            parents.push(Parent {
                verse: v.id,
                partition: pid,
                children: part.children.clone(),
                fresh: owners,
            });
        }
        let fresh_cells = all.values().map(Vec::len).sum();
        Generator {
            scratch: ledger.clone(),
            rng,
            token,
            verses: all.keys().copied().collect(),
            all,
            fresh,
            parents,
            touched: HashSet::new(),
            touched_list: Vec::new(),
            next_verse: 0,
            new_owners: 0,
            fresh_cells,
            fresh_transfers_left: 0,
        }
    }

    pub(super) fn kind(&mut self, mix: Mix) -> Kind {
        let total = u64::from(mix.transfer) + u64::from(mix.push_down) + u64::from(mix.pull_up);
        let x = self.rng.below(total.max(1));
        if x < u64::from(mix.transfer) || total == 0 {
            Kind::Transfer
        } else if x < u64::from(mix.transfer) + u64::from(mix.push_down) {
            Kind::PushDown
        } else {
            Kind::PullUp
        }
    }

    fn key(&self, verse: VerseId, owner: &Owner) -> BalanceKey {
        BalanceKey::new(self.token.clone(), verse, owner.clone())
    }

    fn untouched(&self, verse: VerseId, owner: &Owner) -> bool {
        !self.touched.contains(&self.key(verse, owner))
    }

    /// The next valid operation of `kind` (or of another kind when none
    /// fits), conflicting if asked and possible; with whether it conflicts.
    pub(super) fn next(&mut self, kind: Kind, want_conflict: bool) -> Option<(Op, bool)> {
        let kinds = [kind, Kind::Transfer, Kind::PushDown, Kind::PullUp];
        let order: [bool; 2] = [want_conflict, !want_conflict];
        for conflict in order {
            for &k in &kinds {
                for _ in 0..8 {
                    let candidate = if conflict {
                        self.conflicting(k)
                    } else {
                        self.fresh_op(k)
                    };
                    let Some(op) = candidate else { break };
                    if let Some(done) = self.accept(op) {
                        return Some(done);
                    }
                }
            }
        }
        None
    }

    /// Applies `op` to the scratch ledger; on success records its cells.
    fn accept(&mut self, op: Op) -> Option<(Op, bool)> {
        let applied = self.scratch.apply(&op).ok()?;
        let mut hit = false;
        for (key, _) in applied.balance_writes {
            if self.touched.insert(key.clone()) {
                self.touched_list.push(key);
            } else {
                hit = true;
            }
        }
        Some((op, hit))
    }

    fn pop_fresh(&mut self, verse: VerseId) -> Option<Owner> {
        loop {
            let owner = self.fresh.get_mut(&verse)?.pop()?;
            self.fresh_cells = self.fresh_cells.saturating_sub(1);
            if self.untouched(verse, &owner) {
                return Some(owner);
            }
        }
    }

    fn fresh_op(&mut self, kind: Kind) -> Option<Op> {
        match kind {
            Kind::Transfer => self.fresh_transfer(),
            Kind::PushDown | Kind::PullUp => self.fresh_move(kind),
        }
    }

    fn fresh_transfer(&mut self) -> Option<Op> {
        for _ in 0..self.verses.len() {
            let verse = self.verses[self.next_verse % self.verses.len()];
            self.next_verse += 1;
            let Some(from) = self.pop_fresh(verse) else {
                continue;
            };
            // Pay a funded cell only while there are enough for every
            // conflict-free transfer still to come to have its own payer.
            let plenty = self.fresh_cells > 2 * self.fresh_transfers_left;
            let to = match if plenty { self.pop_fresh(verse) } else { None } {
                Some(to) => to,
                None => {
                    self.new_owners += 1;
                    name("fresh", self.new_owners)
                }
            };
            return Some(Op::Transfer {
                token: self.token.clone(),
                verse,
                from,
                to,
                amount: 1,
            });
        }
        None
    }

    fn fresh_move(&mut self, kind: Kind) -> Option<Op> {
        let n = self.parents.len();
        let start = self.rng.below(n as u64) as usize;
        for j in 0..n {
            let i = (start + j) % n;
            while let Some(owner) = self.parents[i].fresh.pop() {
                let p = &self.parents[i];
                let clean = self.untouched(p.verse, &owner)
                    && p.children.iter().all(|&c| self.untouched(c, &owner));
                if !clean {
                    continue;
                }
                return Some(self.move_op(i, kind, owner));
            }
        }
        None
    }

    fn move_op(&self, parent: usize, kind: Kind, owner: Owner) -> Op {
        let p = &self.parents[parent];
        match kind {
            Kind::PullUp => Op::PullUp {
                token: self.token.clone(),
                owner,
                partition: p.partition,
                amount: 1,
            },
            _ => Op::PushDown {
                token: self.token.clone(),
                owner,
                parent: p.verse,
                amount: 1,
            },
        }
    }

    /// An operation writing a cell an earlier operation wrote.
    /// The cell comes from the last [`RECENT`] cells written, so that the
    /// conflict usually falls within one block of the parallel executor.
    fn conflicting(&mut self, kind: Kind) -> Option<Op> {
        let len = self.touched_list.len();
        if len == 0 {
            return None;
        }
        let window = len.min(RECENT);
        let i = len - 1 - self.rng.below(window as u64) as usize;
        let cell = self.touched_list[i].clone();
        if kind != Kind::Transfer {
            let tree = self.scratch.tree();
            let as_parent = self.parents.iter().position(|p| p.verse == cell.verse);
            let as_child = self
                .parents
                .iter()
                .position(|p| p.children.contains(&cell.verse));
            let idx = match kind {
                Kind::PushDown => as_parent.or(as_child),
                _ => as_child.or(as_parent),
            };
            if let Some(idx) = idx {
                if tree.live_verse(self.parents[idx].verse).is_ok() {
                    return Some(self.move_op(idx, kind, cell.owner));
                }
            }
        }
        let owners = self.all.get(&cell.verse)?;
        if owners.is_empty() {
            return None;
        }
        let mut to = owners[self.rng.below(owners.len() as u64) as usize].clone();
        if to == cell.owner {
            self.new_owners += 1;
            to = name("fresh", self.new_owners);
        }
        Some(Op::Transfer {
            token: self.token.clone(),
            verse: cell.verse,
            from: cell.owner,
            to,
            amount: 1,
        })
    }
}

fn shuffle<T>(v: &mut [T], rng: &mut SplitMix64) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}
