//! Checks every request shares: strings a process can receive, seconds,
//! user metadata.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::{Error, Result};

/// User metadata as stored: string keys and values (Morph's model).
pub type Metadata = BTreeMap<String, String>;

/// User metadata as sent: values may be strings, numbers, booleans or
/// `null` (dropped); the original design sends `{"trit": -1}`.
pub type MetadataIn = BTreeMap<String, Value>;

/// Most metadata entries, and longest key and value, in bytes.
pub const META_MAX: (usize, usize, usize) = (64, 256, 4096);

/// The longest timeout a request may ask for: a week (the substrate's
/// exec maximum).
pub const MAX_TIMEOUT_SECS: f64 = world_substrate::config::MAX_EXEC_TIMEOUT.as_secs_f64();

/// Refuses strings with NUL bytes (they cannot reach a process).
pub fn no_nul(s: &str, what: &str) -> Result<()> {
    if s.contains('\0') {
        return Err(Error::Invalid(format!("{what} must not contain NUL bytes")));
    }
    Ok(())
}

/// The shortest timeout a request may ask for: a millisecond (a smaller
/// positive number would round to a zero duration).
pub const MIN_TIMEOUT_SECS: f64 = 0.001;

/// A finite number of seconds from a millisecond up to a week.
pub fn seconds(t: Option<f64>, what: &str) -> Result<Option<Duration>> {
    match t {
        None => Ok(None),
        Some(t) if (MIN_TIMEOUT_SECS..=MAX_TIMEOUT_SECS).contains(&t) => {
            Ok(Some(Duration::from_secs_f64(t)))
        }
        Some(t) => Err(Error::Invalid(format!(
            "{what} {t} must be a number of seconds from 0.001 to 604800 (a week)"
        ))),
    }
}

/// Turns sent metadata into stored metadata (numbers and booleans as
/// their JSON text, `null` dropped), within [`META_MAX`].
pub fn metadata(v: Option<MetadataIn>) -> Result<Metadata> {
    let v = v.unwrap_or_default();
    if v.len() > META_MAX.0 {
        return Err(Error::Invalid(format!(
            "metadata has {} entries; at most {} are allowed",
            v.len(),
            META_MAX.0
        )));
    }
    let mut out = Metadata::new();
    for (k, val) in v {
        let s = match val {
            Value::String(s) => s,
            Value::Null => continue,
            other => other.to_string(),
        };
        if k.is_empty() || k.len() > META_MAX.1 || s.len() > META_MAX.2 {
            return Err(Error::Invalid(format!(
                "metadata key {:?}: keys must be 1-{} bytes and values at most {} bytes",
                k.chars().take(40).collect::<String>(),
                META_MAX.1,
                META_MAX.2
            )));
        }
        out.insert(k, s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn metadata_values_become_text_and_null_is_dropped() {
        let m: MetadataIn =
            serde_json::from_str(r#"{"trit": -1, "ok": true, "n": null, "s": "x"}"#).unwrap();
        let m = metadata(Some(m)).unwrap();
        assert_eq!(m.get("trit").map(String::as_str), Some("-1"));
        assert_eq!(m.get("ok").map(String::as_str), Some("true"));
        assert_eq!(m.get("s").map(String::as_str), Some("x"));
        assert!(!m.contains_key("n"));
    }

    proptest! {
        /// Any accepted timeout is at least a millisecond (never a zero
        /// duration) and at most a week; anything else is refused.
        #[test]
        fn seconds_accepts_exactly_the_range(t in proptest::num::f64::ANY) {
            match seconds(Some(t), "timeout") {
                Ok(Some(d)) => prop_assert!((MIN_TIMEOUT_SECS..=MAX_TIMEOUT_SECS).contains(&t) && d.as_millis() >= 1),
                Ok(None) => prop_assert!(false),
                Err(_) => prop_assert!(!(MIN_TIMEOUT_SECS..=MAX_TIMEOUT_SECS).contains(&t)),
            }
        }

        /// Oversized metadata is refused, never cut.
        #[test]
        fn metadata_limits_hold(n in 0usize..80, klen in 0usize..300) {
            let m: MetadataIn = (0..n).map(|i| (format!("{i:0>width$}", width = klen.max(3)), Value::from(1))).collect();
            let ok = metadata(Some(m)).is_ok();
            prop_assert_eq!(ok, n <= META_MAX.0 && (n == 0 || klen.max(3) <= META_MAX.1));
        }
    }
}
