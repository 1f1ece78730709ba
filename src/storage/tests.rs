//! `ObjectStore` and the embedded server together, over real sockets: one
//! server per test in its own temporary folder.

use super::event::{S3EventNotification, EVENT_COMPLETE_MULTIPART, EVENT_PUT};
use super::*;
use crate::secret::Secret;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const AK: &str = "reelay-test";
const SK: &str = "reelay-test-secret-key";
const TOKEN: &str = "event-token";
const MASTERS: &str = "reelay-masters";
const CDN: &str = "reelay-cdn";

struct Harness {
    dir: tempfile::TempDir,
    server: EmbeddedS3,
    cfg: StorageConfig,
    store: ObjectStore,
}

fn config(endpoint: String) -> StorageConfig {
    StorageConfig {
        endpoint,
        access_key_id: AK.into(),
        secret_access_key: Secret::new(SK),
        masters_bucket: MASTERS.into(),
        cdn_bucket: CDN.into(),
        request_timeout_secs: 30,
        ..StorageConfig::default()
    }
}

async fn harness(notifications: Option<NotificationTarget>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(String::new());
    cfg.access_key_id = AK.into();
    let server = start_embedded(cfg.embedded_options(dir.path().join("s3"), notifications))
        .await
        .unwrap();
    cfg.endpoint = server.endpoint_url();
    let store = ObjectStore::new(&cfg).unwrap();
    Harness {
        dir,
        server,
        cfg,
        store,
    }
}

impl Harness {
    fn object_path(&self, bucket: &str, key: &str) -> std::path::PathBuf {
        self.dir.path().join("s3").join(bucket).join(key)
    }
}

fn key(s: &str) -> ObjectKey {
    ObjectKey::parse(s).unwrap()
}

/// An HTTP receiver for event notifications. It answers 500 to the first
/// `fail_first` deliveries, then accepts and forwards the parsed body.
struct Receiver {
    url: String,
    events: mpsc::UnboundedReceiver<S3EventNotification>,
    calls: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct ReceiverState {
    tx: mpsc::UnboundedSender<S3EventNotification>,
    calls: Arc<AtomicUsize>,
    fail_first: usize,
}

async fn receive(State(st): State<ReceiverState>, headers: HeaderMap, body: String) -> StatusCode {
    let n = st.calls.fetch_add(1, Ordering::SeqCst);
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return StatusCode::UNAUTHORIZED;
    }
    if n < st.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let parsed: S3EventNotification = serde_json::from_str(&body).expect("AWS-shaped event");
    let _ = st.tx.send(parsed);
    StatusCode::OK
}

async fn receiver(fail_first: usize) -> Receiver {
    let (tx, events) = mpsc::unbounded_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/events", post(receive))
        .with_state(ReceiverState {
            tx,
            calls: calls.clone(),
            fail_first,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, events, calls }
}

impl Receiver {
    fn target(&self) -> NotificationTarget {
        NotificationTarget {
            url: self.url.clone(),
            bearer_token: Secret::new(TOKEN),
        }
    }

    async fn next(&mut self) -> S3EventNotification {
        tokio::time::timeout(Duration::from_secs(10), self.events.recv())
            .await
            .expect("a notification within 10 s")
            .expect("receiver open")
    }
}

fn patterned(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn a_presigned_put_lands_the_bytes_and_notifies_object_created_put() {
    let mut rx = receiver(0).await;
    let h = harness(Some(rx.target())).await;
    let k = key("masters/campaign 1/v1.mp4");
    let url = h
        .store
        .presign_put(MASTERS, &k, Duration::from_secs(600))
        .await
        .unwrap();
    let body = patterned(4096);

    let resp = reqwest::Client::new()
        .put(&url)
        .header("content-type", "video/mp4")
        .body(body.clone())
        .send()
        .await
        .unwrap();

    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(
        std::fs::read(h.object_path(MASTERS, k.as_str())).unwrap(),
        body
    );
    let meta = h
        .store
        .head(MASTERS, &k)
        .await
        .unwrap()
        .expect("object exists");
    assert_eq!(meta.size, 4096);
    assert_eq!(meta.content_type.as_deref(), Some("video/mp4"));

    let event = rx.next().await;
    let r = &event.records[0];
    assert_eq!(r.event_name, EVENT_PUT);
    assert_eq!(r.event_source, "aws:s3");
    assert_eq!(r.aws_region, "us-east-1");
    assert_eq!(r.s3.bucket.name, MASTERS);
    assert_eq!(r.s3.bucket.arn, format!("arn:aws:s3:::{MASTERS}"));
    assert_eq!(r.s3.object.key, "masters/campaign+1/v1.mp4");
    assert_eq!(r.s3.object.decode_key().unwrap(), k.as_str());
    assert_eq!(r.s3.object.size, Some(4096));
    assert_eq!(
        r.s3.object.e_tag.as_deref(),
        meta.etag.as_deref().map(|t| t.trim_matches('"'))
    );
    assert_eq!(r.request_parameters.source_ip_address, "127.0.0.1");
    assert!(r
        .s3
        .object
        .sequencer
        .as_deref()
        .is_some_and(|s| !s.is_empty()));
}

#[tokio::test]
async fn a_tampered_signature_or_a_wrong_secret_gets_403() {
    let h = harness(None).await;
    let k = key("masters/x.mp4");
    let url = h
        .store
        .presign_put(MASTERS, &k, Duration::from_secs(600))
        .await
        .unwrap();
    let sig_at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut tampered = url.clone();
    let flipped = if &url[sig_at..sig_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    tampered.replace_range(sig_at..sig_at + 1, flipped);

    let http = reqwest::Client::new();
    let resp = http.put(&tampered).body("x").send().await.unwrap();
    assert_eq!(resp.status(), 403, "tampered signature");

    let mut wrong = h.cfg.clone();
    wrong.secret_access_key = Secret::new("not-the-secret");
    let wrong = ObjectStore::new(&wrong).unwrap();
    let url = wrong
        .presign_put(MASTERS, &k, Duration::from_secs(600))
        .await
        .unwrap();
    let resp = http.put(&url).body("x").send().await.unwrap();
    assert_eq!(resp.status(), 403, "wrong secret, presigned");
    let err = wrong
        .put_bytes(MASTERS, &k, b"x".to_vec(), "text/plain", "no-cache")
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Backend { .. }), "{err}");
    assert!(!err.to_string().contains(SK) && !err.to_string().contains("not-the-secret"));

    let resp = http
        .put(format!("{}/{MASTERS}/anon", h.server.endpoint_url()))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "anonymous");
    assert!(!h.object_path(MASTERS, "masters/x.mp4").exists());
}

#[tokio::test]
async fn a_key_that_climbs_out_of_its_bucket_is_refused_and_nothing_lands_elsewhere() {
    let h = harness(None).await;
    let sdk = h.store.sdk();
    for evil in ["../reelay-cdn/x", "a/../../reelay-cdn/x", "./x", "a//b"] {
        // Signed by the SDK and sent as is (its HTTP client does not
        // normalize the path), so this reaches the server's key check.
        let res = sdk
            .put_object()
            .bucket(MASTERS)
            .key(evil)
            .body(b"evil".to_vec().into())
            .send()
            .await;
        let err = res.expect_err(evil);
        let status = err.raw_response().map(|r| r.status().as_u16());
        assert!(
            matches!(status, Some(400 | 403)),
            "{evil}: status {status:?}"
        );

        // The same key through a presigned URL.
        let url = sdk
            .put_object()
            .bucket(MASTERS)
            .key(evil)
            .presigned(
                aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(60))
                    .unwrap(),
            )
            .await
            .unwrap();
        let resp = reqwest::Client::new()
            .put(url.uri())
            .body("evil")
            .send()
            .await
            .unwrap();
        assert!(
            matches!(resp.status().as_u16(), 400 | 403),
            "{evil}: presigned status {}",
            resp.status()
        );
    }
    assert!(!h.object_path(CDN, "x").exists());
    assert!(h.store.list(CDN, "").await.unwrap().is_empty());
    assert!(h.store.list(MASTERS, "").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_multipart_upload_is_reassembled_and_notifies_complete_multipart_upload() {
    let mut rx = receiver(0).await;
    let mut h = harness(Some(rx.target())).await;
    h.cfg.multipart_threshold_bytes = 5 * 1024 * 1024;
    let store = ObjectStore::new(&h.cfg).unwrap();
    let data = patterned(12 * 1024 * 1024 + 123);
    let src = h.dir.path().join("master.mp4");
    std::fs::write(&src, &data).unwrap();
    let k = key("masters/big.mp4");

    let up = store
        .upload_file(MASTERS, &k, &src, "video/mp4", "no-store")
        .await
        .unwrap();

    assert_eq!(up.size, data.len() as u64);
    assert_eq!(up.sha256_hex, sha256_hex(&data));
    assert!(
        up.etag.as_deref().is_some_and(|e| e.ends_with("-3\"")),
        "three parts: {:?}",
        up.etag
    );
    let meta = store.head(MASTERS, &k).await.unwrap().unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(meta.content_type.as_deref(), Some("video/mp4"));
    assert_eq!(meta.cache_control.as_deref(), Some("no-store"));

    let out = h.dir.path().join("back.mp4");
    let down = store.download_to_file(MASTERS, &k, &out).await.unwrap();
    assert_eq!(down.size, data.len() as u64);
    assert_eq!(down.sha256_hex, up.sha256_hex);
    assert_eq!(std::fs::read(&out).unwrap(), data);

    let event = rx.next().await;
    let r = &event.records[0];
    assert_eq!(r.event_name, EVENT_COMPLETE_MULTIPART);
    assert_eq!(r.s3.bucket.name, MASTERS);
    assert_eq!(r.s3.object.decode_key().unwrap(), k.as_str());
    assert_eq!(r.s3.object.size, Some(data.len() as u64));
}

#[tokio::test]
async fn a_server_side_copy_is_byte_exact_in_one_request_and_in_parts() {
    let h = harness(None).await;
    let data = patterned(12 * 1024 * 1024 + 123);
    let src = h.dir.path().join("master.mp4");
    std::fs::write(&src, &data).unwrap();
    let from = key("masters/c/a/v1/t.mp4");
    h.store
        .upload_file(MASTERS, &from, &src, "video/mp4", "no-store")
        .await
        .unwrap();
    let size = data.len() as u64;
    let whole = key("verified/c/a/v1/whole.mp4");
    let parts = key("verified/c/a/v1/parts.mp4");
    h.store
        .copy_within(MASTERS, &from, &whole, size)
        .await
        .unwrap();
    let etag = h
        .store
        .copy_in_parts_above(MASTERS, &from, &parts, size, 0, 5 * 1024 * 1024)
        .await
        .unwrap();
    assert!(
        etag.as_deref().is_some_and(|e| e.ends_with("-3\"")),
        "three parts: {etag:?}"
    );
    for k in [&whole, &parts] {
        let out = h.dir.path().join("back.mp4");
        let down = h.store.download_to_file(MASTERS, k, &out).await.unwrap();
        assert_eq!(down.sha256_hex, sha256_hex(&data), "{k}");
        assert_eq!(down.size, size);
    }
    let missing = key("masters/c/a/v1/none.mp4");
    assert!(h
        .store
        .copy_within(MASTERS, &missing, &whole, 1)
        .await
        .is_err());
}

#[tokio::test]
async fn a_small_file_is_uploaded_in_one_put_and_downloads_with_the_same_hash() {
    let h = harness(None).await;
    let data = patterned(300_000);
    let src = h.dir.path().join("small.mp4");
    std::fs::write(&src, &data).unwrap();
    let k = key("cdn/c/a/1080p.mp4");

    let up = h
        .store
        .upload_file(CDN, &k, &src, "video/mp4", "public, max-age=60")
        .await
        .unwrap();

    assert_eq!(up.sha256_hex, sha256_hex(&data));
    assert!(
        up.etag.as_deref().is_some_and(|e| !e.contains('-')),
        "single PUT etag"
    );
    let out = h.dir.path().join("out.mp4");
    let down = h.store.download_to_file(CDN, &k, &out).await.unwrap();
    assert_eq!(
        down,
        Downloaded {
            size: 300_000,
            sha256_hex: up.sha256_hex
        }
    );
    let meta = h.store.head(CDN, &k).await.unwrap().unwrap();
    assert_eq!(meta.cache_control.as_deref(), Some("public, max-age=60"));
    assert!(meta.last_modified.is_some());
}

#[tokio::test]
async fn missing_objects_are_none_or_not_found() {
    let h = harness(None).await;
    let k = key("nope/missing.mp4");
    assert_eq!(h.store.head(MASTERS, &k).await.unwrap(), None);
    assert!(h.store.get(MASTERS, &k, None).await.unwrap().is_none());
    let out = h.dir.path().join("missing");
    let err = h
        .store
        .download_to_file(MASTERS, &k, &out)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(!out.exists());
}

#[tokio::test]
async fn a_ranged_get_streams_just_the_range() {
    let h = harness(None).await;
    let data = patterned(1000);
    let k = key("cdn/range.bin");
    h.store
        .put_bytes(
            CDN,
            &k,
            data.clone(),
            "application/octet-stream",
            "max-age=5",
        )
        .await
        .unwrap();

    let got = h
        .store
        .get(CDN, &k, Some("bytes=0-99"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.content_length, 100);
    assert_eq!(got.content_range.as_deref(), Some("bytes 0-99/1000"));
    assert_eq!(
        got.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(got.cache_control.as_deref(), Some("max-age=5"));
    assert!(got.etag.is_some());
    let body: Vec<u8> = got.body.map_ok(|b| b.to_vec()).try_concat().await.unwrap();
    assert_eq!(body, &data[..100]);

    let whole = h.store.get(CDN, &k, None).await.unwrap().unwrap();
    assert_eq!(whole.content_length, 1000);
    assert_eq!(whole.content_range, None);
    let body: Vec<u8> = whole
        .body
        .map_ok(|b| b.to_vec())
        .try_concat()
        .await
        .unwrap();
    assert_eq!(body, data);

    let err = h
        .store
        .get(CDN, &k, Some("bytes=5000-6000"))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidRange), "{err}");
}

#[tokio::test]
async fn a_presigned_put_then_head_work_and_a_presigned_get_is_refused() {
    let h = harness(None).await;
    let k = key("masters/p.mp4");
    let put = h
        .store
        .presign_put(MASTERS, &k, Duration::from_secs(60))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    // Any Content-Type is fine: none was signed.
    let resp = http
        .put(&put)
        .header("content-type", "application/x-anything")
        .body(patterned(777))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(h.store.head(MASTERS, &k).await.unwrap().unwrap().size, 777);

    let get = h
        .store
        .presign_get(MASTERS, &k, Duration::from_secs(60))
        .await
        .unwrap();
    // Presigned URLs only ever PUT a master: reading through one is refused.
    let resp = http.get(&get).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("AccessDenied"));
}

#[tokio::test]
async fn a_presigned_url_cannot_write_the_cdn_bucket_or_another_key() {
    let h = harness(None).await;
    let http = reqwest::Client::new();
    let master = key("masters/c/ast_0/v0/task.mp4");
    let url = h
        .store
        .presign_put(MASTERS, &master, Duration::from_secs(60))
        .await
        .unwrap();

    // Same signature, another key: the signature covers the path.
    let other = url.replace("/task.mp4?", "/other.mp4?");
    assert_ne!(other, url);
    let resp = http.put(&other).body("x").send().await.unwrap();
    assert_eq!(resp.status(), 403, "another key");
    // Same signature, the CDN bucket.
    let cdn = url.replace(&format!("/{MASTERS}/"), &format!("/{CDN}/"));
    let resp = http.put(&cdn).body("x").send().await.unwrap();
    assert_eq!(resp.status(), 403, "cdn bucket with a master's signature");

    // A URL validly presigned for the CDN bucket is refused by the guard.
    let manifest = key("v1/c/ast_0/v0/manifest.json");
    let url_cdn = h
        .store
        .presign_put(CDN, &manifest, Duration::from_secs(60))
        .await
        .unwrap();
    let resp = http.put(&url_cdn).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("AccessDenied"));
    assert!(h.store.head(CDN, &manifest).await.unwrap().is_none());
    assert!(h
        .store
        .head(MASTERS, &key("masters/c/ast_0/v0/other.mp4"))
        .await
        .unwrap()
        .is_none());

    // The one key it was minted for works.
    let resp = http.put(&url).body("master").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // reelay itself (header-signed) still writes the CDN bucket.
    h.store
        .put_bytes(
            CDN,
            &manifest,
            b"{}".to_vec(),
            "application/json",
            "no-cache",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn reelays_buckets_cannot_be_deleted_even_when_empty() {
    let h = harness(None).await;
    for bucket in [MASTERS, CDN] {
        let err = h.store.sdk().delete_bucket().bucket(bucket).send().await;
        let err = err.expect_err(bucket);
        let code = err
            .as_service_error()
            .and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e).map(str::to_owned));
        assert_eq!(code.as_deref(), Some("AccessDenied"), "{bucket}");
        assert!(h.dir.path().join("s3").join(bucket).is_dir(), "{bucket}");
    }
    // A bucket that is not reelay's can still be removed once empty.
    h.store.ensure_bucket("reelay-scratch").await.unwrap();
    h.store
        .sdk()
        .delete_bucket()
        .bucket("reelay-scratch")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn list_delete_and_ensure_bucket_behave_like_s3() {
    let h = harness(None).await;
    for k in ["a/1", "a/2", "b/1"] {
        h.store
            .put_bytes(MASTERS, &key(k), b"x".to_vec(), "text/plain", "no-cache")
            .await
            .unwrap();
    }
    assert_eq!(
        h.store.list(MASTERS, "a/").await.unwrap(),
        vec!["a/1", "a/2"]
    );
    h.store.delete(MASTERS, &key("a/1")).await.unwrap();
    h.store.delete(MASTERS, &key("a/1")).await.unwrap();
    assert_eq!(h.store.list(MASTERS, "").await.unwrap(), vec!["a/2", "b/1"]);

    h.store.ensure_bucket(MASTERS).await.unwrap();
    h.store.ensure_bucket("reelay-new").await.unwrap();
    h.store.ensure_bucket("reelay-new").await.unwrap();
    assert!(h.dir.path().join("s3/reelay-new").is_dir());

    // s3s-fs alone would delete the folder with its objects.
    let err = h.store.sdk().delete_bucket().bucket(MASTERS).send().await;
    assert!(err.is_err());
    assert!(h.object_path(MASTERS, "b/1").exists());
}

#[tokio::test]
async fn a_key_too_long_for_the_embedded_server_gets_a_clear_400() {
    let h = harness(None).await;
    let k = key(&"k".repeat(300));
    let err = h
        .store
        .put_bytes(MASTERS, &k, b"x".to_vec(), "text/plain", "no-cache")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("KeyTooLong"), "{err}");
    let ok = key(&format!("masters/{}", "k".repeat(100)));
    h.store
        .put_bytes(MASTERS, &ok, b"x".to_vec(), "text/plain", "no-cache")
        .await
        .unwrap();
}

#[tokio::test]
async fn event_delivery_is_retried_until_the_receiver_accepts() {
    let mut rx = receiver(2).await;
    let h = harness(Some(rx.target())).await;
    let k = key("masters/retry.mp4");
    h.store
        .put_bytes(MASTERS, &k, b"abc".to_vec(), "video/mp4", "no-store")
        .await
        .unwrap();
    let event = rx.next().await;
    assert_eq!(event.records[0].s3.object.size, Some(3));
    assert_eq!(rx.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_put_is_not_held_up_by_an_unreachable_receiver() {
    // Nothing listens on port 9 of loopback: delivery keeps failing.
    let h = harness(Some(NotificationTarget {
        url: "http://127.0.0.1:9/events".into(),
        bearer_token: Secret::new(TOKEN),
    }))
    .await;
    let started = std::time::Instant::now();
    h.store
        .put_bytes(
            MASTERS,
            &key("masters/q.mp4"),
            b"q".to_vec(),
            "video/mp4",
            "no-store",
        )
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let h = harness(None).await;
    let addr = h.server.addr;
    h.server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    let h = harness(None).await;
    let addr = h.server.addr;
    drop(h.server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn the_embedded_server_refuses_to_start_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(String::new());
    cfg.secret_access_key = Secret::default();
    let err = start_embedded(cfg.embedded_options(dir.path().to_path_buf(), None))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Config(_)), "{err}");
}

#[test]
fn storage_config_deserializes_with_defaults_and_hides_the_secret() {
    let cfg: StorageConfig = serde_json::from_str(
        r#"{"embedded": false, "endpoint": "http://minio:9000",
            "access_key_id": "AK", "secret_access_key": "SUPERSECRET"}"#,
    )
    .unwrap();
    assert!(!cfg.embedded);
    assert_eq!(cfg.region, "us-east-1");
    assert_eq!(cfg.multipart_threshold_bytes, 64 * 1024 * 1024);
    assert!(!format!("{cfg:?}").contains("SUPERSECRET"));
    let store = ObjectStore::new(&cfg).unwrap();
    assert!(!format!("{store:?}").contains("SUPERSECRET"));
}

#[tokio::test]
async fn a_presigned_put_without_content_length_is_accepted() {
    let h = harness(None).await;
    let k = key("masters/chunked.mp4");
    let url = h
        .store
        .presign_put(MASTERS, &k, Duration::from_secs(60))
        .await
        .unwrap();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(patterned(70_000)), Ok(patterned(30_000))];
    let resp = reqwest::Client::new()
        .put(&url)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(status, 200, "{}", resp.text().await.unwrap());
    assert_eq!(
        h.store.head(MASTERS, &k).await.unwrap().unwrap().size,
        100_000
    );
}

#[tokio::test]
async fn a_server_side_copy_is_checked_made_durable_and_notified() {
    let mut rx = receiver(0).await;
    let h = harness(Some(rx.target())).await;
    let src = key("masters/src.mp4");
    h.store
        .put_bytes(MASTERS, &src, patterned(10), "video/mp4", "no-store")
        .await
        .unwrap();
    assert_eq!(rx.next().await.records[0].event_name, EVENT_PUT);

    h.store
        .sdk()
        .copy_object()
        .copy_source(format!("{MASTERS}/masters/src.mp4"))
        .bucket(CDN)
        .key("copied.mp4")
        .send()
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(h.object_path(CDN, "copied.mp4")).unwrap(),
        patterned(10)
    );
    let event = rx.next().await;
    assert_eq!(event.records[0].event_name, super::event::EVENT_COPY);
    assert_eq!(event.records[0].s3.bucket.name, CDN);

    let res = h
        .store
        .sdk()
        .copy_object()
        .copy_source(format!("{MASTERS}/../{CDN}/copied.mp4"))
        .bucket(MASTERS)
        .key("stolen.mp4")
        .send()
        .await;
    assert!(res.is_err(), "a copy source outside its bucket is refused");
    assert!(!h.object_path(MASTERS, "stolen.mp4").exists());
}
