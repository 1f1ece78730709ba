//! Workers: claim a runnable variation, run its current step under a lease
//! that a heartbeat keeps renewed, and let go. A step that loses its lease
//! is dropped (which kills any ffmpeg it started); the row is then run again
//! by whoever holds the new lease.

use super::pipeline::{Pipeline, StepError};
use super::store::{now_ms, Claim, Update};
use super::State;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Progress the running step reports, picked up by the heartbeat.
#[derive(Clone, Default)]
pub struct ProgressCell(Arc<Mutex<Option<f64>>>);

impl ProgressCell {
    pub fn set(&self, percent: f64) {
        *self.0.lock().unwrap() = Some(percent);
    }
    fn take(&self) -> Option<f64> {
        self.0.lock().unwrap().take()
    }
}

/// Transient errors are retried this many times before the variation fails.
const MAX_TRANSIENT_ERRORS: i64 = 8;

pub async fn run_worker(pipeline: Arc<Pipeline>, n: usize, shutdown: CancellationToken) {
    let lease = pipeline.settings.lease();
    let idle = Duration::from_millis(pipeline.settings.worker.idle_poll_ms);
    tracing::debug!(worker = n, "worker started");
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        match pipeline.store.claim(lease).await {
            Ok(Some(claim)) => run_claim(&pipeline, claim, &shutdown).await,
            Ok(None) => {
                tokio::select! {
                    _ = pipeline.wake.notified() => {}
                    _ = tokio::time::sleep(idle) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
            Err(e) => {
                tracing::warn!(worker = n, error = %e, "claiming work failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    tracing::debug!(worker = n, "worker stopped");
}

#[tracing::instrument(skip_all, fields(variation = %claim.id, state = %claim.state, attempt = claim.attempt))]
async fn run_claim(pipeline: &Arc<Pipeline>, claim: Claim, shutdown: &CancellationToken) {
    let lease = pipeline.settings.lease();
    let progress = ProgressCell::default();
    let mut claim = claim;
    let claim_for_heartbeat = claim.clone();
    let step = pipeline.step(&mut claim, progress.clone());
    let heartbeat = async {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let p = progress.take();
            if p.is_none() && renewed.elapsed() < lease / 3 {
                continue;
            }
            match pipeline.store.renew(&claim_for_heartbeat, lease, p).await {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => return,
                Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
            }
        }
    };
    tokio::select! {
        result = step => {
            if let Err(e) = result {
                handle_step_error(pipeline, &claim, e).await;
            }
        }
        _ = heartbeat => tracing::warn!("lease lost to another worker; step abandoned"),
        _ = shutdown.cancelled() => tracing::info!("shutting down mid-step; it resumes when the lease lapses"),
    }
}

async fn handle_step_error(pipeline: &Pipeline, claim: &Claim, err: StepError) {
    let row = match pipeline.store.variation(&claim.id).await {
        Ok(Some(r)) => r,
        _ => return,
    };
    let errors = row.error_count + 1;
    let message = format!("{err:#}");
    let update = if errors >= MAX_TRANSIENT_ERRORS {
        tracing::error!(error = %message, "step failed for good after {errors} attempts");
        Update::to(State::Failed).reason(
            "internalError",
            format!("gave up after {errors} attempts: {message}"),
        )
    } else {
        // Back off 2, 4, 8... seconds, capped at a minute.
        let delay = (1000i64 << errors.min(6)).min(60_000);
        tracing::warn!(error = %message, retry_in_ms = delay, "step failed; will retry");
        Update {
            error_count: Some(errors),
            stage_detail: Some(Some(format!("retrying after error: {message}"))),
            next_run_at: Some(now_ms() + delay),
            release: true,
            ..Default::default()
        }
    };
    if let Err(e) = pipeline.store.update(claim, update).await {
        tracing::error!(error = %e, "could not record a step error");
    }
}
