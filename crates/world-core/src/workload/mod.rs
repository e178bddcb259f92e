//! Deterministic workloads for benches and tests.
//!
//! [`setup_ledger`] builds a funded ledger: one root partitioned into
//! children, every owner holding the same amount in the root and in every
//! child. [`batch`] (and its shorthands [`transfer_batch`] and
//! [`mixed_batch`]) then generates a batch of *valid* operations (each one
//! succeeds when the batch runs in order) with a controlled conflict rate.
//!
//! An operation *conflicts* when one of the cells it writes was written by
//! an earlier operation of the batch; a conflicting operation reuses one of
//! the last 256 cells written, so that it usually falls within the same
//! block of the parallel executor ([`crate::parallel::BLOCK_OPS`]), which
//! must then re-execute it (a conflict with an earlier block costs
//! nothing: that block has committed). A batch of `n` operations with
//! `conflict_rate` r has `round(r * n)` conflicting operations, spread
//! evenly, as long as the ledger has enough untouched funded cells: a
//! conflict-free transfer consumes one funded cell (it pays another funded
//! cell of the same verse while those are plentiful, else a new owner
//! `fresh{k}`), and a conflict-free push_down or pull_up consumes one
//! owner's parent cell and all its child cells. So size the ledger with
//! `owners * (children + 1) >= n` for transfer batches and
//! `owners >= n` for mixed batches. When untouched cells run out the
//! generator makes conflicting operations instead ([`count_conflicts`]
//! measures the real rate). Every choice comes from a SplitMix64 stream of
//! `seed`, so equal inputs give equal batches.

mod generator;

use std::collections::HashSet;

use crate::ids::{Owner, Token, VerseId};
use crate::ledger::{Ledger, Op};
use crate::prob::{Prob, PROB_SCALE};
use crate::trit::Trit;
use crate::verse::ChildSpec;
use generator::Generator;

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
    Owner::new(&format!("{prefix}{i}"))
        .unwrap_or_else(|_| unreachable!("generated names are valid"))
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
    let weights = f64::from(mix.transfer) + f64::from(mix.push_down) + f64::from(mix.pull_up);
    let transfer_share = if weights > 0.0 {
        f64::from(mix.transfer) / weights
    } else {
        1.0
    };
    for k in 0..n_ops {
        g.fresh_transfers_left =
            ((n_ops - k) as f64 * (1.0 - rate) * transfer_share).ceil() as usize;
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
        assert_eq!(
            children_specs(5).iter().map(|c| c.prob.raw()).sum::<u64>(),
            PROB_SCALE
        );
        assert!(crate::trit::conserves(
            children_specs(5).iter().map(|c| c.trit)
        ));
    }

    #[test]
    fn batches_are_valid_deterministic_and_hit_the_rate() {
        let l = setup_ledger(400, 4, 1_000);
        for (mix, rate) in [
            (Mix::TRANSFERS, 0.0),
            (Mix::TRANSFERS, 0.1),
            (Mix::MIXED, 0.5),
            (Mix::MIXED, 0.0),
        ] {
            let ops = batch(&l, 500, rate, 9, mix);
            assert_eq!(ops.len(), 500);
            assert_eq!(ops, batch(&l, 500, rate, 9, mix));
            let mut scratch = l.clone();
            assert!(execute_serial(&mut scratch, &ops).iter().all(Result::is_ok));
            assert_eq!(
                count_conflicts(&l, &ops),
                (rate * 500.0).round() as usize,
                "{mix:?} {rate}"
            );
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
