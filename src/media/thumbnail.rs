//! A still on demand (`GET …/thumbnail.{jpg,png,webp}`): one input seek to
//! the time asked for, one decoded frame, scaled to the width asked for
//! (height kept in proportion, even), encoded as one image file.

use super::process::{ProcessError, RunOptions, Runner};
use std::path::Path;
use std::time::Duration;

/// The image formats a thumbnail can be made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThumbFormat {
    Jpg,
    Png,
    Webp,
}

impl ThumbFormat {
    pub const NAMES: &'static str = "jpg, png, webp";

    pub fn parse(ext: &str) -> Option<Self> {
        match ext {
            "jpg" => Some(Self::Jpg),
            "png" => Some(Self::Png),
            "webp" => Some(Self::Webp),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
        }
    }

    fn codec_args(self) -> &'static [&'static str] {
        match self {
            // Full-range 4:2:0, what JPEG decoders expect.
            Self::Jpg => &["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p"],
            Self::Png => &["-c:v", "png", "-pix_fmt", "rgb24"],
            Self::Webp => &["-c:v", "libwebp", "-quality", "80", "-pix_fmt", "yuv420p"],
        }
    }
}

/// The ffmpeg arguments: seek on the input, one frame, scale, encode.
pub fn args(
    input: &Path,
    out: &Path,
    time_secs: f64,
    width: u32,
    format: ThumbFormat,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-ss".into(),
        format!("{time_secs:.3}"),
        "-i".into(),
        input.to_string_lossy().into_owned(),
        "-map".into(),
        "0:v:0".into(),
        "-frames:v".into(),
        "1".into(),
        "-vf".into(),
        format!("scale={width}:-2:flags=lanczos"),
    ];
    a.extend(format.codec_args().iter().map(|s| s.to_string()));
    a.extend(["-f", "image2", "-update", "1", "-y"].map(String::from));
    a.push(out.to_string_lossy().into_owned());
    a
}

/// Renders one thumbnail of `input` into `out`. A time so close to the end
/// that no frame starts after it is taken from a second earlier.
pub async fn render(
    runner: &Runner,
    input: &Path,
    out: &Path,
    time_secs: f64,
    width: u32,
    format: ThumbFormat,
) -> Result<Vec<u8>, ProcessError> {
    for t in [time_secs, (time_secs - 1.0).max(0.0)] {
        let opts = RunOptions::new("thumbnail", Duration::from_secs(60)).untrusted();
        runner
            .ffmpeg(args(input, out, t, width, format), opts)
            .await?;
        match tokio::fs::read(out).await {
            Ok(bytes) if !bytes.is_empty() => return Ok(bytes),
            _ => continue,
        }
    }
    Err(ProcessError::Failed {
        label: "thumbnail".into(),
        code: None,
        stderr_tail: vec!["no frame at that time".into()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::synth::{render_clip, ClipSpec};

    #[tokio::test]
    async fn one_frame_at_the_width_asked_in_each_format() {
        let dir = tempfile::tempdir().unwrap();
        let runner = Runner::new(&crate::media::MediaConfig::default());
        let clip = dir.path().join("c.mp4");
        let spec = ClipSpec {
            width: 320,
            height: 180,
            duration_secs: 2,
            sound: false,
            seed: 3,
            ..ClipSpec::default()
        };
        render_clip(&runner, &spec, &clip, Duration::from_secs(60))
            .await
            .unwrap();
        for (format, magic) in [
            (ThumbFormat::Jpg, &b"\xff\xd8\xff"[..]),
            (ThumbFormat::Png, &b"\x89PNG"[..]),
            (ThumbFormat::Webp, &b"RIFF"[..]),
        ] {
            let out = dir.path().join(format!("t.{}", format.extension()));
            let bytes = render(&runner, &clip, &out, 1.999, 160, format)
                .await
                .unwrap();
            assert!(bytes.starts_with(magic), "{format:?}");
            let probe = std::process::Command::new("ffprobe")
                .args([
                    "-v",
                    "error",
                    "-of",
                    "csv=p=0",
                    "-show_entries",
                    "stream=width,height",
                ])
                .arg(&out)
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&probe.stdout).trim(),
                "160,90",
                "{format:?}"
            );
        }
    }
}
