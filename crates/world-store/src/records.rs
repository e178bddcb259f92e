//! Rows of the seed's four tables and of the timing table: writing them for
//! worlds and snapshots, and reading them back for `world entities`,
//! `world branches`, `world resolutions` and `world metrics`.

use duckdb::params;
use serde::Serialize;

use crate::batch::{opt_f64, opt_text, text, Writes};
use crate::ledger_io::{text_list, varchar_list_param};
use crate::{Error, Result, Store};
use duckdb::types::Value;
use world_core::lifecycle::State;

/// A new row of `world_runtime_entities`.
#[derive(Debug, Clone, Default)]
pub struct NewEntity {
    /// Entity id (a world id, a snapshot id, a verse id).
    pub entity_id: String,
    /// 'sandbox', 'snapshot', 'verse' (the seed also names 'microvm').
    pub entity_type: String,
    /// Parent entity.
    pub parent_id: Option<String>,
    /// Snapshot this entity started from.
    pub snapshot_id: Option<String>,
    /// GF(3) trit, for verses.
    pub trit: Option<i8>,
    /// Its lifecycle state.
    pub state: State,
    /// Memory limit in MiB.
    pub memory_mib: Option<i32>,
    /// CPU count.
    pub vcpu_count: Option<i32>,
    /// Measured create time.
    pub boot_time_ms: Option<f64>,
}

/// A row of `world_runtime_entities`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct EntityRow {
    /// Entity id.
    pub entity_id: String,
    /// Entity type.
    pub entity_type: String,
    /// Parent entity.
    pub parent_id: Option<String>,
    /// Source snapshot.
    pub snapshot_id: Option<String>,
    /// Trit.
    pub trit: Option<i32>,
    /// State.
    pub state: Option<String>,
    /// Memory limit.
    pub memory_mib: Option<i32>,
    /// CPUs.
    pub vcpu_count: Option<i32>,
    /// Create time in ms.
    pub boot_time_ms: Option<f64>,
    /// Created at (UTC).
    pub created_at: Option<String>,
    /// Resolved at (UTC).
    pub resolved_at: Option<String>,
}

/// A row of `world_branches`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BranchRow {
    /// Branch id.
    pub branch_id: String,
    /// Parent entity.
    pub parent_entity_id: Option<String>,
    /// Children.
    pub child_entity_ids: Vec<String>,
    /// 'push_down', 'fork', 'snapshot'.
    pub branch_type: Option<String>,
    /// Snapshot time in ms.
    pub snapshot_time_ms: Option<f64>,
    /// Sum of the children's trits.
    pub gf3_sum: Option<i32>,
    /// When.
    pub branched_at: Option<String>,
}

/// A row of `verse_resolutions` joined with its details.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ResolutionRow {
    /// Resolution id.
    pub resolution_id: String,
    /// Participating verses.
    pub verses: Vec<String>,
    /// The surviving verse.
    pub winning_verse: Option<String>,
    /// Which oracle decided.
    pub oracle_source: Option<String>,
    /// WEV = PoA - 1.
    pub wev_extracted: Option<f64>,
    /// Pull-up time in ms.
    pub pull_up_time_ms: Option<f64>,
    /// When.
    pub resolved_at: Option<String>,
    /// Price of anarchy.
    pub poa: Option<f64>,
    /// C_nash - C_opt.
    pub wev_abs: Option<f64>,
    /// Evaporated value per token, "token=amount" joined by commas.
    pub evaporated: Option<String>,
}

/// Timing summary of one operation kind.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MetricSummary {
    /// Operation kind.
    pub operation: String,
    /// Samples.
    pub count: i64,
    /// Median ms.
    pub p50_ms: f64,
    /// 90th percentile ms.
    pub p90_ms: f64,
    /// Max ms.
    pub max_ms: f64,
}

/// The entity insert, as a [`Writes`] step head and row.
pub(crate) const ENTITY_HEAD: &str = "world_runtime_entities \
     (entity_id, entity_type, parent_id, snapshot_id, trit, state, memory_mib, vcpu_count, boot_time_ms)";
/// One entity row's placeholders.
pub(crate) const ENTITY_ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
/// Column index of `snapshot_id` in [`ENTITY_ROW`].
pub(crate) const ENTITY_SNAPSHOT_COL: usize = 3;
/// The metrics insert, as a [`Writes`] step head and row.
pub(crate) const METRIC_HEAD: &str = "runtime_metrics \
     (metric_id, entity_id, boot_time_ms, snapshot_time_ms, branch_time_ms, memory_overhead_mb)";
/// One metrics row's placeholders (the id is generated).
pub(crate) const METRIC_ROW: &str = "(gen_random_uuid()::VARCHAR, ?, ?, ?, ?, ?)";

/// Adds an entity row to `w`.
pub(crate) fn entity_row(w: &mut Writes, e: &NewEntity) {
    w.insert(
        ENTITY_HEAD,
        ENTITY_ROW,
        vec![
            text(e.entity_id.clone()),
            text(e.entity_type.clone()),
            opt_text(e.parent_id.clone()),
            opt_text(e.snapshot_id.clone()),
            e.trit.map_or(Value::Null, |t| Value::Int(i32::from(t))),
            text(e.state.as_str().to_string()),
            e.memory_mib.map_or(Value::Null, Value::Int),
            e.vcpu_count.map_or(Value::Null, Value::Int),
            opt_f64(e.boot_time_ms),
        ],
    );
}

/// Adds a `runtime_metrics` row to `w`: boot, snapshot, branch time and
/// memory overhead.
pub(crate) fn metric_row(w: &mut Writes, entity_id: &str, v: [Option<f64>; 4]) {
    w.insert(
        METRIC_HEAD,
        METRIC_ROW,
        vec![
            text(entity_id),
            opt_f64(v[0]),
            opt_f64(v[1]),
            opt_f64(v[2]),
            opt_f64(v[3]),
        ],
    );
}

/// Adds an `operation_timings` row to `w`.
pub(crate) fn timing_row(w: &mut Writes, operation: &str, entity_id: Option<&str>, ms: f64) {
    w.insert(
        "operation_timings (timing_id, operation, entity_id, duration_ms)",
        "(gen_random_uuid()::VARCHAR, ?, ?, ?)",
        vec![text(operation), opt_text(entity_id), Value::Double(ms)],
    );
}

/// Inserts an entity row on `conn`.
fn insert_entity(conn: &duckdb::Connection, e: &NewEntity) -> Result<()> {
    let mut w = Writes::default();
    entity_row(&mut w, e);
    w.flush(conn)
}

/// Inserts a `runtime_metrics` row on `conn`.
fn insert_metric(conn: &duckdb::Connection, entity_id: &str, v: [Option<f64>; 4]) -> Result<()> {
    let mut w = Writes::default();
    metric_row(&mut w, entity_id, v);
    w.flush(conn)
}

fn strings(v: duckdb::types::Value) -> Vec<String> {
    match v {
        duckdb::types::Value::List(items) => items
            .into_iter()
            .filter_map(|i| match i {
                duckdb::types::Value::Text(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl Store {
    /// Inserts an entity row.
    pub fn insert_entity(&self, e: &NewEntity) -> Result<()> {
        self.write_direct(|conn| insert_entity(conn, e))
    }

    /// Whether an entity row exists.
    pub fn entity_exists(&self, entity_id: &str) -> Result<bool> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM world_runtime_entities WHERE entity_id = ?",
            [entity_id],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Sets an entity's state; `resolved` also stamps `resolved_at`.
    pub fn set_entity_state(&self, entity_id: &str, state: State, resolved: bool) -> Result<()> {
        let sql = if resolved {
            "UPDATE world_runtime_entities SET state = ?, resolved_at = CURRENT_TIMESTAMP WHERE entity_id = ?"
        } else {
            "UPDATE world_runtime_entities SET state = ? WHERE entity_id = ?"
        };
        let n =
            self.write_direct(|conn| Ok(conn.execute(sql, params![state.as_str(), entity_id])?))?;
        if n == 0 {
            return Err(Error::NotFound {
                kind: "entity",
                id: entity_id.to_string(),
            });
        }
        Ok(())
    }

    /// Records a branching event.
    pub fn insert_branch(
        &self,
        branch_id: &str,
        parent: &str,
        children: &[String],
        branch_type: &str,
        snapshot_time_ms: Option<f64>,
        gf3_sum: Option<i32>,
    ) -> Result<()> {
        self.write_direct(|conn| {
            conn.execute(
                concat!(
                    "INSERT INTO world_branches (branch_id, parent_entity_id, child_entity_ids, branch_type, snapshot_time_ms, gf3_sum)
                 VALUES (?, ?, ",
                    varchar_list_param!(),
                    ", ?, ?, ?)"
                ),
                params![
                    branch_id,
                    parent,
                    text_list(children.iter().cloned())?,
                    branch_type,
                    snapshot_time_ms,
                    gf3_sum
                ],
            )?;
            Ok(())
        })
    }

    /// Records a `runtime_metrics` row.
    pub fn insert_metric(
        &self,
        entity_id: &str,
        boot_time_ms: Option<f64>,
        snapshot_time_ms: Option<f64>,
        branch_time_ms: Option<f64>,
        memory_overhead_mb: Option<f64>,
    ) -> Result<()> {
        self.write_direct(|conn| {
            insert_metric(
                conn,
                entity_id,
                [
                    boot_time_ms,
                    snapshot_time_ms,
                    branch_time_ms,
                    memory_overhead_mb,
                ],
            )
        })
    }

    /// Records the duration of any operation.
    pub fn insert_timing(
        &self,
        operation: &str,
        entity_id: Option<&str>,
        duration_ms: f64,
    ) -> Result<()> {
        let mut w = Writes::default();
        timing_row(&mut w, operation, entity_id, duration_ms);
        match self.spool() {
            // Written behind, like the operation it times.
            Some(sp) => {
                let _write = self.write_lock();
                sp.append(w, 0)
            }
            None => w.flush(&self.conn),
        }
    }

    /// Entities, newest first, optionally of one type.
    pub fn entities(&self, entity_type: Option<&str>, limit: usize) -> Result<Vec<EntityRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT entity_id, entity_type, parent_id, snapshot_id, trit, state, memory_mib, vcpu_count,
                    CAST(boot_time_ms AS DOUBLE), CAST(created_at AS VARCHAR), CAST(resolved_at AS VARCHAR)
             FROM world_runtime_entities
             WHERE ?::VARCHAR IS NULL OR entity_type = ?
             ORDER BY created_at DESC, entity_id LIMIT ?",
        )?;
        let rows = stmt.query_map(params![entity_type, entity_type, limit as i64], |r| {
            Ok(EntityRow {
                entity_id: r.get(0)?,
                entity_type: r.get(1)?,
                parent_id: r.get(2)?,
                snapshot_id: r.get(3)?,
                trit: r.get(4)?,
                state: r.get(5)?,
                memory_mib: r.get(6)?,
                vcpu_count: r.get(7)?,
                boot_time_ms: r.get(8)?,
                created_at: r.get(9)?,
                resolved_at: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Branching events, newest first.
    pub fn branches(&self, limit: usize) -> Result<Vec<BranchRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT branch_id, parent_entity_id, child_entity_ids, branch_type,
                    CAST(snapshot_time_ms AS DOUBLE), gf3_sum, CAST(branched_at AS VARCHAR)
             FROM world_branches ORDER BY branched_at DESC, branch_id LIMIT ?",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(BranchRow {
                branch_id: r.get(0)?,
                parent_entity_id: r.get(1)?,
                child_entity_ids: strings(r.get(2)?),
                branch_type: r.get(3)?,
                snapshot_time_ms: r.get(4)?,
                gf3_sum: r.get(5)?,
                branched_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Resolutions with their details, newest first.
    pub fn resolutions(&self, limit: usize) -> Result<Vec<ResolutionRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT r.resolution_id, r.verses, r.winning_verse, r.oracle_source,
                    CAST(r.wev_extracted AS DOUBLE), CAST(r.pull_up_time_ms AS DOUBLE),
                    CAST(r.resolved_at AS VARCHAR), d.poa, d.wev_abs,
                    (SELECT string_agg(e.token || '=' || CAST(e.amount AS VARCHAR), ',' ORDER BY e.token)
                       FROM evaporated_values e WHERE e.resolution_id = r.resolution_id)
             FROM verse_resolutions r LEFT JOIN resolution_details d USING (resolution_id)
             ORDER BY r.resolved_at DESC, r.resolution_id LIMIT ?",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(ResolutionRow {
                resolution_id: r.get(0)?,
                verses: strings(r.get(1)?),
                winning_verse: r.get(2)?,
                oracle_source: r.get(3)?,
                wev_extracted: r.get(4)?,
                pull_up_time_ms: r.get(5)?,
                resolved_at: r.get(6)?,
                poa: r.get(7)?,
                wev_abs: r.get(8)?,
                evaporated: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Count, p50, p90 and max per operation, from `runtime_metrics` (boot,
    /// snapshot, branch) and `operation_timings` (everything else).
    pub fn metric_summary(&self) -> Result<Vec<MetricSummary>> {
        let mut stmt = self.conn.prepare(
            "WITH m AS (
                SELECT 'boot' AS operation, CAST(boot_time_ms AS DOUBLE) AS ms FROM runtime_metrics WHERE boot_time_ms IS NOT NULL
                UNION ALL SELECT 'snapshot', CAST(snapshot_time_ms AS DOUBLE) FROM runtime_metrics WHERE snapshot_time_ms IS NOT NULL
                UNION ALL SELECT 'branch', CAST(branch_time_ms AS DOUBLE) FROM runtime_metrics WHERE branch_time_ms IS NOT NULL
                UNION ALL SELECT operation, duration_ms FROM operation_timings)
             SELECT operation, count(*), quantile_cont(ms, 0.5), quantile_cont(ms, 0.9), max(ms)
             FROM m GROUP BY operation ORDER BY operation",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(MetricSummary {
                operation: r.get(0)?,
                count: r.get(1)?,
                p50_ms: r.get(2)?,
                p90_ms: r.get(3)?,
                max_ms: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}
