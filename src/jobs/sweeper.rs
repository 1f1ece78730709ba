//! The TTL sweeper: unpublishes variations whose `ttl` (counted from the
//! master's arrival) has run out, and marks them `expired`. State lives only
//! in the job store, so a restart just sweeps again; every step is
//! idempotent (deleting a deleted object is fine, the state change is
//! conditional on `published`).

use super::pipeline::Pipeline;
use super::store::now_ms;
use crate::publish::{Layout, Manifest};
use crate::storage::ObjectKey;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn run_sweeper(pipeline: Arc<Pipeline>, shutdown: CancellationToken) {
    let every = Duration::from_secs(pipeline.settings.policy.ttl_sweep_interval_secs.max(1));
    loop {
        match sweep_once(&pipeline).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "ttl sweep"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "ttl sweep failed; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => break,
        }
    }
}

/// Expires every published variation that is due; returns how many.
pub async fn sweep_once(p: &Pipeline) -> anyhow::Result<usize> {
    let due = p.store.published_due(now_ms()).await?;
    let bucket = &p.settings.storage.cdn_bucket;
    let mut n = 0;
    for v in due {
        if let Some(m) = v
            .published_json
            .as_deref()
            .and_then(|j| serde_json::from_str::<Manifest>(j).ok())
        {
            // The pointer first: from here on no reader is sent to the set.
            let layout = Layout::new(
                &p.settings.cdn.prefix,
                &m.campaign,
                &m.asset_id,
                m.variation,
            );
            let mut keys = vec![layout.manifest()];
            keys.extend(m.renditions.iter().map(|r| r.key.clone()));
            keys.push(m.poster.key.clone());
            keys.push(m.qc_report.key.clone());
            for k in keys {
                p.objects.delete(bucket, &ObjectKey::parse(&k)?).await?;
            }
        }
        if p.store
            .expire(&v.id, "the asset's ttl ran out; its CDN files were removed")
            .await?
        {
            n += 1;
        }
    }
    Ok(n)
}
