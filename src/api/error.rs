//! The one place that turns errors into HTTP answers. Client faults carry
//! a stable code, a message and (for validation) every offending field path;
//! server faults tell the client little and log the whole cause chain.

use crate::runware::FieldError;
use axum::http::StatusCode;
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
    Internal(anyhow::Error),
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
