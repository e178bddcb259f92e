//! Worlds through the `world` binary, as root, against a real substrate
//! (btrfs store, namespaces, cgroups) in a temporary state directory, with
//! the records checked in the DuckDB file.

mod common;

use common::{query, Env};

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn world_lifecycle_through_the_cli() {
    let Some(env) = Env::new() else { return };
    let created = env.json(&["create", "--memory", "256", "--vcpus", "1"]);
    let id = created["id"].as_str().unwrap().to_string();
    assert!(created["create_ms"].as_f64().unwrap() > 0.0);

    // exec: output, exit code, env, cwd, stdin.
    assert_eq!(env.ok(&["exec", &id, "--", "echo", "hello"]), "hello\n");
    let (code, _, _) = env.code(&["exec", &id, "--", "sh", "-c", "exit 7"]);
    assert_eq!(code, 7);
    assert_eq!(
        env.ok(&[
            "exec",
            "--env",
            "A=b c",
            "--cwd",
            "/tmp",
            &id,
            "--",
            "sh",
            "-c",
            "echo $A; pwd"
        ]),
        "b c\n/tmp\n"
    );
    let o = env.piped(&["exec", &id, "--", "cat"], b"through stdin");
    assert_eq!(o.stdout, b"through stdin");
    let (code, _, err) = env.code(&["exec", &id, "--", "no-such-command"]);
    assert_eq!(code, 127, "{err}");
    let (code, _, err) = env.code(&["exec", "--timeout", "0.5", &id, "--", "sleep", "30"]);
    assert_eq!(code, 124, "{err}");

    // cp both ways.
    let host = env.dir.path().join("files");
    std::fs::create_dir_all(host.join("sub")).unwrap();
    std::fs::write(host.join("sub/a.txt"), "payload").unwrap();
    env.ok(&[
        "cp",
        host.join("sub").to_str().unwrap(),
        &format!("{id}:/work"),
    ]);
    assert_eq!(
        env.ok(&["exec", &id, "--", "cat", "/work/sub/a.txt"]),
        "payload"
    );
    env.ok(&[
        "exec",
        &id,
        "--",
        "sh",
        "-c",
        "echo made-inside > /tmp/out.txt",
    ]);
    let back = env.dir.path().join("back");
    std::fs::create_dir_all(&back).unwrap();
    env.ok(&["cp", &format!("{id}:/tmp/out.txt"), back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(back.join("out.txt")).unwrap(),
        "made-inside\n"
    );

    // list / inspect.
    let list = env.json(&["list"]);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["id"] == id.as_str()));
    let info = env.json(&["inspect", &id]);
    assert_eq!(info["state"], "running");
    assert_eq!(info["limits"]["mem_size_mib"], 256);

    // Records: a sandbox entity with boot_time_ms and a metrics row.
    let rows = query(
        &env.db(),
        &format!("SELECT entity_type, state, CAST(memory_mib AS VARCHAR), CAST(boot_time_ms > 0 AS VARCHAR) FROM world_runtime_entities WHERE entity_id = '{id}'"),
    );
    assert_eq!(rows, vec![vec!["sandbox", "running", "256", "true"]]);
    let m = query(&env.db(), &format!("SELECT count(*)::VARCHAR FROM runtime_metrics WHERE entity_id = '{id}' AND boot_time_ms IS NOT NULL"));
    assert_eq!(m[0][0], "1");

    // Pause: the world's processes stop (a counter stops counting), exec,
    // code, snapshot and branch are refused with a clear message, the
    // state shows in inspect and in the records; resume goes on where it
    // stopped; a paused world can be destroyed.
    env.ok(&[
        "exec",
        &id,
        "--",
        "sh",
        "-c",
        "(while :; do echo x >> /tmp/ticks; sleep 0.02; done) >/dev/null 2>&1 &",
    ]);
    let ticks = || -> usize {
        env.ok(&["exec", &id, "--", "sh", "-c", "wc -l < /tmp/ticks"])
            .trim()
            .parse()
            .unwrap()
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = ticks();
    env.ok(&["pause", &id]);
    env.ok(&["pause", &id]); // already paused: nothing changes
    assert_eq!(env.json(&["inspect", &id])["state"], "paused");
    for args in [
        vec!["exec", &id, "--", "true"],
        vec!["run-code", &id, "1"],
        vec!["snapshot", &id],
        vec!["branch", &id, "--count", "1"],
    ] {
        let (code, _, err) = env.code(&args);
        assert_eq!(code, 3, "{args:?} in a paused world: {err}");
        assert!(
            err.contains("is paused; resume it first"),
            "{args:?}: {err}"
        );
    }
    let state = |id: &str| {
        query(
            &env.db(),
            &format!("SELECT state FROM world_runtime_entities WHERE entity_id = '{id}'"),
        )[0][0]
            .clone()
    };
    assert_eq!(state(&id), "paused");
    std::thread::sleep(std::time::Duration::from_millis(500));
    env.ok(&["resume", &id]);
    assert_eq!(state(&id), "running");
    // 25 ticks (and more during the refused calls) would have passed
    // while paused; a few pass around the calls.
    let resumed = ticks();
    assert!(
        resumed - before < 20,
        "a paused world's processes ran on: {before} -> {resumed}"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        ticks() > resumed + 3,
        "a resumed world's processes did not go on"
    );
    env.ok(&["pause", &id]);

    env.ok(&["destroy", &id]);
    assert_eq!(state(&id), "destroyed");
    let (code, _, err) = env.code(&["resume", &id]);
    assert_eq!(code, 4, "resume of a destroyed world: {err}");
    let (code, _, err) = env.code(&["exec", &id, "--", "true"]);
    assert_eq!(code, 4, "exec in a destroyed world: {err}");
    assert!(err.contains(&id));
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn bad_world_input_is_refused_and_creates_nothing() {
    let Some(env) = Env::new() else { return };
    let (code, _, err) = env.code(&["create", "--image", "no-such-image"]);
    assert_eq!(code, 4, "{err}");
    let (code, _, err) = env.code(&["create", "--memory", "1"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("mem"), "{err}");
    let (code, _, err) = env.code(&["create", "--vcpus", "0"]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = env.code(&["create", "--id", "Bad_Id"]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = env.code(&["inspect", "nope"]);
    assert_eq!(code, 4, "{err}");
    let (code, _, err) = env.code(&["exec", "nope", "--", "true"]);
    assert_eq!(code, 4, "{err}");
    let (code, _, err) = env.code(&["destroy", "nope"]);
    assert_eq!(code, 4, "{err}");
    let (code, _, err) = env.code(&["cp", "/nonexistent-host-path", "nope:/tmp"]);
    assert_eq!(code, 3, "{err}");
    for bad in ["0", "1025", "3,x"] {
        let (code, _, err) = env.code(&["bench", "branch", "--sizes", bad]);
        assert_eq!(code, 2, "--sizes {bad}: {err}");
        assert!(err.contains("number of children"), "{err}");
    }
    assert_eq!(
        env.json(&["list"]).as_array().unwrap().len(),
        0,
        "nothing was created"
    );
    assert_eq!(
        env.json(&["entities", "--type", "sandbox"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn pool_command_fills_shows_and_frees_a_lineage_pool() {
    let Some(env) = Env::new() else { return };
    let id = env.json(&["create"])["id"].as_str().unwrap().to_string();
    let st = env.json(&["pool", &id]);
    assert_eq!(
        (st["ready"].as_u64(), st["want"].as_u64()),
        (Some(0), Some(0))
    );
    let st = env.json(&["pool", &id, "--size", "3", "--wait"]);
    assert_eq!(
        (st["ready"].as_u64(), st["want"].as_u64()),
        (Some(3), Some(3))
    );
    // A snapshot names the same lineage (by name, too); a branch uses the
    // ready shells and asks for as many back, never fewer than kept.
    env.json(&["snapshot", &id, "--name", "pool-snap"]);
    let b = env.json(&["branch", "pool-snap", "--count", "2"]);
    let child = b["children"][0].as_str().unwrap().to_string();
    assert_eq!(
        env.ok(&["exec", &child, "--", "hostname"]),
        format!("{child}\n")
    );
    assert_eq!(env.json(&["pool", "pool-snap"])["want"].as_u64(), Some(3));
    assert!(env.ok(&["pool", &child]).contains("keeps 3"));
    let st = env.json(&["pool", &id, "--size", "0"]);
    assert_eq!(
        (
            st["ready"].as_u64(),
            st["preparing"].as_u64(),
            st["want"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
    // Bad input: a clear error, nothing changed.
    let (code, _, err) = env.code(&["pool", "nope"]);
    assert_eq!(code, 4, "{err}");
    let (code, _, err) = env.code(&["pool", &id, "--size", "1025"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = env.code(&["pool", &id, "--wait"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(env.json(&["pool", &id])["want"].as_u64(), Some(0));
}

/// The processes of this store (lineage managers, their signal guards,
/// world inits, pooled shells: all carry the store's lineage socket path
/// in their command line).
fn our_processes(env: &Env) -> Vec<String> {
    let mark = format!(
        "\"sock\":\"{}/lineages/",
        env.dir.path().join("run").display()
    );
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| {
            let c = std::fs::read(e.path().join("cmdline")).ok()?;
            let c = String::from_utf8_lossy(&c).into_owned();
            c.contains(&mark)
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

/// `kill -9` of `world create` at every moment of its work (20 points from
/// 2 to 78 ms in) and of `world branch` (10 points), then `world repair`:
/// what the killed commands left
/// running with no record (a lineage manager launched just before its
/// creator died) is found and stopped, so once the recorded worlds and
/// snapshots are gone nothing of ours runs any more.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn repair_stops_what_killed_creates_left_running() {
    let Some(env) = Env::new() else { return };
    env.ok(&["create"]); // mounts the store: later creates are fast
    for ms in (2..80).step_by(4) {
        let mut c = env.cmd(&["--no-daemon", "create"]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(ms));
        let _ = c.kill();
        let _ = c.wait();
    }
    // And of `world branch` (snapshot + 3 children) of a world with a session.
    let w = env.ok(&["create"]).trim().to_string();
    env.ok(&["run-code", &w, "x = 1"]);
    for ms in (2..80).step_by(8) {
        let mut c = env
            .cmd(&["--no-daemon", "branch", &w, "--count", "3"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(ms));
        let _ = c.kill();
        let _ = c.wait();
    }
    // Orphans must be older than a create takes before repair kills them.
    std::thread::sleep(std::time::Duration::from_secs(6));
    env.ok(&["repair"]);
    for s in env.json(&["snapshots"]).as_array().unwrap() {
        env.ok(&["snapshots", "rm", s["id"].as_str().unwrap()]);
    }
    for w in env.json(&["list"]).as_array().unwrap() {
        env.ok(&["destroy", w["id"].as_str().unwrap()]);
    }
    env.ok(&["repair"]);
    let t = std::time::Instant::now();
    let mut left = our_processes(&env);
    while !left.is_empty() && t.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = our_processes(&env);
    }
    assert!(left.is_empty(), "still running after repair: {left:?}");
}

/// A world keeps at most `WORLD_SNAPSHOTS_MAX` snapshots (each pins a
/// subvolume and templates): the next is refused (exit 3, nothing made)
/// until one is deleted; a bad value is a usage error.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn snapshots_per_world_are_bounded() {
    let Some(env) = Env::new() else { return };
    let w = env.ok(&["create"]).trim().to_string();
    let snap = |name: &str| {
        env.cmd(&["snapshot", &w, "--name", name])
            .env("WORLD_SNAPSHOTS_MAX", "2")
            .output()
            .unwrap()
    };
    assert!(snap("a").status.success());
    assert!(snap("b").status.success());
    let third = snap("c");
    assert_eq!(third.status.code(), Some(3));
    let err = String::from_utf8_lossy(&third.stderr);
    assert!(err.contains("already keeps 2 snapshots"), "{err}");
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 2);
    env.ok(&["snapshots", "rm", "a"]);
    assert!(snap("c").status.success());
    let bad = env
        .cmd(&["snapshot", &w])
        .env("WORLD_SNAPSHOTS_MAX", "0")
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn spares_are_shown_taken_and_dropped_from_the_cli() {
    let Some(env) = Env::new() else { return };
    let ready = |env: &Env| -> u64 {
        env.json(&["spares"])
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["image"] == "host")
            .map_or(0, |s| s["ready"].as_u64().unwrap())
    };
    let w = env.json(&["create"]);
    let t0 = std::time::Instant::now();
    while ready(&env) < 2 {
        assert!(t0.elapsed().as_secs() < 60, "no spares after 60 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A create takes one; its refill may run meanwhile, and the drop
    // waits for it.
    let w2 = env.json(&["create"]);
    assert!(w2["create_ms"].as_f64().unwrap() > 0.0);
    let v = env.json(&["spares", "--drop"]);
    let stopped = v["stopped"].as_u64().unwrap();
    assert!((1..=2).contains(&stopped), "{v}");
    assert_eq!(ready(&env), 0);
    let text = env.ok(&["spares"]);
    assert!(text.contains("host: 0 ready"), "{text}");
    for id in [&w["id"], &w2["id"]] {
        env.ok(&["destroy", id.as_str().unwrap()]);
    }
}
