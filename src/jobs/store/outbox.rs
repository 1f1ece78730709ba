//! The notification outbox: rows written beside the change they announce,
//! handed out to the delivery task under a short lease.

use super::{now_ms, Asset, NewOutbox, OutboxRow, Result, Store, Variation};
use crate::jobs::State;
use sqlx::SqliteConnection;
use std::time::Duration;

pub(super) async fn insert(conn: &mut SqliteConnection, item: &NewOutbox, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (id, kind, event_type, asset_id, variation_id, url, body, created_at, next_attempt_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&item.id)
    .bind(item.kind)
    .bind(&item.event_type)
    .bind(&item.asset_id)
    .bind(&item.variation_id)
    .bind(&item.url)
    .bind(&item.body)
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Queues the requester's callback for a variation that just reached
/// `state` (read back inside the transaction, so it says what was committed).
pub(super) async fn enqueue_terminal_event(
    conn: &mut SqliteConnection,
    variation_id: &str,
    state: State,
    now: i64,
) -> Result<()> {
    let v: Variation = sqlx::query_as("SELECT * FROM variations WHERE id = ?")
        .bind(variation_id)
        .fetch_one(&mut *conn)
        .await?;
    let asset: Asset = sqlx::query_as("SELECT * FROM assets WHERE id = ?")
        .bind(&v.asset_id)
        .fetch_one(&mut *conn)
        .await?;
    if let Some(item) = crate::views::terminal_event(&asset, &v, state, now) {
        insert(conn, &item, now).await?;
    }
    Ok(())
}

impl Store {
    /// Leases up to `limit` due rows to the caller.
    pub async fn claim_outbox(&self, limit: i64, lease: Duration) -> Result<Vec<OutboxRow>> {
        let now = now_ms();
        Ok(sqlx::query_as(
            "UPDATE outbox SET lease_until = ?1
             WHERE id IN (SELECT id FROM outbox
                          WHERE delivered_at IS NULL AND failed_at IS NULL
                            AND next_attempt_at <= ?2 AND lease_until <= ?2
                          ORDER BY next_attempt_at LIMIT ?3)
             RETURNING *",
        )
        .bind(now + lease.as_millis() as i64)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn outbox_delivered(&self, id: &str, attempts: i64) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET delivered_at = ?, attempts = ?, lease_until = 0, last_error = NULL WHERE id = ?",
        )
        .bind(now_ms())
        .bind(attempts)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn outbox_retry(
        &self,
        id: &str,
        attempts: i64,
        next_at: i64,
        error: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET attempts = ?, next_attempt_at = ?, lease_until = 0, last_error = ? WHERE id = ?",
        )
        .bind(attempts)
        .bind(next_at)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn outbox_failed(&self, id: &str, attempts: i64, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET failed_at = ?, attempts = ?, lease_until = 0, last_error = ? WHERE id = ?",
        )
        .bind(now_ms())
        .bind(attempts)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An asset's notifications, oldest first.
    pub async fn outbox_of_asset(&self, asset_id: &str) -> Result<Vec<OutboxRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM outbox WHERE asset_id = ? ORDER BY created_at, id")
                .bind(asset_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
