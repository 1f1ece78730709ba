//! Retry delays.
use std::time::Duration;

/// Before retry `errors` of a failed step: 2, 4, 8 ... seconds, capped at a minute.
pub fn step_retry_delay(errors: i64) -> Duration {
    Duration::from_millis((1000u64 << errors.clamp(0, 6)).min(60_000))
}
