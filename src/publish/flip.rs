//! The pointer-flip protocol: how a checked set goes live without a reader
//! ever being sent to a file that is not there.
//!
//! 1. The set about to be live is taken off the retired list (the CDN
//!    sweeper must leave it).
//! 2. Pointers that already name these bytes: nothing to write.
//! 3. Every fact the manifest states is read from the files, and the set is
//!    checked whole (safe paths, references resolve) before any upload.
//! 4. Every file of the set, then `qc.json`, immutable and content-addressed.
//! 5. The set being replaced is recorded as retired (before the flip, so a
//!    crash right after it cannot leak the old set).
//! 6. The lease is renewed: a worker that lost the row must not flip.
//! 7. Each passing destination's `vast/{name}.xml` (only the files it
//!    accepts), `vast.xml`, then `manifest.json` (it names them all), with a
//!    max-age that never outlives the asset's ttl.
//! 8. Destination pointers this set does not make (a destination that now
//!    fails, or is no longer named) are deleted: until the manifest flipped
//!    they named the replaced set, which stays through its grace.
//!
//! The job-store side (retiring, renewing) comes in through [`FlipGuard`],
//! so this module needs nothing of the job store.

use super::set::{self as pubset, SetFacts, Texts};
use super::{Layout, Manifest, ManifestDestination, OutputFile, PublishedFile};
use crate::media::probe::Probe;
use crate::media::process::Runner;
use crate::media::transcode::FileRole;
use crate::policy::QcReport;
use crate::storage::{ObjectKey, ObjectStore};
use async_trait::async_trait;
use std::collections::HashMap;
use std::path::Path;

/// What the flip needs from whoever holds the variation.
#[async_trait]
pub trait FlipGuard: Send + Sync {
    /// The set `hash` is (about to be) live again: the sweeper must leave it.
    async fn keep(&self, hash: &str) -> anyhow::Result<()>;
    /// The live set `hash` under `prefix` is being replaced.
    async fn retire(&self, hash: &str, prefix: &str) -> anyhow::Result<()>;
    /// Renews the caller's lease; false when it was lost.
    async fn renew(&self) -> anyhow::Result<bool>;
}

/// One variation's set, checked and ready.
pub struct FlipRequest<'a> {
    pub objects: &'a ObjectStore,
    pub runner: &'a Runner,
    pub bucket: &'a str,
    pub layout: &'a Layout,
    pub cdn_base: &'a str,
    pub files: &'a [OutputFile],
    pub hash: &'a str,
    pub report: &'a QcReport,
    /// The master's probe (its duration stands in where a file has none).
    pub master: &'a Probe,
    pub asset_id: &'a str,
    pub campaign: &'a str,
    pub variation_idx: i64,
    pub master_sha256: &'a str,
    pub published_at: String,
    pub expires_at: String,
    /// `Cache-Control` of the pointers.
    pub pointer_cache: String,
    /// The VAST `Impression` URL template (`{ad_id}`), or empty.
    pub impression_url: &'a str,
    /// The request's own VAST fields.
    pub vast: &'a super::vast_fields::VastFields,
    /// The request's caption tracks (their files are among `files`).
    pub captions: &'a [super::captions::Caption],
}

/// How the flip ended.
#[derive(Debug)]
pub enum Flipped {
    /// The pointers already named these bytes.
    AlreadyLive(Manifest),
    /// The pointers now name this set; `replaced` is the hash they named;
    /// `removed` the destination pointers taken down (purged with the rest).
    Published {
        manifest: Manifest,
        replaced: Option<String>,
        removed: Vec<String>,
    },
    /// The set is not one players could use (a retry makes the same files).
    Refused(String),
    /// The lease was lost before the flip; the pointers were left alone.
    LeaseLost,
}

pub async fn flip(req: FlipRequest<'_>, guard: &dyn FlipGuard) -> anyhow::Result<Flipped> {
    let FlipRequest {
        objects,
        bucket,
        layout,
        hash,
        ..
    } = req;
    let url = |k: &str| super::public_url(req.cdn_base, k);
    let manifest_key = ObjectKey::parse(&layout.manifest())?;
    let vast_key = ObjectKey::parse(&layout.vast())?;
    let qc_key = layout.file(hash, "qc.json");

    guard.keep(hash).await?;

    // Each destination's verdict as the manifest states it; a passing one
    // gets its own pointer.
    let destinations: Vec<ManifestDestination> = req
        .report
        .destinations
        .iter()
        .map(|d| ManifestDestination {
            name: d.name.clone(),
            passed: d.passed,
            reasons: d.reasons.clone(),
            files: d.files.clone(),
            vast_url: d.passed.then(|| url(&layout.destination_vast(&d.name))),
        })
        .collect();

    // Pointers already naming these bytes (and saying the same of each
    // destination): the set is live, nothing to do.
    let live = read_manifest(objects, bucket, &manifest_key).await?;
    if let Some(existing) = live
        .as_ref()
        .filter(|m| m.content_hash == hash && m.destinations == destinations)
    {
        let vast_live = super::get_small(objects, bucket, &vast_key)
            .await?
            .is_some_and(|b| {
                !existing.universal_ad_id.is_empty()
                    && String::from_utf8_lossy(&b).contains(&existing.universal_ad_id)
            });
        if vast_live {
            // A crash after the flip may have left a stale destination pointer.
            let keep = existing.pointer_keys(layout);
            remove_stale(objects, bucket, layout, &keep).await?;
            return Ok(Flipped::AlreadyLive(existing.clone()));
        }
    }

    // Everything the manifest says is read from the files before any
    // upload, so a set players could not use is never published.
    let (probes, texts) = set_facts(req.runner, req.files, req.report).await?;
    let sections = match pubset::sections(&SetFacts {
        layout,
        hash,
        cdn_base: req.cdn_base,
        files: req.files,
        probes: &probes,
        texts: &texts,
        fallback_duration_secs: req.master.duration_secs,
    }) {
        Ok(s) => s,
        Err(why) => return Ok(Flipped::Refused(why)),
    };

    let uploaded = super::upload_set(objects, bucket, layout, hash, req.files).await?;
    let (qc_size, qc_sha) = super::put_small_immutable(
        objects,
        bucket,
        &ObjectKey::parse(&qc_key)?,
        serde_json::to_vec_pretty(req.report)?,
        "application/json",
    )
    .await?;
    tracing::debug!(files = req.files.len(), uploaded, hash = %hash, "set in place");

    let manifest = Manifest {
        asset_id: req.asset_id.to_string(),
        variation: req.variation_idx,
        campaign: req.campaign.to_string(),
        content_hash: hash.to_string(),
        universal_ad_id: super::vast::universal_ad_id(req.asset_id, req.variation_idx, hash),
        published_at: req.published_at,
        expires_at: req.expires_at,
        duration_secs: req.master.duration_secs,
        master_sha256: req.master_sha256.to_string(),
        renditions: sections.renditions,
        poster: sections.poster,
        qc_report: PublishedFile {
            url: url(&qc_key),
            size: qc_size,
            sha256: qc_sha,
            key: qc_key,
        },
        manifest_url: url(manifest_key.as_str()),
        vast_url: url(vast_key.as_str()),
        posters: sections.posters,
        storyboard: sections.storyboard,
        preview: sections.preview,
        hls: sections.hls,
        files: sections.files,
        destinations,
        captions: published_captions(req.captions, req.files, layout, hash, req.cdn_base),
    };
    let impression = match req.impression_url {
        "" => "about:blank".to_string(),
        t => t.replace("{ad_id}", &manifest.universal_ad_id),
    };
    let vast =
        super::vast::render_with(&manifest, &impression, env!("CARGO_PKG_VERSION"), req.vast);

    let replaced = live
        .as_ref()
        .filter(|m| m.content_hash != hash)
        .map(|m| m.content_hash.clone());
    if let Some(old) = &replaced {
        guard.retire(old, &layout.set_prefix(old)).await?;
    }
    if !guard.renew().await? {
        tracing::warn!("lease lost before the pointer flip; leaving the pointers alone");
        return Ok(Flipped::LeaseLost);
    }
    // Each passing destination's VAST: the same ad, only its files.
    let mut made = Vec::new();
    for d in manifest.destinations.iter().filter(|d| d.passed) {
        let key = layout.destination_vast(&d.name);
        let seen = super::vast::for_destination(&manifest, &d.files);
        let xml = super::vast::render_with(&seen, &impression, env!("CARGO_PKG_VERSION"), req.vast);
        objects
            .put_bytes(
                bucket,
                &ObjectKey::parse(&key)?,
                xml.into_bytes(),
                super::vast::CONTENT_TYPE,
                &req.pointer_cache,
            )
            .await?;
        made.push(key);
    }
    objects
        .put_bytes(
            bucket,
            &vast_key,
            vast.into_bytes(),
            super::vast::CONTENT_TYPE,
            &req.pointer_cache,
        )
        .await?;
    // The manifest names every other pointer, so it goes last.
    objects
        .put_bytes(
            bucket,
            &manifest_key,
            serde_json::to_vec_pretty(&manifest)?,
            "application/json",
            &req.pointer_cache,
        )
        .await?;
    // Destination pointers this set does not make go now (before, they
    // named the replaced set, still there through its grace).
    let removed = remove_stale(objects, bucket, layout, &made).await?;
    Ok(Flipped::Published {
        manifest,
        replaced,
        removed,
    })
}

/// The manifest's `captions`: each track whose WebVTT is in the set.
fn published_captions(
    captions: &[super::captions::Caption],
    files: &[OutputFile],
    layout: &Layout,
    hash: &str,
    cdn_base: &str,
) -> Vec<super::PublishedCaption> {
    let url = |rel: &str| super::public_url(cdn_base, &layout.file(hash, rel));
    captions
        .iter()
        .filter_map(|c| {
            let vtt = files.iter().find(|f| f.name == c.rel())?;
            let playlist = c.playlist_rel();
            Some(super::PublishedCaption {
                language: c.language.clone(),
                label: c.label().to_string(),
                content_type: vtt.content_type.clone(),
                url: url(&vtt.name),
                key: layout.file(hash, &vtt.name),
                size: vtt.size,
                sha256: vtt.sha256.clone(),
                hls_playlist_url: files
                    .iter()
                    .any(|f| f.name == playlist)
                    .then(|| url(&playlist)),
            })
        })
        .collect()
}

/// Deletes the destination pointers under `layout` not in `keep`; returns
/// their keys.
async fn remove_stale(
    objects: &ObjectStore,
    bucket: &str,
    layout: &Layout,
    keep: &[String],
) -> anyhow::Result<Vec<String>> {
    let mut removed = Vec::new();
    for key in objects
        .list(bucket, &layout.destination_vast_prefix())
        .await?
    {
        if !keep.contains(&key) {
            objects.delete(bucket, &ObjectKey::parse(&key)?).await?;
            removed.push(key);
        }
    }
    Ok(removed)
}

/// Probes and texts the manifest needs: renditions reuse the probes QC made
/// of them (their own container only); images and renditions QC did not
/// measure are probed here; playlists and WebVTT are read.
async fn set_facts(
    runner: &Runner,
    files: &[OutputFile],
    report: &QcReport,
) -> anyhow::Result<(HashMap<String, Probe>, Texts)> {
    let mut probes = HashMap::new();
    let mut texts = Texts::new();
    for f in files {
        match f.role {
            FileRole::Rendition => {
                let name = f.output.as_deref().unwrap_or_default();
                let measured = report
                    .renditions
                    .iter()
                    .find(|m| m.name == name && pubset::probe_matches(&m.probe, &f.name))
                    .map(|m| m.probe.clone());
                let p = match measured {
                    Some(p) => p,
                    None => runner.ffprobe(&f.path).await?,
                };
                probes.insert(f.name.clone(), p);
            }
            FileRole::Poster | FileRole::Sprite | FileRole::Preview => {
                let p = match still_probe(&f.path).await? {
                    Some(p) => p,
                    None => runner.ffprobe(&f.path).await?,
                };
                probes.insert(f.name.clone(), p);
            }
            _ if pubset::is_text(f) => {
                anyhow::ensure!(
                    f.size <= 4 * 1024 * 1024,
                    "{} is {} bytes: too large for a playlist",
                    f.name,
                    f.size
                );
                let text = tokio::fs::read_to_string(&f.path).await?;
                texts.insert(f.name.clone(), text);
            }
            _ => {}
        }
    }
    Ok((probes, texts))
}

/// A WebP's size from its header (ffprobe reads no size from animated
/// ones); None for other images.
async fn still_probe(path: &Path) -> anyhow::Result<Option<Probe>> {
    use tokio::io::AsyncReadExt;
    if !path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("webp"))
    {
        return Ok(None);
    }
    let mut head = [0u8; 30];
    let mut f = tokio::fs::File::open(path).await?;
    let n = f.read(&mut head).await?;
    let size = f.metadata().await?.len();
    Ok(pubset::webp_size(&head[..n]).map(|(width, height)| Probe {
        format_name: "webp".into(),
        duration_secs: 0.0,
        size_bytes: size,
        bit_rate: None,
        video: Some(crate::media::VideoStream {
            codec: "webp".into(),
            profile: None,
            level: None,
            width,
            height,
            pix_fmt: None,
            fps: 0.0,
            nb_frames: None,
            ..Default::default()
        }),
        audio: None,
    }))
}

/// The live manifest, if any. One that does not parse is treated as none:
/// it is replaced by the flip.
pub async fn read_manifest(
    objects: &ObjectStore,
    bucket: &str,
    key: &ObjectKey,
) -> anyhow::Result<Option<Manifest>> {
    let Some(bytes) = super::get_small(objects, bucket, key).await? else {
        return Ok(None);
    };
    match serde_json::from_slice(&bytes) {
        Ok(m) => Ok(Some(m)),
        Err(e) => {
            tracing::warn!(key = %key.as_str(), error = %e, "the live manifest does not parse; it will be replaced");
            Ok(None)
        }
    }
}
