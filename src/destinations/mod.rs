//! Buyers' delivery specs as data: one `[destinations.NAME]` table per
//! buyer in config, each rule a key. Parsed and validated at start (every
//! bad key named at once); [`preflight`] checks a request against them
//! before anything is submitted or paid.
//!
//! After QC, [`verdict::judge`] checks each destination the asset names on
//! the delivered files (`stages::check::delivered` gathers them).

pub mod heal;
pub mod preflight;
pub mod verdict;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every configured destination, by name.
pub type Destinations = BTreeMap<String, Destination>;

/// One buyer's rules. Every rule is optional: an unset key is not checked.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default, utoipa::ToSchema)]
pub struct Destination {
    /// What the buyer is, for people.
    pub description: String,
    /// The public spec the numbers come from (URL or spec name).
    pub source: String,
    /// Accepted durations as exact slots (seconds), each within
    /// `duration_slot_tolerance_secs`.
    #[serde(default)]
    pub duration_slots_secs: Vec<f64>,
    #[serde(default)]
    pub duration_slot_tolerance_secs: f64,
    /// Accepted durations as ranges (inclusive). A duration passes when it
    /// fits a slot or a range.
    #[serde(default)]
    pub duration_ranges_secs: Vec<Range>,
    /// Accepted frame rates (fps, within 0.01).
    #[serde(default)]
    pub frame_rates: Vec<f64>,
    /// Highest accepted frame rate.
    #[serde(default)]
    pub max_frame_rate: Option<f64>,
    /// Smallest accepted top rung, in pixels.
    #[serde(default)]
    pub min_width: Option<u32>,
    #[serde(default)]
    pub min_height: Option<u32>,
    /// Accepted shapes, "W:H" (e.g. "16:9").
    #[serde(default)]
    pub aspect_ratios: Vec<String>,
    /// Accepted containers: mp4, mov, webm.
    #[serde(default)]
    pub containers: Vec<String>,
    /// Accepted video codecs: h264, hevc, vp9, av1, prores.
    #[serde(default)]
    pub video_codecs: Vec<String>,
    /// The top rung's average video bitrate must be inside this band.
    #[serde(default)]
    pub top_min_kbps: Option<u32>,
    #[serde(default)]
    pub top_max_kbps: Option<u32>,
    /// Lower rungs the buyer requires beside the top one.
    #[serde(default)]
    pub lower_rungs: Vec<Rung>,
    /// true: a creative without sound is refused.
    #[serde(default)]
    pub audio_required: bool,
    /// Accepted audio codecs: aac, opus, pcm.
    #[serde(default)]
    pub audio_codecs: Vec<String>,
    #[serde(default)]
    pub audio_min_channels: Option<u32>,
    /// Accepted sample rates (Hz).
    #[serde(default)]
    pub audio_sample_rates: Vec<u32>,
    #[serde(default)]
    pub audio_min_kbps: Option<u32>,
    /// Integrated loudness target, tolerance either side, true-peak cap.
    #[serde(default)]
    pub loudness_target_lufs: Option<f64>,
    #[serde(default)]
    pub loudness_tolerance_lu: Option<f64>,
    #[serde(default)]
    pub true_peak_max_dbtp: Option<f64>,
    /// Largest accepted file, bytes.
    #[serde(default)]
    pub max_file_bytes: Option<u64>,
    /// true: a mezzanine file (the high-quality source for SSAI) is required.
    #[serde(default)]
    pub mezzanine: bool,
    /// true: MP4 files must have the moov atom at the front.
    #[serde(default)]
    pub moov_first: bool,
    /// true: a picture with both letterbox and pillarbox bars is refused.
    #[serde(default)]
    pub no_letterbox_and_pillarbox: bool,
    /// true: a picture with bars at the top and bottom (letterbox, alone
    /// or with pillarbox) is refused. A bar counts over the profile's
    /// `border_min_fraction` of its side, as the master check counts it.
    #[serde(default)]
    pub no_letterbox: bool,
    /// true: a picture with bars at the left and right is refused.
    #[serde(default)]
    pub no_pillarbox: bool,
    /// The largest offset of the audio's start from the video's start
    /// (either way), seconds.
    #[serde(default)]
    pub max_audio_start_offset_secs: Option<f64>,
    /// The largest offset of the audio's end from the video's end (either
    /// way: cut short or running past), seconds.
    #[serde(default)]
    pub max_audio_end_offset_secs: Option<f64>,
    /// The largest share (0..1) of frames that repeat the one before
    /// (duplicated frames, pulldown), as the content analysis counts them.
    #[serde(default)]
    pub max_repeated_frame_share: Option<f64>,
    /// The most large-area flashes in any one-second window (ITU-R
    /// BT.1702 and Ofcom allow 3), as the profile's flash rule counts them.
    #[serde(default)]
    pub max_flashes_per_sec: Option<u32>,
}

/// An inclusive range of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

/// A required lower rung: its short side and its bitrate band.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rung {
    pub short_side: u32,
    pub min_kbps: u32,
    pub max_kbps: u32,
}

const CONTAINERS: &[&str] = &["mp4", "mov", "webm"];
const VIDEO_CODECS: &[&str] = &["h264", "hevc", "vp9", "av1", "prores"];
const AUDIO_CODECS: &[&str] = &["aac", "opus", "pcm"];

/// False for NaN too.
fn positive(x: f64) -> bool {
    x > 0.0
}

fn non_negative(x: f64) -> bool {
    x >= 0.0
}

/// `"16:9"` as `(16, 9)`.
pub fn parse_aspect(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.split_once(':')?;
    let (w, h) = (w.trim().parse().ok()?, h.trim().parse().ok()?);
    (w > 0 && h > 0).then_some((w, h))
}

/// Whether `width`x`height` has the shape `w:h` (within 1%).
pub fn has_aspect(width: u32, height: u32, (w, h): (u32, u32)) -> bool {
    let a = width as f64 / height as f64;
    let b = w as f64 / h as f64;
    (a - b).abs() <= b * 0.01
}

impl Destination {
    /// Every problem of this table, each naming `destinations.NAME.key`.
    pub fn problems(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut bad =
            |key: &str, rule: String| out.push(format!("destinations.{name}.{key} {rule}"));
        if self.source.trim().is_empty() {
            bad(
                "source",
                "is required: the public spec the numbers come from".into(),
            );
        }
        if self.duration_slots_secs.iter().any(|s| !positive(*s)) {
            bad(
                "duration_slots_secs",
                "must hold only positive seconds".into(),
            );
        }
        if !non_negative(self.duration_slot_tolerance_secs) {
            bad(
                "duration_slot_tolerance_secs",
                "must not be negative".into(),
            );
        }
        for (i, r) in self.duration_ranges_secs.iter().enumerate() {
            if !(r.min >= 0.0 && r.min <= r.max) {
                bad(
                    &format!("duration_ranges_secs[{i}]"),
                    format!("must have 0 <= min <= max (got {}..{})", r.min, r.max),
                );
            }
        }
        if self.frame_rates.iter().any(|f| !(*f > 0.0 && *f <= 240.0)) {
            bad("frame_rates", "must hold frame rates in 0..240 fps".into());
        }
        if self.max_frame_rate.is_some_and(|f| !positive(f)) {
            bad("max_frame_rate", "must be positive".into());
        }
        for (key, v) in [
            ("min_width", self.min_width),
            ("min_height", self.min_height),
        ] {
            if v == Some(0) {
                bad(key, "must be positive".into());
            }
        }
        for a in &self.aspect_ratios {
            if parse_aspect(a).is_none() {
                bad(
                    "aspect_ratios",
                    format!("holds {a:?}: each must be \"W:H\" like \"16:9\""),
                );
            }
        }
        for (key, list, known) in [
            ("containers", &self.containers, CONTAINERS),
            ("video_codecs", &self.video_codecs, VIDEO_CODECS),
            ("audio_codecs", &self.audio_codecs, AUDIO_CODECS),
        ] {
            for v in list {
                if !known.contains(&v.as_str()) {
                    bad(key, format!("holds {v:?}: known are {}", known.join(", ")));
                }
            }
        }
        if let (Some(lo), Some(hi)) = (self.top_min_kbps, self.top_max_kbps) {
            if lo > hi {
                bad(
                    "top_min_kbps",
                    format!("({lo}) must not exceed top_max_kbps ({hi})"),
                );
            }
        }
        for (i, r) in self.lower_rungs.iter().enumerate() {
            if r.short_side == 0 || r.min_kbps > r.max_kbps {
                bad(
                    &format!("lower_rungs[{i}]"),
                    "must have a positive short_side and min_kbps <= max_kbps".into(),
                );
            }
        }
        if self.audio_min_channels == Some(0) {
            bad("audio_min_channels", "must be at least 1".into());
        }
        if self
            .audio_sample_rates
            .iter()
            .any(|r| !(8000..=192_000).contains(r))
        {
            bad(
                "audio_sample_rates",
                "must hold rates in 8000..192000 Hz".into(),
            );
        }
        if self.loudness_tolerance_lu.is_some() && self.loudness_target_lufs.is_none() {
            bad("loudness_tolerance_lu", "needs loudness_target_lufs".into());
        }
        if self.loudness_tolerance_lu.is_some_and(|t| !non_negative(t)) {
            bad("loudness_tolerance_lu", "must not be negative".into());
        }
        if self
            .loudness_target_lufs
            .is_some_and(|t| !(-70.0..=0.0).contains(&t))
        {
            bad("loudness_target_lufs", "must be in -70..0 LUFS".into());
        }
        if self.max_file_bytes == Some(0) {
            bad("max_file_bytes", "must be positive".into());
        }
        for (key, v) in [
            (
                "max_audio_start_offset_secs",
                self.max_audio_start_offset_secs,
            ),
            ("max_audio_end_offset_secs", self.max_audio_end_offset_secs),
        ] {
            if v.is_some_and(|s| !(s.is_finite() && s >= 0.0)) {
                bad(key, "must be seconds, 0 or more".into());
            }
        }
        if self
            .max_repeated_frame_share
            .is_some_and(|s| !(0.0..=1.0).contains(&s))
        {
            bad(
                "max_repeated_frame_share",
                "must be a share in 0..1 (0.05 for 5%)".into(),
            );
        }
        out
    }

    /// Whether a `secs` long creative fits a slot or a range; true when
    /// the buyer sets neither.
    pub fn accepts_duration(&self, secs: f64) -> bool {
        if self.duration_slots_secs.is_empty() && self.duration_ranges_secs.is_empty() {
            return true;
        }
        self.duration_slots_secs
            .iter()
            .any(|s| (secs - s).abs() <= self.duration_slot_tolerance_secs + 1e-9)
            || self
                .duration_ranges_secs
                .iter()
                .any(|r| secs >= r.min - 1e-9 && secs <= r.max + 1e-9)
    }

    /// The accepted durations, for messages: "15, 20 or 30 s +/- 0.5 s".
    pub fn durations_text(&self) -> String {
        let mut parts = Vec::new();
        if !self.duration_slots_secs.is_empty() {
            let slots: Vec<String> = self
                .duration_slots_secs
                .iter()
                .map(|s| format!("{s}"))
                .collect();
            parts.push(format!(
                "{} s +/- {} s",
                slots.join(", "),
                self.duration_slot_tolerance_secs
            ));
        }
        for r in &self.duration_ranges_secs {
            parts.push(format!("{}-{} s", r.min, r.max));
        }
        parts.join(" or ")
    }

    /// Whether `fps` is a frame rate the buyer takes.
    pub fn accepts_frame_rate(&self, fps: f64) -> bool {
        (self.frame_rates.is_empty() || self.frame_rates.iter().any(|f| (f - fps).abs() <= 0.01))
            && self.max_frame_rate.is_none_or(|m| fps <= m + 0.01)
    }
}

/// Every problem of every table, at once; empty when all are valid.
pub fn problems(all: &Destinations) -> Vec<String> {
    let mut out = Vec::new();
    for (name, d) in all {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            out.push(format!(
                "destinations.{name}: a destination name is 1-32 of a-z 0-9 -"
            ));
        }
        out.extend(d.problems(name));
    }
    out
}

#[cfg(test)]
mod tests;
