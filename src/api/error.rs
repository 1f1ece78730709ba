//! The one place that turns errors into HTTP answers. Client faults carry
//! a stable code, a message and (for validation) every offending field path;
//! server faults tell the client little and log the whole cause chain.

use crate::runware::FieldError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

/// The stable machine-readable `code` of every error answer. The one list:
/// the answers below are built from it and the OpenAPI document's
/// `ErrorCode` schema is derived from it, so neither can miss a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400 or 422: the body is not JSON, or fields break rules.
    InvalidRequest,
    /// 401: no valid API key, or a webhook without its token.
    Unauthorized,
    /// 403: authenticated, but what was sent is not believed.
    Forbidden,
    /// 404: no such resource or route.
    NotFound,
    /// 405: the route exists, the method does not (see `Allow`).
    MethodNotAllowed,
    /// 408: the request took longer than the server waits.
    RequestTimeout,
    /// 409: the resource's state does not allow it.
    Conflict,
    /// 413: the body is larger than `server.max_body_bytes`.
    PayloadTooLarge,
    /// 414: the URI is longer than `server.max_uri_bytes`.
    UriTooLong,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 416: a `Range` that is malformed or past the end.
    RangeNotSatisfiable,
    /// 429: too many requests (see `Retry-After`).
    RateLimited,
    /// 422: an `Idempotency-Key` used before with a different request.
    IdempotencyKeyReused,
    /// 409: an `Idempotency-Key` whose first request is still answered.
    IdempotencyKeyInUse,
    /// 5xx: a server fault, logged; the message says little.
    Internal,
    /// 503: something the answer needs (the job store) does not answer now;
    /// retry later.
    Unavailable,
    /// Any other 4xx status (the message says which).
    #[serde(rename = "error")]
    Other,
}

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
    /// A dependency does not answer (503): `what` names it for the client
    /// ("the job store"), the cause is logged.
    Unavailable {
        what: &'static str,
        cause: anyhow::Error,
    },
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
                json!({"error": {"code": ErrorCode::InvalidRequest, "message": message, "fields": fields}}),
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({"error": {"code": ErrorCode::Unauthorized, "message": "a valid API key is required (Authorization: Bearer <key>)"}}),
            ),
            ApiError::TokenRequired(message) => (
                StatusCode::UNAUTHORIZED,
                json!({"error": {"code": ErrorCode::Unauthorized, "message": message}}),
            ),
            ApiError::Forbidden(message) => (
                StatusCode::FORBIDDEN,
                json!({"error": {"code": ErrorCode::Forbidden, "message": message}}),
            ),
            ApiError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                json!({"error": {"code": ErrorCode::NotFound, "message": format!("{what} not found")}}),
            ),
            ApiError::Conflict(message) => (
                StatusCode::CONFLICT,
                json!({"error": {"code": ErrorCode::Conflict, "message": message}}),
            ),
            ApiError::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": {"code": ErrorCode::PayloadTooLarge, "message": match limit {
                    Some(n) => format!("the body is larger than {n} bytes"),
                    None => "the body is larger than the server accepts".to_string(),
                }}}),
            ),
            ApiError::UriTooLong { limit } => (
                StatusCode::URI_TOO_LONG,
                json!({"error": {"code": ErrorCode::UriTooLong, "message": format!("the URI is longer than {limit} bytes")}}),
            ),
            ApiError::RateLimited {
                scope,
                retry_after_secs,
            } => {
                let body = json!({"error": {"code": ErrorCode::RateLimited, "message": format!(
                    "too many requests from this {scope}; retry after {retry_after_secs} s"
                ), "retry_after_secs": retry_after_secs}});
                let mut res = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                return res;
            }
            ApiError::RangeNotSatisfiable { message, size } => {
                let body =
                    json!({"error": {"code": ErrorCode::RangeNotSatisfiable, "message": message}});
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
                json!({"error": {"code": ErrorCode::IdempotencyKeyReused, "message": message, "fields": [{"path": "Idempotency-Key", "rule": "names one request; this one differs from the first"}]}}),
            ),
            ApiError::IdempotencyInFlight(message) => (
                StatusCode::CONFLICT,
                json!({"error": {"code": ErrorCode::IdempotencyKeyInUse, "message": message}}),
            ),
            ApiError::Unavailable { what, cause } => {
                tracing::warn!(error = ?cause, "{what} does not answer");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": {"code": ErrorCode::Unavailable, "message": format!("{what} does not answer; retry later")}}),
                )
            }
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": {"code": ErrorCode::Internal, "message": "internal error; it has been logged"}}),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

/// The `code` of an error answer with this status, for answers that are
/// not made by [`ApiError`] (axum's rejections, method routing, timeouts).
fn code_for(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        400 | 422 => ErrorCode::InvalidRequest,
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        408 => ErrorCode::RequestTimeout,
        409 => ErrorCode::Conflict,
        413 => ErrorCode::PayloadTooLarge,
        414 => ErrorCode::UriTooLong,
        415 => ErrorCode::UnsupportedMediaType,
        416 => ErrorCode::RangeNotSatisfiable,
        429 => ErrorCode::RateLimited,
        503 => ErrorCode::Unavailable,
        s if s >= 500 => ErrorCode::Internal,
        _ => ErrorCode::Other,
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

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    /// The codes the OpenAPI document lists: the `ErrorCode` schema's enum.
    fn documented() -> Vec<String> {
        let schema = serde_json::to_value(ErrorCode::schema()).unwrap();
        let mut out = Vec::new();
        // utoipa writes a unit enum with doc comments as `oneOf` of
        // one-value enums, and one without as a single `enum`.
        let mut stack = vec![schema];
        while let Some(v) = stack.pop() {
            if let Some(values) = v["enum"].as_array() {
                out.extend(values.iter().map(|c| c.as_str().unwrap().to_string()));
            }
            for key in ["oneOf", "anyOf"] {
                if let Some(items) = v[key].as_array() {
                    stack.extend(items.iter().cloned());
                }
            }
        }
        out
    }

    async fn code_of(res: Response) -> String {
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["error"]["code"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn every_code_an_answer_carries_is_in_the_documented_enum() {
        let documented = documented();
        let answers = vec![
            ApiError::field("a", "b"),
            ApiError::Unauthorized,
            ApiError::TokenRequired("token"),
            ApiError::Forbidden("no".into()),
            ApiError::NotFound("asset".into()),
            ApiError::Conflict("no".into()),
            ApiError::PayloadTooLarge { limit: Some(1) },
            ApiError::UriTooLong { limit: 1 },
            ApiError::RateLimited {
                scope: "ip",
                retry_after_secs: 1,
            },
            ApiError::RangeNotSatisfiable {
                message: "no".into(),
                size: None,
            },
            ApiError::Internal(anyhow::anyhow!("x")),
            ApiError::Unavailable {
                what: "the job store",
                cause: anyhow::anyhow!("x"),
            },
            ApiError::IdempotencyMismatch("no".into()),
            ApiError::IdempotencyInFlight("no".into()),
        ];
        let mut seen = Vec::new();
        for e in answers {
            seen.push(code_of(e.into_response()).await);
        }
        for status in 400..600u16 {
            let code =
                serde_json::to_value(code_for(StatusCode::from_u16(status).unwrap())).unwrap();
            seen.push(code.as_str().unwrap().to_string());
        }
        for code in &seen {
            assert!(documented.contains(code), "{code} not in {documented:?}");
        }
        // And the list holds nothing no answer can carry.
        for code in &documented {
            assert!(seen.contains(code), "{code} is documented but never sent");
        }
        assert!(documented.contains(&"method_not_allowed".to_string()));
    }
}
