//! The wire side: one POST handler for every task type (auth, faults,
//! bursts, envelopes) and the `videoURL` file server.

use super::*;

/// One answer to a batch of tasks, before it becomes an HTTP response (REST)
/// or a frame (WebSocket).
pub(super) struct Answer {
    pub status: StatusCode,
    pub data: Vec<Value>,
    pub errors: Vec<ApiError>,
}

impl Answer {
    /// Runware's envelope, leaving out keys that have nothing (its SDK treats
    /// any `errors` key as a failure, even an empty one).
    pub fn body(&self) -> Value {
        let mut body = serde_json::Map::new();
        if !self.data.is_empty() {
            body.insert("data".into(), Value::Array(self.data.clone()));
        }
        if !self.errors.is_empty() {
            body.insert(
                "errors".into(),
                serde_json::to_value(&self.errors).unwrap_or_default(),
            );
        }
        Value::Object(body)
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

pub(super) fn envelope(status: StatusCode, data: Vec<Value>, errors: Vec<ApiError>) -> Response {
    Answer {
        status,
        data,
        errors,
    }
    .into_response()
}

/// The answer to a call caught in a 429/503 burst.
pub(super) fn burst_answer(status: u16, task: Option<(&str, Uuid)>) -> Answer {
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
    Answer {
        status,
        data: vec![],
        errors: vec![e],
    }
}

pub(super) fn task_uuid_of(t: &Value) -> Option<Uuid> {
    t.get("taskUUID")
        .and_then(Value::as_str)
        .and_then(|u| Uuid::parse_str(u).ok())
}

pub(super) async fn handle(
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
    if !key_is_valid(&sim, &presented_key(&headers, &tasks)) {
        return envelope(StatusCode::UNAUTHORIZED, vec![], vec![invalid_api_key()]);
    }

    let faults = match request_faults(&sim, headers.get(FAULT_HEADER).map(header_text)) {
        Ok(f) => f,
        Err(e) => return envelope(StatusCode::BAD_REQUEST, vec![], vec![*e]),
    };
    sim.answer(tasks, &faults).await.into_response()
}

pub(super) fn header_text(h: &header::HeaderValue) -> Result<&str, String> {
    h.to_str()
        .map_err(|_| format!("{FAULT_HEADER} must be ASCII"))
}

/// The config's faults with a request's fault text laid over them (when the
/// config lets tests ask for faults).
pub(super) fn request_faults(
    sim: &Simulator,
    text: Option<Result<&str, String>>,
) -> Result<Faults, Box<ApiError>> {
    match text {
        Some(t) if sim.0.cfg.accept_fault_header => t
            .and_then(|t| sim.0.cfg.faults.with_header(t))
            .map_err(|m| {
                let mut e = err("invalidFaultHeader", m);
                e.parameter = Some(FAULT_HEADER.into());
                Box::new(e)
            }),
        _ => Ok(sim.0.cfg.faults.clone()),
    }
}

/// The key a client presented: the Bearer header, else an `authentication`
/// task leading the batch.
fn presented_key(headers: &HeaderMap, tasks: &[Value]) -> String {
    let header_key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    header_key.or_else(|| auth_key(tasks)).unwrap_or_default()
}

/// The `apiKey` of an `authentication` task leading the batch.
pub(super) fn auth_key(tasks: &[Value]) -> Option<String> {
    tasks.first().and_then(|t| {
        (t.get("taskType")?.as_str()? == "authentication")
            .then(|| t.get("apiKey")?.as_str().map(str::to_string))?
    })
}

pub(super) fn key_is_valid(sim: &Simulator, presented: &str) -> bool {
    constant_time_eq(presented.as_bytes(), sim.0.cfg.api_key.expose().as_bytes())
}

pub(super) fn invalid_api_key() -> ApiError {
    let mut e = err(
        "invalidApiKey",
        "Invalid API key. Get one at https://my.runware.ai/signup",
    );
    e.parameter = Some("apiKey".into());
    e.task_type = Some("authentication".into());
    e
}

impl Simulator {
    /// Every task type, bursts and per-call faults, shared by REST and
    /// WebSocket so both transports validate and fail alike.
    pub(super) async fn answer(&self, tasks: Vec<Value>, faults: &Faults) -> Answer {
        let sim = self;
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
                        return burst_answer(faults.burst_status, uuid.map(|u| (kind.as_str(), u)));
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
            return Answer {
                status: StatusCode::PAYMENT_REQUIRED,
                data: vec![],
                errors,
            };
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
                        Some(task) => {
                            let mut r = sim.report(&task);
                            data.append(&mut r.data);
                            errors.append(&mut r.errors);
                        }
                        None => {
                            let mut e =
                                err("taskNotFound", "No task with this taskUUID was found.");
                            e.task_uuid = uuid;
                            e.task_type = Some("getResponse".into());
                            e.parameter = Some("taskUUID".into());
                            errors.push(e);
                        }
                    }
                }
                Some("videoInference") => {
                    submitted = true;
                    match sim.accept(t, faults).await {
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
            return burst_answer(faults.burst_status, uuid.map(|u| (kind.as_str(), u)));
        }
        Answer {
            status,
            data,
            errors,
        }
    }
}

impl Simulator {
    /// A task's state as `getResponse` answers it: a `data` item, or an
    /// error in `errors[]` (where the task's `error_shape` puts it).
    pub(super) fn report(&self, task: &SimTask) -> Answer {
        let (data, errors) = match task.status {
            TaskStatus::Error => {
                let e = task
                    .error
                    .clone()
                    .unwrap_or_else(|| err("taskFailed", "The task failed."));
                match task.faults.error_shape {
                    ErrorShape::Errors => (vec![], vec![e]),
                    ErrorShape::Data => (vec![error_item(task, e)], vec![]),
                }
            }
            _ => (
                vec![serde_json::to_value(self.item(task)).unwrap_or_default()],
                vec![],
            ),
        };
        Answer {
            status: StatusCode::OK,
            data,
            errors,
        }
    }
}

/// A failure in the newer schema's shape: a `data` item with `status:
/// "error"` and the error nested in it.
pub(super) fn error_item(t: &SimTask, e: ApiError) -> Value {
    let item = TaskItem {
        task_type: Some("videoInference".into()),
        task_uuid: Some(t.task.task_uuid),
        status: Some(TaskStatus::Error),
        error: Some(e),
        ..Default::default()
    };
    serde_json::to_value(item).unwrap_or_default()
}

pub(super) async fn serve_video(
    State(sim): State<Simulator>,
    AxPath(file): AxPath<String>,
) -> Response {
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
