//! What a transcode wrote, as QC and publishing need it: each rendition with
//! the plan's promises about it (size, band, profile and level, crop).

use super::ladder::Rendition;
use super::level::H264Level;
use super::profile::{Crop, OutputKind};
use super::transcode::TranscodeOutput;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A rendition the transcode wrote, as QC and publishing need it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenditionFile {
    pub name: String,
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub max_bitrate_kbps: Option<u32>,
    #[serde(default)]
    pub vbv_bufsize_kbps: Option<u32>,
    /// The band's low end: the average video bitrate must reach it.
    #[serde(default)]
    pub min_bitrate_kbps: Option<u32>,
    /// mp4 (H.264 + AAC, moov first) or webm (VP9 + Opus).
    #[serde(default)]
    pub kind: OutputKind,
    /// The master rectangle the rendition shows (the SSIM/PSNR reference is
    /// cropped the same way). None: the whole frame.
    #[serde(default)]
    pub crop: Option<Crop>,
    /// H.264 profile and level the plan asked for ("high", "4.0"); None for VP9.
    #[serde(default)]
    pub profile: Option<String>,
    /// Rows store the level as "4.0"; one that does not parse fails the row's decode.
    #[serde(default)]
    pub level: Option<H264Level>,
}

impl RenditionFile {
    pub fn new(r: &Rendition, path: PathBuf) -> Self {
        Self {
            name: r.name.clone(),
            path,
            width: r.width,
            height: r.height,
            max_bitrate_kbps: Some(r.maxrate_kbps),
            vbv_bufsize_kbps: Some(r.bufsize_kbps),
            min_bitrate_kbps: r.min_bitrate_kbps,
            kind: r.kind,
            crop: r.crop,
            profile: r.kind.is_h264().then(|| r.profile.clone()),
            level: r.level.filter(|_| r.kind.is_h264()),
        }
    }
}

/// What QC measures of a transcode: every progressive rendition (MP4 and
/// WebM) and every HLS variant (through its media playlist, read with the
/// HLS demuxer, which only ever opens files reelay wrote).
pub fn rendition_files(out: &TranscodeOutput) -> Vec<RenditionFile> {
    out.renditions
        .iter()
        .chain(&out.hls_variants)
        .map(|(r, p)| RenditionFile::new(r, p.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_for_qc_carry_crop_band_and_kind() {
        let r = &crate::media::profile::resolve(
            &[crate::media::OutputSpec {
                aspect: crate::media::Aspect::Square,
                min_bitrate_kbps: Some(4000),
                ..crate::media::profile::default_outputs()[0].clone()
            }],
            1920,
            1080,
            24.0,
        )[0];
        let f = RenditionFile::new(r, PathBuf::from("/o/1080p.mp4"));
        assert_eq!((f.width, f.height), (1080, 1080));
        assert_eq!(f.crop.map(|c| (c.width, c.x)), Some((1080, 420)));
        assert_eq!(
            (f.min_bitrate_kbps, f.max_bitrate_kbps, f.kind),
            (Some(4000), Some(8000), OutputKind::Mp4)
        );
        assert_eq!(f.profile.as_deref(), Some("high"));
        assert_eq!(f.level, Some(H264Level::L4_0));
    }

    #[test]
    fn stored_rows_keep_the_level_as_its_string() {
        let row = serde_json::json!({
            "name": "720p", "path": "/o/720p.mp4", "width": 1280, "height": 720,
            "kind": "mp4", "profile": "high", "level": "3.1"
        });
        let f: RenditionFile = serde_json::from_value(row).unwrap();
        assert_eq!(f.level, Some(H264Level::L3_1));
        assert_eq!(serde_json::to_value(&f).unwrap()["level"], "3.1");
        // Rows written before plans recorded a level, and VP9 rows.
        let old = serde_json::json!({"name": "v", "path": "/o/v.webm", "width": 2, "height": 2});
        let f: RenditionFile = serde_json::from_value(old).unwrap();
        assert_eq!(f.level, None);
        assert_eq!(
            serde_json::to_value(&f).unwrap()["level"],
            serde_json::Value::Null
        );
        let bad = serde_json::json!({"name": "v", "path": "/o/v.mp4", "width": 2, "height": 2, "level": "4.5"});
        let e = serde_json::from_value::<RenditionFile>(bad).unwrap_err();
        assert!(e.to_string().contains("\"4.5\""), "{e}");
    }
}
