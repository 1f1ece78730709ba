use super::*;

/// Recorded from ffmpeg 5.1 (pass 1 of a 1 kHz tone at 0.5 amplitude).
const PASS1: &[&str] = &[
    "[info] video:0kB audio:3008kB subtitle:0kB other streams:0kB global headers:0kB muxing overhead: unknown",
    "[Parsed_loudnorm_0 @ 0x563f5e5b0d40] [info] ",
    "{",
    "\t\"input_i\" : \"-6.06\",",
    "\t\"input_tp\" : \"-5.10\",",
    "\t\"input_lra\" : \"0.00\",",
    "\t\"input_thresh\" : \"-16.06\",",
    "\t\"output_i\" : \"-24.04\",",
    "\t\"output_tp\" : \"-23.06\",",
    "\t\"output_lra\" : \"0.10\",",
    "\t\"output_thresh\" : \"-34.04\",",
    "\t\"normalization_type\" : \"dynamic\",",
    "\t\"target_offset\" : \"0.04\"",
    "}",
];

fn us() -> Target {
    Target::for_profile(-24.0, Some(-2.0))
}

fn measured(i: f64, tp: f64, lra: f64) -> Measured {
    Measured {
        input_i: i,
        input_tp: tp,
        input_lra: lra,
        input_thresh: i - 10.0,
        target_offset: 0.1,
    }
}

#[test]
fn the_pass1_report_is_read_from_the_log() {
    let r = parse_report(PASS1).unwrap();
    assert_eq!(
        r.measured,
        Measured {
            input_i: -6.06,
            input_tp: -5.10,
            input_lra: 0.0,
            input_thresh: -16.06,
            target_offset: 0.04
        }
    );
    assert_eq!(r.output_i, Some(-24.04));
    assert_eq!(r.mode, Some(Mode::Dynamic));
}

#[test]
fn the_last_report_wins_and_tags_in_front_of_lines_are_ignored() {
    let mut log: Vec<String> = PASS1.iter().map(|s| s.to_string()).collect();
    log.extend(
        [
            "[Parsed_loudnorm_3 @ 0x1] [info] {",
            "[info] \t\"input_i\" : \"-30.50\",",
            "\t\"input_tp\" : \"-20.00\",",
            "\t\"input_lra\" : \"3.20\",",
            "\t\"input_thresh\" : \"-40.90\",",
            "\t\"normalization_type\" : \"linear\",",
            "\t\"target_offset\" : \"-0.20\"",
            "[info] }",
            "[info] frame=  96 fps=0.0 q=-1.0 Lsize=N/A",
        ]
        .map(String::from),
    );
    let r = parse_report(&log).unwrap();
    assert_eq!(r.measured.input_i, -30.5);
    assert_eq!(r.measured.input_lra, 3.2);
    assert_eq!(r.measured.target_offset, -0.2);
    assert_eq!(r.mode, Some(Mode::Linear));
    assert_eq!(r.output_i, None);
}

#[test]
fn silence_parses_as_infinities_and_is_skipped_in_words() {
    let log = [
        "{",
        "\"input_i\" : \"-inf\",",
        "\"input_tp\" : \"-inf\",",
        "\"input_lra\" : \"0.00\",",
        "\"input_thresh\" : \"-70.00\",",
        "\"target_offset\" : \"inf\"",
        "}",
    ];
    let r = parse_report(&log).unwrap();
    assert_eq!(r.measured.input_i, f64::NEG_INFINITY);
    let n = plan(us(), r.measured);
    assert_eq!(n.status, Status::Skipped);
    assert_eq!(n.audio_filter(), None);
    assert!(n.reason.unwrap().contains("silent"));
    // Nothing infinite is left to break the JSON report.
    let n = plan(us(), r.measured);
    assert!(serde_json::to_string(&n).unwrap().contains("skipped"));
}

#[test]
fn garbage_or_a_missing_block_is_an_error_not_a_measurement() {
    assert_eq!(
        parse_report(&["[info] nothing here", "{", "}"]),
        Err(ParseError::Missing)
    );
    assert_eq!(parse_report::<&str>(&[]), Err(ParseError::Missing));
    let cut = ["{", "\"input_i\" : \"-6.06\","];
    assert!(matches!(parse_report(&cut), Err(ParseError::Garbled(_))));
    let missing = ["{", "\"input_i\" : \"-6.06\"", "}"];
    assert!(
        matches!(parse_report(&missing), Err(ParseError::Garbled(m)) if m.contains("input_tp"))
    );
    let words = [
        "{",
        "\"input_i\" : \"loud\",",
        "\"input_tp\" : \"-1\",",
        "\"input_lra\" : \"1\",",
        "\"input_thresh\" : \"-10\",",
        "\"target_offset\" : \"0\"",
        "}",
    ];
    assert!(matches!(parse_report(&words), Err(ParseError::Garbled(m)) if m.contains("input_i")));
    let not_json = ["{", "\"input_i\" : -6.06 oops", "}"];
    assert!(matches!(
        parse_report(&not_json),
        Err(ParseError::Garbled(_))
    ));
}

#[test]
fn the_target_keeps_headroom_under_the_cap_within_loudnorms_ranges() {
    assert_eq!(us().true_peak_dbtp, -3.0);
    assert_eq!(us().integrated_lufs, -24.0);
    assert_eq!(Target::for_profile(-23.0, None).true_peak_dbtp, -2.0);
    assert_eq!(
        Target::for_profile(-90.0, Some(-12.0)).integrated_lufs,
        -70.0
    );
    assert_eq!(Target::for_profile(-23.0, Some(-12.0)).true_peak_dbtp, -9.0);
}

#[test]
fn pass1_reads_audio_only() {
    let args = pass1_args(Path::new("/m/master.mp4"), &us());
    let af = &args[args.iter().position(|a| a == "-af").unwrap() + 1];
    assert_eq!(af, "loudnorm=I=-24.00:TP=-3.00:LRA=7.00:print_format=json");
    assert!(args.iter().any(|a| a == "-vn"));
    let map = &args[args.iter().position(|a| a == "-map").unwrap() + 1];
    assert_eq!(map, "0:a:0");
    assert!(args
        .windows(2)
        .any(|w| w == ["-protocol_whitelist", "file,pipe"]));
    assert_eq!(&args[args.len() - 3..], ["-f", "null", "-"]);
}

#[test]
fn pass2_passes_the_measurement_and_resamples_to_48k_stereo() {
    let m = Measured {
        input_i: -10.04,
        input_tp: -6.0,
        input_lra: 2.0,
        input_thresh: -20.04,
        target_offset: 0.85,
    };
    assert_eq!(
        pass2_filter(&us(), &m),
        "loudnorm=I=-24.00:TP=-3.00:LRA=7.00:measured_I=-10.04:measured_TP=-6.00:\
         measured_LRA=2.00:measured_thresh=-20.04:offset=0.85:linear=true:print_format=json,\
         aresample=48000,aformat=sample_rates=48000:channel_layouts=stereo"
    );
    // A master wider than the default range keeps its range.
    let wide = Measured {
        input_lra: 11.3,
        ..m
    };
    assert!(pass2_filter(&us(), &wide).contains(":LRA=12.00:"));
    assert_eq!(expected_mode(&us(), &wide).0, Mode::Linear);
}

#[test]
fn linear_mode_follows_loudnorms_own_rule() {
    // Too loud, varying level: one gain of -14 dB, peak lands at -20 dBTP.
    assert_eq!(
        expected_mode(&us(), &measured(-10.0, -6.0, 2.0)),
        (Mode::Linear, None)
    );
    // Too quiet: +16 dB puts a -39.6 dBTP peak at -23.6.
    assert_eq!(
        expected_mode(&us(), &measured(-40.0, -39.6, 2.1)).0,
        Mode::Linear
    );
    // A steady tone (0 LU range) is never linear.
    let (mode, why) = expected_mode(&us(), &measured(-6.06, -5.1, 0.0));
    assert_eq!(mode, Mode::Dynamic);
    assert!(why.unwrap().contains("0 LU"));
    // Right loudness, clipping peaks: the gain of -2.4 dB leaves -2.6 dBTP,
    // over the -3 dBTP target.
    let (mode, why) = expected_mode(&us(), &measured(-21.6, -0.24, 0.1));
    assert_eq!(mode, Mode::Dynamic);
    let why = why.unwrap();
    assert!(
        why.contains("-2.4 dB") && why.contains("-2.6 dBTP"),
        "{why}"
    );
    let n = plan(us(), measured(-21.6, -0.24, 0.1));
    assert_eq!(n.status, Status::Applied);
    assert_eq!(n.mode, Some(Mode::Dynamic));
    assert!(!n.mode_reported);
    assert!(n.audio_filter().unwrap().starts_with("loudnorm="));
}

#[test]
fn pass2s_report_decides_the_recorded_mode() {
    let mut n = plan(us(), measured(-6.06, -5.1, 0.0));
    assert_eq!(n.mode, Some(Mode::Dynamic));
    let mut log: Vec<String> = PASS1.iter().map(|s| s.to_string()).collect();
    n.record_pass2(&log);
    assert!(n.mode_reported);
    assert_eq!(n.mode, Some(Mode::Dynamic));
    assert!(n.reason.is_some());
    let mut n = plan(us(), measured(-10.0, -6.0, 2.0));
    let last = log.len() - 3;
    log[last] = "\t\"normalization_type\" : \"linear\",".into();
    n.record_pass2(&log);
    assert_eq!(
        (n.mode, n.mode_reported, n.reason),
        (Some(Mode::Linear), true, None)
    );
    // No report in the log: the prediction stays, marked as such.
    let mut n = plan(us(), measured(-10.0, -6.0, 2.0));
    n.record_pass2(&["[info] frame=1"]);
    assert_eq!((n.mode, n.mode_reported), (Some(Mode::Linear), false));
}

#[tokio::test]
async fn disabled_and_audio_less_masters_are_recorded_without_running_ffmpeg() {
    // A runner pointing at no binary: any ffmpeg run would fail.
    let runner = Runner::new(&crate::media::MediaConfig {
        ffmpeg_path: "/nonexistent/ffmpeg".into(),
        ..Default::default()
    });
    let d = Duration::from_secs(5);
    let p = Path::new("/m.mp4");
    assert_eq!(
        prepare(&runner, p, true, None, true, d).await.unwrap(),
        None
    );
    let off = prepare(&runner, p, true, Some(us()), false, d)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(off.status, Status::Disabled);
    assert!(off.reason.unwrap().contains("normalize_loudness = false"));
    let mute = prepare(&runner, p, false, Some(us()), true, d)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mute.status, Status::Skipped);
    assert!(mute.reason.unwrap().contains("no audio"));
    assert!(prepare(&runner, p, true, Some(us()), true, d)
        .await
        .is_err());
}

async fn master(runner: &Runner, dir: &Path, name: &str, expr: &str) -> std::path::PathBuf {
    let out = dir.join(name);
    let args: Vec<String> = [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=160x90:r=24:d=4",
        "-f",
        "lavfi",
        "-i",
        &format!("aevalsrc=exprs='{expr}|{expr}':s=44100:d=4"),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-b:a",
        "192k",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string()])
    .collect();
    runner
        .ffmpeg(args, RunOptions::new("master", Duration::from_secs(60)))
        .await
        .unwrap();
    out
}

#[tokio::test]
async fn a_silent_master_is_measured_and_skipped_with_the_reason() {
    let Some(runner) = crate::media::testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let m = master(&runner, dir.path(), "silent.mp4", "0").await;
    let n = prepare(&runner, &m, true, Some(us()), true, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n.status, Status::Skipped);
    assert_eq!(n.audio_filter(), None);
    assert!(n.reason.as_deref().unwrap().contains("silent"), "{n:?}");
}

/// Both passes through the Runner, the second as the transcode applies
/// it (decoded once, split to two AAC outputs): the outputs land within
/// 1 LU of the target, under the true-peak cap, and the mode recorded is
/// the one ffmpeg reports.
#[tokio::test]
async fn two_passes_bring_loud_and_quiet_audio_to_the_target() {
    let Some(runner) = crate::media::testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = Duration::from_secs(60);
    let cases = [
        // A level that varies (LRA > 0): linear.
        (
            "loud.mp4",
            "0.5*sin(2*PI*1000*t)*(0.6+0.4*sin(2*PI*0.5*t))",
            Target::for_profile(-24.0, Some(-2.0)),
            Mode::Linear,
        ),
        // A steady tone: dynamic.
        (
            "quiet.mp4",
            "0.01*sin(2*PI*1000*t)",
            Target::for_profile(-23.0, Some(-1.0)),
            Mode::Dynamic,
        ),
    ];
    for (name, expr, target, mode) in cases {
        let m = master(&runner, dir.path(), name, expr).await;
        let mut n = prepare(&runner, &m, true, Some(target), true, d)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n.status, Status::Applied, "{name}");
        assert_eq!(n.mode, Some(mode), "{name}: predicted");
        let filter = n.audio_filter().unwrap();
        let outs = [dir.path().join("a0.mp4"), dir.path().join("a1.mp4")];
        let mut args = input_args(&m, true);
        args.extend(
            [
                "-filter_complex",
                &format!("[0:a:0]{filter},asplit=2[a0][a1]"),
                "-map",
                "[a0]",
                "-c:a",
                "aac",
                "-b:a",
                "192k",
                &outs[0].display().to_string(),
                "-map",
                "[a1]",
                "-c:a",
                "aac",
                "-b:a",
                "128k",
                &outs[1].display().to_string(),
            ]
            .map(String::from),
        );
        let run = runner
            .ffmpeg(args, RunOptions::new("pass 2", d).untrusted())
            .await
            .unwrap();
        n.record_pass2(&run.log);
        assert!(n.mode_reported, "{name}: pass 2 printed its report");
        assert_eq!(n.mode, Some(mode), "{name}: ran");
        let before = n.before.unwrap().input_i;
        for out in &outs {
            let l = measure_output(&runner, out, d).await.unwrap().unwrap();
            eprintln!("{name}: before {before:.2} LUFS, after {l:?}, {:?}", n.mode);
            assert!(
                (l.integrated_lufs - target.integrated_lufs).abs() <= 1.0,
                "{name}: {l:?}"
            );
            assert!(l.true_peak_dbtp <= target.true_peak_dbtp + TRUE_PEAK_HEADROOM_DB);
            let p = runner.ffprobe(out).await.unwrap().audio.unwrap();
            assert_eq!((p.sample_rate, p.channels), (48_000, 2));
        }
        assert!(
            (before - target.integrated_lufs).abs() > 10.0,
            "{name}: {before}"
        );
    }
}
