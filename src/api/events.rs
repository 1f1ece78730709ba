//! `POST /v1/events/s3`: object-storage events in any envelope reelay knows
//! (S3 `Records[]`, SNS, EventBridge, MinIO; see [`crate::events`]). Each
//! event is handled at least once with its effect once; the answer counts
//! what happened. A body that is not an event gets 400; a failure on our
//! side gets 500, so the sender delivers again.

use super::{bearer, ApiError, AppState};
use crate::events::{self, sns, Intake, Outcome};
use crate::outbound::{self, Guard, HostPatterns};
use crate::secret::constant_time_eq;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// What a caller without the events token is told.
pub const TOKEN_REQUIRED: &str = "a valid events token is required: Authorization: Bearer <events.token>, or HTTP Basic auth with it as the password";

/// The caller presented the events token: as a Bearer token, or as the
/// password of HTTP Basic auth (what an SNS HTTPS subscription can send).
pub struct EventSender;

fn basic_password(parts: &Parts) -> Option<String> {
    use base64::Engine;
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, p)| p.to_string())
}

impl axum::extract::FromRequestParts<AppState> for EventSender {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let expected = state.events_token.expose().as_bytes();
        let presented = bearer(parts)
            .map(str::to_string)
            .or_else(|| basic_password(parts))
            .ok_or(ApiError::TokenRequired(TOKEN_REQUIRED))?;
        if constant_time_eq(presented.as_bytes(), expected) {
            Ok(EventSender)
        } else {
            Err(ApiError::TokenRequired(TOKEN_REQUIRED))
        }
    }
}

/// SNS sends SubscribeURLs on its own endpoints (`events.sns_hosts`);
/// confirming anything else would let a message make reelay fetch arbitrary
/// URLs. The outbound guard applies on top.
fn subscribe_url_allowed(hosts: &HostPatterns, guard: &Guard, u: &str) -> bool {
    guard.check_url(u).is_ok_and(|url| hosts.matches(&url))
}

#[utoipa::path(post, operation_id = "s3_event", path = "/v1/events/s3", tag = "intake", security(("events_token" = [])), request_body(content = Object, description = "An S3, SNS, EventBridge or MinIO ObjectCreated event"), responses((status = 200, description = "Handled: the records and what each did", body = EventsAnswer), (status = 400, description = "Invalid fields or parameters, each named", body = crate::api::openapi::ErrorBody), (status = 401, description = "No valid credentials", body = crate::api::openapi::ErrorBody), (status = 403, description = "Forbidden", body = crate::api::openapi::ErrorBody)))]
#[tracing::instrument(name = "events.s3", skip_all)]
pub async fn s3(
    _sender: EventSender,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<EventsAnswer>, ApiError> {
    let parsed = events::parse(&body).map_err(|e| {
        ApiError::field(
            "$",
            format!("must be an S3, SNS, EventBridge or MinIO event: {e}"),
        )
    })?;

    let guard = Guard::new(&state.settings.outbound)?;
    let hosts = HostPatterns::new(&state.settings.events.sns_hosts)?;
    let verifier = sns::Verifier {
        hosts: hosts.clone(),
        guard: guard.clone(),
    };
    // Nothing an SNS message says is acted on unless every one is signed.
    for msg in &parsed.sns {
        if let Err(e) = verifier.verify(msg).await {
            let topic = msg.get("TopicArn").and_then(Value::as_str).unwrap_or("");
            tracing::warn!(%topic, reason = %e, "SNS message refused");
            return Err(ApiError::Forbidden(format!("SNS signature: {e}")));
        }
    }

    let mut confirmed = 0;
    let mut refused = 0;
    for c in &parsed.confirmations {
        let allowed = state
            .settings
            .events
            .sns_topic_allowlist
            .iter()
            .any(|t| t == &c.topic_arn);
        if !allowed || !subscribe_url_allowed(&hosts, &guard, &c.subscribe_url) {
            tracing::warn!(topic = %c.topic_arn, "SNS subscription not confirmed: topic not allow-listed or SubscribeURL not on events.sns_hosts");
            refused += 1;
            continue;
        }
        let client = guard.client(Duration::from_secs(10))?;
        let res = client.get(&c.subscribe_url).send().await.map_err(|e| {
            let text = outbound::client_text(&e);
            anyhow::Error::new(e.without_url())
                .context(format!("confirming the SNS subscription: {text}"))
        })?;
        if !res.status().is_success() {
            return Err(
                anyhow::anyhow!("confirming the SNS subscription: HTTP {}", res.status()).into(),
            );
        }
        tracing::info!(topic = %c.topic_arn, "SNS subscription confirmed");
        confirmed += 1;
    }

    let intake = Intake {
        store: state.store.clone(),
        objects: state.objects.clone(),
        settings: state.settings.clone(),
        wake: state.wake.clone(),
    };
    let mut out = EventsAnswer {
        records: parsed.events.len(),
        sns_confirmed: confirmed,
        sns_refused: refused,
        ignored: parsed.ignored as u64,
        ..Default::default()
    };
    for ev in &parsed.events {
        let outcome = intake.handle(ev).await?;
        if outcome.matched() {
            out.matched += 1;
        }
        *match outcome {
            Outcome::Ignored => &mut out.ignored,
            Outcome::Duplicate => &mut out.duplicates,
            Outcome::Stale => &mut out.stale,
            Outcome::Gone => &mut out.gone,
            Outcome::Nudged => &mut out.nudged,
            Outcome::Unchanged => &mut out.unchanged,
            Outcome::Restarted => &mut out.restarted,
            Outcome::Refused => &mut out.refused,
            Outcome::Created => &mut out.created,
        } += 1;
    }
    Ok(Json(out))
}

/// What the intake did with one delivery: its records, and how many had
/// each effect.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct EventsAnswer {
    /// Object records in the delivery.
    pub records: usize,
    /// Records that named a known variation's master.
    pub matched: u64,
    /// SNS subscriptions confirmed and refused.
    pub sns_confirmed: u64,
    pub sns_refused: u64,
    /// Not an object creation in the masters bucket.
    pub ignored: u64,
    /// An event already handled.
    pub duplicates: u64,
    /// Older than the last event handled for the key.
    pub stale: u64,
    /// The object is no longer there (or its key is unusable).
    pub gone: u64,
    /// A variation waiting for its master was made runnable.
    pub nudged: u64,
    /// The variation already took in this very object.
    pub unchanged: u64,
    /// A new master version: the variation runs its arrival checks again.
    pub restarted: u64,
    /// A write to a generated master's key after its master was taken in, or
    /// to the key of a task that was replaced: recorded, nothing else.
    pub refused: u64,
    /// A hand-uploaded master that became a new asset.
    pub created: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sns_hosts_may_be_confirmed() {
        let hosts = HostPatterns::new(&[
            "https://sns.*.amazonaws.com".into(),
            "http://127.0.0.1:4000".into(),
        ])
        .unwrap();
        let guard = Guard::new(&crate::outbound::OutboundSettings {
            allowed_private_networks: vec!["127.0.0.0/8".into()],
        })
        .unwrap();
        let ok = |u: &str| subscribe_url_allowed(&hosts, &guard, u);
        assert!(ok(
            "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=x"
        ));
        assert!(ok("http://127.0.0.1:4000/confirm"));
        assert!(!ok("http://127.0.0.1:4001/confirm"));
        assert!(!ok("http://sns.eu-west-1.amazonaws.com/x"));
        assert!(!ok("https://evil.example/amazonaws.com"));
        assert!(!ok("https://amazonaws.com.evil.example/"));
        assert!(!ok("https://u:p@sns.eu-west-1.amazonaws.com/"));
        assert!(!ok("http://10.0.0.1/"));
        assert!(!ok("not a url"));
        // On the host list but refused by the guard (no loopback allowed).
        assert!(!subscribe_url_allowed(
            &hosts,
            &Guard::default(),
            "http://127.0.0.1:4000/confirm"
        ));
    }
}
