//! `DELETE /v1/assets/{id}`: unfinished variations end `cancelled`, a
//! running ffmpeg is killed, a published set is taken down, a signed
//! `asset.cancelled` callback goes out, a generation already running still
//! has its cost recorded, one not yet submitted never is, and a second
//! cancel is a no-op.

use crate::helpers::*;
use axum::extract::State;
use axum::http::HeaderMap;
use reelay::notify::verify;
use reelay::secret::Secret;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "cancel-callback-secret";

/// A callback receiver that accepts everything: (signature, body).
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Delivery>>>);

/// One delivery: its signature header and body.
type Delivery = (String, Vec<u8>);

async fn receive(
    State(rx): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> &'static str {
    let sig = headers
        .get("reelay-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    rx.0.lock().unwrap().push((sig, body.to_vec()));
    "ok"
}

impl Receiver {
    async fn start(&self) -> String {
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    /// Waits for an event of `kind`; checks its signature; returns its body.
    async fn wait_for(&self, kind: &str) -> Value {
        let start = Instant::now();
        loop {
            let got = self.0.lock().unwrap().clone();
            for (sig, body) in got {
                let v: Value = serde_json::from_slice(&body).unwrap();
                if v["type"] == kind {
                    let now = chrono::Utc::now().timestamp();
                    assert!(verify(SECRET.as_bytes(), &sig, &body, now, 300), "{sig}");
                    return v;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no {kind} callback"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn delete(app: &TestApp, id: &str) -> (u16, Value) {
    let res = app
        .http
        .delete(format!("{}/v1/assets/{id}", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn states(a: &Value) -> Vec<String> {
    a["variations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["state"].as_str().unwrap().to_string())
        .collect()
}

/// Every CDN key under the asset's folder.
async fn cdn_keys(app: &TestApp, campaign: &str, asset: &str) -> Vec<String> {
    let s = &app.application().settings;
    let prefix = s.cdn.prefix.trim_matches('/');
    let folder = if prefix.is_empty() {
        format!("{campaign}/{asset}/")
    } else {
        format!("{prefix}/{campaign}/{asset}/")
    };
    app.objects()
        .list(&s.storage.cdn_bucket, &folder)
        .await
        .unwrap()
}

#[tokio::test]
async fn cancelling_a_published_asset_takes_it_down_and_says_so_once() {
    let rx = Receiver::default();
    let hook = rx.start().await;
    let app = spawn_app_with(|s| s.callbacks.secret = Secret::new(SECRET)).await;
    app.put_master(
        "masters/cancel-pub/clip.mp4",
        tiny_clip(640, 360, 2, true, 11).await,
        &[("reelay-callback-url", hook.as_str())],
    )
    .await;
    let assets = wait_for_campaign(&app, "cancel-pub", Duration::from_secs(120), |a| {
        a.len() == 1 && a[0]["status"] != "processing"
    })
    .await;
    assert_eq!(assets[0]["status"], "published", "{assets:#?}");
    let id = assets[0]["id"].as_str().unwrap().to_string();
    let manifest = assets[0]["variations"][0]["published"]["manifest_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.http.get(&manifest).send().await.unwrap().status(), 200);
    assert!(!cdn_keys(&app, "cancel-pub", &id).await.is_empty());
    rx.wait_for("asset.published").await;

    let (status, a) = delete(&app, &id).await;
    assert_eq!(status, 200, "{a:#}");
    assert_eq!(a["status"], "cancelled");
    assert_eq!(states(&a), ["cancelled"]);
    let v = &a["variations"][0];
    assert_eq!(v["reason"]["code"], "cancelled");
    assert!(v.get("published").is_none(), "{v:#}");
    // Pointers and files are gone.
    assert_eq!(app.http.get(&manifest).send().await.unwrap().status(), 404);
    assert_eq!(
        cdn_keys(&app, "cancel-pub", &id).await,
        Vec::<String>::new()
    );

    let event = rx.wait_for("asset.cancelled").await;
    assert_eq!(event["data"]["asset_id"], id.as_str());
    assert_eq!(event["data"]["variation"]["state"], "cancelled");
    assert_eq!(event["data"]["reason"]["code"], "cancelled");

    // Again: a no-op with the same view, no second callback.
    let (status, again) = delete(&app, &id).await;
    assert_eq!(status, 200);
    assert_eq!(again["variations"], a["variations"]);
    let cancelled = |a: &Value| {
        a["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] == "asset.cancelled")
            .count()
    };
    assert_eq!(cancelled(&again), 1);
    // Reprocess does not revive it.
    let res = app
        .http
        .post(format!("{}/v1/assets/{id}/reprocess", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    // An asset that does not exist is 404 in the error shape.
    let (status, e) = delete(&app, "ast_00000000000000000000000000").await;
    assert_eq!(status, 404);
    assert_eq!(e["error"]["code"], "not_found");
    app.stop().await;
}

#[tokio::test]
async fn a_generation_cancelled_while_running_still_records_its_cost() {
    let rx = Receiver::default();
    let hook = rx.start().await;
    let app = spawn_app_with(|s| {
        s.callbacks.secret = Secret::new(SECRET);
        s.simulator.generation_secs = 2.0;
    })
    .await;
    let mut body = request(3);
    body["campaign"] = "cancel-gen".into();
    body["callbackUrl"] = hook.as_str().into();
    let id = create(&app, &body).await;
    // Submitted to the generator, not finished.
    let a = wait_for(&app.http, &app.url, &id, Duration::from_secs(30), |a| {
        a["variations"][0]["state"] == "submitted" || a["variations"][0]["state"] == "generating"
    })
    .await;
    let tasks = app.task_files();
    assert_eq!(tasks, 1, "{a:#}");
    let (status, a) = delete(&app, &id).await;
    assert_eq!(status, 200);
    assert_eq!(states(&a), ["cancelled"]);
    rx.wait_for("asset.cancelled").await;
    // The generator finishes and reports: the cost is recorded, nothing else moves.
    let a = wait_for(&app.http, &app.url, &id, Duration::from_secs(120), |a| {
        a["cost_usd"].as_f64().unwrap_or(0.0) > 0.0
    })
    .await;
    assert_eq!(states(&a), ["cancelled"]);
    assert!(a["variations"][0]["cost_usd"].as_f64().unwrap() > 0.0);
    assert_eq!(entered(&a["variations"][0], "arrived"), 0, "{a:#}");
    assert_eq!(app.task_files(), 1, "no second task");
    // The campaign sums the cost with its states.
    let res = app
        .http
        .get(format!("{}/v1/campaigns/cancel-gen", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let camp: Value = res.json().await.unwrap();
    assert_eq!(camp["cost_usd"], a["cost_usd"], "{camp:#}");
    assert_eq!(camp["variations_by_state"]["cancelled"], 1);
    assert_eq!(camp["assets_by_status"]["cancelled"], 1);
    app.stop().await;
}

/// ffmpeg processes working in this app's data folder.
fn ffmpeg_in(data: &std::path::Path) -> Vec<u32> {
    let needle = data.to_string_lossy().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        let is_ffmpeg = args
            .first()
            .is_some_and(|a| a.rsplit('/').next() == Some("ffmpeg"));
        if is_ffmpeg && args.iter().any(|a| a.contains(&needle)) {
            out.push(pid);
        }
    }
    out
}

#[tokio::test]
async fn cancelling_mid_transcode_kills_its_ffmpeg() {
    let app = spawn_app_with(|s| s.media.x264_preset = "veryslow".into()).await;
    app.put_master(
        "masters/cancel-run/clip.mp4",
        tiny_clip(1280, 720, 6, true, 12).await,
        &[],
    )
    .await;
    // Wait for an ffmpeg of this app's pipeline.
    let start = Instant::now();
    let running = loop {
        let pids = ffmpeg_in(&app.data);
        if !pids.is_empty() {
            break pids;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no ffmpeg seen; {:#?}",
            app.campaign("cancel-run").await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let assets = app.campaign("cancel-run").await;
    let id = assets[0]["id"].as_str().unwrap().to_string();
    let (status, a) = delete(&app, &id).await;
    assert_eq!(status, 200);
    assert_eq!(states(&a), ["cancelled"], "{a:#}");
    // The step loses its lease at its next heartbeat and its ffmpeg goes.
    let start = Instant::now();
    while !ffmpeg_in(&app.data).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "ffmpeg {running:?} still running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = get_asset(&app.http, &app.url, &id).await;
    assert_eq!(states(&a), ["cancelled"]);
    assert_eq!(entered(&a["variations"][0], "published"), 0);
    assert!(cdn_keys(&app, "cancel-run", &id).await.is_empty());
    app.stop().await;
}

/// A cancel whose request died after its commit (the take-down never ran)
/// is finished by the sweeper: the pointers and files go, the row forgets
/// its set.
#[tokio::test]
async fn a_take_down_a_crash_left_undone_is_finished_by_the_sweeper() {
    let app = spawn_app_with(|s| s.policy.ttl_sweep_interval_secs = 1).await;
    app.put_master(
        "masters/cancel-sweep/clip.mp4",
        tiny_clip(640, 360, 2, true, 12).await,
        &[],
    )
    .await;
    let assets = wait_for_campaign(&app, "cancel-sweep", Duration::from_secs(120), |a| {
        a.len() == 1 && a[0]["status"] != "processing"
    })
    .await;
    assert_eq!(assets[0]["status"], "published", "{assets:#?}");
    let id = assets[0]["id"].as_str().unwrap().to_string();
    let manifest = assets[0]["variations"][0]["published"]["manifest_url"]
        .as_str()
        .unwrap()
        .to_string();
    // Only the store's half of a cancel: what a crash right after the
    // commit leaves.
    let fresh = app.application().store.cancel(&id, "test").await.unwrap();
    assert_eq!(fresh.len(), 1);
    assert_eq!(app.http.get(&manifest).send().await.unwrap().status(), 200);
    // The row forgetting its set is the sweeper's last step (after the
    // files), so wait for that, then the files must already be gone.
    let start = Instant::now();
    let a = loop {
        let a = get_asset(&app.http, &app.url, &id).await;
        if a["variations"][0].get("published").is_none() {
            break a;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the sweeper did not take the set down: {a:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(states(&a), ["cancelled"]);
    assert!(cdn_keys(&app, "cancel-sweep", &id).await.is_empty());
    assert_eq!(app.http.get(&manifest).send().await.unwrap().status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn a_variation_cancelled_before_it_is_submitted_is_never_submitted() {
    let rx = Receiver::default();
    let hook = rx.start().await;
    let dir = tempfile::tempdir().unwrap();
    // An API process without workers: the asset waits in `requested`.
    let mut settings = test_settings(dir.path());
    settings.callbacks.secret = Secret::new(SECRET);
    let api = reelay::startup::Application::build_role(settings, reelay::startup::Role::Api)
        .await
        .unwrap();
    let app = TestApp {
        url: api.api_url(),
        app: Some(api),
        http: reqwest::Client::new(),
        data: dir.path().to_path_buf(),
        _dir: None,
    };
    let mut body = request(3);
    body["campaign"] = "cancel-early".into();
    body["callbackUrl"] = hook.as_str().into();
    let early = create(&app, &body).await;
    let (status, a) = delete(&app, &early).await;
    assert_eq!(status, 200, "{a:#}");
    assert_eq!(states(&a), ["cancelled"]);
    let event = rx.wait_for("asset.cancelled").await;
    assert_eq!(event["data"]["asset_id"], early.as_str());
    app.stop().await;

    // Workers on the same store: they take the next asset, never the cancelled one.
    let app = spawn_app_in(dir.path(), |s| {
        s.callbacks.secret = Secret::new(SECRET);
        s.simulator.generation_secs = 600.0;
    })
    .await;
    let later = create(&app, &body).await;
    wait_for(&app.http, &app.url, &later, Duration::from_secs(60), |a| {
        a["variations"][0]["state"] == "submitted" || a["variations"][0]["state"] == "generating"
    })
    .await;
    assert_eq!(app.task_files(), 1, "one task: the later asset's");
    let res = app
        .http
        .get(format!("{}/v1/assets/{early}", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let a: Value = res.json().await.unwrap();
    assert_eq!(states(&a), ["cancelled"]);
    assert_eq!(entered(&a["variations"][0], "submitted"), 0, "{a:#}");
    app.stop().await;
}
