//! Synthetic "AI generator" footage for the Runware simulator.
//!
//! Clips come from lavfi sources, so they have real motion and detail
//! without any sample media: each shot is a different source (moving test
//! pattern, Mandelbrot zoom, moving gradients) with a seed-dependent hue, joined
//! with hard cuts. Sound, when asked for, is a pair of tones plus noise at
//! about -16 LUFS, the level of web/social content and deliberately not a
//! broadcast target (-23/-24), so loudness correction has work to do.

use super::process::{path_arg, ProcessError, RunOptions, Runner};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClipFormat {
    /// H.264 (yuv420p, moov first) + AAC.
    Mp4,
    /// VP9 + Opus.
    Webm,
    /// H.264 + AAC in QuickTime.
    Mov,
}

impl ClipFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ClipFormat::Mp4 => "mp4",
            ClipFormat::Webm => "webm",
            ClipFormat::Mov => "mov",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            ClipFormat::Mp4 => "video/mp4",
            ClipFormat::Webm => "video/webm",
            ClipFormat::Mov => "video/quicktime",
        }
    }

    fn muxer(self) -> &'static str {
        match self {
            ClipFormat::Mp4 => "mp4",
            ClipFormat::Webm => "webm",
            ClipFormat::Mov => "mov",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipSpec {
    /// Even, 16-8192.
    pub width: u32,
    /// Even, 16-8192.
    pub height: u32,
    /// Whole seconds, 1-600.
    pub duration_secs: u32,
    /// Constant frame rate, 1-120 (generators usually give 24).
    pub fps: u32,
    /// Stereo 48 kHz audio at about -16 LUFS; no audio stream at all when false.
    pub sound: bool,
    pub format: ClipFormat,
    /// 20-99 (clamped), higher is better: see [`ClipSpec::x264_crf`] and [`ClipSpec::vp9_crf`].
    pub quality: u8,
    /// Picks sources, colours and tones: the same spec gives the same clip.
    pub seed: u64,
    /// Shot lengths in seconds, summing to `duration_secs`; empty = one shot.
    pub shots: Vec<u32>,
    /// An image shown as the very first frame (scaled to cover the frame,
    /// centre-cropped), like an image-to-video start frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_frame: Option<PathBuf>,
    /// The same for the very last frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_frame: Option<PathBuf>,
}

impl Default for ClipSpec {
    fn default() -> Self {
        Self {
            width: 1920,
            height: 1080,
            duration_secs: 5,
            fps: 24,
            sound: true,
            format: ClipFormat::Mp4,
            quality: 80,
            seed: 0,
            shots: Vec::new(),
            first_frame: None,
            last_frame: None,
        }
    }
}

const QUALITY_MIN: u8 = 20;
const QUALITY_MAX: u8 = 99;

impl ClipSpec {
    fn quality_fraction(&self) -> f64 {
        let q = self.quality.clamp(QUALITY_MIN, QUALITY_MAX);
        f64::from(q - QUALITY_MIN) / f64::from(QUALITY_MAX - QUALITY_MIN)
    }

    /// x264 CRF for MP4/MOV: linear from 45 (quality 20) to 14 (quality 99).
    /// Higher quality never gives a higher CRF.
    pub fn x264_crf(&self) -> u8 {
        (45.0 - 31.0 * self.quality_fraction()).round() as u8
    }

    /// VP9 CRF for WebM: linear from 56 (quality 20) to 16 (quality 99).
    pub fn vp9_crf(&self) -> u8 {
        (56.0 - 40.0 * self.quality_fraction()).round() as u8
    }

    /// Shot lengths, one shot when none were given.
    pub fn shot_lengths(&self) -> Vec<u32> {
        if self.shots.is_empty() {
            vec![self.duration_secs]
        } else {
            self.shots.clone()
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        for (what, v) in [("width", self.width), ("height", self.height)] {
            if !(16..=8192).contains(&v) || v % 2 == 1 {
                return Err(format!("{what} {v} must be even and within 16-8192"));
            }
        }
        if !(1..=600).contains(&self.duration_secs) {
            return Err(format!(
                "duration {} s is outside 1-600",
                self.duration_secs
            ));
        }
        if !(1..=120).contains(&self.fps) {
            return Err(format!("fps {} is outside 1-120", self.fps));
        }
        if !self.shots.is_empty() {
            if self.shots.contains(&0) {
                return Err("a shot cannot last 0 s".into());
            }
            let total: u64 = self.shots.iter().map(|&s| u64::from(s)).sum();
            if total != u64::from(self.duration_secs) {
                return Err(format!(
                    "shots last {total} s in all but the clip lasts {} s",
                    self.duration_secs
                ));
            }
        }
        Ok(())
    }
}

/// Renders `spec` to `out` (the container follows `spec.format`, whatever
/// the file name says).
pub async fn render_clip(
    runner: &Runner,
    spec: &ClipSpec,
    out: &Path,
    deadline: Duration,
) -> Result<(), ProcessError> {
    spec.validate().map_err(ProcessError::Invalid)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await?;
    }
    let opts =
        RunOptions::new("synthetic clip", deadline).input_duration(f64::from(spec.duration_secs));
    runner
        .ffmpeg(build_args(spec, out, runner.config().threads), opts)
        .await?;
    match tokio::fs::metadata(out).await {
        Ok(m) if m.len() > 0 => Ok(()),
        _ => Err(ProcessError::BadOutput(format!(
            "{} was not written",
            out.display()
        ))),
    }
}

/// A small deterministic mixer (splitmix64) so one seed gives one clip.
fn mix(seed: u64, salt: u64) -> u64 {
    let mut z = seed
        .wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn even(v: u32) -> u32 {
    (v / 2 * 2).max(2)
}

fn shot_video(spec: &ClipSpec, shot: usize, secs: u32) -> String {
    let (w, h, fps) = (spec.width, spec.height, spec.fps);
    // Detail-heavy sources are drawn at quarter size and scaled up: at 4K
    // they would cost more than the encode.
    let (qw, qh) = (even(w / 4).max(32), even(h / 4).max(32));
    let r = mix(spec.seed, shot as u64);
    let hue = r % 360;
    // Consecutive shots always use different sources: the cut is visible.
    let kind = (spec.seed.wrapping_add(shot as u64)) % 3;
    let source = match kind {
        0 => format!("testsrc2=s={w}x{h}:r={fps}:d={secs},hue=h={hue}"),
        1 => format!(
            "mandelbrot=s={qw}x{qh}:r={fps},trim=duration={secs},\
             scale={w}:{h}:flags=bicubic,hue=h={hue}"
        ),
        _ => {
            // Soft moving colour fields: Game of Life boards were tried here
            // and, with hard-edged cells, measured SSIM 0.86-0.93 at 720p
            // under a 5 Mbps cap, harder to encode than any generated ad.
            // The colours are given: gradients picks random ones otherwise,
            // and one seed must give one clip.
            let colour = |salt: u64| format!("0x{:06X}", mix(r, salt) & 0xFF_FFFF);
            format!(
                "gradients=s={qw}x{qh}:r={fps}:d={secs}:n=4:speed=0.05:seed={}:\
                 c0={}:c1={}:c2={}:c3={},scale={w}:{h}:flags=bicubic,hue=h={hue}",
                r % 1_000_000,
                colour(1),
                colour(2),
                colour(3),
                colour(4)
            )
        }
    };
    format!("{source},setsar=1,format=yuv420p[v{shot}]")
}

fn shot_audio(spec: &ClipSpec, shot: usize, secs: u32) -> String {
    // Tones between 220 and 605 Hz (where K-weighting is flat), a fifth
    // apart left/right, gently pulsing, plus noise. Levels measured with
    // ebur128 to land at -16 +/- 0.5 LUFS.
    let f = 220 + (mix(spec.seed ^ 0xA0D1, shot as u64) % 8) * 55;
    format!(
        "aevalsrc=exprs='0.21*sin(2*PI*{f}*t)*(0.75+0.25*sin(2*PI*1.5*t))+0.034*(2*random(0)-1)|\
         0.21*sin(2*PI*{f}*1.5*t)*(0.75+0.25*sin(2*PI*1.5*t+1))+0.034*(2*random(1)-1)'\
         :s=48000:c=stereo:d={secs}[a{shot}]"
    )
}

/// The ffmpeg arguments for `spec` (no inputs: the sources live in the graph).
pub fn build_args(spec: &ClipSpec, out: &Path, threads: usize) -> Vec<String> {
    let shots = spec.shot_lengths();
    let mut chains = Vec::new();
    let mut concat_in = String::new();
    for (i, &secs) in shots.iter().enumerate() {
        chains.push(shot_video(spec, i, secs));
        concat_in.push_str(&format!("[v{i}]"));
        if spec.sound {
            chains.push(shot_audio(spec, i, secs));
            concat_in.push_str(&format!("[a{i}]"));
        }
    }
    // Still images placed on the first / last frame, one input each.
    let stills: Vec<(&Path, String)> = [
        (spec.first_frame.as_deref(), "0".to_string()),
        (
            spec.last_frame.as_deref(),
            (spec.duration_secs * spec.fps)
                .saturating_sub(1)
                .to_string(),
        ),
    ]
    .into_iter()
    .filter_map(|(p, n)| Some((p?, n)))
    .collect();
    let joined = if stills.is_empty() { "v" } else { "v0" };
    if spec.sound {
        // ffmpeg 5.1 does not re-chunk audio from a complex graph for
        // fixed-frame encoders: hand them whole frames (AAC 1024, Opus 960).
        let frame = match spec.format {
            ClipFormat::Webm => 960,
            ClipFormat::Mp4 | ClipFormat::Mov => 1024,
        };
        chains.push(format!(
            "{concat_in}concat=n={}:v=1:a=1[{joined}][joined];[joined]asetnsamples=n={frame}:p=0[a]",
            shots.len()
        ));
    } else {
        chains.push(format!(
            "{concat_in}concat=n={}:v=1:a=0[{joined}]",
            shots.len()
        ));
    }
    let (w, h) = (spec.width, spec.height);
    for (i, (_, frame_no)) in stills.iter().enumerate() {
        let out = if i + 1 == stills.len() {
            "v".to_string()
        } else {
            format!("v{}", i + 1)
        };
        chains.push(format!(
            "[{i}:v]scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},\
             setsar=1,format=yuv420p[still{i}];\
             [v{i}][still{i}]overlay=enable='eq(n,{frame_no})',format=yuv420p[{out}]"
        ));
    }

    let mut args: Vec<String> = Vec::new();
    for (path, _) in &stills {
        // image2 only: the file came from a request, so no other demuxer may
        // claim it (the decoder follows the extension the caller chose).
        args.extend(["-f", "image2", "-i"].map(String::from));
        args.push(path_arg(path));
    }
    args.extend(["-filter_complex".into(), chains.join(";")]);
    args.extend(["-map", "[v]"].map(String::from));
    if spec.sound {
        args.extend(["-map", "[a]"].map(String::from));
    }
    let gop = (spec.fps * 2).to_string();
    match spec.format {
        ClipFormat::Mp4 | ClipFormat::Mov => {
            let crf = spec.x264_crf().to_string();
            // ultrafast: 4K 5 s encodes in about 7 s on 2 cores (veryfast ~16 s);
            // the price is a Constrained Baseline stream, fine for a stand-in.
            args.extend(
                [
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-crf",
                    &crf,
                    "-pix_fmt",
                    "yuv420p",
                    "-g",
                    &gop,
                ]
                .map(String::from),
            );
            if spec.sound {
                args.extend(
                    ["-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2"].map(String::from),
                );
            }
            if spec.format == ClipFormat::Mp4 {
                args.extend(["-movflags", "+faststart"].map(String::from));
            }
        }
        ClipFormat::Webm => {
            let crf = spec.vp9_crf().to_string();
            args.extend(
                [
                    "-c:v",
                    "libvpx-vp9",
                    "-crf",
                    &crf,
                    "-b:v",
                    "0",
                    "-deadline",
                    "realtime",
                    "-cpu-used",
                    "8",
                    "-row-mt",
                    "1",
                    "-tile-columns",
                    "2",
                    "-pix_fmt",
                    "yuv420p",
                    "-g",
                    &gop,
                ]
                .map(String::from),
            );
            if spec.sound {
                args.extend(
                    [
                        "-c:a", "libopus", "-b:a", "128k", "-ar", "48000", "-ac", "2",
                    ]
                    .map(String::from),
                );
            }
        }
    }
    if threads > 0 {
        args.extend(["-threads".to_owned(), threads.to_string()]);
    }
    args.extend([
        "-f".to_owned(),
        spec.format.muxer().to_owned(),
        path_arg(out),
    ]);
    args
}

#[cfg(test)]
mod tests;
