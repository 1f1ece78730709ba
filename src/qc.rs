//! The transcode plan and the QC run, shared by the pipeline's steps and by
//! `reelay process` (local files), so both judge media the same way.

use crate::config::Settings;
use crate::media::analyze::{analyze, DetectSettings};
use crate::media::ladder::{h264_level, max_level, Rendition};
use crate::media::measure::{ssim_psnr, Target};
use crate::media::probe::{moov_before_mdat, Probe};
use crate::media::process::{ProcessError, Runner};
use crate::media::profile::{default_outputs, resolve, Crop, OutputKind};
use crate::media::transcode::{TranscodeOutput, TranscodePlan};
use crate::policy::{self, Expected, QcInput, QcOverrides, QcReport, RenditionMeasure};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A rendition the transcode wrote, as QC and publishing need it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenditionFile {
    pub name: String,
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub max_bitrate_kbps: Option<u32>,
    #[serde(default)]
    pub vbv_bufsize_kbps: Option<u32>,
    /// The band's low end: the average video bitrate must reach it.
    #[serde(default)]
    pub min_bitrate_kbps: Option<u32>,
    /// mp4 (H.264 + AAC, moov first) or webm (VP9 + Opus).
    #[serde(default)]
    pub kind: OutputKind,
    /// The master rectangle the rendition shows (the SSIM/PSNR reference is
    /// cropped the same way). None: the whole frame.
    #[serde(default)]
    pub crop: Option<Crop>,
    /// H.264 profile asked for ("high"); None for VP9.
    #[serde(default)]
    pub profile: Option<String>,
}

impl RenditionFile {
    pub fn new(r: &Rendition, path: PathBuf) -> Self {
        Self {
            name: r.name.clone(),
            path,
            width: r.width,
            height: r.height,
            max_bitrate_kbps: Some(r.maxrate_kbps),
            vbv_bufsize_kbps: Some(r.bufsize_kbps),
            min_bitrate_kbps: r.min_bitrate_kbps,
            kind: r.kind,
            crop: r.crop,
            profile: r.kind.is_h264().then(|| r.profile.clone()),
        }
    }
}

/// What QC measures of a transcode: every progressive rendition (MP4 and
/// WebM). HLS variants are not measured: they come from the same encoder
/// settings as their MP4 siblings and opening them needs the HLS demuxer,
/// which reelay keeps away from its media readers; their playlists and
/// segments are checked when the master playlist is written.
pub fn rendition_files(out: &TranscodeOutput) -> Vec<RenditionFile> {
    out.renditions
        .iter()
        .map(|(r, p)| RenditionFile::new(r, p.clone()))
        .collect()
}

/// The plan for `profile`'s outputs on this master. A profile that lists no
/// outputs gets the default ladder.
pub fn plan_for(
    probe: &Probe,
    settings: &Settings,
    profile: &str,
) -> Result<TranscodePlan, String> {
    let video = probe
        .video
        .as_ref()
        .ok_or_else(|| "the master has no video stream".to_owned())?;
    let p = settings
        .profiles
        .get(profile)
        .ok_or_else(|| format!("unknown profile {profile:?}"))?;
    let fps = Some(video.fps).filter(|f| *f > 0.0).unwrap_or(30.0);
    let renditions = if p.outputs.is_empty() {
        resolve(&default_outputs(), video.width, video.height, fps)
    } else {
        resolve(&p.outputs, video.width, video.height, fps)
    };
    let mut plan = TranscodePlan::for_master(probe, renditions, &settings.media);
    plan.stills = Some(crate::media::stills::StillsPlan::for_master(
        &p.stills, probe,
    )?);
    Ok(plan)
}

/// Raises a plan's quality for a remediation pass: `boost` steps of 4 CRF
/// lower (or a 50% higher target bitrate) and 50% more VBV headroom each,
/// with the H.264 level raised to fit.
pub fn boost_plan(plan: &mut TranscodePlan, boost: u8) {
    if boost == 0 {
        return;
    }
    let scale = 1.0 + 0.5 * boost as f64;
    let up = |v: u32| (v as f64 * scale) as u32;
    for r in &mut plan.renditions {
        r.crf = r.crf.map(|c| c.saturating_sub(4 * boost).max(10));
        r.bitrate_kbps = r.bitrate_kbps.map(up);
        r.maxrate_kbps = up(r.maxrate_kbps);
        r.bufsize_kbps = up(r.bufsize_kbps);
        if r.kind.is_h264() {
            let needed = h264_level(r.width, r.height, plan.fps, r.maxrate_kbps);
            r.level = max_level(&r.level, &needed).to_owned();
        }
    }
}

/// What the request (or, without one, the master itself) expects.
pub struct QcRequest<'a> {
    pub profile: &'a str,
    pub expected: &'a Expected,
    pub output_quality: u32,
    pub ttl_remaining_secs: i64,
    pub overrides: Option<&'a QcOverrides>,
}

/// Measures the renditions against the master (SSIM/PSNR), analyses the
/// master's content, probes every output, and applies the policy. The two
/// decoding passes run side by side.
pub async fn measure_and_evaluate(
    runner: &Runner,
    settings: &Settings,
    master: &Path,
    probe: &Probe,
    renditions: &[RenditionFile],
    req: QcRequest<'_>,
) -> Result<QcReport, ProcessError> {
    let list: Vec<Target> = renditions
        .iter()
        .map(|r| Target {
            crop: r.crop,
            ..Target::new(r.name.clone(), r.path.clone(), r.width, r.height)
        })
        .collect();
    let deadline = Duration::from_secs(settings.media.transcode_timeout_secs);
    let detect = DetectSettings::default();
    let (scores, content) = tokio::join!(
        ssim_psnr(runner, master, &list, deadline),
        analyze(runner, master, probe, &detect, deadline)
    );
    let (scores, content) = (scores?, content?);
    let mut measures = Vec::new();
    for r in renditions {
        let p = runner.ffprobe(&r.path).await?;
        let score = scores.iter().find(|s| s.name == r.name);
        measures.push(RenditionMeasure {
            name: r.name.clone(),
            expected_width: r.width,
            expected_height: r.height,
            max_bitrate_kbps: r.max_bitrate_kbps,
            vbv_bufsize_kbps: r.vbv_bufsize_kbps,
            min_bitrate_kbps: r.min_bitrate_kbps,
            kind: r.kind,
            expected_profile: r.profile.clone(),
            size_bytes: p.size_bytes,
            probe: p,
            ssim: score.map(|s| s.ssim).unwrap_or(0.0),
            psnr: score.map(|s| s.psnr).unwrap_or(0.0),
            moov_first: r.kind == OutputKind::Mp4 && moov_before_mdat(&r.path).unwrap_or(false),
        });
    }
    let mut rules = policy::Rules::new(
        &settings.policy,
        settings.profiles.get(req.profile),
        req.output_quality,
    );
    if let Some(o) = req.overrides {
        o.apply(&mut rules);
    }
    Ok(policy::evaluate(QcInput {
        profile: req.profile,
        master: probe,
        expected: req.expected,
        content: Some(&content),
        renditions: measures,
        output_quality: req.output_quality,
        rules,
        ttl_remaining_secs: req.ttl_remaining_secs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ladder::default_ladder;

    fn plan() -> TranscodePlan {
        TranscodePlan {
            renditions: default_ladder(3840, 2160),
            poster_width: 1280,
            poster_at_secs: 1.0,
            has_audio: true,
            fps: 24.0,
            preset: "veryfast".into(),
            threads: 0,
            audio_filter: None,
            stills: None,
        }
    }

    fn probe(w: u32, h: u32) -> Probe {
        serde_json::from_value(serde_json::json!({
            "format_name": "mov", "duration_secs": 5.0, "size_bytes": 1, "bit_rate": null,
            "video": {"codec": "h264", "profile": null, "level": null, "width": w,
                      "height": h, "pix_fmt": null, "fps": 24.0, "nb_frames": null},
            "audio": null
        }))
        .unwrap()
    }

    #[test]
    fn plans_follow_the_requested_profile_with_stills() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let settings = Settings::load_from(&dir, "test").unwrap();
        let names = |profile: &str, w, h| -> Vec<String> {
            let plan = plan_for(&probe(w, h), &settings, profile).unwrap();
            assert!(plan.stills.is_some(), "{profile}");
            plan.renditions.into_iter().map(|r| r.name).collect()
        };
        assert_eq!(names("default", 3840, 2160), ["1080p", "720p", "480p"]);
        assert_eq!(names("broadcast-eu", 3840, 2160), ["1080p", "720p", "480p"]);
        assert_eq!(names("ctv", 3840, 2160), ["1080p", "720p", "2160p"]);
        assert_eq!(names("ctv", 1920, 1080), ["1080p", "720p"]);
        assert_eq!(names("social", 3840, 2160), ["vertical", "square"]);
        assert_eq!(names("social", 1920, 1080), ["square"]);
        let web = plan_for(&probe(2880, 2880), &settings, "web").unwrap();
        let kinds: Vec<OutputKind> = web.renditions.iter().map(|r| r.kind).collect();
        assert_eq!(kinds.iter().filter(|k| **k == OutputKind::Hls).count(), 3);
        assert_eq!(kinds.iter().filter(|k| **k == OutputKind::Webm).count(), 1);
        assert!(plan_for(&probe(1920, 1080), &settings, "nope")
            .unwrap_err()
            .contains("unknown profile"));
        let mut no_video = probe(1920, 1080);
        no_video.video = None;
        assert!(plan_for(&no_video, &settings, "default").is_err());
    }

    #[test]
    fn files_for_qc_carry_crop_band_and_kind() {
        let r = &crate::media::profile::resolve(
            &[crate::media::OutputSpec {
                aspect: crate::media::Aspect::Square,
                min_bitrate_kbps: Some(4000),
                ..crate::media::profile::default_outputs()[0].clone()
            }],
            1920,
            1080,
            24.0,
        )[0];
        let f = RenditionFile::new(r, PathBuf::from("/o/1080p.mp4"));
        assert_eq!((f.width, f.height), (1080, 1080));
        assert_eq!(f.crop.map(|c| (c.width, c.x)), Some((1080, 420)));
        assert_eq!(
            (f.min_bitrate_kbps, f.max_bitrate_kbps, f.kind),
            (Some(4000), Some(8000), OutputKind::Mp4)
        );
        assert_eq!(f.profile.as_deref(), Some("high"));
    }

    #[test]
    fn a_boost_lowers_crf_and_raises_the_bitrate_cap_within_a_valid_level() {
        let base = plan();
        let mut boosted = plan();
        boost_plan(&mut boosted, 1);
        for (b, r) in base.renditions.iter().zip(&boosted.renditions) {
            assert_eq!(r.crf, b.crf.map(|c| c - 4), "{}", r.name);
            assert_eq!(r.maxrate_kbps, b.maxrate_kbps * 3 / 2, "{}", r.name);
            assert!(r.bufsize_kbps > b.bufsize_kbps);
            let needed = h264_level(r.width, r.height, 24.0, r.maxrate_kbps);
            assert_eq!(
                max_level(&r.level, &needed),
                r.level,
                "{}: level {} too low",
                r.name,
                r.level
            );
        }
        let mut same = plan();
        boost_plan(&mut same, 0);
        assert_eq!(same.renditions[0].crf, base.renditions[0].crf);
    }
}
