//! `GET /v1/workers`: an all-in-one server lists itself as one live worker.

use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn an_all_in_one_server_lists_one_worker_with_a_heartbeat() {
    let app = spawn_app().await;
    let unauth = app
        .http
        .get(format!("{}/v1/workers", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), 401);

    // The heartbeat task registers at start; poll until it has.
    let mut view = Value::Null;
    for _ in 0..50 {
        let r = app
            .http
            .get(format!("{}/v1/workers", app.url))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        view = r.json().await.unwrap();
        if !view["workers"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let workers = view["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "{view}");
    let w = &workers[0];
    assert!(!w["id"].as_str().unwrap().is_empty(), "{view}");
    assert!(!w["host"].as_str().unwrap().is_empty(), "{view}");
    assert_eq!(w["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        w["last_heartbeat"].as_str().unwrap().contains('T'),
        "{view}"
    );
    assert!(w["started_at"].as_str().unwrap() <= w["last_heartbeat"].as_str().unwrap());
    assert_eq!(w["running"], serde_json::json!([]), "{view}");
    // Queue depth lists every state, nothing queued yet.
    assert_eq!(view["queue"]["requested"], 0, "{view}");
    assert_eq!(view["queue"]["published"], 0, "{view}");
}
