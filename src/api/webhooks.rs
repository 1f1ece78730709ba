//! `POST /v1/webhooks/runware/{variation}?token=...`: results the generator
//! pushes. The token is per variation and compared in constant time. A
//! webhook only records what it says and wakes the variation; the worker
//! still confirms arrival from the object itself, so repeats are no-ops.

use super::{ApiError, AppState};
use crate::domain::VariationId;
use crate::runware::Envelope;
use crate::secret::constant_time_eq;
use crate::tokens::sha256_hex;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

pub async fn runware(
    State(state): State<AppState>,
    Path(variation): Path<String>,
    Query(q): Query<TokenQuery>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    // An unknown variation and a wrong token look the same from outside.
    let id = VariationId::parse(&variation).ok_or(ApiError::Unauthorized)?;
    let v = state
        .store
        .variation(id.as_str())
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let presented = sha256_hex(q.token.as_deref().unwrap_or(""));
    if !constant_time_eq(presented.as_bytes(), v.webhook_token_sha256.as_bytes()) {
        return Err(ApiError::Unauthorized);
    }
    let env: Envelope = serde_json::from_slice(&body)
        .map_err(|e| ApiError::field("$", format!("must be a Runware response envelope ({e})")))?;
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
