//! One ffmpeg run turns the master into every output of a profile and the
//! poster.
//!
//! The master (often 4K) is decoded once and `split` into one branch per
//! crop (outputs with the master's own shape share one) plus one for the
//! stills. Within a branch each size is scaled from the next larger one
//! (1080 from the master, 720 from 1080, ...), which costs far less than
//! scaling 4K every time; outputs of the same size share one scaler. The
//! audio is decoded once too: the plan's `audio_filter` (loudness), then
//! 48 kHz stereo, `asplit` to every output. MP4 and WebM outputs are single
//! files; HLS variants are MPEG-TS segments plus a VOD playlist each under
//! `hls/`, and reelay writes `hls/master.m3u8` once the run succeeded.

pub mod plan;

pub use plan::{boost_plan, plan_for};

pub use super::files::{content_type_for, FileRole, WrittenFile};

use super::codec::{avc1_of, MP4A_AAC_LC};
use super::hls::{MasterPlaylist, MediaPlaylist, Segment, Variant};
use super::ladder::{h264_level, max_level, Rendition};
use super::probe::Probe;
use super::process::{input_args, path_arg, ProcessError, ProgressFn, RunOptions, Runner};
use super::profile::{is_safe_name, Crop, OutputKind};
use super::stills::{StillsGraph, StillsPlan};
use super::MediaConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct TranscodePlan {
    /// Every output (MP4, WebM and HLS variants), in profile order.
    pub renditions: Vec<Rendition>,
    /// Poster width in pixels; never wider than the master. Height keeps the aspect ratio.
    pub poster_width: u32,
    /// Master time of the poster frame.
    pub poster_at_secs: f64,
    /// Encode the master's first audio stream into every output.
    pub has_audio: bool,
    /// Master frame rate: sets the keyframe intervals (the rate itself is kept).
    pub fps: f64,
    /// x264 preset.
    pub preset: String,
    /// ffmpeg threads; 0 lets ffmpeg choose.
    pub threads: usize,
    /// Audio filter applied once to the master's audio before it is encoded
    /// (e.g. the second pass of `loudnorm`). None: the audio as it is.
    pub audio_filter: Option<String>,
    /// Posters, storyboard sprite and preview from one more branch of the
    /// same decode. None: a single `poster.jpg` (`poster_width`,
    /// `poster_at_secs`), as plans built by hand get.
    pub stills: Option<StillsPlan>,
}

impl TranscodePlan {
    /// A plan for this master: its audio and frame rate, a 1280-wide poster
    /// (narrower masters keep their width) a third of the way in (at most
    /// 3 s), preset and threads from the config. H.264 levels are raised
    /// where the master's frame rate needs it (e.g. 1080p60 needs 4.2).
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
                if r.kind.is_h264() {
                    let needed = h264_level(r.width, r.height, fps, r.maxrate_kbps);
                    r.level = max_level(&r.level, &needed).to_owned();
                }
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
            stills: None,
        }
    }

    /// The HLS variants of the plan.
    pub fn hls(&self) -> impl Iterator<Item = &Rendition> {
        self.renditions.iter().filter(|r| r.kind == OutputKind::Hls)
    }
}

#[derive(Debug, Clone)]
pub struct TranscodeOutput {
    /// Each progressive rendition (MP4, WebM) with its file, in plan order:
    /// what QC measures.
    pub renditions: Vec<(Rendition, PathBuf)>,
    /// Each HLS variant with its media playlist, in plan order.
    pub hls_variants: Vec<(Rendition, PathBuf)>,
    /// `hls/master.m3u8` when the plan has HLS variants.
    pub hls_master: Option<PathBuf>,
    pub poster: PathBuf,
    /// Every file the run wrote (renditions, HLS playlists and segments,
    /// poster), in a stable order: what publishing uploads.
    pub files: Vec<WrittenFile>,
    /// The ffmpeg arguments the run used (after the binary and the runner's
    /// own `-hide_banner -nostdin -y`).
    pub args: Vec<String>,
    pub elapsed: Duration,
    /// ffmpeg's log of the run (what filters such as `loudnorm` reported).
    pub log: Vec<String>,
}

pub const POSTER_FILE: &str = "poster.jpg";
/// Folder of the HLS set inside the output folder.
pub const HLS_DIR: &str = "hls";
pub const HLS_MASTER: &str = "hls/master.m3u8";
/// Target HLS segment length; keyframe intervals of 2 s (or 4 s) make every
/// segment start on a keyframe.
pub const HLS_SEGMENT_SECS: u32 = 4;

/// A rendition's main file inside the output folder: "1080p.mp4",
/// "vp9.webm", or for HLS its media playlist "hls/720p.m3u8".
pub fn rendition_rel(r: &Rendition) -> String {
    match r.kind {
        OutputKind::Mp4 => format!("{}.mp4", r.name),
        OutputKind::Webm => format!("{}.webm", r.name),
        OutputKind::Hls => format!("{HLS_DIR}/{}.m3u8", r.name),
    }
}

/// The rendition's file in `out_dir`.
pub fn rendition_path(out_dir: &Path, r: &Rendition) -> PathBuf {
    out_dir.join(rendition_rel(r))
}

/// The keyframe interval in frames at `fps`.
fn gop(r: &Rendition, fps: f64) -> String {
    (fps.max(1.0) * r.keyframe_secs)
        .round()
        .max(1.0)
        .to_string()
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
    let stills = plan.stills.as_ref().map(|st| st.graph("still", out_dir));
    push(
        &mut args,
        &["-filter_complex", &filter_graph(plan, stills.as_ref())],
    );

    for (i, r) in plan.renditions.iter().enumerate() {
        push(&mut args, &["-map", &format!("[v{i}]")]);
        if plan.has_audio {
            push(&mut args, &["-map", &format!("[a{i}]")]);
        }
        let gop = gop(r, plan.fps);
        let maxrate = format!("{}k", r.maxrate_kbps);
        let bufsize = format!("{}k", r.bufsize_kbps);
        // A target bitrate (ABR within the VBV) or a CRF capped by it.
        let rate: Vec<String> = match r.bitrate_kbps {
            Some(b) => vec!["-b:v".into(), format!("{b}k")],
            None => vec!["-crf".into(), r.crf.unwrap_or(23).to_string()],
        };
        match r.kind {
            OutputKind::Mp4 | OutputKind::Hls => {
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
                    ],
                );
                args.extend(rate);
                push(
                    &mut args,
                    &[
                        "-maxrate",
                        &maxrate,
                        "-bufsize",
                        &bufsize,
                        // Fixed GOP at the native rate: no scene-cut keyframes.
                        "-g",
                        &gop,
                        "-keyint_min",
                        &gop,
                        "-sc_threshold",
                        "0",
                    ],
                );
            }
            OutputKind::Webm => {
                push(&mut args, &["-c:v", "libvpx-vp9", "-profile:v", "0"]);
                args.extend(rate);
                if r.bitrate_kbps.is_none() {
                    // Constrained quality: -b:v is the ceiling of the CRF mode.
                    push(&mut args, &["-b:v", &maxrate]);
                } else {
                    push(&mut args, &["-maxrate", &maxrate]);
                }
                push(
                    &mut args,
                    &[
                        "-bufsize",
                        &bufsize,
                        "-deadline",
                        "good",
                        "-cpu-used",
                        "4",
                        "-row-mt",
                        "1",
                        "-g",
                        &gop,
                        "-keyint_min",
                        &gop,
                    ],
                );
            }
        }
        if plan.threads > 0 {
            push(&mut args, &["-threads", &threads]);
        }
        if plan.has_audio {
            let (codec, kbps) = match r.kind {
                OutputKind::Webm => ("libopus", r.audio_bitrate_kbps),
                _ => ("aac", r.audio_bitrate_kbps),
            };
            push(&mut args, &["-c:a", codec, "-b:a", &format!("{kbps}k")]);
        }
        push(
            &mut args,
            &[
                // Generator metadata (prompts, tool names) stays out of deliveries.
                "-map_metadata",
                "-1",
                "-map_chapters",
                "-1",
                // Audio may arrive well before the video encoder's first packet.
                "-max_muxing_queue_size",
                "1024",
            ],
        );
        match r.kind {
            OutputKind::Mp4 => {
                push(&mut args, &["-movflags", "+faststart", "-f", "mp4"]);
                args.push(path_arg(&rendition_path(out_dir, r)));
            }
            OutputKind::Webm => {
                push(&mut args, &["-f", "webm"]);
                args.push(path_arg(&rendition_path(out_dir, r)));
            }
            OutputKind::Hls => {
                let segs = out_dir.join(HLS_DIR).join(format!("{}_%05d.ts", r.name));
                push(
                    &mut args,
                    &[
                        "-f",
                        "hls",
                        "-hls_time",
                        &HLS_SEGMENT_SECS.to_string(),
                        "-hls_playlist_type",
                        "vod",
                        "-hls_flags",
                        "independent_segments",
                        "-hls_segment_type",
                        "mpegts",
                        "-hls_segment_filename",
                        &path_arg(&segs),
                    ],
                );
                args.push(path_arg(&rendition_path(out_dir, r)));
            }
        }
    }
    if let Some(stills) = stills {
        for group in stills.outputs {
            args.extend(group);
        }
        return args;
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

/// Renditions grouped by crop (first appearance order), each group's
/// distinct sizes largest first with the renditions at that size.
type SizeNode = ((u32, u32), Vec<usize>);

fn crop_groups(plan: &TranscodePlan) -> Vec<(Option<Crop>, Vec<SizeNode>)> {
    let mut groups: Vec<(Option<Crop>, Vec<SizeNode>)> = Vec::new();
    for (i, r) in plan.renditions.iter().enumerate() {
        let g = match groups.iter().position(|(c, _)| *c == r.crop) {
            Some(g) => g,
            None => {
                groups.push((r.crop, Vec::new()));
                groups.len() - 1
            }
        };
        let nodes = &mut groups[g].1;
        match nodes.iter_mut().find(|(s, _)| *s == (r.width, r.height)) {
            Some((_, members)) => members.push(i),
            None => nodes.push(((r.width, r.height), vec![i])),
        }
    }
    for (_, nodes) in &mut groups {
        nodes.sort_by_key(|((w, h), _)| std::cmp::Reverse(u64::from(*w) * u64::from(*h)));
    }
    groups
}

/// The `-filter_complex` graph: `[v{i}]` and (with audio) `[a{i}]` per
/// rendition (i = plan order), and the stills' chains reading `[still]`
/// (or the single `[poster]`).
fn filter_graph(plan: &TranscodePlan, stills: Option<&StillsGraph>) -> String {
    let groups = crop_groups(plan);
    let branches: String = (0..groups.len())
        .map(|g| format!("[g{g}]"))
        .chain(["[still]".to_owned()])
        .collect();
    let mut chains = vec![format!("[0:v:0]split={}{branches}", groups.len() + 1)];
    for (g, (crop, nodes)) in groups.iter().enumerate() {
        let mut from = format!("g{g}");
        for (k, ((w, h), members)) in nodes.iter().enumerate() {
            let mut filters = String::new();
            if k == 0 {
                if let Some(c) = crop {
                    filters.push_str(&c.filter());
                    filters.push(',');
                }
            }
            filters.push_str(&format!(
                "scale=w={w}:h={h}:flags=bicubic,setsar=1,format=yuv420p"
            ));
            let mut outs: Vec<String> = members.iter().map(|i| format!("[v{i}]")).collect();
            let next = format!("d{g}_{k}");
            if k + 1 < nodes.len() {
                outs.push(format!("[{next}]"));
            }
            if outs.len() == 1 {
                chains.push(format!("[{from}]{filters}{}", outs[0]));
            } else {
                chains.push(format!(
                    "[{from}]{filters},split={}{}",
                    outs.len(),
                    outs.concat()
                ));
            }
            from = next;
        }
    }
    if plan.has_audio && !plan.renditions.is_empty() {
        let mut chain = "[0:a:0]".to_owned();
        if let Some(f) = plan.audio_filter.as_deref().filter(|f| !f.is_empty()) {
            chain.push_str(f);
            chain.push(',');
        }
        chain.push_str("aresample=48000,aformat=channel_layouts=stereo");
        let n = plan.renditions.len();
        let outs: String = (0..n).map(|i| format!("[a{i}]")).collect();
        if n == 1 {
            chain.push_str(&outs);
        } else {
            chain.push_str(&format!(",asplit={n}{outs}"));
        }
        chains.push(chain);
    }
    if let Some(stills) = stills {
        chains.extend(stills.chains.iter().cloned());
        return chains.join(";");
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
        if !is_safe_name(&r.name) {
            return bad(format!(
                "rendition name {:?} is not a safe file name",
                r.name
            ));
        }
        if !names.insert(r.name.to_ascii_lowercase()) {
            return bad(format!("rendition name {:?} appears twice", r.name));
        }
        if r.width < 2 || r.height < 2 || r.width % 2 == 1 || r.height % 2 == 1 {
            return bad(format!(
                "{}: {}x{} is not an even size",
                r.name, r.width, r.height
            ));
        }
        let crf_max = if r.kind == OutputKind::Webm { 63 } else { 51 };
        if let Some(crf) = r.crf.filter(|c| *c > crf_max) {
            return bad(format!("{}: crf {crf} is above {crf_max}", r.name));
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

/// Runs the plan: every output and the poster from one decode of the
/// master, then the HLS master playlist. Outputs are checked to exist and
/// be non-empty; on failure the partial outputs are removed.
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
    let has_hls = plan.hls().next().is_some();
    if has_hls {
        tokio::fs::create_dir_all(out_dir.join(HLS_DIR)).await?;
    }
    let still_files: Vec<WrittenFile> = match &plan.stills {
        Some(st) => st.files(out_dir),
        None => vec![WrittenFile {
            rel: POSTER_FILE.to_owned(),
            path: out_dir.join(POSTER_FILE),
            role: FileRole::Poster,
            output: None,
        }],
    };
    // What ffmpeg must have written (the storyboard is ours, written after).
    let outputs: Vec<PathBuf> = plan
        .renditions
        .iter()
        .map(|r| rendition_path(out_dir, r))
        .chain(
            still_files
                .iter()
                .filter(|f| f.role != FileRole::Storyboard)
                .map(|f| f.path.clone()),
        )
        .collect();

    let opts = RunOptions::new("transcode", deadline)
        .input_duration(probe.duration_secs)
        .progress(on_progress)
        .untrusted();
    let args = build_args(master, plan, out_dir);
    let result = match runner.ffmpeg(args.clone(), opts).await {
        Ok(run) => finish(plan, out_dir, &outputs, has_hls)
            .await
            .map(|files| (run, files)),
        Err(e) => Err(e),
    };
    let (run, hls_files) = match result {
        Ok(x) => x,
        Err(e) => {
            for p in outputs.iter().chain(still_files.iter().map(|f| &f.path)) {
                let _ = tokio::fs::remove_file(p).await;
            }
            if has_hls {
                let _ = tokio::fs::remove_dir_all(out_dir.join(HLS_DIR)).await;
            }
            return Err(e);
        }
    };
    let mut files: Vec<WrittenFile> = plan
        .renditions
        .iter()
        .filter(|r| r.kind.is_progressive())
        .map(|r| WrittenFile {
            rel: rendition_rel(r),
            path: rendition_path(out_dir, r),
            role: FileRole::Rendition,
            output: Some(r.name.clone()),
        })
        .collect();
    files.extend(hls_files);
    // The poster the pipeline publishes as poster.jpg: the widest JPEG.
    let poster = still_files
        .iter()
        .filter(|f| f.role == FileRole::Poster)
        .find(|f| f.rel.ends_with(".jpg"))
        .or_else(|| still_files.iter().find(|f| f.role == FileRole::Poster))
        .map(|f| f.path.clone())
        .unwrap_or_else(|| out_dir.join(POSTER_FILE));
    files.extend(still_files);
    let with_path = |keep: fn(&Rendition) -> bool| -> Vec<(Rendition, PathBuf)> {
        plan.renditions
            .iter()
            .filter(|r| keep(r))
            .map(|r| (r.clone(), rendition_path(out_dir, r)))
            .collect()
    };
    Ok(TranscodeOutput {
        files,
        renditions: with_path(|r| r.kind.is_progressive()),
        hls_variants: with_path(|r| r.kind == OutputKind::Hls),
        hls_master: has_hls.then(|| out_dir.join(HLS_MASTER)),
        poster,
        args,
        elapsed: run.elapsed,
        log: run.log,
    })
}

/// After a successful run: every output is there and non-empty, the
/// storyboard is written, and the HLS master playlist (returns the HLS files).
async fn finish(
    plan: &TranscodePlan,
    out_dir: &Path,
    outputs: &[PathBuf],
    has_hls: bool,
) -> Result<Vec<WrittenFile>, ProcessError> {
    check_outputs(outputs).await?;
    if let Some(st) = &plan.stills {
        st.write_sidecars(out_dir)?;
    }
    if has_hls {
        write_hls_master(plan, out_dir).await
    } else {
        Ok(Vec::new())
    }
}

/// One EXT-X-STREAM-INF entry's numbers, measured from the written segments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VariantRates {
    /// Highest segment bitrate, bit/s.
    pub peak_bps: u64,
    /// Total bits over total duration, bit/s.
    pub average_bps: u64,
}

/// Rates of a variant from its (uri, duration) segments and their sizes.
pub fn variant_rates(segments: &[(u64, f64)]) -> VariantRates {
    let total_bytes: u64 = segments.iter().map(|s| s.0).sum();
    let total_secs: f64 = segments.iter().map(|s| s.1).sum();
    let per = |bytes: u64, secs: f64| {
        if secs > 0.0 {
            (bytes as f64 * 8.0 / secs).ceil() as u64
        } else {
            0
        }
    };
    let average_bps = per(total_bytes, total_secs);
    let peak_bps = segments
        .iter()
        .map(|(b, s)| per(*b, *s))
        .max()
        .unwrap_or(0)
        .max(average_bps);
    VariantRates {
        peak_bps,
        average_bps,
    }
}

/// Writes `hls/master.m3u8` naming every variant with its measured rates,
/// and returns the HLS files (master, then each variant's playlist and
/// segments).
async fn write_hls_master(
    plan: &TranscodePlan,
    out_dir: &Path,
) -> Result<Vec<WrittenFile>, ProcessError> {
    let mut files = Vec::new();
    // Version 3: decimal EXTINF durations; every segment starts on a keyframe
    // (fixed GOP, no scene cuts), which the independent-segments tag promises.
    let mut master = MasterPlaylist {
        version: Some(3),
        independent_segments: true,
        variants: Vec::new(),
    };
    for r in plan.hls() {
        let playlist = rendition_path(out_dir, r);
        let text = tokio::fs::read_to_string(&playlist).await?;
        let segments = MediaPlaylist::parse(&text).segments;
        if segments.is_empty() {
            return Err(ProcessError::BadOutput(format!(
                "{} lists no segments",
                rendition_rel(r)
            )));
        }
        files.push(WrittenFile {
            rel: rendition_rel(r),
            path: playlist,
            role: FileRole::HlsPlaylist,
            output: Some(r.name.clone()),
        });
        let mut sized = Vec::new();
        for Segment { uri, duration_secs } in segments {
            if !is_segment_name(&uri) {
                return Err(ProcessError::BadOutput(format!(
                    "{} names an unexpected segment {uri:?}",
                    rendition_rel(r)
                )));
            }
            let path = out_dir.join(HLS_DIR).join(&uri);
            let len = tokio::fs::metadata(&path)
                .await
                .map_err(|e| ProcessError::BadOutput(format!("segment {uri}: {e}")))?
                .len();
            sized.push((len, duration_secs));
            files.push(WrittenFile {
                rel: format!("{HLS_DIR}/{uri}"),
                path,
                role: FileRole::HlsSegment,
                output: Some(r.name.clone()),
            });
        }
        let rates = variant_rates(&sized);
        let mut codecs = avc1_of(r);
        if plan.has_audio {
            codecs.push(',');
            codecs.push_str(MP4A_AAC_LC);
        }
        master.variants.push(Variant {
            bandwidth: Some(rates.peak_bps),
            average_bandwidth: Some(rates.average_bps),
            resolution: Some((r.width, r.height)),
            codecs: Some(codecs),
            frame_rate: Some(plan.fps),
            ..Variant::new(format!("{}.m3u8", r.name))
        });
    }
    let path = out_dir.join(HLS_MASTER);
    tokio::fs::write(&path, master.render()).await?;
    files.insert(
        0,
        WrittenFile {
            rel: HLS_MASTER.to_owned(),
            path,
            role: FileRole::HlsMaster,
            output: None,
        },
    );
    Ok(files)
}

/// A segment file name as our muxer settings write it: no folders.
fn is_segment_name(uri: &str) -> bool {
    !uri.is_empty()
        && uri.len() <= 64
        && uri
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !uri.starts_with('.')
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
            kind: OutputKind::Mp4,
            width: w,
            height: h,
            crop: None,
            crf: Some(23),
            bitrate_kbps: None,
            maxrate_kbps: 1000,
            bufsize_kbps: 2000,
            min_bitrate_kbps: None,
            profile: "high".into(),
            level: "3.0".into(),
            keyframe_secs: 2.0,
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
            stills: None,
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
            ["[0:v:0]split=2[g0][still];\
              [g0]scale=w=1920:h=1080:flags=bicubic,setsar=1,format=yuv420p,split=2[v0][d0_0];\
              [d0_0]scale=w=1280:h=720:flags=bicubic,setsar=1,format=yuv420p,split=2[v1][d0_1];\
              [d0_1]scale=w=854:h=480:flags=bicubic,setsar=1,format=yuv420p[v2];\
              [0:a:0]aresample=48000,aformat=channel_layouts=stereo,asplit=3[a0][a1][a2];\
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
            ["[v0]", "[a0]", "[v1]", "[a1]", "[v2]", "[a2]", "[poster]"]
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
                "[g0]scale=w=640:h=360:flags=bicubic,setsar=1,format=yuv420p,split=2[v1][d0_0]"
            ),
            "{graph}"
        );
        assert!(
            graph.contains("[d0_0]scale=w=320:h=180:flags=bicubic,setsar=1,format=yuv420p[v0]"),
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
            ["[0:a:0]loudnorm=I=-24,aresample=48000,\
              aresample=48000,aformat=channel_layouts=stereo,asplit=3[a0][a1][a2]"]
        );
        assert_eq!(graph.matches("loudnorm").count(), 1, "{graph}");
        assert_eq!(
            values(&args, "-map"),
            ["[v0]", "[a0]", "[v1]", "[a1]", "[v2]", "[a2]", "[poster]"]
        );
        assert_eq!(values(&args, "-c:a"), ["aac"; 3]);

        // One rendition: no split. No audio: the filter is ignored.
        p.renditions.truncate(1);
        let one = build_args(Path::new("/m.mp4"), &p, Path::new("/out"));
        let one_graph = values(&one, "-filter_complex")[0];
        assert!(
            one_graph.contains(
                "loudnorm=I=-24,aresample=48000,aresample=48000,aformat=channel_layouts=stereo[a0]"
            ),
            "{one_graph}"
        );
        assert!(!one_graph.contains("asplit"), "{one_graph}");
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
            crate::media::probe::parse(include_bytes!("../fixtures/ffprobe-5.1.9-h264-aac.json"))
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
    fn args_for_crops_webm_hls_stills_and_one_audio_filter() {
        let probe: Probe = serde_json::from_value(serde_json::json!({
            "format_name": "mov", "duration_secs": 10.0, "size_bytes": 1, "bit_rate": null,
            "video": {"codec": "h264", "profile": null, "level": null, "width": 1920,
                      "height": 1080, "pix_fmt": null, "fps": 24.0, "nb_frames": null},
            "audio": null
        }))
        .unwrap();
        let square = Rendition {
            crop: Some(Crop {
                width: 1080,
                height: 1080,
                x: 420,
                y: 0,
            }),
            ..rung("square", 1080, 1080)
        };
        let webm = Rendition {
            kind: OutputKind::Webm,
            crf: Some(33),
            profile: "0".into(),
            level: String::new(),
            ..rung("vp9", 1280, 720)
        };
        let hls = Rendition {
            kind: OutputKind::Hls,
            crf: None,
            bitrate_kbps: Some(3000),
            ..rung("h720", 1280, 720)
        };
        let mut p = plan(vec![rung("1080p", 1920, 1080), square, webm, hls], true);
        p.audio_filter = Some("loudnorm=I=-23".into());
        p.stills = Some(
            StillsPlan::for_master(&crate::media::stills::StillsSpec::default(), &probe).unwrap(),
        );
        let args = build_args(Path::new("/in/master.mp4"), &p, Path::new("/out"));

        assert_eq!(values(&args, "-i"), ["/in/master.mp4"], "one decode");
        let graph = values(&args, "-filter_complex")[0];
        let chains: Vec<&str> = graph.split(';').collect();
        assert_eq!(chains[0], "[0:v:0]split=3[g0][g1][still]");
        for want in [
            "[g0]scale=w=1920:h=1080:flags=bicubic,setsar=1,format=yuv420p,split=2[v0][d0_0]",
            // Same size, one scaler: the WebM and the HLS variant share it.
            "[d0_0]scale=w=1280:h=720:flags=bicubic,setsar=1,format=yuv420p,split=2[v2][v3]",
            "[g1]crop=w=1080:h=1080:x=420:y=0,scale=w=1080:h=1080:flags=bicubic,setsar=1,format=yuv420p[v1]",
            "[0:a:0]loudnorm=I=-23,aresample=48000,aformat=channel_layouts=stereo,asplit=4[a0][a1][a2][a3]",
        ] {
            assert!(chains.contains(&want), "{want} not in {chains:#?}");
        }
        assert_eq!(graph.matches("loudnorm").count(), 1, "audio filtered once");
        assert!(
            chains
                .iter()
                .any(|c| c.starts_with("[still]setpts=PTS-STARTPTS,split=")),
            "{chains:#?}"
        );
        assert!(!graph.contains("[poster]"));

        let vcodecs = values(&args, "-c:v");
        assert_eq!(
            vcodecs[..4],
            ["libx264", "libx264", "libvpx-vp9", "libx264"]
        );
        assert!(vcodecs[4..].contains(&"libwebp_anim"), "{vcodecs:?}");
        assert_eq!(values(&args, "-c:a"), ["aac", "aac", "libopus", "aac"]);
        assert_eq!(values(&args, "-crf"), ["23", "23", "33"]);
        // The VP9 CRF is capped by -b:v; the HLS variant has a target bitrate.
        assert_eq!(values(&args, "-b:v"), ["1000k", "3000k"]);
        assert_eq!(values(&args, "-movflags"), ["+faststart"; 2]);
        assert_eq!(values(&args, "-f")[..4], ["mp4", "mp4", "webm", "hls"]);
        assert_eq!(
            values(&args, "-hls_segment_filename"),
            ["/out/hls/h720_%05d.ts"]
        );
        assert_eq!(values(&args, "-hls_playlist_type"), ["vod"]);
        let files: Vec<&String> = args.iter().filter(|a| a.starts_with("/out/")).collect();
        for want in [
            "/out/1080p.mp4",
            "/out/square.mp4",
            "/out/vp9.webm",
            "/out/hls/h720.m3u8",
            "/out/poster-1280.jpg",
            "/out/poster-640.webp",
            "/out/sprite.jpg",
            "/out/preview.webp",
        ] {
            assert!(files.iter().any(|f| *f == want), "{want} not in {files:?}");
        }
        assert!(!files.iter().any(|f| f.ends_with("poster.jpg")));
    }

    #[test]
    fn playlists_give_segments_and_rates_for_the_master_playlist() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n\
                    #EXTINF:4.000000,\nv_00000.ts\n#EXTINF:1.500000,\nv_00001.ts\n#EXT-X-ENDLIST\n";
        let segments: Vec<(String, f64)> = MediaPlaylist::parse(text)
            .segments
            .into_iter()
            .map(|s| (s.uri, s.duration_secs))
            .collect();
        assert_eq!(
            segments,
            [
                ("v_00000.ts".to_owned(), 4.0),
                ("v_00001.ts".to_owned(), 1.5)
            ]
        );
        // 2 MB in 4 s, 1 MB in 1.5 s: peak is the short segment's rate.
        let r = variant_rates(&[(2_000_000, 4.0), (1_000_000, 1.5)]);
        assert_eq!(r.average_bps, (3_000_000.0f64 * 8.0 / 5.5).ceil() as u64);
        assert_eq!(r.peak_bps, (8_000_000.0f64 / 1.5).ceil() as u64);
        assert!(is_segment_name("v_00001.ts"));
        assert!(!is_segment_name("../x.ts") && !is_segment_name("a/b.ts"));
        let r = Rendition {
            level: "3.1".into(),
            ..rung("x", 2, 2)
        };
        assert_eq!(avc1_of(&r), "avc1.64001f");
    }

    /// The master playlist bytes reelay publishes, pinned on a sample set of
    /// written segments: a change here changes every published HLS set.
    #[tokio::test]
    async fn the_hls_master_playlist_text_is_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let hls = dir.path().join(HLS_DIR);
        std::fs::create_dir_all(&hls).unwrap();
        let variant = |name: &str, w, h, level: &str| Rendition {
            kind: OutputKind::Hls,
            level: level.into(),
            ..rung(name, w, h)
        };
        let p = plan(
            vec![
                variant("h720", 1280, 720, "3.1"),
                rung("480p", 854, 480),
                variant("h360", 640, 360, "3.0"),
            ],
            true,
        );
        std::fs::write(
            hls.join("h720.m3u8"),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.000000,\n\
             h720_00000.ts\n#EXTINF:1.500000,\nh720_00001.ts\n#EXT-X-ENDLIST\n",
        )
        .unwrap();
        std::fs::write(
            hls.join("h360.m3u8"),
            "#EXTM3U\n#EXTINF:2.0,\nh360_00000.ts\n#EXT-X-ENDLIST\n",
        )
        .unwrap();
        std::fs::write(hls.join("h720_00000.ts"), vec![0u8; 2000]).unwrap();
        std::fs::write(hls.join("h720_00001.ts"), vec![0u8; 1000]).unwrap();
        std::fs::write(hls.join("h360_00000.ts"), vec![0u8; 500]).unwrap();

        let files = write_hls_master(&p, dir.path()).await.unwrap();

        assert_eq!(
            std::fs::read_to_string(dir.path().join(HLS_MASTER)).unwrap(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=5334,AVERAGE-BANDWIDTH=4364,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\",FRAME-RATE=24.000\n\
             h720.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2000,AVERAGE-BANDWIDTH=2000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",FRAME-RATE=24.000\n\
             h360.m3u8\n"
        );
        let rels: Vec<&str> = files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(
            rels,
            [
                "hls/master.m3u8",
                "hls/h720.m3u8",
                "hls/h720_00000.ts",
                "hls/h720_00001.ts",
                "hls/h360.m3u8",
                "hls/h360_00000.ts"
            ]
        );
    }

    #[test]
    fn a_master_without_video_is_the_inputs_fault() {
        let mut probe =
            crate::media::probe::parse(include_bytes!("../fixtures/ffprobe-5.1.9-h264-aac.json"))
                .unwrap();
        probe.video = None;
        let err = validate(&plan(vec![rung("ok", 320, 180)], true), &probe).unwrap_err();
        assert!(matches!(err, ProcessError::UnusableInput(_)), "{err:?}");
        assert!(err.is_input_fault());
    }
}
