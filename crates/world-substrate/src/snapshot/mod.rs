//! Snapshots and branches (issue 4): capture a running world's files and
//! the memory of its code sessions in milliseconds, and start N
//! independent worlds from that state.
//!
//! # Using it
//! ```no_run
//! use world_substrate::{LinuxSubstrate, Substrate, SubstrateConfig, CreateOptions};
//! use world_substrate::snapshot::BranchOptions;
//! let sub = LinuxSubstrate::new(SubstrateConfig::system_default());
//! sub.repair()?; // once at startup
//! let w = sub.create(&CreateOptions::default())?.id;
//! sub.run_code(&w, "default", "x = 41", None)?;
//! let snap = sub.snapshot(&w, Some("before"))?;
//! let b = sub.branch(&snap.id, 3, &BranchOptions::default())?;
//! let r = sub.run_code(&b.children[0], "default", "x + 1", None)?;
//! assert_eq!(r.value_repr.as_deref(), Some("42"));
//! # Ok::<(), world_substrate::Error>(())
//! ```
//!
//! # Design (text for `docs/snapshots.md`)
//!
//! ## What a snapshot is
//! * **Files**: a read-only btrfs snapshot of the world's root subvolume,
//!   `fs/snapshots/<sid>`. O(1): no file is copied, whatever the disk size.
//! * **Memory**: for every session (a Python interpreter), a *template*: a
//!   `fork()` of the interpreter taken while it is idle, after
//!   `gc.freeze()` (so that the garbage collector of children never writes
//!   to the shared pages). The template never runs user code; it waits on
//!   `<run>/snapshots/<sid>/<session>.sock` and lives in its own cgroup
//!   `<cgroup>/snap.<sid>`, so it survives its world.
//! * **Quiesce**: the snapshot takes each session's lock (it waits for a
//!   running cell, up to `busy_wait`, then fails with `SessionBusy`), forks
//!   the templates, freezes the world's cgroup (v1 freezer or v2
//!   `cgroup.freeze`), takes the btrfs snapshot, thaws. Sessions do not run
//!   between their fork and the freeze, so files and memory agree. A
//!   template stays in the world's cgroups (frozen with it) until the btrfs
//!   snapshot is taken, then moves to `snap.<sid>` on its own and serves
//!   branches only once it is there; destroying the world or deleting the
//!   snapshot first waits for that (one ping per template).
//!
//! ## What a branch is
//! For each child: a writable btrfs snapshot of `fs/snapshots/<sid>` as its
//! root (a flat peer subvolume: generation 200 costs what generation 1
//! does), a cgroup with the parent's limits, a world init started by the
//! lineage manager in fresh pid/mount/net/uts/ipc/cgroup namespaces (or a
//! *world shell* the manager made ahead of time, see "pool" below), and
//! for every template a `fork()` that enters the child's namespaces and
//! cgroup with `setns` and serves the child's session socket. The child
//! gets `WORLD_SEED = child_seed(parent_seed, index)` (SplitMix64, see
//! [`crate::seed`]) in its environment and `random.seed(WORLD_SEED)` in
//! its sessions (`BranchOptions::apply_seeds = false` leaves CPython's own
//! reseed from the OS in place). Children share unchanged memory pages
//! with the template (copy-on-write).
//!
//! ## The namespace layout (the crux)
//! A process can never change its pid namespace, a fork lands in its
//! parent's `pid_for_children` namespace, which must be the parent's own
//! or a descendant, and pid/user namespaces nest at most 32 deep. Nesting
//! one pid namespace per generation would stop at ~30 generations. So:
//!
//! ```text
//! host
//! └─ user ns U (one per lineage: uids 0..65535 -> host 1e9..)
//!    └─ pid ns P_L ── manager (PID 1), sessions, templates   ◄ all lineage sessions
//!       ├─ pid ns P_w1 ── init of world w1 (PID 1), exec'd commands, session children
//!       ├─ pid ns P_w2 ── init of w2 ...            (w2 = branch of w1)
//!       └─ pid ns P_w3 ── init of w3 ...            (w3 = branch of w2: still one level)
//!
//! process tree                                 namespaces
//! manager (P_L:1)                              U, P_L, private mnt
//! ├─ init w1 (P_w1:1) ─ agents ─ commands      mnt/net/uts/ipc/cgroup of w1
//! ├─ session w1/default                        active P_L, children -> P_w1, ns of w1
//! │  └─ template s-1/default (frozen)          active P_L, cgroup snap.s-1
//! │     └─ session w2/default                  setns -> ns of w2, cgroup of w2
//! ├─ init w2 (P_w2:1) ...
//! on disk (btrfs, flat):
//!   fs/worlds/w1   fs/snapshots/s-1 (ro)   fs/worlds/w2 (snapshot of s-1)
//!   fs/snapshots/s-2 (ro, of w2)   fs/worlds/w3 (snapshot of s-2) ...
//! ```
//! Every world is one level below the lineage pid namespace whatever its
//! generation; user namespaces never nest (one per lineage). A session
//! process is *active* in `P_L` with `pid_for_children = P_w`: what it
//! runs lands in its world. To fork a template it switches
//! `pid_for_children` to `P_L` for the one `fork()` (templates must be
//! active in `P_L` to place children in a sibling's pid namespace), then
//! back. World inits are started by the manager, never forked from user
//! code.
//!
//! ## Security: what keeps worlds of one lineage apart
//! * Files: separate subvolumes and mount namespaces; /proc of a world
//!   shows its own pid namespace only, so no `/proc/<pid>/root` or `ns/`
//!   of another world is reachable.
//! * Network, uts, ipc: one namespace each per world.
//! * Processes: a world's commands live in its pid namespace and cannot
//!   name anything outside it. Session interpreters are in `P_L`, where
//!   every process of the lineage has a pid; for them the session seccomp
//!   policy (`policy/seccomp-session.json`) denies `pidfd_open` (a pidfd
//!   of another world's process would allow `setns` into it),
//!   `pidfd_getfd`, `kcmp`, `process_madvise`, namespace ioctls
//!   (`NS_GET_PARENT`...) and `kill(-1)`; `ptrace` and
//!   `process_vm_readv/writev` are denied everywhere.
//! * **Signals** (closed): a session could otherwise send `kill(pid)`,
//!   `tkill`/`tgkill`, `rt_(tg)sigqueueinfo` or `pidfd_send_signal` to any
//!   process of its lineage by guessing a pid (sibling, parent and child
//!   worlds share `P_L` and the same uids). Every session carries a
//!   seccomp *user-notification* filter for those calls, whose listener
//!   belongs to the lineage's signal guard (a child of the manager). The
//!   guard lets a session signal itself, its own process group, and
//!   processes and sessions of its own world (its subprocesses: Python's
//!   `terminate()`/`kill()` work), delivering through a pidfd so a
//!   recycled pid can never redirect a signal; anything else gets `ESRCH`,
//!   as a free pid does.
//!   Templates call `setsid`, so a session's `kill(0)` never reaches its
//!   snapshots. Design, why landlock signal scoping does not fit a lineage
//!   (domains only nest, 16 deep), and what a signalled process sees:
//!   `src/supervisor/sigguard.rs`. Tested by `tests/security_branch.rs`.
//! * **Residual**: session interpreters hold CAP_SYS_ADMIN *in the lineage user
//!   namespace* (needed for `setns` when a template's fork enters a new
//!   world); mount, unshare, namespace-creating clone, bpf, keyctl and
//!   the other dangerous calls stay denied by seccomp, and programs a
//!   session executes do not get it (dropped from the bounding set).
//! * Two sessions of one world are separate processes in the same world:
//!   they can signal each other (as any two processes of a world can).
//!
//! ## What happens to other things at snapshot and branch
//! * Processes that are not sessions (a server started with `exec` in the
//!   background): their **files** are in the snapshot; their **memory and
//!   the processes themselves are not**. They keep running in the parent;
//!   branches do not have them. The snapshot reports a warning with their
//!   number. Declare them as services ([`crate::LinuxSubstrate::declare_service`])
//!   to have them started again in every branch (after its sessions).
//! * Threads a session started are not in branches (fork copies only the
//!   calling thread); neither are files or sockets the session code holds
//!   open: the template closes every fd but its own, so a child never
//!   writes to its parent's file or accepts on its parent's socket (the
//!   objects in the child raise `OSError: Bad file descriptor`).
//!   Reopen files by path.
//! * Each child's session continues exactly where the snapshot was: same
//!   variables, modules, cwd, environment (plus `WORLD_ID`, `WORLD_SEED`,
//!   `HOSTNAME`).
//!
//! ## Deleting and destroying
//! * Deleting a snapshot whose children live: its templates are killed and
//!   its subvolume deleted. Children are unaffected (btrfs shares extents
//!   by reference; a child's session is its own process, re-parented to the
//!   lineage manager). Only new branches from it become impossible.
//! * Destroying the parent world while its snapshot and children live:
//!   the parent's processes, cgroup and subvolume go; the snapshot (own
//!   subvolume, templates in their own cgroup) and the children stay and
//!   keep working; branching the snapshot again works.
//! * The lineage manager lives while any world or snapshot of the lineage
//!   exists, and is stopped with the last one. If it dies, every process
//!   of the lineage dies with it (it is PID 1 of the lineage pid ns): the
//!   worlds show as dead; destroy them.
//!
//! ## Known limits (measured on the 2-core development VM)
//! * Generations do not nest (layout above), and run-code in generation 200
//!   costs what it costs in generation 1. Snapshot and branch times do
//!   grow over 200 generations here (~20-25 ms -> ~40-80 ms median): their
//!   btrfs part (snapshot ioctl = transaction commit, with quotas on) slows
//!   while btrfs cleans deleted subvolumes in the background, and keeping
//!   every generation alive makes `fork()` of a deep fork chain slower
//!   (the kernel links each child to its ancestors' anon_vmas). Not yet
//!   fixed: re-exec'ing a fresh interpreter is impossible without losing
//!   memory; candidates are batching btrfs work and a warm pool of worlds.
//! * Each branch child costs a btrfs snapshot (a transaction commit), a
//!   cgroup, a world init (new namespaces, ~15 mounts: ~1.5 ms all told,
//!   measured) and a session fork: a few ms of work per child, not the
//!   1 ms goal.
//! * Done: a branch is a pipeline. Up to 16 threads make the children's
//!   roots at once, each snapshotting into its own directory under
//!   `fs/staging/` and then renaming the subvolume to `fs/worlds/<id>`
//!   (the snapshot ioctl holds its target directory's lock through the
//!   commit, so snapshots into one directory serialize while snapshots
//!   into different ones share commits: 64 roots 550 ms one by one, 80 ms
//!   with 16 threads); inits are requested as soon as a root exists and
//!   sessions forked as soon as an init is ready. During a branch a
//!   helper thread keeps cgroup migrations warm (it moves itself into
//!   its own cgroup every 3 ms), so the first child's migration does not
//!   wait for an RCU grace period (~5-10 ms here). Measured: 100 children
//!   ~1.0-1.3 s -> ~0.45-0.75 s; 1,000 live worlds 12.9 s -> ~6 s.
//!   [`crate::LinuxSubstrate::repair`] deletes roots a crash left in
//!   `fs/staging/`.
//! * Done: new stores use btrfs *simple quotas* (squota, kernel >= 6.7;
//!   full qgroups as a fallback), so a snapshot's transaction commit does
//!   no qgroup backref accounting; journals are not fsynced (they guard
//!   against a killed process, see [`record::JournalGuard::write`]): about
//!   4 ms less per snapshot and per branch call.
//! * Done: the snapshot no longer waits for its templates' cgroup
//!   migration. The first cgroup migration after a quiet spell waits for an
//!   RCU grace period (the kernel's `cgroup_threadgroup_rwsem`; ~5-15 ms
//!   here, in uninterruptible sleep, which also holds up a freeze), and the
//!   snapshot used to wait for it twice over: it read the session's reply
//!   to EOF while the template still held the connection. Now the reply is
//!   one line, and the template migrates after the btrfs snapshot, in the
//!   background (a branch or destroy that follows waits for it, overlapped
//!   with its own work). Measured (snapshot, branch 3, destroy, delete in a
//!   loop, loaded 2-core VM, same run): snapshot p50 ~24 -> ~12 ms.
//! * Done: [`crate::LinuxSubstrate::branch_world`] (snapshot + branch, e.g.
//!   `push_down`) makes up to 16 children's roots from the world's root
//!   while it is frozen, beside the read-only snapshot: one btrfs
//!   transaction commit instead of two; and it starts keeping cgroup
//!   migrations warm before the snapshot, so the grace period passes
//!   during it. Measured (loop of `branch_world` 3 + destroy, loaded 2-core
//!   VM, interleaved with the previous build): p50 52 -> 38 ms, p90 69 ->
//!   51 ms.
//! * Done: less work on the branch's serial stages (the thread that talks
//!   to the lineage manager, which serves one request at a time, and the
//!   one that asks the templates for forks). Root workers also bind each
//!   child's control and session sockets and open its cgroup files, and a
//!   fourth thread writes the sessions' pid files as they come up (creating
//!   a file costs ~0.3-0.5 ms on this VM's journal-less ext4, where inode
//!   allocation skips recently deleted inodes; the pid files of 100
//!   children took ~45 ms at the end of the branch). Tried and dropped:
//!   letting each world init `unshare` its own network namespace instead
//!   of the manager's `clone` doing it (frees the manager, but parallel
//!   namespace creation made 100 MB branches slower here).
//! * Done: the store's loop device uses direct I/O (set at mount): the
//!   flushes that end every btrfs commit (each snapshot ioctl is one)
//!   become an `fsync` of `storage.img`, which with buffered I/O first had
//!   to write back the commit from the host page cache. 30 snapshot ioctls
//!   p50 ~7.7 -> ~4-5.5 ms here, same durability. Stores mounted before
//!   this change keep buffered I/O until remounted.
//! * Done: the migration warmer lingers for 2 s after the operation that
//!   started it (one warmer thread per process). Its first write holds the
//!   kernel's `cgroup_mutex` through the grace period, and every cgroup
//!   `mkdir` waits on that mutex: per-child traces
//!   (`WORLD_SUBSTRATE_TRACE=1`) showed a branch of 3 making its roots by
//!   ~4 ms and its cgroups only at ~10-23 ms. With the linger, the next
//!   operation of the same process (the daemon's, a benchmark round, a
//!   verse cycle) finds migrations warm and makes each cgroup right after
//!   its root. A one-shot `world` command still pays one grace period.
//! * Measured: the kernel's share alone. `world bench branch` prints a
//!   "floor" row per size: one btrfs root snapshot per child (same 16
//!   workers) plus one process per child cloned into new mount, uts, ipc,
//!   net and pid namespaces that exits at once; no cgroup, init, mounts or
//!   session. Here it is ~5 ms for 3 children, ~16 ms for 10 and ~137-145
//!   ms for 100 (~1.4 ms per child): with namespaces made at branch time
//!   the issue's goal of 1 ms per idle child when branching 100 is below
//!   what the kernel alone costs here; a branch costs ~2-2.5x its floor.
//!   The btrfs roots alone are ~0.7 ms per child (100 in ~70 ms, measured
//!   with the processes left out), so only worlds whose namespaces and init
//!   exist before the branch could approach 1 ms: the pool, next.
//! * Done: a **pool of world shells** per lineage. A shell is a world init
//!   made ahead of time by the lineage manager: its pid/mount/net/uts/ipc
//!   namespaces, loopback, seccomp program and every mount that does not
//!   depend on the root (/proc, /dev, /sys, the image's read-only binds,
//!   staged on a private tmpfs) exist; it waits for a world. A branch's
//!   `NewWorld` takes a ready shell when there is one: the shell joins the
//!   child's cgroup, takes its cgroup namespace, moves the staged mounts
//!   into the child's root (`MS_MOVE`), pivots and serves; without one the
//!   manager clones a fresh init, which runs the same two steps at once
//!   (one code path). After each branch of N the host asks the manager to
//!   keep min(N, `pool_max`) shells (default 128, `WORLD_POOL_MAX`, 0 turns
//!   it off); the manager makes them one at a time and only after 20 ms
//!   without a request, so refilling never competes with a branch, and
//!   drops them after 5 minutes without a branch. Shells wait in the
//!   lineage's pool cgroup (`lineage.<id>.pool`, `cpu.idle = 1`: CPU
//!   class SCHED_IDLE, so making them only uses CPU time nothing else
//!   wants; in `world bench verses` the pool neither helps nor hurts the
//!   cycle measurably: six interleaved pairs, p50 63-102 ms with, 67-87
//!   without). The manager moves a shell into
//!   its world's cgroup before waking it (an idle-class task would wait
//!   behind the branch's busy threads). Shells die with the lineage. The
//!   first branch of a lineage, and a branch bigger than the pool, make (some of) their
//!   inits as before; `world pool (WORLD | SNAPSHOT) --size N --wait` makes
//!   them ahead of such a branch, and `world pool ...` shows the pool. An
//!   idle shell costs ~0.1 MB PSS. `world bench branch` prints pooled and
//!   unpooled rows, interleaved.
//! * Done: session interpreters start with `GLIBC_TUNABLES=
//!   glibc.malloc.hugetlb=1` (dropped from the environment before user code
//!   runs), and worlds get a read-only `/sys` holding only the host's
//!   `kernel/mm/transparent_hugepage` (malloc reads it at start). Large
//!   allocations and the heap are then advised to use transparent huge
//!   pages, so a `fork()` of a session copies one page-table entry per 2
//!   MiB: `os.fork()` of a 100 MB Python ~2-4 ms -> ~0.5-0.7 ms here. A
//!   child's first write to a shared huge page splits it and copies 4 KiB
//!   (Linux >= 5.8): sharing stays page by page (measured: writing 10 MB of
//!   pages in a child costs the same with and without).
//! * Tried and dropped: pipelining the branch's world requests to the
//!   lineage manager (send them all, read the answers later). The manager
//!   no longer waits for the client, but the inits it then starts at once
//!   compete for the 2 cores with the roots still being made: no gain at 3
//!   or 10 children, slower at 100. What stays from it: the manager
//!   protocol reads exactly one frame per message, so a peer may pipeline
//!   without bytes or fds of the next message being lost.
//!   Tried again with ready roots (stage 1 no longer competes): branch 100
//!   pooled, six interleaved pairs, p50 ~150 ms pipelined, ~146 ms not: no
//!   gain, not kept.
//! * Done: **ready roots** (`snapshot/ready.rs`). A root depends on
//!   nothing a branch request brings, so a snapshot that was branched
//!   (`branch` of an existing snapshot, not snapshot + branch in one call)
//!   keeps as many writable roots of itself ready as its biggest branch
//!   used (up to `pool_max`), made by a detached job at idle CPU priority;
//!   the next branch claims them up front by renaming them into its
//!   staging directory (`fs/ready/<sid>/`; of two branches that pick the
//!   same root, one wins and the other makes its own) and, when it got
//!   all it needs, uses one stage-1 thread instead of 16. `world pool SNAPSHOT --size N [--wait]` sets both the lineage's
//!   shells and the snapshot's roots, 0 drops them; deleting the snapshot
//!   deletes its roots (after the one being made), `repair` deletes those
//!   of vanished snapshots. They stay until then (btrfs metadata, no
//!   memory). Workloads that branch one state again and again
//!   (rollouts, search from a saved state) get their roots for free; a first
//!   branch makes them as before.
//! * Done: **batched session forks** (`snapshot/fork.rs`). The host sends a
//!   template one `branch_many` message for every child whose init is up
//!   by then (up to 16; 8 fds each), and the template forks them all before
//!   one reply, instead of one round trip per child through its Python
//!   loop. A template from an older binary answers "templates only branch"
//!   and gets the one-child requests.
//! * Done: the **run directory on a tmpfs** (`run_fs.rs`). A branch of 100
//!   makes ~600 run-dir entries (sockets, pid files, dirs); where `/run` is
//!   on the disk (our VMs' ext4), each is an inode allocation that scans for
//!   recently deleted inodes. When the store is mounted and nothing alive
//!   uses the run directory, a tmpfs (`world-run`, 64 MiB) is mounted on it;
//!   unmounting the store unmounts it. Measured, branch 100 idle pooled,
//!   same run: 217 ms on ext4, 154 ms on the tmpfs.
//! * Measured after these (`world bench branch --n 10`, this 2-core VM, one
//!   run; floor = the same number of btrfs roots and namespaced processes
//!   made in the same run): branch 100 idle, pooled p50 141 ms / p90 142
//!   (floor 153; cold 252); branch 100 of a 100 MB session 197 / 238 (cold
//!   316); branch 3 of 100 MB 15.3 / 19.1; branch 1 7.2-7.4. Where the rest
//!   goes (`perf`, branch 100 pooled): ~40% of the CPU in that window is the
//!   template's forks and its children's first steps (copy-on-write faults
//!   of the Python heap, file faults of the interpreter's libraries), ~20%
//!   the host's stages, ~12% the shells taking their worlds; the 2 cores
//!   are busy throughout. The goal of 120 ms for 100 idle children is not
//!   reached on this machine, whose floor alone measured 130-180 ms today.
//! * Done: a template forked from a session, and a session forked from a
//!   template, first unwind the agent's stack they were forked in (the
//!   `_Become` exception in `session/agent.py`) and then take their role at
//!   the top. Before, every generation ran a few Python frames deeper than
//!   its parent, so Python's recursion limit (1000) bounded a line of
//!   branches to ~200-250 generations; `deep_generations_stay_flat` now
//!   runs 300 (400 tried).
//! * Measured, not done: even so, most of a snapshot ioctl is the flush:
//!   ~1-2 ms with the loop device's `write_cache` at `write through` (no
//!   flushes at all). Turning flushes off (that, or `nobarrier`) would make
//!   the whole store's consistency after a host crash depend on luck, so it
//!   is left to the operator. The cgroup side has a kernel knob too:
//!   mounting the v1 hierarchies (or v2) with `favordynmods` removes the
//!   grace-period wait of migrations, at some cost to every fork and exit on
//!   the host.
//!
//! ## Faults
//! Every snapshot and branch writes a journal under `meta/pending/`,
//! `flock`ed while it runs. On error the operation removes everything it
//! made (all or nothing). After `kill -9` the lock is free; the next
//! [`crate::LinuxSubstrate::repair`] removes what the journal lists, subvolumes
//! without records, and dead or unused lineage managers; it thaws the world
//! a snapshot's journal names as frozen (a crash between freeze and thaw),
//! removes world-id claims whose creating process died before it
//! wrote the world's record, and removes empty cgroups under the store's
//! cgroup parent that no world, snapshot or lineage of the store names
//! and that are over a minute old (a crash between making a cgroup and
//! recording its owner leaves one; a create in progress owns a young one,
//! and `rmdir` refuses any cgroup that still has a process).

mod adopt;
mod collapse;
mod fork;
mod ops;
mod ready;
pub(crate) use ops::trace;
pub(crate) use record::valid_snapshot_id;
pub mod record;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use collapse::Collapsing;
pub use record::{Service, SnapshotRecord};

use crate::types::WorldId;

/// Most children one branch call makes.
pub const MAX_BRANCH: usize = 1024;

/// Errors of snapshots and branches.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No snapshot with that id or name.
    #[error("no snapshot '{0}' (see `world snapshots`)")]
    NotFound(String),
    /// The name is malformed.
    #[error("invalid snapshot or service name '{0}': use 1-64 of [A-Za-z0-9._-]")]
    InvalidName(String),
    /// The name is taken.
    #[error("a snapshot named '{0}' already exists")]
    NameTaken(String),
    /// The world keeps as many snapshots as it may.
    #[error("world '{0}' already keeps {1} snapshots, the most a world may (WORLD_SNAPSHOTS_MAX); delete some with `world snapshots rm`")]
    TooMany(String, usize),
    /// Branch count out of range.
    #[error("branch count {0} out of range 1..={1}")]
    BadCount(usize, usize),
    /// A session kept running code.
    #[error("world '{0}': session '{1}' is still running code after {2} ms; snapshot later or raise busy_wait")]
    SessionBusy(String, String, u64),
    /// The lineage manager holding the templates died.
    #[error(
        "snapshot '{0}' cannot be branched: its lineage manager is gone (delete the snapshot)"
    )]
    LineageGone(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

/// Options of a branch.
#[derive(Debug, Clone)]
pub struct BranchOptions {
    /// Seed Python's `random` in every child session with `WORLD_SEED`
    /// (default true). Off: CPython's own reseed from the OS stays.
    pub apply_seeds: bool,
    /// Start the declared services in every child (default true).
    pub start_services: bool,
    /// `branch_world`: keep the implicit snapshot (default false).
    pub keep_snapshot: bool,
    /// `branch_world`: how long to wait for a session running code.
    pub busy_wait: Duration,
    /// The children's ids, chosen by the caller (empty: random). A caller that records the branch can then write its records
    /// while the branch runs. Must hold `count` fresh ids.
    pub child_ids: Vec<WorldId>,
    /// `branch_world`: the implicit snapshot's id, chosen by the caller
    /// (from [`new_snapshot_id`]; default random).
    pub snapshot_id: Option<String>,
}

/// A fresh snapshot id such as `s-3f9a0c12d4e5`.
pub fn new_snapshot_id() -> String {
    crate::lineage::random_id("s")
}

impl Default for BranchOptions {
    fn default() -> Self {
        BranchOptions {
            apply_seeds: true,
            start_services: true,
            keep_snapshot: false,
            busy_wait: Duration::from_secs(30),
            child_ids: Vec::new(),
            snapshot_id: None,
        }
    }
}

/// A snapshot as reported to callers.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SnapshotInfo {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The world it was taken from.
    pub world: WorldId,
    /// Sessions captured.
    pub sessions: Vec<String>,
    /// Seconds since the epoch.
    pub created_at: u64,
    /// Time taken, ms (record as `snapshot_time_ms`).
    pub snapshot_ms: f64,
    /// Things the user may lose (non-session processes, ...).
    pub warnings: Vec<String>,
    /// Memory its templates (the waiting forks of its sessions) use now,
    /// bytes. They run in their own cgroup under the world's limits, which
    /// outlives the world until the snapshot is deleted.
    #[serde(default)]
    pub template_memory_bytes: Option<u64>,
    /// Processes its templates hold now (under the world's pids limit).
    #[serde(default)]
    pub template_pids: Option<u64>,
}

impl SnapshotInfo {
    fn from_record(r: &SnapshotRecord, warnings: Vec<String>, cgroup_name: &str) -> Self {
        let cg = crate::cgroup::WorldCgroup::open(cgroup_name, &ops::snap_cgroup(&r.id));
        SnapshotInfo {
            id: r.id.clone(),
            name: r.name.clone(),
            world: r.world.clone(),
            sessions: r.sessions.clone(),
            created_at: r.created_at,
            snapshot_ms: r.snapshot_ms,
            warnings,
            template_memory_bytes: cg.memory_bytes(),
            template_pids: cg.pids_current(),
        }
    }
}

/// Result of a branch.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Branched {
    /// The snapshot branched from (`None` when `branch_world` deleted it).
    pub snapshot: Option<String>,
    /// The children, in index order.
    pub children: Vec<WorldId>,
    /// Their seeds (`WORLD_SEED`), in the same order.
    pub seeds: Vec<u64>,
    /// `branch_world`: time of the implicit snapshot, ms.
    pub snapshot_ms: Option<f64>,
    /// Time from the call to every child ready (sessions included), ms.
    pub branch_ms: f64,
    /// Limits not enforced, services that failed to start, ...
    pub warnings: Vec<String>,
}

/// Where a world came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Origin {
    /// Lineage id.
    pub lineage: Option<String>,
    /// Parent world (for branches).
    pub parent: Option<WorldId>,
    /// Snapshot it was branched from.
    pub snapshot: Option<String>,
    /// Its index in that branch call.
    pub branch_index: Option<u64>,
    /// Its seed (`WORLD_SEED`).
    pub seed: u64,
}

/// What [`crate::LinuxSubstrate::repair`] did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RepairReport {
    /// Half-made worlds removed.
    pub removed_worlds: Vec<WorldId>,
    /// Half-made snapshots removed.
    pub removed_snapshots: Vec<String>,
    /// Subvolumes without a record, deleted.
    pub removed_subvolumes: Vec<String>,
    /// Lineage managers stopped (dead or unused).
    pub stopped_lineages: Vec<String>,
    /// Worlds whose init is dead (left for `destroy`).
    pub dead_worlds: Vec<WorldId>,
    /// Worlds a crashed snapshot had left frozen, thawed.
    pub thawed_worlds: Vec<WorldId>,
    /// Empty cgroups no world, snapshot or lineage owns, removed.
    pub removed_cgroups: Vec<String>,
    /// Cgroups no record names whose processes (of this store) were
    /// killed: what a crash left running.
    #[serde(default)]
    pub killed_orphans: Vec<String>,
    /// Spare worlds stopped (the next create makes them again).
    #[serde(default)]
    pub stopped_spares: usize,
}
