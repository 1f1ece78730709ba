use super::*;
use crate::media::probe::moov_before_mdat;
use crate::media::testutil;
use std::time::Instant;

fn small(format: ClipFormat, sound: bool) -> ClipSpec {
    ClipSpec {
        width: 320,
        height: 180,
        duration_secs: 2,
        fps: 24,
        sound,
        format,
        quality: 70,
        seed: 7,
        shots: vec![],
        first_frame: None,
        last_frame: None,
    }
}

#[test]
fn quality_maps_monotonically_to_crf() {
    let crfs: Vec<(u8, u8)> = (0..=120u8)
        .map(|q| {
            let s = ClipSpec {
                quality: q,
                ..ClipSpec::default()
            };
            (s.x264_crf(), s.vp9_crf())
        })
        .collect();
    assert!(crfs
        .windows(2)
        .all(|w| w[1].0 <= w[0].0 && w[1].1 <= w[0].1));
    let at = |q| ClipSpec {
        quality: q,
        ..ClipSpec::default()
    };
    assert_eq!((at(20).x264_crf(), at(99).x264_crf()), (45, 14));
    assert_eq!((at(20).vp9_crf(), at(99).vp9_crf()), (56, 16));
    assert_eq!(at(5).x264_crf(), 45, "clamped below");
}

#[test]
fn invalid_specs_are_refused() {
    let ok = small(ClipFormat::Mp4, true);
    assert!(ok.validate().is_ok());
    let cases = [
        (
            "odd width",
            ClipSpec {
                width: 321,
                ..ok.clone()
            },
        ),
        (
            "tiny",
            ClipSpec {
                height: 8,
                ..ok.clone()
            },
        ),
        (
            "no duration",
            ClipSpec {
                duration_secs: 0,
                shots: vec![],
                ..ok.clone()
            },
        ),
        (
            "zero fps",
            ClipSpec {
                fps: 0,
                ..ok.clone()
            },
        ),
        (
            "shots too short",
            ClipSpec {
                shots: vec![1],
                ..ok.clone()
            },
        ),
        (
            "empty shot",
            ClipSpec {
                shots: vec![2, 0],
                ..ok.clone()
            },
        ),
    ];
    for (case, spec) in cases {
        assert!(spec.validate().is_err(), "case: {case}");
    }
}

#[test]
fn the_same_seed_gives_the_same_arguments_and_another_seed_does_not() {
    let a = small(ClipFormat::Mp4, true);
    let out = Path::new("/o.mp4");
    assert_eq!(build_args(&a, out, 0), build_args(&a.clone(), out, 0));
    let b = ClipSpec {
        seed: 8,
        ..a.clone()
    };
    assert_ne!(build_args(&a, out, 0), build_args(&b, out, 0));
}

#[tokio::test]
async fn each_format_probes_as_promised() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            ClipFormat::Mp4,
            true,
            "mov,mp4,m4a,3gp,3g2,mj2",
            "h264",
            Some("aac"),
        ),
        (
            ClipFormat::Mov,
            false,
            "mov,mp4,m4a,3gp,3g2,mj2",
            "h264",
            None,
        ),
        (ClipFormat::Webm, true, "matroska,webm", "vp9", Some("opus")),
        (ClipFormat::Webm, false, "matroska,webm", "vp9", None),
    ];
    for (format, sound, container, vcodec, acodec) in cases {
        let case = format!("{format:?} sound={sound}");
        let spec = small(format, sound);
        let out = dir
            .path()
            .join(format!("clip-{sound}.{}", format.extension()));

        render_clip(&runner, &spec, &out, Duration::from_secs(60))
            .await
            .unwrap();

        let p = runner.ffprobe(&out).await.unwrap();
        assert_eq!(p.format_name, container, "{case}");
        let v = p.video.as_ref().unwrap();
        assert_eq!(v.codec, vcodec, "{case}");
        assert_eq!((v.width, v.height), (320, 180), "{case}");
        assert_eq!(v.fps, 24.0, "{case}");
        assert_eq!(v.pix_fmt.as_deref(), Some("yuv420p"), "{case}");
        assert!(
            (p.duration_secs - 2.0).abs() <= 1.0 / 24.0 + 0.03,
            "{case}: {}",
            p.duration_secs
        );
        assert_eq!(p.audio.as_ref().map(|a| a.codec.as_str()), acodec, "{case}");
        if let Some(a) = &p.audio {
            assert_eq!((a.sample_rate, a.channels), (48000, 2), "{case}");
        }
        if format == ClipFormat::Mp4 {
            assert!(moov_before_mdat(&out).unwrap(), "{case}");
            assert_eq!(v.nb_frames, Some(48), "{case}");
        }
    }
}

/// Runs a filter over `clip` and returns ffmpeg's log.
async fn analyse(runner: &Runner, clip: &Path, filter: &str, audio: bool) -> Vec<String> {
    let mut args = crate::media::input_args(clip, true);
    args.extend([if audio { "-af" } else { "-vf" }, filter, "-f", "null", "-"].map(String::from));
    runner
        .ffmpeg(args, RunOptions::new("analyse", Duration::from_secs(60)))
        .await
        .unwrap()
        .log
}

#[tokio::test]
async fn a_two_shot_clip_cuts_hard_at_the_boundary_only() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = ClipSpec {
        duration_secs: 3,
        shots: vec![2, 1],
        sound: false,
        ..small(ClipFormat::Mp4, false)
    };
    let out = dir.path().join("cut.mp4");
    render_clip(&runner, &spec, &out, Duration::from_secs(60))
        .await
        .unwrap();

    let log = analyse(&runner, &out, "select='gt(scene,0.3)',showinfo", false).await;

    let cuts: Vec<f64> = log
        .iter()
        .filter(|l| l.contains("Parsed_showinfo"))
        .filter_map(|l| l.split("pts_time:").nth(1))
        .filter_map(|t| t.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(cuts.len(), 1, "{cuts:?}");
    assert!((cuts[0] - 2.0).abs() < 0.05, "{cuts:?}");
}

#[tokio::test]
async fn sound_lands_near_minus_16_lufs() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for seed in [1, 2, 3] {
        let spec = ClipSpec {
            seed,
            duration_secs: 4,
            shots: vec![2, 2],
            ..small(ClipFormat::Mp4, true)
        };
        let out = dir.path().join(format!("loud{seed}.mp4"));
        render_clip(&runner, &spec, &out, Duration::from_secs(60))
            .await
            .unwrap();

        let log = analyse(&runner, &out, "ebur128", true).await;

        // The summary's "I: -16.0 LUFS" is the last integrated value printed.
        let i = log
            .iter()
            .rev()
            .filter_map(|l| l.trim_start_matches("[info]").trim().strip_prefix("I:"))
            .find_map(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap();
        assert!((i - -16.0).abs() <= 1.0, "seed {seed}: {i} LUFS");
    }
}

/// The 4K timing quoted in docs; run with `cargo test -- --ignored synth_4k`.
#[tokio::test]
#[ignore]
async fn synth_4k_five_seconds_with_sound_timing() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for format in [ClipFormat::Mp4, ClipFormat::Webm] {
        let spec = ClipSpec {
            width: 3840,
            height: 2160,
            duration_secs: 5,
            shots: vec![2, 2, 1],
            format,
            ..ClipSpec::default()
        };
        let out = dir.path().join(format!("4k.{}", format.extension()));
        let started = Instant::now();
        render_clip(&runner, &spec, &out, Duration::from_secs(600))
            .await
            .unwrap();
        let size = std::fs::metadata(&out).unwrap().len();
        eprintln!(
            "4K 5 s {format:?} with sound: {:?}, {} MB",
            started.elapsed(),
            size / 1_000_000
        );
    }
}
