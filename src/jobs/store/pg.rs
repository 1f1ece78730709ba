//! What is Postgres's own in the job store: connecting, the translated
//! migrations (`src/jobs/migrations_pg`, same numbers as the SQLite ones)
//! and claiming with `FOR UPDATE SKIP LOCKED`. Every other query of `Store`
//! is written once for both backends (`backend`).

use super::{now_ms, Claim, Result, State};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

/// Whether a `database.url` names Postgres (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens a pool on `url` (`postgres://...`) and brings the schema up to
/// date. `search_path`, when given, is set on every connection (the tests
/// give each test its own schema).
pub async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
    search_path: Option<&str>,
) -> Result<PgPool> {
    let mut opts = PgConnectOptions::from_str(url)?;
    if let Some(schema) = search_path {
        opts = opts.options([("search_path", schema)]);
    }
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect_with(opts)
        .await?;
    super::migrate(&sqlx::migrate!("src/jobs/migrations_pg"), &pool).await?;
    Ok(pool)
}

/// The Postgres `Store::claim`: the same lease and fencing token (the
/// attempt, one more per claim), but the candidate row is locked with
/// `FOR UPDATE SKIP LOCKED`, so concurrent claimers in any number of
/// processes each take a different row instead of queueing behind one
/// another.
pub async fn claim(pool: &PgPool, lease: Duration) -> Result<Option<Claim>> {
    let now = now_ms();
    let active = State::ACTIVE.map(|s| format!("'{}'", s.as_str())).join(",");
    let sql = format!(
        "UPDATE variations SET attempt = attempt + 1, lease_until = $1, updated_at = $2
         WHERE id = (SELECT id FROM variations
                     WHERE state IN ({active}) AND next_run_at <= $2 AND lease_until <= $2
                     ORDER BY next_run_at LIMIT 1
                     FOR UPDATE SKIP LOCKED)
           AND lease_until <= $2
         RETURNING id, attempt, state"
    );
    let row: Option<(String, i64, State)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now + lease.as_millis() as i64)
        .bind(now)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(id, attempt, state)| Claim { id, attempt, state }))
}

#[cfg(test)]
#[path = "pg_tests.rs"]
mod tests;
