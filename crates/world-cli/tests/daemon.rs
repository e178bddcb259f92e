//! `world` routes commands through a running daemon (`world serve`) and
//! falls back to running in-process when the daemon is gone.
//!
//! The daemon runs with `--log-requests` in the test's state and run
//! directories; every routed command must appear in its request log (and
//! the worlds it creates in the daemon's own metadata file), while
//! `--no-daemon`, commands without an endpoint and everything after the
//! daemon is killed must not reach it.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::Env;
use serde_json::Value;

/// A `world serve --log-requests` over the test's directories.
struct Serve {
    child: Option<Child>,
    log: PathBuf,
}

impl Serve {
    fn start(env: &Env) -> Serve {
        Self::start_with(env, &[])
    }

    fn start_with(env: &Env, vars: &[(&str, &str)]) -> Serve {
        let log = env.dir.path().join("serve.log");
        let mut child = env
            .cmd(&["serve", "--listen", "127.0.0.1:0", "--log-requests"])
            .envs(vars.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            let l = lines
                .next()
                .expect("daemon exited before listening")
                .unwrap();
            if l.starts_with("world-serve listening on http://") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Serve {
            child: Some(child),
            log,
        }
    }

    /// The request lines logged so far, "METHOD PATH STATUS", without
    /// the health checks by which `world` finds the daemon.
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("world-serve: "))
            .filter_map(|l| l.rsplit_once(' ').map(|(req, _ms)| req.to_string()))
            .filter(|r| !r.starts_with("GET /v1/health "))
            .collect()
    }

    /// Waits (briefly: lines are written as answers leave) until `want`
    /// ("METHOD PATH STATUS") is logged.
    fn expect(&self, want: &str) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if self.requests().iter().any(|r| r == want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Everything that says why: the daemon's whole log (health checks
        // and errors included), its run directory and what is mounted there.
        let dir = self.log.parent().unwrap();
        let run = dir.join("run");
        let listing: Vec<String> = std::fs::read_dir(&run)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&*run.to_string_lossy()))
            .map(str::to_string)
            .collect();
        panic!(
            "the daemon did not log {want:?}; its log:\n{}\nrun dir {}: {listing:?}\nmounts there: {mounts:?}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            run.display()
        );
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill9();
    }
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn commands_go_through_the_daemon_and_fall_back_without_it() {
    let Some(env) = Env::new() else { return };
    let mut serve = Serve::start(&env);
    let socket = env.dir.path().join("run").join("api.sock");
    assert!(socket.exists());
    // Reachable as the commands below will find it (the reason if not).
    let (code, _, err) = env.code(&["--daemon", "list"]);
    assert_eq!(code, 0, "the daemon cannot be reached: {err}");

    // create: the daemon's log shows it served the command.
    let created = env.json(&["create", "--memory", "256"]);
    let id = created["id"].as_str().unwrap().to_string();
    assert!(created["create_ms"].as_f64().unwrap() > 0.0);
    serve.expect("POST /v1/worlds 201");

    let list = env.json(&["list"]);
    assert!(list.as_array().unwrap().iter().any(|w| w["id"] == id));
    // Same fields as in-process: no daemon-only fields leak into --json.
    assert!(list[0].get("paused").is_none(), "{list}");
    serve.expect("GET /v1/worlds 200");
    assert!(env.ok(&["inspect", &id]).contains(&id));
    serve.expect(&format!("GET /v1/worlds/{id} 200"));

    // exec streams through /exec/stream, passes exit codes.
    assert_eq!(env.ok(&["exec", &id, "--", "echo", "hello"]), "hello\n");
    serve.expect(&format!("POST /v1/worlds/{id}/exec/stream 200"));
    assert_eq!(env.code(&["exec", &id, "--", "sh", "-c", "exit 7"]).0, 7);
    let (code, out, err) = env.code(&[
        "exec",
        "--env",
        "A=b c",
        "--cwd",
        "/tmp",
        &id,
        "--",
        "sh",
        "-c",
        "echo $A; pwd; echo e >&2",
    ]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "b c\n/tmp\n", "e\n")
    );
    assert_eq!(env.code(&["exec", &id, "--", "no-such-command"]).0, 127);
    let (code, _, err) = env.code(&["exec", "--timeout", "0.5", &id, "--", "sleep", "30"]);
    assert_eq!(code, 124, "{err}");
    // Piped stdin goes with the command to /exec.
    let o = env.piped(&["exec", &id, "--", "cat"], b"through stdin");
    assert_eq!(o.stdout, b"through stdin");
    serve.expect(&format!("POST /v1/worlds/{id}/exec 200"));

    // run-code: the session persists across calls, exit codes as in-process.
    env.ok(&["run-code", &id, "x = 41"]);
    assert_eq!(env.ok(&["run-code", &id, "x + 1"]), "42\n");
    let r = env.json(&["run-code", &id, "print('out'); x"]);
    assert_eq!(
        (r["stdout"].as_str(), r["value"].as_str()),
        (Some("out\n"), Some("41"))
    );
    assert!(r.get("exit_code").is_none(), "{r}");
    assert_eq!(env.code(&["run-code", &id, "1/0"]).0, 1);
    serve.expect(&format!("POST /v1/worlds/{id}/run-code 200"));

    // Errors keep their exit codes.
    let (code, _, err) = env.code(&["inspect", "w-nosuch"]);
    assert_eq!(code, 4, "{err}");
    serve.expect("GET /v1/worlds/w-nosuch 404");
    // A create the request type refuses is refused before it is sent, with
    // the message the daemon's route would give (the same check).
    let (code, _, err) = env.code(&["create", "--memory", "1"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("mem_size_mib"), "{err}");

    // snapshot, snapshots, branch.
    let snap = env.json(&["snapshot", &id, "--name", "before"]);
    assert_eq!(snap["name"], "before");
    assert!(snap.get("snapshot_id").is_none(), "{snap}");
    serve.expect(&format!("POST /v1/worlds/{id}/snapshot 201"));
    let b = env.json(&["branch", "before", "--count", "2"]);
    let kids: Vec<String> = b["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(kids.len(), 2);
    serve.expect("POST /v1/worlds/before/branch 201");
    assert_eq!(env.ok(&["run-code", &kids[0], "x"]), "41\n");
    // The same JSON as in-process, byte for byte (one printing path),
    // but for the templates' memory: a live reading of their cgroup,
    // which the kernel's per-CPU charge batches move by a few pages
    // between two calls.
    let steady = |s: &str| -> String {
        let mut v: serde_json::Value = serde_json::from_str(s).unwrap();
        for x in v.as_array_mut().unwrap() {
            assert!(x["template_memory_bytes"].as_u64().unwrap() > 0, "{x}");
            x["template_memory_bytes"] = serde_json::Value::Null;
        }
        serde_json::to_string_pretty(&v).unwrap()
    };
    let routed = env.ok(&["--json", "snapshots"]);
    serve.expect("GET /v1/snapshots 200");
    let n = serve.requests().len();
    let local = env.ok(&["--json", "--no-daemon", "snapshots"]);
    assert_eq!(steady(&local), steady(&routed));
    let with_env = env
        .cmd(&["--json", "snapshots"])
        .env("WORLD_NO_DAEMON", "1")
        .output()
        .unwrap();
    assert_eq!(
        steady(&String::from_utf8(with_env.stdout).unwrap()),
        steady(&routed)
    );
    // A command without an endpoint runs in-process beside the daemon
    // (the daemon hands the database back when idle).
    assert!(env.ok(&["db"]).contains("schema version"));
    assert_eq!(
        serve.requests().len(),
        n,
        "in-process commands reached the daemon"
    );
    env.ok(&["snapshots", "rm", "before"]);
    serve.expect("DELETE /v1/snapshots/before 200");
    env.ok(&["destroy", &kids[1]]);
    serve.expect(&format!("DELETE /v1/worlds/{} 200", kids[1]));

    // Verses over worlds.
    let p = env.json(&["push-down", &kids[0]]);
    let partition = p["partition"].as_str().unwrap().to_string();
    serve.expect(&format!("POST /v1/worlds/{}/push-down 201", kids[0]));
    let verses: Vec<String> = p["verses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["verse"].as_str().unwrap().to_string())
        .collect();
    let runs = env.ok(&[
        "run-verses",
        "--partition",
        &partition,
        "--code",
        "print('WORLD_SCORE', x)",
    ]);
    assert_eq!(
        runs.lines().filter(|l| l.contains(" ok")).count(),
        3,
        "{runs}"
    );
    serve.expect("POST /v1/verses/run 200");
    let r = env.json(&[
        "pull-up", &partition, "--oracle", "explicit", "--winner", &verses[1],
    ]);
    assert_eq!(r["winner"], verses[1].as_str());
    serve.expect(&format!("POST /v1/partitions/{partition}/pull-up 200"));

    // Records, the same both ways.
    for (cmd, path) in [
        ("entities", "/v1/entities"),
        ("branches", "/v1/branches"),
        ("resolutions", "/v1/resolutions"),
        ("metrics", "/v1/metrics"),
    ] {
        let routed = env.ok(&["--json", cmd]);
        assert_eq!(env.ok(&["--json", "--no-daemon", cmd]), routed, "{cmd}");
        let table = env.ok(&[cmd]);
        assert_eq!(env.ok(&["--no-daemon", cmd]), table, "{cmd}");
        assert!(
            serve
                .requests()
                .iter()
                .any(|r| r.starts_with(&format!("GET {path}"))),
            "{cmd} did not reach the daemon"
        );
    }
    let res: Value = serde_json::from_str(&env.ok(&["--json", "resolutions"])).unwrap();
    assert_eq!(res[0]["winning_verse"], verses[1].as_str());

    // The daemon is killed: its socket stays behind (stale), and every
    // command runs in-process.
    serve.kill9();
    assert!(socket.exists());
    let n = serve.requests().len();
    let list = env.json(&["list"]);
    assert!(list.as_array().unwrap().iter().any(|w| w["id"] == id));
    let other = env.json(&["create", "--memory", "256"]);
    let other = other["id"].as_str().unwrap().to_string();
    assert_eq!(env.ok(&["exec", &other, "--", "echo", "alone"]), "alone\n");
    env.ok(&["destroy", &other]);
    assert_eq!(serve.requests().len(), n);
    // --daemon / WORLD_DAEMON=1 fail clearly instead.
    let (code, _, err) = env.code(&["--daemon", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("--daemon: no daemon answers"), "{err}");
    let o = env
        .cmd(&["list"])
        .env("WORLD_DAEMON", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    // Without even a socket file.
    std::fs::remove_file(&socket).unwrap();
    let (code, _, err) = env.code(&["--daemon", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("no daemon socket"), "{err}");
    assert!(env.ok(&["list"]).contains(&id));
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn daemon_of_another_database_is_not_used() {
    let Some(env) = Env::new() else { return };
    let serve = Serve::start(&env);
    // Same state and run directories (so the same socket), other database.
    let other_db = env.dir.path().join("other.duckdb");
    let other = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_world"))
            .env_remove("WORLD_NO_DAEMON")
            .env_remove("WORLD_DAEMON")
            .arg("--db")
            .arg(&other_db)
            .env("WORLD_STATE_DIR", env.dir.path().join("state"))
            .env("WORLD_RUN_DIR", env.dir.path().join("run"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = other(&["--json", "entities"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(serve.requests().is_empty(), "{:?}", serve.requests());
    let o = other(&["--daemon", "entities"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("serves"));
    // The daemon's own database goes through it.
    env.ok(&["--daemon", "entities"]);
    serve.expect("GET /v1/entities 200");
}

/// The daemon writes records behind (a record spool): a daemon killed with
/// SIGKILL before its writer ran loses none of them. Its writer is held
/// back (`WORLD_RECORD_DELAY_MS`) so that the push_down, the runs and the
/// pull_up are still only in the spool when it dies; the next `world`
/// command to open the database writes them.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn a_killed_daemon_loses_no_records() {
    let Some(env) = Env::new() else { return };
    let mut serve = Serve::start_with(&env, &[("WORLD_RECORD_DELAY_MS", "600000")]);
    let id = env.json(&["create", "--memory", "256"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.ok(&["run-code", &id, "x = 2"]);
    let p = env.json(&["push-down", &id]);
    let partition = p["partition"].as_str().unwrap().to_string();
    serve.expect(&format!("POST /v1/worlds/{id}/push-down 201"));
    // Each verse scores differently; the score oracle reads the scores
    // before any is written to the tables.
    let verses = p["verses"].as_array().unwrap();
    let mut runs = Vec::new();
    for (i, v) in verses.iter().enumerate() {
        runs.push("--verse".to_string());
        runs.push(format!(
            "{}=print('WORLD_SCORE', x * {})",
            v["verse"].as_str().unwrap(),
            i + 1
        ));
    }
    let mut args = vec!["run-verses"];
    args.extend(runs.iter().map(String::as_str));
    env.ok(&args);
    let up = env.json(&["pull-up", &partition, "--oracle", "score"]);
    let winner = verses[2]["verse"].as_str().unwrap();
    assert_eq!(up["winner"], winner, "{up}");
    let spool = std::path::PathBuf::from(format!("{}.spool", env.db().display()));
    let spooled = std::fs::read_to_string(&spool).unwrap();
    assert!(
        spooled.contains("verse_resolutions") && spooled.contains("verse_runs"),
        "the records are only in the spool: {spooled}"
    );
    serve.kill9();

    // The first command to open the database writes them, and says so.
    let db = env.json(&["--no-daemon", "db"]);
    assert!(db["replayed_batches"].as_u64().unwrap() >= 3, "{db}");
    let res = env.json(&["--no-daemon", "resolutions"]);
    assert_eq!(res[0]["winning_verse"], winner, "{res}");
    assert_eq!(res[0]["oracle_source"], "score:highest", "{res}");
    let branches = env.json(&["--no-daemon", "branches"]);
    assert!(
        branches
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["branch_id"] == partition.as_str() && b["branch_type"] == "push_down"),
        "{branches}"
    );
    let entities = env.json(&["--no-daemon", "entities", "--type", "verse"]);
    let collapsed = entities
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["state"] == "collapsed")
        .count();
    assert_eq!(collapsed, 2, "{entities}");
    assert!(!spool.exists(), "replayed, then removed");
    assert!(env.ok(&["--no-daemon", "verse", "check"]).contains("yes"));
}

/// Push-downs of several new worlds at once through the daemon: each
/// world's root verse gets its own id, so every one succeeds (they used to
/// race for the same root id and all but one were refused).
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn concurrent_push_downs_of_new_worlds_all_succeed() {
    let Some(env) = Env::new() else { return };
    let serve = Serve::start(&env);
    let worlds: Vec<String> = (0..4)
        .map(|_| {
            env.json(&["create", "--memory", "256"])["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let results: Vec<(i32, String, String)> = std::thread::scope(|s| {
        let hs: Vec<_> = worlds
            .iter()
            .map(|w| s.spawn(|| env.code(&["--json", "push-down", w])))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut parents = Vec::new();
    for (code, out, err) in &results {
        assert_eq!(*code, 0, "{err}");
        let p: Value = serde_json::from_str(out).unwrap();
        parents.push(p["parent"].as_str().unwrap().to_string());
    }
    parents.sort();
    parents.dedup();
    assert_eq!(parents.len(), 4, "one root verse per world: {parents:?}");
    assert!(
        serve
            .requests()
            .iter()
            .filter(|r| r.contains("push-down 201"))
            .count()
            == 4
    );
    assert!(env.ok(&["--no-daemon", "verse", "check"]).contains("yes"));
}
