//! The job store: assets, variations and their transitions in SQLite (WAL).
//!
//! Work is handed out as leases: `claim` bumps the row's `attempt` (the
//! fencing token) and sets `lease_until`; every later write names that
//! attempt, so a worker whose lease lapsed and was taken over cannot write.

use super::state::State;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

mod cancel;
mod idempotency;
mod interface;
mod lifecycle;
mod metrics;
mod outbox;
pub mod pg;
mod retired;
pub mod s3;
mod types;
mod workers;

pub use super::model::{
    Asset, Claim, NewOutbox, NewVariation, OutboxRow, Outputs, PreviousTask, Reason, Source,
    StepProgress, TransitionRow, Update, Variation,
};
pub use crate::time::now_ms;
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
    #[error("job store: {0}")]
    Unsupported(&'static str),
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
    pool: SqlitePool,
}

impl Store {
    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self> {
        if pg::is_postgres_url(url) {
            // Schema and claiming exist (`pg`); the other queries do not yet.
            return Err(StoreError::Unsupported(
                "database.url: postgres:// is not supported yet (the Postgres store is unfinished); use sqlite://",
            ));
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
        sqlx::migrate!("src/jobs/migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.create_asset", skip_all)]
    pub async fn create_asset(&self, asset: &Asset, variations: &[NewVariation]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO assets (id, campaign, profile, request_json, callback_url, ttl_secs, created_at, qc_json, source, destinations_json, vast_json, captions_json)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&mut *tx)
        .await?;
        for v in variations {
            sqlx::query(
                "INSERT INTO variations (id, asset_id, idx, state, task_uuid, webhook_token_sha256,
                     master_key, next_run_at, created_at, updated_at)
                 VALUES (?, ?, ?, 'requested', ?, ?, ?, ?, ?, ?)",
            )
            .bind(&v.id)
            .bind(&asset.id)
            .bind(v.idx)
            .bind(&v.task_uuid)
            .bind(&v.webhook_token_sha256)
            .bind(&v.master_key)
            .bind(asset.created_at)
            .bind(asset.created_at)
            .bind(asset.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.asset", skip_all)]
    pub async fn asset(&self, id: &str) -> Result<Option<Asset>> {
        Ok(sqlx::query_as("SELECT * FROM assets WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    #[tracing::instrument(name = "store.list_assets", skip_all)]
    pub async fn list_assets(&self, campaign: Option<&str>, limit: i64) -> Result<Vec<Asset>> {
        let rows = match campaign {
            Some(c) => {
                sqlx::query_as(
                    "SELECT * FROM assets WHERE campaign = ? ORDER BY created_at DESC LIMIT ?",
                )
                .bind(c)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as("SELECT * FROM assets ORDER BY created_at DESC LIMIT ?")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows)
    }

    #[tracing::instrument(name = "store.variations_of", skip_all)]
    pub async fn variations_of(&self, asset_id: &str) -> Result<Vec<Variation>> {
        Ok(
            sqlx::query_as("SELECT * FROM variations WHERE asset_id = ? ORDER BY idx")
                .bind(asset_id)
                .fetch_all(&self.pool)
                .await?,
        )
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
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT * FROM variations WHERE asset_id IN (");
        let mut ids = q.separated(", ");
        for id in asset_ids {
            ids.push_bind(*id);
        }
        q.push(") ORDER BY asset_id, idx");
        let rows: Vec<Variation> = q.build_query_as().fetch_all(&self.pool).await?;
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
        let rows: Vec<(String, State, State, i64, Option<String>)> = sqlx::query_as(
            "SELECT t.variation_id, t.from_state, t.to_state, t.at, t.note FROM transitions t
             JOIN variations v ON v.id = t.variation_id WHERE v.asset_id = ? ORDER BY t.seq",
        )
        .bind(asset_id)
        .fetch_all(&self.pool)
        .await?;
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
        Ok(sqlx::query_as("SELECT * FROM variations WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    #[tracing::instrument(name = "store.variation_by_master_key", skip_all)]
    pub async fn variation_by_master_key(&self, key: &str) -> Result<Option<Variation>> {
        Ok(
            sqlx::query_as("SELECT * FROM variations WHERE master_key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    #[tracing::instrument(name = "store.transitions", skip_all)]
    pub async fn transitions(&self, variation_id: &str) -> Result<Vec<TransitionRow>> {
        Ok(sqlx::query_as(
            "SELECT from_state, to_state, at, note FROM transitions WHERE variation_id = ? ORDER BY seq",
        )
        .bind(variation_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Takes the lease on the runnable variation that has waited longest.
    /// One statement, so two workers can never claim the same row.
    #[tracing::instrument(name = "store.claim", skip_all)]
    pub async fn claim(&self, lease: Duration) -> Result<Option<Claim>> {
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
            .fetch_optional(&self.pool)
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
        let done = sqlx::query(
            "UPDATE variations SET lease_until = ?, stage_progress = COALESCE(?, stage_progress),
                 progress_json = COALESCE(?, progress_json), updated_at = ?
             WHERE id = ? AND attempt = ?",
        )
        .bind(now + lease.as_millis() as i64)
        .bind(percent.or(report.and_then(|r| r.percent)))
        .bind(json)
        .bind(now)
        .bind(&claim.id)
        .bind(claim.attempt)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Applies a step's result under the claim's fencing token, recording the
    /// transition when the state changes. False when the lease was lost.
    #[tracing::instrument(name = "store.update", skip_all)]
    pub async fn update(&self, claim: &Claim, u: Update) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("UPDATE variations SET updated_at = ");
        q.push_bind(now);
        macro_rules! set {
            ($col:literal, $v:expr) => {
                if let Some(v) = $v {
                    q.push(concat!(", ", $col, " = "));
                    q.push_bind(v);
                }
            };
        }
        // JSON columns are written through `Json`, which reads them back.
        macro_rules! set_json {
            ($col:literal, $v:expr) => {
                if let Some(v) = $v {
                    q.push(concat!(", ", $col, " = "));
                    q.push_bind(v.map(Json));
                }
            };
        }
        set!("state", u.state);
        set!("stage_progress", u.stage_progress);
        set_json!("progress_json", u.progress.clone());
        set!("stage_detail", u.stage_detail.clone());
        set!("poll_count", u.poll_count);
        set!("error_count", u.error_count);
        set!("submitted_at", u.submitted_at);
        set!("upload_expires_at", u.upload_expires_at);
        set_json!("provider_json", u.provider.clone());
        set_json!("provider_error_json", u.provider_errors.clone().map(Some));
        set!("cost", u.cost);
        set!("arrived_at", u.arrived_at);
        set!("master_size", u.master_size);
        set!("master_sha256", u.master_sha256.clone());
        set_json!("master_probe", u.master_probe.clone().map(Some));
        set_json!("outputs_json", u.outputs.clone());
        set_json!("qc_json", u.qc.clone().map(Some));
        set_json!("published_json", u.published.clone().map(Some));
        if let Some(r) = &u.reason {
            q.push(", reason_code = ").push_bind(r.code.clone());
            q.push(", reason = ").push_bind(r.message.clone());
        }
        set!("next_run_at", u.next_run_at);
        set!("master_etag", u.master_etag.clone());
        set!("task_uuid", u.task_uuid.clone());
        set!("master_key", u.master_key.clone());
        set_json!("previous_tasks", u.previous_tasks.clone().map(Some));
        set!("success_seen_at", u.success_seen_at);
        if u.release {
            q.push(", lease_until = 0");
        }
        q.push(" WHERE id = ").push_bind(&claim.id);
        q.push(" AND attempt = ").push_bind(claim.attempt);
        let done = q.build().execute(&mut *tx).await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(to) = u.state {
            // A change of state, or a noted re-entry (a resumed step), is history.
            if to != claim.state || u.note.is_some() {
                record_transition(&mut tx, &claim.id, claim.state, to, now, u.note.as_deref())
                    .await?;
            }
            if to != claim.state && to.is_terminal() {
                outbox::enqueue_terminal_event(&mut tx, &claim.id, to, now).await?;
            }
        }
        for item in &u.outbox {
            outbox::insert(&mut tx, item, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Ends a variation whose row does not decode, without reading it: the
    /// state, an internal reason and the transition, under the claim's
    /// fencing token. Its callback is queued only if the row then decodes.
    #[tracing::instrument(name = "store.fail_undecodable", skip_all)]
    pub async fn fail_undecodable(&self, claim: &Claim, note: &str) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE variations SET state = ?, reason_code = ?, reason = ?, lease_until = 0,
                 stage_progress = NULL, progress_json = NULL, stage_detail = NULL, updated_at = ?
             WHERE id = ? AND attempt = ?",
        )
        .bind(State::Failed)
        .bind(crate::reason::ReasonCode::InternalError)
        .bind(crate::reason::INTERNAL_MESSAGE)
        .bind(now)
        .bind(&claim.id)
        .bind(claim.attempt)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        record_transition(
            &mut tx,
            &claim.id,
            claim.state,
            State::Failed,
            now,
            Some(note),
        )
        .await?;
        if let Err(e) = outbox::enqueue_terminal_event(&mut tx, &claim.id, State::Failed, now).await
        {
            tracing::error!(variation = %claim.id, error = %e, "no callback for a row that does not decode");
        }
        tx.commit().await?;
        Ok(true)
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
        sqlx::query(
            "UPDATE variations SET provider_json = COALESCE(?, provider_json),
                 provider_error_json = COALESCE(?, provider_error_json),
                 cost = COALESCE(?, cost), updated_at = ?
             WHERE id = ?",
        )
        .bind(item.map(Json))
        .bind(errors.map(Json))
        .bind(cost)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Makes a variation that waits on the generator runnable now. Used by the
    /// webhook and the S3 event intake; repeating it is harmless.
    #[tracing::instrument(name = "store.nudge", skip_all)]
    pub async fn nudge(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE variations SET next_run_at = MIN(next_run_at, ?) WHERE id = ? AND state IN ('requested','submitted','generating')",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A write transaction that takes SQLite's write lock at once, so
    /// read-then-write sequences inside it cannot deadlock with another writer.
    pub async fn begin_immediate(&self) -> Result<sqlx::Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// How many times a variation entered a state (tests and audits).
    pub async fn times_entered(&self, variation_id: &str, state: State) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM transitions WHERE variation_id = ? AND to_state = ?",
        )
        .bind(variation_id)
        .bind(state.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }
}

async fn record_transition(
    conn: &mut SqliteConnection,
    id: &str,
    from: State,
    to: State,
    now: i64,
    note: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO transitions (variation_id, from_state, to_state, at, note) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(now)
    .bind(note)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
