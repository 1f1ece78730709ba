//! Client tests against a scripted axum server on 127.0.0.1:0.

use super::*;
use crate::runware::types::{GenerationRequest, TaskStatus};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap as AxumHeaders, StatusCode as AxumStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use std::sync::Mutex;

const KEY: &str = "rw-test-key-0123456789abcdef";

/// Answers the scripted (status, body) pairs in order, repeating the last,
/// and records every request.
struct Script {
    answers: Vec<(u16, String)>,
    calls: Mutex<Vec<(AxumHeaders, Value)>>,
}

impl Script {
    fn calls(&self) -> Vec<(AxumHeaders, Value)> {
        self.calls.lock().unwrap().clone()
    }
}

async fn answer(State(s): State<Arc<Script>>, headers: AxumHeaders, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = {
        let mut calls = s.calls.lock().unwrap();
        calls.push((headers, body));
        calls.len() - 1
    };
    let (status, text) = s.answers[n.min(s.answers.len() - 1)].clone();
    (
        AxumStatus::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        text,
    )
        .into_response()
}

async fn serve(answers: Vec<(u16, String)>) -> (String, Arc<Script>) {
    let script = Arc::new(Script {
        answers,
        calls: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/v1", post(answer))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), script)
}

fn client(url: &str) -> RunwareClient {
    RunwareClient::new(ClientConfig {
        api_url: url.to_string(),
        transport: Transport::Rest,
        ws_url: ClientConfig::DEFAULT_WS_URL.into(),
        api_key: Secret::new(KEY),
        request_timeout: Duration::from_secs(5),
        retry_deadline: Duration::from_secs(5),
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
    })
    .unwrap()
}

fn task() -> VideoInferenceTask {
    GenerationRequest {
        positive_prompt: Some("a lighthouse at dusk".into()),
        width: Some(3840),
        height: Some(2160),
        ..Default::default()
    }
    .to_task(
        Uuid::new_v4(),
        crate::runware::KLING_O3_4K,
        Some("https://bucket.example.com/k?X-Amz-Signature=s"),
        None,
    )
}

fn j(v: Value) -> String {
    v.to_string()
}

fn ack(id: Uuid) -> String {
    j(json!({"data": [{"taskType": "videoInference", "taskUUID": id}]}))
}

#[tokio::test]
async fn submit_retries_two_503s_and_succeeds_on_the_third_call() {
    let t = task();
    let unavailable = j(json!({"errors": [{"code": "serviceUnavailable", "message": "busy"}]}));
    let (url, script) = serve(vec![
        (503, unavailable.clone()),
        (503, unavailable),
        (200, ack(t.task_uuid)),
    ])
    .await;

    let outcome = client(&url).submit(&t).await.unwrap();

    match outcome {
        SubmitOutcome::Accepted { items } => {
            assert_eq!(items.len(), 1);
            assert_eq!(items[0].task_uuid, Some(t.task_uuid));
        }
        other => panic!("expected Accepted, got {other:?}"),
    }
    let calls = script.calls();
    assert_eq!(calls.len(), 3);
    for (headers, body) in &calls {
        assert_eq!(headers["authorization"], format!("Bearer {KEY}").as_str());
        assert_eq!(headers["content-type"], "application/json");
        let tasks = body.as_array().expect("body is a JSON array");
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0]["taskUUID"], t.task_uuid.to_string());
        assert_eq!(tasks[0]["taskType"], "videoInference");
    }
}

#[tokio::test]
async fn submit_is_rejected_after_exactly_one_call_on_402() {
    let t = task();
    let (url, script) = serve(vec![(
        402,
        j(json!({"errors": [{
            "code": "insufficientCredits",
            "message": "Insufficient credits to perform this task.",
            "taskUUID": t.task_uuid
        }]})),
    )])
    .await;

    let err = client(&url).submit(&t).await.unwrap_err();

    match &err {
        ClientError::Rejected {
            http_status,
            errors,
        } => {
            assert_eq!(*http_status, 402);
            assert_eq!(errors[0].code, "insufficientCredits");
            assert_eq!(
                errors[0].message,
                "Insufficient credits to perform this task."
            );
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(err.codes(), vec!["insufficientCredits"]);
    assert_eq!(script.calls().len(), 1);
    assert!(!err.to_string().contains(KEY));
}

#[tokio::test]
async fn no_client_error_status_is_retried() {
    for status in [400, 401, 402, 403, 404] {
        let (url, script) = serve(vec![(status, j(json!({"errors": [{"code": "x"}]})))]).await;
        let err = client(&url).submit(&task()).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Rejected { http_status, .. } if http_status == status),
            "HTTP {status}: {err:?}"
        );
        assert_eq!(script.calls().len(), 1, "HTTP {status} was retried");
    }
}

#[tokio::test]
async fn timeouts_and_rate_limits_are_retried() {
    for status in [408, 429, 500, 502, 504] {
        let t = task();
        let (url, script) = serve(vec![(status, String::new()), (200, ack(t.task_uuid))]).await;
        let outcome = client(&url).submit(&t).await;
        assert!(outcome.is_ok(), "HTTP {status}: {outcome:?}");
        assert_eq!(script.calls().len(), 2, "HTTP {status}");
    }
}

#[tokio::test]
async fn conflict_task_uuid_means_the_task_already_exists() {
    let t = task();
    let (url, _) = serve(vec![(
        400,
        j(json!({"errors": [{
            "code": "conflictTaskUUID",
            "message": "Task UUID already exists",
            "parameter": "taskUUID",
            "taskUUID": t.task_uuid
        }]})),
    )])
    .await;

    let outcome = client(&url).submit(&t).await.unwrap();

    assert_eq!(outcome, SubmitOutcome::AlreadyExists);
}

#[tokio::test]
async fn empty_errors_list_beside_an_ack_is_not_a_failure() {
    let t = task();
    let body = j(
        json!({"data": [{"taskType": "videoInference", "taskUUID": t.task_uuid}],
                        "errors": []}),
    );
    let (url, _) = serve(vec![(200, body)]).await;

    let outcome = client(&url).submit(&t).await.unwrap();

    assert!(matches!(outcome, SubmitOutcome::Accepted { .. }));
}

#[tokio::test]
async fn an_ack_for_another_task_only_is_a_protocol_error() {
    let (url, _) = serve(vec![(200, ack(Uuid::new_v4()))]).await;
    let err = client(&url).submit(&task()).await.unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn exhausted_retries_report_attempts_without_leaking_the_key() {
    // The server echoes the key in its error body; it must not reach our error.
    let (url, script) = serve(vec![(503, format!("upstream said Bearer {KEY}"))]).await;
    let mut cfg = client(&url).config().clone();
    cfg.retry_deadline = Duration::from_millis(100);
    cfg.backoff_initial = Duration::from_millis(5);
    cfg.backoff_max = Duration::from_millis(20);
    let c = RunwareClient::new(cfg).unwrap();

    let err = c.submit(&task()).await.unwrap_err();

    match &err {
        ClientError::Unavailable { attempts, last } => {
            assert!(*attempts >= 2, "attempts {attempts}");
            assert_eq!(*attempts as usize, script.calls().len());
            assert!(last.contains("503"), "{last}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
}

#[tokio::test]
async fn connection_refused_is_retried_until_the_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut cfg = client(&format!("http://{addr}/v1")).config().clone();
    cfg.retry_deadline = Duration::from_millis(100);
    let c = RunwareClient::new(cfg).unwrap();

    let err = c.submit(&task()).await.unwrap_err();

    assert!(
        matches!(err, ClientError::Unavailable { attempts, .. } if attempts >= 2),
        "{err:?}"
    );
}

#[tokio::test]
async fn non_json_rejection_still_carries_status_and_text() {
    let (url, _) = serve(vec![(401, "<html>Unauthorized</html>".into())]).await;
    let err = client(&url).submit(&task()).await.unwrap_err();
    match err {
        ClientError::Rejected {
            http_status,
            errors,
        } => {
            assert_eq!(http_status, 401);
            assert_eq!(errors[0].code, "unknown");
            assert!(errors[0].message.contains("Unauthorized"));
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn get_response_matches_items_by_task_uuid_not_position() {
    let ours = Uuid::new_v4();
    let other = Uuid::new_v4();
    let body = j(json!({"data": [
        {"taskType": "videoInference", "taskUUID": other, "status": "success",
         "videoUUID": Uuid::new_v4(), "videoURL": "https://im.example.com/other.mp4"},
        {"taskType": "videoInference", "status": "success", "videoURL": "https://x/none.mp4"},
        {"taskType": "videoInference", "taskUUID": ours, "status": "processing", "progress": 40},
        {"taskType": "videoInference", "taskUUID": ours, "status": "pending"}
    ]}));
    let (url, script) = serve(vec![(200, body)]).await;

    let poll = client(&url).get_response(ours).await.unwrap();

    assert_eq!(poll.items.len(), 2);
    assert!(poll.items.iter().all(|i| i.task_uuid == Some(ours)));
    assert_eq!(poll.items[0].status, Some(TaskStatus::Processing));
    assert_eq!(poll.items[0].progress, Some(40.0));
    assert_eq!(
        poll.items[1].status,
        Some(TaskStatus::Other("pending".into()))
    );
    assert!(poll.errors.is_empty());
    assert_eq!(poll.successes().count(), 0);
    let (_, sent) = &script.calls()[0];
    assert_eq!(
        sent,
        &json!([{"taskType": "getResponse", "taskUUID": ours}])
    );
}

#[tokio::test]
async fn get_response_reads_the_legacy_singular_error() {
    let ours = Uuid::new_v4();
    let body = j(json!({
        "error": {"code": "timeoutProvider", "message": "The external provider did not respond"},
        "taskUUID": ours, "taskType": "videoInference"
    }));
    let (url, _) = serve(vec![(200, body)]).await;

    let poll = client(&url).get_response(ours).await.unwrap();

    assert!(poll.is_failed());
    assert_eq!(poll.errors.len(), 1);
    assert_eq!(poll.errors[0].code, "timeoutProvider");
    assert_eq!(poll.errors[0].task_uuid, Some(ours));
}

#[tokio::test]
async fn get_response_surfaces_error_items_nested_in_data() {
    let ours = Uuid::new_v4();
    let other = Uuid::new_v4();
    let body = j(json!({"data": [
        {"taskUUID": other, "status": "error", "error": {"code": "elsewhere"}},
        {"taskType": "videoInference", "taskUUID": ours, "status": "success",
         "videoUUID": Uuid::new_v4(), "videoURL": "https://im.example.com/a.mp4", "cost": 2.1},
        {"taskType": "videoInference", "taskUUID": ours, "status": "error",
         "error": {"code": "providerError", "message": "render failed"}}
    ]}));
    let (url, _) = serve(vec![(200, body)]).await;

    let poll = client(&url).get_response(ours).await.unwrap();

    assert_eq!(poll.errors.len(), 1, "{:?}", poll.errors);
    assert_eq!(poll.errors[0].code, "providerError");
    assert_eq!(poll.errors[0].message, "render failed");
    assert_eq!(poll.errors[0].task_uuid, Some(ours));
    assert_eq!(poll.items.len(), 1);
    assert_eq!(poll.successes().next().unwrap().cost, Some(2.1));
}

#[tokio::test]
async fn get_response_errors_array_is_a_task_failure_not_a_client_error() {
    let ours = Uuid::new_v4();
    let body = j(json!({"data": [], "errors": [
        {"code": "timeoutProvider", "status": "error", "taskUUID": ours},
        {"code": "someoneElse", "taskUUID": Uuid::new_v4()}
    ]}));
    let (url, _) = serve(vec![(200, body)]).await;

    let poll = client(&url).get_response(ours).await.unwrap();

    assert_eq!(poll.errors.len(), 1);
    assert_eq!(poll.errors[0].code, "timeoutProvider");
}

#[test]
fn poll_delay_follows_the_sdk_cadence() {
    let secs: Vec<f64> = (0..8).map(|n| poll_delay(n).as_secs_f64()).collect();
    let expected = [1.0, 1.5, 2.25, 3.375, 5.0625, 7.59375, 10.0, 10.0];
    for (n, (got, want)) in secs.iter().zip(expected).enumerate() {
        assert!((got - want).abs() < 1e-6, "attempt {n}: {got} != {want}");
    }
    assert_eq!(poll_delay(u32::MAX), Duration::from_secs(10));
}

#[test]
fn jitter_stays_within_the_doubling_ceiling() {
    let (initial, max) = (Duration::from_millis(100), Duration::from_secs(1));
    for attempt in 1..20 {
        let ceiling = (initial * 2u32.pow(attempt.min(10) - 1)).min(max);
        for _ in 0..50 {
            assert!(full_jitter(attempt, initial, max) <= ceiling);
        }
    }
}

#[test]
fn debug_output_never_shows_the_key() {
    let c = client("http://127.0.0.1:9/v1");
    let shown = format!("{c:?} {:?}", c.config());
    assert!(!shown.contains(KEY), "{shown}");
}
