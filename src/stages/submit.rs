//! `requested` → `submitted`: presign the master's PUT URL and submit the
//! `videoInference` task with it as `uploadEndpoint`. Idempotent through the
//! task's fixed taskUUID: a repeat is answered `conflictTaskUUID`.

use super::generation::provider_failure;
use super::{Ctx, Outcome};
use crate::jobs::model::{Asset, Brief, Update, Variation};
use crate::jobs::State;
use crate::reason::ReasonCode;
use crate::runware::client::{poll_delay, ClientError, SubmitOutcome};
use crate::storage::ObjectKey;
use crate::time::now_ms;
use crate::tokens::webhook_token;
use std::time::Duration;
use uuid::Uuid;

/// How long the presigned upload URL lives: until the task's deadline plus
/// the upload grace (an upload after that could not be taken anyway), and
/// never longer than `runware.upload_url_expiry_secs`.
pub fn upload_url_lifetime(max_secs: u64, deadline_secs: u64, grace_secs: u64) -> Duration {
    Duration::from_secs(
        max_secs
            .min(deadline_secs.saturating_add(grace_secs))
            .max(1),
    )
}

pub async fn run(ctx: &Ctx<'_>, v: &Variation, asset: &Asset) -> Outcome {
    let Brief::Generation(req) = &asset.brief else {
        // An upload has nothing to generate; it starts at the arrival checks.
        return Outcome::Retry(anyhow::anyhow!(
            "a variation of an uploaded master is in `requested`"
        ));
    };
    let rw = &ctx.settings.runware;
    let expiry = upload_url_lifetime(
        rw.upload_url_expiry_secs,
        rw.task_deadline_secs,
        rw.upload_grace_secs,
    );
    let key = crate::tri!(ObjectKey::parse(&v.master_key));
    let upload_url = crate::tri!(
        ctx.objects
            .presign_put(&ctx.settings.storage.masters_bucket, &key, expiry)
            .await,
        "presigning the master's upload URL"
    );
    let webhook_url = format!(
        "{}/v1/webhooks/runware/{}?token={}",
        ctx.public_url.trim_end_matches('/'),
        v.id,
        webhook_token(ctx.webhook_secret, &v.id)
    );
    let task_uuid = crate::tri!(Uuid::parse_str(&v.task_uuid));
    let task = req.to_task(task_uuid, &rw.model, Some(&upload_url), Some(&webhook_url));
    let now = now_ms();
    let submitted = |note: &str| Update {
        submitted_at: Some(now),
        upload_expires_at: Some(now + expiry.as_millis() as i64),
        next_run_at: Some(now + poll_delay(0).as_millis() as i64),
        stage_detail: Some(Some("waiting for the generator".into())),
        ..Update::to(State::Submitted).note(note)
    };
    match ctx.runware.submit(&task).await {
        Ok(SubmitOutcome::Accepted { .. }) => {
            Outcome::advance(submitted("task accepted by the generator"))
        }
        // A previous attempt got through before we could record it.
        Ok(SubmitOutcome::AlreadyExists) => Outcome::advance(submitted(
            "task already existed (conflictTaskUUID); polling it",
        )),
        Err(ClientError::Rejected {
            http_status,
            errors,
        }) => provider_failure(
            &errors,
            "refused the task",
            (ReasonCode::ProviderRejected, format!("HTTP {http_status}")),
        ),
        Err(e) if now - v.created_at > rw.task_deadline_secs as i64 * 1000 => {
            tracing::warn!(error = %e, "submitting the task failed past the deadline");
            Outcome::fail(
                ReasonCode::ProviderUnavailable,
                "the generator could not be reached before the task's deadline",
            )
        }
        Err(e) => Outcome::Retry(anyhow::Error::new(e).context("submitting the task")),
    }
}
