//! Where a published variation lives and what its set holds, as the API
//! and callbacks show it (from the set's `Manifest`).

use crate::publish::Manifest;
use serde::Serialize;

/// Where a published variation lives: what callbacks and the API both say.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublishedRef {
    pub manifest_url: String,
    pub vast_url: String,
    pub content_hash: String,
    pub universal_ad_id: String,
    pub expires_at: String,
}

impl From<&Manifest> for PublishedRef {
    fn from(m: &Manifest) -> Self {
        PublishedRef {
            manifest_url: m.manifest_url.clone(),
            vast_url: m.vast_url.clone(),
            content_hash: m.content_hash.clone(),
            universal_ad_id: m.universal_ad_id.clone(),
            expires_at: m.expires_at.clone(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublishedView {
    #[serde(flatten)]
    pub at: PublishedRef,
    pub renditions: Vec<RenditionView>,
    pub poster_url: String,
    pub posters: Vec<PosterView>,
    pub storyboard: Option<StoryboardView>,
    pub preview_url: Option<String>,
    pub hls: Option<HlsView>,
    /// The request's caption tracks as published (WebVTT).
    pub captions: Vec<CaptionView>,
    pub file_count: usize,
    pub qc_report_url: String,
}

/// One caption track of the set.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CaptionView {
    /// BCP 47 language tag, e.g. `en`.
    pub language: String,
    pub label: String,
    /// The WebVTT file.
    pub url: String,
    /// Its HLS subtitle playlist, when the set has HLS.
    pub hls_playlist_url: Option<String>,
}

/// A progressive file of the set (MP4 or WebM).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RenditionView {
    pub name: String,
    pub url: String,
    pub width: u32,
    pub height: u32,
    /// Average bitrate, kbps.
    pub bitrate_kbps: u64,
    /// RFC 6381 codecs, e.g. `avc1.640028,mp4a.40.2`.
    pub codecs: String,
    pub size: u64,
    /// `mp4` or `webm`.
    pub container: String,
    pub content_type: String,
}

/// One poster (every format and width).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PosterView {
    pub url: String,
    pub width: u32,
    pub height: u32,
    /// `jpeg`, `webp` or `png`.
    pub format: String,
}

/// The sprite sheet and the WebVTT that maps times to its tiles.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StoryboardView {
    pub sprite_url: String,
    pub vtt_url: String,
}

/// The HLS set: the master playlist and its variants.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HlsView {
    pub master_url: String,
    pub variants: Vec<HlsVariantView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HlsVariantView {
    pub name: String,
    /// The variant's media playlist.
    pub url: String,
    pub width: u32,
    pub height: u32,
    /// Peak bits per second (`BANDWIDTH`).
    pub bandwidth: u64,
    pub codecs: String,
}

impl From<&Manifest> for PublishedView {
    fn from(m: &Manifest) -> Self {
        PublishedView {
            at: PublishedRef::from(m),
            renditions: m
                .renditions
                .iter()
                .map(|r| RenditionView {
                    name: r.name.clone(),
                    url: r.url.clone(),
                    width: r.width,
                    height: r.height,
                    bitrate_kbps: r.bitrate_kbps,
                    codecs: r.codecs.clone(),
                    size: r.size,
                    container: if r.container.is_empty() {
                        "mp4".to_string()
                    } else {
                        r.container.clone()
                    },
                    content_type: r.content_type.clone(),
                })
                .collect(),
            poster_url: m.poster.url.clone(),
            posters: m
                .posters
                .iter()
                .map(|p| PosterView {
                    url: p.url.clone(),
                    width: p.width,
                    height: p.height,
                    format: p.format.clone(),
                })
                .collect(),
            storyboard: m.storyboard.as_ref().map(|s| StoryboardView {
                sprite_url: s.sprite.url.clone(),
                vtt_url: s.vtt.url.clone(),
            }),
            preview_url: m.preview.as_ref().map(|p| p.url.clone()),
            captions: m
                .captions
                .iter()
                .map(|c| CaptionView {
                    language: c.language.clone(),
                    label: c.label.clone(),
                    url: c.url.clone(),
                    hls_playlist_url: c.hls_playlist_url.clone(),
                })
                .collect(),
            hls: m.hls.as_ref().map(|h| HlsView {
                master_url: h.master.url.clone(),
                variants: h
                    .variants
                    .iter()
                    .map(|v| HlsVariantView {
                        name: v.name.clone(),
                        url: v.url.clone(),
                        width: v.width,
                        height: v.height,
                        bandwidth: v.bandwidth,
                        codecs: v.codecs.clone(),
                    })
                    .collect(),
            }),
            file_count: m.files.len(),
            qc_report_url: m.qc_report.url.clone(),
        }
    }
}
