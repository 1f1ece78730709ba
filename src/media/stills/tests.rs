use super::*;
use crate::media::process::{RunOptions, Runner};
use crate::media::testutil;
use crate::media::VideoStream;
use std::path::PathBuf;
use std::time::Duration;

fn probe(w: u32, h: u32, secs: f64) -> Probe {
    Probe {
        format_name: "mov".into(),
        duration_secs: secs,
        size_bytes: 1,
        bit_rate: None,
        video: Some(VideoStream {
            codec: "h264".into(),
            profile: None,
            level: None,
            width: w,
            height: h,
            pix_fmt: Some("yuv420p".into()),
            fps: 24.0,
            nb_frames: None,
            r_frame_rate: None,
            avg_frame_rate: None,
            ..Default::default()
        }),
        audio: None,
    }
}

#[test]
fn spec_defaults_and_serde() {
    let spec: StillsSpec = serde_json::from_str("{}").unwrap();
    assert_eq!(spec, StillsSpec::default());
    assert_eq!(spec.poster_widths, [1280, 640]);
    assert_eq!(spec.poster_formats, [StillFormat::Jpg, StillFormat::Webp]);
    assert_eq!(spec.poster_at_secs, None);
    assert_eq!(
        spec.sprite,
        Some(SpriteSpec {
            interval_secs: 1.0,
            tile_width: 160,
            columns: 10
        })
    );
    assert_eq!(
        spec.preview,
        Some(PreviewSpec {
            secs: 3.0,
            width: 480,
            fps: 10
        })
    );
    let spec: StillsSpec = serde_json::from_str(
        r#"{"poster_formats":["webp"],"sprite":null,"preview":{"width":320}}"#,
    )
    .unwrap();
    assert_eq!(spec.poster_formats, [StillFormat::Webp]);
    assert_eq!(spec.sprite, None);
    assert_eq!(spec.preview.unwrap().fps, 10);
    assert!(serde_json::from_str::<StillsSpec>(r#"{"posters":[1]}"#).is_err());
    assert!(serde_json::from_str::<StillsSpec>(r#"{"poster_formats":["png"]}"#).is_err());
    assert!(serde_json::from_str::<StillsSpec>(r#"{"preview":{"gif":true}}"#).is_err());
}

#[test]
fn plan_never_upscales_keeps_sizes_even_and_collapses_duplicates() {
    let spec = StillsSpec {
        poster_widths: vec![640, 3840, 1280, 641, 640],
        ..StillsSpec::default()
    };
    let plan = StillsPlan::for_master(&spec, &probe(1920, 1080, 15.0)).unwrap();
    assert_eq!(plan.posters, [(1280, 720), (640, 360)]);
    assert_eq!(plan.poster_at_secs, 3.0);
    let sp = plan.sprite.as_ref().unwrap();
    assert_eq!((sp.tile_width, sp.tile_height), (160, 90));
    assert_eq!((sp.tiles, sp.columns, sp.rows), (15, 10, 2));
    assert_eq!(sp.size(), (1600, 180));
    let pv = plan.preview.as_ref().unwrap();
    assert_eq!((pv.width, pv.height, pv.fps), (480, 270, 10));
    assert_eq!((pv.start_secs, pv.secs), (3.0, 3.0));

    // 9:16 master narrower than every poster width: one poster at its own width.
    let plan = StillsPlan::for_master(&StillsSpec::default(), &probe(406, 720, 2.0)).unwrap();
    assert_eq!(plan.posters, [(406, 720)]);
    assert!((plan.poster_at_secs - 2.0 / 3.0).abs() < 1e-9);
    let sp = plan.sprite.as_ref().unwrap();
    assert_eq!((sp.tile_width, sp.tile_height), (160, 284));
    assert_eq!((sp.tiles, sp.columns, sp.rows), (2, 2, 1));
    let pv = plan.preview.as_ref().unwrap();
    assert_eq!((pv.width, pv.height), (406, 720));
    assert_eq!((pv.start_secs, pv.secs), (0.0, 2.0));

    // Odd aspect: heights rounded to even.
    let plan = StillsPlan::for_master(&StillsSpec::default(), &probe(1000, 333, 3.0)).unwrap();
    for (w, h) in plan.posters {
        assert_eq!((w % 2, h % 2), (0, 0), "{w}x{h}");
    }
}

#[test]
fn plan_clamps_times_inside_the_master() {
    let spec = StillsSpec {
        poster_at_secs: Some(99.0),
        ..StillsSpec::default()
    };
    let plan = StillsPlan::for_master(&spec, &probe(640, 360, 5.0)).unwrap();
    assert!(plan.poster_at_secs < 5.0 && plan.poster_at_secs >= 4.9);
    let pv = plan.preview.unwrap();
    assert_eq!(pv.start_secs, 2.0, "a full preview still fits");
    assert_eq!(plan.sprite.unwrap().tiles, 5);
}

#[test]
fn plan_errors_name_the_field() {
    let p = probe(1920, 1080, 10.0);
    let err = |spec: StillsSpec| StillsPlan::for_master(&spec, &p).unwrap_err();
    let base = StillsSpec::default;
    let e = err(StillsSpec {
        preview: Some(PreviewSpec {
            width: 800,
            ..PreviewSpec::default()
        }),
        ..base()
    });
    assert!(e.starts_with("stills.preview.width: "), "{e}");
    let e = err(StillsSpec {
        poster_widths: vec![],
        ..base()
    });
    assert!(e.starts_with("stills.poster_widths: "), "{e}");
    let e = err(StillsSpec {
        poster_formats: vec![],
        ..base()
    });
    assert!(e.starts_with("stills.poster_formats: "), "{e}");
    let e = err(StillsSpec {
        poster_at_secs: Some(-1.0),
        ..base()
    });
    assert!(e.starts_with("stills.poster_at_secs: "), "{e}");
    let e = err(StillsSpec {
        sprite: Some(SpriteSpec {
            interval_secs: 0.0,
            ..SpriteSpec::default()
        }),
        ..base()
    });
    assert!(e.starts_with("stills.sprite.interval_secs: "), "{e}");
    let e = err(StillsSpec {
        sprite: Some(SpriteSpec {
            columns: 0,
            ..SpriteSpec::default()
        }),
        ..base()
    });
    assert!(e.starts_with("stills.sprite.columns: "), "{e}");
    let e = err(StillsSpec {
        preview: Some(PreviewSpec {
            fps: 0,
            ..PreviewSpec::default()
        }),
        ..base()
    });
    assert!(e.starts_with("stills.preview.fps: "), "{e}");
    let mut no_video = p.clone();
    no_video.video = None;
    assert!(StillsPlan::for_master(&base(), &no_video).is_err());
}

#[test]
fn graph_reads_the_given_label_and_prefixes_its_own() {
    let plan = StillsPlan::for_master(&StillsSpec::default(), &probe(1920, 1080, 15.0)).unwrap();
    let g = plan.graph("still", Path::new("/out"));
    assert!(
        g.chains[0].starts_with("[still]setpts=PTS-STARTPTS,split=3"),
        "{}",
        g.chains[0]
    );
    // Every label other than the input starts with st_.
    let joined = g.chains.join(";");
    let mut rest = joined.as_str();
    let mut labels = Vec::new();
    while let Some(i) = rest.find('[') {
        let j = rest[i..].find(']').unwrap() + i;
        labels.push(rest[i + 1..j].to_owned());
        rest = &rest[j + 1..];
    }
    assert!(labels.iter().filter(|l| *l == "still").count() == 1);
    assert!(
        labels.iter().all(|l| l == "still" || l.starts_with("st_")),
        "{labels:?}"
    );
    assert!(joined.contains("lavfi.signalstats.YAVG:function=greater:value=32"));
    assert!(joined.contains("tile=layout=10x2"));
    assert!(joined.contains("concat=n=4:v=1:a=0"));

    let paths: Vec<&str> = g
        .outputs
        .iter()
        .map(|o| o.last().unwrap().as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "/out/poster-1280.jpg",
            "/out/poster-1280.webp",
            "/out/poster-640.jpg",
            "/out/poster-640.webp",
            "/out/sprite.jpg",
            "/out/preview.webp"
        ]
    );
    for o in &g.outputs {
        assert_eq!(o[0], "-map");
        assert!(o[1].starts_with("[st_"), "{o:?}");
        assert!(o.windows(2).any(|w| w[0] == "-f"), "{o:?}");
    }
    let codec = |i: usize| {
        g.outputs[i]
            .windows(2)
            .find(|w| w[0] == "-c:v")
            .map(|w| w[1].clone())
            .unwrap()
    };
    assert_eq!(
        (0..6).map(codec).collect::<Vec<_>>(),
        [
            "mjpeg",
            "libwebp",
            "mjpeg",
            "libwebp",
            "mjpeg",
            "libwebp_anim"
        ]
    );
    assert!(g.outputs[5].windows(2).any(|w| w == ["-loop", "0"]));

    // files() lists the same images plus the storyboard.
    let rels: Vec<String> = plan
        .files(Path::new("/out"))
        .into_iter()
        .map(|f| f.rel)
        .collect();
    assert_eq!(
        rels,
        [
            "poster-1280.jpg",
            "poster-1280.webp",
            "poster-640.jpg",
            "poster-640.webp",
            "sprite.jpg",
            "storyboard.vtt",
            "preview.webp"
        ]
    );

    // Without sprite and preview, at time 0: two candidates, one branch.
    let spec = StillsSpec {
        poster_at_secs: Some(0.0),
        sprite: None,
        preview: None,
        poster_formats: vec![StillFormat::Jpg],
        ..StillsSpec::default()
    };
    let plan = StillsPlan::for_master(&spec, &probe(1920, 1080, 15.0)).unwrap();
    let g = plan.graph("[v]", Path::new("/o"));
    assert!(g.chains[0].starts_with("[v]setpts=PTS-STARTPTS,split=1[st_poster_in]"));
    assert!(g.chains.join(";").contains("concat=n=2:v=1:a=0"));
    assert_eq!(g.outputs.len(), 2);
    assert_eq!(plan.storyboard_vtt(), None);
}

#[test]
fn storyboard_cues_cover_the_master_and_stay_inside_the_sprite() {
    let plan = StillsPlan::for_master(&StillsSpec::default(), &probe(1920, 1080, 12.5)).unwrap();
    let vtt = plan.storyboard_vtt().unwrap();
    assert!(
        vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nsprite.jpg#xywh=0,0,160,90\n"),
        "{vtt}"
    );
    let cues = parse_vtt(&vtt);
    let sp = plan.sprite.as_ref().unwrap();
    assert_eq!(cues.len(), 13);
    check_cues(&cues, sp.size(), 12.5);
    assert_eq!(cues[10].2, [0, 90, 160, 90]);
    assert!(
        vtt.ends_with("00:00:12.000 --> 00:00:12.500\nsprite.jpg#xywh=320,90,160,90\n"),
        "{vtt}"
    );
}

/// (start, end, [x, y, w, h]) per cue.
fn parse_vtt(vtt: &str) -> Vec<(f64, f64, [u32; 4])> {
    let secs = |t: &str| {
        let p: Vec<f64> = t.split(':').map(|x| x.parse().unwrap()).collect();
        p[0] * 3600.0 + p[1] * 60.0 + p[2]
    };
    let lines: Vec<&str> = vtt.lines().collect();
    assert_eq!(lines[0], "WEBVTT");
    let mut cues = Vec::new();
    for w in lines.windows(2) {
        if let Some((a, b)) = w[0].split_once(" --> ") {
            let xywh = w[1].strip_prefix("sprite.jpg#xywh=").expect(w[1]);
            let v: Vec<u32> = xywh.split(',').map(|x| x.parse().unwrap()).collect();
            cues.push((secs(a), secs(b), [v[0], v[1], v[2], v[3]]));
        }
    }
    cues
}

fn check_cues(cues: &[(f64, f64, [u32; 4])], (sw, sh): (u32, u32), duration: f64) {
    assert_eq!(cues[0].0, 0.0);
    for w in cues.windows(2) {
        assert_eq!(w[0].1, w[1].0, "cues are contiguous");
    }
    assert!(
        (cues.last().unwrap().1 - duration).abs() < 0.002,
        "{cues:?}"
    );
    for (a, b, [x, y, w, h]) in cues {
        assert!(b > a);
        assert!(
            *w > 0 && *h > 0 && x + w <= sw && y + h <= sh,
            "{x},{y},{w},{h} outside {sw}x{sh}"
        );
    }
}

// ---- real ffmpeg runs ----

/// A 640x360 24 fps master: `black_secs` of black, then `bright_secs` of
/// testsrc2, then `tail_black_secs` of black.
async fn master(
    runner: &Runner,
    dir: &Path,
    black_secs: u32,
    bright_secs: u32,
    tail_black_secs: u32,
) -> (PathBuf, Probe) {
    let path = dir.join(format!(
        "m-{black_secs}-{bright_secs}-{tail_black_secs}.mp4"
    ));
    let mut parts = Vec::new();
    let mut labels = String::new();
    for (i, (src, d)) in [
        ("color=c=black:", black_secs),
        ("testsrc2=", bright_secs),
        ("color=c=black:", tail_black_secs),
    ]
    .into_iter()
    .enumerate()
    {
        if d > 0 {
            parts.push(format!(
                "{src}s=640x360:r=24:d={d},format=yuv420p,setsar=1[p{i}]"
            ));
            labels.push_str(&format!("[p{i}]"));
        }
    }
    let n = parts.len();
    let graph = format!("{};{labels}concat=n={n}:v=1:a=0[v]", parts.join(";"));
    let args: Vec<String> = [
        "-filter_complex",
        &graph,
        "-map",
        "[v]",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "18",
        "-pix_fmt",
        "yuv420p",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([path.display().to_string()])
    .collect();
    runner
        .ffmpeg(args, RunOptions::new("master", Duration::from_secs(60)))
        .await
        .unwrap();
    let probe = runner.ffprobe(&path).await.unwrap();
    (path, probe)
}

/// The harness a transcode is: `[0:v:0]` split into a rendition branch
/// (sent to a null output here) and `[still]` for the stills.
async fn run_stills(runner: &Runner, master: &Path, plan: &StillsPlan, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    let g = plan.graph("still", out);
    let graph = format!(
        "[0:v:0]split=2[main][still];[main]scale=w=320:h=-2[v0];{}",
        g.chains.join(";")
    );
    let mut args: Vec<String> = crate::media::input_args(master, true);
    args.extend(["-filter_complex".into(), graph]);
    args.extend(["-map", "[v0]", "-f", "null", "-"].map(String::from));
    for o in g.outputs {
        args.extend(o);
    }
    runner
        .ffmpeg(
            args,
            RunOptions::new("stills", Duration::from_secs(120)).untrusted(),
        )
        .await
        .unwrap();
    plan.write_sidecars(out).unwrap();
}

/// Average luma of an image, as signalstats reports it.
async fn yavg(runner: &Runner, image: &Path) -> f64 {
    let args: Vec<String> = [
        "-i".to_owned(),
        image.display().to_string(),
        "-vf".into(),
        "format=yuv420p,signalstats,metadata=mode=print:key=lavfi.signalstats.YAVG".into(),
        "-f".into(),
        "null".into(),
        "-".into(),
    ]
    .into();
    let out = runner
        .ffmpeg(args, RunOptions::new("yavg", Duration::from_secs(30)))
        .await
        .unwrap();
    out.log
        .iter()
        .find_map(|l| l.split("lavfi.signalstats.YAVG=").nth(1))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no YAVG in {:?}", out.log))
}

/// (canvas width, canvas height, frames) of a WebP file, from its RIFF chunks.
fn webp_info(path: &Path) -> (u32, u32, usize) {
    let b = std::fs::read(path).unwrap();
    assert_eq!((&b[0..4], &b[8..12]), (&b"RIFF"[..], &b"WEBP"[..]));
    let (mut i, mut size, mut frames) = (12, (0, 0), 0);
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let len = u32::from_le_bytes(b[i + 4..i + 8].try_into().unwrap()) as usize;
        let d = &b[i + 8..i + 8 + len];
        let u24 = |s: &[u8]| u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16;
        match id {
            b"VP8X" => size = (u24(&d[4..7]) + 1, u24(&d[7..10]) + 1),
            b"ANMF" => frames += 1,
            b"VP8 " | b"VP8L" => frames += 1,
            _ => {}
        }
        i += 8 + len + (len & 1);
    }
    (size.0, size.1, frames)
}

#[tokio::test]
async fn one_run_writes_every_still_and_they_decode() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (m, probe) = master(&runner, dir.path(), 0, 3, 0).await;
    let spec = StillsSpec {
        poster_widths: vec![640, 320, 1280],
        ..StillsSpec::default()
    };
    let plan = StillsPlan::for_master(&spec, &probe).unwrap();
    assert_eq!(plan.posters, [(640, 360), (320, 180)]);
    let out = dir.path().join("out");
    run_stills(&runner, &m, &plan, &out).await;

    let files = plan.files(&out);
    assert_eq!(files.len(), 7);
    for f in &files {
        let len = std::fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{} missing or empty", f.rel);
    }
    for ((w, h), f) in [(640, 360), (320, 180)]
        .into_iter()
        .flat_map(|s| [(s, "jpg"), (s, "webp")])
    {
        let p = runner
            .ffprobe(&out.join(format!("poster-{w}.{f}")))
            .await
            .unwrap();
        let v = p.video.unwrap();
        let codec = if f == "jpg" { "mjpeg" } else { "webp" };
        assert_eq!(
            (v.codec.as_str(), v.width, v.height),
            (codec, w, h),
            "poster-{w}.{f}"
        );
        assert!(yavg(&runner, &out.join(format!("poster-{w}.{f}"))).await > f64::from(BLACK_YAVG));
    }
    let sp = plan.sprite.as_ref().unwrap();
    assert_eq!((sp.tiles, sp.columns, sp.rows), (3, 3, 1));
    let sprite = runner
        .ffprobe(&out.join(SPRITE_FILE))
        .await
        .unwrap()
        .video
        .unwrap();
    assert_eq!(
        (sprite.codec.as_str(), sprite.width, sprite.height),
        ("mjpeg", 480, 90)
    );
    assert_eq!((sprite.width, sprite.height), sp.size());
    let vtt = std::fs::read_to_string(out.join(STORYBOARD_FILE)).unwrap();
    check_cues(
        &parse_vtt(&vtt),
        (sprite.width, sprite.height),
        probe.duration_secs,
    );

    let preview = runner.ffprobe(&out.join(PREVIEW_FILE)).await.unwrap();
    assert_eq!(preview.video.unwrap().codec, "webp");
    let (w, h, frames) = webp_info(&out.join(PREVIEW_FILE));
    assert_eq!((w, h), (480, 270));
    assert!(w <= PREVIEW_MAX_WIDTH);
    assert!(frames > 1, "animated: {frames} frames");
    assert_eq!(frames, 30, "3 s at 10 fps");
}

#[tokio::test]
async fn a_long_master_flushes_a_partial_last_sprite_row() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (m, probe) = master(&runner, dir.path(), 0, 5, 0).await;
    let spec = StillsSpec {
        poster_formats: vec![StillFormat::Jpg],
        poster_widths: vec![320],
        sprite: Some(SpriteSpec {
            interval_secs: 0.5,
            tile_width: 64,
            columns: 4,
        }),
        preview: None,
        ..StillsSpec::default()
    };
    let plan = StillsPlan::for_master(&spec, &probe).unwrap();
    let sp = plan.sprite.clone().unwrap();
    assert_eq!(
        (sp.tiles, sp.columns, sp.rows, sp.tile_height),
        (10, 4, 3, 36)
    );
    let out = dir.path().join("out");
    run_stills(&runner, &m, &plan, &out).await;
    let sprite = runner
        .ffprobe(&out.join(SPRITE_FILE))
        .await
        .unwrap()
        .video
        .unwrap();
    assert_eq!((sprite.width, sprite.height), (256, 108));
    let cues = parse_vtt(&std::fs::read_to_string(out.join(STORYBOARD_FILE)).unwrap());
    assert_eq!(cues.len(), 10);
    check_cues(&cues, (256, 108), probe.duration_secs);
    // The last tile (row 3, column 2) holds a real frame, not padding.
    assert_eq!(cues[9].2, [64, 72, 64, 36]);
    let tile = out.join("last-tile.png");
    let args: Vec<String> = [
        "-i".to_owned(),
        out.join(SPRITE_FILE).display().to_string(),
        "-vf".into(),
        "crop=64:36:64:72".into(),
        tile.display().to_string(),
    ]
    .into();
    runner
        .ffmpeg(args, RunOptions::new("crop", Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(yavg(&runner, &tile).await > f64::from(BLACK_YAVG));
}

#[tokio::test]
async fn the_poster_skips_a_black_first_second() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (m, probe) = master(&runner, dir.path(), 1, 2, 0).await;
    let spec = StillsSpec {
        poster_at_secs: Some(0.0),
        ..StillsSpec::default()
    };
    let plan = StillsPlan::for_master(&spec, &probe).unwrap();
    let out = dir.path().join("out");
    run_stills(&runner, &m, &plan, &out).await;
    for f in plan
        .files(&out)
        .iter()
        .filter(|f| f.role == FileRole::Poster)
    {
        let y = yavg(&runner, &f.path).await;
        assert!(y > f64::from(BLACK_YAVG), "{} is black: YAVG {y}", f.rel);
    }
    // Control: the master's first frame really is black.
    let first = dir.path().join("first.png");
    let args: Vec<String> = [
        "-i".to_owned(),
        m.display().to_string(),
        "-frames:v".into(),
        "1".into(),
        first.display().to_string(),
    ]
    .into();
    runner
        .ffmpeg(args, RunOptions::new("first", Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(yavg(&runner, &first).await <= 17.0);
}

/// Matroska (like WebM) does not count frames, so a poster time past the
/// video's end cannot be clamped: the first frame is the last resort.
#[tokio::test]
async fn a_poster_time_past_the_video_of_a_longer_audio_master_still_gives_a_poster() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("short-video.mkv");
    let args: Vec<String> = [
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=320x180:r=24:d=1,format=yuv420p",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000:duration=3",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([m.display().to_string()])
    .collect();
    runner
        .ffmpeg(args, RunOptions::new("master", Duration::from_secs(60)))
        .await
        .unwrap();
    let probe = runner.ffprobe(&m).await.unwrap();
    assert_eq!(probe.video.as_ref().unwrap().nb_frames, None);
    assert!(probe.duration_secs > 2.5, "{}", probe.duration_secs);
    let spec = StillsSpec {
        poster_at_secs: Some(2.5),
        poster_widths: vec![320],
        preview: None,
        ..StillsSpec::default()
    };
    let plan = StillsPlan::for_master(&spec, &probe).unwrap();
    assert_eq!(plan.poster_at_secs, 2.5);
    let out = dir.path().join("out");
    run_stills(&runner, &m, &plan, &out).await;
    for f in plan.files(&out) {
        assert!(std::fs::metadata(&f.path).unwrap().len() > 0, "{}", f.rel);
    }
    let p = runner
        .ffprobe(&out.join("poster-320.webp"))
        .await
        .unwrap()
        .video
        .unwrap();
    assert_eq!((p.width, p.height), (320, 180));
}

#[test]
fn times_stay_inside_a_video_shorter_than_its_container() {
    let mut p = probe(640, 360, 10.0);
    p.video.as_mut().unwrap().nb_frames = Some(48); // 2 s of video
    let plan = StillsPlan::for_master(&StillsSpec::default(), &p).unwrap();
    assert!((plan.poster_at_secs - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(plan.sprite.as_ref().unwrap().tiles, 2);
    let pv = plan.preview.unwrap();
    assert_eq!((pv.start_secs, pv.secs), (0.0, 2.0));
    assert_eq!(
        plan.duration_secs, 10.0,
        "the storyboard covers the container"
    );
}

#[tokio::test]
async fn black_after_the_poster_time_falls_back_to_an_earlier_frame_or_any_frame() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = StillsSpec {
        poster_at_secs: Some(2.0),
        poster_widths: vec![320],
        ..StillsSpec::default()
    };
    // Bright first second, black after: the poster comes from before 2 s.
    let (m, probe) = master(&runner, dir.path(), 0, 1, 2).await;
    let plan = StillsPlan::for_master(&spec, &probe).unwrap();
    let out = dir.path().join("tail");
    run_stills(&runner, &m, &plan, &out).await;
    let y = yavg(&runner, &out.join("poster-320.jpg")).await;
    assert!(y > f64::from(BLACK_YAVG), "YAVG {y}");
    assert!(yavg(&runner, &out.join("poster-320.webp")).await > f64::from(BLACK_YAVG));

    // All black: the run still succeeds and writes (black) posters.
    let (m, probe) = master(&runner, dir.path(), 3, 0, 0).await;
    let plan = StillsPlan::for_master(&spec, &probe).unwrap();
    let out = dir.path().join("black");
    run_stills(&runner, &m, &plan, &out).await;
    for f in plan.files(&out) {
        assert!(std::fs::metadata(&f.path).unwrap().len() > 0, "{}", f.rel);
    }
    let p = runner
        .ffprobe(&out.join("poster-320.jpg"))
        .await
        .unwrap()
        .video
        .unwrap();
    assert_eq!((p.width, p.height), (320, 180));
}
