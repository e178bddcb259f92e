//! `world entities | branches | resolutions | metrics | db`: reading the records.
//!
//! All but `db` go through a running daemon ([`Via::Daemon`]). The store's
//! rows and the daemon's answers are the same JSON: both are printed from
//! it (`--json` as it is, tables from the fields of the row types below,
//! which mirror `world_store::records`).

use anyhow::Result;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use world_engine::{Engine, Error};

use crate::args::ListArgs;
use crate::output::{ms, opt, table, Out};
use crate::output::{out, outln};
use crate::remote::{enc, Via};

/// The rows of a record listing as JSON, from the store or the daemon,
/// and parsed for the table.
fn fetch<T: DeserializeOwned, S: serde::Serialize>(
    via: &Via,
    local: impl FnOnce(&Engine) -> world_engine::Result<S>,
    path: &str,
) -> Result<(String, T)> {
    let raw = match via {
        Via::Local(engine) => serde_json::to_string(&local(engine)?)?,
        Via::Daemon(d) => d.call("GET", path, None)?,
    };
    let parsed = serde_json::from_str(&raw)?;
    Ok((raw, parsed))
}

/// A row of `world_runtime_entities`.
#[derive(Deserialize)]
struct EntityRow {
    entity_id: String,
    entity_type: String,
    parent_id: Option<String>,
    snapshot_id: Option<String>,
    trit: Option<i32>,
    state: Option<String>,
    memory_mib: Option<i32>,
    vcpu_count: Option<i32>,
    boot_time_ms: Option<f64>,
    created_at: Option<String>,
    resolved_at: Option<String>,
}

/// A row of `world_branches`.
#[derive(Deserialize)]
struct BranchRow {
    branch_id: String,
    parent_entity_id: Option<String>,
    child_entity_ids: Vec<String>,
    branch_type: Option<String>,
    snapshot_time_ms: Option<f64>,
    gf3_sum: Option<i32>,
    branched_at: Option<String>,
}

/// A row of `verse_resolutions`.
#[derive(Deserialize)]
struct ResolutionRow {
    resolution_id: String,
    verses: Vec<String>,
    winning_verse: Option<String>,
    oracle_source: Option<String>,
    wev_extracted: Option<f64>,
    pull_up_time_ms: Option<f64>,
    resolved_at: Option<String>,
    poa: Option<f64>,
    evaporated: Option<String>,
}

/// Timing summary of one operation kind.
#[derive(Deserialize)]
struct MetricSummary {
    operation: String,
    count: i64,
    p50_ms: f64,
    p90_ms: f64,
    max_ms: f64,
}

/// `world entities`.
pub fn entities(via: &Via, out: &Out, a: ListArgs) -> Result<()> {
    let mut path = format!("/v1/entities?limit={}", a.limit);
    if let Some(t) = &a.entity_type {
        path.push_str(&format!("&type={}", enc(t)));
    }
    let (raw, rows): (_, Vec<EntityRow>) = fetch(
        via,
        |e| Ok(e.store()?.entities(a.entity_type.as_deref(), a.limit)?),
        &path,
    )?;
    out.emit_raw(&raw, || {
        let r: Vec<Vec<String>> = rows
            .iter()
            .map(|e| {
                vec![
                    e.entity_id.clone(),
                    e.entity_type.clone(),
                    opt(&e.parent_id),
                    opt(&e.snapshot_id),
                    opt(&e.trit),
                    opt(&e.state),
                    opt(&e.memory_mib),
                    opt(&e.vcpu_count),
                    ms(&e.boot_time_ms),
                    opt(&e.created_at),
                    opt(&e.resolved_at),
                ]
            })
            .collect();
        out!(
            "{}",
            table(
                &[
                    "entity",
                    "type",
                    "parent",
                    "snapshot",
                    "trit",
                    "state",
                    "mem_mib",
                    "vcpus",
                    "boot_ms",
                    "created_at",
                    "resolved_at"
                ],
                &r
            )
        );
    })
}

/// `world branches`.
pub fn branches(via: &Via, out: &Out, a: ListArgs) -> Result<()> {
    let path = format!("/v1/branches?limit={}", a.limit);
    let (raw, rows): (_, Vec<BranchRow>) =
        fetch(via, |e| Ok(e.store()?.branches(a.limit)?), &path)?;
    out.emit_raw(&raw, || {
        let r: Vec<Vec<String>> = rows
            .iter()
            .map(|b| {
                vec![
                    b.branch_id.clone(),
                    opt(&b.branch_type),
                    opt(&b.parent_entity_id),
                    b.child_entity_ids.join(","),
                    opt(&b.gf3_sum),
                    ms(&b.snapshot_time_ms),
                    opt(&b.branched_at),
                ]
            })
            .collect();
        out!(
            "{}",
            table(
                &[
                    "branch",
                    "type",
                    "parent",
                    "children",
                    "gf3_sum",
                    "snapshot_ms",
                    "branched_at"
                ],
                &r
            )
        );
    })
}

/// `world resolutions`.
pub fn resolutions(via: &Via, out: &Out, a: ListArgs) -> Result<()> {
    let path = format!("/v1/resolutions?limit={}", a.limit);
    let (raw, rows): (_, Vec<ResolutionRow>) =
        fetch(via, |e| Ok(e.store()?.resolutions(a.limit)?), &path)?;
    out.emit_raw(&raw, || {
        let r: Vec<Vec<String>> = rows
            .iter()
            .map(|x| {
                vec![
                    x.resolution_id.clone(),
                    x.verses.join(","),
                    opt(&x.winning_verse),
                    opt(&x.oracle_source),
                    x.poa.map_or("-".into(), |v| format!("{v:.6}")),
                    x.wev_extracted.map_or("-".into(), |v| format!("{v:.6}")),
                    opt(&x.evaporated),
                    ms(&x.pull_up_time_ms),
                    opt(&x.resolved_at),
                ]
            })
            .collect();
        out!(
            "{}",
            table(
                &[
                    "resolution",
                    "verses",
                    "winner",
                    "oracle",
                    "poa",
                    "wev",
                    "evaporated",
                    "pull_up_ms",
                    "resolved_at"
                ],
                &r
            )
        );
    })
}

/// `world metrics`.
pub fn metrics(via: &Via, out: &Out) -> Result<()> {
    let (raw, rows): (_, Vec<MetricSummary>) =
        fetch(via, |e| Ok(e.store()?.metric_summary()?), "/v1/metrics")?;
    out.emit_raw(&raw, || {
        let r: Vec<Vec<String>> = rows
            .iter()
            .map(|m| {
                vec![
                    m.operation.clone(),
                    m.count.to_string(),
                    format!("{:.3}", m.p50_ms),
                    format!("{:.3}", m.p90_ms),
                    format!("{:.3}", m.max_ms),
                ]
            })
            .collect();
        out!(
            "{}",
            table(&["operation", "count", "p50_ms", "p90_ms", "max_ms"], &r)
        );
    })
}

/// Queries that answer "what happened", printed by `world db`.
pub const QUERIES: &[(&str, &str)] = &[
    (
        "entities",
        "SELECT * FROM world_runtime_entities ORDER BY created_at;",
    ),
    (
        "branches",
        "SELECT * FROM world_branches ORDER BY branched_at;",
    ),
    (
        "resolutions",
        "SELECT * FROM verse_resolutions ORDER BY resolved_at;",
    ),
    (
        "ledger",
        "SELECT seq, op, op_json FROM ledger_journal ORDER BY seq;",
    ),
    (
        "live balances",
        "SELECT b.* FROM balances b JOIN verses v USING (verse_id) WHERE v.status = 'live';",
    ),
];

/// `world db`.
pub fn db_info(engine: &Engine, out: &Out) -> Result<()> {
    let store = engine.store()?;
    let version = store.schema_version().map_err(Error::from)?;
    let replayed = store.replayed_batches();
    let path = engine.db_path().display().to_string();
    out.emit(
        &json!({"path": path, "schema_version": version, "replayed_batches": replayed,
            "queries": QUERIES.iter().map(|(k, q)| json!({"what": k, "sql": q})).collect::<Vec<_>>()}),
        || {
            outln!("database: {path} (schema version {version})");
            if replayed > 0 {
                outln!(
                    "wrote {replayed} batch(es) of records that a killed world process left in {path}.spool"
                );
            }
            outln!("inspect it with DuckDB (close running world commands first):");
            outln!("  duckdb {path}");
            for (what, q) in QUERIES {
                outln!("  -- {what}\n  {q}");
            }
        },
    )
}
