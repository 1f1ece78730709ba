//! The simulator's WebSocket API from a plain WebSocket client.

use super::tests::{sim_with, task, Sim, KEY};
use super::*;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

type Conn =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(sim: &Sim, query: &str) -> Conn {
    let url = format!("{}{query}", sim.handle.ws_url());
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn send(c: &mut Conn, frame: Value) {
    c.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON frame; `None` when the connection ended (with or without
/// a close frame).
async fn recv(c: &mut Conn) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), c.next())
            .await
            .expect("a frame within 30 s");
        match msg {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => return None,
        }
    }
}

/// Authenticates and answers the session's UUID.
async fn login(c: &mut Conn, resume: Option<&str>) -> String {
    let mut auth = json!({"taskType": "authentication", "apiKey": KEY});
    if let Some(s) = resume {
        auth["connectionSessionUUID"] = json!(s);
    }
    send(c, json!([auth])).await;
    let f = recv(c).await.unwrap();
    assert!(f.get("errors").is_none(), "{f}");
    assert_eq!(f["data"][0]["taskType"], "authentication");
    f["data"][0]["connectionSessionUUID"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn auth_ping_and_validation_match_rest() {
    let Some(sim) = sim_with(Faults::default(), Duration::from_secs(120)).await else {
        return;
    };
    let mut bad = connect(&sim, "").await;
    send(
        &mut bad,
        json!([{"taskType": "authentication", "apiKey": "wrong"}]),
    )
    .await;
    let f = recv(&mut bad).await.unwrap();
    assert!(f.get("data").is_none(), "{f}");
    let e = &f["errors"][0];
    assert_eq!(
        (&e["code"], &e["parameter"], &e["taskType"]),
        (
            &json!("invalidApiKey"),
            &json!("apiKey"),
            &json!("authentication")
        )
    );
    assert_eq!(
        recv(&mut bad).await,
        None,
        "a refused key ends the connection"
    );

    let mut c = connect(&sim, "").await;
    let session = login(&mut c, None).await;
    assert!(Uuid::parse_str(&session).is_ok());
    send(&mut c, json!([{"taskType": "ping", "ping": true}])).await;
    assert_eq!(
        recv(&mut c).await.unwrap(),
        json!({"data": [{"taskType": "ping", "pong": true}]})
    );

    let mut t = task(Uuid::new_v4());
    t["duration"] = json!(0);
    send(&mut c, json!([t.clone()])).await;
    let over_ws = recv(&mut c).await.unwrap();
    let (status, over_rest) = sim.post(&json!([t]), None).await;
    assert_eq!(status, 400);
    assert_eq!(
        over_ws, over_rest,
        "the same error objects on both transports"
    );
}

#[tokio::test]
async fn a_resumed_session_gets_results_finished_while_away() {
    let Some(sim) = sim_with(Faults::default(), Duration::from_secs(120)).await else {
        return;
    };
    let mut c = connect(&sim, "").await;
    let session = login(&mut c, None).await;
    let uuid = Uuid::new_v4();
    send(&mut c, json!([task(uuid)])).await;
    let ack = recv(&mut c).await.unwrap();
    assert_eq!(ack["data"][0]["taskUUID"], json!(uuid), "{ack}");
    drop(c);

    let done = sim.finished(uuid).await;
    assert_eq!(done["data"][0]["status"], "success", "{done}");
    // That REST poll was not this session's: the result is still owed to it.
    let mut c = connect(&sim, "").await;
    assert_eq!(login(&mut c, Some(&session)).await, session);
    let kept = recv(&mut c).await.unwrap();
    assert_eq!(kept["data"][0]["taskUUID"], json!(uuid), "{kept}");
    assert_eq!(kept["data"][0]["status"], "success");

    // Delivered once: the next resume has nothing to send before the pong.
    let mut c = connect(&sim, "").await;
    login(&mut c, Some(&session)).await;
    send(&mut c, json!([{"taskType": "ping", "ping": true}])).await;
    assert_eq!(recv(&mut c).await.unwrap()["data"][0]["pong"], true);

    // An unknown session is not an error: the client gets a new one.
    let mut c = connect(&sim, "").await;
    let other = Uuid::new_v4().to_string();
    assert_ne!(login(&mut c, Some(&other)).await, other);
}

#[tokio::test]
async fn idle_connections_are_closed_and_the_drop_fault_cuts_a_running_task() {
    let Some(sim) = sim_with(Faults::default(), Duration::from_millis(300)).await else {
        return;
    };
    let mut c = connect(&sim, "").await;
    login(&mut c, None).await;
    let started = std::time::Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(5), c.next())
        .await
        .unwrap();
    assert!(matches!(end, Some(Ok(Message::Close(Some(_))))), "{end:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));

    let mut c = connect(&sim, "?fault=drop_connection_ms%3D50%2C%20stall%3Dtrue").await;
    login(&mut c, None).await;
    let uuid = Uuid::new_v4();
    send(&mut c, json!([task(uuid)])).await;
    assert_eq!(
        recv(&mut c).await.unwrap()["data"][0]["taskUUID"],
        json!(uuid)
    );
    let end = tokio::time::timeout(Duration::from_secs(5), c.next())
        .await
        .unwrap();
    assert!(
        !matches!(end, Some(Ok(Message::Close(_)))),
        "dropped, not closed: {end:?}"
    );
    assert_eq!(
        sim.handle.sim.snapshot(uuid).unwrap().status,
        TaskStatus::Processing
    );
}

/// reelay's own client with `transport = "websocket"`: the same outcomes as
/// over REST, and a dropped connection costs nothing but a reconnect.
#[tokio::test]
async fn reelays_client_works_over_websocket_and_survives_a_drop() {
    use crate::runware::client::{
        ClientConfig, ClientError, RunwareClient, SubmitOutcome, Transport,
    };
    let faults = Faults {
        drop_connection_ms: 20,
        ..Faults::default()
    };
    let Some(sim) = sim_with(faults, Duration::from_secs(120)).await else {
        return;
    };
    let client = |key: &str| {
        let mut cfg = ClientConfig::new(sim.handle.api_url(), Secret::new(key.to_string()));
        cfg.transport = Transport::Websocket;
        cfg.ws_url = sim.handle.ws_url();
        cfg.retry_deadline = Duration::from_secs(10);
        cfg.backoff_initial = Duration::from_millis(10);
        RunwareClient::new(cfg).unwrap()
    };
    let c = client(KEY);
    let t: VideoInferenceTask = serde_json::from_value(task(Uuid::new_v4())).unwrap();
    let SubmitOutcome::Accepted { items } = c.submit(&t).await.unwrap() else {
        panic!("not accepted");
    };
    assert_eq!(items[0].task_uuid, Some(t.task_uuid));
    assert_eq!(c.submit(&t).await.unwrap(), SubmitOutcome::AlreadyExists);
    let started = std::time::Instant::now();
    loop {
        // The connection is dropped 20 ms after the ack while the task runs;
        // the next poll reconnects and resumes the session.
        let poll = c.get_response(t.task_uuid).await.unwrap();
        if poll.successes().next().is_some() {
            break;
        }
        assert!(!poll.is_failed(), "{poll:?}");
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut bad: VideoInferenceTask = serde_json::from_value(task(Uuid::new_v4())).unwrap();
    bad.duration = Some(0);
    match c.submit(&bad).await {
        Err(ClientError::Rejected {
            http_status: 400,
            errors,
        }) => {
            assert_eq!(errors[0].parameter.as_deref(), Some("duration"))
        }
        other => panic!("{other:?}"),
    }
    match client("wrong").submit(&t).await {
        Err(ClientError::Rejected {
            http_status: 401,
            errors,
        }) => {
            assert_eq!(errors[0].code, "invalidApiKey")
        }
        other => panic!("{other:?}"),
    }
}
