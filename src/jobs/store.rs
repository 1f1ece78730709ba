//! The job store: assets, variations and their transitions in SQLite (WAL).
//!
//! Work is handed out as leases: `claim` bumps the row's `attempt` (the
//! fencing token) and sets `lease_until`; every later write names that
//! attempt, so a worker whose lease lapsed and was taken over cannot write.

use super::state::State;
use crate::notify::NewOutbox;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

mod outbox;
mod retired;
pub mod s3;

pub use outbox::OutboxRow;
pub use retired::RetiredSet;

/// Where an asset came from.
pub const SOURCE_GENERATED: &str = "generated";
/// A master PUT by hand under `masters/{campaign}/...`: no Runware task.
pub const SOURCE_UPLOAD: &str = "upload";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("job store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("job store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Debug, Clone, FromRow)]
pub struct AssetRow {
    pub id: String,
    pub campaign: String,
    pub profile: String,
    pub request_json: String,
    pub callback_url: Option<String>,
    pub ttl_secs: i64,
    pub created_at: i64,
    /// The request's QC overrides (JSON of `policy::QcOverrides`).
    pub qc_json: Option<String>,
    /// [`SOURCE_GENERATED`] or [`SOURCE_UPLOAD`].
    pub source: String,
}

impl AssetRow {
    pub fn is_upload(&self) -> bool {
        self.source == SOURCE_UPLOAD
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct VariationRow {
    pub id: String,
    pub asset_id: String,
    pub idx: i64,
    pub state: String,
    pub task_uuid: String,
    pub webhook_token_sha256: String,
    pub master_key: String,
    pub stage_progress: Option<f64>,
    pub stage_detail: Option<String>,
    pub poll_count: i64,
    pub error_count: i64,
    pub submitted_at: Option<i64>,
    pub upload_expires_at: Option<i64>,
    pub provider_json: Option<String>,
    pub provider_error_json: Option<String>,
    pub cost: Option<f64>,
    pub arrived_at: Option<i64>,
    pub master_size: Option<i64>,
    pub master_sha256: Option<String>,
    pub master_probe: Option<String>,
    pub outputs_json: Option<String>,
    pub qc_json: Option<String>,
    pub published_json: Option<String>,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub attempt: i64,
    pub lease_until: i64,
    pub next_run_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// ETag (no quotes) of the master object arrival verified.
    pub master_etag: Option<String>,
    /// Earlier tasks of this variation (a resubmission), JSON.
    pub previous_tasks: Option<String>,
    pub success_seen_at: Option<i64>,
    /// The running step's last progress report (JSON of [`StepProgress`]).
    pub progress_json: Option<String>,
}

/// What a long step (a transcode) last reported: shown by the API while the
/// step runs, renewed with the lease heartbeat, cleared when the state changes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepProgress {
    /// What runs: the state's name (`transcoding`), or a label of its own
    /// for another ffmpeg pass within the step (e.g. `loudness`): percent
    /// only grows within one label.
    pub stage: String,
    /// 0-100; None when the input's duration is unknown.
    pub percent: Option<f64>,
    /// Frames per second the encoder makes.
    pub fps: Option<f64>,
    /// Times real time (2.0: twice as fast as playback).
    pub speed: Option<f64>,
    /// Seconds left at the current speed.
    pub eta_secs: Option<f64>,
}

/// A task this variation had before it was resubmitted as a new one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PreviousTask {
    #[serde(rename = "taskUUID")]
    pub task_uuid: String,
    /// What the generator charged for it (USD), when known.
    pub cost: Option<f64>,
    /// Why it was given up, e.g. `uploadUrlExpired`.
    #[serde(rename = "reasonCode")]
    pub reason_code: String,
    /// Unix milliseconds.
    pub at: i64,
}

impl VariationRow {
    pub fn state(&self) -> State {
        State::from_str(&self.state).unwrap_or(State::Failed)
    }

    /// The running step's progress; None once the state moved on.
    pub fn progress(&self) -> Option<StepProgress> {
        if self.state().is_terminal() {
            return None;
        }
        self.progress_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
    }

    pub fn previous_tasks(&self) -> Vec<PreviousTask> {
        self.previous_tasks
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default()
    }

    /// What the generator charged for this variation: the current task's
    /// cost plus that of any task it replaced.
    pub fn total_cost(&self) -> Option<f64> {
        let earlier: Vec<f64> = self
            .previous_tasks()
            .iter()
            .filter_map(|t| t.cost)
            .collect();
        if self.cost.is_none() && earlier.is_empty() {
            return None;
        }
        Some(self.cost.unwrap_or(0.0) + earlier.iter().sum::<f64>())
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct TransitionRow {
    pub from_state: String,
    pub to_state: String,
    pub at: i64,
    pub note: Option<String>,
}

/// A variation to insert with its asset.
#[derive(Debug, Clone)]
pub struct NewVariation {
    pub id: String,
    pub idx: i64,
    pub task_uuid: String,
    pub webhook_token_sha256: String,
    pub master_key: String,
}

/// The lease a worker holds on one variation.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: String,
    pub attempt: i64,
    pub state: State,
}

/// Columns a step may set. `None` leaves a column alone; `Some(None)` on the
/// nullable ones clears it.
#[derive(Debug, Default, Clone)]
pub struct Update {
    pub state: Option<State>,
    pub note: Option<String>,
    pub stage_progress: Option<Option<f64>>,
    /// JSON of [`StepProgress`]; cleared by every change of state.
    pub progress_json: Option<Option<String>>,
    pub stage_detail: Option<Option<String>>,
    pub poll_count: Option<i64>,
    pub error_count: Option<i64>,
    pub submitted_at: Option<i64>,
    pub upload_expires_at: Option<i64>,
    pub provider_json: Option<Option<String>>,
    pub provider_error_json: Option<String>,
    pub cost: Option<Option<f64>>,
    pub arrived_at: Option<i64>,
    pub master_size: Option<i64>,
    pub master_sha256: Option<String>,
    pub master_probe: Option<String>,
    pub outputs_json: Option<Option<String>>,
    /// A new taskUUID (resubmission only).
    pub task_uuid: Option<String>,
    pub previous_tasks: Option<String>,
    pub success_seen_at: Option<Option<i64>>,
    pub qc_json: Option<String>,
    pub published_json: Option<String>,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub next_run_at: Option<i64>,
    pub master_etag: Option<String>,
    /// Replaces the parent asset's `request_json` (uploads fill it from the probe).
    pub asset_request_json: Option<String>,
    /// Notifications to deliver once this update is committed (same transaction).
    pub outbox: Vec<NewOutbox>,
    /// Give the lease back so another worker may pick the row up at once.
    pub release: bool,
}

impl Update {
    pub fn to(state: State) -> Self {
        Update {
            state: Some(state),
            stage_progress: Some(None),
            progress_json: Some(None),
            stage_detail: Some(None),
            error_count: Some(0),
            release: true,
            ..Default::default()
        }
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    pub fn reason(mut self, code: impl Into<String>, reason: impl Into<String>) -> Self {
        self.reason_code = Some(code.into());
        self.reason = Some(reason.into());
        self
    }
}

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

    pub async fn create_asset(&self, asset: &AssetRow, variations: &[NewVariation]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO assets (id, campaign, profile, request_json, callback_url, ttl_secs, created_at, qc_json, source)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&asset.id)
        .bind(&asset.campaign)
        .bind(&asset.profile)
        .bind(&asset.request_json)
        .bind(&asset.callback_url)
        .bind(asset.ttl_secs)
        .bind(asset.created_at)
        .bind(&asset.qc_json)
        .bind(&asset.source)
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

    pub async fn asset(&self, id: &str) -> Result<Option<AssetRow>> {
        Ok(sqlx::query_as("SELECT * FROM assets WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn list_assets(&self, campaign: Option<&str>, limit: i64) -> Result<Vec<AssetRow>> {
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

    pub async fn variations_of(&self, asset_id: &str) -> Result<Vec<VariationRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM variations WHERE asset_id = ? ORDER BY idx")
                .bind(asset_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn variation(&self, id: &str) -> Result<Option<VariationRow>> {
        Ok(sqlx::query_as("SELECT * FROM variations WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn variation_by_master_key(&self, key: &str) -> Result<Option<VariationRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM variations WHERE master_key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

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
        let row: Option<(String, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(now + lease.as_millis() as i64)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(id, attempt, state)| Claim {
            id,
            attempt,
            state: State::from_str(&state).unwrap_or(State::Failed),
        }))
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
        let json = report.map(serde_json::to_string).transpose().ok().flatten();
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
    pub async fn update(&self, claim: &Claim, u: Update) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("UPDATE variations SET updated_at = ");
        q.push_bind(now);
        macro_rules! set {
            ($field:ident) => {
                if let Some(v) = u.$field.clone() {
                    q.push(concat!(", ", stringify!($field), " = "));
                    q.push_bind(v);
                }
            };
        }
        if let Some(s) = u.state {
            q.push(", state = ").push_bind(s.as_str());
        }
        set!(stage_progress);
        set!(progress_json);
        set!(stage_detail);
        set!(poll_count);
        set!(error_count);
        set!(submitted_at);
        set!(upload_expires_at);
        set!(provider_json);
        set!(provider_error_json);
        set!(cost);
        set!(arrived_at);
        set!(master_size);
        set!(master_sha256);
        set!(master_probe);
        set!(outputs_json);
        set!(qc_json);
        set!(published_json);
        set!(reason_code);
        set!(reason);
        set!(next_run_at);
        set!(master_etag);
        set!(task_uuid);
        set!(previous_tasks);
        set!(success_seen_at);
        if u.release {
            q.push(", lease_until = 0");
        }
        q.push(" WHERE id = ").push_bind(&claim.id);
        q.push(" AND attempt = ").push_bind(claim.attempt);
        let done = q.build().execute(&mut *tx).await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(req) = &u.asset_request_json {
            sqlx::query(
                "UPDATE assets SET request_json = ? WHERE id = (SELECT asset_id FROM variations WHERE id = ?)",
            )
            .bind(req)
            .bind(&claim.id)
            .execute(&mut *tx)
            .await?;
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

    /// Records what the generator reported outside a worker step (webhook).
    pub async fn record_provider_report(
        &self,
        id: &str,
        item_json: Option<&str>,
        error_json: Option<&str>,
        cost: Option<f64>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE variations SET provider_json = COALESCE(?, provider_json),
                 provider_error_json = COALESCE(?, provider_error_json),
                 cost = COALESCE(?, cost), updated_at = ?
             WHERE id = ?",
        )
        .bind(item_json)
        .bind(error_json)
        .bind(cost)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Makes a variation that waits on the generator runnable now. Used by the
    /// webhook and the S3 event intake; repeating it is harmless.
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

    /// Puts a variation back to `to` outside a worker step (a new master
    /// version landed, or a reprocess was asked for), recording why. A row a
    /// worker is running is taken from it: `attempt` moves on, so the
    /// worker's next write or renewal fails and its step is dropped. A
    /// finished row keeps its lease (the CDN sweeper may hold it), so a
    /// worker picks it up once that is free. Expired and cancelled rows stay.
    pub async fn restart(&self, id: &str, to: State, note: &str) -> Result<bool> {
        let mut tx = self.begin_immediate().await?;
        let done = restart_in(&mut tx, id, to, note).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Sends every variation of the asset that has a verified master back to
    /// `arrived` (transcode, QC and publish run again from that master) and
    /// records the asset's profile, in one transaction. Returns the ids.
    /// Variations still waiting for a master (a new version is on its way
    /// through the arrival checks) are left to finish that, and so are those
    /// whose current master was turned down at arrival: it is no master to
    /// build on.
    pub async fn reprocess(
        &self,
        asset_id: &str,
        profile: &str,
        note: &str,
    ) -> Result<Vec<String>> {
        let mut tx = self.begin_immediate().await?;
        // The stored master must be one that passed its arrival checks: the
        // latest arrival outcome (a step out of submitted/generating) is `arrived`.
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT v.id FROM variations v
             WHERE v.asset_id = ? AND v.master_sha256 IS NOT NULL
               AND v.state NOT IN ('expired', 'cancelled', 'requested', 'submitted', 'generating')
               AND (SELECT t.to_state FROM transitions t
                    WHERE t.variation_id = v.id AND t.from_state IN ('submitted', 'generating')
                      AND t.to_state IN ('arrived', 'rejected', 'failed')
                    ORDER BY t.seq DESC LIMIT 1) = 'arrived'
             ORDER BY v.idx",
        )
        .bind(asset_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut done = Vec::new();
        for (id,) in rows {
            if restart_in(&mut tx, &id, State::Arrived, note).await? {
                done.push(id);
            }
        }
        if !done.is_empty() {
            s3::set_asset_profile(&mut tx, asset_id, profile).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// A write transaction that takes SQLite's write lock at once, so
    /// read-then-write sequences inside it cannot deadlock with another writer.
    pub async fn begin_immediate(&self) -> Result<sqlx::Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Variations with a live CDN set whose ttl, counted from arrival, has
    /// run out: published ones, and finished ones whose newer master was
    /// turned down while the previous set stayed live.
    pub async fn published_due(&self, now: i64) -> Result<Vec<VariationRow>> {
        Ok(sqlx::query_as(
            "SELECT v.* FROM variations v JOIN assets a ON a.id = v.asset_id
             WHERE (v.state = 'published'
                    OR (v.state IN ('rejected', 'failed') AND v.published_json IS NOT NULL))
               AND COALESCE(v.arrived_at, v.created_at) + a.ttl_secs * 1000 <= ?",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Marks a variation with a live set expired; false if it no longer
    /// has one. Queues its `asset.expired` callback and `notifications`
    /// (purges) in the same transaction.
    pub async fn expire(
        &self,
        id: &str,
        note: &str,
        notifications: Vec<NewOutbox>,
    ) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin_immediate().await?;
        let from: Option<(String,)> = sqlx::query_as(
            "SELECT state FROM variations WHERE id = ?
               AND (state = 'published'
                    OR (state IN ('rejected', 'failed') AND published_json IS NOT NULL))",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((from,)) = from else {
            return Ok(false);
        };
        sqlx::query(
            "UPDATE variations SET state = 'expired', reason_code = 'ttlExpired', reason = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(note)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO transitions (variation_id, from_state, to_state, at, note) VALUES (?, ?, 'expired', ?, ?)",
        )
        .bind(id)
        .bind(&from)
        .bind(now)
        .bind(note)
        .execute(&mut *tx)
        .await?;
        outbox::enqueue_terminal_event(&mut tx, id, State::Expired, now).await?;
        for item in &notifications {
            outbox::insert(&mut tx, item, now).await?;
        }
        tx.commit().await?;
        Ok(true)
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

/// [`Store::restart`] inside the caller's transaction.
pub(crate) async fn restart_in(
    conn: &mut SqliteConnection,
    id: &str,
    to: State,
    note: &str,
) -> Result<bool> {
    let now = now_ms();
    let Some((from,)): Option<(String,)> =
        sqlx::query_as("SELECT state FROM variations WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
    else {
        return Ok(false);
    };
    let from = State::from_str(&from).unwrap_or(State::Failed);
    if matches!(from, State::Expired | State::Cancelled) {
        return Ok(false);
    }
    let running = !from.is_terminal();
    sqlx::query(
        "UPDATE variations SET state = ?, next_run_at = ?, updated_at = ?, error_count = 0,
             stage_progress = NULL, progress_json = NULL, stage_detail = ?,
             reason_code = NULL, reason = NULL,
             attempt = attempt + ?, lease_until = CASE WHEN ? THEN 0 ELSE lease_until END
         WHERE id = ?",
    )
    .bind(to.as_str())
    .bind(now)
    .bind(now)
    .bind(note)
    .bind(i64::from(running))
    .bind(running)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    record_transition(conn, id, from, to, now, Some(note)).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        (
            Store::connect(&url, 4, Duration::from_secs(5))
                .await
                .unwrap(),
            dir,
        )
    }

    async fn seed(store: &Store, n: i64) {
        seed_with(store, n, None).await
    }

    async fn seed_with(store: &Store, n: i64, callback_url: Option<&str>) {
        let asset = AssetRow {
            id: "a1".into(),
            campaign: "c".into(),
            profile: "default".into(),
            request_json: "{}".into(),
            callback_url: callback_url.map(str::to_string),
            ttl_secs: 3600,
            created_at: now_ms(),
            qc_json: None,
            source: SOURCE_GENERATED.into(),
        };
        let vars: Vec<_> = (0..n)
            .map(|i| NewVariation {
                id: format!("v{i}"),
                idx: i,
                task_uuid: format!("t{i}"),
                webhook_token_sha256: "x".into(),
                master_key: format!("m{i}"),
            })
            .collect();
        store.create_asset(&asset, &vars).await.unwrap();
    }

    #[tokio::test]
    async fn a_claimed_row_is_not_handed_out_twice() {
        let (store, _d) = store().await;
        seed(&store, 1).await;
        let first = store.claim(Duration::from_secs(30)).await.unwrap();
        assert!(first.is_some());
        assert!(store
            .claim(Duration::from_secs(30))
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn progress_rides_the_heartbeat_and_goes_with_the_state() {
        let (store, _d) = store().await;
        seed(&store, 1).await;
        let lease = Duration::from_secs(30);
        let claim = store.claim(lease).await.unwrap().unwrap();
        assert!(store
            .update(&claim, Update::to(State::Transcoding))
            .await
            .unwrap());
        let claim = Claim {
            state: State::Transcoding,
            ..claim
        };
        let report = |pc: f64| StepProgress {
            stage: "transcoding".into(),
            percent: Some(pc),
            fps: Some(48.0),
            speed: Some(1.5),
            eta_secs: Some(2.0),
        };
        let row = || async { store.variation("v0").await.unwrap().unwrap() };
        assert_eq!(row().await.progress(), None);
        assert!(store
            .renew_with(&claim, lease, None, Some(&report(40.0)))
            .await
            .unwrap());
        let v = row().await;
        assert_eq!(v.progress(), Some(report(40.0)));
        assert_eq!(v.stage_progress, Some(40.0), "the percent goes along");
        // A plain renewal keeps what was reported.
        assert!(store.renew(&claim, lease, None).await.unwrap());
        assert_eq!(row().await.progress(), Some(report(40.0)));
        // A fenced-out holder writes nothing.
        let stale = Claim {
            attempt: claim.attempt - 1,
            ..claim.clone()
        };
        assert!(!store
            .renew_with(&stale, lease, None, Some(&report(90.0)))
            .await
            .unwrap());
        assert_eq!(row().await.progress(), Some(report(40.0)));
        // The next state starts without it.
        assert!(store
            .update(&claim, Update::to(State::Checking))
            .await
            .unwrap());
        let v = row().await;
        assert_eq!((v.progress(), v.progress_json), (None, None));
    }

    #[tokio::test]
    async fn a_lapsed_lease_is_taken_over_and_the_old_holder_is_fenced_out() {
        let (store, _d) = store().await;
        seed(&store, 1).await;
        let old = store
            .claim(Duration::from_millis(1))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let new = store.claim(Duration::from_secs(30)).await.unwrap().unwrap();
        assert_eq!(new.attempt, old.attempt + 1);
        assert!(!store
            .update(&old, Update::to(State::Submitted))
            .await
            .unwrap());
        assert!(!store
            .renew(&old, Duration::from_secs(30), None)
            .await
            .unwrap());
        assert!(store
            .update(&new, Update::to(State::Submitted))
            .await
            .unwrap());
        assert_eq!(
            store.times_entered("v0", State::Submitted).await.unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn concurrent_claimers_share_out_rows_without_duplicates() {
        let (store, _d) = store().await;
        seed(&store, 20).await;
        let mut handles = Vec::new();
        for _ in 0..6 {
            let s = store.clone();
            handles.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(c) = s.claim(Duration::from_secs(30)).await.unwrap() {
                    got.push(c.id);
                }
                got
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        all.sort();
        let before = all.len();
        all.dedup();
        assert_eq!(before, 20);
        assert_eq!(all.len(), 20);
    }

    #[tokio::test]
    async fn terminal_rows_are_never_claimed_and_nudges_do_not_revive_them() {
        let (store, _d) = store().await;
        seed(&store, 1).await;
        let c = store.claim(Duration::from_secs(30)).await.unwrap().unwrap();
        assert!(store.update(&c, Update::to(State::Failed)).await.unwrap());
        assert!(!store.nudge("v0").await.unwrap());
        assert!(store
            .claim(Duration::from_secs(30))
            .await
            .unwrap()
            .is_none());
    }

    const LEASE: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_terminal_transition_queues_its_callback_in_the_same_commit() {
        let (store, _d) = store().await;
        seed_with(&store, 2, Some("https://ops.example/hook")).await;
        let c = store.claim(LEASE).await.unwrap().unwrap();
        // Not terminal: nothing to announce.
        assert!(store
            .update(&c, Update::to(State::Submitted).note("x"))
            .await
            .unwrap());
        assert!(store.outbox_of_asset("a1").await.unwrap().is_empty());
        // A worker that lost its lease writes nothing, so announces nothing.
        let stale = Claim {
            attempt: c.attempt - 1,
            ..c.clone()
        };
        let u = Update::to(State::Failed).reason("x", "y");
        assert!(!store.update(&stale, u.clone()).await.unwrap());
        assert!(store.outbox_of_asset("a1").await.unwrap().is_empty());
        let c = Claim {
            state: State::Submitted,
            ..c
        };
        assert!(store.update(&c, u).await.unwrap());
        let rows = store.outbox_of_asset("a1").await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].event_type, "asset.failed");
        assert_eq!(rows[0].url, "https://ops.example/hook");
        let body: serde_json::Value = serde_json::from_str(&rows[0].body).unwrap();
        assert_eq!(body["id"], rows[0].id.as_str());
        assert_eq!(body["data"]["reason"]["code"], "x");
        assert_eq!(body["data"]["variation"]["id"], c.id.as_str());
        // Handed out once while leased; back after a failed attempt.
        let got = store.claim_outbox(10, LEASE).await.unwrap();
        assert_eq!(got.len(), 1);
        assert!(store.claim_outbox(10, LEASE).await.unwrap().is_empty());
        store
            .outbox_retry(&got[0].id, 1, now_ms() - 1, "HTTP 503")
            .await
            .unwrap();
        let again = store.claim_outbox(10, LEASE).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 1);
        store.outbox_delivered(&again[0].id, 2).await.unwrap();
        let rows = store.outbox_of_asset("a1").await.unwrap();
        assert!(rows[0].delivered_at.is_some());
        assert!(
            store.claim_outbox(10, LEASE).await.unwrap().is_empty(),
            "delivered is done"
        );
    }

    #[tokio::test]
    async fn object_events_are_new_once_and_older_sequencers_are_stale() {
        use s3::{record_event, EventFreshness::*};
        let (store, _d) = store().await;
        let mut tx = store.begin_immediate().await.unwrap();
        macro_rules! rec {
            ($version:expr, $seq:expr) => {
                record_event(&mut tx, "b", "k", $version, $seq)
                    .await
                    .unwrap()
            };
        }
        assert_eq!(rec!("e:1", Some("00A0")), New);
        assert_eq!(rec!("e:1", Some("00A0")), Duplicate);
        assert_eq!(
            rec!("e:1", Some("FFFF")),
            Duplicate,
            "same version, any sequencer"
        );
        assert_eq!(rec!("e:0", Some("9F")), Stale, "older than 00A0");
        assert_eq!(
            rec!("e:0", Some("9F")),
            Duplicate,
            "recorded even when stale"
        );
        assert_eq!(rec!("e:2", Some("0B00")), New);
        assert_eq!(rec!("e:3", None), New, "no sequencer: nothing to order by");
        assert_eq!(rec!("e:4", Some("0AFF")), Stale);
        tx.commit().await.unwrap();
        let outcomes = store.s3_event_outcomes("b", "k").await.unwrap();
        assert_eq!(outcomes.iter().filter(|(_, o)| o == "stale").count(), 2);
        // Another key has its own order.
        let mut tx = store.begin_immediate().await.unwrap();
        assert_eq!(
            record_event(&mut tx, "b", "k2", "e:0", Some("01"))
                .await
                .unwrap(),
            New
        );
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn a_restart_fences_out_a_running_worker_but_waits_for_a_sweepers_lease() {
        let (store, _d) = store().await;
        seed(&store, 1).await;
        // Running: the worker's lease is taken away.
        let worker = store.claim(LEASE).await.unwrap().unwrap();
        assert!(store
            .restart("v0", State::Submitted, "new master")
            .await
            .unwrap());
        assert!(!store.renew(&worker, LEASE, None).await.unwrap());
        assert!(!store
            .update(&worker, Update::to(State::Failed))
            .await
            .unwrap());
        let c = store.claim(LEASE).await.unwrap().expect("runnable at once");
        assert_eq!(c.state, State::Submitted);
        assert!(store
            .update(&c, Update::to(State::Published))
            .await
            .unwrap());
        // A running row is never swept; a finished one is, under its lease.
        let sweep = store.claim_for_sweep("v0", LEASE).await.unwrap().unwrap();
        assert!(store.claim_for_sweep("v0", LEASE).await.unwrap().is_none());
        assert!(store
            .restart("v0", State::Arrived, "reprocess")
            .await
            .unwrap());
        assert!(
            store.claim(LEASE).await.unwrap().is_none(),
            "waits for the sweeper"
        );
        assert!(
            store.renew(&sweep, LEASE, None).await.unwrap(),
            "the sweeper keeps its lease"
        );
        store.release(&sweep).await.unwrap();
        let c = store.claim(LEASE).await.unwrap().unwrap();
        assert_eq!(c.state, State::Arrived);
        assert!(store.claim_for_sweep("v0", LEASE).await.unwrap().is_none());
        let history: Vec<_> = store.transitions("v0").await.unwrap();
        let notes: Vec<_> = history.iter().filter_map(|t| t.note.as_deref()).collect();
        assert_eq!(notes, ["new master", "reprocess"]);
    }

    /// Walks a variation through `path` (as restarts, which record each
    /// transition) and gives it a master.
    async fn drive(store: &Store, id: &str, path: &[State]) {
        for s in path {
            assert!(store.restart(id, *s, "test").await.unwrap());
        }
        sqlx::query("UPDATE variations SET master_sha256 = 'abc' WHERE id = ?")
            .bind(id)
            .execute(&store.pool)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn reprocess_takes_only_variations_whose_current_master_passed_arrival() {
        use State::*;
        let (store, _d) = store().await;
        seed(&store, 4).await;
        drive(&store, "v0", &[Submitted, Arrived, Transcoding, Published]).await;
        drive(&store, "v1", &[Submitted, Arrived, Published, Expired]).await;
        drive(&store, "v2", &[Submitted, Failed]).await;
        // A newer master was turned down at arrival: nothing to build on.
        drive(
            &store,
            "v3",
            &[Submitted, Arrived, Published, Submitted, Rejected],
        )
        .await;
        let ids = store.reprocess("a1", "default", "again").await.unwrap();
        assert_eq!(ids, ["v0"]);
        assert_eq!(
            store.variation("v0").await.unwrap().unwrap().state(),
            Arrived
        );
        assert_eq!(
            store.variation("v3").await.unwrap().unwrap().state(),
            Rejected
        );
        assert!(store
            .reprocess("missing", "default", "x")
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn a_turned_down_new_version_does_not_keep_the_old_set_past_its_ttl() {
        use State::*;
        let (store, _d) = store().await;
        seed(&store, 2).await;
        drive(
            &store,
            "v0",
            &[Submitted, Arrived, Published, Submitted, Rejected],
        )
        .await;
        drive(&store, "v1", &[Submitted, Rejected]).await;
        sqlx::query("UPDATE variations SET published_json = '{}', arrived_at = 0 WHERE id = 'v0'")
            .execute(&store.pool)
            .await
            .unwrap();
        let due: Vec<String> = store
            .published_due(now_ms())
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.id)
            .collect();
        assert_eq!(due, ["v0"], "v1 never had a live set");
        assert!(store.expire("v0", "ttl", Vec::new()).await.unwrap());
        assert!(!store.expire("v0", "ttl", Vec::new()).await.unwrap());
        assert!(!store.expire("v1", "ttl", Vec::new()).await.unwrap());
        let last = store.transitions("v0").await.unwrap().pop().unwrap();
        assert_eq!(
            (last.from_state.as_str(), last.to_state.as_str()),
            ("rejected", "expired")
        );
    }

    #[tokio::test]
    async fn retired_sets_come_due_after_the_grace_counted_from_retirement() {
        let (store, _d) = store().await;
        seed(&store, 1).await;
        store.retire_set("v0", "h1", "p/v0/h1/").await.unwrap();
        assert!(store
            .retired_due(Duration::from_secs(3600), 10)
            .await
            .unwrap()
            .is_empty());
        let due = store.retired_due(Duration::ZERO, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].prefix, "p/v0/h1/");
        store.unretire_set("v0", "h1").await.unwrap();
        assert!(store
            .retired_due(Duration::ZERO, 10)
            .await
            .unwrap()
            .is_empty());
    }
}
