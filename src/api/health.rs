//! Health answers. `GET /healthz` of the API: 200 when the job store
//! answers, 503 (the JSON error shape, code `unavailable`) when it does not
//! (Postgres down or unreachable), so a load balancer takes the process out
//! instead of reading a 500 as a bug.

use super::ApiError;
use crate::jobs::Store;
use axum::extract::State;
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
