//! `POST /v1/events/s3`: S3 event notifications (AWS JSON shape). A master
//! landing at a variation's key wakes that variation; the worker then checks
//! the object itself, so duplicated or reordered events do no harm.

use super::{bearer, ApiError, AppState};
use crate::secret::constant_time_eq;
use crate::storage::event::S3EventNotification;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::Json;
use serde_json::{json, Value};

pub struct EventSender;

impl axum::extract::FromRequestParts<AppState> for EventSender {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = bearer(parts).ok_or(ApiError::Unauthorized)?;
        if constant_time_eq(presented.as_bytes(), state.events_token.expose().as_bytes()) {
            Ok(EventSender)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

pub async fn s3(
    _sender: EventSender,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let note: S3EventNotification = serde_json::from_slice(&body).map_err(|e| {
        ApiError::field("Records", format!("must be an S3 event notification ({e})"))
    })?;
    let mut matched = 0;
    for rec in &note.records {
        if !rec.is_object_created() {
            continue;
        }
        if rec.s3.bucket.name != state.settings.storage.masters_bucket {
            continue;
        }
        let Ok(key) = rec.s3.object.decode_key() else {
            continue;
        };
        if let Some(v) = state.store.variation_by_master_key(&key).await? {
            matched += 1;
            if state.store.nudge(&v.id).await? {
                state.wake.notify_waiters();
            }
            tracing::info!(variation = %v.id, key = %key, "master upload event");
        }
    }
    Ok(Json(
        json!({"records": note.records.len(), "matched": matched}),
    ))
}
