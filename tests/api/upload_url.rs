//! An upload URL delivers one master, once: a replay after publish, an
//! upload before the generator's success and a late upload to a replaced
//! task's URL change nothing; work folders go with their variation; the
//! embedded store runs on this install's own credentials.

use crate::helpers::*;
use reelay::config::{RunwareMode, Settings};
use reelay::secret::Secret;
use reelay::simulator::{Faults, UploadFault};
use reelay::startup::Application;
use reelay::storage::{ObjectKey, ObjectStore};
use serde_json::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(180);

fn quick(s: &mut Settings, faults: Faults) {
    s.simulator.generation_secs = 0.2;
    s.simulator.faults = faults;
}

fn variation(a: &Value) -> &Value {
    &a["variations"][0]
}

fn notes(a: &Value) -> Vec<String> {
    variation(a)["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter_map(|t| t["note"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn put(app: &TestApp, url: &str, body: Vec<u8>) {
    let resp = app
        .http
        .put(url)
        .header("content-type", "video/mp4")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

async fn cdn_bytes(app: &TestApp, url: &str) -> Vec<u8> {
    let key = url.split_once("/cdn/").expect("a /cdn/ URL").1;
    let resp = app
        .http
        .get(format!("{}/cdn/{key}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn a_replayed_upload_url_after_publish_leaves_the_live_set_alone() {
    let app = spawn_app_with(|s| quick(s, Faults::default())).await;
    let id = create(&app, &request(3)).await;
    let a = wait_for(&app.http, &app.url, &id, LIMIT, |a| {
        a["status"] != "processing"
    })
    .await;
    assert_eq!(a["status"], "published", "{a:#}");
    let v = variation(&a);
    let task = v["task_uuid"].as_str().unwrap().to_string();
    assert!(
        v["master"]["key"].as_str().unwrap().contains(&task),
        "the key names its task: {v:#}"
    );
    let manifest_url = v["published"]["manifest_url"].as_str().unwrap().to_string();
    let manifest = cdn_bytes(&app, &manifest_url).await;
    let sha = v["master"]["sha256"].as_str().unwrap().to_string();

    // Another valid 4K clip, PUT to the URL the generator was given.
    let url = app.upload_url(&task);
    put(&app, &url, tiny_clip(3840, 2160, 3, true, 991).await).await;

    let a = wait_for(&app.http, &app.url, &id, LIMIT, |a| {
        notes(a).iter().any(|n| n.contains("later write"))
    })
    .await;
    let v = variation(&a);
    assert_eq!(a["status"], "published");
    assert_eq!(v["master"]["sha256"], sha.as_str());
    assert_eq!(changes_into(v, "arrived"), 1, "{a:#}");
    assert_eq!(
        changes_into(v, "published"),
        1,
        "one asset.published: {a:#}"
    );
    assert_eq!(cdn_bytes(&app, &manifest_url).await, manifest);
    assert_eq!(app.campaign("test").await.len(), 1, "no new asset either");

    // The bucket's upload key now holds the replayed clip, and the work
    // folder went with the publish: a reprocess must still read the master
    // that was verified, from the copy arrival kept.
    let res = app
        .http
        .post(format!("{}/v1/assets/{id}/reprocess", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let a = wait_for(&app.http, &app.url, &id, LIMIT, |a| {
        a["status"] != "processing" && changes_into(variation(a), "published") == 2
    })
    .await;
    let v = variation(&a);
    assert_eq!(a["status"], "published", "{a:#}");
    assert_eq!(v["master"]["sha256"], sha.as_str(), "{v:#}");
    app.stop().await;
}

#[tokio::test]
async fn an_upload_while_the_task_is_processing_is_never_taken_without_its_success() {
    let app = spawn_app_with(|s| {
        quick(
            s,
            Faults {
                stall: true,
                ..Faults::default()
            },
        );
        s.runware.upload_grace_secs = 1;
        // Long enough for the PUT to get through on a loaded machine.
        s.runware.task_deadline_secs = 40;
    })
    .await;
    let id = create(&app, &request(3)).await;
    let a = wait_for(&app.http, &app.url, &id, LIMIT, |a| {
        variation(a)["state"] != "requested"
    })
    .await;
    let task = variation(&a)["task_uuid"].as_str().unwrap().to_string();
    put(
        &app,
        &app.upload_url(&task),
        tiny_clip(3840, 2160, 3, true, 5).await,
    )
    .await;

    let waiting = wait_for(&app.http, &app.url, &id, LIMIT, |a| {
        variation(a)["stage"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("waiting for the generator to report success"))
            || a["status"] != "processing"
    })
    .await;
    assert_eq!(waiting["status"], "processing", "{waiting:#}");

    // The task never finishes: the deadline ends it, the upload untaken.
    let a = wait_for(&app.http, &app.url, &id, LIMIT, |a| {
        a["status"] != "processing"
    })
    .await;
    let v = variation(&a);
    assert_eq!(v["state"], "failed", "{a:#}");
    assert_eq!(v["reason"]["code"], "timeoutProvider", "{a:#}");
    assert_eq!(entered(v, "arrived"), 0, "{a:#}");
    assert!(v["master"]["sha256"].is_null(), "{a:#}");
    assert!(v["published"].is_null());
    app.stop().await;
}

#[tokio::test]
async fn a_late_upload_to_a_replaced_tasks_url_is_ignored() {
    let app = spawn_app_with(|s| {
        quick(
            s,
            Faults {
                upload: UploadFault::None,
                first_tasks: 1,
                ..Faults::default()
            },
        );
        s.runware.upload_grace_secs = 1;
        s.runware.resubmit_missing_upload = true;
    })
    .await;
    let id = create(&app, &request(3)).await;
    let first = variation(&get_asset(&app.http, &app.url, &id).await)["task_uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let a = wait_for(&app.http, &app.url, &id, LIMIT, |a| {
        a["status"] != "processing"
    })
    .await;
    assert_eq!(a["status"], "published", "{a:#}");
    let v = variation(&a);
    assert_ne!(v["task_uuid"], first.as_str());
    assert_eq!(v["previous_tasks"][0]["reason_code"], "uploadMissing");
    let sha = v["master"]["sha256"].as_str().unwrap().to_string();
    let old_url = app.upload_url(&first);
    assert!(old_url.contains(&first), "{old_url}");

    put(&app, &old_url, tiny_clip(3840, 2160, 3, true, 77).await).await;

    let a = wait_for(&app.http, &app.url, &id, LIMIT, |a| {
        notes(a).iter().any(|n| n.contains("replaced task"))
    })
    .await;
    let v = variation(&a);
    assert_eq!(a["status"], "published");
    assert_eq!(v["master"]["sha256"], sha.as_str());
    assert_eq!(changes_into(v, "arrived"), 1, "{a:#}");
    assert_eq!(
        app.campaign("test").await.len(),
        1,
        "the old key is not taken as a master uploaded by hand"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_rejected_masters_work_folder_is_gone_and_stale_ones_are_swept_at_start() {
    let app = spawn_app_with(|s| {
        quick(
            s,
            Faults {
                deliver_size: "1920x1080".into(),
                ..Faults::default()
            },
        )
    })
    .await;
    let id = create(&app, &request(3)).await;
    let a = wait_for(&app.http, &app.url, &id, LIMIT, |a| {
        a["status"] != "processing"
    })
    .await;
    let v = variation(&a);
    assert_eq!(v["state"], "rejected", "{a:#}");
    assert_eq!(v["reason"]["code"], "masterMismatch");
    let vid = v["id"].as_str().unwrap().to_string();
    let work = app.data.join("work");
    assert!(work.is_dir());
    assert!(!work.join(&vid).exists(), "the rejected master's folder");

    // Left behind by a crash, or by a release without cleanup.
    std::fs::create_dir_all(work.join(&vid)).unwrap();
    std::fs::write(work.join(&vid).join("master.mp4"), b"old").unwrap();
    std::fs::create_dir_all(work.join("ast_00000000000000000000_v0")).unwrap();
    let app = app.restart().await;
    assert!(!work.join(&vid).exists());
    assert!(!work.join("ast_00000000000000000000_v0").exists());
    app.stop().await;
}

#[tokio::test]
async fn a_master_waits_for_disk_space_and_says_why() {
    let app = spawn_app_with(|s| {
        quick(s, Faults::default());
        // More than any disk has free: the download must wait.
        s.data.free_space_margin_bytes = u64::MAX / 2;
    })
    .await;
    let id = create(&app, &request(3)).await;
    let a = wait_for(&app.http, &app.url, &id, LIMIT, |a| {
        variation(a)["stage"]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("waiting for disk space"))
            || a["status"] != "processing"
    })
    .await;
    let v = variation(&a);
    assert_eq!(a["status"], "processing", "{a:#}");
    assert!(v["master"]["sha256"].is_null());
    let detail = v["stage"]["detail"].as_str().unwrap();
    assert!(detail.contains("data.free_space_margin_bytes"), "{detail}");
    app.stop().await;
}

#[tokio::test]
async fn the_embedded_store_runs_on_this_installs_own_credentials() {
    let app = spawn_app().await;
    let storage = app.application().settings.storage.clone();
    assert_ne!(storage.access_key_id, "reelay");
    assert!(storage.secret_access_key.expose().len() >= 32);
    let file = std::fs::read_to_string(app.data.join("secrets").join("s3-credentials")).unwrap();
    assert!(file.contains(&storage.access_key_id));
    assert!(file.contains(storage.secret_access_key.expose()));

    // The credentials older releases shipped open nothing.
    let mut public = storage.clone();
    public.access_key_id = "reelay".into();
    public.secret_access_key = Secret::new("reelay-embedded-secret");
    let key = ObjectKey::parse("v1/test/x/manifest.json").unwrap();
    let err = ObjectStore::new(&public)
        .unwrap()
        .put_bytes(
            &storage.cdn_bucket,
            &key,
            b"{}".to_vec(),
            "application/json",
            "no-cache",
        )
        .await;
    assert!(err.is_err());

    // Another install gets other credentials; a restart keeps them.
    let other = spawn_app().await;
    assert_ne!(
        other
            .application()
            .settings
            .storage
            .secret_access_key
            .expose(),
        storage.secret_access_key.expose()
    );
    other.stop().await;
    let app = app.restart().await;
    assert_eq!(
        app.application()
            .settings
            .storage
            .secret_access_key
            .expose(),
        storage.secret_access_key.expose()
    );
    app.stop().await;
}

#[tokio::test]
async fn production_refuses_the_embedded_store_without_a_real_secret() {
    let dir = tempfile::tempdir().unwrap();
    for secret in ["", "reelay-embedded-secret"] {
        let mut s = test_settings(dir.path());
        s.environment = "production".into();
        s.runware.mode = RunwareMode::Live;
        s.runware.api_key = Secret::new("rw-key");
        s.storage.embedded = true;
        s.storage.secret_access_key = Secret::new(secret);
        let err = match Application::build(s).await {
            Ok(_) => panic!("started with secret {secret:?}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("storage.secret_access_key"), "{err}");
        assert!(err.contains("REELAY__STORAGE__SECRET_ACCESS_KEY"), "{err}");
    }
    assert!(
        !dir.path().join("secrets").exists(),
        "refused before anything was made"
    );
}
