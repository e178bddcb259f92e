//! `push-down` (split a world into verses) and `run-verses` (code in
//! verses' worlds in parallel): their requests.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use world_core::ids::{PartitionId, VerseId};
use world_core::prob::Prob;
use world_core::trit::Trit;
use world_core::verse::ChildSpec;

use super::check::{no_nul, seconds};
use crate::verse::default_children;
use crate::{Error, Result};

/// A number or a string (probabilities and trits come as either).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum NumOrStr {
    /// A JSON number.
    Num(f64),
    /// A JSON string.
    Str(String),
}

impl NumOrStr {
    fn text(&self) -> String {
        match self {
            NumOrStr::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            NumOrStr::Num(n) => format!("{n}"),
            NumOrStr::Str(s) => s.clone(),
        }
    }
}

/// One child of a push-down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChildRequest {
    /// Verse name.
    pub name: String,
    /// Probability, as a decimal number or string (`0.45`, `"0.45"`).
    pub prob: NumOrStr,
    /// Trit: -1, 0 or +1.
    pub trit: NumOrStr,
}

impl ChildRequest {
    /// The domain's child, checked.
    pub fn spec(&self) -> Result<ChildSpec> {
        no_nul(&self.name, "child name")?;
        let p = self.prob.text();
        let prob = Prob::parse(&p).map_err(|e| {
            Error::Invalid(format!("child {:?}: probability {p:?}: {e}", self.name))
        })?;
        let t = self.trit.text();
        let trit: Trit = t.parse().map_err(|_| {
            Error::Invalid(format!(
                "child {:?}: trit {t:?} must be -1, 0 or +1",
                self.name
            ))
        })?;
        Ok(ChildSpec {
            name: self.name.clone(),
            prob,
            trit,
        })
    }
}

/// Most children of one push-down.
pub const MAX_CHILDREN: usize = 64;

/// `push-down`: split a world into verses, one world each (`world
/// push-down`, `POST /v1/worlds/{id}/push-down`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PushDownRequest {
    /// Children (default: nash -1 0.45, optimal 0 0.35, chaos +1 0.20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<ChildRequest>>,
    /// Allow a partition whose trits do not sum to 0 mod 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_nonconserving: Option<bool>,
}

impl PushDownRequest {
    /// The children, checked (the default three when none are given).
    pub fn children(&self) -> Result<Vec<ChildSpec>> {
        match &self.children {
            None => Ok(default_children()),
            Some(c) if c.is_empty() => Err(Error::Invalid("children must not be empty".into())),
            Some(c) if c.len() > MAX_CHILDREN => {
                Err(Error::Invalid(format!("at most {MAX_CHILDREN} children")))
            }
            Some(c) => c.iter().map(ChildRequest::spec).collect(),
        }
    }
}

/// One verse's code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerseCode {
    /// The verse (`v3`).
    pub verse: String,
    /// Python code for its world's session.
    pub code: String,
}

/// `run-verses`: code in verses' worlds, in parallel (`world
/// run-verses`, `POST /v1/verses/run`). Give `partition` and `code` to
/// run the same code in each of the partition's children, `runs` for
/// code per verse, or both (the partition's children run first).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunVersesRequest {
    /// A partition (`p1`) whose children run `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// The code for the partition's children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Code per verse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<Vec<VerseCode>>,
    /// Session name (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Seconds per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
}

/// A checked [`RunVersesRequest`].
#[derive(Debug, Clone)]
pub struct VerseRuns {
    /// The partition and the code for each of its children.
    pub partition: Option<(PartitionId, String)>,
    /// Code per verse.
    pub runs: Vec<(VerseId, String)>,
    /// Session name.
    pub session: String,
    /// Per run.
    pub timeout: Option<std::time::Duration>,
}

/// Parses a verse id with a clear error.
pub fn verse_id(s: &str) -> Result<VerseId> {
    s.parse().map_err(|_| {
        Error::Invalid(format!(
            "{s:?} is not a verse id (expected v<number>, e.g. v1)"
        ))
    })
}

/// Parses a partition id with a clear error.
pub fn partition_id(s: &str) -> Result<PartitionId> {
    s.parse().map_err(|_| {
        Error::Invalid(format!(
            "{s:?} is not a partition id (expected p<number>, e.g. p1)"
        ))
    })
}

impl RunVersesRequest {
    /// The runs, checked: something to run, ids well formed.
    pub fn checked(&self) -> Result<VerseRuns> {
        let timeout = seconds(self.timeout, "timeout")?;
        let session = self.session.clone().unwrap_or_else(|| "default".into());
        no_nul(&session, "session")?;
        let mut runs = Vec::new();
        for v in self.runs.iter().flatten() {
            no_nul(&v.code, "code")?;
            runs.push((verse_id(&v.verse)?, v.code.clone()));
        }
        let partition = match (&self.partition, &self.code) {
            (Some(p), Some(c)) => {
                no_nul(c, "code")?;
                Some((partition_id(p)?, c.clone()))
            }
            (None, None) => None,
            _ => return Err(Error::Invalid("`partition` and `code` go together".into())),
        };
        if runs.is_empty() && partition.is_none() {
            return Err(Error::Invalid(
                "nothing to run: give `partition` and `code`, or `runs`".into(),
            ));
        }
        Ok(VerseRuns {
            partition,
            runs,
            session,
            timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_default_and_limits() {
        assert_eq!(PushDownRequest::default().children().unwrap().len(), 3);
        let empty = PushDownRequest {
            children: Some(vec![]),
            ..Default::default()
        };
        assert!(empty.children().is_err());
        let c: PushDownRequest = serde_json::from_str(
            r#"{"children":[{"name":"a","prob":"0.5","trit":-1},{"name":"b","prob":0.5,"trit":"+1"}]}"#,
        )
        .unwrap();
        assert_eq!(c.children().unwrap().len(), 2);
        let bad: PushDownRequest =
            serde_json::from_str(r#"{"children":[{"name":"a","prob":1,"trit":2}]}"#).unwrap();
        assert!(bad.children().is_err());
    }

    #[test]
    fn runs_need_something_to_run() {
        assert!(RunVersesRequest::default().checked().is_err());
        let half = RunVersesRequest {
            partition: Some("p1".into()),
            ..Default::default()
        };
        assert!(half.checked().is_err());
        let ok = RunVersesRequest {
            runs: Some(vec![VerseCode {
                verse: "v2".into(),
                code: "1".into(),
            }]),
            ..Default::default()
        };
        assert_eq!(ok.checked().unwrap().runs.len(), 1);
        let bad = RunVersesRequest {
            runs: Some(vec![VerseCode {
                verse: "x".into(),
                code: "1".into(),
            }]),
            ..Default::default()
        };
        assert!(bad.checked().is_err());
    }
}
