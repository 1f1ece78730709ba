//! Retry delays: one exponential schedule (initial, factor, cap) with an
//! optional jitter, shared by everything in reelay that waits before trying
//! again (Runware calls and polls, callbacks and purges, the embedded store's
//! event delivery, the simulator's uploads).
//!
//! Retries are counted from 0: `delay(0)` is the wait before the first retry.
//! Without jitter a schedule is deterministic, so the fixed cadences callers
//! depend on (the Runware SDK's poll rhythm) are plain values of this type.

use std::time::Duration;

/// How a delay is spread around its schedule value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// Exactly the schedule value.
    None,
    /// Uniform in `[0, value)`: the AWS "full jitter", best at spreading many
    /// clients that failed together.
    Full,
    /// Uniform in `[value * (1 - p), value * (1 + p))`: keeps the doubling
    /// visible while spreading retries; may exceed the cap by `p`.
    Proportional(f64),
}

/// An exponential backoff schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// Growth per retry (at least 1.0; 1.0 is a constant delay).
    pub factor: f64,
    /// No schedule value exceeds this (jitter aside, see [`Jitter`]).
    pub cap: Duration,
    pub jitter: Jitter,
}

/// Exponents beyond this change nothing once the cap is reached, and keep
/// `powi` finite for any factor a caller would use.
const MAX_EXPONENT: u32 = 1024;

impl Backoff {
    /// `initial * factor^retry`, capped, without jitter.
    pub const fn exponential(initial: Duration, factor: f64, cap: Duration) -> Self {
        Backoff {
            initial,
            factor,
            cap,
            jitter: Jitter::None,
        }
    }

    /// `initial * 2^retry`, capped, without jitter.
    pub const fn doubling(initial: Duration, cap: Duration) -> Self {
        Self::exponential(initial, 2.0, cap)
    }

    pub const fn with_jitter(self, jitter: Jitter) -> Self {
        Backoff { jitter, ..self }
    }

    /// The schedule value before retry `retry` (0-based), jitter left out.
    pub fn ceiling(&self, retry: u32) -> Duration {
        if self.initial.is_zero() || self.cap.is_zero() {
            return Duration::ZERO;
        }
        let factor = self.factor.max(1.0);
        let secs = self.initial.as_secs_f64() * factor.powi(retry.min(MAX_EXPONENT) as i32);
        let cap = self.cap.as_secs_f64();
        if secs.is_finite() && secs < cap {
            Duration::from_secs_f64(secs)
        } else {
            self.cap
        }
    }

    /// The wait before retry `retry` (0-based), jittered.
    pub fn delay(&self, retry: u32) -> Duration {
        self.delay_at(retry, rand::random::<f64>())
    }

    /// [`Self::delay`] with the random draw given: `unit` in `[0, 1)`.
    fn delay_at(&self, retry: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(retry);
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => ceiling.mul_f64(unit),
            Jitter::Proportional(p) => {
                let p = p.clamp(0.0, 1.0);
                ceiling.mul_f64(1.0 - p + 2.0 * p * unit)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn without_jitter_it_is_deterministic_and_capped() {
        let b = Backoff::doubling(MS(200), MS(1000));
        let got: Vec<u64> = (0..6).map(|r| b.delay(r).as_millis() as u64).collect();
        assert_eq!(got, [200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(b.delay(u32::MAX), MS(1000));
    }

    #[test]
    fn a_fractional_factor_grows_geometrically() {
        let b = Backoff::exponential(MS(1000), 1.5, MS(10_000));
        let got: Vec<f64> = (0..8).map(|r| b.ceiling(r).as_secs_f64()).collect();
        let want = [1.0, 1.5, 2.25, 3.375, 5.0625, 7.59375, 10.0, 10.0];
        for (r, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() < 1e-9, "retry {r}: {g} != {w}");
        }
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let b = Backoff::doubling(MS(100), MS(1000)).with_jitter(Jitter::Full);
        assert_eq!(b.delay_at(2, 0.0), Duration::ZERO);
        assert_eq!(b.delay_at(2, 0.5), MS(200));
        assert!(b.delay_at(2, 0.999_999) < MS(400));
        for r in 0..40 {
            for _ in 0..20 {
                assert!(b.delay(r) <= b.ceiling(r), "retry {r}");
            }
        }
    }

    #[test]
    fn proportional_jitter_stays_within_its_band() {
        let b = Backoff::doubling(MS(1000), MS(10_000)).with_jitter(Jitter::Proportional(0.2));
        assert_eq!(b.delay_at(0, 0.0), MS(800));
        assert_eq!(b.delay_at(0, 0.5), MS(1000));
        assert_eq!(b.delay_at(4, 0.0), MS(8000), "capped, then jittered");
        for r in 0..30 {
            let c = b.ceiling(r).as_secs_f64();
            for _ in 0..20 {
                let d = b.delay(r).as_secs_f64();
                assert!(d >= c * 0.8 - 1e-9 && d < c * 1.2 + 1e-9, "retry {r}: {d}");
            }
        }
    }

    #[test]
    fn degenerate_schedules_do_not_panic() {
        assert_eq!(
            Backoff::doubling(Duration::ZERO, MS(5)).delay(u32::MAX),
            Duration::ZERO
        );
        assert_eq!(
            Backoff::doubling(MS(5), Duration::ZERO).delay(3),
            Duration::ZERO
        );
        assert_eq!(
            Backoff::doubling(MS(50), MS(10)).delay(0),
            MS(10),
            "cap below initial"
        );
        let flat = Backoff::exponential(MS(7), 0.5, MS(100));
        assert_eq!(flat.delay(9), MS(7), "a factor under 1 is treated as 1");
        let huge = Backoff::exponential(MS(1), 1e300, Duration::MAX);
        assert_eq!(huge.delay(u32::MAX), Duration::MAX);
    }
}
