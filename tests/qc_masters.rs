//! Masters whose metadata or content hides a defect file-QC tools look for
//! (display rotation, pixel aspect, track sync, scan, colour, frame-rate
//! constancy, borders, cadence, flashing), run through `reelay process`:
//! each defect is rejected with a reason naming it, or corrected and the
//! outputs measured as corrected; the clean counterpart passes.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A 1 kHz stereo tone (-24 LUFS).
const TONE: &str = "aevalsrc=exprs='0.063*sin(2*PI*1000*t)|0.063*sin(2*PI*1000*t)':s=48000";

struct Case {
    dir: tempfile::TempDir,
}

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "could not render a test master: {args:?}");
}

impl Case {
    fn new() -> Self {
        Case {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A master from a filter graph with outputs [v] and (optionally) [a],
    /// `extra` before the file name.
    fn master(&self, name: &str, graph: &str, audio: bool, extra: &[&str]) -> PathBuf {
        let out = self.path(name);
        let mut args = vec!["-filter_complex", graph, "-map", "[v]"];
        if audio {
            args.extend(["-map", "[a]", "-c:a", "aac", "-b:a", "128k"]);
        }
        args.extend([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ]);
        args.extend(extra);
        let out_s = out.to_str().unwrap().to_owned();
        args.push(&out_s);
        ffmpeg(&args);
        out
    }

    fn request(&self, generation: Value) -> PathBuf {
        let p = self.path("request.json");
        std::fs::write(
            &p,
            serde_json::to_vec(&json!({ "generation": generation })).unwrap(),
        )
        .unwrap();
        p
    }

    /// `reelay process --json` with `layer` (TOML) over the test config.
    fn process(&self, master: &Path, request: Option<&Path>, layer: Option<&str>) -> (i32, Value) {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let config = match layer {
            None => shipped,
            Some(extra) => {
                let dir = self.path("config");
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::copy(shipped.join("default.toml"), dir.join("default.toml")).unwrap();
                let test = std::fs::read_to_string(shipped.join("test.toml")).unwrap();
                std::fs::write(dir.join("test.toml"), format!("{test}\n{extra}\n")).unwrap();
                dir
            }
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reelay"));
        cmd.env("REELAY_CONFIG_DIR", config)
            .env("REELAY_ENVIRONMENT", "test")
            .args(["process", "--json", "--profile", "default"])
            .arg(master);
        if let Some(r) = request {
            cmd.arg("--request").arg(r);
        }
        let out = cmd.output().expect("reelay runs");
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("no JSON report: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap_or(-1), report)
    }
}

fn checks<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    report["qc"]["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["rule"] == rule)
        .collect()
}

fn master_check<'a>(report: &'a Value, rule: &str) -> &'a Value {
    checks(report, rule)
        .into_iter()
        .find(|c| c["subject"] == "master")
        .unwrap_or_else(|| panic!("no master {rule} check: {report:#}"))
}

fn failed(report: &Value) -> Vec<String> {
    report["qc"]["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["passed"] == false)
        .map(|c| {
            format!(
                "{} {}",
                c["subject"].as_str().unwrap(),
                c["rule"].as_str().unwrap()
            )
        })
        .collect()
}

/// No check decoded the master again: the content analysis rode on the
/// transcode's own decode (no stand-alone analysis pass was timed).
fn analysed_in_the_transcode(report: &Value) {
    let t = &report["qc"]["timings"];
    assert_eq!(t["content_in_transcode"], true, "{t:#}");
    assert!(t.get("content_analysis_secs").is_none(), "{t:#}");
}

fn assert_passes(code: i32, report: &Value) {
    assert_eq!(
        code,
        0,
        "expected a pass, failed {:?}: {report:#}",
        failed(report)
    );
    analysed_in_the_transcode(report);
}

/// Rejected by `rule` of the master, the reason naming `words`.
fn assert_rejected(code: i32, report: &Value, rule: &str, words: &str) {
    assert_eq!(code, 3, "expected a rejection: {report:#}");
    let c = master_check(report, rule);
    assert_eq!(c["passed"], false, "{c:#}");
    let reason = report["reason"]["message"].as_str().unwrap();
    assert!(reason.contains(words), "{words:?} not in {reason:?}");
    assert!(
        c["measured"].as_str().unwrap().len() > 3 && c["threshold"].as_str().unwrap().len() > 3
    );
    analysed_in_the_transcode(report);
}

/// Every rendition's `rule` passed.
fn renditions_pass(report: &Value, rule: &str) {
    let found: Vec<_> = checks(report, rule)
        .into_iter()
        .filter(|c| c["subject"] != "master")
        .collect();
    assert!(!found.is_empty(), "no rendition {rule} check");
    for c in found {
        assert_eq!(c["passed"], true, "{c:#}");
    }
}

macro_rules! need_ffmpeg {
    () => {
        if Command::new("ffmpeg").arg("-version").output().is_err() {
            eprintln!("skipped: no ffmpeg");
            return;
        }
    };
}

/// 2 s of moving test picture with a tone of the same length.
fn av(size: &str) -> String {
    format!("testsrc2=s={size}:r=24:d=2[v];{TONE}:d=2[a]")
}

#[test]
fn a_master_rotated_by_its_display_matrix_is_judged_and_delivered_as_displayed() {
    need_ffmpeg!();
    let c = Case::new();
    let stored = c.master("stored.mp4", &av("320x180"), true, &[]);
    // ffmpeg 5.1 writes a display matrix from the `rotate` tag on a stream copy.
    let rotated = c.path("rotated.mp4");
    ffmpeg(&[
        "-i",
        stored.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        rotated.to_str().unwrap(),
    ]);
    // Asked for landscape, it displays portrait: rejected, naming the rotation.
    let req = c.request(
        json!({"positivePrompt": "landscape", "width": 3840, "height": 2160,
        "duration": 5}),
    );
    let (code, report) = c.process(&rotated, Some(&req), None);
    assert_eq!(
        (code, report["stage"].as_str()),
        (3, Some("arrival")),
        "{report:#}"
    );
    let reason = report["reason"]["message"].as_str().unwrap();
    assert!(
        reason.contains("180x320") && reason.contains("display matrix rotates it 90 degrees"),
        "{reason}"
    );
    // Uploaded by hand it is its own request: delivered upright, portrait.
    let (code, report) = c.process(&rotated, None, None);
    assert_passes(code, &report);
    assert!(master_check(&report, "display")["measured"]
        .as_str()
        .unwrap()
        .contains("rotates it 90"));
    renditions_pass(&report, "display");
    for r in report["qc"]["renditions"].as_array().unwrap() {
        let v = &r["probe"]["video"];
        assert!(v["height"].as_u64() > v["width"].as_u64(), "{r:#}");
    }
}

#[test]
fn non_square_pixels_are_judged_as_displayed_and_delivered_square() {
    need_ffmpeg!();
    let c = Case::new();
    // 240x180 stored, pixel aspect 4:3: displays 320x180.
    let anamorphic = c.master(
        "sar.mp4",
        &format!("testsrc2=s=240x180:r=24:d=2,setsar=4/3[v];{TONE}:d=2[a]"),
        true,
        &[],
    );
    let (code, report) = c.process(&anamorphic, None, None);
    assert_passes(code, &report);
    renditions_pass(&report, "display");
    let r = &report["qc"]["renditions"][0]["probe"]["video"];
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(320), Some(180))
    );
    assert!(r.get("stored").is_none(), "square pixels: {r:#}");
    // The detectors see the displayed shape: no bar where the stored
    // 4:3 frame is taller than the displayed 16:9 one.
    assert_eq!(
        master_check(&report, "borders")["measured"],
        "none: bars left 0.0%, right 0.0%, top 0.0%, bottom 0.0%"
    );
    // A letterbox in it (22 of 180 lines at each end) is measured even.
    let boxed = c.master(
        "sar-letterbox.mp4",
        &format!("testsrc2=s=240x136:r=24:d=2,pad=240:180:0:22:black,setsar=4/3[v];{TONE}:d=2[a]"),
        true,
        &[],
    );
    let (code, report) = c.process(&boxed, None, None);
    assert_passes(code, &report);
    assert_eq!(
        master_check(&report, "borders")["measured"],
        "letterbox: bars left 0.0%, right 0.0%, top 11.9%, bottom 11.9%"
    );
    // Compared with a request, the size is the displayed one, and the
    // reason says why it differs from the stored one.
    let req = c.request(json!({"positivePrompt": "p", "width": 3840, "height": 2160,
        "duration": 5}));
    let (code, report) = c.process(&anamorphic, Some(&req), None);
    assert_eq!(
        (code, report["stage"].as_str()),
        (3, Some("arrival")),
        "{report:#}"
    );
    let reason = report["reason"]["message"].as_str().unwrap();
    assert!(
        reason.contains("resolution is 320x180 (as displayed: stored as 240x180")
            && reason.contains("pixels are not square (pixel aspect 4:3)"),
        "{reason}"
    );
}

/// The clean twins of the two tests above: a master that displays as
/// requested passes arrival and QC whatever it stores (a portrait frame
/// its display matrix turns to landscape, 4:3 pixels that stretch to
/// 16:9), and the outputs are the displayed picture.
#[test]
fn masters_that_display_as_requested_pass_whatever_they_store() {
    need_ffmpeg!();
    let c = Case::new();
    let req = c.request(
        json!({"positivePrompt": "landscape", "width": 640, "height": 360, "duration": 3,
        "providerSettings": {"klingai": {"sound": true}}}),
    );
    let av3 =
        |size: &str, extra: &str| format!("testsrc2=s={size}:r=24:d=3{extra}[v];{TONE}:d=3[a]");
    let plain = c.master("plain.mp4", &av3("640x360", ""), true, &[]);
    let portrait = c.master("portrait.mp4", &av3("360x640", ""), true, &[]);
    let turned = c.path("turned.mp4");
    ffmpeg(&[
        "-i",
        portrait.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        turned.to_str().unwrap(),
    ]);
    let anamorphic = c.master("sar.mp4", &av3("480x360", ",setsar=4/3"), true, &[]);
    for (m, stored) in [
        (&plain, None),
        (&turned, Some("rotates it 90")),
        (&anamorphic, Some("pixel aspect 4:3")),
    ] {
        let (code, report) = c.process(m, Some(&req), None);
        assert_passes(code, &report);
        let display = master_check(&report, "display")["measured"]
            .as_str()
            .unwrap();
        assert!(display.starts_with("640x360"), "{display}");
        match stored {
            Some(words) => assert!(display.contains(words), "{display}"),
            None => assert!(display.contains("square pixels, no rotation"), "{display}"),
        }
        renditions_pass(&report, "display");
        for r in report["qc"]["renditions"].as_array().unwrap() {
            let v = &r["probe"]["video"];
            assert_eq!(
                (v["width"].as_u64(), v["height"].as_u64()),
                (Some(640), Some(360)),
                "{r:#}"
            );
        }
    }
}

#[test]
fn audio_that_starts_late_or_ends_early_is_rejected_with_its_offsets() {
    need_ffmpeg!();
    let c = Case::new();
    let clean = c.master("clean.mp4", &av("320x180"), true, &[]);
    let (code, report) = c.process(&clean, None, None);
    assert_passes(code, &report);
    for rule in ["audio_start", "audio_end"] {
        assert_eq!(master_check(&report, rule)["passed"], true);
    }

    let late = c.path("late.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x180:r=24:d=2",
        "-itsoffset",
        "0.5",
        "-f",
        "lavfi",
        "-i",
        &format!("{TONE}:d=1.5"),
        "-map",
        "0",
        "-map",
        "1",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        late.to_str().unwrap(),
    ]);
    let (code, report) = c.process(&late, None, None);
    assert_rejected(code, &report, "audio_start", "the audio starts");
    assert!(master_check(&report, "audio_start")["measured"]
        .as_str()
        .unwrap()
        .contains("+0.4"));
    // The tolerance is the profile's: a second (24 frames) takes it.
    let (code, report) = c.process(
        &late,
        None,
        Some("[profiles.default.qc]\nav_sync_tolerance_frames = 24\n"),
    );
    assert_passes(code, &report);
    let start = master_check(&report, "audio_start");
    assert_eq!(
        start["threshold"],
        "within 1.000 s (24 frames at 24.000 fps)"
    );

    let short = c.master(
        "short.mp4",
        &format!("testsrc2=s=320x180:r=24:d=2[v];{TONE}:d=1[a]"),
        true,
        &[],
    );
    let (code, report) = c.process(&short, None, None);
    assert_rejected(code, &report, "audio_end", "incomplete audio");
}

#[test]
fn interlaced_masters_are_deinterlaced_or_refused_by_the_profile() {
    need_ffmpeg!();
    let c = Case::new();
    let interlaced = c.master(
        "tt.mp4",
        &format!(
            "testsrc2=s=320x180:r=48:d=2,tinterlace=interleave_top,setfield=tff[v];{TONE}:d=2[a]"
        ),
        true,
        &["-flags", "+ildct+ilme", "-field_order", "tt"],
    );
    let (code, report) = c.process(&interlaced, None, None);
    assert_passes(code, &report);
    assert!(master_check(&report, "scan")["measured"]
        .as_str()
        .unwrap()
        .starts_with("interlaced"));
    renditions_pass(&report, "scan");
    let (code, report) = c.process(
        &interlaced,
        None,
        Some("[profiles.default.qc]\ninterlaced = \"refuse\"\n"),
    );
    assert_rejected(code, &report, "scan", "interlaced");
}

#[test]
fn hdr_masters_are_tone_mapped_to_bt709_or_refused_and_every_output_is_tagged() {
    need_ffmpeg!();
    let c = Case::new();
    let pq = c.master(
        "pq.mp4",
        &av("320x180"),
        true,
        &[
            "-color_primaries",
            "bt2020",
            "-color_trc",
            "smpte2084",
            "-colorspace",
            "bt2020nc",
        ],
    );
    let (code, report) = c.process(&pq, None, None);
    assert_passes(code, &report);
    assert!(master_check(&report, "colour")["measured"]
        .as_str()
        .unwrap()
        .contains("smpte2084"));
    renditions_pass(&report, "colour_tags");
    let (code, report) = c.process(&pq, None, Some("[profiles.default.qc]\nhdr = \"refuse\"\n"));
    assert_rejected(code, &report, "colour", "HDR or wide gamut");
}

#[test]
fn a_variable_frame_rate_master_is_conformed_to_a_constant_rate() {
    need_ffmpeg!();
    let c = Case::new();
    // One frame in four dropped, timestamps kept: 18 fps average on a 24 base.
    let vfr = c.master(
        "vfr.mp4",
        &format!("testsrc2=s=320x180:r=24:d=2,select='not(eq(mod(n\\,4)\\,1))'[v];{TONE}:d=2[a]"),
        true,
        &["-fps_mode", "passthrough"],
    );
    let (code, report) = c.process(&vfr, None, None);
    assert_passes(code, &report);
    assert!(master_check(&report, "frame_rate_constancy")["measured"]
        .as_str()
        .unwrap()
        .starts_with("variable"));
    renditions_pass(&report, "constant_frame_rate");
    renditions_pass(&report, "frame_rate");
}

#[test]
fn borders_on_all_four_sides_are_refused_and_a_letterbox_follows_the_profile() {
    need_ffmpeg!();
    let c = Case::new();
    let boxed = c.master(
        "boxed.mp4",
        &format!("testsrc2=s=256x144:r=24:d=2,pad=320:180:32:18:black[v];{TONE}:d=2[a]"),
        true,
        &[],
    );
    let (code, report) = c.process(&boxed, None, None);
    assert_rejected(code, &report, "borders", "all four sides");

    let letterbox = c.master(
        "letterbox.mp4",
        &format!("testsrc2=s=320x136:r=24:d=2,pad=320:180:0:22:black[v];{TONE}:d=2[a]"),
        true,
        &[],
    );
    let (code, report) = c.process(&letterbox, None, None);
    assert_passes(code, &report);
    assert!(master_check(&report, "borders")["measured"]
        .as_str()
        .unwrap()
        .starts_with("letterbox"));
    let (code, report) = c.process(
        &letterbox,
        None,
        Some("[profiles.default.qc]\nallow_letterbox = false\n"),
    );
    assert_rejected(code, &report, "borders", "letterbox");
}

/// The whole picture brightened `hz` times a second, the content moving.
fn flashing_master(c: &Case, name: &str, hz: u32) -> PathBuf {
    c.master(
        name,
        &format!(
            "testsrc2=s=320x180:r=24:d=2,geq=lum='if(lt(mod(T*{hz}\\,1)\\,0.5)\\,min(255\\,lum(X\\,Y)+120)\\,lum(X\\,Y))':cb='cb(X\\,Y)':cr='cr(X\\,Y)'[v];{TONE}:d=2[a]"
        ),
        true,
        &[],
    )
}

fn flashes_measured(report: &Value) -> &str {
    master_check(report, "flashing")["measured"]
        .as_str()
        .unwrap()
}

#[test]
fn repeated_frames_and_flashing_are_found_in_the_content_analysis() {
    need_ffmpeg!();
    let c = Case::new();
    let clean = c.master("clean.mp4", &av("320x180"), true, &[]);
    let (code, report) = c.process(&clean, None, None);
    assert_passes(code, &report);
    assert_eq!(master_check(&report, "cadence")["passed"], true);
    assert_eq!(master_check(&report, "flashing")["passed"], true);
    assert_eq!(master_check(&report, "borders")["passed"], true);

    // Every frame shown twice: 12 pictures a second at 24 fps.
    let doubled = c.master(
        "doubled.mp4",
        &format!("testsrc2=s=320x180:r=12:d=2,fps=24[v];{TONE}:d=2[a]"),
        true,
        &[],
    );
    let (code, report) = c.process(&doubled, None, None);
    assert_rejected(code, &report, "cadence", "repeat the one before");
    let measured = master_check(&report, "cadence")["measured"]
        .as_str()
        .unwrap();
    assert_eq!(measured, "51.1% repeated (24 of 47 frames)");

    // 24 pictures a second carried at 30 fps (one frame in five repeated,
    // pulldown on progressive content): 20% over the 15% default; a
    // profile that takes 25% passes it.
    let pulled = c.master(
        "pulldown.mp4",
        &format!("testsrc2=s=320x180:r=24:d=2,fps=30[v];{TONE}:d=2[a]"),
        true,
        &[],
    );
    let (code, report) = c.process(&pulled, None, None);
    assert_rejected(code, &report, "cadence", "duplicated frames or pulldown");
    let (code, report) = c.process(
        &pulled,
        None,
        Some("[profiles.default.qc]\nmax_repeated_frame_share = 0.25\n"),
    );
    assert_passes(code, &report);
    assert_eq!(
        master_check(&report, "cadence")["threshold"],
        "<= 25.0% repeated frames"
    );

    let flashing = flashing_master(&c, "flash.mp4", 6);
    let (code, report) = c.process(&flashing, None, None);
    assert_rejected(code, &report, "flashing", "flashes within one second");
    // The reason gives the times of the transitions in the worst second.
    let reason = report["reason"]["message"].as_str().unwrap();
    assert!(
        reason.contains("6 large-area flashes within one second from 0.08 s")
            && reason.contains("of the picture or more at 0.08, 0.17, 0.25,")
            && reason.contains(", 0.92, 1.00 s)"),
        "{reason}"
    );

    // Twice a second is under the limit of three.
    let slow = flashing_master(&c, "slow-flash.mp4", 2);
    let (code, report) = c.process(&slow, None, None);
    assert_passes(code, &report);
    assert!(flashes_measured(&report).starts_with("2 flashes"));

    // A box over 22% of a dim picture flashing six times a second: its mean
    // luma steps by 15%, but under a quarter of the screen is not a
    // large-area flash; a profile that counts a fifth refuses it.
    let boxed = c.master(
        "box-flash.mp4",
        &format!(
            "testsrc2=s=320x180:r=24:d=2,lutyuv=y=val*0.5,drawbox=x=80:y=40:w=160:h=80:color=white:t=fill:enable='lt(mod(t*6\\,1)\\,0.5)'[v];{TONE}:d=2[a]"
        ),
        true,
        &[],
    );
    let (code, report) = c.process(&boxed, None, None);
    assert_passes(code, &report);
    assert!(flashes_measured(&report).starts_with("0 flashes"));
    let (code, report) = c.process(
        &boxed,
        None,
        Some("[profiles.default.qc]\nflash_min_area = 0.2\n"),
    );
    assert_rejected(
        code,
        &report,
        "flashing",
        "6 large-area flashes within one second",
    );
}
