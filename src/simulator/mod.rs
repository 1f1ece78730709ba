//! A Runware stand-in that speaks the same wire protocol as
//! `https://api.runware.ai/v1`: POST of a JSON array, Bearer (or in-body
//! `authentication`) auth, `data`/`errors` envelopes, async acks,
//! `getResponse` polling, a webhook per result, and the result PUT to
//! `uploadEndpoint`. It renders real footage with ffmpeg.
//!
//! Tasks are kept on disk (`{state_dir}/{taskUUID}.json`) so that, like the
//! real service, a task outlives a restart of the process hosting it.
//!
//! Faults (latency, failures, 429/503 bursts, broken uploads, wrong sizes,
//! lost or repeated webhooks) are injected from the config or per request:
//! see [`faults`].

pub mod faults;
pub mod frames;

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
        http: reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()?,
        tasks: Mutex::new(HashMap::new()),
        stats: Mutex::new(SimStats::default()),
        bursts: Mutex::new(HashMap::new()),
        runner,
        cfg,
    }));
    sim.resume().await?;
    let app = Router::new()
        .route("/v1", post(handle))
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

/// Runware's envelope, leaving out keys that have nothing (its SDK treats
/// any `errors` key in a 200 as a failure, even an empty one).
fn envelope(status: StatusCode, data: Vec<Value>, errors: Vec<ApiError>) -> Response {
    let mut body = serde_json::Map::new();
    if !data.is_empty() {
        body.insert("data".into(), Value::Array(data));
    }
    if !errors.is_empty() {
        body.insert(
            "errors".into(),
            serde_json::to_value(errors).unwrap_or_default(),
        );
    }
    (status, Json(Value::Object(body))).into_response()
}

/// The answer to a call caught in a 429/503 burst.
fn burst_response(status: u16, task: Option<(&str, Uuid)>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut e = match status {
        StatusCode::TOO_MANY_REQUESTS => err(
            "rateLimitExceeded",
            "Too Many Requests - Queue capacity exceeded, implement retry with exponential backoff.",
        ),
        StatusCode::SERVICE_UNAVAILABLE => err(
            "serviceUnavailable",
            "Service Unavailable - Temporary capacity constraint, retry recommended.",
        ),
        StatusCode::GATEWAY_TIMEOUT => err(
            "timeout",
            "Gateway Timeout - Request exceeded maximum queue wait time.",
        ),
        _ => err("internalServerError", "The server could not answer the request."),
    };
    if let Some((task_type, uuid)) = task {
        e.task_type = Some(task_type.to_string());
        e.task_uuid = Some(uuid);
    }
    envelope(status, vec![], vec![e])
}

fn task_uuid_of(t: &Value) -> Option<Uuid> {
    t.get("taskUUID")
        .and_then(Value::as_str)
        .and_then(|u| Uuid::parse_str(u).ok())
}

async fn handle(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(Value::Array(tasks)) = serde_json::from_slice::<Value>(&body) else {
        return envelope(
            StatusCode::BAD_REQUEST,
            vec![],
            vec![err(
                "invalidPayload",
                "The request body must be a JSON array of task objects.",
            )],
        );
    };
    let header_key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let body_key = tasks.first().and_then(|t| {
        (t.get("taskType")?.as_str()? == "authentication")
            .then(|| t.get("apiKey")?.as_str().map(str::to_string))?
    });
    let presented = header_key.or(body_key).unwrap_or_default();
    if !constant_time_eq(presented.as_bytes(), sim.0.cfg.api_key.expose().as_bytes()) {
        let mut e = err(
            "invalidApiKey",
            "Invalid API key. Get one at https://my.runware.ai/signup",
        );
        e.parameter = Some("apiKey".into());
        e.task_type = Some("authentication".into());
        return envelope(StatusCode::UNAUTHORIZED, vec![], vec![e]);
    }

    let faults = match headers.get(FAULT_HEADER) {
        Some(h) if sim.0.cfg.accept_fault_header => {
            match h
                .to_str()
                .map_err(|_| format!("{FAULT_HEADER} must be ASCII"))
                .and_then(|h| sim.0.cfg.faults.with_header(h))
            {
                Ok(f) => f,
                Err(m) => {
                    let mut e = err("invalidFaultHeader", m);
                    e.parameter = Some(FAULT_HEADER.into());
                    return envelope(StatusCode::BAD_REQUEST, vec![], vec![e]);
                }
            }
        }
        _ => sim.0.cfg.faults.clone(),
    };

    // The call's kind and task, for counting and for bursts.
    let first = tasks.iter().find_map(|t| {
        let kind = t.get("taskType").and_then(Value::as_str)?;
        matches!(kind, "videoInference" | "getResponse")
            .then(|| (kind.to_string(), task_uuid_of(t)))
    });
    {
        let mut stats = sim.0.stats.lock().unwrap();
        for t in &tasks {
            let Some(uuid) = task_uuid_of(t) else {
                continue;
            };
            match t.get("taskType").and_then(Value::as_str) {
                Some("videoInference") => *stats.submits.entry(uuid).or_default() += 1,
                Some("getResponse") => *stats.polls.entry(uuid).or_default() += 1,
                _ => {}
            }
        }
    }
    let is_submit = first.as_ref().is_some_and(|(k, _)| k == "videoInference");

    let mut burst_after = false;
    if let Some((kind, uuid)) = &first {
        let hit = faults.burst_status != 0
            && match faults.burst_on {
                BurstOn::Submit => is_submit,
                BurstOn::Poll => !is_submit,
                BurstOn::All => true,
            };
        if hit {
            let key = format!("{kind}:{}", uuid.map(|u| u.to_string()).unwrap_or_default());
            let mut bursts = sim.0.bursts.lock().unwrap();
            let n = bursts.entry(key).or_default();
            if *n < faults.burst_count {
                *n += 1;
                if is_submit && faults.burst_after_create {
                    burst_after = true;
                } else {
                    return burst_response(faults.burst_status, uuid.map(|u| (kind.as_str(), u)));
                }
            }
        }
    }

    if is_submit && faults.insufficient_credits {
        let errors = tasks
            .iter()
            .filter(|t| t.get("taskType").and_then(Value::as_str) == Some("videoInference"))
            .map(|t| {
                let mut e = err(
                    "insufficientCredits",
                    "Insufficient credits. Add funds to your account at https://my.runware.ai/wallet",
                );
                e.task_type = Some("videoInference".into());
                e.task_uuid = task_uuid_of(t);
                e
            })
            .collect();
        return envelope(StatusCode::PAYMENT_REQUIRED, vec![], errors);
    }

    let mut data = Vec::new();
    let mut errors = Vec::new();
    let mut status = StatusCode::OK;
    let mut submitted = false;
    for t in tasks {
        match t.get("taskType").and_then(Value::as_str) {
            Some("authentication") => {}
            Some("ping") => data.push(json!({"taskType": "ping", "pong": true})),
            Some("getResponse") => {
                let uuid = task_uuid_of(&t);
                match uuid.and_then(|u| sim.snapshot(u)) {
                    Some(task) => match task.status {
                        TaskStatus::Error => {
                            let e = task
                                .error
                                .clone()
                                .unwrap_or_else(|| err("taskFailed", "The task failed."));
                            match task.faults.error_shape {
                                ErrorShape::Errors => errors.push(e),
                                ErrorShape::Data => data.push(error_item(&task, e)),
                            }
                        }
                        _ => data.push(serde_json::to_value(sim.item(&task)).unwrap_or_default()),
                    },
                    None => {
                        let mut e = err("taskNotFound", "No task with this taskUUID was found.");
                        e.task_uuid = uuid;
                        e.task_type = Some("getResponse".into());
                        e.parameter = Some("taskUUID".into());
                        errors.push(e);
                    }
                }
            }
            Some("videoInference") => {
                submitted = true;
                match sim.accept(t, &faults).await {
                    Ok(ack) => data.push(ack),
                    Err(mut es) => {
                        status = StatusCode::BAD_REQUEST;
                        errors.append(&mut es);
                    }
                }
            }
            other => {
                status = StatusCode::BAD_REQUEST;
                let mut e = err(
                    "unsupportedTaskType",
                    format!("Unsupported taskType {other:?}."),
                );
                e.parameter = Some("taskType".into());
                errors.push(e);
            }
        }
    }
    let delay = if submitted {
        faults.ack_delay_ms
    } else {
        faults.poll_delay_ms
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if burst_after {
        let (kind, uuid) = first.expect("a burst needs a call");
        return burst_response(faults.burst_status, uuid.map(|u| (kind.as_str(), u)));
    }
    envelope(status, data, errors)
}

/// A failure in the newer schema's shape: a `data` item with `status:
/// "error"` and the error nested in it.
fn error_item(t: &SimTask, e: ApiError) -> Value {
    let item = TaskItem {
        task_type: Some("videoInference".into()),
        task_uuid: Some(t.task.task_uuid),
        status: Some(TaskStatus::Error),
        error: Some(e),
        ..Default::default()
    };
    serde_json::to_value(item).unwrap_or_default()
}

/// The parameter's type as Runware's error objects name it.
fn param_type(path: &str) -> Option<&'static str> {
    let last = path.rsplit('.').next().unwrap_or(path);
    let (name, indexed) = match last.split_once('[') {
        Some((n, _)) => (n, true),
        None => (last, false),
    };
    if indexed {
        return Some(match name {
            "multiPrompt" | "elements" => "object",
            _ => "string",
        });
    }
    Some(match name {
        "duration" | "width" | "height" | "numberResults" | "outputQuality" | "ttl" => "integer",
        "checkContent" | "sound" | "includeCost" => "boolean",
        "frameImages" | "referenceVideos" | "elements" | "multiPrompt" | "images" | "videos"
        | "voices" | "tags" => "array",
        "inputs" | "safety" | "providerSettings" | "klingai" => "object",
        "frame" => "string|integer",
        "positivePrompt" | "prompt" | "model" | "outputType" | "outputFormat"
        | "deliveryMethod" | "resolution" | "uploadEndpoint" | "webhookURL" | "mode" | "video"
        | "id" | "image" | "frontalImage" | "taskType" => "string",
        _ => return None,
    })
}

/// The values a parameter accepts, where they are a short list.
fn allowed_values(path: &str, model: &ModelSpec) -> Option<Vec<Value>> {
    let last = path.rsplit('.').next().unwrap_or(path);
    Some(match last {
        "width" | "height" => model.sizes.iter().map(|s| json!(s)).collect(),
        "duration" => (model.min_duration..=model.max_duration)
            .map(|d| json!(d))
            .collect(),
        "numberResults" => (1..=4).map(|n| json!(n)).collect(),
        "outputFormat" => vec![json!("MP4"), json!("WEBM"), json!("MOV")],
        "outputType" => vec![json!("URL")],
        "deliveryMethod" => vec![json!("async")],
        "mode" => vec![json!("none"), json!("fast"), json!("full")],
        "resolution" => model.resolutions.iter().map(|r| json!(r)).collect(),
        "model" => vec![json!(model.air)],
        "frame" => vec![json!("first"), json!("last"), json!(0), json!(-1)],
        _ => return None,
    })
}

/// One validation failure as Runware answers it.
fn validation_error(f: &FieldError, task_uuid: Option<Uuid>, model: &ModelSpec) -> ApiError {
    let mut e = err(
        &code_for(&f.path, &f.rule),
        format!("Invalid value for {} parameter: {}", f.path, f.rule),
    );
    let anchor = f
        .path
        .split(['.', '['])
        .next()
        .unwrap_or(&f.path)
        .to_ascii_lowercase();
    e.documentation = Some(format!("{DOCS}#request-{anchor}"));
    e.parameter = Some(f.path.clone());
    e.param_type = param_type(&f.path).map(str::to_string);
    e.allowed_values = allowed_values(&f.path, model);
    e.task_uuid = task_uuid;
    e.task_type = Some("videoInference".into());
    e
}

impl Simulator {
    fn snapshot(&self, uuid: Uuid) -> Option<SimTask> {
        self.0.tasks.lock().unwrap().get(&uuid).cloned()
    }

    /// What the simulator has seen so far (this process only).
    pub fn stats(&self) -> SimStats {
        self.0.stats.lock().unwrap().clone()
    }

    /// Every task it knows, persisted ones from earlier runs included.
    pub fn task_uuids(&self) -> Vec<Uuid> {
        self.0.tasks.lock().unwrap().keys().copied().collect()
    }

    fn count(&self, f: impl FnOnce(&mut SimStats)) {
        f(&mut self.0.stats.lock().unwrap());
    }

    fn item(&self, t: &SimTask) -> TaskItem {
        let mut item = TaskItem {
            task_type: Some("videoInference".into()),
            task_uuid: Some(t.task.task_uuid),
            status: Some(t.status.clone()),
            ..Default::default()
        };
        match t.status {
            TaskStatus::Success => {
                let ext = t
                    .task
                    .output_format
                    .unwrap_or(OutputFormat::Mp4)
                    .extension();
                item.video_uuid = Some(t.video_uuid);
                item.video_url = Some(format!("{}/video/{}.{ext}", self.0.base_url, t.video_uuid));
                item.seed = Some(t.seed);
                item.cost = t.cost;
                item.nsfw_content = Some(false);
            }
            _ => item.progress = Some(t.progress as f64),
        }
        item
    }

    /// Validates and registers a new task; answers the ack item.
    async fn accept(&self, raw: Value, faults: &Faults) -> Result<Value, Vec<ApiError>> {
        let task_uuid = task_uuid_of(&raw);
        let model = &self.0.cfg.model;
        let task: VideoInferenceTask = match serde_path_to_error::deserialize(raw) {
            Ok(t) => t,
            Err(e) => {
                let inner = e.inner().to_string();
                let path = e.path().to_string();
                let mut er = if inner.starts_with("unknown field") {
                    err("unknownParameter", format!("Unknown parameter: {inner}"))
                } else if inner.starts_with("missing field") {
                    err("missingParameter", format!("Missing parameter: {inner}"))
                } else {
                    err("invalidParameter", format!("Invalid value: {inner}"))
                };
                er.param_type = param_type(&path).map(str::to_string);
                er.parameter = Some(path);
                er.task_uuid = task_uuid;
                er.task_type = Some("videoInference".into());
                return Err(vec![er]);
            }
        };
        if let Err(fields) = validate_task(&task, model) {
            return Err(fields
                .iter()
                .map(|f| validation_error(f, Some(task.task_uuid), model))
                .collect());
        }
        let uuid = task.task_uuid;
        let sim_task = {
            let mut tasks = self.0.tasks.lock().unwrap();
            if tasks.contains_key(&uuid) {
                let mut e = err(
                    "conflictTaskUUID",
                    "A task with this taskUUID already exists.",
                );
                e.parameter = Some("taskUUID".into());
                e.param_type = Some("string".into());
                e.task_uuid = Some(uuid);
                e.task_type = Some("videoInference".into());
                return Err(vec![e]);
            }
            let now = now_ms();
            let duration = task.duration.unwrap_or(5) as f64;
            let t = SimTask {
                cost: task
                    .include_cost
                    .unwrap_or(false)
                    .then(|| (model.price_per_second * duration * 10000.0).round() / 10000.0),
                seed: rand::random::<u32>() as i64,
                video_uuid: Uuid::new_v4(),
                status: TaskStatus::Processing,
                progress: 0,
                created_at_ms: now,
                error: None,
                expires_at_ms: None,
                file: None,
                faults: faults.for_task(tasks.len() as u64 + 1),
                task,
            };
            tasks.insert(uuid, t.clone());
            t
        };
        self.count(|s| s.tasks_created += 1);
        self.persist(&sim_task).await;
        let me = self.clone();
        tokio::spawn(async move { me.generate(uuid).await });
        Ok(json!({"taskType": "videoInference", "taskUUID": uuid}))
    }

    async fn persist(&self, t: &SimTask) {
        let path = self
            .0
            .cfg
            .state_dir
            .join(format!("{}.json", t.task.task_uuid));
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(t).unwrap_or_default();
        if let Err(e) = async {
            tokio::fs::write(&tmp, &bytes).await?;
            tokio::fs::rename(&tmp, &path).await
        }
        .await
        {
            tracing::warn!(error = %e, "simulator could not persist a task");
        }
    }

    async fn update(&self, uuid: Uuid, f: impl FnOnce(&mut SimTask)) -> Option<SimTask> {
        let t = {
            let mut tasks = self.0.tasks.lock().unwrap();
            let t = tasks.get_mut(&uuid)?;
            f(t);
            t.clone()
        };
        self.persist(&t).await;
        Some(t)
    }

    async fn resume(&self) -> anyhow::Result<()> {
        let mut rd = tokio::fs::read_dir(&self.0.cfg.state_dir).await?;
        let mut pending = Vec::new();
        while let Some(e) = rd.next_entry().await? {
            if e.path().extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let Ok(bytes) = tokio::fs::read(e.path()).await else {
                continue;
            };
            let Ok(t) = serde_json::from_slice::<SimTask>(&bytes) else {
                continue;
            };
            if t.status == TaskStatus::Processing {
                pending.push(t.task.task_uuid);
            }
            self.0.tasks.lock().unwrap().insert(t.task.task_uuid, t);
        }
        for uuid in pending {
            tracing::info!(task = %uuid, "simulator resuming a task after restart");
            let me = self.clone();
            tokio::spawn(async move { me.generate(uuid).await });
        }
        Ok(())
    }

    /// Runs one task to its end: wait, render, upload, report, webhook.
    async fn generate(&self, uuid: Uuid) {
        let Some(t) = self.snapshot(uuid) else { return };
        let steps = 10u8;
        let wait = Duration::from_secs_f64(self.0.cfg.generation_secs.max(0.0) / steps as f64);
        for i in 1..=steps {
            tokio::time::sleep(wait).await;
            self.update(uuid, |t| t.progress = t.progress.max(i * 7))
                .await;
        }
        if t.faults.stall {
            tracing::info!(task = %uuid, "simulated task stalls (fault)");
            return;
        }
        let result = if t.faults.fail_code.is_empty() {
            self.render_and_upload(&t).await
        } else {
            let mut e = err(&t.faults.fail_code, t.faults.failure_message());
            e.task_uuid = Some(uuid);
            e.task_type = Some("videoInference".into());
            e.status = Some("error".into());
            Err(e)
        };
        let done = match result {
            Ok(file) => {
                self.update(uuid, |t| {
                    t.status = TaskStatus::Success;
                    t.progress = 100;
                    t.file = Some(file);
                    t.expires_at_ms = t.task.ttl.map(|ttl| now_ms() + ttl as i64 * 1000);
                })
                .await
            }
            Err(e) => {
                tracing::warn!(task = %uuid, code = %e.code, error = %e.message, "simulated task failed");
                self.update(uuid, |t| {
                    t.status = TaskStatus::Error;
                    t.error = Some(e);
                })
                .await
            }
        };
        if let Some(t) = done {
            let deliveries = match t.faults.webhook {
                WebhookFault::None => 0,
                WebhookFault::Once => 1,
                WebhookFault::Twice => 2,
            };
            for _ in 0..deliveries {
                self.send_webhook(&t).await;
            }
        }
    }

    /// Writes the frame images of `task` next to `out` and says where they
    /// go; UUID references have nothing to fetch and are skipped.
    async fn frame_files(
        &self,
        task: &VideoInferenceTask,
        stem: &str,
    ) -> Result<(Option<PathBuf>, Option<PathBuf>), String> {
        let mut first = None;
        let mut last = None;
        let images = task
            .inputs
            .as_ref()
            .and_then(|i| i.frame_images.as_ref())
            .cloned()
            .unwrap_or_default();
        for (i, item) in images.iter().enumerate() {
            let is_first = item.frame().map(FramePosition::is_first).unwrap_or(i == 0);
            let Some(bytes) = frames::load(&self.0.http, item.image())
                .await
                .map_err(|e| format!("inputs.frameImages[{i}]: {e}"))?
            else {
                continue;
            };
            let ext = frames::extension(&bytes).ok_or_else(|| {
                format!("inputs.frameImages[{i}]: not a PNG, JPEG, WebP, GIF or BMP image")
            })?;
            let which = if is_first { "first" } else { "last" };
            let path = self.0.cfg.state_dir.join(format!("{stem}-{which}.{ext}"));
            tokio::fs::write(&path, &bytes)
                .await
                .map_err(|e| e.to_string())?;
            if is_first {
                first = Some(path);
            } else {
                last = Some(path);
            }
        }
        Ok((first, last))
    }

    async fn render_and_upload(&self, t: &SimTask) -> Result<PathBuf, ApiError> {
        let task = &t.task;
        let format = task.output_format.unwrap_or(OutputFormat::Mp4);
        let requested = match (task.width, task.height) {
            (Some(w), Some(h)) => (w, h),
            _ => self
                .0
                .cfg
                .model
                .parsed_sizes()
                .first()
                .copied()
                .unwrap_or((3840, 2160)),
        };
        let (width, height) = t.faults.deliver_dimensions().unwrap_or(requested);
        let klingai = task
            .provider_settings
            .as_ref()
            .and_then(|p| p.klingai.as_ref());
        let shots = klingai
            .and_then(|k| k.multi_prompt.as_ref())
            .map(|m| m.iter().map(|s| s.duration).collect())
            .unwrap_or_default();
        let with_id = |mut e: ApiError| {
            e.task_uuid = Some(task.task_uuid);
            e.task_type = Some("videoInference".into());
            e.status = Some("error".into());
            e
        };
        let stem = t.video_uuid.to_string();
        let (first_frame, last_frame) = self.frame_files(task, &stem).await.map_err(|m| {
            let mut e = with_id(err("invalidFrameImages", m));
            e.parameter = Some("inputs.frameImages".into());
            e
        })?;
        let spec = ClipSpec {
            width,
            height,
            duration_secs: task.duration.unwrap_or(5),
            fps: self.0.cfg.model.fps,
            sound: klingai.and_then(|k| k.sound).unwrap_or(false),
            format: match format {
                OutputFormat::Mp4 => ClipFormat::Mp4,
                OutputFormat::Webm => ClipFormat::Webm,
                OutputFormat::Mov => ClipFormat::Mov,
            },
            quality: task.output_quality.unwrap_or(95).clamp(20, 99) as u8,
            seed: t.seed as u64,
            shots,
            first_frame,
            last_frame,
        };
        let out = self
            .0
            .cfg
            .state_dir
            .join(format!("{stem}.{}", format.extension()));
        render_clip(&self.0.runner, &spec, &out, RENDER_TIMEOUT)
            .await
            .map_err(|e| {
                with_id(err(
                    "providerError",
                    format!("The provider failed to generate the video: {e}"),
                ))
            })?;
        if let Some(url) = &task.upload_endpoint {
            if t.faults.upload == UploadFault::None {
                tracing::info!(task = %task.task_uuid, "simulated upload skipped (fault)");
            } else {
                let truncate = t.faults.upload == UploadFault::Truncated;
                self.upload(task.task_uuid, url, &out, format, truncate)
                    .await
                    .map_err(|m| {
                        with_id(err(
                            "uploadFailed",
                            format!("Uploading to uploadEndpoint failed: {m}"),
                        ))
                    })?;
            }
        }
        Ok(out)
    }

    /// PUTs the raw bytes (only the first half when `truncate`), retrying
    /// connection failures and 5xx for a while (the receiving store may be
    /// restarting).
    async fn upload(
        &self,
        task_uuid: Uuid,
        url: &str,
        file: &std::path::Path,
        format: OutputFormat,
        truncate: bool,
    ) -> Result<(), String> {
        use tokio::io::AsyncReadExt;
        let mut last = String::new();
        for attempt in 0..UPLOAD_ATTEMPTS {
            let f = tokio::fs::File::open(file)
                .await
                .map_err(|e| e.to_string())?;
            let full = f.metadata().await.map_err(|e| e.to_string())?.len();
            let len = if truncate { full / 2 } else { full };
            let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(f.take(len)));
            self.count(|s| *s.uploads.entry(task_uuid).or_default() += 1);
            match self
                .0
                .http
                .put(url)
                .header(header::CONTENT_TYPE, format.mime())
                .header(header::CONTENT_LENGTH, len)
                .body(body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().is_client_error() => {
                    return Err(format!(
                        "HTTP {}: {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    ))
                }
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(UPLOAD_BACKOFF.delay(attempt)).await;
        }
        Err(last)
    }

    /// Posts the task's outcome to its `webhookURL`, once plus a retry after
    /// each delay of `webhook_retry_ms` while the answer is not 2xx.
    async fn send_webhook(&self, t: &SimTask) {
        let Some(url) = &t.task.webhook_url else {
            return;
        };
        let uuid = t.task.task_uuid;
        let body = match (&t.status, t.faults.error_shape) {
            (TaskStatus::Error, ErrorShape::Errors) => json!({"errors": [t.error]}),
            (TaskStatus::Error, ErrorShape::Data) => json!({"data": [error_item(
                t,
                t.error.clone().unwrap_or_else(|| err("taskFailed", "The task failed."))
            )]}),
            _ => json!({"data": [self.item(t)]}),
        };
        // An explicit table, not a Backoff: `simulator.webhook_retry_ms` lets a
        // test reproduce any delivery rhythm Runware might use.
        let delays = &self.0.cfg.webhook_retry_ms;
        for attempt in 0..=delays.len() {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(delays[attempt - 1])).await;
            }
            self.count(|s| *s.webhook_attempts.entry(uuid).or_default() += 1);
            match self.0.http.post(url).json(&body).send().await {
                Ok(r) if r.status().is_success() => {
                    self.count(|s| *s.webhooks_accepted.entry(uuid).or_default() += 1);
                    return;
                }
                Ok(r) => tracing::debug!(status = %r.status(), "webhook not accepted; retrying"),
                Err(e) => tracing::debug!(error = %e, "webhook failed; retrying"),
            }
        }
        tracing::warn!(task = %uuid, "webhook delivery gave up");
    }
}

/// Runware-style error code for a parameter: `invalidDuration`, or
/// `missingPositivePrompt` when a required one is absent.
fn code_for(path: &str, rule: &str) -> String {
    let field = path
        .rsplit('.')
        .next()
        .unwrap_or(path)
        .split('[')
        .next()
        .unwrap_or(path);
    let prefix = if rule.starts_with("is required") {
        "missing"
    } else {
        "invalid"
    };
    let mut c = field.chars();
    match c.next() {
        Some(first) => format!("{prefix}{}{}", first.to_ascii_uppercase(), c.as_str()),
        None => "invalidParameter".into(),
    }
}

async fn serve_video(State(sim): State<Simulator>, AxPath(file): AxPath<String>) -> Response {
    let uuid = file.split('.').next().and_then(|u| Uuid::parse_str(u).ok());
    let task = uuid.and_then(|u| {
        sim.0
            .tasks
            .lock()
            .unwrap()
            .values()
            .find(|t| t.video_uuid == u)
            .cloned()
    });
    let Some(t) = task else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if t.expires_at_ms.is_some_and(|e| now_ms() > e) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Some(path) = t.file else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match tokio::fs::File::open(&path).await {
        Ok(f) => {
            let mime = t.task.output_format.unwrap_or(OutputFormat::Mp4).mime();
            (
                [(header::CONTENT_TYPE, mime)],
                Body::from_stream(tokio_util::io::ReaderStream::new(f)),
            )
                .into_response()
        }
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
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
    println!("Runware simulator listening on {}", handle.api_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}

#[cfg(test)]
mod tests;
