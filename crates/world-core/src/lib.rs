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
//!
//! # Example: the seed's three verses
//! ```
//! use world_core::{ChildSpec, Effect, Ledger, Op, Owner, PartitionId, Prob, Token, Trit, VerseId};
//!
//! let usd = Token::new("usd")?;
//! let alice = Owner::new("alice")?;
//! let mut ledger = Ledger::new();
//! ledger.apply(&Op::CreateRoot { name: "world".into(), seed: 42 })?; // v1
//! let children = vec![
//!     ChildSpec::new("nash", Prob::parse("0.45")?, Trit::Minus), // v2
//!     ChildSpec::new("optimal", Prob::parse("0.35")?, Trit::Zero), // v3
//!     ChildSpec::new("chaos", Prob::parse("0.20")?, Trit::Plus), // v4
//! ];
//! ledger.apply(&Op::Partition { parent: VerseId(1), children, allow_nonconserving: false })?;
//! ledger.apply(&Op::Deposit { token: usd.clone(), verse: VerseId(1), owner: alice.clone(), amount: 100 })?;
//! ledger.apply(&Op::PushDown { token: usd.clone(), owner: alice.clone(), parent: VerseId(1), amount: 40 })?;
//! assert_eq!(ledger.balance(&usd, VerseId(3), &alice), 40);
//! // Every outcome is still worth 100 to alice.
//! assert!(ledger.outcome_totals(&usd).values().all(|&v| v == 100));
//!
//! let resolved = ledger.apply(&Op::Resolve {
//!     partition: PartitionId(1),
//!     winner: VerseId(3),
//!     oracle_source: "explicit".into(),
//! })?;
//! let Effect::Resolved { evaporated, evaporated_value } = resolved.effect else { unreachable!() };
//! assert_eq!(evaporated, [VerseId(2), VerseId(4)]);
//! assert_eq!(evaporated_value[&usd], 80);
//! // Only the winner is needed to pull up now.
//! ledger.apply(&Op::PullUp { token: usd.clone(), owner: alice.clone(), partition: PartitionId(1), amount: 40 })?;
//! assert_eq!(ledger.balance(&usd, VerseId(1), &alice), 100);
//! # Ok::<(), world_core::Error>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod hash;
pub mod ids;
pub mod ledger;
pub mod lifecycle;
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
pub use verse::{ChildSpec, Partition, PartitionStatus, Verse, VerseError, VerseStatus, VerseTree};
pub use wev::games;
pub use wev::{wev, GameSense, WevError, WevReport};
