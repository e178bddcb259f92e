//! Helpers shared by the store's integration tests: names, the seed's
//! three children, and random ledger operations on the setups they use.
#![allow(dead_code)]

use world_core::ids::{Owner, PartitionId, Token, VerseId};
use world_core::ledger::Op;
use world_core::prob::Prob;
use world_core::seed::SplitMix64;
use world_core::trit::Trit;
use world_core::verse::ChildSpec;

pub fn t(s: &str) -> Token {
    Token::new(s).unwrap()
}

pub fn o(s: &str) -> Owner {
    Owner::new(s).unwrap()
}

/// The seed's nash / optimal / chaos children.
pub fn seed_children() -> Vec<ChildSpec> {
    [
        ("nash", 450_000_000, Trit::Minus),
        ("optimal", 350_000_000, Trit::Zero),
        ("chaos", 200_000_000, Trit::Plus),
    ]
    .into_iter()
    .map(|(n, p, tr)| ChildSpec {
        name: n.into(),
        prob: Prob::new(p).unwrap(),
        trit: tr,
    })
    .collect()
}

/// Root v1 (seed 42) with 1000 usd for each of `owners`, partitioned into
/// the seed's three children as p1.
pub fn setup<S: AsRef<str>>(owners: &[S]) -> Vec<Op> {
    let mut ops = vec![Op::CreateRoot {
        name: "root".into(),
        seed: 42,
    }];
    for who in owners {
        ops.push(Op::Deposit {
            token: t("usd"),
            verse: VerseId(1),
            owner: o(who.as_ref()),
            amount: 1000,
        });
    }
    ops.push(Op::Partition {
        parent: VerseId(1),
        children: seed_children(),
        allow_nonconserving: false,
    });
    ops
}

/// A random (possibly refused) operation on root v1 partitioned as p1 into
/// v2..v4: a push-down, a pull-up, a transfer in a child, and with
/// `resolve` also a resolution of p1. `owner` maps a random number to an
/// owner.
pub fn random_op(rng: &mut SplitMix64, owner: &dyn Fn(u64) -> Owner, resolve: bool) -> Op {
    let who = owner(rng.next_u64());
    let amount = 1 + rng.next_u64() % 50;
    let kinds = if resolve { 4 } else { 3 };
    match rng.next_u64() % kinds {
        0 => Op::PushDown {
            token: t("usd"),
            owner: who,
            parent: VerseId(1),
            amount,
        },
        1 => Op::PullUp {
            token: t("usd"),
            owner: who,
            partition: PartitionId(1),
            amount,
        },
        2 if resolve => Op::Resolve {
            partition: PartitionId(1),
            winner: VerseId(2 + rng.next_u64() % 3),
            oracle_source: "explicit".into(),
        },
        _ => Op::Transfer {
            token: t("usd"),
            verse: VerseId(2 + rng.next_u64() % 3),
            from: who,
            to: owner(rng.next_u64()),
            amount,
        },
    }
}
