//! One ffmpeg run turns the master into every rendition and the poster.
//!
//! The master (often 4K) is decoded once. Each rung is scaled from the rung
//! above it (1080 from the master, 720 from 1080, 480 from 720), which costs
//! far less than scaling 4K three times; the poster is taken from the master
//! on its own branch and written by the same process.

use super::ladder::{h264_level, max_level, Rendition};
use super::probe::Probe;
use super::process::{input_args, path_arg, ProcessError, ProgressFn, RunOptions, Runner};
use super::MediaConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct TranscodePlan {
    pub renditions: Vec<Rendition>,
    /// Poster width in pixels; never wider than the master. Height keeps the aspect ratio.
    pub poster_width: u32,
    /// Master time of the poster frame.
    pub poster_at_secs: f64,
    /// Encode the master's first audio stream into every rendition.
    pub has_audio: bool,
    /// Master frame rate: sets the 2 s keyframe interval (the rate itself is kept).
    pub fps: f64,
    /// x264 preset.
    pub preset: String,
    /// ffmpeg threads; 0 lets ffmpeg choose.
    pub threads: usize,
    /// Audio filter applied once to the master's audio before it is encoded
    /// (e.g. the second pass of `loudnorm`). None: the audio as it is.
    pub audio_filter: Option<String>,
}

impl TranscodePlan {
    /// A plan for this master: its audio and frame rate, a 1280-wide poster
    /// (narrower masters keep their width) a third of the way in (at most
    /// 3 s), preset and threads from the config. Levels are raised where the
    /// master's frame rate needs it (e.g. 1080p60 needs 4.2).
    pub fn for_master(probe: &Probe, renditions: Vec<Rendition>, config: &MediaConfig) -> Self {
        let fps = probe
            .video
            .as_ref()
            .map(|v| v.fps)
            .filter(|f| *f > 0.0)
            .unwrap_or(30.0);
        let master_w = probe.video.as_ref().map_or(1280, |v| v.width);
        let renditions = renditions
            .into_iter()
            .map(|mut r| {
                let needed = h264_level(r.width, r.height, fps, r.maxrate_kbps);
                r.level = max_level(&r.level, &needed).to_owned();
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
        }
    }
}

#[derive(Debug, Clone)]
pub struct TranscodeOutput {
    /// Each rendition with its file, in plan order.
    pub renditions: Vec<(Rendition, PathBuf)>,
    pub poster: PathBuf,
    /// Every file the run wrote (renditions and poster included), in a
    /// stable order: what publishing uploads.
    pub files: Vec<WrittenFile>,
    pub elapsed: Duration,
    /// ffmpeg's log of the run (what filters such as `loudnorm` reported).
    pub log: Vec<String>,
}

/// What a written file is for, in the published set and its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    /// A progressive rendition (MP4 or WebM) that QC measures.
    Rendition,
    Poster,
    /// Storyboard sprite sheet.
    Sprite,
    /// WebVTT map of the sprite (`sprite.jpg#xywh=...` cues).
    Storyboard,
    /// Animated preview.
    Preview,
    /// HLS master playlist.
    HlsMaster,
    /// HLS media playlist of one variant.
    HlsPlaylist,
    HlsSegment,
}

/// A file a transcode wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenFile {
    /// Path inside the output folder and inside the published set, `/`
    /// separated: "1080p.mp4", "hls/720p/seg_00001.ts".
    pub rel: String,
    pub path: PathBuf,
    pub role: FileRole,
    /// The output it belongs to (rendition or HLS variant name), if any.
    #[serde(default)]
    pub output: Option<String>,
}

/// The Content-Type a published file is served with, from its extension.
pub fn content_type_for(rel: &str) -> &'static str {
    let ext = rel.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        "m4s" => "video/iso.segment",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "png" => "image/png",
        "vtt" => "text/vtt",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

pub const POSTER_FILE: &str = "poster.jpg";

/// The rendition's file in `out_dir`.
pub fn rendition_path(out_dir: &Path, r: &Rendition) -> PathBuf {
    out_dir.join(format!("{}.mp4", r.name))
}

/// The ffmpeg arguments for `plan` (without the `-y -nostdin` the runner adds).
pub fn build_args(master: &Path, plan: &TranscodePlan, out_dir: &Path) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    let push = |a: &mut Vec<String>, items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    let threads = plan.threads.to_string();
    if plan.threads > 0 {
        push(
            &mut args,
            &["-filter_complex_threads", &threads, "-threads", &threads],
        );
    }
    args.extend(input_args(master, true));
    push(&mut args, &["-filter_complex", &filter_graph(plan)]);

    let gop = (plan.fps.max(1.0) * 2.0).round().max(1.0).to_string();
    for (i, r) in plan.renditions.iter().enumerate() {
        let video = format!("[v{i}]");
        push(&mut args, &["-map", &video]);
        if plan.has_audio {
            let audio = match plan.audio_filter {
                Some(_) => format!("[a{i}]"),
                None => "0:a:0".to_owned(),
            };
            push(&mut args, &["-map", &audio]);
        }
        push(
            &mut args,
            &[
                "-c:v",
                "libx264",
                "-profile:v",
                &r.profile,
                "-level:v",
                &r.level,
                "-preset",
                &plan.preset,
                "-crf",
                &r.crf.to_string(),
                "-maxrate",
                &format!("{}k", r.maxrate_kbps),
                "-bufsize",
                &format!("{}k", r.bufsize_kbps),
                // Fixed 2 s GOP at the native rate: no scene-cut keyframes.
                "-g",
                &gop,
                "-keyint_min",
                &gop,
                "-sc_threshold",
                "0",
            ],
        );
        if plan.threads > 0 {
            push(&mut args, &["-threads", &threads]);
        }
        if plan.has_audio {
            push(
                &mut args,
                &[
                    "-c:a",
                    "aac",
                    "-b:a",
                    &format!("{}k", r.audio_bitrate_kbps),
                    "-ar",
                    "48000",
                    "-ac",
                    "2",
                ],
            );
        }
        push(
            &mut args,
            &[
                "-movflags",
                "+faststart",
                // Generator metadata (prompts, tool names) stays out of deliveries.
                "-map_metadata",
                "-1",
                "-map_chapters",
                "-1",
                // Audio may arrive well before x264's first packet.
                "-max_muxing_queue_size",
                "1024",
                "-f",
                "mp4",
            ],
        );
        args.push(path_arg(&rendition_path(out_dir, r)));
    }
    push(
        &mut args,
        &[
            "-map",
            "[poster]",
            "-frames:v",
            "1",
            "-c:v",
            "mjpeg",
            "-q:v",
            "3",
            "-map_metadata",
            "-1",
            "-update",
            "1",
            "-f",
            "image2",
        ],
    );
    args.push(path_arg(&out_dir.join(POSTER_FILE)));
    args
}

/// The `-filter_complex` graph: `[v{i}]` per rendition (i = plan order) and
/// `[poster]`; with an audio filter also `[a{i}]` per rendition: the audio is
/// decoded and filtered once, then split.
fn filter_graph(plan: &TranscodePlan) -> String {
    let mut chains = vec!["[0:v:0]split=2[main][still]".to_owned()];
    if let (true, Some(filter), n @ 1..) = (
        plan.has_audio,
        plan.audio_filter.as_deref(),
        plan.renditions.len(),
    ) {
        let outs: String = (0..n).map(|i| format!("[a{i}]")).collect();
        chains.push(format!("[0:a:0]{filter},asplit={n}{outs}"));
    }
    // Largest first, so each rung is scaled from the one above it.
    let mut order: Vec<usize> = (0..plan.renditions.len()).collect();
    order.sort_by_key(|&i| {
        let r = &plan.renditions[i];
        std::cmp::Reverse(u64::from(r.width) * u64::from(r.height))
    });
    let mut from = "main".to_owned();
    for (k, &i) in order.iter().enumerate() {
        let r = &plan.renditions[i];
        let scale = format!(
            "scale=w={}:h={}:flags=bicubic,setsar=1,format=yuv420p",
            r.width, r.height
        );
        if k + 1 == order.len() {
            chains.push(format!("[{from}]{scale}[v{i}]"));
        } else {
            chains.push(format!("[{from}]{scale},split=2[v{i}][down{k}]"));
            from = format!("down{k}");
        }
    }
    if order.is_empty() {
        chains.push(format!("[{from}]nullsink"));
    }
    // One frame at the poster time; the branch ends right after it (trim's
    // EOF), so split stops feeding it. min(W, iw): never upscale.
    chains.push(format!(
        "[still]setpts=PTS-STARTPTS,trim=start={:.3},trim=end_frame=1,\
         scale=w=min({}\\,iw):h=-2:flags=bicubic,setsar=1[poster]",
        plan.poster_at_secs.max(0.0),
        plan.poster_width.max(2)
    ));
    chains.join(";")
}

fn validate(plan: &TranscodePlan, probe: &Probe) -> Result<(), ProcessError> {
    let bad = |m: String| Err(ProcessError::Invalid(m));
    if plan.renditions.is_empty() {
        return bad("the plan has no renditions".into());
    }
    let mut names = std::collections::HashSet::new();
    for r in &plan.renditions {
        let name_ok = !r.name.is_empty()
            && r.name.len() <= 32
            && r.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && r.name != "poster";
        if !name_ok {
            return bad(format!(
                "rendition name {:?} is not a safe file name",
                r.name
            ));
        }
        if !names.insert(r.name.as_str()) {
            return bad(format!("rendition name {:?} appears twice", r.name));
        }
        if r.width < 2 || r.height < 2 || r.width % 2 == 1 || r.height % 2 == 1 {
            return bad(format!(
                "{}: {}x{} is not an even size",
                r.name, r.width, r.height
            ));
        }
        if r.crf > 51 {
            return bad(format!("{}: crf {} is above 51", r.name, r.crf));
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

/// Runs the plan: every rendition and the poster from one decode of the
/// master. Outputs are checked to exist and be non-empty; on failure the
/// partial outputs are removed.
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
    let outputs: Vec<PathBuf> = plan
        .renditions
        .iter()
        .map(|r| rendition_path(out_dir, r))
        .chain([out_dir.join(POSTER_FILE)])
        .collect();

    let opts = RunOptions::new("transcode", deadline)
        .input_duration(probe.duration_secs)
        .progress(on_progress)
        .untrusted();
    let result = match runner.ffmpeg(build_args(master, plan, out_dir), opts).await {
        Ok(run) => check_outputs(&outputs).await.map(|()| run),
        Err(e) => Err(e),
    };
    let run = match result {
        Ok(run) => run,
        Err(e) => {
            for p in &outputs {
                let _ = tokio::fs::remove_file(p).await;
            }
            return Err(e);
        }
    };
    let mut files: Vec<WrittenFile> = plan
        .renditions
        .iter()
        .zip(&outputs)
        .map(|(r, p)| WrittenFile {
            rel: format!("{}.mp4", r.name),
            path: p.clone(),
            role: FileRole::Rendition,
            output: Some(r.name.clone()),
        })
        .collect();
    files.push(WrittenFile {
        rel: POSTER_FILE.to_owned(),
        path: out_dir.join(POSTER_FILE),
        role: FileRole::Poster,
        output: None,
    });
    Ok(TranscodeOutput {
        files,
        renditions: plan
            .renditions
            .iter()
            .cloned()
            .zip(outputs.iter().cloned())
            .collect(),
        poster: out_dir.join(POSTER_FILE),
        elapsed: run.elapsed,
        log: run.log,
    })
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
mod tests {
    use super::*;
    use crate::media::ladder::default_ladder;
    use crate::media::probe::moov_before_mdat;
    use crate::media::testutil;

    fn rung(name: &str, w: u32, h: u32) -> Rendition {
        Rendition {
            name: name.into(),
            width: w,
            height: h,
            crf: 23,
            maxrate_kbps: 1000,
            bufsize_kbps: 2000,
            profile: "high".into(),
            level: "3.0".into(),
            audio_bitrate_kbps: 128,
        }
    }

    fn plan(renditions: Vec<Rendition>, has_audio: bool) -> TranscodePlan {
        TranscodePlan {
            renditions,
            poster_width: 1280,
            poster_at_secs: 1.0,
            has_audio,
            fps: 24.0,
            preset: "veryfast".into(),
            threads: 0,
            audio_filter: None,
        }
    }

    /// The values following each occurrence of `flag`.
    fn values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn args_decode_the_master_once_and_cascade_the_scalers() {
        let p = plan(default_ladder(3840, 2160), true);
        let args = build_args(Path::new("/in/master.mp4"), &p, Path::new("/out"));

        assert_eq!(values(&args, "-i"), ["/in/master.mp4"]);
        let graph = values(&args, "-filter_complex");
        assert_eq!(
            graph,
            ["[0:v:0]split=2[main][still];\
              [main]scale=w=1920:h=1080:flags=bicubic,setsar=1,format=yuv420p,split=2[v0][down0];\
              [down0]scale=w=1280:h=720:flags=bicubic,setsar=1,format=yuv420p,split=2[v1][down1];\
              [down1]scale=w=854:h=480:flags=bicubic,setsar=1,format=yuv420p[v2];\
              [still]setpts=PTS-STARTPTS,trim=start=1.000,trim=end_frame=1,\
              scale=w=min(1280\\,iw):h=-2:flags=bicubic,setsar=1[poster]"]
        );
        let before_input = &args[..args.iter().position(|a| a == "-i").unwrap()];
        assert!(before_input
            .windows(2)
            .any(|w| w == ["-protocol_whitelist", "file,pipe"]));
    }

    #[test]
    fn args_give_each_rendition_its_encoder_settings_and_file() {
        let p = plan(default_ladder(3840, 2160), true);
        let args = build_args(Path::new("/in/master.mp4"), &p, Path::new("/out"));

        assert_eq!(
            values(&args, "-map"),
            ["[v0]", "0:a:0", "[v1]", "0:a:0", "[v2]", "0:a:0", "[poster]"]
        );
        assert_eq!(
            values(&args, "-c:v"),
            ["libx264", "libx264", "libx264", "mjpeg"]
        );
        assert_eq!(values(&args, "-profile:v"), ["high"; 3]);
        assert_eq!(values(&args, "-level:v"), ["4.0", "3.1", "3.1"]);
        assert_eq!(values(&args, "-crf"), ["21", "22", "23"]);
        assert_eq!(values(&args, "-maxrate"), ["8000k", "5000k", "2500k"]);
        assert_eq!(values(&args, "-bufsize"), ["16000k", "10000k", "5000k"]);
        assert_eq!(values(&args, "-preset"), ["veryfast"; 3]);
        assert_eq!(values(&args, "-g"), ["48"; 3]);
        assert_eq!(values(&args, "-keyint_min"), ["48"; 3]);
        assert_eq!(values(&args, "-c:a"), ["aac"; 3]);
        assert_eq!(values(&args, "-b:a"), ["192k", "160k", "128k"]);
        assert_eq!(values(&args, "-ar"), ["48000"; 3]);
        assert_eq!(values(&args, "-ac"), ["2"; 3]);
        assert_eq!(values(&args, "-movflags"), ["+faststart"; 3]);
        assert_eq!(values(&args, "-map_metadata"), ["-1"; 4]);
        assert_eq!(values(&args, "-map_chapters"), ["-1"; 3]);
        assert_eq!(values(&args, "-frames:v"), ["1"]);
        assert_eq!(values(&args, "-q:v"), ["3"]);
        assert!(!args.iter().any(|a| a == "-r"), "frame rate stays native");
        let outputs: Vec<&String> = args.iter().filter(|a| a.starts_with("/out/")).collect();
        assert_eq!(
            outputs,
            [
                "/out/1080p.mp4",
                "/out/720p.mp4",
                "/out/480p.mp4",
                "/out/poster.jpg"
            ]
        );
        assert_eq!(args.last().unwrap(), "/out/poster.jpg");
    }

    #[test]
    fn args_cascade_by_size_whatever_the_plan_order_and_skip_audio_when_absent() {
        let mut p = plan(vec![rung("small", 320, 180), rung("big", 640, 360)], false);
        p.threads = 2;
        p.fps = 29.97;
        let args = build_args(Path::new("rel/master.mov"), &p, Path::new("/out"));

        let graph = values(&args, "-filter_complex")[0];
        assert!(
            graph.contains(
                "[main]scale=w=640:h=360:flags=bicubic,setsar=1,format=yuv420p,split=2[v1][down0]"
            ),
            "{graph}"
        );
        assert!(
            graph.contains("[down0]scale=w=320:h=180:flags=bicubic,setsar=1,format=yuv420p[v0]"),
            "{graph}"
        );
        assert_eq!(values(&args, "-map"), ["[v0]", "[v1]", "[poster]"]);
        assert!(values(&args, "-c:a").is_empty());
        assert_eq!(values(&args, "-g"), ["60", "60"]);
        assert_eq!(values(&args, "-i"), ["file:rel/master.mov"]);
        assert_eq!(values(&args, "-threads"), ["2", "2", "2"]);
        assert_eq!(values(&args, "-filter_complex_threads"), ["2"]);
    }

    #[test]
    fn an_audio_filter_runs_once_and_is_split_to_every_rendition() {
        let mut p = plan(default_ladder(3840, 2160), true);
        p.audio_filter = Some("loudnorm=I=-24,aresample=48000".into());
        let args = build_args(Path::new("/in/master.mp4"), &p, Path::new("/out"));

        let graph = values(&args, "-filter_complex")[0];
        assert_eq!(
            graph
                .split(';')
                .filter(|c| c.contains("0:a:0"))
                .collect::<Vec<_>>(),
            ["[0:a:0]loudnorm=I=-24,aresample=48000,asplit=3[a0][a1][a2]"]
        );
        assert_eq!(
            values(&args, "-map"),
            ["[v0]", "[a0]", "[v1]", "[a1]", "[v2]", "[a2]", "[poster]"]
        );
        assert_eq!(values(&args, "-c:a"), ["aac"; 3]);
        assert_eq!(values(&args, "-ar"), ["48000"; 3]);

        // One rendition: split into one. No audio: the filter is ignored.
        p.renditions.truncate(1);
        let one = build_args(Path::new("/m.mp4"), &p, Path::new("/out"));
        assert!(values(&one, "-filter_complex")[0].contains(",asplit=1[a0]"));
        p.has_audio = false;
        let mute = build_args(Path::new("/m.mp4"), &p, Path::new("/out"));
        assert!(!values(&mute, "-filter_complex")[0].contains("0:a:0"));
        assert_eq!(values(&mute, "-map"), ["[v0]", "[poster]"]);
    }

    #[test]
    fn plan_for_a_60fps_master_raises_levels_and_keeps_small_posters() {
        let probe = Probe {
            format_name: "mov".into(),
            duration_secs: 15.0,
            size_bytes: 1,
            bit_rate: None,
            video: Some(crate::media::VideoStream {
                codec: "h264".into(),
                profile: None,
                level: None,
                width: 1920,
                height: 1080,
                pix_fmt: None,
                fps: 60.0,
                nb_frames: None,
                r_frame_rate: Some(60.0),
                avg_frame_rate: Some(60.0),
            }),
            audio: None,
        };
        let plan =
            TranscodePlan::for_master(&probe, default_ladder(1920, 1080), &MediaConfig::default());
        let levels: Vec<&str> = plan.renditions.iter().map(|r| r.level.as_str()).collect();
        assert_eq!(levels, ["4.2", "3.2", "3.1"]);
        assert_eq!(plan.poster_width, 1280);
        assert_eq!(plan.poster_at_secs, 3.0);
        assert!(!plan.has_audio);

        let narrow = Probe {
            video: probe.video.clone().map(|v| crate::media::VideoStream {
                width: 720,
                height: 1280,
                ..v
            }),
            ..probe
        };
        assert_eq!(
            TranscodePlan::for_master(&narrow, vec![], &MediaConfig::default()).poster_width,
            720
        );
    }

    async fn master(runner: &Runner, dir: &Path, w: u32, h: u32, audio: bool) -> (PathBuf, Probe) {
        let path = dir.join(format!("master-{w}x{h}.mp4"));
        let mut args: Vec<String> = vec![
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("testsrc2=size={w}x{h}:rate=24:duration=2"),
        ];
        if audio {
            args.extend(
                [
                    "-f",
                    "lavfi",
                    "-i",
                    "sine=frequency=440:sample_rate=44100:duration=2",
                ]
                .map(String::from),
            );
        }
        args.extend(
            [
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-crf",
                "18",
                "-pix_fmt",
                "yuv420p",
            ]
            .map(String::from),
        );
        if audio {
            args.extend(["-c:a", "aac", "-ac", "1"].map(String::from));
        }
        args.push(path.display().to_string());
        runner
            .ffmpeg(args, RunOptions::new("master", Duration::from_secs(60)))
            .await
            .unwrap();
        let probe = runner.ffprobe(&path).await.unwrap();
        (path, probe)
    }

    #[tokio::test]
    async fn transcode_writes_delivery_ready_renditions_and_a_poster() {
        let Some(runner) = testutil::runner() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (master, probe) = master(&runner, dir.path(), 640, 360, true).await;
        let mut plan = TranscodePlan::for_master(
            &probe,
            vec![rung("360p", 640, 360), rung("180p", 320, 180)],
            runner.config(),
        );
        plan.poster_width = 320;
        let out = dir.path().join("out");
        let percents = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = percents.clone();
        let cb: ProgressFn = std::sync::Arc::new(move |p| seen.lock().unwrap().push(p.percent));

        let result = transcode(
            &runner,
            &master,
            &probe,
            &plan,
            &out,
            Some(cb),
            Duration::from_secs(120),
        )
        .await
        .unwrap();

        assert_eq!(result.renditions.len(), 2);
        for (r, path) in &result.renditions {
            assert_eq!(path, &out.join(format!("{}.mp4", r.name)));
            let p = runner.ffprobe(path).await.unwrap();
            let v = p.video.as_ref().unwrap();
            assert_eq!(v.codec, "h264", "{}", r.name);
            assert_eq!(v.profile.as_deref(), Some("High"), "{}", r.name);
            assert_eq!(v.level, Some(30), "{}", r.name);
            assert_eq!((v.width, v.height), (r.width, r.height), "{}", r.name);
            assert_eq!(v.pix_fmt.as_deref(), Some("yuv420p"));
            assert_eq!(v.fps, 24.0);
            assert_eq!(v.nb_frames, Some(48), "{}", r.name);
            let a = p.audio.as_ref().unwrap();
            assert_eq!(
                (a.codec.as_str(), a.sample_rate, a.channels),
                ("aac", 48000, 2),
                "{}",
                r.name
            );
            assert!(
                moov_before_mdat(path).unwrap(),
                "{} is not faststart",
                r.name
            );
            assert!(
                (p.duration_secs - probe.duration_secs).abs() <= 1.0 / 24.0 + 1e-6,
                "{}: {} vs master {}",
                r.name,
                p.duration_secs,
                probe.duration_secs
            );
        }
        let poster = runner.ffprobe(&result.poster).await.unwrap();
        let pv = poster.video.unwrap();
        assert_eq!(
            (pv.codec.as_str(), pv.width, pv.height),
            ("mjpeg", 320, 180)
        );
        let percents: Vec<f64> = percents.lock().unwrap().iter().flatten().copied().collect();
        assert!(!percents.is_empty() && percents.iter().all(|p| (0.0..=100.0).contains(p)));
    }

    /// The measured loudnorm pass from `loudness` applied in the transcode:
    /// every rendition lands on the target, at 48 kHz stereo.
    #[tokio::test]
    async fn a_loudness_filter_normalises_every_rendition() {
        use crate::media::loudness::{measure_output, prepare, Target};
        let Some(runner) = testutil::runner() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        // A 440 Hz tone at 44.1 kHz mono (about -22 LUFS), brought to -30.
        let (master, probe) = master(&runner, dir.path(), 320, 180, true).await;
        let d = Duration::from_secs(120);
        let target = Target::for_profile(-30.0, Some(-1.0));
        let n = prepare(&runner, &master, true, Some(target), true, d)
            .await
            .unwrap()
            .unwrap();
        let mut plan = TranscodePlan::for_master(
            &probe,
            vec![rung("180p", 320, 180), rung("90p", 160, 90)],
            runner.config(),
        );
        plan.audio_filter = n.audio_filter();
        assert!(plan.audio_filter.is_some());
        let out = dir.path().join("out");

        let result = transcode(&runner, &master, &probe, &plan, &out, None, d)
            .await
            .unwrap();

        let before = n.before.unwrap().input_i;
        assert!(before > -25.0, "{before}");
        for (r, path) in &result.renditions {
            let l = measure_output(&runner, path, d).await.unwrap().unwrap();
            assert!((l.integrated_lufs + 30.0).abs() <= 1.0, "{}: {l:?}", r.name);
            assert!(l.true_peak_dbtp <= -1.0, "{}: {l:?}", r.name);
            let p = runner.ffprobe(path).await.unwrap();
            let a = p.audio.unwrap();
            assert_eq!((a.sample_rate, a.channels), (48_000, 2), "{}", r.name);
            assert!(
                (p.duration_secs - probe.duration_secs).abs() <= 0.1,
                "{}: {} s",
                r.name,
                p.duration_secs
            );
        }
        assert!(
            crate::media::loudness::parse_report(&result.log).is_ok(),
            "pass 2 reports in the transcode's log"
        );
    }

    #[tokio::test]
    async fn portrait_and_square_masters_go_through_the_default_ladder() {
        let Some(runner) = testutil::runner() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        // Scaled-down stand-ins: 540x960 and 720x720 masters, so only the small rungs apply.
        for (w, h, expected) in [
            (540u32, 960u32, vec![(480u32, 854u32)]),
            (720, 720, vec![(720, 720), (480, 480)]),
        ] {
            let (master, probe) = master(&runner, dir.path(), w, h, false).await;
            let plan = TranscodePlan::for_master(&probe, default_ladder(w, h), runner.config());
            let out = dir.path().join(format!("out-{w}x{h}"));

            let result = transcode(
                &runner,
                &master,
                &probe,
                &plan,
                &out,
                None,
                Duration::from_secs(120),
            )
            .await
            .unwrap();

            let mut sizes = Vec::new();
            for (_, path) in &result.renditions {
                let p = runner.ffprobe(path).await.unwrap();
                assert!(p.audio.is_none());
                let v = p.video.unwrap();
                sizes.push((v.width, v.height));
            }
            assert_eq!(sizes, expected, "{w}x{h}");
            let poster = runner.ffprobe(&result.poster).await.unwrap().video.unwrap();
            assert_eq!(
                (poster.width, poster.height),
                (w, h),
                "poster never upscaled"
            );
        }
    }

    #[tokio::test]
    async fn a_truncated_master_fails_as_the_inputs_fault_and_leaves_no_outputs() {
        let Some(runner) = testutil::runner() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (master, probe) = master(&runner, dir.path(), 320, 180, false).await;
        let bytes = std::fs::read(&master).unwrap();
        let cut = dir.path().join("cut.mp4");
        std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
        let plan = TranscodePlan::for_master(&probe, vec![rung("180p", 320, 180)], runner.config());
        let out = dir.path().join("out");

        let err = transcode(
            &runner,
            &cut,
            &probe,
            &plan,
            &out,
            None,
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();

        assert!(err.is_input_fault(), "{err:?}");
        assert!(err.reason().contains("cut.mp4"), "{}", err.reason());
        assert!(
            !err.reason().contains(dir.path().to_str().unwrap()),
            "{}",
            err.reason()
        );
        assert!(!out.join("180p.mp4").exists() && !out.join("poster.jpg").exists());
    }

    #[test]
    fn unsafe_rendition_names_are_refused() {
        let probe =
            crate::media::probe::parse(include_bytes!("fixtures/ffprobe-5.1.9-h264-aac.json"))
                .unwrap();
        for name in ["../x", "a b", "", "poster"] {
            let p = plan(vec![rung(name, 320, 180)], false);
            assert!(
                matches!(validate(&p, &probe), Err(ProcessError::Invalid(_))),
                "{name:?}"
            );
        }
        let odd = plan(vec![rung("x", 321, 180)], false);
        assert!(validate(&odd, &probe).is_err());
        assert!(validate(&plan(vec![rung("ok", 320, 180)], true), &probe).is_ok());
    }

    #[test]
    fn a_master_without_video_is_the_inputs_fault() {
        let mut probe =
            crate::media::probe::parse(include_bytes!("fixtures/ffprobe-5.1.9-h264-aac.json"))
                .unwrap();
        probe.video = None;
        let err = validate(&plan(vec![rung("ok", 320, 180)], true), &probe).unwrap_err();
        assert!(matches!(err, ProcessError::UnusableInput(_)), "{err:?}");
        assert!(err.is_input_fault());
    }
}
