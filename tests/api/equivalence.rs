//! `reelay process` and the service judge media with the same code: every
//! defect master of `tests/qc_defects.rs` goes through both (as a master
//! uploaded by hand, which is its own request, and as `reelay process`
//! without `--request`), and both reach the same verdict with the same
//! reason code. The masters whose metadata or content hides a defect
//! (`tests/qc_masters.rs`: the seven classes a buyer's QA turned away, and
//! a variable frame rate) go through both too, with the same reason text.

use crate::helpers::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const V: &str = "testsrc2=s=640x360:r=24";
const TONE: &str = "aevalsrc=exprs='0.063*sin(2*PI*1000*t)|0.063*sin(2*PI*1000*t)':s=48000";
/// The layer both sides run with: one broadcast profile only measures.
const LAYER: &str = "[profiles.broadcast-eu]\nnormalize_loudness = false\n";
const CAMPAIGN: &str = "same-code";

struct Defect {
    name: &'static str,
    profile: &'static str,
    graph: String,
    audio: bool,
    extra: &'static [&'static str],
    /// Keep this fraction of the file (a cut upload).
    cut: Option<f64>,
    /// Options of a stream copy made after the encode (metadata only it writes).
    copy_with: &'static [&'static str],
}

fn defect(name: &'static str, profile: &'static str, graph: String, audio: bool) -> Defect {
    Defect {
        name,
        profile,
        graph,
        audio,
        extra: &[],
        cut: None,
        copy_with: &[],
    }
}

fn tone(amp: &str) -> String {
    format!(
        "{V}:d=4[v];aevalsrc=exprs='{amp}*sin(2*PI*1000*t)|{amp}*sin(2*PI*1000*t)':s=48000:d=4[a]"
    )
}

fn defects() -> Vec<Defect> {
    let peaks = format!(
        "{V}:d=4[v];aevalsrc=exprs='0.035*sin(2*PI*1000*t)+if(lt(mod(t\\,1)\\,0.004)\\,0.95*sin(2*PI*3000*t)\\,0)|0.035*sin(2*PI*1000*t)':s=48000:d=4[a]"
    );
    vec![
        defect("clean", "default", format!("{V}:d=4[v];{TONE}:d=4[a]"), true),
        defect("clean-us", "broadcast-us", format!("{V}:d=4[v];{TONE}:d=4[a]"), true),
        defect(
            "black-head",
            "default",
            format!("color=black:s=640x360:r=24:d=1[b];{V}:d=3[t];[b][t]concat=n=2:v=1:a=0[v]"),
            false,
        ),
        defect(
            "black-tail",
            "default",
            format!("{V}:d=3[t];color=black:s=640x360:r=24:d=1[b];[t][b]concat=n=2:v=1:a=0[v]"),
            false,
        ),
        defect(
            "frozen",
            "default",
            format!("{V}:d=7,split[x][y];[x][y]freezeframes=first=48:last=120:replace=48[v]"),
            false,
        ),
        defect(
            "silent-tail",
            "default",
            format!("{V}:d=5[v];{TONE}:d=1[a1];anullsrc=r=48000:cl=stereo:d=4[a2];[a1][a2]concat=n=2:v=0:a=1[a]"),
            true,
        ),
        defect("loud-normalised", "broadcast-us", tone("0.5"), true),
        defect("quiet-normalised", "broadcast-us", tone("0.01"), true),
        defect("loud-measured", "broadcast-eu", tone("0.5"), true),
        defect("peaks-measured", "broadcast-eu", peaks.clone(), true),
        defect("peaks-normalised", "broadcast-us", peaks, true),
        defect("three-seconds", "default", format!("{V}:d=3[v]"), false),
        Defect {
            extra: &["-b:v", "25k", "-maxrate", "25k", "-bufsize", "50k"],
            ..defect("compressed", "default", "testsrc2=s=1280x720:r=24:d=4[v]".into(), false)
        },
        Defect {
            cut: Some(0.4),
            ..defect("truncated", "default", format!("{V}:d=4[v]"), false)
        },
        Defect {
            extra: &["-movflags", "+faststart"],
            cut: Some(0.5),
            ..defect("cut-faststart", "default", format!("{V}:d=4[v]"), false)
        },
        defect(
            "boxed",
            "default",
            "testsrc2=s=512x288:r=24:d=4,pad=640:360:64:36:black[v]".into(),
            false,
        ),
        defect(
            "audio-late",
            "default",
            format!("{V}:d=4[v];{TONE}:d=3.5,asetpts=PTS+0.5/TB[a]"),
            true,
        ),
        defect("audio-short", "default", format!("{V}:d=4[v];{TONE}:d=2[a]"), true),
        defect("doubled", "default", "testsrc2=s=640x360:r=12:d=4,fps=24[v]".into(), false),
        defect(
            "flashing",
            "default",
            format!("{V}:d=4,geq=lum='if(lt(mod(T*6\\,1)\\,0.5)\\,min(255\\,lum(X\\,Y)+120)\\,lum(X\\,Y))':cb='cb(X\\,Y)':cr='cr(X\\,Y)'[v]"),
            false,
        ),
        Defect {
            copy_with: &["-metadata:s:v:0", "rotate=90"],
            ..defect("rotated", "default", format!("{V}:d=4[v]"), false)
        },
        defect(
            "anamorphic",
            "default",
            "testsrc2=s=480x360:r=24:d=4,setsar=4/3[v]".into(),
            false,
        ),
        Defect {
            extra: &["-fps_mode", "passthrough"],
            ..defect(
                "vfr",
                "default",
                format!("{V}:d=4,select='not(eq(mod(n\\,4)\\,1))'[v]"),
                false,
            )
        },
    ]
}

fn render(dir: &Path, d: &Defect) -> PathBuf {
    let out = dir.join(format!("{}.mp4", d.name));
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-v",
        "error",
        "-y",
        "-filter_complex",
        &d.graph,
        "-map",
        "[v]",
    ]);
    if d.audio {
        cmd.args(["-map", "[a]", "-c:a", "aac", "-b:a", "192k"]);
    }
    cmd.args([
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
    ]);
    cmd.args(d.extra);
    assert!(cmd.arg(&out).status().unwrap().success(), "{}", d.name);
    if !d.copy_with.is_empty() {
        let copied = dir.join(format!("{}-copy.mp4", d.name));
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(&out)
            .args(["-c", "copy"])
            .args(d.copy_with)
            .arg(&copied)
            .status()
            .unwrap();
        assert!(status.success(), "{}", d.name);
        std::fs::rename(&copied, &out).unwrap();
    }
    if let Some(keep) = d.cut {
        let bytes = std::fs::read(&out).unwrap();
        std::fs::write(&out, &bytes[..(bytes.len() as f64 * keep) as usize]).unwrap();
    }
    out
}

/// `reelay process --json` under the test config plus [`LAYER`]:
/// (verdict, reason code).
fn process(config: &Path, master: &Path, profile: &str) -> (String, Option<String>, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_reelay"))
        .env("REELAY_CONFIG_DIR", config)
        .env("REELAY_ENVIRONMENT", "test")
        .args(["process", "--json", "--profile", profile])
        .arg(master)
        .output()
        .expect("reelay runs");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no JSON report: {}", String::from_utf8_lossy(&out.stderr)));
    let verdict = report["verdict"].as_str().unwrap_or_default().to_string();
    let code = report["reason"]["code"].as_str().map(str::to_string);
    (verdict, code, report)
}

#[tokio::test]
async fn the_service_and_reelay_process_reach_the_same_verdict_for_every_defect_master() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::copy(
        config_dir().join("default.toml"),
        config.join("default.toml"),
    )
    .unwrap();
    let test = std::fs::read_to_string(config_dir().join("test.toml")).unwrap();
    std::fs::write(config.join("test.toml"), format!("{test}\n{LAYER}")).unwrap();

    let app = spawn_app_with(|s| {
        s.profiles
            .get_mut("broadcast-eu")
            .expect("shipped profile")
            .normalize_loudness = Some(false);
    })
    .await;
    let cases = defects();
    for d in &cases {
        let master = render(dir.path(), d);
        app.put_master(
            &format!("masters/{CAMPAIGN}/{}.mp4", d.name),
            std::fs::read(&master).unwrap(),
            &[("reelay-profile", d.profile)],
        )
        .await;
    }
    // The service works through them while `reelay process` runs each.
    let mut local = Vec::new();
    for d in &cases {
        let master = dir.path().join(format!("{}.mp4", d.name));
        local.push(process(&config, &master, d.profile));
    }
    let assets = wait_for_campaign(&app, CAMPAIGN, Duration::from_secs(900), |a| {
        a.len() == cases.len() && a.iter().all(|x| x["status"] != "processing")
    })
    .await;

    for (d, (verdict, code, report)) in cases.iter().zip(&local) {
        let key = format!("masters/{CAMPAIGN}/{}.mp4", d.name);
        // Every master here is downloaded and hashed, so its key is shown.
        let asset = assets
            .iter()
            .find(|a| a["variations"][0]["master"]["key"] == key.as_str())
            .unwrap_or_else(|| panic!("{}: no asset for {key}: {assets:#?}", d.name));
        let v = &asset["variations"][0];
        let service_verdict = match v["state"].as_str() {
            Some("published") => "pass",
            Some("rejected") => "rejected",
            other => panic!("{}: the service ended {other:?}: {asset:#}", d.name),
        };
        assert_eq!(
            service_verdict, verdict,
            "{}: service {v:#}\nprocess {report:#}",
            d.name
        );
        assert_eq!(
            v["reason"]["code"].as_str(),
            code.as_deref(),
            "{}: service {:#}\nprocess {:#}",
            d.name,
            v["reason"],
            report["reason"]
        );
        // The same rule, in the same words (QC's own reasons name no file;
        // arrival's name the master as each side stored it).
        if code.as_deref() == Some("qcFailed") {
            assert_eq!(
                v["reason"]["message"], report["reason"]["message"],
                "{}",
                d.name
            );
        }
    }
    // The classes a buyer's QA rejects on sight are rejected by both.
    for name in ["boxed", "audio-late", "audio-short", "doubled", "flashing"] {
        let i = cases.iter().position(|d| d.name == name).unwrap();
        assert_eq!(local[i].0, "rejected", "{name}: {:#}", local[i].2);
    }
    // The defects were defects: most of the set is turned down.
    let rejected = local.iter().filter(|(v, _, _)| v == "rejected").count();
    assert!(rejected >= 8, "only {rejected} of {} rejected", local.len());
    app.stop().await;
}
