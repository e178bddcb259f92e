//! `world doctor`: one line per thing worlds need on this host, with what
//! to do when it is missing.
//!
//! The substrate's checks (root, kernel, user namespaces, cgroups, btrfs,
//! loop devices, seccomp, huge pages, python3, disk) come from
//! `world_substrate::doctor`; this module adds the CLI's own: the DuckDB
//! library this binary runs, whether that library can read the database
//! file, and whether a daemon answers on its socket. Exit code 0 when
//! worlds can run (warnings allowed), 1 when a check failed.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use world_substrate::doctor::{self, Check, Status};

use crate::output::{outln, Out};

#[derive(Serialize)]
struct Report {
    worlds_can_run: bool,
    checks: Vec<Check>,
}

/// Runs every check, prints them, and returns the exit code.
pub fn run(out: &Out, db: &Path, socket: &Path) -> Result<i32> {
    let mut checks = doctor::host_checks(&crate::substrate_config());
    checks.push(duckdb_library());
    checks.push(database(db));
    checks.push(daemon(socket));
    let worlds_can_run = checks.iter().all(|c| c.status != Status::Fail);
    let report = Report {
        worlds_can_run,
        checks,
    };
    out.emit(&report, || {
        for c in &report.checks {
            let tag = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            outln!("{tag}  {:<16} {}", c.name, c.detail);
            if let Some(fix) = &c.fix {
                outln!("      {:<16} -> {fix}", "");
            }
        }
        if worlds_can_run {
            outln!("worlds can run on this host");
        } else {
            outln!("worlds cannot run on this host until the FAIL lines are fixed");
        }
    })?;
    Ok(if worlds_can_run { 0 } else { 1 })
}

/// The DuckDB library this process loaded, and from where.
fn duckdb_library() -> Check {
    match world_store::storage::library_version() {
        Ok(v) => {
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
            let from = maps
                .lines()
                .filter_map(|l| l.split_whitespace().nth(5))
                .find(|p| p.contains("libduckdb"))
                .map_or_else(
                    || "linked into the binary".to_string(),
                    |p| format!("from {p}"),
                );
            Check::ok("duckdb", format!("DuckDB {v}, {from}"))
        }
        Err(e) => Check::bad(
            "duckdb",
            Status::Fail,
            format!("the DuckDB library does not run: {e}"),
            "rebuild with ./scripts/demo.sh (it fetches the library)",
        ),
    }
}

/// Whether this build's DuckDB can read the database file.
fn database(db: &Path) -> Check {
    if !db.exists() {
        return Check::ok(
            "database",
            format!("{} (created on first use)", db.display()),
        );
    }
    let lib = world_store::storage::library_version().unwrap_or_default();
    match world_store::storage::written_by(db) {
        Some(w) if newer(&w, &lib) => Check::bad(
            "database",
            Status::Fail,
            format!("{} was written by DuckDB {w}, newer than this build's {lib}", db.display()),
            "export it with the Python duckdb package of that version (EXPORT DATABASE) and import it into a new file, or move it aside (or set WORLD_DB)",
        ),
        Some(w) => Check::ok("database", format!("{} (DuckDB {w} storage)", db.display())),
        None => Check::bad(
            "database",
            Status::Fail,
            format!("{} is not a DuckDB database", db.display()),
            "move it aside, or point WORLD_DB / --db at the right file",
        ),
    }
}

/// Whether version `a` (`v2.0.1`) is newer than `b` (`v1.5.6`), by
/// major.minor: patch releases share a storage format.
fn newer(a: &str, b: &str) -> bool {
    let mm = |v: &str| -> Option<(u32, u32)> {
        let mut it = v.trim_start_matches('v').split('.');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    matches!((mm(a), mm(b)), (Some(x), Some(y)) if x > y)
}

fn daemon(socket: &Path) -> Check {
    if !socket.exists() {
        return Check::ok(
            "daemon",
            format!(
                "none at {} (commands run in-process; `world serve` starts one)",
                socket.display()
            ),
        );
    }
    match std::os::unix::net::UnixStream::connect(socket) {
        Ok(_) => Check::ok("daemon", format!("answering at {}", socket.display())),
        Err(e) => Check::bad(
            "daemon",
            Status::Warn,
            format!("{} exists but refuses connections ({e})", socket.display()),
            "a daemon died without removing its socket: start `world serve` again, or delete the file",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_versions_compare_by_major_and_minor() {
        assert!(newer("v2.0.1", "v1.5.6"));
        assert!(newer("v1.6.0", "v1.5.6"));
        assert!(!newer("v1.5.9", "v1.5.6"));
        assert!(!newer("v1.4.0", "v1.5.6"));
        assert!(!newer("garbage", "v1.5.6"));
    }
}
