//! What ad servers consume: the content-addressed set, `vast.xml` checked
//! attribute by attribute against the files themselves, and a reprocess
//! after a profile change that publishes a new set, flips the pointers only
//! at the end, keeps the old set for the grace period and deletes it after,
//! across restarts.

use crate::helpers::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const CAMPAIGN: &str = "vast";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

async fn get(app: &TestApp, key: &str) -> reqwest::Response {
    app.http
        .get(format!("{}/cdn/{key}", app.url))
        .send()
        .await
        .unwrap()
}

/// `key` of a CDN URL (everything after `/cdn/`).
fn key_of(url: &str) -> String {
    url.split_once("/cdn/").expect("a /cdn/ URL").1.to_string()
}

fn secs(hms: &str) -> f64 {
    let parts: Vec<f64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}

fn probe_f64(v: &Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

/// RFC 6381 string for what ffprobe sees in an MP4 (H.264 + optional AAC-LC).
fn codec_string(probe: &Value) -> String {
    let v = stream(probe, "video").expect("video");
    assert_eq!(v["codec_name"], "h264");
    let profile = match v["profile"].as_str().unwrap() {
        "High" => 0x64,
        "Main" => 0x4d,
        "Constrained Baseline" | "Baseline" => 0x42,
        p => panic!("unexpected profile {p}"),
    };
    let mut s = format!("avc1.{profile:02x}00{:02x}", v["level"].as_i64().unwrap());
    if let Some(a) = stream(probe, "audio") {
        assert_eq!(a["codec_name"], "aac");
        assert_eq!(a["profile"], "LC");
        s.push_str(",mp4a.40.2");
    }
    s
}

/// Fetches vast.xml, parses it, and checks every MediaFile and the Mezzanine
/// against the bytes and ffprobe of the file it names. Returns the
/// UniversalAdId.
async fn check_vast(app: &TestApp, manifest: &Value, master: &Path, dir: &Path) -> String {
    let res = get(app, &key_of(manifest["vast_url"].as_str().unwrap())).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/xml");
    let cc = res.headers()["cache-control"].to_str().unwrap().to_string();
    let max_age: u64 = cc
        .strip_prefix("public, max-age=")
        .unwrap_or_else(|| panic!("{cc}"))
        .parse()
        .unwrap();
    assert!(max_age <= 60, "{cc}");
    let xml = res.text().await.unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("vast.xml is well-formed XML");
    let named = |name: &str| -> Vec<roxmltree::Node> {
        doc.descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == name)
            .collect()
    };
    let one = |name: &str| -> roxmltree::Node {
        let all = named(name);
        assert_eq!(all.len(), 1, "exactly one <{name}> in {xml}");
        all[0]
    };
    let text = |n: roxmltree::Node| n.text().unwrap_or("").trim().to_string();

    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "VAST");
    assert!(root.attribute("version").unwrap().starts_with('4'));
    let ad = one("Ad");
    assert_eq!(ad.parent().unwrap(), root);
    let inline = one("InLine");
    assert_eq!(inline.parent().unwrap(), ad);
    // Required by VAST 4.x in every InLine.
    assert_eq!(text(one("AdSystem")), "reelay");
    assert!(!text(one("AdTitle")).is_empty());
    assert!(!text(one("AdServingId")).is_empty());
    assert_eq!(text(one("Impression")), "about:blank");
    let uaid = one("UniversalAdId");
    assert!(uaid.attribute("idRegistry").is_some());
    let universal_ad_id = text(uaid);
    assert!(
        universal_ad_id.contains(manifest["content_hash"].as_str().unwrap()),
        "new bytes must give a new UniversalAdId: {universal_ad_id}"
    );
    assert_eq!(universal_ad_id, manifest["universal_ad_id"]);
    // Duration is the master's.
    let master_probe = ffprobe(master);
    let master_secs = probe_f64(&master_probe["format"]["duration"]);
    let d = text(one("Duration"));
    assert!(
        d.len() == 12 && d.as_bytes()[8] == b'.',
        "HH:MM:SS.mmm: {d}"
    );
    assert!(
        (secs(&d) - master_secs).abs() < 0.002,
        "{d} vs {master_secs}"
    );

    // Every MediaFile and the Mezzanine name a file of the published set.
    let published: Vec<&str> = manifest["files"]
        .as_array()
        .expect("the manifest lists its files")
        .iter()
        .map(|f| f["url"].as_str().unwrap())
        .collect();
    for n in named("MediaFile").iter().chain(named("Mezzanine").iter()) {
        let url = text(*n);
        assert!(
            published.contains(&url.as_str()),
            "{url} is not in {published:?}"
        );
    }
    // A streaming MediaFile is the HLS master playlist.
    let media: Vec<roxmltree::Node> = named("MediaFile")
        .into_iter()
        .filter(|m| {
            if m.attribute("delivery") != Some("streaming") {
                return true;
            }
            assert_eq!(m.attribute("type"), Some("application/x-mpegURL"));
            assert_eq!(text(*m), manifest["hls"]["master"]["url"]);
            false
        })
        .collect();
    // Every other MediaFile is a progressive MP4 whose attributes are its own.
    let renditions = manifest["renditions"].as_array().unwrap();
    assert_eq!(media.len(), renditions.len());
    let mut largest: Option<(u64, String)> = None;
    for mf in &media {
        let url = text(*mf);
        let res = get(app, &key_of(&url)).await;
        assert_eq!(res.status(), 200, "{url}");
        assert_eq!(res.headers()["cache-control"], IMMUTABLE, "{url}");
        let bytes = res.bytes().await.unwrap();
        let path = dir.join(url.rsplit('/').next().unwrap());
        std::fs::write(&path, &bytes).unwrap();
        let probe = ffprobe(&path);
        let video = stream(&probe, "video").unwrap();
        let attr = |a: &str| {
            mf.attribute(a)
                .unwrap_or_else(|| panic!("MediaFile without {a}: {url}"))
        };
        assert_eq!(attr("delivery"), "progressive");
        assert_eq!(attr("type"), "video/mp4");
        assert_eq!(attr("width"), video["width"].to_string(), "{url}");
        assert_eq!(attr("height"), video["height"].to_string(), "{url}");
        assert_eq!(attr("fileSize"), bytes.len().to_string(), "{url}");
        assert_eq!(attr("codec"), codec_string(&probe), "{url}");
        let duration = probe_f64(&probe["format"]["duration"]);
        let kbps = bytes.len() as f64 * 8.0 / duration / 1000.0;
        let stated: f64 = attr("bitrate").parse().unwrap();
        assert!(
            (stated - kbps).abs() <= 1.0,
            "{url}: bitrate {stated} vs {kbps:.1}"
        );
        let area = video["width"].as_u64().unwrap() * video["height"].as_u64().unwrap();
        if largest.as_ref().is_none_or(|(a, _)| area > *a) {
            largest = Some((area, url.clone()));
        }
    }
    // The mezzanine is the highest-quality file, described like it.
    let mezz = one("Mezzanine");
    assert_eq!(mezz.parent().unwrap().tag_name().name(), "MediaFiles");
    let mezz_url = text(mezz);
    assert_eq!(mezz_url, largest.unwrap().1);
    let twin = media.iter().find(|m| text(**m) == mezz_url).unwrap();
    for a in ["delivery", "type", "width", "height", "codec", "fileSize"] {
        assert_eq!(mezz.attribute(a), twin.attribute(a), "Mezzanine {a}");
    }
    universal_ad_id
}

async fn published_variation(app: &TestApp, id: &str) -> Value {
    let a = get_asset(&app.http, &app.url, id).await;
    a["variations"][0].clone()
}

#[tokio::test]
async fn vast_describes_the_files_and_a_reprocess_flips_the_pointers_only_at_the_end() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();

    // One x264 thread: multi-threaded x264 under a VBV cap is not
    // bit-exact from run to run, and "the same bytes again" needs that.
    let threads = |s: &mut reelay::config::Settings| s.media.threads = 1;

    // 1. A master uploaded by hand (1280x720, 2 s, with sound) is published.
    let app = spawn_app_in(data.path(), threads).await;
    let master = tiny_clip(1280, 720, 2, true, 7).await;
    let master_path = work.path().join("master.mp4");
    std::fs::write(&master_path, &master).unwrap();
    app.put_master(
        &format!("masters/{CAMPAIGN}/hero spot.mp4"),
        master,
        &[("reelay-profile", "default")],
    )
    .await;
    let assets = wait_for_campaign(&app, CAMPAIGN, Duration::from_secs(120), |a| {
        a.len() == 1 && a[0]["status"] != "processing"
    })
    .await;
    assert_eq!(assets[0]["status"], "published", "{assets:#?}");
    assert_eq!(assets[0]["source"], "upload");
    let id = assets[0]["id"].as_str().unwrap().to_string();
    let v = published_variation(&app, &id).await;
    // The probe became the request.
    let a = get_asset(&app.http, &app.url, &id).await;
    assert_eq!(a["generation"]["width"], 1280);
    assert_eq!(a["generation"]["height"], 720);
    assert_eq!(
        a["generation"]["providerSettings"]["klingai"]["sound"],
        true
    );

    let manifest_key = key_of(v["published"]["manifest_url"].as_str().unwrap());
    let res = get(&app, &manifest_key).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let old: Value = res.json().await.unwrap();
    let old_hash = old["content_hash"].as_str().unwrap().to_string();
    assert_eq!(
        old["renditions"].as_array().unwrap().len(),
        2,
        "720p and 480p"
    );
    for f in [&old["poster"], &old["qc_report"]] {
        let res = get(&app, f["key"].as_str().unwrap()).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], IMMUTABLE);
    }
    let old_uaid = check_vast(&app, &old, &master_path, work.path()).await;
    let old_files: Vec<String> = old["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    app.stop().await;

    // 2. The profile's settings change to something QC refuses (x264's
    //    ultrafast preset gives Constrained Baseline, not High): the reprocess
    //    ends rejected and the old set stays live, pointers untouched.
    let app = spawn_app_in(data.path(), |s| {
        threads(s);
        s.media.x264_preset = "ultrafast".into();
    })
    .await;
    let url = format!("{}/v1/assets/{id}/reprocess", app.url);
    let res = app.http.post(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(res.status(), 401);
    for (body, field) in [
        (json!({"profile": "nope"}), "profile"),
        (json!({"profile": "default", "extra": 1}), "extra"),
    ] {
        let res = app
            .http
            .post(&url)
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{body}");
        let e: Value = res.json().await.unwrap();
        assert_eq!(e["error"]["fields"][0]["path"], field);
    }
    let res = app
        .http
        .post(format!("{}/v1/assets/ast_nope/reprocess", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app.http.post(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let a = wait_for(&app.http, &app.url, &id, Duration::from_secs(120), |a| {
        a["status"] != "processing" && entered(&a["variations"][0], "checking") == 2
    })
    .await;
    let v = &a["variations"][0];
    assert_eq!(v["state"], "rejected", "{v:#}");
    assert_eq!(v["reason"]["code"], "qcFailed");
    assert_eq!(
        v["published"]["content_hash"],
        old_hash.as_str(),
        "still the live set"
    );
    let still: Value = get(&app, &manifest_key).await.json().await.unwrap();
    assert_eq!(still["content_hash"], old_hash.as_str());
    assert_eq!(
        still["published_at"], old["published_at"],
        "pointers untouched"
    );
    app.stop().await;

    // 3. A change QC accepts (another preset, other bytes): reprocess again.
    let app = spawn_app_in(data.path(), |s| {
        threads(s);
        s.media.x264_preset = "faster".into();
    })
    .await;
    let url = format!("{}/v1/assets/{id}/reprocess", app.url);
    let res = app
        .http
        .post(&url)
        .bearer_auth(KEY)
        .json(&json!({"profile": "default"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["reprocessing"].as_array().unwrap().len(), 1);
    let published_before = entered(&body["variations"][0], "published");

    // Until the publish step flips them, the pointers name the old set. Read
    // the manifest first and the state after: a new manifest must never be
    // seen before the variation reached publishing.
    let start = Instant::now();
    let mut saw_old_while_working = false;
    let new = loop {
        let m: Value = get(&app, &manifest_key).await.json().await.unwrap();
        let v = published_variation(&app, &id).await;
        let state = v["state"].as_str().unwrap().to_string();
        if m["content_hash"] != old_hash.as_str() {
            assert!(
                matches!(state.as_str(), "publishing" | "published"),
                "pointers flipped while the variation was {state}"
            );
        } else if matches!(state.as_str(), "arrived" | "transcoding" | "checking") {
            saw_old_while_working = true;
        }
        if state == "published" && entered(&v, "published") == published_before + 1 {
            // `m` was read before the state: the flip may have happened in
            // between, so the live pointers are read again now.
            break get(&app, &manifest_key)
                .await
                .json::<Value>()
                .await
                .unwrap();
        }
        assert!(!matches!(state.as_str(), "rejected" | "failed"), "{v:#}");
        assert!(start.elapsed() < Duration::from_secs(120), "{v:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        saw_old_while_working,
        "the old pointers were live during the rework"
    );
    let new_hash = new["content_hash"].as_str().unwrap().to_string();
    assert_ne!(new_hash, old_hash, "another preset gives other bytes");
    let new_uaid = check_vast(&app, &new, &master_path, work.path()).await;
    assert_ne!(new_uaid, old_uaid);
    let v = published_variation(&app, &id).await;
    let notes = history_notes(&v);
    assert!(
        notes.iter().any(|n| n.contains("reprocess requested")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains(&format!("flipped from {old_hash}"))),
        "{notes:?}"
    );
    // The old set stays for the grace period (an hour by default).
    for k in &old_files {
        assert_eq!(get(&app, k).await.status(), 200, "{k} kept during grace");
    }
    // Reprocessing into the same bytes publishes nothing new.
    let res = app.http.post(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let v = wait_for(&app.http, &app.url, &id, Duration::from_secs(120), |a| {
        entered(&a["variations"][0], "published") == published_before + 2
    })
    .await["variations"][0]
        .clone();
    assert_eq!(v["state"], "published");
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["note"], "already published (same bytes)");
    let again: Value = get(&app, &manifest_key).await.json().await.unwrap();
    assert_eq!(
        again["published_at"], new["published_at"],
        "the pointers were not rewritten"
    );
    app.stop().await;

    // 4. After a restart with no grace left, the sweeper deletes the old set
    //    (its record survived the restart) and leaves the live one alone.
    let app = spawn_app_in(data.path(), |s| {
        s.cdn.grace_secs = 0;
        s.cdn.manifest_max_age_secs = 0;
    })
    .await;
    let start = Instant::now();
    loop {
        let mut gone = 0;
        for k in &old_files {
            if get(&app, k).await.status() == 404 {
                gone += 1;
            }
        }
        if gone == old_files.len() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "old set not swept"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let live: Value = get(&app, &manifest_key).await.json().await.unwrap();
    assert_eq!(live["content_hash"], new_hash.as_str());
    for r in live["renditions"].as_array().unwrap() {
        assert_eq!(get(&app, r["key"].as_str().unwrap()).await.status(), 200);
    }
    assert_eq!(
        get(&app, &key_of(live["vast_url"].as_str().unwrap()))
            .await
            .status(),
        200
    );
    app.stop().await;
}
