//! The two doors the outside world pushes through: Runware's webhook and the
//! S3 event intake. Both must refuse strangers and accept the real sender.

use crate::helpers::*;
use serde_json::{json, Value};

async fn one_asset(app: &TestApp) -> Value {
    let res = app.post_asset(&request(5)).await;
    assert_eq!(res.status(), 202);
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_webhook_with_a_wrong_or_missing_token_gets_401() {
    let app = spawn_app().await;
    let a = one_asset(&app).await;
    let vid = a["variations"][0]["id"].as_str().unwrap();
    let task = a["variations"][0]["task_uuid"].as_str().unwrap();
    let body = json!({"data": [{"taskType": "videoInference", "taskUUID": task, "status": "success", "cost": 9.99}]});
    for url in [
        format!("{}/v1/webhooks/runware/{vid}", app.url),
        format!("{}/v1/webhooks/runware/{vid}?token=0000", app.url),
        format!("{}/v1/webhooks/runware/nope?token=0000", app.url),
    ] {
        let res = app.http.post(&url).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 401, "{url}");
        // It says what is expected: the webhook's token, not an API key.
        let answer: Value = res.json().await.unwrap();
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("webhook token") && !message.contains("API key"),
            "{answer}"
        );
    }
    // Nothing the stranger said was recorded.
    let a = get_asset(&app.http, &app.url, a["id"].as_str().unwrap()).await;
    assert_ne!(a["cost_usd"], 9.99);
    app.stop().await;
}

#[tokio::test]
async fn s3_events_need_the_intake_token_and_wake_the_variation_whose_master_landed() {
    let app = spawn_app().await;
    let a = one_asset(&app).await;
    let id = a["id"].as_str().unwrap();
    let event = |key: &str| {
        json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "reelay-masters"}, "object": {"key": key, "size": 10, "sequencer": "01"}}
        }]})
    };
    // Each task uploads to a key of its own, named by its taskUUID.
    let task = a["variations"][0]["task_uuid"].as_str().unwrap();
    let key = format!("masters/test/{id}/v0/{task}.mp4");
    let url = format!("{}/v1/events/s3", app.url);
    let res = app.http.post(&url).json(&event(&key)).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let answer: Value = res.json().await.unwrap();
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("events token") && !m.contains("API key")),
        "{answer}"
    );
    let res = app
        .http
        .post(&url)
        .bearer_auth("guess")
        .json(&event(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let token = app
        .app
        .as_ref()
        .unwrap()
        .events_token()
        .expose()
        .to_string();
    let res = app
        .http
        .post(&url)
        .bearer_auth(&token)
        .json(&event(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["matched"], 1, "{body}");
    let res = app
        .http
        .post(&url)
        .bearer_auth(&token)
        .json(&event("masters/test/someone-else/v0/master.mp4"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["matched"], 0);
    let res = app
        .http
        .post(&url)
        .bearer_auth(&token)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn the_cdn_origin_answers_404_for_missing_files_and_refuses_escaping_paths() {
    let app = spawn_app().await;
    for path in ["v1/nothing/here.mp4", "v1/../reelay-masters/x", "a//b"] {
        let res = app
            .http
            .get(format!("{}/cdn/{path}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    app.stop().await;
}
