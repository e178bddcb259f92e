//! The ledger's vocabulary: balance cells ([`BalanceKey`]), operations
//! ([`Op`], journaled as JSON) and what applying one did ([`Applied`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{Owner, PartitionId, Token, VerseId};
use crate::verse::ChildSpec;

/// One balance cell: `bal[token][verse][owner]`. Orders by token, then
/// verse, then owner.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct BalanceKey {
    /// The asset.
    pub token: Token,
    /// The verse the balance pays out in.
    pub verse: VerseId,
    /// Who holds it.
    pub owner: Owner,
}

impl BalanceKey {
    /// A key from its parts.
    pub fn new(token: Token, verse: VerseId, owner: Owner) -> BalanceKey {
        BalanceKey {
            token,
            verse,
            owner,
        }
    }
}

impl fmt::Display for BalanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.token, self.verse, self.owner)
    }
}

/// One ledger operation. Serialized with an `"op"` tag in snake case, e.g.
/// `{"op":"push_down","token":"usd","owner":"alice","parent":1,"amount":5}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Add a root verse (a new, independent outcome space).
    CreateRoot {
        /// Its name.
        name: String,
        /// Its seed.
        seed: u64,
    },
    /// Split a live verse into children.
    Partition {
        /// The verse to split.
        parent: VerseId,
        /// The children.
        children: Vec<ChildSpec>,
        /// Accept trits that do not sum to 0 mod 3.
        #[serde(default)]
        allow_nonconserving: bool,
    },
    /// Credit `amount` to `owner` in a live root verse.
    Deposit {
        /// The asset.
        token: Token,
        /// A live root verse.
        verse: VerseId,
        /// Who is credited.
        owner: Owner,
        /// How much (> 0).
        amount: u64,
    },
    /// Debit `amount` from `owner` in a live root verse.
    Withdraw {
        /// The asset.
        token: Token,
        /// A live root verse.
        verse: VerseId,
        /// Who is debited.
        owner: Owner,
        /// How much (> 0).
        amount: u64,
    },
    /// Move `amount` from `parent` into every child of its open partition.
    PushDown {
        /// The asset.
        token: Token,
        /// Whose balance moves.
        owner: Owner,
        /// A live verse with an open partition.
        parent: VerseId,
        /// How much (> 0).
        amount: u64,
    },
    /// Move `amount` from every child of `partition` (only the winner once
    /// resolved) back into its parent.
    PullUp {
        /// The asset.
        token: Token,
        /// Whose balance moves.
        owner: Owner,
        /// A partition of a live verse.
        partition: PartitionId,
        /// How much (> 0).
        amount: u64,
    },
    /// Move `amount` between two owners inside one live verse.
    Transfer {
        /// The asset.
        token: Token,
        /// A live verse.
        verse: VerseId,
        /// Who pays.
        from: Owner,
        /// Who is paid (another owner).
        to: Owner,
        /// How much (> 0).
        amount: u64,
    },
    /// Resolve an open partition: keep `winner`, evaporate the others.
    Resolve {
        /// An open partition of a live verse.
        partition: PartitionId,
        /// One of its children.
        winner: VerseId,
        /// Who or what decided (recorded, not interpreted).
        oracle_source: String,
    },
}

impl Op {
    /// The operation's tag: `"create_root"`, `"partition"`, `"deposit"`,
    /// `"withdraw"`, `"push_down"`, `"pull_up"`, `"transfer"`, `"resolve"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::CreateRoot { .. } => "create_root",
            Op::Partition { .. } => "partition",
            Op::Deposit { .. } => "deposit",
            Op::Withdraw { .. } => "withdraw",
            Op::PushDown { .. } => "push_down",
            Op::PullUp { .. } => "pull_up",
            Op::Transfer { .. } => "transfer",
            Op::Resolve { .. } => "resolve",
        }
    }

    /// Whether the operation changes the verse tree (create_root,
    /// partition, resolve) rather than balances.
    pub fn changes_tree(&self) -> bool {
        matches!(
            self,
            Op::CreateRoot { .. } | Op::Partition { .. } | Op::Resolve { .. }
        )
    }
}

/// What an operation did, besides balance writes. Serialized externally
/// tagged in snake case (`"moved"`, `{"resolved":{...}}`): internal tagging
/// cannot carry the `u128` totals through serde.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// A root was created.
    RootCreated {
        /// Its id.
        verse: VerseId,
    },
    /// A verse was partitioned.
    Partitioned {
        /// The new partition.
        partition: PartitionId,
        /// Its children in index order.
        children: Vec<VerseId>,
        /// The raw sum of their trits.
        gf3_sum: i64,
    },
    /// Balances moved (deposit, withdraw, push_down, pull_up, transfer).
    Moved,
    /// A partition was resolved.
    Resolved {
        /// Every verse that evaporated: the losing children and their whole
        /// live subtrees, in id order.
        evaporated: Vec<VerseId>,
        /// Per token, the sum over all owners of the balances left in the
        /// evaporated verses (now unreachable).
        evaporated_value: BTreeMap<Token, u128>,
    },
}

/// The result of a successful operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Applied {
    /// What it did.
    pub effect: Effect,
    /// Every balance cell it changed, with the new value (0 means the cell
    /// is now empty), so a store can persist just the delta.
    pub balance_writes: Vec<(BalanceKey, u64)>,
}
