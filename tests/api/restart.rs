//! Kill the real `reelay serve` process (SIGKILL, no clean-up) in the middle
//! of stages and start it again on the same data dir: the asset still ends
//! published, exactly once.

use crate::helpers::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) struct Ports {
    pub(crate) api: u16,
    pub(crate) s3: u16,
    pub(crate) sim: u16,
}

impl Ports {
    pub(crate) fn free() -> Self {
        Ports {
            api: free_port(),
            s3: free_port(),
            sim: free_port(),
        }
    }
}

fn start(data: &Path, ports: &Ports) -> Child {
    start_with(data, ports, &[])
}

/// `reelay serve` on `data` with the test settings and `extra` environment.
pub(crate) fn start_with(data: &Path, ports: &Ports, extra: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_reelay"))
        .arg("serve")
        .envs(extra.iter().copied())
        .env("REELAY_CONFIG_DIR", config_dir())
        .env("REELAY_ENVIRONMENT", "test")
        .env("REELAY__DATA__DIR", data)
        .env("REELAY__SERVER__PORT", ports.api.to_string())
        .env("REELAY__STORAGE__EMBEDDED_PORT", ports.s3.to_string())
        .env("REELAY__SIMULATOR__PORT", ports.sim.to_string())
        .env("REELAY__API__KEY_SHA256", key_hash())
        .env("REELAY__SIMULATOR__GENERATION_SECS", "3")
        .envs(db_env(data))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("reelay starts")
}

pub(crate) async fn wait_healthy(http: &reqwest::Client, url: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(r) = http.get(format!("{url}/healthz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("reelay did not become healthy");
}

pub(crate) fn state(a: &Value) -> String {
    a["variations"][0]["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn killing_the_process_mid_stage_still_ends_published_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let url = format!("http://127.0.0.1:{}", ports.api);
    let http = reqwest::Client::new();

    let mut child = start(dir.path(), &ports);
    wait_healthy(&http, &url).await;
    let id = create_at(&http, &url, &request(3)).await;

    // Kill while the generator is working (the simulator dies with us too).
    wait_for(&http, &url, &id, Duration::from_secs(60), |a| {
        matches!(state(a).as_str(), "submitted" | "generating")
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();

    let mut child = start(dir.path(), &ports);
    wait_healthy(&http, &url).await;
    // Kill again in the middle of the transcode.
    wait_for(&http, &url, &id, Duration::from_secs(180), |a| {
        state(a) == "transcoding"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill().unwrap();
    child.wait().unwrap();

    let mut child = start(dir.path(), &ports);
    wait_healthy(&http, &url).await;
    let a = wait_for(&http, &url, &id, Duration::from_secs(300), |a| {
        a["status"] != "processing"
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(a["status"], "published", "{a:#}");
    let history: Vec<&str> = a["variations"][0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        history.iter().filter(|s| **s == "published").count(),
        1,
        "{history:?}"
    );
    assert_eq!(
        history.iter().filter(|s| **s == "submitted").count(),
        1,
        "one task only: {history:?}"
    );
    // The generator saw one task, though the process died while it ran.
    assert_eq!(task_files(dir.path()), 1, "one task in the simulator");
    // The interrupted transcode was picked up again, not skipped.
    assert!(
        history.iter().filter(|s| **s == "transcoding").count() >= 2,
        "{history:?}"
    );
}
