//! Health answers. `GET /healthz` of the API: 200 when the job store
//! answers, 503 (the JSON error shape, code `unavailable`) when it does not
//! (Postgres down or unreachable), so a load balancer takes the process out
//! instead of reading a 500 as a bug. A `reelay worker` with
//! `worker.health_port` set serves the same route on a listener of its own,
//! which also says whether its worker loops are alive; nothing else is there.

use super::error::json_errors;
use super::ApiError;
use crate::jobs::worker::Liveness;
use crate::jobs::Store;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use std::time::Duration;

/// A store that has not answered `SELECT 1` within this long is taken as
/// down (below the usual 5-10 s health-check timeout of load balancers).
pub const STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// Ok when the job store answers within [`STORE_TIMEOUT`]; a 503 otherwise.
pub async fn store_answers(store: &Store) -> Result<(), ApiError> {
    let cause = match tokio::time::timeout(STORE_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => anyhow::Error::from(e),
        Err(_) => anyhow::anyhow!("no answer to SELECT 1 within {STORE_TIMEOUT:?}"),
    };
    Err(ApiError::Unavailable {
        what: "the job store",
        cause,
    })
}

#[utoipa::path(get, operation_id = "health", path = "/healthz", tag = "meta", security(()), responses((status = 200, description = "The store answers", body = String, content_type = "text/plain"), (status = 503, description = "The store does not answer (code `unavailable`)", body = crate::api::openapi::ErrorBody)))]
#[tracing::instrument(name = "health", skip_all)]
pub async fn show(State(state): State<super::AppState>) -> Result<&'static str, ApiError> {
    store_answers(&state.store).await?;
    Ok("ok")
}

/// The worker's health listener: `GET /healthz` only (any other path 404,
/// another method 405, both in the JSON error shape).
pub fn worker_router(store: Store, live: Liveness) -> Router {
    Router::new()
        .route("/healthz", get(worker_health))
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::NotFound(format!("route {}", uri.path()))
        })
        .layer(axum::middleware::from_fn(json_errors))
        .with_state((store, live))
}

/// 200 when the store answers and every worker loop of this process is
/// alive; 503 naming which is not.
async fn worker_health(
    State((store, live)): State<(Store, Liveness)>,
) -> Result<&'static str, ApiError> {
    store_answers(&store).await?;
    if !live.alive() {
        return Err(ApiError::Unavailable {
            what: "a worker loop",
            cause: anyhow::anyhow!("a worker loop ended or has not come round in time"),
        });
    }
    Ok("ok")
}
