//! Per-client-IP and per-API-key rate limits: token buckets that refill at
//! `rate_limit_*_per_sec` and hold at most `rate_limit_*_burst` requests.
//! An empty bucket answers 429 with `Retry-After` (the whole seconds until
//! one request's worth has refilled). State is in memory, per process.

use super::{ApiError, AppState};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before idle (refilled) ones are dropped.
const PRUNE_AT: usize = 10_000;

/// One token bucket per key.
pub struct RateLimiter<K> {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// None when `per_sec` is 0 (no limit).
    pub fn new(per_sec: f64, burst: u32) -> Option<Self> {
        (per_sec > 0.0).then(|| Self {
            per_sec,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one request from `key`'s bucket at `now`, or says how long
    /// until one is there.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= PRUNE_AT {
            let full = Duration::from_secs_f64(self.burst / self.per_sec);
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < full);
        }
        let b = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * self.per_sec;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.at = now.max(b.at);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_sec))
        }
    }
}

/// The two limiters of the API (either may be off).
pub struct Limits {
    pub ip: Option<RateLimiter<IpAddr>>,
    pub key: Option<RateLimiter<[u8; 32]>>,
}

impl Limits {
    pub fn from_settings(s: &crate::config::ServerSettings) -> Self {
        Self {
            ip: RateLimiter::new(s.rate_limit_ip_per_sec, s.rate_limit_ip_burst),
            key: RateLimiter::new(s.rate_limit_key_per_sec, s.rate_limit_key_burst),
        }
    }

    /// Charges one request to the API key with this SHA-256.
    pub fn check_key(&self, key_hash: &[u8; 32]) -> Result<(), ApiError> {
        match &self.key {
            Some(l) => l
                .check(key_hash, Instant::now())
                .map_err(|wait| limited("API key", wait)),
            None => Ok(()),
        }
    }
}

fn limited(scope: &'static str, wait: Duration) -> ApiError {
    ApiError::RateLimited {
        scope,
        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

/// Middleware: charges every request to its peer's IP (when the server
/// recorded one; in-process router tests have none).
pub async fn limit_ip(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let (Some(limiter), Some(ConnectInfo(peer))) = (
        &state.limits.ip,
        req.extensions().get::<ConnectInfo<SocketAddr>>(),
    ) {
        if let Err(wait) = limiter.check(&peer.ip(), Instant::now()) {
            return limited("client IP", wait).into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let l = RateLimiter::new(2.0, 3).unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            l.check(&"a", t0).unwrap();
        }
        let wait = l.check(&"a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500), "one token at 2/s");
        // Another key has its own bucket.
        l.check(&"b", t0).unwrap();
        // Half a second later one request fits, the next does not.
        let t1 = t0 + Duration::from_millis(500);
        l.check(&"a", t1).unwrap();
        assert!(l.check(&"a", t1).is_err());
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            l.check(&"a", t2).unwrap();
        }
        assert!(l.check(&"a", t2).is_err());
    }

    #[test]
    fn zero_rate_means_no_limit_and_retry_after_is_whole_seconds() {
        assert!(RateLimiter::<u8>::new(0.0, 10).is_none());
        match limited("API key", Duration::from_millis(1200)) {
            ApiError::RateLimited {
                retry_after_secs, ..
            } => assert_eq!(retry_after_secs, 2),
            other => panic!("{other:?}"),
        }
        match limited("API key", Duration::from_millis(10)) {
            ApiError::RateLimited {
                retry_after_secs, ..
            } => assert_eq!(retry_after_secs, 1),
            other => panic!("{other:?}"),
        }
    }
}
