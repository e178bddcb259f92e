//! The OpenAPI 3.1 document served at `/openapi.json`, generated from the
//! types the routes read and answer: each route names its request type
//! and its response type, and their JSON Schemas (derived with
//! `schemars` from the same serde types the code uses, most of them the
//! engine's [`world_engine::actions`]) become the document's
//! `components/schemas`. A field added to a request type is in the
//! document at once; nothing here lists fields by hand.
//!
//! The compatibility layers (Morph under `/api`, E2B's control plane) are
//! listed with their request bodies; their answers follow their vendors'
//! APIs and are not described here.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};
use world_engine::actions;
use world_engine::multiverse::{PulledUp, PushedDown, VerseResult};
use world_store::ledger_io::JournalRow;
use world_store::{BranchRow, EntityRow, MetricSummary, ResolutionRow};
use world_substrate::snapshot::Branched;
use world_substrate::ImageInfo;

use crate::routes::views::{Deleted, Destroyed, Health, SandboxSnapshot, SnapshotView, WorldView};

/// Adds a type's schema to the generator and answers a reference to it.
type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn s<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// What a route answers on success.
#[derive(Clone, Copy)]
pub enum Answer {
    /// JSON of this type, with this status.
    Json(u16, SchemaFn),
    /// Server-sent events.
    Events,
    /// No body, with this status.
    Empty(u16),
    /// Whatever the other side says (relayed services, vendors' shapes).
    Any,
}

/// One operation of the API.
#[derive(Clone, Copy)]
pub struct Route {
    /// HTTP method, lower case.
    pub method: &'static str,
    /// Path template.
    pub path: &'static str,
    /// One line.
    pub summary: &'static str,
    /// The JSON body it reads.
    pub request: Option<SchemaFn>,
    /// The body may be left out (an empty object then).
    pub optional_body: bool,
    /// Query parameters (name, description).
    pub query: &'static [(&'static str, &'static str)],
    /// What it answers.
    pub answer: Answer,
}

const fn op(method: &'static str, path: &'static str, summary: &'static str) -> Route {
    Route {
        method,
        path,
        summary,
        request: None,
        optional_body: false,
        query: &[],
        answer: Answer::Any,
    }
}

impl Route {
    const fn body(mut self, f: SchemaFn) -> Route {
        self.request = Some(f);
        self
    }
    const fn optional(mut self, f: SchemaFn) -> Route {
        self.request = Some(f);
        self.optional_body = true;
        self
    }
    const fn json(mut self, status: u16, f: SchemaFn) -> Route {
        self.answer = Answer::Json(status, f);
        self
    }
    const fn answers(mut self, a: Answer) -> Route {
        self.answer = a;
        self
    }
    const fn query(mut self, q: &'static [(&'static str, &'static str)]) -> Route {
        self.query = q;
        self
    }
}

const LIMIT: &[(&str, &str)] = &[("limit", "Most rows (default 1000, at most 100000)")];
const ENTITIES: &[(&str, &str)] = &[
    ("limit", "Most rows (default 1000, at most 100000)"),
    (
        "type",
        "Only entities of this type (world, snapshot, verse, ...)",
    ),
];
const MORPH_LIST: &[(&str, &str)] = &[
    (
        "metadata[KEY]",
        "Only those whose metadata KEY has this value",
    ),
    ("digest", "Only snapshots with this digest"),
];

/// Every route the daemon serves, but the E2B agent's (Connect, routed by
/// header) and the code interpreter's.
pub fn routes() -> Vec<Route> {
    use actions::*;
    vec![
        op("get", "/v1/health", "Daemon health and version").json(200, s::<Health>),
        op("get", "/openapi.json", "This document"),
        op("post", "/v1/worlds", "Create a world (from an image, or a branch of snapshot_id)")
            .body(s::<CreateRequest>)
            .json(201, s::<WorldView>),
        op("get", "/v1/worlds", "List worlds").json(200, s::<Vec<WorldView>>),
        op("get", "/v1/worlds/{id}", "Inspect a world").json(200, s::<WorldView>),
        op("delete", "/v1/worlds/{id}", "Destroy a world").json(200, s::<Destroyed>),
        op("post", "/v1/worlds/{id}/exec", "Run a command, capture output")
            .body(s::<ExecRequest>)
            .json(200, s::<ExecResponse>),
        op("post", "/v1/worlds/{id}/exec/stream", "Run a command, stream output as server-sent events ({type: stdout|stderr|exit_code, content}, then [DONE])")
            .body(s::<ExecRequest>)
            .answers(Answer::Events),
        op("post", "/v1/worlds/{id}/run-code", "Run Python code in a session")
            .body(s::<RunCodeRequest>)
            .json(200, s::<CodeResponse>),
        op("post", "/v1/worlds/{id}/snapshot", "Snapshot a world (files and session memory)")
            .optional(s::<SnapshotRequest>)
            .json(201, s::<SnapshotView>),
        op("post", "/v1/worlds/{id}/branch", "Branch a world into count worlds")
            .body(s::<BranchRequest>)
            .json(201, s::<Branched>),
        op("post", "/v1/worlds/{id}/pause", "Freeze a world").json(200, s::<WorldView>),
        op("post", "/v1/worlds/{id}/resume", "Thaw a world").json(200, s::<WorldView>),
        op("put", "/v1/worlds/{id}/metadata", "Replace a world's metadata")
            .body(s::<MetadataIn>)
            .json(200, s::<WorldView>),
        op("post", "/v1/worlds/{id}/services", "Expose a TCP port of a world as /v1/services/{id}/{name}/")
            .body(s::<crate::routes::services::ExposeReq>)
            .json(201, s::<WorldView>),
        op("delete", "/v1/worlds/{id}/services/{name}", "Remove an exposed service")
            .json(200, s::<WorldView>),
        op("get", "/v1/services/{id}/{name}/{path}", "Any method: relayed to the service's port in the world"),
        op("post", "/v1/worlds/{id}/push-down", "Split a world into verses (default nash/optimal/chaos)")
            .optional(s::<PushDownRequest>)
            .json(201, s::<PushedDown>),
        op("get", "/v1/snapshots", "List snapshots").json(200, s::<Vec<SnapshotView>>),
        op("get", "/v1/snapshots/{id}", "Inspect a snapshot").json(200, s::<SnapshotView>),
        op("delete", "/v1/snapshots/{id}", "Delete a snapshot").json(200, s::<Deleted>),
        op("post", "/v1/snapshots/{id}/branch", "Branch a snapshot into count worlds")
            .body(s::<BranchRequest>)
            .json(201, s::<Branched>),
        op("get", "/v1/images", "List images").json(200, s::<Vec<ImageInfo>>),
        op("post", "/v1/verses/run", "Run code in verses' worlds in parallel")
            .body(s::<RunVersesRequest>)
            .json(200, s::<Vec<VerseResult>>),
        op("post", "/v1/partitions/{p}/pull-up", "Resolve a partition over worlds and pull balances up")
            .body(s::<PullUpRequest>)
            .json(200, s::<PulledUp>),
        op("get", "/v1/ledger", "The verse tree and balances").json(200, s::<world_core::ledger::Ledger>),
        op("post", "/v1/ledger/ops", "Apply one ledger operation ({\"op\": \"deposit\", ...})")
            .body(s::<world_core::ledger::Op>)
            .json(200, s::<world_core::ledger::Applied>),
        op("get", "/v1/ledger/journal", "Ledger journal").query(LIMIT).json(200, s::<Vec<JournalRow>>),
        op("get", "/v1/entities", "Entity records").query(ENTITIES).json(200, s::<Vec<EntityRow>>),
        op("get", "/v1/branches", "Branch records").query(LIMIT).json(200, s::<Vec<BranchRow>>),
        op("get", "/v1/resolutions", "Resolution records").query(LIMIT).json(200, s::<Vec<ResolutionRow>>),
        op("get", "/v1/metrics", "Timing summary per operation").json(200, s::<Vec<MetricSummary>>),
        // The original design's client (babashka).
        op("post", "/v1/sandboxes", "Original design: create a sandbox")
            .optional(s::<crate::routes::sandboxes::CreateReq>)
            .json(201, s::<WorldView>),
        op("get", "/v1/sandboxes", "Original design: list sandboxes").json(200, s::<Vec<WorldView>>),
        op("get", "/v1/sandboxes/{id}", "Original design: inspect a sandbox").json(200, s::<WorldView>),
        op("delete", "/v1/sandboxes/{id}", "Original design: destroy a sandbox").json(200, s::<Destroyed>),
        op("post", "/v1/sandboxes/{id}/snapshots", "Original design: snapshot (a taken name falls back to a unique one)")
            .optional(s::<crate::routes::sandboxes::SnapshotReq>)
            .json(201, s::<SandboxSnapshot>),
        op("post", "/v1/sandboxes/{id}/execute", "Original design: run Python code (JSON without a Content-Type is accepted)")
            .body(s::<RunCodeRequest>)
            .json(200, s::<CodeResponse>),
        // E2B's control plane (its SDKs' shapes).
        op("post", "/v2/sandboxes", "E2B: create a sandbox (201)").body(s::<crate::e2b::control::NewSandbox>),
        op("get", "/v2/sandboxes", "E2B: list sandboxes (?metadata, state, limit, nextToken; x-next-token)"),
        op("get", "/sandboxes/{id}", "E2B: a sandbox's details"),
        op("delete", "/sandboxes/{id}", "E2B: kill a sandbox (204)").answers(Answer::Empty(204)),
        op("post", "/sandboxes/{id}/timeout", "E2B: set the remaining lifetime (204)")
            .body(s::<crate::e2b::control::TimeoutReq>)
            .answers(Answer::Empty(204)),
        op("post", "/sandboxes/{id}/pause", "E2B: pause (204; 409 when paused)").answers(Answer::Empty(204)),
        op("post", "/v2/sandboxes/{id}/connect", "E2B: connect, resuming a paused sandbox")
            .optional(s::<crate::e2b::control::ConnectReq>),
        op("post", "/sandboxes/{id}/fork", "E2B: fork into count sandboxes (our branch)")
            .optional(s::<crate::e2b::control::ForkReq>),
        op("post", "/sandboxes/{id}/snapshots", "E2B: snapshot a sandbox (usable as a template)")
            .optional(s::<crate::e2b::control::SnapshotReq>),
        op("get", "/snapshots", "E2B: list snapshots"),
        op("delete", "/templates/{id}", "E2B: delete a snapshot").answers(Answer::Empty(204)),
        // Morph Cloud's API (its SDK's shapes).
        op("get", "/api/image", "Morph: list images"),
        op("get", "/api/snapshot", "Morph: list snapshots").query(MORPH_LIST),
        op("post", "/api/snapshot", "Morph: create a snapshot from an image")
            .optional(s::<crate::routes::morph_snapshots::CreateReq>),
        op("get", "/api/snapshot/list", "Morph: list snapshots, paginated"),
        op("get", "/api/snapshot/{id}", "Morph: get a snapshot"),
        op("delete", "/api/snapshot/{id}", "Morph: delete a snapshot"),
        op("post", "/api/snapshot/{id}/metadata", "Morph: set snapshot metadata").body(s::<MetadataIn>),
        op("post", "/api/snapshot/{id}/ttl", "Morph: set snapshot TTL")
            .body(s::<crate::routes::morph_snapshots::TtlReq>),
        op("post", "/api/snapshot/{id}/boot", "Morph: start an instance from a snapshot")
            .optional(s::<crate::routes::morph_snapshots::BootReq>),
        op("get", "/api/instance", "Morph: list instances").query(MORPH_LIST),
        op("post", "/api/instance", "Morph: start an instance (?snapshot_id)")
            .optional(s::<crate::routes::morph_instances::StartReq>),
        op("get", "/api/instance/list", "Morph: list instances, paginated"),
        op("get", "/api/instance/{id}", "Morph: get an instance"),
        op("delete", "/api/instance/{id}", "Morph: stop (destroy) an instance"),
        op("post", "/api/instance/{id}/pause", "Morph: pause"),
        op("post", "/api/instance/{id}/resume", "Morph: resume"),
        op("post", "/api/instance/{id}/metadata", "Morph: set metadata").body(s::<MetadataIn>),
        op("post", "/api/instance/{id}/ttl", "Morph: set TTL")
            .body(s::<crate::routes::morph_instances::TtlReq>),
        op("post", "/api/instance/{id}/exec", "Morph: exec")
            .body(s::<crate::routes::morph_instances::ExecReq>),
        op("post", "/api/instance/{id}/exec/sse", "Morph: exec streamed as server-sent events")
            .body(s::<crate::routes::morph_instances::ExecReq>)
            .answers(Answer::Events),
        op("post", "/api/instance/{id}/snapshot", "Morph: snapshot an instance (?digest)")
            .optional(s::<crate::routes::morph_instances::SnapReq>),
        op("post", "/api/instance/{id}/http", "Morph: expose an HTTP service")
            .body(s::<crate::routes::services::ExposeReq>),
        op("delete", "/api/instance/{id}/http/{name}", "Morph: hide an HTTP service"),
        op("post", "/api/instance/{id}/branch", "Morph: branch (?count=N): the snapshot and N instances"),
    ]
}

/// The stable error codes of [`crate::ApiError`].
const ERROR_CODES: &[&str] = &[
    "unauthorized",
    "invalid_request",
    "unsupported_media_type",
    "payload_too_large",
    "not_found",
    "route_not_found",
    "method_not_allowed",
    "refused",
    "world_paused",
    "service_unreachable",
    "service_bad_response",
    "command_not_found",
    "not_executable",
    "unsupported",
    "busy",
    "internal",
];

fn operation(r: &Route, g: &mut SchemaGenerator) -> Value {
    let error = json!({"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut responses = Map::new();
    match r.answer {
        Answer::Json(status, f) => {
            responses.insert(
                status.to_string(),
                json!({"description": "Success", "content": {"application/json": {"schema": f(g)}}}),
            );
        }
        Answer::Events => {
            responses.insert(
                "200".into(),
                json!({"description": "Server-sent events", "content": {"text/event-stream": {"schema": {"type": "string"}}}}),
            );
        }
        Answer::Empty(status) => {
            responses.insert(status.to_string(), json!({"description": "Done"}));
        }
        Answer::Any => {
            responses.insert("2XX".into(), json!({"description": "Success"}));
        }
    }
    responses.insert("4XX".into(), error.clone());
    responses.insert("5XX".into(), error);
    let mut op = json!({
        "summary": r.summary,
        "security": [{"bearer": []}],
        "responses": responses,
    });
    let mut params: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    params.extend(r.query.iter().map(|(name, d)| {
        json!({"name": name, "in": "query", "required": false, "description": d, "schema": {"type": "string"}})
    }));
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    if let Some(f) = r.request {
        op["requestBody"] = json!({
            "required": !r.optional_body,
            "content": {"application/json": {"schema": f(g)}}
        });
    }
    op
}

/// The document.
pub fn document() -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let mut paths = Map::new();
    for r in routes() {
        let o = operation(&r, &mut g);
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = o;
    }
    let mut schemas: Map<String, Value> = g.take_definitions(true).into_iter().collect();
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["error_code", "detail", "status"],
            "properties": {
                "error_code": {"type": "string", "enum": ERROR_CODES},
                "detail": {"type": "string"},
                "status": {"type": "integer"},
                "code": {"type": "integer", "description": "E2B's field: the HTTP status"},
                "message": {"type": "string", "description": "E2B's field: the detail"},
            },
        }),
    );
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "WorldRuntime API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Worlds, snapshots, branches and verses; the original design's /v1/sandboxes; E2B's control plane and a Morph Cloud compatible subset under /api. See docs/api.md.",
        },
        "servers": [{"url": "http://127.0.0.1:7077"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves_and_every_native_route_is_typed() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (i, _) in text.match_indices("\"$ref\":\"#/components/schemas/") {
            let rest = &text[i + "\"$ref\":\"#/components/schemas/".len()..];
            let name = &rest[..rest.find('"').unwrap()];
            assert!(schemas.contains_key(name), "dangling $ref {name}");
        }
        for r in routes() {
            if r.path.starts_with("/v1/") && !r.path.starts_with("/v1/services/") {
                assert!(
                    !matches!(r.answer, Answer::Any),
                    "{} {} has no typed answer",
                    r.method,
                    r.path
                );
            }
        }
        let create = &doc["paths"]["/v1/worlds"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"];
        assert_eq!(create["$ref"], "#/components/schemas/CreateRequest");
        assert!(schemas["CreateRequest"]["properties"]["memory_mib"].is_object());
    }
}
