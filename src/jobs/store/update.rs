//! A step's result applied under its claim's fencing token: the row, its
//! transition and its notifications in one transaction.

use super::backend::on_tx;
use super::{now_ms, outbox, record_transition, Claim, Result, State, Store, Update};
use sqlx::types::Json;
use sqlx::QueryBuilder;

impl Store {
    /// Applies a step's result under the claim's fencing token, recording the
    /// transition when the state changes. False when the lease was lost.
    #[tracing::instrument(name = "store.update", skip_all)]
    pub async fn update(&self, claim: &Claim, u: Update) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let done = on_tx!(&mut tx, c => {
            let mut q: QueryBuilder<Db> = QueryBuilder::new("UPDATE variations SET updated_at = ");
            q.push_bind(now);
            macro_rules! set {
                ($col:literal, $v:expr) => {
                    if let Some(v) = $v {
                        q.push(concat!(", ", $col, " = "));
                        q.push_bind(v);
                    }
                };
            }
            // JSON columns are written through `Json`, which reads them back.
            macro_rules! set_json {
                ($col:literal, $v:expr) => {
                    if let Some(v) = $v {
                        q.push(concat!(", ", $col, " = "));
                        q.push_bind(v.map(Json));
                    }
                };
            }
            set!("state", u.state);
            set!("stage_progress", u.stage_progress);
            set_json!("progress_json", u.progress.clone());
            set!("stage_detail", u.stage_detail.clone());
            set!("poll_count", u.poll_count);
            set!("error_count", u.error_count);
            set!("submitted_at", u.submitted_at);
            set!("upload_expires_at", u.upload_expires_at);
            set_json!("provider_json", u.provider.clone());
            set_json!("provider_error_json", u.provider_errors.clone().map(Some));
            set!("cost", u.cost);
            set!("arrived_at", u.arrived_at);
            set!("master_size", u.master_size);
            set!("master_sha256", u.master_sha256.clone());
            set_json!("master_probe", u.master_probe.clone().map(Some));
            set_json!("outputs_json", u.outputs.clone());
            set_json!("qc_json", u.qc.clone().map(Some));
            set_json!("published_json", u.published.clone().map(Some));
            if let Some(r) = &u.reason {
                q.push(", reason_code = ").push_bind(r.code.clone());
                q.push(", reason = ").push_bind(r.message.clone());
            }
            set!("next_run_at", u.next_run_at);
            set!("master_etag", u.master_etag.clone());
            set!("task_uuid", u.task_uuid.clone());
            set!("master_key", u.master_key.clone());
            set_json!("previous_tasks", u.previous_tasks.clone().map(Some));
            set!("success_seen_at", u.success_seen_at);
            if u.release {
                q.push(", lease_until = 0");
            }
            q.push(" WHERE id = ").push_bind(&claim.id);
            q.push(" AND attempt = ").push_bind(claim.attempt);
            q.build().execute(&mut *c).await?.rows_affected()
        });
        if done != 1 {
            return Ok(false);
        }
        if let Some(to) = u.state {
            // A change of state, or a noted re-entry (a resumed step), is history.
            if to != claim.state || u.note.is_some() {
                record_transition(&mut tx, &claim.id, claim.state, to, now, u.note.as_deref())
                    .await?;
            }
            if to != claim.state && to.is_terminal() {
                outbox::enqueue_terminal_event(&mut tx, &claim.id, to, now).await?;
            }
        }
        for item in &u.outbox {
            outbox::insert(&mut tx, item, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Ends a variation whose row does not decode, without reading it: the
    /// state, an internal reason and the transition, under the claim's
    /// fencing token. Its callback is queued only if the row then decodes.
    #[tracing::instrument(name = "store.fail_undecodable", skip_all)]
    pub async fn fail_undecodable(&self, claim: &Claim, note: &str) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let done = on_tx!(&mut tx, c => {
            sqlx::query(
                "UPDATE variations SET state = $1, reason_code = $2, reason = $3, lease_until = 0,
                     stage_progress = NULL, progress_json = NULL, stage_detail = NULL, updated_at = $4
                 WHERE id = $5 AND attempt = $6",
            )
            .bind(State::Failed)
            .bind(crate::reason::ReasonCode::InternalError)
            .bind(crate::reason::INTERNAL_MESSAGE)
            .bind(now)
            .bind(&claim.id)
            .bind(claim.attempt)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if done != 1 {
            return Ok(false);
        }
        record_transition(
            &mut tx,
            &claim.id,
            claim.state,
            State::Failed,
            now,
            Some(note),
        )
        .await?;
        if let Err(e) = outbox::enqueue_terminal_event(&mut tx, &claim.id, State::Failed, now).await
        {
            tracing::error!(variation = %claim.id, error = %e, "no callback for a row that does not decode");
        }
        tx.commit().await?;
        Ok(true)
    }
}
