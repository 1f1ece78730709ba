use super::variants::is_segment_name;
use super::*;
use crate::media::codec::avc1_of;
use crate::media::hls::MediaPlaylist;
use crate::media::ladder::default_ladder;
use crate::media::level::H264Level;
use crate::media::probe::moov_before_mdat;
use crate::media::profile::Crop;
use crate::media::testutil;

pub(super) fn rung(name: &str, w: u32, h: u32) -> Rendition {
    Rendition {
        name: name.into(),
        kind: OutputKind::Mp4,
        width: w,
        height: h,
        crop: None,
        crf: Some(23),
        bitrate_kbps: None,
        maxrate_kbps: 1000,
        bufsize_kbps: 2000,
        min_bitrate_kbps: None,
        profile: "high".into(),
        level: Some(H264Level::L3_0),
        keyframe_secs: 2.0,
        audio_bitrate_kbps: 128,
    }
}

pub(super) fn plan(renditions: Vec<Rendition>, has_audio: bool) -> TranscodePlan {
    TranscodePlan {
        renditions,
        poster_width: 1280,
        poster_at_secs: 1.0,
        has_audio,
        fps: 24.0,
        preset: "veryfast".into(),
        threads: 0,
        audio_filter: None,
        stills: None,
        analysis: None,
        picture: Default::default(),
        references: Vec::new(),
        conform: Default::default(),
    }
}

/// The values following each occurrence of `flag`.
fn values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
    args.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].as_str())
        .collect()
}

#[test]
fn args_decode_the_master_once_and_cascade_the_scalers() {
    let p = plan(default_ladder(3840, 2160), true);
    let args = build_args(Path::new("/in/master.mp4"), &p, Path::new("/out"));

    assert_eq!(values(&args, "-i"), ["/in/master.mp4"]);
    let graph = values(&args, "-filter_complex");
    assert_eq!(
        graph,
        ["[0:v:0]split=2[g0][still];\
              [g0]scale=w=1920:h=1080:flags=bicubic,setsar=1,format=yuv420p,split=2[v0][d0_0];\
              [d0_0]scale=w=1280:h=720:flags=bicubic,setsar=1,format=yuv420p,split=2[v1][d0_1];\
              [d0_1]scale=w=854:h=480:flags=bicubic,setsar=1,format=yuv420p[v2];\
              [0:a:0]aresample=48000,aformat=channel_layouts=stereo,asplit=3[a0][a1][a2];\
              [still]setpts=PTS-STARTPTS,trim=start=1.000,trim=end_frame=1,\
              scale=w=min(1280\\,iw):h=-2:flags=bicubic,setsar=1[poster]"]
    );
    let before_input = &args[..args.iter().position(|a| a == "-i").unwrap()];
    assert!(before_input
        .windows(2)
        .any(|w| w == ["-protocol_whitelist", "file,pipe"]));
}

#[test]
fn args_give_each_rendition_its_encoder_settings_and_file() {
    let p = plan(default_ladder(3840, 2160), true);
    let args = build_args(Path::new("/in/master.mp4"), &p, Path::new("/out"));

    assert_eq!(
        values(&args, "-map"),
        ["[v0]", "[a0]", "[v1]", "[a1]", "[v2]", "[a2]", "[poster]"]
    );
    assert_eq!(
        values(&args, "-c:v"),
        ["libx264", "libx264", "libx264", "mjpeg"]
    );
    assert_eq!(values(&args, "-profile:v"), ["high"; 3]);
    assert_eq!(values(&args, "-level:v"), ["4.0", "3.1", "3.1"]);
    assert_eq!(values(&args, "-crf"), ["21", "22", "23"]);
    assert_eq!(values(&args, "-maxrate"), ["8000k", "5000k", "2500k"]);
    assert_eq!(values(&args, "-bufsize"), ["16000k", "10000k", "5000k"]);
    assert_eq!(values(&args, "-preset"), ["veryfast"; 3]);
    assert_eq!(values(&args, "-g"), ["48"; 3]);
    assert_eq!(values(&args, "-keyint_min"), ["48"; 3]);
    assert_eq!(values(&args, "-c:a"), ["aac"; 3]);
    assert_eq!(values(&args, "-b:a"), ["192k", "160k", "128k"]);
    assert_eq!(values(&args, "-movflags"), ["+faststart"; 3]);
    assert_eq!(values(&args, "-map_metadata"), ["-1"; 4]);
    assert_eq!(values(&args, "-map_chapters"), ["-1"; 3]);
    assert_eq!(values(&args, "-frames:v"), ["1"]);
    assert_eq!(values(&args, "-q:v"), ["3"]);
    assert!(!args.iter().any(|a| a == "-r"), "frame rate stays native");
    let outputs: Vec<&String> = args.iter().filter(|a| a.starts_with("/out/")).collect();
    assert_eq!(
        outputs,
        [
            "/out/1080p.mp4",
            "/out/720p.mp4",
            "/out/480p.mp4",
            "/out/poster.jpg"
        ]
    );
    assert_eq!(args.last().unwrap(), "/out/poster.jpg");
}

#[test]
fn args_cascade_by_size_whatever_the_plan_order_and_skip_audio_when_absent() {
    let mut p = plan(vec![rung("small", 320, 180), rung("big", 640, 360)], false);
    p.threads = 2;
    p.fps = 29.97;
    let args = build_args(Path::new("rel/master.mov"), &p, Path::new("/out"));

    let graph = values(&args, "-filter_complex")[0];
    assert!(
        graph.contains(
            "[g0]scale=w=640:h=360:flags=bicubic,setsar=1,format=yuv420p,split=2[v1][d0_0]"
        ),
        "{graph}"
    );
    assert!(
        graph.contains("[d0_0]scale=w=320:h=180:flags=bicubic,setsar=1,format=yuv420p[v0]"),
        "{graph}"
    );
    assert_eq!(values(&args, "-map"), ["[v0]", "[v1]", "[poster]"]);
    assert!(values(&args, "-c:a").is_empty());
    assert_eq!(values(&args, "-g"), ["60", "60"]);
    assert_eq!(values(&args, "-i"), ["file:rel/master.mov"]);
    assert_eq!(values(&args, "-threads"), ["2", "2", "2"]);
    assert_eq!(values(&args, "-filter_complex_threads"), ["2"]);
}

#[test]
fn an_audio_filter_runs_once_and_is_split_to_every_rendition() {
    let mut p = plan(default_ladder(3840, 2160), true);
    p.audio_filter = Some("loudnorm=I=-24,aresample=48000".into());
    let args = build_args(Path::new("/in/master.mp4"), &p, Path::new("/out"));

    let graph = values(&args, "-filter_complex")[0];
    assert_eq!(
        graph
            .split(';')
            .filter(|c| c.contains("0:a:0"))
            .collect::<Vec<_>>(),
        ["[0:a:0]loudnorm=I=-24,aresample=48000,\
              aresample=48000,aformat=channel_layouts=stereo,asplit=3[a0][a1][a2]"]
    );
    assert_eq!(graph.matches("loudnorm").count(), 1, "{graph}");
    assert_eq!(
        values(&args, "-map"),
        ["[v0]", "[a0]", "[v1]", "[a1]", "[v2]", "[a2]", "[poster]"]
    );
    assert_eq!(values(&args, "-c:a"), ["aac"; 3]);

    // One rendition: no split. No audio: the filter is ignored.
    p.renditions.truncate(1);
    let one = build_args(Path::new("/m.mp4"), &p, Path::new("/out"));
    let one_graph = values(&one, "-filter_complex")[0];
    assert!(
        one_graph.contains(
            "loudnorm=I=-24,aresample=48000,aresample=48000,aformat=channel_layouts=stereo[a0]"
        ),
        "{one_graph}"
    );
    assert!(!one_graph.contains("asplit"), "{one_graph}");
    p.has_audio = false;
    let mute = build_args(Path::new("/m.mp4"), &p, Path::new("/out"));
    assert!(!values(&mute, "-filter_complex")[0].contains("0:a:0"));
    assert_eq!(values(&mute, "-map"), ["[v0]", "[poster]"]);
}

#[test]
fn a_conform_for_buyers_follows_each_outputs_scaler_and_trims_the_audio_once() {
    let mut p = plan(default_ladder(3840, 2160), true);
    let before = values(
        &build_args(Path::new("/m.mp4"), &p, Path::new("/out")),
        "-filter_complex",
    )[0]
    .to_owned();
    assert!(
        !before.contains("fps=") && !before.contains("[c0]"),
        "{before}"
    );
    p.conform = super::OutputConform {
        fps: Some((24000, 1001)),
        trim_secs: Some(15.0),
        aac_lr: true,
    };
    let args = build_args(Path::new("/m.mp4"), &p, Path::new("/out"));
    let graph = values(&args, "-filter_complex")[0];
    let chains: Vec<&str> = graph.split(';').collect();
    for i in 0..3 {
        let own = format!("[c{i}]fps=24000/1001,trim=end=15.000000[v{i}]");
        assert!(chains.contains(&own.as_str()), "{graph}");
    }
    // The scalers now feed the conform chains, not the encoders.
    assert!(
        !chains
            .iter()
            .any(|c| c.contains("scale=") && c.contains("[v0]")),
        "{graph}"
    );
    let audio: Vec<&&str> = chains.iter().filter(|c| c.contains("0:a:0")).collect();
    assert_eq!(
        audio,
        [&"[0:a:0]aresample=48000,aformat=channel_layouts=stereo,atrim=end=15.000000,asplit=3[a0][a1][a2]"]
    );
    assert_eq!(values(&args, "-aac_ms"), ["0"; 3]);
    assert_eq!(values(&args, "-map")[..2], ["[v0]", "[a0]"]);
}

#[test]
fn plan_for_a_60fps_master_raises_levels_and_keeps_small_posters() {
    let probe = Probe {
        format_name: "mov".into(),
        duration_secs: 15.0,
        size_bytes: 1,
        bit_rate: None,
        video: Some(crate::media::VideoStream {
            codec: "h264".into(),
            profile: None,
            level: None,
            width: 1920,
            height: 1080,
            pix_fmt: None,
            fps: 60.0,
            nb_frames: None,
            r_frame_rate: Some(60.0),
            avg_frame_rate: Some(60.0),
            ..Default::default()
        }),
        audio: None,
    };
    let plan =
        TranscodePlan::for_master(&probe, default_ladder(1920, 1080), &MediaConfig::default());
    let levels: Vec<String> = plan
        .renditions
        .iter()
        .map(|r| r.level.map(|l| l.to_string()).unwrap_or_default())
        .collect();
    assert_eq!(levels, ["4.2", "3.2", "3.1"]);
    assert_eq!(plan.poster_width, 1280);
    assert_eq!(plan.poster_at_secs, 3.0);
    assert!(!plan.has_audio);

    let narrow = Probe {
        video: probe.video.clone().map(|v| crate::media::VideoStream {
            width: 720,
            height: 1280,
            ..v
        }),
        ..probe
    };
    assert_eq!(
        TranscodePlan::for_master(&narrow, vec![], &MediaConfig::default()).poster_width,
        720
    );
}

pub(super) async fn master(
    runner: &Runner,
    dir: &Path,
    w: u32,
    h: u32,
    audio: bool,
) -> (PathBuf, Probe) {
    let path = dir.join(format!("master-{w}x{h}.mp4"));
    let mut args: Vec<String> = vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("testsrc2=size={w}x{h}:rate=24:duration=2"),
    ];
    if audio {
        args.extend(
            [
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=44100:duration=2",
            ]
            .map(String::from),
        );
    }
    args.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "18",
            "-pix_fmt",
            "yuv420p",
        ]
        .map(String::from),
    );
    if audio {
        args.extend(["-c:a", "aac", "-ac", "1"].map(String::from));
    }
    args.push(path.display().to_string());
    runner
        .ffmpeg(args, RunOptions::new("master", Duration::from_secs(60)))
        .await
        .unwrap();
    let probe = runner.ffprobe(&path).await.unwrap();
    (path, probe)
}

#[tokio::test]
async fn transcode_writes_delivery_ready_renditions_and_a_poster() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (master, probe) = master(&runner, dir.path(), 640, 360, true).await;
    let mut plan = TranscodePlan::for_master(
        &probe,
        vec![rung("360p", 640, 360), rung("180p", 320, 180)],
        runner.config(),
    );
    plan.poster_width = 320;
    let out = dir.path().join("out");
    let percents = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = percents.clone();
    let cb: ProgressFn = std::sync::Arc::new(move |p| seen.lock().unwrap().push(p.percent));

    let result = transcode(
        &runner,
        &master,
        &probe,
        &plan,
        &out,
        Some(cb),
        Duration::from_secs(120),
    )
    .await
    .unwrap();

    assert_eq!(result.renditions.len(), 2);
    for (r, path) in &result.renditions {
        assert_eq!(path, &out.join(format!("{}.mp4", r.name)));
        let p = runner.ffprobe(path).await.unwrap();
        let v = p.video.as_ref().unwrap();
        assert_eq!(v.codec, "h264", "{}", r.name);
        assert_eq!(v.profile.as_deref(), Some("High"), "{}", r.name);
        assert_eq!(v.level, Some(30), "{}", r.name);
        assert_eq!((v.width, v.height), (r.width, r.height), "{}", r.name);
        assert_eq!(v.pix_fmt.as_deref(), Some("yuv420p"));
        assert_eq!(v.fps, 24.0);
        assert_eq!(v.nb_frames, Some(48), "{}", r.name);
        let a = p.audio.as_ref().unwrap();
        assert_eq!(
            (a.codec.as_str(), a.sample_rate, a.channels),
            ("aac", 48000, 2),
            "{}",
            r.name
        );
        assert!(
            moov_before_mdat(path).unwrap(),
            "{} is not faststart",
            r.name
        );
        assert!(
            (p.duration_secs - probe.duration_secs).abs() <= 1.0 / 24.0 + 1e-6,
            "{}: {} vs master {}",
            r.name,
            p.duration_secs,
            probe.duration_secs
        );
    }
    let poster = runner.ffprobe(&result.poster).await.unwrap();
    let pv = poster.video.unwrap();
    assert_eq!(
        (pv.codec.as_str(), pv.width, pv.height),
        ("mjpeg", 320, 180)
    );
    let percents: Vec<f64> = percents.lock().unwrap().iter().flatten().copied().collect();
    assert!(!percents.is_empty() && percents.iter().all(|p| (0.0..=100.0).contains(p)));
}

/// The measured loudnorm pass from `loudness` applied in the transcode:
/// every rendition lands on the target, at 48 kHz stereo.
#[tokio::test]
async fn a_loudness_filter_normalises_every_rendition() {
    use crate::media::loudness::{measure_output, prepare, Target};
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A 440 Hz tone at 44.1 kHz mono (about -22 LUFS), brought to -30.
    let (master, probe) = master(&runner, dir.path(), 320, 180, true).await;
    let d = Duration::from_secs(120);
    let target = Target::for_profile(-30.0, Some(-1.0));
    let n = prepare(&runner, &master, true, Some(target), true, d)
        .await
        .unwrap()
        .unwrap();
    let mut plan = TranscodePlan::for_master(
        &probe,
        vec![rung("180p", 320, 180), rung("90p", 160, 90)],
        runner.config(),
    );
    plan.audio_filter = n.audio_filter();
    assert!(plan.audio_filter.is_some());
    let out = dir.path().join("out");

    let result = transcode(&runner, &master, &probe, &plan, &out, None, d)
        .await
        .unwrap();

    let before = n.before.unwrap().input_i;
    assert!(before > -25.0, "{before}");
    for (r, path) in &result.renditions {
        let l = measure_output(&runner, path, d).await.unwrap().unwrap();
        assert!((l.integrated_lufs + 30.0).abs() <= 1.0, "{}: {l:?}", r.name);
        assert!(l.true_peak_dbtp <= -1.0, "{}: {l:?}", r.name);
        let p = runner.ffprobe(path).await.unwrap();
        let a = p.audio.unwrap();
        assert_eq!((a.sample_rate, a.channels), (48_000, 2), "{}", r.name);
        assert!(
            (p.duration_secs - probe.duration_secs).abs() <= 0.1,
            "{}: {} s",
            r.name,
            p.duration_secs
        );
    }
    assert!(
        crate::media::loudness::parse_report(&result.log).is_ok(),
        "pass 2 reports in the transcode's log"
    );
}

#[tokio::test]
async fn portrait_and_square_masters_go_through_the_default_ladder() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Scaled-down stand-ins: 540x960 and 720x720 masters, so only the small rungs apply.
    for (w, h, expected) in [
        (540u32, 960u32, vec![(480u32, 854u32)]),
        (720, 720, vec![(720, 720), (480, 480)]),
    ] {
        let (master, probe) = master(&runner, dir.path(), w, h, false).await;
        let plan = TranscodePlan::for_master(&probe, default_ladder(w, h), runner.config());
        let out = dir.path().join(format!("out-{w}x{h}"));

        let result = transcode(
            &runner,
            &master,
            &probe,
            &plan,
            &out,
            None,
            Duration::from_secs(120),
        )
        .await
        .unwrap();

        let mut sizes = Vec::new();
        for (_, path) in &result.renditions {
            let p = runner.ffprobe(path).await.unwrap();
            assert!(p.audio.is_none());
            let v = p.video.unwrap();
            sizes.push((v.width, v.height));
        }
        assert_eq!(sizes, expected, "{w}x{h}");
        let poster = runner.ffprobe(&result.poster).await.unwrap().video.unwrap();
        assert_eq!(
            (poster.width, poster.height),
            (w, h),
            "poster never upscaled"
        );
    }
}

#[tokio::test]
async fn a_truncated_master_fails_as_the_inputs_fault_and_leaves_no_outputs() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (master, probe) = master(&runner, dir.path(), 320, 180, false).await;
    let bytes = std::fs::read(&master).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let plan = TranscodePlan::for_master(&probe, vec![rung("180p", 320, 180)], runner.config());
    let out = dir.path().join("out");

    let err = transcode(
        &runner,
        &cut,
        &probe,
        &plan,
        &out,
        None,
        Duration::from_secs(60),
    )
    .await
    .unwrap_err();

    assert!(err.is_input_fault(), "{err:?}");
    assert!(err.reason().contains("cut.mp4"), "{}", err.reason());
    assert!(
        !err.reason().contains(dir.path().to_str().unwrap()),
        "{}",
        err.reason()
    );
    assert!(!out.join("180p.mp4").exists() && !out.join("poster.jpg").exists());
}

#[test]
fn unsafe_rendition_names_are_refused() {
    let probe =
        crate::media::probe::parse(include_bytes!("../fixtures/ffprobe-5.1.9-h264-aac.json"))
            .unwrap();
    for name in ["../x", "a b", "", "poster"] {
        let p = plan(vec![rung(name, 320, 180)], false);
        assert!(
            matches!(validate(&p, &probe), Err(ProcessError::Invalid(_))),
            "{name:?}"
        );
    }
    let odd = plan(vec![rung("x", 321, 180)], false);
    assert!(validate(&odd, &probe).is_err());
    assert!(validate(&plan(vec![rung("ok", 320, 180)], true), &probe).is_ok());
}

#[test]
fn args_for_crops_webm_hls_stills_and_one_audio_filter() {
    let probe: Probe = serde_json::from_value(serde_json::json!({
        "format_name": "mov", "duration_secs": 10.0, "size_bytes": 1, "bit_rate": null,
        "video": {"codec": "h264", "profile": null, "level": null, "width": 1920,
                  "height": 1080, "pix_fmt": null, "fps": 24.0, "nb_frames": null},
        "audio": null
    }))
    .unwrap();
    let square = Rendition {
        crop: Some(Crop {
            width: 1080,
            height: 1080,
            x: 420,
            y: 0,
        }),
        ..rung("square", 1080, 1080)
    };
    let webm = Rendition {
        kind: OutputKind::Webm,
        crf: Some(33),
        profile: "0".into(),
        level: None,
        ..rung("vp9", 1280, 720)
    };
    let hls = Rendition {
        kind: OutputKind::Hls,
        crf: None,
        bitrate_kbps: Some(3000),
        ..rung("h720", 1280, 720)
    };
    let mut p = plan(vec![rung("1080p", 1920, 1080), square, webm, hls], true);
    p.audio_filter = Some("loudnorm=I=-23".into());
    p.stills =
        Some(StillsPlan::for_master(&crate::media::stills::StillsSpec::default(), &probe).unwrap());
    let args = build_args(Path::new("/in/master.mp4"), &p, Path::new("/out"));

    assert_eq!(values(&args, "-i"), ["/in/master.mp4"], "one decode");
    let graph = values(&args, "-filter_complex")[0];
    let chains: Vec<&str> = graph.split(';').collect();
    assert_eq!(chains[0], "[0:v:0]split=3[g0][g1][still]");
    for want in [
            "[g0]scale=w=1920:h=1080:flags=bicubic,setsar=1,format=yuv420p,split=2[v0][d0_0]",
            // Same size, one scaler: the WebM and the HLS variant share it.
            "[d0_0]scale=w=1280:h=720:flags=bicubic,setsar=1,format=yuv420p,split=2[v2][v3]",
            "[g1]crop=w=1080:h=1080:x=420:y=0,scale=w=1080:h=1080:flags=bicubic,setsar=1,format=yuv420p[v1]",
            "[0:a:0]loudnorm=I=-23,aresample=48000,aformat=channel_layouts=stereo,asplit=4[a0][a1][a2][a3]",
        ] {
            assert!(chains.contains(&want), "{want} not in {chains:#?}");
        }
    assert_eq!(graph.matches("loudnorm").count(), 1, "audio filtered once");
    assert!(
        chains
            .iter()
            .any(|c| c.starts_with("[still]setpts=PTS-STARTPTS,split=")),
        "{chains:#?}"
    );
    assert!(!graph.contains("[poster]"));

    let vcodecs = values(&args, "-c:v");
    assert_eq!(
        vcodecs[..4],
        ["libx264", "libx264", "libvpx-vp9", "libx264"]
    );
    assert!(vcodecs[4..].contains(&"libwebp_anim"), "{vcodecs:?}");
    assert_eq!(values(&args, "-c:a"), ["aac", "aac", "libopus", "aac"]);
    assert_eq!(values(&args, "-crf"), ["23", "23", "33"]);
    // The VP9 CRF is capped by -b:v; the HLS variant has a target bitrate.
    assert_eq!(values(&args, "-b:v"), ["1000k", "3000k"]);
    assert_eq!(values(&args, "-movflags"), ["+faststart"; 2]);
    assert_eq!(values(&args, "-f")[..4], ["mp4", "mp4", "webm", "hls"]);
    assert_eq!(
        values(&args, "-hls_segment_filename"),
        ["/out/hls/h720_%05d.ts"]
    );
    assert_eq!(values(&args, "-hls_playlist_type"), ["vod"]);
    let files: Vec<&String> = args.iter().filter(|a| a.starts_with("/out/")).collect();
    for want in [
        "/out/1080p.mp4",
        "/out/square.mp4",
        "/out/vp9.webm",
        "/out/hls/h720.m3u8",
        "/out/poster-1280.jpg",
        "/out/poster-640.webp",
        "/out/sprite.jpg",
        "/out/preview.webp",
    ] {
        assert!(files.iter().any(|f| *f == want), "{want} not in {files:?}");
    }
    assert!(!files.iter().any(|f| f.ends_with("poster.jpg")));
}

#[test]
fn playlists_give_segments_and_rates_for_the_master_playlist() {
    let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n\
                    #EXTINF:4.000000,\nv_00000.ts\n#EXTINF:1.500000,\nv_00001.ts\n#EXT-X-ENDLIST\n";
    let segments: Vec<(String, f64)> = MediaPlaylist::parse(text)
        .segments
        .into_iter()
        .map(|s| (s.uri, s.duration_secs))
        .collect();
    assert_eq!(
        segments,
        [
            ("v_00000.ts".to_owned(), 4.0),
            ("v_00001.ts".to_owned(), 1.5)
        ]
    );
    // 2 MB in 4 s, 1 MB in 1.5 s: peak is the short segment's rate.
    let r = variant_rates(&[(2_000_000, 4.0), (1_000_000, 1.5)]);
    assert_eq!(r.average_bps, (3_000_000.0f64 * 8.0 / 5.5).ceil() as u64);
    assert_eq!(r.peak_bps, (8_000_000.0f64 / 1.5).ceil() as u64);
    assert!(is_segment_name("v_00001.ts"));
    assert!(!is_segment_name("../x.ts") && !is_segment_name("a/b.ts"));
    let r = Rendition {
        level: Some(H264Level::L3_1),
        ..rung("x", 2, 2)
    };
    assert_eq!(avc1_of(&r), "avc1.64001f");
}

/// The master playlist bytes reelay publishes, pinned on a sample set of
/// written segments: a change here changes every published HLS set.
#[tokio::test]
async fn the_hls_master_playlist_text_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let hls = dir.path().join(HLS_DIR);
    std::fs::create_dir_all(&hls).unwrap();
    let variant = |name: &str, w, h, level: &str| Rendition {
        kind: OutputKind::Hls,
        level: H264Level::parse(level).ok(),
        ..rung(name, w, h)
    };
    let p = plan(
        vec![
            variant("h720", 1280, 720, "3.1"),
            rung("480p", 854, 480),
            variant("h360", 640, 360, "3.0"),
        ],
        true,
    );
    std::fs::write(
        hls.join("h720.m3u8"),
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.000000,\n\
             h720_00000.ts\n#EXTINF:1.500000,\nh720_00001.ts\n#EXT-X-ENDLIST\n",
    )
    .unwrap();
    std::fs::write(
        hls.join("h360.m3u8"),
        "#EXTM3U\n#EXTINF:2.0,\nh360_00000.ts\n#EXT-X-ENDLIST\n",
    )
    .unwrap();
    std::fs::write(hls.join("h720_00000.ts"), vec![0u8; 2000]).unwrap();
    std::fs::write(hls.join("h720_00001.ts"), vec![0u8; 1000]).unwrap();
    std::fs::write(hls.join("h360_00000.ts"), vec![0u8; 500]).unwrap();

    let files = write_hls_master(&p, dir.path()).await.unwrap();

    assert_eq!(
            std::fs::read_to_string(dir.path().join(HLS_MASTER)).unwrap(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=5334,AVERAGE-BANDWIDTH=4364,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\",FRAME-RATE=24.000\n\
             h720.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2000,AVERAGE-BANDWIDTH=2000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",FRAME-RATE=24.000\n\
             h360.m3u8\n"
        );
    let rels: Vec<&str> = files.iter().map(|f| f.rel.as_str()).collect();
    assert_eq!(
        rels,
        [
            "hls/master.m3u8",
            "hls/h720.m3u8",
            "hls/h720_00000.ts",
            "hls/h720_00001.ts",
            "hls/h360.m3u8",
            "hls/h360_00000.ts"
        ]
    );
}

#[test]
fn a_master_without_video_is_the_inputs_fault() {
    let mut probe =
        crate::media::probe::parse(include_bytes!("../fixtures/ffprobe-5.1.9-h264-aac.json"))
            .unwrap();
    probe.video = None;
    let err = validate(&plan(vec![rung("ok", 320, 180)], true), &probe).unwrap_err();
    assert!(matches!(err, ProcessError::UnusableInput(_)), "{err:?}");
    assert!(err.is_input_fault());
}

#[test]
fn a_rung_with_a_floor_is_encoded_at_constant_rate_with_filler() {
    let mut floored = rung("360p", 640, 360);
    floored.crf = None;
    floored.bitrate_kbps = Some(2200);
    floored.maxrate_kbps = 3000;
    floored.bufsize_kbps = 1100;
    floored.min_bitrate_kbps = Some(1500);
    let mut capped = rung("720p", 1280, 720);
    capped.bitrate_kbps = None;
    let p = plan(vec![floored, capped], false);
    let args = build_args(Path::new("/in/master.mp4"), &p, Path::new("/out"));
    // b:v = minrate = maxrate at the target; the ceiling-only rung stays CRF.
    assert_eq!(values(&args, "-b:v"), ["2200k"]);
    assert_eq!(values(&args, "-minrate"), ["2200k"]);
    assert_eq!(values(&args, "-maxrate"), ["2200k", "1000k"]);
    assert_eq!(values(&args, "-x264-params"), ["nal-hrd=cbr:force-cfr=1"]);
    assert_eq!(values(&args, "-crf"), ["23"]);
}
