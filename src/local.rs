//! `reelay process MASTER`: arrival checks, transcode and QC on a local file,
//! with the same code the pipeline runs, and no generator, store or CDN.
//! Exit status: 0 when the master passes, 3 when it is rejected.

use crate::config::Settings;
use crate::media::process::{ProcessError, Runner};
use crate::media::timing::{secs_since, timed, Timings};
use crate::policy::{Container, MasterSpec, QcReport};
use crate::reason::ReasonCode;
use crate::runware::validate::parse_generation;
use crate::runware::GenerationRequest;
use crate::stages::arrival::{self, Inspection};
use crate::stages::check::{self, Checked, QcRequest};
use crate::stages::transcode::{self, Transcoded};
use crate::stages::{self};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const EXIT_REJECTED: u8 = 3;

#[derive(Debug, Serialize)]
pub struct Reason {
    pub code: ReasonCode,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct ProcessReport {
    pub master: PathBuf,
    pub profile: String,
    /// `pass` or `rejected`.
    pub verdict: &'static str,
    /// The stage that decided: `arrival` or `qc`.
    pub stage: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    pub sha256: Option<String>,
    pub probe: Option<Value>,
    pub qc: Option<QcReport>,
    pub outputs: Vec<PathBuf>,
    /// Whether QC sent the transcode back once at a higher quality.
    pub remediated: bool,
    pub elapsed_secs: f64,
}

impl ProcessReport {
    fn rejected(mut self, stage: &'static str, code: ReasonCode, message: String) -> Self {
        self.verdict = "rejected";
        self.stage = stage;
        self.reason = Some(Reason {
            code,
            message: stages::client_text(&message),
        });
        self
    }
}

/// Reads `--request`: a `generation` object, or a whole asset request.
pub fn read_request(path: &Path) -> anyhow::Result<GenerationRequest> {
    let v: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let g = v.get("generation").cloned().unwrap_or(v);
    parse_generation(&g, "generation").map_err(|errs| {
        let list: Vec<String> = errs
            .iter()
            .map(|e| format!("{}: {}", e.path, e.rule))
            .collect();
        anyhow::anyhow!("invalid request file: {}", list.join("; "))
    })
}

/// `reelay process`: the pipeline's own arrival read, transcode and check
/// (with its remediation rule) on a local file. Without `request` the master
/// is judged as an upload by hand is: as its own request. `destinations`
/// (`[destinations.NAME]` tables) get the files their bands need in the
/// transcode and their verdicts in the report, as in the service.
pub async fn process(
    settings: &Settings,
    master: &Path,
    profile: &str,
    request: Option<&GenerationRequest>,
    destinations: &[String],
    out_dir: &Path,
) -> anyhow::Result<ProcessReport> {
    settings.require_profile(profile)?;
    if let Some(unknown) = destinations
        .iter()
        .find(|d| !settings.destinations.contains_key(*d))
    {
        let known: Vec<&str> = settings.destinations.keys().map(String::as_str).collect();
        anyhow::bail!(
            "unknown destination {unknown:?} (configured: {})",
            known.join(", ")
        );
    }
    let resolved = stages::Profile::resolve(settings, profile).expect("checked above");
    let started = Instant::now();
    let runner = Runner::new(&settings.media);
    runner.version().await?;
    let mut report = ProcessReport {
        master: master.to_path_buf(),
        profile: profile.to_string(),
        verdict: "pass",
        stage: "qc",
        reason: None,
        sha256: None,
        probe: None,
        qc: None,
        outputs: Vec::new(),
        remediated: false,
        elapsed_secs: 0.0,
    };
    let arrival_started = Instant::now();
    let expected = request.map(GenerationRequest::master_spec);
    // The digest reads the bytes while ffprobe and the packet read run.
    let size = tokio::fs::metadata(master).await?.len();
    let (digest, inspection) = tokio::join!(
        crate::publish::digest_file(master),
        arrival::inspect(&runner, master, size, expected.as_ref(), settings)
    );
    let (sha, _) = digest?;
    report.sha256 = Some(sha);
    let finish = |mut r: ProcessReport| {
        r.elapsed_secs = started.elapsed().as_secs_f64();
        Ok(r)
    };

    let probe = match inspection? {
        Inspection::Verified(p) => p,
        Inspection::Rejected {
            code,
            message,
            probe,
        } => {
            report.probe = probe.map(|p| serde_json::to_value(&p)).transpose()?;
            return finish(report.rejected("arrival", code, message));
        }
    };
    let arrival_secs = secs_since(arrival_started);
    report.probe = Some(serde_json::to_value(&probe)?);
    let key = master.to_string_lossy();
    let expected = expected
        .unwrap_or_else(|| MasterSpec::from_probe(&probe, Container::of_upload(&key, &probe)));
    let ttl = request
        .and_then(|r| r.ttl)
        .map(i64::from)
        .unwrap_or(settings.policy.default_ttl_secs as i64);
    let output_quality = request
        .map(|r| r.effective_output_quality())
        .unwrap_or(settings.uploads.output_quality);

    let mut boost = 0;
    loop {
        let mut outputs = match transcode::run_media(
            &runner,
            settings,
            resolved,
            destinations,
            master,
            &probe,
            boost,
            out_dir,
            None,
        )
        .await?
        {
            Transcoded::Done(o, _) => o,
            Transcoded::Rejected { code, message } => {
                return finish(report.rejected("transcode", code, message))
            }
        };
        outputs.timings.arrival_read_secs = Some(arrival_secs);
        report.outputs = outputs.files.iter().map(|f| f.path.clone()).collect();
        let req = QcRequest {
            profile: resolved,
            expected: &expected,
            output_quality,
            ttl_remaining_secs: ttl,
            overrides: None,
            normalization: outputs.loudness.clone(),
            destinations,
        };
        match check::run_media(&runner, settings, master, &probe, &outputs, req).await? {
            Checked::Pass(qc) => {
                report.qc = Some(qc);
                return finish(report);
            }
            Checked::Remediate { boost: b, .. } => {
                report.remediated = true;
                boost = b;
            }
            Checked::Rejected {
                code,
                message,
                report: qc,
            } => {
                report.qc = qc;
                return finish(report.rejected("qc", code, message));
            }
        }
    }
}

/// The report for a person: verdict, reason, and each failed check.
pub fn print_human(r: &ProcessReport) {
    println!(
        "{}: {} ({} stage, profile {})",
        r.master.display(),
        r.verdict.to_uppercase(),
        r.stage,
        r.profile
    );
    if let Some(reason) = &r.reason {
        println!("  {}: {}", reason.code, reason.message);
    }
    if let Some(qc) = &r.qc {
        for m in &qc.renditions {
            println!(
                "  {:<6} SSIM {:.4}  PSNR {:.2} dB  {} bytes",
                m.name, m.ssim, m.psnr, m.size_bytes
            );
        }
        if let Some(l) = qc.content.as_ref().and_then(|c| c.loudness) {
            println!(
                "  loudness {:.1} LUFS, range {:.1} LU, true peak {:.1} dBTP",
                l.integrated_lufs, l.range_lu, l.true_peak_dbtp
            );
        }
        if let Some(n) = &qc.loudness_normalization {
            println!("  {}", transcode::loudness_note(n));
            if let (Some(l), Some(r)) = (n.after, &n.after_rendition) {
                println!(
                    "  delivered ({r}): {:.1} LUFS, true peak {:.1} dBTP",
                    l.integrated_lufs, l.true_peak_dbtp
                );
            }
        }
        let t = &qc.timings;
        let runs: Vec<String> = [
            ("arrival", t.arrival_read_secs),
            ("loudness pass", t.loudness_pass_secs),
            ("transcode", t.transcode_secs),
            ("quality pass", t.quality_pass_secs),
            ("content analysis", t.content_analysis_secs),
            ("output probes", t.output_probes_secs),
        ]
        .iter()
        .filter_map(|(what, secs)| secs.map(|s| format!("{what} {s:.2} s")))
        .collect();
        println!("  runs: {}", runs.join(", "));
        for c in qc.failures() {
            println!(
                "  FAIL {} {}: {}",
                c.subject,
                c.rule,
                c.reason.clone().unwrap_or_default()
            );
        }
        for c in &qc.corrections {
            println!(
                "  corrected {} for {}: {} -> {} -> measured {}{}",
                c.rule,
                c.destinations.join(", "),
                c.measured,
                c.action,
                c.result,
                if c.passed { "" } else { " (FAILS)" }
            );
        }
        for d in &qc.destinations {
            let verdict = if d.passed { "ready" } else { "not ready" };
            println!(
                "  destination {}: {verdict} ({})",
                d.name,
                d.files.join(", ")
            );
            for r in &d.reasons {
                println!(
                    "    {} {}: {} (limit {})",
                    r.subject, r.rule, r.measured, r.limit
                );
            }
        }
    }
    for o in &r.outputs {
        println!("  wrote {}", o.display());
    }
}

/// What `reelay transcode` found out about one output it wrote.
#[derive(Debug, Serialize)]
pub struct OutputSummary {
    pub name: String,
    /// mp4, webm or hls.
    pub kind: &'static str,
    /// Its main file (the media playlist for HLS), relative to the folder.
    pub file: String,
    pub width: u32,
    pub height: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crop: Option<crate::media::Crop>,
    /// What was asked of the encoder.
    pub crf: Option<u8>,
    pub bitrate_kbps: Option<u32>,
    pub maxrate_kbps: u32,
    pub bufsize_kbps: u32,
    /// What ffprobe reads back.
    pub probed: Probed,
    /// Bytes of every file of the output (segments included).
    pub bytes: u64,
}

/// The probed facts of a written file.
#[derive(Debug, Serialize, Default)]
pub struct Probed {
    pub format: String,
    pub video_codec: Option<String>,
    pub profile: Option<String>,
    /// ffprobe's level number (40 = 4.0).
    pub level: Option<i32>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub pix_fmt: Option<String>,
    pub fps: Option<f64>,
    pub duration_secs: f64,
    /// Whole-file bit rate, bit/s.
    pub bit_rate: Option<u64>,
    pub audio_codec: Option<String>,
    pub audio_sample_rate: Option<u32>,
    pub audio_channels: Option<u32>,
    /// MP4 only: the moov box comes before mdat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moov_first: Option<bool>,
}

impl From<&crate::media::Probe> for Probed {
    fn from(p: &crate::media::Probe) -> Self {
        let v = p.video.as_ref();
        let a = p.audio.as_ref();
        Self {
            format: p.format_name.clone(),
            video_codec: v.map(|v| v.codec.clone()),
            profile: v.and_then(|v| v.profile.clone()),
            level: v.and_then(|v| v.level),
            width: v.map(|v| v.width),
            height: v.map(|v| v.height),
            pix_fmt: v.and_then(|v| v.pix_fmt.clone()),
            fps: v.map(|v| v.fps),
            duration_secs: p.duration_secs,
            bit_rate: p.bit_rate,
            audio_codec: a.map(|a| a.codec.clone()),
            audio_sample_rate: a.map(|a| a.sample_rate),
            audio_channels: a.map(|a| a.channels),
            moov_first: None,
        }
    }
}

/// `DIR/summary.json` of `reelay transcode`.
#[derive(Debug, Serialize)]
pub struct TranscodeSummary {
    pub master: PathBuf,
    pub profile: String,
    pub master_probe: Probed,
    pub outputs: Vec<OutputSummary>,
    /// Outputs of the profile left out because they would upscale the master.
    pub dropped: Vec<crate::media::profile::Dropped>,
    /// `hls/master.m3u8` when the profile has HLS outputs.
    pub hls_master: Option<String>,
    /// Posters, sprites, previews and their sidecars.
    pub stills: Vec<crate::media::transcode::WrittenFile>,
    /// Every file written (summary.json aside), relative to the folder.
    pub files: Vec<crate::media::transcode::WrittenFile>,
    /// The ffmpeg run alone.
    pub transcode_secs: f64,
    /// Wall time of each run: the master's probe, loudness pass 1 (when the
    /// profile normalises), the transcode, the probes of the outputs.
    pub timings: Timings,
    /// The whole command: probe, plan, ffmpeg, probes of the outputs.
    pub elapsed_secs: f64,
    /// The ffmpeg command line, binary first.
    pub ffmpeg_argv: Vec<String>,
    /// reelay's own peak resident memory (VmHWM), ffmpeg excluded.
    pub reelay_peak_rss_kb: Option<u64>,
}

/// This process's peak resident set size in kB (Linux `VmHWM`).
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The master's probe and the transcode stage's own plan for it.
async fn probe_and_plan(
    settings: &Settings,
    runner: &Runner,
    master: &Path,
    profile: &str,
) -> anyhow::Result<(crate::media::Probe, crate::media::TranscodePlan, f64)> {
    settings.require_profile(profile)?;
    let resolved = stages::Profile::resolve(settings, profile).expect("checked above");
    anyhow::ensure!(master.is_file(), "{} is not a file", master.display());
    let (probe, probe_secs) = timed(runner.ffprobe(master)).await;
    let probe = probe.map_err(|e| {
        if e.is_input_fault() {
            anyhow::anyhow!("ffprobe cannot read the master: {}", e.reason())
        } else {
            anyhow::Error::new(e)
        }
    })?;
    let (plan, _) =
        transcode::plan(&probe, settings, resolved, &[], 0).map_err(anyhow::Error::msg)?;
    Ok((probe, plan, probe_secs))
}

fn dropped_outputs(
    settings: &Settings,
    profile: &str,
    probe: &crate::media::Probe,
) -> Vec<crate::media::profile::Dropped> {
    let (Some(p), Some(v)) = (settings.profiles.get(profile), probe.video.as_ref()) else {
        return Vec::new();
    };
    let defaults;
    let outputs = if p.outputs.is_empty() {
        defaults = crate::media::profile::default_outputs();
        &defaults
    } else {
        &p.outputs
    };
    crate::media::profile::dropped(outputs, v.width, v.height)
}

/// `reelay transcode --print-args`: the ffmpeg command line the run would
/// use, binary first, without running it.
pub async fn transcode_argv(
    settings: &Settings,
    master: &Path,
    profile: &str,
    out_dir: &Path,
) -> anyhow::Result<Vec<String>> {
    let runner = Runner::new(&settings.media);
    let (_, plan, _) = probe_and_plan(settings, &runner, master, profile).await?;
    let args = crate::media::build_args(master, &plan, out_dir);
    Ok(runner.ffmpeg_argv(&args, true))
}

/// `reelay transcode MASTER --profile NAME --out DIR`: probe, plan, one
/// ffmpeg run for every output of the profile, then ffprobe of each output
/// and `DIR/summary.json`. A master ffmpeg cannot read is an error carrying
/// ffmpeg's reason.
pub async fn transcode_only(
    settings: &Settings,
    master: &Path,
    profile: &str,
    out_dir: &Path,
) -> anyhow::Result<TranscodeSummary> {
    use crate::media::transcode::{rendition_rel, FileRole};
    let started = Instant::now();
    let runner = Runner::new(&settings.media);
    let (probe, plan, probe_secs) = probe_and_plan(settings, &runner, master, profile).await?;
    let resolved = stages::Profile::resolve(settings, profile).expect("checked above");
    // The stage's own run: loudness pass 1 where the profile normalises,
    // then the one-pass transcode.
    let executed = transcode::execute(
        &runner,
        settings,
        resolved,
        &[],
        master,
        &probe,
        plan.clone(),
        out_dir,
        None,
    )
    .await
    .map_err(|e| match e {
        // The deadline is the reason, not ffmpeg's last words.
        ProcessError::Timeout { .. } => anyhow::anyhow!("{e}"),
        e => anyhow::Error::new(e),
    })?;
    let transcode::Executed {
        out, mut timings, ..
    } = executed.map_err(anyhow::Error::msg)?;
    timings.master_probe_secs = Some(probe_secs);
    // The outputs are probed side by side: the summary should cost little
    // next to the transcode.
    let probes = plan.renditions.iter().map(|r| {
        let path = crate::media::transcode::rendition_path(out_dir, r);
        let runner = &runner;
        async move { runner.ffprobe_own(&path).await }
    });
    let (probes, probes_secs) = timed(futures::future::try_join_all(probes)).await;
    let probes = probes?;
    timings.output_probes_secs = Some(probes_secs);
    let mut outputs = Vec::new();
    for (r, p) in plan.renditions.iter().zip(&probes) {
        let path = crate::media::transcode::rendition_path(out_dir, r);
        let mut probed = Probed::from(p);
        if r.kind == crate::media::OutputKind::Mp4 {
            probed.moov_first = Some(crate::media::moov_before_mdat(&path)?);
        }
        let mut bytes = 0;
        for f in out
            .files
            .iter()
            .filter(|f| f.output.as_ref() == Some(&r.name))
        {
            bytes += tokio::fs::metadata(&f.path).await?.len();
        }
        if r.kind == crate::media::OutputKind::Hls && probed.duration_secs > 0.0 {
            // A playlist has no container bit rate: the segments' average.
            probed.bit_rate = Some((bytes as f64 * 8.0 / probed.duration_secs) as u64);
        }
        outputs.push(OutputSummary {
            name: r.name.clone(),
            kind: r.kind.as_str(),
            file: rendition_rel(r),
            width: r.width,
            height: r.height,
            crop: r.crop,
            crf: r.crf,
            bitrate_kbps: r.bitrate_kbps,
            maxrate_kbps: r.maxrate_kbps,
            bufsize_kbps: r.bufsize_kbps,
            probed,
            bytes,
        });
    }
    let stills = out
        .files
        .iter()
        .filter(|f| {
            matches!(
                f.role,
                FileRole::Poster | FileRole::Sprite | FileRole::Storyboard | FileRole::Preview
            )
        })
        .cloned()
        .collect();
    let mut summary = TranscodeSummary {
        master: master.to_path_buf(),
        profile: profile.to_owned(),
        master_probe: Probed::from(&probe),
        dropped: dropped_outputs(settings, profile, &probe),
        outputs,
        hls_master: out
            .hls_master
            .as_ref()
            .map(|_| crate::media::transcode::HLS_MASTER.to_owned()),
        stills,
        files: out.files.clone(),
        transcode_secs: out.elapsed.as_secs_f64(),
        timings,
        elapsed_secs: 0.0,
        ffmpeg_argv: runner.ffmpeg_argv(&out.args, true),
        reelay_peak_rss_kb: None,
    };
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    summary.reelay_peak_rss_kb = peak_rss_kb();
    tokio::fs::write(
        out_dir.join("summary.json"),
        serde_json::to_vec_pretty(&summary)?,
    )
    .await?;
    Ok(summary)
}

/// The transcode summary for a person.
pub fn print_transcode(s: &TranscodeSummary) {
    println!(
        "{}: profile {}, {} outputs in {:.2} s (ffmpeg {:.2} s)",
        s.master.display(),
        s.profile,
        s.outputs.len(),
        s.elapsed_secs,
        s.transcode_secs
    );
    for o in &s.outputs {
        let p = &o.probed;
        println!(
            "  {:<12} {:<4} {}x{} {} {} {:.3} fps {:.3} s {} kbps  audio {} {} Hz {} ch  {}",
            o.name,
            o.kind,
            p.width.unwrap_or(0),
            p.height.unwrap_or(0),
            p.video_codec.as_deref().unwrap_or("-"),
            p.profile.as_deref().unwrap_or("-"),
            p.fps.unwrap_or(0.0),
            p.duration_secs,
            p.bit_rate.unwrap_or(0) / 1000,
            p.audio_codec.as_deref().unwrap_or("-"),
            p.audio_sample_rate.unwrap_or(0),
            p.audio_channels.unwrap_or(0),
            o.file
        );
    }
    for d in &s.dropped {
        println!(
            "  {:<12} dropped: {}x{} would upscale the {}x{} frame",
            d.name, d.width, d.height, d.frame_width, d.frame_height
        );
    }
    if let Some(m) = &s.hls_master {
        println!("  hls master   {m}");
    }
    for f in &s.stills {
        println!("  still        {}", f.rel);
    }
    if let Some(kb) = s.reelay_peak_rss_kb {
        println!("  reelay peak RSS {kb} kB (ffmpeg excluded)");
    }
}
