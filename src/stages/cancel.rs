//! Cancelling an asset (`DELETE /v1/assets/{id}`), after the store marked
//! its variations `cancelled` (`Store::cancel`, which fences out any worker
//! running one): what was published is taken down like `stages::expire`
//! does, the pointers (manifest.json, vast.xml, each destination's
//! `vast/{name}.xml`) first, then every object
//! under the variation's folder (the live set, replaced sets in their
//! grace, anything a publish left half done), then the row forgets its set
//! and a purge of the pointers is queued. Every step can run again: a
//! second cancel redoes what a crash left undone.

use super::expire::Expiry;
use crate::jobs::model::{Asset, Variation};
use crate::publish::Layout;
use crate::storage::{ObjectKey, ObjectStore};

/// Takes down the CDN files of every variation of `asset` that has a set,
/// and of those cancelled just now (`fresh`: a publish may have been
/// writing). Returns how many variations had files taken down.
pub async fn unpublish(
    p: &Expiry<'_>,
    asset: &Asset,
    rows: &[Variation],
    fresh: &[String],
) -> anyhow::Result<usize> {
    let bucket = &p.settings.storage.cdn_bucket;
    let mut n = 0;
    for v in rows {
        let just_cancelled = fresh.contains(&v.id);
        // A set left live by a turned-down new version goes with the asset.
        if v.published.is_none() && !just_cancelled {
            continue;
        }
        let layout = Layout::new(&p.settings.cdn.prefix, &asset.campaign, &asset.id, v.idx);
        let named = v
            .published
            .as_ref()
            .map(|m| m.set_keys())
            .unwrap_or_default();
        take_down(p.objects, bucket, &layout, named).await?;
        let pointers = v
            .published
            .as_ref()
            .map(|m| m.pointer_keys(&layout))
            .unwrap_or_default();
        let purge = (v.published.is_some() && !p.settings.cdn.purge_url.is_empty()).then(|| {
            let url = |k: &str| crate::publish::public_url(p.cdn_base, k);
            crate::views::purge(
                &p.settings.cdn.purge_url,
                &asset.id,
                &v.id,
                pointers.iter().map(|k| url(k)).collect(),
                pointers.clone(),
            )
        });
        p.store
            .clear_published(&v.id, &purge.into_iter().collect::<Vec<_>>())
            .await?;
        if v.published.is_some() {
            n += 1;
        }
    }
    Ok(n)
}

/// Deletes a variation's pointers, then every object under its folder and
/// every key in `named` (what its manifest lists, should a store list
/// lazily). Deleting what is gone already is fine, so it can run again.
pub async fn take_down(
    objects: &ObjectStore,
    bucket: &str,
    layout: &Layout,
    named: Vec<String>,
) -> anyhow::Result<()> {
    crate::publish::take_down_pointers(objects, bucket, layout).await?;
    let mut keys = objects.list(bucket, &format!("{}/", layout.base)).await?;
    keys.extend(named);
    keys.sort();
    keys.dedup();
    for k in &keys {
        objects.delete(bucket, &ObjectKey::parse(k)?).await?;
    }
    Ok(())
}

/// Finishes the take-down of cancelled variations that still record a set
/// (the cancel's request died after its commit); returns how many.
pub async fn sweep_once(p: &Expiry<'_>) -> anyhow::Result<usize> {
    let mut n = 0;
    for v in p.store.cancelled_with_set().await? {
        let Some(asset) = p.store.asset(&v.asset_id).await? else {
            continue;
        };
        n += unpublish(p, &asset, std::slice::from_ref(&v), &[]).await?;
    }
    Ok(n)
}
