//! The job store: assets, variations and their transitions, in SQLite (WAL,
//! the embedded default) or Postgres (`backend`: one copy of every query
//! for both).
//!
//! Work is handed out as leases: `claim` bumps the row's `attempt` (the
//! fencing token) and sets `lease_until`; every later write names that
//! attempt, so a worker whose lease lapsed and was taken over cannot write.

use super::state::State;
use backend::{on_pool, on_tx, Pool};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::QueryBuilder;
use std::str::FromStr;
use std::time::Duration;

mod backend;
mod cancel;
mod idempotency;
mod interface;
mod lifecycle;
mod metrics;
mod outbox;
pub mod pg;
mod retired;
pub mod s3;
#[cfg(test)]
pub(crate) mod test_backends;
mod types;
mod update;
mod workers;

pub use super::model::{
    Asset, Claim, NewOutbox, NewVariation, OutboxRow, Outputs, PreviousTask, Reason, Source,
    StepProgress, TransitionRow, Update, Variation,
};
pub use crate::time::now_ms;
pub use backend::Tx;
pub use cancel::{AssetPage, PageQuery};
pub use idempotency::{Begun, StoredAnswer, IDEMPOTENCY_WINDOW_MS};
pub use interface::JobStore;
pub(crate) use lifecycle::restart_in;
pub use retired::RetiredSet;
pub use workers::{RunningStep, WorkerRow};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("job store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("job store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database was migrated by a newer reelay: this one must not run
    /// on a schema it does not know.
    #[error("the job store's schema has migration {applied}, newer than this reelay {} knows (its newest is {known}): run the release that migrated it, or a later one", env!("CARGO_PKG_VERSION"))]
    SchemaNewer { applied: i64, known: i64 },
}

/// Runs `migrator`; a database that has a migration this build does not
/// know is refused as [`StoreError::SchemaNewer`], not with sqlx's words.
async fn migrate<'a, A>(migrator: &sqlx::migrate::Migrator, conn: A) -> Result<()>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    match migrator.run(conn).await {
        Err(sqlx::migrate::MigrateError::VersionMissing(applied)) => Err(StoreError::SchemaNewer {
            applied,
            known: migrator.iter().map(|m| m.version).max().unwrap_or(0),
        }),
        other => Ok(other?),
    }
}

impl StoreError {
    /// A row that is there but does not decode (a column of the wrong
    /// shape): no retry will fix it.
    pub fn is_undecodable(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::ColumnDecode { .. }))
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// The Postgres pool, when the store is Postgres (`jobs::wake` listens
    /// on it).
    pub fn postgres_pool(&self) -> Option<sqlx::PgPool> {
        match &self.pool {
            Pool::Postgres(p) => Some(p.clone()),
            Pool::Sqlite(_) => None,
        }
    }

    /// Opens the store named by `database.url`: `sqlite://…` (the embedded
    /// default) or `postgres://…` (a schema chosen with the URL's
    /// `options=-csearch_path%3D…`, as libpq takes it), and brings its
    /// schema up to date.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self> {
        if pg::is_postgres_url(url) {
            return Self::connect_postgres(url, max_connections, acquire_timeout, None).await;
        }
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed step survives power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .connect_with(opts)
            .await?;
        migrate(&sqlx::migrate!("src/jobs/migrations"), &pool).await?;
        Ok(Store {
            pool: Pool::Sqlite(pool),
        })
    }

    /// A store on Postgres (`pg::connect`: the pool and its migrations),
    /// with `search_path` set on every connection when given (the tests'
    /// schema per test).
    pub(crate) async fn connect_postgres(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
        search_path: Option<&str>,
    ) -> Result<Self> {
        let pool = pg::connect(url, max_connections, acquire_timeout, search_path).await?;
        Ok(Store {
            pool: Pool::Postgres(pool),
        })
    }

    /// The SQLite pool (tests that write rows directly; panics on Postgres).
    #[cfg(test)]
    pub(crate) fn sqlite_pool(&self) -> &sqlx::SqlitePool {
        match &self.pool {
            Pool::Sqlite(p) => p,
            Pool::Postgres(_) => panic!("a SQLite store was expected"),
        }
    }

    /// Whether this store runs on Postgres.
    pub fn is_postgres(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }

    pub async fn ping(&self) -> Result<()> {
        on_pool!(self.pool, p => {
            sqlx::query("SELECT 1").execute(p).await?;
        });
        Ok(())
    }

    #[tracing::instrument(name = "store.create_asset", skip_all)]
    pub async fn create_asset(&self, asset: &Asset, variations: &[NewVariation]) -> Result<()> {
        self.create_assets(&[(asset, variations)]).await
    }

    /// Several assets and their variations in one transaction: all or none
    /// (imports and the queue benchmark's seeding, where one commit per
    /// asset would time the disk's flushes, not the store).
    #[tracing::instrument(name = "store.create_assets", skip_all, fields(assets = batch.len()))]
    pub async fn create_assets(&self, batch: &[(&Asset, &[NewVariation])]) -> Result<()> {
        let mut tx = self.begin().await?;
        on_tx!(&mut tx, c => {
            for (asset, variations) in batch {
                sqlx::query(
                    "INSERT INTO assets (id, campaign, profile, request_json, callback_url, ttl_secs, created_at, qc_json, source, destinations_json, vast_json, captions_json)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&asset.id)
                .bind(&asset.campaign)
                .bind(&asset.profile)
                .bind(Json(asset.request_json()))
                .bind(&asset.callback_url)
                .bind(asset.ttl_secs)
                .bind(asset.created_at)
                .bind(asset.qc.as_ref().map(Json))
                .bind(asset.source)
                .bind(Json(&asset.destinations))
                .bind((asset.vast != Default::default()).then_some(Json(&asset.vast)))
                .bind((!asset.captions.is_empty()).then_some(Json(&asset.captions)))
                .execute(&mut *c)
                .await?;
                for v in variations.iter() {
                    sqlx::query(
                        "INSERT INTO variations (id, asset_id, idx, state, task_uuid, webhook_token_sha256,
                             master_key, next_run_at, created_at, updated_at)
                         VALUES ($1, $2, $3, 'requested', $4, $5, $6, $7, $7, $7)",
                    )
                    .bind(&v.id)
                    .bind(&asset.id)
                    .bind(v.idx)
                    .bind(&v.task_uuid)
                    .bind(&v.webhook_token_sha256)
                    .bind(&v.master_key)
                    .bind(asset.created_at)
                    .execute(&mut *c)
                    .await?;
                }
            }
        });
        tx.commit().await
    }

    #[tracing::instrument(name = "store.asset", skip_all)]
    pub async fn asset(&self, id: &str) -> Result<Option<Asset>> {
        Ok(on_pool!(self.pool, p => {
            sqlx::query_as("SELECT * FROM assets WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
        }))
    }

    #[tracing::instrument(name = "store.list_assets", skip_all)]
    pub async fn list_assets(&self, campaign: Option<&str>, limit: i64) -> Result<Vec<Asset>> {
        Ok(on_pool!(self.pool, p => match campaign {
            Some(c) => {
                sqlx::query_as(
                    "SELECT * FROM assets WHERE campaign = $1 ORDER BY created_at DESC LIMIT $2",
                )
                .bind(c)
                .bind(limit)
                .fetch_all(p)
                .await?
            }
            None => {
                sqlx::query_as("SELECT * FROM assets ORDER BY created_at DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
        }))
    }

    #[tracing::instrument(name = "store.variations_of", skip_all)]
    pub async fn variations_of(&self, asset_id: &str) -> Result<Vec<Variation>> {
        Ok(on_pool!(self.pool, p => {
            sqlx::query_as("SELECT * FROM variations WHERE asset_id = $1 ORDER BY idx")
                .bind(asset_id)
                .fetch_all(p)
                .await?
        }))
    }

    /// The variations of several assets in one query (lists), by asset id.
    #[tracing::instrument(name = "store.variations_of_many", skip_all)]
    pub async fn variations_of_many(
        &self,
        asset_ids: &[&str],
    ) -> Result<std::collections::HashMap<String, Vec<Variation>>> {
        let mut out: std::collections::HashMap<String, Vec<Variation>> = Default::default();
        if asset_ids.is_empty() {
            return Ok(out);
        }
        let rows: Vec<Variation> = on_pool!(self.pool, p => {
            let mut q: QueryBuilder<Db> =
                QueryBuilder::new("SELECT * FROM variations WHERE asset_id IN (");
            let mut ids = q.separated(", ");
            for id in asset_ids {
                ids.push_bind(*id);
            }
            q.push(") ORDER BY asset_id, idx");
            q.build_query_as().fetch_all(p).await?
        });
        for v in rows {
            out.entry(v.asset_id.clone()).or_default().push(v);
        }
        Ok(out)
    }

    /// Every transition of an asset's variations in one query, by variation id.
    #[tracing::instrument(name = "store.transitions_of_asset", skip_all)]
    pub async fn transitions_of_asset(
        &self,
        asset_id: &str,
    ) -> Result<std::collections::HashMap<String, Vec<TransitionRow>>> {
        let rows: Vec<(String, State, State, i64, Option<String>)> = on_pool!(self.pool, p => {
            sqlx::query_as(
                "SELECT t.variation_id, t.from_state, t.to_state, t.at, t.note FROM transitions t
                 JOIN variations v ON v.id = t.variation_id WHERE v.asset_id = $1 ORDER BY t.seq",
            )
            .bind(asset_id)
            .fetch_all(p)
            .await?
        });
        let mut out: std::collections::HashMap<String, Vec<TransitionRow>> = Default::default();
        for (id, from_state, to_state, at, note) in rows {
            out.entry(id).or_default().push(TransitionRow {
                from_state,
                to_state,
                at,
                note,
            });
        }
        Ok(out)
    }

    #[tracing::instrument(name = "store.variation", skip_all)]
    pub async fn variation(&self, id: &str) -> Result<Option<Variation>> {
        Ok(on_pool!(self.pool, p => {
            sqlx::query_as("SELECT * FROM variations WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
        }))
    }

    #[tracing::instrument(name = "store.variation_by_master_key", skip_all)]
    pub async fn variation_by_master_key(&self, key: &str) -> Result<Option<Variation>> {
        Ok(on_pool!(self.pool, p => {
            sqlx::query_as("SELECT * FROM variations WHERE master_key = $1")
                .bind(key)
                .fetch_optional(p)
                .await?
        }))
    }

    #[tracing::instrument(name = "store.transitions", skip_all)]
    pub async fn transitions(&self, variation_id: &str) -> Result<Vec<TransitionRow>> {
        Ok(on_pool!(self.pool, p => {
            sqlx::query_as(
                "SELECT from_state, to_state, at, note FROM transitions WHERE variation_id = $1 ORDER BY seq",
            )
            .bind(variation_id)
            .fetch_all(p)
            .await?
        }))
    }

    /// Takes the lease on the runnable variation that has waited longest.
    /// One statement, so two workers can never claim the same row. On
    /// Postgres the candidate is locked with `SKIP LOCKED` (`pg::claim`), so
    /// concurrent claimers each take a different row.
    #[tracing::instrument(name = "store.claim", skip_all)]
    pub async fn claim(&self, lease: Duration) -> Result<Option<Claim>> {
        let pool = match &self.pool {
            Pool::Postgres(p) => return pg::claim(p, lease).await,
            Pool::Sqlite(p) => p,
        };
        let now = now_ms();
        let active = State::ACTIVE.map(|s| format!("'{}'", s.as_str())).join(",");
        let sql = format!(
            "UPDATE variations SET attempt = attempt + 1, lease_until = ?1, updated_at = ?2
             WHERE id = (SELECT id FROM variations
                         WHERE state IN ({active}) AND next_run_at <= ?2 AND lease_until <= ?2
                         ORDER BY next_run_at LIMIT 1)
               AND lease_until <= ?2
             RETURNING id, attempt, state"
        );
        let row: Option<(String, i64, State)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(now + lease.as_millis() as i64)
            .bind(now)
            .fetch_optional(pool)
            .await?;
        Ok(row.map(|(id, attempt, state)| Claim { id, attempt, state }))
    }

    /// Extends a lease; false when it was lost to another worker.
    pub async fn renew(
        &self,
        claim: &Claim,
        lease: Duration,
        progress: Option<f64>,
    ) -> Result<bool> {
        self.renew_with(claim, lease, progress, None).await
    }

    /// Extends a lease and records the step's progress (the percent and, when
    /// given, the whole report); false when the lease was lost.
    pub async fn renew_with(
        &self,
        claim: &Claim,
        lease: Duration,
        percent: Option<f64>,
        report: Option<&StepProgress>,
    ) -> Result<bool> {
        let now = now_ms();
        let json = report.map(Json);
        let done = on_pool!(self.pool, p => {
            sqlx::query(
                "UPDATE variations SET lease_until = $1, stage_progress = COALESCE($2, stage_progress),
                     progress_json = COALESCE($3, progress_json), updated_at = $4
                 WHERE id = $5 AND attempt = $6",
            )
            .bind(now + lease.as_millis() as i64)
            .bind(percent.or(report.and_then(|r| r.percent)))
            .bind(json)
            .bind(now)
            .bind(&claim.id)
            .bind(claim.attempt)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Records what the generator reported outside a worker step (webhook).
    #[tracing::instrument(name = "store.record_provider_report", skip_all)]
    pub async fn record_provider_report(
        &self,
        id: &str,
        item: Option<&crate::runware::TaskItem>,
        errors: Option<&[crate::runware::ApiError]>,
        cost: Option<f64>,
    ) -> Result<()> {
        on_pool!(self.pool, p => {
            sqlx::query(
                "UPDATE variations SET provider_json = COALESCE($1, provider_json),
                     provider_error_json = COALESCE($2, provider_error_json),
                     cost = COALESCE($3, cost), updated_at = $4
                 WHERE id = $5",
            )
            .bind(item.map(Json))
            .bind(errors.map(Json))
            .bind(cost)
            .bind(now_ms())
            .bind(id)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Makes a variation that waits on the generator runnable now. Used by the
    /// webhook and the S3 event intake; repeating it is harmless.
    #[tracing::instrument(name = "store.nudge", skip_all)]
    pub async fn nudge(&self, id: &str) -> Result<bool> {
        let done = on_pool!(self.pool, p => {
            sqlx::query(NUDGE).bind(now_ms()).bind(id).execute(p).await?.rows_affected()
        });
        Ok(done == 1)
    }

    /// A write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so read-then-write sequences inside it cannot
    /// deadlock with another writer; on Postgres the rows read to be
    /// changed are locked as they are read ([`Tx::for_update`]).
    pub async fn begin_immediate(&self) -> Result<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// A transaction for writes that read nothing first.
    async fn begin(&self) -> Result<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// How many times a variation entered a state (tests and audits).
    pub async fn times_entered(&self, variation_id: &str, state: State) -> Result<i64> {
        let (n,): (i64,) = on_pool!(self.pool, p => {
            sqlx::query_as(
                "SELECT COUNT(*) FROM transitions WHERE variation_id = $1 AND to_state = $2",
            )
            .bind(variation_id)
            .bind(state.as_str())
            .fetch_one(p)
            .await?
        });
        Ok(n)
    }
}

/// Makes a waiting variation runnable now (`$1`: now, `$2`: its id); no
/// two-argument `MIN`, which Postgres does not have.
const NUDGE: &str = "UPDATE variations
     SET next_run_at = CASE WHEN next_run_at < $1 THEN next_run_at ELSE $1 END
     WHERE id = $2 AND state IN ('requested','submitted','generating')";

async fn record_transition(
    tx: &mut Tx,
    id: &str,
    from: State,
    to: State,
    now: i64,
    note: Option<&str>,
) -> Result<()> {
    on_tx!(tx, c => {
        sqlx::query(
            "INSERT INTO transitions (variation_id, from_state, to_state, at, note) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(now)
        .bind(note)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

#[cfg(test)]
mod tests;
