//! The seed's four tables are present verbatim, and the seed's SQL works
//! unchanged against a WorldRuntime database.

use world_store::schema::SEED_TABLES;
use world_store::Store;

fn columns(store: &Store, table: &str) -> Vec<(String, String, String, Option<String>)> {
    let mut stmt = store
        .connection()
        .prepare(
            "SELECT column_name, data_type, is_nullable, column_default
             FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        )
        .unwrap();
    stmt.query_map([table], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

#[test]
fn seed_tables_have_the_seed_columns_and_types() {
    let store = Store::open_in_memory().unwrap();
    let names = |t| {
        columns(&store, t)
            .into_iter()
            .map(|(n, ty, _, _)| format!("{n} {ty}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names("world_runtime_entities"),
        [
            "entity_id VARCHAR",
            "entity_type VARCHAR",
            "parent_id VARCHAR",
            "snapshot_id VARCHAR",
            "trit INTEGER",
            "state VARCHAR",
            "memory_mib INTEGER",
            "vcpu_count INTEGER",
            "boot_time_ms FLOAT",
            "created_at TIMESTAMP",
            "resolved_at TIMESTAMP"
        ]
    );
    assert_eq!(
        names("world_branches"),
        [
            "branch_id VARCHAR",
            "parent_entity_id VARCHAR",
            "child_entity_ids VARCHAR[]",
            "branch_type VARCHAR",
            "snapshot_time_ms FLOAT",
            "gf3_sum INTEGER",
            "branched_at TIMESTAMP"
        ]
    );
    assert_eq!(
        names("verse_resolutions"),
        [
            "resolution_id VARCHAR",
            "verses VARCHAR[]",
            "winning_verse VARCHAR",
            "oracle_source VARCHAR",
            "wev_extracted FLOAT",
            "pull_up_time_ms FLOAT",
            "resolved_at TIMESTAMP"
        ]
    );
    assert_eq!(
        names("runtime_metrics"),
        [
            "metric_id VARCHAR",
            "entity_id VARCHAR",
            "boot_time_ms FLOAT",
            "snapshot_time_ms FLOAT",
            "branch_time_ms FLOAT",
            "memory_overhead_mb FLOAT",
            "measured_at TIMESTAMP"
        ]
    );
    let entity_cols = columns(&store, "world_runtime_entities");
    assert_eq!(entity_cols[1].2, "NO", "entity_type is NOT NULL");
    assert!(entity_cols[5]
        .3
        .as_deref()
        .unwrap_or("")
        .contains("running"));
}

#[test]
fn seed_sql_runs_unchanged_and_constraints_hold() {
    let store = Store::open_in_memory().unwrap();
    let c = store.connection();
    // The seed's CREATE statements are idempotent against our schema.
    c.execute_batch(SEED_TABLES).unwrap();
    c.execute_batch(
        "INSERT INTO world_runtime_entities (entity_id, entity_type, trit) VALUES ('w1', 'microvm', 1);
         INSERT INTO world_branches (branch_id, parent_entity_id, child_entity_ids, branch_type, gf3_sum)
           VALUES ('b1', 'w1', ['a', 'b', 'c'], 'push_down', 0);
         INSERT INTO verse_resolutions (resolution_id, verses, winning_verse, oracle_source, wev_extracted)
           VALUES ('r1', ['a', 'b', 'c'], 'b', 'oracle', 0.25);
         INSERT INTO runtime_metrics (metric_id, entity_id, boot_time_ms) VALUES ('m1', 'w1', 1.5);",
    )
    .unwrap();
    let state: String = c
        .query_row(
            "SELECT state FROM world_runtime_entities WHERE entity_id = 'w1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(state, "running", "DEFAULT 'running' kept");
    // CHECK (trit IN (-1, 0, 1))
    assert!(c
        .execute("INSERT INTO world_runtime_entities (entity_id, entity_type, trit) VALUES ('w2', 'verse', 2)", [])
        .is_err());
    // NOT NULL entity_type
    assert!(c
        .execute(
            "INSERT INTO world_runtime_entities (entity_id) VALUES ('w3')",
            []
        )
        .is_err());
    // REFERENCES world_runtime_entities(entity_id)
    assert!(c
        .execute(
            "INSERT INTO runtime_metrics (metric_id, entity_id) VALUES ('m2', 'nope')",
            []
        )
        .is_err());
    // Updating a referenced entity's state (what collapse does) works.
    c.execute(
        "UPDATE world_runtime_entities SET state = 'collapsed', resolved_at = CURRENT_TIMESTAMP WHERE entity_id = 'w1'",
        [],
    )
    .unwrap();
}

#[test]
fn reopening_keeps_the_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.duckdb");
    let v1 = Store::open(&path).unwrap().schema_version().unwrap();
    let v2 = Store::open(&path).unwrap().schema_version().unwrap();
    assert_eq!(v1, world_store::schema::CURRENT_VERSION);
    assert_eq!(v1, v2);
}
