//! `submitted`/`generating`: waiting for the generator. Whoever comes first
//! (its webhook, the S3 event, this stage's own poll), the object in the
//! bucket decides, once the generator reported success for this task: then
//! [`super::arrival`] checks it. An upload before that report waits for it
//! (up to the task deadline); it is never taken on its own. Without
//! it, the generator's error fails the variation, and so do the task
//! deadline, an expired upload URL and a success that never uploaded (the
//! last two may resubmit once as a new task when the policy says so).

use super::{arrival, Ctx, Outcome};
use crate::jobs::model::{Asset, PreviousTask, Update, Variation};
use crate::jobs::State;
use crate::reason::ReasonCode;
use crate::runware::client::{poll_delay, ClientError};
use crate::runware::{ApiError, TaskStatus};
use crate::storage::ObjectKey;
use crate::time::now_ms;
use std::time::Duration;
use uuid::Uuid;

/// What the generator said about a task whose master is already in the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reported {
    Success,
    Running,
    /// Failed, or the poll did not get through.
    Unknown,
}

pub async fn run(ctx: &Ctx<'_>, v: &Variation, asset: &Asset) -> Outcome {
    let now = now_ms();
    let rw = &ctx.settings.runware;
    let grace_ms = rw.upload_grace_secs as i64 * 1000;
    let key = crate::tri!(ObjectKey::parse(&v.master_key));
    let bucket = &ctx.settings.storage.masters_bucket;
    let task_uuid = crate::tri!(Uuid::parse_str(&v.task_uuid));

    // Whoever came first (webhook, S3 event, poll), the object is taken only
    // once the generator reported success for this very task: an upload
    // alone (while the task still runs, or a task that never finishes) is
    // not a master.
    let uploaded = crate::tri!(
        ctx.objects.head(bucket, &key).await,
        "looking for the master"
    );
    if let Some(meta) = &uploaded {
        let reported = if v.success_reported() {
            Reported::Success
        } else {
            capture_result(ctx, v, task_uuid).await
        };
        if reported == Reported::Success {
            return arrival::generated(ctx, v, asset, meta.size, meta.etag.as_deref()).await;
        }
    }
    if let Some(errors) = &v.provider_errors {
        return failed_task(errors);
    }
    let submitted_at = v.submitted_at.unwrap_or(v.created_at);
    if now > submitted_at + rw.task_deadline_secs as i64 * 1000 {
        return Outcome::fail(
            ReasonCode::TimeoutProvider,
            format!(
                "the generator did not deliver within {} s of submission",
                rw.task_deadline_secs
            ),
        );
    }
    if uploaded.is_some() {
        // Polled just now (capture_result): ask again later.
        let polls = v.poll_count + 1;
        return Outcome::Wait {
            at: now + poll_delay(polls as u32).as_millis() as i64,
            update: Update {
                poll_count: Some(polls),
                stage_detail: Some(Some(
                    "an upload is in the bucket; waiting for the generator to report success before taking it".into(),
                )),
                ..Default::default()
            },
        };
    }
    if let Some(exp) = v.upload_expires_at {
        if now > exp + grace_ms {
            return upload_never_came(
                ctx,
                v,
                asset,
                ReasonCode::UploadUrlExpired,
                "no upload arrived before the presigned upload URL expired",
            );
        }
    }
    if let Some(seen) = v.success_seen_at {
        if now > seen + grace_ms {
            return upload_never_came(
                ctx,
                v,
                asset,
                ReasonCode::UploadMissing,
                &format!(
                    "the generator reported success but no upload reached the bucket within {} s",
                    rw.upload_grace_secs
                ),
            );
        }
    }

    let polls = v.poll_count + 1;
    let mut update = Update {
        poll_count: Some(polls),
        ..Default::default()
    };
    let mut at = now + poll_delay(polls as u32).as_millis() as i64;
    match ctx.runware.get_response(task_uuid).await {
        Ok(poll) => {
            if !poll.errors.is_empty() {
                return failed_task(&poll.errors[..1]);
            }
            let running = if let Some(item) = poll
                .items
                .iter()
                .find(|i| i.status == Some(TaskStatus::Success))
            {
                update.provider = Some(Some(item.clone()));
                update.cost = item.cost.map(Some);
                update.stage_progress = Some(Some(100.0));
                if v.success_seen_at.is_none() {
                    update.success_seen_at = Some(Some(now));
                }
                update.stage_detail =
                    Some(Some("generator finished; waiting for the upload".into()));
                at = now + 1000;
                true
            } else if let Some(item) = poll.items.first() {
                update.stage_progress = Some(item.progress);
                update.stage_detail = Some(Some("generating".into()));
                true
            } else {
                false
            };
            if running {
                update.state = Some(State::Generating);
                if v.state != State::Generating {
                    update.note = Some("generator reports the task running".into());
                }
            }
        }
        Err(ClientError::Rejected { errors, .. }) => return failed_task(&errors),
        Err(e) => {
            tracing::warn!(error = %e, "polling the generator failed; will poll again");
            update.stage_detail =
                Some(Some("polling the generator failed; will poll again".into()));
        }
    }
    Outcome::Wait { at, update }
}

/// One poll for the result item once an upload is in the bucket: its
/// success (with the cost) is what lets arrival take the upload, even when
/// no webhook came. Bounded: a slow poll is asked again on the next step.
async fn capture_result(ctx: &Ctx<'_>, v: &Variation, task_uuid: Uuid) -> Reported {
    let limit = Duration::from_secs(ctx.settings.runware.result_poll_timeout_secs);
    let poll = tokio::time::timeout(limit, ctx.runware.get_response(task_uuid)).await;
    match poll {
        Ok(Ok(p)) => match p.successes().next() {
            Some(item) => {
                if let Err(e) = ctx
                    .store
                    .record_provider_report(&v.id, Some(item), None, item.cost)
                    .await
                {
                    tracing::warn!(error = %e, "recording the generator's result");
                }
                Reported::Success
            }
            None if p.is_failed() => {
                // Recorded, so the next step fails the task with it.
                if let Err(e) = ctx
                    .store
                    .record_provider_report(&v.id, None, Some(&p.errors), None)
                    .await
                {
                    tracing::warn!(error = %e, "recording the generator's failure");
                }
                Reported::Unknown
            }
            None => Reported::Running,
        },
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "result poll after upload failed");
            Reported::Unknown
        }
        Err(_) => Reported::Unknown,
    }
}

/// No upload came (URL expired, or success without an upload): resubmit
/// once as a new task when the policy says so, else fail with `code`.
fn upload_never_came(
    ctx: &Ctx<'_>,
    v: &Variation,
    asset: &Asset,
    code: ReasonCode,
    message: &str,
) -> Outcome {
    let mut earlier = v.previous_tasks().to_vec();
    if !ctx.settings.runware.resubmit_missing_upload || !earlier.is_empty() {
        let message = match earlier.last() {
            Some(prev) => format!(
                "{message} (task {}, which already replaced task {})",
                v.task_uuid, prev.task_uuid
            ),
            None => message.to_string(),
        };
        let note = format!("no upload ({code})");
        return Outcome::fail(code, message).recording(Update::default().note(note));
    }
    // Runware's taskUUID is unique: a new task needs a new one. Both are kept.
    let new_uuid = Uuid::new_v4();
    let now = now_ms();
    earlier.push(PreviousTask {
        task_uuid: v.task_uuid.clone(),
        cost: v.cost,
        reason_code: code.clone(),
        at: now,
    });
    // The new task gets a key (and URL) of its own: a late upload to the old
    // task's URL is recorded and ignored by the event intake.
    let Some(asset_id) = crate::domain::AssetId::parse(&asset.id) else {
        return Outcome::Retry(anyhow::anyhow!(
            "the asset id {:?} does not parse",
            asset.id
        ));
    };
    let master_key = crate::domain::master_key::for_task(
        &asset.campaign,
        &asset_id,
        v.idx,
        &new_uuid,
        crate::domain::master_key::extension(&v.master_key),
    );
    Outcome::advance(Update {
        task_uuid: Some(new_uuid.to_string()),
        master_key: Some(master_key),
        previous_tasks: Some(earlier),
        success_seen_at: Some(None),
        provider: Some(None),
        cost: Some(None),
        poll_count: Some(0),
        next_run_at: Some(now),
        ..Update::to(State::Requested).note(format!(
            "{message} ({code}); resubmitting once as task {new_uuid} with a fresh upload URL (was task {})",
            v.task_uuid
        ))
    })
}

/// The generator failed the task (webhook or poll).
fn failed_task(errors: &[ApiError]) -> Outcome {
    provider_failure(
        errors,
        "failed the task",
        (
            ReasonCode::ProviderError,
            "the generator reported a failure".into(),
        ),
    )
}

/// Ends the variation `failed` with the generator's first error (code,
/// message and the parameter it names) as the reason; all of them are kept
/// on the row. `fallback` is the reason when there is no error object.
pub fn provider_failure(
    errors: &[ApiError],
    what: &str,
    fallback: (ReasonCode, String),
) -> Outcome {
    let (code, message) = errors
        .first()
        .map(|e| {
            let param = e
                .parameter
                .as_deref()
                .map(|p| format!(" (parameter {p})"))
                .unwrap_or_default();
            (
                ReasonCode::from_generator(&e.code),
                format!("{}{}", e.message, param),
            )
        })
        .unwrap_or(fallback);
    let note = format!("provider error {code}");
    Outcome::Fail {
        code,
        message: format!("the generator {what}: {message}"),
        record: Update {
            provider_errors: Some(errors.to_vec()),
            ..Update::default().note(note)
        },
    }
}
