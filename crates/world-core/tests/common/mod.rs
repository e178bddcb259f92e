//! Random operation generation shared by the property tests: each
//! operation is derived from a few random numbers and the current ledger,
//! so that most operations are valid and many are not (unknown or
//! evaporated verses, zero and huge amounts, bad partitions...).

#![allow(dead_code)]

use proptest::prelude::*;
use world_core::{
    BalanceKey, ChildSpec, Ledger, Op, Owner, PartitionId, Prob, Token, Trit, VerseId, PROB_SCALE,
};

pub const TOKENS: [&str; 2] = ["usd", "eur"];
pub const OWNERS: [&str; 4] = ["a", "b", "c", "d"];

/// The random numbers one operation is made from.
#[derive(Debug, Clone, Copy)]
pub struct Choice {
    pub kind: u8,
    pub x: u32,
    pub y: u32,
    pub z: u32,
    pub amt: u64,
}

pub fn choice() -> impl Strategy<Value = Choice> {
    any::<(u8, u32, u32, u32, u64)>().prop_map(|(kind, x, y, z, amt)| Choice { kind, x, y, z, amt })
}

pub fn token(i: u32) -> Token {
    Token::new(TOKENS[i as usize % TOKENS.len()]).unwrap()
}

pub fn owner(i: u32) -> Owner {
    Owner::new(OWNERS[i as usize % OWNERS.len()]).unwrap()
}

pub fn key(token: &Token, verse: VerseId, owner: &Owner) -> BalanceKey {
    BalanceKey::new(token.clone(), verse, owner.clone())
}

fn mix(a: u32, b: u32) -> u64 {
    world_core::splitmix64_output(u64::from(a), u64::from(b))
}

/// Any verse id: usually an existing one, sometimes unknown (0 or past
/// the end).
fn any_verse(l: &Ledger, x: u32) -> VerseId {
    let n = l.tree().len() as u64;
    if n == 0 || x % 61 == 0 {
        VerseId((n + 1 + u64::from(x % 3)) * u64::from(x % 2))
    } else {
        VerseId(1 + u64::from(x) % n)
    }
}

fn pick<T: Copy>(items: &[T], x: u32) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        Some(items[x as usize % items.len()])
    }
}

fn live_verses(l: &Ledger) -> Vec<VerseId> {
    l.tree()
        .verses()
        .filter(|v| v.is_live())
        .map(|v| v.id)
        .collect()
}

fn open_parents(l: &Ledger) -> Vec<VerseId> {
    l.tree()
        .verses()
        .filter(|v| v.is_live() && l.tree().open_partition_of(v.id).is_some())
        .map(|v| v.id)
        .collect()
}

fn any_partition(l: &Ledger, x: u32) -> PartitionId {
    let n = l.tree().partitions().count() as u64;
    if n == 0 || x % 53 == 0 {
        PartitionId(n + 1)
    } else {
        PartitionId(1 + u64::from(x) % n)
    }
}

/// The live verses where `owner` holds some `token`, with the balances.
fn holdings(l: &Ledger, token: &Token, owner: &Owner) -> Vec<(VerseId, u64)> {
    let mut out: Vec<(VerseId, u64)> = l
        .cells()
        .filter(|(k, _)| &k.token == token && &k.owner == owner)
        .filter(|(k, _)| l.tree().live_verse(k.verse).is_ok())
        .map(|(k, v)| (k.verse, v))
        .collect();
    out.sort_unstable();
    out
}

/// An amount for a debit from `have`: usually affordable, sometimes 0,
/// one too many, or huge.
fn part_of(amt: u64, have: u64) -> u64 {
    match amt % 16 {
        0 => 0,
        1 => u64::MAX - (amt >> 32) % 3,
        2 => have.saturating_add(1),
        _ => 1 + (amt >> 8) % have.max(1),
    }
}

fn amount(amt: u64, deposit: bool) -> u64 {
    match amt % 16 {
        0 => 0,
        1 => u64::MAX - (amt >> 32) % 3,
        2 => (amt >> 8) % 100_000,
        _ if deposit => 1 + (amt >> 8) % 1_000,
        _ => 1 + (amt >> 8) % 64,
    }
}

/// Children for a random partition: usually valid, sometimes with a bad
/// count, a duplicate name, a probability sum off by one, or trits that
/// do not conserve.
pub fn children(y: u32, z: u32) -> Vec<ChildSpec> {
    let n = if y % 23 == 0 { 1 } else { 2 + (y % 3) as usize };
    let mut left = PROB_SCALE;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let raw = if i + 1 == n {
            left
        } else {
            let room = left - (n - i - 1) as u64;
            1 + mix(z, i as u32) % room
        };
        left -= raw;
        let trit = Trit::ALL[((z >> (2 * i)) % 3) as usize];
        out.push(ChildSpec::new(
            format!("k{i}"),
            Prob::new(raw).unwrap(),
            trit,
        ));
    }
    if z % 13 == 0 && n > 1 {
        let raw = out[0].prob.raw();
        out[0].prob = Prob::new(raw - 1).unwrap_or(Prob::ZERO);
    }
    if z % 19 == 0 && n > 1 {
        out[1].name = out[0].name.clone();
    }
    out
}

/// An operation made from `c` against the current ledger.
pub fn make_op(l: &Ledger, c: Choice) -> Op {
    let Choice { kind, x, y, z, amt } = c;
    let tok = token(y);
    let who = owner(z >> 3);
    let k = kind % 100;
    let roots = l.tree().roots().count();
    if k < 2 || roots == 0 {
        if roots >= 4 {
            return make_op(l, Choice { kind: 50, ..c });
        }
        return Op::CreateRoot {
            name: if x % 41 == 0 {
                String::new()
            } else {
                format!("r{x}")
            },
            seed: amt,
        };
    }
    match k {
        2..=5 => {
            let kids = children(y, z);
            let t = l.tree();
            // Verses that were partitioned and resolved before, and may be
            // partitioned again: they exercise outcome classes.
            let again: Vec<VerseId> = t
                .verses()
                .filter(|v| {
                    !v.partitions.is_empty()
                        && t.check_partition(v.id, &children(1, 1), true).is_ok()
                })
                .map(|v| v.id)
                .collect();
            let parent = match x % 6 {
                0 => any_verse(l, x),
                1 | 2 if !again.is_empty() => pick(&again, x >> 3).unwrap_or(VerseId(1)),
                _ => pick(&t.live_leaves(), x >> 3).unwrap_or(VerseId(1)),
            };
            Op::Partition {
                parent,
                children: kids,
                allow_nonconserving: z % 5 == 0,
            }
        }
        6..=8 => {
            let open: Vec<PartitionId> = l
                .tree()
                .partitions()
                .filter(|p| p.is_open())
                .map(|p| p.id)
                .collect();
            let partition = if x % 6 == 0 {
                any_partition(l, x)
            } else {
                pick(&open, x).unwrap_or(PartitionId(1))
            };
            let winner = match l.tree().partition_info(partition) {
                Ok(p) if z % 7 != 0 => p.children[z as usize % p.children.len()],
                _ => any_verse(l, z),
            };
            Op::Resolve {
                partition,
                winner,
                oracle_source: "test".into(),
            }
        }
        9..=24 => {
            let roots: Vec<VerseId> = l.tree().roots().map(|v| v.id).collect();
            let verse = if x % 9 == 0 {
                any_verse(l, x)
            } else {
                pick(&roots, x).unwrap_or(VerseId(1))
            };
            Op::Deposit {
                token: tok,
                verse,
                owner: who,
                amount: amount(amt, true),
            }
        }
        25..=31 => {
            let held: Vec<(VerseId, u64)> = holdings(l, &tok, &who)
                .into_iter()
                .filter(|(v, _)| l.tree().verse(*v).unwrap().is_root())
                .collect();
            let (verse, amount) = match pick(&held, x) {
                Some((v, have)) if x % 9 != 0 => (v, part_of(amt, have)),
                _ => (any_verse(l, x), amount(amt, false)),
            };
            Op::Withdraw {
                token: tok,
                verse,
                owner: who,
                amount,
            }
        }
        32..=54 => {
            let open = open_parents(l);
            let held: Vec<(VerseId, u64)> = holdings(l, &tok, &who)
                .into_iter()
                .filter(|(v, _)| open.contains(v))
                .collect();
            let (parent, amount) = match pick(&held, x) {
                Some((v, have)) if x % 7 != 0 => (v, part_of(amt, have)),
                _ if x % 7 == 0 => (any_verse(l, x), amount(amt, false)),
                _ => (pick(&open, x).unwrap_or(VerseId(1)), amount(amt, false)),
            };
            Op::PushDown {
                token: tok,
                owner: who,
                parent,
                amount,
            }
        }
        55..=71 => {
            // Partitions of live verses where the owner holds something in
            // every child that a pull_up needs.
            let t = l.tree();
            let held = holdings(l, &tok, &who);
            let have = |v: &VerseId| held.iter().find(|(h, _)| h == v).map_or(0, |(_, b)| *b);
            let able: Vec<(PartitionId, u64)> = t
                .partitions()
                .filter(|p| t.live_verse(p.parent).is_ok())
                .map(|p| {
                    let need = match p.winner() {
                        Some(w) => vec![w],
                        None => p.children.clone(),
                    };
                    (p.id, need.iter().map(have).min().unwrap_or(0))
                })
                .filter(|(_, m)| *m > 0)
                .collect();
            let (partition, amount) = match pick(&able, x) {
                Some((p, m)) if x % 6 != 0 => (p, part_of(amt, m)),
                _ => (any_partition(l, x), amount(amt, false)),
            };
            Op::PullUp {
                token: tok,
                owner: who,
                partition,
                amount,
            }
        }
        _ => {
            let held = holdings(l, &tok, &who);
            let (verse, amount) = match pick(&held, x) {
                Some((v, have)) if x % 8 != 0 => (v, part_of(amt, have)),
                _ => (
                    pick(&live_verses(l), x).unwrap_or_else(|| any_verse(l, x)),
                    amount(amt, false),
                ),
            };
            let to = if y % 17 == 0 {
                who.clone()
            } else {
                owner((z >> 3) + 1 + (y >> 4) % 3)
            };
            Op::Transfer {
                token: tok,
                verse,
                from: who,
                to,
                amount,
            }
        }
    }
}

/// Applies `n` random operations (for building a varied starting ledger).
pub fn warm_up(l: &mut Ledger, choices: &[Choice]) {
    for &c in choices {
        let op = make_op(l, c);
        let _ = l.apply(&op);
    }
}
