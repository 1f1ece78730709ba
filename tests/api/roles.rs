//! Roles as separate processes: `reelay serve --role api` (HTTP API, the
//! embedded S3 and the simulator; no stage runs) and a `reelay worker`
//! (stages only, no listening socket) that reaches them over the network and
//! shares the job store and the deployment's keys. Together they publish.

use crate::health::{assert_unavailable, health_leaves, PgProxy};
use crate::helpers::*;
use crate::restart::{free_port, state, wait_healthy, Ports};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const S3_KEY_ID: &str = "reelay-roles-test";
const S3_SECRET: &str = "roles-test-secret-0123456789abcdef0123456789";
const WEBHOOK_KEY: &str = "8f1d2c3b4a5968778695a4b3c2d1e0f08f1d2c3b4a5968778695a4b3c2d1e0f0";
const CALLBACK_KEY: &str = "roles-test-callback-signing-key";

/// The settings every process of the deployment shares: one job store (a
/// SQLite file both open, or the test's Postgres schema), one set of keys.
fn shared(cmd: &mut Command, dir: &Path) {
    let url = if on_postgres() {
        test_settings(dir).database_url()
    } else {
        format!("sqlite://{}?mode=rwc", dir.join("jobs.db").display())
    };
    cmd.env("REELAY_CONFIG_DIR", config_dir())
        .env("REELAY_ENVIRONMENT", "test")
        .env("REELAY__DATABASE__URL", url)
        .env("REELAY__STORAGE__ACCESS_KEY_ID", S3_KEY_ID)
        .env("REELAY__STORAGE__SECRET_ACCESS_KEY", S3_SECRET)
        .env("REELAY__SECRETS__WEBHOOK_TOKEN_KEY", WEBHOOK_KEY)
        .env("REELAY__SECRETS__CALLBACK_SIGNING_KEY", CALLBACK_KEY)
        .env("REELAY__API__KEY_SHA256", key_hash())
        .env("REELAY__SIMULATOR__GENERATION_SECS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
}

/// An api process (HTTP API, the embedded S3 and the simulator, no stage)
/// on free loopback ports, in a temporary folder that also holds the job
/// store; workers join it over the network.
pub(crate) struct Stack {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ports: Ports,
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    pub(crate) api: Proc,
}

impl Stack {
    pub(crate) async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports = Ports::free();
        let url = format!("http://127.0.0.1:{}", ports.api);
        let http = reqwest::Client::new();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reelay"));
        cmd.args(["serve", "--role", "api"]);
        shared(&mut cmd, dir.path());
        cmd.env("REELAY__DATA__DIR", dir.path().join("api"))
            .env("REELAY__SERVER__PORT", ports.api.to_string())
            .env("REELAY__STORAGE__EMBEDDED_PORT", ports.s3.to_string())
            .env("REELAY__SIMULATOR__PORT", ports.sim.to_string());
        let api = Proc(cmd.spawn().expect("the api process starts"));
        wait_healthy(&http, &url).await;
        Stack {
            dir,
            ports,
            url,
            http,
            api,
        }
    }

    /// The job store's folder (the SQLite file, or the Postgres schema's name).
    pub(crate) fn db(&self) -> &Path {
        self.dir.path()
    }

    /// The api process's data dir (the simulator's task files are there).
    pub(crate) fn api_data(&self) -> PathBuf {
        self.dir.path().join("api")
    }

    /// A `reelay worker` with `args`, its data dir `name` in the folder
    /// (the same name again: the same dir, as a restarted machine), `extra`
    /// environment last.
    pub(crate) fn worker(&self, name: &str, args: &[&str], extra: &[(&str, &str)]) -> Proc {
        let (s3, sim) = (self.ports.s3, self.ports.sim);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reelay"));
        cmd.arg("worker").args(args);
        shared(&mut cmd, self.db());
        cmd.env("REELAY__DATA__DIR", self.dir.path().join(name))
            .env("REELAY__STORAGE__EMBEDDED", "false")
            .env(
                "REELAY__STORAGE__ENDPOINT",
                format!("http://127.0.0.1:{s3}"),
            )
            .env(
                "REELAY__RUNWARE__API_URL",
                format!("http://127.0.0.1:{sim}/v1"),
            )
            .env(
                "REELAY__RUNWARE__WS_URL",
                format!("ws://127.0.0.1:{sim}/v1"),
            )
            .env("REELAY__SERVER__PUBLIC_URL", &self.url)
            .envs(extra.iter().copied());
        Proc(cmd.spawn().expect("the worker starts"))
    }
}

/// A child process killed when the test ends, also when it fails.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Inodes of the sockets `pid` has open.
fn socket_inodes(pid: u32) -> HashSet<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    l.strip_prefix("socket:[")
                        .map(|s| s.trim_end_matches(']').to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// How many listening TCP sockets (v4 and v6) `pid` holds.
fn listening(pid: u32) -> usize {
    let mine = socket_inodes(pid);
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| t.lines().skip(1).map(str::to_string).collect::<Vec<_>>())
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() > 9 && cols[3] == "0A" && mine.contains(cols[9])
        })
        .count()
}

#[tokio::test]
async fn an_api_process_and_a_separate_worker_publish_together_and_the_worker_listens_nowhere() {
    let mut stack = Stack::start().await;
    let (http, url) = (stack.http.clone(), stack.url.clone());
    let id = create_at(&http, &url, &request(3)).await;
    // No stage runs in the api process: the variation is still requested.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a = get_asset(&http, &url, &id).await;
    assert_eq!(state(&a), "requested", "{a:#}");
    assert!(
        listening(stack.api.0.id()) >= 3,
        "api, S3 and simulator ports"
    );

    let mut w = stack.worker("worker", &[], &[]);
    let a = wait_for(&http, &url, &id, Duration::from_secs(300), |a| {
        a["status"] != "processing"
    })
    .await;
    let live = w.0.try_wait().unwrap().is_none();
    let pid = w.0.id();
    let worker_listens = listening(w.0.id());
    let workers: Value = http
        .get(format!("{url}/v1/workers"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for child in [&mut w.0, &mut stack.api.0] {
        child.kill().unwrap();
        child.wait().unwrap();
    }

    assert_eq!(a["status"], "published", "{a:#}");
    assert!(live, "the worker kept running");
    assert_eq!(worker_listens, 0, "a worker binds no port");
    // One live worker, and it is the worker process (the api runs none).
    let listed = workers["workers"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "{workers:#}");
    assert_eq!(
        listed[0]["version"],
        env!("CARGO_PKG_VERSION"),
        "{workers:#}"
    );
    // Worker ids are `{host}-{pid}-{random}`.
    let pid = format!("-{pid}-");
    assert!(
        listed[0]["id"].as_str().unwrap().contains(&pid),
        "{workers:#}"
    );
}

/// On Postgres an idle worker in another process picks up new work when it
/// is notified, not at its next poll: with a ten-minute poll, an asset the
/// api process creates is still claimed at once.
#[tokio::test]
async fn an_idle_worker_elsewhere_is_woken_by_new_work_on_postgres() {
    if !on_postgres() {
        eprintln!("job store is SQLite: LISTEN/NOTIFY is Postgres's; skipped");
        return;
    }
    let mut stack = Stack::start().await;
    let (http, url) = (stack.http.clone(), stack.url.clone());
    let mut w = stack.worker("worker", &[], &[("REELAY__WORKER__IDLE_POLL_MS", "600000")]);
    // The worker is up (registered) and has found nothing to do.
    let start = std::time::Instant::now();
    loop {
        let v: Value = http
            .get(format!("{url}/v1/workers"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["workers"].as_array().is_some_and(|w| !w.is_empty()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the worker never registered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let id = create_at(&http, &url, &request(3)).await;
    // Far inside the 600 s poll: only the notification can have woken it.
    let a = wait_for(&http, &url, &id, Duration::from_secs(60), |a| {
        state(a) != "requested"
    })
    .await;
    for child in [&mut w.0, &mut stack.api.0] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert_ne!(state(&a), "requested", "{a:#}");
}

/// `reelay worker --health-port`: `GET /healthz` on a listener of its own,
/// 200 while the store answers and its loops run, and nothing else served
/// there. On Postgres, cut off from the store it answers 503, and 200 once
/// the store is back.
#[tokio::test]
async fn a_worker_with_a_health_port_answers_healthz_there_and_nothing_else() {
    let stack = Stack::start().await;
    let http = &stack.http;

    // On Postgres the worker reaches the store through a proxy the test cuts.
    let proxy = if on_postgres() {
        Some(PgProxy::start().await)
    } else {
        None
    };
    let routed = proxy
        .as_ref()
        .map(|p| p.route(&test_settings(stack.db()).database_url()));
    let mut extra = vec![("REELAY__DATABASE__ACQUIRE_TIMEOUT_SECS", "2")];
    extra.extend(routed.iter().map(|u| ("REELAY__DATABASE__URL", u.as_str())));
    let port = free_port().to_string();
    let args = ["--health-port", port.as_str()];
    let w = stack.worker("worker", &args, &extra);
    let health = format!("http://127.0.0.1:{port}/healthz");

    let (status, body) = health_leaves(http, &health, 0).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let other = http
        .get(format!("http://127.0.0.1:{port}/v1/assets"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let other: Value = other.json().await.unwrap();
    assert_eq!(other["error"]["code"], "not_found", "{other:#}");
    let post = http.post(&health).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(listening(w.0.id()), 1, "the health port is all it binds");

    if let Some(proxy) = &proxy {
        proxy.cut();
        let (status, body) = health_leaves(http, &health, 200).await;
        assert_unavailable(status, &body, "the job store");
        proxy.restore();
        let (status, body) = health_leaves(http, &health, 503).await;
        assert_eq!((status, body.as_str()), (200, "ok"));
    }
}
