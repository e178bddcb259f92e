//! Human tables and `--json` output.

use serde::Serialize;

/// Where and how results are printed.
pub struct Out {
    /// Print JSON instead of tables.
    pub json: bool,
}

impl Out {
    /// Prints `value` as pretty JSON when `--json`, else calls `human`.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce()) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            human();
        }
        Ok(())
    }
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
        println!("evaporated value: {v} {t}");
    }
    if let Some(w) = wev {
        println!(
            "PoA {:.6}  WEV {:.6}  WEV_abs {:.6}",
            w.poa, w.wev, w.wev_abs
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
    fn table_aligns_columns() {
        let t = super::table(&["a", "bbb"], &[vec!["long".into(), "x".into()]]);
        assert_eq!(t, "a     bbb\n----  ---\nlong  x\n");
    }
}
