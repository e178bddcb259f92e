//! Extractors that turn malformed requests into [`ApiError`]s (JSON
//! bodies, query strings) instead of axum's plain-text rejections.
//!
//! Every request body of the API is a JSON object: a body whose top level
//! is anything else is refused before it reaches serde, which would
//! otherwise read a struct from a JSON array (`[]` as every field left
//! out, so `POST /v1/worlds` with `[]` made a world).

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A JSON body of type `T`; failures are 400/413/415 with a clear message.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_some_and(|ct| is_json_type(ct.as_bytes()));
        if !json {
            return Err(unsupported_media_type());
        }
        let bytes = body_bytes(req, state).await?;
        object(&bytes).map(Body)
    }
}

/// A JSON body of type `T` that may be absent (no body or an empty one
/// means `T::default()`), whatever the content type says.
pub struct OptBody<T>(pub T);

impl<S, T> FromRequest<S> for OptBody<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptBody(T::default()));
        }
        object(&bytes).map(OptBody)
    }
}

/// A required JSON body of type `T` that may come without a
/// `Content-Type`, as the original design's babashka client sends it
/// (`http/post` with a string `:body` and no header). A `Content-Type`
/// that is given must still be JSON (415 otherwise); an empty body is 400.
pub struct LaxBody<T>(pub T);

impl<S, T> FromRequest<S> for LaxBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(axum::http::header::CONTENT_TYPE) {
            if !is_json_type(ct.as_bytes()) {
                return Err(unsupported_media_type());
            }
        }
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request("missing JSON body"));
        }
        object(&bytes).map(LaxBody)
    }
}

/// A JSON object read as `T`, or a 400 saying what is wrong.
fn object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => return Err(ApiError::bad_request("missing JSON body")),
        Some(_) => {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ))
        }
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Whether a `Content-Type` value names JSON (`application/json` or a
/// `+json` suffix type, parameters ignored).
fn is_json_type(v: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(v) else {
        return false;
    };
    let essence = s.split(';').next().unwrap_or("").trim();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json") || sub.to_ascii_lowercase().ends_with("+json"))
}

async fn body_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    e.body_text(),
                )
            } else {
                ApiError::bad_request(e.body_text())
            }
        })
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "expected a JSON body with `Content-Type: application/json`",
    )
}

/// A query string of type `T`; failures are 400 with a clear message.
pub struct Q<T>(pub T);

impl<S, T> FromRequestParts<S> for Q<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Q(q.0))
            .map_err(|r: QueryRejection| ApiError::bad_request(r.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::{is_json_type, object};
    use proptest::prelude::*;

    #[test]
    fn only_objects_are_bodies() {
        #[derive(serde::Deserialize, Debug)]
        struct AllOptional {
            #[serde(default)]
            _a: Option<u32>,
        }
        assert!(object::<AllOptional>(b" {}").is_ok());
        for bad in [&b"[]"[..], b"[null]", b"null", b"1", b"\"x\"", b"", b"  "] {
            assert!(
                object::<AllOptional>(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn json_types() {
        for t in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/problem+json",
        ] {
            assert!(is_json_type(t.as_bytes()), "{t}");
        }
        for t in [
            "text/plain",
            "application/xml",
            "json",
            "",
            "application/jsonx",
        ] {
            assert!(!is_json_type(t.as_bytes()), "{t}");
        }
    }

    proptest! {
        /// Parameters never change the verdict on the media type itself.
        #[test]
        fn parameters_are_ignored(sub in "[a-z+]{1,12}", param in "[ -~]{0,20}") {
            let bare = format!("application/{sub}");
            let with = format!("{bare};{param}");
            prop_assert_eq!(is_json_type(bare.as_bytes()), is_json_type(with.as_bytes()));
        }
    }
}
