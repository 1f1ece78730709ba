//! The delivery ladder: which H.264 renditions a master gets.
//!
//! Numbers follow docs/ad-delivery-specs.md (IAB ready-to-serve tiers): rungs
//! by the short side (1080, 720, 480) in the master's aspect ratio, capped
//! CRF with a VBV ceiling per tier, AAC 128-192 kbps.

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
    /// H.264 level: "4.0" (empty for VP9).
    pub level: String,
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

/// H.264 levels (Annex A, table A-1): name, max macroblocks/s, max frame
/// size in macroblocks, max bitrate in kbit/s for Baseline/Main.
const LEVELS: [(&str, u64, u64, u64); 16] = [
    ("1.0", 1_485, 99, 64),
    ("1.1", 3_000, 396, 192),
    ("1.2", 6_000, 396, 384),
    ("1.3", 11_880, 396, 768),
    ("2.0", 11_880, 396, 2_000),
    ("2.1", 19_800, 792, 4_000),
    ("2.2", 20_250, 1_620, 4_000),
    ("3.0", 40_500, 1_620, 10_000),
    ("3.1", 108_000, 3_600, 14_000),
    ("3.2", 216_000, 5_120, 20_000),
    ("4.0", 245_760, 8_192, 20_000),
    ("4.1", 245_760, 8_192, 50_000),
    ("4.2", 522_240, 8_704, 50_000),
    ("5.0", 589_824, 22_080, 135_000),
    ("5.1", 983_040, 36_864, 240_000),
    ("5.2", 2_073_600, 36_864, 240_000),
];

/// The lowest H.264 High-profile level that allows this frame size, frame
/// rate and peak bitrate (High allows 1.25x the Baseline bitrate).
pub fn h264_level(width: u32, height: u32, fps: f64, maxrate_kbps: u32) -> String {
    let mbs_w = u64::from(width.div_ceil(16));
    let mbs_h = u64::from(height.div_ceil(16));
    let frame = mbs_w * mbs_h;
    let per_sec = (frame as f64 * fps.max(0.0)).ceil() as u64;
    LEVELS
        .iter()
        .find(|(_, max_mbps, max_fs, max_br)| {
            frame <= *max_fs
                // neither side may exceed sqrt(8 * MaxFS)
                && mbs_w * mbs_w <= 8 * max_fs
                && mbs_h * mbs_h <= 8 * max_fs
                && per_sec <= *max_mbps
                && u64::from(maxrate_kbps) * 4 <= max_br * 5
        })
        .map_or("5.2", |l| l.0)
        .to_owned()
}

/// True for an H.264 level name of table A-1 ("3.1").
pub fn is_level(name: &str) -> bool {
    LEVELS.iter().any(|l| l.0 == name)
}

/// The higher of two level names ("3.1" vs "4.0").
pub(crate) fn max_level<'a>(a: &'a str, b: &'a str) -> &'a str {
    let rank = |l: &str| LEVELS.iter().position(|x| x.0 == l);
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(ladder: &[Rendition]) -> Vec<(String, u32, u32, String)> {
        ladder
            .iter()
            .map(|r| (r.name.clone(), r.width, r.height, r.level.clone()))
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

    #[test]
    fn level_is_the_lowest_that_fits_size_rate_and_bitrate() {
        let cases = [
            (1920, 1080, 24.0, 8000, "4.0"),
            (1920, 1080, 30.0, 8000, "4.0"),
            (1920, 1080, 60.0, 8000, "4.2"),
            (1920, 1080, 30.0, 30000, "4.1"),
            (1080, 1920, 30.0, 8000, "4.0"),
            (1280, 720, 30.0, 5000, "3.1"),
            (1280, 720, 60.0, 5000, "3.2"),
            (854, 480, 24.0, 2500, "3.0"),
            (854, 480, 25.0, 2500, "3.0"),
            (854, 480, 30.0, 2500, "3.1"),
            (640, 360, 30.0, 2000, "3.0"),
            (3840, 2160, 30.0, 20000, "5.1"),
            (7680, 4320, 60.0, 20000, "5.2"),
        ];
        for (w, h, fps, rate, expected) in cases {
            assert_eq!(
                h264_level(w, h, fps, rate),
                expected,
                "case {w}x{h}@{fps} {rate}k"
            );
        }
        assert_eq!(max_level("3.1", "4.2"), "4.2");
        assert_eq!(max_level("4.0", "3.0"), "4.0");
    }
}
