//! A database file in a storage format this build's DuckDB cannot read
//! (written by DuckDB 2.0.1, as WorldRuntime builds before the prebuilt
//! DuckDB 1.5 library did) gets a clear error naming its writer, and is
//! left exactly as it was.

use std::process::Command;

use world_store::{Error, Store};

#[test]
fn a_file_from_a_newer_duckdb_is_named_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.duckdb");
    // The package's directory as cargo gives it at run time: a test
    // binary built from another clone sharing the target directory keeps
    // that clone's path in `env!`.
    let fixture = format!(
        "{}/tests/fixtures/duckdb-v2.0.1.db.gz",
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string())
    );
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&fixture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gzip -dc {fixture}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&path, &out.stdout).unwrap();

    let err = Store::open(&path).unwrap_err();
    match &err {
        Error::StorageTooNew {
            written_by,
            library,
            ..
        } => {
            assert_eq!(written_by.as_deref(), Some("v2.0.1"));
            assert_eq!(library, &world_store::storage::library_version().unwrap());
        }
        other => panic!("expected StorageTooNew, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("DuckDB v2.0.1"), "{msg}");
    assert!(msg.contains("EXPORT DATABASE"), "{msg}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        out.stdout,
        "the file changed"
    );
    assert!(!world_store::spool_path(&path).exists());
}
