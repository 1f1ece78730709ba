//! A task from acceptance to its end: validate and register, persist,
//! resume after restart, generate (render, upload), report, webhook.

use super::errors::{param_type, validation_error};
use super::wire::{error_item, task_uuid_of};
use super::*;

impl Simulator {
    pub(super) fn snapshot(&self, uuid: Uuid) -> Option<SimTask> {
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

    pub(super) fn count(&self, f: impl FnOnce(&mut SimStats)) {
        f(&mut self.0.stats.lock().unwrap());
    }

    pub(super) fn item(&self, t: &SimTask) -> TaskItem {
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
    pub(super) async fn accept(&self, raw: Value, faults: &Faults) -> Result<Value, Vec<ApiError>> {
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
                seed: faults.seed.unwrap_or_else(rand::random::<u32>) as i64,
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

    pub(super) async fn persist(&self, t: &SimTask) {
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

    pub(super) async fn update(&self, uuid: Uuid, f: impl FnOnce(&mut SimTask)) -> Option<SimTask> {
        let t = {
            let mut tasks = self.0.tasks.lock().unwrap();
            let t = tasks.get_mut(&uuid)?;
            f(t);
            t.clone()
        };
        self.persist(&t).await;
        Some(t)
    }

    pub(super) async fn resume(&self) -> anyhow::Result<()> {
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
    pub(super) async fn generate(&self, uuid: Uuid) {
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
    pub(super) async fn frame_files(
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

    pub(super) async fn render_and_upload(&self, t: &SimTask) -> Result<PathBuf, ApiError> {
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
    pub(super) async fn upload(
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
    pub(super) async fn send_webhook(&self, t: &SimTask) {
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
