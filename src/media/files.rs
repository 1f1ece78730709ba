//! The files a transcode leaves in its output folder, as the published set
//! and its manifest name them. Media owns these because it is what writes
//! the files; publishing only reads the list.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What a written file is for, in the published set and its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    /// A progressive rendition (MP4 or WebM) that QC measures.
    Rendition,
    Poster,
    /// Storyboard sprite sheet.
    Sprite,
    /// WebVTT map of the sprite (`sprite.jpg#xywh=...` cues).
    Storyboard,
    /// Animated preview.
    Preview,
    /// HLS master playlist.
    HlsMaster,
    /// HLS media playlist of one variant.
    HlsPlaylist,
    HlsSegment,
    /// A caption track the request supplied (`captions/{lang}.vtt`) or
    /// its HLS subtitle playlist.
    Captions,
}

/// A file a transcode wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenFile {
    /// Path inside the output folder and inside the published set, `/`
    /// separated: "1080p.mp4", "hls/720p_00001.ts".
    pub rel: String,
    pub path: PathBuf,
    pub role: FileRole,
    /// The output it belongs to (rendition or HLS variant name), if any.
    #[serde(default)]
    pub output: Option<String>,
}

/// The Content-Type a published file is served with, from its extension.
pub fn content_type_for(rel: &str) -> &'static str {
    let ext = rel.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        "m4s" => "video/iso.segment",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "png" => "image/png",
        "vtt" => "text/vtt",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}
