//! The HLS set after ffmpeg wrote it: each variant's segments checked and
//! measured, and the master playlist naming them with their real rates
//! (ffmpeg's own master would carry the requested, not the measured, ones).

use super::{rendition_path, rendition_rel, TranscodePlan, HLS_DIR, HLS_MASTER};
use crate::media::codec::{avc1_of, MP4A_AAC_LC};
use crate::media::files::{FileRole, WrittenFile};
use crate::media::hls::{MasterPlaylist, MediaPlaylist, Segment, Variant};
use crate::media::process::ProcessError;
use std::path::Path;

/// One EXT-X-STREAM-INF entry's numbers, measured from the written segments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VariantRates {
    /// Highest segment bitrate, bit/s.
    pub peak_bps: u64,
    /// Total bits over total duration, bit/s.
    pub average_bps: u64,
}

/// Rates of a variant from its (uri, duration) segments and their sizes.
pub fn variant_rates(segments: &[(u64, f64)]) -> VariantRates {
    let total_bytes: u64 = segments.iter().map(|s| s.0).sum();
    let total_secs: f64 = segments.iter().map(|s| s.1).sum();
    let per = |bytes: u64, secs: f64| {
        if secs > 0.0 {
            (bytes as f64 * 8.0 / secs).ceil() as u64
        } else {
            0
        }
    };
    let average_bps = per(total_bytes, total_secs);
    let peak_bps = segments
        .iter()
        .map(|(b, s)| per(*b, *s))
        .max()
        .unwrap_or(0)
        .max(average_bps);
    VariantRates {
        peak_bps,
        average_bps,
    }
}

/// Writes `hls/master.m3u8` naming every variant with its measured rates,
/// and returns the HLS files (master, then each variant's playlist and
/// segments).
pub(super) async fn write_hls_master(
    plan: &TranscodePlan,
    out_dir: &Path,
) -> Result<Vec<WrittenFile>, ProcessError> {
    let mut files = Vec::new();
    // Version 3: decimal EXTINF durations; every segment starts on a keyframe
    // (fixed GOP, no scene cuts), which the independent-segments tag promises.
    let mut master = MasterPlaylist {
        version: Some(3),
        independent_segments: true,
        variants: Vec::new(),
    };
    for r in plan.hls() {
        let playlist = rendition_path(out_dir, r);
        let text = tokio::fs::read_to_string(&playlist).await?;
        let segments = MediaPlaylist::parse(&text).segments;
        if segments.is_empty() {
            return Err(ProcessError::BadOutput(format!(
                "{} lists no segments",
                rendition_rel(r)
            )));
        }
        files.push(WrittenFile {
            rel: rendition_rel(r),
            path: playlist,
            role: FileRole::HlsPlaylist,
            output: Some(r.name.clone()),
        });
        let mut sized = Vec::new();
        for Segment { uri, duration_secs } in segments {
            if !is_segment_name(&uri) {
                return Err(ProcessError::BadOutput(format!(
                    "{} names an unexpected segment {uri:?}",
                    rendition_rel(r)
                )));
            }
            let path = out_dir.join(HLS_DIR).join(&uri);
            let len = tokio::fs::metadata(&path)
                .await
                .map_err(|e| ProcessError::BadOutput(format!("segment {uri}: {e}")))?
                .len();
            sized.push((len, duration_secs));
            files.push(WrittenFile {
                rel: format!("{HLS_DIR}/{uri}"),
                path,
                role: FileRole::HlsSegment,
                output: Some(r.name.clone()),
            });
        }
        let rates = variant_rates(&sized);
        let mut codecs = avc1_of(r);
        if plan.has_audio {
            codecs.push(',');
            codecs.push_str(MP4A_AAC_LC);
        }
        master.variants.push(Variant {
            bandwidth: Some(rates.peak_bps),
            average_bandwidth: Some(rates.average_bps),
            resolution: Some((r.width, r.height)),
            codecs: Some(codecs),
            frame_rate: Some(plan.fps),
            ..Variant::new(format!("{}.m3u8", r.name))
        });
    }
    let path = out_dir.join(HLS_MASTER);
    tokio::fs::write(&path, master.render()).await?;
    files.insert(
        0,
        WrittenFile {
            rel: HLS_MASTER.to_owned(),
            path,
            role: FileRole::HlsMaster,
            output: None,
        },
    );
    Ok(files)
}

/// A segment file name as our muxer settings write it: no folders.
pub(super) fn is_segment_name(uri: &str) -> bool {
    !uri.is_empty()
        && uri.len() <= 64
        && uri
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !uri.starts_with('.')
}
