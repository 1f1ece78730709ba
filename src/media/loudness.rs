//! Measured two-pass EBU R128 loudness normalisation with `loudnorm`.
//!
//! Pass 1 reads the master's audio only and has `loudnorm` print what it
//! measured (integrated loudness, true peak, loudness range, gate threshold,
//! offset) as a JSON block in the log. Pass 2 is a filter string the
//! transcode applies once to the decoded audio before it is split to the
//! renditions: `loudnorm` given those measurements, in linear mode when it can
//! (one gain for the whole programme, dynamics untouched), followed by a
//! resample back to 48 kHz stereo (`loudnorm` works at 192 kHz internally).
//!
//! Linear mode is impossible when the gain would push the true peak over the
//! target, when the master's loudness range exceeds the range target, or when
//! it measured 0 LU (a perfectly steady level). `loudnorm` then falls back to
//! its dynamic mode (a gain that follows a 3 s window, plus a true-peak
//! limiter). Which mode ran is read from pass 2's own report; the rule
//! `loudnorm` applies is mirrored here so the reason can be given in words.

use super::analyze::{parse_log, Loudness};
use super::process::{input_args, ProcessError, RunOptions, Runner};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Headroom kept under the profile's true-peak cap: the AAC encoder can
/// overshoot the peaks `loudnorm` left by a few tenths of a dB.
pub const TRUE_PEAK_HEADROOM_DB: f64 = 1.0;
/// True-peak target when the profile sets no cap (ATSC A/85 practice).
pub const DEFAULT_TRUE_PEAK_DBTP: f64 = -2.0;
/// Loudness-range target unless the master's own range is wider: a master's
/// dynamics are kept, never squeezed to meet a number nobody asked for.
pub const DEFAULT_RANGE_LU: f64 = 7.0;
/// The absolute gate of BS.1770: audio below it counts as silence.
pub const SILENCE_LUFS: f64 = -70.0;

/// The filter that follows `loudnorm` in pass 2: back to 48 kHz stereo.
pub const RESAMPLE: &str = "aresample=48000,aformat=sample_rates=48000:channel_layouts=stereo";

/// What `loudnorm` is asked to reach.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = LoudnessTarget)]
pub struct Target {
    pub integrated_lufs: f64,
    /// The true-peak target given to `loudnorm` (the profile's cap minus
    /// [`TRUE_PEAK_HEADROOM_DB`]).
    pub true_peak_dbtp: f64,
    pub range_lu: f64,
}

impl Target {
    /// The target for a profile's loudness and true-peak cap, within the
    /// ranges `loudnorm` accepts.
    pub fn for_profile(target_lufs: f64, true_peak_cap_dbtp: Option<f64>) -> Self {
        let tp = true_peak_cap_dbtp.map_or(DEFAULT_TRUE_PEAK_DBTP, |c| c - TRUE_PEAK_HEADROOM_DB);
        Target {
            integrated_lufs: target_lufs.clamp(-70.0, -5.0),
            true_peak_dbtp: tp.clamp(-9.0, 0.0),
            range_lu: DEFAULT_RANGE_LU,
        }
    }
}

/// What pass 1 measured of the master's audio (`loudnorm`'s `input_*`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = LoudnessMeasured)]
pub struct Measured {
    /// Integrated loudness, LUFS.
    pub input_i: f64,
    /// True peak, dBTP.
    pub input_tp: f64,
    /// Loudness range, LU.
    pub input_lra: f64,
    /// Relative gate threshold, LUFS.
    pub input_thresh: f64,
    /// Gain `loudnorm` suggests adding after its own processing, dB.
    pub target_offset: f64,
}

/// One `loudnorm` JSON report: `input_*` always; pass 2 also says which
/// mode it ran in.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub measured: Measured,
    pub output_i: Option<f64>,
    pub output_tp: Option<f64>,
    pub mode: Option<Mode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = LoudnormMode)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One gain for the whole programme.
    Linear,
    /// Gain following a 3 s window, with a true-peak limiter.
    Dynamic,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Linear => "linear",
            Mode::Dynamic => "dynamic",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("no loudnorm report in ffmpeg's log")]
    Missing,
    #[error("loudnorm report is not readable: {0}")]
    Garbled(String),
}

/// Finds the last `loudnorm` JSON block in a log (the lines from `{` to `}`
/// around `"input_i"`; a level tag in front of a line is ignored) and reads
/// it. Values are strings in the block ("-6.06", "-inf").
pub fn parse_report<S: AsRef<str>>(log: &[S]) -> Result<Report, ParseError> {
    let lines: Vec<&str> = log.iter().map(|l| l.as_ref()).collect();
    let key = lines
        .iter()
        .rposition(|l| l.contains("\"input_i\""))
        .ok_or(ParseError::Missing)?;
    let open = lines[..=key]
        .iter()
        .rposition(|l| l.trim_end().ends_with('{'))
        .ok_or_else(|| ParseError::Garbled("no opening brace".into()))?;
    let close = lines[key..]
        .iter()
        .position(|l| l.trim_start().starts_with('}') || l.trim_end().ends_with('}'))
        .map(|i| key + i)
        .ok_or_else(|| ParseError::Garbled("no closing brace".into()))?;
    let mut json = String::new();
    for (i, line) in lines[open..=close].iter().enumerate() {
        // The first line may carry the filter's prefix and level tag.
        let text = if i == 0 {
            &line[line.rfind('{').unwrap_or(0)..]
        } else {
            let start = line.find(['"', '}']).unwrap_or(line.len());
            &line[start..]
        };
        json.push_str(text);
        json.push('\n');
    }
    let map: HashMap<String, String> =
        serde_json::from_str(&json).map_err(|e| ParseError::Garbled(e.to_string()))?;
    let num = |k: &str| -> Result<f64, ParseError> {
        let v = map
            .get(k)
            .ok_or_else(|| ParseError::Garbled(format!("{k} is missing")))?;
        v.trim()
            .parse::<f64>()
            .map_err(|_| ParseError::Garbled(format!("{k} is {v:?}")))
    };
    let measured = Measured {
        input_i: num("input_i")?,
        input_tp: num("input_tp")?,
        input_lra: num("input_lra")?,
        input_thresh: num("input_thresh")?,
        target_offset: num("target_offset")?,
    };
    let mode = match map.get("normalization_type").map(|s| s.trim()) {
        Some("linear") => Some(Mode::Linear),
        Some("dynamic") => Some(Mode::Dynamic),
        _ => None,
    };
    Ok(Report {
        measured,
        output_i: num("output_i").ok(),
        output_tp: num("output_tp").ok(),
        mode,
    })
}

/// Pass 1: the master's first audio stream only, through `loudnorm` in
/// measuring mode, to nowhere.
pub fn pass1_args(master: &Path, target: &Target) -> Vec<String> {
    let mut args = input_args(master, true);
    args.extend(
        [
            "-vn",
            "-sn",
            "-dn",
            "-map",
            "0:a:0",
            "-af",
            &format!(
                "loudnorm=I={}:TP={}:LRA={}:print_format=json",
                num(target.integrated_lufs),
                num(target.true_peak_dbtp),
                num(target.range_lu)
            ),
            "-f",
            "null",
            "-",
        ]
        .map(String::from),
    );
    args
}

/// A number as the filter option gets it (two decimals, as loudnorm prints).
fn num(v: f64) -> String {
    format!("{v:.2}")
}

/// The value as `loudnorm` will read it back from [`pass2_filter`].
fn rounded(v: f64) -> f64 {
    num(v).parse().unwrap_or(v)
}

/// The range target for this master: the default, or the master's own
/// range when wider (so an LRA above the default never forces dynamic mode).
pub fn range_target(target: &Target, m: &Measured) -> f64 {
    target.range_lu.max(m.input_lra.ceil()).min(50.0)
}

/// Pass 2's filter chain (without input or output labels).
pub fn pass2_filter(target: &Target, m: &Measured) -> String {
    format!(
        "loudnorm=I={}:TP={}:LRA={}:measured_I={}:measured_TP={}:measured_LRA={}:\
         measured_thresh={}:offset={}:linear=true:print_format=json,{RESAMPLE}",
        num(target.integrated_lufs),
        num(target.true_peak_dbtp),
        num(range_target(target, m)),
        num(m.input_i.clamp(-99.0, 0.0)),
        num(m.input_tp.clamp(-99.0, 99.0)),
        num(m.input_lra.clamp(0.0, 99.0)),
        num(m.input_thresh.clamp(-99.0, 0.0)),
        num(m.target_offset.clamp(-99.0, 99.0)),
    )
}

/// The mode `loudnorm` will run pass 2 in (its own rule, on the values as
/// [`pass2_filter`] passes them), and in plain words why not linear.
pub fn expected_mode(target: &Target, m: &Measured) -> (Mode, Option<String>) {
    let (i, tp, lra, thresh) = (
        rounded(m.input_i),
        rounded(m.input_tp),
        rounded(m.input_lra),
        rounded(m.input_thresh),
    );
    let target_i = rounded(target.integrated_lufs);
    let target_tp = rounded(target.true_peak_dbtp);
    let target_lra = rounded(range_target(target, m));
    let gain = target_i - i;
    let peak_after = tp + gain;
    let why = if lra == 0.0 {
        Some(
            "the master's loudness range measured 0 LU (a perfectly steady level), \
             which loudnorm's linear mode does not accept"
                .to_string(),
        )
    } else if thresh == -70.0 || i == 0.0 {
        Some("the master's audio is too quiet to measure for a linear gain".to_string())
    } else if peak_after > target_tp {
        Some(format!(
            "a linear gain of {gain:+.1} dB would put the true peak at {peak_after:.1} dBTP, \
             above the {target_tp:.1} dBTP target, so peaks were limited"
        ))
    } else if lra > target_lra {
        Some(format!(
            "the master's loudness range {lra:.1} LU is above the {target_lra:.1} LU target"
        ))
    } else {
        None
    };
    match why {
        None => (Mode::Linear, None),
        Some(w) => (Mode::Dynamic, Some(w)),
    }
}

/// Whether the master's loudness was normalised, and if not why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = LoudnessStatus)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Pass 2 ran in the transcode.
    Applied,
    /// The profile allows it but there was nothing to normalise (no audio, silence).
    Skipped,
    /// The profile does not allow it (`normalize_loudness = false`).
    Disabled,
}

/// The loudness normalisation of one transcode, as the QC report records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Normalization {
    pub status: Status,
    /// Plain words: why it was skipped or disabled, or why `loudnorm` could
    /// not stay linear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub target: Option<Target>,
    /// Pass 1: the master as `loudnorm` measured it (before).
    #[serde(default)]
    pub before: Option<Measured>,
    /// The mode pass 2 ran in.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// True when `mode` is what ffmpeg reported for pass 2; false when it is
    /// the mode `loudnorm`'s rule predicts (the report was not found).
    #[serde(default)]
    pub mode_reported: bool,
    /// The pass-2 filter the transcode applied.
    #[serde(default)]
    pub filter: Option<String>,
    /// The delivered audio (after), measured by QC with `ebur128` on this rendition.
    #[serde(default)]
    pub after_rendition: Option<String>,
    #[serde(default)]
    pub after: Option<Loudness>,
}

impl Normalization {
    fn not_applied(status: Status, target: Option<Target>, reason: String) -> Self {
        Normalization {
            status,
            reason: Some(reason),
            target,
            before: None,
            mode: None,
            mode_reported: false,
            filter: None,
            after_rendition: None,
            after: None,
        }
    }

    /// The pass-2 filter to give the transcode, when normalisation applies.
    pub fn audio_filter(&self) -> Option<String> {
        (self.status == Status::Applied)
            .then(|| self.filter.clone())
            .flatten()
    }

    /// Records what the transcode's log says pass 2 did.
    pub fn record_pass2<S: AsRef<str>>(&mut self, transcode_log: &[S]) {
        if self.status != Status::Applied {
            return;
        }
        if let Some(mode) = parse_report(transcode_log).ok().and_then(|r| r.mode) {
            self.mode = Some(mode);
            self.mode_reported = true;
            if mode == Mode::Linear {
                self.reason = None;
            } else if self.reason.is_none() {
                self.reason = Some("loudnorm fell back to its dynamic mode".into());
            }
        }
    }
}

/// Decides and prepares normalisation for a master: nothing when the profile
/// has no loudness `target`; a record of why not when it is not `allowed` or
/// there is nothing to normalise; otherwise runs pass 1 and returns the pass-2
/// filter with the measurement.
pub async fn prepare(
    runner: &Runner,
    master: &Path,
    has_audio: bool,
    target: Option<Target>,
    allowed: bool,
    deadline: Duration,
) -> Result<Option<Normalization>, ProcessError> {
    let Some(target) = target else {
        return Ok(None);
    };
    if !allowed {
        return Ok(Some(Normalization::not_applied(
            Status::Disabled,
            Some(target),
            "the profile does not normalise loudness (normalize_loudness = false): \
             the master's own loudness is judged"
                .into(),
        )));
    }
    if !has_audio {
        return Ok(Some(Normalization::not_applied(
            Status::Skipped,
            Some(target),
            "the master has no audio to normalise".into(),
        )));
    }
    let out = runner
        .ffmpeg(
            pass1_args(master, &target),
            RunOptions::new("loudness measurement", deadline).untrusted(),
        )
        .await?;
    let report = parse_report(&out.log)
        .map_err(|e| ProcessError::BadOutput(format!("loudness pass 1: {e}")))?;
    Ok(Some(plan(target, report.measured)))
}

/// What pass 1's measurement leads to.
pub fn plan(target: Target, m: Measured) -> Normalization {
    if !m.input_i.is_finite() || m.input_i < SILENCE_LUFS || !m.input_tp.is_finite() {
        return Normalization::not_applied(
            Status::Skipped,
            Some(target),
            format!(
                "the master's audio is silent (integrated loudness {} LUFS, below the {SILENCE_LUFS} LUFS gate): \
                 there is nothing to normalise",
                if m.input_i.is_finite() { format!("{:.1}", m.input_i) } else { "-inf".into() }
            ),
        );
    }
    let (mode, why) = expected_mode(&target, &m);
    Normalization {
        status: Status::Applied,
        reason: why,
        target: Some(target),
        before: Some(m),
        mode: Some(mode),
        mode_reported: false,
        filter: Some(pass2_filter(&target, &m)),
        after_rendition: None,
        after: None,
    }
}

/// Integrated loudness, range and true peak of a delivered file's first
/// audio stream (`ebur128`, audio only). None when it has no audio.
pub async fn measure_output(
    runner: &Runner,
    path: &Path,
    deadline: Duration,
) -> Result<Option<Loudness>, ProcessError> {
    let mut args = input_args(path, true);
    args.extend(
        [
            "-vn",
            "-sn",
            "-dn",
            "-map",
            "0:a:0",
            "-af",
            "ebur128=peak=true:framelog=verbose",
            "-f",
            "null",
            "-",
        ]
        .map(String::from),
    );
    let out = runner
        .ffmpeg(
            args,
            RunOptions::new("output loudness", deadline).untrusted(),
        )
        .await?;
    Ok(parse_log(&out.log, 0.0).loudness)
}

#[cfg(test)]
mod tests;
