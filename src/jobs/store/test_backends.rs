//! The stores the store's tests run on: SQLite always, and Postgres when
//! `REELAY_TEST_POSTGRES_URL` is set (scripts/test.sh starts a throwaway
//! cluster), each Postgres store in a fresh schema of its own so tests run
//! in parallel.

use super::Store;
use sqlx::PgPool;
use std::time::Duration;

/// One backend's store for one test; [`Backend::finish`] drops its schema.
pub(crate) struct Backend {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    schema: Option<(PgPool, String)>,
}

impl Backend {
    pub async fn sqlite() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url, 4, Duration::from_secs(5))
            .await
            .unwrap();
        Backend {
            store,
            _dir: Some(dir),
            schema: None,
        }
    }

    /// A store in a new schema of `REELAY_TEST_POSTGRES_URL`, if it is set.
    pub async fn postgres() -> Option<Backend> {
        let url = std::env::var("REELAY_TEST_POSTGRES_URL").ok()?;
        let admin = PgPool::connect(&url).await.unwrap();
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&admin)
            .await
            .unwrap();
        let store = Store::connect_postgres(&url, 10, Duration::from_secs(10), Some(&name))
            .await
            .unwrap();
        Some(Backend {
            store,
            _dir: None,
            schema: Some((admin, name)),
        })
    }

    pub async fn finish(self) {
        if let Some((admin, name)) = self.schema {
            if let super::Pool::Postgres(p) = &self.store.pool {
                p.close().await;
            }
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE")))
                .execute(&admin)
                .await
                .unwrap();
        }
    }
}

/// SQLite, then Postgres when a test cluster is configured.
pub(crate) async fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::sqlite().await];
    match Backend::postgres().await {
        Some(pg) => all.push(pg),
        None => eprintln!("REELAY_TEST_POSTGRES_URL not set: the Postgres half skipped"),
    }
    all
}
