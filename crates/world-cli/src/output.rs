//! Human tables and `--json` output, and what happens when nobody reads it.
//!
//! Everything the CLI prints to standard output goes through [`outln!`] /
//! [`out!`] (never `println!`, which panics on a closed pipe). When the
//! reader goes away (`world snapshots --json | head`), the first failed
//! write marks standard output closed and later output is dropped: the
//! command still finishes what it was doing (no world or record is left
//! half-made) and exits with its usual code, quietly, as Unix tools do.
//! Other write errors (a full disk) are reported once on standard error
//! and turn the exit code to 1.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

use serde::Serialize;

/// State of standard output: open, closed by its reader, or failed.
static STDOUT_STATE: AtomicU8 = AtomicU8::new(OPEN);
const OPEN: u8 = 0;
const CLOSED: u8 = 1;
const FAILED: u8 = 2;

/// Writes to standard output, unless its reader has gone (see the module
/// docs). Never fails and never panics.
pub fn write_out(bytes: &[u8]) {
    if STDOUT_STATE.load(Ordering::Relaxed) != OPEN {
        return;
    }
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(bytes).and_then(|_| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STDOUT_STATE.store(CLOSED, Ordering::Relaxed);
        } else {
            STDOUT_STATE.store(FAILED, Ordering::Relaxed);
            eprintln!("error: cannot write to standard output: {e}");
        }
    }
}

/// Formats and writes to standard output through [`write_out`].
pub fn write_fmt(args: std::fmt::Arguments<'_>) {
    match args.as_str() {
        Some(s) => write_out(s.as_bytes()),
        None => write_out(args.to_string().as_bytes()),
    }
}

/// Whether a write to standard output failed for a reason other than a
/// closed pipe (the exit code is then 1).
pub fn stdout_failed() -> bool {
    STDOUT_STATE.load(Ordering::Relaxed) == FAILED
}

/// `println!` for the CLI: see the module docs.
macro_rules! outln {
    () => {
        $crate::output::write_out(b"\n")
    };
    ($($arg:tt)*) => {
        $crate::output::write_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// `print!` for the CLI: see the module docs.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_fmt(format_args!($($arg)*))
    };
}
pub(crate) use out;

/// Where and how results are printed.
pub struct Out {
    /// Print JSON instead of tables.
    pub json: bool,
}

impl Out {
    /// Prints `value` as pretty JSON when `--json`, else calls `human`.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce()) -> anyhow::Result<()> {
        if self.json {
            outln!("{}", serde_json::to_string_pretty(value)?);
        } else {
            human();
        }
        Ok(())
    }
}

impl Out {
    /// Prints `raw` (compact JSON as serde_json writes it: a daemon's
    /// answer, or an in-process result through `serde_json::to_string`)
    /// pretty when `--json`, else calls `human`. The text is the same as
    /// `serde_json::to_string_pretty` of the value, field order included.
    pub fn emit_raw(&self, raw: &str, human: impl FnOnce()) -> anyhow::Result<()> {
        if self.json {
            outln!("{}", pretty(raw));
        } else {
            human();
        }
        Ok(())
    }
}

/// Re-indents compact JSON the way `serde_json::to_string_pretty` writes
/// it (two spaces, `"key": value`, `[]` and `{}` when empty), keeping the
/// order of fields and the exact text of strings and numbers.
pub fn pretty(compact: &str) -> String {
    let b = compact.as_bytes();
    let mut out = String::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                // Copy the string, escapes included.
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                out.push_str(&compact[start..i]);
                continue;
            }
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                out.push(open as char);
                if b.get(j) == Some(&close) {
                    out.push(close as char);
                    i = j + 1;
                    continue;
                }
                depth += 1;
                newline(&mut out, depth);
            }
            close @ (b'}' | b']') => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(close as char);
            }
            b',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            b':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            _ => {
                // A number or literal: copy up to the next structural byte.
                let start = i;
                while i < b.len() && !b"{}[],:\" \t\r\n".contains(&b[i]) {
                    i += 1;
                }
                out.push_str(&compact[start..i]);
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Renders rows as an aligned text table with a header.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = widths[i].saturating_sub(c.chars().count());
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(pad));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(headers.to_vec());
    out.push_str(&line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(|s| s.as_str())
            .collect(),
    ));
    for row in rows {
        out.push_str(&line(row.iter().map(|s| s.as_str()).collect()));
    }
    out
}

/// `Some(x)` as text, `None` as "-".
pub fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), |x| x.to_string())
}

/// A float with 3 decimals, or "-".
pub fn ms(v: &Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.3}"))
}

/// Comma-separated display of ids.
pub fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lines a resolution prints after its headline: evaporated value per
/// token, and PoA/WEV when a game was given.
pub fn resolution_tail(
    evaporated_value: &[(String, u128)],
    wev: Option<&world_core::wev::WevReport>,
) {
    for (t, v) in evaporated_value {
        outln!("evaporated value: {v} {t}");
    }
    if let Some(w) = wev {
        outln!(
            "PoA {:.6}  WEV {:.6}  WEV_abs {:.6}",
            w.poa,
            w.wev,
            w.wev_abs
        );
    }
}

/// A trit as "-1", "0" or "+1".
pub fn trit(t: i64) -> String {
    if t > 0 {
        format!("+{t}")
    } else {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pretty_matches_serde_json() {
        let v = serde_json::json!({
            "b": [1, -2.5e-7, {"x": [], "y": {}}, null, true],
            "a \\\"q\" {[,:]}": "tab\t nl\n é",
            "c": [[[]]],
            "d": {"e": {"f": 18446744073709551615u64}},
            "g": [],
        });
        let compact = serde_json::to_string(&v).unwrap();
        assert_eq!(
            super::pretty(&compact),
            serde_json::to_string_pretty(&v).unwrap()
        );
        for s in ["1", "\"x\"", "[]", "{}", "[1,2]"] {
            let v: serde_json::Value = serde_json::from_str(s).unwrap();
            assert_eq!(super::pretty(s), serde_json::to_string_pretty(&v).unwrap());
        }
    }

    #[test]
    fn table_aligns_columns() {
        let t = super::table(&["a", "bbb"], &[vec!["long".into(), "x".into()]]);
        assert_eq!(t, "a     bbb\n----  ---\nlong  x\n");
    }
}
