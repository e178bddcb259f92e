//! Unit tests of the parallel executor.

use super::*;
use crate::ids::{Owner, PartitionId, Token, VerseId};
use crate::workload::{mixed_batch, setup_ledger, transfer_batch};

fn tr(verse: u64, from: &str, to: &str, amount: u64) -> Op {
    Op::Transfer {
        token: Token::new("usd").unwrap(),
        verse: VerseId(verse),
        from: Owner::new(from).unwrap(),
        to: Owner::new(to).unwrap(),
        amount,
    }
}

fn check(ledger: &Ledger, ops: &[Op], threads: usize) -> ExecStats {
    let mut serial = ledger.clone();
    let want = execute_serial(&mut serial, ops);
    let mut par = ledger.clone();
    let (got, stats) = execute_parallel(&mut par, ops, threads);
    assert_eq!(got, want);
    assert_eq!(par, serial);
    assert_eq!(stats.ops, ops.len());
    stats
}

#[test]
fn chain_of_dependent_transfers() {
    let l = setup_ledger(4, 2, 10);
    // o0 -> o1 -> o2 -> o3, each needing the previous credit.
    let ops = vec![
        tr(2, "o0", "o1", 10),
        tr(2, "o1", "o2", 20),
        tr(2, "o2", "o3", 30),
        tr(2, "o3", "o0", 40),
    ];
    for threads in 1..=4 {
        let stats = check(&l, &ops, threads);
        assert_eq!(stats.reexecuted, 3);
    }
}

#[test]
fn failure_that_later_succeeds() {
    let l = setup_ledger(3, 2, 10);
    // Speculatively o1 cannot pay 15; after o0 pays it 10 it can.
    let ops = vec![
        tr(2, "o0", "o1", 10),
        tr(2, "o1", "new", 15),
        tr(2, "new", "o2", 15),
    ];
    check(&l, &ops, 2);
}

#[test]
fn tree_ops_force_reexecution() {
    let l = setup_ledger(3, 2, 10);
    let ops = vec![
        tr(2, "o0", "o1", 1),
        Op::Resolve {
            partition: PartitionId(1),
            winner: VerseId(3),
            oracle_source: "t".into(),
        },
        tr(2, "o1", "o2", 1),
        tr(3, "o1", "o2", 1),
        Op::CreateRoot {
            name: "b".into(),
            seed: 1,
        },
        Op::Deposit {
            token: Token::new("usd").unwrap(),
            verse: VerseId(4),
            owner: Owner::new("z").unwrap(),
            amount: 3,
        },
    ];
    let stats = check(&l, &ops, 2);
    assert_eq!(stats.reexecuted, 5);
}

#[test]
fn empty_and_oversubscribed() {
    let l = setup_ledger(3, 2, 10);
    let (r, s) = execute_parallel(&mut l.clone(), &[], 4);
    assert!(r.is_empty());
    assert_eq!(
        s,
        ExecStats {
            ops: 0,
            reexecuted: 0
        }
    );
    check(&l, &[tr(1, "o0", "o1", 1)], 8);
    check(&l, &[tr(1, "o0", "o1", 1)], 0);
}

#[test]
fn generated_batches_match_serial() {
    let l = setup_ledger(300, 3, 50);
    for (rate, seed) in [(0.0, 1), (0.1, 2), (0.5, 3)] {
        let ops = transfer_batch(&l, 400, rate, seed);
        let stats = check(&l, &ops, 2);
        assert_eq!(stats.reexecuted, (rate * 400.0).round() as usize);
        let ops = mixed_batch(&l, 400, rate, seed);
        check(&l, &ops, 3);
    }
}
