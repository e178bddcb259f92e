//! The daemon end to end, as root, in temporary directories: auth, the
//! core world endpoints, SSE exec, the original design's endpoints, verse
//! endpoints, records, the Unix socket, graceful shutdown and restart
//! recovery after `kill -9` under load.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{sse_events, Daemon};
use serde_json::{json, Value};

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn auth_is_required_and_nothing_is_done_without_it() {
    let Some(d) = Daemon::start() else { return };
    let mode = std::fs::metadata(d.state().join("api-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "token file mode");
    let body = br#"{"image": "host"}"#;
    for token in [None, Some("wrong"), Some("")] {
        for (m, p) in [
            ("POST", "/v1/worlds"),
            ("GET", "/v1/worlds"),
            ("POST", "/v1/sandboxes"),
            ("POST", "/api/snapshot"),
            ("GET", "/openapi.json"),
            ("GET", "/no/such/route"),
        ] {
            let r = d.raw(m, p, Some(body), token, Some("application/json"));
            assert_eq!(r.status, 401, "{m} {p} with {token:?}: {}", r.text());
            assert_eq!(r.json()["error_code"], "unauthorized");
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        }
    }
    assert_eq!(
        d.get("/v1/worlds").json(),
        json!([]),
        "no world was created"
    );
    // With the token: the OpenAPI document and JSON errors.
    let doc = d.get("/openapi.json").json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/sandboxes/{id}/execute"]["post"].is_object());
    let r = d.get("/no/such/route");
    assert_eq!(
        (r.status, r.json()["error_code"].clone()),
        (404, json!("route_not_found"))
    );
    let r = d.req("PATCH", "/v1/worlds", None);
    assert_eq!(
        (r.status, r.json()["error_code"].clone()),
        (405, json!("method_not_allowed"))
    );
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn worlds_exec_code_snapshot_branch_through_the_api() {
    let Some(d) = Daemon::start() else { return };
    let w = d.ok(
        "POST",
        "/v1/worlds",
        Some(json!({"memory_mib": 256, "metadata": {"k": "v", "n": 3}})),
        201,
    );
    let id = w["id"].as_str().unwrap().to_string();
    assert_eq!(w["state"], "running");
    assert_eq!(w["limits"]["mem_size_mib"], 256);
    assert_eq!(w["metadata"], json!({"k": "v", "n": "3"}));

    // exec: shell line, argv, env, cwd, stdin, exit code, not found, timeout.
    let e = d.ok(
        "POST",
        &format!("/v1/worlds/{id}/exec"),
        Some(json!({"command": "echo hi; echo err >&2; exit 4"})),
        200,
    );
    assert_eq!(
        (
            e["exit_code"].clone(),
            e["stdout"].clone(),
            e["stderr"].clone()
        ),
        (json!(4), json!("hi\n"), json!("err\n"))
    );
    let e = d.ok("POST", &format!("/v1/worlds/{id}/exec"), Some(json!({"argv": ["sh", "-c", "cat; echo $A; pwd"], "env": {"A": "b"}, "cwd": "/tmp", "stdin": "in\n"})), 200);
    assert_eq!(e["stdout"], "in\nb\n/tmp\n");
    let e = d.ok(
        "POST",
        &format!("/v1/worlds/{id}/exec"),
        Some(json!({"argv": ["no-such-cmd"]})),
        200,
    );
    assert_eq!(e["exit_code"], 127);
    let e = d.ok(
        "POST",
        &format!("/v1/worlds/{id}/exec"),
        Some(json!({"command": "sleep 30", "timeout": 0.5})),
        200,
    );
    assert_eq!(
        (e["exit_code"].clone(), e["timed_out"].clone()),
        (json!(124), json!(true))
    );

    // Streaming exec as server-sent events.
    let r = d.req(
        "POST",
        &format!("/v1/worlds/{id}/exec/stream"),
        Some(&json!({"command": "echo one; echo two >&2; echo three; exit 2"})),
    );
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    let ev = sse_events(&r.text());
    let cat = |kind: &str| {
        ev.iter()
            .filter(|e| e["type"] == kind)
            .map(|e| e["content"].as_str().unwrap().to_string())
            .collect::<String>()
    };
    assert_eq!(cat("stdout"), "one\nthree\n");
    assert_eq!(cat("stderr"), "two\n");
    assert_eq!(cat("exit_code"), "2");
    assert_eq!(ev.last().unwrap(), &json!("[DONE]"));

    // Code sessions, snapshot and branch carry memory.
    let c = d.ok(
        "POST",
        &format!("/v1/worlds/{id}/run-code"),
        Some(json!({"code": "x = 20\nx + 1"})),
        200,
    );
    assert_eq!(c["value"], "21");
    let c = d.ok(
        "POST",
        &format!("/v1/worlds/{id}/run-code"),
        Some(json!({"code": "1/0"})),
        200,
    );
    assert!(c["error"].as_str().unwrap().contains("ZeroDivisionError"));
    let s = d.ok(
        "POST",
        &format!("/v1/worlds/{id}/snapshot"),
        Some(json!({"name": "s1", "metadata": {"a": "b"}})),
        201,
    );
    let sid = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["snapshot_id"], sid.as_str());
    assert_eq!(
        d.ok("GET", &format!("/v1/snapshots/{sid}"), None, 200)["metadata"],
        json!({"a": "b"})
    );
    let b = d.ok(
        "POST",
        &format!("/v1/snapshots/{sid}/branch"),
        Some(json!({"count": 2})),
        201,
    );
    let kids: Vec<String> = b["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(kids.len(), 2);
    for k in &kids {
        let c = d.ok(
            "POST",
            &format!("/v1/worlds/{k}/run-code"),
            Some(json!({"code": "x"})),
            200,
        );
        assert_eq!(c["value"], "20");
        assert_eq!(
            d.ok("GET", &format!("/v1/worlds/{k}"), None, 200)["snapshot_id"],
            sid.as_str()
        );
    }
    let b = d.ok(
        "POST",
        &format!("/v1/worlds/{id}/branch"),
        Some(json!({"count": 1})),
        201,
    );
    assert!(b["branch_ms"].as_f64().unwrap() > 0.0);
    assert!(b["snapshot"].is_string());

    // Pause refuses exec with 409 world_paused; resume restores it.
    d.ok("POST", &format!("/v1/worlds/{id}/pause"), None, 200);
    let r = d.post(&format!("/v1/worlds/{id}/exec"), json!({"command": "true"}));
    assert_eq!(
        (r.status, r.json()["error_code"].clone()),
        (409, json!("world_paused"))
    );
    assert_eq!(
        d.ok("POST", &format!("/v1/worlds/{id}/resume"), None, 200)["paused"],
        false
    );
    assert_eq!(
        d.ok(
            "POST",
            &format!("/v1/worlds/{id}/exec"),
            Some(json!({"command": "echo ok"})),
            200
        )["stdout"],
        "ok\n"
    );
    let m = d.ok(
        "PUT",
        &format!("/v1/worlds/{id}/metadata"),
        Some(json!({"x": "y"})),
        200,
    );
    assert_eq!(m["metadata"], json!({"x": "y"}));

    // The Unix socket serves the same API.
    let r = d.unix("GET", &format!("/v1/worlds/{id}"), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["id"], id.as_str());
    // Only the daemon's user may connect: the socket is 0600 (bound in a
    // private directory, then moved into place) and nothing of the
    // binding is left beside it.
    let mode = std::fs::metadata(d.socket()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode");
    let left: Vec<_> = std::fs::read_dir(d.socket().parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".bind."))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Records: entities and branches of what we did.
    let ents = d.ok("GET", "/v1/entities?type=sandbox", None, 200);
    assert!(ents
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["entity_id"] == id.as_str()));
    assert!(!d
        .ok("GET", "/v1/branches", None, 200)
        .as_array()
        .unwrap()
        .is_empty());
    assert!(d
        .ok("GET", "/v1/images", None, 200)
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["name"] == "host"));

    // Errors: unknown world, bad id, bad limits, bad count.
    let r = d.get("/v1/worlds/nope");
    assert_eq!(
        (r.status, r.json()["error_code"].clone()),
        (404, json!("not_found"))
    );
    let r = d.get("/v1/worlds/Bad_Id");
    assert_eq!(
        (r.status, r.json()["error_code"].clone()),
        (400, json!("invalid_request"))
    );
    let r = d.post("/v1/worlds", json!({"memory_mib": 1}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["detail"].as_str().unwrap().contains("mem"));
    let r = d.post(&format!("/v1/worlds/{id}/branch"), json!({"count": 0}));
    assert_eq!(r.status, 400);

    for w in kids.iter().chain(std::iter::once(&id)) {
        d.ok("DELETE", &format!("/v1/worlds/{w}"), None, 200);
    }
    d.clean_api();
    assert_eq!(d.get("/v1/worlds").json(), json!([]));
    // Graceful shutdown: SIGTERM ends the daemon with success.
    let mut d = d;
    let st = d.terminate().unwrap();
    assert!(st.success(), "{st:?}");
    assert!(!d.socket().exists(), "the socket is removed");
}

/// One `http/post` of the original design's babashka client, byte for
/// byte as `babashka.http-client` (on `java.net.http`) sends it: its
/// default `accept-encoding` and `user-agent`, the h2c upgrade offer Java
/// makes on a cleartext connection, `Authorization: Bearer`, and a
/// `Content-Type` only where the design's code sets one (`create-world`).
fn babashka_post(d: &Daemon, path: &str, body: &Value, content_type: bool) -> common::Resp {
    use std::io::{Read, Write};
    let body = body.to_string();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\n\
         Content-Length: {}\r\nHost: {}\r\nHTTP2-Settings: AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA\r\n\
         Upgrade: h2c\r\nUser-Agent: babashka.http-client/0.4.22\r\n\
         accept-encoding: gzip, deflate\r\nAuthorization: Bearer {}\r\n",
        body.len(),
        d.addr,
        d.token
    );
    if content_type {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str("\r\n");
    let mut s = std::net::TcpStream::connect(&d.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(300)))
        .unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    // Read one response: headers, then Content-Length or chunked body.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed before a full response");
        raw.extend_from_slice(&buf[..n]);
        if common::full_response(&raw) {
            break;
        }
    }
    common::parse(&raw)
}

/// The original design's babashka functions, replayed as its client sends
/// them: `create-world {seed}`, `push-down` (snapshot "pre-split", then
/// three `branch-world`s with {verse, trit} metadata), `execute-in-verse`
/// in two verses, as `extract-wev` does, twice over (the second "pre-split"
/// must not collide with the first). `snapshot-world` and
/// `execute-in-verse` send no `Content-Type`.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn original_design_endpoints() {
    let Some(d) = Daemon::start() else { return };
    let post = |path: &str, body: Value, ctype: bool, status: u16| {
        let r = babashka_post(&d, path, &body, ctype);
        assert_eq!(r.status, status, "POST {path}: {}", r.text());
        r.json()
    };
    // create-world
    let w = post("/v1/sandboxes", json!({"seed": 42}), true, 201);
    let id = w["id"].as_str().unwrap().to_string();
    assert_eq!(w["metadata"]["seed"], "42");
    let r = post(
        &format!("/v1/sandboxes/{id}/execute"),
        json!({"code": "strategy = 'base'\nprint('ready')"}),
        false,
        200,
    );
    assert_eq!(r["stdout"], "ready\n");
    let mut verses = Vec::new();
    for _ in 0..2 {
        // push-down: snapshot-world reads `:snapshot_id` of the answer.
        let s = post(
            &format!("/v1/sandboxes/{id}/snapshots"),
            json!({"name": "pre-split"}),
            false,
            201,
        );
        let sid = s["snapshot_id"].as_str().unwrap().to_string();
        for (verse, trit) in [("nash", -1), ("optimal", 0), ("chaos", 1)] {
            // branch-world = create-world {snapshot_id, metadata}; reads `:id`.
            let v = post(
                "/v1/sandboxes",
                json!({"snapshot_id": sid, "metadata": {"verse": verse, "trit": trit}}),
                true,
                201,
            );
            assert_eq!(v["metadata"]["trit"], trit.to_string());
            verses.push(v["id"].as_str().unwrap().to_string());
        }
    }
    // extract-wev: execute-in-verse in the nash and optimal verses.
    let out = post(
        &format!("/v1/sandboxes/{}/execute", verses[1]),
        json!({"code": "strategy = 'cooperative'; strategy"}),
        false,
        200,
    );
    assert_eq!(out["value"], "'cooperative'");
    let out = post(
        &format!("/v1/sandboxes/{}/execute", verses[0]),
        json!({"code": "strategy"}),
        false,
        200,
    );
    assert_eq!(out["value"], "'base'");
    // A content type that is given must still be JSON; a body is required.
    let r = d.raw(
        "POST",
        &format!("/v1/sandboxes/{}/execute", verses[0]),
        Some(b"strategy"),
        Some(&d.token),
        Some("text/plain"),
    );
    assert_eq!(r.status, 415, "{}", r.text());
    let r = d.raw(
        "POST",
        &format!("/v1/sandboxes/{}/execute", verses[0]),
        Some(b""),
        Some(&d.token),
        None,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = babashka_post(
        &d,
        &format!("/v1/sandboxes/{}/execute", verses[0]),
        &json!({"cod": "1"}),
        false,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    for v in &verses {
        d.ok("DELETE", &format!("/v1/sandboxes/{v}"), None, 200);
    }
}

/// Verse endpoints: push_down, run, pull_up, resolutions, metrics, ledger.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn verse_endpoints_push_down_run_pull_up() {
    let Some(d) = Daemon::start() else { return };
    let w = d.ok("POST", "/v1/worlds", Some(json!({})), 201);
    let id = w["id"].as_str().unwrap().to_string();
    d.ok(
        "POST",
        "/v1/ledger/ops",
        Some(json!({"op": "create_root", "name": "unused-root", "seed": 1})),
        200,
    );
    let p = d.ok(
        "POST",
        &format!("/v1/worlds/{id}/push-down"),
        Some(json!({})),
        201,
    );
    assert_eq!(p["gf3_sum"], 0);
    let part = p["partition"].as_str().unwrap().to_string();
    let vs = p["verses"].as_array().unwrap();
    assert_eq!(
        vs.iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["nash", "optimal", "chaos"]
    );
    let code = "import os\nprint('WORLD_SCORE', {'nash': 1, 'optimal': 3, 'chaos': 2}[os.environ.get('HOSTNAME') and VERSE])";
    let runs: Vec<Value> = vs
        .iter()
        .map(|v| json!({"verse": v["verse"], "code": format!("VERSE = {:?}\n{code}", v["name"].as_str().unwrap())}))
        .collect();
    let res = d.ok("POST", "/v1/verses/run", Some(json!({"runs": runs})), 200);
    assert_eq!(res.as_array().unwrap().len(), 3, "{res}");
    let up = d.ok(
        "POST",
        &format!("/v1/partitions/{part}/pull-up"),
        Some(json!({"oracle": "score", "game": {"nash": 4.0, "optimum": 3.0}})),
        200,
    );
    let optimal = vs.iter().find(|v| v["name"] == "optimal").unwrap();
    assert_eq!(up["winner"], optimal["verse"]);
    assert_eq!(up["collapsed_worlds"].as_array().unwrap().len(), 2);
    let r = d.post(
        &format!("/v1/partitions/{part}/pull-up"),
        json!({"oracle": "score"}),
    );
    assert_eq!(
        (r.status, r.json()["error_code"].clone()),
        (400, json!("invalid_request")),
        "a partition resolves once"
    );
    let resol = d.ok("GET", "/v1/resolutions", None, 200);
    assert!(resol
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["winning_verse"] == up["winner"]));
    assert!(!d
        .ok("GET", "/v1/metrics", None, 200)
        .as_array()
        .unwrap()
        .is_empty());
    let ledger = d.ok("GET", "/v1/ledger", None, 200);
    assert!(ledger["tree"].is_object());
    assert!(!d
        .ok("GET", "/v1/ledger/journal?limit=5", None, 200)
        .as_array()
        .unwrap()
        .is_empty());
    let r = d.post(
        "/v1/ledger/ops",
        json!({"op": "withdraw", "token": "usd", "owner": "alice", "verse": "v1", "amount": 5}),
    );
    assert!(
        r.status == 409 || r.status == 400 || r.status == 404,
        "{}",
        r.text()
    );
}

/// `kill -9` of the daemon while clients work: the next start serves
/// every world and snapshot that still exists, with session memory and
/// metadata; nothing half-made is left.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn restart_after_kill_9_under_load_recovers() {
    let Some(mut d) = Daemon::start() else { return };
    let w = d.ok(
        "POST",
        "/v1/worlds",
        Some(json!({"metadata": {"keep": "me"}})),
        201,
    );
    let id = w["id"].as_str().unwrap().to_string();
    d.ok(
        "POST",
        &format!("/v1/worlds/{id}/run-code"),
        Some(json!({"code": "remember = 'before crash'"})),
        200,
    );
    let snap = d.ok(
        "POST",
        &format!("/v1/worlds/{id}/snapshot"),
        Some(json!({"name": "keep"})),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Load: clients creating, branching and exec'ing while the daemon dies.
    let addr = d.addr.clone();
    let token = d.token.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for i in 0..4 {
        let (addr, token, stop, id) = (addr.clone(), token.clone(), stop.clone(), id.clone());
        load.push(std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(s) = std::net::TcpStream::connect(&addr) else {
                    break;
                };
                let (m, p, b) = match i {
                    0 => ("POST", "/v1/worlds".to_string(), json!({})),
                    1 => (
                        "POST",
                        format!("/v1/worlds/{id}/branch"),
                        json!({"count": 2}),
                    ),
                    _ => (
                        "POST",
                        format!("/v1/worlds/{id}/exec"),
                        json!({"command": "echo x"}),
                    ),
                };
                let b = b.to_string();
                let r = std::panic::catch_unwind(|| {
                    common::http(
                        s,
                        m,
                        &p,
                        Some(b.as_bytes()),
                        Some(&token),
                        Some("application/json"),
                    )
                });
                if r.is_err() {
                    break;
                }
            }
        }));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    d.kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in load {
        let _ = t.join();
    }
    d.spawn();
    let w = d.ok("GET", &format!("/v1/worlds/{id}"), None, 200);
    assert_eq!(w["metadata"], json!({"keep": "me"}), "metadata survives");
    let c = d.ok(
        "POST",
        &format!("/v1/worlds/{id}/run-code"),
        Some(json!({"code": "remember"})),
        200,
    );
    assert_eq!(
        c["value"], "'before crash'",
        "the session survived the daemon"
    );
    assert_eq!(
        d.ok("GET", &format!("/v1/snapshots/{snap}"), None, 200)["id"],
        snap.as_str()
    );
    // Every world served after the restart works.
    for w in d.get("/v1/worlds").json().as_array().unwrap() {
        let wid = w["id"].as_str().unwrap();
        if w["state"] == "running" {
            let e = d.ok(
                "POST",
                &format!("/v1/worlds/{wid}/exec"),
                Some(json!({"command": "echo alive"})),
                200,
            );
            assert_eq!(e["stdout"], "alive\n", "{wid}");
        }
    }
    // The records agree with the disk: no entity is 'running' without a world.
    let worlds: Vec<String> = d
        .get("/v1/worlds")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_string())
        .collect();
    let ents = d.ok("GET", "/v1/entities?type=sandbox&limit=100000", None, 200);
    for e in ents.as_array().unwrap() {
        if e["state"] == "running" {
            let eid = e["entity_id"].as_str().unwrap();
            assert!(
                worlds.iter().any(|w| w == eid),
                "entity {eid} is 'running' but has no world: {e}"
            );
        }
    }
}

/// Snapshot ids and names from URL paths never reach a path: `..%2F`
/// and friends are refused (4xx) on the native and Morph routes alike,
/// and a planted `*.json` outside the snapshot records is never loaded as
/// one (the old code answered 200 with it, and would have deleted its
/// "subvolume", killed its "cgroup" and connected to its "sockets").
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn snapshot_ids_from_paths_cannot_reach_other_files() {
    let Some(d) = Daemon::start() else { return };
    let meta = d.state().join("meta");
    std::fs::create_dir_all(meta.join("snapshots")).unwrap();
    let planted = json!({
        "id": "../evil", "name": "evil", "world": "w-1", "lineage": "l-1",
        "image": "host", "limits": {"vcpu_count": 1, "mem_size_mib": 64, "pids_max": 64, "disk_mib": 64},
        "seed": 1, "sessions": ["../../x"], "services": [], "created_at": 0, "snapshot_ms": 0.0,
    });
    std::fs::write(meta.join("evil.json"), planted.to_string()).unwrap();
    for (method, path) in [
        ("GET", "/v1/snapshots/..%2Fevil"),
        ("DELETE", "/v1/snapshots/..%2Fevil"),
        ("POST", "/v1/snapshots/..%2Fevil/branch"),
        ("GET", "/v1/snapshots/..%2F..%2Fmeta%2Fevil"),
        ("GET", "/api/snapshot/..%2Fevil"),
        ("DELETE", "/api/snapshot/..%2Fevil"),
        ("POST", "/api/snapshot/..%2Fevil/boot"),
        ("GET", "/v1/snapshots/%2Fetc%2Fpasswd"),
    ] {
        let body = (method == "POST").then(|| json!({}));
        let r = d.req(method, path, body.as_ref());
        assert!(
            (400..500).contains(&r.status) && r.status != 401,
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
        assert!(
            !r.text().contains("evil\""),
            "{method} {path} loaded the planted record: {}",
            r.text()
        );
    }
    assert!(
        meta.join("evil.json").exists(),
        "the planted file was touched"
    );
}

/// Metadata, TTLs and services live in the database (`world_meta`), not
/// in a file beside it; a `meta.json` left by an older daemon is moved in
/// at start (documents already in the table win) and renamed; paused
/// state is the world's own (it survives the daemon).
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn metadata_lives_in_the_database_and_old_files_move_in() {
    let Some(mut d) = Daemon::start() else { return };
    let a = d.ok(
        "POST",
        "/v1/worlds",
        Some(json!({"metadata": {"in": "table"}, "ttl_seconds": 3600})),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = d.ok("POST", "/v1/worlds", Some(json!({})), 201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    d.ok("POST", &format!("/v1/worlds/{b}/pause"), None, 200);
    d.terminate();
    let legacy = d.state().join("server").join("meta.json");
    assert!(!legacy.exists(), "the daemon wrote meta.json");
    // The table holds a's document; nothing else keeps it.
    let store = world_store::Store::open(&d.db()).unwrap();
    let docs = store.meta_all().unwrap();
    assert!(
        docs.iter()
            .any(|m| m.entity_id == a && m.doc.contains("\"in\":\"table\"")),
        "{docs:?}"
    );
    // b as an older daemon left it: its document only in meta.json, which
    // b takes; a keeps the table's.
    store.meta_write(&[], std::slice::from_ref(&b)).unwrap();
    drop(store);
    std::fs::write(
        &legacy,
        json!({"worlds": {
            a.clone(): {"metadata": {"in": "file"}},
            b.clone(): {"metadata": {"from": "file"}, "paused": true},
        }})
        .to_string(),
    )
    .unwrap();
    d.spawn();
    let wa = d.ok("GET", &format!("/v1/worlds/{a}"), None, 200);
    assert_eq!(wa["metadata"], json!({"in": "table"}));
    assert!(wa["ttl"]["ttl_expire_at"].is_u64());
    let wb = d.ok("GET", &format!("/v1/worlds/{b}"), None, 200);
    assert_eq!(wb["metadata"], json!({"from": "file"}));
    assert_eq!(
        (wb["state"].clone(), wb["paused"].clone()),
        (json!("paused"), json!(true))
    );
    assert!(!legacy.exists());
    assert!(legacy.with_extension("json.imported").exists());
    // A paused world refuses work with the daemon's own error.
    let r = d.req(
        "POST",
        &format!("/v1/worlds/{b}/exec"),
        Some(&json!({"command": "true"})),
    );
    assert_eq!(
        (r.status, r.json()["error_code"].clone()),
        (409, json!("world_paused"))
    );
    d.ok("POST", &format!("/v1/worlds/{b}/resume"), None, 200);
    d.ok(
        "POST",
        &format!("/v1/worlds/{b}/exec"),
        Some(json!({"command": "true"})),
        200,
    );
}
