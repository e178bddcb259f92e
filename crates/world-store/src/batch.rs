//! Multi-row writes for one transaction.
//!
//! DuckDB spends about half a millisecond on every statement (planning and
//! index maintenance), whatever its size, and an upsert (`ON CONFLICT`)
//! several times that. A ledger commit used to issue one statement per row
//! (30–40 per push_down). [`Writes`] gathers a transaction's rows instead:
//! rows for the same table and row shape become one multi-row `INSERT`, and
//! statements that must run in order (deletes, updates) are kept in
//! sequence with them. A commit now costs a handful of statements.
//!
//! Steps run in the order they were first added; rows added later to an
//! earlier `INSERT` step join that step. Callers add deletes before the
//! inserts that may reuse their keys.

use std::borrow::Cow;

use duckdb::types::Value;
use duckdb::Connection;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Rows (or one statement) of a transaction, in order.
#[derive(Debug, Default)]
pub(crate) struct Writes {
    steps: Vec<Step>,
}

#[derive(Debug)]
enum Step {
    /// `INSERT INTO {head} VALUES {row}, {row}, ...`; `row` is a tuple with
    /// one `?` per value (and possibly SQL expressions).
    Insert {
        head: Cow<'static, str>,
        row: Cow<'static, str>,
        rows: Vec<Vec<Value>>,
    },
    /// One statement with its parameters.
    Exec { sql: String, params: Vec<Value> },
    /// Entities marked `collapsed` (resolved now), all in one step.
    Collapse(Vec<String>),
}

impl Writes {
    /// Adds a row to the insert `INSERT INTO {head} VALUES {row}`.
    pub(crate) fn insert(&mut self, head: &'static str, row: &'static str, values: Vec<Value>) {
        debug_assert_eq!(row.matches('?').count(), values.len(), "{head}");
        for s in &mut self.steps {
            if let Step::Insert {
                head: h,
                row: r,
                rows,
            } = s
            {
                if *h == head && *r == row {
                    rows.push(values);
                    return;
                }
            }
        }
        self.steps.push(Step::Insert {
            head: Cow::Borrowed(head),
            row: Cow::Borrowed(row),
            rows: vec![values],
        });
    }

    /// Adds a statement that runs after every step added before it.
    pub(crate) fn exec(&mut self, sql: impl Into<String>, params: Vec<Value>) {
        self.steps.push(Step::Exec {
            sql: sql.into(),
            params,
        });
    }

    /// Marks entities `collapsed` (with `resolved_at` now); all the ids of
    /// a transaction go in one step, at the place of the first call.
    pub(crate) fn collapse(&mut self, ids: impl IntoIterator<Item = String>) {
        for s in &mut self.steps {
            if let Step::Collapse(v) = s {
                v.extend(ids);
                return;
            }
        }
        self.steps.push(Step::Collapse(ids.into_iter().collect()));
    }

    /// Moves the inserts into the tables `heads` to a new [`Writes`].
    pub(crate) fn split_off(&mut self, heads: &[&str]) -> Writes {
        let (held, kept) = std::mem::take(&mut self.steps).into_iter().partition(
            |s| matches!(s, Step::Insert { head, .. } if heads.contains(&head.as_ref())),
        );
        self.steps = kept;
        Writes { steps: held }
    }

    /// Adds a statement that runs before every step added so far.
    pub(crate) fn exec_first(&mut self, sql: impl Into<String>, params: Vec<Value>) {
        self.steps.insert(
            0,
            Step::Exec {
                sql: sql.into(),
                params,
            },
        );
    }

    /// Sets column `col` (by position in the row) of pending rows of
    /// `head` whose column `key_col` equals `key`. Returns how many changed.
    pub(crate) fn set(
        &mut self,
        head: &'static str,
        key_col: usize,
        key: &str,
        col: usize,
        value: Value,
    ) -> usize {
        let mut n = 0;
        for s in &mut self.steps {
            if let Step::Insert { head: h, rows, .. } = s {
                if *h != head {
                    continue;
                }
                for r in rows.iter_mut() {
                    if matches!(&r[key_col], Value::Text(k) if k == key) {
                        r[col] = value.clone();
                        n += 1;
                    }
                }
            }
        }
        n
    }

    /// Runs every step on `conn` (inside the caller's transaction).
    pub(crate) fn flush(self, conn: &Connection) -> Result<()> {
        for step in self.steps {
            match step {
                Step::Insert { head, row, rows } => {
                    let (head, row) = (head.as_ref(), row.as_ref());
                    // Keep statements (and their parameter lists) bounded.
                    for chunk in rows.chunks(256) {
                        let mut sql =
                            String::with_capacity(head.len() + chunk.len() * (row.len() + 2) + 16);
                        sql.push_str("INSERT INTO ");
                        sql.push_str(head);
                        sql.push_str(" VALUES ");
                        for i in 0..chunk.len() {
                            if i > 0 {
                                sql.push_str(", ");
                            }
                            sql.push_str(row);
                        }
                        let params: Vec<&Value> = chunk.iter().flatten().collect();
                        // Cached: the same shapes recur (a push_down of
                        // three verses always writes three verse rows), and
                        // planning is most of a small statement's cost.
                        conn.prepare_cached(&sql)?
                            .execute(duckdb::params_from_iter(params))?;
                    }
                }
                Step::Collapse(ids) if ids.is_empty() => {}
                Step::Collapse(ids) => {
                    // One point update per id: DuckDB finds each row through
                    // the primary key, where an `IN (list)` scans the table.
                    let mut stmt = conn.prepare_cached(
                        "UPDATE world_runtime_entities SET state = ?, resolved_at = now()
                         WHERE entity_id = ?",
                    )?;
                    for id in ids {
                        stmt.execute(duckdb::params![
                            world_core::lifecycle::State::Collapsed.as_str(),
                            id
                        ])?;
                    }
                }
                Step::Exec { sql, params } => {
                    conn.prepare_cached(&sql)?
                        .execute(duckdb::params_from_iter(params.iter()))?;
                }
            }
        }
        Ok(())
    }
}

/// A [`Writes`] as data: what the record spool stores (see `spool`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum SpoolStep {
    /// An insert: table head, row shape, rows.
    Insert(String, String, Vec<Vec<SpoolValue>>),
    /// One statement and its parameters.
    Exec(String, Vec<SpoolValue>),
    /// Entities marked `collapsed`.
    Collapse(Vec<String>),
}

/// The parameter values a [`Writes`] uses, as data. Doubles are kept as
/// their bits, so that every value (even a non-finite one) round-trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum SpoolValue {
    /// NULL.
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// INTEGER.
    Int(i32),
    /// UINTEGER.
    UInt(u32),
    /// BIGINT.
    BigInt(i64),
    /// UBIGINT.
    UBigInt(u64),
    /// HUGEINT.
    HugeInt(i128),
    /// DOUBLE, as `f64::to_bits`.
    Double(u64),
    /// VARCHAR (lists travel as text too: see `ledger_io::text_list`).
    Text(String),
}

impl SpoolValue {
    fn from_value(v: &Value) -> Result<SpoolValue> {
        Ok(match v {
            Value::Null => SpoolValue::Null,
            Value::Boolean(b) => SpoolValue::Bool(*b),
            Value::Int(i) => SpoolValue::Int(*i),
            Value::UInt(i) => SpoolValue::UInt(*i),
            Value::BigInt(i) => SpoolValue::BigInt(*i),
            Value::UBigInt(i) => SpoolValue::UBigInt(*i),
            Value::HugeInt(i) => SpoolValue::HugeInt(*i),
            Value::Double(d) => SpoolValue::Double(d.to_bits()),
            Value::Text(s) => SpoolValue::Text(s.clone()),
            other => {
                return Err(Error::Corrupt(format!(
                    "a record value of type {:?} cannot be spooled",
                    other.data_type()
                )))
            }
        })
    }

    fn into_value(self) -> Value {
        match self {
            SpoolValue::Null => Value::Null,
            SpoolValue::Bool(b) => Value::Boolean(b),
            SpoolValue::Int(i) => Value::Int(i),
            SpoolValue::UInt(i) => Value::UInt(i),
            SpoolValue::BigInt(i) => Value::BigInt(i),
            SpoolValue::UBigInt(i) => Value::UBigInt(i),
            SpoolValue::HugeInt(i) => Value::HugeInt(i),
            SpoolValue::Double(bits) => Value::Double(f64::from_bits(bits)),
            SpoolValue::Text(s) => Value::Text(s),
        }
    }
}

impl Writes {
    /// These writes as data, for the record spool.
    pub(crate) fn to_spool(&self) -> Result<Vec<SpoolStep>> {
        let values = |vs: &[Value]| {
            vs.iter()
                .map(SpoolValue::from_value)
                .collect::<Result<Vec<_>>>()
        };
        self.steps
            .iter()
            .map(|s| {
                Ok(match s {
                    Step::Insert { head, row, rows } => SpoolStep::Insert(
                        head.to_string(),
                        row.to_string(),
                        rows.iter().map(|r| values(r)).collect::<Result<_>>()?,
                    ),
                    Step::Exec { sql, params } => SpoolStep::Exec(sql.clone(), values(params)?),
                    Step::Collapse(ids) => SpoolStep::Collapse(ids.clone()),
                })
            })
            .collect()
    }

    /// Writes read back from the record spool.
    pub(crate) fn from_spool(steps: Vec<SpoolStep>) -> Writes {
        let values = |vs: Vec<SpoolValue>| vs.into_iter().map(SpoolValue::into_value).collect();
        Writes {
            steps: steps
                .into_iter()
                .map(|s| match s {
                    SpoolStep::Insert(head, row, rows) => Step::Insert {
                        head: Cow::Owned(head),
                        row: Cow::Owned(row),
                        rows: rows.into_iter().map(values).collect(),
                    },
                    SpoolStep::Exec(sql, params) => Step::Exec {
                        sql,
                        params: values(params),
                    },
                    SpoolStep::Collapse(ids) => Step::Collapse(ids),
                })
                .collect(),
        }
    }

    /// Whether there is nothing to write.
    pub(crate) fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// A text value.
pub(crate) fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

/// A text value or NULL.
pub(crate) fn opt_text(s: Option<impl Into<String>>) -> Value {
    s.map_or(Value::Null, |s| Value::Text(s.into()))
}

/// A double or NULL.
pub(crate) fn opt_f64(v: Option<f64>) -> Value {
    v.map_or(Value::Null, Value::Double)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_one_shape_become_one_statement_in_order() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k VARCHAR PRIMARY KEY, v BIGINT)")
            .unwrap();
        conn.execute_batch("INSERT INTO t VALUES ('a', 1)").unwrap();
        let mut w = Writes::default();
        w.exec("DELETE FROM t WHERE k = ?", vec![text("a")]);
        for (k, v) in [("a", 2), ("b", 3), ("c", 4)] {
            w.insert("t (k, v)", "(?, ?)", vec![text(k), Value::BigInt(v)]);
        }
        assert_eq!(w.set("t (k, v)", 0, "c", 1, Value::BigInt(40)), 1);
        assert_eq!(w.steps.len(), 2);
        w.flush(&conn).unwrap();
        let rows: Vec<(String, i64)> = conn
            .prepare("SELECT k, v FROM t ORDER BY k")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [("a".into(), 2), ("b".into(), 3), ("c".into(), 40)]);
    }
}
