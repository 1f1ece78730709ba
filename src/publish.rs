//! Publishing to the CDN bucket: content-addressed files first, the mutable
//! pointers (`vast.xml`, then `manifest.json`) last, so a reader never sees a
//! pointer naming a file that is not there yet. The same bytes published
//! again change nothing.

pub mod vast;

use crate::storage::{ObjectKey, ObjectStore, StorageError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A file to publish beside its digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputFile {
    /// File name inside the content-addressed folder, e.g. `1080p.mp4`.
    pub name: String,
    pub path: PathBuf,
    pub content_type: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishedRendition {
    pub name: String,
    pub url: String,
    pub key: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    /// Average bitrate in kbps, as VAST wants it.
    pub bitrate_kbps: u64,
    /// RFC 6381 codec string, e.g. `avc1.640028,mp4a.40.2`.
    pub codecs: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishedFile {
    pub url: String,
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

/// The mutable pointer to a variation's current published set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub asset_id: String,
    pub variation: i64,
    pub campaign: String,
    pub content_hash: String,
    /// VAST `UniversalAdId` of this set: new bytes, new id.
    #[serde(default)]
    pub universal_ad_id: String,
    pub published_at: String,
    pub expires_at: String,
    pub duration_secs: f64,
    pub master_sha256: String,
    pub renditions: Vec<PublishedRendition>,
    pub poster: PublishedFile,
    pub qc_report: PublishedFile,
    pub manifest_url: String,
    #[serde(default)]
    pub vast_url: String,
}

/// Identifies a set of outputs by their bytes: the same files always give the
/// same folder, new bytes always a new one.
pub fn content_hash(files: &[OutputFile]) -> String {
    let mut lines: Vec<String> = files
        .iter()
        .map(|f| format!("{} {}\n", f.name, f.sha256))
        .collect();
    lines.sort();
    let mut h = Sha256::new();
    for l in lines {
        h.update(l.as_bytes());
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// Keys of one variation's published set.
#[derive(Debug, Clone)]
pub struct Layout {
    pub base: String,
}

impl Layout {
    pub fn new(prefix: &str, campaign: &str, asset_id: &str, variation: i64) -> Self {
        let prefix = prefix.trim_matches('/');
        let base = if prefix.is_empty() {
            format!("{campaign}/{asset_id}/v{variation}")
        } else {
            format!("{prefix}/{campaign}/{asset_id}/v{variation}")
        };
        Layout { base }
    }

    pub fn file(&self, hash: &str, name: &str) -> String {
        format!("{}/{hash}/{name}", self.base)
    }

    pub fn manifest(&self) -> String {
        format!("{}/manifest.json", self.base)
    }

    pub fn vast(&self) -> String {
        format!("{}/vast.xml", self.base)
    }

    /// Key prefix of one content-addressed set, ending in `/`.
    pub fn set_prefix(&self, hash: &str) -> String {
        format!("{}/{hash}/", self.base)
    }
}

pub fn public_url(cdn_base: &str, key: &str) -> String {
    format!("{}/{}", cdn_base.trim_end_matches('/'), key)
}

/// Computes a file's SHA-256 and size by streaming it.
pub async fn digest_file(path: &Path) -> std::io::Result<(String, u64)> {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(path).await?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), size))
}

/// Uploads a content-addressed file unless an object of the same size is
/// already at its key (its key names its bytes, so that is the same file).
pub async fn put_immutable(
    store: &ObjectStore,
    bucket: &str,
    key: &str,
    file: &OutputFile,
) -> Result<bool, StorageError> {
    let k = ObjectKey::parse(key).map_err(StorageError::InvalidKey)?;
    if let Some(meta) = store.head(bucket, &k).await? {
        if meta.size == file.size {
            return Ok(false);
        }
    }
    store
        .upload_file(bucket, &k, &file.path, &file.content_type, IMMUTABLE)
        .await?;
    Ok(true)
}

/// Stores a small content-addressed object unless one is already at its key,
/// and returns the size and SHA-256 of what is there. The first bytes written
/// to an immutable key stay: caches may hold them for a year.
pub async fn put_small_immutable(
    store: &ObjectStore,
    bucket: &str,
    key: &ObjectKey,
    bytes: Vec<u8>,
    content_type: &str,
) -> Result<(u64, String), StorageError> {
    if let Some(existing) = get_small(store, bucket, key).await? {
        let sha = hex::encode(Sha256::digest(&existing));
        return Ok((existing.len() as u64, sha));
    }
    let sha = hex::encode(Sha256::digest(&bytes));
    let size = bytes.len() as u64;
    store
        .put_bytes(bucket, key, bytes, content_type, IMMUTABLE)
        .await?;
    Ok((size, sha))
}

/// Reads a small object whole; `None` if it does not exist.
pub async fn get_small(
    store: &ObjectStore,
    bucket: &str,
    key: &ObjectKey,
) -> Result<Option<Vec<u8>>, StorageError> {
    use futures::StreamExt;
    let Some(obj) = store.get(bucket, key, None).await? else {
        return Ok(None);
    };
    let mut body = obj.body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.map_err(StorageError::io("read object"))?);
    }
    Ok(Some(bytes))
}

/// `Cache-Control` of a mutable pointer: short, and never past the TTL left.
pub fn pointer_cache_control(max_age_secs: u64, ttl_remaining_secs: i64) -> String {
    let max_age = (max_age_secs as i64).min(ttl_remaining_secs).max(0);
    format!("public, max-age={max_age}")
}

/// RFC 6381 string for H.264 from ffprobe's profile name and level (x10).
pub fn avc1_codec(profile: Option<&str>, level: Option<i32>) -> String {
    let profile_idc = match profile {
        Some("Baseline") | Some("Constrained Baseline") => 0x42,
        Some("Main") => 0x4d,
        Some("High 10") => 0x6e,
        _ => 0x64,
    };
    let level = level.unwrap_or(40).clamp(0, 255);
    format!("avc1.{profile_idc:02x}00{level:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, sha: &str) -> OutputFile {
        OutputFile {
            name: name.into(),
            path: PathBuf::from(name),
            content_type: "video/mp4".into(),
            sha256: sha.into(),
            size: 1,
        }
    }

    #[test]
    fn content_hash_depends_on_bytes_not_order() {
        let a = content_hash(&[file("1080p.mp4", "aa"), file("720p.mp4", "bb")]);
        let b = content_hash(&[file("720p.mp4", "bb"), file("1080p.mp4", "aa")]);
        let c = content_hash(&[file("1080p.mp4", "aa"), file("720p.mp4", "bc")]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn layout_puts_files_under_the_hash_and_the_manifest_beside_it() {
        let l = Layout::new("/v1/", "spring", "ast_1", 0);
        assert_eq!(
            l.file("abcd", "720p.mp4"),
            "v1/spring/ast_1/v0/abcd/720p.mp4"
        );
        assert_eq!(l.manifest(), "v1/spring/ast_1/v0/manifest.json");
        assert_eq!(l.vast(), "v1/spring/ast_1/v0/vast.xml");
        assert_eq!(l.set_prefix("abcd"), "v1/spring/ast_1/v0/abcd/");
    }

    #[test]
    fn pointers_never_outlive_the_ttl() {
        assert_eq!(pointer_cache_control(60, 3600), "public, max-age=60");
        assert_eq!(pointer_cache_control(60, 10), "public, max-age=10");
        assert_eq!(pointer_cache_control(60, -5), "public, max-age=0");
    }

    #[test]
    fn avc1_codec_strings_follow_rfc_6381() {
        assert_eq!(avc1_codec(Some("High"), Some(40)), "avc1.640028");
        assert_eq!(avc1_codec(Some("High"), Some(31)), "avc1.64001f");
        assert_eq!(avc1_codec(Some("Main"), Some(30)), "avc1.4d001e");
    }
}
