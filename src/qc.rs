//! The transcode plan and the QC run, shared by the pipeline's steps and by
//! `reelay process` (local files), so both judge media the same way.

use crate::config::Settings;
use crate::media::analyze::{analyze, DetectSettings};
use crate::media::ladder::{default_ladder, h264_level, max_level};
use crate::media::measure::ssim_psnr;
use crate::media::probe::{moov_before_mdat, Probe};
use crate::media::process::{ProcessError, Runner};
use crate::media::transcode::TranscodePlan;
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
}

/// The profile's outputs for this master (the default ladder for now).
pub fn plan_for(probe: &Probe, settings: &Settings) -> Option<TranscodePlan> {
    let video = probe.video.as_ref()?;
    Some(TranscodePlan::for_master(
        probe,
        default_ladder(video.width, video.height),
        &settings.media,
    ))
}

/// Raises a plan's quality for a remediation pass: `boost` steps of 4 CRF
/// lower and 50% more VBV headroom each, with the H.264 level raised to fit.
pub fn boost_plan(plan: &mut TranscodePlan, boost: u8) {
    if boost == 0 {
        return;
    }
    for r in &mut plan.renditions {
        r.crf = r.crf.saturating_sub(4 * boost).max(10);
        let scale = 1.0 + 0.5 * boost as f64;
        r.maxrate_kbps = (r.maxrate_kbps as f64 * scale) as u32;
        r.bufsize_kbps = (r.bufsize_kbps as f64 * scale) as u32;
        let needed = h264_level(r.width, r.height, plan.fps, r.maxrate_kbps);
        r.level = max_level(&r.level, &needed).to_owned();
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
    let list: Vec<(String, PathBuf, u32, u32)> = renditions
        .iter()
        .map(|r| (r.name.clone(), r.path.clone(), r.width, r.height))
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
            size_bytes: p.size_bytes,
            probe: p,
            ssim: score.map(|s| s.ssim).unwrap_or(0.0),
            psnr: score.map(|s| s.psnr).unwrap_or(0.0),
            moov_first: moov_before_mdat(&r.path).unwrap_or(false),
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
        }
    }

    #[test]
    fn a_boost_lowers_crf_and_raises_the_bitrate_cap_within_a_valid_level() {
        let base = plan();
        let mut boosted = plan();
        boost_plan(&mut boosted, 1);
        for (b, r) in base.renditions.iter().zip(&boosted.renditions) {
            assert_eq!(r.crf, b.crf - 4, "{}", r.name);
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
