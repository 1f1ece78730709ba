//! `GET /metrics`: the Prometheus text exposition of `telemetry::metrics`,
//! plus what the store knows at scrape time (variations by state, the
//! generator cost recorded).
//!
//! Operators only, as Mux and Cloudflare Stream keep theirs: the caller
//! presents `metrics.token` or one of the API keys as a Bearer token.
//! `metrics.public = true` opens it to anyone who reaches the port (for a
//! scraper on a private network); off by default, in every environment.

use super::{bearer, hash_key, ApiError, AppState};
use crate::secret::constant_time_eq;
use crate::telemetry::metrics::{self, Gauge};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The caller may read `/metrics`.
pub struct MetricsReader;

impl FromRequestParts<AppState> for MetricsReader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let m = &state.settings.metrics;
        if m.public {
            return Ok(MetricsReader);
        }
        let presented = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let h = hash_key(presented);
        let token_ok = !m.token.is_empty() && constant_time_eq(&hash_key(m.token.expose()), &h);
        let key_ok = state
            .api_key_hashes
            .iter()
            .fold(false, |acc, k| constant_time_eq(k, &h) | acc);
        if token_ok | key_ok {
            Ok(MetricsReader)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

#[utoipa::path(get, operation_id = "metrics", path = "/metrics", tag = "meta", security(("metrics_token" = []), ("api_key" = [])), responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain; version=0.0.4"), (status = 401, description = "No valid credentials", body = crate::api::openapi::ErrorBody)))]
#[tracing::instrument(name = "metrics.show", skip_all)]
pub async fn show(
    _reader: MetricsReader,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let by_state = state.store.count_by_state().await?;
    let cost = state.store.generator_cost_usd().await?;
    let gauges = [
        Gauge {
            name: "reelay_variations",
            kind: "gauge",
            help: "Variations in each state (the queue depth of the pipeline)",
            samples: by_state
                .iter()
                .map(|(s, n)| (vec![("state", s.as_str().to_string())], *n as f64))
                .collect(),
        },
        Gauge {
            name: "reelay_generator_cost_usd_total",
            kind: "counter",
            help: "USD the generator reported for every task recorded in this store",
            samples: vec![(Vec::new(), cost)],
        },
    ];
    let mut res = metrics::render(&gauges).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(res)
}
