//! S3 events as they really arrive: duplicated, out of order, in four
//! envelope shapes, racing the embedded store's own notifications. Each
//! distinct master version must be processed once and published once.

use crate::helpers::*;
use futures::StreamExt;
use rand::seq::SliceRandom;
use reelay::storage::event::encode_key;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const CAMPAIGN: &str = "storm";
const BUCKET: &str = "reelay-masters";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:reelay-masters";

/// One version of one object, as the events describe it.
#[derive(Clone)]
struct Version {
    key: String,
    etag: String,
    sequencer: String,
}

/// Like S3's: hex that grows with time (the embedded store uses the same clock).
fn sequencer_now() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    format!("{nanos:016X}")
}

fn record(v: &Version, event_name: &str, source: &str) -> Value {
    json!({
        "eventVersion": "2.1", "eventSource": source, "awsRegion": "us-east-1",
        "eventTime": "2026-01-01T00:00:00.000Z", "eventName": event_name,
        "userIdentity": {"principalId": "AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "10.0.0.1"},
        "responseElements": {"x-amz-request-id": "REQ", "x-amz-id-2": "ID2"},
        "s3": {
            "s3SchemaVersion": "1.0", "configurationId": "masters",
            "bucket": {"name": BUCKET, "ownerIdentity": {"principalId": "OWNER"}, "arn": format!("arn:aws:s3:::{BUCKET}")},
            "object": {"key": encode_key(&v.key), "size": 1000, "eTag": v.etag, "sequencer": v.sequencer}
        }
    })
}

/// A stand-in for SNS on loopback: a certificate made by the openssl CLI,
/// served at `/cert.pem`; `/confirm` counts subscription confirmations.
/// Messages are signed with its key (SignatureVersion 2, SHA256withRSA).
struct SnsEndpoint {
    base: String,
    key: aws_lc_rs::signature::RsaKeyPair,
    confirms: Arc<AtomicUsize>,
    cert_fetches: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl SnsEndpoint {
    async fn start() -> SnsEndpoint {
        use axum::routing::get;
        use rustls_pki_types::pem::PemObject;
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        let out = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=sns.test"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_file(&key).unwrap();
        let key = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
        let pem = std::fs::read(&cert).unwrap();
        let confirms = Arc::new(AtomicUsize::new(0));
        let cert_fetches = Arc::new(AtomicUsize::new(0));
        let (c, f) = (confirms.clone(), cert_fetches.clone());
        let router = axum::Router::new()
            .route(
                "/confirm",
                get(move || {
                    c.fetch_add(1, Ordering::SeqCst);
                    async { "<ConfirmSubscriptionResponse/>" }
                }),
            )
            .route(
                "/cert.pem",
                get(move || {
                    f.fetch_add(1, Ordering::SeqCst);
                    let pem = pem.clone();
                    async move { pem }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        SnsEndpoint {
            base,
            key,
            confirms,
            cert_fetches,
            _dir: dir,
        }
    }

    /// The settings that make reelay trust this endpoint.
    fn trust(&self, s: &mut reelay::config::Settings) {
        s.events.sns_hosts = vec![self.base.clone()];
    }

    fn sign(&self, mut msg: Value) -> Value {
        use base64::Engine;
        msg["SignatureVersion"] = "2".into();
        msg["SigningCertURL"] = format!("{}/cert.pem", self.base).into();
        let text = reelay::events::sns::string_to_sign(&msg).unwrap();
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                text.as_bytes(),
                &mut sig,
            )
            .unwrap();
        msg["Signature"] = base64::engine::general_purpose::STANDARD.encode(sig).into();
        msg
    }
}

/// The same event in shape `shape` (0 S3, 1 SNS, 2 EventBridge, 3 MinIO).
fn envelope(shape: usize, v: &Version, sns: &SnsEndpoint) -> Value {
    match shape % 4 {
        0 => json!({"Records": [record(v, "ObjectCreated:Put", "aws:s3")]}),
        1 => sns.sign(json!({
            "Type": "Notification", "MessageId": uuid::Uuid::new_v4().to_string(),
            "TopicArn": TOPIC, "Subject": "Amazon S3 Notification",
            "Message": json!({"Records": [record(v, "ObjectCreated:CompleteMultipartUpload", "aws:s3")]}).to_string(),
            "Timestamp": "2026-01-01T00:00:00.000Z",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
        })),
        2 => json!({
            "version": "0", "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
            "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
            "resources": [format!("arn:aws:s3:::{BUCKET}")],
            "detail": {
                "version": "0", "bucket": {"name": BUCKET},
                "object": {"key": encode_key(&v.key), "size": 1000, "etag": v.etag, "sequencer": v.sequencer},
                "request-id": "REQ", "requester": "123456789012", "reason": "PutObject"
            }
        }),
        _ => json!({
            "EventName": "s3:ObjectCreated:Put",
            "Key": format!("{BUCKET}/{}", v.key),
            "Records": [record(v, "s3:ObjectCreated:Put", "minio:s3")]
        }),
    }
}

/// Posts every body (8 at a time) and adds up the intake's counts.
async fn deliver(app: &TestApp, bodies: Vec<Value>) -> BTreeMap<String, u64> {
    let token = app.events_token();
    let url = format!("{}/v1/events/s3", app.url);
    let answers: Vec<Value> = futures::stream::iter(bodies)
        .map(|b| {
            let req = app.http.post(&url).bearer_auth(&token).json(&b);
            async move {
                let res = req.send().await.unwrap();
                assert_eq!(res.status(), 200, "{b}");
                res.json::<Value>().await.unwrap()
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut counts = BTreeMap::new();
    for a in answers {
        for (k, v) in a.as_object().unwrap() {
            *counts.entry(k.clone()).or_default() += v.as_u64().unwrap_or(0);
        }
    }
    counts
}

async fn upload(app: &TestApp, key: &str, bytes: Vec<u8>) -> Version {
    let etag = app.put_master(key, bytes, &[]).await;
    Version {
        key: key.to_string(),
        etag,
        sequencer: sequencer_now(),
    }
}

fn sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[tokio::test]
async fn an_event_storm_processes_and_publishes_each_master_version_once() {
    // The storm is the only source of events here (the embedded store's own
    // notifications would otherwise always come first).
    let sns = SnsEndpoint::start().await;
    let app = spawn_app_with(|s| {
        s.storage.embedded_events = false;
        sns.trust(s);
    })
    .await;
    let keys = [
        format!("masters/{CAMPAIGN}/a.mp4"),
        format!("masters/{CAMPAIGN}/b.mp4"),
        format!("masters/{CAMPAIGN}/with space.mp4"),
        format!("masters/{CAMPAIGN}/plus+sign.mp4"),
    ];
    let mut rng = rand::rng();

    // Phase 1: four masters land; ~200 events about them, every shape,
    // each event many times, shuffled, plus noise that must be ignored.
    let mut v1 = Vec::new();
    let mut v1_bytes = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let bytes = tiny_clip(640, 360, 2, true, 100 + i as u64).await;
        v1_bytes.push(bytes.clone());
        v1.push(upload(&app, k, bytes).await);
    }
    let mut bodies = Vec::new();
    for v in &v1 {
        for n in 0..48 {
            bodies.push(envelope(n, v, &sns));
        }
    }
    // A batch in one body, an object removal, the CDN bucket, a test event.
    bodies.push(json!({"Records": v1.iter().map(|v| record(v, "ObjectCreated:Copy", "aws:s3")).collect::<Vec<_>>()}));
    let mut removed = record(&v1[0], "ObjectRemoved:Delete", "aws:s3");
    removed["s3"]["object"]["sequencer"] = json!("FFFFFFFFFFFFFFFFFF");
    bodies.push(json!({"Records": [removed]}));
    let mut cdn = record(&v1[0], "ObjectCreated:Put", "aws:s3");
    cdn["s3"]["bucket"]["name"] = json!("reelay-cdn");
    bodies.push(json!({"Records": [cdn]}));
    bodies.push(json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}));
    bodies.shuffle(&mut rng);
    let phase1 = deliver(&app, bodies).await;
    assert_eq!(
        phase1.get("restarted").copied().unwrap_or(0),
        0,
        "{phase1:?}"
    );
    assert_eq!(phase1.get("stale").copied().unwrap_or(0), 0, "{phase1:?}");
    assert!(phase1["ignored"] >= 3, "{phase1:?}");
    // 196 deliveries of 4 versions: all but (at most) the first of each repeat one.
    assert!(phase1["duplicates"] >= 192, "{phase1:?}");

    let assets = wait_for_campaign(&app, CAMPAIGN, Duration::from_secs(240), |a| {
        a.len() >= 4 && a.iter().all(|x| x["status"] != "processing")
    })
    .await;
    assert_eq!(assets.len(), 4, "one asset per key: {assets:#?}");
    let mut by_key = BTreeMap::new();
    for a in &assets {
        assert_eq!(a["status"], "published", "{a:#}");
        let full = get_asset(&app.http, &app.url, a["id"].as_str().unwrap()).await;
        let v = full["variations"][0].clone();
        let key = v["master"]["key"].as_str().unwrap().to_string();
        assert_eq!(entered(&v, "arrived"), 1, "{key}: {v:#}");
        assert_eq!(entered(&v, "published"), 1, "{key}: {v:#}");
        by_key.insert(key, full);
    }
    for (k, bytes) in keys.iter().zip(&v1_bytes) {
        let a = &by_key[k];
        assert_eq!(a["variations"][0]["master"]["sha256"], sha256(bytes), "{k}");
    }
    let first_hash: BTreeMap<String, Value> = by_key
        .iter()
        .map(|(k, a)| {
            (
                k.clone(),
                a["variations"][0]["published"]["content_hash"].clone(),
            )
        })
        .collect();

    // Phase 2: two keys get a new version. Its events race replays of the
    // old ones and events for versions older than anything handled.
    let mut v2 = Vec::new();
    let mut v2_bytes = Vec::new();
    for (i, k) in keys[..2].iter().enumerate() {
        let bytes = tiny_clip(640, 360, 2, true, 200 + i as u64).await;
        v2_bytes.push(bytes.clone());
        v2.push(upload(&app, k, bytes).await);
    }
    let mut bodies = Vec::new();
    for v in &v2 {
        for n in 0..40 {
            bodies.push(envelope(n, v, &sns));
        }
    }
    for v in &v1[..2] {
        for n in 0..12 {
            bodies.push(envelope(n, v, &sns));
        }
        for s in 0..3 {
            // Never seen, but older than what was handled for the key.
            let old = Version {
                key: v.key.clone(),
                etag: format!("0ldversion{s}"),
                sequencer: format!("{:016X}", 1000 + s),
            };
            bodies.push(envelope(s, &old, &sns));
            bodies.push(envelope(s + 1, &old, &sns));
        }
    }
    bodies.shuffle(&mut rng);
    let phase2 = deliver(&app, bodies).await;
    assert_eq!(
        phase2["stale"], 6,
        "each older version once, then a duplicate: {phase2:?}"
    );
    assert_eq!(phase2.get("created").copied().unwrap_or(0), 0, "{phase2:?}");

    let wanted: BTreeMap<&str, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), if i < 2 { 2 } else { 1 }))
        .collect();
    let start = std::time::Instant::now();
    loop {
        let mut done = true;
        for (k, a) in by_key.iter_mut() {
            *a = get_asset(&app.http, &app.url, a["id"].as_str().unwrap()).await;
            let v = &a["variations"][0];
            if v["state"] != "published" || entered(v, "published") < wanted[k.as_str()] {
                done = false;
            }
        }
        if done {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(240), "{by_key:#?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        app.campaign(CAMPAIGN).await.len(),
        4,
        "no new asset for a new version"
    );
    for (i, k) in keys.iter().enumerate() {
        let v = &by_key[k]["variations"][0];
        let versions = wanted[k.as_str()];
        assert_eq!(
            entered(v, "arrived"),
            versions,
            "{k} processed once per version: {v:#}"
        );
        assert_eq!(entered(v, "transcoding"), versions, "{k}: {v:#}");
        assert_eq!(
            entered(v, "published"),
            versions,
            "{k} published once per version: {v:#}"
        );
        let latest = if i < 2 { &v2_bytes[i] } else { &v1_bytes[i] };
        assert_eq!(
            v["master"]["sha256"],
            sha256(latest),
            "{k} holds its newest master"
        );
        let hash = &v["published"]["content_hash"];
        if i < 2 {
            assert_ne!(hash, &first_hash[k], "{k}: new bytes, new set");
        } else {
            assert_eq!(hash, &first_hash[k], "{k}: untouched");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn sns_subscriptions_are_confirmed_only_for_allow_listed_topics() {
    let sns = SnsEndpoint::start().await;
    let app = spawn_app_with(|s| {
        s.events.sns_topic_allowlist = vec![TOPIC.into()];
        sns.trust(s);
    })
    .await;
    let url = format!("{}/v1/events/s3", app.url);
    let base = sns.base.clone();
    let confirmation = |topic: &str| {
        sns.sign(json!({
            "Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "t",
            "TopicArn": topic, "Message": "You have chosen to subscribe...",
            "SubscribeURL": format!("{base}/confirm?Action=ConfirmSubscription&TopicArn={topic}&Token=t"),
            "Timestamp": "2026-01-01T00:00:00.000Z"
        }))
    };
    // SNS cannot send a Bearer token: Basic auth with the token as password.
    let res = app
        .http
        .post(&url)
        .basic_auth("reelay", Some("wrong"))
        .json(&confirmation(TOPIC))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("events token") && !message.contains("API key"),
        "{body}"
    );
    assert_eq!(sns.confirms.load(Ordering::SeqCst), 0);

    let res = app
        .http
        .post(&url)
        .basic_auth("reelay", Some(app.events_token()))
        .json(&confirmation(
            "arn:aws:sns:us-east-1:999999999999:someone-else",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["sns_refused"], 1, "{body}");
    assert_eq!(
        sns.confirms.load(Ordering::SeqCst),
        0,
        "a stranger's topic is not confirmed"
    );

    let res = app
        .http
        .post(&url)
        .basic_auth("reelay", Some(app.events_token()))
        .json(&confirmation(TOPIC))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["sns_confirmed"], 1, "{body}");
    assert_eq!(sns.confirms.load(Ordering::SeqCst), 1);
    assert_eq!(
        sns.cert_fetches.load(Ordering::SeqCst),
        1,
        "the signing certificate is fetched once and kept"
    );
    app.stop().await;
}

#[tokio::test]
async fn sns_messages_without_a_good_signature_are_refused_and_do_nothing() {
    let sns = SnsEndpoint::start().await;
    let app = spawn_app_with(|s| {
        s.events.sns_topic_allowlist = vec![TOPIC.into()];
        sns.trust(s);
    })
    .await;
    let url = format!("{}/v1/events/s3", app.url);
    let confirm = sns.sign(json!({
        "Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "t",
        "TopicArn": TOPIC, "Message": "You have chosen to subscribe...",
        "SubscribeURL": format!("{}/confirm?Action=ConfirmSubscription&Token=t", sns.base),
        "Timestamp": "2026-01-01T00:00:00.000Z"
    }));
    let mut tampered = confirm.clone();
    tampered["Token"] = "another".into();
    let mut unsigned = confirm.clone();
    unsigned.as_object_mut().unwrap().remove("Signature");
    let mut v1 = confirm.clone();
    v1["SignatureVersion"] = "1".into();
    let mut stranger_cert = confirm.clone();
    stranger_cert["SigningCertURL"] = "https://certs.example/cert.pem".into();
    let notification = sns.sign(json!({
        "Type": "Notification", "MessageId": "n", "TopicArn": TOPIC,
        "Message": json!({"Records": []}).to_string(), "Timestamp": "2026-01-01T00:00:00.000Z"
    }));
    let mut forged = notification.clone();
    forged["Message"] = json!({"Records": [record(
        &Version { key: format!("masters/{CAMPAIGN}/forged.mp4"), etag: "e".into(), sequencer: "01".into() },
        "ObjectCreated:Put", "aws:s3")]})
    .to_string()
    .into();
    for (body, reason) in [
        (&tampered, "does not match"),
        (&unsigned, "not signed"),
        (&v1, "does not match"),
        (&stranger_cert, "SigningCertURL"),
        (&forged, "does not match"),
    ] {
        let res = app
            .http
            .post(&url)
            .bearer_auth(app.events_token())
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{body}");
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "forbidden");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{reason}: {answer}");
    }
    assert_eq!(sns.confirms.load(Ordering::SeqCst), 0);
    // A batch with one bad message is refused whole.
    let res = app
        .http
        .post(&url)
        .bearer_auth(app.events_token())
        .json(&json!([confirm, tampered]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(sns.confirms.load(Ordering::SeqCst), 0);
    // The good ones pass.
    for body in [&confirm, &notification] {
        let res = app
            .http
            .post(&url)
            .bearer_auth(app.events_token())
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{body}");
    }
    assert_eq!(sns.confirms.load(Ordering::SeqCst), 1);
    assert!(
        app.campaign(CAMPAIGN).await.is_empty(),
        "the forged event made nothing"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_hand_upload_naming_an_unknown_profile_is_turned_down_and_says_why() {
    let app = spawn_app().await;
    app.put_master(
        "masters/odd/spot.mp4",
        b"bytes that are never looked at".to_vec(),
        &[("reelay-profile", "no-such-profile")],
    )
    .await;
    let assets = wait_for_campaign(&app, "odd", Duration::from_secs(30), |a| a.len() == 1).await;
    let a = get_asset(&app.http, &app.url, assets[0]["id"].as_str().unwrap()).await;
    assert_eq!(a["source"], "upload");
    assert_eq!(a["status"], "rejected");
    let v = &a["variations"][0];
    assert_eq!(v["reason"]["code"], "unknownProfile");
    assert!(v["reason"]["message"]
        .as_str()
        .unwrap()
        .contains("no-such-profile"));
    assert_eq!(entered(v, "arrived"), 0, "nothing was processed");
    app.stop().await;
}
