//! The rules of every operation, written once against a small state
//! interface ([`StateView`]) so that the same code runs on the real ledger
//! and on the parallel executor's recording view of a snapshot.
//!
//! [`plan`] only reads: it checks the operation and computes every balance
//! cell it would write, with the new value. Committing a plan is then plain
//! writing, which makes every operation atomic. Balance operations read
//! every cell they might write *before* looking at any value, so the cells
//! an operation touches depend only on the operation and the tree, never on
//! balances: the parallel executor relies on this.

use std::collections::BTreeMap;

use super::{Applied, BalanceKey, Effect, LedgerError, Op};
use crate::ids::{Owner, Token, VerseId};
use crate::verse::VerseTree;

/// What the operation rules may look at.
pub(crate) trait StateView {
    /// The verse tree (every operation reads it).
    fn tree(&self) -> &VerseTree;
    /// The balance of one cell.
    fn read(&mut self, key: &BalanceKey) -> u64;
    /// Per token, the sum of all balances in `verses`.
    fn evaporated_value(&mut self, verses: &[VerseId]) -> BTreeMap<Token, u128>;
}

/// What committing an operation may change.
pub(crate) trait StateMut: StateView {
    /// The verse tree, to change.
    fn tree_mut(&mut self) -> &mut VerseTree;
    /// Sets one cell (0 empties it).
    fn write(&mut self, key: &BalanceKey, value: u64);
}

/// Checks and applies `op`: all or nothing.
pub(crate) fn apply<S: StateMut + ?Sized>(s: &mut S, op: &Op) -> Result<Applied, LedgerError> {
    let planned = plan(s, op)?;
    commit(s, op, planned)
}

/// Writes a plan made by [`plan`] for `op` against the current state.
/// Tree changes are checked again before anything is written, so this too
/// is all or nothing.
pub(crate) fn commit<S: StateMut + ?Sized>(
    s: &mut S,
    op: &Op,
    plan: Plan,
) -> Result<Applied, LedgerError> {
    let tree = s.tree_mut();
    let effect = match op {
        Op::CreateRoot { name, seed } => Effect::RootCreated {
            verse: tree.create_root(name, *seed)?,
        },
        Op::Partition {
            parent,
            children,
            allow_nonconserving,
        } => {
            let pid = tree.partition(*parent, children, *allow_nonconserving)?;
            let part = tree.partition_info(pid)?;
            Effect::Partitioned {
                partition: pid,
                children: part.children.clone(),
                gf3_sum: part.gf3_sum,
            }
        }
        Op::Resolve {
            partition, winner, ..
        } => Effect::Resolved {
            evaporated: tree.resolve(*partition, *winner)?,
            evaporated_value: plan.evaporated_value.unwrap_or_default(),
        },
        _ => Effect::Moved,
    };
    for (key, value) in &plan.writes {
        s.write(key, *value);
    }
    Ok(Applied {
        effect,
        balance_writes: plan.writes,
    })
}

/// A checked operation, ready to commit.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Every cell the operation writes, with its new value, in the order
    /// the cells were read.
    pub(crate) writes: Vec<(BalanceKey, u64)>,
    /// For a resolve: the value left in the evaporating verses.
    pub(crate) evaporated_value: Option<BTreeMap<Token, u128>>,
}

impl Plan {
    fn moves(writes: Vec<(BalanceKey, u64)>) -> Plan {
        Plan {
            writes,
            evaporated_value: None,
        }
    }
}

fn positive(amount: u64, op: &'static str) -> Result<(), LedgerError> {
    if amount == 0 {
        Err(LedgerError::ZeroAmount { op })
    } else {
        Ok(())
    }
}

#[inline]
fn cell(token: &Token, verse: VerseId, owner: &Owner) -> (BalanceKey, u64) {
    (
        BalanceKey {
            token: token.clone(),
            verse,
            owner: owner.clone(),
        },
        0,
    )
}

/// Reads every cell, then debits `amount` from the first `debits` cells and
/// credits it to the rest, with checked arithmetic.
fn settle<S: StateView + ?Sized>(
    s: &mut S,
    mut cells: Vec<(BalanceKey, u64)>,
    debits: usize,
    amount: u64,
) -> Result<Plan, LedgerError> {
    for (key, value) in cells.iter_mut() {
        *value = s.read(key);
    }
    for (i, (key, value)) in cells.iter_mut().enumerate() {
        let have = *value;
        *value = if i < debits {
            have.checked_sub(amount)
                .ok_or_else(|| LedgerError::Insufficient {
                    owner: key.owner.clone(),
                    token: key.token.clone(),
                    verse: key.verse,
                    have,
                    need: amount,
                })?
        } else {
            have.checked_add(amount)
                .ok_or_else(|| LedgerError::Overflow {
                    owner: key.owner.clone(),
                    token: key.token.clone(),
                    verse: key.verse,
                    have,
                    add: amount,
                })?
        };
    }
    Ok(Plan::moves(cells))
}

fn live_root(tree: &VerseTree, verse: VerseId) -> Result<(), LedgerError> {
    if tree.live_verse(verse)?.is_root() {
        Ok(())
    } else {
        Err(LedgerError::NotRoot { verse })
    }
}

/// Checks `op` against `s` and computes what committing it writes.
pub(crate) fn plan<S: StateView + ?Sized>(s: &mut S, op: &Op) -> Result<Plan, LedgerError> {
    match op {
        Op::CreateRoot { name, .. } => {
            VerseTree::check_root(name)?;
            Ok(Plan::moves(Vec::new()))
        }
        Op::Partition {
            parent,
            children,
            allow_nonconserving,
        } => {
            s.tree()
                .check_partition(*parent, children, *allow_nonconserving)?;
            Ok(Plan::moves(Vec::new()))
        }
        Op::Resolve {
            partition, winner, ..
        } => {
            let evaporated = s.tree().check_resolve(*partition, *winner)?;
            Ok(Plan {
                writes: Vec::new(),
                evaporated_value: Some(s.evaporated_value(&evaporated)),
            })
        }
        Op::Deposit {
            token,
            verse,
            owner,
            amount,
        } => {
            positive(*amount, "deposit")?;
            live_root(s.tree(), *verse)?;
            settle(s, vec![cell(token, *verse, owner)], 0, *amount)
        }
        Op::Withdraw {
            token,
            verse,
            owner,
            amount,
        } => {
            positive(*amount, "withdraw")?;
            live_root(s.tree(), *verse)?;
            settle(s, vec![cell(token, *verse, owner)], 1, *amount)
        }
        Op::PushDown {
            token,
            owner,
            parent,
            amount,
        } => {
            positive(*amount, "push_down")?;
            let tree = s.tree();
            tree.live_verse(*parent)?;
            let pid = tree
                .open_partition_of(*parent)
                .ok_or(LedgerError::NoOpenPartition { verse: *parent })?;
            let children = &tree.partition_info(pid)?.children;
            let mut cells = Vec::with_capacity(children.len() + 1);
            cells.push(cell(token, *parent, owner));
            cells.extend(children.iter().map(|&c| cell(token, c, owner)));
            settle(s, cells, 1, *amount)
        }
        Op::PullUp {
            token,
            owner,
            partition,
            amount,
        } => {
            positive(*amount, "pull_up")?;
            let tree = s.tree();
            let part = tree.partition_info(*partition)?;
            tree.live_verse(part.parent)?;
            let mut cells = Vec::with_capacity(part.children.len() + 1);
            match part.winner() {
                None => cells.extend(part.children.iter().map(|&c| cell(token, c, owner))),
                Some(w) => cells.push(cell(token, w, owner)),
            }
            let debits = cells.len();
            cells.push(cell(token, part.parent, owner));
            settle(s, cells, debits, *amount)
        }
        Op::Transfer {
            token,
            verse,
            from,
            to,
            amount,
        } => {
            positive(*amount, "transfer")?;
            if from == to {
                return Err(LedgerError::SelfTransfer(from.clone()));
            }
            s.tree().live_verse(*verse)?;
            let cells = vec![cell(token, *verse, from), cell(token, *verse, to)];
            settle(s, cells, 1, *amount)
        }
    }
}
