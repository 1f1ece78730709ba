//! Assembles reelay from its settings: data folders, the embedded parts
//! (object store, Runware simulator), the job store, the workers and the
//! HTTP API. Binding port 0 works everywhere; the chosen ports are reported.

use crate::api::{self, AppState};
use crate::config::{RunwareMode, Settings};
use crate::jobs::{cdn_sweeper, sweeper, worker, Pipeline, Store};
use crate::media::process::Runner;
use crate::notify;
use crate::runware::client::{ClientConfig, RunwareClient};
use crate::secret::Secret;
use crate::simulator::{self, SimConfig, SimHandle};
use crate::storage::ObjectStore;
use crate::storage::{credentials, start_embedded, EmbeddedS3, NotificationTarget, StorageConfig};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Which parts a process starts (`reelay serve [--role api]`, `reelay worker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Everything in one process.
    #[default]
    All,
    /// HTTP API, event intake, CDN origin, outbox, sweepers: no workers.
    Api,
    /// Claims and runs stages; no public HTTP. Reaches S3 at
    /// `storage.endpoint` and the generator at `runware.api_url`.
    Worker,
}

impl Role {
    fn runs_workers(self) -> bool {
        self != Role::Api
    }
    fn serves_api(self) -> bool {
        self != Role::Worker
    }
    /// Settings a role cannot run with, refused before anything starts.
    pub fn check(self, settings: &Settings) -> anyhow::Result<()> {
        if self == Role::Worker {
            anyhow::ensure!(
                !settings.storage.embedded,
                "a worker does not host the object store: set storage.embedded = false and \
                 storage.endpoint (with the same credentials) to the API process's store"
            );
        }
        Ok(())
    }

    /// What a `reelay worker` in simulator mode is likely missing: it hosts
    /// no simulator and no API, so it reaches both only through the URLs it
    /// is given. One line each, warned at start.
    pub fn warnings(self, settings: &Settings) -> Vec<String> {
        if self != Role::Worker || settings.runware.mode != RunwareMode::Simulator {
            return Vec::new();
        }
        let mut out = Vec::new();
        let runware = &settings.runware;
        let live = ClientConfig::DEFAULT_API_URL.trim_end_matches('/');
        if runware.api_url.trim_end_matches('/') == live {
            out.push(format!(
                "runware.mode = \"simulator\" but runware.api_url is Runware's own ({live}); a worker \
                 starts no simulator: set runware.api_url to the API process's \
                 (http://HOST:{{simulator.port}}/v1)"
            ));
        }
        if matches!(
            runware.transport,
            crate::runware::client::Transport::Websocket
        ) && runware.ws_url.trim_end_matches('/') == ClientConfig::DEFAULT_WS_URL
        {
            out.push(format!(
                "runware.transport = \"websocket\" in simulator mode but runware.ws_url is Runware's \
                 own ({}): set it to the API process's simulator (ws://HOST:{{simulator.port}}/v1)",
                ClientConfig::DEFAULT_WS_URL
            ));
        }
        if settings.server.public_url.is_empty() {
            out.push(format!(
                "server.public_url is empty: webhook URLs this worker hands the simulator name \
                 http://{}:{}, which it does not serve; set server.public_url to the API \
                 process's URL",
                settings.server.host, settings.server.port
            ));
        }
        out
    }
}

pub struct Application {
    pub api_addr: SocketAddr,
    pub public_url: String,
    pub s3: Option<EmbeddedS3>,
    pub sim: Option<SimHandle>,
    pub store: Store,
    pub settings: Arc<Settings>,
    events_token: Secret,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

fn random_hex(bytes: usize) -> String {
    let v: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(v)
}

/// The key that signs callbacks: `secrets.callback_signing_key` (or its
/// older name `callbacks.secret`), or one made at first start and kept in the
/// data dir (so receivers can keep verifying across restarts). The bytes of
/// the text are the HMAC key.
pub async fn callback_secret(data_dir: &Path, configured: &Secret) -> anyhow::Result<Vec<u8>> {
    if !configured.is_empty() {
        return Ok(configured.expose().as_bytes().to_vec());
    }
    let path = data_dir.join("secrets").join("callbacks.key");
    if let Ok(s) = tokio::fs::read_to_string(&path).await {
        if s.trim().len() >= 32 {
            return Ok(s.trim().as_bytes().to_vec());
        }
    }
    tokio::fs::create_dir_all(path.parent().unwrap()).await?;
    let key = random_hex(32);
    tokio::fs::write(&path, &key).await?;
    tracing::info!(path = %path.display(), "no secrets.callback_signing_key configured: made one (the file holds it)");
    Ok(key.into_bytes())
}

/// The key that derives per-variation webhook tokens:
/// `secrets.webhook_token_key` (hex, checked at load), or one kept in the
/// data dir so webhook URLs handed out before a restart stay valid after it.
pub async fn webhook_secret(data_dir: &Path, configured: &Secret) -> anyhow::Result<Vec<u8>> {
    if !configured.is_empty() {
        return hex::decode(configured.expose().trim())
            .context("secrets.webhook_token_key must be hex");
    }
    let path = data_dir.join("secrets").join("webhook.key");
    if let Ok(s) = tokio::fs::read_to_string(&path).await {
        if let Ok(k) = hex::decode(s.trim()) {
            if k.len() >= 16 {
                return Ok(k);
            }
        }
    }
    tokio::fs::create_dir_all(path.parent().unwrap()).await?;
    let key = random_hex(32);
    tokio::fs::write(&path, &key).await?;
    Ok(hex::decode(key)?)
}

/// The embedded server's credentials: the configured secret, or the ones
/// made for this install and kept in `{data.dir}/secrets/s3-credentials`.
/// Written into `storage` so every client of the store uses them.
async fn embedded_credentials(storage: &mut StorageConfig, data_dir: &Path) -> anyhow::Result<()> {
    if !storage.secret_access_key.is_empty() {
        if storage.access_key_id.is_empty() {
            storage.access_key_id = credentials::PROFILE.to_string();
        }
        return Ok(());
    }
    let path = credentials::credentials_path(data_dir);
    let made = credentials::load_or_create(&path)
        .await
        .with_context(|| format!("embedded S3 credentials in {}", path.display()))?;
    storage.access_key_id = made.access_key_id;
    storage.secret_access_key = made.secret_access_key;
    Ok(())
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_role(settings, Role::All).await
    }

    /// Starts the parts `role` runs; one start-up path for every role.
    pub async fn build_role(settings: Settings, role: Role) -> anyhow::Result<Self> {
        // Before anything is created or bound: a refused set-up leaves no trace.
        role.check(&settings)?;
        for warning in role.warnings(&settings) {
            tracing::warn!("{warning}");
        }
        settings.check_generator()?;
        settings.check_production()?;
        settings.check_shared_secrets()?;
        let mut settings = settings;
        let data = settings.data.dir.clone();
        for sub in ["objects", "work", "runware-sim", "secrets"] {
            tokio::fs::create_dir_all(data.join(sub))
                .await
                .with_context(|| format!("creating {}", data.join(sub).display()))?;
        }

        let runner = Runner::new(&settings.media);
        let version = runner.version().await.context(
            "ffmpeg is required: install it (Debian/Ubuntu: apt-get install ffmpeg) or set media.ffmpeg_path",
        )?;
        tracing::info!(ffmpeg = %version, "ffmpeg found");
        // Without ffprobe no master could be checked: every job would retry.
        let probe_version = runner.ffprobe_version().await.context(
            "ffprobe is required: install it (Debian/Ubuntu: apt-get install ffmpeg) or set media.ffprobe_path",
        )?;
        tracing::info!(ffprobe = %probe_version, "ffprobe found");

        // The API listener first: its address goes into webhook and event URLs.
        let api_bind = format!("{}:{}", settings.server.host, settings.server.port);
        let (listener, api_addr) = if role.serves_api() {
            let listener = TcpListener::bind(&api_bind).await.with_context(|| {
                format!("cannot listen on {api_bind} (port taken? set REELAY__SERVER__PORT to another port)")
            })?;
            let addr = listener.local_addr()?;
            (Some(listener), addr)
        } else {
            // A worker binds nothing; webhook URLs name the API's address.
            let addr = api_bind
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], settings.server.port)));
            (None, addr)
        };
        // A worker's own health listener, when asked for (worker.health_port).
        let health_listener = if role == Role::Worker && settings.worker.health_port != 0 {
            let bind = format!(
                "{}:{}",
                settings.worker.health_host, settings.worker.health_port
            );
            let listener = TcpListener::bind(&bind).await.with_context(|| {
                format!("cannot listen on {bind} for the worker's /healthz (worker.health_port)")
            })?;
            tracing::info!(addr = %listener.local_addr()?, "worker health listening");
            Some(listener)
        } else {
            None
        };
        let public_url = if settings.server.public_url.is_empty() {
            format!("http://{api_addr}")
        } else {
            settings.server.public_url.trim_end_matches('/').to_string()
        };

        let events_token = if settings.events.token.is_empty() {
            Secret::new(random_hex(24))
        } else {
            settings.events.token.clone()
        };

        let s3 = if settings.storage.embedded {
            embedded_credentials(&mut settings.storage, &data).await?;
            let s3 = start_embedded(settings.storage.embedded_options(
                data.join("objects"),
                settings.storage.embedded_events.then(|| NotificationTarget {
                    url: format!("{public_url}/v1/events/s3"),
                    bearer_token: events_token.clone(),
                }),
            ))
            .await
            .with_context(|| {
                format!(
                    "starting the embedded object store on {}:{} (port taken? set REELAY__STORAGE__EMBEDDED_PORT)",
                    settings.storage.embedded_host, settings.storage.embedded_port
                )
            })?;
            settings.storage.endpoint = s3.endpoint_url();
            tracing::info!(endpoint = %settings.storage.endpoint, "embedded object store listening");
            Some(s3)
        } else {
            None
        };
        let objects = ObjectStore::new(&settings.storage)?;
        for b in [
            &settings.storage.masters_bucket,
            &settings.storage.cdn_bucket,
        ] {
            objects
                .ensure_bucket(b)
                .await
                .with_context(|| format!("object storage bucket {b}"))?;
        }

        let (sim, api_url, ws_url, api_key) = match settings.runware.mode {
            // A worker reaches the API process's simulator over the network.
            RunwareMode::Simulator if role == Role::Worker => (
                None,
                settings.runware.api_url.clone(),
                settings.runware.ws_url.clone(),
                settings.simulator.api_key.clone(),
            ),
            RunwareMode::Simulator => {
                let addr: SocketAddr =
                    format!("{}:{}", settings.simulator.host, settings.simulator.port).parse()?;
                let sim = simulator::start(
                    SimConfig::from_settings(&settings, data.join("runware-sim")),
                    runner.clone(),
                    addr,
                )
                .await?;
                let url = sim.api_url();
                if !settings.runware.api_key.is_empty() {
                    tracing::warn!("runware.api_key is set but runware.mode = \"simulator\": the key is not used");
                }
                tracing::info!(%url, "runware.mode = \"simulator\": using the built-in simulator");
                let ws_url = sim.ws_url();
                (Some(sim), url, ws_url, settings.simulator.api_key.clone())
            }
            RunwareMode::Live => (
                None,
                settings.runware.api_url.clone(),
                settings.runware.ws_url.clone(),
                settings.runware.api_key.clone(),
            ),
        };
        let runware = RunwareClient::new(ClientConfig {
            api_url,
            transport: settings.runware.transport,
            ws_url,
            api_key,
            request_timeout: Duration::from_secs(settings.runware.request_timeout_secs),
            retry_deadline: Duration::from_secs(settings.runware.retry_deadline_secs),
            backoff_initial: Duration::from_millis(settings.runware.backoff_initial_ms),
            backoff_max: Duration::from_secs(settings.runware.backoff_max_secs),
        })?;

        let store = Store::connect(
            &settings.database_url(),
            settings.database.max_connections,
            Duration::from_secs(settings.database.acquire_timeout_secs),
        )
        .await
        .context("opening the job store")?;

        // Work folders of variations that ended (or vanished) while reelay
        // was down, or before cleanup existed.
        match crate::jobs::workdir::sweep_stale(&store, &data.join("work")).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "stale work folders swept"),
            Err(e) => tracing::warn!(error = %e, "sweeping stale work folders"),
        }

        let webhook_secret = webhook_secret(&data, &settings.secrets.webhook_token_key).await?;
        let cdn_base = settings.cdn_base(&public_url);
        let settings = Arc::new(settings);
        let wake = Arc::new(Notify::new());
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();

        let pipeline = Arc::new(Pipeline {
            store: store.clone(),
            objects: objects.clone(),
            runware,
            runner,
            settings: settings.clone(),
            public_url: public_url.clone(),
            cdn_base,
            work_dir: data.join("work"),
            webhook_secret: webhook_secret.clone(),
            wake: wake.clone(),
        });
        let registry = crate::jobs::fleet::Registry::new();
        if role.runs_workers() {
            let live =
                worker::Liveness::new(settings.worker.concurrency, worker_stale_after(&settings));
            for n in 0..settings.worker.concurrency {
                tasks.spawn(worker::run_worker(
                    pipeline.clone(),
                    n,
                    registry.clone(),
                    live.clone(),
                    shutdown.clone(),
                ));
            }
            if let Some(listener) = health_listener {
                tasks.spawn(api::server::serve(
                    listener,
                    api::health::worker_router(store.clone(), live),
                    Duration::from_secs(settings.server.header_read_timeout_secs),
                    shutdown.clone(),
                ));
            }
            tasks.spawn(crate::jobs::fleet::run_heartbeat(
                store.clone(),
                registry,
                shutdown.clone(),
            ));
            if let Some(pool) = store.postgres_pool() {
                tasks.spawn(crate::jobs::wake::listen(
                    pool,
                    wake.clone(),
                    shutdown.clone(),
                ));
            }
        }
        let Some(listener) = listener else {
            tracing::info!(
                concurrency = settings.worker.concurrency,
                "reelay worker running"
            );
            return Ok(Application {
                api_addr,
                public_url,
                s3,
                sim,
                store,
                settings,
                events_token,
                shutdown,
                tasks,
            });
        };
        tasks.spawn(sweeper::run_sweeper(pipeline.clone(), shutdown.clone()));
        tasks.spawn(cdn_sweeper::run(pipeline.clone(), shutdown.clone()));
        let outbox = Arc::new(notify::Outbox::new(
            store.clone(),
            settings.clone(),
            callback_secret(&data, settings.callback_signing_key()).await?,
        )?);
        tasks.spawn(notify::run(outbox, shutdown.clone()));

        let state = AppState {
            store: store.clone(),
            objects,
            model: settings.runware.model_spec.clone(),
            api_key_hashes: Arc::new(
                settings
                    .api
                    .key_sha256
                    .iter()
                    .filter_map(|h| hex::decode(h).ok()?.try_into().ok())
                    .collect(),
            ),
            events_token: events_token.clone(),
            webhook_secret: Arc::new(webhook_secret),
            public_url: public_url.clone(),
            wake,
            limits: Arc::new(api::limits::Limits::from_settings(&settings.server)),
            thumbnails: api::thumbnails::Thumbnails::new(&settings.media),
            settings: settings.clone(),
        };
        let app = api::router(state);
        tasks.spawn(api::server::serve(
            listener,
            app,
            Duration::from_secs(settings.server.header_read_timeout_secs),
            shutdown.clone(),
        ));
        tracing::info!(%api_addr, "reelay API listening");

        Ok(Application {
            api_addr,
            public_url,
            s3,
            sim,
            store,
            settings,
            events_token,
            shutdown,
            tasks,
        })
    }

    /// The Bearer token S3 event senders must present.
    pub fn events_token(&self) -> &Secret {
        &self.events_token
    }

    pub fn api_url(&self) -> String {
        self.public_url.clone()
    }

    /// Runs until Ctrl-C or SIGTERM, then stops the workers and the server.
    pub async fn run_until_stopped(mut self) -> anyhow::Result<()> {
        let signal = shutdown_signal();
        tokio::select! {
            _ = signal => tracing::info!("stop requested"),
            Some(r) = self.tasks.join_next() => {
                tracing::error!("a background task exited: {r:?}");
            }
        }
        self.stop().await;
        Ok(())
    }

    /// Stops workers and the server; steps in flight resume on the next start.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(self.settings.shutdown_timeout(), drain)
            .await
            .is_err()
        {
            tracing::warn!("background tasks did not stop in time; aborting them");
            self.tasks.abort_all();
        }
        if let Some(s3) = self.s3.take() {
            s3.shutdown().await;
        }
    }
}

/// How long a worker loop may go without coming round before the worker's
/// health answer calls it dead: three idle polls, and never below 30 s (a
/// claim waits for a pool connection up to `database.acquire_timeout_secs`).
fn worker_stale_after(settings: &Settings) -> Duration {
    let poll = Duration::from_millis(settings.worker.idle_poll_ms) * 3;
    let acquire = Duration::from_secs(settings.database.acquire_timeout_secs) * 2;
    poll.max(acquire).max(Duration::from_secs(30))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn processes_given_the_same_keys_sign_and_derive_alike() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let signing = Secret::new("a-callback-signing-key-of-the-whole-fleet");
        let token_key =
            Secret::new("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
        let ka = callback_secret(a.path(), &signing).await.unwrap();
        let kb = callback_secret(b.path(), &signing).await.unwrap();
        let body = br#"{"type":"asset.published"}"#;
        assert_eq!(
            notify::sign(&ka, 1_700_000_000, body),
            notify::sign(&kb, 1_700_000_000, body)
        );
        assert!(notify::verify(
            &kb,
            &notify::sign(&ka, 1_700_000_000, body),
            body,
            1_700_000_000,
            300
        ));
        let wa = webhook_secret(a.path(), &token_key).await.unwrap();
        let wb = webhook_secret(b.path(), &token_key).await.unwrap();
        assert_eq!(
            crate::tokens::webhook_token(&wa, "v1"),
            crate::tokens::webhook_token(&wb, "v1")
        );
        // Configured keys are not written into the data dir.
        assert!(!a.path().join("secrets").join("callbacks.key").exists());
        assert!(!a.path().join("secrets").join("webhook.key").exists());
    }

    fn settings() -> Settings {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        Settings::load_from(&dir, "test").unwrap()
    }

    #[test]
    fn a_simulator_worker_is_warned_of_urls_that_point_nowhere_it_can_reach() {
        let s = settings();
        let warned = Role::Worker.warnings(&s).join("\n");
        assert!(warned.contains("runware.api_url"), "{warned}");
        assert!(warned.contains("server.public_url"), "{warned}");
        assert!(!warned.contains("ws_url"), "REST transport: {warned}");
        // The other roles start their own simulator and API.
        assert!(Role::All.warnings(&s).is_empty());
        assert!(Role::Api.warnings(&s).is_empty());

        let mut s = settings();
        s.runware.api_url = "http://sim.internal:9400/v1".into();
        s.server.public_url = "http://api.internal:8080".into();
        assert!(Role::Worker.warnings(&s).is_empty());
        s.runware.transport = crate::runware::client::Transport::Websocket;
        let warned = Role::Worker.warnings(&s).join("\n");
        assert!(warned.contains("runware.ws_url"), "{warned}");
        s.runware.mode = RunwareMode::Live;
        assert!(
            Role::Worker.warnings(&s).is_empty(),
            "live Runware is meant"
        );
    }

    #[tokio::test]
    async fn without_keys_each_data_dir_makes_its_own_and_keeps_it() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let none = Secret::default();
        let ka = callback_secret(a.path(), &none).await.unwrap();
        assert_eq!(ka, callback_secret(a.path(), &none).await.unwrap());
        assert_ne!(ka, callback_secret(b.path(), &none).await.unwrap());
        let wa = webhook_secret(a.path(), &none).await.unwrap();
        assert_eq!(wa, webhook_secret(a.path(), &none).await.unwrap());
        assert_ne!(wa, webhook_secret(b.path(), &none).await.unwrap());
    }
}
