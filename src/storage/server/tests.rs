use super::events::*;
use super::guard::*;
use super::*;

#[test]
fn sequencers_increase_strictly_and_sort_as_strings() {
    let e = EventEmitter {
        notifier: Notifier::new(NotificationTarget {
            url: "http://127.0.0.1:9/".into(),
            bearer_token: Secret::new("t"),
        }),
        region: "us-east-1".into(),
        last_sequencer: AtomicU64::new(0),
    };
    let seqs: Vec<String> = (0..1000).map(|_| e.next_sequencer()).collect();
    for w in seqs.windows(2) {
        assert!(w[0] < w[1], "{} !< {}", w[0], w[1]);
        assert_eq!(w[0].len(), 16);
    }
}

#[test]
fn base64url_matches_known_vectors() {
    for (raw, enc) in [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("\u{fb}\u{ff}", "w7vDvw"),
    ] {
        assert_eq!(base64url_nopad(raw.as_bytes()), enc, "{raw:?}");
    }
}

#[tokio::test]
async fn sidecar_paths_match_where_s3s_fs_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let fs = s3s_fs::FileSystem::new(dir.path()).unwrap();
    std::fs::create_dir(dir.path().join("bkt")).unwrap();
    let mut input = PutObjectInput::builder()
        .bucket("bkt".into())
        .key("a/b ~?.mp4".into())
        .build()
        .unwrap();
    input.body = Some(StreamingBlob::from(s3s::Body::from("hi".to_owned())));
    input.content_type = Some("video/mp4".into());
    let req = S3Request {
        input,
        method: http::Method::PUT,
        uri: http::Uri::from_static("/"),
        headers: Default::default(),
        extensions: Default::default(),
        credentials: None,
        region: None,
        service: None,
        trailing_headers: None,
    };
    fs.put_object(req).await.unwrap();
    let root = dir.path().canonicalize().unwrap();
    for p in sidecar_paths(&root, "bkt", "a/b ~?.mp4") {
        assert!(p.exists(), "{p:?} missing: did the s3s-fs layout change?");
    }
}

#[test]
fn long_keys_are_refused_before_s3s_fs_fails_on_them() {
    assert!(check_storable("reelay-masters", &"k".repeat(100)).is_ok());
    let err = check_storable("reelay-masters", &"k".repeat(200)).unwrap_err();
    assert_eq!(*err.code(), s3s::S3ErrorCode::KeyTooLongError);
}

#[test]
fn the_key_limit_is_exact_for_the_sidecar_name() {
    for bucket in ["reelay-cdn", "reelay-masters", "b"] {
        let max = max_key_bytes(bucket);
        assert!(check_storable(bucket, &"k".repeat(max)).is_ok(), "{bucket}");
        assert!(
            check_storable(bucket, &"k".repeat(max + 1)).is_err(),
            "{bucket}"
        );
        // The sidecar file name at the limit is a legal file name.
        let b64 = |n: usize| (n * 4).div_ceil(3);
        let name = 8 + b64(bucket.len()) + 8 + b64(max) + 8 + 36 + 14;
        assert!(name <= 255, "{bucket}: {name}");
    }
    assert_eq!(max_key_bytes("reelay-cdn"), 125);
}
