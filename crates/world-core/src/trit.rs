//! Balanced ternary digits ([`Trit`]) and the GF(3) conservation rule of
//! partitions: the trits of a partition's children must sum to 0 mod 3.
//!
//! A trit serializes as the integer -1, 0 or 1.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A malformed trit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TritError {
    /// An integer other than -1, 0 or 1.
    #[error("trit must be -1, 0 or 1, got {0}")]
    OutOfRange(i64),
    /// Text that is not `-1`, `0`, `1` or `+1`.
    #[error("trit must be -1, 0, 1 or +1, got {0:?}")]
    Parse(String),
}

/// A balanced ternary digit: -1, 0 or +1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "i8", try_from = "i64")]
pub enum Trit {
    /// -1 (the seed's `nash` verse).
    Minus,
    /// 0 (the seed's `optimal` verse).
    Zero,
    /// +1 (the seed's `chaos` verse).
    Plus,
}

impl Trit {
    /// All three trits, from -1 to +1.
    pub const ALL: [Trit; 3] = [Trit::Minus, Trit::Zero, Trit::Plus];

    /// The trit as -1, 0 or 1.
    pub fn value(self) -> i8 {
        match self {
            Trit::Minus => -1,
            Trit::Zero => 0,
            Trit::Plus => 1,
        }
    }
}

impl schemars::JsonSchema for Trit {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Trit".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"description": "A trit: -1, 0 or +1.", "type": "integer", "enum": [-1, 0, 1]})
    }
}

impl From<Trit> for i8 {
    fn from(t: Trit) -> i8 {
        t.value()
    }
}

impl From<Trit> for i64 {
    fn from(t: Trit) -> i64 {
        i64::from(t.value())
    }
}

impl TryFrom<i64> for Trit {
    type Error = TritError;
    fn try_from(n: i64) -> Result<Trit, TritError> {
        match n {
            -1 => Ok(Trit::Minus),
            0 => Ok(Trit::Zero),
            1 => Ok(Trit::Plus),
            other => Err(TritError::OutOfRange(other)),
        }
    }
}

impl FromStr for Trit {
    type Err = TritError;
    fn from_str(s: &str) -> Result<Trit, TritError> {
        match s {
            "-1" => Ok(Trit::Minus),
            "0" => Ok(Trit::Zero),
            "1" | "+1" => Ok(Trit::Plus),
            other => Err(TritError::Parse(other.to_owned())),
        }
    }
}

impl fmt::Display for Trit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trit::Minus => "-1",
            Trit::Zero => "0",
            Trit::Plus => "+1",
        })
    }
}

/// The raw integer sum of `trits` (what the `gf3_sum` column records).
pub fn gf3_sum(trits: impl IntoIterator<Item = Trit>) -> i64 {
    trits.into_iter().map(i64::from).sum()
}

/// `sum` mod 3 in `0..3` (`rem_euclid`, since `%` keeps the sign).
pub fn gf3_residue(sum: i64) -> u8 {
    // rem_euclid(3) is in 0..3, so the cast is exact.
    sum.rem_euclid(3) as u8
}

/// Whether `trits` sum to 0 mod 3.
pub fn conserves(trits: impl IntoIterator<Item = Trit>) -> bool {
    gf3_residue(gf3_sum(trits)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_text() {
        for (t, v, s) in [
            (Trit::Minus, -1, "-1"),
            (Trit::Zero, 0, "0"),
            (Trit::Plus, 1, "+1"),
        ] {
            assert_eq!(t.value(), v);
            assert_eq!(t.to_string(), s);
            assert_eq!(s.parse::<Trit>(), Ok(t));
            assert_eq!(Trit::try_from(i64::from(v)), Ok(t));
        }
        assert_eq!("1".parse::<Trit>(), Ok(Trit::Plus));
        assert_eq!(Trit::try_from(2), Err(TritError::OutOfRange(2)));
        assert!("2".parse::<Trit>().is_err());
        assert!("+0".parse::<Trit>().is_err());
        assert!("".parse::<Trit>().is_err());
    }

    #[test]
    fn canonical_triple_conserves() {
        let triple = [Trit::Minus, Trit::Zero, Trit::Plus];
        assert_eq!(gf3_sum(triple), 0);
        assert!(conserves(triple));
        assert!(conserves([Trit::Plus; 3]));
        assert_eq!(gf3_sum([Trit::Plus; 3]), 3);
        assert!(!conserves([Trit::Plus, Trit::Zero]));
    }

    #[test]
    fn residue_is_euclidean() {
        assert_eq!(gf3_residue(-1), 2);
        assert_eq!(gf3_residue(-3), 0);
        assert_eq!(gf3_residue(4), 1);
        assert_eq!(gf3_residue(i64::MIN), (i64::MIN).rem_euclid(3) as u8);
        assert!(!conserves([Trit::Minus]));
        assert!(conserves([Trit::Minus, Trit::Minus, Trit::Minus]));
    }

    #[test]
    fn serde_as_integer() {
        assert_eq!(serde_json::to_string(&Trit::Minus).unwrap(), "-1");
        assert_eq!(serde_json::from_str::<Trit>("1").unwrap(), Trit::Plus);
        assert!(serde_json::from_str::<Trit>("2").is_err());
    }
}
