//! Waking idle workers across processes: on Postgres, a `LISTEN` on the
//! channel the `reelay_work_ready` trigger (migration 0018) notifies, so a
//! variation made runnable by any process (an API creating an asset, a
//! worker handing a step back) is claimed at once instead of at the next
//! `worker.idle_poll_ms` poll. On SQLite there is nothing to listen to:
//! the process wakes its own workers.

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The channel migration 0018's trigger notifies.
pub const CHANNEL: &str = "reelay_work";

/// Listens until `shutdown`, waking every idle worker of this process on
/// each notification. A lost connection is opened again after a second;
/// meanwhile the workers still poll.
pub async fn listen(pool: PgPool, wake: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN connection failed; workers poll meanwhile");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "LISTEN failed; workers poll meanwhile");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = shutdown.cancelled() => return,
            }
        }
        tracing::debug!(channel = CHANNEL, "listening for runnable work");
        // What was notified while not listening is lost: look now.
        wake.notify_waiters();
        loop {
            tokio::select! {
                n = listener.recv() => match n {
                    Ok(_) => wake.notify_waiters(),
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                        break;
                    }
                },
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
