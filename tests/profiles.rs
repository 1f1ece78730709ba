//! Every shipped delivery profile through `reelay transcode` on short 16:9,
//! 9:16 and 1:1 masters: each output is probed (codec, profile, size, frame
//! rate, audio format, moov-first, duration), HLS sets open through their
//! master playlist, nothing is upscaled, and bad masters and deadlines end
//! the run with the reason.
//!
//! The deadline kill itself (child killed and reaped, slot returned) is
//! covered by `media::process::tests::a_run_past_its_deadline_is_killed_and_reaped`;
//! here it is checked end to end through the command.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Frames per second of the test masters.
const FPS: f64 = 24.0;

fn have_ffmpeg() -> bool {
    let ok = |bin: &str| {
        Command::new(bin)
            .arg("-version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    let have = ok("ffmpeg") && ok("ffprobe");
    if !have {
        eprintln!("SKIPPED: ffmpeg/ffprobe not installed");
    }
    have
}

/// A 1 s master at `w`x`h`, 24 fps, with a mono 44.1 kHz sine (so every
/// output's 48 kHz stereo is the transcode's doing).
fn master(dir: &Path, w: u32, h: u32) -> PathBuf {
    master_of(dir, w, h, 1)
}

/// The same, `secs` long.
fn master_of(dir: &Path, w: u32, h: u32, secs: u32) -> PathBuf {
    let out = dir.join(format!("master-{w}x{h}-{secs}s.mp4"));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={w}x{h}:rate=24:duration={secs}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=44100:duration={secs}"
        ))
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-crf", "20"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1"])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "could not render the test master");
    out
}

fn reelay(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reelay"));
    cmd.env(
        "REELAY_CONFIG_DIR",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
    )
    .env("REELAY_ENVIRONMENT", "test")
    .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("reelay runs")
}

fn transcode(master: &Path, profile: &str, out: &Path) -> Value {
    let o = reelay(
        &[
            "transcode",
            master.to_str().unwrap(),
            "--profile",
            profile,
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert!(
        o.status.success(),
        "reelay transcode --profile {profile} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let printed: Value = serde_json::from_slice(&o.stdout).expect("JSON summary on stdout");
    let written: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(printed, written, "summary.json is what was printed");
    written
}

fn ffprobe(path: &Path) -> Value {
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn stream<'a>(p: &'a Value, kind: &str) -> Option<&'a Value> {
    p["streams"]
        .as_array()?
        .iter()
        .find(|s| s["codec_type"] == kind)
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        _ => panic!("not a number: {v}"),
    }
}

fn rate(v: &Value) -> f64 {
    let s = v.as_str().unwrap();
    let (n, d) = s.split_once('/').unwrap();
    n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap()
}

/// The nearest even number to `x`.
fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32) * 2
}

/// Size of a native-aspect output by short side on a `w`x`h` master.
fn native(short: u32, w: u32, h: u32) -> (u32, u32) {
    if w >= h {
        (even(short as f64 * w as f64 / h as f64), short)
    } else {
        (short, even(short as f64 * h as f64 / w as f64))
    }
}

/// What one output must be.
struct Want {
    name: &'static str,
    kind: &'static str,
    size: (u32, u32),
}

fn want(name: &'static str, kind: &'static str, size: (u32, u32)) -> Want {
    Want { name, kind, size }
}

const MASTERS: [(u32, u32); 3] = [(1920, 1080), (1080, 1920), (1080, 1080)];

/// The shipped profiles' outputs for a master (2160p and 9:16-from-wide
/// outputs drop: they would upscale).
fn expected(profile: &str, w: u32, h: u32) -> Vec<Want> {
    let ladder = |names: [&'static str; 3], kind: &'static str| {
        names
            .into_iter()
            .zip([1080, 720, 480])
            .map(|(n, s)| want(n, kind, native(s, w, h)))
            .collect::<Vec<_>>()
    };
    match profile {
        "default" | "broadcast-us" => ladder(["1080p", "720p", "480p"], "mp4"),
        "ctv" => vec![
            want("1080p", "mp4", native(1080, w, h)),
            want("720p", "mp4", native(720, w, h)),
        ],
        "olv" => [("1080p", 1080), ("720p", 720), ("480p", 480), ("360p", 360)]
            .into_iter()
            .map(|(n, s)| want(n, "mp4", native(s, w, h)))
            .collect(),
        "social" => {
            let mut v = Vec::new();
            if h > w {
                v.push(want("vertical", "mp4", (1080, 1920)));
            }
            v.push(want("square", "mp4", (1080, 1080)));
            v
        }
        "web" => {
            let mut v = ladder(["1080p", "720p", "480p"], "mp4");
            v.push(want("vp9-720p", "webm", native(720, w, h)));
            v.extend(ladder(["hls-1080p", "hls-720p", "hls-480p"], "hls"));
            v
        }
        other => panic!("no expectations for {other}"),
    }
}

/// Every file under `dir`, relative, `/`-separated.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

fn check_profile(profile: &str) {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (w, h) in MASTERS {
        let m = master(dir.path(), w, h);
        let master_secs = num(&ffprobe(&m)["format"]["duration"]);
        let out = dir.path().join(format!("{profile}-{w}x{h}"));
        let summary = transcode(&m, profile, &out);
        let case = format!("{profile} on {w}x{h}");

        let wants = expected(profile, w, h);
        let names: Vec<&str> = summary["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        let want_names: Vec<&str> = wants.iter().map(|w| w.name).collect();
        assert_eq!(names, want_names, "{case}");

        for wnt in &wants {
            let o = summary["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["name"] == wnt.name)
                .unwrap();
            assert_eq!(o["kind"], wnt.kind, "{case} {}", wnt.name);
            let path = out.join(o["file"].as_str().unwrap());
            let p = ffprobe(&path);
            let v = stream(&p, "video").unwrap_or_else(|| panic!("{case} {}: no video", wnt.name));
            let a = stream(&p, "audio").unwrap_or_else(|| panic!("{case} {}: no audio", wnt.name));
            let what = format!("{case}: {}", wnt.name);
            let (vcodec, vprofile, acodec) = match wnt.kind {
                "webm" => ("vp9", "Profile 0", "opus"),
                _ => ("h264", "High", "aac"),
            };
            assert_eq!(v["codec_name"], vcodec, "{what}");
            assert_eq!(v["profile"], vprofile, "{what}");
            assert_eq!(v["pix_fmt"], "yuv420p", "{what}");
            assert_eq!(
                (
                    v["width"].as_u64().unwrap() as u32,
                    v["height"].as_u64().unwrap() as u32
                ),
                wnt.size,
                "{what}"
            );
            assert!(
                (rate(&v["avg_frame_rate"]) - FPS).abs() < 0.01,
                "{what}: {v}"
            );
            assert_eq!(a["codec_name"], acodec, "{what}");
            assert_eq!(num(&a["sample_rate"]), 48000.0, "{what}");
            assert_eq!(a["channels"], 2, "{what}");
            let secs = num(&p["format"]["duration"]);
            assert!(
                (secs - master_secs).abs() <= 1.0 / FPS + 1e-3,
                "{what}: {secs} s vs the master's {master_secs} s"
            );
            if wnt.kind == "mp4" {
                assert!(
                    reelay::media::moov_before_mdat(&path).unwrap(),
                    "{what}: moov is not first"
                );
                assert_eq!(p["format"]["tags"]["title"], Value::Null, "{what}");
            }
        }

        // The HLS set plays through its master playlist.
        let hls: Vec<&Want> = wants.iter().filter(|w| w.kind == "hls").collect();
        if hls.is_empty() {
            assert_eq!(summary["hls_master"], Value::Null, "{case}");
        } else {
            assert_eq!(summary["hls_master"], "hls/master.m3u8", "{case}");
            let text = std::fs::read_to_string(out.join("hls/master.m3u8")).unwrap();
            assert_eq!(
                text.matches("#EXT-X-STREAM-INF:").count(),
                hls.len(),
                "{text}"
            );
            assert!(text.contains("CODECS=\"avc1.64"), "{text}");
            assert!(text.contains(",mp4a.40.2\""), "{text}");
            assert!(text.contains("FRAME-RATE=24.000"), "{text}");
            let p = ffprobe(&out.join("hls/master.m3u8"));
            let mut sizes: Vec<(u32, u32)> = p["streams"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["codec_type"] == "video")
                .map(|s| {
                    (
                        s["width"].as_u64().unwrap() as u32,
                        s["height"].as_u64().unwrap() as u32,
                    )
                })
                .collect();
            sizes.sort();
            let mut want_sizes: Vec<(u32, u32)> = hls.iter().map(|w| w.size).collect();
            want_sizes.sort();
            assert_eq!(sizes, want_sizes, "{case}");
        }

        // Stills from the same run: posters (JPEG and WebP) decode and are
        // no wider than the master; the storyboard's cues stay inside the sprite.
        let stills: Vec<(String, String)> = summary["stills"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["rel"].as_str().unwrap().to_owned(),
                    f["role"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let roles: Vec<&str> = stills.iter().map(|(_, r)| r.as_str()).collect();
        for role in ["poster", "sprite", "storyboard", "preview"] {
            assert!(roles.contains(&role), "{case}: no {role} in {stills:?}");
        }
        let mut sprite_size = (0, 0);
        for (rel, role) in &stills {
            if role == "storyboard" {
                continue;
            }
            let p = ffprobe(&out.join(rel));
            let v = stream(&p, "video").unwrap_or_else(|| panic!("{case}: {rel} has no image"));
            let codec = v["codec_name"].as_str().unwrap();
            let want = if rel.ends_with(".jpg") {
                "mjpeg"
            } else {
                "webp"
            };
            assert_eq!(codec, want, "{case}: {rel}");
            let (sw, sh) = (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap());
            if role == "sprite" {
                sprite_size = (sw, sh);
            } else if rel.ends_with(".jpg") {
                assert!(
                    sw <= u64::from(w) && sh <= u64::from(h),
                    "{case}: {rel} {sw}x{sh}"
                );
            }
        }
        let vtt = std::fs::read_to_string(out.join("storyboard.vtt")).unwrap();
        assert!(vtt.starts_with("WEBVTT"), "{vtt}");
        let cues: Vec<&str> = vtt.lines().filter(|l| l.contains("#xywh=")).collect();
        assert!(!cues.is_empty(), "{vtt}");
        for cue in cues {
            let xywh: Vec<u64> = cue
                .split("#xywh=")
                .nth(1)
                .unwrap()
                .split(',')
                .map(|n| n.parse().unwrap())
                .collect();
            assert!(
                xywh[0] + xywh[2] <= sprite_size.0 && xywh[1] + xywh[3] <= sprite_size.1,
                "{case}: {cue} outside the {sprite_size:?} sprite"
            );
        }

        // Every file written is listed, and every listed file exists.
        let mut listed: Vec<String> = summary["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rel"].as_str().unwrap().to_owned())
            .collect();
        listed.sort();
        let mut on_disk = files_under(&out);
        on_disk.retain(|f| f != "summary.json");
        assert_eq!(listed, on_disk, "{case}");

        // One ffmpeg run, one decode of the master.
        let argv: Vec<&str> = summary["ffmpeg_argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(argv.iter().filter(|a| **a == "-i").count(), 1, "{case}");
        assert!(summary["reelay_peak_rss_kb"].as_u64().unwrap() > 0);
    }
}

#[test]
fn default_profile_keeps_the_web_ladder() {
    check_profile("default");
}

#[test]
fn ctv_profile() {
    check_profile("ctv");
}

#[test]
fn olv_profile() {
    check_profile("olv");
}

#[test]
fn social_profile_crops_to_9_16_and_1_1() {
    check_profile("social");
}

#[test]
fn web_profile_with_webm_and_hls() {
    check_profile("web");
}

/// QC of the olv profile: every IAB tier is measured (SSIM, codec, audio,
/// moov) and its average video bitrate lands inside its band.
#[test]
fn olv_rungs_land_in_their_iab_bands_and_pass_qc() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = master_of(dir.path(), 1920, 1080, 2);
    let o = reelay(
        &["process", m.to_str().unwrap(), "--profile", "olv", "--json"],
        &[],
    );
    let report: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    assert_eq!(report["verdict"], "pass", "{report:#}");
    let checks = report["qc"]["checks"].as_array().unwrap();
    for name in ["1080p", "720p", "480p", "360p"] {
        for rule in [
            "bitrate",
            "bitrate_min",
            "ssim_floor",
            "video_codec",
            "audio",
            "moov_first",
        ] {
            let c = checks
                .iter()
                .find(|c| c["subject"] == name && c["rule"] == rule)
                .unwrap_or_else(|| panic!("no {rule} check for {name}"));
            assert_eq!(c["passed"], true, "{c}");
        }
    }
}

/// A master from the lavfi `video` graph (its source sets size, rate and
/// length), with a `secs` long stereo sine.
fn master_from(dir: &Path, name: &str, video: &str, secs: u32) -> PathBuf {
    let out = dir.join(format!("{name}.mp4"));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(video)
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=48000:duration={secs}"
        ))
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-crf", "18"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2"])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "could not render the {name} master");
    out
}

/// The video stream's average bitrate in kbps, from the bytes of its
/// packets over its duration (what a buyer's probe reads).
fn video_kbps(path: &Path) -> f64 {
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=size:stream=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let bytes: f64 = v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| num(&p["size"]))
        .sum();
    let secs = num(&v["streams"][0]["duration"]);
    bytes * 8.0 / secs / 1000.0
}

/// Rate control lands every floored rung inside its band for any content:
/// a near-static master (one flat colour, which a quality-driven encoder
/// makes far below any floor) and a busy one (full-frame noise over a
/// moving pattern, far above any ceiling) through `olv` (360p 1.5-3 Mbps)
/// and `ctv` (720p 2-5 Mbps, the IAB HD band), each delivered rung probed.
#[test]
fn floored_rungs_land_in_their_band_on_static_and_busy_masters() {
    if !have_ffmpeg() {
        return;
    }
    // (profile, rung, floor kbps, ceiling kbps): config/default.toml's
    // min_bitrate_kbps and maxrate_kbps, the IAB bands.
    let bands: [(&str, &str, f64, f64); 6] = [
        ("olv", "1080p", 4000.0, 9000.0),
        ("olv", "720p", 2000.0, 5000.0),
        ("olv", "480p", 2000.0, 4000.0),
        ("olv", "360p", 1500.0, 3000.0),
        ("ctv", "1080p", 15000.0, 30000.0),
        ("ctv", "720p", 2000.0, 5000.0),
    ];
    let dir = tempfile::tempdir().unwrap();
    let masters = [
        (
            "static",
            master_from(
                dir.path(),
                "static",
                "color=c=0x3060a0:size=1920x1080:rate=24:duration=3",
                3,
            ),
        ),
        (
            "busy",
            master_from(
                dir.path(),
                "busy",
                "testsrc2=size=1920x1080:rate=24:duration=3,noise=alls=90:allf=t+u",
                3,
            ),
        ),
    ];
    let mut misses = Vec::new();
    for (kind, m) in &masters {
        for profile in ["olv", "ctv"] {
            let out = dir.path().join(format!("{profile}-{kind}"));
            let summary = transcode(m, profile, &out);
            let outputs = summary["outputs"].as_array().unwrap();
            for (_, rung, lo, hi) in bands.iter().filter(|b| b.0 == profile) {
                let o = outputs
                    .iter()
                    .find(|o| o["name"] == *rung)
                    .unwrap_or_else(|| panic!("{profile} on {kind}: no {rung}"));
                let kbps = video_kbps(&out.join(o["file"].as_str().unwrap()));
                eprintln!("{profile} {rung} on {kind}: {kbps:.0} kbps ({lo}-{hi})");
                if kbps < *lo || kbps > *hi {
                    misses.push(format!(
                        "{profile} {rung} on the {kind} master: {kbps:.0} kbps outside {lo}-{hi}"
                    ));
                }
            }
        }
    }
    assert!(misses.is_empty(), "{misses:#?}");
}

/// QC of the web profile measures every output, the HLS variants too
/// (through their playlists): SSIM against the master, H.264 and AAC, and a
/// bitrate from the segments (not the playlist's few hundred bytes).
#[test]
fn web_qc_measures_the_webm_and_every_hls_variant() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = master_of(dir.path(), 1280, 720, 2);
    let o = reelay(
        &["process", m.to_str().unwrap(), "--profile", "web", "--json"],
        &[],
    );
    let report: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    assert_eq!(report["verdict"], "pass", "{report:#}");
    let measured = report["qc"]["renditions"].as_array().unwrap();
    let checks = report["qc"]["checks"].as_array().unwrap();
    for name in ["vp9-720p", "hls-720p", "hls-480p"] {
        let r = measured
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} was not measured: {measured:#?}"));
        assert!(num(&r["ssim"]) > 0.9, "{name}: {r}");
        for rule in ["ssim_floor", "video_codec", "audio", "bitrate", "duration"] {
            let c = checks
                .iter()
                .find(|c| c["subject"] == name && c["rule"] == rule)
                .unwrap_or_else(|| panic!("no {rule} check for {name}"));
            assert_eq!(c["passed"], true, "{c}");
        }
    }
    // The variant's bitrate is its segments', in kbps of a real stream.
    let hls = checks
        .iter()
        .find(|c| c["subject"] == "hls-720p" && c["rule"] == "bitrate")
        .unwrap();
    let kbps: f64 = hls["measured"]
        .as_str()
        .unwrap()
        .trim_start_matches("video ")
        .trim_end_matches(" kbps")
        .parse()
        .unwrap();
    assert!(kbps > 500.0, "{hls}");
}

#[test]
fn small_masters_get_no_upscaled_outputs_and_print_args_matches_the_run() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = master(dir.path(), 640, 360);
    let sizes = |s: &Value| -> Vec<(String, u64, u64)> {
        s["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["name"].as_str().unwrap().to_owned(),
                    o["probed"]["width"].as_u64().unwrap(),
                    o["probed"]["height"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let s = |n: &str, w, h| (n.to_owned(), w, h);
    // olv: only the 360p tier fits.
    let olv = transcode(&m, "olv", &dir.path().join("olv"));
    assert_eq!(sizes(&olv), [s("360p", 640, 360)]);
    // social: nothing fits 1080 wide; the smallest (1:1) is kept at the
    // master's own 360x360 crop.
    let social = transcode(&m, "social", &dir.path().join("social"));
    assert_eq!(sizes(&social), [s("square", 360, 360)]);
    assert_eq!(social["dropped"][0]["name"], "vertical", "{social:#}");
    assert_eq!(olv["dropped"].as_array().unwrap().len(), 3, "{olv:#}");

    let out = dir.path().join("ctv");
    let printed = reelay(
        &[
            "transcode",
            m.to_str().unwrap(),
            "--profile",
            "ctv",
            "--out",
            out.to_str().unwrap(),
            "--print-args",
        ],
        &[],
    );
    assert!(printed.status.success());
    let argv: Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert!(!out.exists(), "--print-args writes nothing");
    let ran = transcode(&m, "ctv", &out);
    assert_eq!(argv, ran["ffmpeg_argv"]);
    // The default ladder's fallback rung is named for its size.
    let default = transcode(&m, "default", &dir.path().join("default"));
    assert_eq!(sizes(&default), [s("360p", 640, 360)]);
}

#[test]
fn a_master_ffmpeg_cannot_decode_fails_with_ffmpegs_reason() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("master.mp4");
    std::fs::write(&bad, b"this is not a video at all").unwrap();
    let out = dir.path().join("out");
    let o = reelay(
        &[
            "transcode",
            bad.to_str().unwrap(),
            "--profile",
            "olv",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Invalid data found"), "{err}");
    assert!(!out.join("summary.json").exists());

    // Decodable header, cut body: ffmpeg's own reason for the transcode.
    let good = master(dir.path(), 320, 180);
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let o = reelay(
        &[
            "transcode",
            cut.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cut.mp4"), "{err}");
}

#[test]
fn a_transcode_past_its_deadline_is_stopped_and_reported() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = master(dir.path(), 640, 360);
    let out = dir.path().join("out");
    // A zero deadline: ffmpeg is killed as soon as it starts, every time.
    let o = reelay(
        &[
            "transcode",
            m.to_str().unwrap(),
            "--profile",
            "olv",
            "--out",
            out.to_str().unwrap(),
        ],
        &[("REELAY__MEDIA__TRANSCODE_TIMEOUT_SECS", "0")],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("transcode took longer than"), "{err}");
    assert!(err.contains("was stopped"), "{err}");
    assert!(files_under(&out).is_empty(), "partial outputs removed");
}
