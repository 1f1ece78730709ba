//! The notification outbox: rows written beside the change they announce,
//! handed out to the delivery task under a short lease.

use super::backend::{on_pool, on_tx, Tx};
use super::{now_ms, Asset, NewOutbox, OutboxRow, Result, Store, Variation};
use crate::jobs::State;
use std::time::Duration;

pub(super) async fn insert(tx: &mut Tx, item: &NewOutbox, now: i64) -> Result<()> {
    on_tx!(tx, c => {
        sqlx::query(
            "INSERT INTO outbox (id, kind, event_type, asset_id, variation_id, url, body, created_at, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&item.id)
        .bind(item.kind)
        .bind(&item.event_type)
        .bind(&item.asset_id)
        .bind(&item.variation_id)
        .bind(&item.url)
        .bind(&item.body)
        .bind(now)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Queues the requester's callback for a variation that just reached
/// `state` (read back inside the transaction, so it says what was committed).
pub(super) async fn enqueue_terminal_event(
    tx: &mut Tx,
    variation_id: &str,
    state: State,
    now: i64,
) -> Result<()> {
    let (v, asset): (Variation, Asset) = on_tx!(tx, c => {
        let v: Variation = sqlx::query_as("SELECT * FROM variations WHERE id = $1")
            .bind(variation_id)
            .fetch_one(&mut *c)
            .await?;
        let asset: Asset = sqlx::query_as("SELECT * FROM assets WHERE id = $1")
            .bind(&v.asset_id)
            .fetch_one(&mut *c)
            .await?;
        (v, asset)
    });
    if let Some(item) = crate::views::terminal_event(&asset, &v, state, now) {
        insert(tx, &item, now).await?;
    }
    Ok(())
}

impl Store {
    /// Leases up to `limit` due rows to the caller. The lease is checked
    /// again on the row being updated, so two drainers racing for a row
    /// (Postgres re-reads it after the first one's commit) never both get it.
    pub async fn claim_outbox(&self, limit: i64, lease: Duration) -> Result<Vec<OutboxRow>> {
        let now = now_ms();
        Ok(on_pool!(self.pool, p => {
            sqlx::query_as(
                "UPDATE outbox SET lease_until = $1
                 WHERE id IN (SELECT id FROM outbox
                              WHERE delivered_at IS NULL AND failed_at IS NULL
                                AND next_attempt_at <= $2 AND lease_until <= $2
                              ORDER BY next_attempt_at LIMIT $3)
                   AND lease_until <= $2
                 RETURNING *",
            )
            .bind(now + lease.as_millis() as i64)
            .bind(now)
            .bind(limit)
            .fetch_all(p)
            .await?
        }))
    }

    pub async fn outbox_delivered(&self, id: &str, attempts: i64) -> Result<()> {
        on_pool!(self.pool, p => {
            sqlx::query(
                "UPDATE outbox SET delivered_at = $1, attempts = $2, lease_until = 0, last_error = NULL WHERE id = $3",
            )
            .bind(now_ms())
            .bind(attempts)
            .bind(id)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    pub async fn outbox_retry(
        &self,
        id: &str,
        attempts: i64,
        next_at: i64,
        error: &str,
    ) -> Result<()> {
        on_pool!(self.pool, p => {
            sqlx::query(
                "UPDATE outbox SET attempts = $1, next_attempt_at = $2, lease_until = 0, last_error = $3 WHERE id = $4",
            )
            .bind(attempts)
            .bind(next_at)
            .bind(error)
            .bind(id)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    pub async fn outbox_failed(&self, id: &str, attempts: i64, error: &str) -> Result<()> {
        on_pool!(self.pool, p => {
            sqlx::query(
                "UPDATE outbox SET failed_at = $1, attempts = $2, lease_until = 0, last_error = $3 WHERE id = $4",
            )
            .bind(now_ms())
            .bind(attempts)
            .bind(error)
            .bind(id)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// An asset's notifications, oldest first.
    #[tracing::instrument(name = "store.outbox_of_asset", skip_all)]
    pub async fn outbox_of_asset(&self, asset_id: &str) -> Result<Vec<OutboxRow>> {
        Ok(on_pool!(self.pool, p => {
            sqlx::query_as("SELECT * FROM outbox WHERE asset_id = $1 ORDER BY created_at, id")
                .bind(asset_id)
                .fetch_all(p)
                .await?
        }))
    }
}
