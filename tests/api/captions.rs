//! Captions supplied with the request: a WebVTT that breaks a rule is a
//! 400 naming the track and the rule; a published set carries each track
//! as `captions/{lang}.vtt`, lists it in the HLS master playlist as a
//! SUBTITLES group (with a subtitle media playlist per language) and in
//! VAST as a `ClosedCaptionFile` (read by the player-side VAST parser).

use crate::helpers::*;
use reelay::media::hls::{attributes, MasterPlaylist, MediaPlaylist};
use serde_json::{json, Value};
use std::time::Duration;

const EN: &str = "WEBVTT\n\n1\n00:00.000 --> 00:01.200\nA red car\n\n2\n00:01.200 --> 00:02.900 line:85%\non a mountain road\n";
const FR: &str = "WEBVTT - français\n\n00:00:00.500 --> 00:00:02.500\nUne voiture rouge\n";

fn field_errors(v: &Value) -> Vec<(String, String)> {
    v["error"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no fields in {v}"))
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_bad_webvtt_is_a_400_naming_the_track_and_the_rule() {
    let app = spawn_app().await;
    let cases = [
        ("00:00.000 --> 00:01.000\nno header", "webvtt_header"),
        ("WEBVTT\n\n00:00.000 --> 00:0x.000\nbad time", "cue_timing"),
        (
            "WEBVTT\n\n00:01.000 --> 00:02.000\nb\n\n00:00.000 --> 00:01.000\na",
            "cue_order",
        ),
        // request(3): three seconds, so a cue ending at 4 s is outside.
        (
            "WEBVTT\n\n00:02.000 --> 00:04.000\nlate",
            "cue_inside_duration",
        ),
    ];
    for (text, rule) in cases {
        let mut body = request(3);
        body["captions"] =
            json!([{"language": "en", "text": EN}, {"language": "de", "text": text}]);
        let res = app.post_asset(&body).await;
        assert_eq!(res.status(), 400, "{rule}");
        let f = field_errors(&res.json().await.unwrap());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, "captions[1].text");
        assert!(f[0].1.starts_with(rule), "{rule}: {f:?}");
    }
    let mut body = request(3);
    body["captions"] =
        json!([{"language": "en", "text": EN}, {"language": "en", "label": "", "text": EN}]);
    let f = field_errors(&app.post_asset(&body).await.json().await.unwrap());
    let paths: Vec<&str> = f.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        ["captions[1].language", "captions[1].label"],
        "{f:?}"
    );
    assert!(app.campaign("test").await.is_empty(), "nothing created");
    app.stop().await;
}

/// A WebVTT host on loopback (which the test settings' outbound guard
/// allows): `/fr.vtt`, `/bad.vtt` (no header), `/big.vtt` (over 256 KiB),
/// `/moved` (a redirect, never followed); anything else 404.
async fn caption_host() -> String {
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::get;
    let big = format!(
        "WEBVTT\n\n00:00.000 --> 00:01.000\n{}\n",
        "x".repeat(300 * 1024)
    );
    let app = axum::Router::new()
        .route(
            "/fr.vtt",
            get(|| async { ([("content-type", "text/vtt")], FR) }),
        )
        .route(
            "/bad.vtt",
            get(|| async { "00:00.000 --> 00:01.000\nno header" }),
        )
        .route("/big.vtt", get(move || async move { big.into_response() }))
        .route("/moved", get(|| async { Redirect::temporary("/fr.vtt") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_caption_url_is_fetched_through_the_guard_and_checked_as_text() {
    let app = spawn_app().await;
    let host = caption_host().await;
    let cases = [
        (format!("{host}/bad.vtt"), "webvtt_header"),
        (format!("{host}/big.vtt"), "must be at most 262144 bytes"),
        (format!("{host}/missing.vtt"), "answered HTTP 404"),
        (format!("{host}/moved"), "answered HTTP 307"),
        // Not loopback: a private address the guard refuses before connecting.
        (
            "http://10.1.2.3/fr.vtt".into(),
            "must be an http(s) URL reelay may fetch (refused: not a public address)",
        ),
        ("ftp://example.com/fr.vtt".into(), "must be an http(s) URL"),
    ];
    for route in ["/v1/assets", "/v1/assets/preflight"] {
        for (url, rule) in &cases {
            let mut body = request(3);
            body["captions"] =
                json!([{"language": "en", "text": EN}, {"language": "fr", "url": url}]);
            let res = app
                .http
                .post(format!("{}{route}", app.url))
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 400, "{url}");
            let f = field_errors(&res.json().await.unwrap());
            assert_eq!(f.len(), 1, "{f:?}");
            assert_eq!(f[0].0, "captions[1].url", "{url}");
            assert!(f[0].1.starts_with(rule), "{url}: {f:?}");
        }
    }
    let mut both = request(3);
    both["captions"] = json!([{"language": "fr", "text": FR, "url": format!("{host}/fr.vtt")}]);
    let f = field_errors(&app.post_asset(&both).await.json().await.unwrap());
    assert_eq!(f[0].0, "captions[0].url");
    assert!(f[0].1.contains("not both"), "{f:?}");
    assert!(app.campaign("test").await.is_empty(), "nothing created");
    app.stop().await;
}

async fn text(app: &TestApp, url: &str) -> (u16, String, String) {
    let res = app.http.get(url).send().await.unwrap();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (res.status().as_u16(), ct, res.text().await.unwrap())
}

/// `uri` as written in the playlist at `base`, as a URL.
fn join(base: &str, uri: &str) -> String {
    reqwest::Url::parse(base)
        .unwrap()
        .join(uri)
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn published_captions_are_in_the_set_the_hls_master_and_the_vast() {
    let app = spawn_app().await;
    let mut body = request(3);
    body["profile"] = json!("web");
    // French by URL: fetched at the request, published as the English text is.
    body["captions"] = json!([
        {"language": "en", "label": "English", "text": EN},
        {"language": "fr", "url": format!("{}/fr.vtt", caption_host().await)},
    ]);
    let id = create(&app, &body).await;
    let a = wait_for(&app.http, &app.url, &id, Duration::from_secs(300), |a| {
        a["status"] != "processing"
    })
    .await;
    assert_eq!(a["status"], "published", "{a:#}");
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
    let hash = manifest["content_hash"].as_str().unwrap();

    // The files: content-addressed, served as text/vtt, the request's bytes.
    let captions = manifest["captions"].as_array().expect("captions section");
    let langs: Vec<&str> = captions
        .iter()
        .map(|c| c["language"].as_str().unwrap())
        .collect();
    assert_eq!(langs, ["en", "fr"]);
    assert_eq!(captions[0]["label"], "English");
    assert_eq!(captions[1]["label"], "fr");
    // The asset view lists the same tracks at the same URLs.
    let listed = a["variations"][0]["published"]["captions"]
        .as_array()
        .expect("captions in the asset view");
    assert_eq!(listed.len(), 2, "{listed:?}");
    for (view, published) in listed.iter().zip(captions) {
        assert_eq!(view["language"], published["language"]);
        assert_eq!(view["label"], published["label"]);
        assert_eq!(view["url"], published["url"]);
    }
    for (c, want) in captions.iter().zip([EN, FR]) {
        let url = c["url"].as_str().unwrap();
        assert!(
            url.ends_with(&format!(
                "/{hash}/captions/{}.vtt",
                c["language"].as_str().unwrap()
            )),
            "{url}"
        );
        let (status, ct, body) = text(&app, url).await;
        assert_eq!(status, 200, "{url}");
        assert!(ct.starts_with("text/vtt"), "{ct}");
        assert_eq!(body, want);
        assert_eq!(c["size"], want.len());
    }
    let in_files: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rel"].as_str().unwrap())
        .collect();
    for rel in [
        "captions/en.vtt",
        "captions/fr.vtt",
        "hls/subtitles_en.m3u8",
    ] {
        assert!(in_files.contains(&rel), "{rel} in {in_files:?}");
    }

    // The master playlist: one SUBTITLES group, named on every variant;
    // each rendition's playlist a VOD list whose one segment is the WebVTT.
    let master_url = manifest["hls"]["master"]["url"].as_str().unwrap();
    let (status, _, master) = text(&app, master_url).await;
    assert_eq!(status, 200);
    assert!(master.starts_with("#EXTM3U\n"), "{master}");
    let media: Vec<Vec<(String, String)>> = master
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-MEDIA:"))
        .map(attributes)
        .collect();
    assert_eq!(media.len(), 2, "{master}");
    let first_media = master.find("#EXT-X-MEDIA:").unwrap();
    assert!(first_media < master.find("#EXT-X-STREAM-INF:").unwrap());
    let get = |a: &[(String, String)], k: &str| {
        a.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {k} in {a:?}"))
    };
    for (m, (lang, name, default)) in media
        .iter()
        .zip([("en", "English", "YES"), ("fr", "fr", "NO")])
    {
        assert_eq!(get(m, "TYPE"), "SUBTITLES");
        assert_eq!(get(m, "GROUP-ID"), "subs");
        assert_eq!(get(m, "LANGUAGE"), lang);
        assert_eq!(get(m, "NAME"), name);
        assert_eq!(get(m, "DEFAULT"), default);
        assert_eq!(get(m, "AUTOSELECT"), "YES");
        let playlist_url = join(master_url, &get(m, "URI"));
        let (status, _, playlist) = text(&app, &playlist_url).await;
        assert_eq!(status, 200, "{playlist_url}");
        let p = MediaPlaylist::parse(&playlist);
        assert!(p.ended, "{playlist}");
        assert_eq!(p.segments.len(), 1, "{playlist}");
        // Its segment: the track's WebVTT with an X-TIMESTAMP-MAP header
        // (cue time 0 is the TS segments' first timestamp).
        let seg = join(&playlist_url, &p.segments[0].uri);
        assert!(
            seg.ends_with(&format!("/{hash}/hls/subtitles_{lang}.vtt")),
            "{seg}"
        );
        let (status, ct, vtt) = text(&app, &seg).await;
        assert_eq!(status, 200, "{seg}");
        assert!(ct.starts_with("text/vtt"), "{ct}");
        let mut lines = vtt.lines();
        assert!(lines.next().unwrap().starts_with("WEBVTT"));
        let map = lines.next().unwrap();
        let mpegts: u64 = map
            .strip_prefix("X-TIMESTAMP-MAP=MPEGTS:")
            .and_then(|r| r.strip_suffix(",LOCAL:00:00:00.000"))
            .unwrap_or_else(|| panic!("{map}"))
            .parse()
            .unwrap();
        assert!(mpegts > 0, "ffmpeg's TS segments start after 0: {map}");
        let c = captions.iter().find(|c| c["language"] == lang).unwrap();
        let own = if lang == "en" { EN } else { FR };
        assert_eq!(vtt.replacen(&format!("{map}\n"), "", 1), own);
        assert_eq!(c["hls_playlist_url"], playlist_url.as_str());
        let secs = manifest["duration_secs"].as_f64().unwrap();
        assert!((p.duration_secs() - secs).abs() < 0.01, "{playlist}");
        assert!(p.target_duration.unwrap() as f64 >= p.segments[0].duration_secs.round());
    }
    let parsed = MasterPlaylist::parse(&master);
    assert_eq!(
        parsed.variants.len(),
        manifest["hls"]["variants"].as_array().unwrap().len()
    );
    for v in &parsed.variants {
        assert!(
            v.other
                .iter()
                .any(|(k, val)| k == "SUBTITLES" && val == "\"subs\""),
            "{v:?}"
        );
    }

    // VAST: a ClosedCaptionFile per track, as the player-side parser reads it.
    let (_, _, xml) = text(&app, manifest["vast_url"].as_str().unwrap()).await;
    let vast = crate::vast_parser::parse_vast(&xml)
        .await
        .unwrap_or_else(|e| panic!("refused: {e:#}\n{xml}"));
    assert_eq!(vast["problems"], json!([]), "{vast:#}");
    let files = &vast["ads"][0]["creatives"][0]["closedCaptionFiles"];
    let want: Vec<Value> = captions
        .iter()
        .map(|c| json!({"type": "text/vtt", "language": c["language"], "fileURL": c["url"]}))
        .collect();
    assert_eq!(files, &json!(want), "{xml}");
    app.stop().await;
}
