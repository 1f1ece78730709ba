//! Idempotency-Key on POST: a retry replays the first answer and starts no
//! new work, another body is 422, a key in flight is 409, a bad key is 400
//! naming the header, keys are per API key, survive a restart and are
//! forgotten after 24 h.

use crate::helpers::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const OTHER_KEY: &str = "second-test-api-key";

/// No generation is rendered while these tests run (nothing to wait for).
fn quiet(s: &mut reelay::config::Settings) {
    s.simulator.generation_secs = 600.0;
    s.policy.ttl_sweep_interval_secs = 1;
    s.api
        .key_sha256
        .push(hex::encode(reelay::api::hash_key(OTHER_KEY)));
}

async fn post(app: &TestApp, key: &str, idem: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(format!("{}/v1/assets", app.url))
        .bearer_auth(key)
        .header("Idempotency-Key", idem)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn replayed(res: &reqwest::Response) -> bool {
    res.headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

fn campaign(name: &str) -> Value {
    let mut body = request(3);
    body["campaign"] = name.into();
    body
}

#[tokio::test]
async fn a_retry_replays_the_first_answer_and_makes_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir.path(), quiet).await;
    let body = campaign("idem");
    let first = post(&app, KEY, "order-1", &body).await;
    assert_eq!(first.status(), 202);
    assert!(!replayed(&first));
    let location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();

    let again = post(&app, KEY, "order-1", &body).await;
    assert_eq!(again.status(), 202);
    assert!(replayed(&again), "{:?}", again.headers());
    assert_eq!(again.headers()["location"], location);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "the first answer, byte for byte");
    assert_eq!(app.campaign("idem").await.len(), 1, "no second asset");

    // The same key with another body: 422, and still one asset.
    let mut other = body.clone();
    other["generation"]["positivePrompt"] = "a blue car".into();
    let res = post(&app, KEY, "order-1", &other).await;
    assert_eq!(res.status(), 422);
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["error"]["code"], "idempotency_key_reused", "{e}");
    assert_eq!(e["error"]["fields"][0]["path"], "Idempotency-Key");
    assert_eq!(app.campaign("idem").await.len(), 1);

    // Keys belong to one API key: the other key's "order-1" is its own.
    let res = post(&app, OTHER_KEY, "order-1", &body).await;
    assert_eq!(res.status(), 202);
    assert!(!replayed(&res));
    assert_eq!(app.campaign("idem").await.len(), 2);

    // Stored under the API key's hash, never the key.
    let db = app.db().await;
    let scopes: Vec<(String,)> = on_db!(db, p => {
        sqlx::query_as("SELECT scope_sha256 FROM idempotency_keys")
            .fetch_all(p)
            .await
            .unwrap()
    });
    assert_eq!(scopes.len(), 2);
    assert!(scopes.iter().any(|(s,)| *s == key_hash()));
    assert!(scopes.iter().all(|(s,)| s != KEY && s != OTHER_KEY));

    // Durable: a restarted server still replays.
    let app = app.restart_with(quiet).await;
    let res = post(&app, KEY, "order-1", &body).await;
    assert_eq!(res.status(), 202);
    assert!(replayed(&res));
    assert_eq!(res.json::<Value>().await.unwrap()["id"], first["id"]);
    assert_eq!(app.campaign("idem").await.len(), 2);

    // After 24 h the key is forgotten: the sweeper removes it and the key
    // is free for a new request.
    let db = app.db().await;
    on_db!(db, p => {
        sqlx::query("UPDATE idempotency_keys SET created_at = created_at - 25 * 3600 * 1000")
            .execute(p)
            .await
            .unwrap().rows_affected()
    });
    let start = Instant::now();
    loop {
        let (n,): (i64,) = on_db!(db, p => {
            sqlx::query_as("SELECT COUNT(*) FROM idempotency_keys")
                .fetch_one(p)
                .await
                .unwrap()
        });
        if n == 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "not swept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let res = post(&app, KEY, "order-1", &other).await;
    assert_eq!(res.status(), 202);
    assert!(!replayed(&res));
    app.stop().await;
}

#[tokio::test]
async fn concurrent_duplicates_make_one_asset_and_a_key_in_flight_is_409() {
    let app = spawn_app_with(quiet).await;
    let body = campaign("idem-race");
    let answers = futures::future::join_all((0..8).map(|_| post(&app, KEY, "race", &body))).await;
    let mut fresh = 0;
    for res in answers {
        match res.status().as_u16() {
            202 if !replayed(&res) => fresh += 1,
            202 => {}
            409 => {
                let e: Value = res.json().await.unwrap();
                assert_eq!(e["error"]["code"], "idempotency_key_in_use", "{e}");
            }
            s => panic!("unexpected {s}: {}", res.text().await.unwrap()),
        }
    }
    assert_eq!(fresh, 1, "exactly one request did the work");
    assert_eq!(app.campaign("idem-race").await.len(), 1);

    // A first request still being answered (its row has no answer yet).
    let bytes = serde_json::to_vec(&body).unwrap();
    let mut h = Sha256::new();
    h.update(b"POST\n/v1/assets\n");
    h.update(&bytes);
    let db = app.db().await;
    let request_sha256 = hex::encode(h.finalize());
    on_db!(db, p => sqlx::query(
        "INSERT INTO idempotency_keys (scope_sha256, idem_key, request_sha256, created_at)
         VALUES ($1, 'busy', $2, $3)",
    )
    .bind(key_hash())
    .bind(&request_sha256)
    .bind(chrono::Utc::now().timestamp_millis())
    .execute(p)
    .await
    .unwrap().rows_affected());
    let res = post(&app, KEY, "busy", &body).await;
    assert_eq!(res.status(), 409);
    assert_eq!(app.campaign("idem-race").await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_bad_key_is_400_naming_the_header_and_errors_are_not_kept() {
    let app = spawn_app_with(quiet).await;
    let body = campaign("idem-bad");
    for bad in ["k".repeat(256), "two words".to_string(), String::new()] {
        let res = post(&app, KEY, &bad, &body).await;
        assert_eq!(res.status(), 400, "{bad:?}");
        let e: Value = res.json().await.unwrap();
        assert_eq!(e["error"]["code"], "invalid_request");
        assert_eq!(e["error"]["fields"][0]["path"], "Idempotency-Key", "{e}");
    }
    // 255 bytes is fine.
    let res = post(&app, KEY, &"k".repeat(255), &body).await;
    assert_eq!(res.status(), 202);

    // A refused request does not keep its key: the corrected one can use it.
    let mut wrong = body.clone();
    wrong["generation"]["duration"] = 99.into();
    let res = post(&app, KEY, "fix-me", &wrong).await;
    assert_eq!(res.status(), 400);
    let res = post(&app, KEY, "fix-me", &body).await;
    assert_eq!(res.status(), 202);
    assert!(!replayed(&res));

    // Without a valid API key nothing is stored: 401 as always.
    let res = post(&app, "not-a-key", "anon", &body).await;
    assert_eq!(res.status(), 401);
    let db = app.db().await;
    let (n,): (i64,) = on_db!(db, p => {
        sqlx::query_as("SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = 'anon'")
            .fetch_one(p)
            .await
            .unwrap()
    });
    assert_eq!(n, 0);
    app.stop().await;
}
