//! Callbacks to the requester and CDN purges: durable, retried with
//! backoff, signed, with an event id that stays the same across retries.

use crate::helpers::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use reelay::notify::verify;
use reelay::secret::Secret;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "test-callback-secret";
const PURGE_SECRET: &str = "test-purge-secret";

#[derive(Debug, Clone)]
struct Got {
    path: String,
    event_id: String,
    signature: String,
    body: Vec<u8>,
    answered: u16,
}

/// A receiver that answers 503 to the first two deliveries of each event id.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Got>>>);

async fn receive(
    State(rx): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let event_id = header("reelay-event-id");
    let mut log = rx.0.lock().unwrap();
    let tries = log.iter().filter(|g| g.event_id == event_id).count() + 1;
    let status = if tries <= 2 {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    log.push(Got {
        path: uri.path().to_string(),
        event_id,
        signature: header("reelay-signature"),
        body: body.to_vec(),
        answered: status.as_u16(),
    });
    status
}

impl Receiver {
    async fn start(&self) -> String {
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .route("/purge", axum::routing::post(receive))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    fn log(&self) -> Vec<Got> {
        self.0.lock().unwrap().clone()
    }

    /// Event ids that have been answered 200 on `path`.
    fn accepted(&self, path: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .log()
            .into_iter()
            .filter(|g| g.path == path && g.answered == 200)
            .map(|g| g.event_id)
            .collect();
        ids.dedup();
        ids
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// asset.published, asset.rejected and (once the ttl runs out) asset.expired,
/// plus the CDN purges of the pointers.
#[tokio::test]
async fn a_receiver_that_fails_twice_gets_each_event_on_the_third_try_with_a_valid_signature() {
    let rx = Receiver::default();
    let base = rx.start().await;
    let purge_url = format!("{base}/purge");
    // Deliveries by outcome (this process's registry; other tests only add to it).
    let deliveries = |kind: &str, outcome: &str| {
        reelay::telemetry::metrics::counter(
            "reelay_callback_deliveries_total",
            &[("kind", kind), ("outcome", outcome)],
        )
    };
    let failed_before = [
        deliveries("callback", "failed"),
        deliveries("purge", "failed"),
    ];
    let app = spawn_app_with(|s| {
        s.callbacks.secret = Secret::new(SECRET);
        s.cdn.purge_url = purge_url.clone();
        s.cdn.purge_secret = Secret::new(PURGE_SECRET);
        s.policy.ttl_sweep_interval_secs = 1;
    })
    .await;
    let hook = format!("{base}/hook");
    let meta = [("reelay-callback-url", hook.as_str())];
    app.put_master(
        "masters/cb/good.mp4",
        tiny_clip(640, 360, 2, true, 5).await,
        &meta,
    )
    .await;
    app.put_master("masters/cb/junk.mp4", b"not a video at all".to_vec(), &meta)
        .await;

    let assets = wait_for_campaign(&app, "cb", Duration::from_secs(120), |a| {
        a.len() == 2 && a.iter().all(|x| x["status"] != "processing")
    })
    .await;
    let mut statuses: Vec<&str> = assets
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["published", "rejected"], "{assets:#?}");

    // Both callbacks and the purge get through in the end.
    let start = Instant::now();
    while rx.accepted("/hook").len() < 2 || rx.accepted("/purge").is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "deliveries so far: {:#?}",
            rx.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Two refusals per event, each counted as a failed delivery.
    assert!(deliveries("callback", "failed") >= failed_before[0] + 4.0);
    assert!(deliveries("purge", "failed") >= failed_before[1] + 2.0);

    let log = rx.log();
    let mut types = Vec::new();
    for (path, secret) in [("/hook", SECRET), ("/purge", PURGE_SECRET)] {
        for id in rx.accepted(path) {
            let tries: Vec<&Got> = log.iter().filter(|g| g.event_id == id).collect();
            let answers: Vec<u16> = tries.iter().map(|g| g.answered).collect();
            assert_eq!(
                &answers[..3],
                &[503, 503, 200],
                "{id}: third try is the first success"
            );
            for g in &tries {
                // The same event every time, signed over its timestamp and body.
                assert_eq!(g.body, tries[0].body, "{id}: body changed between retries");
                assert!(
                    verify(secret.as_bytes(), &g.signature, &g.body, now(), 300),
                    "{id}: bad signature {}",
                    g.signature
                );
                assert!(!verify(
                    b"another secret",
                    &g.signature,
                    &g.body,
                    now(),
                    300
                ));
            }
            let body: Value = serde_json::from_slice(&tries[0].body).unwrap();
            assert_eq!(body["id"], id.as_str(), "the header id is the body id");
            types.push((body["type"].as_str().unwrap().to_string(), body));
        }
    }
    types.sort_by(|a, b| a.0.cmp(&b.0));
    let kinds: Vec<&str> = types.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(kinds, ["asset.published", "asset.rejected", "cdn.purge"]);

    let published = &types[0].1["data"];
    let good = assets.iter().find(|a| a["status"] == "published").unwrap();
    assert_eq!(published["asset_id"], good["id"]);
    assert_eq!(published["campaign"], "cb");
    assert_eq!(published["source"], "upload");
    assert_eq!(published["variation"]["state"], "published");
    assert_eq!(
        published["qc"]["verdict"], "pass",
        "the QC report travels with the event"
    );
    assert!(!published["qc"]["checks"].as_array().unwrap().is_empty());
    let vast_url = published["published"]["vast_url"].as_str().unwrap();
    let manifest_url = published["published"]["manifest_url"].as_str().unwrap();
    assert!(vast_url.ends_with("/vast.xml"), "{vast_url}");
    assert!(published["published"]["universal_ad_id"]
        .as_str()
        .unwrap()
        .contains(published["published"]["content_hash"].as_str().unwrap()));

    let rejected = &types[1].1["data"];
    assert_eq!(rejected["variation"]["state"], "rejected");
    assert_eq!(rejected["reason"]["code"], "masterUnreadable");

    // The purge names exactly the two pointers that changed.
    let purge = &types[2].1;
    let mut urls: Vec<&str> = purge["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    urls.sort();
    let mut expected = vec![manifest_url, vast_url];
    expected.sort();
    assert_eq!(urls, expected);

    // The API shows each notification delivered after three attempts (once
    // reelay has recorded the answer the receiver just gave).
    let a = wait_for(
        &app.http,
        &app.url,
        good["id"].as_str().unwrap(),
        Duration::from_secs(30),
        |a| {
            a["notifications"]
                .as_array()
                .is_some_and(|n| n.len() == 2 && n.iter().all(|n| n["delivered_at"].is_string()))
        },
    )
    .await;
    let notes = a["notifications"].as_array().unwrap();
    assert_eq!(notes.len(), 2, "{notes:#?}");
    for n in notes {
        assert_eq!(n["attempts"], 3, "{n}");
        assert!(n["delivered_at"].is_string(), "{n}");
    }

    // When the published asset's ttl runs out, the sweeper takes its
    // pointers down, and the requester hears asset.expired (signed, retried)
    // while the CDN is told to purge the pointers.
    let vast_key = vast_url.split_once("/cdn/").unwrap().1.to_string();
    assert_eq!(
        app.http
            .get(format!("{}/cdn/{vast_key}", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    on_db!(app.db().await, p => sqlx::query(
        "UPDATE variations SET arrived_at = arrived_at - (SELECT ttl_secs FROM assets WHERE id = $1) * 1000 WHERE asset_id = $1",
    )
    .bind(good["id"].as_str().unwrap())
    .execute(p)
    .await
    .unwrap().rows_affected());
    let start = Instant::now();
    while rx.accepted("/hook").len() < 3 || rx.accepted("/purge").len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "deliveries so far: {:#?}",
            rx.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = rx.log();
    let expired_id = rx.accepted("/hook")[2].clone();
    let tries: Vec<&Got> = log.iter().filter(|g| g.event_id == expired_id).collect();
    assert_eq!(tries.len(), 3);
    assert!(verify(
        SECRET.as_bytes(),
        &tries[2].signature,
        &tries[2].body,
        now(),
        300
    ));
    let expired: Value = serde_json::from_slice(&tries[2].body).unwrap();
    assert_eq!(expired["type"], "asset.expired");
    assert_eq!(expired["data"]["asset_id"], good["id"]);
    assert_eq!(expired["data"]["reason"]["code"], "ttlExpired");
    let purge_id = rx.accepted("/purge")[1].clone();
    let purge = log.iter().find(|g| g.event_id == purge_id).unwrap();
    assert!(verify(
        PURGE_SECRET.as_bytes(),
        &purge.signature,
        &purge.body,
        now(),
        300
    ));
    let purge: Value = serde_json::from_slice(&purge.body).unwrap();
    assert!(purge["urls"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u == vast_url));
    assert_eq!(
        app.http
            .get(format!("{}/cdn/{vast_key}", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "vast.xml is taken down with the manifest"
    );
    app.stop().await;
}

/// A TCP listener (on 127.0.0.1, and on [::1] at the same port when the
/// machine has IPv6) that counts the connections it is offered.
async fn counting_listener() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let seen = Arc::new(AtomicUsize::new(0));
    let v4 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = v4.local_addr().unwrap().port();
    let mut listeners = vec![v4];
    if let Ok(v6) = tokio::net::TcpListener::bind(("::1", port)).await {
        listeners.push(v6);
    }
    for l in listeners {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok((_conn, _)) = l.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    (port, seen)
}

/// Every way of writing this machine's loopback address in a URL.
fn loopback_spellings(port: u16) -> Vec<String> {
    [
        "127.0.0.1",
        "2130706433",
        "0x7f.1",
        "0x7f000001",
        "0177.0.0.1",
        "0177.1",
        "127.1",
        "127.0.0.1.",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[0:0:0:0:0:0:0:1]",
        "[::127.0.0.1]",
        "0.0.0.0",
    ]
    .iter()
    .map(|h| format!("http://{h}:{port}/hook"))
    .collect()
}

/// Queues one notification row the way the store does, due now.
async fn queue(db: &TestDb, id: &str, kind: &str, url: &str) {
    on_db!(db, p => sqlx::query(
        "INSERT INTO outbox (id, kind, event_type, asset_id, variation_id, url, body, created_at, next_attempt_at)
         VALUES ($1, $2, 'asset.failed', NULL, NULL, $3, '{}', $4, $4)",
    )
    .bind(id)
    .bind(kind)
    .bind(url)
    .bind(chrono::Utc::now().timestamp_millis())
    .execute(p)
    .await
    .unwrap().rows_affected());
}

/// The last_error of each row once every row has one.
async fn last_errors(db: &TestDb, ids: &[String]) -> Vec<(String, String)> {
    let start = Instant::now();
    loop {
        let rows: Vec<(String, Option<String>)> = on_db!(db, p => {
            sqlx::query_as("SELECT id, last_error FROM outbox ORDER BY id")
                .fetch_all(p)
                .await
                .unwrap()
        });
        let done: Vec<(String, String)> = rows
            .iter()
            .filter(|(id, _)| ids.contains(id))
            .filter_map(|(id, e)| e.clone().map(|e| (id.clone(), e)))
            .collect();
        if done.len() == ids.len() {
            return done;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "rows so far: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn callbacks_to_any_spelling_of_loopback_are_refused_and_never_connect() {
    use std::sync::atomic::Ordering;
    let (port, seen) = counting_listener().await;
    let app = spawn_app_with(|s| {
        // The default: no private network allowed.
        s.outbound.allowed_private_networks = vec![];
        s.cdn.purge_url = format!("http://0x7f.1:{port}/purge");
        s.cdn.purge_secret = Secret::new(PURGE_SECRET);
    })
    .await;

    // At request time: a literal in a refused range is a 400 naming the field.
    let mut bad = loopback_spellings(port);
    bad.extend([
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[fd00::1]/hook".to_string(),
        "http://10.0.0.8/hook".to_string(),
        "http://user:secret@ops.example/hook".to_string(),
        "http://".to_string(),
    ]);
    for url in &bad {
        let mut body = request(5);
        body["callbackUrl"] = url.as_str().into();
        let res = app.post_asset(&body).await;
        assert_eq!(res.status(), 400, "{url}");
        let answer: Value = res.json().await.unwrap();
        let fields = answer["error"]["fields"].as_array().unwrap();
        assert!(
            fields.iter().any(|f| f["path"] == "callbackUrl"),
            "{url}: {answer}"
        );
    }

    // At delivery time (a row queued before the rule, or a purge URL): each
    // spelling, and a name that resolves to loopback, is refused.
    let db = app.db().await;
    let mut urls = loopback_spellings(port);
    urls.push(format!("http://localhost:{port}/hook"));
    let mut ids = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let id = format!("evt_guard_{i:02}");
        queue(&db, &id, "callback", url).await;
        ids.push(id);
    }
    for (id, error) in last_errors(&db, &ids).await {
        let url = &urls[ids.iter().position(|i| *i == id).unwrap()];
        assert_eq!(error, reelay::outbound::REFUSED, "{url}");
    }

    // The whole path: a hand upload naming a host that resolves to
    // loopback, published, its callback and purge refused.
    let hook = format!("http://localhost:{port}/hook");
    app.put_master(
        "masters/guard/clip.mp4",
        tiny_clip(640, 360, 2, true, 9).await,
        &[("reelay-callback-url", hook.as_str())],
    )
    .await;
    let assets = wait_for_campaign(&app, "guard", Duration::from_secs(120), |a| {
        a.len() == 1 && a[0]["status"] != "processing"
    })
    .await;
    assert_eq!(assets[0]["status"], "published", "{assets:#?}");
    let a = wait_for(
        &app.http,
        &app.url,
        assets[0]["id"].as_str().unwrap(),
        Duration::from_secs(30),
        |a| {
            a["notifications"]
                .as_array()
                .is_some_and(|n| n.len() == 2 && n.iter().all(|n| n["last_error"].is_string()))
        },
    )
    .await;
    for n in a["notifications"].as_array().unwrap() {
        assert_eq!(n["last_error"], reelay::outbound::REFUSED, "{n}");
        assert!(n["delivered_at"].is_null(), "{n}");
    }
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "no connection reached the listener"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_failed_delivery_says_only_delivery_failed() {
    // A receiver that answers 500 with details, and a port nobody listens on.
    let app500 = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "db at 10.1.2.3:5432 refused",
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app500).await.unwrap() });
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("http://127.0.0.1:{port}/hook")
    };
    // The test config allows loopback receivers.
    let app = spawn_app().await;
    let db = app.db().await;
    queue(&db, "evt_fail_500", "callback", &up).await;
    queue(&db, "evt_fail_closed", "purge", &closed).await;
    let ids = ["evt_fail_500".to_string(), "evt_fail_closed".to_string()];
    for (id, error) in last_errors(&db, &ids).await {
        assert_eq!(error, reelay::outbound::FAILED, "{id}");
    }
    app.stop().await;
}
