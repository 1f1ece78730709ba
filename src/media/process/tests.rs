use super::args::*;
use super::output::*;
use super::run::*;
use super::*;
use crate::media::testutil;
use crate::media::MediaConfig;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;
use std::time::Instant;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn tail_keeps_the_newest_lines_within_both_budgets() {
    let mut t = Tail::new(3, 1000);
    for i in 0..10 {
        t.push(&format!("line {i}"));
    }
    assert_eq!(t.into_vec(), s(&["line 7", "line 8", "line 9"]));

    let mut t = Tail::new(100, 25);
    for i in 0..10 {
        t.push(&format!("line {i:04}"));
    }
    assert_eq!(t.into_vec(), s(&["line 0008", "line 0009"]));
}

#[test]
fn whitelists_are_put_before_every_input_once() {
    let args = s(&["-ss", "1", "-i", "/a.mp4", "-i", "/b.mp4", "-map", "0"]);
    let guarded = guard_inputs(args);
    let wl = whitelist_args(UNTRUSTED_DEMUXERS);
    let mut expected = s(&["-ss", "1"]);
    expected.extend(wl.clone());
    expected.extend(s(&["-i", "/a.mp4"]));
    expected.extend(wl.clone());
    expected.extend(s(&["-i", "/b.mp4", "-map", "0"]));
    assert_eq!(guarded, expected);
    assert_eq!(guard_inputs(guarded.clone()), guarded, "idempotent");
    assert_eq!(
        guard_inputs(input_args(Path::new("/m.mp4"), true)),
        input_args(Path::new("/m.mp4"), true)
    );
}

#[test]
fn filter_names_are_read_from_the_listing_and_the_legend_is_not_one() {
    // ffmpeg 5.1's layout; one build without libvmaf, one with.
    let without = "Filters:\n  T.. = Timeline support\n  .S. = Slice threading\n  \
            ..C = Command support\n  A = Audio input/output\n  | = Source or sink filter\n \
            ... loudnorm          A->A       EBU R128 loudness normalization\n \
            TS. ssim              VV->V      Calculate the SSIM between two video streams.\n \
            ... vmafmotion        V->V       Calculate the VMAF Motion score.\n \
            ... aevalsrc          |->A       Generate an audio signal.\n";
    let names = parse_filter_names(without);
    assert!(names.contains("loudnorm") && names.contains("ssim") && names.contains("aevalsrc"));
    assert!(!names.contains("libvmaf"), "vmafmotion is not libvmaf");
    assert!(!names.contains("=") && !names.contains("T.."));
    assert_eq!(names.len(), 4);
    let with = format!("{without} TS. libvmaf           VV->V      Calculate the VMAF between two video streams.\n");
    assert!(parse_filter_names(&with).contains("libvmaf"));
    assert!(parse_filter_names("garbage\n\n").is_empty());
}

#[tokio::test]
async fn the_installed_ffmpeg_lists_its_filters_once() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    assert!(runner.has_filter("loudnorm").await.unwrap());
    assert!(runner.has_filter("ssim").await.unwrap());
    assert!(!runner.has_filter("no-such-filter").await.unwrap());
    assert!(runner.inner.filters.initialized());
    // Whether libvmaf is there depends on the build; asking twice agrees.
    let vmaf = runner.has_filter("libvmaf").await.unwrap();
    assert_eq!(runner.clone().has_filter("libvmaf").await.unwrap(), vmaf);
}

#[test]
fn relative_paths_cannot_be_read_as_options_or_protocols() {
    assert_eq!(path_arg(Path::new("/tmp/a:b.mp4")), "/tmp/a:b.mp4");
    assert_eq!(path_arg(Path::new("-y.mp4")), "file:-y.mp4");
    assert_eq!(path_arg(Path::new("http:x.mp4")), "file:http:x.mp4");
}

#[test]
fn error_display_shows_the_last_stderr_lines() {
    let e = ProcessError::Failed {
        label: "transcode".into(),
        code: Some(1),
        stderr_tail: s(&["a", "b", "[error] c: Invalid data", "d"]),
    };
    let text = e.to_string();
    assert!(
        text.starts_with("transcode failed (exit code 1): "),
        "{text}"
    );
    assert!(text.ends_with("b | [error] c: Invalid data | d"), "{text}");
    assert_eq!(e.reason(), "c: Invalid data");
    let paths = ProcessError::Failed {
        label: "transcode".into(),
        code: Some(1),
        stderr_tail: s(&[
            "[mov @ 0x1] [error] moov atom not found",
            "[error] /tmp/r-1/in.mp4: Invalid data",
        ]),
    };
    assert_eq!(paths.reason(), "moov atom not found; in.mp4: Invalid data");
    let timeout = ProcessError::Timeout {
        label: "ffprobe".into(),
        after: Duration::from_secs(3),
        stderr_tail: vec![],
    };
    assert_eq!(
        timeout.reason(),
        "ffprobe took longer than 3s and was stopped"
    );
    assert!(e.is_input_fault());
    assert!(!ProcessError::NotFound {
        binary: "ffmpeg".into()
    }
    .is_input_fault());
}

#[tokio::test]
async fn a_missing_binary_is_reported_as_not_found() {
    let cfg = MediaConfig {
        ffmpeg_path: "/nonexistent/ffmpeg".into(),
        ffprobe_path: "/nonexistent/ffprobe".into(),
        ..MediaConfig::default()
    };
    let runner = Runner::new(&cfg);

    let version = runner.version().await.unwrap_err();
    let run = runner
        .ffmpeg(
            s(&["-version"]),
            RunOptions::new("x", Duration::from_secs(5)),
        )
        .await
        .unwrap_err();
    let probe = runner.ffprobe(Path::new("/x.mp4")).await.unwrap_err();

    for e in [version, run, probe] {
        assert!(matches!(e, ProcessError::NotFound { .. }), "{e:?}");
        assert!(e.to_string().contains("install ffmpeg"), "{e}");
        assert!(!e.is_input_fault());
    }
}

#[tokio::test]
async fn version_reports_the_first_line() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let v = runner.version().await.unwrap();
    assert!(v.starts_with("ffmpeg version "), "{v}");
}

/// Live processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(marker) {
                found.push(name);
            }
        }
    }
    found
}

fn endless_args(marker: &str) -> Vec<String> {
    // A lavfi source whose duration (1 hour) names the run.
    s(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size=320x240:rate=25:duration={marker}"),
        "-f",
        "null",
        "-",
    ])
}

#[tokio::test]
async fn a_run_past_its_deadline_is_killed_and_reaped() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let marker = "3600.123";
    let started = Instant::now();

    let err = runner
        .ffmpeg(
            endless_args(marker),
            RunOptions::new("endless", Duration::from_secs(1)),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, ProcessError::Timeout { .. }), "{err:?}");
    assert!(err.is_input_fault());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!err.stderr_tail().is_empty(), "the tail explains what ran");
    assert!(processes_with(marker).is_empty(), "ffmpeg still running");
}

#[tokio::test]
async fn dropping_the_future_kills_the_child() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let marker = "3600.456";
    let run = runner.ffmpeg(
        endless_args(marker),
        RunOptions::new("abandoned", Duration::from_secs(60)),
    );

    let outcome = tokio::time::timeout(Duration::from_millis(700), run).await;

    assert!(outcome.is_err(), "the run should still have been going");
    let gone_by = Instant::now() + Duration::from_secs(5);
    while !processes_with(marker).is_empty() {
        assert!(
            Instant::now() < gone_by,
            "ffmpeg survived its dropped future"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The slot comes back once the child is reaped.
    let all = runner.config().effective_max_concurrent();
    while runner.inner.slots.available_permits() < all {
        assert!(Instant::now() < gone_by, "the slot was not given back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_undecodable_input_fails_with_ffmpegs_reason() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("master.mp4");
    std::fs::write(&bad, b"this is not a video").unwrap();
    let mut args = input_args(&bad, true);
    args.extend(s(&["-f", "null", "-"]));

    let err = runner
        .ffmpeg(args, RunOptions::new("decode", Duration::from_secs(20)))
        .await
        .unwrap_err();

    let ProcessError::Failed {
        code, stderr_tail, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*code, Some(1));
    assert!(
        stderr_tail.iter().any(|l| l.contains("Invalid data found")),
        "{stderr_tail:?}"
    );
    assert!(err.to_string().contains("Invalid data found"), "{err}");
    assert!(err.is_input_fault());
    let probe_err = runner.ffprobe(&bad).await.unwrap_err();
    assert!(
        probe_err.to_string().contains("Invalid data found"),
        "{probe_err}"
    );
}

#[test]
fn the_first_input_is_found_only_for_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.mp4");
    std::fs::write(&f, b"x").unwrap();
    let canon = std::fs::canonicalize(&f).unwrap();
    let with = |i: &str| s(&["-y", "-i", i, "-f", "null", "-"]);
    assert_eq!(first_input(&with(f.to_str().unwrap())), Some(canon.clone()));
    assert_eq!(
        first_input(&with(&format!("file:{}", f.display()))),
        Some(canon)
    );
    assert_eq!(first_input(&with("testsrc2=size=16x16")), None);
    assert_eq!(first_input(&with("https://example.com/m.mp4")), None);
    assert_eq!(first_input(&with("pipe:0")), None);
    assert_eq!(first_input(&s(&["-f", "null", "-"])), None);
}

/// ffmpeg holds its own reports back until every output has written its
/// header; a sprite-like output (one tiled frame at the end) holds them
/// to the end. The share of the input read fills the gap.
#[tokio::test]
async fn progress_comes_from_the_input_position_while_ffmpeg_reports_nothing() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("m.mp4");
    runner
        .ffmpeg(
            s(&[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=25:duration=4",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-movflags",
                "+faststart",
                master.to_str().unwrap(),
            ]),
            RunOptions::new("make master", Duration::from_secs(30)),
        )
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let seen2 = seen.clone();
    let cb: ProgressFn = Arc::new(move |p| seen2.lock().unwrap().push(p));
    let sheet = dir.path().join("sheet.jpg");
    // -re: 4 s of reading; the one output frame comes at the end.
    let args = s(&[
        "-re",
        "-i",
        master.to_str().unwrap(),
        "-vf",
        "fps=5,scale=32:-2,tile=20x1",
        "-frames:v",
        "1",
        "-update",
        "1",
        sheet.to_str().unwrap(),
    ]);
    runner
        .ffmpeg(
            args,
            RunOptions::new("sheet", Duration::from_secs(30))
                .input_duration(4.0)
                .progress(Some(cb)),
        )
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    let from_input: Vec<f64> = seen
        .iter()
        .filter(|p| p.fps == 0.0)
        .filter_map(|p| p.percent)
        .collect();
    assert!(
        from_input
            .iter()
            .filter(|p| **p > 0.0 && **p < 100.0)
            .count()
            >= 2,
        "{seen:?}"
    );
    assert!(
        from_input.windows(2).all(|w| w[0] <= w[1]),
        "{from_input:?}"
    );
    assert!(from_input.iter().all(|p| *p <= 99.0), "{from_input:?}");
}

#[tokio::test]
async fn progress_reports_increasing_percent_up_to_the_end() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    let (seen2, calls2) = (seen.clone(), calls.clone());
    let cb: ProgressFn = Arc::new(move |p| {
        calls2.fetch_add(1, Ordering::Relaxed);
        seen2.lock().unwrap().push(p);
    });
    // Real-time reading (-re) of 3 s of input: several reports, every 0.2 s.
    let args = s(&[
        "-stats_period",
        "0.2",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25:duration=3",
        "-f",
        "null",
        "-",
    ]);

    runner
        .ffmpeg(
            args,
            RunOptions::new("progress", Duration::from_secs(20))
                .input_duration(3.0)
                .progress(Some(cb)),
        )
        .await
        .unwrap();

    let seen = seen.lock().unwrap();
    let percents: Vec<f64> = seen.iter().filter_map(|p| p.percent).collect();
    assert!(percents.len() >= 5, "{seen:?}");
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
    assert!(
        percents.iter().any(|p| *p > 0.0 && *p < 100.0),
        "{percents:?}"
    );
    assert!(*percents.last().unwrap() > 95.0, "{percents:?}");
    assert!(percents.iter().all(|p| (0.0..=100.0).contains(p)));
}

#[cfg(target_os = "linux")]
#[test]
fn a_child_dies_when_the_thread_that_started_it_is_gone() {
    let pid = std::thread::spawn(|| {
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30");
        die_with_parent(&mut cmd);
        cmd.spawn().unwrap().id()
    })
    .join()
    .unwrap();
    let gone = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        // A killed child is a zombie (state Z) until reaped, or gone.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split_whitespace().nth(2) == Some("Z"))
            .unwrap_or(true)
    });
    assert!(gone, "the child outlived its parent");
}

#[test]
fn the_major_version_is_read_from_release_and_debian_lines_but_not_git_builds() {
    use super::ffmpeg_major_version as major;
    assert_eq!(
        major("ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2025"),
        Some(5)
    );
    assert_eq!(
        major("ffmpeg version n7.0.2 Copyright (c) 2000-2024"),
        Some(7)
    );
    assert_eq!(major("ffmpeg version 7.1 Copyright"), Some(7));
    assert_eq!(major("ffmpeg version N-113000-gabcdef Copyright"), None);
    assert_eq!(major("something else"), None);
}

/// A runner whose watchdog stops a run after `secs` without progress.
fn watched(secs: u64) -> Option<Runner> {
    testutil::runner()?;
    Some(Runner::new(&MediaConfig {
        stall_secs: secs,
        ..MediaConfig::default()
    }))
}

#[tokio::test]
async fn a_run_that_makes_no_progress_is_stopped_as_stalled_and_reaped() {
    let Some(runner) = watched(1) else {
        return;
    };
    // ffmpeg blocks opening a FIFO nobody writes: alive, silent, stuck.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stall-7781.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads the NUL-terminated path it is given.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let args = s(&["-i", fifo.to_str().unwrap(), "-f", "null", "-"]);

    let err = runner
        .ffmpeg(args, RunOptions::new("stuck", Duration::from_secs(120)))
        .await
        .unwrap_err();

    assert!(matches!(err, ProcessError::Stalled { .. }), "{err:?}");
    assert!(
        !err.is_input_fault(),
        "a stall is retried, not blamed on the master"
    );
    assert!(err.to_string().contains("made no progress for 1s"), "{err}");
    assert!(
        processes_with("stall-7781.fifo").is_empty(),
        "ffmpeg still running"
    );
}

#[tokio::test]
async fn a_slow_run_that_keeps_moving_is_not_taken_for_a_stall() {
    let Some(runner) = watched(1) else {
        return;
    };
    // -re: read at playback speed, so the 3 s run takes about 3 s of wall
    // time, each second of it well within the watchdog's one.
    let args = s(&[
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25:duration=3",
        "-f",
        "null",
        "-",
    ]);
    let out = runner
        .ffmpeg(args, RunOptions::new("slow", Duration::from_secs(120)))
        .await;
    assert!(out.is_ok(), "{out:?}");
}
