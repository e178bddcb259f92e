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
    /// Run in this process even when a daemon (`world serve`) is running
    /// (or `WORLD_NO_DAEMON=1`).
    #[arg(long, global = true, env = "WORLD_NO_DAEMON", conflicts_with = "daemon",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub no_daemon: bool,
    /// Send the command to the running daemon; fail if none answers (or
    /// `WORLD_DAEMON=1`).
    #[arg(long, global = true, env = "WORLD_DAEMON",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub daemon: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands. Those with a daemon endpoint go through a running
/// daemon (see [`Command::has_endpoint`] and `crate::remote`).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a world; prints its id.
    Create(CreateArgs),
    /// List worlds.
    List,
    /// A world's state, limits and usage.
    Inspect {
        /// World id.
        id: String,
    },
    /// Run a command in a world: `world exec ID -- CMD ARGS`.
    Exec(ExecArgs),
    /// Copy files or directories: `world cp SRC ID:/dir` or `world cp ID:/path DIR`.
    Cp {
        /// Source: a host path, or ID:/path in a world.
        src: String,
        /// Destination directory: ID:/dir in a world, or a host directory.
        dst: String,
    },
    /// Destroy worlds (everything in them is gone).
    Destroy {
        /// World ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Pause worlds: every process frozen, memory kept; exec, code,
    /// snapshot and branch are refused until `world resume`.
    Pause {
        /// World ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Resume paused worlds.
    Resume {
        /// World ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Images worlds start from.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Run code in a persistent Python session of a world (variables persist).
    RunCode(RunCodeArgs),
    /// Snapshot a running world: its files and the memory of its sessions.
    Snapshot {
        /// World id.
        id: String,
        /// A name for the snapshot (unique).
        #[arg(long)]
        name: Option<String>,
    },
    /// List snapshots, or delete one (`world snapshots rm SNAP`).
    Snapshots {
        #[command(subcommand)]
        cmd: Option<SnapshotsCmd>,
    },
    /// Start N worlds from a snapshot, or from a running world (snapshot + branch).
    Branch(BranchArgs),
    /// Declared services: commands started again in every branch of a world.
    #[command(subcommand)]
    Service(ServiceCmd),
    /// Clean up what a crash left (half-made branches, orphaned files, dead worlds).
    Repair,
    /// Show or set a lineage's pool of world shells (inits made ahead of
    /// time, so that a branch does not make them) and, given a snapshot,
    /// its branch roots made ahead. Branches keep the shells as big as the
    /// last branch and the roots as big as the biggest (up to
    /// WORLD_POOL_MAX); set it before a time-critical branch, or to 0 to
    /// free both.
    Pool {
        /// A world or a snapshot (id or name) of the lineage.
        target: String,
        /// Keep this many shells (0 to 1024).
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=1024))]
        size: Option<u32>,
        /// Wait until that many shells (and branch roots) are ready (up to 60 s), with progress.
        #[arg(long, requires = "size")]
        wait: bool,
    },
    /// Show the spare worlds kept ready per image (so that `create` does
    /// not make one), or stop them all with --drop. WORLD_SPARES sets how
    /// many each image used keeps (default 2, 0 = none).
    Spares {
        /// Stop every spare (the next create makes them again).
        #[arg(long)]
        drop: bool,
    },
    /// Split a world into verses, one world each (default nash / optimal / chaos).
    PushDown {
        /// The world.
        world: String,
        /// A child as NAME:PROB:TRIT (repeat; default the seed's triple).
        #[arg(long = "child", value_name = "NAME:PROB:TRIT")]
        children: Vec<String>,
        /// Accept children whose trits do not sum to 0 mod 3.
        #[arg(long)]
        allow_nonconserving: bool,
    },
    /// Run code in verses' worlds in parallel.
    RunVerses(RunVersesArgs),
    /// Resolve a partition over worlds with an oracle, collapse the losers, pull balances up.
    PullUp(PullUpArgs),
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
    /// Run the HTTP API daemon (Morph Cloud compatible subset; see docs/api.md).
    Serve {
        /// TCP address to listen on (loopback by default).
        #[arg(long, default_value = "127.0.0.1:7077")]
        listen: String,
        /// Also serve SSH into worlds on this address (loopback; port 0
        /// picks one): `ssh -p PORT WORLD_ID@127.0.0.1` with the token as
        /// password, or user `WORLD_ID:TOKEN` with any key.
        #[arg(long, value_name = "ADDR")]
        ssh: Option<String>,
        /// Unix socket path (default: <run dir>/api.sock).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Do not listen on a Unix socket.
        #[arg(long)]
        no_socket: bool,
        /// Print one line per request on stderr (method, path, status, time).
        #[arg(long)]
        log_requests: bool,
    },
    /// Print the daemon's bearer token (created on first use, mode 0600).
    Token,
    /// Benchmarks (print a table; never part of the tests).
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Run the demo scenario end to end.
    Demo(DemoArgs),
    /// Check what worlds need on this host (kernel, namespaces, cgroups,
    /// btrfs, loop devices, seccomp, disk, DuckDB, the daemon); exits 0
    /// only when worlds can run.
    Doctor,
}

impl Command {
    /// Whether the command makes worlds, so that a failure of its own (not
    /// a refusal) may come from the host: its error then points at `world
    /// doctor`.
    pub fn makes_worlds(&self) -> bool {
        matches!(
            self,
            Command::Create(_)
                | Command::Branch(_)
                | Command::Snapshot { .. }
                | Command::PushDown { .. }
                | Command::Pool { .. }
                | Command::Bench(_)
                | Command::Demo(_)
        )
    }

    /// Whether the daemon has an endpoint for this command, so that it goes
    /// through a running daemon.
    pub fn has_endpoint(&self) -> bool {
        matches!(
            self,
            Command::Create(_)
                | Command::List
                | Command::Inspect { .. }
                | Command::Exec(_)
                | Command::Destroy { .. }
                | Command::RunCode(_)
                | Command::Snapshot { .. }
                | Command::Snapshots { .. }
                | Command::Branch(_)
                | Command::PushDown { .. }
                | Command::RunVerses(_)
                | Command::PullUp(_)
                | Command::Entities(_)
                | Command::Branches(_)
                | Command::Resolutions(_)
                | Command::Metrics
        )
    }
}

/// `world create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Image to start from.
    #[arg(long, default_value = "host")]
    pub image: String,
    /// CPU quota, in CPUs.
    #[arg(long, default_value_t = 1)]
    pub vcpus: u32,
    /// Memory limit in MiB.
    #[arg(long, default_value_t = 512)]
    pub memory: u64,
    /// Maximum number of processes.
    #[arg(long, default_value_t = 1024)]
    pub pids: u32,
    /// Limit on what the world writes to disk, in MiB (0 = no limit).
    #[arg(long, default_value_t = 4096)]
    pub disk: u64,
    /// Use this id instead of a random one (1-32 of a-z, 0-9, '-').
    #[arg(long)]
    pub id: Option<String>,
}

/// `world exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// World id.
    pub id: String,
    /// Environment variable KEY=VALUE (repeat).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the world.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Kill the command (and everything it started) after this many seconds
    /// [default: WORLD_EXEC_TIMEOUT, else 600; at most a week].
    #[arg(long)]
    pub timeout: Option<f64>,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    pub argv: Vec<String>,
}

/// `world run-code`.
#[derive(Debug, Args)]
pub struct RunCodeArgs {
    /// World id.
    pub id: String,
    /// The code (or use -f FILE).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub code: Option<String>,
    /// Read the code from this file ('-' for stdin).
    #[arg(short = 'f', long)]
    pub file: Option<PathBuf>,
    /// Session name (several sessions per world).
    #[arg(long, default_value = "default")]
    pub session: String,
    /// Interrupt the code (KeyboardInterrupt) after this many seconds; the
    /// session stays. Code that blocks the interrupt for 5 s more has its
    /// session killed [default: WORLD_EXEC_TIMEOUT, else 600].
    #[arg(long)]
    pub timeout: Option<f64>,
}

/// `world run-verses`.
#[derive(Debug, Args)]
pub struct RunVersesArgs {
    /// Run the same --code in every child of this partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// With --partition: the code for every verse.
    #[arg(long, requires = "partition")]
    pub code: Option<String>,
    /// VERSE=CODE: different code per verse (repeat).
    #[arg(long = "verse", value_name = "VERSE=CODE")]
    pub verses: Vec<String>,
    /// Session name.
    #[arg(long, default_value = "default")]
    pub session: String,
    /// Interrupt each run after this many seconds.
    #[arg(long)]
    pub timeout: Option<f64>,
}

/// Oracles over worlds.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum WorldOracleKind {
    /// `--winner` names the surviving verse.
    Explicit,
    /// The best recorded WORLD_SCORE of the verses' runs wins.
    Score,
    /// Draw weighted by conditional probability, from `--seed`.
    Weighted,
    /// A command (after `--`) run in each verse's world prints a number; the best wins.
    Command,
}

/// `world pull-up`.
#[derive(Debug, Args)]
pub struct PullUpArgs {
    /// The partition (e.g. p1).
    pub partition: String,
    /// Which oracle decides.
    #[arg(long, value_enum, default_value_t = WorldOracleKind::Score)]
    pub oracle: WorldOracleKind,
    /// The winner (explicit oracle).
    #[arg(long)]
    pub winner: Option<String>,
    /// Lowest score wins (score and command oracles) instead of highest.
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
    /// The command oracle's command (after `--`).
    #[arg(last = true)]
    pub argv: Vec<String>,
}

/// `world snapshots` subcommands.
#[derive(Debug, Subcommand)]
pub enum SnapshotsCmd {
    /// Delete a snapshot (worlds branched from it keep running).
    Rm {
        /// Snapshot id or name.
        snapshot: String,
    },
}

/// `world branch`.
#[derive(Debug, Args)]
pub struct BranchArgs {
    /// A snapshot (id or name), or a running world.
    pub source: String,
    /// How many children.
    #[arg(long, short = 'n', default_value_t = 1)]
    pub count: usize,
    /// Do not reseed Python's `random` per child (children then differ run to run).
    #[arg(long)]
    pub no_seed: bool,
    /// Do not start the world's declared services in the children.
    #[arg(long)]
    pub no_services: bool,
    /// When branching a running world, keep the snapshot it takes.
    #[arg(long)]
    pub keep_snapshot: bool,
}

/// `world service` subcommands.
#[derive(Debug, Subcommand)]
pub enum ServiceCmd {
    /// Declare a service and start it now: `world service add ID NAME -- CMD ARGS`.
    Add {
        /// World id.
        id: String,
        /// Service name.
        name: String,
        /// The command (after `--`).
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    /// List a world's declared services.
    List {
        /// World id.
        id: String,
    },
}

/// Image commands.
#[derive(Debug, Subcommand)]
pub enum ImageCmd {
    /// Import a root filesystem (a directory or a .tar) as an image.
    Import {
        /// Image name (1-64 of a-z, 0-9, '.', '_', '-').
        name: String,
        /// Directory or tar file.
        src: PathBuf,
    },
    /// List images.
    List,
    /// Remove an image (refused while a world uses it).
    Rm {
        /// Image name.
        name: String,
    },
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
    /// push_down -> run -> pull_up cycles over worlds holding a 100 MB session.
    Verses {
        /// Cycles measured.
        #[arg(long, default_value_t = 10)]
        n: usize,
        /// Size of the Python session's data, MB.
        #[arg(long, default_value_t = 100)]
        mb: usize,
    },
    /// Snapshot and branch of live worlds beside `os.fork()` and `bwrap`.
    Branch {
        /// Samples per timed row.
        #[arg(long, default_value_t = 15)]
        n: usize,
        /// Children per branch, one set of rows each (1 to 1024, a branch's
        /// limit).
        #[arg(long, value_delimiter = ',', default_values_t = [1, 3, 10, 100],
              value_parser = branch_size)]
        sizes: Vec<usize>,
        /// Which session to branch: an idle one, one holding 100 MB, or both.
        #[arg(long, value_enum, default_value_t = BenchSession::Both)]
        session: BenchSession,
    },
    /// Worlds: create, exec round trip, destroy, memory per idle world,
    /// beside `unshare` and `bwrap` baselines from the same run.
    Substrate {
        /// Samples per timed row.
        #[arg(long, default_value_t = 30)]
        n: usize,
        /// Idle worlds held at once for the memory row.
        #[arg(long, default_value_t = 50)]
        idle: usize,
    },
    /// Us beside every local sandbox installed (./scripts/peers.sh installs
    /// them): create + `true` + teardown interleaved, and a 100 MB Python
    /// snapshot with three copies. Ratios are to our row of the same work.
    Peers {
        /// Interleaved rounds of create + true + teardown.
        #[arg(long, default_value_t = 40)]
        n: usize,
        /// Rounds of snapshot + branch 3 of a 100 MB session (0: none).
        #[arg(long, default_value_t = 5)]
        snapshots: usize,
    },
    /// The clients people use beside our native API, through a running
    /// `world serve` (with `--ssh` for the SSH row): `true` through E2B's
    /// SDK (`commands.run`), OpenSSH and native HTTP exec; E2B's
    /// `fork(count=3)` beside a native branch of 3. Needs the venv's `e2b`.
    Clients {
        /// Samples per exec row (a third as many for the fork rows).
        #[arg(long, default_value_t = 30)]
        n: usize,
        /// The daemon's HTTP address.
        #[arg(long, default_value = "http://127.0.0.1:7077")]
        url: String,
        /// The daemon's SSH port, for the OpenSSH row.
        #[arg(long)]
        ssh_port: Option<u16>,
        /// Python with the `e2b` package.
        #[arg(long, default_value = "/var/cache/world-runtime/venv/bin/python3")]
        python: String,
    },
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

/// Demo scenarios.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Scenario {
    /// Extract WEV: a routing game split into nash / optimal / chaos worlds.
    #[default]
    Wev,
    /// The three-agent chromatic walk across the verses, GF(3) checked at every step.
    Chromatic,
    /// The verse ledger alone (no worlds; runs without root).
    Ledger,
}

/// `world demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Which scenario.
    #[arg(value_enum, default_value_t = Scenario::Wev)]
    pub scenario: Scenario,
    /// Seed of the run (the game's initial flows, the verses' seeds).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Agents in the routing game.
    #[arg(long, default_value_t = 1000)]
    pub agents: u32,
    /// Keep the surviving worlds instead of destroying them at the end.
    #[arg(long)]
    pub keep: bool,
}

/// A `world bench branch --sizes` entry: 1 to `snapshot::MAX_BRANCH` children.
fn branch_size(s: &str) -> Result<usize, String> {
    use world_substrate::snapshot::MAX_BRANCH;
    match s.trim().parse::<usize>() {
        Ok(k) if (1..=MAX_BRANCH).contains(&k) => Ok(k),
        _ => Err(format!(
            "'{s}' is not a number of children from 1 to {MAX_BRANCH}"
        )),
    }
}

/// The sessions `world bench branch` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchSession {
    /// A Python session holding almost nothing.
    Idle,
    /// A Python session holding 100 MB.
    #[value(name = "100mb")]
    Mb100,
    /// Both, idle first.
    Both,
}
