//! The E2B door at the protocol level, with what the SDK tests cannot
//! send: wrong credentials, unknown sandboxes, malformed Connect bodies,
//! and file paths built to break out of the commands that serve them.
//! (The official SDK's own scenario is `python/tests/test_e2b.py`.)

mod common;

use common::Daemon;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

fn envelope(msg: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8];
    b.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    b.extend_from_slice(msg);
    b
}

/// The envd headers of a sandbox, with `token` as its access token.
fn envd<'a>(sid: &'a str, token: &'a str, ctype: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("E2b-Sandbox-Id", sid),
        ("E2b-Sandbox-Port", "49983"),
        ("X-Access-Token", token),
        ("Content-Type", ctype),
    ]
}

fn sandbox(d: &Daemon) -> String {
    let r = d.with_headers(
        "POST",
        "/v2/sandboxes",
        Some(br#"{"templateID":"base","timeout":300}"#),
        &[
            ("X-API-KEY", &d.token),
            ("Content-Type", "application/json"),
        ],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["sandboxID"].as_str().unwrap().to_string()
}

/// Wrong credentials and unknown sandboxes are refused in each protocol's
/// own terms, and nothing is done.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn credentials_and_unknown_sandboxes() {
    let Some(d) = Daemon::start() else { return };
    let r = d.with_headers(
        "POST",
        "/v2/sandboxes",
        Some(br#"{"templateID":"base"}"#),
        &[("X-API-KEY", "wrong"), ("Content-Type", "application/json")],
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], 401, "E2B's error shape: {}", r.text());
    assert_eq!(d.get("/v1/worlds").json(), json!([]), "nothing was made");
    let sid = sandbox(&d);
    let start = envelope(br#"{"process":{"cmd":"/bin/sh","args":["-c","touch /root/ran"]}}"#);
    for token in ["", "wrong"] {
        let r = d.with_headers(
            "POST",
            "/process.Process/Start",
            Some(&start),
            &envd(&sid, token, "application/connect+json"),
        );
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["code"], "unauthenticated");
    }
    let r = d.post(
        &format!("/v1/worlds/{sid}/exec"),
        json!({"command": "test -e /root/ran && echo ran || echo not"}),
    );
    assert_eq!(r.json()["stdout"], "not\n");
    // Unknown sandbox: E2B's "not found" (the SDK's SandboxNotRunning).
    for id in ["w-000000000000", "../../etc", ""] {
        let r = d.with_headers(
            "POST",
            "/filesystem.Filesystem/Stat",
            Some(br#"{"path":"/"}"#),
            &envd(id, &d.token, "application/json"),
        );
        assert_eq!(r.status, 502, "{id}: {}", r.text());
        assert!(r.json()["message"]
            .as_str()
            .unwrap()
            .contains("was not found"));
    }
    // A port we do not serve.
    let mut h = envd(&sid, &d.token, "application/json");
    h[1] = ("E2b-Sandbox-Port", "8080");
    let r = d.with_headers("POST", "/execute", Some(b"{}"), &h);
    assert_eq!(r.status, 502);
    // The code interpreter: its token (either header) is required, bodies
    // are checked, contexts must exist; nothing runs otherwise.
    let mut h = envd(&sid, "wrong", "application/json");
    h[1] = ("E2b-Sandbox-Port", "49999");
    let run =
        br#"{"code":"open('/root/ran','w')","context_id":null,"language":null,"env_vars":null}"#;
    assert_eq!(
        d.with_headers("POST", "/execute", Some(run), &h).status,
        401
    );
    assert_eq!(d.with_headers("GET", "/contexts", None, &h).status, 401);
    h[2] = ("E2B-Traffic-Access-Token", &d.token);
    assert_eq!(d.with_headers("GET", "/contexts", None, &h).status, 200);
    for bad in [
        &b"{"[..],
        b"[]",
        br#"{"code":1}"#,
        br#"{"code":"1","language":"r"}"#,
    ] {
        assert_eq!(
            d.with_headers("POST", "/execute", Some(bad), &h).status,
            400
        );
    }
    let r = d.with_headers(
        "POST",
        "/execute",
        Some(br#"{"code":"1","context_id":"no-such","language":null,"env_vars":null}"#),
        &h,
    );
    assert_eq!(r.status, 404);
    assert_eq!(
        d.with_headers("DELETE", "/contexts/default", None, &h)
            .status,
        404
    );
    let r = d.post(
        &format!("/v1/worlds/{sid}/exec"),
        json!({"command": "test -e /root/ran && echo ran || echo not"}),
    );
    assert_eq!(r.json()["stdout"], "not\n");
    // Control plane: unknown ids are 404 with E2B's error shape.
    let r = d.with_headers(
        "DELETE",
        "/sandboxes/w-000000000000",
        None,
        &[("X-API-KEY", &d.token)],
    );
    assert_eq!((r.status, r.json()["code"].clone()), (404, json!(404)));
}

/// Every agent route answers malformed bodies with a 4xx Connect error,
/// never a 5xx or a hang.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn malformed_connect_bodies_are_client_errors() {
    let Some(d) = Daemon::start() else { return };
    let sid = sandbox(&d);
    let routes = [
        ("/process.Process/Start", "application/connect+json"),
        ("/process.Process/SendSignal", "application/json"),
        ("/filesystem.Filesystem/Stat", "application/json"),
        ("/filesystem.Filesystem/ListDir", "application/json"),
        ("/filesystem.Filesystem/MakeDir", "application/json"),
        ("/filesystem.Filesystem/Remove", "application/json"),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 40,
        ..Config::default()
    });
    runner
        .run(
            &(
                0..routes.len(),
                proptest::collection::vec(any::<u8>(), 0..48),
                any::<bool>(),
            ),
            |(i, junk, framed)| {
                let (path, ct) = routes[i];
                let body = if framed { envelope(&junk) } else { junk };
                let r = d.with_headers("POST", path, Some(&body), &envd(&sid, &d.token, ct));
                prop_assert!(
                    (400..500).contains(&r.status),
                    "{path}: {} {}",
                    r.status,
                    r.text()
                );
                let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                prop_assert!(v["code"].is_string(), "{path}: {}", r.text());
                Ok(())
            },
        )
        .unwrap();
    // Shapes that parse but are wrong.
    for (path, body) in [
        ("/filesystem.Filesystem/Stat", json!({"path": ""})),
        ("/filesystem.Filesystem/Stat", json!({"path": 7})),
        (
            "/process.Process/SendSignal",
            json!({"process": {"pid": 1}, "signal": "SIGNAL_SIGHUP"}),
        ),
    ] {
        let r = d.with_headers(
            "POST",
            path,
            Some(body.to_string().as_bytes()),
            &envd(&sid, &d.token, "application/json"),
        );
        assert_eq!(r.status, 400, "{path} {body}: {}", r.text());
    }
}

/// A path is data: quotes, `$(...)`, spaces and newlines in a name never
/// reach a shell as code, and `..` stays inside the world.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn attack_paths_cannot_inject_commands() {
    let Some(d) = Daemon::start() else { return };
    let sid = sandbox(&d);
    let nasty = [
        "/root/a$(touch /root/pwned1)",
        "/root/b`touch /root/pwned2`",
        "/root/c\"; touch /root/pwned3; \"",
        "/root/d'; touch /root/pwned4; '",
        "/root/e\ntouch /root/pwned5",
        "-rf",
    ];
    let enc = |p: &str| form_urlencoded_like(p);
    for p in nasty {
        let r = d.with_headers(
            "POST",
            &format!("/files?path={}", enc(p)),
            Some(b"data"),
            &envd(&sid, &d.token, "application/octet-stream"),
        );
        assert_eq!(r.status, 200, "{p:?}: {}", r.text());
        for rpc in ["Stat", "ListDir", "Remove", "MakeDir"] {
            let _ = d.with_headers(
                "POST",
                &format!("/filesystem.Filesystem/{rpc}"),
                Some(json!({"path": p, "depth": 1}).to_string().as_bytes()),
                &envd(&sid, &d.token, "application/json"),
            );
        }
        let _ = d.with_headers(
            "GET",
            &format!("/files?path={}", enc(p)),
            None,
            &envd(&sid, &d.token, "application/json"),
        );
    }
    let r = d.post(
        &format!("/v1/worlds/{sid}/exec"),
        json!({"command": "ls /root | grep -c pwned || true"}),
    );
    assert_eq!(r.json()["stdout"], "0\n", "a path ran as a command");
    // `..` is a path in the world: it never leaves the world's root, and
    // the host's files (the daemon's token) are not there.
    d.post(
        &format!("/v1/worlds/{sid}/exec"),
        json!({"command": "echo inside > /root/marker"}),
    );
    let r = d.with_headers(
        "GET",
        &format!("/files?path={}", enc("/../../../root/marker")),
        None,
        &envd(&sid, &d.token, "application/json"),
    );
    assert_eq!((r.status, r.text()), (200, "inside\n".to_string()));
    let token_file = d.state().join("api-token");
    let r = d.with_headers(
        "GET",
        &format!(
            "/files?path={}",
            enc(&format!("/../..{}", token_file.display()))
        ),
        None,
        &envd(&sid, &d.token, "application/json"),
    );
    assert_eq!(r.status, 404, "the host's token file: {}", r.text());
}

/// Percent-encodes everything but unreserved characters.
fn form_urlencoded_like(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
