//! Deterministic workloads for benches and tests.
//!
//! [`setup_ledger`] builds a funded ledger: one root partitioned into
//! children, every owner holding the same amount in the root and in every
//! child. [`batch`] (and its shorthands [`transfer_batch`] and
//! [`mixed_batch`]) then generates a batch of *valid* operations (each one
//! succeeds when the batch runs in order) with a controlled conflict rate.
//!
//! An operation *conflicts* when one of the cells it writes was written by
//! an earlier operation of the batch; that is exactly when the parallel
//! executor must re-execute it. A batch of `n` operations with
//! `conflict_rate` r has `round(r * n)` conflicting operations, spread
//! evenly, as long as the ledger has enough untouched funded cells: a
//! conflict-free transfer consumes two funded cells of one verse (one if it
//! pays a fresh owner), a conflict-free push_down or pull_up consumes one
//! owner's parent cell and child cells. Size the ledger with
//! `owners * (children + 1) >= 2 * n` for transfer batches. When untouched
//! cells run out the generator makes conflicting operations instead
//! ([`count_conflicts`] measures the real rate). Every choice comes from a
//! SplitMix64 stream of `seed`, so equal inputs give equal batches.

use std::collections::{BTreeMap, HashSet};

use crate::ids::{Owner, PartitionId, Token, VerseId};
use crate::ledger::{BalanceKey, Ledger, Op};
use crate::prob::{Prob, PROB_SCALE};
use crate::seed::SplitMix64;
use crate::trit::Trit;
use crate::verse::ChildSpec;

/// The token of generated ledgers.
pub const TOKEN: &str = "usd";

/// The seed of the generated root verse.
pub const ROOT_SEED: u64 = 42;

/// The relative weights of operation kinds in a generated batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Weight of transfers.
    pub transfer: u32,
    /// Weight of push_downs.
    pub push_down: u32,
    /// Weight of pull_ups.
    pub pull_up: u32,
}

impl Mix {
    /// Transfers only.
    pub const TRANSFERS: Mix = Mix {
        transfer: 1,
        push_down: 0,
        pull_up: 0,
    };
    /// A third each of transfers, push_downs and pull_ups.
    pub const MIXED: Mix = Mix {
        transfer: 1,
        push_down: 1,
        pull_up: 1,
    };
}

fn token() -> Token {
    Token::new(TOKEN).unwrap_or_else(|_| unreachable!("TOKEN is a valid name"))
}

fn name(prefix: &str, i: usize) -> Owner {
    Owner::new(&format!("{prefix}{i}")).unwrap_or_else(|_| unreachable!("generated names are valid"))
}

/// The children specs of a generated partition: `c0..c{n-1}`, equal
/// probabilities (the remainder to `c0`), trits -1, 0, +1 repeated and 0
/// for the last `n % 3`, so they conserve.
pub fn children_specs(n: usize) -> Vec<ChildSpec> {
    let n = n.max(2);
    let share = PROB_SCALE / n as u64;
    let rest = PROB_SCALE - share * n as u64;
    (0..n)
        .map(|i| {
            let trit = if i >= n - n % 3 {
                Trit::Zero
            } else {
                Trit::ALL[i % 3]
            };
            let raw = share + if i == 0 { rest } else { 0 };
            let prob = Prob::new(raw).unwrap_or(Prob::ONE);
            ChildSpec::new(format!("c{i}"), prob, trit)
        })
        .collect()
}

/// A ledger with root `world` (v1, seed [`ROOT_SEED`]) partitioned (p1)
/// into `children` (at least 2) verses `c0..`, and `owners` owners
/// `o0..` who each hold `funds` (at least 1, at most `u64::MAX / 2`) of
/// [`TOKEN`] in the root and in every child.
pub fn setup_ledger(owners: usize, children: usize, funds: u64) -> Ledger {
    let funds = funds.clamp(1, u64::MAX / 2);
    let mut ledger = Ledger::new();
    let mut ops = vec![
        Op::CreateRoot {
            name: "world".into(),
            seed: ROOT_SEED,
        },
        Op::Partition {
            parent: VerseId(1),
            children: children_specs(children),
            allow_nonconserving: false,
        },
    ];
    for i in 0..owners {
        let owner = name("o", i);
        ops.push(Op::Deposit {
            token: token(),
            verse: VerseId(1),
            owner: owner.clone(),
            amount: 2 * funds,
        });
        ops.push(Op::PushDown {
            token: token(),
            owner,
            parent: VerseId(1),
            amount: funds,
        });
    }
    for op in &ops {
        // Every op is valid by construction.
        let _ = ledger.apply(op);
    }
    ledger
}

/// [`batch`] with transfers only.
pub fn transfer_batch(ledger: &Ledger, n_ops: usize, conflict_rate: f64, seed: u64) -> Vec<Op> {
    batch(ledger, n_ops, conflict_rate, seed, Mix::TRANSFERS)
}

/// [`batch`] with a third each of transfers, push_downs and pull_ups.
pub fn mixed_batch(ledger: &Ledger, n_ops: usize, conflict_rate: f64, seed: u64) -> Vec<Op> {
    batch(ledger, n_ops, conflict_rate, seed, Mix::MIXED)
}

/// `n_ops` valid operations of the given mix over the live verses of
/// `ledger`, moving 1 unit of its first token (preferring [`TOKEN`]) each,
/// of which `round(conflict_rate * n_ops)` conflict (see the module docs).
/// Returns fewer operations only if the ledger offers no valid operation.
pub fn batch(ledger: &Ledger, n_ops: usize, conflict_rate: f64, seed: u64, mix: Mix) -> Vec<Op> {
    let mut g = Generator::new(ledger, seed);
    let rate = if conflict_rate.is_finite() {
        conflict_rate.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut ops = Vec::with_capacity(n_ops);
    let mut conflicts = 0usize;
    for k in 0..n_ops {
        let target = (rate * (k + 1) as f64).round() as usize;
        let want_conflict = conflicts < target;
        let kind = g.kind(mix);
        let Some((op, conflicted)) = g.next(kind, want_conflict) else {
            break;
        };
        conflicts += usize::from(conflicted);
        ops.push(op);
    }
    ops
}

/// The number of operations of `ops` (run in order on a copy of
/// `ledger`) that write a cell an earlier operation wrote.
pub fn count_conflicts(ledger: &Ledger, ops: &[Op]) -> usize {
    let mut scratch = ledger.clone();
    let mut touched = HashSet::new();
    let mut n = 0;
    for op in ops {
        if let Ok(applied) = scratch.apply(op) {
            let mut hit = false;
            for (key, _) in applied.balance_writes {
                hit |= !touched.insert(key);
            }
            n += usize::from(hit);
        }
    }
    n
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
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

struct Generator {
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
}

impl Generator {
    fn new(ledger: &Ledger, seed: u64) -> Generator {
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
        }
    }

    fn kind(&mut self, mix: Mix) -> Kind {
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
    fn next(&mut self, kind: Kind, want_conflict: bool) -> Option<(Op, bool)> {
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
            let to = match self.pop_fresh(verse) {
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
    fn conflicting(&mut self, kind: Kind) -> Option<Op> {
        if self.touched_list.is_empty() {
            return None;
        }
        let i = self.rng.below(self.touched_list.len() as u64) as usize;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::execute_serial;

    #[test]
    fn setup_is_funded_and_conserving() {
        let l = setup_ledger(10, 3, 100);
        let usd = token();
        assert_eq!(l.tree().len(), 4);
        for v in 1..=4 {
            assert_eq!(l.balance(&usd, VerseId(v), &name("o", 7)), 100);
        }
        let totals = l.outcome_totals(&usd);
        assert_eq!(totals.len(), 3);
        assert!(totals.values().all(|&t| t == 2 * 100 * 10));
        assert_eq!(children_specs(5).iter().map(|c| c.prob.raw()).sum::<u64>(), PROB_SCALE);
        assert!(crate::trit::conserves(children_specs(5).iter().map(|c| c.trit)));
    }

    #[test]
    fn batches_are_valid_deterministic_and_hit_the_rate() {
        let l = setup_ledger(400, 4, 1_000);
        for (mix, rate) in [(Mix::TRANSFERS, 0.0), (Mix::TRANSFERS, 0.1), (Mix::MIXED, 0.5), (Mix::MIXED, 0.0)] {
            let ops = batch(&l, 500, rate, 9, mix);
            assert_eq!(ops.len(), 500);
            assert_eq!(ops, batch(&l, 500, rate, 9, mix));
            let mut scratch = l.clone();
            assert!(execute_serial(&mut scratch, &ops).iter().all(Result::is_ok));
            assert_eq!(count_conflicts(&l, &ops), (rate * 500.0).round() as usize, "{mix:?} {rate}");
        }
        let mixed = mixed_batch(&l, 300, 0.1, 1);
        for kind in ["transfer", "push_down", "pull_up"] {
            assert!(mixed.iter().any(|o| o.kind() == kind), "no {kind}");
        }
    }

    #[test]
    fn exhausted_cells_turn_into_conflicts() {
        let l = setup_ledger(5, 2, 1_000);
        let ops = transfer_batch(&l, 100, 0.0, 3);
        assert_eq!(ops.len(), 100);
        assert!(count_conflicts(&l, &ops) > 0);
        assert!(transfer_batch(&Ledger::new(), 10, 0.0, 3).is_empty());
    }
}
