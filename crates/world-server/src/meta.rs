//! The documents worlds and snapshots carry (metadata, TTL, services,
//! ...): owned and stored by the engine ([`world_engine::meta`]); the
//! daemon reads and changes them through it.

pub use world_engine::meta::{now, HttpService, Metadata, SnapMeta, Ttl, TtlAction, WorldMeta};
