//! This process as a worker of the fleet: an id, the steps its workers run
//! now, and the heartbeat that writes both into the `workers` table (read by
//! `GET /v1/workers`). Registered at start, deleted on a clean stop; a
//! process that died is no longer listed once its heartbeat is older than
//! [`LIVE_WITHIN`] heartbeats.

use super::store::{RunningStep, Store};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the process writes its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A worker is live while its last heartbeat is at most this many intervals old.
pub const LIVE_WITHIN: u32 = 3;

/// The steps this process runs, shared by its worker tasks.
#[derive(Clone)]
pub struct Registry {
    pub id: String,
    running: Arc<Mutex<BTreeMap<String, RunningStep>>>,
}

impl Registry {
    pub fn new() -> Self {
        let host = host_name();
        let id = format!(
            "{host}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        Registry {
            id,
            running: Arc::default(),
        }
    }

    pub fn started(&self, variation_id: &str, stage: &str) {
        self.running.lock().unwrap().insert(
            variation_id.to_string(),
            RunningStep {
                variation_id: variation_id.to_string(),
                stage: stage.to_string(),
                since: crate::time::now_ms(),
            },
        );
    }

    pub fn finished(&self, variation_id: &str) {
        self.running.lock().unwrap().remove(variation_id);
    }

    pub fn running(&self) -> Vec<RunningStep> {
        self.running.lock().unwrap().values().cloned().collect()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

/// The machine's name: `HOSTNAME`, else `/etc/hostname`, else "unknown".
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Registers, heartbeats until `shutdown`, then deregisters.
pub async fn run_heartbeat(store: Store, registry: Registry, shutdown: CancellationToken) {
    let version = env!("CARGO_PKG_VERSION");
    if let Err(e) = store
        .register_worker(&registry.id, &host_name(), version)
        .await
    {
        tracing::warn!(error = %e, "registering this worker failed");
    }
    loop {
        if let Err(e) = store
            .worker_heartbeat(&registry.id, &registry.running())
            .await
        {
            tracing::warn!(error = %e, "worker heartbeat failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    if let Err(e) = store.deregister_worker(&registry.id).await {
        tracing::warn!(error = %e, "deregistering this worker failed");
    }
}
