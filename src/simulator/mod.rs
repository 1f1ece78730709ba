//! A Runware stand-in that speaks the same wire protocol as
//! `https://api.runware.ai/v1`: POST of a JSON array, Bearer (or in-body
//! `authentication`) auth, `data`/`errors` envelopes, async acks,
//! `getResponse` polling, a webhook per result, and the result PUT to
//! `uploadEndpoint`. It renders real footage with ffmpeg.
//!
//! Tasks are kept on disk (`{state_dir}/{taskUUID}.json`) so that, like the
//! real service, a task outlives a restart of the process hosting it.

use crate::media::process::Runner;
use crate::media::synth::{render_clip, ClipFormat, ClipSpec};
use crate::runware::validate::validate_task;
use crate::runware::{ApiError, ModelSpec, OutputFormat, TaskItem, TaskStatus, VideoInferenceTask};
use crate::secret::{constant_time_eq, Secret};
use axum::body::Body;
use axum::extract::{Path as AxPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

const DOCS: &str = "https://runware.ai/docs/en/video-inference/api-reference";

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub api_key: Secret,
    /// Simulated generation time before rendering starts.
    pub generation_secs: f64,
    pub model: ModelSpec,
    /// Where tasks and rendered files are kept.
    pub state_dir: PathBuf,
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
}

struct Inner {
    cfg: SimConfig,
    runner: Runner,
    http: reqwest::Client,
    tasks: Mutex<HashMap<Uuid, SimTask>>,
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
    tokio::fs::create_dir_all(&cfg.state_dir).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("Runware simulator cannot listen on {addr}: {e}"))?;
    let addr = listener.local_addr()?;
    let sim = Simulator(Arc::new(Inner {
        base_url: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?,
        tasks: Mutex::new(HashMap::new()),
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

    let mut data = Vec::new();
    let mut errors = Vec::new();
    let mut status = StatusCode::OK;
    for t in tasks {
        match t.get("taskType").and_then(Value::as_str) {
            Some("authentication") => {}
            Some("ping") => data.push(json!({"taskType": "ping", "pong": true})),
            Some("getResponse") => {
                let uuid = t
                    .get("taskUUID")
                    .and_then(Value::as_str)
                    .and_then(|u| Uuid::parse_str(u).ok());
                match uuid.and_then(|u| sim.snapshot(u)) {
                    Some(task) => match task.status {
                        TaskStatus::Error => errors.push(
                            task.error
                                .clone()
                                .unwrap_or_else(|| err("taskFailed", "The task failed.")),
                        ),
                        _ => data.push(serde_json::to_value(sim.item(&task)).unwrap_or_default()),
                    },
                    None => {
                        let mut e = err("taskNotFound", "No task with this taskUUID was found.");
                        e.task_uuid = uuid;
                        e.parameter = Some("taskUUID".into());
                        errors.push(e);
                    }
                }
            }
            Some("videoInference") => match sim.accept(t).await {
                Ok(ack) => data.push(ack),
                Err(mut es) => {
                    status = StatusCode::BAD_REQUEST;
                    errors.append(&mut es);
                }
            },
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
    envelope(status, data, errors)
}

impl Simulator {
    fn snapshot(&self, uuid: Uuid) -> Option<SimTask> {
        self.0.tasks.lock().unwrap().get(&uuid).cloned()
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
    async fn accept(&self, raw: Value) -> Result<Value, Vec<ApiError>> {
        let task_uuid = raw
            .get("taskUUID")
            .and_then(Value::as_str)
            .and_then(|u| Uuid::parse_str(u).ok());
        let task: VideoInferenceTask = match serde_path_to_error::deserialize(raw) {
            Ok(t) => t,
            Err(e) => {
                let mut er = err("invalidParameter", format!("Invalid value: {}", e.inner()));
                er.parameter = Some(e.path().to_string());
                er.task_uuid = task_uuid;
                return Err(vec![er]);
            }
        };
        if let Err(fields) = validate_task(&task, &self.0.cfg.model) {
            return Err(fields
                .into_iter()
                .map(|f| {
                    let mut e = err(
                        &code_for(&f.path),
                        format!("Invalid value for {} parameter: {}", f.path, f.rule),
                    );
                    e.parameter = Some(f.path.clone());
                    e.task_uuid = Some(task.task_uuid);
                    e.task_type = Some("videoInference".into());
                    if f.path == "width" || f.path == "height" {
                        e.allowed_values =
                            Some(self.0.cfg.model.sizes.iter().map(|s| json!(s)).collect());
                    }
                    e
                })
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
                e.task_uuid = Some(uuid);
                return Err(vec![e]);
            }
            let now = now_ms();
            let duration = task.duration.unwrap_or(5) as f64;
            let t = SimTask {
                cost: task.include_cost.unwrap_or(false).then(|| {
                    (self.0.cfg.model.price_per_second * duration * 10000.0).round() / 10000.0
                }),
                seed: rand::random::<u32>() as i64,
                video_uuid: Uuid::new_v4(),
                status: TaskStatus::Processing,
                progress: 0,
                created_at_ms: now,
                error: None,
                expires_at_ms: None,
                file: None,
                task,
            };
            tasks.insert(uuid, t.clone());
            t
        };
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
        let result = self.render_and_upload(&t).await;
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
                tracing::warn!(task = %uuid, error = %e.message, "simulated task failed");
                self.update(uuid, |t| {
                    t.status = TaskStatus::Error;
                    t.error = Some(e);
                })
                .await
            }
        };
        if let Some(t) = done {
            self.send_webhook(&t).await;
        }
    }

    async fn render_and_upload(&self, t: &SimTask) -> Result<PathBuf, ApiError> {
        let task = &t.task;
        let format = task.output_format.unwrap_or(OutputFormat::Mp4);
        let (width, height) = match (task.width, task.height) {
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
        let klingai = task
            .provider_settings
            .as_ref()
            .and_then(|p| p.klingai.as_ref());
        let shots = klingai
            .and_then(|k| k.multi_prompt.as_ref())
            .map(|m| m.iter().map(|s| s.duration).collect())
            .unwrap_or_default();
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
        };
        let out = self
            .0
            .cfg
            .state_dir
            .join(format!("{}.{}", t.video_uuid, format.extension()));
        let with_id = |mut e: ApiError| {
            e.task_uuid = Some(task.task_uuid);
            e.status = Some("error".into());
            e
        };
        render_clip(&self.0.runner, &spec, &out, Duration::from_secs(600))
            .await
            .map_err(|e| {
                with_id(err(
                    "providerError",
                    format!("The provider failed to generate the video: {e}"),
                ))
            })?;
        if let Some(url) = &task.upload_endpoint {
            self.upload(url, &out, format).await.map_err(|m| {
                with_id(err(
                    "uploadFailed",
                    format!("Uploading to uploadEndpoint failed: {m}"),
                ))
            })?;
        }
        Ok(out)
    }

    /// PUTs the raw bytes, retrying connection failures and 5xx for a while
    /// (the receiving store may be restarting).
    async fn upload(
        &self,
        url: &str,
        file: &std::path::Path,
        format: OutputFormat,
    ) -> Result<(), String> {
        let mut delay = Duration::from_millis(500);
        let mut last = String::new();
        for _ in 0..10 {
            let f = tokio::fs::File::open(file)
                .await
                .map_err(|e| e.to_string())?;
            let len = f.metadata().await.map_err(|e| e.to_string())?.len();
            let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(f));
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
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(8));
        }
        Err(last)
    }

    async fn send_webhook(&self, t: &SimTask) {
        let Some(url) = &t.task.webhook_url else {
            return;
        };
        let body = match t.status {
            TaskStatus::Error => json!({"errors": [t.error]}),
            _ => json!({"data": [self.item(t)]}),
        };
        let mut delay = Duration::from_millis(500);
        for _ in 0..6 {
            match self.0.http.post(url).json(&body).send().await {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => tracing::debug!(status = %r.status(), "webhook not accepted; retrying"),
                Err(e) => tracing::debug!(error = %e, "webhook failed; retrying"),
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        tracing::warn!(task = %t.task.task_uuid, "webhook delivery gave up");
    }
}

/// Runware-style error code for a parameter, e.g. `invalidDuration`.
fn code_for(path: &str) -> String {
    let field = path
        .rsplit('.')
        .next()
        .unwrap_or(path)
        .split('[')
        .next()
        .unwrap_or(path);
    let mut c = field.chars();
    match c.next() {
        Some(first) => format!("invalid{}{}", first.to_ascii_uppercase(), c.as_str()),
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
    let handle = start(
        SimConfig {
            api_key: settings.simulator.api_key.clone(),
            generation_secs: settings.simulator.generation_secs,
            model: settings.runware.model_spec.clone(),
            state_dir: settings.data.dir.join("runware-sim"),
        },
        runner,
        addr,
    )
    .await?;
    println!("Runware simulator listening on {}", handle.api_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_follow_runware_naming() {
        assert_eq!(code_for("duration"), "invalidDuration");
        assert_eq!(
            code_for("providerSettings.klingai.multiPrompt[2].duration"),
            "invalidDuration"
        );
        assert_eq!(code_for("positivePrompt"), "invalidPositivePrompt");
    }
}
