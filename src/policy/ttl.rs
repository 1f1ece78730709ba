//! How long an asset may stay live.

/// Seconds of the asset's life left at `now_ms`, counted from arrival.
pub fn ttl_remaining_secs(arrived_at_ms: i64, ttl_secs: i64, now_ms: i64) -> i64 {
    (arrived_at_ms + ttl_secs * 1000 - now_ms).div_euclid(1000)
}
