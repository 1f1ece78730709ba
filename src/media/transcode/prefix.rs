//! The corrections made to the master's picture before it is split into
//! the outputs: what the display shows (rotation is applied by ffmpeg's
//! autorotate on decode; non-square pixels are scaled square here), one
//! frame per field pair (deinterlaced), SDR BT.709 (tone-mapped from PQ,
//! HLG or BT.2020) and a constant frame rate. Every output is then tagged
//! BT.709 ([`COLOUR_TAGS`]).

use crate::media::probe::{Probe, VideoStream};

/// Output options every video output gets: SDR Rec. ITU-R BT.709
/// primaries, transfer and matrix, limited range.
pub const COLOUR_TAGS: [&str; 8] = [
    "-color_primaries",
    "bt709",
    "-color_trc",
    "bt709",
    "-colorspace",
    "bt709",
    "-color_range",
    "tv",
];

/// What the transcode corrects in the master's picture (all off for a
/// progressive, constant-rate, square-pixel SDR master).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PictureFix {
    /// Non-square pixels: scale to this displayed size with square pixels.
    pub square_to: Option<(u32, u32)>,
    /// Interlaced: `bwdif`, one frame per frame (the rate is kept).
    pub deinterlace: bool,
    /// PQ/HLG/BT.2020: linearise, tone-map (Hable) and convert to BT.709.
    pub tonemap: bool,
    /// Variable frame rate: conform to this constant rate.
    pub constant_fps: Option<f64>,
}

/// The rates a variable-rate master is conformed to (the nearest one).
const STANDARD_RATES: [f64; 8] = [
    24000.0 / 1001.0,
    24.0,
    25.0,
    30000.0 / 1001.0,
    30.0,
    50.0,
    60000.0 / 1001.0,
    60.0,
];

/// A stream is variable-rate when its average rate is more than this
/// fraction off its base rate (as `policy::CFR_TOLERANCE`).
const VFR_TOLERANCE: f64 = 0.01;

/// The constant rate a master is delivered at: its own when it is
/// constant; for a variable rate, its base rate when that is a standard
/// one (frames were dropped or held), else the standard rate nearest its
/// average (the base rate is then a timebase, such as 24000).
pub fn delivery_fps(v: &VideoStream) -> f64 {
    match (v.avg_frame_rate, v.r_frame_rate) {
        (Some(avg), Some(base)) if base > 0.0 && (avg - base).abs() > base * VFR_TOLERANCE => {
            if STANDARD_RATES.iter().any(|r| (r - base).abs() < 0.001 * r) {
                return base;
            }
            STANDARD_RATES
                .into_iter()
                .min_by(|a, b| (a - avg).abs().total_cmp(&(b - avg).abs()))
                .unwrap_or(avg)
        }
        _ => v.native_fps(),
    }
}

/// Whether the master's frame rate varies.
pub fn variable_rate(v: &VideoStream) -> bool {
    matches!((v.avg_frame_rate, v.r_frame_rate),
        (Some(avg), Some(base)) if base > 0.0 && (avg - base).abs() > base * VFR_TOLERANCE)
}

impl PictureFix {
    pub fn for_master(probe: &Probe) -> Self {
        let Some(v) = probe.video.as_ref() else {
            return PictureFix::default();
        };
        PictureFix {
            square_to: v
                .stored
                .filter(|s| !s.square_pixels())
                .map(|_| (v.width, v.height)),
            deinterlace: v.interlaced(),
            tonemap: v.hdr_or_wide_gamut(),
            constant_fps: variable_rate(v).then(|| delivery_fps(v)),
        }
    }

    /// The filters before the split, each followed by a comma ("" when none).
    pub fn filters(&self) -> String {
        self.chain(true)
    }

    /// The constant-rate conform alone ("" when the master's rate is
    /// constant). The content detectors read the master's own frames,
    /// before it: the frames `fps` repeats to fill a variable rate are not
    /// the master's cadence.
    pub fn rate_filter(&self) -> String {
        self.constant_fps
            .map(|fps| format!("fps={fps:.6},"))
            .unwrap_or_default()
    }

    /// Every correction but the rate conform, each followed by a comma.
    pub fn picture_filters(&self) -> String {
        self.chain(false)
    }

    fn chain(&self, with_rate: bool) -> String {
        let mut f = Vec::new();
        if self.deinterlace {
            f.push("bwdif=mode=send_frame:parity=auto:deint=all".to_owned());
        }
        if with_rate {
            f.extend(self.constant_fps.map(|fps| format!("fps={fps:.6}")));
        }
        if let Some((w, h)) = self.square_to {
            f.push(format!("scale=w={w}:h={h}:flags=bicubic,setsar=1"));
        }
        if self.tonemap {
            // zimg reads the frame's own tags (BT.2020, PQ/HLG); npl 100 nits
            // is SDR reference white.
            f.push(
                "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,\
                 tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
                    .to_owned(),
            );
        }
        f.into_iter().map(|x| x + ",").collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(json: serde_json::Value) -> Probe {
        let mut v = serde_json::json!({"codec": "h264", "profile": null, "level": null,
            "width": 1920, "height": 1080, "pix_fmt": null, "fps": 24.0, "nb_frames": null});
        v.as_object_mut()
            .unwrap()
            .extend(json.as_object().unwrap().clone());
        serde_json::from_value(serde_json::json!({
            "format_name": "mov", "duration_secs": 5.0, "size_bytes": 1, "bit_rate": null,
            "video": v, "audio": null}))
        .unwrap()
    }

    #[test]
    fn a_clean_master_needs_no_correction() {
        let p = video(
            serde_json::json!({"r_frame_rate": 24.0, "avg_frame_rate": 24.0,
            "field_order": "progressive", "color_primaries": "bt709"}),
        );
        assert_eq!(PictureFix::for_master(&p), PictureFix::default());
        assert_eq!(PictureFix::default().filters(), "");
    }

    #[test]
    fn each_defect_gets_its_correction() {
        let p = video(
            serde_json::json!({"r_frame_rate": 24000.0, "avg_frame_rate": 23.9,
            "field_order": "tt", "color_transfer": "smpte2084",
            "width": 1920, "height": 1080,
            "stored": {"width": 1440, "height": 1080, "rotation": 0, "sar_num": 4, "sar_den": 3}}),
        );
        let fix = PictureFix::for_master(&p);
        assert!(fix.deinterlace && fix.tonemap);
        assert_eq!(fix.square_to, Some((1920, 1080)));
        assert_eq!(fix.constant_fps, Some(24000.0 / 1001.0), "nearest 23.9");
        let dropped = video(serde_json::json!({"r_frame_rate": 24.0, "avg_frame_rate": 18.0}));
        assert_eq!(PictureFix::for_master(&dropped).constant_fps, Some(24.0));
        let f = fix.filters();
        assert!(f.starts_with("bwdif="), "{f}");
        assert!(f.contains("fps=23.976024,scale=w=1920:h=1080"), "{f}");
        assert!(f.contains("tonemap=tonemap=hable") && f.ends_with("format=yuv420p,"));
        // The detectors' branch leaves before the rate conform.
        assert_eq!(fix.rate_filter(), "fps=23.976024,");
        assert!(!fix.picture_filters().contains("fps="));
        assert_eq!(
            fix.picture_filters().len() + fix.rate_filter().len(),
            f.len()
        );
    }
}
