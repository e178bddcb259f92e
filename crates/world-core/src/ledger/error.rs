//! Why a ledger operation was rejected. Every message names the verse,
//! owner, token and amounts involved.

use thiserror::Error;

use crate::ids::{Owner, Token, VerseId};
use crate::verse::VerseError;

/// A rejected ledger operation. A rejected operation changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LedgerError {
    /// The verse tree refused (unknown or evaporated verse, bad partition...).
    #[error(transparent)]
    Verse(#[from] VerseError),
    /// An amount of 0.
    #[error("{op} amount must be positive")]
    ZeroAmount {
        /// The operation kind.
        op: &'static str,
    },
    /// A deposit or withdrawal not at a root verse.
    #[error("verse {verse} is not a root; deposits and withdrawals use root verses only")]
    NotRoot {
        /// The verse named.
        verse: VerseId,
    },
    /// A push_down from a verse without an open partition.
    #[error("verse {verse} has no open partition to push down into")]
    NoOpenPartition {
        /// The verse named.
        verse: VerseId,
    },
    /// A debit larger than the balance.
    #[error("owner {owner} holds {have} of token {token} in {verse}, needs {need}")]
    Insufficient {
        /// The owner debited.
        owner: Owner,
        /// The asset.
        token: Token,
        /// Where.
        verse: VerseId,
        /// The balance.
        have: u64,
        /// The debit.
        need: u64,
    },
    /// A credit that would exceed `u64::MAX`.
    #[error("owner {owner} holds {have} of token {token} in {verse}; adding {add} would overflow")]
    Overflow {
        /// The owner credited.
        owner: Owner,
        /// The asset.
        token: Token,
        /// Where.
        verse: VerseId,
        /// The balance.
        have: u64,
        /// The credit.
        add: u64,
    },
    /// A transfer whose payer and payee are the same owner.
    #[error("transfer from {0} to itself")]
    SelfTransfer(Owner),
    /// Stored balances that do not fit the tree.
    #[error("inconsistent balances: {0}")]
    Corrupt(String),
}

impl LedgerError {
    /// Whether the operation named a verse or partition that does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, LedgerError::Verse(v) if v.is_not_found())
    }
}
