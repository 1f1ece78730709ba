//! Quality and TTL policy: what a master must be to count as arrived, and
//! what a rendition must measure to be published. Pure functions over
//! measurements, so every rule is unit-tested without ffmpeg.

use crate::config::{PolicySettings, ProfileSettings};
use crate::media::analyze::{ContentAnalysis, Loudness, Run};
use crate::media::ladder::h264_level;
use crate::media::loudness::{Normalization, Status};
use crate::media::probe::{Probe, VideoStream};
use crate::media::profile::OutputKind;
use crate::runware::{GenerationRequest, OutputFormat};
use serde::{Deserialize, Serialize};

/// What the request says the master must be.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Expected {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_secs: Option<f64>,
    pub audio: bool,
    pub format: OutputFormat,
}

impl Expected {
    pub fn from_request(req: &GenerationRequest) -> Self {
        let (width, height) = match req.dimensions() {
            Some((w, h)) => (Some(w), Some(h)),
            None => (None, None),
        };
        Expected {
            width,
            height,
            duration_secs: req.effective_duration().map(f64::from),
            audio: req.sound(),
            format: req.effective_output_format(),
        }
    }
}

/// Compares the probed master with the request. Empty when it matches;
/// otherwise one plain sentence per mismatch.
pub fn master_mismatches(
    probe: &Probe,
    expected: &Expected,
    duration_tolerance_secs: f64,
) -> Vec<String> {
    let mut out = Vec::new();
    let Some(video) = &probe.video else {
        out.push("the master has no video stream".to_string());
        return out;
    };
    let container_ok = match expected.format {
        OutputFormat::Mp4 => probe.format_name.contains("mp4"),
        OutputFormat::Mov => probe.format_name.contains("mov"),
        OutputFormat::Webm => {
            probe.format_name.contains("webm") || probe.format_name.contains("matroska")
        }
    };
    if !container_ok {
        out.push(format!(
            "container is {} but outputFormat {} was requested",
            probe.format_name,
            expected.format.as_str()
        ));
    }
    let codec_ok = match expected.format {
        OutputFormat::Mp4 | OutputFormat::Mov => matches!(video.codec.as_str(), "h264" | "hevc"),
        OutputFormat::Webm => matches!(video.codec.as_str(), "vp9" | "vp8" | "av1"),
    };
    if !codec_ok {
        out.push(format!(
            "video codec {} does not fit outputFormat {}",
            video.codec,
            expected.format.as_str()
        ));
    }
    if let (Some(w), Some(h)) = (expected.width, expected.height) {
        if video.width != w || video.height != h {
            out.push(format!(
                "resolution is {}x{} but {}x{} was requested",
                video.width, video.height, w, h
            ));
        }
    }
    if let Some(d) = expected.duration_secs {
        if (probe.duration_secs - d).abs() > duration_tolerance_secs {
            out.push(format!(
                "duration is {:.2} s but {} s was requested (tolerance {} s)",
                probe.duration_secs, d, duration_tolerance_secs
            ));
        }
    }
    match (expected.audio, probe.audio.is_some()) {
        (true, false) => out.push("sound was requested but the master has no audio track".into()),
        (false, true) => {
            out.push("sound was not requested but the master has an audio track".into())
        }
        _ => {}
    }
    out
}

/// Minimum SSIM a rendition must reach for a request's `outputQuality`:
/// linear and monotonic from `at_min` (quality 20) to `at_max` (quality 99).
pub fn ssim_floor(output_quality: u32, at_min: f64, at_max: f64) -> f64 {
    let q = output_quality.clamp(20, 99) as f64;
    at_min + (at_max - at_min) * (q - 20.0) / 79.0
}

/// Seconds of the asset's life left at `now_ms`, counted from arrival.
pub fn ttl_remaining_secs(arrived_at_ms: i64, ttl_secs: i64, now_ms: i64) -> i64 {
    (arrived_at_ms + ttl_secs * 1000 - now_ms).div_euclid(1000)
}

/// One rule applied to one subject, with the numbers behind the verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Check {
    pub subject: String,
    pub rule: String,
    pub threshold: String,
    pub measured: String,
    pub passed: bool,
    /// Plain words, set when the check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Check {
    pub fn new(
        subject: &str,
        rule: &str,
        threshold: impl Into<String>,
        measured: impl Into<String>,
        passed: bool,
        reason: impl FnOnce() -> String,
    ) -> Self {
        Check {
            subject: subject.to_string(),
            rule: rule.to_string(),
            threshold: threshold.into(),
            measured: measured.into(),
            passed,
            reason: (!passed).then(reason),
        }
    }
}

/// What was measured of one rendition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenditionMeasure {
    pub name: String,
    pub expected_width: u32,
    pub expected_height: u32,
    /// The rung's VBV cap, kbps.
    #[serde(default)]
    pub max_bitrate_kbps: Option<u32>,
    /// The rung's VBV buffer, kbits.
    #[serde(default)]
    pub vbv_bufsize_kbps: Option<u32>,
    /// The band's low end: the average video bitrate must reach it.
    #[serde(default)]
    pub min_bitrate_kbps: Option<u32>,
    /// mp4: H.264 + AAC 48 kHz stereo, moov first; webm: VP9 + Opus.
    #[serde(default)]
    pub kind: OutputKind,
    pub probe: Probe,
    pub ssim: f64,
    pub psnr: f64,
    /// Mean VMAF, when the installed ffmpeg could measure it.
    #[serde(default)]
    pub vmaf: Option<f64>,
    pub moov_first: bool,
    pub size_bytes: u64,
    /// The H.264 profile the plan asked for ("high"), when H.264.
    #[serde(default)]
    pub expected_profile: Option<String>,
    /// The H.264 level the plan asked for ("4.0").
    #[serde(default)]
    pub expected_level: Option<String>,
}

/// A profile's loudness requirement (ATSC A/85, EBU R128...).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct LoudnessRule {
    pub target_lufs: f64,
    pub tolerance_lu: f64,
    pub true_peak_max_dbtp: Option<f64>,
    /// The audio is normalised to the target before delivery (and the
    /// delivered audio is judged); false: the master's own loudness is.
    #[serde(default)]
    pub normalize: bool,
}

/// Every threshold the verdict uses, resolved from the settings and the
/// request's profile, so the report can show what was applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rules {
    pub ssim_floor: f64,
    pub duration_tolerance_secs: f64,
    pub edge_secs: f64,
    pub max_black_secs: f64,
    pub max_freeze_secs: f64,
    pub max_silence_secs: f64,
    pub min_master_bits_per_pixel: f64,
    pub bitrate_tolerance: f64,
    pub loudness: Option<LoudnessRule>,
}

impl Rules {
    pub fn new(
        policy: &PolicySettings,
        profile: Option<&ProfileSettings>,
        output_quality: u32,
    ) -> Self {
        Rules {
            ssim_floor: ssim_floor(
                output_quality,
                policy.ssim_floor_at_min,
                policy.ssim_floor_at_max,
            ),
            duration_tolerance_secs: policy.duration_tolerance_secs,
            edge_secs: policy.edge_secs,
            max_black_secs: policy.max_black_secs,
            max_freeze_secs: policy.max_freeze_secs,
            max_silence_secs: policy.max_silence_secs,
            min_master_bits_per_pixel: policy.min_master_bits_per_pixel,
            bitrate_tolerance: policy.bitrate_tolerance,
            loudness: profile.and_then(|p| {
                p.loudness_target_lufs.map(|target_lufs| LoudnessRule {
                    target_lufs,
                    tolerance_lu: p.loudness_tolerance_lu,
                    true_peak_max_dbtp: p.true_peak_max_dbtp,
                    normalize: p.normalizes_loudness(),
                })
            }),
        }
    }
}

/// A request's own QC thresholds. They may only make the profile stricter:
/// a floor can be raised, a maximum lowered, never the other way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QcOverrides {
    pub min_ssim: Option<f64>,
    pub max_black_secs: Option<f64>,
    pub max_freeze_secs: Option<f64>,
    pub max_silence_secs: Option<f64>,
    pub loudness_tolerance_lu: Option<f64>,
}

impl QcOverrides {
    /// Checks the values' ranges; each error is (field, rule).
    pub fn validate(&self) -> Vec<(&'static str, String)> {
        let mut errs = Vec::new();
        let mut range = |name: &'static str, v: Option<f64>, lo: f64, hi: f64| {
            if let Some(x) = v {
                if !(lo..=hi).contains(&x) || x.is_nan() {
                    errs.push((name, format!("must be between {lo} and {hi}")));
                }
            }
        };
        range("minSsim", self.min_ssim, 0.5, 0.999);
        range("maxBlackSecs", self.max_black_secs, 0.0, 10.0);
        range("maxFreezeSecs", self.max_freeze_secs, 0.0, 10.0);
        range("maxSilenceSecs", self.max_silence_secs, 0.0, 10.0);
        range("loudnessToleranceLu", self.loudness_tolerance_lu, 0.1, 5.0);
        errs
    }

    /// Applies the overrides where they are stricter than the rules.
    pub fn apply(&self, rules: &mut Rules) {
        if let Some(v) = self.min_ssim {
            rules.ssim_floor = rules.ssim_floor.max(v);
        }
        let lower = |cur: &mut f64, v: Option<f64>| {
            if let Some(v) = v {
                *cur = cur.min(v);
            }
        };
        lower(&mut rules.max_black_secs, self.max_black_secs);
        lower(&mut rules.max_freeze_secs, self.max_freeze_secs);
        lower(&mut rules.max_silence_secs, self.max_silence_secs);
        if let (Some(l), Some(t)) = (rules.loudness.as_mut(), self.loudness_tolerance_lu) {
            l.tolerance_lu = l.tolerance_lu.min(t);
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QcReport {
    pub verdict: Verdict,
    pub output_quality: u32,
    pub ssim_floor: f64,
    pub ttl_remaining_secs: i64,
    #[serde(default)]
    pub profile: String,
    #[serde(default)]
    pub rules: Option<Rules>,
    /// What the master's content analysis found (black, freeze, silence, loudness).
    #[serde(default)]
    pub content: Option<ContentAnalysis>,
    /// Loudness normalisation: the master before (pass 1), the mode
    /// `loudnorm` ran in, the delivered audio after. Absent when the
    /// profile has no loudness target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness_normalization: Option<Normalization>,
    /// Whether VMAF was measured (the installed ffmpeg has `libvmaf`). It is
    /// never required.
    #[serde(default)]
    pub vmaf_available: bool,
    pub renditions: Vec<RenditionMeasure>,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

impl QcReport {
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// One line naming every failed check, for the variation's `reason`.
    pub fn summary(&self) -> String {
        let reasons: Vec<String> = self
            .failures()
            .map(|c| format!("{}: {}", c.subject, c.reason.clone().unwrap_or_default()))
            .collect();
        if reasons.is_empty() {
            "all checks passed".into()
        } else {
            reasons.join("; ")
        }
    }
}

/// Everything the verdict is made from.
pub struct QcInput<'a> {
    pub profile: &'a str,
    pub master: &'a Probe,
    pub expected: &'a Expected,
    pub content: Option<&'a ContentAnalysis>,
    pub renditions: Vec<RenditionMeasure>,
    pub output_quality: u32,
    pub rules: Rules,
    pub ttl_remaining_secs: i64,
    /// What loudness normalisation did, with the delivered audio measured.
    pub normalization: Option<&'a Normalization>,
    pub vmaf_available: bool,
}

/// Two frame rates are the same rate within this, fps.
pub const FPS_TOLERANCE: f64 = 0.01;
/// A stream is constant-rate when its average rate is within this fraction of its base rate.
pub const CFR_TOLERANCE: f64 = 0.01;

/// Whether a video stream is constant frame rate: (what was measured,
/// constant). From avg vs r_frame_rate, else the frame count against
/// duration x rate. None when neither can be told.
pub fn constant_frame_rate(v: &VideoStream, duration_secs: f64) -> Option<(String, bool)> {
    match (v.avg_frame_rate, v.r_frame_rate) {
        (Some(avg), Some(base)) if base > 0.0 => Some((
            format!("average {avg:.3} fps, base {base:.3} fps"),
            (avg - base).abs() <= base * CFR_TOLERANCE,
        )),
        _ => {
            let n = v.nb_frames? as f64;
            let fps = v.native_fps();
            (fps > 0.0 && duration_secs > 0.0).then(|| {
                let expected = duration_secs * fps;
                (
                    format!("{n} frames in {duration_secs:.3} s at {fps:.3} fps"),
                    (n - expected).abs() <= (expected * CFR_TOLERANCE).max(2.0),
                )
            })
        }
    }
}

/// "4.0" -> 40, "3.1" -> 31, "1b" -> 9 (as ffprobe reports level_idc).
pub fn level_idc(level: &str) -> Option<i32> {
    if level.eq_ignore_ascii_case("1b") {
        return Some(9);
    }
    let (major, minor) = level.split_once('.').unwrap_or((level, "0"));
    Some(major.trim().parse::<i32>().ok()? * 10 + minor.trim().parse::<i32>().ok()?)
}

fn level_name(idc: i32) -> String {
    if idc == 9 {
        "1b".into()
    } else {
        format!("{}.{}", idc / 10, idc % 10)
    }
}

/// x264's profile name against ffprobe's ("high" / "High", "baseline" /
/// "Constrained Baseline").
fn same_h264_profile(probed: &str, asked: &str) -> bool {
    let p = probed.to_ascii_lowercase();
    let a = asked.to_ascii_lowercase();
    p == a || (a == "baseline" && p == "constrained baseline")
}

/// Loudness and true-peak checks of one measurement. `normalized`: the
/// audio was normalised, so the words name the master's measurement too.
fn loudness_checks(
    checks: &mut Vec<Check>,
    subject: &str,
    l: &Loudness,
    rule: &LoudnessRule,
    profile: &str,
    normalized: Option<&Normalization>,
) {
    let off = (l.integrated_lufs - rule.target_lufs).abs();
    let dir = if l.integrated_lufs > rule.target_lufs {
        "too loud"
    } else {
        "too quiet"
    };
    let before = normalized.and_then(|n| n.before);
    let how = normalized
        .and_then(|n| n.mode)
        .map(|m| format!(" in {} mode", m.as_str()))
        .unwrap_or_default();
    checks.push(Check::new(
        subject,
        "loudness",
        format!("{} LUFS +/- {} LU", rule.target_lufs, rule.tolerance_lu),
        format!("{:.1} LUFS", l.integrated_lufs),
        off <= rule.tolerance_lu,
        || match before {
            Some(b) => format!(
                "still {dir} after normalisation: the delivered audio measures {:.1} LUFS \
                 (the master measured {:.1} LUFS and was normalised once{how}); \
                 profile {profile} wants {} +/- {} LU",
                l.integrated_lufs, b.input_i, rule.target_lufs, rule.tolerance_lu
            ),
            None => format!(
                "{dir}: integrated loudness {:.1} LUFS, profile {profile} wants {} +/- {} LU",
                l.integrated_lufs, rule.target_lufs, rule.tolerance_lu
            ),
        },
    ));
    if let Some(cap) = rule.true_peak_max_dbtp {
        checks.push(Check::new(
            subject,
            "true_peak",
            format!("<= {cap} dBTP"),
            format!("{:.1} dBTP", l.true_peak_dbtp),
            l.true_peak_dbtp <= cap,
            || match before {
                Some(b) => format!(
                    "true peak {:.1} dBTP after normalisation is over the cap of {cap} dBTP \
                     (the master peaked at {:.1} dBTP)",
                    l.true_peak_dbtp, b.input_tp
                ),
                None => format!(
                    "true peak {:.1} dBTP is over the cap of {cap} dBTP (clipping risk)",
                    l.true_peak_dbtp
                ),
            },
        ));
    }
}

fn runs(r: &[Run]) -> String {
    if r.is_empty() {
        return "none".into();
    }
    r.iter()
        .map(|r| format!("{:.2}-{:.2} s", r.start, r.end))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Head, tail and length checks for one detector's runs.
fn run_checks(
    checks: &mut Vec<Check>,
    what: &str,
    found: &[Run],
    duration: f64,
    edge: f64,
    max: f64,
) {
    let head = found.iter().find(|r| r.start <= edge);
    checks.push(Check::new(
        "master",
        &format!("{what}_head"),
        "none at the head",
        runs(
            &found
                .iter()
                .filter(|r| r.start <= edge)
                .copied()
                .collect::<Vec<_>>(),
        ),
        head.is_none(),
        || {
            format!(
                "the master opens on {:.2} s of {what} (no {what} lead-in allowed)",
                head.map(Run::duration).unwrap_or(0.0)
            )
        },
    ));
    let tail = found.iter().find(|r| r.end >= duration - edge);
    checks.push(Check::new(
        "master",
        &format!("{what}_tail"),
        "none at the tail",
        runs(
            &found
                .iter()
                .filter(|r| r.end >= duration - edge)
                .copied()
                .collect::<Vec<_>>(),
        ),
        tail.is_none(),
        || {
            format!(
                "the master ends on {:.2} s of {what}",
                tail.map(Run::duration).unwrap_or(0.0)
            )
        },
    ));
    let long = found.iter().find(|r| r.duration() > max);
    checks.push(Check::new(
        "master",
        &format!("{what}_max"),
        format!("no run over {max} s"),
        runs(found),
        long.is_none(),
        || {
            let r = long.copied().unwrap_or(Run {
                start: 0.0,
                end: 0.0,
            });
            format!(
                "{:.2} s of {what} from {:.2} s to {:.2} s (max {max} s)",
                r.duration(),
                r.start,
                r.end
            )
        },
    ));
}

/// Applies the policy to the master's content and every rendition.
pub fn evaluate(input: QcInput<'_>) -> QcReport {
    let QcInput {
        profile,
        master,
        expected,
        content,
        renditions,
        output_quality,
        rules,
        ttl_remaining_secs,
        normalization,
        vmaf_available,
    } = input;
    let normalized = normalization.filter(|n| n.status == Status::Applied);
    let ssim_floor = rules.ssim_floor;
    let mut checks = Vec::new();

    // The master: length, compression, and what its content analysis found.
    if let Some(d) = expected.duration_secs {
        let off = (master.duration_secs - d).abs();
        checks.push(Check::new(
            "master",
            "duration",
            format!("{d} s +/- {}", rules.duration_tolerance_secs),
            format!("{:.3} s", master.duration_secs),
            off <= rules.duration_tolerance_secs,
            || {
                format!(
                    "duration {:.2} s differs from the requested {d} s",
                    master.duration_secs
                )
            },
        ));
    }
    if let (Some(v), Some(bits)) = (&master.video, master.bit_rate) {
        let bpp = bits as f64 / (v.width as f64 * v.height as f64 * v.fps.max(1.0));
        checks.push(Check::new(
            "master",
            "compression",
            format!(">= {} bits/pixel", rules.min_master_bits_per_pixel),
            format!("{bpp:.4} bits/pixel"),
            bpp >= rules.min_master_bits_per_pixel,
            || format!("the master is too heavily compressed to deliver from ({bpp:.4} bits per pixel, {} kbps)", bits / 1000),
        ));
    }
    if let Some(c) = content {
        let d = master.duration_secs;
        run_checks(
            &mut checks,
            "black",
            &c.black,
            d,
            rules.edge_secs,
            rules.max_black_secs,
        );
        run_checks(
            &mut checks,
            "freeze",
            &c.freeze,
            d,
            rules.edge_secs,
            rules.max_freeze_secs,
        );
        if expected.audio {
            let long = c
                .silence
                .iter()
                .find(|r| r.duration() > rules.max_silence_secs);
            checks.push(Check::new(
                "master",
                "silence_max",
                format!("no run over {} s", rules.max_silence_secs),
                runs(&c.silence),
                long.is_none(),
                || {
                    let r = long.copied().unwrap_or(Run {
                        start: 0.0,
                        end: 0.0,
                    });
                    format!(
                        "sound was requested but {:.2} s is silent from {:.2} s to {:.2} s",
                        r.duration(),
                        r.start,
                        r.end
                    )
                },
            ));
        }
        if let (Some(rule), None) = (&rules.loudness, normalized) {
            match &c.loudness {
                Some(l) => loudness_checks(&mut checks, "master", l, rule, profile, None),
                None if expected.audio => checks.push(Check::new(
                    "master",
                    "loudness",
                    "measured",
                    "no audio",
                    false,
                    || {
                        "the profile sets a loudness target but the master has no measurable audio"
                            .into()
                    },
                )),
                None => {}
            }
        }
    }
    // Normalised audio: what is delivered is judged (the master's own
    // measurement stays in `content` and in the normalisation record).
    if let (Some(rule), Some(n)) = (&rules.loudness, normalized) {
        let subject = n.after_rendition.as_deref().unwrap_or("renditions");
        match &n.after {
            Some(l) => loudness_checks(&mut checks, subject, l, rule, profile, Some(n)),
            None => checks.push(Check::new(
                subject,
                "loudness",
                "measured",
                "no audio",
                false,
                || "the audio was normalised but the delivered file has no measurable audio".into(),
            )),
        }
    }

    let frame = master
        .video
        .as_ref()
        .map(|v| 1.0 / v.fps.max(1.0))
        .unwrap_or(0.05);
    for r in &renditions {
        let s = r.name.as_str();
        checks.push(Check::new(
            s,
            "ssim_floor",
            format!(">= {ssim_floor:.4}"),
            format!("{:.4}", r.ssim),
            r.ssim >= ssim_floor,
            || format!("SSIM {:.4} is below the floor {ssim_floor:.4} for outputQuality {output_quality}", r.ssim),
        ));
        match &r.probe.video {
            Some(v) => {
                // The codec only: the H.264 profile and level are judged
                // against the plan by `h264_checks`.
                let want = if r.kind == OutputKind::Webm {
                    "vp9"
                } else {
                    "h264"
                };
                let ok = v.codec == want;
                checks.push(Check::new(
                    s,
                    "video_codec",
                    want,
                    v.codec.clone(),
                    ok,
                    || format!("video is {}, not {want}", v.codec),
                ));
                checks.push(Check::new(
                    s,
                    "resolution",
                    format!("{}x{}", r.expected_width, r.expected_height),
                    format!("{}x{}", v.width, v.height),
                    v.width == r.expected_width && v.height == r.expected_height,
                    || format!("resolution is {}x{}", v.width, v.height),
                ));
                rate_checks(&mut checks, s, v, master, r.probe.duration_secs);
                h264_checks(&mut checks, r, v);
            }
            None => checks.push(Check::new(
                s,
                "video_stream",
                "present",
                "absent",
                false,
                || "the rendition has no video stream".into(),
            )),
        }
        let dd = (r.probe.duration_secs - master.duration_secs).abs();
        checks.push(Check::new(
            s,
            "duration",
            format!("{:.3} s +/- {:.3}", master.duration_secs, frame * 1.5),
            format!("{:.3} s", r.probe.duration_secs),
            dd <= frame * 1.5,
            || {
                format!(
                    "duration {:.3} s differs from the master's {:.3} s",
                    r.probe.duration_secs, master.duration_secs
                )
            },
        ));
        if let (Some(cap), Some(bits)) = (r.max_bitrate_kbps, r.probe.bit_rate) {
            // VBV bounds the video over any window T to maxrate*T + bufsize,
            // so a short clip may average above maxrate by bufsize/duration.
            let secs = r.probe.duration_secs.max(0.1);
            let allowance = r.vbv_bufsize_kbps.map(|b| b as f64 / secs).unwrap_or(0.0);
            let limit = (cap as f64 + allowance) * rules.bitrate_tolerance;
            let audio = r.probe.audio.as_ref().and_then(|a| a.bit_rate).unwrap_or(0);
            let kbps = bits.saturating_sub(audio) as f64 / 1000.0;
            checks.push(Check::new(
                s,
                "bitrate",
                format!("video <= {limit:.0} kbps"),
                format!("video {kbps:.0} kbps"),
                kbps <= limit,
                || format!("average video bitrate {kbps:.0} kbps is over the rung's VBV bound ({limit:.0} kbps)"),
            ));
        }
        if let (Some(min), Some(bits)) = (r.min_bitrate_kbps, r.probe.bit_rate) {
            // The band's low end (buyers reject low bitrates): the average
            // video bitrate, with the same tolerance the cap gets.
            let floor = min as f64 / rules.bitrate_tolerance;
            let audio = r.probe.audio.as_ref().and_then(|a| a.bit_rate).unwrap_or(0);
            let kbps = bits.saturating_sub(audio) as f64 / 1000.0;
            checks.push(Check::new(
                s,
                "bitrate_min",
                format!("video >= {floor:.0} kbps"),
                format!("video {kbps:.0} kbps"),
                kbps >= floor,
                || format!("average video bitrate {kbps:.0} kbps is under the rung's band ({min} kbps)"),
            ));
        }
        if master.audio.is_some() {
            let codec = if r.kind == OutputKind::Webm {
                "opus"
            } else {
                "aac"
            };
            let ok =
                r.probe.audio.as_ref().is_some_and(|a| {
                    a.codec == codec && a.sample_rate == 48_000 && a.channels == 2
                });
            checks.push(Check::new(
                s,
                "audio",
                format!("{codec} 48000 Hz stereo"),
                r.probe
                    .audio
                    .as_ref()
                    .map(|a| format!("{} {} Hz {} ch", a.codec, a.sample_rate, a.channels))
                    .unwrap_or_else(|| "none".into()),
                ok,
                || format!("audio is not {codec} 48 kHz stereo"),
            ));
        }
        if r.kind == OutputKind::Mp4 {
            checks.push(Check::new(
                s,
                "moov_first",
                "moov before mdat",
                if r.moov_first { "yes" } else { "no" },
                r.moov_first,
                || "the moov atom is not at the front (not web optimized)".into(),
            ));
        }
    }
    checks.push(Check::new(
        "asset",
        "ttl",
        "> 0 s remaining",
        format!("{ttl_remaining_secs} s"),
        ttl_remaining_secs > 0,
        || "the asset's ttl ran out before it could be published".into(),
    ));
    if renditions.is_empty() {
        checks.push(Check::new(
            "asset",
            "renditions",
            ">= 1",
            "0",
            false,
            || "no rendition was produced".into(),
        ));
    }
    let verdict = if checks.iter().all(|c| c.passed) {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    QcReport {
        verdict,
        output_quality,
        ssim_floor,
        ttl_remaining_secs,
        profile: profile.to_string(),
        rules: Some(rules),
        content: content.cloned(),
        loudness_normalization: normalization.cloned(),
        vmaf_available,
        renditions,
        checks,
    }
}

/// The master's native frame rate kept, at a constant rate.
fn rate_checks(checks: &mut Vec<Check>, s: &str, v: &VideoStream, master: &Probe, secs: f64) {
    let rate = v.native_fps();
    if let Some(native) = master
        .video
        .as_ref()
        .map(VideoStream::native_fps)
        .filter(|f| *f > 0.0)
    {
        checks.push(Check::new(
            s,
            "frame_rate",
            format!("{native:.3} fps (the master's native rate)"),
            format!("{rate:.3} fps"),
            (rate - native).abs() <= FPS_TOLERANCE,
            || format!("frame rate {rate:.3} fps is not the master's native {native:.3} fps"),
        ));
    }
    if let Some((measured, constant)) = constant_frame_rate(v, secs) {
        checks.push(Check::new(
            s,
            "constant_frame_rate",
            format!("constant (within {}%)", CFR_TOLERANCE * 100.0),
            measured.clone(),
            constant,
            || format!("the frame rate is not constant ({measured}); buyers require CFR"),
        ));
    }
}

/// An H.264 rendition has the profile and level its plan asked for, and the
/// level is at least what its size, rate and bitrate cap need.
fn h264_checks(checks: &mut Vec<Check>, r: &RenditionMeasure, v: &VideoStream) {
    if v.codec != "h264" {
        return;
    }
    let s = r.name.as_str();
    // Rows measured before plans recorded a profile asked for High.
    let want = r.expected_profile.as_deref().unwrap_or("high");
    let got = v.profile.clone().unwrap_or_else(|| "unknown".into());
    checks.push(Check::new(
        s,
        "h264_profile",
        want,
        got.clone(),
        same_h264_profile(&got, want),
        || format!("H.264 profile is {got}, the plan asked for {want}"),
    ));
    if let Some(want) = &r.expected_level {
        let fps = v.native_fps();
        let cap = r.max_bitrate_kbps.unwrap_or(0);
        let needed = h264_level(v.width, v.height, fps, cap);
        let got = v.level;
        let (want_idc, needed_idc) = (level_idc(want), level_idc(&needed));
        let got_text = got.map(level_name).unwrap_or_else(|| "unknown".into());
        let matches = got.is_some() && got == want_idc;
        let enough = matches!((got, needed_idc), (Some(g), Some(n)) if g >= n);
        checks.push(Check::new(
            s,
            "h264_level",
            format!("{want} (at least {needed})"),
            got_text.clone(),
            matches && enough,
            || {
                if matches {
                    format!(
                        "H.264 level {got_text} is below the {needed} that {}x{} at {fps:.3} fps and {cap} kbps need",
                        v.width, v.height
                    )
                } else {
                    format!("H.264 level is {got_text}, the plan asked for {want}")
                }
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssim_floor_is_monotonic_and_spans_the_configured_range() {
        assert!((ssim_floor(20, 0.8, 0.95) - 0.8).abs() < 1e-9);
        assert!((ssim_floor(99, 0.8, 0.95) - 0.95).abs() < 1e-9);
        let mut last = 0.0;
        for q in 20..=99u32 {
            let f = ssim_floor(q, 0.8, 0.95);
            assert!(f >= last, "floor fell at quality {q}");
            last = f;
        }
        // Out-of-range inputs are clamped, not extrapolated.
        assert_eq!(ssim_floor(5, 0.8, 0.95), ssim_floor(20, 0.8, 0.95));
    }

    #[test]
    fn ttl_remaining_counts_from_arrival() {
        assert_eq!(ttl_remaining_secs(0, 60, 0), 60);
        assert_eq!(ttl_remaining_secs(0, 60, 59_000), 1);
        assert_eq!(ttl_remaining_secs(0, 60, 60_000), 0);
        assert!(ttl_remaining_secs(0, 60, 61_000) < 0);
    }

    fn probe(duration: f64, total_kbps: u64, audio_kbps: Option<u64>) -> Probe {
        serde_json::from_value(serde_json::json!({
            "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
            "duration_secs": duration,
            "size_bytes": 1,
            "bit_rate": total_kbps * 1000,
            "video": {"codec": "h264", "profile": "High", "level": 40, "width": 1920, "height": 1080,
                      "pix_fmt": "yuv420p", "fps": 24.0, "nb_frames": null},
            "audio": audio_kbps.map(|k| serde_json::json!({"codec": "aac", "sample_rate": 48000, "channels": 2,
                      "channel_layout": "stereo", "bit_rate": k * 1000})),
        }))
        .unwrap()
    }

    fn rendition(p: Probe) -> RenditionMeasure {
        RenditionMeasure {
            name: "1080p".into(),
            expected_width: 1920,
            expected_height: 1080,
            max_bitrate_kbps: Some(8000),
            vbv_bufsize_kbps: Some(16000),
            min_bitrate_kbps: Some(4000),
            kind: OutputKind::Mp4,
            probe: p,
            ssim: 0.99,
            psnr: 45.0,
            vmaf: None,
            moov_first: true,
            size_bytes: 1,
            expected_profile: Some("high".into()),
            expected_level: Some("4.0".into()),
        }
    }

    fn rules(loudness: Option<LoudnessRule>) -> Rules {
        Rules {
            ssim_floor: 0.9,
            duration_tolerance_secs: 0.5,
            edge_secs: 0.05,
            max_black_secs: 2.0,
            max_freeze_secs: 2.0,
            max_silence_secs: 2.0,
            min_master_bits_per_pixel: 0.0,
            bitrate_tolerance: 1.1,
            loudness,
        }
    }

    fn report(
        master: &Probe,
        r: RenditionMeasure,
        rules: Rules,
        content: Option<&ContentAnalysis>,
        normalization: Option<&Normalization>,
    ) -> QcReport {
        let expected = Expected {
            width: None,
            height: None,
            duration_secs: None,
            audio: master.audio.is_some(),
            format: OutputFormat::Mp4,
        };
        evaluate(QcInput {
            profile: "broadcast-us",
            master,
            expected: &expected,
            content,
            renditions: vec![r],
            output_quality: 80,
            rules,
            ttl_remaining_secs: 60,
            normalization,
            vmaf_available: false,
        })
    }

    fn check<'a>(report: &'a QcReport, rule: &str) -> Option<&'a Check> {
        report.checks.iter().find(|c| c.rule == rule)
    }

    fn bitrate_check(duration: f64, total_kbps: u64, audio_kbps: Option<u64>) -> Check {
        let master = probe(duration, 50_000, audio_kbps);
        let r = rendition(probe(duration, total_kbps, audio_kbps));
        let report = report(&master, r, rules(None), None, None);
        check(&report, "bitrate").unwrap().clone()
    }

    fn with_video(p: &Probe, f: impl FnOnce(&mut VideoStream)) -> Probe {
        let mut p = p.clone();
        f(p.video.as_mut().unwrap());
        p
    }

    #[test]
    fn a_rendition_keeps_the_masters_native_rate_at_a_constant_rate() {
        let master = with_video(&probe(10.0, 50_000, None), |v| {
            v.r_frame_rate = Some(24000.0 / 1001.0);
            v.avg_frame_rate = Some(24000.0 / 1001.0);
        });
        let judged = |f: &dyn Fn(&mut VideoStream)| {
            let r = rendition(with_video(&probe(10.0, 8_000, None), f));
            let rep = report(&master, r, rules(None), None, None);
            (
                check(&rep, "frame_rate").map(|c| c.passed),
                check(&rep, "constant_frame_rate").map(|c| (c.passed, c.reason.clone())),
            )
        };
        let (rate, cfr) = judged(&|v| {
            v.r_frame_rate = Some(24000.0 / 1001.0);
            v.avg_frame_rate = Some(23.976);
        });
        assert_eq!((rate, cfr.map(|c| c.0)), (Some(true), Some(true)));
        // 24 is not 23.976: the rate was changed.
        let (rate, _) = judged(&|v| {
            v.r_frame_rate = Some(24.0);
            v.avg_frame_rate = Some(24.0);
        });
        assert_eq!(rate, Some(false));
        // Variable: the average is far from the base rate.
        let (rate, cfr) = judged(&|v| {
            v.r_frame_rate = Some(24000.0 / 1001.0);
            v.avg_frame_rate = Some(21.5);
        });
        assert_eq!(rate, Some(true));
        let (constant, reason) = cfr.unwrap();
        assert!(!constant);
        assert!(reason.unwrap().contains("CFR"));
        // No average rate: the frame count against duration x rate decides.
        let count = |n: u64| {
            judged(&move |v: &mut VideoStream| {
                v.r_frame_rate = Some(24000.0 / 1001.0);
                v.avg_frame_rate = None;
                v.nb_frames = Some(n);
            })
            .1
            .map(|c| c.0)
        };
        assert_eq!(count(240), Some(true), "10 s at 23.976 is 239.8 frames");
        assert_eq!(count(200), Some(false));
        // Nothing to tell constancy by: no check rather than a guess.
        assert_eq!(
            judged(&|v| {
                v.avg_frame_rate = None;
                v.nb_frames = None;
            })
            .1,
            None
        );
    }

    #[test]
    fn h264_profile_and_level_are_what_the_plan_asked_and_enough_for_the_size() {
        let master = probe(10.0, 50_000, None);
        let judged = |level: i32, asked: &str, profile: &str| {
            let mut r = rendition(with_video(&probe(10.0, 8_000, None), |v| {
                v.level = Some(level);
                v.profile = Some(profile.into());
                v.r_frame_rate = Some(24.0);
            }));
            r.expected_level = Some(asked.into());
            r.expected_profile = Some(
                if profile.contains("Baseline") {
                    "baseline"
                } else {
                    "high"
                }
                .into(),
            );
            let rep = report(&master, r, rules(None), None, None);
            let l = check(&rep, "h264_level").unwrap().clone();
            let p = check(&rep, "h264_profile").unwrap().clone();
            (l, p)
        };
        let (l, p) = judged(40, "4.0", "High");
        assert!(l.passed && p.passed, "{l:?} {p:?}");
        assert_eq!(l.measured, "4.0");
        let (l, _) = judged(31, "4.0", "High");
        assert!(!l.passed);
        assert!(l.reason.unwrap().contains("asked for 4.0"));
        // The plan itself asked too little for 1920x1080 at 8 Mbps.
        let (l, _) = judged(30, "3.0", "High");
        assert!(!l.passed);
        assert!(l.reason.unwrap().contains("below the 4.0"), "needs 4.0");
        let (_, p) = judged(30, "3.0", "Constrained Baseline");
        assert!(
            p.passed,
            "x264's baseline is ffprobe's Constrained Baseline"
        );
        let (_, p) = judged(40, "4.0", "Main");
        assert!(!p.passed);
        // Not H.264: not judged by these rules.
        let mut vp9 = rendition(with_video(&probe(10.0, 8_000, None), |v| {
            v.codec = "vp9".into()
        }));
        vp9.expected_level = Some("4.0".into());
        let rep = report(&master, vp9, rules(None), None, None);
        assert!(check(&rep, "h264_level").is_none() && check(&rep, "h264_profile").is_none());
        assert_eq!(level_idc("3.1"), Some(31));
        assert_eq!(level_idc("5"), Some(50));
        assert_eq!(level_idc("1b"), Some(9));
        assert_eq!(level_idc("x"), None);
    }

    fn us_rule(normalize: bool) -> LoudnessRule {
        LoudnessRule {
            target_lufs: -24.0,
            tolerance_lu: 2.0,
            true_peak_max_dbtp: Some(-2.0),
            normalize,
        }
    }

    fn loud_master() -> ContentAnalysis {
        ContentAnalysis {
            duration_secs: 10.0,
            loudness: Some(Loudness {
                integrated_lufs: -6.1,
                range_lu: 0.0,
                true_peak_dbtp: -5.1,
            }),
            ..Default::default()
        }
    }

    fn normalised(after_lufs: f64, after_tp: f64) -> Normalization {
        use crate::media::loudness::{plan, Measured, Target};
        let mut n = plan(
            Target::for_profile(-24.0, Some(-2.0)),
            Measured {
                input_i: -6.06,
                input_tp: -5.1,
                input_lra: 0.0,
                input_thresh: -16.06,
                target_offset: 0.04,
            },
        );
        n.after_rendition = Some("1080p".into());
        n.after = Some(Loudness {
            integrated_lufs: after_lufs,
            range_lu: 0.0,
            true_peak_dbtp: after_tp,
        });
        n
    }

    #[test]
    fn normalised_audio_is_judged_on_the_delivered_file_and_the_master_stays_in_the_report() {
        let master = probe(10.0, 50_000, Some(192));
        let r = || rendition(probe(10.0, 8_000, Some(192)));
        let content = loud_master();
        let n = normalised(-23.9, -22.9);
        let rep = report(
            &master,
            r(),
            rules(Some(us_rule(true))),
            Some(&content),
            Some(&n),
        );
        let l = check(&rep, "loudness").unwrap();
        assert_eq!((l.subject.as_str(), l.passed), ("1080p", true), "{l:?}");
        assert!(check(&rep, "true_peak").unwrap().passed);
        assert!(!rep
            .checks
            .iter()
            .any(|c| c.subject == "master" && c.rule == "loudness"));
        let recorded = rep.loudness_normalization.as_ref().unwrap();
        assert_eq!(recorded.before.unwrap().input_i, -6.06);
        assert_eq!(recorded.after.unwrap().integrated_lufs, -23.9);
        assert_eq!(rep.content.unwrap().loudness.unwrap().integrated_lufs, -6.1);
        let json = serde_json::to_value(&rep.loudness_normalization).unwrap();
        assert_eq!(json["status"], "applied");
        assert_eq!(json["mode"], "dynamic");

        // Normalised once and still off: rejected, in words, with both numbers.
        let n = normalised(-19.0, -1.0);
        let rep = report(
            &master,
            r(),
            rules(Some(us_rule(true))),
            Some(&content),
            Some(&n),
        );
        let l = check(&rep, "loudness").unwrap();
        assert!(!l.passed);
        let why = l.reason.clone().unwrap();
        assert!(why.contains("still too loud after normalisation"), "{why}");
        assert!(
            why.contains("-19.0 LUFS") && why.contains("-6.1 LUFS"),
            "{why}"
        );
        let tp = check(&rep, "true_peak").unwrap();
        assert!(!tp.passed);
        assert!(tp.reason.clone().unwrap().contains("after normalisation"));
        assert_eq!(rep.verdict, Verdict::Fail);

        // Normalisation off (or skipped): the master is judged, as before.
        let mut off = normalised(-23.9, -22.9);
        off.status = Status::Disabled;
        for n in [Some(&off), None] {
            let rep = report(&master, r(), rules(Some(us_rule(false))), Some(&content), n);
            let l = check(&rep, "loudness").unwrap();
            assert_eq!((l.subject.as_str(), l.passed), ("master", false));
            assert!(l.reason.clone().unwrap().starts_with("too loud"));
        }

        // Normalised, but the delivered file had no audio to measure.
        let mut mute = normalised(-24.0, -23.0);
        mute.after = None;
        let rep = report(
            &master,
            r(),
            rules(Some(us_rule(true))),
            Some(&content),
            Some(&mute),
        );
        assert!(!check(&rep, "loudness").unwrap().passed);
    }

    #[test]
    fn the_band_floor_checks_video_bitrate_and_webm_is_judged_as_vp9_opus() {
        let master = probe(10.0, 50_000, Some(192));
        let measure = |total: u64, kind: OutputKind, codec: &str, audio: &str| {
            let mut p = probe(10.0, total, Some(192));
            p.video.as_mut().unwrap().codec = codec.into();
            p.audio.as_mut().unwrap().codec = audio.into();
            RenditionMeasure {
                name: "r".into(),
                expected_width: 1920,
                expected_height: 1080,
                max_bitrate_kbps: Some(10_000),
                vbv_bufsize_kbps: Some(20_000),
                min_bitrate_kbps: Some(4000),
                kind,
                expected_profile: None,
                expected_level: None,
                probe: p,
                ssim: 0.99,
                psnr: 45.0,
                vmaf: None,
                moov_first: false,
                size_bytes: 1,
            }
        };
        let run = |r: RenditionMeasure| {
            let expected = Expected {
                width: None,
                height: None,
                duration_secs: None,
                audio: true,
                format: OutputFormat::Mp4,
            };
            let rules = Rules {
                ssim_floor: 0.9,
                duration_tolerance_secs: 0.5,
                edge_secs: 0.05,
                max_black_secs: 2.0,
                max_freeze_secs: 2.0,
                max_silence_secs: 2.0,
                min_master_bits_per_pixel: 0.0,
                bitrate_tolerance: 1.1,
                loudness: None,
            };
            evaluate(QcInput {
                profile: "olv",
                master: &master,
                expected: &expected,
                content: None,
                renditions: vec![r],
                output_quality: 80,
                rules,
                ttl_remaining_secs: 60,
                normalization: None,
                vmaf_available: false,
            })
        };
        let failed = |report: &QcReport| -> Vec<String> {
            report.failures().map(|c| c.rule.clone()).collect()
        };
        // 1.1 Mbps of video in a 4-10 Mbps band: under the floor.
        let low = run(measure(1_100 + 192, OutputKind::Mp4, "h264", "aac"));
        assert_eq!(failed(&low), ["bitrate_min", "moov_first"]);
        let ok = run(measure(6_000 + 192, OutputKind::Webm, "vp9", "opus"));
        assert_eq!(failed(&ok), Vec::<String>::new(), "no moov check for WebM");
        let wrong = run(measure(6_000 + 192, OutputKind::Webm, "h264", "aac"));
        assert_eq!(failed(&wrong), ["video_codec", "audio"]);
    }

    #[test]
    fn the_bitrate_band_is_the_vbv_bound_on_video_not_the_muxed_total() {
        // 30 s at 8 Mbps cap + 16 Mbit buffer: bound (8000 + 533) * 1.1 = 9387 kbps.
        assert!(
            bitrate_check(30.0, 9_000 + 192, Some(192)).passed,
            "audio is not video"
        );
        assert!(!bitrate_check(30.0, 9_600 + 192, Some(192)).passed);
        // 3 s: the buffer may drain into a short clip, (8000 + 5333) * 1.1 = 14667.
        assert!(bitrate_check(3.0, 12_000, None).passed);
        assert!(!bitrate_check(3.0, 15_000, None).passed);
    }

    #[test]
    fn request_overrides_only_ever_make_the_rules_stricter() {
        let base = Rules {
            ssim_floor: 0.9,
            duration_tolerance_secs: 0.5,
            edge_secs: 0.05,
            max_black_secs: 2.0,
            max_freeze_secs: 2.0,
            max_silence_secs: 2.0,
            min_master_bits_per_pixel: 0.02,
            bitrate_tolerance: 1.1,
            loudness: Some(us_rule(true)),
        };
        let stricter = QcOverrides {
            min_ssim: Some(0.95),
            max_black_secs: Some(0.5),
            max_freeze_secs: Some(1.0),
            max_silence_secs: Some(0.0),
            loudness_tolerance_lu: Some(1.0),
        };
        let mut r = base.clone();
        stricter.apply(&mut r);
        assert_eq!(
            (
                r.ssim_floor,
                r.max_black_secs,
                r.max_freeze_secs,
                r.max_silence_secs
            ),
            (0.95, 0.5, 1.0, 0.0)
        );
        assert_eq!(r.loudness.unwrap().tolerance_lu, 1.0);
        let looser = QcOverrides {
            min_ssim: Some(0.6),
            max_black_secs: Some(9.0),
            max_freeze_secs: Some(9.0),
            max_silence_secs: Some(9.0),
            loudness_tolerance_lu: Some(5.0),
        };
        let mut r = base.clone();
        looser.apply(&mut r);
        assert_eq!(
            (
                r.ssim_floor,
                r.max_black_secs,
                r.max_freeze_secs,
                r.max_silence_secs
            ),
            (0.9, 2.0, 2.0, 2.0)
        );
        assert_eq!(r.loudness.unwrap().tolerance_lu, 2.0);
        assert!(stricter.validate().is_empty());
        let bad = QcOverrides {
            min_ssim: Some(1.5),
            max_black_secs: Some(-1.0),
            ..Default::default()
        };
        let fields: Vec<&str> = bad.validate().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["minSsim", "maxBlackSecs"]);
    }
}
