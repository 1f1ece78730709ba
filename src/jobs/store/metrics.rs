//! What `/metrics` reads from the store at scrape time: variations by state
//! (the queue depth) and the generator cost recorded so far.

use super::{Result, Store};
use crate::jobs::State;

impl Store {
    /// The number of variations in each state, every state listed (0 when
    /// none is in it).
    #[tracing::instrument(name = "store.count_by_state", skip_all)]
    pub async fn count_by_state(&self) -> Result<Vec<(State, i64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM variations GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
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
    /// earlier tasks included.
    #[tracing::instrument(name = "store.generator_cost", skip_all)]
    pub async fn generator_cost_usd(&self) -> Result<f64> {
        let (current,): (f64,) = sqlx::query_as("SELECT COALESCE(SUM(cost), 0.0) FROM variations")
            .fetch_one(&self.pool)
            .await?;
        let (earlier,): (f64,) = sqlx::query_as(
            "SELECT COALESCE(SUM(json_extract(t.value, '$.cost')), 0.0)
             FROM variations, json_each(variations.previous_tasks) AS t
             WHERE variations.previous_tasks IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(current + earlier)
    }
}
