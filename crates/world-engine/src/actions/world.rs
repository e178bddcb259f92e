//! `create`: a new world from an image or a snapshot, with its limits,
//! metadata and TTL.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use world_substrate::{CreateOptions, Limits};

use super::check::{metadata, no_nul, Metadata, MetadataIn};
use crate::world::world_id;
use crate::{Error, Result};

/// What happens when a world's TTL expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TtlAction {
    /// Destroy the world.
    Stop,
    /// Freeze it.
    Pause,
}

impl TtlAction {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            TtlAction::Stop => "stop",
            TtlAction::Pause => "pause",
        }
    }
}

/// `create` (`world create`, `POST /v1/worlds`): from an image (`image`,
/// `id`, limits), or as a branch of `snapshot_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Id (default: generated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Image (default `host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// CPU quota in whole CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<u32>,
    /// Memory limit, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Most processes and threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u32>,
    /// Disk limit, MiB (0: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_mib: Option<u64>,
    /// Start from this snapshot (a branch of one) instead of an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// User metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataIn>,
    /// Seconds until `ttl_action` happens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// What happens at expiry (default `stop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_action: Option<TtlAction>,
}

/// Where a checked [`CreateRequest`] makes its world from.
#[derive(Debug, Clone)]
pub enum CreateFrom {
    /// A new world from an image.
    Image(CreateOptions),
    /// A branch of one child of this snapshot.
    Snapshot(String),
}

impl CreateRequest {
    /// The source and the metadata, checked (limits included).
    pub fn checked(&self) -> Result<(CreateFrom, Metadata)> {
        let meta = metadata(self.metadata.clone())?;
        if let Some(s) = &self.snapshot_id {
            if self.image.is_some() || self.id.is_some() {
                return Err(Error::Invalid(
                    "give either snapshot_id or image/id: a world from a snapshot is a branch of it"
                        .into(),
                ));
            }
            no_nul(s, "snapshot_id")?;
            return Ok((CreateFrom::Snapshot(s.clone()), meta));
        }
        let d = Limits::default();
        let opts = CreateOptions {
            id: self.id.as_deref().map(world_id).transpose()?,
            image: self.image.clone(),
            limits: Limits {
                vcpu_count: self.vcpus.unwrap_or(d.vcpu_count),
                mem_size_mib: self.memory_mib.unwrap_or(d.mem_size_mib),
                pids_max: self.pids_max.unwrap_or(d.pids_max),
                disk_mib: match self.disk_mib {
                    Some(0) => None,
                    Some(n) => Some(n),
                    None => d.disk_mib,
                },
            },
        };
        if let Some(i) = &opts.image {
            no_nul(i, "image")?;
        }
        opts.limits.validate().map_err(Error::Invalid)?;
        Ok((CreateFrom::Image(opts), meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_or_image_not_both() {
        let r = CreateRequest {
            snapshot_id: Some("s".into()),
            image: Some("host".into()),
            ..Default::default()
        };
        assert!(r.checked().is_err());
        let r = CreateRequest {
            memory_mib: Some(1),
            ..Default::default()
        };
        assert!(r.checked().is_err(), "limits are checked");
        let r: CreateRequest =
            serde_json::from_str(r#"{"image":"host","metadata":{"a":1},"ttl_action":"pause"}"#)
                .unwrap();
        let (from, meta) = r.checked().unwrap();
        assert!(matches!(from, CreateFrom::Image(_)));
        assert_eq!(meta.get("a").map(String::as_str), Some("1"));
    }
}
