//! S3 event bookkeeping and the rows an event can create or move, as
//! functions on the caller's transaction: the event intake records the
//! event and applies its effect in one commit, so a retried delivery either
//! finds the event recorded (and does nothing) or finds nothing done.

use super::backend::{on_pool, on_tx};
use super::{now_ms, record_transition, Asset, Result, Store, Tx, Variation, NUDGE};
use crate::jobs::State;
use crate::reason::ReasonCode;
use sqlx::types::Json;
use std::cmp::Ordering;

/// What the dedupe table says about an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFreshness {
    /// Never seen: act on it.
    New,
    /// This (bucket, key, version) was handled before.
    Duplicate,
    /// Older (by sequencer) than an event already handled for the key.
    Stale,
}

/// Orders two S3 sequencers for the same key: hex strings of possibly
/// different lengths, compared as numbers (left-padded with zeros).
pub fn sequencer_cmp(a: &str, b: &str) -> Ordering {
    let a = a.trim().to_ascii_uppercase();
    let b = b.trim().to_ascii_uppercase();
    let width = a.len().max(b.len());
    format!("{a:0>width$}").cmp(&format!("{b:0>width$}"))
}

/// Records an object event under its identity (`version`: `v:`versionId,
/// `e:`ETag or `s:`sequencer) and says whether to act on it. The INSERT
/// comes first so the caller's transaction holds the write lock before it
/// reads anything (on Postgres: the event's row, and the key's row is
/// locked as it is read).
pub async fn record_event(
    tx: &mut Tx,
    bucket: &str,
    key: &str,
    version: &str,
    sequencer: Option<&str>,
) -> Result<EventFreshness> {
    let now = now_ms();
    let inserted = on_tx!(&mut *tx, c => {
        sqlx::query(
            "INSERT INTO s3_events (bucket, key, version, sequencer, outcome, received_at)
             VALUES ($1, $2, $3, $4, 'new', $5) ON CONFLICT DO NOTHING",
        )
        .bind(bucket)
        .bind(key)
        .bind(version)
        .bind(sequencer)
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    if inserted == 0 {
        return Ok(EventFreshness::Duplicate);
    }
    let Some(seq) = sequencer.filter(|s| !s.trim().is_empty()) else {
        return Ok(EventFreshness::New);
    };
    let sql = format!(
        "SELECT sequencer FROM s3_keys WHERE bucket = $1 AND key = $2{}",
        tx.for_update()
    );
    let last: Option<(String,)> = on_tx!(&mut *tx, c => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(bucket)
            .bind(key)
            .fetch_optional(&mut *c)
            .await?
    });
    if let Some((last,)) = &last {
        if sequencer_cmp(seq, last) == Ordering::Less {
            set_outcome(tx, bucket, key, version, "stale").await?;
            return Ok(EventFreshness::Stale);
        }
    }
    on_tx!(&mut *tx, c => {
        sqlx::query(
            "INSERT INTO s3_keys (bucket, key, sequencer, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (bucket, key) DO UPDATE SET sequencer = excluded.sequencer, updated_at = excluded.updated_at",
        )
        .bind(bucket)
        .bind(key)
        .bind(seq.trim().to_ascii_uppercase())
        .bind(now)
        .execute(&mut *c)
        .await?;
    });
    Ok(EventFreshness::New)
}

/// Notes what handling the event did (for audits and the intake's answer).
pub async fn set_outcome(
    tx: &mut Tx,
    bucket: &str,
    key: &str,
    version: &str,
    outcome: &str,
) -> Result<()> {
    on_tx!(tx, c => {
        sqlx::query(
            "UPDATE s3_events SET outcome = $1 WHERE bucket = $2 AND key = $3 AND version = $4",
        )
        .bind(outcome)
        .bind(bucket)
        .bind(key)
        .bind(version)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

pub async fn variation_by_master_key(tx: &mut Tx, key: &str) -> Result<Option<Variation>> {
    let sql = format!(
        "SELECT * FROM variations WHERE master_key = $1{}",
        tx.for_update()
    );
    Ok(on_tx!(tx, c => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .fetch_optional(&mut *c)
            .await?
    }))
}

pub async fn variation(tx: &mut Tx, id: &str) -> Result<Option<Variation>> {
    let sql = format!("SELECT * FROM variations WHERE id = $1{}", tx.for_update());
    Ok(on_tx!(tx, c => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *c)
            .await?
    }))
}

/// Puts a write that changed nothing in the variation's history (a
/// transition to its own state, with `note`).
pub async fn note_ignored_write(tx: &mut Tx, id: &str, state: State, note: &str) -> Result<()> {
    record_transition(tx, id, state, state, now_ms(), Some(note)).await
}

pub async fn asset(tx: &mut Tx, id: &str) -> Result<Option<Asset>> {
    Ok(on_tx!(tx, c => {
        sqlx::query_as("SELECT * FROM assets WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?
    }))
}

/// [`Store::nudge`] inside the caller's transaction.
pub async fn nudge(tx: &mut Tx, id: &str) -> Result<bool> {
    let done = on_tx!(tx, c => {
        sqlx::query(NUDGE)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *c)
            .await?
            .rows_affected()
    });
    Ok(done == 1)
}

pub async fn set_asset_profile(tx: &mut Tx, asset_id: &str, profile: &str) -> Result<()> {
    on_tx!(tx, c => {
        sqlx::query("UPDATE assets SET profile = $1 WHERE id = $2")
            .bind(profile)
            .bind(asset_id)
            .execute(&mut *c)
            .await?;
    });
    Ok(())
}

/// A master uploaded by hand, as an asset of its own.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub asset: Asset,
    pub variation_id: String,
    pub master_key: String,
    /// A variation that cannot be processed (e.g. an unknown profile in the
    /// object's metadata) is created `rejected` with this (code, message).
    pub rejected: Option<(ReasonCode, String)>,
}

/// Creates the asset and its one variation. There is no generation behind
/// it, so the variation starts in `submitted` (the generator's part is
/// done: the object is there) and its first step is the arrival checks. Its
/// `task_uuid` is a fresh UUID that is never sent anywhere (the column is
/// unique and required) and it has no webhook token.
pub async fn create_upload(tx: &mut Tx, u: &NewUpload) -> Result<()> {
    let a = &u.asset;
    let now = now_ms();
    let (state, code, reason) = match &u.rejected {
        Some((c, r)) => (State::Rejected, Some(c.clone()), Some(r.as_str())),
        None => (State::Submitted, None, None),
    };
    on_tx!(&mut *tx, c => {
        sqlx::query(
            "INSERT INTO assets (id, campaign, profile, request_json, callback_url, ttl_secs, created_at, source)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&a.id)
        .bind(&a.campaign)
        .bind(&a.profile)
        .bind(Json(a.request_json()))
        .bind(&a.callback_url)
        .bind(a.ttl_secs)
        .bind(a.created_at)
        .bind(a.source)
        .execute(&mut *c)
        .await?;
        sqlx::query(
            "INSERT INTO variations (id, asset_id, idx, state, task_uuid, webhook_token_sha256,
                 master_key, reason_code, reason, next_run_at, created_at, updated_at)
             VALUES ($1, $2, 0, $3, $4, '', $5, $6, $7, $8, $8, $8)",
        )
        .bind(&u.variation_id)
        .bind(&a.id)
        .bind(state)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&u.master_key)
        .bind(code)
        .bind(reason)
        .bind(now)
        .execute(&mut *c)
        .await?;
    });
    let note = match &u.rejected {
        Some(_) => "master uploaded by hand; it cannot be processed",
        None => "master uploaded by hand (no generation): arrival checks next",
    };
    record_transition(
        tx,
        &u.variation_id,
        State::Requested,
        state,
        now,
        Some(note),
    )
    .await?;
    if state.is_terminal() {
        super::outbox::enqueue_terminal_event(tx, &u.variation_id, state, now).await?;
    }
    Ok(())
}

impl Store {
    /// Forgets handled S3 events older than `before` (unix ms). The per-key
    /// sequencer stays, so a very late old event is still recognised as stale.
    pub async fn prune_s3_events(&self, before: i64) -> Result<u64> {
        Ok(on_pool!(self.pool, p => {
            sqlx::query("DELETE FROM s3_events WHERE received_at < $1")
                .bind(before)
                .execute(p)
                .await?
                .rows_affected()
        }))
    }

    /// How handled events for a key ended, oldest first: (version, outcome).
    pub async fn s3_event_outcomes(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<(String, String)>> {
        Ok(on_pool!(self.pool, p => {
            sqlx::query_as(
                "SELECT version, outcome FROM s3_events WHERE bucket = $1 AND key = $2 ORDER BY received_at, version",
            )
            .bind(bucket)
            .bind(key)
            .fetch_all(p)
            .await?
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequencers_compare_as_left_padded_hex() {
        assert_eq!(sequencer_cmp("0A", "9"), Ordering::Greater);
        assert_eq!(sequencer_cmp("00FF", "ff"), Ordering::Equal);
        assert_eq!(
            sequencer_cmp("0055AED6DCD90281E5", "0055AED6DCD90281E6"),
            Ordering::Less
        );
        assert_eq!(sequencer_cmp("1", "0000000000000000FF"), Ordering::Less);
    }
}
