//! Thumbnails on demand: a still at a time and width from the best
//! published rendition, cached in the CDN bucket by its parameters, with
//! limits on width, time, format and render rate; gone with its set; the
//! same request under the CDN path (no key, charged to the client's IP).

use crate::helpers::*;
use serde_json::Value;
use std::time::Duration;

async fn thumb(app: &TestApp, id: &str, n: i64, file: &str, query: &str) -> reqwest::Response {
    app.http
        .get(format!(
            "{}/v1/assets/{id}/variations/{n}/{file}?{query}",
            app.url
        ))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
}

fn size_of(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t");
    std::fs::write(&p, bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-of",
            "csv=p=0",
            "-show_entries",
            "stream=width,height",
        ])
        .arg(&p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An unauthenticated GET, as a CDN client makes it.
async fn get(app: &TestApp, url: &str) -> reqwest::Response {
    app.http.get(url).send().await.unwrap()
}

/// How many of `answers` were 429 for thumbnail renders charged to `payer`
/// (each with Retry-After); anything but 200 or such a 429 fails.
async fn limited(answers: Vec<reqwest::Response>, payer: &str) -> usize {
    let mut n = 0;
    for res in answers {
        match res.status().as_u16() {
            200 => {}
            429 => {
                assert!(res.headers().contains_key("retry-after"));
                let e: Value = res.json().await.unwrap();
                let msg = e["error"]["message"].as_str().unwrap();
                assert!(
                    msg.contains(payer) && msg.contains("thumbnail renders"),
                    "{msg}"
                );
                n += 1;
            }
            s => panic!("unexpected {s}"),
        }
    }
    n
}

async fn refused(res: reqwest::Response, status: u16, param: &str) {
    assert_eq!(res.status().as_u16(), status);
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["error"]["fields"][0]["path"], param, "{e:#}");
}

#[tokio::test]
async fn a_still_at_any_time_and_width_is_rendered_once_and_cached() {
    let app = spawn_app().await;
    app.put_master(
        "masters/thumbs/clip.mp4",
        tiny_clip(640, 360, 2, false, 21).await,
        &[],
    )
    .await;
    let assets = wait_for_campaign(&app, "thumbs", Duration::from_secs(120), |a| {
        a.len() == 1 && a[0]["status"] != "processing"
    })
    .await;
    assert_eq!(assets[0]["status"], "published", "{assets:#?}");
    let id = assets[0]["id"].as_str().unwrap().to_string();

    let res = thumb(&app, &id, 0, "thumbnail.jpg", "time=1.25&width=320").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert_eq!(res.headers()["x-reelay-cache"], "miss");
    let cdn = res.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cdn.contains("/thumbnails/1250ms_320w.jpg"), "{cdn}");
    let first = res.bytes().await.unwrap();
    assert!(first.starts_with(b"\xff\xd8\xff"));
    assert_eq!(size_of(&first), "320,180");

    // The same parameters: read from the cache, same bytes, also on the CDN path.
    let res = thumb(&app, &id, 0, "thumbnail.jpg", "time=1.25&width=320").await;
    assert_eq!(res.headers()["x-reelay-cache"], "hit");
    assert_eq!(res.bytes().await.unwrap(), first);
    let from_cdn = app.http.get(&cdn).send().await.unwrap();
    assert_eq!(from_cdn.status(), 200);
    assert_eq!(from_cdn.bytes().await.unwrap(), first);

    // The same request under the CDN path, as Mux's image host takes it:
    // no key, the same cache (the API's still is a hit), rendered on a miss.
    let manifest = assets[0]["variations"][0]["published"]["manifest_url"]
        .as_str()
        .unwrap()
        .to_string();
    let on_cdn = |file: &str, query: &str| {
        let base = manifest.trim_end_matches("manifest.json");
        format!("{base}{file}?{query}")
    };
    let res = get(&app, &on_cdn("thumbnail.jpg", "time=1.25&width=320")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-reelay-cache"], "hit");
    let cache = res.headers()["cache-control"].to_str().unwrap().to_string();
    assert!(
        cache.starts_with("public, max-age=") && !cache.contains("immutable"),
        "a pointer to the live set: {cache}"
    );
    assert_eq!(res.bytes().await.unwrap(), first);
    let res = get(&app, &on_cdn("thumbnail.png", "time=0.75&width=48")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.headers()["x-reelay-cache"], "miss");
    assert_eq!(size_of(&res.bytes().await.unwrap()), "48,28");
    let again = thumb(&app, &id, 0, "thumbnail.png", "time=0.75&width=48").await;
    assert_eq!(
        again.headers()["x-reelay-cache"],
        "hit",
        "one cache for both"
    );
    let head = app
        .http
        .head(on_cdn("thumbnail.png", "time=0.75&width=48"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    for (file, query, param) in [
        ("thumbnail.jpg", "width=4000", "width"),
        ("thumbnail.jpg", "time=9", "time"),
        ("thumbnail.jpg", "t=1", "t"),
        ("thumbnail.gif", "", "format"),
    ] {
        refused(get(&app, &on_cdn(file, query)).await, 400, param).await;
    }
    let elsewhere = on_cdn("thumbnail.jpg", "").replace("/thumbs/", "/other/");
    let res = app.http.get(&elsewhere).send().await.unwrap();
    assert_eq!(res.status(), 404, "another campaign's path names nothing");
    let res = get(&app, &on_cdn("thumbnail.jpg", "").replace("/v0/", "/v7/")).await;
    assert_eq!(res.status(), 404);

    // Other formats; defaults are the middle and the rendition's width.
    let png = thumb(&app, &id, 0, "thumbnail.png", "width=64").await;
    assert_eq!(png.headers()["content-type"], "image/png");
    let png = png.bytes().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    assert_eq!(size_of(&png), "64,36");
    let webp = thumb(&app, &id, 0, "thumbnail.webp", "").await;
    assert_eq!(webp.status(), 200);
    let webp = webp.bytes().await.unwrap();
    assert!(webp.starts_with(b"RIFF") && &webp[8..12] == b"WEBP");

    // Limits: 400 naming the parameter; no such variation: 404.
    refused(
        thumb(&app, &id, 0, "thumbnail.jpg", "time=2.5").await,
        400,
        "time",
    )
    .await;
    refused(
        thumb(&app, &id, 0, "thumbnail.jpg", "time=-1").await,
        400,
        "time",
    )
    .await;
    refused(
        thumb(&app, &id, 0, "thumbnail.jpg", "time=soon").await,
        400,
        "time",
    )
    .await;
    refused(
        thumb(&app, &id, 0, "thumbnail.jpg", "width=8").await,
        400,
        "width",
    )
    .await;
    refused(
        thumb(&app, &id, 0, "thumbnail.jpg", "width=4000").await,
        400,
        "width",
    )
    .await;
    refused(
        thumb(&app, &id, 0, "thumbnail.gif", "").await,
        400,
        "format",
    )
    .await;
    assert_eq!(thumb(&app, &id, 7, "thumbnail.jpg", "").await.status(), 404);

    // Renders are charged to the API key: the burst runs out, cached answers don't count.
    // 60 renders asked at once: the burst (20) passes, most of the rest is 429.
    let answers = futures::future::join_all((100..160).map(|w| {
        let q = format!("time=0.5&width={w}");
        let app = &app;
        let id = &id;
        async move { thumb(app, id, 0, "thumbnail.jpg", &q).await }
    }))
    .await;
    assert!(
        limited(answers, "API key").await > 0,
        "no render was ever limited"
    );
    // Under the CDN path there is no key: the client's IP has its own budget.
    let answers = futures::future::join_all((200..260).map(|w| {
        let url = on_cdn("thumbnail.jpg", &format!("time=0.5&width={w}"));
        let app = &app;
        async move { get(app, &url).await }
    }))
    .await;
    assert!(
        limited(answers, "client IP").await > 0,
        "no CDN-path render was ever limited"
    );
    let res = thumb(&app, &id, 0, "thumbnail.jpg", "time=1.25&width=320").await;
    assert_eq!(res.status(), 200, "a cached still is still served");

    // Its set goes, its stills go: cancel takes both down.
    let res = app
        .http
        .delete(format!("{}/v1/assets/{id}", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.http.get(&cdn).send().await.unwrap().status(), 404);
    assert_eq!(thumb(&app, &id, 0, "thumbnail.jpg", "").await.status(), 409);
    let res = get(&app, &on_cdn("thumbnail.jpg", "time=1.25&width=320")).await;
    assert_eq!(
        res.status(),
        404,
        "nothing published, nothing on the CDN path"
    );
    app.stop().await;
}
