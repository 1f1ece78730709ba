//! `arrived`/`transcoding` → `checking`: the profile's plan for this master
//! (raised by a remediation's boost), loudness pass 1 when the profile
//! normalises, then one ffmpeg process that decodes the master once and
//! writes every output and still.
//!
//! [`run_media`] is the media half, shared with `reelay process`.

use super::{arrival, unknown_profile, Ctx, Outcome, Profile};
use crate::config::Settings;
use crate::destinations::heal::{self, HealPlan};
use crate::jobs::model::{Asset, Outputs, Update, Variation};
use crate::jobs::progress::ffmpeg_progress;
use crate::jobs::State;
use crate::media::analyze::DetectSettings;
use crate::media::level::H264Level;
use crate::media::loudness::{self, Normalization, Status};
use crate::media::outputs::rendition_files;
use crate::media::probe::Probe;
use crate::media::process::{ProcessError, Progress, Runner};
use crate::media::timing::{secs, timed, Timings};
use crate::media::transcode::{add_banded, boost_plan, plan_for, BandedOutput};
use crate::media::transcode::{transcode, InlineAnalysis, TranscodeOutput, TranscodePlan};
use crate::reason::ReasonCode;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Loudness normalisation for this master under `profile`: none without a
/// loudness target; otherwise pass 1 (audio only) and the record of what
/// pass 2 will do, or why it will not run. `plan.audio_filter` is set when
/// it runs. After the transcode, [`Normalization::record_pass2`] notes the
/// mode that ran. A profile without a target takes the one the asset's
/// `destinations` share (`destinations::heal::loudness_target`), unless it
/// turns normalisation off.
pub async fn prepare_loudness(
    runner: &Runner,
    settings: &Settings,
    profile: Profile<'_>,
    destinations: &[String],
    master: &Path,
    probe: &Probe,
    plan: &mut TranscodePlan,
) -> Result<Option<Normalization>, ProcessError> {
    let p = profile.settings;
    let (target, allowed) = match p.loudness_target() {
        Some(t) => (Some(t), p.normalizes_loudness()),
        None => {
            let shared = heal::loudness_target(destinations, &settings.destinations)
                .ok()
                .flatten();
            (
                shared.map(|(lufs, peak)| loudness::Target::for_profile(lufs, peak)),
                p.normalize_loudness.unwrap_or(true),
            )
        }
    };
    let n = loudness::prepare(
        runner,
        master,
        probe.audio.is_some() && plan.has_audio,
        target,
        allowed,
        Duration::from_secs(settings.media.transcode_timeout_secs),
    )
    .await?;
    plan.audio_filter = n.as_ref().and_then(Normalization::audio_filter);
    Ok(n)
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

/// What the media half of the transcode ended with.
#[derive(Debug)]
pub enum Transcoded {
    /// The outputs, and the renditions made for the destinations' bands.
    Done(Box<Outputs>, Vec<Added>),
    /// The master cannot be transcoded (a client fault, not ours).
    Rejected { code: ReasonCode, message: String },
}

/// The plan for this master under `profile`, with what the asset's
/// `destinations` need beside it (see [`for_destinations`]), raised by
/// `boost` steps; a master no plan fits is the client's fault
/// (`transcodeFailed`).
pub fn plan(
    probe: &Probe,
    settings: &Settings,
    profile: Profile<'_>,
    destinations: &[String],
    boost: u8,
) -> Result<(TranscodePlan, Vec<Added>), String> {
    let mut plan = plan_for(probe, profile.settings, &settings.media)
        .map_err(|reason| format!("no transcode plan for this master: {reason}"))?;
    heal(&mut plan, probe, settings, destinations);
    let added = for_destinations(&mut plan, probe, settings, destinations);
    boost_plan(&mut plan, boost);
    Ok((plan, added))
}

/// Conforms every output to what the asset's destinations take where the
/// master does not (`destinations::heal`: one frame rate for the whole set,
/// a trim to a slot a frame or two short), in the same pass: the keyframe
/// interval and the H.264 levels follow the conformed rate.
fn heal(plan: &mut TranscodePlan, probe: &Probe, settings: &Settings, destinations: &[String]) {
    let heal = HealPlan::for_master(destinations, &settings.destinations, probe);
    plan.conform = heal.conform();
    if let Some((n, d)) = plan.conform.fps {
        plan.fps = f64::from(n) / f64::from(d);
        for r in plan.renditions.iter_mut().filter(|r| r.kind.is_h264()) {
            let needed = H264Level::lowest_for(r.width, r.height, plan.fps, r.maxrate_kbps);
            r.level = r.level.max(Some(needed));
        }
    }
}

/// A rendition made for the destinations' bands, not the profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Added {
    pub name: String,
    pub destinations: Vec<String>,
}

/// AAC rates a file may be given, lowest first.
const AAC_KBPS: [u32; 5] = [128, 160, 192, 256, 320];

/// Adds to `plan`, in the same pass, the H.264 MP4 files the destinations'
/// bitrate bands need and no profile rendition is sure to land in (the
/// union of their needs: a file several destinations accept is made once).
/// Outputs of other containers or codecs, and outputs without a band, are
/// left to the profile: the verdict says when they are missing.
fn for_destinations(
    plan: &mut TranscodePlan,
    probe: &Probe,
    settings: &Settings,
    destinations: &[String],
) -> Vec<Added> {
    let Some(video) = probe.video.as_ref() else {
        return Vec::new();
    };
    let needed = crate::destinations::preflight::needed_for_master(
        destinations,
        &settings.destinations,
        (video.width, video.height),
    );
    let top_audio = plan
        .renditions
        .iter()
        .map(|r| r.audio_bitrate_kbps)
        .max()
        .unwrap_or(128);
    let mut added = Vec::new();
    for n in needed {
        let h264_mp4 = matches!(n.container.as_str(), "mp4" | "mov") && n.video_codec == "h264";
        if !h264_mp4 || (n.min_kbps.is_none() && n.max_kbps.is_none()) {
            continue;
        }
        // The served destinations' audio floor, with room for the encoder's
        // spread, on a standard AAC rate.
        let floor = n
            .destinations
            .iter()
            .filter_map(|d| settings.destinations.get(d)?.audio_min_kbps)
            .max()
            .map_or(0, |k| k + k / 20);
        let audio = AAC_KBPS
            .into_iter()
            .find(|k| *k >= floor)
            .unwrap_or(320)
            .max(top_audio);
        let out = BandedOutput {
            width: n.width,
            height: n.height,
            min_kbps: n.min_kbps,
            max_kbps: n.max_kbps,
            audio_kbps: audio,
        };
        for name in add_banded(plan, std::slice::from_ref(&out)) {
            added.push(Added {
                name,
                destinations: n.banded_by.clone(),
            });
        }
    }
    added
}

/// The history note of a finished transcode: the renditions, the files
/// made for the destinations' bands, what was conformed for them (frame
/// rate from and to, the trim to a slot) and what loudness normalisation
/// did, so ad-ops read it without opening the QC report.
pub fn done_note(outputs: &Outputs, added: &[Added], heal: &HealPlan) -> String {
    let mut note = format!("transcoded {} renditions", outputs.renditions.len());
    for a in added {
        note.push_str(&format!("; {} for {}", a.name, a.destinations.join(", ")));
    }
    if let Some(conform) = heal.note() {
        note.push_str(&format!("; {conform}"));
    }
    if let Some(n) = &outputs.loudness {
        note.push_str(&format!("; {}", loudness_note(n)));
    }
    note
}

/// What one run of a plan wrote, and what loudness normalisation did.
pub struct Executed {
    pub out: TranscodeOutput,
    pub loudness: Option<Normalization>,
    /// Loudness pass 1 (when it measured the master) and the transcode.
    pub timings: Timings,
}

/// Loudness pass 1 when the profile normalises, then the one-pass
/// transcode of `plan` into `out_dir`. `Ok(Err(reason))` is the master's
/// fault; `Err` is ours (ffmpeg missing, disk).
#[allow(clippy::too_many_arguments)]
pub async fn execute(
    runner: &Runner,
    settings: &Settings,
    profile: Profile<'_>,
    destinations: &[String],
    master: &Path,
    probe: &Probe,
    mut plan: TranscodePlan,
    out_dir: &Path,
    on_progress: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
) -> Result<Result<Executed, String>, ProcessError> {
    tokio::fs::create_dir_all(out_dir).await?;
    let mut timings = Timings::default();
    let (pass1, pass1_secs) = timed(prepare_loudness(
        runner,
        settings,
        profile,
        destinations,
        master,
        probe,
        &mut plan,
    ))
    .await;
    let mut loudness = match pass1 {
        Ok(n) => n,
        Err(e) if e.is_input_fault() => {
            return Ok(Err(format!(
                "ffmpeg could not measure the master's loudness: {}",
                e.reason()
            )))
        }
        Err(e) => return Err(e),
    };
    let deadline = Duration::from_secs(settings.media.transcode_timeout_secs);
    let out = match transcode(runner, master, probe, &plan, out_dir, on_progress, deadline).await {
        Ok(o) => o,
        Err(e) if e.is_input_fault() => {
            return Ok(Err(format!(
                "ffmpeg could not transcode the master: {}",
                e.reason()
            )))
        }
        Err(e) => return Err(e),
    };
    if let Some(n) = loudness.as_mut() {
        n.record_pass2(&out.log);
    }
    if loudness.as_ref().is_some_and(|n| n.before.is_some()) {
        timings.loudness_pass_secs = Some(pass1_secs);
    }
    timings.transcode_secs = Some(secs(out.elapsed));
    timings.content_in_transcode = out.content.is_some();
    Ok(Ok(Executed {
        out,
        loudness,
        timings,
    }))
}

/// [`plan`] then [`execute`]: the media half of the stage.
#[allow(clippy::too_many_arguments)]
pub async fn run_media(
    runner: &Runner,
    settings: &Settings,
    profile: Profile<'_>,
    destinations: &[String],
    master: &Path,
    probe: &Probe,
    boost: u8,
    out_dir: &Path,
    on_progress: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
) -> Result<Transcoded, ProcessError> {
    let rejected = |message: String| {
        Ok(Transcoded::Rejected {
            code: ReasonCode::TranscodeFailed,
            message,
        })
    };
    let (mut plan, added) = match plan(probe, settings, profile, destinations, boost) {
        Ok(p) => p,
        Err(why) => return rejected(why),
    };
    // QC's content analysis rides on this decode instead of decoding the
    // master again.
    plan.analysis = Some(InlineAnalysis {
        detect: DetectSettings::default(),
        audio: probe.audio.is_some(),
    });
    // And its quality pass compares with frames written on the way, as
    // far as the disk keeps its margin after them.
    tokio::fs::create_dir_all(out_dir).await?;
    let spare = crate::jobs::workdir::free_bytes(out_dir)
        .map(|free| free.saturating_sub(settings.data.free_space_margin_bytes))
        .unwrap_or(0);
    plan.add_quality_references(
        out_dir,
        probe.duration_secs,
        (settings
            .media
            .quality_reference_max_mb
            .saturating_mul(1 << 20))
        .min(spare),
    );
    let Executed {
        out,
        loudness,
        timings,
    } = match execute(
        runner,
        settings,
        profile,
        destinations,
        master,
        probe,
        plan,
        out_dir,
        on_progress,
    )
    .await?
    {
        Ok(done) => done,
        Err(why) => return rejected(why),
    };
    Ok(Transcoded::Done(
        Box::new(Outputs {
            renditions: rendition_files(&out),
            poster: out.poster.clone(),
            files: out.files.clone(),
            boost,
            loudness,
            content: out.content.clone(),
            timings,
            references: out.references.clone(),
        }),
        added,
    ))
}

pub async fn run(
    ctx: &Ctx<'_>,
    claim: &mut crate::jobs::Claim,
    v: &Variation,
    asset: &Asset,
) -> Outcome {
    let Some(profile) = Profile::resolve(ctx.settings, &asset.profile) else {
        return unknown_profile(asset);
    };
    let boost = v.requested_boost();
    let note = if claim.state == State::Arrived {
        "transcode started"
    } else if boost > 0 {
        "transcode at higher quality started (remediation)"
    } else {
        "transcode resumed after an interrupted run"
    };
    let start = Update {
        stage_detail: Some(Some(
            "transcoding every output and still in one pass".into(),
        )),
        stage_progress: Some(Some(0.0)),
        // Keep counting errors across resumes, or a failing transcode would retry forever.
        error_count: None,
        release: false,
        ..Update::to(State::Transcoding).note(note)
    };
    if !crate::tri!(ctx.store.update(claim, start).await) {
        return Outcome::Abandoned;
    }
    claim.state = State::Transcoding;
    let Some(probe) = v.master_probe.as_ref() else {
        return Outcome::Retry(anyhow::anyhow!(
            "a variation past arrival has no master probe"
        ));
    };
    let master = crate::tri!(arrival::local_master(ctx, v).await, "fetching the master");
    let cell = ctx.progress.clone();
    let input_secs = probe.duration_secs;
    let on_progress: Arc<dyn Fn(Progress) + Send + Sync> = Arc::new(move |p: Progress| {
        cell.report(ffmpeg_progress(State::Transcoding.as_str(), &p, input_secs));
    });
    let out_dir = ctx.work(v).join("out");
    // A previous run's files must not be taken for this one's.
    if out_dir.exists() {
        crate::tri!(tokio::fs::remove_dir_all(&out_dir).await);
    }
    let done = run_media(
        ctx.runner,
        ctx.settings,
        profile,
        &asset.destinations,
        &master,
        probe,
        boost,
        &out_dir,
        Some(on_progress),
    )
    .await;
    match crate::tri!(done, "transcoding") {
        Transcoded::Done(outputs, added) => {
            let heal = HealPlan::for_master(&asset.destinations, &ctx.settings.destinations, probe);
            let note = done_note(&outputs, &added, &heal);
            Outcome::advance(Update {
                outputs: Some(Some(*outputs)),
                ..Update::to(State::Checking).note(note)
            })
        }
        Transcoded::Rejected { code, message } => Outcome::reject(code, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        Settings::load_from(&dir, "test").unwrap()
    }

    /// A 24 fps master one frame over 15 s, stereo 48 kHz.
    fn probe() -> Probe {
        serde_json::from_value(serde_json::json!({
            "format_name": "mov,mp4", "duration_secs": 15.042, "size_bytes": 1000,
            "bit_rate": null,
            "video": {"codec": "h264", "profile": null, "level": null, "width": 1920,
                      "height": 1080, "pix_fmt": null, "fps": 24.0, "nb_frames": null},
            "audio": {"codec": "aac", "channels": 2, "sample_rate": 48000,
                      "channel_layout": null, "bit_rate": null}
        }))
        .unwrap()
    }

    fn outputs(loudness: Option<Normalization>) -> Outputs {
        serde_json::from_value(serde_json::json!({
            "renditions": [], "poster": "/o/poster.jpg",
            "loudness": loudness,
        }))
        .unwrap()
    }

    #[test]
    fn the_history_note_says_what_was_conformed_for_whom() {
        let s = settings();
        let names: Vec<String> = ["iab-ctv", "roku"].map(String::from).to_vec();
        let heal = HealPlan::for_master(&names, &s.destinations, &probe());
        let normalised: Normalization = serde_json::from_value(serde_json::json!({
            "status": "applied", "mode": "linear",
            "target": {"integrated_lufs": -23.0, "true_peak_dbtp": -3.0, "range_lu": 7.0},
            "before": {"input_i": -27.1, "input_tp": -20.0, "input_lra": 1.0,
                       "input_thresh": -37.0, "target_offset": 0.0}
        }))
        .unwrap();
        let added = [Added {
            name: "1080p-6600k".into(),
            destinations: vec!["iab-ctv".into(), "roku".into()],
        }];
        let note = done_note(&outputs(Some(normalised)), &added, &heal);
        assert_eq!(
            note,
            "transcoded 0 renditions; 1080p-6600k for iab-ctv, roku; \
             frame rate conformed from 24.000 fps to 23.976 fps for roku; \
             trimmed from 15.042 s to the 15 s slot for iab-ctv; \
             loudness normalised from -27.1 LUFS to -23 LUFS (linear mode)"
        );
        // Nothing conformed: nothing said.
        let none = HealPlan::for_master(&["ttd".to_string()], &s.destinations, &probe());
        assert_eq!(
            done_note(&outputs(None), &[], &none),
            "transcoded 0 renditions"
        );
    }
}
