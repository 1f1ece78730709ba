//! The wire side: one POST handler for every task type (auth, faults,
//! bursts, envelopes) and the `videoURL` file server.

use super::*;

/// Runware's envelope, leaving out keys that have nothing (its SDK treats
/// any `errors` key in a 200 as a failure, even an empty one).
pub(super) fn envelope(status: StatusCode, data: Vec<Value>, errors: Vec<ApiError>) -> Response {
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
pub(super) fn burst_response(status: u16, task: Option<(&str, Uuid)>) -> Response {
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
