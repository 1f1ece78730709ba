//! The `workers` table: worker processes register, heartbeat with the steps
//! they run, and deregister on a clean exit (`jobs::fleet` drives it).

use super::backend::on_pool;
use super::{now_ms, Result, Store};
use serde::{Deserialize, Serialize};

/// One step a worker process is running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunningStep {
    pub variation_id: String,
    /// The state the step was claimed in.
    pub stage: String,
    /// When the step was claimed (Unix ms).
    pub since: i64,
}

/// A worker process as its last heartbeat left it.
#[derive(Debug, Clone)]
pub struct WorkerRow {
    pub id: String,
    pub host: String,
    pub version: String,
    pub started_at: i64,
    pub last_heartbeat: i64,
    pub running: Vec<RunningStep>,
}

impl Store {
    /// Registers (or re-registers) a worker process.
    pub async fn register_worker(&self, id: &str, host: &str, version: &str) -> Result<()> {
        let now = now_ms();
        on_pool!(self.pool, p => {
            sqlx::query(
                "INSERT INTO workers (id, host, version, started_at, last_heartbeat, running_json)
                 VALUES ($1, $2, $3, $4, $4, '[]')
                 ON CONFLICT (id) DO UPDATE SET last_heartbeat = excluded.last_heartbeat",
            )
            .bind(id)
            .bind(host)
            .bind(version)
            .bind(now)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Records a heartbeat and what the worker runs now.
    pub async fn worker_heartbeat(&self, id: &str, running: &[RunningStep]) -> Result<()> {
        let json = serde_json::to_string(running).unwrap_or_else(|_| "[]".into());
        on_pool!(self.pool, p => {
            sqlx::query("UPDATE workers SET last_heartbeat = $1, running_json = $2 WHERE id = $3")
                .bind(now_ms())
                .bind(json)
                .bind(id)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    pub async fn deregister_worker(&self, id: &str) -> Result<()> {
        on_pool!(self.pool, p => {
            sqlx::query("DELETE FROM workers WHERE id = $1")
                .bind(id)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Workers whose last heartbeat is at or after `since_ms`, oldest first.
    pub async fn live_workers(&self, since_ms: i64) -> Result<Vec<WorkerRow>> {
        let rows: Vec<(String, String, String, i64, i64, String)> = on_pool!(self.pool, p => {
            sqlx::query_as(
                "SELECT id, host, version, started_at, last_heartbeat, running_json
                 FROM workers WHERE last_heartbeat >= $1 ORDER BY started_at, id",
            )
            .bind(since_ms)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(id, host, version, started_at, last_heartbeat, running)| WorkerRow {
                    id,
                    host,
                    version,
                    started_at,
                    last_heartbeat,
                    running: serde_json::from_str(&running).unwrap_or_default(),
                },
            )
            .collect())
    }
}
