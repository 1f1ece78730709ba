//! Every shipped destination against the files reelay delivers for it,
//! checked by probing the delivered files themselves (ffprobe, ffmpeg's
//! `ebur128` and `cropdetect`, the MP4 box order), not by reading reelay's
//! report back: the report only says which files each destination's set
//! holds (what its VAST lists) and which corrections it claims; every rule
//! of the destination's table is then checked here on those files.
//!
//! Per destination: a master it must heal where a correction applies (the
//! value measured on the master before, and on every delivered file after),
//! and its published set checked against every rule of its table. The
//! refusals (a preflight 400 naming the rule) of every shipped destination
//! are in `tests/api/destinations.rs`
//! (`each_shipped_destination_refuses_what_it_can_never_accept_and_takes_what_it_can`).
//!
//! Three `reelay process` runs share the media work: the seven landscape
//! buyers from one 15 s 1080p master in one transcode, Google Ad Manager
//! from a short 60 fps 720p master (its frame-rate cap), and the two
//! vertical buyers from one 5 s portrait master.

use reelay::destinations::{Destination, Destinations};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn ffmpeg_present() -> bool {
    Command::new("ffmpeg").arg("-version").output().is_ok()
        && Command::new("ffprobe").arg("-version").output().is_ok()
}

macro_rules! need_ffmpeg {
    () => {
        if !ffmpeg_present() {
            eprintln!("skipped: ffmpeg is not installed (scripts/test.sh installs it)");
            return;
        }
    };
}

fn shipped() -> Destinations {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    reelay::config::Settings::load_from(&dir, "test")
        .unwrap()
        .destinations
}

/// Renders a master: `graph` has outputs [v] and [a].
fn master(dir: &Path, graph: &str) -> PathBuf {
    let out = dir.join("master.mp4");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-filter_complex", graph])
        .args(["-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset"])
        .args(["ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a"])
        .args(["128k"])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "could not render the test master");
    out
}

/// `reelay process` of `master` for `destinations`, outputs kept in
/// `dir/out`: the JSON report.
fn process(dir: &Path, master: &Path, destinations: &[impl AsRef<str>]) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reelay"));
    cmd.env(
        "REELAY_CONFIG_DIR",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
    )
    .env("REELAY_ENVIRONMENT", "test")
    .args(["process", "--json", "--profile", "default", "--out"])
    .arg(dir.join("out"))
    .arg(master);
    for d in destinations {
        cmd.args(["--destination", d.as_ref()]);
    }
    let out = cmd.output().expect("reelay runs");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no JSON report: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    report
}

/// One file as ffprobe and the box order say it is.
#[derive(Debug, Clone)]
struct Probed {
    name: String,
    path: PathBuf,
    extension: String,
    duration: f64,
    size: u64,
    width: u32,
    height: u32,
    /// `r_frame_rate` as ffprobe writes it ("24000/1001").
    rate: String,
    fps: f64,
    vcodec: String,
    video_kbps: f64,
    audio: Option<Audio>,
    moov_first: bool,
}

#[derive(Debug, Clone)]
struct Audio {
    codec: String,
    channels: u32,
    sample_rate: u32,
    kbps: f64,
}

fn ratio(s: &str) -> f64 {
    match s.split_once('/') {
        Some((n, d)) => n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap(),
        None => s.parse().unwrap(),
    }
}

fn num(v: &Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_f64())
        .unwrap_or(0.0)
}

/// The order of the top-level MP4 boxes: whether `moov` comes before `mdat`.
fn moov_before_mdat(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        match &bytes[at + 4..at + 8] {
            b"moov" => return true,
            b"mdat" => return false,
            _ => {}
        }
        let size = if size == 1 {
            u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap()) as usize
        } else {
            size
        };
        if size < 8 {
            return false;
        }
        at += size;
    }
    false
}

fn probe(path: &Path) -> Probed {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_format",
            "-show_streams",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe {}", path.display());
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = j["streams"].as_array().unwrap();
    let v = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream");
    let a = streams.iter().find(|s| s["codec_type"] == "audio");
    let rate = v["r_frame_rate"].as_str().unwrap().to_string();
    Probed {
        name: path.file_stem().unwrap().to_string_lossy().into_owned(),
        path: path.to_path_buf(),
        extension: path.extension().unwrap().to_string_lossy().into_owned(),
        duration: num(&j["format"]["duration"]),
        size: std::fs::metadata(path).unwrap().len(),
        width: v["width"].as_u64().unwrap() as u32,
        height: v["height"].as_u64().unwrap() as u32,
        fps: ratio(&rate),
        rate,
        vcodec: v["codec_name"].as_str().unwrap().into(),
        video_kbps: num(&v["bit_rate"]) / 1000.0,
        audio: a.map(|a| Audio {
            codec: a["codec_name"].as_str().unwrap().into(),
            channels: a["channels"].as_u64().unwrap() as u32,
            sample_rate: num(&a["sample_rate"]) as u32,
            kbps: num(&a["bit_rate"]) / 1000.0,
        }),
        moov_first: moov_before_mdat(path),
    }
}

#[path = "support/ebur128.rs"]
mod ebur128;
use ebur128::ebur128 as loudness;

/// Whether the picture has both letterbox and pillarbox bars (cropdetect
/// over its first two seconds).
fn windowboxed(f: &Probed) -> bool {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-i"])
        .arg(&f.path)
        .args([
            "-vf",
            "cropdetect=limit=24:round=2:reset=0",
            "-frames:v",
            "48",
        ])
        .args(["-an", "-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let crop = log.rsplit("crop=").next().unwrap();
    let n: Vec<u32> = crop
        .split(|c: char| !c.is_ascii_digit())
        .take(2)
        .map(|x| x.parse().unwrap())
        .collect();
    n[0] + 8 < f.width && n[1] + 8 < f.height
}

/// The files of `destination`'s set (what its VAST lists), probed.
fn set_of(report: &Value, out: &Path, destination: &str) -> Vec<Probed> {
    let verdict = report["qc"]["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == destination)
        .unwrap_or_else(|| panic!("no verdict for {destination}"));
    assert_eq!(verdict["passed"], true, "{destination}: {verdict:#}");
    let files: Vec<Probed> = verdict["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| probe(&out.join(format!("{}.mp4", n.as_str().unwrap()))))
        .collect();
    assert!(!files.is_empty(), "{destination}");
    files
}

const TOLERANCE: f64 = 1.02;

fn in_band(kbps: f64, lo: Option<u32>, hi: Option<u32>) -> bool {
    lo.is_none_or(|l| kbps >= f64::from(l) / TOLERANCE)
        && hi.is_none_or(|h| kbps <= f64::from(h) * TOLERANCE)
}

fn aspect(w: u32, h: u32, ratio: &str) -> bool {
    let (a, b) = ratio.split_once(':').unwrap();
    let want = a.parse::<f64>().unwrap() / b.parse::<f64>().unwrap();
    (f64::from(w) / f64::from(h) - want).abs() <= want * 0.01
}

/// Every rule of `d` on `set` (the destination's files, probed), measured
/// here: the failures, each naming its rule.
fn broken_rules(d: &Destination, set: &[Probed], master_short: u32) -> Vec<String> {
    let mut bad = Vec::new();
    let mut rule = |ok: bool, what: String| {
        if !ok {
            bad.push(what);
        }
    };
    for f in set {
        let n = &f.name;
        if !d.containers.is_empty() {
            rule(
                d.containers.contains(&f.extension),
                format!("containers: {n} is {}", f.extension),
            );
        }
        if !d.video_codecs.is_empty() {
            rule(
                d.video_codecs.contains(&f.vcodec),
                format!("video_codecs: {n} is {}", f.vcodec),
            );
        }
        if !d.frame_rates.is_empty() {
            rule(
                d.frame_rates.iter().any(|r| (r - f.fps).abs() <= 0.01),
                format!("frame_rates: {n} is {}", f.rate),
            );
        }
        if let Some(m) = d.max_frame_rate {
            rule(
                f.fps <= m + 0.01,
                format!("max_frame_rate: {n} is {}", f.rate),
            );
        }
        if !d.aspect_ratios.is_empty() {
            rule(
                d.aspect_ratios.iter().any(|a| aspect(f.width, f.height, a)),
                format!("aspect_ratios: {n} is {}x{}", f.width, f.height),
            );
        }
        if let Some(cap) = d.max_file_bytes {
            rule(f.size <= cap, format!("max_file_bytes: {n} is {}", f.size));
        }
        if d.moov_first {
            rule(f.moov_first, format!("moov_first: {n} has mdat first"));
        }
        // At the buyer's minimum size (turned for a portrait set), or one
        // of its required lower rungs.
        if d.min_width.is_some() || d.min_height.is_some() {
            let (mw, mh) = (d.min_width.unwrap_or(0), d.min_height.unwrap_or(0));
            let (long, short) = (f.width.max(f.height), f.width.min(f.height));
            rule(
                (long >= mw.max(mh) && short >= mw.min(mh))
                    || d.lower_rungs.iter().any(|r| r.short_side == short),
                format!("min_width/min_height: {n} is {}x{}", f.width, f.height),
            );
        }
        match &f.audio {
            None => rule(!d.audio_required, format!("audio_required: {n} has none")),
            Some(a) => {
                if !d.audio_codecs.is_empty() {
                    rule(
                        d.audio_codecs.contains(&a.codec),
                        format!("audio_codecs: {n} is {}", a.codec),
                    );
                }
                if let Some(min) = d.audio_min_channels {
                    rule(
                        a.channels >= min,
                        format!("audio_min_channels: {n} has {}", a.channels),
                    );
                }
                if !d.audio_sample_rates.is_empty() {
                    rule(
                        d.audio_sample_rates.contains(&a.sample_rate),
                        format!("audio_sample_rates: {n} is {} Hz", a.sample_rate),
                    );
                }
                if let Some(min) = d.audio_min_kbps {
                    rule(
                        a.kbps >= f64::from(min) / TOLERANCE,
                        format!("audio_min_kbps: {n} is {:.0} kbps", a.kbps),
                    );
                }
            }
        }
    }
    // The top rung: the biggest file inside the top band, else the biggest
    // (a mezzanine may be bigger than the top rung without being it).
    let area = |f: &Probed| u64::from(f.width) * u64::from(f.height);
    let top = set
        .iter()
        .max_by_key(|f| {
            (
                in_band(f.video_kbps, d.top_min_kbps, d.top_max_kbps),
                area(f),
            )
        })
        .unwrap();
    let (long, short) = (top.width.max(top.height), top.width.min(top.height));
    let (mw, mh) = (d.min_width.unwrap_or(0), d.min_height.unwrap_or(0));
    rule(
        long >= mw.max(mh) && short >= mw.min(mh),
        format!("min_width/min_height: top {}x{}", top.width, top.height),
    );
    rule(
        in_band(top.video_kbps, d.top_min_kbps, d.top_max_kbps),
        format!(
            "top_min_kbps/top_max_kbps: {} at {:.0} kbps",
            top.name, top.video_kbps
        ),
    );
    rule(
        d.accepts_duration(top.duration),
        format!("duration: {} is {:.3} s", top.name, top.duration),
    );
    for r in &d.lower_rungs {
        rule(
            set.iter().any(|f| {
                f.width.min(f.height) == r.short_side
                    && in_band(f.video_kbps, Some(r.min_kbps), Some(r.max_kbps))
            }),
            format!(
                "lower_rungs: no {}p at {}-{} kbps",
                r.short_side, r.min_kbps, r.max_kbps
            ),
        );
    }
    // Every file at a size the buyer bands is inside a band of that size
    // (its VAST offers nothing a creative QA would send back), the
    // mezzanine aside.
    for f in set {
        let short = f.width.min(f.height);
        let mezzanine =
            d.mezzanine && short == master_short && f.video_kbps >= 15_000.0 / TOLERANCE;
        let mut bands: Vec<(Option<u32>, Option<u32>)> = d
            .lower_rungs
            .iter()
            .filter(|r| r.short_side == short)
            .map(|r| (Some(r.min_kbps), Some(r.max_kbps)))
            .collect();
        if (f.width, f.height) == (top.width, top.height) {
            bands.push((d.top_min_kbps, d.top_max_kbps));
        }
        rule(
            mezzanine
                || bands.is_empty()
                || bands.iter().any(|(lo, hi)| in_band(f.video_kbps, *lo, *hi)),
            format!(
                "bands: {} at {:.0} kbps is outside every band of its size",
                f.name, f.video_kbps
            ),
        );
    }
    if d.mezzanine {
        rule(
            set.iter().any(|f| {
                f.width.min(f.height) == master_short && f.video_kbps >= 15_000.0 / TOLERANCE
            }),
            format!("mezzanine: no {master_short}p at >= 15000 kbps"),
        );
    }
    if d.loudness_target_lufs.is_some() || d.true_peak_max_dbtp.is_some() {
        let (i, tp) = loudness(&top.path);
        if let Some(t) = d.loudness_target_lufs {
            let tol = d.loudness_tolerance_lu.unwrap_or(0.0);
            rule(
                (i - t).abs() <= tol + 0.05,
                format!("loudness_target_lufs: {} at {i} LUFS", top.name),
            );
        }
        if let Some(cap) = d.true_peak_max_dbtp {
            rule(
                tp <= cap + 0.05,
                format!("true_peak_max_dbtp: {} at {tp} dBTP", top.name),
            );
        }
    }
    if d.no_letterbox_and_pillarbox {
        rule(
            !windowboxed(top),
            format!("no_letterbox_and_pillarbox: {}", top.name),
        );
    }
    bad
}

/// The shipped destinations that take a 16:9 picture (the landscape
/// run), and those that take only 9:16 (the portrait run): every one is
/// in one of them.
fn by_shape(all: &Destinations) -> (Vec<String>, Vec<String>) {
    let (wide, tall): (Vec<_>, Vec<_>) = all.iter().partition(|(_, d)| {
        d.aspect_ratios.is_empty() || d.aspect_ratios.iter().any(|a| a == "16:9")
    });
    let wide: Vec<String> = wide.into_iter().map(|(n, _)| n.clone()).collect();
    let tall: Vec<String> = tall.into_iter().map(|(n, _)| n.clone()).collect();
    assert_eq!((wide.len(), tall.len()), (7, 2), "{wide:?} {tall:?}");
    (wide, tall)
}

/// The correction the report claims for `rule`, with the destinations it names.
fn correction<'a>(report: &'a Value, rule: &str) -> &'a Value {
    report["qc"]["corrections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} correction: {:#}", report["qc"]["corrections"]))
}

fn names(c: &Value) -> Vec<&str> {
    c["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect()
}

/// The seven landscape buyers from one master a generator could deliver:
/// 24 fps (Roku takes 23.976, 25, 29.97), one frame over 15 s (IAB CTV and
/// Amazon list exact slots), mono 44.1 kHz audio (stereo 48 kHz wanted) at
/// -27 LUFS (Roku -23 +/- 1, IAB CTV -24 +/- 2). One transcode heals it for
/// all of them and makes the files their bands need.
#[test]
fn the_landscape_buyers_get_a_healed_set_that_meets_every_rule() {
    need_ffmpeg!();
    let dir = tempfile::tempdir().unwrap();
    let m = master(
        dir.path(),
        "testsrc2=s=1920x1080:r=24:d=15.04[v];\
         aevalsrc=exprs='0.063*sin(2*PI*1000*t)':s=44100:d=15.04[a]",
    );
    let before = probe(&m);
    let (before_i, _) = loudness(&m);
    assert_eq!(before.rate, "24/1");
    assert!(before.duration > 15.03, "{}", before.duration);
    let a = before.audio.as_ref().unwrap();
    assert_eq!((a.channels, a.sample_rate), (1, 44_100));
    let all = shipped();
    let (buyers, _) = by_shape(&all);
    let report = process(dir.path(), &m, &buyers);
    let out = dir.path().join("out");

    // Healed, measured on every delivered file: 24000/1001 (one rate for
    // the whole set, the one nearest 24 every buyer takes), trimmed to the
    // 15 s slot in whole frames (360 at 23.976 = 15.015 s; never padded),
    // stereo 48 kHz, loudness inside Roku's and IAB CTV's windows.
    let delivered: Vec<Probed> = report["qc"]["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| probe(&out.join(format!("{}.mp4", r["name"].as_str().unwrap()))))
        .collect();
    assert!(delivered.len() >= 8, "{delivered:#?}");
    for f in &delivered {
        assert_eq!(f.rate, "24000/1001", "{}", f.name);
        assert!(
            f.duration >= 15.0 - 0.001 && f.duration <= 15.0 + 1001.0 / 24000.0 + 0.002,
            "{}: {:.3} s",
            f.name,
            f.duration
        );
        let a = f.audio.as_ref().unwrap();
        assert_eq!((a.channels, a.sample_rate), (2, 48_000), "{}", f.name);
    }
    let (after_i, _) = loudness(&delivered[0].path);
    assert!(
        before_i < -26.0 && (after_i + 23.0).abs() <= 0.5,
        "{before_i} -> {after_i}"
    );
    // The report says what it changed, for whom, and what it measured again.
    let fr = correction(&report, "frame_rates");
    assert_eq!(names(fr), ["roku"]);
    assert_eq!(
        (&fr["measured"], &fr["result"]),
        (&"24.000 fps".into(), &"23.976 fps".into())
    );
    let trim = correction(&report, "duration_slots_secs");
    assert_eq!(names(trim), ["amazon-stv", "iab-ctv", "prime-video"]);
    assert_eq!(
        (&trim["measured"], &trim["result"]),
        (&"15.042 s".into(), &"15.015 s".into())
    );
    assert_eq!(
        names(correction(&report, "audio_sample_rates")),
        ["iab-ctv", "iab-olv", "roku"]
    );
    assert_eq!(
        names(correction(&report, "audio_min_channels")),
        ["amazon-stv", "iab-ctv", "prime-video", "roku"]
    );
    assert_eq!(
        names(correction(&report, "loudness_target_lufs")),
        ["iab-ctv", "roku"]
    );
    for c in report["qc"]["corrections"].as_array().unwrap() {
        assert_eq!(
            (&c["applied"], &c["passed"]),
            (&true.into(), &true.into()),
            "{c:#}"
        );
    }
    // The Trade Desk's 15-30 Mb/s floor: the profile's CRF 1080p falls
    // short; the constant-rate 1080p made for it lands inside. The report
    // records both, measured, and this test measures them again.
    let crf = delivered.iter().find(|f| f.name == "1080p").unwrap();
    assert!(crf.video_kbps < 15_000.0, "{crf:?}");
    let floor = report["qc"]["corrections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rule"] == "top_min_kbps" && names(c).contains(&"ttd"))
        .unwrap_or_else(|| panic!("no floor for ttd: {:#}", report["qc"]["corrections"]));
    let measured = floor["measured"].as_str().unwrap();
    assert!(
        (measured.starts_with("15000-30000 kbps at 1920x1080; the profile's 1080p CRF")
            || measured.starts_with(">= 15000 kbps at 1920x1080; the profile's 1080p CRF"))
            && measured.contains("(measured 1080p "),
        "{floor:#}"
    );
    let result = floor["result"].as_str().unwrap();
    let (file, kbps) = result.split_once(' ').unwrap();
    let made = probe(&out.join(format!("{file}.mp4")));
    let reported: f64 = kbps.trim_end_matches(" kbps").parse().unwrap();
    assert!(
        made.video_kbps >= 15_000.0 / TOLERANCE
            && (made.video_kbps - reported).abs() < 0.05 * reported,
        "{result} vs {made:?}"
    );
    assert!(
        floor["action"].as_str().unwrap().contains("constant")
            && floor["action"].as_str().unwrap().contains("filler"),
        "{floor:#}"
    );
    // The AAC coding for the audio floors, with every track's rate after.
    let aac = correction(&report, "audio_min_kbps");
    assert_eq!(
        names(aac),
        ["amazon-stv", "iab-ctv", "iab-olv", "prime-video", "roku"]
    );
    assert!(
        aac["action"].as_str().unwrap().contains("-aac_ms 0"),
        "{aac:#}"
    );
    let top_audio = delivered
        .iter()
        .filter_map(|f| f.audio.as_ref().map(|a| (f, a.kbps)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(top_audio.1 >= 192.0 / TOLERANCE, "{top_audio:?}");
    assert!(
        aac["result"]
            .as_str()
            .unwrap()
            .contains(&format!("{} ", top_audio.0.name)),
        "{aac:#}"
    );

    for name in &buyers {
        let set = set_of(&report, &out, name);
        let broken = broken_rules(&all[name.as_str()], &set, 1080);
        assert!(broken.is_empty(), "{name}: {broken:#?}");
    }
    // The checks can fail: the same files against a stricter table.
    let stricter = Destination {
        frame_rates: vec![25.0],
        top_min_kbps: Some(40_000),
        audio_min_kbps: Some(320),
        loudness_target_lufs: Some(-16.0),
        ..all["roku"].clone()
    };
    let broken = broken_rules(&stricter, &set_of(&report, &out, "roku"), 1080);
    for rule in [
        "frame_rates",
        "top_min_kbps",
        "audio_min_kbps",
        "loudness_target_lufs",
    ] {
        assert!(
            broken.iter().any(|b| b.starts_with(rule)),
            "{rule}: {broken:#?}"
        );
    }
}

/// Google Ad Manager caps the rate at 30 fps: a 60 fps master is conformed
/// to 30 (the standard rate nearest 60 under the cap) for every file.
#[test]
fn gam_gets_a_60_fps_master_conformed_to_30() {
    need_ffmpeg!();
    let dir = tempfile::tempdir().unwrap();
    let m = master(
        dir.path(),
        "testsrc2=s=1280x720:r=60:d=3[v];\
         aevalsrc=exprs='0.063*sin(2*PI*1000*t)|0.05*sin(2*PI*500*t)':s=48000:d=3[a]",
    );
    assert_eq!(probe(&m).rate, "60/1");
    let report = process(dir.path(), &m, &["gam"]);
    let out = dir.path().join("out");
    let fr = correction(&report, "frame_rates");
    assert_eq!(
        (&fr["measured"], &fr["result"]),
        (&"60.000 fps".into(), &"30.000 fps".into())
    );
    let set = set_of(&report, &out, "gam");
    for f in &set {
        assert_eq!(f.rate, "30/1", "{}", f.name);
        assert!(
            (f.duration - 3.0).abs() < 0.05,
            "{}: {}",
            f.name,
            f.duration
        );
    }
    let broken = broken_rules(&shipped()["gam"], &set, 720);
    assert!(broken.is_empty(), "gam: {broken:#?}");
}

/// TikTok and Meta Reels from one portrait master. Neither sets a rule a
/// conform corrects (no rate list, no slot, no audio rule; sizes and
/// shapes are never changed and nothing is upscaled): the files keep the
/// master's rate and length; TikTok's bitrate floor gets its constant-rate
/// file, the one correction recorded. Neither is offered a file under its
/// minimum size (the profile's 480p).
#[test]
fn the_vertical_buyers_get_a_set_that_meets_every_rule() {
    need_ffmpeg!();
    let dir = tempfile::tempdir().unwrap();
    let m = master(
        dir.path(),
        "testsrc2=s=1080x1920:r=30:d=5[v];\
         aevalsrc=exprs='0.063*sin(2*PI*1000*t)':s=44100:d=5[a]",
    );
    let all = shipped();
    let (_, vertical) = by_shape(&all);
    assert_eq!(vertical, ["meta-reels", "tiktok"]);
    let report = process(dir.path(), &m, &vertical);
    let out = dir.path().join("out");
    let corrections = report["qc"]["corrections"].as_array().unwrap();
    assert_eq!(corrections.len(), 1, "{corrections:#?}");
    let floor = correction(&report, "top_min_kbps");
    assert_eq!(names(floor), ["tiktok"]);
    assert_eq!(
        (&floor["applied"], &floor["passed"]),
        (&true.into(), &true.into())
    );
    let (file, kbps) = floor["result"].as_str().unwrap().split_once(' ').unwrap();
    let made = probe(&out.join(format!("{file}.mp4")));
    assert!(made.video_kbps >= 516.0 / TOLERANCE, "{made:?}");
    assert!(kbps.ends_with(" kbps"), "{floor:#}");
    for name in &vertical {
        let set = set_of(&report, &out, name);
        for f in &set {
            assert_eq!(f.rate, "30/1", "{}", f.name);
            assert!(
                (f.duration - 5.0).abs() < 0.05,
                "{}: {}",
                f.name,
                f.duration
            );
        }
        let broken = broken_rules(&all[name.as_str()], &set, 1080);
        assert!(broken.is_empty(), "{name}: {broken:#?}");
    }
}
