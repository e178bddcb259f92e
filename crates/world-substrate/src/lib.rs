//! # world-substrate: isolated Linux worlds
//!
//! A *world* is a sandbox made of Linux primitives (there is no usable KVM
//! on our hosts): user, mount, pid, uts, ipc, net and cgroup namespaces;
//! cgroup limits; `no_new_privs`, a seccomp denylist and a cut capability
//! set; a root filesystem that is a writable btrfs snapshot of an image.
//!
//! ## Using it
//! ```no_run
//! use world_substrate::{LinuxSubstrate, Substrate, SubstrateConfig, CreateOptions, ExecRequest};
//! let sub = LinuxSubstrate::new(SubstrateConfig::system_default());
//! let w = sub.create(&CreateOptions::default())?;
//! let out = sub.exec_output(&w.id, &ExecRequest::new(&["python3", "-c", "print(6*7)"]), b"")?;
//! assert_eq!(out.stdout, b"42\n");
//! sub.destroy(&w.id)?;
//! # Ok::<(), world_substrate::Error>(())
//! ```
//!
//! ## The supervisor entry point (for the `world` CLI)
//! `create` starts `config.supervisor_cmd` plus one JSON argument. The CLI
//! must dispatch its hidden `argv[1] == SUPERVISOR_ARG` to
//! [`supervisor_main`] first thing in `main`, before starting any thread or
//! async runtime (the supervisor forks and enters namespaces):
//! ```no_run
//! let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
//! if args.get(1).is_some_and(|a| a == world_substrate::SUPERVISOR_ARG) {
//!     world_substrate::supervisor_main(&args[2..]);
//! }
//! ```
//! [`SubstrateConfig::system_default`] already points `supervisor_cmd` at
//! the current executable with that marker. No daemon: each world's init
//! keeps running after `create` returns; later processes reach it over
//! `<run_dir>/worlds/<id>/ctl.sock` (see [`supervisor`] for the tree).
//!
//! ## Design decisions
//! * Filesystem: btrfs subvolumes on a loop-mounted image in the state dir
//!   (see [`storage`]). Snapshot/branch (issue 4) = read-only/writable
//!   snapshots: O(1), every generation is a flat peer subvolume.
//! * Ids: world root maps to host uids `uid_base..uid_base+65536`
//!   (default 1e9), one fixed range for all worlds, so branches of one
//!   lineage share files; never host root.
//! * Process layout (issue 4, implemented): every `create` starts a
//!   *lineage*: one user namespace and one pid namespace whose PID 1 is the
//!   lineage manager; each world is a child pid namespace of it (plus its
//!   own mount/net/uts/ipc/cgroup namespaces), however deep its branch
//!   generation. Code sessions ([`session`]) are active in the lineage pid
//!   namespace so that their forks can become sessions of sibling worlds.
//!   Design, diagram, security argument and residual risk: [`snapshot`].
//! * Exec timeout kills the whole tree: the per-request agent is a child
//!   subreaper, so even daemonised descendants are found and killed.
//! * `ptrace` is denied in worlds (seccomp) and the init is not dumpable.
//! * /sys is not mounted in worlds; /proc is the world's own.

#![deny(missing_docs)]

pub mod access;
pub mod bench;
pub mod bench_peers;
pub mod btrfs;
pub mod capture;
pub mod cgroup;
pub mod config;
pub mod doctor;
pub mod error;
pub mod image;
pub mod lineage;
pub mod linux;
pub mod proto;
pub mod pty;
pub mod run_fs;
pub mod seccomp;
pub mod seed;
pub mod session;
pub mod snapshot;
pub mod storage;
pub mod supervisor;
mod sys;
pub mod tree;
pub mod types;

pub use config::{SubstrateConfig, DEFAULT_UID_BASE};

/// The OOM score (`oom_score_adj`) of every process of a lineage, set by
/// the launcher as host root and inherited: the kernel's OOM killer takes
/// world processes before host services, and (where the launcher holds
/// CAP_SYS_RESOURCE) none of them can lower it.
pub const OOM_SCORE_ADJ: i32 = 500;
pub use error::{Error, ExecError, Result, WorldError};
pub use image::{ImageInfo, ImageKind};
pub use linux::{LinuxSubstrate, SpareCount};
pub use session::{CodeResult, SessionError};
pub use supervisor::supervisor_main;

/// Moves the calling thread to the background (nice 19) or back (nice 0):
/// for work, such as the record writer, that must not slow worlds unless
/// someone waits for it. Only as root (which may raise the priority back);
/// otherwise it does nothing.
pub fn set_thread_background(background: bool) -> std::io::Result<()> {
    sys::set_thread_background(background)
}
pub use types::{
    CreateOptions, Created, ExecOutput, ExecRequest, ExecStatus, Limits, WorldId, WorldInfo,
    WorldState,
};

use std::os::fd::BorrowedFd;
use std::path::Path;

/// The hidden `argv[1]` that makes a program run [`supervisor_main`].
pub const SUPERVISOR_ARG: &str = "__world-supervisor";

/// Standard streams of an exec; `None` means /dev/null. Output streams as
/// it is written: the command writes straight into these fds.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecStdio<'a> {
    /// Standard input.
    pub stdin: Option<BorrowedFd<'a>>,
    /// Standard output.
    pub stdout: Option<BorrowedFd<'a>>,
    /// Standard error.
    pub stderr: Option<BorrowedFd<'a>>,
    /// When this fd becomes readable or hangs up (write a byte to, or
    /// close, the other end of a pipe), the command's whole process tree
    /// is killed and the exec returns as killed by `SIGKILL`.
    pub cancel: Option<BorrowedFd<'a>>,
}

/// A world backend. The Linux namespace backend is [`LinuxSubstrate`]; a
/// microVM backend can implement the same trait on hosts with real KVM.
pub trait Substrate {
    /// Creates and starts a world; returns once it accepts exec.
    fn create(&self, opts: &CreateOptions) -> Result<Created>;
    /// All worlds.
    fn list(&self) -> Result<Vec<WorldInfo>>;
    /// One world, with current usage.
    fn inspect(&self, id: &WorldId) -> Result<WorldInfo>;
    /// Runs a command with the given stdio; returns how it ended. A program
    /// that is not found is `Err(ExecError::CommandNotFound)` (exit 127).
    fn exec(&self, id: &WorldId, req: &ExecRequest, stdio: ExecStdio<'_>) -> Result<ExecStatus>;
    /// Runs a command feeding `stdin` and capturing stdout and stderr
    /// (output of background processes after the command exits is dropped).
    fn exec_output(&self, id: &WorldId, req: &ExecRequest, stdin: &[u8]) -> Result<ExecOutput>;
    /// Copies a host file or directory into directory `world_dir`.
    fn copy_in(&self, id: &WorldId, host_src: &Path, world_dir: &str) -> Result<()>;
    /// Copies a world file or directory into host directory `host_dir`.
    fn copy_out(&self, id: &WorldId, world_src: &str, host_dir: &Path) -> Result<()>;
    /// Kills everything in the world and removes all its traces.
    fn destroy(&self, id: &WorldId) -> Result<()>;
    /// Freezes every process of a running world, its memory kept: the
    /// world is `paused` and refuses exec, code, snapshot and branch.
    fn pause(&self, id: &WorldId) -> Result<()>;
    /// Thaws a paused world.
    fn resume(&self, id: &WorldId) -> Result<()>;
}
