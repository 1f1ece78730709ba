//! The simulator on the wire, with a small model (320x180) so renders take
//! a fraction of a second. Faults are set per request through the header.

use super::*;
use crate::media::testutil;
use crate::runware::KLING_O3_4K;
use axum::extract::State as AxState;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

pub(super) const KEY: &str = "sim-test-key";

fn small_model() -> ModelSpec {
    ModelSpec {
        air: KLING_O3_4K.to_string(),
        sizes: vec!["320x180".into(), "180x320".into()],
        resolutions: vec!["4k".into()],
        min_duration: 1,
        max_duration: 15,
        fps: 24,
        price_per_second: 0.42,
    }
}

pub(super) struct Sim {
    pub(super) handle: SimHandle,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn sim(faults: Faults) -> Option<Sim> {
    sim_with(faults, Duration::from_secs(120)).await
}

/// A simulator whose WebSocket connections are dropped after `ws_idle`.
pub(super) async fn sim_with(faults: Faults, ws_idle: Duration) -> Option<Sim> {
    let runner = testutil::runner()?;
    let dir = tempfile::tempdir().unwrap();
    let handle = start(
        SimConfig {
            api_key: Secret::new(KEY.to_string()),
            generation_secs: 0.05,
            model: small_model(),
            state_dir: dir.path().join("sim"),
            faults,
            accept_fault_header: true,
            webhook_retry_ms: vec![10, 10, 10],
            ws_idle,
        },
        runner,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    Some(Sim {
        handle,
        http: reqwest::Client::new(),
        _dir: dir,
    })
}

pub(super) fn task(uuid: Uuid) -> Value {
    json!({
        "taskType": "videoInference",
        "taskUUID": uuid,
        "model": KLING_O3_4K,
        "positivePrompt": "a small test clip",
        "width": 320,
        "height": 180,
        "duration": 2,
        "deliveryMethod": "async",
        "outputType": "URL",
        "includeCost": true
    })
}

impl Sim {
    pub(super) async fn post(&self, body: &Value, fault: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.handle.api_url())
            .bearer_auth(KEY)
            .json(body);
        if let Some(f) = fault {
            req = req.header(FAULT_HEADER, f);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Polls until the task is no longer processing; returns the envelope.
    pub(super) async fn finished(&self, uuid: Uuid) -> Value {
        let started = Instant::now();
        loop {
            let (status, env) = self
                .post(
                    &json!([{"taskType": "getResponse", "taskUUID": uuid}]),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{env}");
            let processing = env["data"]
                .as_array()
                .is_some_and(|d| d.iter().any(|i| i["status"] == "processing"));
            if !processing {
                return env;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{env}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn validation_errors_carry_every_field_runware_sends() {
    let Some(s) = sim(Faults::default()).await else {
        return;
    };
    let uuid = Uuid::new_v4();
    let mut bad = task(uuid);
    bad["duration"] = json!(40);
    bad["width"] = json!(640);
    bad["outputQuality"] = json!(10);
    let (status, env) = s.post(&json!([bad]), None).await;
    assert_eq!(status, 400, "{env}");
    assert!(env.get("data").is_none(), "{env}");
    let errors = env["errors"].as_array().unwrap();
    let by_param = |p: &str| {
        errors
            .iter()
            .find(|e| e["parameter"] == p)
            .unwrap_or_else(|| panic!("no error for {p}: {env:#}"))
    };
    for e in errors {
        for key in [
            "code",
            "message",
            "parameter",
            "documentation",
            "taskUUID",
            "taskType",
        ] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
        assert_eq!(e["taskUUID"], uuid.to_string());
    }
    let d = by_param("duration");
    assert_eq!(d["code"], "invalidDuration");
    assert_eq!(d["type"], "integer");
    assert_eq!(d["allowedValues"].as_array().unwrap().len(), 15);
    assert!(d["documentation"]
        .as_str()
        .unwrap()
        .ends_with("#request-duration"));
    let w = by_param("width");
    assert_eq!(w["allowedValues"], json!(["320x180", "180x320"]));
    assert_eq!(by_param("outputQuality")["type"], "integer");

    // A missing prompt, an unknown key and a type error, each on its own.
    let mut missing = task(Uuid::new_v4());
    missing.as_object_mut().unwrap().remove("positivePrompt");
    let mut unknown = task(Uuid::new_v4());
    unknown["colour"] = json!("red");
    let mut wrong_type = task(Uuid::new_v4());
    wrong_type["outputFormat"] = json!("GIF");
    for (body, code, param) in [
        (missing, "missingPositivePrompt", "positivePrompt"),
        (unknown, "unknownParameter", "colour"),
        (wrong_type, "invalidParameter", "outputFormat"),
    ] {
        let (status, env) = s.post(&json!([body]), None).await;
        assert_eq!(status, 400, "{env}");
        let e = &env["errors"][0];
        assert_eq!(e["code"], code, "{env}");
        assert_eq!(e["parameter"], param, "{env}");
        assert!(e["taskUUID"].is_string(), "{env}");
    }
    assert_eq!(s.handle.sim.stats().tasks_created, 0);
}

#[tokio::test]
async fn keys_unknown_tasks_and_reused_uuids_are_answered_like_runware() {
    let Some(s) = sim(Faults::default()).await else {
        return;
    };
    // Wrong key: 401 invalidApiKey, whatever the body.
    let res = s
        .http
        .post(s.handle.api_url())
        .bearer_auth("not-the-key")
        .json(&json!([task(Uuid::new_v4())]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let env: Value = res.json().await.unwrap();
    assert_eq!(env["errors"][0]["code"], "invalidApiKey");
    assert_eq!(env["errors"][0]["parameter"], "apiKey");
    assert!(!env.to_string().contains(KEY));

    // The key may come as a leading authentication task instead.
    let uuid = Uuid::new_v4();
    let res = s
        .http
        .post(s.handle.api_url())
        .json(&json!([{"taskType": "authentication", "apiKey": KEY}, {"taskType": "getResponse", "taskUUID": uuid}]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let env: Value = res.json().await.unwrap();
    // An unknown taskUUID is an error, not an empty answer.
    assert_eq!(env["errors"][0]["code"], "taskNotFound", "{env}");
    assert_eq!(env["errors"][0]["taskUUID"], uuid.to_string());
    assert!(env.get("data").is_none(), "{env}");

    // A live taskUUID submitted again: conflictTaskUUID, and no second task.
    let uuid = Uuid::new_v4();
    let (status, env) = s.post(&json!([task(uuid)]), None).await;
    assert_eq!((status, &env["data"][0]["taskUUID"]), (200, &json!(uuid)));
    assert!(
        env.get("errors").is_none(),
        "an ack has no errors key: {env}"
    );
    let (status, env) = s.post(&json!([task(uuid)]), None).await;
    assert_eq!(status, 400);
    assert_eq!(env["errors"][0]["code"], "conflictTaskUUID");
    let stats = s.handle.sim.stats();
    assert_eq!(stats.tasks_created, 1);
    assert_eq!(stats.submits[&uuid], 2);
    // The finished task reports its cost (0.42 USD/s x 2 s).
    let env = s.finished(uuid).await;
    assert_eq!(env["data"][0]["status"], "success", "{env}");
    assert_eq!(env["data"][0]["cost"], 0.84);
}

#[tokio::test]
async fn header_faults_refuse_credit_and_answer_bursts_without_a_second_task() {
    let Some(s) = sim(Faults::default()).await else {
        return;
    };
    // 402 at submit: nothing is created.
    let uuid = Uuid::new_v4();
    let (status, env) = s
        .post(&json!([task(uuid)]), Some("insufficient_credits=true"))
        .await;
    assert_eq!(status, 402);
    assert_eq!(env["errors"][0]["code"], "insufficientCredits");
    assert_eq!(env["errors"][0]["taskUUID"], uuid.to_string());

    // A 503 burst before the task is created: two refusals, then the ack.
    let uuid = Uuid::new_v4();
    let burst = "burst_status=503, burst_count=2";
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(s.post(&json!([task(uuid)]), Some(burst)).await.0);
    }
    assert_eq!(answers, vec![503, 503, 200]);

    // A 429 burst after the task is created: the retry meets conflictTaskUUID.
    let late = Uuid::new_v4();
    let burst = "burst_status=429, burst_count=1, burst_after_create=true";
    let (first, env) = s.post(&json!([task(late)]), Some(burst)).await;
    assert_eq!(first, 429);
    assert_eq!(env["errors"][0]["code"], "rateLimitExceeded");
    let (second, env) = s.post(&json!([task(late)]), Some(burst)).await;
    assert_eq!(second, 400);
    assert_eq!(env["errors"][0]["code"], "conflictTaskUUID");

    // Polls can be hit too.
    let (status, _) = s
        .post(
            &json!([{"taskType": "getResponse", "taskUUID": late}]),
            Some("burst_status=503, burst_count=1, burst_on=poll"),
        )
        .await;
    assert_eq!(status, 503);

    let (status, env) = s
        .post(&json!([task(Uuid::new_v4())]), Some("burst_status=42"))
        .await;
    assert_eq!(status, 400);
    assert_eq!(env["errors"][0]["code"], "invalidFaultHeader");

    let stats = s.handle.sim.stats();
    assert_eq!(
        stats.tasks_created, 2,
        "one task per taskUUID that got through"
    );
    assert_eq!(stats.submits[&uuid], 3);
    assert_eq!(stats.submits[&late], 2);
}

#[tokio::test]
async fn failures_come_in_either_error_shape() {
    let Some(s) = sim(Faults::default()).await else {
        return;
    };
    let documented = Uuid::new_v4();
    s.post(
        &json!([task(documented)]),
        Some("fail_code=contentPolicyViolation"),
    )
    .await;
    let nested = Uuid::new_v4();
    s.post(
        &json!([task(nested)]),
        Some(r#"{"fail_code": "timeoutProvider", "error_shape": "data"}"#),
    )
    .await;

    let env = s.finished(documented).await;
    assert!(env.get("data").is_none(), "{env}");
    let e = &env["errors"][0];
    assert_eq!(e["code"], "contentPolicyViolation");
    assert_eq!(e["status"], "error");
    assert_eq!(e["taskUUID"], documented.to_string());

    let env = s.finished(nested).await;
    assert!(env.get("errors").is_none(), "{env}");
    let item = &env["data"][0];
    assert_eq!(item["status"], "error");
    assert_eq!(item["taskUUID"], nested.to_string());
    assert_eq!(item["error"]["code"], "timeoutProvider");
    // reelay's own decoder finds it as a failure of that task.
    let parsed: crate::runware::Envelope = serde_json::from_value(env).unwrap();
    let errors = parsed.all_errors();
    assert_eq!(errors[0].code, "timeoutProvider");
    assert_eq!(errors[0].task_uuid, Some(nested));

    // A stalled task stays processing long after its generation time.
    let stalled = Uuid::new_v4();
    s.post(&json!([task(stalled)]), Some("stall=true")).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, env) = s
        .post(
            &json!([{"taskType": "getResponse", "taskUUID": stalled}]),
            None,
        )
        .await;
    assert_eq!(env["data"][0]["status"], "processing", "{env}");
}

/// A webhook receiver that answers 500 to its first `fail_first` calls.
async fn receiver(fail_first: u32) -> (String, Arc<AtomicU32>, tokio::task::JoinHandle<()>) {
    let calls = Arc::new(AtomicU32::new(0));
    let app = Router::new()
        .route(
            "/hook",
            post(
                |AxState((calls, fail)): AxState<(Arc<AtomicU32>, u32)>| async move {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    if n < fail {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                },
            ),
        )
        .with_state((calls.clone(), fail_first));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, calls, task)
}

async fn wait_until(what: &str, f: impl Fn() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < Duration::from_secs(30), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn webhooks_are_retried_on_non_2xx_and_can_be_doubled_or_dropped() {
    let Some(s) = sim(Faults {
        fail_code: "providerError".into(),
        ..Faults::default()
    })
    .await
    else {
        return;
    };
    let with_hook = |uuid: Uuid, url: &str| {
        let mut t = task(uuid);
        t["webhookURL"] = json!(url);
        json!([t])
    };
    // Two 500s, then accepted: three attempts along the schedule.
    let (url, calls, _srv) = receiver(2).await;
    let retried = Uuid::new_v4();
    s.post(&with_hook(retried, &url), None).await;
    let stats = || s.handle.sim.stats();
    wait_until("webhook accepted", || {
        stats().webhooks_accepted.get(&retried) == Some(&1)
    })
    .await;
    assert_eq!(stats().webhook_attempts[&retried], 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // Always 500: one attempt plus one per configured delay, then it gives up.
    let (url, calls, _srv2) = receiver(u32::MAX).await;
    let refused = Uuid::new_v4();
    s.post(&with_hook(refused, &url), None).await;
    wait_until("webhook gave up", || {
        stats().webhook_attempts.get(&refused) == Some(&4)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    let (url, _, _srv3) = receiver(0).await;
    let twice = Uuid::new_v4();
    s.post(&with_hook(twice, &url), Some("webhook=twice")).await;
    let none = Uuid::new_v4();
    s.post(&with_hook(none, &url), Some("webhook=none")).await;
    wait_until("two deliveries", || {
        stats().webhooks_accepted.get(&twice) == Some(&2)
    })
    .await;
    s.finished(none).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stats().webhook_attempts.get(&none), None);
}

/// What the PUT target received, and the file it serves.
type TargetState = (Arc<Mutex<Vec<Vec<u8>>>>, Arc<Vec<u8>>);

/// A PUT target that keeps what it receives, and serves a file for GETs.
struct Target {
    url: String,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    _task: tokio::task::JoinHandle<()>,
}

async fn target(serve: Vec<u8>) -> Target {
    let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let app = Router::new()
        .route(
            "/put",
            axum::routing::put(
                |AxState((got, _)): AxState<TargetState>, body: axum::body::Bytes| async move {
                    got.lock().unwrap().push(body.to_vec());
                    StatusCode::OK
                },
            ),
        )
        .route(
            "/image.png",
            get(|AxState((_, file)): AxState<TargetState>| async move { file.as_ref().clone() }),
        )
        .with_state((received.clone(), Arc::new(serve)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Target {
        url,
        received,
        _task: task,
    }
}

/// A solid-colour PNG made by ffmpeg.
fn png(colour: &str) -> Vec<u8> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!("color=c={colour}:s=64x48:d=1"))
        .args(["-frames:v", "1", "-f", "image2pipe", "-c:v", "png", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// The average RGB of frame `n` of `file`.
fn frame_rgb(file: &std::path::Path, n: u32) -> [u8; 3] {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-vf", &format!("select=eq(n\\,{n}),scale=1:1")])
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    [out.stdout[0], out.stdout[1], out.stdout[2]]
}

#[tokio::test]
async fn uploads_can_be_cut_skipped_or_the_wrong_size_and_frame_images_show() {
    use base64::Engine;
    let Some(s) = sim(Faults::default()).await else {
        return;
    };
    let blue = png("blue");
    let t = target(blue).await;
    let red_uri = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png("red"))
    );

    let submit = |fault: &'static str| {
        let uuid = Uuid::new_v4();
        let mut body = task(uuid);
        body["uploadEndpoint"] = json!(format!("{}/put", t.url));
        body["inputs"] = json!({"frameImages": [
            {"image": red_uri, "frame": "first"},
            {"image": format!("{}/image.png", t.url), "frame": -1}
        ]});
        (uuid, body, fault)
    };
    let cases = [
        submit("upload=full"),
        submit("upload=truncated"),
        submit("upload=none, deliver_size=160x90"),
    ];
    for (uuid, body, fault) in &cases {
        let (status, env) = s.post(&json!([body]), Some(fault)).await;
        assert_eq!(status, 200, "{uuid}: {env}");
    }
    let mut sizes = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    for (uuid, _, fault) in &cases {
        let env = s.finished(*uuid).await;
        let item = &env["data"][0];
        assert_eq!(item["status"], "success", "{fault}: {env}");
        // videoURL serves the whole rendered file.
        let bytes = s
            .http
            .get(item["videoURL"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let path = dir.path().join(format!("{uuid}.mp4"));
        std::fs::write(&path, &bytes).unwrap();
        sizes.push(bytes.len());
        let probe = s.handle.sim.0.runner.ffprobe(&path).await.unwrap();
        let v = probe.video.unwrap();
        let (first, last) = (frame_rgb(&path, 0), frame_rgb(&path, 47));
        if fault.contains("deliver_size") {
            assert_eq!((v.width, v.height), (160, 90), "{fault}");
        } else {
            assert_eq!((v.width, v.height), (320, 180), "{fault}");
        }
        assert!(
            first[0] > 200 && first[1] < 60 && first[2] < 60,
            "first frame is red: {first:?}"
        );
        assert!(
            last[2] > 200 && last[0] < 60 && last[1] < 60,
            "last frame is blue: {last:?}"
        );
        let middle = frame_rgb(&path, 24);
        assert_ne!(middle, first, "only the first frame is the image");
    }
    // Full and truncated uploads (in submit order); none for the third.
    let received = t.received.lock().unwrap().clone();
    let mut lens: Vec<usize> = received.iter().map(Vec::len).collect();
    lens.sort_unstable();
    let mut expected = vec![sizes[0], sizes[1] / 2];
    expected.sort_unstable();
    assert_eq!(lens, expected);
    let stats = s.handle.sim.stats();
    assert_eq!(
        stats.uploads.get(&cases[2].0),
        None,
        "upload=none makes no PUT"
    );
}

#[tokio::test]
async fn config_faults_apply_to_the_first_tasks_only_when_asked() {
    let Some(s) = sim(Faults {
        fail_code: "providerError".into(),
        first_tasks: 1,
        ..Faults::default()
    })
    .await
    else {
        return;
    };
    let a = Uuid::new_v4();
    let b = Uuid::new_v4();
    s.post(&json!([task(a)]), None).await;
    s.post(&json!([task(b)]), None).await;
    assert_eq!(s.finished(a).await["errors"][0]["code"], "providerError");
    assert_eq!(s.finished(b).await["data"][0]["status"], "success");
}

#[test]
fn error_codes_follow_runware_naming() {
    assert_eq!(code_for("duration", "must be 3-15"), "invalidDuration");
    assert_eq!(
        code_for("providerSettings.klingai.multiPrompt[2].duration", "x"),
        "invalidDuration"
    );
    assert_eq!(code_for("positivePrompt", "x"), "invalidPositivePrompt");
    assert_eq!(
        code_for("positivePrompt", "is required unless multiPrompt is given"),
        "missingPositivePrompt"
    );
}
