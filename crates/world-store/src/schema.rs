//! The schema and its migrations, applied when a database is opened.
//!
//! Version 1 creates the original design's four tables exactly as the seed
//! document writes them (names, columns, types, CHECK constraints, defaults
//! and comments), then the tables WorldRuntime adds beside them. Later
//! versions append to [`MIGRATIONS`]; a migration never edits the seed
//! tables.

use duckdb::Connection;

use crate::{Error, Result};

/// The seed document's four tables, verbatim.
pub const SEED_TABLES: &str = r#"
-- WorldRuntime entities
CREATE TABLE IF NOT EXISTS world_runtime_entities (
entity_id VARCHAR PRIMARY KEY,
entity_type VARCHAR NOT NULL, -- 'microvm', 'sandbox', 'verse'
parent_id VARCHAR,
snapshot_id VARCHAR,
trit INT CHECK (trit IN (-1, 0, 1)),
state VARCHAR DEFAULT 'running', -- 'running', 'snapshotted', 'collapsed'
memory_mib INT,
vcpu_count INT,
boot_time_ms FLOAT,
created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
resolved_at TIMESTAMP
);
-- Branching events
CREATE TABLE IF NOT EXISTS world_branches (
branch_id VARCHAR PRIMARY KEY,
parent_entity_id VARCHAR REFERENCES world_runtime_entities(entity_id),
child_entity_ids VARCHAR[], -- Array of child entity IDs
branch_type VARCHAR, -- 'push_down', 'fork', 'snapshot'
snapshot_time_ms FLOAT,
gf3_sum INT,
branched_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
-- Verse resolutions
CREATE TABLE IF NOT EXISTS verse_resolutions (
resolution_id VARCHAR PRIMARY KEY,
verses VARCHAR[], -- Participating verse IDs
winning_verse VARCHAR,
oracle_source VARCHAR,
wev_extracted FLOAT,
pull_up_time_ms FLOAT,
resolved_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
-- Performance metrics
CREATE TABLE IF NOT EXISTS runtime_metrics (
metric_id VARCHAR PRIMARY KEY,
entity_id VARCHAR REFERENCES world_runtime_entities(entity_id),
boot_time_ms FLOAT,
snapshot_time_ms FLOAT,
branch_time_ms FLOAT,
memory_overhead_mb FLOAT,
measured_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
"#;

/// WorldRuntime's own tables (schema version 1).
const V1_LEDGER: &str = r#"
CREATE TABLE IF NOT EXISTS verses (
    verse_id VARCHAR PRIMARY KEY,          -- 'v<n>', also the entity_id
    num UBIGINT NOT NULL UNIQUE,
    name VARCHAR NOT NULL,
    parent_verse VARCHAR,                  -- NULL for a root verse
    parent_partition VARCHAR,
    child_index INTEGER NOT NULL,
    cond_prob UBIGINT NOT NULL,            -- fixed point, scale 10^9
    trit INTEGER CHECK (trit IN (-1, 0, 1)),
    seed UBIGINT NOT NULL,
    status VARCHAR NOT NULL CHECK (status IN ('live', 'evaporated')),
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    evaporated_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS partitions (
    partition_id VARCHAR PRIMARY KEY,      -- 'p<n>', also the branch_id
    num UBIGINT NOT NULL UNIQUE,
    parent_verse VARCHAR NOT NULL,
    children VARCHAR[] NOT NULL,
    gf3_sum INTEGER NOT NULL,
    status VARCHAR NOT NULL CHECK (status IN ('open', 'resolved')),
    winner VARCHAR,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    resolved_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS balances (
    token VARCHAR NOT NULL,
    verse_id VARCHAR NOT NULL,
    owner VARCHAR NOT NULL,
    amount UBIGINT NOT NULL,
    PRIMARY KEY (token, verse_id, owner)
);
CREATE TABLE IF NOT EXISTS ledger_journal (
    seq UBIGINT PRIMARY KEY,               -- 1, 2, 3, ... in commit order
    op VARCHAR NOT NULL,                   -- 'push_down', 'pull_up', ...
    op_json VARCHAR NOT NULL,              -- the whole operation
    effect_json VARCHAR NOT NULL,          -- what it did
    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS resolution_details (
    resolution_id VARCHAR PRIMARY KEY,     -- = verse_resolutions.resolution_id
    partition_id VARCHAR NOT NULL,
    poa DOUBLE,                            -- price of anarchy, when a game was given
    wev DOUBLE,                            -- poa - 1 (= verse_resolutions.wev_extracted)
    wev_abs DOUBLE,                        -- C_nash - C_opt
    sense VARCHAR                          -- 'cost' or 'welfare'
);
CREATE TABLE IF NOT EXISTS evaporated_values (
    resolution_id VARCHAR NOT NULL,
    token VARCHAR NOT NULL,
    amount HUGEINT NOT NULL,               -- balances that became unreachable
    PRIMARY KEY (resolution_id, token)
);
CREATE TABLE IF NOT EXISTS operation_timings (
    timing_id VARCHAR PRIMARY KEY,
    operation VARCHAR NOT NULL,            -- 'partition', 'push_down', 'create', ...
    entity_id VARCHAR,
    duration_ms DOUBLE NOT NULL,
    measured_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
"#;

/// Verses over worlds (schema version 2).
const V2_VERSE_WORLDS: &str = r#"
CREATE TABLE IF NOT EXISTS verse_worlds (
    verse_id VARCHAR PRIMARY KEY,          -- a verse ...
    world_id VARCHAR NOT NULL,             -- ... and the world that runs it
    snapshot_id VARCHAR,                   -- the snapshot the world was branched from
    linked_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS verse_runs (
    run_id VARCHAR PRIMARY KEY,
    verse_id VARCHAR NOT NULL,
    world_id VARCHAR NOT NULL,
    code VARCHAR NOT NULL,
    stdout VARCHAR,
    stderr VARCHAR,
    error VARCHAR,                         -- traceback or failure, NULL when it succeeded
    timed_out BOOLEAN NOT NULL,
    duration_ms DOUBLE NOT NULL,
    score DOUBLE,                          -- from a WORLD_SCORE line, if any
    ran_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
"#;

/// The record spool's position (schema version 3): the id of the last
/// spooled batch written to the tables (see `spool`).
const V3_RECORD_SPOOL: &str = r#"
CREATE TABLE IF NOT EXISTS record_spool (
    last_id UBIGINT NOT NULL
);
INSERT INTO record_spool SELECT 0 WHERE NOT EXISTS (SELECT * FROM record_spool);
"#;

/// What users and front doors attach to worlds and snapshots (schema
/// version 4): metadata, TTL, exposed services, ... as one JSON document
/// per entity (see `meta_io`).
const V4_WORLD_META: &str = r#"
CREATE TABLE IF NOT EXISTS world_meta (
    entity_id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    doc VARCHAR NOT NULL,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
"#;

/// Ordered migrations; index + 1 is the schema version they bring the file to.
pub const MIGRATIONS: &[&str] = &[V1_LEDGER, V2_VERSE_WORLDS, V3_RECORD_SPOOL, V4_WORLD_META];

/// The schema version this build writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Creates missing tables and applies pending migrations in one transaction.
pub fn migrate(conn: &Connection) -> Result<i64> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version BIGINT NOT NULL,
            applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
        );",
    )?;
    let found: i64 = conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    if found > CURRENT_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    if found == CURRENT_VERSION {
        return Ok(found);
    }
    conn.execute_batch("BEGIN TRANSACTION")?;
    let run = || -> Result<()> {
        if found == 0 {
            conn.execute_batch(SEED_TABLES)?;
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            conn.execute_batch(sql)?;
            conn.execute(
                "INSERT INTO schema_version (version) VALUES (?)",
                [i as i64 + 1],
            )?;
        }
        Ok(())
    };
    match run() {
        Ok(()) => {
            conn.execute_batch("COMMIT")?;
            Ok(CURRENT_VERSION)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
