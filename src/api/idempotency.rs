//! `Idempotency-Key` on every POST made with an API key, with the
//! semantics payment APIs use (Stripe's): the first answer to a key is kept
//! for 24 h and a retry with the same key and the same request (method,
//! path, query and body) gets it again, status and body, with
//! `Idempotent-Replayed: true`, and starts no new work; the same key with
//! another request is 422; a retry while the first is still being answered
//! is 409. Keys are scoped per API key (stored under the key's SHA-256,
//! never the key) in the job store, so they survive restarts. Only a 2xx
//! answer is kept: an error answer frees the key, so a corrected request
//! can use it. A POST without an API key (the Runware webhook, the S3
//! event intake: those dedupe by task and by event) passes through.

use super::{bearer, hash_key, ApiError, AppState};
use crate::jobs::store::{Begun, StoredAnswer};
use crate::secret::constant_time_eq;
use crate::time::now_ms;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tracing::Instrument;

/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// The response header on a replayed answer (`Idempotent-Replayed`).
pub const REPLAYED: header::HeaderName = header::HeaderName::from_static("idempotent-replayed");
const HEADER_NAME: header::HeaderName = header::HeaderName::from_static("idempotency-key");
/// The longest key accepted (Stripe's limit).
pub const MAX_LEN: usize = 255;
/// How long a key's first answer is kept.
pub const WINDOW_MS: i64 = crate::jobs::store::IDEMPOTENCY_WINDOW_MS;
/// The rule a key must follow, as error answers say it.
pub const RULE: &str =
    "must be 1 to 255 visible ASCII characters (letters, digits and punctuation, no spaces)";

/// Checks a key's spelling.
pub fn parse_key(raw: &HeaderValue) -> Result<&str, String> {
    let bytes = raw.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_LEN {
        return Err(format!("{RULE}; got {} bytes", bytes.len()));
    }
    if !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(RULE.to_string());
    }
    raw.to_str().map_err(|_| RULE.to_string())
}

fn header_error(rule: String) -> ApiError {
    ApiError::Invalid {
        message: format!("the {HEADER} header is invalid"),
        fields: vec![crate::runware::FieldError {
            path: HEADER.into(),
            rule,
        }],
    }
}

/// The hex SHA-256 of the presented API key, when it is one of ours.
fn scope(state: &AppState, parts: &axum::http::request::Parts) -> Option<String> {
    let h = hash_key(bearer(parts)?);
    let ok = state
        .api_key_hashes
        .iter()
        .fold(false, |acc, k| constant_time_eq(k, &h) | acc);
    ok.then(|| hex::encode(h))
}

/// Frees the key if the request is dropped before it is answered (a
/// timeout, a client gone): the row must not say "in flight" for long.
struct Release {
    store: crate::jobs::Store,
    scope: String,
    key: String,
    armed: bool,
}

impl Drop for Release {
    fn drop(&mut self) {
        if self.armed {
            let (store, scope, key) = (
                self.store.clone(),
                std::mem::take(&mut self.scope),
                std::mem::take(&mut self.key),
            );
            // In the request's span, so its line carries the request id.
            tokio::spawn(
                async move {
                    if let Err(e) = store.idempotency_release(&scope, &key).await {
                        tracing::warn!(error = %e, "could not free an idempotency key");
                    }
                }
                .in_current_span(),
            );
        }
    }
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.headers().contains_key(&HEADER_NAME) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Some(scope) = scope(&state, &parts) else {
        // No API key: the handler answers (401, or its own token check).
        return next.run(Request::from_parts(parts, body)).await;
    };
    let raw = parts
        .headers
        .get(&HEADER_NAME)
        .cloned()
        .unwrap_or(HeaderValue::from_static(""));
    let key = match parse_key(&raw) {
        Ok(k) => k.to_string(),
        Err(rule) => return header_error(rule).into_response(),
    };
    let max = state.settings.server.max_body_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, max).await else {
        return ApiError::PayloadTooLarge { limit: Some(max) }.into_response();
    };
    let mut h = Sha256::new();
    h.update(parts.method.as_str());
    h.update(b"\n");
    h.update(parts.uri.path_and_query().map_or("", |p| p.as_str()));
    h.update(b"\n");
    h.update(&bytes);
    let request = hex::encode(h.finalize());
    let now = now_ms();
    let stale = now - 2 * 1000 * state.settings.server.request_timeout_secs as i64;
    let begun = state
        .store
        .idempotency_begin(&scope, &key, &request, now, now - WINDOW_MS, stale)
        .await;
    match begun {
        Err(e) => return ApiError::from(e).into_response(),
        Ok(Begun::Replay(answer)) => return replay(answer),
        Ok(Begun::Mismatch) => {
            return ApiError::IdempotencyMismatch(format!(
                "this {HEADER} was used with a different request in the last 24 h; use a new key for a new request"
            ))
            .into_response()
        }
        Ok(Begun::InFlight) => {
            return ApiError::IdempotencyInFlight(format!(
                "a request with this {HEADER} is still being answered; retry when it is done"
            ))
            .into_response()
        }
        Ok(Begun::Fresh) => {}
    }
    let mut release = Release {
        store: state.store.clone(),
        scope: scope.clone(),
        key: key.clone(),
        armed: true,
    };
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if !res.status().is_success() {
        // Freed before the answer leaves, so a corrected retry that follows
        // at once finds the key free (the drop guard's release is a spawned
        // task, for answers that never finish).
        release.armed = false;
        if let Err(e) = state.store.idempotency_release(&scope, &key).await {
            tracing::warn!(error = %e, "could not free an idempotency key");
        }
        return res;
    }
    let (parts, body) = res.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::Internal(anyhow::anyhow!("could not read the answer to keep it"))
            .into_response();
    };
    let text = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let answer = StoredAnswer {
        status: parts.status.as_u16(),
        content_type: text(header::CONTENT_TYPE),
        location: text(header::LOCATION),
        body: body.to_vec(),
    };
    match state.store.idempotency_finish(&scope, &key, &answer).await {
        Ok(()) => release.armed = false,
        Err(e) => tracing::warn!(error = %e, "could not keep the answer to an idempotency key"),
    }
    Response::from_parts(parts, Body::from(body))
}

fn replay(answer: StoredAnswer) -> Response {
    let mut res = Response::new(Body::from(answer.body));
    *res.status_mut() =
        axum::http::StatusCode::from_u16(answer.status).unwrap_or(axum::http::StatusCode::OK);
    let h = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, answer.content_type),
        (header::LOCATION, answer.location),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert(name, v);
        }
    }
    h.insert(REPLAYED, HeaderValue::from_static("true"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_up_to_255_bytes() {
        assert!(parse_key(&HeaderValue::from_static("order-42_a.b:c")).is_ok());
        let long = "k".repeat(MAX_LEN);
        assert!(parse_key(&HeaderValue::from_str(&long).unwrap()).is_ok());
        let longer = "k".repeat(MAX_LEN + 1);
        let e = parse_key(&HeaderValue::from_str(&longer).unwrap()).unwrap_err();
        assert!(e.contains("256 bytes"), "{e}");
        assert!(parse_key(&HeaderValue::from_static("")).is_err());
        assert!(parse_key(&HeaderValue::from_static("two words")).is_err());
        assert!(parse_key(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()).is_err());
    }
}
