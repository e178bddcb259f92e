//! Verses over worlds through the `world` binary, as root: push_down,
//! parallel runs (one crashing, one timing out), the score oracle,
//! pull_up, nesting, the demos, and bad input.

mod common;

use common::Env;
use serde_json::Value;

fn verses_of(pd: &Value) -> Vec<(String, String, String)> {
    pd["verses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["verse"].as_str().unwrap().to_string(),
                v["name"].as_str().unwrap().to_string(),
                v["world"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn push_down_run_pull_up_over_worlds() {
    let Some(env) = Env::new() else { return };
    let id = env.json(&["create"])["id"].as_str().unwrap().to_string();
    env.ok(&[
        "run-code",
        &id,
        "x = 41; open('/work/before.txt', 'w').write('carried')",
    ]);
    let pd = env.json(&["push-down", &id]);
    assert_eq!(pd["gf3_sum"], 0);
    let verses = verses_of(&pd);
    assert_eq!(
        verses.iter().map(|v| v.1.as_str()).collect::<Vec<_>>(),
        ["nash", "optimal", "chaos"]
    );
    let parent = pd["parent"].as_str().unwrap().to_string();
    let partition = pd["partition"].as_str().unwrap().to_string();
    // The world's verse holds value; push it into the verses.
    env.ok(&[
        "verse", "deposit", &parent, "90", "--token", "usd", "--owner", "alice",
    ]);
    env.ok(&[
        "verse",
        "push-down",
        &parent,
        "90",
        "--token",
        "usd",
        "--owner",
        "alice",
    ]);

    // State is carried into every verse's world.
    for (_, _, w) in &verses {
        let v = env.json(&["run-code", w, "x + 1"]);
        assert_eq!(v["value"], "42");
        assert_eq!(
            env.ok(&["exec", w, "--", "cat", "/work/before.txt"]),
            "carried"
        );
    }
    // Parallel runs: scores, one crash, one timeout; the others are unaffected.
    let (nash, optimal, chaos) = (&verses[0], &verses[1], &verses[2]);
    let (code, stdout, _) = env.code(&[
        "--json",
        "run-verses",
        "--timeout",
        "2",
        "--verse",
        &format!("{}=print('WORLD_SCORE 2.0')", nash.0),
        "--verse",
        &format!(
            "{}=print('WORLD_SCORE {{\"social_cost\": 1.5}}')",
            optimal.0
        ),
        "--verse",
        &format!("{}=raise RuntimeError('chaos broke')", chaos.0),
    ]);
    assert_eq!(code, 1, "a failing verse makes the exit code 1");
    let runs: Value = serde_json::from_str(&stdout).unwrap();
    let by = |v: &str| {
        runs.as_array()
            .unwrap()
            .iter()
            .find(|r| r["verse"] == v)
            .unwrap()
            .clone()
    };
    assert_eq!(by(&nash.0)["run"]["score"], 2.0);
    assert_eq!(by(&optimal.0)["run"]["score"], 1.5);
    assert!(by(&chaos.0)["run"]["error"]
        .as_str()
        .unwrap()
        .contains("chaos broke"));
    let (code, stdout, _) = env.code(&[
        "--json",
        "run-verses",
        "--timeout",
        "1",
        "--verse",
        &format!("{}=import time; time.sleep(30)", chaos.0),
    ]);
    assert_eq!(code, 1);
    let runs: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(runs[0]["run"]["timed_out"], true);
    // The timed-out session is still alive.
    assert_eq!(env.json(&["run-code", &chaos.2, "x"])["value"], "41");

    // Score oracle, lowest wins: optimal.
    let up = env.json(&[
        "pull-up",
        &partition,
        "--oracle",
        "score",
        "--lowest",
        "--nash",
        "2",
        "--optimum",
        "1.5",
    ]);
    assert_eq!(up["winner"], optimal.0.as_str());
    assert_eq!(up["winner_world"], optimal.2.as_str());
    assert!((up["wev"]["poa"].as_f64().unwrap() - 4.0 / 3.0).abs() < 1e-9);
    assert_eq!(up["pulled"][0][2], 90, "alice's 90 came back up");
    // Losers' worlds are gone, the winner carries on.
    for w in [&nash.2, &chaos.2] {
        let (code, _, err) = env.code(&["inspect", w]);
        assert_eq!(code, 4, "{err}");
    }
    assert_eq!(env.json(&["run-code", &optimal.2, "x"])["value"], "41");
    // Records.
    let res = env.json(&["resolutions"]);
    assert_eq!(res[0]["winning_verse"], optimal.0.as_str());
    assert_eq!(res[0]["oracle_source"], "score:lowest");
    assert!((res[0]["wev_extracted"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-6);
    let ents = env.json(&["entities"]);
    let state = |id: &str| {
        ents.as_array()
            .unwrap()
            .iter()
            .find(|e| e["entity_id"] == id)
            .map(|e| e["state"].clone())
    };
    assert_eq!(state(&nash.2), Some(Value::from("collapsed")));
    assert_eq!(state(&nash.0), Some(Value::from("collapsed")));
    assert_eq!(state(&optimal.2), Some(Value::from("running")));
    // Resolving twice, naming an evaporated verse: refused.
    let (code, _, err) = env.code(&[
        "pull-up", &partition, "--oracle", "explicit", "--winner", &optimal.0,
    ]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = env.code(&["run-verses", "--verse", &format!("{}=1", nash.0)]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("evaporated"), "{err}");

    // Nesting: the winner's world pushes down again.
    let pd2 = env.json(&[
        "push-down",
        &optimal.2,
        "--child",
        "a:0.5:1",
        "--child",
        "b:0.5:-1",
    ]);
    assert_eq!(pd2["verses"].as_array().unwrap().len(), 2);
    let part2 = pd2["partition"].as_str().unwrap();
    let w = env.json(&["pull-up", part2, "--oracle", "weighted", "--seed", "5"]);
    assert!(w["winner"].is_string());
    let check = env.json(&["verse", "check"]);
    assert_eq!(check["replay_matches_state"], true);
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn command_oracle_and_bad_input() {
    let Some(env) = Env::new() else { return };
    let id = env.json(&["create"])["id"].as_str().unwrap().to_string();
    let pd = env.json(&[
        "push-down",
        &id,
        "--child",
        "low:0.5:1",
        "--child",
        "high:0.5:-1",
    ]);
    let verses = verses_of(&pd);
    env.ok(&[
        "exec",
        &verses[0].2,
        "--",
        "sh",
        "-c",
        "echo 3 > /work/score",
    ]);
    env.ok(&[
        "exec",
        &verses[1].2,
        "--",
        "sh",
        "-c",
        "echo 7 > /work/score",
    ]);
    let part = pd["partition"].as_str().unwrap();
    // Bad input first: nothing changes.
    let (code, _, err) = env.code(&["pull-up", part, "--oracle", "command"]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = env.code(&["pull-up", "p999", "--oracle", "score"]);
    assert_eq!(code, 4, "{err}");
    let (code, _, err) = env.code(&["pull-up", part, "--oracle", "explicit", "--winner", "v999"]);
    assert!(code == 3 || code == 4, "{err}");
    let (code, _, err) = env.code(&["push-down", &id, "--child", "a:0.5:1", "--child", "b:0.5:1"]);
    assert_eq!(code, 3, "already partitioned / not conserving: {err}");
    let (code, _, err) = env.code(&["push-down", "no-such-world"]);
    assert_eq!(code, 4, "{err}");
    let up = env.json(&[
        "pull-up",
        part,
        "--oracle",
        "command",
        "--",
        "cat",
        "/work/score",
    ]);
    assert_eq!(
        up["winner"],
        verses[1].0.as_str(),
        "highest printed number wins"
    );
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn demo_matches_the_exact_values() {
    let Some(env) = Env::new() else { return };
    let v = env.json(&["demo"]);
    assert_eq!(v["gf3_sum"], 0);
    let poa = v["poa"].as_f64().unwrap();
    assert!((poa - 4.0 / 3.0).abs() < 0.02, "PoA {poa} ~ 4/3");
    assert!((v["wev"].as_f64().unwrap() - 1.0 / 3.0).abs() < 0.02);
    assert!((v["costs"]["chaos"].as_f64().unwrap() - 14.0 / 9.0).abs() < 0.03);
    assert_eq!(v["root_balance_after"], 1000);
    assert_eq!(
        env.json(&["list"]).as_array().unwrap().len(),
        0,
        "the demo cleans up its worlds"
    );
    let c = env.json(&["demo", "chromatic"]);
    assert_eq!(c["steps"].as_array().unwrap().len(), 9);
    assert!(c["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["gf3_running"].as_i64().is_some()));
}

/// The original design's nine `just` recipes, each a thin call of `world`.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn the_nine_just_recipes_work() {
    let Some(env) = Env::new() else { return };
    // The package's directory at run time (see `cgroup_v2.rs`).
    let justfile = format!(
        "{}/../../justfile",
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string())
    );
    let just = |args: &[&str]| -> (bool, String) {
        let o = std::process::Command::new("just")
            .arg("--justfile")
            .arg(&justfile)
            .args(args)
            .env("WORLD_BIN", env!("CARGO_BIN_EXE_world"))
            .env("WORLD_DB", env.db())
            .env("WORLD_STATE_DIR", env.dir.path().join("state"))
            .env("WORLD_RUN_DIR", env.dir.path().join("run"))
            .output()
            .expect("`just` on PATH (scripts/install-deps.sh puts it in the venv)");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (ok, out) = just(&["world-runtime-create"]);
    assert!(ok, "{out}");
    let id = out.lines().next().unwrap().trim().to_string();
    let (ok, out) = just(&["world-runtime-snapshot", &id, "--name", "pre-event"]);
    assert!(ok, "{out}");
    let (ok, out) = just(&["world-runtime-branch", "pre-event"]);
    assert!(ok, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("w-")).count(),
        3,
        "{out}"
    );
    let (ok, out) = just(&["world-runtime-push-down", &id]);
    assert!(ok, "{out}");
    assert!(
        out.contains("nash") && out.contains("optimal") && out.contains("chaos"),
        "{out}"
    );
    let part = out
        .split_whitespace()
        .map(|w| w.trim_end_matches(','))
        .find(|w| w.starts_with('p') && w[1..].chars().all(|c| c.is_ascii_digit()) && w.len() > 1)
        .expect("a partition id")
        .to_string();
    let (ok, out) = just(&[
        "world-runtime-pull-up",
        &part,
        "--oracle",
        "weighted",
        "--seed",
        "3",
    ]);
    assert!(ok, "{out}");
    for recipe in [
        "world-runtime-metrics",
        "world-runtime-entities",
        "world-runtime-branches",
        "world-runtime-resolutions",
    ] {
        let (ok, out) = just(&[recipe]);
        assert!(ok, "{recipe}: {out}");
        assert!(out.lines().count() >= 3, "{recipe} prints rows: {out}");
    }
}
