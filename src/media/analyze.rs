//! Content analysis of a master in one ffmpeg pass: black runs
//! (`blackdetect`), frozen runs (`freezedetect`), silent runs
//! (`silencedetect`), loudness with true peak (`ebur128`), borders
//! (`cropdetect` on every 6th frame), per-frame mean luma and difference
//! (`signalstats`: repeated frames), and the share of the picture that
//! brightens or darkens from one frame to the next (`blackframe` over a
//! grid of block means: flashes). The video
//! branch is scaled down first: the detectors need no 4K, and decoding is
//! the only full-size cost.

use super::probe::Probe;
use super::process::{input_args, ProcessError, RunOptions, Runner};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// Detector thresholds (defaults from the broadcast QC practice in
/// docs/ad-delivery-specs.md, with shorter minimum runs so head and tail
/// defects of a few frames are found).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectSettings {
    /// Shortest black run reported, seconds.
    pub black_min_secs: f64,
    /// Ratio of black pixels for a picture to count as black.
    pub black_picture_ratio: f64,
    /// Luma threshold (0-1) below which a pixel is black.
    pub black_pixel_threshold: f64,
    /// Shortest frozen run reported, seconds.
    pub freeze_min_secs: f64,
    /// Noise tolerance of freezedetect, dB.
    pub freeze_noise_db: f64,
    /// Level below which audio is silent, dB.
    pub silence_db: f64,
    /// Shortest silent run reported, seconds.
    pub silence_min_secs: f64,
}

impl Default for DetectSettings {
    fn default() -> Self {
        DetectSettings {
            black_min_secs: 0.1,
            black_picture_ratio: 0.98,
            black_pixel_threshold: 0.10,
            freeze_min_secs: 0.5,
            freeze_noise_db: -60.0,
            silence_db: -60.0,
            silence_min_secs: 0.5,
        }
    }
}

/// A stretch of the timeline where a detector fired.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DetectedRun)]
pub struct Run {
    pub start: f64,
    pub end: f64,
}

impl Run {
    pub fn duration(&self) -> f64 {
        (self.end - self.start).max(0.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Loudness {
    /// Integrated loudness, LUFS (= LKFS).
    pub integrated_lufs: f64,
    /// Loudness range, LU.
    pub range_lu: f64,
    /// True peak, dBTP.
    pub true_peak_dbtp: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContentAnalysis {
    pub duration_secs: f64,
    pub black: Vec<Run>,
    pub freeze: Vec<Run>,
    pub silence: Vec<Run>,
    pub loudness: Option<Loudness>,
    /// The extent of the picture that is ever brighter than black, in the
    /// analysis frame ([`analysis_size`]); None when no frame was read.
    #[serde(default)]
    pub picture_extent: Option<Extent>,
    /// Frames compared with the one before, and how many repeated it
    /// (outside frozen runs).
    #[serde(default)]
    pub cadence: Option<Cadence>,
    /// Frame-to-frame changes of the mean luma of at least
    /// [`LUMA_STEP_FLOOR`] of the range.
    #[serde(default)]
    pub luma_steps: Vec<LumaStep>,
    /// The frames where at least [`AREA_STEP_FLOOR`] of the picture
    /// brightened or darkened by [`FLASH_BLOCK_STEP`]: the transitions
    /// flashes are made of. None in analyses made before it was measured.
    #[serde(default)]
    pub area_steps: Option<Vec<AreaStep>>,
}

/// At `at`, these shares of the picture (of the [`FLASH_GRID`] blocks'
/// mean luma) got brighter or darker than in the frame before by at least
/// [`FLASH_BLOCK_STEP`] of the range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AreaStep {
    pub at: f64,
    pub brighter: f64,
    pub darker: f64,
}

/// cropdetect's x1..x2, y1..y2 over the whole master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Extent {
    pub x1: u32,
    pub x2: u32,
    pub y1: u32,
    pub y2: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cadence {
    pub frames: u64,
    pub repeated: u64,
}

impl Cadence {
    pub fn share(&self) -> f64 {
        if self.frames == 0 {
            0.0
        } else {
            self.repeated as f64 / self.frames as f64
        }
    }
}

/// The mean luma changed by `delta` (fraction of the range, signed) at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LumaStep {
    pub at: f64,
    pub delta: f64,
}

/// Luma changes smaller than this (fraction of the range) are not kept.
pub const LUMA_STEP_FLOOR: f64 = 0.05;
/// The flash detector's blocks: the picture averaged into 16x9 cells
/// (each 1/144 of it, whatever its shape), so that motion inside a cell
/// averages out and only a change of the region's brightness counts.
pub const FLASH_GRID: (u32, u32) = (16, 9);
/// A block whose mean luma moves by this much (fraction of the range,
/// 26 of 255) from one frame to the next brightens or darkens.
pub const FLASH_BLOCK_STEP: f64 = 0.1;
/// Frames where less than this share of the picture changed are not kept.
pub const AREA_STEP_FLOOR: f64 = 0.1;
/// Names of the two `blackframe` instances of the flash chain.
const BRIGHTER: &str = "blackframe@qcbrighter";
const DARKER: &str = "blackframe@qcdarker";
/// A frame whose mean absolute luma difference to the one before is below
/// this (8-bit levels) repeats it (a decoded duplicate measures ~0.02,
/// moving footage 1 and more).
const REPEAT_YDIF: f64 = 0.1;
/// cropdetect looks at one frame in this many.
const CROP_EVERY: u32 = 6;

/// The size of the frames the video detectors see: [`ANALYSIS_WIDTH`]
/// wide, the shape of the picture as displayed (rotated by the decoder's
/// autorotate, the pixel aspect applied by the scale itself: the
/// transcode's branch has square pixels already, the stand-alone pass's
/// has the master's own), the height even, as [`Detectors`]' scale rounds it.
pub fn analysis_size(v: &crate::media::probe::VideoStream) -> (u32, u32) {
    let half = ANALYSIS_WIDTH as f64 / 2.0;
    let h = (half * v.height as f64 / v.width.max(1) as f64).round() as u32 * 2;
    (ANALYSIS_WIDTH, h)
}

/// Width the detectors look at.
const ANALYSIS_WIDTH: u32 = 480;

/// Pad the detectors' video chain ends in (mapped to a null output).
pub const VIDEO_SINK: &str = "qcv";
/// Pad of the border detector's sample of the video chain.
const CROP_PAD: &str = "qccrop";
/// Pad of the flash detector's copy of the video chain.
const FLASH_PAD: &str = "qcflash";
/// Pad the detectors' audio chain ends in.
pub const AUDIO_SINK: &str = "qca";

/// The detectors as part of a filter graph, built in one place for both
/// runs that use them: the stand-alone pass over a master ([`analyze`],
/// for masters reelay did not transcode itself) and the branch of the
/// transcode's own decode (`media::transcode`, the common path). `video`
/// and `audio` are the pads the chains read (`0:v:0`, or a branch of the
/// transcode's split); each chain ends in a sink pad that
/// [`Detectors::output_args`] maps to a null output. [`Detectors::parse`]
/// reads what the chains logged. A detector added here is run, and read,
/// by both.
#[derive(Debug, Clone, PartialEq)]
pub struct Detectors {
    /// `-filter_complex` chains, without separators.
    pub chains: Vec<String>,
    /// Sink pads (without brackets), one per chain.
    pub sinks: Vec<String>,
}

impl Detectors {
    pub fn new(video: Option<&str>, audio: Option<&str>, s: &DetectSettings) -> Self {
        let mut chains = Vec::new();
        let mut sinks = Vec::new();
        if let Some(pad) = video {
            chains.push(format!(
                "[{pad}]scale=w={ANALYSIS_WIDTH}:h=2*round({ANALYSIS_WIDTH}/2/dar):flags=fast_bilinear,\
                 blackdetect=d={}:pic_th={}:pix_th={},freezedetect=n={}dB:d={},\
                 signalstats,metadata=mode=print:key=lavfi.signalstats.YAVG,\
                 metadata=mode=print:key=lavfi.signalstats.YDIF,\
                 split=3[{VIDEO_SINK}][{CROP_PAD}][{FLASH_PAD}]",
                s.black_min_secs,
                s.black_picture_ratio,
                s.black_pixel_threshold,
                s.freeze_noise_db,
                s.freeze_min_secs
            ));
            // cropdetect logs every frame it sees: a sample is enough for bars
            // that stay put (reset=0: the extent only grows).
            chains.push(format!(
                "[{CROP_PAD}]select='not(mod(n\\,{CROP_EVERY}))',cropdetect=round=2:reset=0,nullsink"
            ));
            chains.push(flash_chain());
            sinks.push(VIDEO_SINK.to_owned());
        }
        if let Some(pad) = audio {
            // framelog=verbose keeps the per-frame lines below the log level;
            // `quiet` would silence every other filter's log too.
            chains.push(format!(
                "[{pad}]ebur128=peak=true:framelog=verbose,silencedetect=n={}dB:d={}[{AUDIO_SINK}]",
                s.silence_db, s.silence_min_secs
            ));
            sinks.push(AUDIO_SINK.to_owned());
        }
        Detectors { chains, sinks }
    }

    /// One null output taking every sink: what ends the detectors' branches.
    pub fn output_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for sink in &self.sinks {
            args.extend(["-map".to_string(), format!("[{sink}]")]);
        }
        args.extend(["-f".to_string(), "null".to_string(), "-".to_string()]);
        args
    }

    /// What the detectors found, from the log of the run they were part of
    /// (runs still open at the end close at `duration`).
    pub fn parse<S: AsRef<str>>(&self, log: &[S], duration: f64) -> ContentAnalysis {
        parse_log(log, duration)
    }
}

/// Block means, then each block's change from the frame before
/// (`grainextract`: 128 + now - before); `blackframe` counts the share of
/// blocks below a level: those that darkened by more than the step, and
/// (after the values are mirrored) those that brightened.
fn flash_chain() -> String {
    let (gw, gh) = FLASH_GRID;
    let step = (FLASH_BLOCK_STEP * 255.0).round() as u32;
    format!(
        "[{FLASH_PAD}]scale=w={gw}:h={gh}:flags=area,format=gray,tblend=all_mode=grainextract,\
         split[qcfd][qcfb];[qcfd]{DARKER}=amount=0:threshold={},nullsink;\
         [qcfb]lut=c0=255-val,{BRIGHTER}=amount=0:threshold={},nullsink",
        128 - step,
        127 - step
    )
}

/// The stand-alone analysis pass: the master decoded for the detectors alone.
pub fn build_args(
    master: &Path,
    has_video: bool,
    has_audio: bool,
    s: &DetectSettings,
) -> Vec<String> {
    let mut args = input_args(master, true);
    let d = detectors_on_master(has_video, has_audio, s);
    args.extend(["-filter_complex".to_string(), d.chains.join(";")]);
    args.extend(d.output_args());
    args
}

fn detectors_on_master(has_video: bool, has_audio: bool, s: &DetectSettings) -> Detectors {
    Detectors::new(
        has_video.then_some("0:v:0"),
        has_audio.then_some("0:a:0"),
        s,
    )
}

/// Number after `key` in `line`, e.g. `black_start:1.5` or `silence_end: 2`.
fn number_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    let rest = rest.trim_start_matches([':', ' ']);
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e' || c == '+'))
        .unwrap_or(rest.len());
    rest[..end]
        .parse()
        .ok()
        .or_else(|| rest.starts_with("-inf").then_some(f64::NEG_INFINITY))
}

/// Reads the detectors' log lines. Runs still open at the end of the file
/// (a freeze or silence that lasts to the last frame) end at `duration`.
pub fn parse_log<S: AsRef<str>>(lines: &[S], duration: f64) -> ContentAnalysis {
    let mut a = ContentAnalysis {
        duration_secs: duration,
        ..Default::default()
    };
    let (mut freeze_start, mut silence_start) = (None, None);
    let (mut i, mut lra, mut peak) = (None, None, None);
    let mut in_summary = false;
    let (mut at, mut last_yavg) = (0.0, None::<f64>);
    let mut repeats = Vec::new();
    let (mut compared, mut ydif_lines) = (0u64, 0u64);
    // Frame number -> (time, brighter, darker).
    let mut areas: std::collections::BTreeMap<u64, (f64, f64, f64)> = Default::default();
    for line in lines {
        let line = line.as_ref();
        if let Some((i, brighter)) = [(line.find(BRIGHTER), true), (line.find(DARKER), false)]
            .into_iter()
            .find_map(|(i, b)| i.map(|i| (i, b)))
        {
            let rest = &line[i..];
            if let (Some(n), Some(p), Some(t)) = (
                number_after(rest, "] frame:"),
                number_after(rest, " pblack:"),
                number_after(rest, " t:"),
            ) {
                let e = areas.entry(n as u64).or_insert((t, 0.0, 0.0));
                if brighter {
                    e.1 = p / 100.0;
                } else {
                    e.2 = p / 100.0;
                }
            }
            continue;
        }
        if line.contains("[Parsed_metadata") {
            if let Some(t) = number_after(line, "pts_time:") {
                at = t;
            } else if let Some(y) = number_after(line, "lavfi.signalstats.YAVG=") {
                if let Some(prev) = last_yavg {
                    let delta = (y - prev) / 255.0;
                    if delta.abs() >= LUMA_STEP_FLOOR {
                        a.luma_steps.push(LumaStep { at, delta });
                    }
                }
                last_yavg = Some(y);
            } else if let Some(d) = number_after(line, "lavfi.signalstats.YDIF=") {
                // The first frame has nothing to differ from.
                ydif_lines += 1;
                if ydif_lines > 1 {
                    compared += 1;
                    if d < REPEAT_YDIF {
                        repeats.push(at);
                    }
                }
            }
            continue;
        }
        if line.contains("[Parsed_cropdetect") {
            if let (Some(x1), Some(x2), Some(y1), Some(y2)) = (
                number_after(line, " x1:"),
                number_after(line, " x2:"),
                number_after(line, " y1:"),
                number_after(line, " y2:"),
            ) {
                a.picture_extent = Some(Extent {
                    x1: x1 as u32,
                    x2: x2 as u32,
                    y1: y1 as u32,
                    y2: y2 as u32,
                });
            }
            continue;
        }
        if line.contains("black_start") {
            if let (Some(s), Some(e)) = (
                number_after(line, "black_start"),
                number_after(line, "black_end"),
            ) {
                a.black.push(Run { start: s, end: e });
            }
        }
        if let Some(s) = number_after(line, "lavfi.freezedetect.freeze_start") {
            freeze_start = Some(s);
        }
        if let Some(e) = number_after(line, "lavfi.freezedetect.freeze_end") {
            a.freeze.push(Run {
                start: freeze_start.take().unwrap_or(0.0),
                end: e,
            });
        }
        if let Some(s) = number_after(line, "silence_start") {
            silence_start = Some(s);
        }
        if let Some(e) = number_after(line, "silence_end") {
            a.silence.push(Run {
                start: silence_start.take().unwrap_or(0.0),
                end: e,
            });
        }
        // ebur128 prints a summary when its graph is set up and again at the
        // end; the last one is the measurement.
        if line.contains("Summary:") {
            in_summary = true;
            (i, lra, peak) = (None, None, None);
        } else if in_summary {
            let t = line.trim_start();
            if t.starts_with("I:") {
                i = number_after(t, "I:");
            } else if t.starts_with("LRA:") {
                lra = number_after(t, "LRA:");
            } else if t.starts_with("Peak:") {
                peak = number_after(t, "Peak:");
            }
        }
    }
    if let Some(s) = freeze_start {
        a.freeze.push(Run {
            start: s,
            end: duration,
        });
    }
    if let Some(s) = silence_start {
        a.silence.push(Run {
            start: s,
            end: duration,
        });
    }
    if !areas.is_empty() {
        a.area_steps = Some(
            areas
                .into_values()
                .filter(|&(_, b, d)| b.max(d) >= AREA_STEP_FLOOR)
                .map(|(at, brighter, darker)| AreaStep {
                    at,
                    brighter,
                    darker,
                })
                .collect(),
        );
    }
    if compared > 0 {
        let frozen = |t: &f64| a.freeze.iter().any(|r| *t >= r.start && *t <= r.end);
        a.cadence = Some(Cadence {
            frames: compared,
            repeated: repeats.iter().filter(|t| !frozen(t)).count() as u64,
        });
    }
    if let (Some(i), Some(lra), Some(peak)) = (i, lra, peak) {
        a.loudness = Some(Loudness {
            integrated_lufs: i,
            range_lu: lra,
            true_peak_dbtp: peak,
        });
    }
    a
}

pub async fn analyze(
    runner: &Runner,
    master: &Path,
    probe: &Probe,
    settings: &DetectSettings,
    deadline: Duration,
) -> Result<ContentAnalysis, ProcessError> {
    let (has_video, has_audio) = (probe.video.is_some(), probe.audio.is_some());
    let args = build_args(master, has_video, has_audio, settings);
    let out = runner
        .ffmpeg(
            args,
            RunOptions::new("analyze", deadline)
                .input_duration(probe.duration_secs)
                .untrusted(),
        )
        .await?;
    Ok(detectors_on_master(has_video, has_audio, settings).parse(&out.log, probe.duration_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded from ffmpeg 5.1 on a clip with 1.5 s black head, a frozen
    // tail from 3.46 s and silence from 2.0 s to the end (5.5 s).
    const LOG: &[&str] = &[
        "[Parsed_ebur128_2 @ 0x55] Summary:",
        "    I:         -70.0 LUFS",
        "    LRA:         0.0 LU",
        "    Peak:       -inf dBFS",
        "frame=    1 fps=0.0 q=-0.0 size=N/A time=00:00:00.04 bitrate=N/A speed=18.8x    [freezedetect @ 0x56] lavfi.freezedetect.freeze_start: 0",
        "[blackdetect @ 0x56] black_start:0 black_end:1.5 black_duration:1.5",
        "[freezedetect @ 0x56] lavfi.freezedetect.freeze_duration: 1.5",
        "[freezedetect @ 0x56] lavfi.freezedetect.freeze_end: 1.5",
        "[silencedetect @ 0x56] silence_start: 2.00023",
        "[freezedetect @ 0x56] lavfi.freezedetect.freeze_start: 3.45833",
        "[silencedetect @ 0x56] silence_end: 5.504 | silence_duration: 3.50377",
        "[Parsed_ebur128_2 @ 0x55] Summary:",
        "  Integrated loudness:",
        "    I:         -22.1 LUFS",
        "    Threshold: -32.3 LUFS",
        "  Loudness range:",
        "    LRA:         9.8 LU",
        "  True peak:",
        "    Peak:      -16.1 dBFS",
    ];

    #[test]
    fn runs_and_the_final_loudness_summary_are_read_from_the_log() {
        let a = parse_log(LOG, 5.5);
        assert_eq!(
            a.black,
            vec![Run {
                start: 0.0,
                end: 1.5
            }]
        );
        assert_eq!(a.freeze.len(), 2);
        assert_eq!(
            a.freeze[0],
            Run {
                start: 0.0,
                end: 1.5
            }
        );
        // The tail freeze never ends before EOF: it is closed at the duration.
        assert_eq!(
            a.freeze[1],
            Run {
                start: 3.45833,
                end: 5.5
            }
        );
        assert_eq!(
            a.silence,
            vec![Run {
                start: 2.00023,
                end: 5.504
            }]
        );
        let l = a.loudness.unwrap();
        assert_eq!(l.integrated_lufs, -22.1);
        assert_eq!(l.range_lu, 9.8);
        assert_eq!(l.true_peak_dbtp, -16.1);
    }

    #[test]
    fn luma_steps_repeated_frames_and_the_picture_extent_are_read() {
        let mut log: Vec<String> = Vec::new();
        // Frame 0, 1 (a repeat), 2 (a jump up), 3 (inside a frozen run, a repeat).
        for (n, (t, yavg, ydif)) in [
            (0.0, 100.0, 0.0),
            (0.04, 100.0, 0.02),
            (0.08, 200.0, 90.0),
            (0.12, 200.0, 0.0),
        ]
        .into_iter()
        .enumerate()
        {
            log.push(format!(
                "[Parsed_metadata_5 @ 0x1x2] frame:{n}    pts:{n}    pts_time:{t}"
            ));
            log.push(format!(
                "[Parsed_metadata_5 @ 0x1x2] lavfi.signalstats.YAVG={yavg}"
            ));
            log.push(format!(
                "[Parsed_metadata_6 @ 0x1x2] frame:{n}    pts:{n}    pts_time:{t}"
            ));
            log.push(format!(
                "[Parsed_metadata_6 @ 0x1x2] lavfi.signalstats.YDIF={ydif}"
            ));
        }
        // The flash chain's two counts of frame 1 (t 0.04), as ffmpeg 5.1
        // logs them (the progress line can run into the first).
        log.push("frame=    1 fps=0.0 q=-0.0 size=N/A time=00:00:00.04 bitrate=N/A speed=N/A    [blackframe@qcdarker @ 0x55] frame:0 pblack:31 pts:1 t:0.040000 type:I last_keyframe:0".into());
        log.push("[blackframe@qcbrighter @ 0x56] frame:0 pblack:2 pts:1 t:0.040000 type:I last_keyframe:0".into());
        log.push(
            "[blackframe@qcdarker @ 0x55] frame:1 pblack:4 pts:2 t:0.080000 type:I last_keyframe:1"
                .into(),
        );
        log.push("[blackframe@qcbrighter @ 0x56] frame:1 pblack:3 pts:2 t:0.080000 type:I last_keyframe:1".into());
        log.push("[freezedetect @ 0x56] lavfi.freezedetect.freeze_start: 0.1".into());
        log.push("[Parsed_cropdetect_9 @ 0x1x1] x1:48 x2:431 y1:27 y2:242 w:384 h:214 x:48 y:28 pts:1 t:0.5 crop=384:214:48:28".into());
        let a = parse_log(&log, 0.16);
        assert_eq!(
            a.picture_extent,
            Some(Extent {
                x1: 48,
                x2: 431,
                y1: 27,
                y2: 242
            })
        );
        // Frame 1's 4% and 3% are below the floor: not kept.
        assert_eq!(
            a.area_steps,
            Some(vec![AreaStep {
                at: 0.04,
                brighter: 0.02,
                darker: 0.31
            }])
        );
        assert_eq!(a.luma_steps.len(), 1);
        assert_eq!(a.luma_steps[0].at, 0.08);
        assert!((a.luma_steps[0].delta - 100.0 / 255.0).abs() < 1e-9);
        // Frame 0 is compared with nothing; frame 3 repeats inside the freeze.
        assert_eq!(
            a.cadence,
            Some(Cadence {
                frames: 3,
                repeated: 1
            })
        );
    }

    #[test]
    fn no_audio_means_no_loudness() {
        let a = parse_log(
            &["[blackdetect @ 0x1] black_start:4.9 black_end:5 black_duration:0.1"],
            5.0,
        );
        assert_eq!(a.loudness, None);
        assert_eq!(
            a.black,
            vec![Run {
                start: 4.9,
                end: 5.0
            }]
        );
    }

    #[test]
    fn the_analysis_pass_scales_video_down_and_skips_absent_streams() {
        let args = build_args(Path::new("m.mp4"), true, false, &DetectSettings::default());
        let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
        assert!(graph.contains("scale=w=480"));
        assert!(graph.contains("blackdetect") && graph.contains("freezedetect"));
        // Blocks darkened by more than 26 levels (below 128 - 26), or
        // brightened by more (mirrored: below 127 - 26).
        assert!(
            graph.contains("scale=w=16:h=9:flags=area,format=gray,tblend=all_mode=grainextract")
                && graph.contains("blackframe@qcdarker=amount=0:threshold=102")
                && graph.contains("lut=c0=255-val,blackframe@qcbrighter=amount=0:threshold=101"),
            "{graph}"
        );
        assert!(!graph.contains("ebur128"));
    }

    #[test]
    fn the_analysis_frame_has_the_displayed_shape() {
        let probe =
            |w: u32, h: u32, stored: serde_json::Value| -> crate::media::probe::VideoStream {
                serde_json::from_value(serde_json::json!({"codec": "h264", "profile": null,
                "level": null, "width": w, "height": h, "pix_fmt": null, "fps": 24.0,
                "nb_frames": null, "stored": stored}))
                .unwrap()
            };
        assert_eq!(
            analysis_size(&probe(1920, 1080, serde_json::Value::Null)),
            (480, 270)
        );
        // Stored 240x180 with pixel aspect 4:3 displays 320x180: the frame
        // the detectors see is 16:9, not the stored 4:3 (bars measured
        // against 480x360 would find a quarter of the height missing).
        let anamorphic = json_stored(240, 180, 0, 4, 3);
        assert_eq!(analysis_size(&probe(320, 180, anamorphic)), (480, 270));
        let turned = json_stored(1920, 1080, 90, 1, 1);
        assert_eq!(analysis_size(&probe(1080, 1920, turned)), (480, 854));
        // The scale computes the same height from the input's display aspect.
        let graph = build_args(Path::new("m.mp4"), true, false, &DetectSettings::default());
        assert!(graph
            .iter()
            .any(|a| a.contains("scale=w=480:h=2*round(480/2/dar)")));
    }

    fn json_stored(w: u32, h: u32, rotation: i32, n: u32, d: u32) -> serde_json::Value {
        serde_json::json!({"width": w, "height": h, "rotation": rotation, "sar_num": n, "sar_den": d})
    }

    /// The simulator's footage stands in for a real generator's: none of its
    /// sources may trip the content checks (a Life board that settles would
    /// freeze, a dark Mandelbrot frame could read as black), over the
    /// longest duration the model allows.
    #[tokio::test]
    async fn synthetic_footage_of_every_source_has_no_black_freeze_or_silence() {
        use crate::media::synth::{render_clip, ClipFormat, ClipSpec};
        let Some(runner) = crate::media::testutil::runner() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        // Seeds 0, 1, 2 pick the three sources in turn.
        for seed in 0..3u64 {
            let spec = ClipSpec {
                width: 480,
                height: 270,
                duration_secs: 15,
                fps: 24,
                sound: true,
                format: ClipFormat::Mp4,
                quality: 80,
                seed,
                shots: vec![],
                ..ClipSpec::default()
            };
            let out = dir.path().join(format!("s{seed}.mp4"));
            render_clip(&runner, &spec, &out, Duration::from_secs(120))
                .await
                .unwrap();
            let probe = runner.ffprobe(&out).await.unwrap();
            let a = analyze(
                &runner,
                &out,
                &probe,
                &DetectSettings::default(),
                Duration::from_secs(120),
            )
            .await
            .unwrap();
            assert!(a.black.is_empty(), "seed {seed}: black {:?}", a.black);
            assert!(a.freeze.is_empty(), "seed {seed}: freeze {:?}", a.freeze);
            assert!(a.silence.is_empty(), "seed {seed}: silence {:?}", a.silence);
            // No repeated frames, no flashes, no bars.
            let cadence = a.cadence.expect("frames compared");
            assert!(cadence.share() < 0.05, "seed {seed}: {cadence:?}");
            let big: Vec<_> = a
                .luma_steps
                .iter()
                .filter(|s| s.delta.abs() >= 0.1)
                .collect();
            assert!(big.len() <= 2, "seed {seed}: luma steps {big:?}");
            let areas = a.area_steps.as_ref().expect("areas measured");
            let flashy: Vec<_> = areas
                .iter()
                .filter(|s| s.brighter.max(s.darker) >= 0.25)
                .collect();
            assert!(flashy.len() <= 2, "seed {seed}: area steps {flashy:?}");
            let e = a.picture_extent.expect("extent measured");
            let (w, h) = analysis_size(probe.video.as_ref().unwrap());
            assert!(
                e.x1 <= 2 && e.y1 <= 2 && e.x2 + 3 >= w && e.y2 + 3 >= h,
                "seed {seed}: {e:?} of {w}x{h}"
            );
            let l = a.loudness.expect("loudness measured");
            assert!((l.integrated_lufs + 16.0).abs() < 1.5, "seed {seed}: {l:?}");
        }
    }

    #[test]
    fn the_transcode_carries_the_same_detectors_on_its_own_branches() {
        use crate::media::ladder::default_ladder;
        use crate::media::transcode::{
            build_args as transcode_args, InlineAnalysis, TranscodePlan,
        };
        let mut plan = TranscodePlan {
            renditions: default_ladder(1920, 1080),
            poster_width: 640,
            poster_at_secs: 1.0,
            has_audio: true,
            fps: 24.0,
            preset: "veryfast".into(),
            threads: 0,
            audio_filter: Some("loudnorm=I=-24".into()),
            stills: None,
            analysis: None,
            picture: Default::default(),
            references: Vec::new(),
            conform: Default::default(),
        };
        let without = transcode_args(Path::new("m.mp4"), &plan, Path::new("/out"));
        assert!(!without.iter().any(|a| a.contains("blackdetect")));
        plan.analysis = Some(InlineAnalysis {
            detect: DetectSettings::default(),
            audio: true,
        });
        let args = transcode_args(Path::new("m.mp4"), &plan, Path::new("/out"));
        let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
        let standalone = build_args(Path::new("m.mp4"), true, true, &DetectSettings::default());
        let standalone_graph = &standalone[standalone
            .iter()
            .position(|a| a == "-filter_complex")
            .unwrap()
            + 1];
        // Every detector chain of the stand-alone pass, only on other pads.
        for chain in standalone_graph.split(';') {
            let body = chain.split_once(']').unwrap().1;
            assert!(graph.contains(body), "{body} missing from {graph}");
        }
        // One decode: the detectors' video is a branch of the one split.
        assert_eq!(graph.matches("[0:v:0]").count(), 1, "{graph}");
        assert!(graph.contains("[qcvin]scale=w=480"), "{graph}");
        // They hear the master's audio as it is; loudnorm feeds only the outputs.
        assert!(graph.contains("[0:a:0]asplit=2[qcain][aenc]"), "{graph}");
        assert!(graph.contains("[aenc]loudnorm=I=-24,"), "{graph}");
        assert!(graph.contains("[qcain]ebur128"), "{graph}");
        let at = args.iter().position(|a| a == "[qcv]").unwrap() - 1;
        assert_eq!(
            args[at..at + 7],
            ["-map", "[qcv]", "-map", "[qca]", "-f", "null", "-"].map(String::from)
        );
    }

    /// The analysis made on the transcode's own decode finds what the
    /// stand-alone pass over the master finds: same runs, same loudness.
    #[tokio::test]
    async fn the_analysis_inside_the_transcode_equals_the_standalone_pass() {
        use crate::media::ladder::default_ladder;
        use crate::media::process::RunOptions;
        use crate::media::transcode::{transcode, InlineAnalysis, TranscodePlan};
        let Some(runner) = crate::media::testutil::runner() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let master = dir.path().join("m.mp4");
        // 1 s black, then moving picture frozen from 2.5 s; a tone, silent from 2 s.
        let graph = "color=black:s=640x360:r=24:d=1[b];testsrc2=s=640x360:r=24:d=1.5[t];\
            color=gray:s=640x360:r=24:d=1.5[f];[b][t][f]concat=n=3:v=1:a=0,format=yuv420p[v];\
            sine=frequency=440:sample_rate=48000:d=2,volume=0.3[s];anullsrc=r=48000:cl=mono:d=2[z];\
            [s][z]concat=n=2:v=0:a=1[a]";
        let args: Vec<String> = [
            "-f",
            "lavfi",
            "-i",
            "nullsrc=s=16x16:d=0.04",
            "-filter_complex",
            graph,
            "-map",
            "[v]",
            "-map",
            "[a]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([master.display().to_string()])
        .collect();
        runner
            .ffmpeg(args, RunOptions::new("master", Duration::from_secs(60)))
            .await
            .unwrap();
        let probe = runner.ffprobe(&master).await.unwrap();
        let s = DetectSettings::default();
        let alone = analyze(&runner, &master, &probe, &s, Duration::from_secs(60))
            .await
            .unwrap();
        let mut plan = TranscodePlan::for_master(&probe, default_ladder(640, 360), runner.config());
        plan.renditions.truncate(1);
        plan.audio_filter = Some("volume=0.5".into());
        plan.analysis = Some(InlineAnalysis {
            detect: s.clone(),
            audio: true,
        });
        let out = transcode(
            &runner,
            &master,
            &probe,
            &plan,
            &dir.path().join("out"),
            None,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        let inline = out.content.expect("the transcode analysed the master");
        assert!(!alone.black.is_empty() && !alone.freeze.is_empty() && !alone.silence.is_empty());
        assert_eq!(inline, alone);
        // The output's audio was halved; the analysis heard the master's.
        assert!(inline.loudness.is_some());
    }
}
