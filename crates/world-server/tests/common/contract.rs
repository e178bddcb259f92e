//! The daemon's real traffic checked against its own `/openapi.json`:
//! every answer to a request the harness sends with [`super::Daemon::req`]
//! must be one the document lists for that route and status, with a body
//! valid against its schema (errors against `Error`), and every request
//! the daemon accepted (2xx) must be valid against the route's request
//! schema. So the document cannot drift from the code: a field renamed
//! in a type changes both, and a route that answers something else fails
//! whichever test made the call.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use serde_json::{json, Value};

/// The document, compiled validators, and the routes seen answering 2xx.
pub struct Contract {
    doc: Value,
    validators: Mutex<HashMap<String, jsonschema::Validator>>,
    covered: Mutex<BTreeSet<(String, String)>>,
}

impl Contract {
    pub fn new(doc: Value) -> Contract {
        assert_eq!(doc["openapi"], "3.1.0", "not an OpenAPI 3.1 document");
        Contract {
            doc,
            validators: Mutex::new(HashMap::new()),
            covered: Mutex::new(BTreeSet::new()),
        }
    }

    /// The template of the document that `path` (query removed) matches,
    /// the one with the most literal segments when several do.
    pub fn template(&self, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or(path);
        let segs: Vec<&str> = path.split('/').collect();
        let mut best: Option<(usize, String)> = None;
        for t in self.doc["paths"].as_object()?.keys() {
            let ts: Vec<&str> = t.split('/').collect();
            let rest = ts.last() == Some(&"{path}");
            let fits = if rest {
                segs.len() >= ts.len() - 1
                    && ts[..ts.len() - 1]
                        .iter()
                        .zip(&segs)
                        .all(|(a, b)| seg_fits(a, b))
            } else {
                ts.len() == segs.len() && ts.iter().zip(&segs).all(|(a, b)| seg_fits(a, b))
            };
            if fits {
                let literal = ts.iter().filter(|s| !s.starts_with('{')).count();
                if best.as_ref().is_none_or(|(n, _)| literal > *n) {
                    best = Some((literal, t.clone()));
                }
            }
        }
        best.map(|(_, t)| t)
    }

    fn validate(&self, key: &str, schema: &Value, instance: &Value) -> Result<(), String> {
        let mut cache = self.validators.lock().unwrap_or_else(|p| p.into_inner());
        if !cache.contains_key(key) {
            // The schema's `$ref`s point into the document's components.
            let root = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": self.doc["components"],
                "allOf": [schema],
            });
            let v = jsonschema::validator_for(&root)
                .map_err(|e| format!("the document's schema for {key} does not compile: {e}"))?;
            cache.insert(key.to_string(), v);
        }
        let errors: Vec<String> = cache[key]
            .iter_errors(instance)
            .take(5)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// Checks one exchange; panics with what does not match.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        request: Option<&Value>,
        status: u16,
        body: &[u8],
        ctype: Option<&str>,
    ) {
        let m = method.to_ascii_lowercase();
        let what = format!("{method} {path} -> {status}");
        let error_schema = json!({"$ref": "#/components/schemas/Error"});
        let as_json = || -> Value {
            serde_json::from_slice(body).unwrap_or_else(|e| {
                panic!(
                    "{what}: the answer is not JSON ({e}): {}",
                    String::from_utf8_lossy(body)
                )
            })
        };
        let t = self.template(path);
        if t.as_deref().is_some_and(|t| t.starts_with("/v1/services/")) {
            return; // relayed: the world's service answers, not the daemon
        }
        if status >= 400 {
            if let Err(e) = self.validate("Error", &error_schema, &as_json()) {
                panic!("{what}: the error does not match the document: {e}");
            }
            return;
        }
        let Some(t) = t else {
            panic!("{what}: a success on a route the document does not list");
        };
        let op = &self.doc["paths"][&t][&m];
        assert!(!op.is_null(), "{what}: the document lists no {m} for {t}");
        let responses = &op["responses"];
        let (key, answer) = if !responses[status.to_string()].is_null() {
            (status.to_string(), &responses[status.to_string()])
        } else if (200..300).contains(&status) && !responses["2XX"].is_null() {
            ("2XX".to_string(), &responses["2XX"])
        } else {
            panic!(
                "{what}: the document lists no {status} for {m} {t} (it lists {:?})",
                responses.as_object().map(|o| o.keys().collect::<Vec<_>>())
            );
        };
        if let Some(schema) = answer["content"]["application/json"].get("schema") {
            assert!(
                ctype.is_some_and(|c| c.starts_with("application/json")),
                "{what}: content type {ctype:?}, the document says JSON"
            );
            if let Err(e) = self.validate(&format!("{m} {t} {key}"), schema, &as_json()) {
                panic!(
                    "{what}: the answer does not match the document: {e}\n{}",
                    String::from_utf8_lossy(body)
                );
            }
        } else if answer["content"].get("text/event-stream").is_some() {
            assert!(
                ctype.is_some_and(|c| c.starts_with("text/event-stream")),
                "{what}: content type {ctype:?}, the document says events"
            );
        }
        if let Some(schema) = op["requestBody"]["content"]["application/json"].get("schema") {
            match request {
                Some(r) => {
                    if let Err(e) = self.validate(&format!("{m} {t} request"), schema, r) {
                        panic!(
                            "{what}: the daemon accepted a request the document refuses: {e}\n{r}"
                        );
                    }
                }
                None => assert!(
                    op["requestBody"]["required"] == false,
                    "{what}: accepted without the body the document requires"
                ),
            }
        }
        self.covered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((m, t));
    }

    /// The documented operations (method, template) whose path starts with
    /// `prefix` that no exchange has covered with a success.
    pub fn uncovered(&self, prefix: &str) -> Vec<(String, String)> {
        let covered = self.covered.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (t, ops) in self.doc["paths"].as_object().unwrap() {
            if !t.starts_with(prefix) {
                continue;
            }
            for m in ops.as_object().unwrap().keys() {
                if !covered.contains(&(m.clone(), t.clone())) {
                    out.push((m.clone(), t.clone()));
                }
            }
        }
        out
    }
}

fn seg_fits(template: &str, seg: &str) -> bool {
    template == seg || (template.starts_with('{') && !seg.is_empty())
}
