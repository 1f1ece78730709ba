//! Published sets replaced by newer ones, kept for a grace period and then
//! deleted by the CDN sweeper under the variation's own lease.

use super::backend::on_pool;
use super::{now_ms, Claim, Result, Store};
use crate::jobs::State;
use sqlx::FromRow;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, FromRow)]
pub struct RetiredSet {
    pub variation_id: String,
    pub content_hash: String,
    pub prefix: String,
    pub retired_at: i64,
}

impl Store {
    /// Marks a set as replaced now; the grace period counts from here.
    /// Retiring the same set again restarts its grace.
    pub async fn retire_set(
        &self,
        variation_id: &str,
        content_hash: &str,
        prefix: &str,
    ) -> Result<()> {
        on_pool!(self.pool, p => {
            sqlx::query(
                "INSERT INTO cdn_retired (variation_id, content_hash, prefix, retired_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (variation_id, content_hash) DO UPDATE SET retired_at = excluded.retired_at",
            )
            .bind(variation_id)
            .bind(content_hash)
            .bind(prefix)
            .bind(now_ms())
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// A set about to be live again must not be swept.
    pub async fn unretire_set(&self, variation_id: &str, content_hash: &str) -> Result<()> {
        on_pool!(self.pool, p => {
            sqlx::query("DELETE FROM cdn_retired WHERE variation_id = $1 AND content_hash = $2")
                .bind(variation_id)
                .bind(content_hash)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Retired sets whose grace (`grace`, as configured now) has ended, oldest first.
    pub async fn retired_due(&self, grace: Duration, limit: i64) -> Result<Vec<RetiredSet>> {
        Ok(on_pool!(self.pool, p => {
            sqlx::query_as(
                "SELECT * FROM cdn_retired WHERE retired_at <= $1 ORDER BY retired_at LIMIT $2",
            )
            .bind(now_ms() - grace.as_millis() as i64)
            .bind(limit)
            .fetch_all(p)
            .await?
        }))
    }

    pub async fn retired_of(&self, variation_id: &str) -> Result<Vec<RetiredSet>> {
        Ok(on_pool!(self.pool, p => {
            sqlx::query_as("SELECT * FROM cdn_retired WHERE variation_id = $1 ORDER BY retired_at")
                .bind(variation_id)
                .fetch_all(p)
                .await?
        }))
    }

    /// Takes a finished variation's lease for housekeeping, so no worker runs
    /// it meanwhile (a restart waits for the lease). `None` while a worker or
    /// another sweeper holds it, or while it is being processed.
    pub async fn claim_for_sweep(
        &self,
        variation_id: &str,
        lease: Duration,
    ) -> Result<Option<Claim>> {
        let now = now_ms();
        let terminal = State::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "UPDATE variations SET attempt = attempt + 1, lease_until = $1
             WHERE id = $3 AND lease_until <= $2 AND state IN ({terminal})
             RETURNING id, attempt, state"
        );
        let row: Option<(String, i64, String)> = on_pool!(self.pool, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(now + lease.as_millis() as i64)
                .bind(now)
                .bind(variation_id)
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(|(id, attempt, state)| Claim {
            id,
            attempt,
            state: State::from_str(&state).unwrap_or(State::Failed),
        }))
    }

    /// Gives a lease back without touching anything else.
    pub async fn release(&self, claim: &Claim) -> Result<()> {
        on_pool!(self.pool, p => {
            sqlx::query("UPDATE variations SET lease_until = 0 WHERE id = $1 AND attempt = $2")
                .bind(&claim.id)
                .bind(claim.attempt)
                .execute(p)
                .await?;
        });
        Ok(())
    }
}
