//! The TTL sweeper's loop: every `policy.ttl_sweep_interval_secs` it runs
//! the expiry stage ([`crate::stages::expire`]) over what is due. State
//! lives only in the job store, so a restart just sweeps again.

use super::Pipeline;
use crate::stages::cancel;
use crate::stages::expire::{sweep_once, Expiry};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn run_sweeper(pipeline: Arc<Pipeline>, shutdown: CancellationToken) {
    let every = Duration::from_secs(pipeline.settings.policy.ttl_sweep_interval_secs.max(1));
    loop {
        let expiry = Expiry {
            store: &pipeline.store,
            objects: &pipeline.objects,
            settings: &pipeline.settings,
            cdn_base: &pipeline.cdn_base,
        };
        match sweep_once(&expiry).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "ttl sweep"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "ttl sweep failed; will retry"),
        }
        // A cancel whose take-down did not finish (its request died after
        // the commit) is finished here.
        match cancel::sweep_once(&expiry).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(taken_down = n, "cancelled sets swept"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "cancel sweep failed; will retry"),
        }
        // Idempotency keys are kept for their 24 h window, then forgotten.
        let before = crate::time::now_ms() - crate::jobs::store::IDEMPOTENCY_WINDOW_MS;
        match pipeline.store.sweep_idempotency(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(forgotten = n, "idempotency keys swept"),
            Err(e) => tracing::warn!(error = %e, "idempotency key sweep failed; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => break,
        }
    }
}
