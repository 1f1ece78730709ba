//! Wall time of each run of a variation's media work, recorded in the QC
//! report (and `reelay transcode`'s summary.json): where the time goes.

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Seconds per run; a run that did not happen (or was not timed, e.g. the
/// arrival read of a master that arrived before timings were kept) is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Arrival read: size, SHA-256 and the master's one probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_read_secs: Option<f64>,
    /// The master's one ffprobe (part of the arrival read in the pipeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_probe_secs: Option<f64>,
    /// Loudness pass 1 (audio only), when the profile normalises.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness_pass_secs: Option<f64>,
    /// The one-pass transcode (every output and still, and the content
    /// analysis when it ran inside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcode_secs: Option<f64>,
    /// The quality measurement (SSIM/PSNR, VMAF where available).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_pass_secs: Option<f64>,
    /// A stand-alone content analysis pass over the master; absent when the
    /// analysis ran inside the transcode ([`Timings::content_in_transcode`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_analysis_secs: Option<f64>,
    /// The content analysis ran on the transcode's own decode.
    #[serde(default)]
    pub content_in_transcode: bool,
    /// Every quality comparison read the frames the transcode wrote
    /// (`measure::StoredReference`): the master was not decoded again.
    #[serde(default)]
    pub quality_on_transcode_frames: bool,
    /// Measuring the delivered audio (when loudness was normalised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_loudness_secs: Option<f64>,
    /// Probes of the outputs (side by side with the quality pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_probes_secs: Option<f64>,
    /// Upload of the published set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_secs: Option<f64>,
}

/// Seconds since `start`, rounded to the millisecond.
pub fn secs_since(start: Instant) -> f64 {
    secs(start.elapsed())
}

pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Runs `f` and returns its output with its wall time in seconds.
pub async fn timed<F: std::future::Future>(f: F) -> (F::Output, f64) {
    let start = Instant::now();
    let out = f.await;
    (out, secs_since(start))
}
