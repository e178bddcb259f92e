//! The crate error: one variant per module error, plus the world-level and
//! exec-level errors of the public API. Messages are short and say what to
//! do; print the whole `source()` chain.

use std::io;

pub use crate::cgroup::CgroupError;
pub use crate::image::ImageError;
pub use crate::proto::ProtoError;
pub use crate::seccomp::SeccompError;
pub use crate::storage::StorageError;

/// Errors about a world as a whole (bad input and lifecycle).
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// No world with that id.
    #[error("no world '{0}' (see `world list`)")]
    NotFound(String),
    /// The id is malformed.
    #[error("invalid world id '{0}': use 1-32 of [a-z0-9-]")]
    InvalidId(String),
    /// The id is taken.
    #[error("world '{0}' already exists")]
    Exists(String),
    /// The world cannot run commands: it is paused, or its supervisor is
    /// gone.
    #[error("world '{0}' is {1}; {advice}", advice = not_running_advice(*.1))]
    NotRunning(String, crate::types::WorldState),
    /// The lifecycle does not allow it (pausing a paused world, ...).
    #[error("world '{0}': {1}")]
    Transition(String, world_core::lifecycle::TransitionError),
    /// This host cannot do it (pause without a cgroup freezer).
    #[error("{0}")]
    Unsupported(&'static str),
    /// Limits out of range.
    #[error("invalid limits: {0}")]
    InvalidLimits(String),
    /// Starting the world failed.
    #[error("world start failed: {0}")]
    Launch(String),
    /// A host-side file operation failed (the cause is the source).
    #[error("{0}")]
    Io(&'static str, #[source] io::Error),
}

fn not_running_advice(s: crate::types::WorldState) -> &'static str {
    match s {
        crate::types::WorldState::Paused => "resume it first",
        _ => "destroy it",
    }
}

/// Errors of exec and copy requests.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program is not in the world's PATH (shell exit code 127).
    #[error("{0}")]
    CommandNotFound(String),
    /// The program is not executable (exit code 126).
    #[error("{0}")]
    PermissionDenied(String),
    /// The working directory or path does not exist in the world.
    #[error("no such file or directory in the world: {0}")]
    NoSuchPath(String),
    /// The request was malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Anything else that failed inside the world.
    #[error("{0}")]
    Failed(String),
}

/// The crate's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// World lifecycle or bad input.
    #[error(transparent)]
    World(#[from] WorldError),
    /// Exec or copy.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// Images.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The btrfs store.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// cgroups.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// The seccomp policy.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// The control socket.
    #[error(transparent)]
    Proto(#[from] ProtoError),
    /// Code sessions.
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
    /// Snapshots and branches.
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
}

impl Error {
    /// The process exit code a CLI should use for this error (127 for a
    /// command not found, 126 for not executable, else 1).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exec(ExecError::CommandNotFound(_)) => 127,
            Error::Exec(ExecError::PermissionDenied(_)) => 126,
            _ => 1,
        }
    }
}

/// Crate result alias.
pub type Result<T> = std::result::Result<T, Error>;
