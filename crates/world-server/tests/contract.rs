//! The OpenAPI document against the daemon's real traffic: one scenario
//! calls every native route (and the original design's), and the harness
//! checks each exchange against `/openapi.json` (`common/contract.rs`):
//! accepted requests valid against the request schemas, answers against
//! the response schemas, errors against `Error`. At the end every
//! documented `/v1` operation must have answered a success at least once,
//! so a route added without its types in the document fails here.

mod common;

use common::Daemon;
use serde_json::json;

#[test]
#[cfg_attr(not(world_root), ignore = "needs root: run the suite as root")]
fn every_route_answers_what_the_document_says() {
    let Some(d) = Daemon::start() else { return };
    d.ok("GET", "/v1/health", None, 200);
    d.ok("GET", "/v1/images", None, 200);

    // A world: create, read, exec (captured and streamed), code, metadata,
    // pause/resume, services.
    let w = d.ok(
        "POST",
        "/v1/worlds",
        Some(json!({"memory_mib": 256, "metadata": {"k": "v", "n": 3}, "ttl_seconds": 3600, "ttl_action": "pause"})),
        201,
    );
    let id = w["id"].as_str().unwrap().to_string();
    d.ok("GET", "/v1/worlds", None, 200);
    d.ok("GET", &format!("/v1/worlds/{id}"), None, 200);
    d.ok(
        "POST",
        &format!("/v1/worlds/{id}/exec"),
        Some(json!({"argv": ["sh", "-c", "cat; exit 3"], "env": {"A": "b"}, "cwd": "/tmp", "stdin": "x", "timeout": 30})),
        200,
    );
    d.ok(
        "POST",
        &format!("/v1/worlds/{id}/exec"),
        Some(json!({"argv": ["no-such-program"]})),
        200,
    );
    let r = d.req(
        "POST",
        &format!("/v1/worlds/{id}/exec/stream"),
        Some(&json!({"command": "echo streamed"})),
    );
    assert_eq!(r.status, 200);
    let c = d.ok(
        "POST",
        &format!("/v1/worlds/{id}/run-code"),
        Some(json!({"code": "x = 41\nx + 1", "session": "s1", "timeout": 60})),
        200,
    );
    assert_eq!(c["value"], "42");
    d.ok(
        "POST",
        &format!("/v1/worlds/{id}/run-code"),
        Some(json!({"code": "1/0"})),
        200,
    );
    d.ok(
        "PUT",
        &format!("/v1/worlds/{id}/metadata"),
        Some(json!({"role": "root", "n": 1, "gone": null})),
        200,
    );
    d.ok("POST", &format!("/v1/worlds/{id}/pause"), None, 200);
    d.ok("POST", &format!("/v1/worlds/{id}/resume"), None, 200);
    d.ok(
        "POST",
        &format!("/v1/worlds/{id}/services"),
        Some(json!({"name": "web", "port": 8000})),
        201,
    );
    d.ok(
        "DELETE",
        &format!("/v1/worlds/{id}/services/web"),
        None,
        200,
    );

    // Snapshots and branches, of a world and of a snapshot.
    let s = d.ok(
        "POST",
        &format!("/v1/worlds/{id}/snapshot"),
        Some(json!({"name": "contract", "metadata": {"a": "b"}})),
        201,
    );
    let snap = s["id"].as_str().unwrap().to_string();
    d.ok("GET", "/v1/snapshots", None, 200);
    d.ok("GET", &format!("/v1/snapshots/{snap}"), None, 200);
    let b = d.ok(
        "POST",
        &format!("/v1/snapshots/{snap}/branch"),
        Some(json!({"count": 2, "metadata": {"kid": true}})),
        201,
    );
    assert_eq!(b["children"].as_array().unwrap().len(), 2);
    let b = d.ok(
        "POST",
        &format!("/v1/worlds/{id}/branch"),
        Some(json!({"count": 1, "apply_seeds": false, "keep_snapshot": false})),
        201,
    );
    assert!(
        b["snapshot"].is_null(),
        "the implicit snapshot was not kept"
    );

    // Verses over worlds and the ledger.
    let p = d.ok("POST", &format!("/v1/worlds/{id}/push-down"), None, 201);
    let partition = p["partition"].as_str().unwrap().to_string();
    let first = p["verses"][0]["verse"].as_str().unwrap().to_string();
    d.ok(
        "POST",
        "/v1/verses/run",
        Some(json!({"partition": partition, "code": "print('hi')", "runs": [{"verse": first, "code": "2"}]})),
        200,
    );
    d.ok(
        "POST",
        &format!("/v1/partitions/{partition}/pull-up"),
        Some(json!({"oracle": "explicit", "winner": first, "game": {"nash": 4, "optimum": 3}})),
        200,
    );
    d.ok(
        "POST",
        "/v1/ledger/ops",
        Some(
            json!({"op": "deposit", "verse": "v1", "owner": "alice", "token": "usd", "amount": 5}),
        ),
        200,
    );
    d.ok("GET", "/v1/ledger", None, 200);
    d.ok("GET", "/v1/ledger/journal?limit=5", None, 200);
    d.ok("GET", "/v1/entities?type=world&limit=5", None, 200);
    d.ok("GET", "/v1/branches", None, 200);
    d.ok("GET", "/v1/resolutions", None, 200);
    d.ok("GET", "/v1/metrics", None, 200);

    // The original design's routes.
    let sb = d.ok(
        "POST",
        "/v1/sandboxes",
        Some(json!({"metadata": {"trit": -1}, "seed": 7})),
        201,
    );
    let sid = sb["id"].as_str().unwrap().to_string();
    d.ok("GET", "/v1/sandboxes", None, 200);
    d.ok("GET", &format!("/v1/sandboxes/{sid}"), None, 200);
    d.ok(
        "POST",
        &format!("/v1/sandboxes/{sid}/execute"),
        Some(json!({"code": "1 + 1"})),
        200,
    );
    let ss = d.ok(
        "POST",
        &format!("/v1/sandboxes/{sid}/snapshots"),
        Some(json!({"name": "pre-split"})),
        201,
    );
    d.ok("DELETE", &format!("/v1/sandboxes/{sid}"), None, 200);
    let ss = ss["snapshot_id"].as_str().unwrap();
    d.ok("DELETE", &format!("/v1/snapshots/{ss}"), None, 200);

    // Errors, in the common shape.
    assert_eq!(d.req("GET", "/v1/worlds/no-such-world", None).status, 404);
    assert_eq!(
        d.req("POST", "/v1/worlds", Some(&json!({"memory_mib": "lots"})))
            .status,
        400
    );
    assert_eq!(
        d.req(
            "POST",
            &format!("/v1/worlds/{id}/exec"),
            Some(&json!({"argv": ["true"], "timeout": 1e-300}))
        )
        .status,
        400,
        "a timeout that rounds to zero is refused"
    );

    d.ok("DELETE", &format!("/v1/worlds/{id}"), None, 200);
    d.ok("DELETE", &format!("/v1/snapshots/{snap}"), None, 200);

    let missing: Vec<_> = d
        .contract()
        .uncovered("/v1/")
        .into_iter()
        .filter(|(_, t)| !t.starts_with("/v1/services/"))
        .collect();
    assert!(
        missing.is_empty(),
        "documented routes this scenario never saw succeed: {missing:?}"
    );
    d.clean_api();
}
