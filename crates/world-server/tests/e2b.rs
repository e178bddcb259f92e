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

/// A refused operation is the client's 4xx, and an upload that breaks off
/// leaves the file it was replacing as it was.
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn refusals_are_4xx_and_a_broken_upload_changes_nothing() {
    use std::io::{Read, Write};
    let Some(d) = Daemon::start() else { return };
    let sid = sandbox(&d);
    d.post(
        &format!("/v1/worlds/{sid}/exec"),
        json!({"command": "echo original > /root/f"}),
    );
    let r = d.with_headers(
        "POST",
        "/filesystem.Filesystem/MakeDir",
        Some(br#"{"path":"/root/f/sub"}"#),
        &envd(&sid, &d.token, "application/json"),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["code"], "failed_precondition");
    // Half a body, then the connection closes.
    let mut s = std::net::TcpStream::connect(&d.addr).unwrap();
    let head = format!(
        "POST /files?path=%2Froot%2Ff HTTP/1.1\r\nHost: x\r\nE2b-Sandbox-Id: {sid}\r\n\
         E2b-Sandbox-Port: 49983\r\nX-Access-Token: {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\nreplaced",
        d.token
    );
    s.write_all(head.as_bytes()).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    let r = d.post(
        &format!("/v1/worlds/{sid}/exec"),
        json!({"command": "cat /root/f; ls /root | grep -c upload || true"}),
    );
    assert_eq!(r.json()["stdout"], "original\n0\n", "{}", r.json());
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

/// A world's HTTP service never sees the daemon's token, whichever header
/// a client put it in (the relay strips every one, and any header whose
/// value carries it).
#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn attack_a_relayed_service_never_sees_the_token() {
    let Some(d) = Daemon::start() else { return };
    let w = d.ok("POST", "/v1/worlds", Some(json!({})), 201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A service that writes every request's headers to /root/seen.
    let server = r#"
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        open('/root/seen', 'a').write(str(self.headers))
        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', 8080), H).serve_forever()
"#;
    d.ok(
        "POST",
        &format!("/v1/worlds/{w}/exec"),
        Some(json!({"argv": ["sh", "-c", format!("nohup python3 -c \"$0\" >/dev/null 2>&1 &"), server]})),
        200,
    );
    let mut up = false;
    for _ in 0..50 {
        let r = d.post(
            &format!("/v1/worlds/{w}/exec"),
            json!({"argv": ["python3", "-c", "import socket; socket.create_connection(('127.0.0.1', 8080))"]}),
        );
        if r.json()["exit_code"] == 0 {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(up, "the service did not start");
    d.ok(
        "POST",
        &format!("/v1/worlds/{w}/services"),
        Some(json!({"name": "web", "port": 8080})),
        201,
    );
    let bearer = format!("Bearer {}", d.token);
    let cookie = format!("s={}", d.token);
    let r = d.with_headers(
        "GET",
        &format!("/v1/services/{w}/web/x"),
        None,
        &[
            ("X-API-KEY", &d.token),
            ("X-Access-Token", &d.token),
            ("E2B-Traffic-Access-Token", &d.token),
            ("Authorization", &bearer),
            ("Cookie", &cookie),
            ("X-Visible", "kept"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = d.post(
        &format!("/v1/worlds/{w}/exec"),
        json!({"command": "cat /root/seen"}),
    );
    let seen = seen.json()["stdout"].as_str().unwrap().to_string();
    assert!(seen.contains("kept"), "the relay forwarded nothing: {seen}");
    assert!(
        !seen.contains(&d.token),
        "the service saw the token: {seen}"
    );
}
