//! Stage decisions without ffmpeg, and the one place outcomes are applied,
//! on a real job store with a context that never reaches a network.

use super::arrival::{judge, Inspection};
use super::check::{decide, Checked};
use super::*;
use crate::jobs::model::{Asset, Brief, NewVariation, Outputs, Source};
use crate::jobs::{Pipeline, State, Store};
use crate::media::probe::Probe;
use crate::media::transcode::{FileRole, WrittenFile};
use crate::policy::{Check, QcReport, Verdict};
use std::sync::Arc;

fn probe(width: u32, height: u32, secs: f64, audio: bool) -> Probe {
    serde_json::from_value(serde_json::json!({
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration_secs": secs, "size_bytes": 1000,
        "bit_rate": null,
        "video": {"codec": "h264", "profile": null, "level": null, "width": width,
                  "height": height, "pix_fmt": null, "fps": 24.0, "nb_frames": null},
        "audio": if audio { serde_json::json!({"codec": "aac", "channels": 2, "sample_rate": 48000, "channel_layout": null, "bit_rate": null}) } else { serde_json::Value::Null }
    }))
    .unwrap()
}

fn asked(width: u32, height: u32, secs: f64, audio: bool) -> MasterSpec {
    MasterSpec {
        width: Some(width),
        height: Some(height),
        duration_secs: Some(secs),
        sound: audio,
        container: Container::Mp4,
    }
}

#[test]
fn arrival_of_a_master_that_differs_from_the_request_rejects_with_master_mismatch() {
    let cases = [
        ("smaller", probe(1920, 1080, 5.0, true), "3840"),
        ("shorter", probe(3840, 2160, 3.0, true), "duration"),
        ("silent", probe(3840, 2160, 5.0, false), "audio"),
    ];
    for (label, got, says) in cases {
        match judge(&got, Some(&asked(3840, 2160, 5.0, true)), 0.5) {
            Inspection::Rejected {
                code,
                message,
                probe,
            } => {
                assert_eq!(code, ReasonCode::MasterMismatch, "{label}");
                assert!(message.contains(says), "{label}: {message}");
                assert!(probe.is_some(), "{label}: the probe is kept for the API");
            }
            other => panic!("{label}: {other:?}"),
        }
    }
    assert!(matches!(
        judge(
            &probe(3840, 2160, 5.2, true),
            Some(&asked(3840, 2160, 5.0, true)),
            0.5
        ),
        Inspection::Verified(_)
    ));
}

#[test]
fn an_upload_only_has_to_have_video() {
    let mut no_video = probe(640, 360, 2.0, true);
    no_video.video = None;
    assert!(matches!(
        judge(&no_video, None, 0.5),
        Inspection::Rejected {
            code: ReasonCode::MasterMismatch,
            ..
        }
    ));
    assert!(matches!(
        judge(&probe(640, 360, 2.0, false), None, 0.5),
        Inspection::Verified(_)
    ));
}

fn check(rule: &str, passed: bool) -> Check {
    Check {
        subject: "720p".into(),
        rule: rule.into(),
        threshold: "x".into(),
        measured: "y".into(),
        passed,
        reason: (!passed).then(|| format!("{rule} missed")),
    }
}

fn report(checks: Vec<Check>) -> QcReport {
    let verdict = if checks.iter().all(|c| c.passed) {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    QcReport {
        verdict,
        output_quality: 90,
        ssim_floor: 0.95,
        vmaf_floor: None,
        ttl_remaining_secs: 3600,
        profile: "default".into(),
        rules: None,
        content: None,
        loudness_normalization: None,
        vmaf_available: false,
        timings: Default::default(),
        renditions: Vec::new(),
        checks,
        destinations: Vec::new(),
        corrections: Vec::new(),
    }
}

#[test]
fn an_ssim_only_failure_is_reencoded_once_then_rejected() {
    let ssim_only = report(vec![check("ssim_floor", false), check("moov_first", true)]);
    match decide(ssim_only.clone(), 0) {
        Checked::Remediate { boost, .. } => assert_eq!(boost, 1),
        other => panic!("first failure: {other:?}"),
    }
    match decide(ssim_only, 1) {
        Checked::Rejected {
            code,
            message,
            report,
        } => {
            assert_eq!(code, ReasonCode::QcFailed);
            assert!(message.contains("ssim_floor missed"), "{message}");
            assert!(report.is_some(), "the report is kept");
        }
        other => panic!("after the re-encode: {other:?}"),
    }
}

#[test]
fn a_failure_of_another_rule_is_not_remediated() {
    for other in ["black_head", "loudness", "ttl"] {
        let both = report(vec![check("ssim_floor", false), check(other, false)]);
        assert!(
            matches!(
                decide(both, 0),
                Checked::Rejected {
                    code: ReasonCode::QcFailed,
                    ..
                }
            ),
            "{other}"
        );
    }
    assert!(matches!(
        decide(report(vec![check("ssim_floor", true)]), 0),
        Checked::Pass(_)
    ));
}

#[test]
fn client_text_names_files_not_folders_and_stays_short() {
    let t = client_text("ffmpeg: /srv/reelay/work/v1/master.mp4: Invalid data\nmore");
    assert_eq!(t, "ffmpeg: master.mp4: Invalid data more");
    assert!(client_text(&"x".repeat(5000)).chars().count() <= 1001);
}

/// A pipeline over a fresh store whose object store and generator are never
/// reached by the stages these tests run.
async fn pipeline(dir: &Path) -> Pipeline {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = Settings::load_from(&config, "test").unwrap();
    settings.storage.endpoint = "http://127.0.0.1:9".into();
    // No credentials ship; startup makes them per install.
    settings.storage.access_key_id = "test".into();
    settings.storage.secret_access_key = crate::secret::Secret::new("test-secret-key");
    let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
    let store = Store::connect(&url, 2, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let runware =
        crate::runware::client::RunwareClient::new(crate::runware::client::ClientConfig::new(
            "http://127.0.0.1:9",
            crate::secret::Secret::new("k"),
        ))
        .unwrap();
    Pipeline {
        store,
        objects: ObjectStore::new(&settings.storage).unwrap(),
        runware,
        runner: Runner::new(&settings.media),
        settings: Arc::new(settings),
        public_url: "http://127.0.0.1:9".into(),
        cdn_base: "http://127.0.0.1:9/cdn".into(),
        work_dir: dir.join("work"),
        webhook_secret: b"s".to_vec(),
        wake: Default::default(),
    }
}

async fn seed(p: &Pipeline, state: State) -> crate::jobs::Claim {
    let asset = Asset {
        id: "a1".into(),
        campaign: "c".into(),
        profile: "default".into(),
        brief: Brief::Generation(Box::default()),
        callback_url: None,
        ttl_secs: 3600,
        created_at: crate::time::now_ms(),
        qc: None,
        source: Source::Generated,
        destinations: Vec::new(),
        vast: Default::default(),
        captions: Vec::new(),
    };
    let v = NewVariation {
        id: "a1_v0".into(),
        idx: 0,
        task_uuid: uuid::Uuid::new_v4().to_string(),
        webhook_token_sha256: String::new(),
        master_key: "masters/c/a1/v0/master.mp4".into(),
    };
    p.store.create_asset(&asset, &[v]).await.unwrap();
    p.store.restart("a1_v0", state, "test setup").await.unwrap();
    p.store
        .claim(std::time::Duration::from_secs(30))
        .await
        .unwrap()
        .expect("runnable")
}

async fn raw(p: &Pipeline, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(p.store.sqlite_pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_row_whose_json_does_not_decode_fails_loudly_with_an_internal_reason() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path()).await;
    let mut claim = seed(&p, State::Checking).await;
    raw(
        &p,
        "UPDATE variations SET outputs_json = '{\"renditions\": 3}' WHERE id = 'a1_v0'",
    )
    .await;
    // Read directly, the row is an error, not a variation without outputs.
    let err = p.store.variation("a1_v0").await.unwrap_err();
    assert!(err.is_undecodable(), "{err}");

    p.step(&mut claim, Default::default()).await;
    let (state, code, reason): (String, Option<String>, Option<String>) =
        sqlx::query_as("SELECT state, reason_code, reason FROM variations WHERE id = 'a1_v0'")
            .fetch_one(p.store.sqlite_pool())
            .await
            .unwrap();
    assert_eq!(state, "failed");
    assert_eq!(code.as_deref(), Some("internalError"));
    assert_eq!(reason.as_deref(), Some(INTERNAL_MESSAGE));
    let last = p.store.transitions("a1_v0").await.unwrap().pop().unwrap();
    assert_eq!(
        (last.from_state, last.to_state),
        (State::Checking, State::Failed)
    );
}

#[tokio::test]
async fn an_internal_error_reaches_the_log_but_never_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path()).await;
    let mut claim = seed(&p, State::Publishing).await;
    // Outputs on disk but no passing QC report: the publish stage refuses,
    // which is our fault, not the media's.
    let file = dir.path().join("poster.jpg");
    std::fs::write(&file, b"x").unwrap();
    let outputs = Outputs {
        renditions: Vec::new(),
        poster: file.clone(),
        files: vec![WrittenFile {
            rel: "poster.jpg".into(),
            path: file,
            role: FileRole::Poster,
            output: None,
        }],
        boost: 0,
        loudness: None,
        content: None,
        timings: Default::default(),
        references: Vec::new(),
    };
    let json = serde_json::to_string(&outputs).unwrap().replace('\'', "''");
    raw(&p, &format!("UPDATE variations SET outputs_json = '{json}', master_probe = '{}', error_count = 1 WHERE id = 'a1_v0'",
        serde_json::to_string(&probe(640, 360, 2.0, true)).unwrap())).await;

    p.step(&mut claim, Default::default()).await;
    let v = p.store.variation("a1_v0").await.unwrap().unwrap();
    assert_eq!(v.state, State::Publishing, "a transient error is retried");
    assert_eq!(v.error_count, 2);
    let detail = v.stage_detail.unwrap();
    assert!(
        detail.starts_with("retrying after an internal error"),
        "{detail}"
    );
    assert!(
        !detail.contains("refusing"),
        "the cause stays in the log: {detail}"
    );

    // The last allowed attempt fails it, still without the cause.
    raw(
        &p,
        "UPDATE variations SET error_count = 7, next_run_at = 0 WHERE id = 'a1_v0'",
    )
    .await;
    let mut claim = p
        .store
        .claim(std::time::Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    p.step(&mut claim, Default::default()).await;
    let v = p.store.variation("a1_v0").await.unwrap().unwrap();
    assert_eq!(v.state, State::Failed);
    let reason = v.reason().unwrap();
    assert_eq!(reason.code, ReasonCode::InternalError);
    assert!(
        reason.message.starts_with(INTERNAL_MESSAGE),
        "{}",
        reason.message
    );
    assert!(!reason.message.contains("refusing"));
}

#[test]
fn the_generators_own_code_is_kept_and_ours_are_recognised() {
    use crate::runware::ApiError;
    let error = |code: &str, parameter: Option<&str>| -> ApiError {
        serde_json::from_value(serde_json::json!({
            "code": code, "message": "no", "parameter": parameter,
        }))
        .unwrap()
    };
    let fallback = (ReasonCode::ProviderError, "a failure".to_string());
    match generation::provider_failure(
        &[error("invalidApiKey", Some("apiKey"))],
        "refused the task",
        fallback.clone(),
    ) {
        Outcome::Fail {
            code,
            message,
            record,
        } => {
            assert_eq!(code.as_str(), "invalidApiKey");
            assert_eq!(code, ReasonCode::from_generator("invalidApiKey"));
            assert_eq!(
                message,
                "the generator refused the task: no (parameter apiKey)"
            );
            assert_eq!(
                record.provider_errors.map(|e| e.len()),
                Some(1),
                "the errors are kept"
            );
        }
        other => panic!("{other:?}"),
    }
    match generation::provider_failure(
        &[error("timeoutProvider", None)],
        "failed the task",
        fallback.clone(),
    ) {
        Outcome::Fail { code, .. } => assert_eq!(code, ReasonCode::TimeoutProvider),
        other => panic!("{other:?}"),
    }
    match generation::provider_failure(&[], "failed the task", fallback) {
        Outcome::Fail { code, message, .. } => {
            assert_eq!(code, ReasonCode::ProviderError);
            assert!(message.ends_with("a failure"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_variation_whose_ttl_ran_out_before_publishing_expires_instead() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path()).await;
    let mut claim = seed(&p, State::Publishing).await;
    raw(
        &p,
        "UPDATE variations SET arrived_at = 1 WHERE id = 'a1_v0'",
    )
    .await;
    p.step(&mut claim, Default::default()).await;
    let v = p.store.variation("a1_v0").await.unwrap().unwrap();
    assert_eq!(v.state, State::Expired);
    assert_eq!(v.reason().unwrap().code, ReasonCode::TtlExpired);
}

#[tokio::test]
async fn a_check_whose_outputs_are_gone_transcodes_again() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path()).await;
    let mut claim = seed(&p, State::Checking).await;
    p.step(&mut claim, Default::default()).await;
    let v = p.store.variation("a1_v0").await.unwrap().unwrap();
    assert_eq!(v.state, State::Transcoding);
    assert!(v.reason().is_none());
    let last = p.store.transitions("a1_v0").await.unwrap().pop().unwrap();
    assert_eq!(
        last.note.as_deref(),
        Some("outputs missing; transcoding again")
    );
}

#[test]
fn the_upload_url_lives_until_the_task_deadline_plus_the_grace_not_an_hour() {
    use super::submit::upload_url_lifetime;
    use std::time::Duration;
    assert_eq!(
        upload_url_lifetime(3600, 1800, 60),
        Duration::from_secs(1860)
    );
    assert_eq!(upload_url_lifetime(600, 1800, 60), Duration::from_secs(600));
    assert_eq!(upload_url_lifetime(3600, 0, 0), Duration::from_secs(1));
}
