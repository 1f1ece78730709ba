//! The HTTP edge and the start-up refusals, from outside: half-sent
//! requests are dropped, error answers are JSON in the documented shape,
//! rate limits answer 429 with Retry-After, a malformed Range gets 416, bad
//! input is refused naming the field, and unsafe starts exit non-zero with
//! a one-line reason. None of these client errors is logged at ERROR.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::*;
use reelay::storage::ObjectKey;
use serde_json::{json, Value};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// ERROR events logged by anything in this test binary.
static ERRORS: AtomicUsize = AtomicUsize::new(0);

struct CountErrors;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountErrors {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() == tracing::Level::ERROR {
            eprintln!("ERROR logged: {event:?}");
            ERRORS.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn count_errors() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(CountErrors);
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
    });
}

fn assert_no_error_logged() {
    assert_eq!(
        ERRORS.load(Ordering::SeqCst),
        0,
        "client errors logged at ERROR"
    );
}

/// Asserts the documented error shape and returns the body.
async fn json_error(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with("application/json"), "content-type {ct:?}");
    let body: Value = res.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

#[tokio::test]
async fn half_sent_requests_are_dropped_and_whole_ones_still_answered() {
    count_errors();
    let app = spawn_app_with(|s| s.server.header_read_timeout_secs = 1).await;
    let addr = app.application().api_addr;
    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        // A request line and one header, never the blank line that ends them.
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: reelay\r\n")
            .await
            .unwrap();
        streams.push(s);
    }
    for mut s in streams {
        let mut buf = Vec::new();
        // Bounded so a regression fails instead of hanging; the server's
        // timeout is 1 s.
        let read = tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut buf)).await;
        let closed = matches!(read, Ok(Ok(_)) | Ok(Err(_)));
        assert!(closed, "the half-sent request's connection is still open");
        let text = String::from_utf8_lossy(&buf);
        assert!(!text.contains("200 OK"), "{text}");
    }
    let ok = app
        .http
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    app.stop().await;
    // Stopped means stopped: nothing listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert_no_error_logged();
}

#[tokio::test]
async fn a_malformed_range_on_the_cdn_gets_416_not_500() {
    count_errors();
    let app = spawn_app().await;
    let bucket = app.application().settings.storage.cdn_bucket.clone();
    let key = ObjectKey::parse("reelay/c/a/v0/abc/file.bin").unwrap();
    app.objects()
        .put_bytes(
            &bucket,
            &key,
            b"0123456789".to_vec(),
            "application/octet-stream",
            "no-cache",
        )
        .await
        .unwrap();
    let url = format!("{}/cdn/reelay/c/a/v0/abc/file.bin", app.url);
    let get = |range: &'static str| app.http.get(&url).header("Range", range).send();

    for bad in [
        "bytes=abc",
        "bytes=5-2",
        "bytes=0-1,4-5",
        "bytes=--",
        "bytes",
    ] {
        let res = get(bad).await.unwrap();
        assert_eq!(
            res.headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok()),
            Some("bytes */10"),
            "{bad}"
        );
        json_error(res, 416, "range_not_satisfiable").await;
    }
    // Past the end: also 416 with the size.
    let res = get("bytes=100-").await.unwrap();
    json_error(res, 416, "range_not_satisfiable").await;
    // A good range still works, and another unit is ignored.
    let res = get("bytes=2-4").await.unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"234");
    let res = get("items=0-1").await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"0123456789");
    // The ETag answers a revalidation with 304 and no body; another tag or
    // a weak form of the same one (weak comparison) behave as RFC 9110 says.
    let etag = app.http.get(&url).send().await.unwrap().headers()["etag"]
        .to_str()
        .unwrap()
        .to_string();
    for (inm, want) in [
        (etag.clone(), 304),
        (format!("\"other\", W/{etag}"), 304),
        ("*".to_string(), 304),
        ("\"other\"".to_string(), 200),
    ] {
        let res = app
            .http
            .get(&url)
            .header("If-None-Match", &inm)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), want, "{inm}");
        if want == 304 {
            assert!(res.bytes().await.unwrap().is_empty(), "{inm}");
        }
    }
    // A bad range on a missing object is a 404.
    let res = app
        .http
        .get(format!("{}/cdn/reelay/none.bin", app.url))
        .header("Range", "bytes=x")
        .send()
        .await
        .unwrap();
    json_error(res, 404, "not_found").await;
    app.stop().await;
    assert_no_error_logged();
}

#[tokio::test]
async fn every_error_answer_is_json_in_the_documented_shape() {
    count_errors();
    // A small body limit, so the oversized bodies are small too.
    let app = spawn_app_with(|s| s.server.max_body_bytes = 1024).await;
    let http = &app.http;
    let url = &app.url;

    let res = http
        .get(format!("{url}/no/such/route"))
        .send()
        .await
        .unwrap();
    json_error(res, 404, "not_found").await;

    let res = http
        .delete(format!("{url}/v1/assets"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let allow = res.headers().get("allow").cloned();
    json_error(res, 405, "method_not_allowed").await;
    assert!(allow.is_some(), "405 keeps its Allow header");

    // 413 for a declared length over the limit, on every endpoint...
    let limit = app.application().settings.server.max_body_bytes;
    let big = vec![b' '; limit + 1];
    for path in [
        "/v1/assets",
        "/v1/events/s3",
        "/v1/webhooks/runware/x?token=y",
        "/healthz",
    ] {
        let res = http
            .post(format!("{url}{path}"))
            .bearer_auth(KEY)
            .body(big.clone())
            .send()
            .await
            .unwrap();
        json_error(res, 413, "payload_too_large").await;
    }
    // ...and for a body without a length, cut where it is read.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..4).map(|_| Ok(vec![b' '; limit / 2])).collect();
    let res = http
        .post(format!("{url}/v1/assets"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    json_error(res, 413, "payload_too_large").await;

    let long = "a".repeat(app.application().settings.server.max_uri_bytes + 1);
    let res = http
        .get(format!("{url}/v1/assets?campaign={long}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    json_error(res, 414, "uri_too_long").await;

    let res = http
        .get(format!("{url}/v1/assets?campaign=c&limit=lots"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let body = json_error(res, 400, "invalid_request").await;
    assert_eq!(body["error"]["fields"][0]["path"], "limit", "{body}");

    let res = http.get(format!("{url}/v1/assets")).send().await.unwrap();
    json_error(res, 401, "unauthorized").await;
    app.stop().await;
    assert_no_error_logged();
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_per_key_and_per_ip() {
    count_errors();
    let app = spawn_app_with(|s| {
        s.server.rate_limit_key_per_sec = 0.01;
        s.server.rate_limit_key_burst = 3;
    })
    .await;
    let list = || {
        app.http
            .get(format!("{}/v1/assets?campaign=rl", app.url))
            .bearer_auth(KEY)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(list().await.unwrap().status(), 200);
    }
    let res = list().await.unwrap();
    let retry: u64 = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .expect("a Retry-After in seconds");
    assert!(retry >= 1, "{retry}");
    let body = json_error(res, 429, "rate_limited").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("API key"),
        "{body}"
    );
    // The key's limit does not touch requests without a key.
    let res = app
        .http
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.stop().await;

    let app = spawn_app_with(|s| {
        s.server.rate_limit_ip_per_sec = 0.01;
        s.server.rate_limit_ip_burst = 5;
    })
    .await;
    for _ in 0..5 {
        let res = app
            .http
            .get(format!("{}/healthz", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = app
        .http
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    let body = json_error(res, 429, "rate_limited").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("client IP"),
        "{body}"
    );
    app.stop().await;
    assert_no_error_logged();
}

#[tokio::test]
async fn control_characters_and_every_type_error_are_refused_at_once() {
    count_errors();
    let app = spawn_app().await;
    let res = app
        .post_asset(&json!({"generation": {
            "positivePrompt": "A calm sea\u{0007} at dawn",
            "width": "3840", "height": 2160, "duration": "five",
        }}))
        .await;
    let body = json_error(res, 400, "invalid_request").await;
    let paths: Vec<&str> = body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for want in [
        "generation.positivePrompt",
        "generation.width",
        "generation.duration",
    ] {
        assert!(paths.contains(&want), "{want} in {paths:?}");
    }
    let rule = &body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "generation.positivePrompt")
        .unwrap()["rule"];
    assert!(
        rule.as_str().unwrap().contains("control characters"),
        "{rule}"
    );
    app.stop().await;
    assert_no_error_logged();
}

fn reelay(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reelay"));
    cmd.args(args)
        .env("REELAY_CONFIG_DIR", config_dir())
        .env("REELAY__DATA__DIR", data.path())
        .env("REELAY__SERVER__HOST", "127.0.0.1")
        .env("REELAY__SERVER__PORT", "0")
        .env("REELAY__STORAGE__EMBEDDED_PORT", "0")
        .env("REELAY_LOG", "error");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("reelay runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_production_start_without_keys_exits_non_zero_with_the_reason() {
    let (code, _, err) = reelay(
        &["serve"],
        &[
            ("REELAY_ENVIRONMENT", "production"),
            ("REELAY__RUNWARE__API_KEY", "rw-key"),
        ],
    );
    assert_ne!(code, 0, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(
        lines[0].starts_with("error: refusing to start under REELAY_ENVIRONMENT=production: "),
        "{err}"
    );
    assert!(lines[0].contains("api.key_sha256 is empty"), "{err}");
    assert!(lines[0].contains("events.token is empty"), "{err}");

    // The simulator is refused there too (before the keys are looked at).
    let (code, _, err) = reelay(
        &["serve"],
        &[
            ("REELAY_ENVIRONMENT", "production"),
            ("REELAY__RUNWARE__MODE", "simulator"),
        ],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("runware.mode = \"simulator\" is refused"),
        "{err}"
    );
}

#[test]
fn an_unknown_key_is_refused_naming_it_and_config_shows_unset_secrets() {
    let (code, _, err) = reelay(
        &["config"],
        &[
            ("REELAY_ENVIRONMENT", "test"),
            ("REELAY__WORKER__CONCURENCY", "4"),
        ],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown config key worker.concurency"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let (code, out, err) = reelay(&["config"], &[("REELAY_ENVIRONMENT", "test")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("api_key = \"<unset>\""), "{out}");
    assert!(out.contains("<set>"), "{out}");
    assert!(!out.contains("redacted"), "{out}");
}

#[test]
fn a_missing_ffprobe_refuses_to_start() {
    let (code, _, err) = reelay(
        &["serve"],
        &[
            ("REELAY_ENVIRONMENT", "test"),
            ("REELAY__MEDIA__FFPROBE_PATH", "/nonexistent/ffprobe"),
        ],
    );
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("ffprobe is required"), "{err}");
    assert!(err.contains("/nonexistent/ffprobe was not found"), "{err}");
}
