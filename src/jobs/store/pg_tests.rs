//! Run when `REELAY_TEST_POSTGRES_URL` is set (scripts/test.sh starts a
//! throwaway cluster and sets it); each test works in its own fresh schema,
//! so they run in parallel.

use super::super::{Store, StoreError};
use super::*;
use std::collections::{BTreeMap, BTreeSet};

struct Schema {
    pool: PgPool,
    admin: PgPool,
    name: String,
}

impl Schema {
    async fn drop(self) {
        self.pool.close().await;
        let sql = format!("DROP SCHEMA {} CASCADE", self.name);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&self.admin)
            .await
            .unwrap();
    }
}

async fn schema() -> Option<Schema> {
    let Ok(url) = std::env::var("REELAY_TEST_POSTGRES_URL") else {
        eprintln!("REELAY_TEST_POSTGRES_URL not set: Postgres store test skipped");
        return None;
    };
    let admin = PgPool::connect(&url).await.unwrap();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let pool = connect(&url, 10, Duration::from_secs(10), Some(&name))
        .await
        .unwrap();
    Some(Schema { pool, admin, name })
}

async fn seed(pool: &PgPool, n: i64) {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO assets (id, campaign, profile, request_json, ttl_secs, created_at)
         VALUES ('a1', 'c', 'default', '{}', 3600, $1)",
    )
    .bind(now)
    .execute(pool)
    .await
    .unwrap();
    for i in 0..n {
        sqlx::query(
            "INSERT INTO variations (id, asset_id, idx, state, task_uuid, webhook_token_sha256,
                 master_key, next_run_at, created_at, updated_at)
             VALUES ($1, 'a1', $2, 'requested', $3, 'x', $4, $5, $5, $5)",
        )
        .bind(format!("v{i}"))
        .bind(i)
        .bind(format!("task-{i}"))
        .bind(format!("masters/c/{i}"))
        .bind(now)
        .execute(pool)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn migrations_give_the_same_tables_and_columns_as_sqlite() {
    let Some(pg) = schema().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let lite = Store::connect(&url, 1, Duration::from_secs(5))
        .await
        .unwrap();
    let lite_cols: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(lite.sqlite_pool())
    .await
    .unwrap();
    let pg_cols: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = current_schema()",
    )
    .fetch_all(&pg.pool)
    .await
    .unwrap();
    let group = |cols: Vec<(String, String)>| {
        let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (t, c) in cols {
            m.entry(t).or_default().insert(c);
        }
        m
    };
    let lite_cols = group(lite_cols);
    assert!(lite_cols.contains_key("variations"), "{lite_cols:?}");
    assert_eq!(group(pg_cols), lite_cols);
    pg.drop().await;
}

#[tokio::test]
async fn a_claim_bumps_the_attempt_and_holds_the_row_until_the_lease_lapses() {
    let Some(pg) = schema().await else { return };
    seed(&pg.pool, 1).await;
    let c = claim(&pg.pool, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (c.id.as_str(), c.attempt, c.state),
        ("v0", 1, State::Requested)
    );
    assert!(claim(&pg.pool, Duration::from_secs(60))
        .await
        .unwrap()
        .is_none());
    // The lease lapses: the next claim takes the row over with a new token.
    sqlx::query("UPDATE variations SET lease_until = 0")
        .execute(&pg.pool)
        .await
        .unwrap();
    let again = claim(&pg.pool, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.id.as_str(), again.attempt), ("v0", 2));
    pg.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_get_the_same_row() {
    let Some(pg) = schema().await else { return };
    seed(&pg.pool, 20).await;
    let claimers: Vec<_> = (0..8)
        .map(|_| {
            let pool = pg.pool.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(c) = claim(&pool, Duration::from_secs(600)).await.unwrap() {
                    got.push(c);
                }
                got
            })
        })
        .collect();
    let mut ids = Vec::new();
    for h in claimers {
        for c in h.await.unwrap() {
            assert_eq!(c.attempt, 1, "{} claimed twice", c.id);
            ids.push(c.id);
        }
    }
    ids.sort();
    let expected: Vec<String> = {
        let mut v: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
        v.sort();
        v
    };
    assert_eq!(ids, expected);
    pg.drop().await;
}

#[tokio::test]
async fn a_postgres_url_opens_the_store_in_the_schema_its_options_name() {
    let Some(pg) = schema().await else { return };
    let base = std::env::var("REELAY_TEST_POSTGRES_URL").unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-csearch_path%3D{}", pg.name);
    let store = Store::connect(&url, 2, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(store.is_postgres());
    seed(&pg.pool, 1).await;
    // The store sees the rows of that schema, and only those.
    assert_eq!(store.variation("v0").await.unwrap().unwrap().idx, 0);
    let c = store.claim(Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!((c.id.as_str(), c.attempt), ("v0", 1));
    pg.drop().await;
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_database_error_naming_the_store() {
    let err = Store::connect("postgres://u@127.0.0.1:1/db", 1, Duration::from_secs(1))
        .await
        .err()
        .expect("nothing listens on port 1");
    assert!(matches!(err, StoreError::Db(_)), "{err}");
    assert!(err.to_string().starts_with("job store"), "{err}");
}
