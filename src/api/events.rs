//! `POST /v1/events/s3`: object-storage events in any envelope reelay knows
//! (S3 `Records[]`, SNS, EventBridge, MinIO; see [`crate::events`]). Each
//! event is handled at least once with its effect once; the answer counts
//! what happened. A body that is not an event gets 400; a failure on our
//! side gets 500, so the sender delivers again.

use super::{bearer, ApiError, AppState};
use crate::events::{self, Intake, Outcome};
use crate::secret::constant_time_eq;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::Json;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

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
            .ok_or(ApiError::Unauthorized)?;
        if constant_time_eq(presented.as_bytes(), expected) {
            Ok(EventSender)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// SNS sends SubscribeURLs on its own regional hosts; confirming anything
/// else would let a message make reelay fetch arbitrary URLs. Loopback is
/// allowed for local testing.
fn subscribe_url_allowed(u: &str) -> bool {
    let Ok(url) = url::Url::parse(u) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => {
            url.scheme() == "https"
                && (d.ends_with(".amazonaws.com") || d.ends_with(".amazonaws.com.cn"))
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub async fn s3(
    _sender: EventSender,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let parsed = events::parse(&body).map_err(|e| {
        ApiError::field(
            "$",
            format!("must be an S3, SNS, EventBridge or MinIO event: {e}"),
        )
    })?;

    let mut confirmed = 0;
    let mut refused = 0;
    for c in &parsed.confirmations {
        let allowed = state
            .settings
            .events
            .sns_topic_allowlist
            .iter()
            .any(|t| t == &c.topic_arn);
        if !allowed || !subscribe_url_allowed(&c.subscribe_url) {
            tracing::warn!(topic = %c.topic_arn, "SNS subscription not confirmed: topic not allow-listed or SubscribeURL not SNS's");
            refused += 1;
            continue;
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let res =
            client.get(&c.subscribe_url).send().await.map_err(|e| {
                anyhow::anyhow!("confirming the SNS subscription: {}", e.without_url())
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
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut matched = 0;
    for ev in &parsed.events {
        let outcome = intake.handle(ev).await?;
        if outcome.matched() {
            matched += 1;
        }
        let name = match outcome {
            Outcome::Ignored => "ignored",
            Outcome::Duplicate => "duplicates",
            Outcome::Stale => "stale",
            Outcome::Gone => "gone",
            Outcome::Nudged => "nudged",
            Outcome::Unchanged => "unchanged",
            Outcome::Restarted => "restarted",
            Outcome::Refused => "refused",
            Outcome::Created => "created",
        };
        *counts.entry(name).or_default() += 1;
    }
    let mut out = json!({
        "records": parsed.events.len(),
        "matched": matched,
        "sns_confirmed": confirmed,
        "sns_refused": refused,
    });
    *counts.entry("ignored").or_default() += parsed.ignored as u64;
    for (k, v) in counts {
        out[k] = json!(v);
    }
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sns_hosts_or_loopback_may_be_confirmed() {
        assert!(subscribe_url_allowed(
            "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=x"
        ));
        assert!(subscribe_url_allowed("http://127.0.0.1:4000/confirm"));
        assert!(!subscribe_url_allowed(
            "http://sns.eu-west-1.amazonaws.com/x"
        ));
        assert!(!subscribe_url_allowed("https://evil.example/amazonaws.com"));
        assert!(!subscribe_url_allowed(
            "https://amazonaws.com.evil.example/"
        ));
        assert!(!subscribe_url_allowed("http://10.0.0.1/"));
        assert!(!subscribe_url_allowed("not a url"));
    }
}
