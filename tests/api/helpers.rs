//! Test harness: each test gets its own data dir, ports and API key, and the
//! whole embedded stack (object store, Runware simulator, job store,
//! workers). The job store is SQLite in the data dir, or with
//! `REELAY_TEST_DB=postgres` a fresh schema of `REELAY_TEST_POSTGRES_URL`
//! (kept for the data dir, so a restarted app finds its rows).

use reelay::config::Settings;
use reelay::media::process::Runner;
use reelay::media::synth::{render_clip, ClipSpec};
use reelay::secret::Secret;
use reelay::simulator::Simulator;
use reelay::startup::Application;
use reelay::storage::{ObjectKey, ObjectStore};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const KEY: &str = "test-api-key";

pub fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

pub fn key_hash() -> String {
    hex::encode(reelay::api::hash_key(KEY))
}

pub fn test_settings(data: &Path) -> Settings {
    let mut s = Settings::load_from(&config_dir(), "test").expect("test config loads");
    s.data.dir = data.to_path_buf();
    s.api.key_sha256 = vec![key_hash()];
    if let Some(url) = postgres_url(data) {
        s.database.url = Secret::new(url);
        // A Postgres-backed process refuses to start without the keys a
        // deployment shares. The signing key under its older name, which
        // tests that check signatures set to their own.
        s.secrets.webhook_token_key = Secret::new("ab".repeat(32));
        if s.callbacks.secret.is_empty() {
            s.callbacks.secret = Secret::new("test-callback-signing-key");
        }
    }
    s
}

/// The `REELAY__…` variables that give a `reelay` process started by a test
/// the same job store as [`test_settings`] (none on SQLite: the data dir's).
pub fn db_env(data: &Path) -> Vec<(&'static str, String)> {
    if !on_postgres() {
        return Vec::new();
    }
    let s = test_settings(data);
    vec![
        ("REELAY__DATABASE__URL", s.database_url()),
        (
            "REELAY__SECRETS__WEBHOOK_TOKEN_KEY",
            s.secrets.webhook_token_key.expose().to_string(),
        ),
        (
            "REELAY__SECRETS__CALLBACK_SIGNING_KEY",
            s.callback_signing_key().expose().to_string(),
        ),
    ]
}

/// Whether the tests run on Postgres (`REELAY_TEST_DB=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("REELAY_TEST_DB").is_ok_and(|v| v == "postgres")
}

/// On Postgres: the `database.url` of the data dir's own schema, made the
/// first time (its name kept in `{data}/pg-schema`).
fn postgres_url(data: &Path) -> Option<String> {
    if !on_postgres() {
        return None;
    }
    let base = std::env::var("REELAY_TEST_POSTGRES_URL")
        .expect("REELAY_TEST_DB=postgres needs REELAY_TEST_POSTGRES_URL (scripts/test.sh sets it)");
    let file = data.join("pg-schema");
    let schema = match std::fs::read_to_string(&file) {
        Ok(name) => name,
        Err(_) => {
            let name = format!("t_{}", uuid::Uuid::new_v4().simple());
            create_schema(&base, &name);
            std::fs::create_dir_all(data).unwrap();
            std::fs::write(&file, &name).unwrap();
            name
        }
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-csearch_path%3D{schema}"))
}

/// `CREATE SCHEMA` on a runtime of its own: settings are built in sync code,
/// which may itself run on the test's runtime.
fn create_schema(url: &str, name: &str) {
    let (url, sql) = (url.to_string(), format!("CREATE SCHEMA {name}"));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let admin = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        })
    })
    .join()
    .expect("the test schema is created");
}

pub struct TestApp {
    pub app: Option<Application>,
    pub url: String,
    pub http: reqwest::Client,
    /// The data dir.
    pub data: PathBuf,
    /// Removes the data dir with the app, unless the test owns it.
    pub _dir: Option<tempfile::TempDir>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like `spawn_app`, with settings changed first (policy thresholds, faults, deadlines...).
pub async fn spawn_app_with(change: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut app = spawn_app_in(dir.path(), change).await;
    app._dir = Some(dir);
    app
}

/// An app on a data dir the caller keeps, so it can be stopped and started
/// again on the same state.
pub async fn spawn_app_in(data: &Path, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(data);
    tweak(&mut settings);
    let app = Application::build(settings).await.expect("app starts");
    TestApp {
        url: app.api_url(),
        app: Some(app),
        http: reqwest::Client::new(),
        data: data.to_path_buf(),
        _dir: None,
    }
}

/// A small real clip (H.264 + AAC MP4 unless `sound` is false) from the
/// project's own synthetic footage generator; `seed` changes the bytes.
pub async fn tiny_clip(width: u32, height: u32, secs: u32, sound: bool, seed: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clip.mp4");
    let spec = ClipSpec {
        width,
        height,
        duration_secs: secs,
        sound,
        seed,
        ..ClipSpec::default()
    };
    let runner = Runner::new(&reelay::media::MediaConfig::default());
    render_clip(&runner, &spec, &out, Duration::from_secs(120))
        .await
        .expect("ffmpeg renders the clip");
    std::fs::read(&out).unwrap()
}

impl TestApp {
    pub fn application(&self) -> &Application {
        self.app.as_ref().expect("app running")
    }

    /// A client for the app's object store (the embedded one).
    pub fn objects(&self) -> ObjectStore {
        ObjectStore::new(&self.application().settings.storage).unwrap()
    }

    pub fn events_token(&self) -> String {
        self.application().events_token().expose().to_string()
    }

    /// PUTs a master into the masters bucket as a person would, with
    /// `x-amz-meta-*` metadata; returns its ETag without quotes.
    pub async fn put_master(&self, key: &str, bytes: Vec<u8>, metadata: &[(&str, &str)]) -> String {
        let bucket = self.application().settings.storage.masters_bucket.clone();
        self.objects()
            .put_bytes_with_metadata(
                &bucket,
                &ObjectKey::parse(key).unwrap(),
                bytes,
                "video/mp4",
                "no-cache",
                metadata,
            )
            .await
            .unwrap()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string()
    }

    /// The campaign's assets (newest first).
    pub async fn campaign(&self, campaign: &str) -> Vec<Value> {
        let v: Value = self
            .http
            .get(format!(
                "{}/v1/assets?campaign={campaign}&limit=500",
                self.url
            ))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["assets"].as_array().cloned().unwrap_or_default()
    }

    pub async fn post_asset(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/assets", self.url))
            .bearer_auth(KEY)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The embedded Runware simulator.
    pub fn sim(&self) -> &Simulator {
        &self
            .app
            .as_ref()
            .expect("running")
            .sim
            .as_ref()
            .expect("the simulator runs when no Runware key is set")
            .sim
    }

    /// The presigned upload URL reelay handed the simulator for `task`
    /// (from the task file the simulator keeps).
    pub fn upload_url(&self, task: &str) -> String {
        let path = self.data.join("runware-sim").join(format!("{task}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("task file {}: {e}", path.display()));
        let v: Value = serde_json::from_str(&text).unwrap();
        v["task"]["uploadEndpoint"]
            .as_str()
            .unwrap_or_else(|| panic!("no uploadEndpoint in {v:#}"))
            .to_string()
    }

    /// Tasks the simulator keeps on disk (`{data}/runware-sim/{taskUUID}.json`):
    /// every task ever created for this app, across restarts.
    pub fn task_files(&self) -> usize {
        task_files(self.data.as_path())
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }

    /// Stops the app and starts a new one on the same data dir (new ports).
    pub async fn restart(mut self) -> TestApp {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
        let app = Application::build(test_settings(self.data.as_path()))
            .await
            .expect("app restarts");
        TestApp {
            url: app.api_url(),
            app: Some(app),
            http: self.http.clone(),
            data: self.data.clone(),
            _dir: self._dir,
        }
    }

    /// Like `restart`, with settings changed first.
    pub async fn restart_with(mut self, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
        let mut settings = test_settings(self.data.as_path());
        tweak(&mut settings);
        let app = Application::build(settings).await.expect("app restarts");
        TestApp {
            url: app.api_url(),
            app: Some(app),
            http: self.http.clone(),
            data: self.data.clone(),
            _dir: self._dir,
        }
    }

    /// The job store's database, opened beside the running app (tests that
    /// age rows); queries go through [`on_db!`], written once for both.
    pub async fn db(&self) -> TestDb {
        open_db(&self.data).await
    }
}

/// The job store of the data dir `data` (also for `reelay` processes a test
/// started with [`db_env`]).
pub async fn open_db(data: &Path) -> TestDb {
    let url = test_settings(data).database_url();
    if on_postgres() {
        TestDb::Postgres(sqlx::PgPool::connect(&url).await.unwrap())
    } else {
        TestDb::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap())
    }
}

/// The app's database as the tests reach it.
pub enum TestDb {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// `on_db!(db, p => body)`: `body` once per backend with `p` the pool, so a
/// test's SQL (with `$1, $2, …` placeholders, JSON bound as
/// `sqlx::types::Json`) is written once and runs on SQLite and Postgres.
#[allow(unused_macros)] // tests/browser.rs shares this file
macro_rules! on_db {
    ($db:expr, $p:ident => $body:expr) => {
        match &$db {
            $crate::helpers::TestDb::Sqlite($p) => $body,
            $crate::helpers::TestDb::Postgres($p) => $body,
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_db;

/// A request the model accepts: 16:9 4K, `duration` seconds, with sound.
pub fn request(duration: u32) -> Value {
    json!({
        "campaign": "test",
        "generation": {
            "positivePrompt": "a red car on a mountain road",
            "width": 3840,
            "height": 2160,
            "duration": duration,
            "outputQuality": 80,
            "providerSettings": {"klingai": {"sound": true}}
        }
    })
}

pub async fn get_asset(http: &reqwest::Client, url: &str, id: &str) -> Value {
    http.get(format!("{url}/v1/assets/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls until `done` says yes or the time is up; returns the last view.
pub async fn wait_for(
    http: &reqwest::Client,
    url: &str,
    id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let a = get_asset(http, url, id).await;
        if done(&a) {
            return a;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?}; last view: {a:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls the campaign until `done` holds for its asset list.
pub async fn wait_for_campaign(
    app: &TestApp,
    campaign: &str,
    limit: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let assets = app.campaign(campaign).await;
        if done(&assets) {
            return assets;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?}; last view: {assets:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many times a variation's history enters `state`.
pub fn entered(variation: &Value, state: &str) -> usize {
    variation["history"]
        .as_array()
        .map(|h| h.iter().filter(|t| t["to"] == state).count())
        .unwrap_or(0)
}

/// Changes of state into `state` (a note on a state, such as an ignored
/// write, is a transition to the same state and does not count).
pub fn changes_into(variation: &Value, state: &str) -> usize {
    variation["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter(|t| t["to"] == state && t["from"] != state)
                .count()
        })
        .unwrap_or(0)
}

/// The notes of a variation's history, in order.
pub fn history_notes(variation: &Value) -> Vec<&str> {
    variation["history"]
        .as_array()
        .map(|h| h.iter().filter_map(|t| t["note"].as_str()).collect())
        .unwrap_or_default()
}

/// A variation QC turned down after exactly one re-encode at higher
/// quality, never published, its reason naming `measure` ("SSIM", "VMAF").
pub fn assert_remediated_once_then_rejected(asset: &Value, measure: &str) {
    assert_eq!(asset["status"], "rejected", "{asset:#}");
    let v = &asset["variations"][0];
    assert_eq!(v["reason"]["code"], "qcFailed");
    assert!(
        v["reason"]["message"].as_str().unwrap().contains(measure),
        "{}",
        v["reason"]
    );
    let notes = history_notes(v);
    let remediations = notes
        .iter()
        .filter(|n| n.starts_with("remediation:"))
        .count();
    assert_eq!(remediations, 1, "exactly one remediation: {notes:?}");
    assert!(
        notes.iter().any(|n| n.contains("higher quality started")),
        "{notes:?}"
    );
    assert!(v.get("published").is_none() || v["published"].is_null());
}

pub fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn stream<'a>(probe: &'a Value, kind: &str) -> Option<&'a Value> {
    probe["streams"]
        .as_array()?
        .iter()
        .find(|s| s["codec_type"] == kind)
}

/// Task files in a data dir's simulator state.
pub fn task_files(data: &Path) -> usize {
    simulator_tasks(data).len()
}

/// The taskUUIDs the simulator of a data dir created (its task files,
/// `{taskUUID}.json`), sorted.
pub fn simulator_tasks(data: &Path) -> Vec<String> {
    let mut tasks: Vec<String> = std::fs::read_dir(data.join("runware-sim"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter_map(|p| Some(p.file_stem()?.to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    tasks.sort();
    tasks
}

/// Posts `body` and returns the new asset's id.
pub async fn create(app: &TestApp, body: &Value) -> String {
    create_at(&app.http, &app.url, body).await
}

/// Posts `body` to the server at `url` (a `reelay` process a test started)
/// and returns the new asset's id.
pub async fn create_at(http: &reqwest::Client, url: &str, body: &Value) -> String {
    let res = http
        .post(format!("{url}/v1/assets"))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}
