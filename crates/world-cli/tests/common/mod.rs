//! Shared harness of the world tests: runs the `world` binary as root
//! against a real substrate in a temporary state directory and database,
//! and tears everything down (worlds, the loop-mounted store) afterwards.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A temporary database, state and run directory for `world` commands.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Option<Env> {
        if !is_root() {
            eprintln!("skipping: world tests need root");
            return None;
        }
        Some(Env {
            dir: tempfile::tempdir().unwrap(),
        })
    }
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("world.duckdb")
    }
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_world"));
        // Whether commands go through a daemon is the test's to decide,
        // not the caller's shell's.
        c.env_remove("WORLD_NO_DAEMON")
            .env_remove("WORLD_DAEMON")
            .arg("--db")
            .arg(self.db())
            .env("WORLD_STATE_DIR", self.dir.path().join("state"))
            .env("WORLD_RUN_DIR", self.dir.path().join("run"))
            .args(args);
        c
    }
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "world {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }
    /// Runs `world args` with `input` piped to its stdin.
    pub fn piped(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }
    pub fn code(&self, args: &[&str]) -> (i32, String, String) {
        let o = self.run(args);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into(),
            String::from_utf8_lossy(&o.stderr).into(),
        )
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Destroy what is left (snapshots keep their lineage alive), let
        // repair stop unused lineage managers, and unmount the store.
        let ids = |args: &[&str], key: &str| -> Vec<String> {
            serde_json::from_slice::<Value>(&self.run(args).stdout)
                .ok()
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|w| w[key].as_str().map(str::to_string))
                .collect()
        };
        for s in ids(&["--json", "snapshots"], "id") {
            let _ = self.run(&["snapshots", "rm", &s]);
        }
        for w in ids(&["--json", "list"], "id") {
            let _ = self.run(&["destroy", &w]);
        }
        let _ = self.run(&["repair"]);
        let cfg = world_substrate::SubstrateConfig::with_dirs(
            self.dir.path().join("state"),
            self.dir.path().join("run"),
            vec![],
        );
        let _ = world_substrate::LinuxSubstrate::new(cfg).unmount_storage();
    }
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

pub fn query(db: &Path, sql: &str) -> Vec<Vec<String>> {
    let store = world_store::Store::open(db).unwrap();
    let mut stmt = store.connection().prepare(sql).unwrap();
    let rows = stmt
        .query_map([], |r| {
            let mut v = Vec::new();
            let mut i = 0;
            while let Ok(x) = r.get::<_, Option<String>>(i) {
                v.push(x.unwrap_or_default());
                i += 1;
            }
            Ok(v)
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}
