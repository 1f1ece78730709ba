//! The HTTP API: ad-ops assets, the Runware webhook, the S3 event intake and
//! the CDN origin. `router(state)` builds it without a socket, for tests.

pub mod assets;
pub mod cdn;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod options;
pub mod webhooks;

use crate::config::Settings;
use crate::jobs::Store;
use crate::runware::ModelSpec;
use crate::secret::{constant_time_eq, Secret};
use crate::storage::ObjectStore;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;
pub use error::ApiError;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub objects: ObjectStore,
    pub settings: Arc<Settings>,
    pub model: ModelSpec,
    /// SHA-256 of every accepted API key.
    pub api_key_hashes: Arc<Vec<[u8; 32]>>,
    pub events_token: Secret,
    pub webhook_secret: Arc<Vec<u8>>,
    /// Base URL of this API as others reach it.
    pub public_url: String,
    pub wake: Arc<Notify>,
}

pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.settings.server.request_timeout_secs);
    Router::new()
        .route("/healthz", get(health))
        .route("/v1/assets", post(assets::create).get(assets::list))
        .route("/v1/assets/{id}", get(assets::show))
        .route("/v1/assets/{id}/reprocess", post(assets::reprocess))
        .route("/v1/options", get(options::show))
        .route("/v1/webhooks/runware/{variation}", post(webhooks::runware))
        .route("/v1/events/s3", post(events::s3))
        .route(
            "/cdn/{*path}",
            get(cdn::serve)
                .head(cdn::serve)
                .layer(cdn::cors(&state.settings.cdn.cors_allowed_origins)),
        )
        .merge(dashboard::routes())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}

async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, ApiError> {
    state.store.ping().await?;
    Ok("ok")
}

/// Logs each request by its matched route (not the raw URI: it can hold tokens).
async fn log_request(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    tracing::info!(%method, route, status = res.status().as_u16(), ms = started.elapsed().as_millis() as u64, "http");
    res
}

pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The caller presented one of the configured API keys.
pub struct ApiKey;

impl FromRequestParts<AppState> for ApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let presented = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let h = hash_key(presented);
        // Check every entry so the time taken does not say which one matched.
        let ok = state
            .api_key_hashes
            .iter()
            .fold(false, |acc, k| constant_time_eq(k, &h) | acc);
        if ok {
            Ok(ApiKey)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// A JSON body whose rejections use our error format: a body that is not
/// JSON names the line and column and the rule broken.
pub struct JsonBody(pub serde_json::Value);

impl<S: Send + Sync> axum::extract::FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::field("$", format!("could not read the body: {e}")))?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::Invalid {
                message: "the body is not valid JSON".into(),
                fields: vec![crate::runware::FieldError {
                    path: "$".into(),
                    rule: format!("must be a JSON object ({e})"),
                }],
            })
    }
}
