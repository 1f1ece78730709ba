//! Runware's WebSocket API on `GET /v1` (with Upgrade): every frame is a
//! JSON array of tasks, answered with `data`/`errors` frames, after one
//! `authentication` frame that opens (or resumes) a session. Tasks go
//! through the same [`Simulator::answer`] as REST, so validation, error
//! objects and faults match.
//!
//! A session outlives its connections: a client that reconnects with its
//! `connectionSessionUUID` gets the results that finished while it was away
//! and that no `getResponse` has answered yet.

use super::wire::{auth_key, header_text, invalid_api_key, key_is_valid, request_faults, Answer};
use super::*;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::Query;
use futures::{SinkExt, StreamExt};
use std::collections::HashSet;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Close code Runware-style servers send when they drop an idle connection
/// (1000: normal; the client is expected to reconnect when it needs to).
const IDLE_CLOSE: u16 = 1000;

#[derive(Debug, Default)]
pub(super) struct Session {
    /// Tasks submitted on any of the session's connections.
    tasks: HashSet<Uuid>,
    /// Tasks whose final state the client has been sent.
    delivered: HashSet<Uuid>,
}

/// The fault text of an upgrade request: the test header, else a `fault`
/// query parameter (which lets a client whose only setting is the URL ask
/// for faults).
fn fault_text<'a>(
    headers: &'a HeaderMap,
    query: &'a HashMap<String, String>,
) -> Option<Result<&'a str, String>> {
    headers
        .get(FAULT_HEADER)
        .map(header_text)
        .or_else(|| query.get("fault").map(|f| Ok(f.as_str())))
}

pub(super) async fn upgrade(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let faults = match request_faults(&sim, fault_text(&headers, &query)) {
        Ok(f) => f,
        Err(e) => return wire::envelope(StatusCode::BAD_REQUEST, vec![], vec![*e]),
    };
    ws.on_upgrade(move |socket| async move { sim.serve_socket(socket, faults).await })
}

fn is_terminal(t: &SimTask) -> bool {
    matches!(t.status, TaskStatus::Success | TaskStatus::Error)
}

fn frame_of(answer: &Answer) -> Option<Message> {
    (!answer.data.is_empty() || !answer.errors.is_empty())
        .then(|| Message::Text(answer.body().to_string().into()))
}

/// What a connection's frame handlers tell the connection loop.
enum Event {
    Send(Message),
    /// A `drop_connection_ms` fault fired: go away without a close frame.
    Drop,
}

impl Simulator {
    async fn serve_socket(self, socket: WebSocket, faults: Faults) {
        let (mut sink, mut stream) = socket.split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let idle = self.0.cfg.ws_idle;
        let mut deadline = Instant::now() + idle;
        let mut session: Option<Uuid> = None;
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let text = match msg {
                        Some(Ok(Message::Text(t))) => t.to_string(),
                        Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                        // Protocol pings keep TCP alive but are not the
                        // client's heartbeat: they do not reset the idle limit.
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        _ => break,
                    };
                    deadline = Instant::now() + idle;
                    match session {
                        Some(s) => {
                            let me = self.clone();
                            let (tx, faults) = (tx.clone(), faults.clone());
                            tokio::spawn(async move { me.on_frame(s, &text, &faults, tx).await });
                        }
                        None => match self.authenticate(&text) {
                            Ok((s, frames, rest)) => {
                                session = Some(s);
                                for f in frames {
                                    let _ = tx.send(Event::Send(f));
                                }
                                if let Some(rest) = rest {
                                    let me = self.clone();
                                    let (tx, faults) = (tx.clone(), faults.clone());
                                    tokio::spawn(async move { me.on_frame(s, &rest, &faults, tx).await });
                                }
                            }
                            Err(frame) => {
                                let _ = sink.send(frame).await;
                                let _ = sink.close().await;
                                break;
                            }
                        },
                    }
                }
                ev = rx.recv() => match ev {
                    Some(Event::Send(m)) => {
                        if sink.send(m).await.is_err() {
                            break;
                        }
                    }
                    Some(Event::Drop) => {
                        tracing::info!("simulated WebSocket connection drop (fault)");
                        break;
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    let close = CloseFrame { code: IDLE_CLOSE, reason: "idle timeout".into() };
                    let _ = sink.send(Message::Close(Some(close))).await;
                    break;
                }
            }
        }
    }

    /// The first frame: a valid key opens or resumes a session. Answers the
    /// frames to send (the auth reply, then any results kept for a resumed
    /// session) and the rest of the batch, or the error frame to close with.
    #[allow(clippy::type_complexity)]
    fn authenticate(&self, text: &str) -> Result<(Uuid, Vec<Message>, Option<String>), Message> {
        let refuse = |e: ApiError| {
            let a = Answer {
                status: StatusCode::UNAUTHORIZED,
                data: vec![],
                errors: vec![e],
            };
            Message::Text(a.body().to_string().into())
        };
        let Ok(Value::Array(tasks)) = serde_json::from_str::<Value>(text) else {
            return Err(refuse(err(
                "invalidPayload",
                "Each frame must be a JSON array of task objects.",
            )));
        };
        let Some(key) = auth_key(&tasks) else {
            let mut e = err(
                "missingApiKey",
                "The first frame must be an authentication task with an apiKey.",
            );
            e.parameter = Some("apiKey".into());
            e.task_type = Some("authentication".into());
            return Err(refuse(e));
        };
        if !key_is_valid(self, &key) {
            return Err(refuse(invalid_api_key()));
        }
        let asked = tasks[0]
            .get("connectionSessionUUID")
            .and_then(Value::as_str)
            .and_then(|u| Uuid::parse_str(u).ok());
        let (uuid, kept) = {
            let mut sessions = self.0.sessions.lock().unwrap();
            match asked.filter(|u| sessions.contains_key(u)) {
                Some(u) => {
                    let s = sessions.get_mut(&u).expect("checked above");
                    let done: Vec<SimTask> = s
                        .tasks
                        .difference(&s.delivered)
                        .filter_map(|t| self.snapshot(*t))
                        .filter(is_terminal)
                        .collect();
                    s.delivered.extend(done.iter().map(|t| t.task.task_uuid));
                    (u, done)
                }
                None => {
                    let u = Uuid::new_v4();
                    sessions.insert(u, Session::default());
                    (u, vec![])
                }
            }
        };
        let mut frames = vec![Message::Text(
            json!({"data": [{"taskType": "authentication", "connectionSessionUUID": uuid}]})
                .to_string()
                .into(),
        )];
        frames.extend(kept.iter().filter_map(|t| frame_of(&self.report(t))));
        let rest = (tasks.len() > 1).then(|| Value::Array(tasks[1..].to_vec()).to_string());
        Ok((uuid, frames, rest))
    }

    /// One frame of an authenticated connection.
    async fn on_frame(
        &self,
        session: Uuid,
        text: &str,
        faults: &Faults,
        tx: mpsc::UnboundedSender<Event>,
    ) {
        let Ok(Value::Array(tasks)) = serde_json::from_str::<Value>(text) else {
            let a = Answer {
                status: StatusCode::BAD_REQUEST,
                data: vec![],
                errors: vec![err(
                    "invalidPayload",
                    "Each frame must be a JSON array of task objects.",
                )],
            };
            let _ = tx.send(Event::Send(frame_of(&a).expect("an error")));
            return;
        };
        let polled: Vec<Uuid> = tasks
            .iter()
            .filter(|t| t.get("taskType").and_then(Value::as_str) == Some("getResponse"))
            .filter_map(wire::task_uuid_of)
            .collect();
        let answer = self.answer(tasks, faults).await;
        let acked: Vec<Uuid> = answer
            .data
            .iter()
            .filter(|d| {
                d.get("taskType").and_then(Value::as_str) == Some("videoInference")
                    && d.get("status").is_none()
            })
            .filter_map(wire::task_uuid_of)
            .collect();
        {
            let mut sessions = self.0.sessions.lock().unwrap();
            if let Some(s) = sessions.get_mut(&session) {
                s.tasks.extend(&acked);
                let answered = polled
                    .iter()
                    .filter(|u| self.snapshot(**u).as_ref().is_some_and(is_terminal));
                s.delivered.extend(answered);
            }
        }
        for uuid in acked {
            let ms = self
                .snapshot(uuid)
                .map(|t| t.faults.drop_connection_ms)
                .unwrap_or(0);
            if ms > 0 {
                let (me, tx) = (self.clone(), tx.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    if me.snapshot(uuid).is_some_and(|t| !is_terminal(&t)) {
                        let _ = tx.send(Event::Drop);
                    }
                });
            }
        }
        if let Some(m) = frame_of(&answer) {
            let _ = tx.send(Event::Send(m));
        }
    }
}
