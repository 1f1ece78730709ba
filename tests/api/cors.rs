//! The CDN origin answers players on other origins: CORS on `/cdn/` for GET
//! and HEAD with Range, the headers a player reads exposed, preflights
//! answered, and only the configured origins when the list is not `*`.

use crate::helpers::*;
use reelay::storage::ObjectKey;

const KEY: &str = "v1/cors/ast_0123456789abcdef0123/v0/h/720p.mp4";

async fn with_file(app: &TestApp) {
    let bucket = app.application().settings.storage.cdn_bucket.clone();
    app.objects()
        .put_bytes(
            &bucket,
            &ObjectKey::parse(KEY).unwrap(),
            (0..=255u8).cycle().take(4096).collect(),
            "video/mp4",
            "public, max-age=31536000, immutable",
        )
        .await
        .unwrap();
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

#[tokio::test]
async fn a_player_on_another_origin_can_range_read_a_file_and_see_its_headers() {
    let app = spawn_app().await;
    with_file(&app).await;
    let url = format!("{}/cdn/{KEY}", app.url);

    let res = app
        .http
        .get(&url)
        .header("Origin", "https://player.example")
        .header("Range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(header(&res, "access-control-allow-origin"), "*");
    let exposed = header(&res, "access-control-expose-headers").to_ascii_lowercase();
    for h in ["accept-ranges", "content-range", "content-length", "etag"] {
        assert!(exposed.contains(h), "{h} not exposed: {exposed}");
    }
    assert_eq!(header(&res, "content-range"), "bytes 0-99/4096");

    // The preflight a Range request from script sends first.
    let res = app
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "https://player.example")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "range")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "preflight: {}", res.status());
    assert_eq!(header(&res, "access-control-allow-origin"), "*");
    let methods = header(&res, "access-control-allow-methods").to_ascii_uppercase();
    assert!(
        methods.contains("GET") && methods.contains("HEAD"),
        "{methods}"
    );
    assert!(
        !methods.contains("PUT") && !methods.contains("DELETE"),
        "{methods}"
    );
    assert!(header(&res, "access-control-allow-headers")
        .to_ascii_lowercase()
        .contains("range"));

    // The API itself stays same-origin.
    let res = app
        .http
        .get(format!("{}/healthz", app.url))
        .header("Origin", "https://player.example")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "access-control-allow-origin"), "");
    app.stop().await;
}

#[tokio::test]
async fn with_a_list_of_origins_only_those_are_allowed() {
    let app = spawn_app_with(|s| {
        s.cdn.cors_allowed_origins = vec!["https://player.example".into()];
    })
    .await;
    with_file(&app).await;
    let url = format!("{}/cdn/{KEY}", app.url);
    let get = |origin: &'static str| app.http.head(&url).header("Origin", origin).send();
    let res = get("https://player.example").await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&res, "access-control-allow-origin"),
        "https://player.example"
    );
    let res = get("https://elsewhere.example").await.unwrap();
    assert_eq!(res.status(), 200, "the file is still served, without CORS");
    assert_eq!(header(&res, "access-control-allow-origin"), "");
    app.stop().await;
}
