//! Objective quality of renditions against the master (SSIM and PSNR).
//!
//! One ffmpeg run decodes the master once, scales a copy to each rendition's
//! size (bicubic, as the transcode does) and compares frame by frame. Scores
//! come from the filters' per-frame stats files, which are easier to parse
//! reliably than the summary lines in the log.

use super::process::{input_args, ProcessError, RunOptions, Runner, ScratchDir};
use super::profile::Crop;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityScore {
    pub name: String,
    /// Mean SSIM over frames ("All" = Y, U and V weighted by size): 1.0 is identical.
    pub ssim: f64,
    /// PSNR in dB of the mean squared error over all frames and planes (as
    /// ffmpeg's "average"). Identical content is reported as 100.
    pub psnr: f64,
}

/// Reported for identical content (infinite PSNR does not fit in JSON).
pub const PSNR_IDENTICAL: f64 = 100.0;

/// A rendition to score: its file, size, and the crop of the master it was
/// made from (the reference gets the same crop before scaling).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub crop: Option<Crop>,
}

impl Target {
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>, width: u32, height: u32) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            width,
            height,
            crop: None,
        }
    }
}

/// Scores each rendition against `master`, cropped and scaled as the
/// rendition was.
pub async fn ssim_psnr(
    runner: &Runner,
    master: &Path,
    renditions: &[Target],
    deadline: Duration,
) -> Result<Vec<QualityScore>, ProcessError> {
    if renditions.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(t) = renditions.iter().find(|t| t.width < 2 || t.height < 2) {
        return Err(ProcessError::Invalid(format!(
            "rendition {} has no size",
            t.name
        )));
    }
    let scratch = ScratchDir::new("measure")?;
    let files: Vec<(PathBuf, PathBuf)> = (0..renditions.len())
        .map(|i| {
            (
                scratch.path().join(format!("ssim{i}.log")),
                scratch.path().join(format!("psnr{i}.log")),
            )
        })
        .collect();

    let mut args = input_args(master, true);
    for t in renditions {
        args.extend(input_args(&t.path, true));
    }
    args.extend([
        "-filter_complex".to_owned(),
        filter_graph(renditions, &files),
    ]);
    for i in 0..renditions.len() {
        for label in [format!("[s{i}]"), format!("[p{i}]")] {
            args.extend(["-map", &label, "-f", "null", "-"].map(String::from));
        }
    }

    let duration = runner.ffprobe(master).await.map(|p| p.duration_secs).ok();
    let mut opts = RunOptions::new("quality measurement", deadline).untrusted();
    opts.input_duration_secs = duration;
    runner.ffmpeg(args, opts).await?;

    let mut scores = Vec::with_capacity(renditions.len());
    for (Target { name, .. }, (ssim_file, psnr_file)) in renditions.iter().zip(&files) {
        let ssim = mean_ssim(&tokio::fs::read_to_string(ssim_file).await?)
            .ok_or_else(|| ProcessError::BadOutput(format!("no SSIM frames for {name}")))?;
        let psnr = mean_psnr(&tokio::fs::read_to_string(psnr_file).await?)
            .ok_or_else(|| ProcessError::BadOutput(format!("no PSNR frames for {name}")))?;
        scores.push(QualityScore {
            name: name.clone(),
            ssim,
            psnr,
        });
    }
    Ok(scores)
}

/// Input 0 is the master, input i+1 rendition i. Both sides start at 0 so
/// frames pair up even when a container starts a few ms late.
fn filter_graph(targets: &[Target], files: &[(PathBuf, PathBuf)]) -> String {
    let n = targets.len();
    let refs: String = (0..n).map(|i| format!("[m{i}]")).collect();
    let mut chains = vec![format!("[0:v:0]setpts=PTS-STARTPTS,split={n}{refs}")];
    for (i, (t, (ssim_file, psnr_file))) in targets.iter().zip(files).enumerate() {
        let (w, h) = (t.width, t.height);
        let crop = t
            .crop
            .map(|c| format!("{},", c.filter()))
            .unwrap_or_default();
        chains.push(format!(
            "[m{i}]{crop}scale=w={w}:h={h}:flags=bicubic,setsar=1,format=yuv420p,split=2[ra{i}][rb{i}]"
        ));
        chains.push(format!(
            "[{}:v:0]setpts=PTS-STARTPTS,setsar=1,format=yuv420p,split=2[da{i}][db{i}]",
            i + 1
        ));
        chains.push(format!(
            "[da{i}][ra{i}]ssim=stats_file={}[s{i}]",
            escape_filter_value(&ssim_file.to_string_lossy())
        ));
        chains.push(format!(
            "[db{i}][rb{i}]psnr=stats_file={}[p{i}]",
            escape_filter_value(&psnr_file.to_string_lossy())
        ));
    }
    chains.join(";")
}

/// Escapes a filter option value for use inside a filtergraph: first as an
/// option value (`\ ' :`), then for the graph (`\ ' [ ] , ;`).
pub fn escape_filter_value(value: &str) -> String {
    fn escape(s: &str, special: &[char]) -> String {
        let mut out = String::with_capacity(s.len() + 8);
        for c in s.chars() {
            if special.contains(&c) {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }
    let option = escape(value, &['\\', '\'', ':']);
    escape(&option, &['\\', '\'', '[', ']', ',', ';'])
}

/// Mean of the per-frame "All:" values of an ssim stats file.
fn mean_ssim(stats: &str) -> Option<f64> {
    mean(stats.lines().filter_map(|l| field(l, "All:")))
}

/// PSNR of the mean of the per-frame "mse_avg:" values (8-bit, peak 255).
fn mean_psnr(stats: &str) -> Option<f64> {
    let mse = mean(stats.lines().filter_map(|l| field(l, "mse_avg:")))?;
    if mse <= 0.0 {
        return Some(PSNR_IDENTICAL);
    }
    Some((10.0 * (255.0f64 * 255.0 / mse).log10()).min(PSNR_IDENTICAL))
}

fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|t| t.strip_prefix(key))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u64), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::testutil;

    #[test]
    fn stats_files_average_per_frame_values() {
        let ssim = "n:1 Y:0.990000 U:0.980000 V:0.970000 All:0.985000 (18.239)\n\
                    n:2 Y:0.960000 U:0.950000 V:0.940000 All:0.955000 (13.468)\n";
        assert!((mean_ssim(ssim).unwrap() - 0.97).abs() < 1e-9);
        let psnr = "n:1 mse_avg:1.00 mse_y:1.00 mse_u:1.00 mse_v:1.00 psnr_avg:48.13 psnr_y:48.13\n\
                    n:2 mse_avg:3.00 mse_y:3.00 mse_u:3.00 mse_v:3.00 psnr_avg:43.36 psnr_y:43.36\n";
        let expected = 10.0 * (255.0f64 * 255.0 / 2.0).log10();
        assert!((mean_psnr(psnr).unwrap() - expected).abs() < 1e-9);
        let same = "n:1 mse_avg:0.00 mse_y:0.00 mse_u:0.00 mse_v:0.00 psnr_avg:inf psnr_y:inf\n";
        assert_eq!(mean_psnr(same), Some(PSNR_IDENTICAL));
        assert_eq!(mean_ssim(""), None);
    }

    #[test]
    fn filter_values_are_escaped_for_both_levels() {
        assert_eq!(escape_filter_value("/tmp/a.log"), "/tmp/a.log");
        assert_eq!(escape_filter_value("/tmp/a:b.log"), "/tmp/a\\\\:b.log");
        assert_eq!(
            escape_filter_value("/t,x/[1];'q'"),
            "/t\\,x/\\[1\\]\\;\\\\\\'q\\\\\\'"
        );
    }

    #[test]
    fn the_reference_gets_the_renditions_crop_before_scaling() {
        let files = vec![(PathBuf::from("/s0"), PathBuf::from("/p0"))];
        let square = Target {
            crop: Some(Crop {
                width: 360,
                height: 360,
                x: 140,
                y: 0,
            }),
            ..Target::new("sq", "/sq.mp4", 180, 180)
        };
        let graph = filter_graph(&[square], &files);
        assert!(
            graph.contains("[m0]crop=w=360:h=360:x=140:y=0,scale=w=180:h=180:flags=bicubic"),
            "{graph}"
        );
        let plain = filter_graph(&[Target::new("p", "/p.mp4", 320, 180)], &files);
        assert!(plain.contains("[m0]scale=w=320:h=180"), "{plain}");
    }

    #[tokio::test]
    async fn a_center_cropped_rendition_scores_against_the_same_crop() {
        let Some(runner) = testutil::runner() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let master = dir.path().join("master.mp4");
        let mut args: Vec<String> = "-f lavfi -i testsrc2=size=640x360:rate=24:duration=1 -c:v libx264 -preset ultrafast -qp 0"
            .split(' ')
            .map(String::from)
            .collect();
        args.push(master.display().to_string());
        runner
            .ffmpeg(args, RunOptions::new("master", Duration::from_secs(60)))
            .await
            .unwrap();
        // The 180x180 square is the master's centre 360x360, scaled.
        let cropped = dir.path().join("cropped.mp4");
        let mut args = input_args(&master, false);
        args.extend(
            "-vf crop=360:360:140:0,scale=180:180:flags=bicubic -c:v libx264 -preset ultrafast -crf 18"
                .split(' ')
                .map(String::from),
        );
        args.push(cropped.display().to_string());
        runner
            .ffmpeg(args, RunOptions::new("crop", Duration::from_secs(60)))
            .await
            .unwrap();
        let crop = Some(Crop {
            width: 360,
            height: 360,
            x: 140,
            y: 0,
        });
        let scores = ssim_psnr(
            &runner,
            &master,
            &[
                Target {
                    crop,
                    ..Target::new("with", cropped.clone(), 180, 180)
                },
                Target::new("without", cropped, 180, 180),
            ],
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert!(scores[0].ssim > 0.95, "{scores:?}");
        assert!(scores[1].ssim < scores[0].ssim - 0.1, "{scores:?}");
    }

    async fn encode(runner: &Runner, src: &Path, out: &Path, crf: u32, size: &str) {
        let mut args = input_args(src, false);
        args.extend(
            [
                "-vf",
                &format!("scale={size}:flags=bicubic"),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-crf",
                &crf.to_string(),
            ]
            .map(String::from),
        );
        args.push(out.display().to_string());
        runner
            .ffmpeg(args, RunOptions::new("encode", Duration::from_secs(60)))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn low_crf_scores_higher_than_high_crf_and_identical_scores_one() {
        let Some(runner) = testutil::runner() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        // A detailed master: test pattern plus per-frame noise, lossless.
        let master = dir.path().join("master.mkv");
        let args: Vec<String> = [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=24:duration=1,noise=alls=4:allf=t",
            "-c:v",
            "libx264",
            "-qp",
            "0",
            "-preset",
            "ultrafast",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([master.display().to_string()])
        .collect();
        runner
            .ffmpeg(args, RunOptions::new("master", Duration::from_secs(60)))
            .await
            .unwrap();
        let good = dir.path().join("good.mp4");
        let bad = dir.path().join("bad.mp4");
        encode(&runner, &master, &good, 18, "320:180").await;
        encode(&runner, &master, &bad, 45, "320:180").await;

        let scores = ssim_psnr(
            &runner,
            &master,
            &[
                Target::new("crf18", good, 320, 180),
                Target::new("crf45", bad, 320, 180),
                Target::new("same", master.clone(), 640, 360),
            ],
            Duration::from_secs(120),
        )
        .await
        .unwrap();

        let by = |n: &str| scores.iter().find(|s| s.name == n).unwrap();
        let (good, bad, same) = (by("crf18"), by("crf45"), by("same"));
        assert!(good.ssim > bad.ssim, "{scores:?}");
        assert!(good.psnr > bad.psnr, "{scores:?}");
        assert!(bad.ssim < 0.95, "{scores:?}");
        assert!(good.ssim > 0.95, "{scores:?}");
        assert!(same.ssim > 0.999, "{scores:?}");
        assert_eq!(same.psnr, PSNR_IDENTICAL, "{scores:?}");
    }
}
