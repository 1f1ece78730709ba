//! Notifications reelay owes others, delivered at least once from the
//! `outbox` table: callbacks to the requester's `callbackUrl` when a
//! variation ends (`asset.published`, `asset.rejected`, `asset.failed`,
//! `asset.expired`) and CDN purges after a pointer flip.
//!
//! Rows are written in the same transaction as the change they announce
//! ([`crate::jobs::store::Store::update`]), so a crash can neither lose a
//! notification nor send one for a change that did not commit. A background
//! task ([`run`]) delivers due rows, retrying with backoff until a 2xx or the
//! retry window ends. The row id is the event id: the same on every attempt,
//! so receivers dedupe by it.
//!
//! Every request carries `Reelay-Signature: t=<unix>,v1=<hex>` where the hex
//! is HMAC-SHA256 of `"<t>.<body>"` under the shared secret (Mux's scheme).
//!
//! Every request goes through [`crate::outbound::Guard`]: only public
//! addresses (or the operator's allowed private networks), no redirects. A
//! failure is recorded as one of two fixed phrases, never the receiver's
//! status or a connect error (those go to the log).

use crate::backoff::{Backoff, Jitter};
use crate::config::Settings;
pub use crate::jobs::model::{NewOutbox, KIND_CALLBACK, KIND_PURGE};
use crate::jobs::store::{now_ms, OutboxRow, Store};
use crate::outbound::{self, Guard};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const SIGNATURE_HEADER: &str = "Reelay-Signature";
pub const EVENT_ID_HEADER: &str = "Reelay-Event-Id";
pub const EVENT_TYPE_HEADER: &str = "Reelay-Event-Type";

fn hmac_hex(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The `Reelay-Signature` value for `body` sent at unix time `t`.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hmac_hex(secret, t, body))
}

/// Checks a `Reelay-Signature` value: a `v1` matches (in constant time) and
/// `t` is within `tolerance_secs` of `now` (replay protection). This is what
/// a receiver does; reelay's tests use it too.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v.to_string()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now - t).abs() > tolerance_secs {
        return false;
    }
    let expected = hmac_hex(secret, t, body);
    sigs.iter()
        .any(|s| crate::secret::constant_time_eq(s.as_bytes(), expected.as_bytes()))
}

/// Delay before attempt `attempts + 1`: doubling from `initial`, capped,
/// with ±20% jitter so retries of many events spread out.
pub fn backoff(attempts: i64, initial: Duration, max: Duration) -> Duration {
    Backoff::doubling(initial, max)
        .with_jitter(Jitter::Proportional(0.2))
        .delay(attempts.clamp(0, i64::from(u32::MAX)) as u32)
}

/// Rows claimed per round. Bounds the concurrent requests of one round; rows
/// left over are taken by the next round at once.
const CLAIM_BATCH: i64 = 16;
/// A claim outlives one delivery attempt by this much, so a slow receiver
/// never lets a second round send the same row while the first still waits.
const CLAIM_MARGIN_SECS: u64 = 10;

/// Delivers the outbox.
pub struct Outbox {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub callback_secret: Vec<u8>,
    pub client: reqwest::Client,
    pub guard: Guard,
}

enum Outcome {
    Delivered,
    Failed(String),
}

impl Outbox {
    pub fn new(
        store: Store,
        settings: Arc<Settings>,
        callback_secret: Vec<u8>,
    ) -> anyhow::Result<Self> {
        let guard = Guard::new(&settings.outbound)?;
        // A receiver answers itself; following redirects would let a
        // callback URL point reelay anywhere (the guarded client follows none).
        let client = guard.client(Duration::from_secs(settings.callbacks.request_timeout_secs))?;
        Ok(Outbox {
            store,
            settings,
            callback_secret,
            client,
            guard,
        })
    }

    fn secret(&self, kind: &str) -> Vec<u8> {
        if kind == KIND_PURGE {
            self.settings.cdn.purge_secret.expose().as_bytes().to_vec()
        } else {
            self.callback_secret.clone()
        }
    }

    fn window_ms(&self, kind: &str) -> i64 {
        let secs = if kind == KIND_PURGE {
            self.settings.cdn.purge_retry_window_secs
        } else {
            self.settings.callbacks.retry_window_secs
        };
        secs as i64 * 1000
    }

    async fn deliver(&self, row: &OutboxRow) -> Outcome {
        if let Err(refusal) = self.guard.check_url(&row.url) {
            tracing::warn!(id = %row.id, kind = %row.kind, %refusal, "notification refused: its URL names no public address");
            return Outcome::Failed(outbound::REFUSED.to_string());
        }
        let t = now_ms() / 1000;
        let signature = sign(&self.secret(&row.kind), t, row.body.as_bytes());
        let res = self
            .client
            .post(&row.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_ID_HEADER, &row.id)
            .header(EVENT_TYPE_HEADER, &row.event_type)
            .body(row.body.clone())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => Outcome::Delivered,
            Ok(r) => {
                tracing::info!(id = %row.id, kind = %row.kind, status = r.status().as_u16(), "notification answered with a non-2xx status");
                Outcome::Failed(outbound::FAILED.to_string())
            }
            Err(e) => {
                let text = outbound::client_text(&e);
                // Without the URL: it may carry the receiver's own token.
                let cause = format!("{:#}", anyhow::Error::new(e.without_url()));
                tracing::info!(id = %row.id, kind = %row.kind, error = %cause, "notification not delivered");
                Outcome::Failed(text.to_string())
            }
        }
    }

    /// Delivers what is due once; returns how many rows it tried.
    pub async fn drain_once(&self) -> anyhow::Result<usize> {
        let lease =
            Duration::from_secs(self.settings.callbacks.request_timeout_secs + CLAIM_MARGIN_SECS);
        let rows = self.store.claim_outbox(CLAIM_BATCH, lease).await?;
        let n = rows.len();
        let results = futures::future::join_all(rows.iter().map(|r| self.deliver(r))).await;
        for (row, outcome) in rows.iter().zip(results) {
            let host = url::Url::parse(&row.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            let attempts = row.attempts + 1;
            let counted = match &outcome {
                Outcome::Delivered => "delivered",
                Outcome::Failed(_) => "failed",
            };
            crate::telemetry::metrics::inc(
                "reelay_callback_deliveries_total",
                &[("kind", &row.kind), ("outcome", counted)],
            );
            match outcome {
                Outcome::Delivered => {
                    tracing::info!(id = %row.id, kind = %row.kind, event = %row.event_type, %host, attempts, "notification delivered");
                    self.store.outbox_delivered(&row.id, attempts).await?;
                }
                Outcome::Failed(error) => {
                    let cb = &self.settings.callbacks;
                    let delay = backoff(
                        attempts - 1,
                        Duration::from_millis(cb.backoff_initial_ms),
                        Duration::from_secs(cb.backoff_max_secs),
                    );
                    let next = now_ms() + delay.as_millis() as i64;
                    if next > row.created_at + self.window_ms(&row.kind) {
                        tracing::warn!(id = %row.id, kind = %row.kind, %host, attempts, %error, "notification given up: retry window ended");
                        self.store.outbox_failed(&row.id, attempts, &error).await?;
                    } else {
                        tracing::info!(id = %row.id, kind = %row.kind, %host, attempts, %error, retry_in_ms = delay.as_millis() as u64, "notification not accepted; will retry");
                        self.store
                            .outbox_retry(&row.id, attempts, next, &error)
                            .await?;
                    }
                }
            }
        }
        Ok(n)
    }
}

/// Drains the outbox until shutdown.
pub async fn run(outbox: Arc<Outbox>, shutdown: CancellationToken) {
    let idle = Duration::from_millis(outbox.settings.callbacks.poll_ms.max(10));
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let tried = match outbox.drain_once().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "outbox delivery round failed");
                0
            }
        };
        if tried == 0 {
            tokio::select! {
                _ = tokio::time::sleep(idle) => {}
                _ = shutdown.cancelled() => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::State;
    use crate::views::event_type;

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign(b"secret", 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        assert!(verify(b"secret", &header, body, 1_700_000_010, 300));
        // Wrong key, changed body, stale timestamp, garbage.
        assert!(!verify(b"other", &header, body, 1_700_000_010, 300));
        assert!(!verify(
            b"secret",
            &header,
            br#"{"id":"evt_2"}"#,
            1_700_000_010,
            300
        ));
        assert!(!verify(b"secret", &header, body, 1_700_001_000, 300));
        assert!(!verify(b"secret", "v1=abc", body, 1_700_000_000, 300));
        // A rotated header may carry several v1 values; one match is enough.
        let two = format!("{header},v1=00");
        assert!(verify(b"secret", &two, body, 1_700_000_000, 300));
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(b"42.body");
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(sign(b"k", 42, b"body"), format!("t=42,v1={expected}"));
        // RFC 4231 test case 2 pins the primitive itself.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let initial = Duration::from_millis(1000);
        let max = Duration::from_secs(10);
        for (attempts, base) in [
            (0, 1000.0),
            (1, 2000.0),
            (2, 4000.0),
            (3, 8000.0),
            (4, 10000.0),
            (30, 10000.0),
        ] {
            let d = backoff(attempts, initial, max).as_millis() as f64;
            assert!(
                d >= base * 0.8 - 1.0 && d <= base * 1.2 + 1.0,
                "attempt {attempts}: {d}"
            );
        }
    }

    #[test]
    fn only_the_five_terminal_outcomes_are_announced() {
        assert_eq!(event_type(State::Published), Some("asset.published"));
        assert_eq!(event_type(State::Rejected), Some("asset.rejected"));
        assert_eq!(event_type(State::Failed), Some("asset.failed"));
        assert_eq!(event_type(State::Expired), Some("asset.expired"));
        assert_eq!(event_type(State::Cancelled), Some("asset.cancelled"));
        assert_eq!(event_type(State::Transcoding), None);
    }
}
