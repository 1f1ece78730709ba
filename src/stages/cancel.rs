//! Cancelling an asset (`DELETE /v1/assets/{id}`), after the store marked
//! its variations `cancelled` (`Store::cancel`, which fences out any worker
//! running one): what was published is taken down like `stages::expire`
//! does, the pointers (manifest.json, vast.xml) first, then every object
//! under the variation's folder (the live set, replaced sets in their
//! grace, anything a publish left half done), then the row forgets its set
//! and a purge of the pointers is queued. Every step can run again: a
//! second cancel redoes what a crash left undone.

use super::expire::Expiry;
use crate::jobs::model::{Asset, Variation};
use crate::publish::Layout;
use crate::storage::ObjectKey;

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
        let pointers = [layout.manifest(), layout.vast()];
        for k in &pointers {
            p.objects.delete(bucket, &ObjectKey::parse(k)?).await?;
        }
        let mut keys = p.objects.list(bucket, &format!("{}/", layout.base)).await?;
        if let Some(m) = &v.published {
            keys.extend(m.set_keys());
        }
        keys.sort();
        keys.dedup();
        for k in &keys {
            p.objects.delete(bucket, &ObjectKey::parse(k)?).await?;
        }
        let purge = (v.published.is_some() && !p.settings.cdn.purge_url.is_empty()).then(|| {
            let url = |k: &str| crate::publish::public_url(p.cdn_base, k);
            crate::views::purge(
                &p.settings.cdn.purge_url,
                &asset.id,
                &v.id,
                pointers.iter().map(|k| url(k)).collect(),
                pointers.to_vec(),
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
