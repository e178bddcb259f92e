//! Fixed-point probabilities: [`Prob`] holds an integer number of
//! billionths ([`PROB_SCALE`] = 10^9 means certainty).
//!
//! Parsing is exact: `"0.45"` is 450_000_000, never a rounded float. A
//! `Prob` serializes as its raw integer; it deserializes from the raw integer
//! or from a decimal string such as `"0.45"` (floats are refused, since they
//! cannot be exact).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The raw value of certainty: probabilities have nine decimal digits.
pub const PROB_SCALE: u64 = 1_000_000_000;

const FRACTION_DIGITS: usize = 9;

/// A malformed probability.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProbError {
    /// A raw value above [`PROB_SCALE`].
    #[error("probability {} is above 1", fmt_fixed(u128::from(*.0)))]
    AboveOne(u64),
    /// Text that is not a decimal in `[0, 1]` with at most nine fractional digits.
    #[error("invalid probability {input:?}: {reason}")]
    Parse {
        /// The rejected text.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A probability in `[0, 1]` as an integer number of billionths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Prob(u64);

impl Prob {
    /// Certainty.
    pub const ONE: Prob = Prob(PROB_SCALE);
    /// Impossibility.
    pub const ZERO: Prob = Prob(0);

    /// A probability of `raw` billionths; fails above [`PROB_SCALE`].
    pub fn new(raw: u64) -> Result<Prob, ProbError> {
        if raw > PROB_SCALE {
            Err(ProbError::AboveOne(raw))
        } else {
            Ok(Prob(raw))
        }
    }

    /// Parses a decimal such as `"0.45"`, `"1"`, `"1.0"` or `".5"` exactly.
    /// Rejects signs, exponents, more than nine fractional digits and values
    /// above 1.
    pub fn parse(s: &str) -> Result<Prob, ProbError> {
        let err = |reason| ProbError::Parse {
            input: s.to_owned(),
            reason,
        };
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s, None),
        };
        if int.is_empty() && frac.is_none_or(str::is_empty) {
            return Err(err("no digits"));
        }
        if !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("expected digits and at most one '.'"));
        }
        let mut raw: u128 = 0;
        for b in int.bytes() {
            raw = raw * 10 + u128::from(b - b'0');
            if raw > 1 {
                return Err(err("above 1"));
            }
        }
        raw *= u128::from(PROB_SCALE);
        if let Some(frac) = frac {
            if frac.is_empty() {
                return Err(err("no digits after '.'"));
            }
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("expected digits and at most one '.'"));
            }
            if frac.len() > FRACTION_DIGITS {
                return Err(err("more than 9 fractional digits"));
            }
            let mut f: u128 = 0;
            for b in frac.bytes() {
                f = f * 10 + u128::from(b - b'0');
            }
            raw += f * 10u128.pow((FRACTION_DIGITS - frac.len()) as u32);
        }
        if raw > u128::from(PROB_SCALE) {
            return Err(err("above 1"));
        }
        // raw <= PROB_SCALE fits in u64.
        Ok(Prob(raw as u64))
    }

    /// The raw number of billionths.
    pub fn raw(self) -> u64 {
        self.0
    }

    /// The probability as a float (for display and statistics only).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / PROB_SCALE as f64
    }

    /// The product of two probabilities, rounded down to a billionth.
    #[allow(clippy::should_implement_trait)] // also implemented as `Mul`
    pub fn mul(self, other: Prob) -> Prob {
        let p = u128::from(self.0) * u128::from(other.0) / u128::from(PROB_SCALE);
        // Both factors are <= SCALE, so the product is too.
        Prob(p as u64)
    }

    /// Whether this is exactly 0.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::Mul for Prob {
    type Output = Prob;
    fn mul(self, other: Prob) -> Prob {
        Prob::mul(self, other)
    }
}

/// Formats `raw` billionths as a decimal with trailing zeros removed
/// (`450_000_000` -> `"0.45"`, `PROB_SCALE` -> `"1"`). Works above 1 too,
/// for error messages about sums.
pub(crate) fn fmt_fixed(raw: u128) -> String {
    let scale = u128::from(PROB_SCALE);
    let int = raw / scale;
    let frac = raw % scale;
    if frac == 0 {
        return int.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{int}.{}", digits.trim_end_matches('0'))
}

impl fmt::Display for Prob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fmt_fixed(u128::from(self.0)))
    }
}

impl FromStr for Prob {
    type Err = ProbError;
    fn from_str(s: &str) -> Result<Prob, ProbError> {
        Prob::parse(s)
    }
}

impl TryFrom<u64> for Prob {
    type Error = ProbError;
    fn try_from(raw: u64) -> Result<Prob, ProbError> {
        Prob::new(raw)
    }
}

impl schemars::JsonSchema for Prob {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Prob".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A probability: integer billionths (written so), or a decimal string such as \"0.45\" (read).",
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": 1_000_000_000},
                {"type": "string"}
            ]
        })
    }
}

impl Serialize for Prob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Prob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Prob, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Prob;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a raw probability (integer billionths) or a decimal string like \"0.45\"",
                )
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Prob, E> {
                Prob::new(n).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Prob, E> {
                let n = u64::try_from(n).map_err(|_| E::custom("negative probability"))?;
                Prob::new(n).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Prob, E> {
                Prob::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(Prob::parse("0.45").unwrap().raw(), 450_000_000);
        assert_eq!(Prob::parse("0.35").unwrap().raw(), 350_000_000);
        assert_eq!(Prob::parse("0.20").unwrap().raw(), 200_000_000);
        assert_eq!(Prob::parse("1").unwrap(), Prob::ONE);
        assert_eq!(Prob::parse("1.000000000").unwrap(), Prob::ONE);
        assert_eq!(Prob::parse("0").unwrap(), Prob::ZERO);
        assert_eq!(Prob::parse(".5").unwrap().raw(), 500_000_000);
        assert_eq!(Prob::parse("0.000000001").unwrap().raw(), 1);
        assert_eq!(Prob::parse("00.1").unwrap().raw(), 100_000_000);
    }

    #[test]
    fn rejects_bad_text() {
        for bad in [
            "",
            ".",
            "1.",
            "-0.5",
            "+0.5",
            "1.0000000001",
            "0.0000000001",
            "1.5",
            "2",
            "10",
            "0.4.5",
            "0,5",
            "1e-3",
            " 0.5",
            "0.5 ",
            "abc",
            "NaN",
        ] {
            assert!(Prob::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            Prob::parse("0.1234567891").unwrap_err().to_string(),
            "invalid probability \"0.1234567891\": more than 9 fractional digits"
        );
    }

    #[test]
    fn new_bounds() {
        assert!(Prob::new(PROB_SCALE).is_ok());
        assert_eq!(
            Prob::new(PROB_SCALE + 1),
            Err(ProbError::AboveOne(PROB_SCALE + 1))
        );
        assert_eq!(
            Prob::new(1_500_000_000).unwrap_err().to_string(),
            "probability 1.5 is above 1"
        );
    }

    #[test]
    fn display_round_trips() {
        for raw in [0, 1, 10, 450_000_000, 200_000_000, 123_456_789, PROB_SCALE] {
            let p = Prob::new(raw).unwrap();
            assert_eq!(Prob::parse(&p.to_string()).unwrap(), p);
        }
        assert_eq!(Prob::new(450_000_000).unwrap().to_string(), "0.45");
        assert_eq!(Prob::ONE.to_string(), "1");
        assert_eq!(Prob::ZERO.to_string(), "0");
        assert_eq!(Prob::new(1).unwrap().to_string(), "0.000000001");
    }

    #[test]
    fn multiplication_floors() {
        let a = Prob::parse("0.45").unwrap();
        let b = Prob::parse("0.35").unwrap();
        assert_eq!(a.mul(b).raw(), 157_500_000);
        assert_eq!(a * Prob::ONE, a);
        assert_eq!(a.mul(Prob::ZERO), Prob::ZERO);
        // 1/3 * 1/3 = 0.111111110888..., floored.
        let third = Prob::new(333_333_333).unwrap();
        assert_eq!(third.mul(third).raw(), 111_111_110);
        assert!((a.as_f64() - 0.45).abs() < 1e-12);
    }

    #[test]
    fn serde_raw_or_decimal() {
        let p = Prob::parse("0.45").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "450000000");
        assert_eq!(serde_json::from_str::<Prob>("450000000").unwrap(), p);
        assert_eq!(serde_json::from_str::<Prob>("\"0.45\"").unwrap(), p);
        assert!(serde_json::from_str::<Prob>("0.45").is_err());
        assert!(serde_json::from_str::<Prob>("1000000001").is_err());
        assert!(serde_json::from_str::<Prob>("-1").is_err());
    }
}
