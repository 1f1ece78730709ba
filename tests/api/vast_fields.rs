//! The request's own VAST fields: validated at the edge (https, macros kept
//! verbatim), written into the published vast.xml.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

fn fields() -> Value {
    json!({
        "adTitle": "Spring sale :15",
        "advertiser": "Brand & Co",
        "clickThrough": "https://brand.example/land?cb=[CACHEBUSTING]",
        "clickTracking": ["https://t.example/click?id=1"],
        "impression": ["https://t.example/imp?ts=[TIMESTAMP]"],
        "tracking": {
            "start": ["https://t.example/start"],
            "firstQuartile": ["https://t.example/q1"],
            "midpoint": ["https://t.example/mid"],
            "thirdQuartile": ["https://t.example/q3"],
            "complete": ["https://t.example/done"],
            "mute": ["https://t.example/mute"],
            "pause": ["https://t.example/pause"],
            "skip": ["https://t.example/skip"]
        },
        "error": ["https://t.example/err?code=[ERRORCODE]"],
        "adVerifications": [{"vendor": "verifier.example-omid", "javascriptResource": "https://v.example/omid.js", "verificationParameters": "{\"k\":1}"}]
    })
}

#[tokio::test]
async fn bad_vast_fields_get_400_naming_each() {
    let app = spawn_app().await;
    let mut body = request(3);
    body["vast"] = json!({
        "clickThrough": "http://brand.example/",
        "error": ["https://ok.example/[ERRORCODE]", "ftp://x.example/"],
        "tracking": {"rewind": ["https://t.example/"]},
    });
    let res = app.post_asset(&body).await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    let paths: Vec<&str> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["vast.clickThrough", "vast.error[1]", "vast.tracking.rewind"],
        "{v}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_published_vast_carries_the_request_fields_with_macros_verbatim() {
    let app = spawn_app().await;
    let mut body = request(3);
    body["vast"] = fields();
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
    let xml = app
        .http
        .get(manifest["vast_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed vast.xml");
    let text = |tag: &str| -> Vec<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name(tag))
            .map(|n| n.text().unwrap_or_default().trim().to_string())
            .collect()
    };
    assert_eq!(text("AdTitle"), ["Spring sale :15"]);
    assert_eq!(text("Advertiser"), ["Brand & Co"]);
    assert_eq!(
        text("ClickThrough"),
        ["https://brand.example/land?cb=[CACHEBUSTING]"]
    );
    assert_eq!(text("ClickTracking"), ["https://t.example/click?id=1"]);
    assert_eq!(text("Error"), ["https://t.example/err?code=[ERRORCODE]"]);
    assert!(text("Impression").contains(&"https://t.example/imp?ts=[TIMESTAMP]".to_string()));
    let events: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("Tracking"))
        .map(|n| n.attribute("event").unwrap())
        .collect();
    for e in [
        "start",
        "firstQuartile",
        "midpoint",
        "thirdQuartile",
        "complete",
        "mute",
        "pause",
        "skip",
    ] {
        assert!(events.contains(&e), "{e} in {events:?}");
    }
    let ver = doc
        .descendants()
        .find(|n| n.has_tag_name("Verification"))
        .expect("Verification");
    assert_eq!(ver.attribute("vendor"), Some("verifier.example-omid"));
    assert_eq!(text("JavaScriptResource"), ["https://v.example/omid.js"]);
    assert_eq!(text("VerificationParameters"), ["{\"k\":1}"]);
    // Still what it was: the MediaFiles are there.
    assert!(!text("MediaFile").is_empty());
    app.stop().await;
}
