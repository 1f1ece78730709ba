//! Expiry (`published` → `expired`), run by the TTL sweeper: unpublishes variations whose `ttl` (counted from the
//! master's arrival) has run out, and marks them `expired`. State lives only
//! in the job store, so a restart just sweeps again; every step is
//! idempotent (deleting a deleted object is fine, the state change is
//! conditional on `published`). The pointers (manifest.json, vast.xml, each
//! destination's `vast/{name}.xml`) go
//! first, then every object of the set (listed by its folder, so HLS
//! segments and stills go too) and any replaced sets still in their grace;
//! the `asset.expired` callback and a purge of the pointers are queued with
//! the state change.

use crate::config::Settings;
use crate::jobs::Store;
use crate::publish::{Layout, Manifest};
use crate::storage::ObjectKey;
use crate::storage::ObjectStore;
use crate::time::now_ms;

/// What expiry works with: the job store and the CDN bucket.
pub struct Expiry<'a> {
    pub store: &'a Store,
    pub objects: &'a ObjectStore,
    pub settings: &'a Settings,
    /// Base URL of published files (for purges).
    pub cdn_base: &'a str,
}

/// Expires every published variation that is due; returns how many.
pub async fn sweep_once(p: &Expiry<'_>) -> anyhow::Result<usize> {
    let due = p.store.published_due(now_ms()).await?;
    let bucket = &p.settings.storage.cdn_bucket;
    let mut n = 0;
    for v in due {
        let mut purge = None;
        if let Some(m) = &v.published {
            // The pointer first: from here on no reader is sent to the set.
            let layout = Layout::new(
                &p.settings.cdn.prefix,
                &m.campaign,
                &m.asset_id,
                m.variation,
            );
            let pointers = m.pointer_keys(&layout);
            crate::publish::take_down_pointers(p.objects, bucket, &layout).await?;
            // Then the set: every object under its folder (HLS segments
            // included), and whatever the manifest names, should a store
            // list lazily.
            for k in set_keys(p, bucket, &layout, m).await? {
                p.objects.delete(bucket, &ObjectKey::parse(&k)?).await?;
            }
            // Sets this one replaced, still in their grace period, go too.
            for r in p.store.retired_of(&v.id).await? {
                for k in p.objects.list(bucket, &r.prefix).await? {
                    p.objects.delete(bucket, &ObjectKey::parse(&k)?).await?;
                }
                p.store.unretire_set(&v.id, &r.content_hash).await?;
            }
            purge = (!p.settings.cdn.purge_url.is_empty()).then(|| {
                let url = |k: &str| crate::publish::public_url(p.cdn_base, k);
                crate::views::purge(
                    &p.settings.cdn.purge_url,
                    &m.asset_id,
                    &v.id,
                    pointers.iter().map(|k| url(k)).collect(),
                    pointers.clone(),
                )
            });
        }
        if p.store
            .expire(
                &v.id,
                "the asset's ttl ran out; its CDN files were removed",
                purge.into_iter().collect(),
            )
            .await?
        {
            n += 1;
        }
    }
    Ok(n)
}

/// Every key of the live set: what its folder holds and what its manifest
/// names.
async fn set_keys(
    p: &Expiry<'_>,
    bucket: &str,
    layout: &Layout,
    m: &Manifest,
) -> anyhow::Result<Vec<String>> {
    let mut keys = p
        .objects
        .list(bucket, &layout.set_prefix(&m.content_hash))
        .await?;
    keys.extend(m.set_keys());
    keys.sort();
    keys.dedup();
    Ok(keys)
}
