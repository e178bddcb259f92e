//! `/v1/images`: the images worlds are created from.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use world_substrate::ImageInfo;

use super::St;
use crate::state::AppState;
use crate::ApiError;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/images", get(list))
}

/// Every image.
pub async fn all(st: &Arc<AppState>) -> Result<Vec<ImageInfo>, ApiError> {
    st.run(|st| Ok(st.engine.image_list()?)).await
}

async fn list(st: St) -> Result<Json<Vec<ImageInfo>>, ApiError> {
    Ok(Json(all(&st).await?))
}
