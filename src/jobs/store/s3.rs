//! S3 event bookkeeping and the rows an event can create or move, as
//! functions on the caller's transaction: the event intake records the
//! event and applies its effect in one commit, so a retried delivery either
//! finds the event recorded (and does nothing) or finds nothing done.

use super::{now_ms, record_transition, Asset, Result, Store, Variation};
use crate::jobs::State;
use crate::reason::ReasonCode;
use sqlx::types::Json;
use sqlx::SqliteConnection;
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
/// reads anything.
pub async fn record_event(
    conn: &mut SqliteConnection,
    bucket: &str,
    key: &str,
    version: &str,
    sequencer: Option<&str>,
) -> Result<EventFreshness> {
    let now = now_ms();
    let done = sqlx::query(
        "INSERT INTO s3_events (bucket, key, version, sequencer, outcome, received_at)
         VALUES (?, ?, ?, ?, 'new', ?) ON CONFLICT DO NOTHING",
    )
    .bind(bucket)
    .bind(key)
    .bind(version)
    .bind(sequencer)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(EventFreshness::Duplicate);
    }
    let Some(seq) = sequencer.filter(|s| !s.trim().is_empty()) else {
        return Ok(EventFreshness::New);
    };
    let last: Option<(String,)> =
        sqlx::query_as("SELECT sequencer FROM s3_keys WHERE bucket = ? AND key = ?")
            .bind(bucket)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some((last,)) = &last {
        if sequencer_cmp(seq, last) == Ordering::Less {
            set_outcome(conn, bucket, key, version, "stale").await?;
            return Ok(EventFreshness::Stale);
        }
    }
    sqlx::query(
        "INSERT INTO s3_keys (bucket, key, sequencer, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (bucket, key) DO UPDATE SET sequencer = excluded.sequencer, updated_at = excluded.updated_at",
    )
    .bind(bucket)
    .bind(key)
    .bind(seq.trim().to_ascii_uppercase())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(EventFreshness::New)
}

/// Notes what handling the event did (for audits and the intake's answer).
pub async fn set_outcome(
    conn: &mut SqliteConnection,
    bucket: &str,
    key: &str,
    version: &str,
    outcome: &str,
) -> Result<()> {
    sqlx::query("UPDATE s3_events SET outcome = ? WHERE bucket = ? AND key = ? AND version = ?")
        .bind(outcome)
        .bind(bucket)
        .bind(key)
        .bind(version)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn variation_by_master_key(
    conn: &mut SqliteConnection,
    key: &str,
) -> Result<Option<Variation>> {
    Ok(
        sqlx::query_as("SELECT * FROM variations WHERE master_key = ?")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

pub async fn variation(conn: &mut SqliteConnection, id: &str) -> Result<Option<Variation>> {
    Ok(sqlx::query_as("SELECT * FROM variations WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// Puts a write that changed nothing in the variation's history (a
/// transition to its own state, with `note`).
pub async fn note_ignored_write(
    conn: &mut SqliteConnection,
    id: &str,
    state: State,
    note: &str,
) -> Result<()> {
    record_transition(conn, id, state, state, now_ms(), Some(note)).await
}

pub async fn asset(conn: &mut SqliteConnection, id: &str) -> Result<Option<Asset>> {
    Ok(sqlx::query_as("SELECT * FROM assets WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// [`Store::nudge`] inside the caller's transaction.
pub async fn nudge(conn: &mut SqliteConnection, id: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE variations SET next_run_at = MIN(next_run_at, ?) WHERE id = ? AND state IN ('requested','submitted','generating')",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_asset_profile(
    conn: &mut SqliteConnection,
    asset_id: &str,
    profile: &str,
) -> Result<()> {
    sqlx::query("UPDATE assets SET profile = ? WHERE id = ?")
        .bind(profile)
        .bind(asset_id)
        .execute(&mut *conn)
        .await?;
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
pub async fn create_upload(conn: &mut SqliteConnection, u: &NewUpload) -> Result<()> {
    let a = &u.asset;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO assets (id, campaign, profile, request_json, callback_url, ttl_secs, created_at, source)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&a.id)
    .bind(&a.campaign)
    .bind(&a.profile)
    .bind(Json(a.request_json()))
    .bind(&a.callback_url)
    .bind(a.ttl_secs)
    .bind(a.created_at)
    .bind(a.source)
    .execute(&mut *conn)
    .await?;
    let (state, code, reason) = match &u.rejected {
        Some((c, r)) => (State::Rejected, Some(c.clone()), Some(r.as_str())),
        None => (State::Submitted, None, None),
    };
    sqlx::query(
        "INSERT INTO variations (id, asset_id, idx, state, task_uuid, webhook_token_sha256,
             master_key, reason_code, reason, next_run_at, created_at, updated_at)
         VALUES (?, ?, 0, ?, ?, '', ?, ?, ?, ?, ?, ?)",
    )
    .bind(&u.variation_id)
    .bind(&a.id)
    .bind(state)
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(&u.master_key)
    .bind(code)
    .bind(reason)
    .bind(now)
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let note = match &u.rejected {
        Some(_) => "master uploaded by hand; it cannot be processed",
        None => "master uploaded by hand (no generation): arrival checks next",
    };
    record_transition(
        conn,
        &u.variation_id,
        State::Requested,
        state,
        now,
        Some(note),
    )
    .await?;
    if state.is_terminal() {
        super::outbox::enqueue_terminal_event(conn, &u.variation_id, state, now).await?;
    }
    Ok(())
}

impl Store {
    /// Forgets handled S3 events older than `before` (unix ms). The per-key
    /// sequencer stays, so a very late old event is still recognised as stale.
    pub async fn prune_s3_events(&self, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM s3_events WHERE received_at < ?")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// How handled events for a key ended, oldest first: (version, outcome).
    pub async fn s3_event_outcomes(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT version, outcome FROM s3_events WHERE bucket = ? AND key = ? ORDER BY received_at, version",
        )
        .bind(bucket)
        .bind(key)
        .fetch_all(&self.pool)
        .await?)
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
