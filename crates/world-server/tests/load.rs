//! Load test (ignored by default: the 50 clients x 5 minutes is
//! longer than CI allows). Each client loops: create a world, exec, run
//! code, branch it into one child, destroy both. Reports p50/p90 of exec
//! and branch through the API beside the daemon's in-process times
//! (exec: `duration_ms` measured around the engine call; branch:
//! `branch_ms` of the engine), the daemon's RSS over time, and checks:
//! no errors, no leaked worlds.
//!
//! `LOAD_CLIENTS=50 LOAD_SECS=300 cargo test --release -p world-server --test load -- --ignored --nocapture`

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::{json, Value};

fn env(name: &str, d: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[derive(Default)]
struct Stats {
    ops: u64,
    errors: Vec<String>,
    // (api ms, in-process ms)
    exec: Vec<(f64, f64)>,
    branch: Vec<(f64, f64)>,
    create: Vec<f64>,
    code: Vec<f64>,
    destroy: Vec<f64>,
}

#[test]
#[ignore = "long: run with LOAD_CLIENTS / LOAD_SECS"]
fn load_create_exec_code_branch_destroy() {
    let Some(d) = Daemon::start() else { return };
    let clients = env("LOAD_CLIENTS", 50);
    let secs = env("LOAD_SECS", 300);
    let stats = Arc::new(Mutex::new(Stats::default()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let d = Arc::new(d);
    let pid = d.pid();
    let rss = Arc::new(Mutex::new(vec![(0u64, rss_kb(pid))]));
    let sampler = {
        let rss = rss.clone();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            while Instant::now() < deadline {
                std::thread::sleep(Duration::from_secs(5));
                rss.lock()
                    .unwrap()
                    .push((t0.elapsed().as_secs(), rss_kb(pid)));
            }
        })
    };
    let mut handles = Vec::new();
    for c in 0..clients {
        let (d, stats) = (d.clone(), stats.clone());
        handles.push(std::thread::spawn(move || {
            let call =
                |m: &str, p: &str, b: Option<Value>, want: u16| -> Result<(Value, f64), String> {
                    let t = Instant::now();
                    let r = d.req(m, p, b.as_ref());
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    if r.status != want {
                        return Err(format!("client {c}: {m} {p}: {} {}", r.status, r.text()));
                    }
                    Ok((r.json(), ms))
                };
            while Instant::now() < deadline {
                let r = (|| -> Result<(), String> {
                    let (w, t_create) =
                        call("POST", "/v1/worlds", Some(json!({"memory_mib": 128})), 201)?;
                    let id = w["id"].as_str().unwrap().to_string();
                    let (e, t_exec) = call(
                        "POST",
                        &format!("/v1/worlds/{id}/exec"),
                        Some(json!({"argv": ["echo", "hi"]})),
                        200,
                    )?;
                    if e["stdout"] != "hi\n" {
                        return Err(format!("exec output {e}"));
                    }
                    let (cr, t_code) = call(
                        "POST",
                        &format!("/v1/worlds/{id}/run-code"),
                        Some(json!({"code": "x = 6 * 7\nx"})),
                        200,
                    )?;
                    if cr["value"] != "42" {
                        return Err(format!("run-code {cr}"));
                    }
                    let (b, t_branch) = call(
                        "POST",
                        &format!("/v1/worlds/{id}/branch"),
                        Some(json!({"count": 1, "keep_snapshot": false})),
                        201,
                    )?;
                    let kid = b["children"][0].as_str().unwrap().to_string();
                    let t = Instant::now();
                    call("DELETE", &format!("/v1/worlds/{kid}"), None, 200)?;
                    call("DELETE", &format!("/v1/worlds/{id}"), None, 200)?;
                    let t_destroy = t.elapsed().as_secs_f64() * 1000.0 / 2.0;
                    let mut s = stats.lock().unwrap();
                    s.ops += 1;
                    s.create.push(t_create);
                    s.exec
                        .push((t_exec, e["duration_ms"].as_f64().unwrap_or(f64::NAN)));
                    s.code.push(t_code);
                    s.branch
                        .push((t_branch, b["branch_ms"].as_f64().unwrap_or(f64::NAN)));
                    s.destroy.push(t_destroy);
                    Ok(())
                })();
                if let Err(e) = r {
                    stats.lock().unwrap().errors.push(e);
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    sampler.join().unwrap();
    let s = stats.lock().unwrap();
    let api = |v: &[(f64, f64)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
    let inproc = |v: &[(f64, f64)]| v.iter().map(|x| x.1).collect::<Vec<_>>();
    let (mut ea, mut ei, mut ba, mut bi) = (
        api(&s.exec),
        inproc(&s.exec),
        api(&s.branch),
        inproc(&s.branch),
    );
    println!("load: {clients} clients x {secs} s: {} cycles (create, exec, run-code, branch 1, destroy 2), {} errors", s.ops, s.errors.len());
    println!(
        "{:<10} {:>10} {:>10} {:>14} {:>14}",
        "op", "api p50", "api p90", "in-proc p50", "in-proc p90"
    );
    println!(
        "{:<10} {:>10.1} {:>10.1} {:>14.1} {:>14.1}",
        "exec",
        pct(&mut ea, 0.5),
        pct(&mut ea, 0.9),
        pct(&mut ei, 0.5),
        pct(&mut ei, 0.9)
    );
    println!(
        "{:<10} {:>10.1} {:>10.1} {:>14.1} {:>14.1}",
        "branch",
        pct(&mut ba, 0.5),
        pct(&mut ba, 0.9),
        pct(&mut bi, 0.5),
        pct(&mut bi, 0.9)
    );
    for (name, v) in [
        ("create", &mut s.create.clone()),
        ("run-code", &mut s.code.clone()),
        ("destroy", &mut s.destroy.clone()),
    ] {
        println!("{:<10} {:>10.1} {:>10.1}", name, pct(v, 0.5), pct(v, 0.9));
    }
    let rss = rss.lock().unwrap();
    println!("daemon RSS (s, kB): {:?}", *rss);
    for e in s.errors.iter().take(10) {
        println!("error: {e}");
    }
    assert!(s.errors.is_empty(), "{} errors", s.errors.len());
    assert!(s.ops > 0);
    let left = d.get("/v1/worlds").json();
    assert_eq!(left, json!([]), "leaked worlds");
    // Memory flat: the last sample within 64 MiB of the first after warm-up.
    if rss.len() > 3 {
        let warm = rss[1].1;
        let last = rss.last().unwrap().1;
        assert!(
            last < warm + 64 * 1024,
            "daemon RSS grew from {warm} kB to {last} kB"
        );
    }
}
