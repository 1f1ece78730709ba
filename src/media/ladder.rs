//! The delivery ladder: which H.264 renditions a master gets.
//!
//! Numbers follow docs/ad-delivery-specs.md (IAB ready-to-serve tiers): rungs
//! by the short side (1080, 720, 480) in the master's aspect ratio, capped
//! CRF with a VBV ceiling per tier, AAC 128-192 kbps.

use super::level::H264Level;
use super::profile::{default_outputs, resolve, Crop, OutputKind};
use serde::{Deserialize, Serialize};

/// One output resolved against a master: what the transcode encodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    /// Also the file stem: "1080p" -> 1080p.mp4. Letters, digits, '-' and '_'.
    pub name: String,
    #[serde(default)]
    pub kind: OutputKind,
    pub width: u32,
    pub height: u32,
    /// Rectangle of the master kept before scaling (None: the whole frame).
    #[serde(default)]
    pub crop: Option<Crop>,
    /// Constant rate factor (quality target; the VBV cap below bounds bitrate).
    #[serde(default)]
    pub crf: Option<u8>,
    /// Target average video bitrate (ABR) instead of a CRF.
    #[serde(default)]
    pub bitrate_kbps: Option<u32>,
    pub maxrate_kbps: u32,
    pub bufsize_kbps: u32,
    /// The lowest average video bitrate QC accepts (the band's low end).
    #[serde(default)]
    pub min_bitrate_kbps: Option<u32>,
    /// H.264 profile as x264 spells it: "high" ("0" for VP9).
    pub profile: String,
    /// H.264 level; None for VP9 (libvpx picks its own).
    #[serde(default)]
    pub level: Option<H264Level>,
    /// Fixed keyframe interval.
    #[serde(default = "two")]
    pub keyframe_secs: f64,
    pub audio_bitrate_kbps: u32,
}

fn two() -> f64 {
    2.0
}

/// Frame rate the default ladder's levels are valid up to. Faster masters
/// get their levels raised by `TranscodePlan::for_master`.
pub const LADDER_FPS: f64 = 30.0;

/// The default profile's renditions for a master of this size: short side
/// 1080, 720 and 480 in the master's aspect ratio, even dimensions, never
/// larger than the master (see [`default_outputs`]). A master whose short
/// side is under 480 gets one rendition at its own size so there is always
/// something to deliver.
pub fn default_ladder(master_w: u32, master_h: u32) -> Vec<Rendition> {
    resolve(&default_outputs(), master_w, master_h, LADDER_FPS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(ladder: &[Rendition]) -> Vec<(String, u32, u32, String)> {
        ladder
            .iter()
            .map(|r| {
                let level = r.level.map(|l| l.to_string()).unwrap_or_default();
                (r.name.clone(), r.width, r.height, level)
            })
            .collect()
    }

    #[test]
    fn ladder_follows_the_short_side_in_the_masters_aspect_ratio() {
        let s = |n: &str, w, h, l: &str| (n.to_owned(), w, h, l.to_owned());
        let cases = [
            (
                "16:9 UHD",
                3840,
                2160,
                vec![
                    s("1080p", 1920, 1080, "4.0"),
                    s("720p", 1280, 720, "3.1"),
                    s("480p", 854, 480, "3.1"),
                ],
            ),
            (
                "9:16 UHD",
                2160,
                3840,
                vec![
                    s("1080p", 1080, 1920, "4.0"),
                    s("720p", 720, 1280, "3.1"),
                    s("480p", 480, 854, "3.1"),
                ],
            ),
            (
                "1:1",
                2880,
                2880,
                vec![
                    s("1080p", 1080, 1080, "4.0"),
                    s("720p", 720, 720, "3.1"),
                    s("480p", 480, 480, "3.0"),
                ],
            ),
            (
                "16:9 FHD master keeps its own size",
                1920,
                1080,
                vec![
                    s("1080p", 1920, 1080, "4.0"),
                    s("720p", 1280, 720, "3.1"),
                    s("480p", 854, 480, "3.1"),
                ],
            ),
            (
                "no upscaling",
                1280,
                720,
                vec![s("720p", 1280, 720, "3.1"), s("480p", 854, 480, "3.1")],
            ),
            (
                "just under a rung",
                1916,
                1078,
                vec![s("720p", 1280, 720, "3.1"), s("480p", 854, 480, "3.1")],
            ),
            (
                "4:5",
                2160,
                2700,
                vec![
                    s("1080p", 1080, 1350, "4.0"),
                    s("720p", 720, 900, "3.1"),
                    s("480p", 480, 600, "3.0"),
                ],
            ),
            (
                "tiny master gets one rung at its size",
                640,
                360,
                vec![s("360p", 640, 360, "3.0")],
            ),
            (
                "odd tiny master",
                321,
                179,
                vec![s("178p", 320, 178, "3.0")],
            ),
            ("degenerate", 0, 0, vec![]),
        ];
        for (case, w, h, expected) in cases {
            let ladder = default_ladder(w, h);
            assert_eq!(sizes(&ladder), expected, "case: {case}");
            for r in &ladder {
                assert!(
                    r.width % 2 == 0 && r.height % 2 == 0,
                    "case {case}: odd size {r:?}"
                );
                assert!(
                    r.width <= w.max(2) && r.height <= h.max(2),
                    "case {case}: upscaled {r:?}"
                );
            }
        }
    }

    #[test]
    fn ladder_bitrates_follow_the_ad_delivery_tiers() {
        let ladder = default_ladder(3840, 2160);
        let caps: Vec<_> = ladder
            .iter()
            .map(|r| {
                (
                    r.maxrate_kbps,
                    r.bufsize_kbps,
                    r.audio_bitrate_kbps,
                    r.profile.as_str(),
                )
            })
            .collect();
        assert_eq!(
            caps,
            [
                (8000, 16000, 192, "high"),
                (5000, 10000, 160, "high"),
                (2500, 5000, 128, "high")
            ]
        );
        assert!(ladder.windows(2).all(|w| w[0].crf <= w[1].crf));
    }
}
