//! `checking` → `publishing` | `rejected`: every rendition measured against
//! the master (SSIM/PSNR, VMAF where ffmpeg has it), the master's content
//! analysed, the delivered audio measured when loudness was normalised,
//! every output probed, and the request's profile's rules applied. Where
//! VMAF is measured its floor gates beside the SSIM floor. A failure the
//! remediation rule can fix (renditions under their SSIM or VMAF floor,
//! once) goes back to `transcoding` at a higher quality.
//!
//! Each destination the asset names is judged on the same measurements
//! ([`delivered`]); its verdict goes into the report and never decides the
//! variation's own.
//!
//! [`run_media`] is the media half, shared with `reelay process`.

pub mod delivered;

use super::{arrival, unknown_profile, Ctx, Outcome, Profile};
use crate::config::Settings;
use crate::destinations::heal::{self, HealPlan};
use crate::jobs::model::{Asset, Outputs, Update, Variation};
use crate::jobs::State;
use crate::media::analyze::{analyze, ContentAnalysis, DetectSettings};
use crate::media::hls::MediaPlaylist;
use crate::media::loudness::{self, Normalization, Status};
use crate::media::measure::{measure_quality, reads_master, StoredReference, Target, VMAF_FILTER};
use crate::media::outputs::RenditionFile;
use crate::media::probe::{moov_before_mdat, Probe};
use crate::media::process::{ProcessError, Runner};
use crate::media::profile::{Crop, OutputKind};
use crate::media::timing::{timed, Timings};
use crate::policy::{self, MasterSpec, QcInput, QcOverrides, QcReport, RenditionMeasure, Verdict};
use crate::reason::ReasonCode;
use crate::time::now_ms;
use std::path::Path;
use std::time::Duration;

/// What the request (or, without one, the master itself) expects.
pub struct QcRequest<'a> {
    pub profile: Profile<'a>,
    pub expected: &'a MasterSpec,
    pub output_quality: u32,
    pub ttl_remaining_secs: i64,
    pub overrides: Option<&'a QcOverrides>,
    /// What the transcode's loudness normalisation did (from
    /// [`prepare_loudness`]); QC measures the delivered audio when it ran.
    pub normalization: Option<Normalization>,
    /// The buyers' specs the asset names (`[destinations.NAME]`), judged on
    /// the delivered files besides the profile's rules.
    pub destinations: &'a [String],
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

/// Probes one output: an HLS variant through its playlist, a file as it is.
async fn probe_output(runner: &Runner, r: &RenditionFile) -> Result<Probe, ProcessError> {
    match r.kind {
        OutputKind::Hls => probe_variant(runner, &r.path).await,
        _ => runner.ffprobe(&r.path).await,
    }
}

/// What the transcode already knows about the master and its own runs.
#[derive(Debug, Clone, Default)]
pub struct Prior {
    /// The content analysis made on the transcode's decode; None: QC runs
    /// the stand-alone pass over the master.
    pub content: Option<ContentAnalysis>,
    /// The runs so far (arrival read, loudness pass, transcode).
    pub timings: Timings,
    /// The master's frames the transcode wrote for the quality pass.
    pub references: Vec<StoredReference>,
    /// The remediation boost the outputs were encoded at (the plan the
    /// corrections record reads is the transcode's own).
    pub boost: u8,
}

impl Prior {
    pub fn of(outputs: &Outputs) -> Self {
        Prior {
            content: outputs.content.clone(),
            timings: outputs.timings.clone(),
            references: outputs.references.clone(),
            boost: outputs.boost,
        }
    }

    /// The stored reference of `crop`, if its file is still there (a
    /// restart may have lost the work folder's scratch).
    fn reference_for(&self, crop: Option<Crop>) -> Option<StoredReference> {
        self.references
            .iter()
            .find(|r| r.crop == crop && r.path.is_file())
            .cloned()
    }
}

/// Measures the renditions against the master (SSIM/PSNR, VMAF when ffmpeg
/// has libvmaf) in one run that decodes the master once, takes the
/// master's content analysis from the transcode (or, without one, analyses
/// the master), measures the delivered audio of the largest rendition when
/// loudness was normalised, probes every output, and applies the policy.
/// These runs go side by side; the report records each one's wall time.
pub async fn measure_and_evaluate(
    runner: &Runner,
    settings: &Settings,
    master: &Path,
    probe: &Probe,
    renditions: &[RenditionFile],
    prior: Prior,
    req: QcRequest<'_>,
) -> Result<QcReport, ProcessError> {
    // The outputs' conform for the destinations is put on the reference
    // too, so frames pair up one for one.
    let heal = HealPlan::for_master(req.destinations, &settings.destinations, probe);
    let encoded = encoded(settings, probe, &req, prior.boost);
    let reference_prefix = format!(
        "{}{}",
        crate::media::transcode::PictureFix::for_master(probe).filters(),
        heal.conform().video_filters()
    );
    let list: Vec<Target> = renditions
        .iter()
        .map(|r| Target {
            crop: r.crop,
            playlist: r.kind == OutputKind::Hls,
            reference_prefix: reference_prefix.clone(),
            stored_reference: prior.reference_for(r.crop),
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
    let mut timings = prior.timings;
    let content = async {
        match prior.content {
            Some(c) => (Ok(c), None),
            None => {
                let (c, t) = timed(analyze(runner, master, probe, &detect, deadline)).await;
                (c, Some(t))
            }
        }
    };
    let probes = futures::future::try_join_all(renditions.iter().map(|r| probe_output(runner, r)));
    let quality = measure_quality(
        runner,
        master,
        &list,
        deadline,
        vmaf,
        Some(probe.duration_secs),
    );
    let (
        (scores, quality_secs),
        (content, content_secs),
        (after, after_secs),
        (probes, probe_secs),
    ) = tokio::join!(
        timed(quality),
        content,
        timed(output_loudness),
        timed(probes)
    );
    let (scores, content, after, probes) = (scores?, content?, after?, probes?);
    timings.quality_pass_secs = Some(quality_secs);
    timings.quality_on_transcode_frames = !reads_master(&list, vmaf);
    timings.content_analysis_secs = content_secs;
    timings.content_in_transcode = content_secs.is_none();
    timings.output_loudness_secs = judge_output.then_some(after_secs);
    timings.output_probes_secs = Some(probe_secs);
    if let (Some(n), Some((name, l))) = (normalization.as_mut(), after) {
        n.after_rendition = Some(name);
        n.after = l;
    }
    let mut measures = Vec::new();
    for (r, p) in renditions.iter().zip(probes) {
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
            vmaf_scored_at: score.and_then(|s| s.vmaf_scored_at),
            moov_first: r.kind == OutputKind::Mp4 && moov_before_mdat(&r.path).unwrap_or(false),
            expected_profile: r.profile.clone(),
            expected_level: r.level,
        });
    }
    let mut rules = policy::Rules::new(
        &settings.policy,
        Some(req.profile.settings),
        req.output_quality,
    );
    if let Some(o) = req.overrides {
        o.apply(&mut rules);
    }
    let mut report = policy::evaluate(QcInput {
        profile: req.profile.name,
        master: probe,
        expected: req.expected,
        content: Some(&content),
        renditions: measures,
        output_quality: req.output_quality,
        rules,
        ttl_remaining_secs: req.ttl_remaining_secs,
        normalization: normalization.as_ref(),
        vmaf_available: vmaf,
        healed: heal.healed(),
    });
    report.timings = timings;
    let set = delivered::delivered(&report, probe);
    report.destinations = delivered::judge_all(req.destinations, &settings.destinations, &set);
    let heal = heal.with_floors(req.destinations, &settings.destinations, probe, &encoded);
    report.corrections = heal::record(
        &heal,
        req.destinations,
        &settings.destinations,
        &set,
        delivered::normalised(&report),
    );
    Ok(report)
}

/// How the transcode encoded each output: its plan for this master,
/// derived again (pure, the same settings and boost), for the record of the
/// bitrate floors it met. Empty when no plan fits (the transcode refused).
fn encoded(
    settings: &Settings,
    probe: &Probe,
    req: &QcRequest<'_>,
    boost: u8,
) -> Vec<heal::Encoded> {
    match super::transcode::plan(probe, settings, req.profile, req.destinations, boost) {
        Ok((plan, added)) => plan
            .renditions
            .iter()
            .map(|r| heal::Encoded::of(r, added.iter().any(|a| a.name == r.name)))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// What QC decided for one transcode.
#[derive(Debug)]
pub enum Checked {
    Pass(QcReport),
    /// Fixable by re-encoding at `boost` (the remediation rule).
    Remediate {
        report: QcReport,
        boost: u8,
    },
    /// Turned down: the report's failures, or a measurement that could not run.
    Rejected {
        code: ReasonCode,
        message: String,
        report: Option<QcReport>,
    },
}

/// The verdict on a report, with remediation.
pub fn decide(report: QcReport, boost_applied: u8) -> Checked {
    if let policy::Remediation::ReencodeAt { boost } = policy::remediation(&report, boost_applied) {
        return Checked::Remediate { report, boost };
    }
    match report.verdict {
        Verdict::Pass => Checked::Pass(report),
        Verdict::Fail => Checked::Rejected {
            code: ReasonCode::QcFailed,
            message: report.summary(),
            report: Some(report),
        },
    }
}

/// Measure, evaluate and decide on one transcode's outputs. `Err` is ours.
pub async fn run_media(
    runner: &Runner,
    settings: &Settings,
    master: &Path,
    probe: &Probe,
    outputs: &Outputs,
    req: QcRequest<'_>,
) -> Result<Checked, ProcessError> {
    let prior = Prior::of(outputs);
    let measured = measure_and_evaluate(
        runner,
        settings,
        master,
        probe,
        &outputs.renditions,
        prior,
        req,
    )
    .await;
    // The reference frames (a GiB or so) are scratch: a retry of this
    // stage reads the master instead, a remediation writes new ones.
    for r in &outputs.references {
        let _ = tokio::fs::remove_file(&r.path).await;
        if let Some(dir) = r.path.parent() {
            let _ = tokio::fs::remove_dir(dir).await;
        }
    }
    match measured {
        Ok(report) => Ok(decide(report, outputs.boost)),
        Err(e) if e.is_input_fault() => Ok(Checked::Rejected {
            code: ReasonCode::MeasureFailed,
            message: format!("quality measurement failed: {}", e.reason()),
            report: None,
        }),
        Err(e) => Err(e),
    }
}

pub async fn run(ctx: &Ctx<'_>, v: &Variation, asset: &Asset) -> Outcome {
    let Some(outputs) = v.outputs.as_ref().filter(|o| o.all_present()) else {
        // The work folder is gone (restart on another disk): transcode again.
        return Outcome::advance(
            Update::to(State::Transcoding).note("outputs missing; transcoding again"),
        );
    };
    let Some(probe) = v.master_probe.as_ref() else {
        return Outcome::Retry(anyhow::anyhow!(
            "a variation past arrival has no master probe"
        ));
    };
    let Some(profile) = Profile::resolve(ctx.settings, &asset.profile) else {
        return unknown_profile(asset);
    };
    let Some(expected) = super::master_spec(asset, v) else {
        return Outcome::Retry(anyhow::anyhow!(
            "no description of the master to check against"
        ));
    };
    let master = crate::tri!(arrival::local_master(ctx, v).await, "fetching the master");
    let req = QcRequest {
        overrides: asset.qc.as_ref(),
        profile,
        expected: &expected,
        output_quality: asset.brief.output_quality(),
        ttl_remaining_secs: policy::ttl_remaining_secs(
            v.arrived_at.unwrap_or(v.created_at),
            asset.ttl_secs,
            now_ms(),
        ),
        normalization: outputs.loudness.clone(),
        destinations: &asset.destinations,
    };
    let checked = run_media(ctx.runner, ctx.settings, &master, probe, outputs, req).await;
    match crate::tri!(checked, "measuring quality") {
        Checked::Pass(report) => {
            let mut note = format!("QC passed (SSIM floor {:.4}", report.ssim_floor);
            match report.vmaf_floor {
                Some(f) => note.push_str(&format!(", VMAF floor {f:.1})")),
                None => note.push(')'),
            }
            if !report.destinations.is_empty() {
                let each: Vec<String> = report.destinations.iter().map(|d| d.summary()).collect();
                note.push_str(&format!("; destinations: {}", each.join("; ")));
            }
            Outcome::advance(Update {
                qc: Some(report),
                ..Update::to(State::Publishing).note(note)
            })
        }
        Checked::Remediate { report, boost } => {
            let note = format!(
                "remediation: {}; re-encoding once at higher quality",
                report.summary()
            );
            Outcome::advance(Update {
                outputs: Some(Some(Outputs {
                    boost,
                    ..outputs.clone()
                })),
                qc: Some(report),
                ..Update::to(State::Transcoding).note(note)
            })
        }
        Checked::Rejected {
            code,
            message,
            report,
        } => {
            let failed = report.is_some();
            let mut record = Update {
                qc: report,
                ..Default::default()
            };
            if failed {
                record.note = Some("QC failed".into());
            }
            Outcome::reject(code, message).recording(record)
        }
    }
}
