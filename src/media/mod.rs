//! Media: every ffmpeg/ffprobe run (through [`process::Runner`]), ffprobe
//! parsing, the delivery ladder, the one-pass transcode, quality measurement
//! and synthetic generator footage.
//!
//! ffmpeg is always a child process (ffmpeg-sidecar, never downloaded); the
//! binaries are named in [`MediaConfig`].

pub mod analyze;
pub mod codec;
pub mod files;
pub mod hls;
pub mod ladder;
pub mod level;
pub mod loudness;
pub mod master_qc;
pub mod measure;
pub mod outputs;
pub mod probe;
pub mod process;
pub mod profile;
pub mod stills;
pub mod synth;
pub mod thumbnail;
pub mod timing;
pub mod transcode;

use serde::Deserialize;
use std::path::PathBuf;

pub use ladder::{default_ladder, Rendition};
pub use level::H264Level;
pub use measure::{ssim_psnr, QualityScore, Target};
pub use probe::{moov_before_mdat, AudioStream, Probe, ProbeError, VideoStream};
pub use process::{
    input_args, path_arg, ProcessError, Progress, ProgressFn, RunOptions, RunOutput, Runner,
};
pub use profile::{Aspect, Crop, OutputKind, OutputSpec};
pub use stills::{StillFormat, StillsGraph, StillsPlan, StillsSpec};
pub use synth::{render_clip, ClipFormat, ClipSpec};
pub use transcode::{build_args, transcode, TranscodeOutput, TranscodePlan};

/// The `[media]` settings section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MediaConfig {
    /// ffmpeg binary: a name looked up on PATH or an absolute path. Default "ffmpeg".
    pub ffmpeg_path: PathBuf,
    /// ffprobe binary. Default "ffprobe".
    pub ffprobe_path: PathBuf,
    /// ffmpeg runs allowed at once; more wait for a slot. 0 (default): CPU cores.
    pub max_concurrent: usize,
    /// Threads per ffmpeg run (decoder, filters, encoders). 0 (default): ffmpeg decides.
    pub threads: usize,
    /// A transcode or measurement running longer than this is killed. Default 900.
    pub transcode_timeout_secs: u64,
    /// An ffprobe (or `ffmpeg -version`) running longer than this is killed. Default 30.
    pub probe_timeout_secs: u64,
    /// An ffmpeg run that shows no progress (its output time and its read
    /// of the input stand still) this long is stopped (SIGTERM, then
    /// SIGKILL) and its step retried. 0: no watchdog. Default 120.
    pub stall_secs: u64,
    /// x264 preset for delivery renditions. Default "veryfast".
    pub x264_preset: String,
    /// Memory (MiB, `RLIMIT_DATA`) and CPU time (s) each ffmpeg run may
    /// use; 0: no limit. A run that reaches one fails with a plain reason.
    pub ffmpeg_memory_limit_mb: u64,
    pub ffmpeg_cpu_limit_secs: u64,
    /// The same for each ffprobe run.
    pub ffprobe_memory_limit_mb: u64,
    pub ffprobe_cpu_limit_secs: u64,
    /// Largest QC reference the transcode writes per crop (MiB of raw
    /// frames; see `transcode::TranscodePlan::add_quality_references`).
    /// A crop over it (a 4K rung) is compared with the master decoded
    /// again. 0: never write one. Default 2048 (15 s of 1080p at 30 fps is
    /// about 1,400).
    pub quality_reference_max_mb: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            ffmpeg_path: PathBuf::from("ffmpeg"),
            ffprobe_path: PathBuf::from("ffprobe"),
            max_concurrent: 0,
            threads: 0,
            transcode_timeout_secs: 900,
            probe_timeout_secs: 30,
            stall_secs: 120,
            x264_preset: "veryfast".to_owned(),
            ffmpeg_memory_limit_mb: 4096,
            ffmpeg_cpu_limit_secs: 3600,
            ffprobe_memory_limit_mb: 384,
            ffprobe_cpu_limit_secs: 60,
            quality_reference_max_mb: 2048,
        }
    }
}

impl MediaConfig {
    /// `max_concurrent` with 0 resolved to the number of CPU cores.
    pub fn effective_max_concurrent(&self) -> usize {
        if self.max_concurrent > 0 {
            self.max_concurrent
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }
    }

    /// `stall_secs` as the watchdog takes it (None: no watchdog).
    pub fn stall_after(&self) -> Option<std::time::Duration> {
        (self.stall_secs > 0).then(|| std::time::Duration::from_secs(self.stall_secs))
    }

    pub fn transcode_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.transcode_timeout_secs)
    }

    pub fn probe_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.probe_timeout_secs)
    }

    pub fn ffmpeg_limits(&self) -> process::ChildLimits {
        process::ChildLimits {
            memory_mb: self.ffmpeg_memory_limit_mb,
            cpu_secs: self.ffmpeg_cpu_limit_secs,
        }
    }

    pub fn ffprobe_limits(&self) -> process::ChildLimits {
        process::ChildLimits {
            memory_mb: self.ffprobe_memory_limit_mb,
            cpu_secs: self.ffprobe_cpu_limit_secs,
        }
    }
}

/// `HH:MM:SS.mmm`, as WebVTT cues and VAST's `Duration` write a time.
pub fn clock_millis(secs: f64) -> String {
    let ms = (secs.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers for the real-ffmpeg tests: they skip (with a message) when
    //! ffmpeg is not installed.
    use super::{MediaConfig, Runner};

    pub fn runner() -> Option<Runner> {
        let have = |bin: &str| {
            std::process::Command::new(bin)
                .arg("-version")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        if !have("ffmpeg") || !have("ffprobe") {
            eprintln!("SKIPPED: ffmpeg/ffprobe not installed (run scripts/test.sh)");
            return None;
        }
        Some(Runner::new(&MediaConfig::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_match_the_documented_ones() {
        let c: MediaConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c.ffmpeg_path, PathBuf::from("ffmpeg"));
        assert_eq!(c.ffprobe_path, PathBuf::from("ffprobe"));
        assert_eq!(c.max_concurrent, 0);
        assert_eq!(c.threads, 0);
        assert_eq!(c.transcode_timeout_secs, 900);
        assert_eq!(c.probe_timeout_secs, 30);
        assert_eq!(c.x264_preset, "veryfast");
        assert_eq!(c.quality_reference_max_mb, 2048);
        assert!(c.effective_max_concurrent() >= 1);
    }

    /// Whole-chain timing on a 4K master; run with
    /// `cargo test --lib -- --ignored --nocapture four_k`.
    #[tokio::test]
    #[ignore]
    async fn four_k_master_through_synth_transcode_and_measure_timing() {
        use std::time::{Duration, Instant};
        let Some(runner) = testutil::runner() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let master = dir.path().join("master.mp4");
        let spec = ClipSpec {
            width: 3840,
            height: 2160,
            duration_secs: 5,
            shots: vec![2, 3],
            ..ClipSpec::default()
        };

        let t = Instant::now();
        render_clip(&runner, &spec, &master, Duration::from_secs(600))
            .await
            .unwrap();
        eprintln!("synth 4K 5 s with sound: {:?}", t.elapsed());

        let t = Instant::now();
        let probe = runner.ffprobe(&master).await.unwrap();
        eprintln!("ffprobe: {:?}", t.elapsed());

        let plan = TranscodePlan::for_master(&probe, default_ladder(3840, 2160), runner.config());
        let out = dir.path().join("out");
        let last = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = last.clone();
        let cb: ProgressFn = std::sync::Arc::new(move |p: Progress| seen.lock().unwrap().push(p));
        let t = Instant::now();
        let result = transcode(
            &runner,
            &master,
            &probe,
            &plan,
            &out,
            Some(cb),
            Duration::from_secs(900),
        )
        .await
        .unwrap();
        {
            let progress = last.lock().unwrap();
            eprintln!(
                "transcode 3 rungs + poster: {:?} ({} progress reports, last {:?})",
                t.elapsed(),
                progress.len(),
                progress.last()
            );
        }

        let renditions: Vec<_> = result
            .renditions
            .iter()
            .map(|(r, p)| Target::new(r.name.clone(), p.clone(), r.width, r.height))
            .collect();
        let t = Instant::now();
        let scores = ssim_psnr(&runner, &master, &renditions, Duration::from_secs(900))
            .await
            .unwrap();
        eprintln!("ssim+psnr of 3 rungs: {:?}: {scores:?}", t.elapsed());
        for (r, p) in &result.renditions {
            eprintln!(
                "{}: {} kB",
                r.name,
                std::fs::metadata(p).unwrap().len() / 1000
            );
        }
    }
}
