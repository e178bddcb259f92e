//! The `world` binary end to end against a real DuckDB file: the verse
//! lifecycle, JSON output, exit codes for bad input (with nothing changed),
//! concurrent processes, and reading the file with DuckDB's own Python
//! package.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

struct Db {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.duckdb");
    Db { _dir: dir, path }
}

fn world(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_world"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

/// Runs and expects success; returns stdout.
fn ok(db: &Path, args: &[&str]) -> String {
    let out = world(db, args);
    assert!(
        out.status.success(),
        "world {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(db: &Path, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&ok(db, &a)).unwrap()
}

/// Runs and expects failure with `code`; returns stderr.
fn fails(db: &Path, args: &[&str], code: i32) -> String {
    let out = world(db, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "world {args:?}: {stderr}");
    assert!(stderr.contains("error"), "a message is printed: {stderr}");
    stderr
}

fn state(db: &Path) -> (Value, Value) {
    (
        json(db, &["verse", "balances"]),
        json(db, &["verse", "list"]),
    )
}

#[test]
fn whole_ledger_lifecycle() {
    let d = db();
    let p = d.path.as_path();
    assert_eq!(
        ok(p, &["verse", "create", "root", "--seed", "7"]).trim(),
        "v1"
    );
    ok(
        p,
        &[
            "verse", "deposit", "v1", "1000", "--token", "usd", "--owner", "alice",
        ],
    );
    ok(
        p,
        &[
            "verse", "deposit", "v1", "500", "--token", "usd", "--owner", "bob",
        ],
    );
    let part = json(p, &["verse", "partition", "v1"]);
    assert_eq!(part["partition"], "p1");
    assert_eq!(part["children"], serde_json::json!(["v2", "v3", "v4"]));
    assert_eq!(part["gf3_sum"], 0);
    ok(
        p,
        &[
            "verse",
            "push-down",
            "v1",
            "600",
            "--token",
            "usd",
            "--owner",
            "alice",
        ],
    );
    ok(
        p,
        &[
            "verse", "transfer", "v3", "100", "--token", "usd", "--from", "alice", "--to", "bob",
        ],
    );
    let bal = json(p, &["verse", "balances", "--verse", "v3"]);
    let amount = |owner: &str| {
        bal.as_array()
            .unwrap()
            .iter()
            .find(|r| r["owner"] == owner)
            .map(|r| r["amount"].as_u64().unwrap())
    };
    assert_eq!(amount("alice"), Some(500));
    assert_eq!(amount("bob"), Some(100));
    let r = json(
        p,
        &[
            "verse",
            "resolve",
            "p1",
            "--winner",
            "v3",
            "--nash",
            "1",
            "--optimum",
            "0.75",
        ],
    );
    assert_eq!(r["winner"], "v3");
    assert!((r["wev"]["poa"].as_f64().unwrap() - 4.0 / 3.0).abs() < 1e-9);
    assert!((r["wev"]["wev"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    // After resolution only the survivor is needed to pull up.
    ok(
        p,
        &[
            "verse", "pull-up", "p1", "500", "--token", "usd", "--owner", "alice",
        ],
    );
    let root = json(p, &["verse", "balances", "--verse", "v1"]);
    let alice_root = root
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["owner"] == "alice")
        .unwrap();
    assert_eq!(alice_root["amount"], 900);
    // Naming an evaporated verse fails clearly, with the refused exit code.
    let err = fails(
        p,
        &[
            "verse", "transfer", "v2", "1", "--token", "usd", "--from", "alice", "--to", "bob",
        ],
        3,
    );
    assert!(err.contains("evaporated"), "{err}");
    // Resolving twice is refused.
    fails(p, &["verse", "resolve", "p1", "--winner", "v3"], 3);
    // The records.
    let res = json(p, &["resolutions"]);
    assert_eq!(res[0]["winning_verse"], "v3");
    assert_eq!(res[0]["oracle_source"], "explicit");
    let ents = json(p, &["entities", "--type", "verse"]);
    let collapsed = ents
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["state"] == "collapsed")
        .count();
    assert_eq!(collapsed, 2);
    let br = json(p, &["branches"]);
    assert_eq!(br[0]["branch_type"], "push_down");
    assert_eq!(br[0]["gf3_sum"], 0);
    let metrics = json(p, &["metrics"]);
    assert!(metrics
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["operation"] == "push_down"));
    let check = json(p, &["verse", "check"]);
    assert_eq!(check["replay_matches_state"], true);
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let d = db();
    let p = d.path.as_path();
    ok(p, &["verse", "create", "root"]);
    ok(
        p,
        &[
            "verse", "deposit", "v1", "10", "--token", "usd", "--owner", "alice",
        ],
    );
    let before = state(p);
    fails(
        p,
        &[
            "verse", "deposit", "v1", "0", "--token", "usd", "--owner", "alice",
        ],
        3,
    );
    fails(
        p,
        &[
            "verse", "withdraw", "v1", "11", "--token", "usd", "--owner", "alice",
        ],
        3,
    );
    fails(
        p,
        &[
            "verse", "deposit", "v9", "1", "--token", "usd", "--owner", "alice",
        ],
        4,
    );
    fails(
        p,
        &[
            "verse", "deposit", "vx", "1", "--token", "usd", "--owner", "alice",
        ],
        3,
    );
    fails(
        p,
        &[
            "verse",
            "deposit",
            "v1",
            "1",
            "--token",
            "bad token",
            "--owner",
            "alice",
        ],
        3,
    );
    fails(
        p,
        &[
            "verse",
            "push-down",
            "v1",
            "1",
            "--token",
            "usd",
            "--owner",
            "alice",
        ],
        3,
    );
    fails(
        p,
        &[
            "verse",
            "partition",
            "v1",
            "--child",
            "a:0.5:1",
            "--child",
            "b:0.5:1",
        ],
        3,
    );
    fails(
        p,
        &[
            "verse",
            "partition",
            "v1",
            "--child",
            "a:0.5:0",
            "--child",
            "b:0.4:0",
        ],
        3,
    );
    fails(p, &["verse", "partition", "v1", "--child", "a:half:0"], 3);
    fails(p, &["verse", "resolve", "p1", "--winner", "v2"], 4);
    fails(p, &["verse", "resolve", "p1", "--oracle", "weighted"], 3);
    let out = world(p, &["verse", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
    assert_eq!(state(p), before, "nothing changed");
    // A non-conserving partition is accepted only when asked for, and recorded.
    let part = json(
        p,
        &[
            "verse",
            "partition",
            "v1",
            "--child",
            "a:0.5:1",
            "--child",
            "b:0.5:1",
            "--allow-nonconserving",
        ],
    );
    assert_eq!(part["gf3_sum"], 2);
}

#[test]
fn weighted_and_score_oracles_are_reproducible() {
    let d = db();
    let p = d.path.as_path();
    ok(p, &["verse", "create", "root", "--seed", "3"]);
    ok(p, &["verse", "partition", "v1"]);
    ok(p, &["verse", "partition", "v2"]);
    let a = json(
        p,
        &[
            "verse", "resolve", "p2", "--oracle", "score", "--score", "v5=1.5", "--score",
            "v6=0.5", "--score", "v7=2.5", "--lowest",
        ],
    );
    assert_eq!(a["winner"], "v6");
    assert_eq!(a["oracle_source"], "score:lowest");
    let w = json(
        p,
        &[
            "verse", "resolve", "p1", "--oracle", "weighted", "--seed", "11",
        ],
    );
    let expected = {
        // The same draw computed by the domain crate.
        use world_core::ids::VerseId;
        use world_core::prob::Prob;
        world_core::oracle::choose_weighted(
            &[
                (VerseId(2), Prob::new(450_000_000).unwrap()),
                (VerseId(3), Prob::new(350_000_000).unwrap()),
                (VerseId(4), Prob::new(200_000_000).unwrap()),
            ],
            11,
        )
    };
    assert_eq!(w["winner"], expected.to_string());
}

#[test]
fn concurrent_processes_share_one_database() {
    let d = db();
    let p = d.path.clone();
    ok(&p, &["verse", "create", "root"]);
    for who in ["a", "b", "c", "d"] {
        ok(
            &p,
            &[
                "verse", "deposit", "v1", "1000", "--token", "usd", "--owner", who,
            ],
        );
    }
    // Four writers and two readers at once, as a user with several
    // terminals or a script running commands in parallel would.
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || {
                let owners = ["a", "b", "c", "d"];
                for k in 0..15 {
                    if i < 4 {
                        let from = owners[i];
                        let to = owners[(i + 1 + k) % 4];
                        if from != to {
                            ok(
                                &p,
                                &[
                                    "verse", "transfer", "v1", "1", "--token", "usd", "--from",
                                    from, "--to", to,
                                ],
                            );
                        }
                    } else {
                        ok(&p, &["verse", "balances"]);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let bal = json(&p, &["verse", "balances"]);
    let total: u64 = bal
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 4000, "no transfer lost or doubled");
    let check = json(&p, &["verse", "check"]);
    assert_eq!(check["replay_matches_state"], true);
    // 5 setup rows + 4 writers x (15 - skipped self-transfers)
    assert!(check["journal_rows"].as_u64().unwrap() >= 5 + 4 * 11);
}

#[test]
fn the_file_reads_with_duckdbs_own_python_package() {
    let python = std::env::var("WORLD_PYTHON").unwrap_or_else(|_| "python3".into());
    let d = db();
    let p = d.path.as_path();
    ok(p, &["demo", "ledger"]);
    let script = format!(
        "import duckdb\n\
         c = duckdb.connect({:?}, read_only=True)\n\
         print(c.execute(\"SELECT count(*) FROM verse_resolutions WHERE wev_extracted > 0.33 AND wev_extracted < 0.34\").fetchone()[0])\n\
         print(c.execute(\"SELECT count(*) FROM world_runtime_entities WHERE entity_type = 'verse' AND state = 'collapsed'\").fetchone()[0])\n",
        p.display().to_string()
    );
    let out = Command::new(&python)
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python duckdb ({python}) could not read the file: {} (run ./scripts/install-deps.sh)",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1\n2");
}

/// The `duckdb` command-line tool (PyPI `duckdb-cli`, which the demo's
/// closing line names) reads the file too, lists included: the
/// `VARCHAR[]` columns come back as the lists `world` wrote.
#[test]
fn the_file_reads_with_the_duckdb_command_line_tool() {
    let cli = std::env::var("WORLD_VENV")
        .map(|v| format!("{v}/bin/duckdb"))
        .unwrap_or_else(|_| "duckdb".into());
    let d = db();
    let p = d.path.as_path();
    ok(p, &["demo", "ledger"]);
    let out = Command::new(&cli)
        .arg("-readonly")
        .arg("-csv")
        .arg("-noheader")
        .arg(p)
        .arg(
            "SELECT len(verses), list_sort(verses) = list_sort((SELECT children FROM partitions LIMIT 1)), \
             winning_verse IN verses FROM verse_resolutions; \
             SELECT branch_type, len(child_entity_ids) FROM world_branches ORDER BY branch_type;",
        )
        .output()
        .unwrap_or_else(|e| panic!("{cli}: {e} (run ./scripts/install-deps.sh)"));
    assert!(
        out.status.success(),
        "the duckdb CLI ({cli}) could not read the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "3,true,true\npush_down,3"
    );
}

#[test]
fn demo_reports_the_exact_pigou_values() {
    let d = db();
    let v = json(d.path.as_path(), &["demo", "ledger"]);
    assert!((v["poa"].as_f64().unwrap() - 4.0 / 3.0).abs() < 1e-9);
    assert!((v["wev"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(v["gf3_sum"], 0);
    assert_eq!(v["root_balance_after"], 1000);
}

/// Every listing command, in both formats, writing into a pipe whose
/// reader has gone (`world entities --json | head -0`): it ends quietly
/// with its usual exit code, as Unix tools do, instead of panicking on
/// "Broken pipe"; and the database is still whole afterwards.
#[test]
fn listing_commands_end_quietly_when_the_reader_goes() {
    use std::process::Stdio;
    let d = db();
    let p = d.path.as_path();
    ok(p, &["demo", "ledger"]);
    let listings: &[&[&str]] = &[
        &["entities"],
        &["branches"],
        &["resolutions"],
        &["metrics"],
        &["db"],
        &["list"],
        &["snapshots"],
        &["image", "list"],
        &["verse", "list"],
        &["verse", "balances"],
        &["verse", "journal"],
        &["verse", "check"],
        &["demo", "ledger"],
    ];
    for args in listings {
        for json_flag in [false, true] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_world"));
            cmd.arg("--db").arg(p).env("WORLD_NO_DAEMON", "1");
            if json_flag {
                cmd.arg("--json");
            }
            let mut child = cmd
                .args(*args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // The reader goes before the command writes anything.
            drop(child.stdout.take());
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
                "world {args:?} (json {json_flag}): {stderr}"
            );
            assert_eq!(
                out.status.code(),
                Some(0),
                "world {args:?} (json {json_flag}): {stderr}"
            );
        }
    }
    let check = json(p, &["verse", "check"]);
    assert_eq!(check["replay_matches_state"], true, "{check}");
}

fn newer_duckdb_file(dir: &Path) -> PathBuf {
    // The package's directory at run time (see `cgroup_v2.rs`).
    let fixture = format!(
        "{}/../world-store/tests/fixtures/duckdb-v2.0.1.db.gz",
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string())
    );
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&fixture)
        .output()
        .unwrap();
    assert!(out.status.success());
    let path = dir.join("old.duckdb");
    std::fs::write(&path, out.stdout).unwrap();
    path
}

/// `world --version` names the DuckDB library the binary runs.
#[test]
fn version_names_the_duckdb_library() {
    let d = db();
    let v = ok(&d.path, &["--version"]);
    assert!(v.starts_with("world "), "{v}");
    assert!(v.contains("(DuckDB v1."), "{v}");
}

/// `world doctor --json`: one entry per check, each bad one with what to
/// do; the exit code says whether worlds can run. A database file this
/// build's DuckDB cannot read is a failed check naming its writer.
#[test]
fn doctor_reports_each_check_and_fails_on_an_unreadable_database() {
    let d = db();
    let out = world(&d.path, &["--json", "doctor"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = v["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for want in [
        "root",
        "kernel",
        "user namespaces",
        "cgroups",
        "btrfs",
        "loop devices",
        "seccomp",
        "disk",
        "duckdb",
        "database",
        "daemon",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for c in checks {
        assert_eq!(c["status"] == "ok", c["fix"].is_null(), "{c}");
    }
    let can_run = v["worlds_can_run"].as_bool().unwrap();
    assert_eq!(can_run, checks.iter().all(|c| c["status"] != "fail"), "{v}");
    assert_eq!(out.status.code(), Some(if can_run { 0 } else { 1 }));

    let dir = tempfile::tempdir().unwrap();
    let old = newer_duckdb_file(dir.path());
    let before = std::fs::read(&old).unwrap();
    let out = world(&old, &["--json", "doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let db_check = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "database")
        .unwrap()
        .clone();
    assert_eq!(db_check["status"], "fail", "{db_check}");
    assert!(
        db_check["detail"].as_str().unwrap().contains("v2.0.1"),
        "{db_check}"
    );
    // Any other command on that file says the same, and changes nothing.
    let err = fails(&old, &["verse", "list"], 1);
    assert!(err.contains("written by DuckDB v2.0.1"), "{err}");
    assert!(err.contains("EXPORT DATABASE"), "{err}");
    assert_eq!(std::fs::read(&old).unwrap(), before);
}
