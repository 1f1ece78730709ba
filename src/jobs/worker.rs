//! Workers: claim a runnable variation, run its current step under a lease
//! that a heartbeat keeps renewed, and let go. A step that loses its lease
//! is dropped (which kills any ffmpeg it started); the row is then run again
//! by whoever holds the new lease.

use super::pipeline::Pipeline;
use super::progress::ProgressCell;
use super::store::Claim;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub async fn run_worker(
    pipeline: Arc<Pipeline>,
    n: usize,
    registry: super::fleet::Registry,
    shutdown: CancellationToken,
) {
    let lease = pipeline.settings.lease();
    let idle = Duration::from_millis(pipeline.settings.worker.idle_poll_ms);
    tracing::debug!(worker = n, "worker started");
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        match pipeline.jobs().claim(lease).await {
            Ok(Some(claim)) => {
                let id = claim.id.clone();
                registry.started(&id, claim.state.as_str());
                run_claim(&pipeline, claim, &shutdown).await;
                registry.finished(&id);
            }
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
    let drain = pipeline.settings.drain();
    let progress = ProgressCell::default();
    let mut claim = claim;
    let claim_for_heartbeat = claim.clone();
    let mut step = Box::pin(pipeline.step(&mut claim, progress.clone()));
    let heartbeat = async {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (percent, report) = progress.take();
            if percent.is_none() && report.is_none() && renewed.elapsed() < lease / 3 {
                continue;
            }
            match pipeline
                .jobs()
                .renew_with(&claim_for_heartbeat, lease, percent, report.as_ref())
                .await
            {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => return,
                Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
            }
        }
    };
    tokio::pin!(heartbeat);
    let unfinished = tokio::select! {
        () = &mut step => false,
        _ = &mut heartbeat => {
            tracing::warn!("lease lost to another worker; step abandoned");
            false
        }
        _ = shutdown.cancelled() => {
            // Draining: no new claims (the loop stops), and the step in hand
            // gets `worker.drain_secs` to finish, its lease still renewed.
            tracing::info!(drain_secs = drain.as_secs(), "stopping: letting the running step finish");
            let finish = async {
                tokio::select! {
                    () = &mut step => false,
                    _ = &mut heartbeat => false,
                }
            };
            tokio::time::timeout(drain, finish).await.unwrap_or(true)
        }
    };
    if unfinished {
        // Dropping the step kills its ffmpeg; only then is the row handed
        // back, so the next holder never shares a work folder with it.
        drop(step);
        hand_back(pipeline, &claim_for_heartbeat).await;
    }
}

/// Gives a step that did not finish in the drain back at once (its lease
/// released, a note on the row) instead of leaving it until the lease lapses.
async fn hand_back(pipeline: &Pipeline, claim: &Claim) {
    let u = super::model::Update {
        stage_detail: Some(Some(
            "handed back by a stopping worker; the next one resumes it".into(),
        )),
        release: true,
        ..Default::default()
    };
    match pipeline.jobs().update(claim, u).await {
        Ok(true) => tracing::info!("step handed back; another worker may take it now"),
        Ok(false) => tracing::info!("lease already gone; nothing to hand back"),
        Err(e) => {
            tracing::warn!(error = %e, "could not hand the step back; it resumes when the lease lapses")
        }
    }
}
