//! `snapshot` and `branch`: their requests (responses are the
//! substrate's [`world_substrate::snapshot::SnapshotInfo`] and
//! [`world_substrate::snapshot::Branched`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use world_substrate::snapshot::{BranchOptions, MAX_BRANCH};

use super::check::{metadata, no_nul, Metadata, MetadataIn};
use crate::{Error, Result};

/// `snapshot`: keep a world's files and session memory (`world
/// snapshot`, `POST /v1/worlds/{id}/snapshot`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    /// Name (unique; default: generated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// User metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataIn>,
    /// Seconds until the snapshot is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

impl SnapshotRequest {
    /// The name and metadata, checked.
    pub fn checked(&self) -> Result<(Option<String>, Metadata)> {
        if let Some(n) = &self.name {
            no_nul(n, "name")?;
        }
        Ok((self.name.clone(), metadata(self.metadata.clone())?))
    }
}

/// `branch`: `count` copies of a world or snapshot, files and session
/// memory included (`world branch`, `POST /v1/worlds/{id}/branch`,
/// `POST /v1/snapshots/{id}/branch`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchRequest {
    /// Number of children (1..=256).
    pub count: usize,
    /// Seed `random` differently in each child (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_seeds: Option<bool>,
    /// Start the services the world declared (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_services: Option<bool>,
    /// Keep the implicit snapshot of a world (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_snapshot: Option<bool>,
    /// Metadata of every child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataIn>,
}

impl BranchRequest {
    /// The substrate's options, the count checked.
    pub fn options(&self) -> Result<BranchOptions> {
        check_count(self.count)?;
        let d = BranchOptions::default();
        Ok(BranchOptions {
            apply_seeds: self.apply_seeds.unwrap_or(d.apply_seeds),
            start_services: self.start_services.unwrap_or(d.start_services),
            keep_snapshot: self.keep_snapshot.unwrap_or(true),
            ..d
        })
    }
}

/// Refuses a branch count outside `1..=MAX_BRANCH`.
pub fn check_count(count: usize) -> Result<()> {
    if count == 0 || count > MAX_BRANCH {
        return Err(Error::Invalid(format!(
            "count {count} out of range 1..={MAX_BRANCH}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Exactly the counts the substrate can make are accepted.
        #[test]
        fn count_range(count in 0usize..1000) {
            let r = BranchRequest { count, apply_seeds: None, start_services: None, keep_snapshot: None, metadata: None };
            prop_assert_eq!(r.options().is_ok(), (1..=MAX_BRANCH).contains(&count));
        }
    }

    #[test]
    fn names_with_nul_are_refused() {
        let r = SnapshotRequest {
            name: Some("a\0b".into()),
            ..Default::default()
        };
        assert!(r.checked().is_err());
    }
}
