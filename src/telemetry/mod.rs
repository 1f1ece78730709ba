//! Logs, request ids and metrics.
//!
//! - Logs: `REELAY_LOG_FORMAT=text` (the default) or `json` (one JSON object
//!   per line, with the fields of every span the line was written in);
//!   colour only when the log's stream (stderr) is a terminal and `NO_COLOR`
//!   is unset. `REELAY_LOG` is the filter.
//! - Request ids: [`http_layer`] gives every request an `x-request-id` (the
//!   client's when it is well formed, else a new UUID), answers with it and
//!   opens the `http_request` span that every log line of the request is
//!   written in; it also counts the request in [`metrics`] by its matched
//!   route template.
//! - Metrics: [`metrics`], served at `GET /metrics` by `api::metrics`.

pub mod metrics;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::io::IsTerminal;
use tracing::Instrument;

/// The header that carries a request's id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What a request id from a client may look like: 1 to 128 of
/// `A-Z a-z 0-9 - _ . :` (a UUID, a ULID, a trace id). Anything else is
/// replaced, so log lines never carry client-chosen control characters.
pub fn well_formed_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The request's id, in the request's extensions for handlers that want it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `REELAY_LOG_FORMAT`: `text` (or unset) or `json`.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("REELAY_LOG_FORMAT") {
            Err(_) => Ok(LogFormat::Text),
            Ok(v) => Self::parse(&v),
        }
    }

    pub fn parse(v: &str) -> Result<Self, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "REELAY_LOG_FORMAT={other:?} is not a log format: use text or json"
            )),
        }
    }
}

/// Installs the process's log subscriber, writing to stderr.
pub fn init_logging(format: LogFormat, filter: tracing_subscriber::EnvFilter) {
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

/// The outermost layer of the API: the request id, the request's span, one
/// `http` log line and the HTTP metrics. Routes are named by their matched
/// template (`/v1/assets/{id}`), never the raw path (it can hold tokens).
pub async fn http_layer(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("http_request", request_id = %id, %method, route = %route);
    let started = std::time::Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    span.in_scope(|| {
        tracing::info!(status, ms = elapsed.as_millis() as u64, "http");
    });
    let status_text = status.to_string();
    metrics::inc(
        "reelay_http_requests_total",
        &[
            ("method", method.as_str()),
            ("route", &route),
            ("status", &status_text),
        ],
    );
    metrics::observe(
        "reelay_http_request_duration_seconds",
        &[("method", method.as_str()), ("route", &route)],
        elapsed,
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_kept_only_when_well_formed() {
        assert!(well_formed_request_id(
            "3f1c9a2e-7b7d-4c1e-9d36-0c3a8e1b2f44"
        ));
        assert!(well_formed_request_id("trace:abc.def_01"));
        assert!(!well_formed_request_id(""));
        assert!(!well_formed_request_id("has space"));
        assert!(!well_formed_request_id("line\nbreak"));
        assert!(!well_formed_request_id(&"a".repeat(129)));
    }

    #[test]
    fn log_formats_parse_and_unknown_ones_are_named() {
        assert_eq!(LogFormat::parse("JSON").unwrap(), LogFormat::Json);
        assert_eq!(LogFormat::parse("text").unwrap(), LogFormat::Text);
        let e = LogFormat::parse("yaml").unwrap_err();
        assert!(e.contains("REELAY_LOG_FORMAT") && e.contains("yaml"), "{e}");
    }
}
