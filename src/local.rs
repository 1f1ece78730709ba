//! `reelay process MASTER`: arrival checks, transcode and QC on a local file,
//! with the same code the pipeline runs, and no generator, store or CDN.
//! Exit status: 0 when the master passes, 3 when it is rejected.

use crate::config::Settings;
use crate::media::process::{ProcessError, Runner};
use crate::media::transcode::transcode;
use crate::policy::{self, Expected, QcReport, Verdict};
use crate::qc::{measure_and_evaluate, plan_for, rendition_files, QcRequest, RenditionFile};
use crate::runware::validate::parse_generation;
use crate::runware::{GenerationRequest, OutputFormat};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const EXIT_REJECTED: u8 = 3;

#[derive(Debug, Serialize)]
pub struct Reason {
    pub code: String,
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
    pub elapsed_secs: f64,
}

impl ProcessReport {
    fn rejected(mut self, stage: &'static str, code: &str, message: String) -> Self {
        self.verdict = "rejected";
        self.stage = stage;
        self.reason = Some(Reason {
            code: code.into(),
            message,
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

fn expected_without_request(probe: &crate::media::probe::Probe) -> Expected {
    let format = if probe.format_name.contains("webm") || probe.format_name.contains("matroska") {
        OutputFormat::Webm
    } else {
        OutputFormat::Mp4
    };
    Expected {
        width: None,
        height: None,
        duration_secs: None,
        audio: probe.audio.is_some(),
        format,
    }
}

pub async fn process(
    settings: &Settings,
    master: &Path,
    profile: &str,
    request: Option<&GenerationRequest>,
    out_dir: &Path,
) -> anyhow::Result<ProcessReport> {
    anyhow::ensure!(
        settings.profiles.contains_key(profile),
        "unknown profile {profile:?}; configured: {}",
        settings
            .profiles
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
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
        elapsed_secs: 0.0,
    };
    let (sha, size) = crate::publish::digest_file(master).await?;
    report.sha256 = Some(sha);
    let finish = |mut r: ProcessReport| {
        r.elapsed_secs = started.elapsed().as_secs_f64();
        Ok(r)
    };

    // Arrival: readable, and what the request asked for.
    if size == 0 {
        return finish(report.rejected("arrival", "masterSize", "the master is empty".into()));
    }
    let probe = match runner.ffprobe(master).await {
        Ok(p) => p,
        Err(e) if e.is_input_fault() => {
            return finish(report.rejected(
                "arrival",
                "masterUnreadable",
                format!("ffprobe cannot read the master: {}", e.reason()),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    report.probe = Some(serde_json::to_value(&probe)?);
    let expected = match request {
        Some(r) => Expected::from_request(r),
        None => expected_without_request(&probe),
    };
    let mismatches =
        policy::master_mismatches(&probe, &expected, settings.policy.duration_tolerance_secs);
    if !mismatches.is_empty() {
        let msg = format!(
            "the master does not match the request: {}",
            mismatches.join("; ")
        );
        return finish(report.rejected("arrival", "masterMismatch", msg));
    }

    // Transcode, then QC with the pipeline's own code.
    let plan = match plan_for(&probe, settings, profile) {
        Ok(p) => p,
        Err(reason) => return finish(report.rejected("arrival", "masterMismatch", reason)),
    };
    tokio::fs::create_dir_all(out_dir).await?;
    let deadline = Duration::from_secs(settings.media.transcode_timeout_secs);
    let out = match transcode(&runner, master, &probe, &plan, out_dir, None, deadline).await {
        Ok(o) => o,
        Err(e) if e.is_input_fault() => {
            return finish(report.rejected(
                "transcode",
                "transcodeFailed",
                format!("ffmpeg could not transcode the master: {}", e.reason()),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let renditions: Vec<RenditionFile> = rendition_files(&out);
    report.outputs = out.files.iter().map(|f| f.path.clone()).collect();
    let ttl = request
        .and_then(|r| r.ttl)
        .map(i64::from)
        .unwrap_or(settings.policy.default_ttl_secs as i64);
    let qc_req = QcRequest {
        profile,
        expected: &expected,
        output_quality: request.map(|r| r.effective_output_quality()).unwrap_or(95),
        ttl_remaining_secs: ttl,
        overrides: None,
    };
    let qc =
        match measure_and_evaluate(&runner, settings, master, &probe, &renditions, qc_req).await {
            Ok(q) => q,
            Err(e @ ProcessError::Failed { .. }) | Err(e @ ProcessError::Timeout { .. }) => {
                return finish(report.rejected(
                    "qc",
                    "measureFailed",
                    format!("quality measurement failed: {}", e.reason()),
                ));
            }
            Err(e) => return Err(e.into()),
        };
    if qc.verdict == Verdict::Fail {
        let summary = qc.summary();
        report.qc = Some(qc);
        return finish(report.rejected("qc", "qcFailed", summary));
    }
    report.qc = Some(qc);
    finish(report)
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
        for c in qc.failures() {
            println!(
                "  FAIL {} {}: {}",
                c.subject,
                c.rule,
                c.reason.clone().unwrap_or_default()
            );
        }
    }
    for o in &r.outputs {
        println!("  wrote {}", o.display());
    }
}
