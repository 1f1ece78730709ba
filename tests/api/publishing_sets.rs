//! A delivery set of many files (MP4s, a VP9/Opus WebM, an HLS set, posters
//! in two formats, a storyboard sprite with its WebVTT, an animated preview)
//! goes through the real publish step and the embedded store: every file is
//! served by the CDN origin with its own Content-Type, HLS plays through the
//! CDN (its relative URIs resolve), VAST names only published files; a
//! replaced set is swept whole after its grace, and the TTL takes the live
//! set whole (HLS segments included).
//!
//! The files are made here with ffmpeg and handed to the pipeline as a
//! transcode's outputs, so the test does not depend on the profiles.

use crate::helpers::*;
use reelay::media::process::Runner;
use reelay::media::transcode::{content_type_for, FileRole, WrittenFile};
use reelay::storage::ObjectStore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::types::Json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CAMPAIGN: &str = "sets";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const SRC: [&str; 8] = [
    "-f",
    "lavfi",
    "-i",
    "testsrc2=size=640x360:rate=24:duration=2",
    "-f",
    "lavfi",
    "-i",
    "sine=frequency=440:sample_rate=48000:duration=2",
];

fn ffmpeg(dir: &Path, args: &[&str]) {
    let out = Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-v", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn written(dir: &Path, rel: &str, role: FileRole, output: Option<&str>) -> WrittenFile {
    let path = dir.join(rel);
    assert!(path.exists(), "{rel} was not made");
    WrittenFile {
        rel: rel.into(),
        path,
        role,
        output: output.map(String::from),
    }
}

/// Every kind of file a delivery profile writes, small and real. `poster_q`
/// changes the poster's bytes (and so the set's hash).
fn make_set(dir: &Path, poster_q: u32) -> Vec<WrittenFile> {
    std::fs::create_dir_all(dir.join("hls")).unwrap();
    let mut mp4 = SRC.to_vec();
    mp4.extend([
        "-filter_complex",
        "[0:v]split=2[a][b];[b]scale=320:180[c]",
        "-map",
        "[a]",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-threads",
        "1",
        "-c:a",
        "aac",
        "-movflags",
        "+faststart",
        "360p.mp4",
        "-map",
        "[c]",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-threads",
        "1",
        "-c:a",
        "aac",
        "-movflags",
        "+faststart",
        "180p.mp4",
    ]);
    ffmpeg(dir, &mp4);
    let mut webm = SRC.to_vec();
    webm.extend([
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "300k",
        "-c:a",
        "libopus",
        "360p.webm",
    ]);
    ffmpeg(dir, &webm);
    let mut hls = SRC.to_vec();
    hls.extend([
        "-filter_complex",
        "[0:v]split=2[a][b];[b]scale=320:180[c]",
        "-map",
        "[a]",
        "-map",
        "[c]",
        "-map",
        "1:a",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "24",
        "-b:v:0",
        "800k",
        "-b:v:1",
        "300k",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-f",
        "hls",
        "-hls_time",
        "1",
        "-hls_playlist_type",
        "vod",
        "-start_number",
        "1",
        "-var_stream_map",
        "v:0,a:0,name:360p v:1,a:1,name:180p",
        "-master_pl_name",
        "master.m3u8",
        "-hls_segment_filename",
        "hls/%v_%05d.ts",
        "hls/%v.m3u8",
    ]);
    ffmpeg(dir, &hls);
    let q = poster_q.to_string();
    ffmpeg(
        dir,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=24:duration=2",
            "-filter_complex",
            "[0:v]split=4[p][q][s][w];[p]trim=end_frame=1[p1];\
             [q]trim=end_frame=1,scale=320:-2[q1];\
             [s]fps=1,scale=160:90,tile=2x1[s1];[w]fps=8,scale=320:-2[w1]",
            "-map",
            "[p1]",
            "-frames:v",
            "1",
            "-q:v",
            &q,
            "-update",
            "1",
            "poster-640.jpg",
            "-map",
            "[q1]",
            "-frames:v",
            "1",
            "-c:v",
            "libwebp",
            "poster-320.webp",
            "-map",
            "[s1]",
            "-frames:v",
            "1",
            "-update",
            "1",
            "sprite.jpg",
            "-map",
            "[w1]",
            "-c:v",
            "libwebp_anim",
            "-loop",
            "0",
            "preview.webp",
        ],
    );
    std::fs::write(
        dir.join("storyboard.vtt"),
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nsprite.jpg#xywh=0,0,160,90\n\n\
         00:00:01.000 --> 00:00:02.000\nsprite.jpg#xywh=160,0,160,90\n",
    )
    .unwrap();

    let mut files = vec![
        written(dir, "360p.mp4", FileRole::Rendition, Some("360p")),
        written(dir, "180p.mp4", FileRole::Rendition, Some("180p")),
        written(dir, "360p.webm", FileRole::Rendition, Some("360p-vp9")),
        written(dir, "poster-640.jpg", FileRole::Poster, None),
        written(dir, "poster-320.webp", FileRole::Poster, None),
        written(dir, "sprite.jpg", FileRole::Sprite, None),
        written(dir, "storyboard.vtt", FileRole::Storyboard, None),
        written(dir, "preview.webp", FileRole::Preview, None),
        written(dir, "hls/master.m3u8", FileRole::HlsMaster, None),
    ];
    for v in ["360p", "180p"] {
        files.push(written(
            dir,
            &format!("hls/{v}.m3u8"),
            FileRole::HlsPlaylist,
            Some(v),
        ));
        let mut segments: Vec<String> = std::fs::read_dir(dir.join("hls"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(&format!("{v}_")) && n.ends_with(".ts"))
            .collect();
        segments.sort();
        assert!(segments.len() >= 2, "{v}: {segments:?}");
        for s in segments {
            files.push(written(
                dir,
                &format!("hls/{s}"),
                FileRole::HlsSegment,
                Some(v),
            ));
        }
    }
    files
}

/// What the pipeline keeps in `outputs_json` after a transcode.
fn outputs_json(files: &[WrittenFile]) -> Json<Value> {
    let renditions: Vec<Value> = files
        .iter()
        .filter(|f| f.role == FileRole::Rendition)
        .map(|f| {
            let probe = ffprobe(&f.path);
            let v = stream(&probe, "video").unwrap();
            json!({"name": f.output, "path": f.path, "width": v["width"], "height": v["height"]})
        })
        .collect();
    let poster = &files
        .iter()
        .find(|f| f.role == FileRole::Poster)
        .unwrap()
        .path;
    Json(json!({"renditions": renditions, "poster": poster, "files": files, "boost": 0}))
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// A published variation made of `files`: the asset and its variation row as
/// arrival and QC leave them, in `publishing` and held by a lease nobody has
/// (so no worker runs it until `release`), with a progress report standing.
async fn seed_variation(app: &TestApp, id: &str, files: &[WrittenFile], master: &Path) {
    let db = app.db().await;
    let now = chrono::Utc::now().timestamp_millis();
    let runner = Runner::new(&reelay::media::MediaConfig::default());
    let probe = runner.ffprobe(master).await.unwrap();
    let report = reelay::policy::QcReport {
        verdict: reelay::policy::Verdict::Pass,
        output_quality: 80,
        ssim_floor: 0.9,
        vmaf_floor: None,
        ttl_remaining_secs: 3600,
        profile: "default".into(),
        rules: None,
        content: None,
        renditions: vec![],
        checks: vec![],
        loudness_normalization: None,
        vmaf_available: false,
        timings: Default::default(),
        destinations: vec![],
        corrections: vec![],
    };
    on_db!(db, p => sqlx::query(
        "INSERT INTO assets (id, campaign, profile, request_json, callback_url, ttl_secs, created_at, source)
         VALUES ($1, $2, 'default', $3, NULL, 3600, $4, 'upload')",
    )
    .bind(id)
    .bind(CAMPAIGN)
    .bind(Json(&request(2)["generation"]))
    .bind(now)
    .execute(p)
    .await
    .unwrap().rows_affected());
    let outputs = outputs_json(files);
    let progress = Json(
        json!({"stage": "transcoding", "percent": 42.5, "fps": 96.0, "speed": 4.0, "eta_secs": 1.2}),
    );
    on_db!(db, p => sqlx::query(
        "INSERT INTO variations (id, asset_id, idx, state, task_uuid, webhook_token_sha256, master_key,
             arrived_at, master_size, master_sha256, master_probe, outputs_json, qc_json,
             lease_until, next_run_at, created_at, updated_at, progress_json)
         VALUES ($1, $2, 0, 'publishing', $3, 'x', $4, $5, 1, $6, $7, $8, $9, $10, 0, $5, $5, $11)",
    )
    .bind(format!("{id}_v0"))
    .bind(id)
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(format!("masters/{CAMPAIGN}/{id}/v0/master.mp4"))
    .bind(now)
    .bind(sha256_file(master))
    .bind(Json(&probe))
    .bind(&outputs)
    .bind(Json(&report))
    .bind(now + 3_600_000)
    .bind(&progress)
    .execute(p)
    .await
    .unwrap().rows_affected());
}

/// Lets the workers have the row (as a lapsed lease would).
async fn release(app: &TestApp, id: &str) {
    on_db!(app.db().await, p => sqlx::query("UPDATE variations SET lease_until = 0 WHERE id = $1")
        .bind(format!("{id}_v0"))
        .execute(p)
        .await
        .unwrap().rows_affected());
}

async fn get(app: &TestApp, url: &str) -> reqwest::Response {
    app.http.get(url).send().await.unwrap()
}

async fn cdn_keys(objects: &ObjectStore, app: &TestApp, prefix: &str) -> Vec<String> {
    let bucket = &app.application().settings.storage.cdn_bucket;
    objects.list(bucket, prefix).await.unwrap()
}

/// Checks every file of the live set against the local file it came from,
/// the HLS set through ffprobe over the CDN, the storyboard's tiles and the
/// VAST document; returns the manifest.
async fn check_live_set(app: &TestApp, manifest_url: &str, files: &[WrittenFile]) -> Value {
    let res = get(app, manifest_url).await;
    assert_eq!(res.status(), 200);
    let m: Value = res.json().await.unwrap();

    // Every file: listed, served with its own type, immutable, same bytes.
    let listed = m["files"].as_array().unwrap();
    assert_eq!(listed.len(), files.len(), "{m:#}");
    for f in files {
        let entry = listed
            .iter()
            .find(|e| e["rel"] == f.rel.as_str())
            .unwrap_or_else(|| panic!("{} not in the manifest", f.rel));
        let url = entry["url"].as_str().unwrap();
        assert!(
            url.ends_with(&format!(
                "/{}/{}",
                m["content_hash"].as_str().unwrap(),
                f.rel
            )),
            "{url}: the path inside the set is kept"
        );
        let res = get(app, url).await;
        assert_eq!(res.status(), 200, "{url}");
        assert_eq!(
            res.headers()["content-type"],
            content_type_for(&f.rel),
            "{url}"
        );
        assert_eq!(res.headers()["cache-control"], IMMUTABLE, "{url}");
        let body = res.bytes().await.unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&body)),
            sha256_file(&f.path),
            "{url}"
        );
        assert_eq!(entry["sha256"], sha256_file(&f.path));
    }
    for (ext, ct) in [
        (".m3u8", "application/vnd.apple.mpegurl"),
        (".ts", "video/mp2t"),
        (".vtt", "text/vtt"),
        (".webp", "image/webp"),
        (".webm", "video/webm"),
    ] {
        assert!(
            listed
                .iter()
                .any(|e| e["rel"].as_str().unwrap().ends_with(ext) && e["content_type"] == ct),
            "{ext}"
        );
    }

    // A segment read in part: Range works on .ts (188-byte TS packets).
    let seg = listed
        .iter()
        .find(|e| e["rel"].as_str().unwrap().ends_with(".ts"))
        .unwrap();
    let res = app
        .http
        .get(seg["url"].as_str().unwrap())
        .header("Range", "bytes=188-375")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(res.headers()["content-type"], "video/mp2t");
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 188-375/{}", seg["size"]).as_str()
    );
    let part = res.bytes().await.unwrap();
    assert_eq!(part.len(), 188);
    assert_eq!(part[0], 0x47, "a TS packet starts at each 188 bytes");

    // Renditions: MP4s and the WebM with their container and codecs.
    let r = m["renditions"].as_array().unwrap();
    let names: Vec<&str> = r.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["360p", "180p", "360p-vp9"]);
    for (i, container) in [(0, "mp4"), (1, "mp4"), (2, "webm")] {
        assert_eq!(r[i]["container"], container);
        assert_eq!(r[i]["delivery"], "progressive");
    }
    let local = |rel: &str| files.iter().find(|f| f.rel == rel).unwrap().path.clone();
    let p = ffprobe(&local("360p.mp4"));
    let v = stream(&p, "video").unwrap();
    assert_eq!(
        r[0]["codecs"],
        format!(
            "avc1.{:02x}00{:02x},mp4a.40.2",
            match v["profile"].as_str().unwrap() {
                "Constrained Baseline" | "Baseline" => 0x42,
                "Main" => 0x4d,
                _ => 0x64,
            },
            v["level"].as_i64().unwrap()
        )
    );
    assert_eq!(r[2]["content_type"], "video/webm");
    assert_eq!(
        r[2]["codecs"], "vp09.00.21.08,opus",
        "640x360 at 24 fps is level 2.1"
    );
    assert_eq!(
        (r[2]["width"].as_u64(), r[2]["height"].as_u64()),
        (Some(640), Some(360))
    );

    // Posters, storyboard, preview: their real sizes.
    let posters: Vec<(u64, u64, &str)> = m["posters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["width"].as_u64().unwrap(),
                p["height"].as_u64().unwrap(),
                p["format"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(posters, [(640, 360, "jpeg"), (320, 180, "webp")]);
    assert!(m["poster"]["key"]
        .as_str()
        .unwrap()
        .ends_with("/poster-640.jpg"));
    assert_eq!(m["preview"]["format"], "webp");
    assert_eq!(
        (
            m["preview"]["width"].as_u64(),
            m["preview"]["height"].as_u64()
        ),
        (Some(320), Some(180)),
        "an animated WebP's size comes from its header"
    );
    assert_eq!(m["storyboard"]["sprite"]["width"], 320);
    // The WebVTT's tiles resolve, relative to the WebVTT's own URL.
    let vtt_url = m["storyboard"]["vtt"]["url"].as_str().unwrap();
    let vtt = get(app, vtt_url).await.text().await.unwrap();
    let base = url::Url::parse(vtt_url).unwrap();
    let mut tiles = 0;
    for line in vtt.lines().filter(|l| l.contains("#xywh=")) {
        let tile = base.join(line).unwrap();
        assert_eq!(tile.fragment().map(|f| f.starts_with("xywh=")), Some(true));
        let mut plain = tile.clone();
        plain.set_fragment(None);
        assert_eq!(plain.as_str(), m["storyboard"]["sprite"]["url"]);
        assert_eq!(get(app, plain.as_str()).await.status(), 200);
        tiles += 1;
    }
    assert_eq!(tiles, 2);

    // HLS: the master's variants, and the set plays through the CDN.
    let hls = &m["hls"];
    let variants = hls["variants"].as_array().unwrap();
    let dims: Vec<(&str, u64, u64, u64)> = variants
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap(),
                v["width"].as_u64().unwrap(),
                v["height"].as_u64().unwrap(),
                v["segments"].as_u64().unwrap(),
            )
        })
        .collect();
    let segs = |v: &str| {
        files
            .iter()
            .filter(|f| f.role == FileRole::HlsSegment && f.output.as_deref() == Some(v))
            .count() as u64
    };
    assert_eq!(
        dims,
        [
            ("360p", 640, 360, segs("360p")),
            ("180p", 320, 180, segs("180p"))
        ]
    );
    assert!(variants.iter().all(|v| v["bandwidth"].as_u64().unwrap() > 0
        && v["codecs"].as_str().unwrap().starts_with("avc1.")));
    let master_url = hls["master"]["url"].as_str().unwrap();
    // Not blocking: the CDN origin answering ffprobe runs on this runtime.
    let out = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
            "-rw_timeout",
            "20000000",
        ])
        .arg(master_url)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe of the HLS master over the CDN: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let played: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        played["format"]["duration"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 1.5,
        "{played:#}"
    );
    assert!(stream(&played, "video").is_some() && stream(&played, "audio").is_some());

    check_vast(app, &m).await;
    m
}

/// VAST parsed back: a progressive MediaFile per MP4 and WebM, the HLS master
/// as the streaming one, the Mezzanine on the largest MP4, and every URL a
/// published file.
async fn check_vast(app: &TestApp, m: &Value) {
    let xml = get(app, m["vast_url"].as_str().unwrap())
        .await
        .text()
        .await
        .unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let nodes = |name: &str| -> Vec<roxmltree::Node> {
        doc.descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == name)
            .collect()
    };
    let urls: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["url"].as_str().unwrap())
        .collect();
    let media = nodes("MediaFile");
    let kinds: Vec<(&str, &str)> = media
        .iter()
        .map(|n| {
            (
                n.attribute("delivery").unwrap(),
                n.attribute("type").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("progressive", "video/mp4"),
            ("progressive", "video/mp4"),
            ("progressive", "video/webm"),
            ("streaming", "application/x-mpegURL"),
        ]
    );
    for n in media.iter().chain(nodes("Mezzanine").iter()) {
        let url = n.text().unwrap().trim();
        assert!(urls.contains(&url), "{url} is not a file of the set");
        assert_eq!(get(app, url).await.status(), 200, "{url}");
    }
    assert_eq!(
        media[2].attribute("codec"),
        m["renditions"][2]["codecs"].as_str()
    );
    assert_eq!(media[3].text().unwrap().trim(), m["hls"]["master"]["url"]);
    assert_eq!(media[3].attribute("width"), Some("640"));
    let max_bw = m["hls"]["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["bandwidth"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(
        media[3].attribute("maxBitrate"),
        Some(max_bw.div_ceil(1000).to_string().as_str())
    );
    let mezz = nodes("Mezzanine");
    assert_eq!(mezz.len(), 1);
    assert_eq!(mezz[0].text().unwrap().trim(), m["renditions"][0]["url"]);
    assert_eq!(mezz[0].attribute("type"), Some("video/mp4"));
}

#[tokio::test]
async fn a_full_delivery_set_is_published_served_swept_and_expired_whole() {
    let app = spawn_app_with(|s| {
        s.cdn.grace_secs = 0;
        s.cdn.manifest_max_age_secs = 0;
        s.policy.ttl_sweep_interval_secs = 1;
    })
    .await;
    let work = tempfile::tempdir().unwrap();
    let set_a: PathBuf = work.path().join("a");
    let files_a = make_set(&set_a, 3);
    let master = set_a.join("360p.mp4");
    let id = format!("ast_{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
    seed_variation(&app, &id, &files_a, &master).await;

    // While the step "runs", the API shows its progress as reported.
    let a = get_asset(&app.http, &app.url, &id).await;
    let v = &a["variations"][0];
    assert_eq!(v["state"], "publishing");
    assert_eq!(
        v["progress"],
        json!({"stage": "transcoding", "percent": 42.5, "fps": 96.0, "speed": 4.0, "eta_secs": 1.2})
    );

    // 1. Published: every file, every section.
    release(&app, &id).await;
    let a = wait_for(&app.http, &app.url, &id, Duration::from_secs(60), |a| {
        a["variations"][0]["state"] != "publishing"
    })
    .await;
    let v = &a["variations"][0];
    assert_eq!(v["state"], "published", "{v:#}");
    assert!(
        v.get("progress").is_none(),
        "progress goes with the state: {v:#}"
    );
    let p = &v["published"];
    assert_eq!(p["file_count"], files_a.len());
    assert_eq!(p["posters"].as_array().unwrap().len(), 2);
    assert!(p["hls"]["master_url"]
        .as_str()
        .unwrap()
        .ends_with("/hls/master.m3u8"));
    assert!(p["storyboard"]["vtt_url"]
        .as_str()
        .unwrap()
        .ends_with("/storyboard.vtt"));
    assert!(p["preview_url"]
        .as_str()
        .unwrap()
        .ends_with("/preview.webp"));
    assert_eq!(p["renditions"][2]["container"], "webm");
    let manifest_url = p["manifest_url"].as_str().unwrap().to_string();
    let old = check_live_set(&app, &manifest_url, &files_a).await;
    let old_hash = old["content_hash"].as_str().unwrap().to_string();
    let base = old["manifest_url"]
        .as_str()
        .unwrap()
        .split_once("/cdn/")
        .unwrap()
        .1
        .trim_end_matches("manifest.json")
        .to_string();
    let objects = app.objects();
    let old_prefix = format!("{base}{old_hash}/");
    let old_keys = cdn_keys(&objects, &app, &old_prefix).await;
    assert_eq!(
        old_keys.len(),
        files_a.len() + 1,
        "the files and qc.json: {old_keys:?}"
    );

    // 2. New bytes (one poster re-encoded): published beside, pointers flip,
    //    and the replaced set goes whole once its (zero) grace is over.
    let set_b = work.path().join("b");
    let files_b = make_set(&set_b, 9);
    let outputs = outputs_json(&files_b);
    on_db!(app.db().await, p => sqlx::query(
        "UPDATE variations SET state = 'publishing', outputs_json = $1, lease_until = 0, next_run_at = 0
         WHERE id = $2",
    )
    .bind(&outputs)
    .bind(format!("{id}_v0"))
    .execute(p)
    .await
    .unwrap().rows_affected());
    let a = wait_for(&app.http, &app.url, &id, Duration::from_secs(60), |a| {
        a["variations"][0]["state"] == "published"
            && a["variations"][0]["published"]["content_hash"] != old_hash.as_str()
    })
    .await;
    let new_hash = a["variations"][0]["published"]["content_hash"]
        .as_str()
        .unwrap()
        .to_string();
    let start = Instant::now();
    while !cdn_keys(&objects, &app, &old_prefix).await.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "replaced set not swept: {:?}",
            cdn_keys(&objects, &app, &old_prefix).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for k in &old_keys {
        let res = get(&app, &format!("{}/cdn/{k}", app.url)).await;
        assert_eq!(res.status(), 404, "{k}");
    }
    let new = check_live_set(&app, &manifest_url, &files_b).await;
    assert_eq!(new["content_hash"], new_hash.as_str());

    // 3. The ttl runs out: pointers, the live set and all its segments go.
    on_db!(app.db().await, p => sqlx::query("UPDATE variations SET arrived_at = $1 WHERE id = $2")
        .bind(chrono::Utc::now().timestamp_millis() - 3_601_000)
        .bind(format!("{id}_v0"))
        .execute(p)
        .await
        .unwrap().rows_affected());
    let a = wait_for(&app.http, &app.url, &id, Duration::from_secs(30), |a| {
        a["status"] == "expired"
    })
    .await;
    assert_eq!(a["variations"][0]["reason"]["code"], "ttlExpired");
    let left = cdn_keys(&objects, &app, &base).await;
    assert!(left.is_empty(), "left behind after expiry: {left:?}");
    assert_eq!(get(&app, &manifest_url).await.status(), 404);
    app.stop().await;
}
