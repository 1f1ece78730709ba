//! Workers: claim a runnable variation, run its current step under a lease
//! that a heartbeat keeps renewed, and let go. A step that loses its lease
//! is dropped (which kills any ffmpeg it started); the row is then run again
//! by whoever holds the new lease.

use super::pipeline::{Pipeline, StepError};
use super::store::{now_ms, Claim, StepProgress, Update};
use super::State;
use crate::media::process::Progress;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Progress the running step reports, picked up by the heartbeat.
#[derive(Clone, Default)]
pub struct ProgressCell(Arc<Mutex<CellState>>);

#[derive(Default)]
struct CellState {
    /// Not yet written by the heartbeat.
    percent: Option<f64>,
    report: Option<StepProgress>,
    /// The highest percent reported per stage: progress never goes back.
    last: Option<(String, f64)>,
}

impl ProgressCell {
    /// A bare percentage (no ffmpeg facts to go with it).
    pub fn set(&self, percent: f64) {
        self.0.lock().unwrap().percent = Some(percent);
    }

    /// A full report. Within one stage the percent only grows: a late or
    /// reordered reading never shows less done than an earlier one.
    pub fn report(&self, mut p: StepProgress) {
        let mut cell = self.0.lock().unwrap();
        if let Some(pc) = p.percent {
            let mut pc = pc.clamp(0.0, 100.0);
            if let Some((stage, high)) = &cell.last {
                if *stage == p.stage {
                    pc = pc.max(*high);
                }
            }
            cell.last = Some((p.stage.clone(), pc));
            p.percent = Some(pc);
        }
        cell.percent = p.percent;
        cell.report = Some(p);
    }

    /// What was reported since the last call.
    pub fn take(&self) -> (Option<f64>, Option<StepProgress>) {
        let mut cell = self.0.lock().unwrap();
        (cell.percent.take(), cell.report.take())
    }
}

/// A report from one of ffmpeg's progress readings. `input_secs` is the
/// duration of what ffmpeg reads (the ETA is the media time left at the
/// current speed).
pub fn ffmpeg_progress(stage: &str, p: &Progress, input_secs: f64) -> StepProgress {
    let round1 = |x: f64| (x * 10.0).round() / 10.0;
    let speed = (p.speed.is_finite() && p.speed > 0.0).then_some(f64::from(p.speed));
    let eta_secs = match speed {
        Some(s) if input_secs > 0.0 => Some(round1((input_secs - p.time_secs).max(0.0) / s)),
        _ => None,
    };
    StepProgress {
        stage: stage.to_string(),
        percent: p.percent.map(|pc| round1(pc.clamp(0.0, 100.0))),
        fps: (p.fps.is_finite() && p.fps > 0.0).then(|| round1(f64::from(p.fps))),
        speed: speed.map(|s| (s * 1000.0).round() / 1000.0),
        eta_secs,
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
            let (percent, report) = progress.take();
            if percent.is_none() && report.is_none() && renewed.elapsed() < lease / 3 {
                continue;
            }
            match pipeline
                .store
                .renew_with(&claim_for_heartbeat, lease, percent, report.as_ref())
                .await
            {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(percent: Option<f64>, time_secs: f64, speed: f32) -> Progress {
        Progress {
            percent,
            fps: 48.0,
            speed,
            time_secs,
        }
    }

    #[test]
    fn ffmpeg_readings_become_reports_with_an_eta() {
        let r = ffmpeg_progress("transcoding", &reading(Some(25.0), 2.5, 0.5), 10.0);
        assert_eq!(
            r,
            StepProgress {
                stage: "transcoding".into(),
                percent: Some(25.0),
                fps: Some(48.0),
                speed: Some(0.5),
                eta_secs: Some(15.0),
            }
        );
        // No speed yet (ffmpeg prints N/A at first): no ETA, no speed.
        let r = ffmpeg_progress("transcoding", &reading(Some(0.0), 0.0, 0.0), 10.0);
        assert_eq!((r.speed, r.eta_secs), (None, None));
        // Unknown duration: no percent, no ETA.
        let r = ffmpeg_progress("transcoding", &reading(None, 3.0, 2.0), 0.0);
        assert_eq!((r.percent, r.eta_secs), (None, None));
        // Past the end (rounding): never below zero.
        let r = ffmpeg_progress("transcoding", &reading(Some(100.0), 10.2, 1.0), 10.0);
        assert_eq!(r.eta_secs, Some(0.0));
    }

    #[test]
    fn the_cell_hands_over_the_latest_report_once_and_never_goes_back() {
        let cell = ProgressCell::default();
        assert_eq!(cell.take(), (None, None));
        let at = |pc: f64| ffmpeg_progress("transcoding", &reading(Some(pc), pc / 10.0, 1.0), 10.0);
        cell.report(at(10.0));
        cell.report(at(40.0));
        let (percent, report) = cell.take();
        assert_eq!(percent, Some(40.0));
        assert_eq!(report.unwrap().percent, Some(40.0));
        assert_eq!(cell.take(), (None, None), "taken once");
        // A reading lower than one already shown is raised to it...
        cell.report(at(30.0));
        let (percent, report) = cell.take();
        assert_eq!(percent, Some(40.0));
        assert_eq!(report.unwrap().percent, Some(40.0));
        // ...within its stage only: another stage starts from its own zero.
        cell.report(ffmpeg_progress(
            "checking",
            &reading(Some(5.0), 0.5, 1.0),
            10.0,
        ));
        assert_eq!(cell.take().0, Some(5.0));
        // Successive reports seen by the heartbeat never decrease.
        let mut seen = Vec::new();
        for pc in [50.0, 45.0, 70.0, 69.9, 100.0, 120.0] {
            cell.report(at(pc));
            seen.push(cell.take().0.unwrap());
        }
        assert_eq!(seen, [50.0, 50.0, 70.0, 70.0, 100.0, 100.0]);
    }
}
