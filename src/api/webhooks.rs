//! `POST /v1/webhooks/runware/{variation}?token=...`: results the generator
//! pushes. The token is per variation and compared in constant time. A
//! webhook only records what it says and wakes the variation; the worker
//! still confirms arrival from the object itself, so repeats are no-ops.

use super::{ApiError, AppState};
use crate::domain::VariationId;
use crate::runware::{Envelope, FieldError};
use crate::secret::constant_time_eq;
use crate::tokens::sha256_hex;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

/// What a caller without the right token is told.
pub const TOKEN_REQUIRED: &str =
    "a valid webhook token is required: the ?token= of the webhookURL reelay gave for this variation";

/// Reads a webhook body as a Runware envelope; a field of the wrong shape
/// is named by its path (`data[0].cost`), a body that is not JSON by `$`.
pub fn decode(body: &[u8]) -> Result<Envelope, FieldError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let env: Envelope = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        FieldError {
            path: if path == "." { "$".into() } else { path },
            rule: format!("must be a Runware response envelope ({})", e.inner()),
        }
    })?;
    de.end().map_err(|e| FieldError {
        path: "$".into(),
        rule: format!("must be one JSON value ({e})"),
    })?;
    Ok(env)
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

#[utoipa::path(post, operation_id = "runware_webhook", path = "/v1/webhooks/runware/{variation}", tag = "intake", security(("webhook_token" = [])), params(("variation" = String, Path, description = "Variation id"), ("token" = Option<String>, Query, description = "The webhook token")), request_body(content = Object, description = "Runware task result (videoInference)"), responses((status = 200, description = "Accepted"), (status = 400, description = "Invalid fields or parameters, each named", body = crate::api::openapi::ErrorBody), (status = 401, description = "No valid credentials", body = crate::api::openapi::ErrorBody), (status = 409, description = "The state does not allow it, or the Idempotency-Key is in use", body = crate::api::openapi::ErrorBody)))]
#[tracing::instrument(name = "webhooks.runware", skip_all)]
pub async fn runware(
    State(state): State<AppState>,
    Path(variation): Path<String>,
    Query(q): Query<TokenQuery>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    // An unknown variation and a wrong token look the same from outside.
    let id = VariationId::parse(&variation).ok_or(ApiError::TokenRequired(TOKEN_REQUIRED))?;
    let v = state
        .store
        .variation(id.as_str())
        .await?
        .ok_or(ApiError::TokenRequired(TOKEN_REQUIRED))?;
    let presented = sha256_hex(q.token.as_deref().unwrap_or(""));
    if !constant_time_eq(presented.as_bytes(), v.webhook_token_sha256.as_bytes()) {
        return Err(ApiError::TokenRequired(TOKEN_REQUIRED));
    }
    let env = decode(&body).map_err(|e| ApiError::field(e.path, e.rule))?;
    let ours = |uuid: Option<&uuid::Uuid>| uuid.is_some_and(|u| u.to_string() == v.task_uuid);
    let errors: Vec<_> = env
        .all_errors()
        .into_iter()
        .filter(|e| e.task_uuid.is_none() || ours(e.task_uuid.as_ref()))
        .collect();
    let item = env
        .data
        .iter()
        .find(|i| ours(i.task_uuid.as_ref()) && i.error.is_none());
    state
        .store
        .record_provider_report(
            &v.id,
            item,
            (!errors.is_empty()).then_some(&errors[..]),
            item.and_then(|i| i.cost),
        )
        .await?;
    if state.store.nudge(&v.id).await? {
        state.wake.notify_waiters();
    }
    tracing::info!(variation = %v.id, errors = errors.len(), has_result = item.is_some(), "runware webhook");
    Ok(StatusCode::OK)
}
