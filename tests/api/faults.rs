//! Every simulator fault, driven through the whole embedded stack: the
//! variation ends in the right state with the right reason, and the
//! generator never sees a second task for it (except the one resubmission
//! the policy allows, with its own taskUUID).

use crate::helpers::*;
use reelay::config::Settings;
use reelay::simulator::{BurstOn, ErrorShape, Faults, UploadFault, WebhookFault};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

const LIMIT: Duration = Duration::from_secs(120);

async fn finished(app: &TestApp, id: &str) -> Value {
    wait_for(&app.http, &app.url, id, LIMIT, |a| {
        a["status"] != "processing"
    })
    .await
}

fn quick(s: &mut Settings, faults: Faults) {
    s.simulator.generation_secs = 0.2;
    s.simulator.faults = faults;
}

fn variation(a: &Value) -> &Value {
    &a["variations"][0]
}

fn task_uuid(a: &Value) -> Uuid {
    Uuid::parse_str(variation(a)["task_uuid"].as_str().unwrap()).unwrap()
}

fn history(a: &Value) -> Vec<String> {
    variation(a)["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap().to_string())
        .collect()
}

/// State and reason code of the only variation, and the asset's status.
fn outcome(a: &Value) -> (&str, &str, &str) {
    (
        a["status"].as_str().unwrap(),
        variation(a)["state"].as_str().unwrap(),
        variation(a)["reason"]["code"].as_str().unwrap_or(""),
    )
}

#[tokio::test]
async fn provider_failures_end_failed_with_the_providers_code_in_either_shape() {
    let cases = [
        ("timeoutProvider", ErrorShape::Errors),
        ("contentPolicyViolation", ErrorShape::Data),
        ("providerError", ErrorShape::Errors),
    ];
    for (code, shape) in cases {
        let app = spawn_app_with(|s| {
            quick(
                s,
                Faults {
                    fail_code: code.into(),
                    error_shape: shape,
                    ..Faults::default()
                },
            )
        })
        .await;
        let id = create(&app, &request(3)).await;

        let a = finished(&app, &id).await;

        assert_eq!(outcome(&a), ("failed", "failed", code), "{a:#}");
        let message = variation(&a)["reason"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("the generator failed the task"),
            "{message}"
        );
        let stats = app.sim().stats();
        assert_eq!(stats.tasks_created, 1, "{code}");
        assert_eq!(stats.submits[&task_uuid(&a)], 1, "{code}");
        assert_eq!(app.task_files(), 1);
        assert_eq!(a["cost_usd"], 0.0, "a failed task costs nothing");
        app.stop().await;
    }
}

#[tokio::test]
async fn insufficient_credits_is_surfaced_with_the_providers_message_and_not_retried() {
    let app = spawn_app_with(|s| {
        quick(
            s,
            Faults {
                insufficient_credits: true,
                ..Faults::default()
            },
        )
    })
    .await;
    let id = create(&app, &request(3)).await;

    let a = finished(&app, &id).await;

    assert_eq!(
        outcome(&a),
        ("failed", "failed", "insufficientCredits"),
        "{a:#}"
    );
    let message = variation(&a)["reason"]["message"].as_str().unwrap();
    assert!(message.contains("Insufficient credits"), "{message}");
    let stats = app.sim().stats();
    assert_eq!(stats.submits[&task_uuid(&a)], 1, "402 is not retried");
    assert_eq!(stats.tasks_created, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_runware_key_is_surfaced_as_invalid_api_key_without_leaking_it() {
    // A simulator of its own, which reelay reaches as if it were Runware.
    let sim_dir = tempfile::tempdir().unwrap();
    let base = test_settings(sim_dir.path());
    let sim = reelay::simulator::start(
        reelay::simulator::SimConfig::from_settings(&base, sim_dir.path().join("sim")),
        reelay::media::process::Runner::new(&base.media),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let app = spawn_app_with(|s| {
        s.runware.mode = reelay::config::RunwareMode::Live;
        s.runware.api_url = sim.api_url();
        s.runware.api_key = reelay::secret::Secret::new("wrong-key-0123456789".to_string());
    })
    .await;
    let id = create(&app, &request(3)).await;

    let a = finished(&app, &id).await;

    assert_eq!(outcome(&a), ("failed", "failed", "invalidApiKey"), "{a:#}");
    assert!(!a.to_string().contains("wrong-key-0123456789"));
    assert_eq!(sim.sim.stats().tasks_created, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_task_that_never_finishes_fails_with_timeout_provider_after_the_deadline() {
    let app = spawn_app_with(|s| {
        quick(
            s,
            Faults {
                stall: true,
                ..Faults::default()
            },
        );
        s.runware.task_deadline_secs = 2;
    })
    .await;
    let id = create(&app, &request(3)).await;

    let a = finished(&app, &id).await;

    assert_eq!(
        outcome(&a),
        ("failed", "failed", "timeoutProvider"),
        "{a:#}"
    );
    assert!(history(&a).contains(&"generating".to_string()), "{a:#}");
    assert_eq!(app.sim().stats().tasks_created, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_upload_url_that_expires_unused_fails_the_variation() {
    let app = spawn_app_with(|s| {
        quick(
            s,
            Faults {
                stall: true,
                ..Faults::default()
            },
        );
        s.runware.upload_url_expiry_secs = 1;
        s.runware.upload_grace_secs = 1;
    })
    .await;
    let id = create(&app, &request(3)).await;

    let a = finished(&app, &id).await;

    assert_eq!(
        outcome(&a),
        ("failed", "failed", "uploadUrlExpired"),
        "{a:#}"
    );
    assert_eq!(app.sim().stats().tasks_created, 1);
    assert!(variation(&a).get("previous_tasks").is_none());
    app.stop().await;
}

#[tokio::test]
async fn an_expired_upload_url_is_resubmitted_at_most_once_when_the_policy_says_so() {
    let app = spawn_app_with(|s| {
        quick(
            s,
            Faults {
                stall: true,
                ..Faults::default()
            },
        );
        s.runware.upload_url_expiry_secs = 1;
        s.runware.upload_grace_secs = 1;
        s.runware.resubmit_missing_upload = true;
    })
    .await;
    let id = create(&app, &request(3)).await;
    let first = task_uuid(&get_asset(&app.http, &app.url, &id).await);

    let a = finished(&app, &id).await;

    // The second task expired too: failed, and no third task.
    assert_eq!(
        outcome(&a),
        ("failed", "failed", "uploadUrlExpired"),
        "{a:#}"
    );
    let second = task_uuid(&a);
    assert_ne!(first, second);
    let earlier = variation(&a)["previous_tasks"].as_array().unwrap();
    assert_eq!(earlier.len(), 1);
    assert_eq!(earlier[0]["task_uuid"], first.to_string());
    assert_eq!(earlier[0]["reason_code"], "uploadUrlExpired");
    let mut known = app.sim().task_uuids();
    known.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(known, expected, "exactly the two recorded tasks");
    let stats = app.sim().stats();
    assert_eq!((stats.submits[&first], stats.submits[&second]), (1, 1));
    let message = variation(&a)["reason"]["message"].as_str().unwrap();
    assert!(message.contains(&first.to_string()), "{message}");
    assert_eq!(
        history(&a).iter().filter(|s| *s == "submitted").count(),
        2,
        "{a:#}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_success_without_upload_is_resubmitted_once_and_the_new_task_delivers() {
    let app = spawn_app_with(|s| {
        quick(
            s,
            Faults {
                upload: UploadFault::None,
                first_tasks: 1,
                ..Faults::default()
            },
        );
        s.runware.upload_grace_secs = 1;
        s.runware.resubmit_missing_upload = true;
    })
    .await;
    let id = create(&app, &request(3)).await;
    let first = task_uuid(&get_asset(&app.http, &app.url, &id).await);

    let a = wait_for(&app.http, &app.url, &id, LIMIT, |a| {
        variation(a)["master"]["sha256"].is_string() || a["status"] != "processing"
    })
    .await;

    let v = variation(&a);
    assert!(v["master"]["sha256"].is_string(), "{a:#}");
    assert_eq!(v["master"]["width"], 3840);
    let second = task_uuid(&a);
    assert_ne!(first, second);
    assert_eq!(v["previous_tasks"][0]["task_uuid"], first.to_string());
    assert_eq!(v["previous_tasks"][0]["reason_code"], "uploadMissing");
    let stats = app.sim().stats();
    assert_eq!(stats.tasks_created, 2);
    assert_eq!(stats.uploads.get(&first), None);
    assert_eq!(stats.uploads[&second], 1);
    // Both tasks were charged: 2 x 3 s x 0.42 USD.
    let cost = v["cost_usd"].as_f64().unwrap();
    assert!((cost - 2.52).abs() < 1e-6, "{cost}");
    app.stop().await;
}

#[tokio::test]
async fn a_master_of_the_wrong_size_is_rejected_and_costs_add_up_per_asset_and_campaign() {
    let app = spawn_app_with(|s| {
        quick(
            s,
            Faults {
                deliver_size: "1920x1080".into(),
                ..Faults::default()
            },
        )
    })
    .await;
    let mut two = request(3);
    two["campaign"] = json!("costs");
    two["generation"]["numberResults"] = json!(2);
    let mut one = request(4);
    one["campaign"] = json!("costs");
    let a2 = create(&app, &two).await;
    let a1 = create(&app, &one).await;

    let two = finished(&app, &a2).await;
    let one = finished(&app, &a1).await;

    for a in [&two, &one] {
        assert_eq!(a["status"], "rejected", "{a:#}");
        for v in a["variations"].as_array().unwrap() {
            assert_eq!(v["reason"]["code"], "masterMismatch", "{a:#}");
            let message = v["reason"]["message"].as_str().unwrap();
            assert!(message.contains("1920x1080"), "{message}");
        }
    }
    // The generator charges for what it made, even when reelay rejects it.
    let close = |v: &Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-6;
    for v in two["variations"].as_array().unwrap() {
        assert!(close(&v["cost_usd"], 1.26), "{v:#}");
    }
    assert!(close(&two["cost_usd"], 2.52), "{}", two["cost_usd"]);
    assert!(close(&one["cost_usd"], 1.68), "{}", one["cost_usd"]);
    let list: Value = app
        .http
        .get(format!("{}/v1/assets?campaign=costs", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 2);
    assert!(close(&list["cost_usd"], 4.2), "{list:#}");
    assert_eq!(app.sim().stats().tasks_created, 3, "one task per variation");
    app.stop().await;
}

#[tokio::test]
async fn a_truncated_upload_is_rejected_as_incomplete() {
    let app = spawn_app_with(|s| {
        quick(
            s,
            Faults {
                upload: UploadFault::Truncated,
                ..Faults::default()
            },
        )
    })
    .await;
    let id = create(&app, &request(3)).await;

    let a = finished(&app, &id).await;

    assert_eq!(
        outcome(&a),
        ("rejected", "rejected", "masterIncomplete"),
        "{a:#}"
    );
    // ffmpeg's own words ("partial file", "Invalid NAL unit size"...), no local paths.
    let message = variation(&a)["reason"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the master is truncated or corrupt: ") && message.len() > 40,
        "{message}"
    );
    assert!(!message.contains(app.data.to_str().unwrap()), "{message}");
    assert_eq!(app.sim().stats().tasks_created, 1);
    app.stop().await;
}

#[tokio::test]
async fn without_any_webhook_polling_alone_brings_the_master_in() {
    let app = spawn_app_with(|s| {
        quick(
            s,
            Faults {
                webhook: WebhookFault::None,
                ..Faults::default()
            },
        )
    })
    .await;
    let id = create(&app, &request(3)).await;

    let a = wait_for(&app.http, &app.url, &id, LIMIT, |a| {
        variation(a)["master"]["sha256"].is_string() || a["status"] != "processing"
    })
    .await;

    assert!(history(&a).contains(&"arrived".to_string()), "{a:#}");
    let uuid = task_uuid(&a);
    let stats = app.sim().stats();
    assert_eq!(stats.webhook_attempts.get(&uuid), None);
    assert!(stats.polls[&uuid] >= 1);
    assert_eq!(stats.tasks_created, 1);
    // The cost came from a poll, not from a webhook.
    assert!(
        (a["cost_usd"].as_f64().unwrap() - 1.26).abs() < 1e-6,
        "{a:#}"
    );
    app.stop().await;
}

#[tokio::test]
async fn latency_503_bursts_and_a_doubled_webhook_still_publish_one_task() {
    let app = spawn_app_with(|s| {
        quick(
            s,
            Faults {
                ack_delay_ms: 700,
                // The first submit creates the task but answers 503, as does
                // the retry: the third meets conflictTaskUUID and polls.
                burst_status: 503,
                burst_count: 2,
                burst_on: BurstOn::All,
                burst_after_create: true,
                webhook: WebhookFault::Twice,
                ..Faults::default()
            },
        )
    })
    .await;
    let id = create(&app, &request(3)).await;

    let a = finished(&app, &id).await;

    assert_eq!(outcome(&a), ("published", "published", ""), "{a:#}");
    let uuid = task_uuid(&a);
    let stats = app.sim().stats();
    assert_eq!(stats.tasks_created, 1);
    assert_eq!(app.task_files(), 1);
    assert_eq!(stats.submits[&uuid], 3, "two 503s, then conflictTaskUUID");
    // No assertion on the poll count: polling races the webhook and the S3
    // event, and the master can be confirmed before any poll is made (seen
    // once in a full run). The bursts are asserted on the submits above.
    assert_eq!(stats.webhooks_accepted[&uuid], 2);
    assert_eq!(
        history(&a).iter().filter(|s| *s == "submitted").count(),
        1,
        "{a:#}"
    );
    assert!((a["cost_usd"].as_f64().unwrap() - 1.26).abs() < 1e-6);
    app.stop().await;
}

/// An ffmpeg that hangs on every run that reads an input (a wrapper put in
/// as `media.ffmpeg_path`; `-version` and the filter listing go to the real
/// one): each attempt is stopped by the watchdog after `media.stall_secs`,
/// retried, and after `worker.max_attempts` the variation fails `stalled`.
/// Nothing of the hung runs is left behind.
#[tokio::test]
async fn an_ffmpeg_that_stalls_on_every_attempt_ends_failed_stalled_and_is_never_left_running() {
    let bin = tempfile::tempdir().unwrap();
    let wrapper = bin.path().join("ffmpeg");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\ncase \" $* \" in *\" -i \"*) exec sleep 300.4417 ;; esac\nexec ffmpeg \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let app = spawn_app_with(|s| {
        s.media.ffmpeg_path = wrapper.clone();
        s.media.stall_secs = 1;
        s.worker.max_step_errors = 2;
        s.worker.step_retry_initial_ms = 100;
    })
    .await;
    app.put_master(
        "masters/stall/clip.mp4",
        tiny_clip(320, 240, 2, true, 9).await,
        &[],
    )
    .await;
    let assets = wait_for_campaign(&app, "stall", LIMIT, |a| {
        a.len() == 1 && a[0]["status"] != "processing"
    })
    .await;
    let a = get_asset(&app.http, &app.url, assets[0]["id"].as_str().unwrap()).await;
    let v = variation(&a);
    assert_eq!(v["state"], "failed", "{a:#}");
    assert_eq!(v["reason"]["code"], "stalled", "{a:#}");
    let message = v["reason"]["message"].as_str().unwrap();
    assert!(
        message.contains("made no progress for 1 s on each of 2 attempts"),
        "{message}"
    );
    // Each attempt ran and was stopped; none is still there.
    let gone_by = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains("300.4417"))
            })
            .count();
        if left == 0 {
            break;
        }
        assert!(std::time::Instant::now() < gone_by, "{left} hung runs left");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}
