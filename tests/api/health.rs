//! `/healthz` when the job store stops answering (Postgres only): reelay
//! reaches Postgres through a TCP proxy the test can cut, as a network
//! partition or a database restart would. Cut: 503 in the JSON error shape
//! (code `unavailable`), not a 500; restored: 200 again.

use crate::helpers::*;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy on 127.0.0.1 in front of the test's Postgres. `cut` closes
/// every connection through it and refuses new ones until `restore`.
pub(crate) struct PgProxy {
    pub(crate) port: u16,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl PgProxy {
    pub(crate) async fn start() -> Self {
        let base = std::env::var("REELAY_TEST_POSTGRES_URL").expect("a Postgres to proxy");
        let base = url::Url::parse(&base).unwrap();
        let target = format!(
            "{}:{}",
            base.host_str().unwrap(),
            base.port().unwrap_or(5432)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let (open, conns) = (open.clone(), conns.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        continue; // dropped: the connection is closed at once
                    }
                    let target = target.clone();
                    let conn = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    conns.lock().unwrap().push(conn);
                }
            }
        });
        PgProxy {
            port,
            open,
            conns,
            accept,
        }
    }

    /// `url` (a `database.url` of the test's Postgres) through this proxy.
    pub(crate) fn route(&self, url: &str) -> String {
        let mut u = url::Url::parse(url).unwrap();
        u.set_host(Some("127.0.0.1")).unwrap();
        u.set_port(Some(self.port)).unwrap();
        u.to_string()
    }

    pub(crate) fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub(crate) fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// Polls `url` until it answers with a status other than `from` (0: the
/// first answer); returns that answer's status and body.
pub(crate) async fn health_leaves(http: &reqwest::Client, url: &str, from: u16) -> (u16, String) {
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(url).send().await {
            let status = r.status().as_u16();
            if status != from {
                return (status, r.text().await.unwrap_or_default());
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{url} stayed {from}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The answer of a health check whose store is cut: 503 and the JSON
/// error shape, code `unavailable`, the message naming `what`.
pub(crate) fn assert_unavailable(status: u16, body: &str, what: &str) {
    assert_eq!(status, 503, "{body}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["error"]["code"], "unavailable", "{v:#}");
    let message = v["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains(what), "{v:#}");
}

#[tokio::test]
async fn healthz_is_503_while_postgres_is_cut_off_and_200_once_it_is_back() {
    if !on_postgres() {
        eprintln!("job store is SQLite: the store is a file in the process; skipped");
        return;
    }
    let proxy = PgProxy::start().await;
    let app = spawn_app_with(|s| {
        let url = proxy.route(&s.database_url());
        s.database.url = reelay::secret::Secret::new(url);
        s.database.acquire_timeout_secs = 2;
    })
    .await;
    let health = format!("{}/healthz", app.url);
    let ok = app.http.get(&health).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "ok");

    proxy.cut();
    let (status, body) = health_leaves(&app.http, &health, 200).await;
    assert_unavailable(status, &body, "the job store");

    proxy.restore();
    let (status, body) = health_leaves(&app.http, &health, 503).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "ok");
    app.stop().await;
}
