//! Every endpoint of `/openapi.json` with malformed, oversized and
//! wrong-typed bodies, bad path ids and bad query strings: always a 4xx
//! (or a 2xx for a request that happens to be valid) with a JSON error
//! naming the problem, never a 5xx, and the daemon keeps serving.

mod common;

use common::Daemon;
use serde_json::json;

/// A deterministic pseudo-random generator (no extra dependency).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn bodies(rng: &mut Rng) -> Vec<(String, Vec<u8>, &'static str)> {
    let mut v: Vec<(String, Vec<u8>, &'static str)> = [
        "{",
        "[]",
        "\"str\"",
        "123",
        "null",
        "true",
        "{\"a\":",
        "{}}",
        r#"{"count": "many", "code": 5, "argv": {}, "command": 7, "metadata": [1]}"#,
        r#"{"metadata": [1, 2]}"#,
        r#"{"metadata": {"k": {"nested": [1]}}, "bogus_field": 1}"#,
        r#"{"count": -1}"#,
        r#"{"count": 1e300}"#,
        r#"{"count": 99999999999999999999999}"#,
        r#"{"code": "\u0000import os"}"#,
        r#"{"argv": ["\u0000"], "env": {"A=B": "c"}}"#,
        r#"{"command": [], "timeout": -5}"#,
        r#"{"command": "true", "timeout": "soon"}"#,
        r#"{"oracle": "magic"}"#,
        r#"{"children": [{"name": "a", "prob": "2.5", "trit": 7}]}"#,
        r#"{"op": "teleport"}"#,
        r#"{"name": "../../etc", "snapshot_id": "../../x"}"#,
        r#"{"memory_mib": 1, "vcpus": 0}"#,
        r#"{"ttl_seconds": -1, "ttl_action": "explode"}"#,
    ]
    .iter()
    .map(|s| {
        (
            format!("literal {s}"),
            s.as_bytes().to_vec(),
            "application/json",
        )
    })
    .collect();
    v.push((
        "deep nesting".into(),
        format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)).into_bytes(),
        "application/json",
    ));
    v.push((
        "oversized".into(),
        format!("{{\"code\": \"{}\"}}", "x".repeat(5 << 20)).into_bytes(),
        "application/json",
    ));
    v.push((
        "invalid utf-8".into(),
        vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'],
        "application/json",
    ));
    v.push((
        "text/plain".into(),
        br#"{"count": 1}"#.to_vec(),
        "text/plain",
    ));
    for i in 0..6 {
        let n = (rng.next() % 300) as usize;
        v.push((
            format!("random bytes {i}"),
            rng.bytes(n),
            "application/json",
        ));
    }
    v
}

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn malformed_input_gets_a_clear_4xx_never_a_5xx() {
    let Some(d) = Daemon::start() else { return };
    let mut rng = Rng(7);
    // A real world and snapshot so that bodies reach the handlers' checks.
    let w = d.ok("POST", "/v1/worlds", Some(json!({})), 201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let s = d.ok(
        "POST",
        &format!("/v1/worlds/{w}/snapshot"),
        Some(json!({"name": "fuzz"})),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = d.get("/openapi.json").json();
    let ids = [
        "nope",
        "Bad_Id",
        "%00",
        "..%2F..",
        &"a".repeat(300),
        "p999",
        "v0",
    ];
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, _) in ops.as_object().unwrap() {
            let method = method.to_uppercase();
            if method == "DELETE" {
                continue; // deleting is not malformed input; covered elsewhere
            }
            let mut targets: Vec<String> = ids
                .iter()
                .map(|i| {
                    path.replace("{id}", i)
                        .replace("{p}", i)
                        .replace("{name}", "svc")
                        .replace("{path}", "x/y")
                })
                .collect();
            // Morph's boot ignores unknown fields (as Morph does), and an
            // E2B fork takes an empty body, so a malformed-looking body can
            // be a valid boot or fork: garbage ids only.
            if path.contains("{id}") && !path.ends_with("/boot") && !path.ends_with("/fork") {
                let real = if path.contains("snapshot")
                    && !path.contains("instance")
                    && !path.contains("worlds")
                    && !path.contains("sandboxes")
                {
                    &s
                } else {
                    &w
                };
                targets.push(
                    path.replace("{id}", real)
                        .replace("{name}", "svc")
                        .replace("{path}", "x/y"),
                );
            }
            if !path.contains('{') {
                targets = vec![path.clone()];
            }
            for t in &targets {
                for q in [
                    "",
                    "?count=abc",
                    "?count=-1&limit=x&page=0",
                    "?snapshot_id=%00&metadata%5Bk=v",
                ] {
                    let url = format!("{t}{q}");
                    let list: Vec<(String, Vec<u8>, &str)> = if method == "GET" {
                        vec![("none".into(), vec![], "application/json")]
                    } else {
                        bodies(&mut rng)
                    };
                    for (what, body, ctype) in &list {
                        let r = d.raw(
                            &method,
                            &url,
                            (method != "GET").then_some(&body[..]),
                            Some(&d.token),
                            Some(ctype),
                        );
                        checked += 1;
                        assert!(
                            r.status < 500,
                            "{method} {url} with {what}: {} {}",
                            r.status,
                            r.text()
                        );
                        if r.status >= 400 {
                            let j = r.json();
                            assert!(
                                j["error_code"].is_string()
                                    && !j["detail"].as_str().unwrap_or("").is_empty(),
                                "{method} {url} with {what}: {j}"
                            );
                        }
                    }
                }
            }
        }
    }
    eprintln!("{checked} malformed requests, no 5xx");
    // The daemon still works, and the fuzzing made nothing it should not have.
    let e = d.ok(
        "POST",
        &format!("/v1/worlds/{w}/exec"),
        Some(json!({"command": "echo still"})),
        200,
    );
    assert_eq!(e["stdout"], "still\n");
    let worlds = d.get("/v1/worlds").json();
    let extra: Vec<_> = worlds
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["id"] != w.as_str())
        .cloned()
        .collect();
    assert!(extra.is_empty(), "fuzzing created worlds: {extra:?}");
}
