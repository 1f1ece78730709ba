//! Client for Runware: submit a task, poll `getResponse`, over REST (the
//! default) or the WebSocket API (`runware.transport`, see [`ws`]).
//!
//! Transient failures (408, 429, 5xx, connection errors) are retried with
//! exponential backoff and full jitter until a deadline. Resubmitting is
//! safe because the taskUUID makes it idempotent: a second submit answers
//! `conflictTaskUUID`, reported as [`SubmitOutcome::AlreadyExists`].

use super::types::{ApiError, Envelope, GetResponseTask, TaskItem, VideoInferenceTask};
use crate::backoff::{Backoff, Jitter};
use crate::secret::Secret;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Which of Runware's APIs calls go over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// One HTTP POST per call.
    #[default]
    Rest,
    /// One long-lived connection per client, resumed after a drop.
    Websocket,
}

/// How to reach Runware and how hard to retry.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The REST endpoint; requests go to it verbatim (no path appended).
    pub api_url: String,
    pub transport: Transport,
    /// The WebSocket endpoint, used with [`Transport::Websocket`].
    pub ws_url: String,
    pub api_key: Secret,
    /// Limit for one HTTP exchange (connect, send, read).
    pub request_timeout: Duration,
    /// Give up retrying once this much time has passed since the first attempt.
    pub retry_deadline: Duration,
    /// Backoff ceiling before the first retry; doubles per attempt.
    pub backoff_initial: Duration,
    /// Largest backoff ceiling.
    pub backoff_max: Duration,
}

impl ClientConfig {
    pub const DEFAULT_API_URL: &'static str = "https://api.runware.ai/v1";
    pub const DEFAULT_WS_URL: &'static str = "wss://ws-api.runware.ai/v1";

    /// Defaults: 30 s per request, retry for 2 min, backoff 0.5 s doubling to 15 s.
    pub fn new(api_url: impl Into<String>, api_key: Secret) -> Self {
        Self {
            api_url: api_url.into(),
            transport: Transport::Rest,
            ws_url: Self::DEFAULT_WS_URL.into(),
            api_key,
            request_timeout: Duration::from_secs(30),
            retry_deadline: Duration::from_secs(120),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SubmitOutcome {
    /// Runware acknowledged the task. `items` holds the ACK and any results
    /// it returned eagerly, all for our taskUUID.
    Accepted { items: Vec<TaskItem> },
    /// The taskUUID is already known to Runware (`conflictTaskUUID`): the
    /// task exists, so poll it instead of submitting again.
    AlreadyExists,
}

/// The state of one task as returned by `getResponse`, filtered to its taskUUID.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PollOutcome {
    /// Processing and success items (error items are moved to `errors`).
    pub items: Vec<TaskItem>,
    /// Task failures. They arrive with HTTP 200 and mean the task (or one of
    /// its results) failed, not that the poll did.
    pub errors: Vec<ApiError>,
}

impl PollOutcome {
    pub fn successes(&self) -> impl Iterator<Item = &TaskItem> {
        self.items.iter().filter(|i| i.is_success())
    }

    pub fn is_failed(&self) -> bool {
        !self.errors.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Runware refused the request; retrying the same request will not help.
    #[error("Runware rejected the request (HTTP {http_status}): {}", summarize(.errors))]
    Rejected {
        http_status: u16,
        errors: Vec<ApiError>,
    },
    /// Transient failures until the retry deadline.
    #[error("Runware unavailable after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: String },
    /// A successful response reelay cannot make sense of.
    #[error("unexpected response from Runware: {0}")]
    Protocol(String),
    #[error("invalid Runware client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// True when the same request may succeed later (Runware was unreachable
    /// or overloaded until the deadline); false when it must change first.
    pub fn is_transient(&self) -> bool {
        matches!(self, ClientError::Unavailable { .. })
    }

    /// Error codes carried by a rejection (empty for other variants).
    pub fn codes(&self) -> Vec<&str> {
        match self {
            ClientError::Rejected { errors, .. } => {
                errors.iter().map(|e| e.code.as_str()).collect()
            }
            _ => Vec::new(),
        }
    }
}

fn summarize(errors: &[ApiError]) -> String {
    if errors.is_empty() {
        return "no error details".to_string();
    }
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Clone)]
pub struct RunwareClient {
    http: reqwest::Client,
    /// The connection, when the transport is WebSocket.
    ws: Option<Arc<ws::WsLink>>,
    config: Arc<ClientConfig>,
}

impl fmt::Debug for RunwareClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunwareClient")
            .field("api_url", &self.config.api_url)
            .field("transport", &self.config.transport)
            .finish_non_exhaustive()
    }
}

/// A final (non-retried) HTTP answer.
struct RawResponse {
    status: StatusCode,
    body: bytes::Bytes,
}

impl RunwareClient {
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        if url::Url::parse(&config.api_url).is_err() {
            return Err(ClientError::Config(format!(
                "api_url {:?} is not a URL",
                config.api_url
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.request_timeout)
            .user_agent(concat!("reelay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Config(error_chain(&e)))?;
        let ws = match config.transport {
            Transport::Rest => None,
            Transport::Websocket => {
                if !matches!(
                    url::Url::parse(&config.ws_url)
                        .map(|u| u.scheme().to_string())
                        .as_deref(),
                    Ok("ws" | "wss")
                ) {
                    return Err(ClientError::Config(format!(
                        "ws_url {:?} is not a ws:// or wss:// URL",
                        config.ws_url
                    )));
                }
                Some(Arc::new(ws::WsLink::new(
                    config.ws_url.clone(),
                    config.api_key.clone(),
                    config.request_timeout,
                )))
            }
        };
        Ok(Self {
            http,
            ws,
            config: Arc::new(config),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Submits one task. See [`SubmitOutcome`] for the two success cases.
    #[tracing::instrument(name = "runware.submit", skip_all, fields(task_uuid = %task.task_uuid))]
    pub async fn submit(&self, task: &VideoInferenceTask) -> Result<SubmitOutcome, ClientError> {
        let ours = task.task_uuid;
        let raw = self
            .post_with_retry(&[task], (ours, StatusCode::BAD_REQUEST))
            .await?;
        let (env, errors) = self.decode(&raw)?;
        let is_ours = |e: &ApiError| e.task_uuid.is_none_or(|u| u == ours);
        if errors
            .iter()
            .any(|e| e.code == ApiError::CONFLICT_TASK_UUID && is_ours(e))
        {
            return Ok(SubmitOutcome::AlreadyExists);
        }
        if !raw.status.is_success() {
            return Err(self.rejected(&raw, errors));
        }
        let our_errors: Vec<ApiError> = errors.into_iter().filter(|e| is_ours(e)).collect();
        if !our_errors.is_empty() {
            return Err(ClientError::Rejected {
                http_status: raw.status.as_u16(),
                errors: our_errors,
            });
        }
        let items: Vec<TaskItem> = env
            .data
            .into_iter()
            .filter(|i| i.task_uuid == Some(ours))
            .collect();
        if items.is_empty() {
            return Err(ClientError::Protocol(format!(
                "no acknowledgement for task {ours} in the response"
            )));
        }
        Ok(SubmitOutcome::Accepted { items })
    }

    /// Polls one task. Items and errors are matched by taskUUID, never by
    /// position; items without a taskUUID are ignored. Errors without a
    /// taskUUID are counted as ours: the request named only our task.
    #[tracing::instrument(name = "runware.get_response", skip(self))]
    pub async fn get_response(&self, task_uuid: Uuid) -> Result<PollOutcome, ClientError> {
        let raw = self
            .post_with_retry(
                &[GetResponseTask::new(task_uuid)],
                (task_uuid, StatusCode::OK),
            )
            .await?;
        let (env, errors) = self.decode(&raw)?;
        if !raw.status.is_success() {
            return Err(self.rejected(&raw, errors));
        }
        let errors = errors
            .into_iter()
            .filter(|e| e.task_uuid.is_none_or(|u| u == task_uuid))
            .collect();
        let items = env
            .data
            .into_iter()
            .filter(|i| i.task_uuid == Some(task_uuid) && !i.is_error())
            .collect();
        Ok(PollOutcome { items, errors })
    }

    /// Parses the envelope. A non-2xx body that is not JSON still becomes a
    /// rejection (with a synthesized error); a 2xx one is a protocol error.
    fn decode(&self, raw: &RawResponse) -> Result<(Envelope, Vec<ApiError>), ClientError> {
        match serde_json::from_slice::<Envelope>(&raw.body) {
            Ok(env) => {
                let errors = env.all_errors();
                Ok((env, errors))
            }
            Err(_) if !raw.status.is_success() => Ok((Envelope::default(), Vec::new())),
            Err(e) => Err(ClientError::Protocol(self.redact(format!(
                "HTTP {} body is not a Runware envelope ({e}): {}",
                raw.status,
                snippet(&raw.body)
            )))),
        }
    }

    fn rejected(&self, raw: &RawResponse, mut errors: Vec<ApiError>) -> ClientError {
        if errors.is_empty() {
            errors.push(ApiError::new(
                ApiError::UNKNOWN,
                self.redact(format!("HTTP {}: {}", raw.status, snippet(&raw.body))),
            ));
        }
        ClientError::Rejected {
            http_status: raw.status.as_u16(),
            errors,
        }
    }

    /// `about` is the task the call names and the status a WebSocket answer
    /// with errors stands for (see [`ws::WsLink::exchange`]).
    async fn post_with_retry<B: Serialize + ?Sized>(
        &self,
        body: &B,
        about: (Uuid, StatusCode),
    ) -> Result<RawResponse, ClientError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ClientError::Protocol(format!("cannot encode request: {e}")))?;
        let cfg = &self.config;
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            if let Some(link) = &self.ws {
                let reason = match link.exchange(&body, about.0, about.1).await {
                    Ok(raw) if is_retryable(raw.status) => {
                        format!("HTTP {}: {}", raw.status, snippet(&raw.body))
                    }
                    Ok(raw) => return Ok(raw),
                    Err(e) => e,
                };
                self.backoff(started, attempt, reason, None).await?;
                continue;
            }
            let sent = self
                .http
                .post(&cfg.api_url)
                .bearer_auth(cfg.api_key.expose())
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json")
                .timeout(cfg.request_timeout)
                .body(body.clone())
                .send()
                .await;
            let (reason, retry_after) = match sent {
                Ok(resp) if is_retryable(resp.status()) => {
                    let status = resp.status();
                    let retry_after = retry_after(resp.headers());
                    let text = resp.bytes().await.unwrap_or_default();
                    (format!("HTTP {status}: {}", snippet(&text)), retry_after)
                }
                Ok(resp) => {
                    let status = resp.status();
                    match resp.bytes().await {
                        Ok(body) => return Ok(RawResponse { status, body }),
                        Err(e) => (format!("reading the response: {}", error_chain(&e)), None),
                    }
                }
                Err(e) => (error_chain(&e), None),
            };
            self.backoff(started, attempt, reason, retry_after).await?;
        }
    }

    /// Waits before the next attempt, or gives up past the retry deadline.
    async fn backoff(
        &self,
        started: Instant,
        attempt: u32,
        reason: String,
        retry_after: Option<Duration>,
    ) -> Result<(), ClientError> {
        let cfg = &self.config;
        let reason = self.redact(reason);
        let delay = full_jitter(attempt, cfg.backoff_initial, cfg.backoff_max)
            .max(retry_after.unwrap_or_default());
        if started.elapsed() + delay > cfg.retry_deadline {
            return Err(ClientError::Unavailable {
                attempts: attempt,
                last: reason,
            });
        }
        tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, %reason, "Runware call failed, retrying");
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// Belt and braces: the key is only ever sent in a header, but a proxy
    /// or server could echo it back into a body we quote.
    fn redact(&self, s: String) -> String {
        let key = self.config.api_key.expose();
        if key.is_empty() || !s.contains(key) {
            s
        } else {
            s.replace(key, "[redacted]")
        }
    }
}

/// The official SDKs' poll rhythm: 1.0 s, 1.5 s, then x1.5 per poll, capped
/// at 10 s. Not a setting: it is what Runware expects clients to do.
pub const POLL_CADENCE: Backoff =
    Backoff::exponential(Duration::from_secs(1), 1.5, Duration::from_secs(10));

/// Delay before poll number `attempt` (0-based), see [`POLL_CADENCE`].
pub fn poll_delay(attempt: u32) -> Duration {
    POLL_CADENCE.delay(attempt)
}

fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// Random delay in [0, min(max, initial * 2^(attempt-1))]; `attempt` is the
/// failed one, counted from 1.
fn full_jitter(attempt: u32, initial: Duration, max: Duration) -> Duration {
    Backoff::doubling(initial, max)
        .with_jitter(Jitter::Full)
        .delay(attempt.saturating_sub(1))
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs and ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn snippet(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests;
mod ws;
