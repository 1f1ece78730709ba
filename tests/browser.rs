//! What reelay publishes, and its dashboard, in a real browser: the Debian
//! `chromium` driven headless by playwright-core (`tests/browser/run.mjs`),
//! against the whole embedded stack. A second listener on another port is
//! the publisher's page, so every CDN read is a cross-origin one.
//! `scripts/test.sh` installs Chromium and `npm ci`s `tests/browser/`.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::*;
use reelay::simulator::Faults;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("browser-screenshots")
}

/// Chromium, node and playwright-core are there, or the test says how to get them.
fn require_browser() {
    let missing: Vec<&str> = [
        (!Path::new(CHROMIUM).exists()).then_some("chromium (/usr/bin/chromium)"),
        std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_err()
            .then_some("node"),
        (!browser_dir()
            .join("node_modules/playwright-core/package.json")
            .exists())
        .then_some("tests/browser/node_modules (npm ci)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(
        missing.is_empty(),
        "the browser test needs {}: run scripts/test.sh, which installs them",
        missing.join(", ")
    );
}

/// The publisher's page: another origin (another port) than reelay's.
async fn publisher_page() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let page = axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            axum::response::Html(
                "<!doctype html><html><head><meta charset=utf-8><title>publisher page</title></head>\
                 <body><h1>A publisher's page on another origin</h1><div id=players></div></body></html>",
            )
        }),
    );
    let task = tokio::spawn(async move {
        axum::serve(listener, page).await.unwrap();
    });
    (url, task)
}

#[tokio::test]
async fn published_sets_play_on_another_origin_and_the_dashboard_drives_an_asset_to_published() {
    require_browser();
    // The first task the simulator runs delivers a master of the wrong size
    // (rejected at arrival); every later one is healthy.
    let app = spawn_app_with(|s| {
        s.simulator.faults = Faults {
            deliver_size: "1920x1080".into(),
            first_tasks: 1,
            ..Faults::default()
        };
    })
    .await;
    let mut bad = request(3);
    bad["campaign"] = json!("browser");
    let rejected = create(&app, &bad).await;
    wait_for(
        &app.http,
        &app.url,
        &rejected,
        Duration::from_secs(300),
        |a| a["status"] != "processing",
    )
    .await;

    let mut good = request(3);
    good["campaign"] = json!("browser");
    good["profile"] = json!("web");
    // Captions: the master playlist gains a SUBTITLES group that hls.js
    // must still play through, and Chromium parses the WebVTT itself.
    good["captions"] = json!([{"language": "en", "label": "English",
        "text": "WEBVTT\n\n00:00.000 --> 00:01.000\nA red car\n\n00:01.000 --> 00:02.500\non a mountain road\n"}]);
    // A buyer whose band the web profile's rungs cannot promise: the
    // dashboard shows its verdict.
    good["destinations"] = json!(["ttd"]);
    let published = create(&app, &good).await;

    let (page_url, page_task) = publisher_page().await;
    let shots = screenshots_dir();
    std::fs::create_dir_all(&shots).unwrap();
    let out = tokio::process::Command::new("node")
        .arg(browser_dir().join("run.mjs"))
        .env("CHROMIUM", CHROMIUM)
        .env("REELAY_URL", &app.url)
        .env("PAGE_URL", &page_url)
        .env("API_KEY", KEY)
        .env("PUBLISHED_ASSET", &published)
        .env("REJECTED_ASSET", &rejected)
        .env("SCREENSHOTS", &shots)
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs");
    page_task.abort();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser run failed: {stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let facts: Value = serde_json::from_slice(
        out.stdout
            .split(|b| *b == b'\n')
            .rfind(|l| l.starts_with(b"{"))
            .expect("the run prints its facts as JSON"),
    )
    .unwrap();

    // From the publisher's origin.
    let set = get_asset(&app.http, &app.url, &published).await;
    assert_eq!(set["status"], "published", "{set:#}");
    let p = &set["variations"][0]["published"];
    let x = &facts["crossOrigin"];
    assert!(x["mp4ReadyState"].as_i64().unwrap() >= 3, "{x:#}");
    let duration = x["mp4Duration"].as_f64().unwrap();
    let seeked = x["seekedTo"].as_f64().unwrap();
    assert!(
        (seeked - duration / 2.0).abs() < 0.6,
        "seek to the middle of {duration} s landed at {seeked}"
    );
    assert!(x["mp4PlayedTo"].as_f64().unwrap() > seeked, "{x:#}");
    assert!(x["posterWidth"].as_u64().unwrap() > 0, "{x:#}");
    let variants = p["hls"]["variants"].as_array().unwrap().len();
    assert!(variants >= 2, "{p:#}");
    assert_eq!(
        x["hlsLevels"].as_u64().unwrap() as usize,
        variants,
        "hls.js saw every level of the master playlist: {x:#}"
    );
    let mut loaded: Vec<u64> = x["hlsLevelsWithFragments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_u64().unwrap())
        .collect();
    loaded.sort();
    assert_eq!(loaded, (0..variants as u64).collect::<Vec<_>>(), "{x:#}");
    assert!(x["hlsPlayedTo"].as_f64().unwrap() > 0.0, "{x:#}");
    assert!(x["storyboardCues"].as_u64().unwrap() > 0, "{x:#}");
    assert_eq!(x["manifest"]["status"], 200, "{x:#}");
    assert_eq!(
        x["manifest"]["renditions"].as_u64().unwrap() as usize,
        p["renditions"].as_array().unwrap().len()
    );
    assert_eq!(
        x["captionCues"],
        json!([{"language": "en", "cues": 2}]),
        "{x:#}"
    );
    assert_eq!(x["vast"]["status"], 200, "{x:#}");
    // hls.js (full build) reads the SUBTITLES group and loads the WebVTT.
    let s = &facts["subtitles"];
    assert_eq!(
        s["tracks"],
        json!([{"lang": "en", "name": "English", "groupId": "subs", "default": true}]),
        "{s:#}"
    );
    assert_eq!(
        s["cues"],
        json!(["A red car", "on a mountain road"]),
        "{s:#}"
    );
    assert!(x["vast"]["mediaFiles"].as_u64().unwrap() > 0, "{x:#}");

    // In the dashboard.
    let d = &facts["dashboard"];
    assert_eq!(d["wrongKeyShowsSignIn"], true, "{d:#}");
    assert_eq!(d["noKeyShowsSignIn"], true, "{d:#}");
    assert_eq!(
        d["destinations"],
        json!(["ttd|ready|ttd.xml"]),
        "the named buyer's verdict and its own VAST: {d:#}"
    );
    assert!(
        d["promptError"]
            .as_str()
            .unwrap()
            .starts_with("generation.positivePrompt"),
        "the API's rule shows beside the prompt: {d:#}"
    );
    assert!(
        d["storyboardThumb"].as_str().unwrap().contains("sprite"),
        "hovering the storyboard shows a sprite frame: {d:#}"
    );
    // The rejected body and the corrected one are two requests: two keys.
    let keys: Vec<&str> = d["createKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            k.as_str()
                .expect("every POST /v1/assets has an Idempotency-Key")
        })
        .collect();
    assert_eq!(keys.len(), 2, "{d:#}");
    assert!(keys.iter().all(|k| k.len() == 36), "UUIDs: {keys:?}");
    assert_ne!(keys[0], keys[1], "a changed body is a new action");
    let made = d["createdAsset"].as_str().unwrap();
    let made = get_asset(&app.http, &app.url, made).await;
    assert_eq!(made["status"], "published", "{made:#}");
    assert_eq!(made["campaign"], "dashboard");
    assert_eq!(made["generation"]["duration"], 3);
    assert!(d["playedTo"].as_f64().unwrap() > 0.0, "{d:#}");
    let checks = made["variations"][0]["qc"]["checks"].as_array().unwrap();
    assert!(!checks.is_empty());
    let rules: Vec<String> = checks
        .iter()
        .map(|c| {
            format!(
                "{}|{}",
                c["subject"].as_str().unwrap(),
                c["rule"].as_str().unwrap()
            )
        })
        .collect();
    let shown: Vec<String> = d["qcRows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert_eq!(shown, rules, "the QC table shows every rule, in order");
    assert_eq!(d["qcResults"].as_u64().unwrap() as usize, checks.len());
    let bad = get_asset(&app.http, &app.url, &rejected).await;
    assert_eq!(bad["status"], "rejected", "{bad:#}");
    assert_eq!(
        d["rejectedReason"].as_str().unwrap(),
        bad["variations"][0]["reason"]["message"].as_str().unwrap()
    );
    assert!(
        d["rejectedMaster"].as_str().unwrap().contains("1920x1080"),
        "{d:#}"
    );
    for shot in [
        "cross-origin.png",
        "signin.png",
        "form-errors.png",
        "asset-published.png",
    ] {
        assert!(shots.join(shot).exists(), "{shot} written");
    }
    app.stop().await;
}

/// `reelay healthcheck` (the container's HEALTHCHECK): 0 while the server
/// answers /healthz, 1 once it is gone.
#[tokio::test]
async fn the_healthcheck_subcommand_exits_0_while_the_server_answers_and_1_after() {
    let app = spawn_app().await;
    let port = app.url.rsplit(':').next().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let run = |port: String| {
        let data = data.path().to_path_buf();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_reelay"))
                .arg("healthcheck")
                .env("REELAY_CONFIG_DIR", config_dir())
                .env("REELAY_ENVIRONMENT", "test")
                .env("REELAY__SERVER__HOST", "0.0.0.0")
                .env("REELAY__SERVER__PORT", port)
                .env("REELAY__DATA__DIR", data)
                .output()
                .await
                .unwrap()
        }
    };
    let up = run(port.clone()).await;
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(String::from_utf8_lossy(&up.stdout).contains("/healthz"));
    app.stop().await;
    let down = run(port).await;
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("did not answer"));
}
