//! Every VAST pointer a published set makes, read by the parser web players
//! use (`@dailymotion/vast-client`'s `VASTParser`, run with node by
//! `tests/vast/parse.mjs`): no parser complaint, every MediaFile answers
//! from the CDN with its type and size, the MediaFiles are the manifest's
//! (or the destination's) files, and every tracking URL is the request's
//! verbatim. `scripts/test.sh` `npm ci`s `tests/vast/`.

use crate::helpers::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn vast_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vast")
}

/// node and the pinned parser are there, or the test says how to get them.
fn require_parser() {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok();
    let lib = vast_dir()
        .join("node_modules/@dailymotion/vast-client/package.json")
        .exists();
    assert!(
        node && lib,
        "the VAST parser test needs node and tests/vast/node_modules (npm ci): run scripts/test.sh, which installs them"
    );
}

/// What the parser made of `xml`: `Ok(parsed)` when it took the document,
/// `Err(answer)` (with its `fatal` message) when it refused it.
pub async fn parse_vast(xml: &str) -> Result<Value, Value> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vast.xml");
    std::fs::write(&file, xml).unwrap();
    let out = tokio::process::Command::new("node")
        .arg(vast_dir().join("parse.mjs"))
        .arg(&file)
        .output()
        .await
        .expect("node runs");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "parse.mjs printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    match out.status.code() {
        Some(0) => Ok(answer),
        Some(2) => Err(answer),
        c => panic!("parse.mjs exited {c:?}: {answer}"),
    }
}

fn every_field() -> Value {
    json!({
        "adTitle": "Spring sale :15",
        "advertiser": "Brand & Co",
        "clickThrough": "https://brand.example/land?cb=[CACHEBUSTING]&u=<x>",
        "clickTracking": ["https://t.example/click?id=1", "https://t2.example/c?ts=[TIMESTAMP]"],
        "impression": ["https://t.example/imp?ts=[TIMESTAMP]", "https://t2.example/i?x=]]>"],
        "tracking": {
            "start": ["https://t.example/start?cb=[CACHEBUSTING]"],
            "firstQuartile": ["https://t.example/q1"],
            "midpoint": ["https://t.example/mid"],
            "thirdQuartile": ["https://t.example/q3"],
            "complete": ["https://t.example/done", "https://t2.example/done"],
            "mute": ["https://t.example/mute"],
            "pause": ["https://t.example/pause"],
            "skip": ["https://t.example/skip"]
        },
        "error": ["https://t.example/err?code=[ERRORCODE]"],
        "adVerifications": [{
            "vendor": "verifier.example-omid",
            "javascriptResource": "https://v.example/omid.js",
            "verificationParameters": "{\"k\":1}"
        }]
    })
}

/// A rendition or HLS variant `name` is among `files` (by output name, or
/// by path whose stem is the output), as a destination's verdict lists them.
fn accepts(files: &[String], name: &str) -> bool {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    files.iter().any(|f| f == name || f == stem)
}

/// The MediaFiles a pointer must list, as (id, url): the manifest's
/// renditions (those `files` accepts, when it is a destination's), then the
/// HLS master when every variant is accepted.
fn expected_media(manifest: &Value, files: Option<&[String]>) -> Vec<(String, String)> {
    let ok = |name: &str| files.is_none_or(|f| accepts(f, name));
    let mut want: Vec<(String, String)> = manifest["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| ok(r["name"].as_str().unwrap()))
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["url"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    if let Some(h) = manifest.get("hls") {
        let variants = h["variants"].as_array().unwrap();
        if !variants.is_empty() && variants.iter().all(|v| ok(v["name"].as_str().unwrap())) {
            want.push(("hls".into(), h["master"]["url"].as_str().unwrap().into()));
        }
    }
    want
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

const HLS_TYPES: [&str; 2] = ["application/x-mpegurl", "application/vnd.apple.mpegurl"];

/// Checks one parsed pointer against the request's fields and the manifest.
async fn check_pointer(
    app: &TestApp,
    what: &str,
    parsed: &Value,
    manifest: &Value,
    files: Option<&[String]>,
) {
    let fields = every_field();
    assert_eq!(parsed["problems"], json!([]), "{what}: {parsed:#}");
    assert_eq!(parsed["version"], "4.2", "{what}");
    let ads = parsed["ads"].as_array().unwrap();
    assert_eq!(ads.len(), 1, "{what}: {parsed:#}");
    let ad = &ads[0];
    assert_eq!(ad["adType"], "video");
    assert_eq!(ad["system"]["value"], "reelay");
    assert_eq!(ad["title"], fields["adTitle"], "{what}");
    assert_eq!(ad["advertiser"], fields["advertiser"], "{what}");
    // reelay's own impression first (about:blank: nothing to track), then
    // the request's, byte for byte.
    let mut impressions = vec!["about:blank".to_string()];
    impressions.extend(strings(&fields["impression"]));
    assert_eq!(strings(&ad["impression"]), impressions, "{what}");
    assert_eq!(strings(&ad["error"]), strings(&fields["error"]), "{what}");
    let ver = &ad["adVerifications"];
    assert_eq!(ver.as_array().unwrap().len(), 1, "{what}: {ver}");
    let want = &fields["adVerifications"][0];
    assert_eq!(ver[0]["vendor"], want["vendor"]);
    assert_eq!(ver[0]["resource"], want["javascriptResource"]);
    assert_eq!(ver[0]["apiFramework"], "omid");
    assert_eq!(ver[0]["parameters"], want["verificationParameters"]);

    let creatives = ad["creatives"].as_array().unwrap();
    assert_eq!(creatives.len(), 1, "{what}");
    let c = &creatives[0];
    assert_eq!(c["type"], "linear");
    assert_eq!(
        c["universalAdIds"],
        json!([{"idRegistry": "unknown", "value": manifest["universal_ad_id"]}]),
        "{what}"
    );
    let secs = manifest["duration_secs"].as_f64().unwrap();
    assert!(
        (c["duration"].as_f64().unwrap() - secs).abs() < 0.001,
        "{what}: {} against {secs}",
        c["duration"]
    );
    assert_eq!(c["clickThrough"], fields["clickThrough"], "{what}");
    assert_eq!(
        strings(&c["clickTracking"]),
        strings(&fields["clickTracking"]),
        "{what}"
    );
    let tracking: BTreeMap<String, Vec<String>> =
        serde_json::from_value(c["tracking"].clone()).unwrap();
    let want: BTreeMap<String, Vec<String>> =
        serde_json::from_value(fields["tracking"].clone()).unwrap();
    assert_eq!(tracking, want, "{what}");

    // The MediaFiles are the manifest's files, each as the manifest
    // describes it, and each answers from the CDN as VAST says.
    let media = c["mediaFiles"].as_array().unwrap();
    let listed: Vec<(String, String)> = media
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["fileURL"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(listed, expected_media(manifest, files), "{what}");
    for m in media {
        let url = m["fileURL"].as_str().unwrap();
        let res = app.http.get(url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{what}: {url}");
        let ct = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let body = res.bytes().await.unwrap();
        let mime = m["mimeType"].as_str().unwrap().to_ascii_lowercase();
        if m["delivery"] == "streaming" {
            assert!(HLS_TYPES.contains(&mime.as_str()), "{what}: {m}");
            assert!(HLS_TYPES.contains(&ct.as_str()), "{what}: {url} is {ct}");
            assert!(body.starts_with(b"#EXTM3U"), "{what}: {url}");
            assert_eq!(
                body.len() as u64,
                manifest["hls"]["master"]["size"].as_u64().unwrap()
            );
            continue;
        }
        assert_eq!(m["delivery"], "progressive", "{what}: {m}");
        assert_eq!(ct, mime, "{what}: {url}");
        assert_eq!(body.len() as u64, m["fileSize"].as_u64().unwrap(), "{url}");
        let r = manifest["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["url"] == url)
            .unwrap();
        assert_eq!(m["mimeType"], r["content_type"], "{what}: {m}");
        assert_eq!(m["width"], r["width"], "{what}: {m}");
        assert_eq!(m["height"], r["height"], "{what}: {m}");
        assert_eq!(m["bitrate"], r["bitrate_kbps"], "{what}: {m}");
        assert_eq!(m["fileSize"], r["size"], "{what}: {m}");
        assert_eq!(m["codec"], r["codecs"], "{what}: {m}");
    }
    // The mezzanine is one of the listed progressive files and answers too.
    let z = &c["mezzanine"];
    let zurl = z["fileURL"].as_str().expect("a Mezzanine");
    assert!(listed.iter().any(|(_, u)| u == zurl), "{what}: {z}");
    assert_eq!(app.http.get(zurl).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn every_vast_pointer_reads_cleanly_in_a_player_parser() {
    require_parser();
    // Two buyers (tables in the test's settings) that both pass the web
    // profile's set, each with only its own files.
    let app = spawn_app_with(|s| {
        s.destinations.insert(
            "webm-buyer".into(),
            reelay::destinations::Destination {
                description: "VP9 WebM only".into(),
                source: "https://buyer.example/webm".into(),
                containers: vec!["webm".into()],
                video_codecs: vec!["vp9".into()],
                ..Default::default()
            },
        );
        s.destinations.insert(
            "mp4-buyer".into(),
            reelay::destinations::Destination {
                description: "progressive H.264 MP4 only".into(),
                source: "https://buyer.example/spec".into(),
                containers: vec!["mp4".into()],
                video_codecs: vec!["h264".into()],
                ..Default::default()
            },
        );
    })
    .await;
    let mut body = request(3);
    body["profile"] = json!("web");
    body["destinations"] = json!(["mp4-buyer", "webm-buyer"]);
    body["vast"] = every_field();
    let id = create(&app, &body).await;
    let a = wait_for(&app.http, &app.url, &id, Duration::from_secs(300), |a| {
        a["status"] != "processing"
    })
    .await;
    assert_eq!(a["status"], "published", "{a:#}");
    assert_eq!(a["destinations_ready"], json!(["mp4-buyer", "webm-buyer"]));
    let manifest: Value = app
        .http
        .get(
            a["variations"][0]["published"]["manifest_url"]
                .as_str()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Every pointer the manifest names: the set's own and each passing
    // destination's.
    let mut pointers: Vec<(String, String, Option<Vec<String>>)> = vec![(
        "vast.xml".into(),
        manifest["vast_url"].as_str().unwrap().into(),
        None,
    )];
    for d in manifest["destinations"].as_array().unwrap() {
        if let Some(url) = d["vast_url"].as_str() {
            pointers.push((
                format!("vast/{}.xml", d["name"].as_str().unwrap()),
                url.into(),
                Some(strings(&d["files"])),
            ));
        }
    }
    assert_eq!(pointers.len(), 3, "{manifest:#}");
    let mut first = String::new();
    for (what, url, files) in &pointers {
        let res = app.http.get(url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{what}");
        let xml = res.text().await.unwrap();
        let parsed = parse_vast(&xml)
            .await
            .unwrap_or_else(|e| panic!("{what} refused by the parser: {e:#}\n{xml}"));
        check_pointer(&app, what, &parsed, &manifest, files.as_deref()).await;
        if first.is_empty() {
            first = xml;
        }
    }

    // Negative controls: the parser does catch a broken document.
    let cut = &first[..first.len() / 2];
    let refused = parse_vast(cut)
        .await
        .expect_err("a truncated VAST is refused");
    assert!(
        refused["fatal"].as_str().unwrap().starts_with("XML:"),
        "{refused}"
    );
    let not_vast = parse_vast("<?xml version=\"1.0\"?><html/>").await;
    assert!(not_vast.unwrap_err()["fatal"]
        .as_str()
        .unwrap()
        .contains("Invalid VAST"));
    let no_system = without_element(&first, "<AdSystem", "</AdSystem>");
    let parsed = parse_vast(&no_system).await.expect("still a VAST");
    let problems = parsed["problems"].to_string();
    assert!(problems.contains("AdSystem"), "{problems}");
    app.stop().await;
}

/// `s` without its first element that starts with `open` and ends with `close`.
fn without_element(s: &str, open: &str, close: &str) -> String {
    let a = s.find(open).unwrap();
    let b = s[a..].find(close).unwrap() + a + close.len();
    format!("{}{}", &s[..a], &s[b..])
}
