//! The crate-wide error: one variant per module error, messages passed
//! through unchanged so a caller can print the whole chain.

use thiserror::Error;

use crate::{IdError, LedgerError, OracleError, ProbError, TritError, VerseError, WevError};

/// Any error of this crate.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Error {
    /// A malformed identifier or name.
    #[error(transparent)]
    Id(#[from] IdError),
    /// A malformed trit.
    #[error(transparent)]
    Trit(#[from] TritError),
    /// A malformed probability.
    #[error(transparent)]
    Prob(#[from] ProbError),
    /// An invalid change to, or query of, the verse tree.
    #[error(transparent)]
    Verse(#[from] VerseError),
    /// A rejected ledger operation.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// An oracle that could not choose.
    #[error(transparent)]
    Oracle(#[from] OracleError),
    /// Invalid game values for WEV.
    #[error(transparent)]
    Wev(#[from] WevError),
}
