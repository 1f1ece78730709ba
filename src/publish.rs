//! Publishing to the CDN bucket: content-addressed files first, the mutable
//! pointers (`vast.xml`, then `manifest.json`) last, so a reader never sees a
//! pointer naming a file that is not there yet. The same bytes published
//! again change nothing.

pub mod captions;
pub mod flip;
pub mod set;
pub mod vast;
pub mod vast_fields;

use crate::media::files::FileRole;
use crate::storage::{ObjectKey, ObjectStore, StorageError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Bytes left for a file's path inside a set (`hls/1080p_00001.ts` is 18)
/// when the embedded store holds the CDN bucket `reelay-cdn` under the
/// prefix `v1` and the key is as long as the API allows (40-character
/// campaign, `ast_` + 20 hex, `v3`, 16-hex hash). Profiles whose output
/// paths stay within this always publish; a longer key fails the publish
/// step with `keyTooLong` instead of a storage error.
pub const KEY_ROOM_FOR_REL: usize = 36;

/// A file to publish beside its digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputFile {
    /// Path inside the content-addressed folder, `/` separated, e.g.
    /// `1080p.mp4` or `hls/720p_00001.ts` (relative URIs between the files
    /// of a set keep working because every file keeps its path).
    pub name: String,
    pub path: PathBuf,
    pub content_type: String,
    pub sha256: String,
    pub size: u64,
    pub role: FileRole,
    /// The output it belongs to (rendition or HLS variant name), if any.
    pub output: Option<String>,
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
    /// `mp4` or `webm` (empty in manifests written before WebM existed: mp4).
    #[serde(default)]
    pub container: String,
    /// How players fetch it: `progressive` (a whole file).
    #[serde(default)]
    pub delivery: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishedFile {
    pub url: String,
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

/// A still or animated image of the set (poster, sprite, preview).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishedImage {
    pub url: String,
    pub key: String,
    pub width: u32,
    pub height: u32,
    /// `jpeg`, `webp` or `png`.
    pub format: String,
    pub size: u64,
    pub sha256: String,
}

/// The storyboard: a sprite sheet and the WebVTT that maps times to tiles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishedStoryboard {
    pub sprite: PublishedImage,
    pub vtt: PublishedFile,
}

/// One variant of the HLS set, as its master playlist describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HlsVariant {
    pub name: String,
    /// The variant's media playlist.
    pub url: String,
    pub key: String,
    /// Peak bits per second (`BANDWIDTH`).
    pub bandwidth: u64,
    #[serde(default)]
    pub average_bandwidth: Option<u64>,
    pub width: u32,
    pub height: u32,
    /// RFC 6381 codecs (`CODECS`), empty when the playlist names none.
    pub codecs: String,
    /// Segments the media playlist lists.
    pub segments: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishedHls {
    /// The master playlist.
    pub master: PublishedFile,
    pub variants: Vec<HlsVariant>,
}

/// One file of the published set, whatever it is for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SetFile {
    /// Path inside the set.
    pub rel: String,
    pub key: String,
    pub url: String,
    pub content_type: String,
    pub role: FileRole,
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
    /// Progressive files (MP4, WebM), in the profile's order.
    pub renditions: Vec<PublishedRendition>,
    /// The main poster (the widest JPEG, else the widest poster).
    pub poster: PublishedFile,
    pub qc_report: PublishedFile,
    pub manifest_url: String,
    #[serde(default)]
    pub vast_url: String,
    /// Every poster, in every format and width.
    #[serde(default)]
    pub posters: Vec<PublishedImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storyboard: Option<PublishedStoryboard>,
    /// The animated preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<PublishedImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hls: Option<PublishedHls>,
    /// Every file of the set (`qc.json` aside), HLS segments included.
    #[serde(default)]
    pub files: Vec<SetFile>,
    /// Each destination the asset names, judged on this set (the QC
    /// report's verdicts); absent when it names none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<ManifestDestination>,
    /// The request's caption tracks (`captions/{lang}.vtt`); absent when
    /// it supplied none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub captions: Vec<PublishedCaption>,
}

/// One caption track of a published set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PublishedCaption {
    pub language: String,
    pub label: String,
    /// `text/vtt`.
    pub content_type: String,
    pub url: String,
    pub key: String,
    pub size: u64,
    pub sha256: String,
    /// Its HLS subtitle playlist, when the set has HLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hls_playlist_url: Option<String>,
}

/// One destination's verdict on a published set, as the manifest states it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestDestination {
    pub name: String,
    pub passed: bool,
    /// The failed rules (rule, subject, measured, limit); empty when passed.
    pub reasons: Vec<crate::policy::DestinationCheck>,
    /// The outputs it accepts (names of `renditions` and HLS variants);
    /// empty when it fails.
    pub files: Vec<String>,
    /// Its own VAST pointer (`vast/{name}.xml`), listing only `files`; set
    /// when it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vast_url: Option<String>,
}

impl Manifest {
    /// Keys of every object this manifest names under its set, the QC report
    /// included (pointers aside). Older manifests list no `files`: their
    /// renditions and poster are all there was.
    pub fn set_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.files.iter().map(|f| f.key.clone()).collect();
        keys.extend(self.renditions.iter().map(|r| r.key.clone()));
        keys.push(self.poster.key.clone());
        keys.push(self.qc_report.key.clone());
        keys.sort();
        keys.dedup();
        keys
    }

    /// The pointers this manifest makes live under `layout`: itself,
    /// `vast.xml` and each passing destination's VAST.
    pub fn pointer_keys(&self, layout: &Layout) -> Vec<String> {
        let mut keys = vec![layout.manifest(), layout.vast()];
        keys.extend(
            self.destinations
                .iter()
                .filter(|d| d.vast_url.is_some())
                .map(|d| layout.destination_vast(&d.name)),
        );
        keys
    }
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

    /// The VAST pointer of one destination (names are `a-z 0-9 -`, checked
    /// at start), beside `vast.xml`.
    pub fn destination_vast(&self, name: &str) -> String {
        format!("{}{name}.xml", self.destination_vast_prefix())
    }

    /// Where the destinations' VAST pointers live, ending in `/` (never a
    /// set's folder: those are 16 hex digits).
    pub fn destination_vast_prefix(&self) -> String {
        format!("{}/vast/", self.base)
    }

    /// Key prefix of one content-addressed set, ending in `/`.
    pub fn set_prefix(&self, hash: &str) -> String {
        format!("{}/{hash}/", self.base)
    }
}

/// Why a set cannot be stored when one of its keys is longer than `max`
/// bytes (the longest is named); None when all fit.
pub fn key_too_long(keys: impl Iterator<Item = String>, max: usize) -> Option<String> {
    keys.max_by_key(String::len)
        .filter(|k| k.len() > max)
        .map(|k| {
            format!(
                "the key {k} is {} bytes; this object store holds at most {max} \
             (shorten the campaign or the profile's output names)",
                k.len()
            )
        })
}

pub fn public_url(cdn_base: &str, key: &str) -> String {
    format!("{}/{}", cdn_base.trim_end_matches('/'), key)
}

/// Deletes every pointer of a variation: `manifest.json` (it names the
/// others), `vast.xml`, then each destination's VAST (listed, so one a
/// crash left behind goes too). Deleting what is gone is fine.
pub async fn take_down_pointers(
    objects: &ObjectStore,
    bucket: &str,
    layout: &Layout,
) -> anyhow::Result<()> {
    for k in [layout.manifest(), layout.vast()] {
        objects.delete(bucket, &ObjectKey::parse(&k)?).await?;
    }
    for k in objects
        .list(bucket, &layout.destination_vast_prefix())
        .await?
    {
        objects.delete(bucket, &ObjectKey::parse(&k)?).await?;
    }
    Ok(())
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

/// Uploads every file of a set under `layout`'s folder for `hash`, a few at
/// a time, each streamed from disk. Returns how many were new.
pub async fn upload_set(
    store: &ObjectStore,
    bucket: &str,
    layout: &Layout,
    hash: &str,
    files: &[OutputFile],
) -> Result<usize, StorageError> {
    use futures::stream::{FuturesUnordered, StreamExt};
    let mut pending = FuturesUnordered::new();
    let mut rest = files.iter();
    let mut new = 0;
    loop {
        while pending.len() < UPLOAD_CONCURRENCY {
            let Some(f) = rest.next() else { break };
            pending.push(async move {
                let key = layout.file(hash, &f.name);
                put_immutable(store, bucket, &key, f).await
            });
        }
        match pending.next().await {
            Some(done) => new += usize::from(done?),
            None => return Ok(new),
        }
    }
}

/// Files of one set uploaded at the same time: HLS sets have many small ones.
const UPLOAD_CONCURRENCY: usize = 4;

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
            role: FileRole::Rendition,
            output: None,
        }
    }

    #[test]
    fn content_hash_covers_paths_inside_the_set() {
        let a = content_hash(&[file("hls/720p_00001.ts", "aa"), file("720p.mp4", "bb")]);
        let b = content_hash(&[file("hls/720p_00002.ts", "aa"), file("720p.mp4", "bb")]);
        assert_ne!(a, b, "a renamed segment is another set");
    }

    #[test]
    fn the_longest_realistic_key_fits_the_embedded_store() {
        // What the API allows: campaigns up to 40 characters, ids
        // `ast_` + 20 hex, at most 4 variations (v0..v3); a 16-hex content hash.
        let campaign = "c".repeat(40);
        assert!(crate::domain::CampaignId::parse(&campaign).is_ok());
        assert!(crate::domain::CampaignId::parse(&"c".repeat(41)).is_err());
        let layout = Layout::new("v1", &campaign, &format!("ast_{}", "0".repeat(20)), 3);
        let hash = "f".repeat(16);
        let limit = crate::storage::embedded_max_key_bytes("reelay-cdn");
        for rel in [
            "hls/1080p_00001.ts",
            "hls/2160p_00001.ts",
            "hls/master.m3u8",
            "poster-1280.jpg",
            "storyboard.vtt",
        ] {
            let key = layout.file(&hash, rel);
            assert!(key.len() <= limit, "{key}: {} > {limit}", key.len());
        }
        // What is left for a file's path inside the set.
        let room = limit - layout.file(&hash, "").len();
        assert_eq!(
            room, KEY_ROOM_FOR_REL,
            "update KEY_ROOM_FOR_REL and its docs"
        );
        assert!(room >= "hls/1080p-high_00001.ts".len());
    }

    #[test]
    fn a_set_with_a_key_too_long_is_refused_with_the_key_named() {
        let layout = Layout::new("v1", &"c".repeat(40), &format!("ast_{}", "0".repeat(20)), 3);
        let hash = "f".repeat(16);
        let limit = crate::storage::embedded_max_key_bytes("reelay-cdn");
        let keys =
            |rels: &[&str]| -> Vec<String> { rels.iter().map(|r| layout.file(&hash, r)).collect() };
        assert_eq!(
            key_too_long(
                keys(&["1080p.mp4", "hls/1080p_00001.ts"]).into_iter(),
                limit
            ),
            None
        );
        let long = format!("hls/{}_00001.ts", "x".repeat(KEY_ROOM_FOR_REL));
        let why = key_too_long(keys(&["1080p.mp4", &long]).into_iter(), limit).unwrap();
        assert!(
            why.contains(&long) && why.contains(&limit.to_string()),
            "{why}"
        );
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
}
