//! The CDN sweeper: deletes published sets that newer sets replaced once
//! their grace period (`cdn.grace_secs`) has ended. The work list is the
//! `cdn_retired` table, so it survives restarts. Each set is deleted under
//! its variation's lease, so a reprocess cannot publish into a folder while
//! it is being emptied, and a set that became live again is never touched.
//! A set is deleted by listing its folder (recursively: HLS playlists and
//! segments under `hls/` go with the rest), so nothing depends on what its
//! manifest happened to name.

use super::pipeline::Pipeline;
use super::store::{now_ms, RetiredSet};
use crate::publish::{self, Manifest};
use crate::storage::ObjectKey;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn run(pipeline: Arc<Pipeline>, shutdown: CancellationToken) {
    let every = Duration::from_secs(pipeline.settings.cdn.sweep_interval_secs.max(1));
    loop {
        match sweep_once(&pipeline).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                sets = n,
                "replaced CDN sets deleted after their grace period"
            ),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "CDN sweep failed; will retry"),
        }
        let retention = pipeline.settings.events.dedupe_retention_secs as i64 * 1000;
        if let Err(e) = pipeline.store.prune_s3_events(now_ms() - retention).await {
            tracing::warn!(error = %e, "pruning old S3 event records failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => break,
        }
    }
}

/// Deletes every retired set whose grace has ended; returns how many.
pub async fn sweep_once(p: &Pipeline) -> anyhow::Result<usize> {
    let mut swept = 0;
    let grace = Duration::from_secs(p.settings.cdn.grace_secs);
    for r in p.store.retired_due(grace, 50).await? {
        let lease = p.settings.lease();
        let Some(claim) = p.store.claim_for_sweep(&r.variation_id, lease).await? else {
            // Being processed (or held): try again next round.
            continue;
        };
        let result = sweep_set(p, &r, &claim, lease).await;
        p.store.release(&claim).await?;
        if result? {
            swept += 1;
        }
    }
    Ok(swept)
}

async fn sweep_set(
    p: &Pipeline,
    r: &RetiredSet,
    claim: &super::store::Claim,
    lease: Duration,
) -> anyhow::Result<bool> {
    let bucket = &p.settings.storage.cdn_bucket;
    // Never delete what a pointer names: check the row and the manifest itself.
    let recorded = p
        .store
        .variation(&r.variation_id)
        .await?
        .and_then(|v| v.published)
        .map(|m| m.content_hash);
    let base = r
        .prefix
        .trim_end_matches('/')
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or_default();
    let manifest_key = ObjectKey::parse(&format!("{base}/manifest.json"))?;
    let live = publish::get_small(&p.objects, bucket, &manifest_key)
        .await?
        .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
        .map(|m| m.content_hash);
    if recorded.as_deref() == Some(r.content_hash.as_str())
        || live.as_deref() == Some(r.content_hash.as_str())
    {
        tracing::info!(variation = %r.variation_id, hash = %r.content_hash, "retired set is live again; kept");
        p.store
            .unretire_set(&r.variation_id, &r.content_hash)
            .await?;
        return Ok(false);
    }
    for key in p.objects.list(bucket, &r.prefix).await? {
        // Stop at once if the lease was lost (it should not be: it is long).
        if !p.store.renew(claim, lease, None).await? {
            anyhow::bail!("lost the lease while deleting {}", r.prefix);
        }
        p.objects.delete(bucket, &ObjectKey::parse(&key)?).await?;
    }
    p.store
        .unretire_set(&r.variation_id, &r.content_hash)
        .await?;
    tracing::info!(variation = %r.variation_id, hash = %r.content_hash, "replaced set deleted");
    Ok(true)
}
