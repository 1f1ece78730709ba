//! The TTL policy: once an asset's ttl has run out, the sweeper takes its
//! files off the CDN and marks it expired, even across a restart.

use crate::helpers::*;
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn an_expired_asset_is_unpublished_after_a_restart_and_not_before_its_time() {
    let app = spawn_app().await;
    let res = app.post_asset(&request(3)).await;
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
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
    let keys: Vec<String> = std::iter::once(
        a["variations"][0]["published"]["manifest_url"]
            .as_str()
            .unwrap()
            .split("/cdn/")
            .nth(1)
            .unwrap()
            .to_string(),
    )
    .chain(
        manifest["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["key"].as_str().unwrap().to_string()),
    )
    .chain([manifest["poster"]["key"].as_str().unwrap().to_string()])
    .collect();

    // Age the asset while reelay is down: its ttl (a day) now ends 3 s from now.
    let app = app.restart().await;
    let db = app.db().await;
    let due_ms = chrono::Utc::now().timestamp_millis() + 3000;
    on_db!(db, p => sqlx::query("UPDATE variations SET arrived_at = $1 - (SELECT ttl_secs FROM assets WHERE id = $2) * 1000 WHERE asset_id = $2")
        .bind(due_ms)
        .bind(&id)
        .execute(p)
        .await
        .unwrap().rows_affected());

    let a = wait_for(&app.http, &app.url, &id, Duration::from_secs(60), |a| {
        a["status"] == "expired"
    })
    .await;
    let expired = &a["variations"][0];
    assert_eq!(expired["reason"]["code"], "ttlExpired");
    let at = expired["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["to"] == "expired")
        .unwrap()["at"]
        .as_str()
        .unwrap()
        .to_string();
    let at_ms = chrono::DateTime::parse_from_rfc3339(&at)
        .unwrap()
        .timestamp_millis();
    // Timestamps are stored to the millisecond but shown to the second.
    assert!(at_ms >= due_ms - 999, "expired at {at} before its due time");
    for key in keys {
        let res = app
            .http
            .get(format!("{}/cdn/{key}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{key} is still served");
    }
    // Nothing of the variation is left in the bucket (qc.json, every file).
    let folder = manifest["manifest_url"]
        .as_str()
        .unwrap()
        .split_once("/cdn/")
        .unwrap()
        .1
        .trim_end_matches("manifest.json")
        .to_string();
    let bucket = app.application().settings.storage.cdn_bucket.clone();
    let left = app.objects().list(&bucket, &folder).await.unwrap();
    assert!(left.is_empty(), "left behind: {left:?}");
    app.stop().await;
}
