//! The QC verdict: every check of the master and each rendition, and the
//! report they make.

use super::content::{loudness_checks, run_checks, runs};
use super::destination::DestinationVerdict;
use super::master::MasterSpec;
use super::quality::vmaf_rung_floor;
use super::rules::Rules;
use super::video::{h264_checks, rate_checks};
use crate::media::analyze::{ContentAnalysis, Run};
use crate::media::level::H264Level;
use crate::media::loudness::{Normalization, Status};
use crate::media::measure::FrameSize;
use crate::media::probe::Probe;
use crate::media::profile::OutputKind;
use serde::{Deserialize, Serialize};

/// One rule applied to one subject, with the numbers behind the verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
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
    /// The common size VMAF was scored at (1080p at most), the same for
    /// every rung of one shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmaf_scored_at: Option<FrameSize>,
    pub moov_first: bool,
    pub size_bytes: u64,
    /// The H.264 profile the plan asked for ("high"), when H.264.
    #[serde(default)]
    pub expected_profile: Option<String>,
    /// The H.264 level the plan asked for; "4.0" in the report.
    #[serde(default)]
    pub expected_level: Option<H264Level>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QcReport {
    pub verdict: Verdict,
    pub output_quality: u32,
    pub ssim_floor: f64,
    /// The VMAF floor at the scoring size, when VMAF was measured (each
    /// rung's own floor, with its allowance, is in its `vmaf_floor` check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmaf_floor: Option<f64>,
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
    /// Whether VMAF was measured (the installed ffmpeg has `libvmaf`). When
    /// it was, every rendition also has a `vmaf_floor` check; without it
    /// the SSIM floor alone gates.
    #[serde(default)]
    pub vmaf_available: bool,
    /// Wall time of each run behind this report (arrival read, loudness
    /// pass, transcode, quality pass, content analysis, probes).
    #[serde(default)]
    pub timings: crate::media::timing::Timings,
    pub renditions: Vec<RenditionMeasure>,
    pub checks: Vec<Check>,
    /// Each destination the asset names, judged on the delivered files
    /// (`destinations::verdict::judge`). Never part of `verdict`: a
    /// destination that fails neither rejects the variation nor blocks
    /// another destination. Absent in reports written before destinations.
    #[serde(default)]
    pub destinations: Vec<DestinationVerdict>,
    /// What was corrected so the delivered files meet the destinations
    /// (frame-rate conform, trim to a slot, audio conform, loudness), each
    /// with the master's value, the change and the delivered files'
    /// value measured again. Empty when nothing needed it.
    #[serde(default)]
    pub corrections: Vec<super::Correction>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = QcVerdict)]
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
    pub expected: &'a MasterSpec,
    pub content: Option<&'a ContentAnalysis>,
    pub renditions: Vec<RenditionMeasure>,
    pub output_quality: u32,
    pub rules: Rules,
    pub ttl_remaining_secs: i64,
    /// What loudness normalisation did, with the delivered audio measured.
    pub normalization: Option<&'a Normalization>,
    pub vmaf_available: bool,
    /// What the outputs were conformed to for the asset's destinations
    /// (the rate and length each rendition is then held to).
    pub healed: super::Healed,
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
        healed,
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
    // What the master's metadata can hide: display, scan, colour, rate, sync.
    super::picture::master_checks(&mut checks, master, &rules.master, profile);
    super::tracks::sync_checks(&mut checks, master, &rules.master);
    if let Some(c) = content {
        super::borders::border_checks(&mut checks, c, master, &rules.master, profile);
        super::cadence::cadence_check(&mut checks, c, &rules.master);
        super::cadence::flash_check(&mut checks, c, &rules.master);
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
        if expected.sound {
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
                None if expected.sound => checks.push(Check::new(
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
        if let (Some(score), Some(at)) = (r.vmaf, r.vmaf_scored_at) {
            // Every rung on the same screen: a smaller one gets its allowance.
            let lines = r.expected_width.min(r.expected_height);
            let floor = vmaf_rung_floor(rules.vmaf_floor, lines, at.width.min(at.height));
            let threshold = match floor {
                Some(f) => format!(">= {f:.1} (scored at {at})"),
                None => format!(
                    "reported, not gated: under 60% of the lines, SSIM holds it (scored at {at})"
                ),
            };
            let f = floor.unwrap_or(0.0);
            checks.push(Check::new(
                s,
                "vmaf_floor",
                threshold,
                format!("{score:.2}"),
                floor.is_none_or(|f| score >= f),
                || format!("VMAF {score:.2} (scored at {at}) is below the floor {f:.1} for outputQuality {output_quality}"),
            ));
        }
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
                rate_checks(&mut checks, s, v, master, r.probe.duration_secs, healed.fps);
                super::picture::rendition_checks(&mut checks, s, v, master);
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
        // A trim to a destination's slot: the slot, not the master's length.
        let (want, whose) = match healed.trim_secs {
            Some(t) => (t, "slot the outputs were trimmed to"),
            None => (master.duration_secs, "master's"),
        };
        let dd = (r.probe.duration_secs - want).abs();
        checks.push(Check::new(
            s,
            "duration",
            format!("{want:.3} s +/- {:.3}", frame * 1.5),
            format!("{:.3} s", r.probe.duration_secs),
            dd <= frame * 1.5,
            || {
                format!(
                    "duration {:.3} s differs from the {whose} {want:.3} s",
                    r.probe.duration_secs
                )
            },
        ));
        if let (Some(cap), Some(bits)) = (r.max_bitrate_kbps, r.probe.bit_rate) {
            // The band's high end, judged on the measured average video
            // bitrate with the policy's small tolerance (buyers' ceilings
            // are about the delivered file, not a VBV bound).
            let limit = cap as f64 * rules.bitrate_tolerance;
            let audio = r.probe.audio.as_ref().and_then(|a| a.bit_rate).unwrap_or(0);
            let kbps = bits.saturating_sub(audio) as f64 / 1000.0;
            checks.push(Check::new(
                s,
                "bitrate",
                format!("video <= {limit:.0} kbps"),
                format!("video {kbps:.0} kbps"),
                kbps <= limit,
                || format!("average video bitrate {kbps:.0} kbps is over the rung's band (<= {cap} kbps)"),
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
        vmaf_floor: vmaf_available.then_some(rules.vmaf_floor),
        ttl_remaining_secs,
        profile: profile.to_string(),
        rules: Some(rules),
        content: content.cloned(),
        loudness_normalization: normalization.cloned(),
        vmaf_available,
        timings: Default::default(),
        renditions,
        checks,
        destinations: Vec::new(),
        corrections: Vec::new(),
    }
}
