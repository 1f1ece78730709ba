//! One ffmpeg run turns the master into every output of a profile and the
//! poster.
//!
//! The master (often 4K) is decoded once and `split` into one branch per
//! crop (outputs with the master's own shape share one) plus one for the
//! stills. Within a branch each size is scaled from the next larger one
//! (1080 from the master, 720 from 1080, ...), which costs far less than
//! scaling 4K every time; outputs of the same size share one scaler. The
//! audio is decoded once too: the plan's `audio_filter` (loudness), then
//! 48 kHz stereo, `asplit` to every output. MP4 and WebM outputs are single
//! files; HLS variants are MPEG-TS segments plus a VOD playlist each under
//! `hls/`, and reelay writes `hls/master.m3u8` once the run succeeded.

mod args;
pub mod plan;
pub mod prefix;
mod variants;

pub use args::build_args;
pub use plan::{add_banded, boost_plan, plan_for, BandedOutput};
pub use prefix::{delivery_fps, PictureFix};
pub use variants::{variant_rates, VariantRates};

pub use super::files::{content_type_for, FileRole, WrittenFile};

use super::analyze::{ContentAnalysis, DetectSettings, Detectors};
use super::ladder::Rendition;
use super::level::H264Level;
use super::measure::StoredReference;
use super::probe::Probe;
use super::process::{ProcessError, ProgressFn, RunOptions, Runner};
use super::profile::{is_safe_name, OutputKind};
use super::stills::StillsPlan;
use super::MediaConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;
use variants::write_hls_master;

#[derive(Debug, Clone, PartialEq)]
pub struct TranscodePlan {
    /// Every output (MP4, WebM and HLS variants), in profile order.
    pub renditions: Vec<Rendition>,
    /// Poster width in pixels; never wider than the master. Height keeps the aspect ratio.
    pub poster_width: u32,
    /// Master time of the poster frame.
    pub poster_at_secs: f64,
    /// Encode the master's first audio stream into every output.
    pub has_audio: bool,
    /// Master frame rate: sets the keyframe intervals (the rate itself is kept).
    pub fps: f64,
    /// x264 preset.
    pub preset: String,
    /// ffmpeg threads; 0 lets ffmpeg choose.
    pub threads: usize,
    /// Audio filter applied once to the master's audio before it is encoded
    /// (e.g. the second pass of `loudnorm`). None: the audio as it is.
    pub audio_filter: Option<String>,
    /// Posters, storyboard sprite and preview from one more branch of the
    /// same decode. None: a single `poster.jpg` (`poster_width`,
    /// `poster_at_secs`), as plans built by hand get.
    pub stills: Option<StillsPlan>,
    /// Corrections to the master's picture before the split (square
    /// pixels, deinterlace, tone map, constant rate).
    pub picture: PictureFix,
    /// The content analysis (`media::analyze`'s detectors) on one more,
    /// downscaled branch of the same decode and on the master's own audio
    /// (before `audio_filter`), read from the run's log into
    /// [`TranscodeOutput::content`]. None: no analysis (`reelay transcode`).
    pub analysis: Option<InlineAnalysis>,
    /// Reference frames for QC, one per crop at its largest output size
    /// (see [`TranscodePlan::add_quality_references`]); empty: none.
    pub references: Vec<StoredReference>,
    /// What every output is conformed to after its own scaler for the
    /// asset's destinations (a frame rate, a trim to a slot); nothing by
    /// default.
    pub conform: OutputConform,
}

/// A per-output conform for buyers (`destinations::heal` decides it): the
/// fps filter to a rate they all take (frames dropped or repeated, the
/// timestamps and so the duration and A/V sync kept), and a trim of video
/// and audio to a slot the master overruns by a frame or two. Never a pad.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputConform {
    /// The rate as ffmpeg's rational (24000/1001).
    pub fps: Option<(u32, u32)>,
    /// The end of every output, seconds.
    pub trim_secs: Option<f64>,
    /// AAC coded left/right, never mid/side: a buyer's audio bitrate floor
    /// is then met on a mono or near-mono master too (mid/side spends
    /// almost nothing on an empty side, landing ~15% under the target).
    pub aac_lr: bool,
}

impl OutputConform {
    /// No filter to add (the encoder option alone is not one).
    pub fn is_empty(&self) -> bool {
        self.fps.is_none() && self.trim_secs.is_none()
    }

    /// The video filters, each followed by a comma ("" when none).
    pub fn video_filters(&self) -> String {
        let mut f = String::new();
        if let Some((n, d)) = self.fps {
            f.push_str(&format!("fps={n}/{d},"));
        }
        if let Some(t) = self.trim_secs {
            f.push_str(&format!("trim=end={t:.6},"));
        }
        f
    }

    /// The audio filter, followed by a comma ("" when none).
    pub fn audio_filters(&self) -> String {
        self.trim_secs
            .map(|t| format!("atrim=end={t:.6},"))
            .unwrap_or_default()
    }
}

/// What the transcode analyses on the way (see [`TranscodePlan::analysis`]).
#[derive(Debug, Clone, PartialEq)]
pub struct InlineAnalysis {
    pub detect: DetectSettings,
    /// Run the audio detectors (the master has audio).
    pub audio: bool,
}

impl TranscodePlan {
    /// A plan for this master: its audio and frame rate, a 1280-wide poster
    /// (narrower masters keep their width) a third of the way in (at most
    /// 3 s), preset and threads from the config. H.264 levels are raised
    /// where the master's frame rate needs it (e.g. 1080p60 needs 4.2).
    pub fn for_master(probe: &Probe, renditions: Vec<Rendition>, config: &MediaConfig) -> Self {
        let fps = probe
            .video
            .as_ref()
            .map(delivery_fps)
            .filter(|f| *f > 0.0)
            .unwrap_or(30.0);
        let master_w = probe.video.as_ref().map_or(1280, |v| v.width);
        let renditions = renditions
            .into_iter()
            .map(|mut r| {
                if r.kind.is_h264() {
                    let needed = H264Level::lowest_for(r.width, r.height, fps, r.maxrate_kbps);
                    r.level = r.level.max(Some(needed));
                }
                r
            })
            .collect();
        Self {
            renditions,
            poster_width: 1280.min(master_w).max(2),
            poster_at_secs: (probe.duration_secs / 3.0).clamp(0.0, 3.0),
            has_audio: probe.audio.is_some(),
            fps,
            preset: config.x264_preset.clone(),
            threads: config.threads,
            audio_filter: None,
            stills: None,
            analysis: None,
            picture: PictureFix::for_master(probe),
            references: Vec::new(),
            conform: OutputConform::default(),
        }
    }

    /// Has this run also write, for each crop, the frames its largest
    /// output's encoder gets (raw, in `out_dir/qc-reference/`), so QC
    /// compares with them instead of decoding the master again. A crop
    /// whose frames would take more than `max_bytes` (a 4K rung of a long
    /// master) gets none: QC reads the master for it, as before.
    pub fn add_quality_references(&mut self, out_dir: &Path, duration_secs: f64, max_bytes: u64) {
        // A frame or two of slack over the nominal count.
        let frames = (duration_secs.max(0.0) * self.fps).ceil() + 2.0;
        self.references.clear();
        for (g, (crop, nodes)) in args::crop_groups(self).iter().enumerate() {
            let Some(((width, height), _)) = nodes.first() else {
                continue;
            };
            if StoredReference::estimated_bytes(*width, *height, frames) > max_bytes {
                continue;
            }
            self.references.push(StoredReference {
                path: out_dir.join(REFERENCE_DIR).join(format!("crop{g}.nut")),
                crop: *crop,
                width: *width,
                height: *height,
            });
        }
    }

    /// The HLS variants of the plan.
    pub fn hls(&self) -> impl Iterator<Item = &Rendition> {
        self.renditions.iter().filter(|r| r.kind == OutputKind::Hls)
    }
}

#[derive(Debug, Clone)]
pub struct TranscodeOutput {
    /// Each progressive rendition (MP4, WebM) with its file, in plan order:
    /// what QC measures.
    pub renditions: Vec<(Rendition, PathBuf)>,
    /// Each HLS variant with its media playlist, in plan order.
    pub hls_variants: Vec<(Rendition, PathBuf)>,
    /// `hls/master.m3u8` when the plan has HLS variants.
    pub hls_master: Option<PathBuf>,
    pub poster: PathBuf,
    /// Every file the run wrote (renditions, HLS playlists and segments,
    /// poster), in a stable order: what publishing uploads.
    pub files: Vec<WrittenFile>,
    /// The ffmpeg arguments the run used (after the binary and the runner's
    /// own `-hide_banner -nostdin -y`).
    pub args: Vec<String>,
    pub elapsed: Duration,
    /// ffmpeg's log of the run (what filters such as `loudnorm` reported).
    pub log: Vec<String>,
    /// The content analysis of the master when the plan asked for it.
    pub content: Option<ContentAnalysis>,
    /// The plan's reference frames for QC, written (never published).
    pub references: Vec<StoredReference>,
}

pub const POSTER_FILE: &str = "poster.jpg";
/// Folder of the HLS set inside the output folder.
pub const HLS_DIR: &str = "hls";
pub const HLS_MASTER: &str = "hls/master.m3u8";
/// Folder of the QC reference frames inside the output folder.
pub const REFERENCE_DIR: &str = "qc-reference";
/// Target HLS segment length; keyframe intervals of 2 s (or 4 s) make every
/// segment start on a keyframe.
pub const HLS_SEGMENT_SECS: u32 = 4;

/// A rendition's main file inside the output folder: "1080p.mp4",
/// "vp9.webm", or for HLS its media playlist "hls/720p.m3u8".
pub fn rendition_rel(r: &Rendition) -> String {
    match r.kind {
        OutputKind::Mp4 => format!("{}.mp4", r.name),
        OutputKind::Webm => format!("{}.webm", r.name),
        OutputKind::Hls => format!("{HLS_DIR}/{}.m3u8", r.name),
    }
}

/// The rendition's file in `out_dir`.
pub fn rendition_path(out_dir: &Path, r: &Rendition) -> PathBuf {
    out_dir.join(rendition_rel(r))
}

fn validate(plan: &TranscodePlan, probe: &Probe) -> Result<(), ProcessError> {
    let bad = |m: String| Err(ProcessError::Invalid(m));
    if plan.renditions.is_empty() {
        return bad("the plan has no renditions".into());
    }
    let mut names = std::collections::HashSet::new();
    for r in &plan.renditions {
        if !is_safe_name(&r.name) {
            return bad(format!(
                "rendition name {:?} is not a safe file name",
                r.name
            ));
        }
        if !names.insert(r.name.to_ascii_lowercase()) {
            return bad(format!("rendition name {:?} appears twice", r.name));
        }
        if r.width < 2 || r.height < 2 || r.width % 2 == 1 || r.height % 2 == 1 {
            return bad(format!(
                "{}: {}x{} is not an even size",
                r.name, r.width, r.height
            ));
        }
        let crf_max = if r.kind == OutputKind::Webm { 63 } else { 51 };
        if let Some(crf) = r.crf.filter(|c| *c > crf_max) {
            return bad(format!("{}: crf {crf} is above {crf_max}", r.name));
        }
    }
    if plan.has_audio && probe.audio.is_none() {
        return bad("the plan wants audio but the master has none".into());
    }
    if probe.video.is_none() {
        return Err(ProcessError::UnusableInput(
            "the master has no video stream".into(),
        ));
    }
    if !plan.poster_at_secs.is_finite() || !plan.fps.is_finite() {
        return bad("poster time and fps must be finite".into());
    }
    Ok(())
}

/// Runs the plan: every output and the poster from one decode of the
/// master, then the HLS master playlist. Outputs are checked to exist and
/// be non-empty; on failure the partial outputs are removed.
pub async fn transcode(
    runner: &Runner,
    master: &Path,
    probe: &Probe,
    plan: &TranscodePlan,
    out_dir: &Path,
    on_progress: Option<ProgressFn>,
    deadline: Duration,
) -> Result<TranscodeOutput, ProcessError> {
    validate(plan, probe)?;
    tokio::fs::create_dir_all(out_dir).await?;
    let has_hls = plan.hls().next().is_some();
    if has_hls {
        tokio::fs::create_dir_all(out_dir.join(HLS_DIR)).await?;
    }
    for r in &plan.references {
        if let Some(dir) = r.path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
    }
    let still_files: Vec<WrittenFile> = match &plan.stills {
        Some(st) => st.files(out_dir),
        None => vec![WrittenFile {
            rel: POSTER_FILE.to_owned(),
            path: out_dir.join(POSTER_FILE),
            role: FileRole::Poster,
            output: None,
        }],
    };
    // What ffmpeg must have written (the storyboard is ours, written after).
    let outputs: Vec<PathBuf> = plan
        .renditions
        .iter()
        .map(|r| rendition_path(out_dir, r))
        .chain(
            still_files
                .iter()
                .filter(|f| f.role != FileRole::Storyboard)
                .map(|f| f.path.clone()),
        )
        .chain(plan.references.iter().map(|r| r.path.clone()))
        .collect();

    let opts = RunOptions::new("transcode", deadline)
        .input_duration(probe.duration_secs)
        .progress(on_progress)
        .untrusted();
    let args = build_args(master, plan, out_dir);
    let result = match runner.ffmpeg(args.clone(), opts).await {
        Ok(run) => finish(plan, out_dir, &outputs, has_hls)
            .await
            .map(|files| (run, files)),
        Err(e) => Err(e),
    };
    let (run, hls_files) = match result {
        Ok(x) => x,
        Err(e) => {
            for p in outputs.iter().chain(still_files.iter().map(|f| &f.path)) {
                let _ = tokio::fs::remove_file(p).await;
            }
            if has_hls {
                let _ = tokio::fs::remove_dir_all(out_dir.join(HLS_DIR)).await;
            }
            return Err(e);
        }
    };
    let mut files: Vec<WrittenFile> = plan
        .renditions
        .iter()
        .filter(|r| r.kind.is_progressive())
        .map(|r| WrittenFile {
            rel: rendition_rel(r),
            path: rendition_path(out_dir, r),
            role: FileRole::Rendition,
            output: Some(r.name.clone()),
        })
        .collect();
    files.extend(hls_files);
    // The poster the pipeline publishes as poster.jpg: the widest JPEG.
    let poster = still_files
        .iter()
        .filter(|f| f.role == FileRole::Poster)
        .find(|f| f.rel.ends_with(".jpg"))
        .or_else(|| still_files.iter().find(|f| f.role == FileRole::Poster))
        .map(|f| f.path.clone())
        .unwrap_or_else(|| out_dir.join(POSTER_FILE));
    files.extend(still_files);
    let with_path = |keep: fn(&Rendition) -> bool| -> Vec<(Rendition, PathBuf)> {
        plan.renditions
            .iter()
            .filter(|r| keep(r))
            .map(|r| (r.clone(), rendition_path(out_dir, r)))
            .collect()
    };
    Ok(TranscodeOutput {
        files,
        renditions: with_path(|r| r.kind.is_progressive()),
        hls_variants: with_path(|r| r.kind == OutputKind::Hls),
        hls_master: has_hls.then(|| out_dir.join(HLS_MASTER)),
        poster,
        content: plan
            .analysis
            .as_ref()
            .map(|a| inline_detectors(a).parse(&run.log, probe.duration_secs)),
        references: plan.references.clone(),
        args,
        elapsed: run.elapsed,
        log: run.log,
    })
}

/// Pad of the split branch the detectors read, and of the master's audio
/// before the plan's `audio_filter`.
pub(crate) const ANALYSIS_VIDEO_PAD: &str = "qcvin";
pub(crate) const ANALYSIS_AUDIO_PAD: &str = "qcain";

/// The detectors on the transcode's own branches.
pub(crate) fn inline_detectors(a: &InlineAnalysis) -> Detectors {
    Detectors::new(
        Some(ANALYSIS_VIDEO_PAD),
        a.audio.then_some(ANALYSIS_AUDIO_PAD),
        &a.detect,
    )
}

/// After a successful run: every output is there and non-empty, the
/// storyboard is written, and the HLS master playlist (returns the HLS files).
async fn finish(
    plan: &TranscodePlan,
    out_dir: &Path,
    outputs: &[PathBuf],
    has_hls: bool,
) -> Result<Vec<WrittenFile>, ProcessError> {
    check_outputs(outputs).await?;
    if let Some(st) = &plan.stills {
        st.write_sidecars(out_dir)?;
    }
    if has_hls {
        write_hls_master(plan, out_dir).await
    } else {
        Ok(Vec::new())
    }
}

async fn check_outputs(outputs: &[PathBuf]) -> Result<(), ProcessError> {
    for p in outputs {
        match tokio::fs::metadata(p).await {
            Ok(m) if m.len() > 0 => {}
            Ok(_) => return Err(ProcessError::BadOutput(format!("{} is empty", p.display()))),
            Err(e) => {
                return Err(ProcessError::BadOutput(format!(
                    "{} was not written: {e}",
                    p.display()
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod reference_tests;
#[cfg(test)]
mod tests;
