//! The object key a generated master is uploaded to: one per task,
//! `masters/{campaign}/{asset}/v{n}/{taskUUID}.{ext}`. A presigned URL for it
//! names that task and no other, so an upload to the URL of a task that was
//! replaced (a resubmission) is told apart from the current one, and from a
//! master uploaded by hand under `masters/{campaign}/`.

use super::{AssetId, VariationId};
use uuid::Uuid;

/// The master key of task `task` of variation `index` of `asset`.
pub fn for_task(campaign: &str, asset: &AssetId, index: i64, task: &Uuid, ext: &str) -> String {
    format!(
        "masters/{campaign}/{asset}/v{index}/{}.{ext}",
        task.hyphenated()
    )
}

/// What a generated master's key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    pub variation: VariationId,
    pub task: Uuid,
}

/// The variation and task a key in the generated layout names; `None` for
/// any other key (a master uploaded by hand, or the older one-key-per-
/// variation layout).
pub fn parse(key: &str) -> Option<GeneratedKey> {
    let rest = key.strip_prefix("masters/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [campaign, asset, version, file] = parts[..] else {
        return None;
    };
    super::CampaignId::parse(campaign).ok()?;
    let asset = AssetId::parse(asset)?;
    let index: i64 = version
        .strip_prefix('v')
        .filter(|n| !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()?;
    let (task, ext) = file.split_once('.')?;
    if ext.is_empty() || !ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let parsed = Uuid::parse_str(task).ok()?;
    (parsed.hyphenated().to_string() == task).then(|| GeneratedKey {
        variation: asset.variation(index),
        task: parsed,
    })
}

/// Where arrival keeps its copy of a master it verified:
/// `verified/{rest of the master key}`, in the same bucket. No presigned URL
/// names it and the event intake ignores it, so a later write to the upload
/// key (a replayed URL) cannot change the master that reprocessing reads.
pub fn verified(master_key: &str) -> String {
    format!(
        "verified/{}",
        master_key.strip_prefix("masters/").unwrap_or(master_key)
    )
}

/// The extension of a master key (`mp4` of `….mp4`).
pub fn extension(key: &str) -> &str {
    key.rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| !e.contains('/'))
        .unwrap_or("mp4")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_key_names_its_variation_and_task_and_nothing_else_parses() {
        let asset = AssetId::generate();
        let task = Uuid::new_v4();
        let key = for_task("spring", &asset, 1, &task, "mp4");
        assert_eq!(
            parse(&key),
            Some(GeneratedKey {
                variation: asset.variation(1),
                task
            })
        );
        assert_eq!(extension(&key), "mp4");
        let other = for_task("spring", &asset, 1, &Uuid::new_v4(), "mp4");
        assert_ne!(key, other, "each task gets its own key");
        for bad in [
            format!("masters/spring/{asset}/v1/master.mp4"),
            format!("masters/spring/{asset}/v1/{task}"),
            format!("masters/spring/{asset}/v1/{}.mp4", task.simple()),
            format!("masters/spring/{asset}/vx/{task}.mp4"),
            format!("masters/spring/ast_nope/v1/{task}.mp4"),
            format!("masters/spring/{asset}/v1/x/{task}.mp4"),
            format!("masters/Spring/{asset}/v1/{task}.mp4"),
            format!("other/spring/{asset}/v1/{task}.mp4"),
            "masters/spring/hero.mp4".to_string(),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn the_verified_copy_lives_outside_the_masters_prefix() {
        let key = for_task("spring", &AssetId::generate(), 2, &Uuid::new_v4(), "mp4");
        let copy = verified(&key);
        assert!(copy.starts_with("verified/spring/"), "{copy}");
        assert!(!copy.starts_with(crate::events::MASTERS_PREFIX));
        assert_eq!(parse(&copy), None);
        assert_eq!(&copy["verified/".len()..], &key["masters/".len()..]);
    }

    #[test]
    fn the_longest_key_fits_the_embedded_store() {
        let asset = AssetId::generate();
        let key = for_task(&"c".repeat(40), &asset, 99, &Uuid::new_v4(), "webm");
        for key in [verified(&key), key] {
            assert!(
                key.len() <= crate::storage::embedded_max_key_bytes("reelay-masters"),
                "{} bytes",
                key.len()
            );
        }
    }
}
