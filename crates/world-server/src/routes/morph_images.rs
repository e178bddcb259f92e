//! Morph `GET /api/image`: our images as Morph base images
//! (`id` = `name` = the image name, e.g. `host`).

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::St;
use crate::state::AppState;
use crate::ApiError;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/image", get(list))
}

async fn list(st: St) -> Result<Json<Value>, ApiError> {
    let images = super::images::all(&st).await?;
    let data: Vec<Value> = images
        .iter()
        .map(|i| {
            json!({
                "id": i.name,
                "object": "image",
                "name": i.name,
                "description": format!("WorldRuntime {:?} image", i.kind).to_lowercase(),
                "disk_size": 0,
                "created": i.created_at,
            })
        })
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}
