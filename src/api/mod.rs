//! The HTTP API: ad-ops assets, the Runware webhook, the S3 event intake and
//! the CDN origin. `router(state)` builds it without a socket, for tests.

pub mod assets;
pub mod cancel;
pub mod cdn;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod limits;
pub mod listing;
pub mod metrics;
pub mod openapi;
pub mod options;
pub mod preflight;
pub mod server;
pub mod thumbnails;
pub mod webhooks;
pub mod workers;

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
    /// Per-IP and per-API-key rate limits.
    pub limits: Arc<limits::Limits>,
    /// Thumbnails on demand: their ffmpeg runner and render budget.
    pub thumbnails: Arc<thumbnails::Thumbnails>,
}

pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.settings.server.request_timeout_secs);
    let max_body = state.settings.server.max_body_bytes;
    Router::new()
        .route("/healthz", get(health::show))
        .route("/metrics", get(metrics::show))
        .route("/v1/assets", post(assets::create).get(listing::list))
        .route("/v1/assets/preflight", post(preflight::preflight))
        .route("/v1/assets/{id}", get(assets::show).delete(cancel::cancel))
        .route("/v1/campaigns/{id}", get(listing::campaign))
        .route(
            "/v1/assets/{id}/variations/{n}/{file}",
            get(thumbnails::thumbnail),
        )
        .route("/v1/assets/{id}/reprocess", post(assets::reprocess))
        .route("/v1/options", get(options::show))
        .route("/v1/workers", get(workers::list))
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/v1/webhooks/runware/{variation}", post(webhooks::runware))
        .route("/v1/events/s3", post(events::s3))
        .route(
            "/cdn/{*path}",
            get(cdn::serve)
                .head(cdn::serve)
                .layer(cdn::cors(&state.settings.cdn.cors_allowed_origins)),
        )
        .merge(dashboard::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::limit_ip,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_oversized,
        ))
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(axum::middleware::from_fn(crate::telemetry::http_layer))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("route {}", uri.path()))
}

/// 414 for a URI over `server.max_uri_bytes`, 413 for a declared body over
/// `server.max_body_bytes`, before anything reads it (a body without a
/// length is cut at the same limit where it is read).
async fn refuse_oversized(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let server = &state.settings.server;
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > server.max_uri_bytes {
        return ApiError::UriTooLong {
            limit: server.max_uri_bytes,
        }
        .into_response();
    }
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > server.max_body_bytes as u64) {
        return ApiError::PayloadTooLarge {
            limit: Some(server.max_body_bytes),
        }
        .into_response();
    }
    next.run(req).await
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
            state.limits.check_key(&h)?;
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
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    // A body without a length, cut at the router's limit.
                    ApiError::PayloadTooLarge { limit: None }
                } else {
                    ApiError::field("$", format!("could not read the body: {e}"))
                }
            })?;
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

/// A query string decoded into `T`, whose rejections use our error format
/// and name the parameter: `?limit=abc` gets 400 with `fields[0].path`
/// "limit".
pub struct QueryParams<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or("")).map(QueryParams)
    }
}

/// A query string decoded into `T`, each refusal a 400 naming the parameter.
pub fn parse_query<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let rule = e.inner().to_string();
        let path = match e.path().to_string() {
            // serde names a parameter the type does not know only in its
            // message: "unknown field `status`, expected …".
            p if p == "." => unknown_field(&rule).unwrap_or("?").to_string(),
            p => p,
        };
        ApiError::Invalid {
            message: "the query string is invalid".into(),
            fields: vec![crate::runware::FieldError { path, rule }],
        }
    })
}

/// The parameter serde's "unknown field `name`, expected …" names.
fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")?
        .split_once('`')
        .map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_query_parameter_is_named() {
        assert_eq!(
            unknown_field("unknown field `status`, expected one of `state`"),
            Some("status")
        );
        assert_eq!(unknown_field("invalid digit found in string"), None);
    }
}
