//! The one place that turns errors into HTTP answers. Client faults carry
//! a stable code, a message and (for validation) every offending field path;
//! server faults tell the client little and log the whole cause chain.

use crate::runware::FieldError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug)]
pub enum ApiError {
    /// The body is not JSON, or fields break rules.
    Invalid {
        message: String,
        fields: Vec<FieldError>,
    },
    Unauthorized,
    /// A webhook or event sender did not present the token it must; the
    /// text says which token and how.
    TokenRequired(&'static str),
    /// Authenticated, but what was sent is not believed (an SNS signature).
    Forbidden(String),
    NotFound(String),
    /// The request is valid but the resource's state does not allow it.
    Conflict(String),
    /// The body is larger than `server.max_body_bytes` (the limit, when
    /// the code that noticed knows it).
    PayloadTooLarge {
        limit: Option<usize>,
    },
    /// The URI is longer than `server.max_uri_bytes`.
    UriTooLong {
        limit: usize,
    },
    /// Too many requests from one client IP or API key.
    RateLimited {
        scope: &'static str,
        retry_after_secs: u64,
    },
    /// A `Range` that is malformed or starts past the end; `size` (when
    /// known) goes into `Content-Range: bytes */size`.
    RangeNotSatisfiable {
        message: String,
        size: Option<u64>,
    },
    Internal(anyhow::Error),
    /// An `Idempotency-Key` used before with a different request (422).
    IdempotencyMismatch(String),
    /// An `Idempotency-Key` whose first request is still being answered (409).
    IdempotencyInFlight(String),
}

impl ApiError {
    pub fn field(path: impl Into<String>, rule: impl Into<String>) -> Self {
        ApiError::Invalid {
            message: "the request has invalid fields".into(),
            fields: vec![FieldError {
                path: path.into(),
                rule: rule.into(),
            }],
        }
    }

    pub fn fields(fields: Vec<FieldError>) -> Self {
        ApiError::Invalid {
            message: "the request has invalid fields".into(),
            fields,
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError::Internal(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Invalid { message, fields } => (
                StatusCode::BAD_REQUEST,
                json!({"error": {"code": "invalid_request", "message": message, "fields": fields}}),
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({"error": {"code": "unauthorized", "message": "a valid API key is required (Authorization: Bearer <key>)"}}),
            ),
            ApiError::TokenRequired(message) => (
                StatusCode::UNAUTHORIZED,
                json!({"error": {"code": "unauthorized", "message": message}}),
            ),
            ApiError::Forbidden(message) => (
                StatusCode::FORBIDDEN,
                json!({"error": {"code": "forbidden", "message": message}}),
            ),
            ApiError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                json!({"error": {"code": "not_found", "message": format!("{what} not found")}}),
            ),
            ApiError::Conflict(message) => (
                StatusCode::CONFLICT,
                json!({"error": {"code": "conflict", "message": message}}),
            ),
            ApiError::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": {"code": "payload_too_large", "message": match limit {
                    Some(n) => format!("the body is larger than {n} bytes"),
                    None => "the body is larger than the server accepts".to_string(),
                }}}),
            ),
            ApiError::UriTooLong { limit } => (
                StatusCode::URI_TOO_LONG,
                json!({"error": {"code": "uri_too_long", "message": format!("the URI is longer than {limit} bytes")}}),
            ),
            ApiError::RateLimited {
                scope,
                retry_after_secs,
            } => {
                let body = json!({"error": {"code": "rate_limited", "message": format!(
                    "too many requests from this {scope}; retry after {retry_after_secs} s"
                ), "retry_after_secs": retry_after_secs}});
                let mut res = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                return res;
            }
            ApiError::RangeNotSatisfiable { message, size } => {
                let body = json!({"error": {"code": "range_not_satisfiable", "message": message}});
                let mut res = (StatusCode::RANGE_NOT_SATISFIABLE, Json(body)).into_response();
                if let Some(size) = size {
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                        res.headers_mut().insert(header::CONTENT_RANGE, v);
                    }
                }
                return res;
            }
            ApiError::IdempotencyMismatch(message) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": {"code": "idempotency_key_reused", "message": message, "fields": [{"path": "Idempotency-Key", "rule": "names one request; this one differs from the first"}]}}),
            ),
            ApiError::IdempotencyInFlight(message) => (
                StatusCode::CONFLICT,
                json!({"error": {"code": "idempotency_key_in_use", "message": message}}),
            ),
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": {"code": "internal", "message": "internal error; it has been logged"}}),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

/// The `code` of an error answer with this status, for answers that are
/// not made by [`ApiError`] (axum's rejections, method routing, timeouts).
fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        416 => "range_not_satisfiable",
        429 => "rate_limited",
        s if s >= 500 => "internal",
        _ => "error",
    }
}

/// The message of such an answer: its own text when it has one (axum's
/// rejections say what was wrong: "Failed to deserialize query string:
/// limit: invalid digit found in string"), else the status's reason.
fn message_for(status: StatusCode, text: &str) -> String {
    let text = text.trim();
    if !text.is_empty() && text.len() <= 1024 && !status.is_server_error() {
        return text.to_string();
    }
    match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            "this method is not allowed here (see the Allow header)".into()
        }
        StatusCode::REQUEST_TIMEOUT => "the request took too long".into(),
        StatusCode::NOT_FOUND => "no such route".into(),
        s if s.is_server_error() => "internal error; it has been logged".into(),
        s => s.canonical_reason().unwrap_or("error").to_lowercase(),
    }
}

/// Gives every error answer the documented JSON shape, whoever made it:
/// an answer of status 400 or more that is not JSON gets
/// `{"error": {"code", "message"}}` (its headers, such as `Allow`, kept).
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let message = message_for(status, &String::from_utf8_lossy(&text));
    let body =
        serde_json::to_vec(&json!({"error": {"code": code_for(status), "message": message}}))
            .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}
