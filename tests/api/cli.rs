//! The real `reelay` binary: the client CLI against a real embedded server,
//! `reelay config`, and JSON logs with request ids from `reelay serve`.
//! One published asset serves the CLI and the `/metrics` checks.

use crate::helpers::*;
use serde_json::Value;
use std::process::{Command, Stdio};

fn reelay() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reelay"));
    c.env("REELAY_CONFIG_DIR", config_dir())
        .env("REELAY_ENVIRONMENT", "test")
        .env_remove("REELAY_URL")
        .env_remove("REELAY_API_KEY")
        .env_remove("REELAY_LOG_FORMAT")
        .env_remove("REELAY_LOG");
    c
}

/// Runs `reelay` off the async runtime; (exit code, stdout, stderr).
async fn run(mut c: Command) -> (i32, String, String) {
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn counter(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

async fn scrape(app: &TestApp) -> String {
    let res = app
        .http
        .get(format!("{}/metrics", app.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    res.text().await.unwrap()
}

/// A receiver of callbacks that answers 200 to each.
async fn receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn the_cli_creates_and_watches_an_asset_to_published_and_metrics_count_it() {
    let app = spawn_app().await;
    let hook = receiver().await;
    let before = scrape(&app).await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("generation.json");
    std::fs::write(
        &file,
        serde_json::to_string(&request(3)["generation"]).unwrap(),
    )
    .unwrap();
    let mut c = reelay();
    c.args(["assets", "create", "--campaign", "cli", "--file"])
        .arg(&file)
        .args(["--callback-url", &hook, "--watch", "--timeout-secs", "300"])
        .env("REELAY_URL", &app.url)
        .env("REELAY_API_KEY", KEY);
    let (code, out, err) = run(c).await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    // Not a terminal: plain lines, no escape codes; bars for the stages.
    assert!(!out.contains('\x1b'), "{out:?}");
    assert!(
        out.contains("v0 transcoding") || out.contains("v0 checking"),
        "{out}"
    );
    assert!(out.contains(": published"), "{out}");
    assert!(out.contains("QC PASS"), "{out}");
    assert!(out.contains("manifest  http"), "{out}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("asset ")?.split_once(" created"))
        .map(|(id, _)| id.to_string())
        .expect("the id is printed");

    // get and list as JSON, through --url/--api-key this time.
    let mut c = reelay();
    c.args([
        "assets",
        "get",
        &id,
        "--json",
        "--url",
        &app.url,
        "--api-key",
        KEY,
    ]);
    let (code, out, err) = run(c).await;
    assert_eq!(code, 0, "{err}");
    let a: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(a["status"], "published");
    let mut c = reelay();
    c.args([
        "assets",
        "list",
        "--campaign",
        "cli",
        "--json",
        "--url",
        &app.url,
        "--api-key",
        KEY,
    ]);
    let (code, out, _) = run(c).await;
    assert_eq!(code, 0);
    let l: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(l["assets"][0]["id"], id.as_str());

    // The callback is delivered before the counters are read.
    wait_for(
        &app.http,
        &app.url,
        &id,
        std::time::Duration::from_secs(30),
        |a| {
            a["notifications"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n["delivered_at"].is_string()))
        },
    )
    .await;
    let after = scrape(&app).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        let (b, a) = (
            counter(&before, name, labels),
            counter(&after, name, labels),
        );
        assert!(a > b, "{name}{labels:?} did not move: {b} -> {a}\n{after}");
    };
    for stage in ["submit", "generation", "transcode", "check", "publish"] {
        moved("reelay_stage_duration_seconds_count", &[("stage", stage)]);
    }
    moved(
        "reelay_ffmpeg_runs_total",
        &[("kind", "transcode"), ("outcome", "ok")],
    );
    moved(
        "reelay_ffmpeg_duration_seconds_count",
        &[("kind", "transcode")],
    );
    moved(
        "reelay_ffmpeg_runs_total",
        &[("kind", "ffprobe"), ("outcome", "ok")],
    );
    moved(
        "reelay_http_requests_total",
        &[
            ("method", "POST"),
            ("route", "/v1/assets"),
            ("status", "202"),
        ],
    );
    moved(
        "reelay_http_requests_total",
        &[("route", "/v1/assets/{id}"), ("status", "200")],
    );
    moved(
        "reelay_callback_deliveries_total",
        &[("kind", "callback"), ("outcome", "delivered")],
    );
    // From this app's own store: exact.
    assert_eq!(
        counter(&after, "reelay_variations", &[("state", "published")]),
        1.0
    );
    assert_eq!(
        counter(&after, "reelay_variations", &[("state", "requested")]),
        0.0
    );
    let cost = counter(&after, "reelay_generator_cost_usd_total", &[]);
    assert!((cost - 1.26).abs() < 1e-6, "{cost}");
    // Raw paths never become labels.
    assert!(!after.contains(&id), "an asset id is in a label");
}

#[tokio::test]
async fn watch_exits_non_zero_when_the_asset_fails_and_bad_input_names_the_field() {
    let app = spawn_app_with(|s| s.simulator.faults.insufficient_credits = true).await;
    let mut c = reelay();
    c.args([
        "assets",
        "create",
        "--prompt",
        "a red car",
        "--watch",
        "--timeout-secs",
        "120",
    ])
    .args(["--url", &app.url, "--api-key", KEY]);
    let (code, out, err) = run(c).await;
    assert_eq!(code, 3, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains(": failed"), "{out}");
    assert!(
        out.contains("insufficientCredits") || out.contains("credit"),
        "{out}"
    );

    // A field the API refuses: exit 1, the answer names the field and rule.
    let mut c = reelay();
    c.args([
        "assets",
        "create",
        "--prompt",
        "x",
        "--profile",
        "no-such-profile",
    ])
    .args(["--url", &app.url, "--api-key", KEY]);
    let (code, _, err) = run(c).await;
    assert_eq!(code, 1);
    assert!(err.contains("400") && err.contains("profile"), "{err}");

    // No key: refused before any request.
    let mut c = reelay();
    c.args(["assets", "get", "abc", "--url", &app.url]);
    let (code, _, err) = run(c).await;
    assert_eq!(code, 1);
    assert!(err.contains("REELAY_API_KEY"), "{err}");
}

#[tokio::test]
async fn list_pages_and_filters_cancel_watch_and_reprocess_from_the_cli() {
    // Nothing is rendered while this runs: the assets stay in the generator.
    let app = spawn_app_with(|s| s.simulator.generation_secs = 600.0).await;
    let cli = |args: &[&str]| {
        let mut c = reelay();
        c.args(args)
            .env("REELAY_URL", &app.url)
            .env("REELAY_API_KEY", KEY);
        run(c)
    };
    let mut made = Vec::new();
    for _ in 0..3 {
        let (code, out, err) = cli(&[
            "assets",
            "create",
            "--campaign",
            "cli-pages",
            "--prompt",
            "a red car",
        ])
        .await;
        assert_eq!(code, 0, "{err}");
        made.push(out.trim().to_string());
    }

    // Pages: the first names the next by its cursor, the last names none.
    let (code, first, err) =
        cli(&["assets", "list", "--campaign", "cli-pages", "--limit", "2"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(first.starts_with(&made[2]), "newest first:\n{first}");
    let cursor = first
        .lines()
        .find_map(|l| l.strip_prefix("more: the same with --cursor "))
        .unwrap_or_else(|| panic!("no cursor printed:\n{first}"));
    let (code, second, _) = cli(&[
        "assets",
        "list",
        "--campaign",
        "cli-pages",
        "--limit",
        "2",
        "--cursor",
        cursor,
    ])
    .await;
    assert_eq!(code, 0);
    assert_eq!(second.lines().count(), 1, "{second}");
    assert!(second.starts_with(&made[0]), "{second}");

    // Cancel, then what follows from it: watch ends non-zero, reprocess is refused.
    let (code, out, err) = cli(&["assets", "cancel", &made[1]]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("asset {}: cancelled", made[1]));
    let (code, out, _) = cli(&[
        "assets",
        "list",
        "--campaign",
        "cli-pages",
        "--state",
        "cancelled",
        "--json",
    ])
    .await;
    assert_eq!(code, 0);
    let l: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(l["count"], 1, "{l:#}");
    assert_eq!(l["assets"][0]["id"], made[1].as_str());
    let (code, out, err) = cli(&["assets", "watch", &made[1], "--timeout-secs", "30"]).await;
    assert_eq!(code, 3, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("cancelled"), "{out}");
    let (code, _, err) = cli(&["assets", "reprocess", &made[1]]).await;
    assert_eq!(code, 1);
    assert!(err.contains("409"), "{err}");

    // A filter value the server does not know: exit 1, the parameter named.
    let (code, _, err) = cli(&["assets", "list", "--state", "done"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("400") && err.contains("state"), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn config_prints_effective_toml_with_secrets_hidden_and_derived_values() {
    let mut c = reelay();
    c.arg("config")
        .env("REELAY__RUNWARE__API_KEY", "sentinel-runware-key")
        .env("REELAY__CDN__BASE_URL", "https://cdn.example/ads/");
    let (code, out, err) = run(c).await;
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("sentinel"), "{out}");
    let doc: toml::Value = toml::from_str(&out).unwrap();
    assert_eq!(doc["runware"]["api_key"].as_str(), Some("<set>"));
    assert_eq!(doc["callbacks"]["secret"].as_str(), Some("<unset>"));
    assert_eq!(doc["worker"]["lease_secs"].as_integer(), Some(6));
    let d = &doc["derived"];
    assert_eq!(d["generator_mode"].as_str(), Some("simulator"));
    assert_eq!(d["cdn_base_url"].as_str(), Some("https://cdn.example/ads"));
    assert_eq!(d["object_store"].as_str(), Some("embedded"));
    assert_eq!(d["environment"].as_str(), Some("test"));

    let mut c = reelay();
    c.args(["config", "--json"]);
    let (code, out, _) = run(c).await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["events"]["token"], "<unset>");
    assert!(v["derived"]["cdn_base_url"]
        .as_str()
        .unwrap()
        .ends_with("/cdn"));
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_and_carry_the_request_id() {
    let data = tempfile::tempdir().unwrap();
    let mut c = reelay();
    c.arg("serve")
        .env("REELAY_LOG_FORMAT", "json")
        .env("REELAY__DATA__DIR", data.path())
        .env("REELAY__API__KEY_SHA256", key_hash())
        .envs(db_env(data.path()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        lines
            .find_map(|l| {
                l.ok()?
                    .strip_prefix("reelay listening on ")
                    .map(str::to_string)
            })
            .expect("the server prints its URL")
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let res = http
        .get(format!("{url}/v1/assets/nope"))
        .header("x-request-id", "cli-test-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["x-request-id"], "cli-test-req-42");
    let res = http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // A request whose handler and store calls write lines of their own.
    let res = http
        .post(format!("{url}/v1/assets"))
        .bearer_auth(KEY)
        .header("x-request-id", "cli-test-req-43")
        .json(&request(3))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let created: Value = res.json().await.unwrap();
    child.kill().unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !log.contains('\x1b'),
        "ANSI codes in a log that is not a terminal"
    );
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 2, "{log}");
    let ours: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == "cli-test-req-42")
        .collect();
    assert!(!ours.is_empty(), "{log}");
    for l in &ours {
        assert_eq!(l["span"]["route"], "/v1/assets/{id}", "{l}");
    }
    assert!(ours.iter().any(|l| l["fields"]["status"] == 401), "{log}");

    // The handler's own line is in the request's span, under the handler's span.
    let requested: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "asset requested")
        .collect();
    assert_eq!(requested.len(), 1, "{log}");
    let line = requested[0];
    assert_eq!(line["fields"]["asset"], created["id"], "{line}");
    let spans: Vec<&str> = line["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(spans, ["http_request", "assets.create"], "{line}");
    assert_eq!(line["spans"][0]["request_id"], "cli-test-req-43", "{line}");
    let answered = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "cli-test-req-43" && l["fields"]["status"] == 202);
    assert!(answered.is_some(), "{log}");
}
