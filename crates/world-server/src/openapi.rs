//! The OpenAPI 3.1 document served at `/openapi.json`, built from one
//! table of routes (method, path, summary, request body fields).

use serde_json::{json, Map, Value};

/// (method, path, summary, JSON body fields or "" for none).
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    ("get", "/v1/health", "Daemon health and version", ""),
    ("get", "/openapi.json", "This document", ""),
    ("post", "/v1/worlds", "Create a world (from an image, or a branch of snapshot_id)", "id, image, vcpus, memory_mib, pids_max, disk_mib, snapshot_id, metadata, ttl_seconds, ttl_action"),
    ("get", "/v1/worlds", "List worlds", ""),
    ("get", "/v1/worlds/{id}", "Inspect a world", ""),
    ("delete", "/v1/worlds/{id}", "Destroy a world", ""),
    ("post", "/v1/worlds/{id}/exec", "Run a command, capture output", "argv | command, env, cwd, timeout, stdin"),
    ("post", "/v1/worlds/{id}/exec/stream", "Run a command, stream output as server-sent events", "argv | command, env, cwd, timeout"),
    ("post", "/v1/worlds/{id}/run-code", "Run Python code in a session", "code, session, timeout"),
    ("post", "/v1/worlds/{id}/snapshot", "Snapshot a world (files and session memory)", "name, metadata, ttl_seconds"),
    ("post", "/v1/worlds/{id}/branch", "Branch a world into count worlds", "count, apply_seeds, start_services, keep_snapshot, metadata"),
    ("post", "/v1/worlds/{id}/pause", "Freeze a world", ""),
    ("post", "/v1/worlds/{id}/resume", "Thaw a world", ""),
    ("put", "/v1/worlds/{id}/metadata", "Replace a world's metadata", "{key: value}"),
    ("post", "/v1/worlds/{id}/services", "Expose a TCP port of a world as /v1/services/{id}/{name}/", "name, port"),
    ("delete", "/v1/worlds/{id}/services/{name}", "Remove an exposed service", ""),
    ("get", "/v1/services/{id}/{name}/{path}", "Any method: relayed to the service's port in the world", ""),
    ("post", "/v1/worlds/{id}/push-down", "Split a world into verses (default nash/optimal/chaos)", "children[{name, prob, trit}], allow_nonconserving"),
    ("get", "/v1/snapshots", "List snapshots", ""),
    ("get", "/v1/snapshots/{id}", "Inspect a snapshot", ""),
    ("delete", "/v1/snapshots/{id}", "Delete a snapshot", ""),
    ("post", "/v1/snapshots/{id}/branch", "Branch a snapshot into count worlds", "count, apply_seeds, start_services, metadata"),
    ("get", "/v1/images", "List images", ""),
    ("post", "/v1/verses/run", "Run code in verses' worlds in parallel", "partition + code | runs[{verse, code}], session, timeout"),
    ("post", "/v1/partitions/{p}/pull-up", "Resolve a partition over worlds and pull balances up", "oracle, winner, lowest, seed, argv, game{nash, optimum, sense}"),
    ("get", "/v1/ledger", "The verse tree and balances", ""),
    ("post", "/v1/ledger/ops", "Apply one ledger operation ({\"op\": \"deposit\", ...})", "op, ..."),
    ("get", "/v1/ledger/journal", "Ledger journal (?limit)", ""),
    ("get", "/v1/entities", "Entity records (?type, ?limit)", ""),
    ("get", "/v1/branches", "Branch records (?limit)", ""),
    ("get", "/v1/resolutions", "Resolution records (?limit)", ""),
    ("get", "/v1/metrics", "Timing summary per operation", ""),
    ("post", "/v1/sandboxes", "Original design: create a sandbox (snapshot_id, metadata)", "snapshot_id, metadata, image, vcpus, memory_mib, seed, ttl_seconds"),
    ("get", "/v1/sandboxes", "Original design: list sandboxes", ""),
    ("get", "/v1/sandboxes/{id}", "Original design: inspect a sandbox", ""),
    ("delete", "/v1/sandboxes/{id}", "Original design: destroy a sandbox", ""),
    ("post", "/v1/sandboxes/{id}/snapshots", "Original design: snapshot, answers {snapshot_id}", "name, metadata"),
    ("post", "/v1/sandboxes/{id}/execute", "Original design: run Python code", "code, session, timeout"),
    ("post", "/v2/sandboxes", "E2B: create a sandbox (201)", "templateID, timeout, metadata, envVars, autoPause"),
    ("get", "/v2/sandboxes", "E2B: list sandboxes (?metadata, state, limit, nextToken; x-next-token)", ""),
    ("get", "/sandboxes/{id}", "E2B: a sandbox's details", ""),
    ("delete", "/sandboxes/{id}", "E2B: kill a sandbox (204)", ""),
    ("post", "/sandboxes/{id}/timeout", "E2B: set the remaining lifetime (204)", "timeout"),
    ("post", "/sandboxes/{id}/pause", "E2B: pause (204; 409 when paused)", ""),
    ("post", "/v2/sandboxes/{id}/connect", "E2B: connect, resuming a paused sandbox", "timeout"),
    ("get", "/api/image", "Morph: list images", ""),
    ("get", "/api/snapshot", "Morph: list snapshots (?metadata[k]=v, ?digest)", ""),
    ("post", "/api/snapshot", "Morph: create a snapshot from an image", "image_id, vcpus, memory, disk_size, digest, metadata, ttl_seconds"),
    ("get", "/api/snapshot/list", "Morph: list snapshots, paginated", ""),
    ("get", "/api/snapshot/{id}", "Morph: get a snapshot", ""),
    ("delete", "/api/snapshot/{id}", "Morph: delete a snapshot", ""),
    ("post", "/api/snapshot/{id}/metadata", "Morph: set snapshot metadata", "{key: value}"),
    ("post", "/api/snapshot/{id}/ttl", "Morph: set snapshot TTL", "ttl_seconds"),
    ("post", "/api/snapshot/{id}/boot", "Morph: start an instance from a snapshot", "metadata, ttl_seconds, ttl_action"),
    ("get", "/api/instance", "Morph: list instances (?metadata[k]=v)", ""),
    ("post", "/api/instance", "Morph: start an instance (?snapshot_id)", "metadata, ttl_seconds, ttl_action"),
    ("get", "/api/instance/list", "Morph: list instances, paginated", ""),
    ("get", "/api/instance/{id}", "Morph: get an instance", ""),
    ("delete", "/api/instance/{id}", "Morph: stop (destroy) an instance", ""),
    ("post", "/api/instance/{id}/pause", "Morph: pause", ""),
    ("post", "/api/instance/{id}/resume", "Morph: resume", ""),
    ("post", "/api/instance/{id}/metadata", "Morph: set metadata", "{key: value}"),
    ("post", "/api/instance/{id}/ttl", "Morph: set TTL", "ttl_seconds, ttl_action"),
    ("post", "/api/instance/{id}/exec", "Morph: exec", "command"),
    ("post", "/api/instance/{id}/exec/sse", "Morph: exec streamed as server-sent events", "command"),
    ("post", "/api/instance/{id}/snapshot", "Morph: snapshot an instance (?digest)", "metadata, ttl_seconds"),
    ("post", "/api/instance/{id}/http", "Morph: expose an HTTP service", "name, port, auth_mode"),
    ("delete", "/api/instance/{id}/http/{name}", "Morph: hide an HTTP service", ""),
    ("post", "/api/instance/{id}/branch", "Morph: branch (?count=N): the snapshot and N instances", ""),
];

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, body) in ROUTES {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        let mut op = json!({
            "summary": summary,
            "security": [{"bearer": []}],
            "responses": {
                "200": {"description": "Success (201 for creations)"},
                "4XX": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if !body.is_empty() {
            op["requestBody"] = json!({
                "content": {"application/json": {"schema": {"type": "object", "description": format!("fields: {body}")}}}
            });
        }
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "WorldRuntime API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Worlds, snapshots, branches and verses; the original design's /v1/sandboxes; a Morph Cloud compatible subset under /api. See docs/api.md.",
        },
        "servers": [{"url": "http://127.0.0.1:7077"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {
                "type": "object",
                "required": ["error_code", "detail", "status"],
                "properties": {
                    "error_code": {"type": "string", "enum": ["unauthorized", "invalid_request", "unsupported_media_type", "payload_too_large", "not_found", "route_not_found", "method_not_allowed", "refused", "world_paused", "service_unreachable", "service_bad_response", "command_not_found", "not_executable", "unsupported", "busy", "internal"]},
                    "detail": {"type": "string"},
                    "status": {"type": "integer"},
                },
            }},
        },
        "paths": paths,
    })
}
