//! What `/metrics` reads from the store at scrape time: variations by state
//! (the queue depth) and the generator cost recorded so far.

use super::backend::on_pool;
use super::{Result, Store};
use crate::jobs::State;
use sqlx::types::Json;

impl Store {
    /// The number of variations in each state, every state listed (0 when
    /// none is in it).
    #[tracing::instrument(name = "store.count_by_state", skip_all)]
    pub async fn count_by_state(&self) -> Result<Vec<(State, i64)>> {
        let rows: Vec<(String, i64)> = on_pool!(self.pool, p => {
            sqlx::query_as("SELECT state, COUNT(*) FROM variations GROUP BY state")
                .fetch_all(p)
                .await?
        });
        Ok(State::ALL
            .iter()
            .map(|s| {
                let n = rows
                    .iter()
                    .find(|(name, _)| name == s.as_str())
                    .map_or(0, |(_, n)| *n);
                (*s, n)
            })
            .collect())
    }

    /// USD the generator reported for every task, the resubmitted ones'
    /// earlier tasks included. The earlier tasks are a JSON array per row
    /// (few rows: only resubmitted variations have one), summed here rather
    /// than with either database's own JSON functions.
    #[tracing::instrument(name = "store.generator_cost", skip_all)]
    pub async fn generator_cost_usd(&self) -> Result<f64> {
        let (current, earlier): (f64, Vec<(Json<Vec<serde_json::Value>>,)>) = on_pool!(self.pool, p => {
            let (current,): (f64,) =
                sqlx::query_as("SELECT COALESCE(SUM(cost), 0.0) FROM variations")
                    .fetch_one(p)
                    .await?;
            let earlier = sqlx::query_as(
                "SELECT previous_tasks FROM variations WHERE previous_tasks IS NOT NULL",
            )
            .fetch_all(p)
            .await?;
            (current, earlier)
        });
        let earlier: f64 = earlier
            .iter()
            .flat_map(|(tasks,)| tasks.0.iter())
            .filter_map(|t| t.get("cost").and_then(serde_json::Value::as_f64))
            .sum();
        Ok(current + earlier)
    }
}
