//! Command-line grammar (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// WorldRuntime: branching worlds and the verse ledger.
#[derive(Debug, Parser)]
#[command(name = "world", version, about, propagate_version = true)]
pub struct Cli {
    /// Database file (default: /var/lib/world-runtime/world.duckdb as root,
    /// else $XDG_DATA_HOME/world-runtime/world.duckdb).
    #[arg(long, global = true, env = "WORLD_DB")]
    pub db: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The verse ledger: create, partition, push-down, pull-up, resolve, balances.
    #[command(subcommand)]
    Verse(VerseCmd),
    /// List entities (world_runtime_entities).
    Entities(ListArgs),
    /// List branching events (world_branches).
    Branches(ListArgs),
    /// List verse resolutions (verse_resolutions).
    Resolutions(ListArgs),
    /// Timing summary per operation: count, p50, p90, max.
    Metrics,
    /// Where the database is, its schema version, and queries to inspect it.
    Db,
    /// Benchmarks (print a table; never part of the tests).
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Run the demo scenario end to end.
    Demo(DemoArgs),
}

/// Listing options.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this entity type (entities only): sandbox, verse, snapshot.
    #[arg(long = "type")]
    pub entity_type: Option<String>,
    /// At most this many rows, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// Verse ledger commands.
#[derive(Debug, Subcommand)]
pub enum VerseCmd {
    /// Create a root verse (a whole outcome space).
    Create {
        /// Its name.
        name: String,
        /// Seed from which every descendant's seed is derived.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Partition a live verse into children (default: nash/optimal/chaos).
    Partition {
        /// The verse to partition (e.g. v1).
        parent: String,
        /// A child as NAME:PROB:TRIT, e.g. nash:0.45:-1 (repeat; default the seed's triple).
        #[arg(long = "child", value_name = "NAME:PROB:TRIT")]
        children: Vec<String>,
        /// Accept children whose trits do not sum to 0 mod 3.
        #[arg(long)]
        allow_nonconserving: bool,
    },
    /// Deposit into a root verse.
    Deposit(MoveArgs),
    /// Withdraw from a root verse.
    Withdraw(MoveArgs),
    /// Move an owner's balance from a verse into every child of its open partition.
    PushDown(MoveArgs),
    /// Move balance from the children of a partition back to its parent.
    PullUp {
        /// The partition (e.g. p1).
        partition: String,
        /// Amount.
        amount: u64,
        /// Token.
        #[arg(long)]
        token: String,
        /// Owner.
        #[arg(long)]
        owner: String,
    },
    /// Transfer between owners inside one verse.
    Transfer {
        /// The verse.
        verse: String,
        /// Amount.
        amount: u64,
        /// Token.
        #[arg(long)]
        token: String,
        /// Sender.
        #[arg(long)]
        from: String,
        /// Receiver.
        #[arg(long)]
        to: String,
    },
    /// Resolve a partition with an oracle; losing verses evaporate.
    Resolve(ResolveArgs),
    /// Balances, optionally of one verse or token.
    Balances {
        /// Only this verse.
        #[arg(long)]
        verse: Option<String>,
        /// Only this token.
        #[arg(long)]
        token: Option<String>,
    },
    /// The verse tree.
    List,
    /// The last journal rows.
    Journal {
        /// How many rows.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Check that the journal replays to the stored state and value is conserved.
    Check,
}

/// Amount, token, owner, and the verse they apply to.
#[derive(Debug, Args)]
pub struct MoveArgs {
    /// The verse.
    pub verse: String,
    /// Amount (a positive integer).
    pub amount: u64,
    /// Token.
    #[arg(long)]
    pub token: String,
    /// Owner.
    #[arg(long)]
    pub owner: String,
}

/// Oracle kinds available without worlds.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OracleKind {
    /// `--winner` names the surviving verse.
    Explicit,
    /// Highest `--score` wins (`--lowest` for lowest).
    Score,
    /// Draw weighted by conditional probability, from `--seed`.
    Weighted,
}

/// Game sense for PoA.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Sense {
    /// Lower is better (latency, cost).
    Cost,
    /// Higher is better (payoff, welfare).
    Welfare,
}

/// `world verse resolve`.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The partition (e.g. p1).
    pub partition: String,
    /// Which oracle decides.
    #[arg(long, value_enum, default_value_t = OracleKind::Explicit)]
    pub oracle: OracleKind,
    /// The winner (explicit oracle).
    #[arg(long)]
    pub winner: Option<String>,
    /// A verse's score as VERSE=VALUE (score oracle; repeat).
    #[arg(long = "score", value_name = "VERSE=VALUE")]
    pub scores: Vec<String>,
    /// Lowest score wins instead of highest.
    #[arg(long)]
    pub lowest: bool,
    /// Seed of the weighted draw.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Cost (or welfare) of the worst Nash equilibrium, to record PoA and WEV.
    #[arg(long, requires = "optimum")]
    pub nash: Option<f64>,
    /// Cost (or welfare) of the optimum.
    #[arg(long, requires = "nash")]
    pub optimum: Option<f64>,
    /// Whether the game values are costs or welfare.
    #[arg(long, value_enum, default_value_t = Sense::Cost)]
    pub sense: Sense,
}

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Ledger throughput: in-memory, parallel executor, persisted batches.
    Ledger {
        /// Operations per measured run.
        #[arg(long, default_value_t = 200_000)]
        ops: usize,
        /// Measured runs per row (p50/p90 are over these).
        #[arg(long, default_value_t = 9)]
        runs: usize,
    },
}

/// `world demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed of the run.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}
