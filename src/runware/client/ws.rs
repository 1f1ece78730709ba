//! Runware's WebSocket transport for [`super::RunwareClient`]: one
//! connection per client, authenticated once and resumed with its
//! `connectionSessionUUID` after a drop, with answers routed to callers by
//! taskUUID. An answer is handed back with the HTTP status REST would have
//! given it, so retries and decoding stay one code path for both transports.

use super::RawResponse;
use crate::secret::Secret;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// How often the connection sends Runware's `ping` frame; the server drops
/// connections silent for 120 s.
const HEARTBEAT: Duration = Duration::from_secs(30);

type Waiters = Arc<Mutex<HashMap<Uuid, oneshot::Sender<Value>>>>;

struct Live {
    out: mpsc::UnboundedSender<Message>,
    waiters: Waiters,
}

#[derive(Default)]
struct State {
    live: Option<Live>,
    session: Option<String>,
}

pub(super) struct WsLink {
    url: String,
    key: Secret,
    timeout: Duration,
    state: tokio::sync::Mutex<State>,
}

enum LinkError {
    /// The server refused the key: the frame it answered.
    Refused(Value),
    /// Unreachable or lost; worth retrying.
    Down(String),
}

impl WsLink {
    pub fn new(url: String, key: Secret, timeout: Duration) -> Self {
        Self {
            url,
            key,
            timeout,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// Sends one request frame and waits for the frame about `task_uuid`.
    /// `errors_status` is what REST answers when that frame carries errors
    /// that are not about the transport (400 for a submit, 200 for a poll,
    /// whose errors are task failures).
    pub async fn exchange(
        &self,
        body: &[u8],
        task_uuid: Uuid,
        errors_status: StatusCode,
    ) -> Result<RawResponse, String> {
        let (out, waiters) = match self.live().await {
            Ok(l) => l,
            Err(LinkError::Refused(frame)) => return Ok(raw(StatusCode::UNAUTHORIZED, &frame)),
            Err(LinkError::Down(m)) => return Err(m),
        };
        let (tx, rx) = oneshot::channel();
        waiters.lock().unwrap().insert(task_uuid, tx);
        let text = String::from_utf8_lossy(body).into_owned();
        if out.send(Message::Text(text.into())).is_err() {
            return Err("the WebSocket connection was lost".into());
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(frame)) => Ok(raw(status_of(&frame, errors_status), &frame)),
            Ok(Err(_)) => Err("the WebSocket connection was lost before the answer".into()),
            Err(_) => {
                waiters.lock().unwrap().remove(&task_uuid);
                Err(format!("no WebSocket answer within {:?}", self.timeout))
            }
        }
    }

    async fn live(&self) -> Result<(mpsc::UnboundedSender<Message>, Waiters), LinkError> {
        let mut st = self.state.lock().await;
        if let Some(l) = st.live.as_ref().filter(|l| !l.out.is_closed()) {
            return Ok((l.out.clone(), l.waiters.clone()));
        }
        let down = |m: String| LinkError::Down(format!("WebSocket {}: {m}", self.url));
        let (mut ws, _) = tokio::time::timeout(
            self.timeout,
            tokio_tungstenite::connect_async(self.url.as_str()),
        )
        .await
        .map_err(|_| down("connect timed out".into()))?
        .map_err(|e| down(e.to_string()))?;
        let mut auth = json!({"taskType": "authentication", "apiKey": self.key.expose()});
        if let Some(s) = &st.session {
            auth["connectionSessionUUID"] = json!(s);
        }
        ws.send(Message::Text(json!([auth]).to_string().into()))
            .await
            .map_err(|e| down(e.to_string()))?;
        let session = loop {
            let msg = tokio::time::timeout(self.timeout, ws.next())
                .await
                .map_err(|_| down("no authentication answer".into()))?;
            let frame = match msg {
                Some(Ok(Message::Text(t))) => serde_json::from_str::<Value>(&t).unwrap_or_default(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => return Err(down("closed during authentication".into())),
            };
            if frame.get("errors").is_some() {
                return Err(LinkError::Refused(frame));
            }
            let auth = frame["data"]
                .as_array()
                .and_then(|d| d.iter().find(|i| i["taskType"] == "authentication"));
            if let Some(s) = auth.and_then(|a| a["connectionSessionUUID"].as_str()) {
                break s.to_string();
            }
        };
        st.session = Some(session);
        let (out, rx) = mpsc::unbounded_channel();
        let waiters = Waiters::default();
        tokio::spawn(pump(ws, rx, waiters.clone()));
        st.live = Some(Live {
            out: out.clone(),
            waiters: waiters.clone(),
        });
        Ok((out, waiters))
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Owns the socket: writes what callers queue, routes what arrives, keeps
/// the heartbeat. When it ends, waiting callers see the connection lost and
/// the next call reconnects.
async fn pump(mut ws: Socket, mut rx: mpsc::UnboundedReceiver<Message>, waiters: Waiters) {
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    loop {
        tokio::select! {
            m = rx.recv() => {
                let Some(m) = m else { break };
                if ws.send(m).await.is_err() {
                    break;
                }
            }
            f = ws.next() => match f {
                Some(Ok(Message::Text(t))) => route(&waiters, &t),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                _ => break,
            },
            _ = heartbeat.tick() => {
                let ping = json!([{"taskType": "ping", "ping": true}]).to_string();
                if ws.send(Message::Text(ping.into())).await.is_err() {
                    break;
                }
            }
        }
    }
    waiters.lock().unwrap().clear();
}

/// Hands a frame to the callers of the tasks it names; an error naming no
/// task goes to every caller, as it may be about any of them.
fn route(waiters: &Waiters, text: &str) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let items = ["data", "errors"]
        .iter()
        .filter_map(|k| frame[*k].as_array())
        .flatten();
    let mut named = Vec::new();
    let mut unrouted = false;
    for i in items {
        match i["taskUUID"].as_str().and_then(|u| Uuid::parse_str(u).ok()) {
            Some(u) => named.push(u),
            None => unrouted |= i.get("code").is_some(),
        }
    }
    let mut w = waiters.lock().unwrap();
    if unrouted {
        named.extend(w.keys().copied().collect::<Vec<_>>());
    }
    for u in named {
        if let Some(tx) = w.remove(&u) {
            let _ = tx.send(frame.clone());
        }
    }
}

fn raw(status: StatusCode, frame: &Value) -> RawResponse {
    RawResponse {
        status,
        body: frame.to_string().into(),
    }
}

/// The status REST gives an answer with these errors: transport-level codes
/// keep theirs (so 429/503 are retried), the rest get `errors_status`.
fn status_of(frame: &Value, errors_status: StatusCode) -> StatusCode {
    let Some(first) = frame["errors"].as_array().and_then(|e| e.first()) else {
        return StatusCode::OK;
    };
    match first["code"].as_str().unwrap_or_default() {
        "invalidApiKey" | "missingApiKey" => StatusCode::UNAUTHORIZED,
        "insufficientCredits" => StatusCode::PAYMENT_REQUIRED,
        "rateLimitExceeded" => StatusCode::TOO_MANY_REQUESTS,
        "serviceUnavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "timeout" => StatusCode::GATEWAY_TIMEOUT,
        "internalServerError" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => errors_status,
    }
}
