//! What the asset API asks of the store beyond single rows: cancelling an
//! asset (one transaction), a set taken down after it, pages of assets by
//! a keyset cursor, and a campaign's variations. Plain, portable SQL.

use super::backend::{on_pool, on_tx};
use super::{now_ms, outbox, record_transition, Asset, NewOutbox, Result, Store, Variation};
use crate::jobs::State;
use crate::reason::ReasonCode;
use sqlx::QueryBuilder;

/// One page's filters and position (newest first).
#[derive(Debug, Clone, Default)]
pub struct PageQuery {
    pub campaign: Option<String>,
    /// Assets with at least one variation in this state.
    pub state: Option<State>,
    /// `created_at` in ms: at or after, strictly before.
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    /// The last asset of the previous page: (created_at, id).
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

/// A page of assets and the position after its last one, when there is more.
#[derive(Debug)]
pub struct AssetPage {
    pub assets: Vec<Asset>,
    pub next: Option<(i64, String)>,
}

impl Store {
    /// Cancels every variation of the asset that is not finished, and every
    /// published one, in one transaction: state `cancelled` with its
    /// reason, the transition, the `asset.cancelled` callback. `attempt`
    /// moves on, so a worker running one of them cannot write again and its
    /// next lease renewal drops the step (and any ffmpeg it runs). Returns
    /// the ids cancelled now; an asset cancelled already gives none.
    #[tracing::instrument(name = "store.cancel", skip_all)]
    pub async fn cancel(&self, asset_id: &str, note: &str) -> Result<Vec<String>> {
        let now = now_ms();
        let mut tx = self.begin_immediate().await?;
        let sql = format!(
            "SELECT id, state FROM variations WHERE asset_id = $1 ORDER BY idx{}",
            tx.for_update()
        );
        let rows: Vec<(String, State)> = on_tx!(&mut tx, c => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(asset_id)
                .fetch_all(&mut *c)
                .await?
        });
        let mut done = Vec::new();
        for (id, from) in rows {
            if from.is_terminal() && from != State::Published {
                continue;
            }
            on_tx!(&mut tx, c => {
                sqlx::query(
                    "UPDATE variations SET state = 'cancelled', reason_code = $1, reason = $2,
                         attempt = attempt + 1, lease_until = 0, next_run_at = $3, updated_at = $3,
                         stage_progress = NULL, progress_json = NULL, stage_detail = NULL
                     WHERE id = $4",
                )
                .bind(ReasonCode::Cancelled)
                .bind(note)
                .bind(now)
                .bind(&id)
                .execute(&mut *c)
                .await?;
            });
            record_transition(&mut tx, &id, from, State::Cancelled, now, Some(note)).await?;
            outbox::enqueue_terminal_event(&mut tx, &id, State::Cancelled, now).await?;
            done.push(id);
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Records that a variation's CDN files are gone (its `published` is
    /// cleared), with its purges, in one transaction.
    #[tracing::instrument(name = "store.clear_published", skip_all)]
    pub async fn clear_published(&self, id: &str, notifications: &[NewOutbox]) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin_immediate().await?;
        on_tx!(&mut tx, c => {
            sqlx::query("UPDATE variations SET published_json = NULL, updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *c)
                .await?;
            sqlx::query("DELETE FROM cdn_retired WHERE variation_id = $1")
                .bind(id)
                .execute(&mut *c)
                .await?;
        });
        for item in notifications {
            outbox::insert(&mut tx, item, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One page of assets, newest first, in one query; ties on
    /// `created_at` are ordered by id, so the position is exact and a page
    /// does not move when newer assets are inserted.
    #[tracing::instrument(name = "store.page_assets", skip_all)]
    pub async fn page_assets(&self, q: &PageQuery) -> Result<AssetPage> {
        let mut assets: Vec<Asset> = on_pool!(self.pool, p => {
            let mut b: QueryBuilder<Db> = QueryBuilder::new("SELECT * FROM assets a WHERE 1 = 1");
            if let Some(c) = &q.campaign {
                b.push(" AND a.campaign = ").push_bind(c.clone());
            }
            if let Some(s) = q.state {
                b.push(
                    " AND EXISTS (SELECT 1 FROM variations v WHERE v.asset_id = a.id AND v.state = ",
                )
                .push_bind(s)
                .push(")");
            }
            if let Some(t) = q.created_after {
                b.push(" AND a.created_at >= ").push_bind(t);
            }
            if let Some(t) = q.created_before {
                b.push(" AND a.created_at < ").push_bind(t);
            }
            if let Some((at, id)) = &q.after {
                b.push(" AND (a.created_at < ")
                    .push_bind(*at)
                    .push(" OR (a.created_at = ")
                    .push_bind(*at)
                    .push(" AND a.id < ")
                    .push_bind(id.clone())
                    .push("))");
            }
            b.push(" ORDER BY a.created_at DESC, a.id DESC LIMIT ")
                .push_bind(q.limit + 1);
            b.build_query_as().fetch_all(p).await?
        });
        let more = assets.len() as i64 > q.limit;
        assets.truncate(q.limit.max(0) as usize);
        let next = more
            .then(|| assets.last().map(|a| (a.created_at, a.id.clone())))
            .flatten();
        Ok(AssetPage { assets, next })
    }

    /// Cancelled variations whose set is still recorded: a take-down that a
    /// crash (or a publish racing the cancel) left undone. The sweeper
    /// finishes them.
    #[tracing::instrument(name = "store.cancelled_with_set", skip_all)]
    pub async fn cancelled_with_set(&self) -> Result<Vec<Variation>> {
        Ok(on_pool!(self.pool, p => {
            sqlx::query_as(
                "SELECT * FROM variations WHERE state = 'cancelled' AND published_json IS NOT NULL",
            )
            .fetch_all(p)
            .await?
        }))
    }

    /// Every variation of a campaign's assets, in one query.
    #[tracing::instrument(name = "store.variations_of_campaign", skip_all)]
    pub async fn variations_of_campaign(&self, campaign: &str) -> Result<Vec<Variation>> {
        Ok(on_pool!(self.pool, p => {
            sqlx::query_as(
                "SELECT v.* FROM variations v JOIN assets a ON a.id = v.asset_id
                 WHERE a.campaign = $1 ORDER BY v.asset_id, v.idx",
            )
            .bind(campaign)
            .fetch_all(p)
            .await?
        }))
    }
}
