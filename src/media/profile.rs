//! Delivery profiles: a named list of outputs, each resolved against the
//! master into a [`Rendition`] (size, crop, rate control, level).
//!
//! An [`OutputSpec`] is what a user writes in `[profiles.NAME] outputs`;
//! [`resolve`] turns a profile's specs into renditions for one master:
//! a center crop to the output's aspect ratio (none for `native`), an even
//! size from `short_side` or `width`, never larger than the (cropped)
//! master, and an H.264 level high enough for size, frame rate and peak
//! bitrate.

use super::ladder::Rendition;
use super::level::H264Level;
use serde::{Deserialize, Serialize};

/// Container and codecs of an output.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// H.264 + AAC-LC in MP4, moov first (`+faststart`).
    #[default]
    Mp4,
    /// VP9 + Opus in WebM.
    Webm,
    /// H.264 + AAC-LC in MPEG-TS segments with a VOD media playlist; the
    /// profile's HLS outputs share one master playlist (`hls/master.m3u8`).
    Hls,
}

impl OutputKind {
    /// A single progressive file (what QC measures against the master).
    pub fn is_progressive(self) -> bool {
        matches!(self, Self::Mp4 | Self::Webm)
    }

    pub fn is_h264(self) -> bool {
        matches!(self, Self::Mp4 | Self::Hls)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mp4 => "mp4",
            Self::Webm => "webm",
            Self::Hls => "hls",
        }
    }
}

/// The frame shape of an output. Anything but `native` center-crops the
/// master to that ratio before scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Aspect {
    #[default]
    #[serde(rename = "native")]
    Native,
    #[serde(rename = "16:9")]
    Wide,
    #[serde(rename = "9:16")]
    Tall,
    #[serde(rename = "1:1")]
    Square,
}

impl Aspect {
    /// (width, height) of the ratio; None for native.
    pub fn ratio(self) -> Option<(u32, u32)> {
        match self {
            Self::Native => None,
            Self::Wide => Some((16, 9)),
            Self::Tall => Some((9, 16)),
            Self::Square => Some((1, 1)),
        }
    }
}

/// A rectangle of the master (even offsets and size), applied before scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Crop {
    pub width: u32,
    pub height: u32,
    pub x: u32,
    pub y: u32,
}

impl Crop {
    /// The ffmpeg `crop` filter for this rectangle.
    pub fn filter(&self) -> String {
        format!(
            "crop=w={}:h={}:x={}:y={}",
            self.width, self.height, self.x, self.y
        )
    }
}

/// One output of a profile, as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// File stem (and HLS variant name): letters, digits, '-' and '_'.
    pub name: String,
    #[serde(default)]
    pub kind: OutputKind,
    /// Size by the short side (1080 -> 1920x1080 for 16:9, 1080x1920 for 9:16).
    #[serde(default)]
    pub short_side: Option<u32>,
    /// Size by the width (height from the aspect ratio).
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub aspect: Aspect,
    /// Constant rate factor (x264 0-51, VP9 0-63), capped by the VBV below.
    #[serde(default)]
    pub crf: Option<u8>,
    /// Target average video bitrate (ABR), bounded by the VBV below.
    #[serde(default)]
    pub bitrate_kbps: Option<u32>,
    /// VBV peak rate.
    pub maxrate_kbps: u32,
    /// VBV buffer. Default: 2 x maxrate.
    #[serde(default)]
    pub bufsize_kbps: Option<u32>,
    /// QC: the video's average bitrate must reach this (the low end of the
    /// IAB band). None: no lower bound.
    #[serde(default)]
    pub min_bitrate_kbps: Option<u32>,
    /// H.264 profile (baseline, main, high). Default high. Ignored for WebM.
    #[serde(default)]
    pub profile: Option<String>,
    /// H.264 level ("4.0"); raised when size, frame rate or maxrate need
    /// more. Default: the lowest that fits. Ignored for WebM. A bad value is
    /// refused while the config loads, naming `profiles.X.outputs[i].level`.
    #[serde(default)]
    pub level: Option<H264Level>,
    /// Fixed keyframe interval in seconds (no scene-cut keyframes).
    #[serde(default = "default_keyframe_secs")]
    pub keyframe_secs: f64,
    /// Audio bitrate (AAC-LC, Opus for WebM), 48 kHz stereo.
    #[serde(default = "default_audio_kbps")]
    pub audio_kbps: u32,
}

fn default_keyframe_secs() -> f64 {
    2.0
}

fn default_audio_kbps() -> u32 {
    128
}

/// Names output files may not take (other files of the set use them).
const RESERVED: [&str; 9] = [
    "poster",
    "master",
    "sprite",
    "storyboard",
    "preview",
    "summary",
    "qc",
    "manifest",
    "vast",
];

/// A safe file stem: 1-32 of `[A-Za-z0-9_-]`, not a reserved name.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !RESERVED.contains(&name.to_ascii_lowercase().as_str())
}

impl OutputSpec {
    /// Checks one spec; the error names the field: ("crf", "must be 0..=51").
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let err = |f: &'static str, m: String| Err((f, m));
        if !is_safe_name(&self.name) {
            return err(
                "name",
                format!(
                    "{:?} is not a safe file name (1-32 of A-Z a-z 0-9 - _, not one of {})",
                    self.name,
                    RESERVED.join(", ")
                ),
            );
        }
        match (self.short_side, self.width) {
            (Some(_), Some(_)) | (None, None) => {
                return err(
                    "short_side",
                    "set exactly one of short_side and width".into(),
                )
            }
            (Some(s), None) if !(16..=8192).contains(&s) || s % 2 == 1 => {
                return err("short_side", format!("{s} must be even and 16..=8192"))
            }
            (None, Some(w)) if !(16..=8192).contains(&w) || w % 2 == 1 => {
                return err("width", format!("{w} must be even and 16..=8192"))
            }
            _ => {}
        }
        let crf_max = if self.kind == OutputKind::Webm {
            63
        } else {
            51
        };
        match (self.crf, self.bitrate_kbps) {
            (Some(_), Some(_)) | (None, None) => {
                return err("crf", "set exactly one of crf and bitrate_kbps".into())
            }
            (Some(c), None) if c > crf_max => return err("crf", format!("{c} is above {crf_max}")),
            (None, Some(b)) if b < 50 || b > self.maxrate_kbps => {
                return err(
                    "bitrate_kbps",
                    format!(
                        "{b} must be at least 50 and at most maxrate_kbps ({})",
                        self.maxrate_kbps
                    ),
                )
            }
            _ => {}
        }
        if !(50..=400_000).contains(&self.maxrate_kbps) {
            return err(
                "maxrate_kbps",
                format!("{} must be 50..=400000", self.maxrate_kbps),
            );
        }
        if let Some(b) = self.bufsize_kbps {
            if !(50..=800_000).contains(&b) {
                return err("bufsize_kbps", format!("{b} must be 50..=800000"));
            }
        }
        if let Some(m) = self.min_bitrate_kbps {
            if m > self.maxrate_kbps {
                return err(
                    "min_bitrate_kbps",
                    format!("{m} is above maxrate_kbps ({})", self.maxrate_kbps),
                );
            }
        }
        if let Some(p) = &self.profile {
            if !["baseline", "main", "high"].contains(&p.as_str()) {
                return err("profile", format!("{p:?} must be baseline, main or high"));
            }
        }
        if !(self.keyframe_secs.is_finite() && (0.1..=10.0).contains(&self.keyframe_secs)) {
            return err(
                "keyframe_secs",
                format!("{} must be 0.1..=10", self.keyframe_secs),
            );
        }
        if !(32..=512).contains(&self.audio_kbps) {
            return err(
                "audio_kbps",
                format!("{} must be 32..=512", self.audio_kbps),
            );
        }
        Ok(())
    }
}

/// Checks a profile's outputs; the error starts with `outputs[i].field`.
pub fn validate_outputs(outputs: &[OutputSpec]) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    for (i, o) in outputs.iter().enumerate() {
        o.check()
            .map_err(|(field, msg)| format!("outputs[{i}].{field}: {msg}"))?;
        if !names.insert(o.name.to_ascii_lowercase()) {
            return Err(format!(
                "outputs[{i}].name: {:?} appears twice in the profile",
                o.name
            ));
        }
    }
    Ok(())
}

fn spec(name: &str, short: u32, crf: u8, maxrate: u32, level: H264Level, audio: u32) -> OutputSpec {
    OutputSpec {
        name: name.into(),
        kind: OutputKind::Mp4,
        short_side: Some(short),
        width: None,
        aspect: Aspect::Native,
        crf: Some(crf),
        bitrate_kbps: None,
        maxrate_kbps: maxrate,
        bufsize_kbps: None,
        min_bitrate_kbps: None,
        profile: None,
        level: Some(level),
        keyframe_secs: 2.0,
        audio_kbps: audio,
    }
}

/// The outputs of a profile that lists none: the web ladder by the short
/// side, capped CRF (IAB ready-to-serve tiers, docs/ad-delivery-specs.md):
/// FHD 4-10 Mbps (cap 8), HD 2-5 (cap 5), SD 2-4 (cap 2.5); VBV buffer
/// 2 x maxrate; AAC 192/160/128 kbps.
pub fn default_outputs() -> Vec<OutputSpec> {
    vec![
        spec("1080p", 1080, 21, 8000, H264Level::L4_0, 192),
        spec("720p", 720, 22, 5000, H264Level::L3_1, 160),
        spec("480p", 480, 23, 2500, H264Level::L3_0, 128),
    ]
}

/// The crop an aspect needs on a `w`x`h` master: None when the master
/// already has that shape (or for native). The kept rectangle is centered,
/// even-sized and at even offsets.
pub fn crop_for(aspect: Aspect, w: u32, h: u32) -> Option<Crop> {
    let (n, d) = aspect.ratio()?;
    let (we, he) = (w & !1, h & !1);
    let (w64, h64, n64, d64) = (u64::from(w), u64::from(h), u64::from(n), u64::from(d));
    let (cw, ch) = if w64 * d64 > h64 * n64 {
        // Wider than the target: keep the full height.
        (
            even_round(f64::from(he) * f64::from(n) / f64::from(d)).min(we),
            he,
        )
    } else if w64 * d64 < h64 * n64 {
        (
            we,
            even_round(f64::from(we) * f64::from(d) / f64::from(n)).min(he),
        )
    } else {
        return None;
    };
    if (cw, ch) == (w, h) || cw < 2 || ch < 2 {
        return None;
    }
    Some(Crop {
        width: cw,
        height: ch,
        x: ((w - cw) / 2) & !1,
        y: ((h - ch) / 2) & !1,
    })
}

fn even_round(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

/// `short * long / other_short`, rounded to the nearest even number.
pub(crate) fn scale_even(short: u32, long: u32, other_short: u32) -> u32 {
    even_round(f64::from(short) * f64::from(long) / f64::from(other_short))
}

/// The output size a spec asks for from a `cw`x`ch` (cropped) frame.
pub fn target_size(spec: &OutputSpec, cw: u32, ch: u32) -> (u32, u32) {
    match (spec.aspect.ratio(), spec.short_side, spec.width) {
        (None, Some(s), _) => {
            if cw >= ch {
                (scale_even(s, cw, ch), s)
            } else {
                (s, scale_even(s, ch, cw))
            }
        }
        (None, None, Some(w)) => (w, scale_even(w, ch, cw)),
        (Some((n, d)), Some(s), _) => {
            if n >= d {
                (scale_even(s, n, d), s)
            } else {
                (s, scale_even(s, d, n))
            }
        }
        (Some((n, d)), None, Some(w)) => (w, scale_even(w, d, n)),
        (_, None, None) => (cw & !1, ch & !1),
    }
}

/// The renditions of `outputs` for a `master_w`x`master_h` master at `fps`:
/// each cropped (when its aspect differs from the master's), sized, and
/// dropped when it would be larger than the cropped master in either
/// direction (never upscale). When every output would be dropped, the
/// smallest one is kept at the cropped master's own even size (renamed
/// `{short}p` when its name was `{short_side}p`), so there is always
/// something to deliver. Plan order follows the spec order.
pub fn resolve(outputs: &[OutputSpec], master_w: u32, master_h: u32, fps: f64) -> Vec<Rendition> {
    if master_w < 2 || master_h < 2 {
        return Vec::new();
    }
    let framed = frame(outputs, master_w, master_h);
    let mut kept: Vec<Rendition> = framed
        .iter()
        .filter(|f| f.fits())
        .map(|f| rendition(f.spec, f.crop, f.size.0, f.size.1, fps))
        .collect();
    if kept.is_empty() {
        if let Some(f) = smallest(&framed) {
            let (cw, ch) = f.frame;
            let (w, h) = ((cw & !1).max(2), (ch & !1).max(2));
            let mut r = rendition(f.spec, f.crop, w, h, fps);
            if f.spec
                .short_side
                .is_some_and(|s| f.spec.name == format!("{s}p"))
            {
                r.name = format!("{}p", w.min(h));
            }
            kept.push(r);
        }
    }
    kept
}

/// An output [`resolve`] leaves out because it would upscale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dropped {
    pub name: String,
    /// The size it asks for.
    pub width: u32,
    pub height: u32,
    /// The (cropped) master frame it would be made from.
    pub frame_width: u32,
    pub frame_height: u32,
}

/// The outputs [`resolve`] drops for this master (the fallback it keeps
/// when every output is too large is not listed).
pub fn dropped(outputs: &[OutputSpec], master_w: u32, master_h: u32) -> Vec<Dropped> {
    if master_w < 2 || master_h < 2 {
        return Vec::new();
    }
    let framed = frame(outputs, master_w, master_h);
    let fallback = if framed.iter().any(Framed::fits) {
        None
    } else {
        smallest(&framed).map(|f| f.spec.name.clone())
    };
    framed
        .iter()
        .filter(|f| !f.fits() && Some(&f.spec.name) != fallback.as_ref())
        .map(|f| Dropped {
            name: f.spec.name.clone(),
            width: f.size.0,
            height: f.size.1,
            frame_width: f.frame.0,
            frame_height: f.frame.1,
        })
        .collect()
}

/// A spec on a master: its crop, the cropped frame, the size it asks for.
struct Framed<'a> {
    spec: &'a OutputSpec,
    crop: Option<Crop>,
    frame: (u32, u32),
    size: (u32, u32),
}

impl Framed<'_> {
    /// Never upscale: the size fits inside the (cropped) master.
    fn fits(&self) -> bool {
        self.size.0 <= self.frame.0 && self.size.1 <= self.frame.1
    }
}

fn frame(outputs: &[OutputSpec], master_w: u32, master_h: u32) -> Vec<Framed<'_>> {
    outputs
        .iter()
        .map(|o| {
            let crop = crop_for(o.aspect, master_w, master_h);
            let (cw, ch) = crop.map_or((master_w, master_h), |c| (c.width, c.height));
            Framed {
                spec: o,
                crop,
                frame: (cw, ch),
                size: target_size(o, cw, ch),
            }
        })
        .collect()
}

/// The output asking for the fewest pixels (first of equals).
fn smallest<'a, 'b>(framed: &'b [Framed<'a>]) -> Option<&'b Framed<'a>> {
    framed
        .iter()
        .min_by_key(|f| u64::from(f.size.0) * u64::from(f.size.1))
}

/// A spec at a resolved size.
fn rendition(o: &OutputSpec, crop: Option<Crop>, width: u32, height: u32, fps: f64) -> Rendition {
    let bufsize = o.bufsize_kbps.unwrap_or(o.maxrate_kbps.saturating_mul(2));
    let (profile, level) = if o.kind.is_h264() {
        let needed = H264Level::lowest_for(width, height, fps, o.maxrate_kbps);
        let level = o.level.max(Some(needed));
        (o.profile.clone().unwrap_or_else(|| "high".into()), level)
    } else {
        // VP9 profile 0 (8-bit 4:2:0); libvpx picks the level.
        ("0".to_owned(), None)
    };
    Rendition {
        name: o.name.clone(),
        kind: o.kind,
        width,
        height,
        crop,
        crf: o.crf,
        bitrate_kbps: o.bitrate_kbps,
        maxrate_kbps: o.maxrate_kbps,
        bufsize_kbps: bufsize,
        min_bitrate_kbps: o.min_bitrate_kbps,
        profile,
        level,
        keyframe_secs: o.keyframe_secs,
        audio_bitrate_kbps: o.audio_kbps,
    }
}

/// A delivery profile: its outputs and its policy.
#[derive(Debug, Clone, Deserialize)]
pub struct ProfileSettings {
    #[serde(default)]
    pub description: String,
    /// What the one transcode run writes. Empty: the default ladder
    /// (`media::profile::default_outputs`).
    #[serde(default)]
    pub outputs: Vec<OutputSpec>,
    /// Posters, storyboard sprite and preview (`media::stills::StillsSpec`).
    #[serde(default)]
    pub stills: crate::media::stills::StillsSpec,
    pub loudness_target_lufs: Option<f64>,
    #[serde(default = "default_loudness_tolerance")]
    pub loudness_tolerance_lu: f64,
    pub true_peak_max_dbtp: Option<f64>,
    /// Normalise the audio to the loudness target (measured two-pass
    /// `loudnorm`) before QC judges the delivered files. Unset: true when
    /// the profile names a loudness target. false: a master off target is
    /// rejected.
    #[serde(default)]
    pub normalize_loudness: Option<bool>,
    /// Thresholds of the master checks (sync, scan, colour, borders,
    /// cadence, flashing): `[profiles.NAME.qc]`.
    #[serde(default)]
    pub qc: crate::media::master_qc::MasterQcSettings,
}

impl ProfileSettings {
    /// True when the profile has a loudness target and allows normalising to it.
    pub fn normalizes_loudness(&self) -> bool {
        self.loudness_target_lufs.is_some() && self.normalize_loudness.unwrap_or(true)
    }

    /// What `loudnorm` is asked to reach, when the profile names a target.
    pub fn loudness_target(&self) -> Option<crate::media::loudness::Target> {
        self.loudness_target_lufs
            .map(|t| crate::media::loudness::Target::for_profile(t, self.true_peak_max_dbtp))
    }
}

fn default_loudness_tolerance() -> f64 {
    2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(name: &str, aspect: Aspect, short: Option<u32>, width: Option<u32>) -> OutputSpec {
        OutputSpec {
            aspect,
            short_side: short,
            width,
            ..spec(name, 2, 23, 4000, H264Level::L3_0, 128)
        }
    }

    #[test]
    fn crops_are_centered_even_and_only_when_the_shape_differs() {
        let c = |w, h, x, y| {
            Some(Crop {
                width: w,
                height: h,
                x,
                y,
            })
        };
        assert_eq!(crop_for(Aspect::Native, 1920, 1080), None);
        assert_eq!(crop_for(Aspect::Wide, 1920, 1080), None);
        assert_eq!(crop_for(Aspect::Square, 1920, 1080), c(1080, 1080, 420, 0));
        assert_eq!(crop_for(Aspect::Tall, 1920, 1080), c(608, 1080, 656, 0));
        assert_eq!(crop_for(Aspect::Tall, 3840, 2160), c(1216, 2160, 1312, 0));
        assert_eq!(crop_for(Aspect::Wide, 1080, 1920), c(1080, 608, 0, 656));
        assert_eq!(crop_for(Aspect::Square, 1080, 1920), c(1080, 1080, 0, 420));
        assert_eq!(crop_for(Aspect::Wide, 1080, 1080), c(1080, 608, 0, 236));
        assert_eq!(crop_for(Aspect::Tall, 2880, 2880), c(1620, 2880, 630, 0));
        assert_eq!(crop_for(Aspect::Square, 2880, 2880), None);
        // Odd masters: the kept rectangle is even.
        assert_eq!(crop_for(Aspect::Square, 641, 361), c(360, 360, 140, 0));
    }

    #[test]
    fn sizes_follow_the_short_side_or_width_in_the_outputs_shape() {
        let cases = [
            (
                out("a", Aspect::Native, Some(720), None),
                1920,
                1080,
                (1280, 720),
            ),
            (
                out("a", Aspect::Native, Some(720), None),
                1080,
                1920,
                (720, 1280),
            ),
            (
                out("a", Aspect::Native, None, Some(640)),
                1080,
                1920,
                (640, 1138),
            ),
            (
                out("a", Aspect::Tall, None, Some(1080)),
                3840,
                2160,
                (1080, 1920),
            ),
            (
                out("a", Aspect::Square, None, Some(1080)),
                3840,
                2160,
                (1080, 1080),
            ),
            (
                out("a", Aspect::Wide, Some(1080), None),
                2160,
                3840,
                (1920, 1080),
            ),
            (
                out("a", Aspect::Tall, Some(720), None),
                3840,
                2160,
                (720, 1280),
            ),
        ];
        for (o, w, h, expected) in cases {
            let rs = resolve(std::slice::from_ref(&o), w, h, 24.0);
            let got: Vec<_> = rs.iter().map(|r| (r.width, r.height)).collect();
            assert_eq!(got, [expected], "{o:?} on {w}x{h}");
            assert!(rs.iter().all(|r| r.width % 2 == 0 && r.height % 2 == 0));
        }
    }

    #[test]
    fn outputs_larger_than_the_cropped_master_are_dropped_never_upscaled() {
        let outputs = vec![
            out("vertical", Aspect::Tall, None, Some(1080)),
            out("square", Aspect::Square, None, Some(1080)),
        ];
        // 16:9 FHD: a 9:16 crop is 608x1080, too narrow for 1080 wide; the
        // 1:1 crop is 1080x1080 and fits.
        let rs = resolve(&outputs, 1920, 1080, 24.0);
        let got: Vec<_> = rs
            .iter()
            .map(|r| (r.name.as_str(), r.width, r.height))
            .collect();
        assert_eq!(got, [("square", 1080, 1080)]);
        assert_eq!(
            rs[0].crop,
            Some(Crop {
                width: 1080,
                height: 1080,
                x: 420,
                y: 0
            })
        );
        // 4K keeps both.
        assert_eq!(resolve(&outputs, 3840, 2160, 24.0).len(), 2);
        // Everything too big: the smallest one stays at the master's own size.
        let small = resolve(&outputs, 640, 360, 24.0);
        let got: Vec<_> = small
            .iter()
            .map(|r| (r.name.as_str(), r.width, r.height, r.crop.map(|c| c.width)))
            .collect();
        assert_eq!(got, [("square", 360, 360, Some(360))]);
        let names = |d: Vec<Dropped>| d.into_iter().map(|d| d.name).collect::<Vec<_>>();
        assert_eq!(names(dropped(&outputs, 640, 360)), ["vertical"]);
        assert_eq!(names(dropped(&outputs, 1920, 1080)), ["vertical"]);
        assert_eq!(
            dropped(&outputs, 1920, 1080)[0],
            Dropped {
                name: "vertical".into(),
                width: 1080,
                height: 1920,
                frame_width: 608,
                frame_height: 1080
            }
        );
        assert!(dropped(&outputs, 3840, 2160).is_empty());
        for (w, h) in [(1920u32, 1080u32), (1080, 1920), (1080, 1080), (1916, 1078)] {
            for r in resolve(&default_outputs(), w, h, 24.0) {
                let (cw, ch) = r.crop.map_or((w, h), |c| (c.width, c.height));
                assert!(r.width <= cw && r.height <= ch, "{r:?} upscales {w}x{h}");
            }
        }
    }

    #[test]
    fn levels_rise_with_frame_rate_and_bitrate_and_webm_has_none() {
        let mut top = out("top", Aspect::Native, Some(1080), None);
        top.crf = None;
        top.bitrate_kbps = Some(18_000);
        top.maxrate_kbps = 30_000;
        top.level = Some(H264Level::L4_0);
        let r = &resolve(std::slice::from_ref(&top), 1920, 1080, 24.0)[0];
        assert_eq!((r.level, r.bufsize_kbps), (Some(H264Level::L4_1), 60_000));
        let r = &resolve(std::slice::from_ref(&top), 1920, 1080, 60.0)[0];
        assert_eq!(r.level, Some(H264Level::L4_2));
        let mut webm = out("vp9", Aspect::Native, Some(720), None);
        webm.kind = OutputKind::Webm;
        let r = &resolve(&[webm], 1920, 1080, 24.0)[0];
        assert_eq!((r.profile.as_str(), r.level), ("0", None));
    }

    #[test]
    fn bad_specs_name_the_field() {
        let good = out("ok", Aspect::Native, Some(720), None);
        assert!(validate_outputs(std::slice::from_ref(&good)).is_ok());
        let cases: Vec<(OutputSpec, &str)> = vec![
            (
                OutputSpec {
                    name: "../x".into(),
                    ..good.clone()
                },
                "outputs[0].name",
            ),
            (
                OutputSpec {
                    name: "poster".into(),
                    ..good.clone()
                },
                "outputs[0].name",
            ),
            (
                OutputSpec {
                    width: Some(640),
                    ..good.clone()
                },
                "outputs[0].short_side",
            ),
            (
                OutputSpec {
                    short_side: Some(721),
                    ..good.clone()
                },
                "outputs[0].short_side",
            ),
            (
                OutputSpec {
                    crf: Some(52),
                    ..good.clone()
                },
                "outputs[0].crf",
            ),
            (
                OutputSpec {
                    bitrate_kbps: Some(3000),
                    ..good.clone()
                },
                "outputs[0].crf",
            ),
            (
                OutputSpec {
                    crf: None,
                    bitrate_kbps: Some(9000),
                    ..good.clone()
                },
                "outputs[0].bitrate_kbps",
            ),
            (
                OutputSpec {
                    profile: Some("high10".into()),
                    ..good.clone()
                },
                "outputs[0].profile",
            ),
            (
                OutputSpec {
                    keyframe_secs: 0.0,
                    ..good.clone()
                },
                "outputs[0].keyframe_secs",
            ),
            (
                OutputSpec {
                    audio_kbps: 8,
                    ..good.clone()
                },
                "outputs[0].audio_kbps",
            ),
            (
                OutputSpec {
                    min_bitrate_kbps: Some(5000),
                    ..good.clone()
                },
                "outputs[0].min_bitrate_kbps",
            ),
        ];
        for (spec, field) in cases {
            let e = validate_outputs(std::slice::from_ref(&spec)).unwrap_err();
            assert!(e.starts_with(field), "{spec:?}: {e}");
        }
        let twice = validate_outputs(&[good.clone(), good.clone()]).unwrap_err();
        assert!(twice.starts_with("outputs[1].name"), "{twice}");
        let webm_crf = OutputSpec {
            kind: OutputKind::Webm,
            crf: Some(60),
            ..good
        };
        assert!(validate_outputs(&[webm_crf]).is_ok());
    }

    #[test]
    fn specs_parse_from_toml_style_values_and_refuse_unknown_keys() {
        let o: OutputSpec = serde_json::from_value(serde_json::json!({
            "name": "v", "kind": "webm", "width": 1080, "aspect": "9:16",
            "crf": 33, "maxrate_kbps": 3000
        }))
        .unwrap();
        assert_eq!(
            (o.kind, o.aspect, o.keyframe_secs, o.audio_kbps),
            (OutputKind::Webm, Aspect::Tall, 2.0, 128)
        );
        assert!(serde_json::from_value::<OutputSpec>(serde_json::json!({
            "name": "v", "short_side": 720, "crf": 23, "maxrate_kbps": 3000, "fps": 30
        }))
        .is_err());
    }
}
