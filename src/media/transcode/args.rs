//! The ffmpeg argument list of a transcode: one decode of the master, a
//! filter graph that splits and cascades the scalers, then each output's
//! encoder settings and file.

use super::{inline_detectors, ANALYSIS_AUDIO_PAD, ANALYSIS_VIDEO_PAD};
use super::{rendition_path, TranscodePlan, HLS_DIR, HLS_SEGMENT_SECS, POSTER_FILE};
use crate::media::ladder::Rendition;
use crate::media::measure::StoredReference;
use crate::media::process::{input_args, path_arg};
use crate::media::profile::{Crop, OutputKind};
use crate::media::stills::StillsGraph;
use std::path::Path;

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
        let bufsize = format!("{}k", r.bufsize_kbps);
        // A rung with a floor on x264 is encoded at constant rate with HRD
        // filler (nal-hrd=cbr): one-pass ABR undershoots on easy content,
        // filler makes even a static picture reach the rate.
        let cbr = r.kind != OutputKind::Webm && r.min_bitrate_kbps.is_some();
        let maxrate = match (cbr, r.bitrate_kbps) {
            (true, Some(b)) => format!("{b}k"),
            _ => format!("{}k", r.maxrate_kbps),
        };
        // A target bitrate (ABR within the VBV) or a CRF capped by it.
        let rate: Vec<String> = match r.bitrate_kbps {
            _ if cbr => vec!["-b:v".into(), maxrate.clone()],
            Some(b) => vec!["-b:v".into(), format!("{b}k")],
            None => vec!["-crf".into(), r.crf.unwrap_or(23).to_string()],
        };
        match r.kind {
            OutputKind::Mp4 | OutputKind::Hls => {
                push(&mut args, &["-c:v", "libx264", "-profile:v", &r.profile]);
                // Resolved plans always carry a level; one built by hand
                // without it lets x264 pick rather than pass an empty value.
                if let Some(level) = r.level {
                    push(&mut args, &["-level:v", &level.to_string()]);
                }
                push(&mut args, &["-preset", &plan.preset]);
                args.extend(rate);
                if cbr {
                    push(
                        &mut args,
                        &[
                            "-minrate",
                            &maxrate,
                            "-x264-params",
                            "nal-hrd=cbr:force-cfr=1",
                        ],
                    );
                }
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
        push(&mut args, &super::prefix::COLOUR_TAGS);
        if plan.has_audio {
            let (codec, kbps) = match r.kind {
                OutputKind::Webm => ("libopus", r.audio_bitrate_kbps),
                _ => ("aac", r.audio_bitrate_kbps),
            };
            push(&mut args, &["-c:a", codec, "-b:a", &format!("{kbps}k")]);
            if codec == "aac" && plan.conform.aac_lr {
                push(&mut args, &["-aac_ms", "0"]);
            }
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
    for (g, (crop, nodes)) in crop_groups(plan).iter().enumerate() {
        let top = nodes.first().map(|(size, _)| *size);
        if let Some(r) = top.and_then(|size| reference_of(plan, *crop, size)) {
            push(
                &mut args,
                &[
                    "-map",
                    &format!("[{REFERENCE_PAD}{g}]"),
                    "-c:v",
                    "rawvideo",
                    "-map_metadata",
                    "-1",
                    "-f",
                    "nut",
                ],
            );
            args.push(path_arg(&r.path));
        }
    }
    if let Some(a) = &plan.analysis {
        args.extend(inline_detectors(a).output_args());
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

/// Pad prefix of a crop's QC reference branch.
const REFERENCE_PAD: &str = "qcref";

/// The plan's QC reference for `crop` at `size` (its largest output).
fn reference_of(
    plan: &TranscodePlan,
    crop: Option<Crop>,
    (w, h): (u32, u32),
) -> Option<&StoredReference> {
    plan.references
        .iter()
        .find(|r| r.crop == crop && (r.width, r.height) == (w, h))
}

/// Renditions grouped by crop (first appearance order), each group's
/// distinct sizes largest first with the renditions at that size.
type SizeNode = ((u32, u32), Vec<usize>);

pub(super) fn crop_groups(plan: &TranscodePlan) -> Vec<(Option<Crop>, Vec<SizeNode>)> {
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
    let conform = &plan.conform;
    let analysis = plan.analysis.as_ref();
    let rate = plan.picture.rate_filter();
    let mut branches: Vec<String> = (0..groups.len())
        .map(|g| format!("[g{g}]"))
        .chain(["[still]".to_owned()])
        .collect();
    let mut chains = Vec::new();
    match analysis {
        // The detectors see the master's own frames; the outputs are
        // conformed to a constant rate after their branch leaves.
        Some(_) if !rate.is_empty() => chains.push(format!(
            "[0:v:0]{}split=2[{ANALYSIS_VIDEO_PAD}][rated];[rated]{rate}split={}{}",
            plan.picture.picture_filters(),
            branches.len(),
            branches.concat()
        )),
        _ => {
            if analysis.is_some() {
                branches.push(format!("[{ANALYSIS_VIDEO_PAD}]"));
            }
            chains.push(format!(
                "[0:v:0]{}split={}{}",
                plan.picture.filters(),
                branches.len(),
                branches.concat()
            ));
        }
    }
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
            // With a conform, each output's own chain follows (below).
            let pad = if conform.is_empty() { "v" } else { "c" };
            let mut outs: Vec<String> = members.iter().map(|i| format!("[{pad}{i}]")).collect();
            if k == 0 && reference_of(plan, *crop, (*w, *h)).is_some() {
                // QC's frames get the outputs' conform too (below).
                let pad = if conform.is_empty() {
                    REFERENCE_PAD
                } else {
                    "qcpre"
                };
                outs.push(format!("[{pad}{g}]"));
            }
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
    // Per output, after its scaler: the buyers' frame-rate conform and trim.
    if !conform.is_empty() {
        let filters = conform.video_filters();
        let filters = filters.trim_end_matches(',');
        for i in 0..plan.renditions.len() {
            chains.push(format!("[c{i}]{filters}[v{i}]"));
        }
        for (g, (crop, nodes)) in groups.iter().enumerate() {
            let top = nodes.first().map(|(size, _)| *size);
            if top
                .and_then(|size| reference_of(plan, *crop, size))
                .is_some()
            {
                chains.push(format!("[qcpre{g}]{filters}[{REFERENCE_PAD}{g}]"));
            }
        }
    }
    let analyse_audio = analysis.is_some_and(|a| a.audio);
    let encode_audio = plan.has_audio && !plan.renditions.is_empty();
    if analyse_audio && encode_audio {
        // The detectors hear the master as it is, before any normalisation.
        chains.push(format!("[0:a:0]asplit=2[{ANALYSIS_AUDIO_PAD}][aenc]"));
    } else if analyse_audio {
        chains.push(format!("[0:a:0]anull[{ANALYSIS_AUDIO_PAD}]"));
    }
    if let Some(a) = analysis {
        chains.extend(inline_detectors(a).chains);
    }
    if encode_audio {
        let mut chain = if analyse_audio { "[aenc]" } else { "[0:a:0]" }.to_owned();
        if let Some(f) = plan.audio_filter.as_deref().filter(|f| !f.is_empty()) {
            chain.push_str(f);
            chain.push(',');
        }
        chain.push_str("aresample=48000,aformat=channel_layouts=stereo");
        let trim = conform.audio_filters();
        if !trim.is_empty() {
            chain.push(',');
            chain.push_str(trim.trim_end_matches(','));
        }
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
