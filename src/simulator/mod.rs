//! A Runware stand-in that speaks the same wire protocol as
//! `https://api.runware.ai/v1`: POST of a JSON array, Bearer (or in-body
//! `authentication`) auth, `data`/`errors` envelopes, async acks,
//! `getResponse` polling, a webhook per result, and the result PUT to
//! `uploadEndpoint`. It renders real footage with ffmpeg. The same `/v1`
//! path also speaks Runware's WebSocket API (see [`ws`]), the official SDKs'
//! default transport.
//!
//! Tasks are kept on disk (`{state_dir}/{taskUUID}.json`) so that, like the
//! real service, a task outlives a restart of the process hosting it.
//!
//! Faults (latency, failures, 429/503 bursts, broken uploads, wrong sizes,
//! lost or repeated webhooks) are injected from the config or per request:
//! see [`faults`].

mod errors;
pub mod faults;
pub mod frames;
mod lifecycle;
mod wire;
mod ws;

use crate::backoff::Backoff;
use crate::media::process::Runner;
use crate::media::synth::{render_clip, ClipFormat, ClipSpec};
use crate::runware::validate::{validate_task, FieldError};
use crate::runware::{
    ApiError, FramePosition, ModelSpec, OutputFormat, TaskItem, TaskStatus, VideoInferenceTask,
};
use crate::secret::{constant_time_eq, Secret};
use axum::body::Body;
use axum::extract::{Path as AxPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
pub use faults::{BurstOn, ErrorShape, Faults, UploadFault, WebhookFault, FAULT_HEADER};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;
use wire::{handle, serve_video};

const DOCS: &str = "https://runware.ai/docs/en/video-inference/api-reference";

/// One outgoing request (result PUT of a 4K clip, webhook, frame image).
const HTTP_TIMEOUT: Duration = Duration::from_secs(120);
/// A render still running after this is killed and the task fails with
/// `providerError`, as a stuck provider would.
const RENDER_TIMEOUT: Duration = Duration::from_secs(600);
/// A result PUT is tried this often, waiting [`UPLOAD_BACKOFF`] between tries
/// (about a minute in all: long enough for a store restart).
const UPLOAD_ATTEMPTS: u32 = 10;
const UPLOAD_BACKOFF: Backoff =
    Backoff::doubling(Duration::from_millis(500), Duration::from_secs(8));

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub api_key: Secret,
    /// Simulated generation time before rendering starts.
    pub generation_secs: f64,
    pub model: ModelSpec,
    /// Where tasks and rendered files are kept.
    pub state_dir: PathBuf,
    /// Faults applied to every call and task (see [`faults`]).
    pub faults: Faults,
    /// Honour the `X-Reelay-Sim-Fault` request header.
    pub accept_fault_header: bool,
    /// Delays between webhook attempts: a delivery answered non-2xx (or not
    /// at all) is tried again after each, then given up.
    pub webhook_retry_ms: Vec<u64>,
    /// A WebSocket connection that sends no frame for this long is closed.
    pub ws_idle: Duration,
}

impl SimConfig {
    /// The simulator reelay starts for `settings`, keeping tasks in `state_dir`.
    pub fn from_settings(settings: &crate::config::Settings, state_dir: PathBuf) -> Self {
        let sim = &settings.simulator;
        SimConfig {
            api_key: sim.api_key.clone(),
            generation_secs: sim.generation_secs,
            model: settings.runware.model_spec.clone(),
            state_dir,
            faults: sim.faults.clone(),
            accept_fault_header: sim.accept_fault_header,
            webhook_retry_ms: sim.webhook_retry_ms.clone(),
            ws_idle: Duration::from_secs_f64(sim.ws_idle_secs.max(0.001)),
        }
    }
}

/// What the simulator has seen, for tests and audits.
#[derive(Debug, Clone, Default)]
pub struct SimStats {
    /// Tasks created by this process (a conflicting resubmit creates none).
    pub tasks_created: u64,
    /// `videoInference` calls per taskUUID, refused and burst-answered ones included.
    pub submits: HashMap<Uuid, u32>,
    /// `getResponse` calls per taskUUID.
    pub polls: HashMap<Uuid, u32>,
    /// PUTs to `uploadEndpoint` per taskUUID.
    pub uploads: HashMap<Uuid, u32>,
    /// Webhook POSTs per taskUUID, retries included.
    pub webhook_attempts: HashMap<Uuid, u32>,
    /// Webhook POSTs answered 2xx per taskUUID.
    pub webhooks_accepted: HashMap<Uuid, u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SimTask {
    task: VideoInferenceTask,
    status: TaskStatus,
    progress: u8,
    created_at_ms: i64,
    video_uuid: Uuid,
    seed: i64,
    cost: Option<f64>,
    error: Option<ApiError>,
    /// When `videoURL` stops being served (the task's ttl).
    expires_at_ms: Option<i64>,
    file: Option<PathBuf>,
    /// The faults this task was created with.
    #[serde(default)]
    faults: Faults,
}

struct Inner {
    cfg: SimConfig,
    runner: Runner,
    http: reqwest::Client,
    tasks: Mutex<HashMap<Uuid, SimTask>>,
    stats: Mutex<SimStats>,
    /// Burst answers given so far, per kind of call and taskUUID.
    bursts: Mutex<HashMap<String, u32>>,
    /// WebSocket sessions by `connectionSessionUUID`; they outlive connections.
    sessions: Mutex<HashMap<Uuid, ws::Session>>,
    base_url: String,
}

#[derive(Clone)]
pub struct Simulator(Arc<Inner>);

/// A running simulator; dropping it stops the listener.
pub struct SimHandle {
    pub addr: SocketAddr,
    pub sim: Simulator,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    /// The REST endpoint, as a client's `api_url`.
    pub fn api_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The WebSocket endpoint (same path, GET with Upgrade).
    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1", self.addr)
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `addr`, loads any tasks left from an earlier run (resuming those
/// still generating) and serves the protocol.
pub async fn start(cfg: SimConfig, runner: Runner, addr: SocketAddr) -> anyhow::Result<SimHandle> {
    cfg.faults
        .validate()
        .map_err(|e| anyhow::anyhow!("simulator.faults: {e}"))?;
    tokio::fs::create_dir_all(&cfg.state_dir).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("Runware simulator cannot listen on {addr}: {e}"))?;
    let addr = listener.local_addr()?;
    let sim = Simulator(Arc::new(Inner {
        base_url: format!("http://{addr}"),
        http: reqwest::Client::builder().timeout(HTTP_TIMEOUT).build()?,
        tasks: Mutex::new(HashMap::new()),
        stats: Mutex::new(SimStats::default()),
        bursts: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
        runner,
        cfg,
    }));
    sim.resume().await?;
    let app = Router::new()
        .route("/v1", post(handle).get(ws::upgrade))
        .route("/video/{file}", get(serve_video))
        .with_state(sim.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "Runware simulator stopped");
        }
    });
    tracing::info!(%addr, "Runware simulator listening");
    Ok(SimHandle { addr, sim, task })
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn err(code: &str, message: impl Into<String>) -> ApiError {
    let mut e = ApiError::new(code, message);
    e.documentation = Some(DOCS.into());
    e
}

/// `reelay runware-sim`: the simulator alone, until Ctrl-C.
pub async fn run_standalone(
    settings: crate::config::Settings,
    port: Option<u16>,
) -> anyhow::Result<()> {
    let runner = Runner::new(&settings.media);
    runner
        .version()
        .await
        .map_err(|e| anyhow::anyhow!("ffmpeg is required by the simulator: {e}"))?;
    let addr: SocketAddr = format!(
        "{}:{}",
        settings.simulator.host,
        port.unwrap_or(settings.simulator.port)
    )
    .parse()?;
    let cfg = SimConfig::from_settings(&settings, settings.data.dir.join("runware-sim"));
    if cfg.faults != Faults::default() {
        println!("fault injection on: {:?}", cfg.faults);
    }
    let handle = start(cfg, runner, addr).await?;
    println!(
        "Runware simulator listening on {} (WebSocket: {})",
        handle.api_url(),
        handle.ws_url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}

#[cfg(test)]
use errors::code_for;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod ws_tests;
