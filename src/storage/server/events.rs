//! S3 event notifications from the embedded server: sequencing and
//! at-least-once delivery off the request path.

use super::*;

pub(super) struct EventEmitter {
    pub(super) notifier: Notifier,
    pub(super) region: String,
    pub(super) last_sequencer: AtomicU64,
}

impl EventEmitter {
    /// Nanoseconds since the epoch, bumped to stay strictly increasing, as
    /// fixed-width hex so that string order matches numeric order.
    pub(super) fn next_sequencer(&self) -> String {
        let now = chrono::Utc::now()
            .timestamp_nanos_opt()
            .map_or(0, |n| n.max(0) as u64);
        let prev = self
            .last_sequencer
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or_else(|v| v);
        format!("{:016X}", now.max(prev + 1))
    }
}

/// Retry schedule for event delivery.
#[derive(Debug, Clone, Copy)]
pub(super) struct RetryPolicy {
    pub(super) attempts: u32,
    pub(super) backoff: Backoff,
}

/// Tries spread over about 80 s, so an event outlasts a restart of its
/// receiver, as a bucket notification would.
pub(super) const DELIVERY_RETRY: RetryPolicy = RetryPolicy {
    attempts: 10,
    backoff: Backoff::doubling(Duration::from_millis(200), Duration::from_secs(30)),
};

/// POSTs events from background tasks so a slow or absent receiver never
/// delays the PUT that caused them. At least once, unordered, like S3.
#[derive(Clone)]
pub(super) struct Notifier {
    pub(super) client: reqwest::Client,
    pub(super) target: Arc<NotificationTarget>,
    pub(super) retry: RetryPolicy,
}

impl Notifier {
    pub(super) fn new(target: NotificationTarget) -> Self {
        let client = reqwest::Client::builder()
            .timeout(EVENT_POST_TIMEOUT)
            .build()
            .unwrap_or_default();
        Notifier {
            client,
            target: Arc::new(target),
            retry: DELIVERY_RETRY,
        }
    }

    pub(super) fn send(&self, notification: S3EventNotification) {
        let body = match serde_json::to_vec(&notification) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "could not encode S3 event notification");
                return;
            }
        };
        let this = self.clone();
        tokio::spawn(async move { this.deliver(body).await });
    }

    pub(super) async fn deliver(&self, body: Vec<u8>) {
        let mut last_error = String::new();
        for attempt in 1..=self.retry.attempts {
            let res = self
                .client
                .post(&self.target.url)
                .bearer_auth(self.target.bearer_token.expose())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => last_error = format!("HTTP {}", r.status()),
                Err(e) => last_error = e.without_url().to_string(),
            }
            tracing::debug!(attempt, error = %last_error, "S3 event delivery failed; retrying");
            if attempt < self.retry.attempts {
                tokio::time::sleep(self.retry.backoff.delay(attempt - 1)).await;
            }
        }
        tracing::warn!(
            attempts = self.retry.attempts,
            error = %last_error,
            "giving up delivering an S3 event notification"
        );
    }
}
