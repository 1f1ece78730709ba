//! Idempotency keys: the first answer to one (API key, `Idempotency-Key`)
//! kept for a window and replayed to retries (`api::idempotency`). Plain
//! SQL (`INSERT … ON CONFLICT DO NOTHING`), the same on Postgres.

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
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope_sha256 = ? AND idem_key = ?
               AND (created_at < ? OR (status IS NULL AND created_at < ?))",
        )
        .bind(scope_sha256)
        .bind(key)
        .bind(expired_before)
        .bind(stale_before)
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope_sha256, idem_key, request_sha256, created_at)
             VALUES (?, ?, ?, ?) ON CONFLICT (scope_sha256, idem_key) DO NOTHING",
        )
        .bind(scope_sha256)
        .bind(key)
        .bind(request_sha256)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let begun = if inserted == 1 {
            Begun::Fresh
        } else {
            let (request, status, content_type, location, body): KeyRow = sqlx::query_as(
                "SELECT request_sha256, status, content_type, location, body
                 FROM idempotency_keys WHERE scope_sha256 = ? AND idem_key = ?",
            )
            .bind(scope_sha256)
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
            match status {
                _ if request != request_sha256 => Begun::Mismatch,
                None => Begun::InFlight,
                Some(status) => Begun::Replay(StoredAnswer {
                    status: u16::try_from(status).unwrap_or(500),
                    content_type,
                    location,
                    body: body.unwrap_or_default(),
                }),
            }
        };
        tx.commit().await?;
        Ok(begun)
    }

    /// Keeps the answer of the request that took the key.
    pub async fn idempotency_finish(
        &self,
        scope_sha256: &str,
        key: &str,
        answer: &StoredAnswer,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = ?, content_type = ?, location = ?, body = ?
             WHERE scope_sha256 = ? AND idem_key = ? AND status IS NULL",
        )
        .bind(i64::from(answer.status))
        .bind(&answer.content_type)
        .bind(&answer.location)
        .bind(&answer.body)
        .bind(scope_sha256)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Frees a key whose request ended without an answer worth keeping.
    pub async fn idempotency_release(&self, scope_sha256: &str, key: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope_sha256 = ? AND idem_key = ? AND status IS NULL",
        )
        .bind(scope_sha256)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets every use older than `before`; returns how many.
    pub async fn sweep_idempotency(&self, before: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?")
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let s = Store::connect(&url, 2, std::time::Duration::from_secs(5))
            .await
            .unwrap();
        (s, dir)
    }

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
        let (s, _d) = store().await;
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
    }

    #[tokio::test]
    async fn expired_and_abandoned_uses_are_forgotten() {
        let (s, _d) = store().await;
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
    }
}
