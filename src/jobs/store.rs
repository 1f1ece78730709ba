//! The job store: assets, variations and their transitions in SQLite (WAL).
//!
//! Work is handed out as leases: `claim` bumps the row's `attempt` (the
//! fencing token) and sets `lease_until`; every later write names that
//! attempt, so a worker whose lease lapsed and was taken over cannot write.

use super::state::State;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, QueryBuilder, Sqlite, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

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
    /// Earlier tasks of this variation (a resubmission), JSON.
    pub previous_tasks: Option<String>,
    pub success_seen_at: Option<i64>,
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
    /// Give the lease back so another worker may pick the row up at once.
    pub release: bool,
}

impl Update {
    pub fn to(state: State) -> Self {
        Update {
            state: Some(state),
            stage_progress: Some(None),
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
            "INSERT INTO assets (id, campaign, profile, request_json, callback_url, ttl_secs, created_at, qc_json)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&asset.id)
        .bind(&asset.campaign)
        .bind(&asset.profile)
        .bind(&asset.request_json)
        .bind(&asset.callback_url)
        .bind(asset.ttl_secs)
        .bind(asset.created_at)
        .bind(&asset.qc_json)
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
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE variations SET lease_until = ?, stage_progress = COALESCE(?, stage_progress), updated_at = ?
             WHERE id = ? AND attempt = ?",
        )
        .bind(now + lease.as_millis() as i64)
        .bind(progress)
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
        if let Some(to) = u.state {
            // A change of state, or a noted re-entry (a resumed step), is history.
            if to != claim.state || u.note.is_some() {
                sqlx::query(
                    "INSERT INTO transitions (variation_id, from_state, to_state, at, note) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(&claim.id)
                .bind(claim.state.as_str())
                .bind(to.as_str())
                .bind(now)
                .bind(&u.note)
                .execute(&mut *tx)
                .await?;
            }
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

    /// Published variations whose ttl, counted from arrival, has run out.
    pub async fn published_due(&self, now: i64) -> Result<Vec<VariationRow>> {
        Ok(sqlx::query_as(
            "SELECT v.* FROM variations v JOIN assets a ON a.id = v.asset_id
             WHERE v.state = 'published'
               AND COALESCE(v.arrived_at, v.created_at) + a.ttl_secs * 1000 <= ?",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Marks a published variation expired; false if it no longer was published.
    pub async fn expire(&self, id: &str, note: &str) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE variations SET state = 'expired', reason_code = 'ttlExpired', reason = ?, updated_at = ?
             WHERE id = ? AND state = 'published'",
        )
        .bind(note)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO transitions (variation_id, from_state, to_state, at, note) VALUES (?, 'published', 'expired', ?, ?)",
        )
        .bind(id)
        .bind(now)
        .bind(note)
        .execute(&mut *tx)
        .await?;
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
        let asset = AssetRow {
            id: "a1".into(),
            campaign: "c".into(),
            profile: "default".into(),
            request_json: "{}".into(),
            callback_url: None,
            ttl_secs: 3600,
            created_at: now_ms(),
            qc_json: None,
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
}
