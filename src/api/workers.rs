//! `GET /v1/workers`: the live worker processes (heartbeat within
//! `jobs::fleet::LIVE_WITHIN` intervals) with what each runs, and the queue
//! depth by state.

use super::{ApiError, ApiKey, AppState};
use crate::jobs::fleet::{HEARTBEAT, LIVE_WITHIN};
use crate::jobs::store::RunningStep;
use crate::time::rfc3339;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkerView {
    pub id: String,
    pub host: String,
    pub version: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub last_heartbeat: String,
    pub running: Vec<RunningStepView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunningStepView {
    pub variation_id: String,
    /// The state the step was claimed in.
    pub stage: String,
    /// RFC 3339.
    pub since: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkersView {
    pub workers: Vec<WorkerView>,
    /// Variations by state, every state listed.
    pub queue: BTreeMap<String, i64>,
}

fn step_view(s: RunningStep) -> RunningStepView {
    RunningStepView {
        variation_id: s.variation_id,
        stage: s.stage,
        since: rfc3339(s.since),
    }
}

#[utoipa::path(get, operation_id = "list_workers", path = "/v1/workers", tag = "meta", responses((status = 200, description = "Live workers and queue depth by state", body = WorkersView), (status = 401, description = "No valid credentials", body = crate::api::openapi::ErrorBody), (status = 429, description = "Rate limited (Retry-After)", body = crate::api::openapi::ErrorBody)))]
#[tracing::instrument(name = "workers.list", skip_all)]
pub async fn list(
    _key: ApiKey,
    State(state): State<AppState>,
) -> Result<Json<WorkersView>, ApiError> {
    let since = crate::time::now_ms() - (HEARTBEAT * LIVE_WITHIN).as_millis() as i64;
    let workers = state
        .store
        .live_workers(since)
        .await?
        .into_iter()
        .map(|w| WorkerView {
            id: w.id,
            host: w.host,
            version: w.version,
            started_at: rfc3339(w.started_at),
            last_heartbeat: rfc3339(w.last_heartbeat),
            running: w.running.into_iter().map(step_view).collect(),
        })
        .collect();
    let queue = state
        .store
        .count_by_state()
        .await?
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), n))
        .collect();
    Ok(Json(WorkersView { workers, queue }))
}
