//! The Connect protocol's framing and errors, as E2B's agent ("envd")
//! speaks them with the JSON codec: unary calls are plain JSON bodies;
//! server streams are envelopes of one flag byte, a big-endian `u32`
//! length and a JSON message, ended by an envelope with flag `0x02`
//! holding `{}` or `{"error": {...}}`. Errors are
//! `{"code": "not_found", "message": ...}` with the matching HTTP status.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Flag of an end-of-stream envelope.
pub const END_STREAM: u8 = 0x02;

/// Largest request message accepted (envd requests are small JSON).
pub const MAX_MESSAGE: usize = 1 << 20;

/// Connect's error codes (the ones we answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 400: the request is malformed.
    InvalidArgument,
    /// 400: the state does not allow it (a paused sandbox).
    FailedPrecondition,
    /// 401.
    Unauthenticated,
    /// 404.
    NotFound,
    /// 409.
    AlreadyExists,
    /// 429: too large.
    ResourceExhausted,
    /// 501.
    Unimplemented,
    /// 500.
    Internal,
}

impl Code {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArgument => "invalid_argument",
            Code::FailedPrecondition => "failed_precondition",
            Code::Unauthenticated => "unauthenticated",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::ResourceExhausted => "resource_exhausted",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
        }
    }

    /// The HTTP status Connect pairs with it.
    pub fn status(self) -> StatusCode {
        match self {
            Code::InvalidArgument | Code::FailedPrecondition => StatusCode::BAD_REQUEST,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists => StatusCode::CONFLICT,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A Connect error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    /// What kind.
    pub code: Code,
    /// For people.
    pub message: String,
}

impl ConnectError {
    /// An error of `code`.
    pub fn new(code: Code, message: impl Into<String>) -> ConnectError {
        ConnectError {
            code,
            message: message.into(),
        }
    }

    /// `{"code", "message"}`.
    pub fn to_json(&self) -> Value {
        json!({"code": self.code.as_str(), "message": self.message})
    }
}

impl IntoResponse for ConnectError {
    fn into_response(self) -> Response {
        (
            self.code.status(),
            [(header::CONTENT_TYPE, "application/json")],
            self.to_json().to_string(),
        )
            .into_response()
    }
}

impl From<crate::ApiError> for ConnectError {
    fn from(e: crate::ApiError) -> Self {
        let code = match e.status.as_u16() {
            400 | 422 => Code::InvalidArgument,
            401 => Code::Unauthenticated,
            404 => Code::NotFound,
            409 => Code::FailedPrecondition,
            413 => Code::ResourceExhausted,
            501 => Code::Unimplemented,
            _ => Code::Internal,
        };
        ConnectError::new(code, e.message)
    }
}

/// The JSON message of a unary call (`application/json`).
pub fn unary<T: serde::de::DeserializeOwned>(
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<T, ConnectError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(ConnectError::new(
            Code::InvalidArgument,
            "a unary call takes application/json",
        ));
    }
    if body.len() > MAX_MESSAGE {
        return Err(ConnectError::new(
            Code::ResourceExhausted,
            "message too large",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ConnectError::new(Code::InvalidArgument, format!("bad message: {e}")))
}

/// One envelope around `msg`.
pub fn envelope(flags: u8, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + msg.len());
    out.push(flags);
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(msg);
    out
}

/// The end-of-stream envelope: `{}`, or the error.
pub fn end_stream(err: Option<&ConnectError>) -> Vec<u8> {
    let body = match err {
        None => json!({}),
        Some(e) => json!({"error": e.to_json()}),
    };
    envelope(END_STREAM, body.to_string().as_bytes())
}

/// The first message of a streaming request body: exactly one data
/// envelope (flag 0, uncompressed), at most [`MAX_MESSAGE`] bytes,
/// nothing after it but an optional end-of-stream envelope.
pub fn first_message(body: &[u8]) -> Result<&[u8], ConnectError> {
    let bad = |m: &str| ConnectError::new(Code::InvalidArgument, m.to_string());
    if body.len() < 5 {
        return Err(bad("the request is not a Connect envelope"));
    }
    let flags = body[0];
    if flags & 0x01 != 0 {
        return Err(bad("compressed messages are not accepted"));
    }
    if flags != 0 {
        return Err(bad("the first envelope must carry a message"));
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if len > MAX_MESSAGE {
        return Err(ConnectError::new(
            Code::ResourceExhausted,
            format!("message of {len} bytes is over {MAX_MESSAGE}"),
        ));
    }
    let rest = &body[5..];
    if rest.len() < len {
        return Err(bad("the envelope is shorter than its length"));
    }
    let after = &rest[len..];
    if !after.is_empty() && (after.len() < 5 || after[0] != END_STREAM) {
        return Err(bad("a streaming request carries one message"));
    }
    Ok(&rest[..len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn framing() {
        let e = envelope(0, b"{}");
        assert_eq!(e, [0, 0, 0, 0, 2, b'{', b'}']);
        assert_eq!(first_message(&e).unwrap(), b"{}");
        assert!(first_message(&[1, 0, 0, 0, 0]).is_err(), "compressed");
        assert!(first_message(&[0, 0, 0, 0, 9, b'{']).is_err(), "short");
        assert!(first_message(&[0, 0x7f, 0, 0, 0]).is_err(), "too large");
        let end = end_stream(Some(&ConnectError::new(Code::NotFound, "x")));
        assert_eq!(end[0], END_STREAM);
        let v: Value = serde_json::from_slice(&end[5..]).unwrap();
        assert_eq!(v["error"]["code"], "not_found");
    }

    proptest! {
        /// The parser never panics and never reads past its input, and a
        /// well-formed envelope gives back exactly its message.
        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(m) = first_message(&body) {
                prop_assert!(m.len() + 5 <= body.len());
            }
        }

        #[test]
        fn round_trips(msg in proptest::collection::vec(any::<u8>(), 0..256), end in any::<bool>()) {
            let mut b = envelope(0, &msg);
            if end { b.extend(end_stream(None)); }
            prop_assert_eq!(first_message(&b).unwrap(), &msg[..]);
        }
    }
}
