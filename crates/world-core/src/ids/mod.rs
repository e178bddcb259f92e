//! Identifiers: verse and partition numbers ([`VerseId`], [`PartitionId`])
//! and validated token and owner names ([`Token`], [`Owner`]).
//!
//! Numbers print with a one-letter prefix (`v7`, `p3`) and parse with or
//! without it. They serialize as their display form (`"v7"`, readable in
//! the journal) and deserialize from a number or from either string form.

mod name;

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

pub use name::{Owner, Token, MAX_NAME_LEN};

/// A malformed identifier.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// A name with no characters.
    #[error("{kind} name must not be empty")]
    Empty {
        /// `"token"` or `"owner"`.
        kind: &'static str,
    },
    /// A name longer than [`MAX_NAME_LEN`].
    #[error("{kind} name is {len} characters long, at most {max} are allowed", max = MAX_NAME_LEN)]
    TooLong {
        /// `"token"` or `"owner"`.
        kind: &'static str,
        /// Its length in characters.
        len: usize,
    },
    /// A name with a character outside `[A-Za-z0-9_.:@-]`.
    #[error("{kind} name {name:?} contains {ch:?}; allowed are A-Z a-z 0-9 _ . : @ -")]
    BadChar {
        /// `"token"` or `"owner"`.
        kind: &'static str,
        /// The rejected name.
        name: String,
        /// The first character not allowed.
        ch: char,
    },
    /// A verse or partition id that is not `<prefix><number>` or `<number>`.
    #[error("invalid {kind} id {input:?}: expected {prefix}<number> or <number>")]
    BadNumber {
        /// `"verse"` or `"partition"`.
        kind: &'static str,
        /// The rejected text.
        input: String,
        /// The accepted prefix letter.
        prefix: char,
    },
}

fn parse_number(input: &str, prefix: char, kind: &'static str) -> Result<u64, IdError> {
    let digits = input.strip_prefix(prefix).unwrap_or(input);
    let bad = || IdError::BadNumber {
        kind,
        input: input.to_owned(),
        prefix,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    digits.parse().map_err(|_| bad())
}

macro_rules! number_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                parse_number(s, $prefix, $kind).map($name)
            }
        }

        impl From<u64> for $name {
            fn from(n: u64) -> Self {
                $name(n)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                // Written as "v12"; read from that, "12" or 12.
                schemars::json_schema!({
                    "description": concat!("A ", $kind, " id: \"", $prefix, "<n>\" (also read from \"<n>\" or a number)."),
                    "anyOf": [
                        {"type": "string", "pattern": concat!("^", $prefix, "?[0-9]+$")},
                        {"type": "integer", "minimum": 0}
                    ]
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // "v12" / "p4": readable in the journal and in --json output.
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a ", $kind, " id: a number, \"", $prefix, "<n>\" or \"<n>\""))
                    }
                    fn visit_u64<E: de::Error>(self, n: u64) -> Result<$name, E> {
                        Ok($name(n))
                    }
                    fn visit_i64<E: de::Error>(self, n: i64) -> Result<$name, E> {
                        u64::try_from(n)
                            .map($name)
                            .map_err(|_| E::custom(concat!("negative ", $kind, " id")))
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$name, E> {
                        s.parse().map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

number_id!(
    /// A verse, numbered from 1 in creation order. Displays as `v{n}`.
    VerseId,
    'v',
    "verse"
);
number_id!(
    /// A partition, numbered from 1 in creation order. Displays as `p{n}`.
    PartitionId,
    'p',
    "partition"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse() {
        assert_eq!(VerseId(7).to_string(), "v7");
        assert_eq!(PartitionId(3).to_string(), "p3");
        assert_eq!("v7".parse::<VerseId>(), Ok(VerseId(7)));
        assert_eq!("7".parse::<VerseId>(), Ok(VerseId(7)));
        assert_eq!("p3".parse::<PartitionId>(), Ok(PartitionId(3)));
        assert_eq!("3".parse::<PartitionId>(), Ok(PartitionId(3)));
    }

    #[test]
    fn parse_rejects_garbage() {
        for bad in [
            "",
            "v",
            "p3",
            "v-1",
            "v+1",
            "+1",
            "v1x",
            " v1",
            "v99999999999999999999",
        ] {
            assert!(bad.parse::<VerseId>().is_err(), "{bad:?} parsed");
        }
        assert!("v3".parse::<PartitionId>().is_err());
        let err = "x1".parse::<VerseId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid verse id \"x1\": expected v<number> or <number>"
        );
    }

    #[test]
    fn serde_numbers_and_strings() {
        let v: VerseId = serde_json::from_str("12").unwrap();
        assert_eq!(v, VerseId(12));
        let v: VerseId = serde_json::from_str("\"v12\"").unwrap();
        assert_eq!(v, VerseId(12));
        assert_eq!(serde_json::to_string(&VerseId(12)).unwrap(), "\"v12\"");
        assert!(serde_json::from_str::<VerseId>("-1").is_err());
        assert!(serde_json::from_str::<PartitionId>("\"v1\"").is_err());
        let p: PartitionId = serde_json::from_str("\"p4\"").unwrap();
        assert_eq!(p, PartitionId(4));
    }
}
