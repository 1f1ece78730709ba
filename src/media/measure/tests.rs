use super::*;
use crate::media::testutil;

#[test]
fn stats_files_average_per_frame_values() {
    let ssim = "n:1 Y:0.990000 U:0.980000 V:0.970000 All:0.985000 (18.239)\n\
                n:2 Y:0.960000 U:0.950000 V:0.940000 All:0.955000 (13.468)\n";
    assert!((mean_ssim(ssim).unwrap() - 0.97).abs() < 1e-9);
    let psnr = "n:1 mse_avg:1.00 mse_y:1.00 mse_u:1.00 mse_v:1.00 psnr_avg:48.13 psnr_y:48.13\n\
                n:2 mse_avg:3.00 mse_y:3.00 mse_u:3.00 mse_v:3.00 psnr_avg:43.36 psnr_y:43.36\n";
    let expected = 10.0 * (255.0f64 * 255.0 / 2.0).log10();
    assert!((mean_psnr(psnr).unwrap() - expected).abs() < 1e-9);
    let same = "n:1 mse_avg:0.00 mse_y:0.00 mse_u:0.00 mse_v:0.00 psnr_avg:inf psnr_y:inf\n";
    assert_eq!(mean_psnr(same), Some(PSNR_IDENTICAL));
    assert_eq!(mean_ssim(""), None);
}

fn three() -> Vec<Target> {
    [
        ("1080p", 1920, 1080),
        ("720p", 1280, 720),
        ("480p", 854, 480),
    ]
    .iter()
    .map(|(n, w, h)| Target::new(*n, format!("/o/{n}.mp4"), *w, *h))
    .collect()
}

/// The run's arguments with the sources `measure_quality` would pick.
fn args_for(
    master: &Path,
    targets: &[Target],
    files: &[(PathBuf, PathBuf)],
    vmaf: Option<&VmafPass>,
) -> Vec<String> {
    build_args(master, targets, files, vmaf, &Sources::new(targets, vmaf))
}

fn stats_files(n: usize) -> Vec<(PathBuf, PathBuf)> {
    (0..n)
        .map(|i| {
            (
                PathBuf::from(format!("/s/ssim{i}.log")),
                PathBuf::from(format!("/s/psnr{i}.log")),
            )
        })
        .collect()
}

#[test]
fn without_libvmaf_the_run_measures_ssim_and_psnr_only() {
    let r = three();
    let args = args_for(Path::new("/m.mp4"), &r, &stats_files(3), None);
    let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
    assert!(!graph.contains("vmaf"), "{graph}");
    assert!(graph.contains(
        "[m1]scale=w=1280:h=720:flags=bicubic,setsar=1,format=yuv420p,settb=1/1000,setpts=N*40,split=2[ra1][rb1]"
    ));
    let maps: Vec<&String> = args
        .windows(2)
        .filter(|w| w[0] == "-map")
        .map(|w| &w[1])
        .collect();
    assert_eq!(maps, ["[s0]", "[p0]", "[s1]", "[p1]", "[s2]", "[p2]"]);
    assert_eq!(
        args.iter().filter(|a| *a == "-i").count(),
        4,
        "master decoded once"
    );
}

fn vmaf_pass(targets: &[Target]) -> VmafPass {
    let logs = (0..targets.len())
        .map(|i| PathBuf::from(format!("/s/vmaf{i}.json")))
        .collect();
    VmafPass::new(targets, logs, 2)
}

#[test]
fn with_libvmaf_every_rendition_is_scored_at_one_size_in_the_same_run() {
    let r = three();
    let vmaf = vmaf_pass(&r);
    let common = FrameSize {
        width: 1920,
        height: 1080,
    };
    assert_eq!(vmaf.sizes, [common; 3], "854x480 too: within 1 % of 16:9");
    let args = args_for(Path::new("/m.mp4"), &r, &stats_files(3), Some(&vmaf));
    let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
    assert!(
        graph.contains("[3:v:0]setpts=PTS-STARTPTS,setsar=1,format=yuv420p,settb=1/1000,setpts=N*40,split=3[da2][db2][dc2]"),
        "{graph}"
    );
    // Each rendition scaled up to the common size, the model named.
    assert!(
        graph.contains("[dc2]scale=w=1920:h=1080:flags=bicubic,setsar=1,format=yuv420p[dv2]"),
        "{graph}"
    );
    assert!(
        graph.contains("[dv0][rc0]libvmaf=model=version=vmaf_v0.6.1:n_threads=2:log_fmt=json:log_path=/s/vmaf0.json[q0]"),
        "{graph}"
    );
    assert_eq!(graph.matches("libvmaf=").count(), 3);
    // One reference at 1920x1080 serves the top rung's SSIM and PSNR and
    // all three VMAF comparisons; the master is split three ways, not six.
    assert!(
        graph.contains("[m0]scale=w=1920:h=1080:flags=bicubic,setsar=1,format=yuv420p,settb=1/1000,setpts=N*40,split=5[ra0][rb0][rc0][rc1][rc2]"),
        "{graph}"
    );
    assert!(
        graph.starts_with("[0:v:0]setpts=PTS-STARTPTS,split=3[m0][m1][m2];"),
        "{graph}"
    );
    let maps: Vec<&String> = args
        .windows(2)
        .filter(|w| w[0] == "-map")
        .map(|w| &w[1])
        .collect();
    assert_eq!(
        maps,
        ["[s0]", "[p0]", "[q0]", "[s1]", "[p1]", "[q1]", "[s2]", "[p2]", "[q2]"]
    );
    assert_eq!(
        args.iter().filter(|a| *a == "-i").count(),
        4,
        "master decoded once"
    );
}

#[test]
fn the_vmaf_size_is_the_top_rung_within_a_1080p_display() {
    let size = |w, h| FrameSize {
        width: w,
        height: h,
    };
    let ladder = |sizes: &[(u32, u32)]| -> Vec<Target> {
        sizes
            .iter()
            .map(|(w, h)| Target::new(format!("{h}p"), "/x.mp4", *w, *h))
            .collect()
    };
    // A 4K rung is scored on the model's 1080p display; a 720p top stays.
    assert_eq!(
        vmaf_scoring_size(&ladder(&[(3840, 2160), (1920, 1080)])),
        Some(size(1920, 1080))
    );
    assert_eq!(
        vmaf_scoring_size(&ladder(&[(640, 360), (1280, 720)])),
        Some(size(1280, 720))
    );
    // Portrait: the display turned.
    assert_eq!(
        vmaf_scoring_size(&ladder(&[(2160, 3840), (720, 1280)])),
        Some(size(1080, 1920))
    );
    assert_eq!(vmaf_scoring_size(&[]), None);
    // Another shape in the same set keeps its aspect inside the common size.
    let square = Target::new("sq", "/sq.mp4", 720, 720);
    assert_eq!(vmaf_size_for(&square, size(1920, 1080)), size(1080, 1080));
    let sd = Target::new("sd", "/sd.mp4", 640, 480);
    assert_eq!(vmaf_size_for(&sd, size(1920, 1080)), size(1440, 1080));
}

#[test]
fn vmaf_logs_of_both_libvmaf_generations_are_read() {
    let v2 = r#"{"version": "2.3.1", "frames": [{"frameNum": 0, "metrics": {"vmaf": 90.0}}],
        "pooled_metrics": {"vmaf": {"min": 88.0, "max": 97.0, "mean": 93.25, "harmonic_mean": 93.1}}}"#;
    assert_eq!(mean_vmaf(v2), Some(93.25));
    let v1 =
        r#"{"frames": [{"frameNum": 0, "metrics": {"VMAF_score": 80.0}}], "VMAF score": 81.5}"#;
    assert_eq!(mean_vmaf(v1), Some(81.5));
    let frames_only = r#"{"frames": [{"metrics": {"vmaf": 80.0}}, {"metrics": {"vmaf": 90.0}}]}"#;
    assert_eq!(mean_vmaf(frames_only), Some(85.0));
    assert_eq!(mean_vmaf("not json"), None);
    assert_eq!(mean_vmaf(r#"{"frames": []}"#), None);
}

#[test]
fn filter_values_are_escaped_for_both_levels() {
    assert_eq!(escape_filter_value("/tmp/a.log"), "/tmp/a.log");
    assert_eq!(escape_filter_value("/tmp/a:b.log"), "/tmp/a\\\\:b.log");
    assert_eq!(
        escape_filter_value("/t,x/[1];'q'"),
        "/t\\,x/\\[1\\]\\;\\\\\\'q\\\\\\'"
    );
}

#[test]
fn the_reference_gets_the_renditions_crop_before_scaling() {
    let files = vec![(PathBuf::from("/s0"), PathBuf::from("/p0"))];
    let square = Target {
        crop: Some(Crop {
            width: 360,
            height: 360,
            x: 140,
            y: 0,
        }),
        ..Target::new("sq", "/sq.mp4", 180, 180)
    };
    let targets = [square];
    let graph = filter_graph(&targets, &files, None, &Sources::new(&targets, None));
    assert!(
        graph.contains("[m0]crop=w=360:h=360:x=140:y=0,scale=w=180:h=180:flags=bicubic"),
        "{graph}"
    );
    let plain = [Target::new("p", "/p.mp4", 320, 180)];
    let plain = filter_graph(&plain, &files, None, &Sources::new(&plain, None));
    assert!(plain.contains("[m0]scale=w=320:h=180"), "{plain}");
}

#[tokio::test]
async fn a_center_cropped_rendition_scores_against_the_same_crop() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("master.mp4");
    let mut args: Vec<String> =
        "-f lavfi -i testsrc2=size=640x360:rate=24:duration=1 -c:v libx264 -preset ultrafast -qp 0"
            .split(' ')
            .map(String::from)
            .collect();
    args.push(master.display().to_string());
    runner
        .ffmpeg(args, RunOptions::new("master", Duration::from_secs(60)))
        .await
        .unwrap();
    // The 180x180 square is the master's centre 360x360, scaled.
    let cropped = dir.path().join("cropped.mp4");
    let mut args = input_args(&master, false);
    args.extend(
        "-vf crop=360:360:140:0,scale=180:180:flags=bicubic -c:v libx264 -preset ultrafast -crf 18"
            .split(' ')
            .map(String::from),
    );
    args.push(cropped.display().to_string());
    runner
        .ffmpeg(args, RunOptions::new("crop", Duration::from_secs(60)))
        .await
        .unwrap();
    let crop = Some(Crop {
        width: 360,
        height: 360,
        x: 140,
        y: 0,
    });
    let scores = ssim_psnr(
        &runner,
        &master,
        &[
            Target {
                crop,
                ..Target::new("with", cropped.clone(), 180, 180)
            },
            Target::new("without", cropped, 180, 180),
        ],
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert!(scores[0].ssim > 0.95, "{scores:?}");
    assert!(scores[1].ssim < scores[0].ssim - 0.1, "{scores:?}");
}

/// A WebM's millisecond timestamps do not pair its frames with the
/// master's by time (every other frame would meet its predecessor: SSIM
/// 0.972 instead of 0.999 on this pattern, measured): frames are compared
/// by number.
#[tokio::test]
async fn a_webm_is_compared_frame_for_frame_despite_its_millisecond_timestamps() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("master.mp4");
    let webm = dir.path().join("near-lossless.webm");
    for (args, out) in [
        (
            "-f lavfi -i testsrc2=size=640x360:rate=24:duration=2 -c:v libx264 -preset veryfast -crf 8 -pix_fmt yuv420p",
            &master,
        ),
        (
            "-c:v libvpx-vp9 -crf 10 -b:v 0 -deadline realtime -cpu-used 8",
            &webm,
        ),
    ] {
        let mut a = if out == &webm {
            input_args(&master, false)
        } else {
            Vec::new()
        };
        a.extend(args.split(' ').map(String::from));
        a.push(out.display().to_string());
        runner
            .ffmpeg(a, RunOptions::new("encode", Duration::from_secs(60)))
            .await
            .unwrap();
    }
    let scores = ssim_psnr(
        &runner,
        &master,
        &[Target::new("vp9", webm, 640, 360)],
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert!(scores[0].ssim > 0.99, "{scores:?}");
}

async fn encode(runner: &Runner, src: &Path, out: &Path, crf: u32, size: &str) {
    let mut args = input_args(src, false);
    args.extend(
        [
            "-vf",
            &format!("scale={size}:flags=bicubic"),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            &crf.to_string(),
        ]
        .map(String::from),
    );
    args.push(out.display().to_string());
    runner
        .ffmpeg(args, RunOptions::new("encode", Duration::from_secs(60)))
        .await
        .unwrap();
}

#[tokio::test]
async fn low_crf_scores_higher_than_high_crf_and_identical_scores_one() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A detailed master: test pattern plus per-frame noise, lossless.
    let master = dir.path().join("master.mkv");
    let args: Vec<String> = [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=24:duration=1,noise=alls=4:allf=t",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        "-preset",
        "ultrafast",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([master.display().to_string()])
    .collect();
    runner
        .ffmpeg(args, RunOptions::new("master", Duration::from_secs(60)))
        .await
        .unwrap();
    let good = dir.path().join("good.mp4");
    let bad = dir.path().join("bad.mp4");
    encode(&runner, &master, &good, 18, "320:180").await;
    encode(&runner, &master, &bad, 45, "320:180").await;

    let scores = ssim_psnr(
        &runner,
        &master,
        &[
            Target::new("crf18", good, 320, 180),
            Target::new("crf45", bad, 320, 180),
            Target::new("same", master.clone(), 640, 360),
        ],
        Duration::from_secs(120),
    )
    .await
    .unwrap();

    let by = |n: &str| scores.iter().find(|s| s.name == n).unwrap();
    let (good, bad, same) = (by("crf18"), by("crf45"), by("same"));
    assert!(good.ssim > bad.ssim, "{scores:?}");
    assert!(good.psnr > bad.psnr, "{scores:?}");
    assert!(bad.ssim < 0.95, "{scores:?}");
    assert!(good.ssim > 0.95, "{scores:?}");
    assert!(same.ssim > 0.999, "{scores:?}");
    assert_eq!(same.psnr, PSNR_IDENTICAL, "{scores:?}");
}

/// A stored reference replaces the master only where it covers every size
/// a comparison reads it at; the master is an input only when some
/// comparison still needs it.
#[test]
fn a_stored_reference_stands_in_for_the_master_where_it_covers_the_comparison() {
    let stored = |w: u32, h: u32| StoredReference {
        path: PathBuf::from(format!("/o/ref{w}.nut")),
        crop: None,
        width: w,
        height: h,
    };
    let with = |r: StoredReference| -> Vec<Target> {
        three()
            .into_iter()
            .map(|t| Target {
                stored_reference: Some(r.clone()),
                ..t
            })
            .collect()
    };
    let inputs = |args: &[String]| -> Vec<String> {
        args.windows(2)
            .filter(|w| w[0] == "-i")
            .map(|w| w[1].clone())
            .collect()
    };

    // 1080p frames cover every rung, VMAF's common size too: no master.
    let r = with(stored(1920, 1080));
    let vmaf = vmaf_pass(&r);
    let args = args_for(Path::new("/m.mp4"), &r, &stats_files(3), Some(&vmaf));
    assert_eq!(
        inputs(&args),
        [
            "/o/1080p.mp4",
            "/o/720p.mp4",
            "/o/480p.mp4",
            "/o/ref1920.nut"
        ]
    );
    let at = args.iter().position(|a| a == "/o/ref1920.nut").unwrap();
    assert_eq!(args[at - 2], "nut", "read with the NUT demuxer alone");
    let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
    assert!(
        graph.starts_with("[3:v:0]setpts=PTS-STARTPTS,split=3[r0c0][r0c1][r0c2];"),
        "{graph}"
    );
    assert!(
        graph.contains("[r0c1]scale=w=1280:h=720:flags=bicubic,setsar=1,format=yuv420p,settb=1/1000,setpts=N*40,split=2[ra1][rb1]"),
        "{graph}"
    );
    assert!(graph.contains("[0:v:0]setpts=PTS-STARTPTS,setsar=1,format=yuv420p,settb=1/1000,setpts=N*40,split=3[da0][db0][dc0]"), "{graph}");

    // 720p frames would have to be enlarged for the 1080p rung and for
    // VMAF's 1920x1080: those read the master; without VMAF the two
    // smaller rungs still read the stored frames.
    let r = with(stored(1280, 720));
    let vmaf = vmaf_pass(&r);
    let args = args_for(Path::new("/m.mp4"), &r, &stats_files(3), Some(&vmaf));
    assert_eq!(inputs(&args)[0], "/m.mp4");
    assert!(!inputs(&args).contains(&"/o/ref1280.nut".to_owned()));
    let args = args_for(Path::new("/m.mp4"), &r, &stats_files(3), None);
    assert_eq!(
        inputs(&args),
        [
            "/m.mp4",
            "/o/1080p.mp4",
            "/o/720p.mp4",
            "/o/480p.mp4",
            "/o/ref1280.nut"
        ]
    );
    let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
    assert!(
        graph.contains("[1:v:0]setpts=PTS-STARTPTS,setsar=1"),
        "{graph}"
    );
    assert!(
        graph.contains("[0:v:0]setpts=PTS-STARTPTS,split=1[m0];"),
        "{graph}"
    );

    // Frames of another crop never stand in.
    let r: Vec<Target> = with(stored(1920, 1080))
        .into_iter()
        .map(|t| Target {
            crop: Some(Crop {
                width: 1080,
                height: 1080,
                x: 420,
                y: 0,
            }),
            ..t
        })
        .collect();
    let args = args_for(Path::new("/m.mp4"), &r, &stats_files(3), None);
    assert_eq!(inputs(&args).len(), 4);
    assert_eq!(inputs(&args)[0], "/m.mp4");
}
