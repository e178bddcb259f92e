//! Property tests of the ledger over long random operation sequences
//! (>= 10,000 operations each, valid and invalid mixed, with nested
//! partitions and resolutions):
//!
//! - every balance operation succeeds exactly when an independent model
//!   says it should, and writes exactly the model's new values (so no
//!   balance goes negative or wraps around);
//! - a failed operation leaves the ledger exactly as it was, tree included;
//! - the outcome totals of every token change only by deposits and
//!   withdrawals: partitions refine a leaf into children with its total,
//!   resolutions drop the losing leaves, and push_down, pull_up and
//!   transfer change nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::{choice, key, make_op, TOKENS};
use proptest::prelude::*;
use world_core::{BalanceKey, Effect, Ledger, Op, Token, VerseId};

/// What the model says a balance operation must write, or `None` if it
/// must fail.
fn model(l: &Ledger, op: &Op) -> Option<Vec<(BalanceKey, u64)>> {
    let t = l.tree();
    let live = |v: VerseId| t.verse(v).ok().filter(|v| v.is_live());
    let debit = |k: BalanceKey, x: u64| l.balance_of(&k).checked_sub(x).map(|b| (k, b));
    let credit = |k: BalanceKey, x: u64| l.balance_of(&k).checked_add(x).map(|b| (k, b));
    match op {
        Op::Deposit {
            token,
            verse,
            owner,
            amount,
        } => {
            let v = live(*verse).filter(|v| v.parent.is_none() && *amount > 0)?;
            Some(vec![credit(key(token, v.id, owner), *amount)?])
        }
        Op::Withdraw {
            token,
            verse,
            owner,
            amount,
        } => {
            let v = live(*verse).filter(|v| v.parent.is_none() && *amount > 0)?;
            Some(vec![debit(key(token, v.id, owner), *amount)?])
        }
        Op::PushDown {
            token,
            owner,
            parent,
            amount,
        } => {
            live(*parent).filter(|_| *amount > 0)?;
            let part = t.partition_info(t.open_partition_of(*parent)?).ok()?;
            let mut out = vec![debit(key(token, *parent, owner), *amount)?];
            for &c in &part.children {
                out.push(credit(key(token, c, owner), *amount)?);
            }
            Some(out)
        }
        Op::PullUp {
            token,
            owner,
            partition,
            amount,
        } => {
            let part = t.partition_info(*partition).ok()?;
            live(part.parent).filter(|_| *amount > 0)?;
            let from = match part.winner() {
                Some(w) => vec![w],
                None => part.children.clone(),
            };
            let mut out = Vec::new();
            for c in from {
                out.push(debit(key(token, c, owner), *amount)?);
            }
            out.push(credit(key(token, part.parent, owner), *amount)?);
            Some(out)
        }
        Op::Transfer {
            token,
            verse,
            from,
            to,
            amount,
        } => {
            live(*verse).filter(|_| *amount > 0 && from != to)?;
            Some(vec![
                debit(key(token, *verse, from), *amount)?,
                credit(key(token, *verse, to), *amount)?,
            ])
        }
        _ => unreachable!("not a balance operation"),
    }
}

fn sorted(mut v: Vec<(BalanceKey, u64)>) -> Vec<(BalanceKey, u64)> {
    v.sort();
    v
}

type Totals = BTreeMap<VerseId, u128>;

fn totals(l: &Ledger) -> Vec<Totals> {
    TOKENS
        .iter()
        .map(|t| l.outcome_totals(&Token::new(t).unwrap()))
        .collect()
}

fn outcome_set(l: &Ledger, v: VerseId) -> BTreeSet<VerseId> {
    l.tree().outcome_verses(v).unwrap().into_iter().collect()
}

/// Checks how the outcome totals of one token moved across `op`.
fn check_totals(after: &Ledger, op: &Op, effect: &Effect, token: &str, b: &Totals, a: &Totals) {
    let token = Token::new(token).unwrap();
    let unchanged = |k: &VerseId| b.get(k) == a.get(k);
    match (op, effect) {
        (Op::Transfer { .. } | Op::PushDown { .. } | Op::PullUp { .. }, _) => {
            assert_eq!(a, b, "{op:?}")
        }
        (
            Op::Deposit {
                token: t,
                verse,
                amount,
                ..
            }
            | Op::Withdraw {
                token: t,
                verse,
                amount,
                ..
            },
            _,
        ) => {
            assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
            for (leaf, after_total) in a {
                let under = after.tree().root_of(*leaf).unwrap() == *verse;
                let want = if !under || *t != token {
                    b[leaf]
                } else if matches!(op, Op::Deposit { .. }) {
                    b[leaf] + u128::from(*amount)
                } else {
                    b[leaf] - u128::from(*amount)
                };
                assert_eq!(*after_total, want, "{op:?} at leaf {leaf}");
            }
        }
        (Op::CreateRoot { .. }, Effect::RootCreated { verse }) => {
            let mut want = b.clone();
            want.insert(*verse, 0);
            assert_eq!(a, &want);
        }
        (Op::Partition { .. }, Effect::Partitioned { children, .. }) => {
            let removed: Vec<&VerseId> = b.keys().filter(|k| !a.contains_key(k)).collect();
            let added: Vec<&VerseId> = a.keys().filter(|k| !b.contains_key(k)).collect();
            assert!(!removed.is_empty(), "a partition refines at least one leaf");
            assert_eq!(added, children.iter().collect::<Vec<_>>());
            let total = b[removed[0]];
            for r in &removed {
                assert_eq!(b[*r], total, "refined leaves share one outcome");
            }
            for k in added {
                assert_eq!(a[k], total, "child {k} must inherit the refined total");
                let contains = outcome_set(after, *k);
                assert!(removed.iter().all(|r| contains.contains(r)));
            }
            assert!(b.keys().filter(|k| a.contains_key(k)).all(unchanged));
        }
        (Op::Resolve { .. }, Effect::Resolved { evaporated, .. }) => {
            for k in b.keys().filter(|k| !a.contains_key(k)) {
                assert!(
                    evaporated.contains(k),
                    "leaf {k} vanished without evaporating"
                );
            }
            assert!(b.keys().filter(|k| a.contains_key(k)).all(unchanged));
            for k in a.keys().filter(|k| !b.contains_key(k)) {
                // A leaf that appears joins the winner's outcome: some
                // surviving leaf has the same outcome and total.
                let set = outcome_set(after, *k);
                let twin = a
                    .keys()
                    .filter(|j| b.contains_key(j))
                    .find(|j| outcome_set(after, **j) == set);
                let twin = twin.unwrap_or_else(|| panic!("new leaf {k} has no twin"));
                assert_eq!(a[k], a[twin]);
            }
        }
        other => panic!("unexpected effect {other:?}"),
    }
}

fn run(choices: &[common::Choice]) -> (usize, usize, usize) {
    let mut l = Ledger::new();
    // The model's view of every non-zero balance.
    let mut shadow: HashMap<BalanceKey, u64> = HashMap::new();
    let (mut ok, mut failed, mut resolved) = (0, 0, 0);
    for (i, &c) in choices.iter().enumerate() {
        let op = make_op(&l, c);
        let expected = (!op.changes_tree()).then(|| model(&l, &op));
        // Keep a copy whenever the operation may fail (or changes the tree),
        // to check that a failure changes nothing at all.
        let before = match &expected {
            Some(Some(_)) => None,
            _ => Some(l.clone()),
        };
        let totals_before = totals(&l);
        let cells_before = l.cell_count();
        let result = l.apply(&op);
        match &result {
            Err(e) => {
                failed += 1;
                let before =
                    before.unwrap_or_else(|| panic!("model accepts {op:?}, ledger said: {e}"));
                assert_eq!(l, before, "failed {op:?} ({e}) changed the ledger");
                assert!(!e.to_string().is_empty());
            }
            Ok(applied) => {
                ok += 1;
                if let Some(expected) = expected {
                    let want = expected.unwrap_or_else(|| panic!("model rejects {op:?}"));
                    assert_eq!(sorted(applied.balance_writes.clone()), sorted(want.clone()));
                    for (k, v) in want {
                        assert_eq!(l.balance_of(&k), v);
                        if v == 0 {
                            shadow.remove(&k);
                        } else {
                            shadow.insert(k, v);
                        }
                    }
                } else {
                    assert!(applied.balance_writes.is_empty());
                    assert_eq!(l.cell_count(), cells_before);
                }
                assert_eq!(l.cell_count(), shadow.len(), "after {op:?}");
                if let Effect::Resolved {
                    evaporated,
                    evaporated_value,
                } = &applied.effect
                {
                    resolved += 1;
                    let before = before.as_ref().expect("tree operations keep a copy");
                    for t in TOKENS {
                        let t = Token::new(t).unwrap();
                        let want: u128 =
                            evaporated.iter().map(|v| before.verse_total(&t, *v)).sum();
                        assert_eq!(evaporated_value.get(&t).copied().unwrap_or(0), want);
                    }
                }
                let totals_after = totals(&l);
                for (i, t) in TOKENS.iter().enumerate() {
                    check_totals(
                        &l,
                        &op,
                        &applied.effect,
                        t,
                        &totals_before[i],
                        &totals_after[i],
                    );
                }
            }
        }
        // No balance changed behind the model's back.
        if i % 64 == 63 || i + 1 == choices.len() {
            assert_eq!(l.cell_count(), shadow.len());
            for (k, v) in l.cells() {
                assert_eq!(shadow.get(k), Some(&v), "cell {k}");
            }
        }
    }
    (ok, failed, resolved)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, max_shrink_iters: 32, ..ProptestConfig::default() })]

    #[test]
    fn ten_thousand_ops_conserve(choices in prop::collection::vec(choice(), 10_000..10_400)) {
        let (ok, failed, resolved) = run(&choices);
        // The generator must exercise both paths and the resolutions.
        // About half the operations succeed; 4,990 of 10,000 was seen
        // (regression seed kept), so the floor leaves a wide margin.
        prop_assert!(ok > 3_000, "only {ok} operations succeeded");
        prop_assert!(failed > 500, "only {failed} operations failed");
        prop_assert!(resolved > 5, "only {resolved} resolutions");
    }
}

proptest! {
    #[test]
    fn short_sequences_conserve(choices in prop::collection::vec(choice(), 1..200)) {
        run(&choices);
    }
}
