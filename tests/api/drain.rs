//! SIGTERM drains a worker: it claims nothing more, lets the running step
//! finish within `worker.drain_secs`, and hands back (lease released at
//! once) a step that does not, which the next process resumes.

use crate::helpers::*;
use crate::restart::{start_with, state, wait_healthy, Ports};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

pub(crate) fn sigterm(child: &Child) {
    // SAFETY: kill(2) on our own child, not yet reaped.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
}

/// Waits for the process to exit on its own (no kill).
pub(crate) fn exits_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "still running {limit:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The variation's lease and stage detail, read from the job store.
async fn lease_and_detail(data: &Path) -> (i64, Option<String>) {
    let db = open_db(data).await;
    on_db!(db, p => sqlx::query_as("SELECT lease_until, stage_detail FROM variations")
        .fetch_one(p)
        .await
        .unwrap())
}

async fn create_and_wait_transcoding(http: &reqwest::Client, url: &str) -> String {
    let id = create_at(http, url, &request(3)).await;
    wait_for(http, url, &id, Duration::from_secs(180), |a| {
        state(a) == "transcoding"
    })
    .await;
    id
}

#[tokio::test]
async fn a_step_that_outlasts_the_drain_is_handed_back_and_the_next_process_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let url = format!("http://127.0.0.1:{}", ports.api);
    let http = reqwest::Client::new();
    // Leases long enough that only a hand-back lets the next process in soon.
    let env = [
        ("REELAY__WORKER__DRAIN_SECS", "0"),
        ("REELAY__WORKER__LEASE_SECS", "600"),
    ];
    let mut child = start_with(dir.path(), &ports, &env);
    wait_healthy(&http, &url).await;
    let id = create_and_wait_transcoding(&http, &url).await;

    sigterm(&child);
    assert!(exits_within(&mut child, Duration::from_secs(60)).success());
    let (lease, detail) = lease_and_detail(dir.path()).await;
    assert_eq!(lease, 0, "the lease was released");
    assert_eq!(
        detail.as_deref(),
        Some("handed back by a stopping worker; the next one resumes it")
    );

    // With a 600 s lease, only the released one lets this finish in time.
    let mut child = start_with(dir.path(), &ports, &env);
    wait_healthy(&http, &url).await;
    let a = wait_for(&http, &url, &id, Duration::from_secs(300), |a| {
        a["status"] != "processing"
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(a["status"], "published", "{a:#}");
    let notes = history_notes(&a["variations"][0]);
    assert!(
        notes.contains(&"transcode resumed after an interrupted run"),
        "{notes:?}"
    );
}

#[tokio::test]
async fn a_step_that_ends_within_the_drain_finishes_before_the_process_exits() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let url = format!("http://127.0.0.1:{}", ports.api);
    let http = reqwest::Client::new();
    let env = [("REELAY__WORKER__DRAIN_SECS", "120")];
    let mut child = start_with(dir.path(), &ports, &env);
    wait_healthy(&http, &url).await;
    create_and_wait_transcoding(&http, &url).await;

    sigterm(&child);
    let status = exits_within(&mut child, Duration::from_secs(150));
    assert!(status.success(), "{status:?}");
    let (lease, detail) = lease_and_detail(dir.path()).await;
    assert_eq!(lease, 0, "the finished step let its lease go");
    assert_ne!(
        detail.as_deref(),
        Some("handed back by a stopping worker; the next one resumes it")
    );

    // The transcode ran to its end during the drain; nothing new was claimed.
    let db = open_db(dir.path()).await;
    let history: Vec<(String,)> = on_db!(db, p => sqlx::query_as(
        "SELECT to_state FROM transitions ORDER BY seq"
    )
    .fetch_all(p)
    .await
    .unwrap());
    let history: Vec<&str> = history.iter().map(|(s,)| s.as_str()).collect();
    assert_eq!(
        history.last(),
        Some(&"checking"),
        "the drained process stopped after the step: {history:?}"
    );
    assert_eq!(
        history.iter().filter(|to| **to == "transcoding").count(),
        1,
        "transcoded once, never resumed: {history:?}"
    );
}
