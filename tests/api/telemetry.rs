//! `/metrics` access, object-store errors counted, and `x-request-id` on
//! every answer (the counters after a real published asset are checked in
//! `cli`).

use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn metrics_need_a_key_unless_public_and_request_ids_are_kept_or_made() {
    let app = spawn_app_with(|s| {
        s.metrics.token = reelay::secret::Secret::new("scraper-token".to_string());
    })
    .await;
    let url = format!("{}/metrics", app.url);
    let res = app.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    for token in [KEY, "scraper-token"] {
        let res = app.http.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(res.status(), 200, "{token}");
        let text = res.text().await.unwrap();
        assert!(text.contains("# TYPE reelay_variations gauge"), "{text}");
        assert!(
            text.contains("reelay_variations{state=\"published\"} 0"),
            "{text}"
        );
    }
    let res = app
        .http
        .get(&url)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // A well-formed id is kept; a malformed or missing one becomes a UUID,
    // on every answer (404 and 405 included).
    let res = app
        .http
        .get(format!("{}/healthz", app.url))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    for (path, sent) in [
        ("/no/such/route", Some("bad id with spaces")),
        ("/v1/options", None),
    ] {
        let mut req = app.http.get(format!("{}{path}", app.url));
        if let Some(s) = sent {
            req = req.header("x-request-id", s);
        }
        let res = req.send().await.unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{path}: {id}");
    }
    let res = app
        .http
        .delete(format!("{}/v1/options", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert!(res.headers().contains_key("x-request-id"));

    // An object-store call that fails is counted by its operation.
    let errors = |text: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix("reelay_object_store_errors_total{operation=\"get_object\"} ")
            })
            .map_or(0.0, |v| v.parse::<f64>().unwrap())
    };
    let scrape = || async {
        let res = app.http.get(&url).bearer_auth(KEY).send().await.unwrap();
        res.text().await.unwrap()
    };
    let before = errors(&scrape().await);
    let key = reelay::storage::ObjectKey::parse("nothing/here.mp4").unwrap();
    // A store nobody answers for (a port just freed).
    let mut storage = app.application().settings.storage.clone();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    storage.endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let down = reelay::storage::ObjectStore::new(&storage).unwrap();
    let got = down.get(&storage.cdn_bucket, &key, None).await;
    assert!(got.is_err(), "an unreachable store answers an error");
    let after = errors(&scrape().await);
    assert!(after > before, "{before} -> {after}");

    let open = spawn_app_with(|s| s.metrics.public = true).await;
    let res = open
        .http
        .get(format!("{}/metrics", open.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
