//! The multiverse ledger: balances `bal[token][verse][owner]` over a
//! [`VerseTree`], and the operations that move them ([`Op`]).
//!
//! [`Ledger::apply`] is atomic: it checks the whole operation first (see
//! `logic`), then writes. A failing operation changes nothing. Balances are
//! unsigned and every addition and subtraction is checked.
//!
//! Conservation: for every token and every outcome leaf, the sum of the
//! balances of the live verses containing that leaf
//! ([`Ledger::outcome_totals`]) is changed only by deposits and
//! withdrawals. A partition splits a leaf into children with the same total,
//! and a resolution removes the losing leaves.

mod error;
pub(crate) mod logic;
pub(crate) mod store;
mod types;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use error::LedgerError;
pub use types::{Applied, BalanceKey, Effect, Op};

use crate::ids::{Owner, Token, VerseId};
use crate::verse::VerseTree;
use logic::{StateMut, StateView};
use store::Store;

/// The verse tree plus every balance.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "LedgerParts", try_from = "LedgerParts")]
pub struct Ledger {
    tree: VerseTree,
    store: Store,
}

/// The stored form of a ledger; also its serde form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LedgerParts {
    /// The verse tree.
    pub tree: VerseTree,
    /// Every non-zero balance, sorted by key.
    pub balances: Vec<(BalanceKey, u64)>,
}

impl schemars::JsonSchema for Ledger {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Ledger".into()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        LedgerParts::json_schema(g)
    }
}

impl From<Ledger> for LedgerParts {
    fn from(l: Ledger) -> LedgerParts {
        LedgerParts {
            balances: l.store.sorted(),
            tree: l.tree,
        }
    }
}

impl TryFrom<LedgerParts> for Ledger {
    type Error = LedgerError;
    fn try_from(p: LedgerParts) -> Result<Ledger, LedgerError> {
        Ledger::from_parts(p.tree, p.balances)
    }
}

impl StateMut for Ledger {
    fn tree_mut(&mut self) -> &mut VerseTree {
        &mut self.tree
    }

    #[inline]
    fn write(&mut self, key: &BalanceKey, value: u64) {
        self.store.set(key, value);
    }
}

impl StateView for Ledger {
    #[inline]
    fn tree(&self) -> &VerseTree {
        &self.tree
    }

    #[inline]
    fn read(&mut self, key: &BalanceKey) -> u64 {
        self.store.get(key)
    }

    fn evaporated_value(&mut self, verses: &[VerseId]) -> BTreeMap<Token, u128> {
        evaporated_value(self.store.iter(), verses)
    }
}

/// Per token, the sum of the balances among `cells` held in `verses`
/// (sorted).
pub(crate) fn evaporated_value<'a>(
    cells: impl Iterator<Item = (&'a BalanceKey, u64)>,
    verses: &[VerseId],
) -> BTreeMap<Token, u128> {
    let mut out = BTreeMap::new();
    if verses.is_empty() {
        return out;
    }
    for (key, value) in cells {
        if verses.binary_search(&key.verse).is_ok() {
            *out.entry(key.token.clone()).or_insert(0u128) += u128::from(value);
        }
    }
    out
}

impl Ledger {
    /// An empty ledger: no verse, no balance.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Rebuilds a ledger from a tree and its balances (as loaded from a
    /// store). Every balance must name a verse of the tree (evaporated
    /// verses keep their balances) and appear once; zero balances are
    /// dropped.
    pub fn from_parts(
        tree: VerseTree,
        balances: Vec<(BalanceKey, u64)>,
    ) -> Result<Ledger, LedgerError> {
        let mut store = Store::default();
        for (key, value) in balances {
            if tree.verse(key.verse).is_err() {
                return Err(LedgerError::Corrupt(format!(
                    "balance {key} names unknown verse {}",
                    key.verse
                )));
            }
            if value == 0 {
                continue;
            }
            if store.get(&key) != 0 {
                return Err(LedgerError::Corrupt(format!(
                    "balance {key} is listed twice"
                )));
            }
            store.set(&key, value);
        }
        Ok(Ledger { tree, store })
    }

    /// Applies one operation atomically: on error nothing changed.
    pub fn apply(&mut self, op: &Op) -> Result<Applied, LedgerError> {
        logic::apply(self, op)
    }

    /// The verse tree.
    pub fn tree(&self) -> &VerseTree {
        &self.tree
    }

    /// The balance of `owner` in `token` at `verse` (0 if none; evaporated
    /// verses keep their last balances, unreachable).
    pub fn balance(&self, token: &Token, verse: VerseId, owner: &Owner) -> u64 {
        self.store.get(&BalanceKey {
            token: token.clone(),
            verse,
            owner: owner.clone(),
        })
    }

    /// The balance of one cell.
    pub fn balance_of(&self, key: &BalanceKey) -> u64 {
        self.store.get(key)
    }

    /// Every non-zero balance, sorted by token, verse, owner.
    pub fn balances(&self) -> impl Iterator<Item = (BalanceKey, u64)> {
        self.store.sorted().into_iter()
    }

    /// Every non-zero balance in no particular (but deterministic) order,
    /// without copying: cheaper than [`Ledger::balances`] for scans.
    pub fn cells(&self) -> impl Iterator<Item = (&BalanceKey, u64)> + '_ {
        self.store.iter()
    }

    /// The number of non-zero balance cells.
    pub fn cell_count(&self) -> usize {
        self.store.len()
    }

    /// Every token with a non-zero balance somewhere, sorted.
    pub fn tokens(&self) -> Vec<Token> {
        let mut out: Vec<Token> = self.store.iter().map(|(k, _)| k.token.clone()).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The sum over all owners of `token` held in `verse`.
    pub fn verse_total(&self, token: &Token, verse: VerseId) -> u128 {
        self.store
            .iter()
            .filter(|(k, _)| k.verse == verse && &k.token == token)
            .map(|(_, v)| u128::from(v))
            .sum()
    }

    /// The conserved quantity: for every outcome leaf `w` (see
    /// [`VerseTree::live_leaves`]), the sum over the live verses containing
    /// `w` of all owners' balances of `token`. Leaves without balances map
    /// to 0.
    pub fn outcome_totals(&self, token: &Token) -> BTreeMap<VerseId, u128> {
        let mut per_verse = vec![0u128; self.tree.len()];
        for (key, value) in self.store.iter() {
            if &key.token == token {
                let slot = key
                    .verse
                    .0
                    .checked_sub(1)
                    .and_then(|s| usize::try_from(s).ok());
                if let Some(s) = slot.and_then(|s| per_verse.get_mut(s)) {
                    *s += u128::from(value);
                }
            }
        }
        self.tree.outcome_totals_with(&per_verse)
    }

    /// The tree and the balances, borrowed separately.
    pub(crate) fn parts_mut(&mut self) -> (&mut VerseTree, &mut Store) {
        (&mut self.tree, &mut self.store)
    }
}

#[cfg(test)]
mod tests;
