//! The engine's error type and the broad kinds the CLI maps to exit codes.

/// Everything the engine can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] world_store::Error),
    /// The ledger refused an operation.
    #[error(transparent)]
    Ledger(#[from] world_core::ledger::LedgerError),
    /// The verse tree refused an operation.
    #[error(transparent)]
    Verse(#[from] world_core::verse::VerseError),
    /// The oracle could not decide.
    #[error(transparent)]
    Oracle(#[from] world_core::oracle::OracleError),
    /// The WEV inputs are invalid.
    #[error(transparent)]
    Wev(#[from] world_core::wev::WevError),
    /// The world substrate failed or refused.
    #[error(transparent)]
    Substrate(#[from] world_substrate::Error),
    /// A request was malformed.
    #[error("{0}")]
    Invalid(String),
}

/// Broad classes of failure, stable for scripts (the CLI's exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request was refused as invalid or against the rules.
    Refused,
    /// Something named does not exist.
    NotFound,
    /// The database is held by another process.
    Busy,
    /// Anything else (I/O, database, corruption).
    Internal,
    /// The command to run in a world does not exist there.
    CommandNotFound,
    /// The command to run in a world is not executable.
    NotExecutable,
}

impl Error {
    /// The broad class of this error.
    pub fn kind(&self) -> ErrorKind {
        use world_store::Error as S;
        match self {
            Error::Store(S::Busy { .. }) => ErrorKind::Busy,
            Error::Store(S::NotFound { .. }) => ErrorKind::NotFound,
            Error::Store(S::Ledger(e))
            | Error::Store(S::BatchOp { source: e, .. })
            | Error::Ledger(e) => {
                if e.is_not_found() {
                    ErrorKind::NotFound
                } else {
                    ErrorKind::Refused
                }
            }
            Error::Store(_) => ErrorKind::Internal,
            Error::Verse(e) => {
                if e.is_not_found() {
                    ErrorKind::NotFound
                } else {
                    ErrorKind::Refused
                }
            }
            Error::Oracle(_) | Error::Wev(_) | Error::Invalid(_) => ErrorKind::Refused,
            Error::Substrate(e) => substrate_kind(e),
        }
    }
}

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn substrate_kind(e: &world_substrate::Error) -> ErrorKind {
    use world_substrate::{Error as E, ExecError, WorldError as W};
    match e {
        E::World(W::NotFound(_)) => ErrorKind::NotFound,
        E::World(
            W::InvalidId(_)
            | W::Exists(_)
            | W::NotRunning(..)
            | W::Transition(..)
            | W::Unsupported(_)
            | W::InvalidLimits(_),
        ) => ErrorKind::Refused,
        E::Exec(ExecError::CommandNotFound(_)) => ErrorKind::CommandNotFound,
        E::Exec(ExecError::PermissionDenied(_)) => ErrorKind::NotExecutable,
        E::Exec(ExecError::NoSuchPath(_) | ExecError::BadRequest(_)) => ErrorKind::Refused,
        E::Image(world_substrate::image::ImageError::Unknown(_)) => ErrorKind::NotFound,
        E::Snapshot(world_substrate::snapshot::SnapshotError::NotFound(_)) => ErrorKind::NotFound,
        E::Snapshot(world_substrate::snapshot::SnapshotError::Failed(_)) => ErrorKind::Internal,
        E::Snapshot(_) => ErrorKind::Refused,
        E::Session(world_substrate::SessionError::NotFound(..)) => ErrorKind::NotFound,
        E::Session(
            world_substrate::SessionError::InvalidName(_)
            | world_substrate::SessionError::Exists(..)
            | world_substrate::SessionError::Busy(..),
        ) => ErrorKind::Refused,
        E::Image(world_substrate::image::ImageError::Io(..)) => ErrorKind::Internal,
        E::Image(_) => ErrorKind::Refused,
        _ => ErrorKind::Internal,
    }
}
