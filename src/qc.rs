//! The QC run, shared by the pipeline's steps and by `reelay process` (local
//! files), so both judge media the same way.

use crate::config::Settings;
use crate::media::analyze::{analyze, DetectSettings};
use crate::media::hls::MediaPlaylist;
use crate::media::ladder::Rendition;
use crate::media::loudness::{self, Normalization, Status};
use crate::media::measure::{measure_quality, Target, VMAF_FILTER};
use crate::media::probe::{moov_before_mdat, Probe};
use crate::media::process::{input_args, ProcessError, RunOptions, Runner};
use crate::media::profile::{Crop, OutputKind};
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
    /// H.264 profile and level the plan asked for ("high", "4.0"); None for VP9.
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub level: Option<String>,
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
            level: r.kind.is_h264().then(|| r.level.clone()),
        }
    }
}

/// Loudness normalisation for this master under `profile`: none without a
/// loudness target; otherwise pass 1 (audio only) and the record of what
/// pass 2 will do, or why it will not run. `plan.audio_filter` is set when
/// it runs. After the transcode, [`Normalization::record_pass2`] notes the
/// mode that ran.
pub async fn prepare_loudness(
    runner: &Runner,
    settings: &Settings,
    profile: &str,
    master: &Path,
    probe: &Probe,
    plan: &mut TranscodePlan,
) -> Result<Option<Normalization>, ProcessError> {
    let p = settings.profiles.get(profile);
    let n = loudness::prepare(
        runner,
        master,
        probe.audio.is_some() && plan.has_audio,
        p.and_then(|p| p.loudness_target()),
        p.is_some_and(|p| p.normalizes_loudness()),
        Duration::from_secs(settings.media.transcode_timeout_secs),
    )
    .await?;
    plan.audio_filter = n.as_ref().and_then(Normalization::audio_filter);
    Ok(n)
}

/// The arrival read of a master on local disk, shared by the pipeline and
/// `reelay process`: ffprobe, then every packet once (a cut upload can still
/// probe, the index coming first in a faststart MP4). `Ok(Err((code,
/// reason)))` is a rejection (`masterUnreadable`, `masterIncomplete`); `Err`
/// is ours (ffmpeg missing, disk).
pub async fn read_master(
    runner: &Runner,
    path: &Path,
    deadline: Duration,
) -> Result<Result<Probe, (&'static str, String)>, ProcessError> {
    let probe = match runner.ffprobe(path).await {
        Ok(p) => p,
        Err(e) if e.is_input_fault() => {
            return Ok(Err((
                "masterUnreadable",
                format!("ffprobe cannot read the master: {}", e.reason()),
            )))
        }
        Err(e) => return Err(e),
    };
    if let Some(problem) = incomplete(runner, path, deadline).await? {
        return Ok(Err((
            "masterIncomplete",
            format!("the master is truncated or corrupt: {problem}"),
        )));
    }
    Ok(Ok(probe))
}

/// Reads every packet of `path` (stream copy to nowhere) and returns
/// ffmpeg's complaints, if any: "partial file", "File ended prematurely".
async fn incomplete(
    runner: &Runner,
    path: &Path,
    deadline: Duration,
) -> Result<Option<String>, ProcessError> {
    let mut args = input_args(path, true);
    args.extend(["-map", "0", "-c", "copy", "-f", "null", "-"].map(String::from));
    let opts = RunOptions::new("master integrity", deadline).untrusted();
    let log = match runner.ffmpeg(args, opts).await {
        Ok(out) => out.log,
        Err(e) if e.is_input_fault() => return Ok(Some(e.reason())),
        Err(e) => return Err(e),
    };
    let problems: Vec<&str> = log
        .iter()
        .filter_map(|l| {
            ["[error]", "[fatal]"]
                .iter()
                .find_map(|lvl| l.find(lvl).map(|i| l[i + lvl.len()..].trim()))
        })
        .collect();
    Ok((!problems.is_empty()).then(|| {
        let shown: Vec<&str> = problems.iter().rev().take(3).rev().copied().collect();
        shown.join("; ")
    }))
}

/// What QC measures of a transcode: every progressive rendition (MP4 and
/// WebM) and every HLS variant (through its media playlist, read with the
/// HLS demuxer, which only ever opens files reelay wrote).
pub fn rendition_files(out: &TranscodeOutput) -> Vec<RenditionFile> {
    out.renditions
        .iter()
        .chain(&out.hls_variants)
        .map(|(r, p)| RenditionFile::new(r, p.clone()))
        .collect()
}

/// Probes an HLS variant through its playlist; the size and bitrate are its
/// segments' (ffprobe reports the playlist's own few hundred bytes).
async fn probe_variant(runner: &Runner, playlist: &Path) -> Result<Probe, ProcessError> {
    let mut p = runner.ffprobe_own(playlist).await?;
    let text = tokio::fs::read_to_string(playlist).await?;
    let dir = playlist.parent().unwrap_or(Path::new("."));
    let mut bytes = 0u64;
    for seg in MediaPlaylist::parse(&text).segments {
        bytes += tokio::fs::metadata(dir.join(&seg.uri)).await?.len();
    }
    p.size_bytes = bytes;
    p.bit_rate = (p.duration_secs > 0.0).then(|| (bytes as f64 * 8.0 / p.duration_secs) as u64);
    Ok(p)
}

/// What the request (or, without one, the master itself) expects.
pub struct QcRequest<'a> {
    pub profile: &'a str,
    pub expected: &'a Expected,
    pub output_quality: u32,
    pub ttl_remaining_secs: i64,
    pub overrides: Option<&'a QcOverrides>,
    /// What the transcode's loudness normalisation did (from
    /// [`prepare_loudness`]); QC measures the delivered audio when it ran.
    pub normalization: Option<Normalization>,
}

/// One line for a state note: what normalisation did.
pub fn loudness_note(n: &Normalization) -> String {
    match (n.status, n.before, n.target) {
        (Status::Applied, Some(b), Some(t)) => format!(
            "loudness normalised from {:.1} LUFS to {} LUFS ({} mode)",
            b.input_i,
            t.integrated_lufs,
            n.mode.map(|m| m.as_str()).unwrap_or("unknown")
        ),
        _ => format!(
            "loudness not normalised: {}",
            n.reason.as_deref().unwrap_or("not applicable")
        ),
    }
}

/// Measures the renditions against the master (SSIM/PSNR, VMAF when ffmpeg
/// has libvmaf), analyses the master's content, measures the delivered
/// audio of the largest rendition when loudness was normalised, probes every
/// output, and applies the policy. The decoding passes run side by side.
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
            playlist: r.kind == OutputKind::Hls,
            ..Target::new(r.name.clone(), r.path.clone(), r.width, r.height)
        })
        .collect();
    let deadline = Duration::from_secs(settings.media.transcode_timeout_secs);
    let detect = DetectSettings::default();
    let vmaf = match runner.has_filter(VMAF_FILTER).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "could not list ffmpeg's filters; VMAF not measured");
            false
        }
    };
    let mut normalization = req.normalization;
    // The delivered audio is judged on the largest progressive file.
    let top = renditions
        .iter()
        .filter(|r| r.kind != OutputKind::Hls)
        .max_by_key(|r| u64::from(r.width) * u64::from(r.height));
    let judge_output = normalization
        .as_ref()
        .is_some_and(|n| n.status == Status::Applied);
    let output_loudness = async {
        match top {
            Some(t) if judge_output => loudness::measure_output(runner, &t.path, deadline)
                .await
                .map(|l| Some((t.name.clone(), l))),
            _ => Ok(None),
        }
    };
    let (scores, content, after) = tokio::join!(
        measure_quality(runner, master, &list, deadline, vmaf),
        analyze(runner, master, probe, &detect, deadline),
        output_loudness
    );
    let (scores, content, after) = (scores?, content?, after?);
    if let (Some(n), Some((name, l))) = (normalization.as_mut(), after) {
        n.after_rendition = Some(name);
        n.after = l;
    }
    let mut measures = Vec::new();
    for r in renditions {
        let p = match r.kind {
            OutputKind::Hls => probe_variant(runner, &r.path).await?,
            _ => runner.ffprobe(&r.path).await?,
        };
        let score = scores.iter().find(|s| s.name == r.name);
        measures.push(RenditionMeasure {
            name: r.name.clone(),
            expected_width: r.width,
            expected_height: r.height,
            max_bitrate_kbps: r.max_bitrate_kbps,
            vbv_bufsize_kbps: r.vbv_bufsize_kbps,
            min_bitrate_kbps: r.min_bitrate_kbps,
            kind: r.kind,
            size_bytes: p.size_bytes,
            probe: p,
            ssim: score.map(|s| s.ssim).unwrap_or(0.0),
            psnr: score.map(|s| s.psnr).unwrap_or(0.0),
            vmaf: score.and_then(|s| s.vmaf),
            moov_first: r.kind == OutputKind::Mp4 && moov_before_mdat(&r.path).unwrap_or(false),
            expected_profile: r.profile.clone(),
            expected_level: r.level.clone(),
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
        normalization: normalization.as_ref(),
        vmaf_available: vmaf,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
