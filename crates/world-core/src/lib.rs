//! Pure domain logic of WorldRuntime: verses, the multiverse ledger, trits,
//! probabilities, seeds, oracles, WEV and the parallel executor.
//!
//! This crate does no I/O. Everything it knows is in memory, and every
//! operation is deterministic, so that a journal of [`Op`]s replayed on a
//! fresh [`Ledger`] gives the same state bit for bit. The meaning of every
//! operation is pinned in `shared/semantics.md`; the module docs say which
//! part each module owns:
//!
//! | module | owns |
//! | --- | --- |
//! | [`ids`] | verse and partition numbers, token and owner names |
//! | [`trit`] | balanced ternary digits and GF(3) conservation |
//! | [`prob`] | fixed-point probabilities (scale 10^9) |
//! | [`seed`] | SplitMix64 and per-verse seed derivation |
//! | [`verse`] | the tree of verses and partitions, resolution |
//! | [`ledger`] | balances per token, verse and owner; the operations on them |
//! | [`oracle`] | pure rules that pick the winner of a partition |
//! | [`wev`] | price of anarchy and world extractable value, reference games |
//! | [`parallel`] | optimistic parallel execution of a batch of operations |
//! | [`workload`] | deterministic operation generators for tests and benches |
//!
//! # Outcome classes (a choice this crate makes)
//! After partition `p` of verse `V` resolves to child `W`, `V` and `W` denote
//! the same set of possible outcomes. `V` may then be partitioned again. To
//! keep "outcomes" a tree, verses that became equal this way form one
//! *outcome class*, and a class may have at most one open partition at a
//! time: partitioning either `V` or `W` fails while the other has an open
//! partition. The conserved quantity of [`Ledger::outcome_totals`] sums, for
//! each outcome leaf, every live verse whose class lies on the leaf's path.
//! Without re-partitioning after a resolution this is exactly "the sum over
//! the live verses on the leaf's path".
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod hash;
pub mod ids;
pub mod ledger;
pub mod oracle;
pub mod parallel;
pub mod prob;
pub mod seed;
pub mod trit;
pub mod verse;
pub mod wev;
pub mod workload;

pub use error::Error;
pub use ids::{IdError, Owner, PartitionId, Token, VerseId};
pub use ledger::{Applied, BalanceKey, Effect, Ledger, LedgerError, Op};
pub use oracle::OracleError;
pub use parallel::{execute_parallel, execute_serial, ExecStats};
pub use prob::{Prob, ProbError, PROB_SCALE};
pub use seed::{child_seed, splitmix64_mix, splitmix64_output, SplitMix64};
pub use trit::{conserves, gf3_residue, gf3_sum, Trit, TritError};
pub use verse::{
    ChildSpec, Partition, PartitionStatus, Verse, VerseError, VerseStatus, VerseTree,
};
pub use wev::games;
pub use wev::{wev, GameSense, WevError, WevReport};
