//! Workers: claim a runnable variation, run its current step under a lease
//! that a heartbeat keeps renewed, and let go. A step that loses its lease
//! is dropped (which kills any ffmpeg it started); the row is then run again
//! by whoever holds the new lease.

use super::pipeline::Pipeline;
use super::progress::ProgressCell;
use super::store::Claim;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Whether this process's worker loops are alive, for the worker's health
/// listener: each loop stamps its slot every time round (idle polls, claim
/// errors) and every half second of a step it runs; a loop that ended (or
/// unwound) clears its slot. Alive: every slot stamped within `stale`.
#[derive(Clone)]
pub struct Liveness {
    stamps: Arc<Vec<AtomicI64>>,
    stale_ms: i64,
}

impl Liveness {
    /// `loops` worker loops, each taken as dead once its last stamp is
    /// older than `stale`.
    pub fn new(loops: usize, stale: Duration) -> Self {
        Liveness {
            stamps: Arc::new((0..loops).map(|_| AtomicI64::new(0)).collect()),
            stale_ms: stale.as_millis().try_into().unwrap_or(i64::MAX),
        }
    }

    /// Loop `n` came round.
    pub fn beat(&self, n: usize) {
        if let Some(s) = self.stamps.get(n) {
            s.store(crate::time::now_ms().max(1), Ordering::Relaxed);
        }
    }

    /// Every loop has stamped, none ended, none is older than `stale`.
    pub fn alive(&self) -> bool {
        let now = crate::time::now_ms();
        !self.stamps.is_empty()
            && self.stamps.iter().all(|s| {
                let at = s.load(Ordering::Relaxed);
                at > 0 && now.saturating_sub(at) <= self.stale_ms
            })
    }

    /// Clears loop `n`'s slot when dropped: on its way out, also by a panic.
    fn ended_on_drop(&self, n: usize) -> LoopEnd {
        LoopEnd(self.clone(), n)
    }
}

/// A worker loop's end: its liveness slot cleared.
struct LoopEnd(Liveness, usize);

impl Drop for LoopEnd {
    fn drop(&mut self) {
        if let Some(s) = self.0.stamps.get(self.1) {
            s.store(0, Ordering::Relaxed);
        }
    }
}

pub async fn run_worker(
    pipeline: Arc<Pipeline>,
    n: usize,
    registry: super::fleet::Registry,
    live: Liveness,
    shutdown: CancellationToken,
) {
    let lease = pipeline.settings.lease();
    let idle = Duration::from_millis(pipeline.settings.worker.idle_poll_ms);
    let _ended = live.ended_on_drop(n);
    tracing::debug!(worker = n, "worker started");
    loop {
        live.beat(n);
        if shutdown.is_cancelled() {
            break;
        }
        match pipeline.jobs().claim(lease).await {
            Ok(Some(claim)) => {
                let id = claim.id.clone();
                registry.started(&id, claim.state.as_str());
                run_claim(&pipeline, claim, &shutdown, || live.beat(n)).await;
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
async fn run_claim(
    pipeline: &Arc<Pipeline>,
    claim: Claim,
    shutdown: &CancellationToken,
    beat: impl Fn(),
) {
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
            beat();
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

#[cfg(test)]
mod tests {
    use super::Liveness;
    use std::time::Duration;

    #[test]
    fn alive_only_while_every_loop_has_come_round_and_none_ended() {
        let live = Liveness::new(2, Duration::from_secs(60));
        assert!(!live.alive(), "no loop has come round yet");
        live.beat(0);
        assert!(!live.alive(), "loop 1 has not");
        live.beat(1);
        assert!(live.alive());
        drop(live.ended_on_drop(1));
        assert!(!live.alive(), "loop 1 ended");
        assert!(!Liveness::new(0, Duration::from_secs(60)).alive());
    }

    #[test]
    fn a_loop_that_stopped_coming_round_is_not_alive() {
        let live = Liveness::new(1, Duration::ZERO);
        live.beat(0);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!live.alive());
    }
}
