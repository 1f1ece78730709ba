//! Moves outside a worker step: a restart (a new master version, a
//! reprocess) and the TTL expiry, each one transaction.

use super::backend::{on_pool, on_tx, Tx};
use super::{now_ms, outbox, record_transition, s3, NewOutbox, Result, Store, Variation};
use crate::jobs::State;
use crate::reason::ReasonCode;

impl Store {
    /// Puts a variation back to `to` outside a worker step (a new master
    /// version landed, or a reprocess was asked for), recording why. A row a
    /// worker is running is taken from it: `attempt` moves on, so the
    /// worker's next write or renewal fails and its step is dropped. A
    /// finished row keeps its lease (the CDN sweeper may hold it), so a
    /// worker picks it up once that is free. Expired and cancelled rows stay.
    #[tracing::instrument(name = "store.restart", skip_all)]
    pub async fn restart(&self, id: &str, to: State, note: &str) -> Result<bool> {
        let mut tx = self.begin_immediate().await?;
        let done = restart_in(&mut tx, id, to, note).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Sends every variation of the asset that has a verified master back to
    /// `arrived` (transcode, QC and publish run again from that master) and
    /// records the asset's profile, in one transaction. Returns the ids.
    /// Variations still waiting for a master (a new version is on its way
    /// through the arrival checks) are left to finish that, and so are those
    /// whose current master was turned down at arrival: it is no master to
    /// build on.
    #[tracing::instrument(name = "store.reprocess", skip_all)]
    pub async fn reprocess(
        &self,
        asset_id: &str,
        profile: &str,
        note: &str,
    ) -> Result<Vec<String>> {
        let mut tx = self.begin_immediate().await?;
        // The stored master must be one that passed its arrival checks: the
        // latest arrival outcome (a step out of submitted/generating) is `arrived`.
        let rows: Vec<(String,)> = on_tx!(&mut tx, c => {
            sqlx::query_as(
                "SELECT v.id FROM variations v
                 WHERE v.asset_id = $1 AND v.master_sha256 IS NOT NULL
                   AND v.state NOT IN ('expired', 'cancelled', 'requested', 'submitted', 'generating')
                   AND (SELECT t.to_state FROM transitions t
                        WHERE t.variation_id = v.id AND t.from_state IN ('submitted', 'generating')
                          AND t.to_state IN ('arrived', 'rejected', 'failed')
                        ORDER BY t.seq DESC LIMIT 1) = 'arrived'
                 ORDER BY v.idx",
            )
            .bind(asset_id)
            .fetch_all(&mut *c)
            .await?
        });
        let mut done = Vec::new();
        for (id,) in rows {
            if restart_in(&mut tx, &id, State::Arrived, note).await? {
                done.push(id);
            }
        }
        if !done.is_empty() {
            s3::set_asset_profile(&mut tx, asset_id, profile).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Variations with a live CDN set whose ttl, counted from arrival, has
    /// run out: published ones, and finished ones whose newer master was
    /// turned down while the previous set stayed live.
    pub async fn published_due(&self, now: i64) -> Result<Vec<Variation>> {
        Ok(on_pool!(self.pool, p => {
            sqlx::query_as(
                "SELECT v.* FROM variations v JOIN assets a ON a.id = v.asset_id
                 WHERE (v.state = 'published'
                        OR (v.state IN ('rejected', 'failed') AND v.published_json IS NOT NULL))
                   AND COALESCE(v.arrived_at, v.created_at) + a.ttl_secs * 1000 <= $1",
            )
            .bind(now)
            .fetch_all(p)
            .await?
        }))
    }

    /// Marks a variation with a live set expired; false if it no longer
    /// has one. Queues its `asset.expired` callback and `notifications`
    /// (purges) in the same transaction.
    pub async fn expire(
        &self,
        id: &str,
        note: &str,
        notifications: Vec<NewOutbox>,
    ) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin_immediate().await?;
        let sql = format!(
            "SELECT state FROM variations WHERE id = $1
               AND (state = 'published'
                    OR (state IN ('rejected', 'failed') AND published_json IS NOT NULL)){}",
            tx.for_update()
        );
        let from: Option<(State,)> = on_tx!(&mut tx, c => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
        });
        let Some((from,)) = from else {
            return Ok(false);
        };
        on_tx!(&mut tx, c => {
            sqlx::query(
                "UPDATE variations SET state = 'expired', reason_code = $1, reason = $2, updated_at = $3
                 WHERE id = $4",
            )
            .bind(ReasonCode::TtlExpired)
            .bind(note)
            .bind(now)
            .bind(id)
            .execute(&mut *c)
            .await?;
        });
        record_transition(&mut tx, id, from, State::Expired, now, Some(note)).await?;
        outbox::enqueue_terminal_event(&mut tx, id, State::Expired, now).await?;
        for item in &notifications {
            outbox::insert(&mut tx, item, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// [`Store::restart`] inside the caller's transaction.
pub(crate) async fn restart_in(tx: &mut Tx, id: &str, to: State, note: &str) -> Result<bool> {
    let now = now_ms();
    let sql = format!(
        "SELECT state FROM variations WHERE id = $1{}",
        tx.for_update()
    );
    let from: Option<(State,)> = on_tx!(&mut *tx, c => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *c)
            .await?
    });
    let Some((from,)) = from else {
        return Ok(false);
    };
    if matches!(from, State::Expired | State::Cancelled) {
        return Ok(false);
    }
    let running = !from.is_terminal();
    on_tx!(&mut *tx, c => {
        sqlx::query(
            "UPDATE variations SET state = $1, next_run_at = $2, updated_at = $2, error_count = 0,
                 stage_progress = NULL, progress_json = NULL, stage_detail = $3,
                 reason_code = NULL, reason = NULL,
                 attempt = attempt + $4, lease_until = CASE WHEN $5 THEN 0 ELSE lease_until END
             WHERE id = $6",
        )
        .bind(to)
        .bind(now)
        .bind(note)
        .bind(i64::from(running))
        .bind(running)
        .bind(id)
        .execute(&mut *c)
        .await?;
    });
    record_transition(tx, id, from, to, now, Some(note)).await?;
    Ok(true)
}
