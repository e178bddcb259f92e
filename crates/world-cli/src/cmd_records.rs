//! `world entities | branches | resolutions | metrics | db`: reading the records.

use anyhow::Result;
use serde_json::json;
use world_engine::{Engine, Error};

use crate::args::ListArgs;
use crate::output::{ms, opt, table, Out};

/// `world entities`.
pub fn entities(engine: &Engine, out: &Out, a: ListArgs) -> Result<()> {
    let rows = engine
        .store()?
        .entities(a.entity_type.as_deref(), a.limit)
        .map_err(Error::from)?;
    out.emit(&rows, || {
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
        print!(
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
pub fn branches(engine: &Engine, out: &Out, a: ListArgs) -> Result<()> {
    let rows = engine.store()?.branches(a.limit).map_err(Error::from)?;
    out.emit(&rows, || {
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
        print!(
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
pub fn resolutions(engine: &Engine, out: &Out, a: ListArgs) -> Result<()> {
    let rows = engine.store()?.resolutions(a.limit).map_err(Error::from)?;
    out.emit(&rows, || {
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
        print!(
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
pub fn metrics(engine: &Engine, out: &Out) -> Result<()> {
    let rows = engine.store()?.metric_summary().map_err(Error::from)?;
    out.emit(&rows, || {
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
        print!(
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
    let path = engine.db_path().display().to_string();
    out.emit(
        &json!({"path": path, "schema_version": version,
            "queries": QUERIES.iter().map(|(k, q)| json!({"what": k, "sql": q})).collect::<Vec<_>>()}),
        || {
            println!("database: {path} (schema version {version})");
            println!("inspect it with DuckDB (close running world commands first):");
            println!("  duckdb {path}");
            for (what, q) in QUERIES {
                println!("  -- {what}\n  {q}");
            }
        },
    )
}
