//! Masters with one defect each, run through `reelay process` (the same
//! arrival checks, transcode and QC as the pipeline): each is rejected with
//! the right reason (exit 3), and clean masters pass (exit 0).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const V: &str = "testsrc2=s=640x360:r=24";
/// A 1 kHz stereo tone at -24 LUFS (measured with ebur128), true peak -24 dBTP.
const TONE: &str = "aevalsrc=exprs='0.063*sin(2*PI*1000*t)|0.063*sin(2*PI*1000*t)':s=48000";

struct Case {
    dir: tempfile::TempDir,
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

    /// Renders a master from a filter graph with outputs [v] and (optionally) [a].
    fn master(&self, graph: &str, audio: bool, extra: &[&str]) -> PathBuf {
        let out = self.path("master.mp4");
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-v", "error", "-y", "-filter_complex", graph, "-map", "[v]"]);
        if audio {
            cmd.args(["-map", "[a]", "-c:a", "aac", "-b:a", "192k"]);
        }
        cmd.args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ]);
        cmd.args(extra);
        let status = cmd.arg(&out).status().expect("ffmpeg runs");
        assert!(status.success(), "could not render the test master");
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

    fn process(&self, master: &Path, profile: &str, request: Option<&Path>) -> (i32, Value) {
        self.process_with(master, profile, request, None)
    }

    /// Runs `reelay process` with `layer` (TOML) laid over the test config.
    fn process_with(
        &self,
        master: &Path,
        profile: &str,
        request: Option<&Path>,
        layer: Option<&str>,
    ) -> (i32, Value) {
        let (code, report, stderr) = self.run(master, profile, request, layer, &[]);
        let report = report.unwrap_or_else(|| panic!("no JSON report: {stderr}"));
        (code, report)
    }

    /// `reelay process` with `extra` arguments: the exit code, the JSON
    /// report when there is one, and what it wrote to stderr.
    fn run(
        &self,
        master: &Path,
        profile: &str,
        request: Option<&Path>,
        layer: Option<&str>,
        extra: &[&str],
    ) -> (i32, Option<Value>, String) {
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
            .args(["process", "--json", "--profile", profile])
            .arg(master);
        if let Some(r) = request {
            cmd.arg("--request").arg(r);
        }
        let out = cmd.args(extra).output().expect("reelay runs");
        (
            out.status.code().unwrap_or(-1),
            serde_json::from_slice(&out.stdout).ok(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn failed_rules(report: &Value) -> Vec<String> {
    report["qc"]["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["passed"] == false)
        .map(|c| c["rule"].as_str().unwrap().to_string())
        .collect()
}

fn check<'a>(report: &'a Value, subject: &str, rule: &str) -> &'a Value {
    report["qc"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["subject"] == subject && c["rule"] == rule)
        .unwrap_or_else(|| panic!("no {subject} {rule} check: {report:#}"))
}

/// Broadcast profiles with normalisation turned off.
const NO_NORMALISING: &str = "[profiles.broadcast-us]\nnormalize_loudness = false\n\
                              [profiles.broadcast-eu]\nnormalize_loudness = false\n";

fn tone(amp: &str) -> String {
    format!(
        "{V}:d=4[v];aevalsrc=exprs='{amp}*sin(2*PI*1000*t)|{amp}*sin(2*PI*1000*t)':s=48000:d=4[a]"
    )
}

fn assert_rejected_by(report: &Value, code: i32, rule: &str) {
    assert_eq!(code, 3, "expected a rejection: {report:#}");
    assert_eq!(report["verdict"], "rejected");
    let failed = failed_rules(report);
    assert!(
        failed.contains(&rule.to_string()),
        "expected {rule} to fail, failed: {failed:?}"
    );
    assert!(report["reason"]["message"].as_str().unwrap().len() > 10);
}

fn ffmpeg_present() -> bool {
    Command::new("ffmpeg").arg("-version").output().is_ok()
}

macro_rules! need_ffmpeg {
    () => {
        if !ffmpeg_present() {
            eprintln!("skipped: ffmpeg is not installed (scripts/test.sh installs it)");
            return;
        }
    };
}

#[test]
fn a_clean_master_passes_the_default_and_a_broadcast_profile() {
    need_ffmpeg!();
    let c = Case::new();
    let m = c.master(&format!("{V}:d=4[v];{TONE}:d=4[a]"), true, &[]);
    for profile in ["default", "broadcast-us"] {
        let (code, report) = c.process(&m, profile, None);
        assert_eq!(code, 0, "{profile}: {report:#}");
        assert_eq!(report["verdict"], "pass");
        assert!(failed_rules(&report).is_empty());
        let l = &report["qc"]["content"]["loudness"];
        assert!(
            (l["integrated_lufs"].as_f64().unwrap() + 24.0).abs() < 0.5,
            "{l}"
        );
        // Rate, constancy, profile and level were judged for the rendition.
        for rule in [
            "frame_rate",
            "constant_frame_rate",
            "h264_profile",
            "h264_level",
        ] {
            assert_eq!(check(&report, "360p", rule)["passed"], true, "{rule}");
        }
        // This ffmpeg has no libvmaf: recorded as not measured, not required.
        assert_eq!(report["qc"]["vmaf_available"], false);
        assert!(report["qc"]["renditions"][0]["vmaf"].is_null());
        // The content analysis rode on the transcode's decode (no pass of
        // its own), and every run that happened has its wall time.
        let t = &report["qc"]["timings"];
        assert_eq!(t["content_in_transcode"], true, "{t}");
        // So did the quality pass: it read the frames the transcode wrote
        // (and removed them after), not the master again.
        assert_eq!(t["quality_on_transcode_frames"], true, "{t}");
        assert!(t.get("content_analysis_secs").is_none(), "{t}");
        for run in [
            "arrival_read_secs",
            "transcode_secs",
            "quality_pass_secs",
            "output_probes_secs",
        ] {
            assert!(t[run].as_f64().is_some_and(|s| s > 0.0), "{run}: {t}");
        }
        // broadcast-us normalises loudness: pass 1 and the delivered audio are timed.
        let normalised = t.get("loudness_pass_secs").is_some();
        assert_eq!(normalised, profile == "broadcast-us", "{t}");
    }
}

/// `--destination` makes the files a buyer's band needs in the same pass
/// and judges the set for it, as a request's `destinations` does in the
/// service: The Trade Desk's 15-30 Mb/s 1080p, which the default profile's
/// CRF 1080p (capped at 8 Mb/s) can never promise, is added at constant
/// rate and is what ttd's verdict stands on.
#[test]
fn a_destination_gets_the_file_its_band_needs_and_a_verdict() {
    need_ffmpeg!();
    let c = Case::new();
    let m = c.master(
        &format!("testsrc2=s=1920x1080:r=24:d=3[v];{TONE}:d=3[a]"),
        true,
        &[],
    );
    let (code, report, stderr) = c.run(&m, "default", None, None, &["--destination", "ttd"]);
    let report = report.unwrap_or_else(|| panic!("no JSON report: {stderr}"));
    assert_eq!(code, 0, "{report:#}");
    let names: Vec<&str> = report["qc"]["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["1080p", "720p", "480p", "1080p-16500k"]);
    // QC held the added file to its own band on the measured bitrate.
    assert_eq!(
        check(&report, "1080p-16500k", "bitrate_min")["passed"],
        true
    );
    assert_eq!(check(&report, "1080p-16500k", "bitrate")["passed"], true);
    let ttd = &report["qc"]["destinations"][0];
    assert_eq!(
        (&ttd["name"], &ttd["passed"]),
        (&json!("ttd"), &json!(true)),
        "{ttd:#}"
    );
    let top = ttd["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rule"] == "top_max_kbps" || c["rule"] == "top_min_kbps")
        .unwrap();
    assert_eq!(top["subject"], "1080p-16500k", "{ttd:#}");

    // An unknown name is refused before anything runs, naming it.
    let (code, report, stderr) = c.run(&m, "default", None, None, &["--destination", "nope"]);
    assert_ne!(code, 0);
    assert!(report.is_none());
    assert!(stderr.contains("unknown destination \"nope\""), "{stderr}");
}

#[test]
fn a_black_lead_in_is_rejected() {
    need_ffmpeg!();
    let c = Case::new();
    let m = c.master(
        &format!("color=black:s=640x360:r=24:d=1[b];{V}:d=3[t];[b][t]concat=n=2:v=1:a=0[v]"),
        false,
        &[],
    );
    let (code, report) = c.process(&m, "default", None);
    assert_rejected_by(&report, code, "black_head");
}

#[test]
fn a_black_tail_is_rejected() {
    need_ffmpeg!();
    let c = Case::new();
    let m = c.master(
        &format!("{V}:d=3[t];color=black:s=640x360:r=24:d=1[b];[t][b]concat=n=2:v=1:a=0[v]"),
        false,
        &[],
    );
    let (code, report) = c.process(&m, "default", None);
    assert_rejected_by(&report, code, "black_tail");
    assert!(!failed_rules(&report).contains(&"black_head".to_string()));
}

#[test]
fn a_frozen_middle_is_rejected() {
    need_ffmpeg!();
    let c = Case::new();
    // Frames 48-120 (2 s to 5 s) all show frame 48.
    let m = c.master(
        &format!("{V}:d=7,split[x][y];[x][y]freezeframes=first=48:last=120:replace=48[v]"),
        false,
        &[],
    );
    let (code, report) = c.process(&m, "default", None);
    assert_rejected_by(&report, code, "freeze_max");
    let failed = failed_rules(&report);
    assert!(
        !failed.contains(&"freeze_head".to_string())
            && !failed.contains(&"freeze_tail".to_string()),
        "{failed:?}"
    );
}

#[test]
fn silence_when_sound_was_requested_is_rejected() {
    need_ffmpeg!();
    let c = Case::new();
    let m = c.master(
        &format!("{V}:d=5[v];{TONE}:d=1[a1];anullsrc=r=48000:cl=stereo:d=4[a2];[a1][a2]concat=n=2:v=0:a=1[a]"),
        true,
        &[],
    );
    let req = c.request(
        json!({"positivePrompt": "a tone then nothing", "duration": 5, "width": 640, "height": 360,
        "providerSettings": {"klingai": {"sound": true}}}),
    );
    let (code, report) = c.process(&m, "default", Some(&req));
    assert_rejected_by(&report, code, "silence_max");
}

/// Too loud and too quiet masters under both broadcast profiles: loudness
/// is normalised in the transcode (measured two-pass loudnorm), the
/// delivered audio lands within 1 LU of the target under the true-peak cap,
/// and the report keeps the master's measurement beside the result.
#[test]
fn too_loud_and_too_quiet_masters_are_normalised_to_the_profiles_target() {
    need_ffmpeg!();
    let c = Case::new();
    for (amp, label) in [("0.5", "too loud"), ("0.01", "too quiet")] {
        let m = c.master(&tone(amp), true, &[]);
        for (profile, target, cap) in [("broadcast-us", -24.0, -2.0), ("broadcast-eu", -23.0, -1.0)]
        {
            let (code, report) = c.process(&m, profile, None);
            assert_eq!(code, 0, "{label} under {profile}: {report:#}");
            let n = &report["qc"]["loudness_normalization"];
            assert_eq!(n["status"], "applied", "{n:#}");
            let before = n["before"]["input_i"].as_f64().unwrap();
            let after = n["after"]["integrated_lufs"].as_f64().unwrap();
            let peak = n["after"]["true_peak_dbtp"].as_f64().unwrap();
            eprintln!(
                "{label} under {profile}: master {before:.2} LUFS -> delivered {after:.1} LUFS, \
                 true peak {peak:.1} dBTP, {} mode",
                n["mode"]
            );
            assert!((after - target).abs() <= 1.0, "{label} {profile}: {n:#}");
            assert!(peak <= cap, "{label} {profile}: {n:#}");
            assert!(
                (before - target).abs() > 10.0,
                "the master was off target: {before}"
            );
            // A steady tone has no loudness range, so loudnorm cannot stay linear.
            assert_eq!(n["mode"], "dynamic");
            assert_eq!(n["mode_reported"], true);
            assert!(n["reason"].as_str().unwrap().contains("0 LU"), "{n:#}");
            // The delivered audio is judged; the master's own loudness is kept.
            let delivered = n["after_rendition"].as_str().unwrap();
            assert_eq!(check(&report, delivered, "loudness")["passed"], true);
            let master_l = report["qc"]["content"]["loudness"]["integrated_lufs"]
                .as_f64()
                .unwrap();
            assert!((master_l - target).abs() > 10.0, "{master_l}");
        }
    }
}

#[test]
fn without_normalisation_too_loud_and_too_quiet_are_rejected() {
    need_ffmpeg!();
    let c = Case::new();
    for (amp, words) in [("0.5", "too loud"), ("0.01", "too quiet")] {
        let m = c.master(&tone(amp), true, &[]);
        let (code, report) = c.process_with(&m, "broadcast-us", None, Some(NO_NORMALISING));
        assert_rejected_by(&report, code, "loudness");
        assert_eq!(check(&report, "master", "loudness")["passed"], false);
        assert!(
            report["reason"]["message"]
                .as_str()
                .unwrap()
                .contains(words),
            "{words}: {}",
            report["reason"]
        );
        let n = &report["qc"]["loudness_normalization"];
        assert_eq!(n["status"], "disabled", "{n:#}");
        // The same master is fine where loudness is only measured.
        let (code, _) = c.process(&m, "default", None);
        assert_eq!(code, 0, "{words} under the default profile");
    }
}

#[test]
fn true_peak_clipping_is_limited_by_normalisation_and_rejected_without_it() {
    need_ffmpeg!();
    let c = Case::new();
    // -23.6 LUFS overall, with a 4 ms burst near full scale every second.
    let m = c.master(
        &format!(
            "{V}:d=4[v];aevalsrc=exprs='0.035*sin(2*PI*1000*t)+if(lt(mod(t\\,1)\\,0.004)\\,0.95*sin(2*PI*3000*t)\\,0)|0.035*sin(2*PI*1000*t)':s=48000:d=4[a]"
        ),
        true,
        &[],
    );
    let (code, report) = c.process_with(&m, "broadcast-us", None, Some(NO_NORMALISING));
    assert_rejected_by(&report, code, "true_peak");
    assert!(
        !failed_rules(&report).contains(&"loudness".to_string()),
        "{:?}",
        failed_rules(&report)
    );
    // Normalised: the gain alone would leave the peaks over the target, so
    // loudnorm limits them and the delivered audio is under the cap.
    let (code, report) = c.process(&m, "broadcast-us", None);
    assert_eq!(code, 0, "{report:#}");
    let n = &report["qc"]["loudness_normalization"];
    assert_eq!(n["mode"], "dynamic", "{n:#}");
    eprintln!(
        "clipping master: before {} LUFS / {} dBTP, after {} LUFS / {} dBTP",
        n["before"]["input_i"],
        n["before"]["input_tp"],
        n["after"]["integrated_lufs"],
        n["after"]["true_peak_dbtp"]
    );
    assert!(
        n["after"]["true_peak_dbtp"].as_f64().unwrap() <= -2.0,
        "{n:#}"
    );
    assert!(n["before"]["input_tp"].as_f64().unwrap() > -2.0, "{n:#}");
}

#[test]
fn a_wrong_duration_is_rejected_on_arrival() {
    need_ffmpeg!();
    let c = Case::new();
    let m = c.master(&format!("{V}:d=3[v]"), false, &[]);
    let req = c.request(json!({"positivePrompt": "five seconds please", "duration": 5}));
    let (code, report) = c.process(&m, "default", Some(&req));
    assert_eq!(code, 3);
    assert_eq!(report["stage"], "arrival");
    assert_eq!(report["reason"]["code"], "masterMismatch");
    assert!(
        report["reason"]["message"]
            .as_str()
            .unwrap()
            .contains("duration"),
        "{}",
        report["reason"]
    );
}

#[test]
fn a_wrong_resolution_is_rejected_on_arrival() {
    need_ffmpeg!();
    let c = Case::new();
    let m = c.master(&format!("{V}:d=5[v]"), false, &[]);
    let req = c.request(
        json!({"positivePrompt": "in 4K please", "width": 3840, "height": 2160, "duration": 5}),
    );
    let (code, report) = c.process(&m, "default", Some(&req));
    assert_eq!(code, 3);
    assert_eq!(report["reason"]["code"], "masterMismatch");
    assert!(
        report["reason"]["message"]
            .as_str()
            .unwrap()
            .contains("640x360"),
        "{}",
        report["reason"]
    );
}

#[test]
fn a_heavily_compressed_master_is_rejected() {
    need_ffmpeg!();
    let c = Case::new();
    // 1280x720 at 25 kbps: about 0.001 bits per pixel.
    let m = c.master(
        "testsrc2=s=1280x720:r=24:d=4[v]",
        false,
        &["-b:v", "25k", "-maxrate", "25k", "-bufsize", "50k"],
    );
    let (code, report) = c.process(&m, "default", None);
    assert_rejected_by(&report, code, "compression");
}

#[test]
fn a_truncated_file_is_rejected_as_unreadable() {
    need_ffmpeg!();
    let c = Case::new();
    // Without +faststart the moov atom is at the end, so the cut loses it.
    let m = c.master(&format!("{V}:d=4[v]"), false, &[]);
    let bytes = std::fs::read(&m).unwrap();
    let cut = c.path("truncated.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 5]).unwrap();
    let (code, report) = c.process(&cut, "default", None);
    assert_eq!(code, 3);
    assert_eq!(report["reason"]["code"], "masterUnreadable", "{report:#}");
}

#[test]
fn a_cut_faststart_file_that_still_probes_is_rejected_as_incomplete() {
    need_ffmpeg!();
    let c = Case::new();
    // With +faststart the index comes first: the cut file still probes, and
    // only reading every packet finds the missing data.
    let m = c.master(&format!("{V}:d=4[v]"), false, &["-movflags", "+faststart"]);
    let bytes = std::fs::read(&m).unwrap();
    let cut = c.path("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (code, report) = c.process(&cut, "default", None);
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["stage"], "arrival");
    assert_eq!(report["reason"]["code"], "masterIncomplete", "{report:#}");
}

#[test]
fn a_file_that_is_not_a_video_is_rejected_as_unreadable() {
    need_ffmpeg!();
    let c = Case::new();
    let p = c.path("notes.mp4");
    std::fs::write(
        &p,
        "this is a text file pretending to be a video\n".repeat(100),
    )
    .unwrap();
    let (code, report) = c.process(&p, "default", None);
    assert_eq!(code, 3);
    assert_eq!(report["reason"]["code"], "masterUnreadable");
    assert_eq!(report["stage"], "arrival");
    assert_eq!(
        report["reason"]["message"], "the master is not a video: it is text",
        "{report:#}"
    );
}

#[test]
fn a_png_named_mp4_is_rejected_as_not_a_video_not_as_truncated() {
    need_ffmpeg!();
    let c = Case::new();
    let p = c.path("poster.mp4");
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=320x180",
        ])
        .args(["-frames:v", "1", "-c:v", "png", "-f", "image2"])
        .arg(&p)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    assert!(std::fs::read(&p).unwrap().starts_with(b"\x89PNG"));
    let (code, report) = c.process(&p, "default", None);
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["stage"], "arrival");
    assert_eq!(report["reason"]["code"], "masterUnreadable", "{report:#}");
    assert_eq!(
        report["reason"]["message"], "the master is not a video: it is a PNG image",
        "{report:#}"
    );
}

/// A buyer decides which bars it takes: the same letterboxed master (the
/// profile accepts a letterbox) passes a destination without the rule and
/// fails one with `no_letterbox`, the reason naming the rule, the measured
/// bars and the limit; the asset's own verdict is not touched.
#[test]
fn a_destination_that_forbids_letterbox_fails_while_another_passes() {
    need_ffmpeg!();
    let c = Case::new();
    let m = c.master(
        &format!("testsrc2=s=640x272:r=24:d=2,pad=640:360:0:44:black[v];{TONE}:d=2[a]"),
        true,
        &[],
    );
    let layer = "[destinations.open-buyer]\ndescription = \"takes bars\"\nsource = \"test\"\n\
                 [destinations.no-bars]\ndescription = \"no letterbox\"\nsource = \"test\"\n\
                 no_letterbox = true\nmax_repeated_frame_share = 0.05\n";
    let (code, report, stderr) = c.run(
        &m,
        "default",
        None,
        Some(layer),
        &["--destination", "open-buyer", "--destination", "no-bars"],
    );
    let report = report.unwrap_or_else(|| panic!("no JSON report: {stderr}"));
    assert_eq!(code, 0, "{report:#}");
    let d = report["qc"]["destinations"].as_array().unwrap();
    assert_eq!(
        (&d[0]["name"], &d[0]["passed"]),
        (&json!("open-buyer"), &json!(true)),
        "{d:#?}"
    );
    assert_eq!(
        (&d[1]["name"], &d[1]["passed"]),
        (&json!("no-bars"), &json!(false))
    );
    let reasons = d[1]["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:#?}");
    assert_eq!(reasons[0]["rule"], "no_letterbox");
    let measured = reasons[0]["measured"].as_str().unwrap();
    assert!(
        measured.contains("top 12.") && measured.contains("bottom 12."),
        "{measured}"
    );
    assert_eq!(reasons[0]["limit"], "no bars over 2% at the top and bottom");
    // The clean cadence was judged too, and passed.
    let cadence = d[1]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rule"] == "max_repeated_frame_share")
        .unwrap();
    assert_eq!(cadence["passed"], true, "{cadence}");
}
