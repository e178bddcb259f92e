//! Validated names: [`Token`] and [`Owner`].
//!
//! A name is 1..=64 characters from `[A-Za-z0-9_.:@-]`. Names up to 22
//! bytes (almost all of them) live inline, so cloning one copies 24 bytes
//! and touches no shared counter: the parallel executor clones names on
//! every thread. Longer names share one `Arc<str>`.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::IdError;

/// The longest allowed token or owner name, in characters.
pub const MAX_NAME_LEN: usize = 64;

const INLINE: usize = 22;

/// A short name: its length and its bytes, zero-padded. Names of at most
/// [`INLINE`] bytes are always stored this way, longer ones never, so two
/// names are equal exactly when their forms and contents are.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Inline {
    len: u8,
    buf: [u8; INLINE],
}

impl Inline {
    /// The 23 bytes (length, then padded bytes) as three words.
    #[inline]
    fn words(&self) -> [u64; 3] {
        let mut b = [0u8; 24];
        b[0] = self.len;
        b[1..=INLINE].copy_from_slice(&self.buf);
        let w = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(x)
        };
        [w(0), w(1), w(2)]
    }
}

#[derive(Clone)]
enum Name {
    Inline(Inline),
    Heap(Arc<str>),
}

impl Name {
    fn new(s: &str, kind: &'static str) -> Result<Name, IdError> {
        if s.is_empty() {
            return Err(IdError::Empty { kind });
        }
        if let Some(ch) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '-')))
        {
            return Err(IdError::BadChar {
                kind,
                name: s.to_owned(),
                ch,
            });
        }
        // Only ASCII is left, so bytes and characters agree.
        if s.len() > MAX_NAME_LEN {
            return Err(IdError::TooLong { kind, len: s.len() });
        }
        if s.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            Ok(Name::Inline(Inline {
                len: s.len() as u8,
                buf,
            }))
        } else {
            Ok(Name::Heap(Arc::from(s)))
        }
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            Name::Inline(i) => &i.buf[..usize::from(i.len)],
            Name::Heap(s) => s.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Always valid: built from a `&str` of ASCII characters.
            Name::Inline(_) => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Name::Heap(s) => s,
        }
    }
}

impl Name {
    /// Three words that differ for different names (used to pick shards
    /// cheaply; collisions only unbalance shards).
    #[inline]
    fn words(&self) -> [u64; 3] {
        match self {
            Name::Inline(i) => i.words(),
            Name::Heap(s) => {
                let b = s.as_bytes();
                let mut head = [0u8; 8];
                let mut tail = [0u8; 8];
                head.copy_from_slice(&b[..8]);
                tail.copy_from_slice(&b[b.len() - 8..]);
                [
                    b.len() as u64,
                    u64::from_le_bytes(head),
                    u64::from_le_bytes(tail),
                ]
            }
        }
    }
}

impl PartialEq for Name {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Name::Inline(a), Name::Inline(b)) => a == b,
            (Name::Heap(a), Name::Heap(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for Name {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Name::Inline(i) => {
                let [a, b, c] = i.words();
                state.write_u64(a);
                state.write_u64(b);
                state.write_u64(c);
            }
            Name::Heap(s) => {
                state.write(s.as_bytes());
                state.write_u8(0xff);
            }
        }
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(Name);

        impl $ty {
            #[doc = concat!("Validates `s` as a ", $kind, " name: 1..=64 characters of `[A-Za-z0-9_.:@-]`.")]
            pub fn new(s: &str) -> Result<Self, IdError> {
                Name::new(s, $kind).map($ty)
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            /// Three words that differ for most different names.
            #[inline]
            pub(crate) fn words(&self) -> [u64; 3] {
                self.0.words()
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($ty), "({:?})"), self.as_str())
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                $ty::new(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                $ty::new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                $ty::new(&s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "description": concat!("A ", $kind, " name."),
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_.:@-]{1,64}$"
                })
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a ", $kind, " name"))
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$ty, E> {
                        $ty::new(s).map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

name_type!(
    /// The name of a token (an asset), e.g. `usd`.
    Token,
    "token"
);
name_type!(
    /// The name of a balance owner, e.g. `alice`.
    Owner,
    "owner"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for s in [
            "a",
            "usd",
            "A-Z_a.z:0@9",
            &"x".repeat(22),
            &"y".repeat(23),
            &"z".repeat(64),
        ] {
            let t = Token::new(s).unwrap();
            assert_eq!(t.as_str(), s);
            assert_eq!(t.to_string(), s);
            assert_eq!(s.parse::<Owner>().unwrap().as_str(), s);
        }
    }

    #[test]
    fn invalid_names() {
        assert_eq!(Token::new(""), Err(IdError::Empty { kind: "token" }));
        assert_eq!(
            Owner::new(&"a".repeat(65)),
            Err(IdError::TooLong {
                kind: "owner",
                len: 65
            })
        );
        let err = Owner::new("bob smith").unwrap_err();
        assert_eq!(
            err.to_string(),
            "owner name \"bob smith\" contains ' '; allowed are A-Z a-z 0-9 _ . : @ -"
        );
        assert!(Token::new("é").is_err());
        assert!(Token::new("a/b").is_err());
    }

    #[test]
    fn inline_and_heap_agree() {
        let short = Token::new("abc").unwrap();
        let long = Token::new(&"abc".repeat(10)).unwrap();
        assert!(short < long);
        assert_eq!(long.clone(), long);
        assert_ne!(short, long);
        assert_eq!(
            format!("{long:?}"),
            format!("Token({:?})", "abc".repeat(10))
        );
        assert_eq!(std::mem::size_of::<Token>(), 24);
    }

    #[test]
    fn order_is_string_order() {
        let mut v: Vec<Owner> = ["b", "a", "ab", "B"]
            .iter()
            .map(|s| Owner::new(s).unwrap())
            .collect();
        v.sort();
        let s: Vec<&str> = v.iter().map(|o| o.as_str()).collect();
        assert_eq!(s, ["B", "a", "ab", "b"]);
    }

    #[test]
    fn serde_as_plain_string() {
        let t = Token::new("usd").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"usd\"");
        assert_eq!(serde_json::from_str::<Token>("\"usd\"").unwrap(), t);
        assert!(serde_json::from_str::<Token>("\"u s d\"").is_err());
        assert!(serde_json::from_str::<Token>("3").is_err());
    }
}
