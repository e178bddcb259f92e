//! Typed requests and responses of the verbs, shared by every front door.
//!
//! The CLI builds a request from its arguments and runs it in-process or
//! sends it to the daemon as JSON; the daemon's route deserializes the
//! same type; the OpenAPI document (`/openapi.json`) is generated from
//! these types' JSON Schemas, so what the document says is what the code
//! reads. Each request checks itself (`to_substrate`, `options`, ...),
//! so a rule is written once and every door refuses the same bad input
//! with the same message ([`crate::Error::Invalid`]: HTTP 400, CLI exit
//! code 3).
//!
//! One module per group of verbs: [`world`] (create, metadata, TTL),
//! [`exec`] (commands and code), [`snapshot`] (snapshot, branch),
//! [`verses`] (push-down, run-verses) and [`pull_up`].

mod check;
pub mod exec;
pub mod pull_up;
pub mod snapshot;
pub mod verses;
pub mod world;

pub use check::{
    metadata, no_nul, seconds, Metadata, MetadataIn, MAX_TIMEOUT_SECS, META_MAX, MIN_TIMEOUT_SECS,
};
pub use exec::{CodeResponse, Command, ExecRequest, ExecResponse, RunCodeRequest};
pub use pull_up::{GameRequest, OracleKind, PullUpRequest};
pub use snapshot::{check_count, BranchRequest, SnapshotRequest};
pub use verses::{
    partition_id, verse_id, ChildRequest, NumOrStr, PushDownRequest, RunVersesRequest, VerseCode,
    VerseRuns,
};
pub use world::{CreateFrom, CreateRequest, TtlAction};
