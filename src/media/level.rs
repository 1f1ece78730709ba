//! H.264 levels (Annex A, table A-1) as a value: parsed once where a level
//! enters (profile config, stored job rows), compared as ffprobe's
//! `level_idc` number everywhere else, written back in the "4.0" spelling
//! that ffmpeg's `-level:v`, the stored rows and the QC report carry.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// One H.264 level of table A-1, 1.0 to 5.2. Ordered by capability, so the
/// higher of two levels is `Ord::max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct H264Level(u8);

impl H264Level {
    pub const L1_0: Self = Self(10);
    pub const L1_1: Self = Self(11);
    pub const L1_2: Self = Self(12);
    pub const L1_3: Self = Self(13);
    pub const L2_0: Self = Self(20);
    pub const L2_1: Self = Self(21);
    pub const L2_2: Self = Self(22);
    pub const L3_0: Self = Self(30);
    pub const L3_1: Self = Self(31);
    pub const L3_2: Self = Self(32);
    pub const L4_0: Self = Self(40);
    pub const L4_1: Self = Self(41);
    pub const L4_2: Self = Self(42);
    pub const L5_0: Self = Self(50);
    pub const L5_1: Self = Self(51);
    pub const L5_2: Self = Self(52);

    /// Every level, lowest first.
    pub fn all() -> impl Iterator<Item = Self> {
        LIMITS.iter().map(|l| l.0)
    }

    /// "4.0", "3.1", or a whole level without its ".0" ("4"). Level 1b and
    /// the 6.x levels are refused: x264 and the ladder's table stop at 5.2.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an H.264 level (1.0 to 5.2, e.g. \"4.0\")");
        let (major, minor) = match s.as_bytes() {
            [m] => (*m, b'0'),
            [m, b'.', n] => (*m, *n),
            _ => return Err(bad()),
        };
        if !(major.is_ascii_digit() && minor.is_ascii_digit()) {
            return Err(bad());
        }
        Self::from_idc(i32::from(major - b'0') * 10 + i32::from(minor - b'0')).ok_or_else(bad)
    }

    /// The level ffprobe reports as this number (40 for 4.0); None for a
    /// number outside table A-1 (or 1b's 9, and 6.x).
    pub fn from_idc(idc: i32) -> Option<Self> {
        Self::all().find(|l| i32::from(l.0) == idc)
    }

    /// ffprobe's number for the level: 40 for 4.0.
    pub fn idc(self) -> i32 {
        i32::from(self.0)
    }

    /// The lowest level whose High-profile limits allow this frame size,
    /// frame rate and peak bitrate (High allows 1.25x the Baseline bitrate);
    /// 5.2 when none does.
    pub fn lowest_for(width: u32, height: u32, fps: f64, maxrate_kbps: u32) -> Self {
        let mbs_w = u64::from(width.div_ceil(16));
        let mbs_h = u64::from(height.div_ceil(16));
        let frame = mbs_w * mbs_h;
        let per_sec = (frame as f64 * fps.max(0.0)).ceil() as u64;
        LIMITS
            .iter()
            .find(|(_, max_mbps, max_fs, max_br)| {
                frame <= *max_fs
                    // neither side may exceed sqrt(8 * MaxFS)
                    && mbs_w * mbs_w <= 8 * max_fs
                    && mbs_h * mbs_h <= 8 * max_fs
                    && per_sec <= *max_mbps
                    && u64::from(maxrate_kbps) * 4 <= max_br * 5
            })
            .map_or(Self::L5_2, |l| l.0)
    }
}

/// Table A-1: level, max macroblocks/s, max frame size in macroblocks, max
/// bitrate in kbit/s for Baseline/Main. Its rows are the levels that exist.
const LIMITS: [(H264Level, u64, u64, u64); 16] = [
    (H264Level::L1_0, 1_485, 99, 64),
    (H264Level::L1_1, 3_000, 396, 192),
    (H264Level::L1_2, 6_000, 396, 384),
    (H264Level::L1_3, 11_880, 396, 768),
    (H264Level::L2_0, 11_880, 396, 2_000),
    (H264Level::L2_1, 19_800, 792, 4_000),
    (H264Level::L2_2, 20_250, 1_620, 4_000),
    (H264Level::L3_0, 40_500, 1_620, 10_000),
    (H264Level::L3_1, 108_000, 3_600, 14_000),
    (H264Level::L3_2, 216_000, 5_120, 20_000),
    (H264Level::L4_0, 245_760, 8_192, 20_000),
    (H264Level::L4_1, 245_760, 8_192, 50_000),
    (H264Level::L4_2, 522_240, 8_704, 50_000),
    (H264Level::L5_0, 589_824, 22_080, 135_000),
    (H264Level::L5_1, 983_040, 36_864, 240_000),
    (H264Level::L5_2, 2_073_600, 36_864, 240_000),
];

impl fmt::Display for H264Level {
    /// Always with the minor digit ("4.0"): ffmpeg's `-level:v` argument and
    /// every stored row and report have been written that way.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
    }
}

impl std::str::FromStr for H264Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl Serialize for H264Level {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for H264Level {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 16] = [
        "1.0", "1.1", "1.2", "1.3", "2.0", "2.1", "2.2", "3.0", "3.1", "3.2", "4.0", "4.1", "4.2",
        "5.0", "5.1", "5.2",
    ];

    #[test]
    fn every_level_round_trips_through_its_spelling_and_its_idc() {
        let all: Vec<H264Level> = H264Level::all().collect();
        assert_eq!(all.len(), NAMES.len());
        for (l, name) in all.iter().zip(NAMES) {
            assert_eq!(l.to_string(), name);
            assert_eq!(H264Level::parse(name), Ok(*l));
            assert_eq!(H264Level::from_idc(l.idc()), Some(*l));
            let json = serde_json::to_value(l).unwrap();
            assert_eq!(json, serde_json::json!(name));
            assert_eq!(serde_json::from_value::<H264Level>(json).unwrap(), *l);
        }
        assert_eq!(H264Level::parse("3.1").map(H264Level::idc), Ok(31));
        assert_eq!(H264Level::L4_0.idc(), 40);
    }

    #[test]
    fn a_whole_level_may_drop_its_minor_digit() {
        assert_eq!(H264Level::parse("4"), Ok(H264Level::L4_0));
        assert_eq!(H264Level::parse("5").map(H264Level::idc), Ok(50));
        assert_eq!(H264Level::parse("4").unwrap().to_string(), "4.0");
    }

    #[test]
    fn spellings_outside_table_a1_are_refused_naming_the_value() {
        for bad in [
            "", "x", "4.5", "1b", "1B", "6", "6.0", "6.2", "0.9", "4.", ".4", "4.00", "04.0",
            " 4.0", "4.0 ", "4,0", "40", "4.1.1", "-4.0",
        ] {
            let e = H264Level::parse(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad:?}: {e}");
        }
        let e = serde_json::from_str::<H264Level>("\"4.5\"").unwrap_err();
        assert!(
            e.to_string().contains("\"4.5\" is not an H.264 level"),
            "{e}"
        );
        assert!(serde_json::from_str::<H264Level>("40").is_err());
    }

    #[test]
    fn from_idc_knows_only_table_a1() {
        assert_eq!(H264Level::from_idc(40), Some(H264Level::L4_0));
        assert_eq!(H264Level::from_idc(31), Some(H264Level::L3_1));
        // ffprobe's 9 is level 1b, 60..62 are 6.x: neither is a level reelay plans.
        for idc in [-99, 0, 9, 14, 19, 45, 53, 60, 61, 62, 255] {
            assert_eq!(H264Level::from_idc(idc), None, "{idc}");
        }
    }

    #[test]
    fn levels_order_by_capability() {
        let all: Vec<H264Level> = H264Level::all().collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(H264Level::L3_1.max(H264Level::L4_2), H264Level::L4_2);
        assert_eq!(H264Level::L4_0.max(H264Level::L3_0), H264Level::L4_0);
        assert!(H264Level::L3_2 < H264Level::L4_0);
        assert!(H264Level::L1_3 < H264Level::L2_0);
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
                H264Level::lowest_for(w, h, fps, rate).to_string(),
                expected,
                "case {w}x{h}@{fps} {rate}k"
            );
        }
    }
}
