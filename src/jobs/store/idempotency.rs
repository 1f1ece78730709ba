//! Idempotency keys: the first answer to one (API key, `Idempotency-Key`)
//! kept for a window and replayed to retries (`api::idempotency`). Plain
//! SQL (`INSERT … ON CONFLICT DO NOTHING`), the same on Postgres.

use super::backend::{on_pool, on_tx};
use super::{Result, Store};

/// How long a key's first answer is kept (24 h).
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// An answer kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

/// request_sha256, status, content_type, location, body.
type KeyRow = (
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
);

/// What a request carrying a key finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// The key is new (or its old use expired): this request runs.
    Fresh,
    /// The same request was answered already: replay this.
    Replay(StoredAnswer),
    /// The key was used with another request.
    Mismatch,
    /// The first request with this key is still being answered.
    InFlight,
}

impl Store {
    /// Takes the key for this request, or says why not. `expired_before`:
    /// uses older than this are forgotten; `stale_before`: an unanswered
    /// use older than this was abandoned (its server stopped mid-request).
    #[tracing::instrument(name = "store.idempotency_begin", skip_all)]
    pub async fn idempotency_begin(
        &self,
        scope_sha256: &str,
        key: &str,
        request_sha256: &str,
        now: i64,
        expired_before: i64,
        stale_before: i64,
    ) -> Result<Begun> {
        let mut tx = self.begin_immediate().await?;
        let row: Option<KeyRow> = on_tx!(&mut tx, c => {
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE scope_sha256 = $1 AND idem_key = $2
                   AND (created_at < $3 OR (status IS NULL AND created_at < $4))",
            )
            .bind(scope_sha256)
            .bind(key)
            .bind(expired_before)
            .bind(stale_before)
            .execute(&mut *c)
            .await?;
            // A concurrent first use of the key waits here for the other's
            // commit (Postgres) or the write lock (SQLite), then conflicts.
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (scope_sha256, idem_key, request_sha256, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (scope_sha256, idem_key) DO NOTHING",
            )
            .bind(scope_sha256)
            .bind(key)
            .bind(request_sha256)
            .bind(now)
            .execute(&mut *c)
            .await?
            .rows_affected();
            if inserted == 1 {
                None
            } else {
                Some(
                    sqlx::query_as(
                        "SELECT request_sha256, status, content_type, location, body
                         FROM idempotency_keys WHERE scope_sha256 = $1 AND idem_key = $2",
                    )
                    .bind(scope_sha256)
                    .bind(key)
                    .fetch_one(&mut *c)
                    .await?,
                )
            }
        });
        // No row read back: this request took the key.
        let begun = match row {
            None => Begun::Fresh,
            Some((request, status, content_type, location, body)) => match status {
                _ if request != request_sha256 => Begun::Mismatch,
                None => Begun::InFlight,
                Some(status) => Begun::Replay(StoredAnswer {
                    status: u16::try_from(status).unwrap_or(500),
                    content_type,
                    location,
                    body: body.unwrap_or_default(),
                }),
            },
        };
        tx.commit().await?;
        Ok(begun)
    }

    /// Keeps the answer of the request that took the key.
    #[tracing::instrument(name = "store.idempotency_finish", skip_all)]
    pub async fn idempotency_finish(
        &self,
        scope_sha256: &str,
        key: &str,
        answer: &StoredAnswer,
    ) -> Result<()> {
        on_pool!(self.pool, p => {
            sqlx::query(
                "UPDATE idempotency_keys SET status = $1, content_type = $2, location = $3, body = $4
                 WHERE scope_sha256 = $5 AND idem_key = $6 AND status IS NULL",
            )
            .bind(i64::from(answer.status))
            .bind(&answer.content_type)
            .bind(&answer.location)
            .bind(&answer.body)
            .bind(scope_sha256)
            .bind(key)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Frees a key whose request ended without an answer worth keeping.
    #[tracing::instrument(name = "store.idempotency_release", skip_all)]
    pub async fn idempotency_release(&self, scope_sha256: &str, key: &str) -> Result<()> {
        on_pool!(self.pool, p => {
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE scope_sha256 = $1 AND idem_key = $2 AND status IS NULL",
            )
            .bind(scope_sha256)
            .bind(key)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Forgets every use older than `before`; returns how many.
    pub async fn sweep_idempotency(&self, before: i64) -> Result<u64> {
        Ok(on_pool!(self.pool, p => {
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                .bind(before)
                .execute(p)
                .await?
                .rows_affected()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_backends::backends;
    use super::*;

    fn answer() -> StoredAnswer {
        StoredAnswer {
            status: 202,
            content_type: Some("application/json".into()),
            location: Some("/v1/assets/x".into()),
            body: b"{}".to_vec(),
        }
    }

    #[tokio::test]
    async fn a_key_runs_once_then_replays_and_refuses_another_request() {
        for be in backends().await {
            let s = &be.store;
            let b = |req: &'static str, now: i64| {
                let s = s.clone();
                async move {
                    s.idempotency_begin("k", "idem", req, now, 0, 0)
                        .await
                        .unwrap()
                }
            };
            assert_eq!(b("r1", 10).await, Begun::Fresh);
            assert_eq!(b("r1", 11).await, Begun::InFlight);
            assert_eq!(b("r2", 11).await, Begun::Mismatch);
            s.idempotency_finish("k", "idem", &answer()).await.unwrap();
            assert_eq!(b("r1", 12).await, Begun::Replay(answer()));
            // Another API key has its own keys.
            assert_eq!(
                s.idempotency_begin("other", "idem", "r2", 12, 0, 0)
                    .await
                    .unwrap(),
                Begun::Fresh
            );
            be.finish().await;
        }
    }

    #[tokio::test]
    async fn expired_and_abandoned_uses_are_forgotten() {
        for be in backends().await {
            let s = &be.store;
            assert_eq!(
                s.idempotency_begin("k", "a", "r", 10, 0, 0).await.unwrap(),
                Begun::Fresh
            );
            // Unanswered and older than the stale mark: taken over.
            assert_eq!(
                s.idempotency_begin("k", "a", "r", 20, 0, 15).await.unwrap(),
                Begun::Fresh
            );
            s.idempotency_finish("k", "a", &answer()).await.unwrap();
            // Answered: kept past the stale mark, until the window ends.
            assert!(matches!(
                s.idempotency_begin("k", "a", "r", 30, 0, 25).await.unwrap(),
                Begun::Replay(_)
            ));
            assert_eq!(
                s.idempotency_begin("k", "a", "other", 40, 25, 0)
                    .await
                    .unwrap(),
                Begun::Fresh
            );
            // A released key is free again; the sweep forgets old uses.
            s.idempotency_release("k", "a").await.unwrap();
            assert_eq!(
                s.idempotency_begin("k", "a", "r", 50, 0, 0).await.unwrap(),
                Begun::Fresh
            );
            s.idempotency_finish("k", "a", &answer()).await.unwrap();
            assert_eq!(s.sweep_idempotency(49).await.unwrap(), 0);
            assert_eq!(s.sweep_idempotency(51).await.unwrap(), 1);
            be.finish().await;
        }
    }
}
