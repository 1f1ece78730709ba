//! Layered settings: `config/default.toml`, then `config/{environment}.toml`,
//! then `REELAY__SECTION__KEY` environment variables. Read once into
//! [`Settings`]; every timeout and limit is a documented key in default.toml.

use crate::media::MediaConfig;
use crate::runware::ModelSpec;
use crate::secret::Secret;
use crate::storage::StorageConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Defined beside the code that reads them, so media and policy need
/// nothing of config.
pub use crate::media::profile::ProfileSettings;
pub use crate::policy::PolicySettings;

mod secrets;
pub use secrets::{SecretsSettings, SHARED_SECRET_KEYS};

/// The `REELAY_ENVIRONMENT` that must never run the simulator.
pub const PRODUCTION: &str = "production";

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub data: DataSettings,
    pub database: DatabaseSettings,
    pub storage: StorageConfig,
    pub runware: RunwareSettings,
    pub simulator: SimulatorSettings,
    pub media: MediaConfig,
    pub worker: WorkerSettings,
    pub policy: PolicySettings,
    pub cdn: CdnSettings,
    pub api: ApiSettings,
    pub events: EventsSettings,
    pub callbacks: CallbackSettings,
    /// The keys every process of one deployment must share (`[secrets]`).
    #[serde(default)]
    pub secrets: SecretsSettings,
    pub outbound: crate::outbound::OutboundSettings,
    pub uploads: UploadSettings,
    pub profiles: BTreeMap<String, ProfileSettings>,
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// Buyers' delivery specs, by name (`[destinations.NAME]`).
    #[serde(default)]
    pub destinations: crate::destinations::Destinations,
    /// The `REELAY_ENVIRONMENT` the layers were loaded for (not a key:
    /// startup refuses some set-ups in `production`).
    #[serde(skip)]
    pub environment: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub public_url: String,
    pub request_timeout_secs: u64,
    /// On stop, workers and the server get this long to finish before they
    /// are aborted (their steps resume on the next start).
    pub shutdown_timeout_secs: u64,
    /// A connection that has not sent a whole request head this long after
    /// it began one (or after its last answer) is closed.
    pub header_read_timeout_secs: u64,
    /// Larger request bodies get 413, on every endpoint.
    pub max_body_bytes: usize,
    /// Longer URIs (path and query) get 414.
    pub max_uri_bytes: usize,
    /// Sustained requests per second from one client IP, and the burst on
    /// top; 0: no limit. Behind a CDN or proxy every request comes from its
    /// addresses: raise it or set 0.
    pub rate_limit_ip_per_sec: f64,
    pub rate_limit_ip_burst: u32,
    /// The same per API key (the asset endpoints).
    pub rate_limit_key_per_sec: f64,
    pub rate_limit_key_burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DataSettings {
    pub dir: PathBuf,
    /// A master is downloaded only when its size plus this much is free on
    /// the work folder's file system; else its variation waits.
    #[serde(default = "default_free_space_margin_bytes")]
    pub free_space_margin_bytes: u64,
}

fn default_free_space_margin_bytes() -> u64 {
    1 << 30
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: Secret,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
}

/// Where `videoInference` tasks go. Explicit, so a production start without
/// a key fails instead of quietly generating placeholder footage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunwareMode {
    /// The built-in simulator, started in-process; `runware.api_url` and
    /// `runware.api_key` are not used.
    Simulator,
    /// Runware itself at `runware.api_url`, with `runware.api_key`.
    Live,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RunwareSettings {
    pub mode: RunwareMode,
    pub api_url: String,
    /// REST (the default) or Runware's WebSocket API.
    #[serde(default)]
    pub transport: crate::runware::client::Transport,
    #[serde(default = "default_ws_url")]
    pub ws_url: String,
    pub api_key: Secret,
    pub model: String,
    pub request_timeout_secs: u64,
    pub retry_deadline_secs: u64,
    /// Ceiling of the wait before the first retry of a failed call; doubles
    /// per retry (full jitter) up to `backoff_max_secs`. A `Retry-After`
    /// from Runware is honoured when it asks for longer.
    pub backoff_initial_ms: u64,
    pub backoff_max_secs: u64,
    pub task_deadline_secs: u64,
    pub upload_url_expiry_secs: u64,
    pub upload_grace_secs: u64,
    /// How long the arrival stage waits on its one result poll once the
    /// master is in the bucket (so the cost is recorded without a webhook).
    #[serde(default = "default_result_poll_timeout_secs")]
    pub result_poll_timeout_secs: u64,
    pub resubmit_missing_upload: bool,
    pub model_spec: ModelSpec,
}

fn default_ws_url() -> String {
    crate::runware::client::ClientConfig::DEFAULT_WS_URL.into()
}

fn default_cors_origins() -> Vec<String> {
    vec!["*".into()]
}

fn default_result_poll_timeout_secs() -> u64 {
    10
}

fn default_ws_idle_secs() -> f64 {
    120.0
}

#[derive(Debug, Clone, Deserialize)]
pub struct SimulatorSettings {
    pub host: String,
    pub port: u16,
    pub api_key: Secret,
    pub generation_secs: f64,
    pub webhook_retry_ms: Vec<u64>,
    pub accept_fault_header: bool,
    /// Seconds without a frame after which a WebSocket connection is closed.
    #[serde(default = "default_ws_idle_secs")]
    pub ws_idle_secs: f64,
    #[serde(default)]
    pub faults: crate::simulator::Faults,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerSettings {
    pub concurrency: usize,
    pub lease_secs: u64,
    pub idle_poll_ms: u64,
    /// A step that fails this many times in a row (storage, database,
    /// network) ends its variation `failed` with `internalError`.
    /// (`max_attempts` is the same setting.)
    #[serde(default = "default_max_step_errors", alias = "max_attempts")]
    pub max_step_errors: i64,
    /// The wait before the first retry of a failed step; it doubles per
    /// retry up to `step_retry_max_secs`.
    #[serde(default = "default_step_retry_initial_ms")]
    pub step_retry_initial_ms: u64,
    #[serde(default = "default_step_retry_max_secs")]
    pub step_retry_max_secs: u64,
    /// On SIGTERM a worker claims nothing more and gives each running step
    /// this long to finish; one that does not is stopped and handed back
    /// (its lease released) for another worker to take at once.
    #[serde(default = "default_drain_secs")]
    pub drain_secs: u64,
    /// `reelay worker` only: `GET /healthz` on `health_host:health_port` (0: none).
    pub health_port: u16,
    pub health_host: String,
}

fn default_drain_secs() -> u64 {
    25
}

fn default_max_step_errors() -> i64 {
    8
}

fn default_step_retry_initial_ms() -> u64 {
    2000
}

fn default_step_retry_max_secs() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize)]
pub struct CdnSettings {
    pub prefix: String,
    pub base_url: String,
    /// Origins whose pages may read `/cdn/` files from script (ad players,
    /// publishers' sites): `["*"]` for any, else exact origins such as
    /// `https://player.example`.
    #[serde(default = "default_cors_origins")]
    pub cors_allowed_origins: Vec<String>,
    /// max-age of the mutable pointers (`manifest.json`, `vast.xml`), capped
    /// by the asset's remaining TTL.
    pub manifest_max_age_secs: u64,
    /// How long a replaced set stays after the pointers flipped away from it.
    /// At least `manifest_max_age_secs`, so a cached old pointer never names
    /// a deleted file.
    pub grace_secs: u64,
    /// How often the sweeper looks for replaced sets whose grace has ended.
    pub sweep_interval_secs: u64,
    /// Where to POST the changed pointer URLs after a flip. Empty: no purge.
    pub purge_url: String,
    /// HMAC-SHA256 key that signs purge calls (`Reelay-Signature`).
    pub purge_secret: Secret,
    /// A purge that has not succeeded this long after the flip is dropped.
    pub purge_retry_window_secs: u64,
    /// `<Impression>` URI in vast.xml; `{ad_id}` is replaced by the ad's id.
    /// Empty: `about:blank`, VAST's placeholder for "no tracking".
    pub vast_impression_url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CallbackSettings {
    /// HMAC-SHA256 key of the `Reelay-Signature` header. Empty: one is made
    /// at first start and kept in `{data.dir}/secrets/callbacks.key`.
    pub secret: Secret,
    /// Retries stop this long after the event was created.
    pub retry_window_secs: u64,
    /// First retry delay; doubles per attempt up to `backoff_max_secs`.
    pub backoff_initial_ms: u64,
    pub backoff_max_secs: u64,
    /// Timeout of one delivery attempt.
    pub request_timeout_secs: u64,
    /// How often the outbox is checked for due deliveries.
    pub poll_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UploadSettings {
    /// outputQuality assumed for a master uploaded by hand (sets its SSIM floor).
    pub output_quality: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiSettings {
    /// Hex SHA-256 of each accepted API key.
    pub key_sha256: Vec<String>,
}

/// Who may read `GET /metrics` (see `api::metrics`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MetricsSettings {
    /// Anyone who reaches the port may scrape, without a token. Off: the
    /// scraper presents `metrics.token` or an API key as a Bearer token.
    #[serde(default)]
    pub public: bool,
    /// A Bearer token for the scraper alone (empty: API keys only).
    #[serde(default)]
    pub token: Secret,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventsSettings {
    pub token: Secret,
    /// SNS topics whose SubscriptionConfirmation is confirmed (GET SubscribeURL).
    pub sns_topic_allowlist: Vec<String>,
    /// `scheme://host[:port]` patterns (`*` is one DNS label) of the SNS
    /// endpoints whose SigningCertURL and SubscribeURL reelay follows.
    pub sns_hosts: Vec<String>,
    /// S3 event dedupe records older than this are pruned.
    pub dedupe_retention_secs: u64,
}

impl Settings {
    /// Base URL of published files: `cdn.base_url`, or reelay's own CDN
    /// origin under `public_url` when none is set.
    pub fn cdn_base(&self, public_url: &str) -> String {
        if self.cdn.base_url.is_empty() {
            format!("{}/cdn", public_url.trim_end_matches('/'))
        } else {
            self.cdn.base_url.trim_end_matches('/').to_string()
        }
    }

    /// The named delivery profile, or an error listing the configured ones.
    pub fn require_profile(&self, name: &str) -> anyhow::Result<&ProfileSettings> {
        self.profiles.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
            anyhow::anyhow!("unknown profile {name:?}; configured: {}", names.join(", "))
        })
    }

    /// Loads the layers from `REELAY_CONFIG_DIR` (default `./config`) for
    /// `REELAY_ENVIRONMENT` (default `local`).
    pub fn load() -> anyhow::Result<Self> {
        let dir = std::env::var("REELAY_CONFIG_DIR").unwrap_or_else(|_| "config".into());
        let env = std::env::var("REELAY_ENVIRONMENT").unwrap_or_else(|_| "local".into());
        Self::load_from(Path::new(&dir), &env)
    }

    pub fn load_from(dir: &Path, environment: &str) -> anyhow::Result<Self> {
        Self::load_layers(dir, environment, None)
    }

    /// The layers, with `vars` in place of the process environment when
    /// given (tests: the environment is shared by every thread).
    fn load_layers(
        dir: &Path,
        environment: &str,
        vars: Option<config::Map<String, String>>,
    ) -> anyhow::Result<Self> {
        let settings = Self::layers(dir, environment, vars)?;
        // A key no setting reads is a typo (`worker.concurency`) or a stale
        // name: refused, in whichever layer it came from.
        let mut unknown = Vec::new();
        let parsed: Result<Settings, _> =
            serde_ignored::deserialize(settings, |path| unknown.push(path.to_string()));
        let mut parsed = parsed.map_err(dotted_key)?;
        if !unknown.is_empty() {
            anyhow::bail!(
                "unknown config key{} {}: no setting has this name (keys are listed in config/default.toml; REELAY__SECTION__KEY names section.key)",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", ")
            );
        }
        parsed.environment = environment.to_string();
        parsed.validate()?;
        Ok(parsed)
    }

    /// The merged layers as one tree (what `reelay config` prints, secrets
    /// replaced), from `REELAY_CONFIG_DIR` for `REELAY_ENVIRONMENT`.
    pub fn merged_layers() -> anyhow::Result<serde_json::Value> {
        let dir = std::env::var("REELAY_CONFIG_DIR").unwrap_or_else(|_| "config".into());
        let env = std::env::var("REELAY_ENVIRONMENT").unwrap_or_else(|_| "local".into());
        Ok(Self::layers(Path::new(&dir), &env, None)?.try_deserialize()?)
    }

    fn layers(
        dir: &Path,
        environment: &str,
        vars: Option<config::Map<String, String>>,
    ) -> anyhow::Result<config::Config> {
        let base = dir.join("default.toml");
        anyhow::ensure!(
            base.exists(),
            "config file {} not found (run from the repository root or set REELAY_CONFIG_DIR)",
            base.display()
        );
        Ok(config::Config::builder()
            .add_source(config::File::from(base))
            .add_source(config::File::from(dir.join(format!("{environment}.toml"))).required(false))
            .add_source(
                config::Environment::with_prefix("REELAY")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("api.key_sha256")
                    .with_list_parse_key("events.sns_topic_allowlist")
                    .with_list_parse_key("events.sns_hosts")
                    .with_list_parse_key("outbound.allowed_private_networks")
                    .with_list_parse_key("simulator.webhook_retry_ms")
                    .source(vars),
            )
            .build()?)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.policy.ssim_floor_at_min <= self.policy.ssim_floor_at_max,
            "policy.ssim_floor_at_min must not exceed policy.ssim_floor_at_max"
        );
        anyhow::ensure!(
            self.worker.concurrency > 0,
            "worker.concurrency must be at least 1"
        );
        anyhow::ensure!(
            self.profiles.contains_key("default"),
            "profiles.default must exist: requests without `profile` use it"
        );
        anyhow::ensure!(
            self.runware.backoff_initial_ms > 0
                && self.runware.backoff_initial_ms <= self.runware.backoff_max_secs * 1000,
            "runware.backoff_initial_ms must be positive and at most runware.backoff_max_secs"
        );
        anyhow::ensure!(
            self.server.header_read_timeout_secs >= 1,
            "server.header_read_timeout_secs must be at least 1"
        );
        anyhow::ensure!(
            self.server.rate_limit_ip_per_sec >= 0.0 && self.server.rate_limit_key_per_sec >= 0.0,
            "server.rate_limit_ip_per_sec and server.rate_limit_key_per_sec must not be negative (0: no limit)"
        );
        anyhow::ensure!(
            self.worker.lease_secs >= 3,
            "worker.lease_secs must be at least 3"
        );
        anyhow::ensure!(
            self.runware.model == self.runware.model_spec.air,
            "runware.model ({}) has no limits table: runware.model_spec.air is {}",
            self.runware.model,
            self.runware.model_spec.air
        );
        anyhow::ensure!(
            self.cdn.grace_secs >= self.cdn.manifest_max_age_secs,
            "cdn.grace_secs ({}) must be at least cdn.manifest_max_age_secs ({}): a cached old manifest must never name deleted files",
            self.cdn.grace_secs,
            self.cdn.manifest_max_age_secs
        );
        anyhow::ensure!(
            self.cdn.purge_url.is_empty() || !self.cdn.purge_secret.is_empty(),
            "cdn.purge_secret is required when cdn.purge_url is set"
        );
        crate::outbound::Guard::new(&self.outbound)?;
        crate::outbound::HostPatterns::new(&self.events.sns_hosts)?;
        anyhow::ensure!(
            (20..=99).contains(&self.uploads.output_quality),
            "uploads.output_quality must be 20..=99"
        );
        for o in &self.cdn.cors_allowed_origins {
            anyhow::ensure!(
                o == "*" || (o.starts_with("http") && o.contains("://") && !o.ends_with('/')),
                "cdn.cors_allowed_origins: {o:?} is not \"*\" or an origin like https://player.example"
            );
        }
        anyhow::ensure!(
            self.worker.max_step_errors >= 1,
            "worker.max_step_errors must be at least 1"
        );
        anyhow::ensure!(
            self.worker.step_retry_initial_ms >= 1
                && self.worker.step_retry_initial_ms <= self.worker.step_retry_max_secs * 1000,
            "worker.step_retry_initial_ms must be 1..=worker.step_retry_max_secs * 1000"
        );
        for (name, profile) in &self.profiles {
            crate::media::profile::validate_outputs(&profile.outputs)
                .map_err(|e| anyhow::anyhow!("profiles.{name}.{e}"))?;
            // Checked against a nominal 4K 30 s master; what depends on the
            // real master (sizes) is resolved per transcode.
            crate::media::stills::StillsPlan::for_master(&profile.stills, &nominal_master())
                .map_err(|e| anyhow::anyhow!("profiles.{name}.{e}"))?;
        }
        let problems = crate::destinations::problems(&self.destinations);
        anyhow::ensure!(
            problems.is_empty(),
            "invalid destination table{}: {}",
            if problems.len() == 1 { "" } else { "s" },
            problems.join("; ")
        );
        self.simulator
            .faults
            .validate()
            .map_err(|e| anyhow::anyhow!("simulator.faults: {e}"))?;
        self.check_secret_keys()?;
        for h in &self.api.key_sha256 {
            anyhow::ensure!(
                h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()),
                "api.key_sha256 entries must be 64 hex characters (the SHA-256 of a key)"
            );
        }
        Ok(())
    }

    /// Refuses generator set-ups that cannot work or would deliver simulated
    /// footage as real. Checked at startup rather than at load, so commands
    /// that never call Runware (`process`, `transcode`, `config`) still run.
    pub fn check_generator(&self) -> anyhow::Result<()> {
        match self.runware.mode {
            RunwareMode::Live => anyhow::ensure!(
                !self.runware.api_key.is_empty(),
                "runware.mode = \"live\" needs runware.api_key (REELAY__RUNWARE__API_KEY)"
            ),
            RunwareMode::Simulator => anyhow::ensure!(
                self.environment != PRODUCTION,
                "runware.mode = \"simulator\" is refused under REELAY_ENVIRONMENT={PRODUCTION}: set runware.mode = \"live\" (REELAY__RUNWARE__MODE) and runware.api_key"
            ),
        }
        Ok(())
    }

    /// Under `REELAY_ENVIRONMENT=production`, refuses a start that would
    /// leave a door open: no API key (nobody could use the API, or a
    /// development key was relied on) or no events token (one made at
    /// random would change at every restart and S3 notifications would be
    /// refused). One line naming every problem and the variable that fixes it.
    pub fn check_production(&self) -> anyhow::Result<()> {
        if self.environment != PRODUCTION {
            return Ok(());
        }
        let mut problems = Vec::new();
        if self.api.key_sha256.is_empty() {
            problems.push(
                "api.key_sha256 is empty (set REELAY__API__KEY_SHA256 to the SHA-256 of an API key)"
                    .to_string(),
            );
        }
        if self.events.token.is_empty() {
            problems.push("events.token is empty (set REELAY__EVENTS__TOKEN)".to_string());
        }
        problems.extend(crate::storage::credentials::production_problem(
            self.storage.embedded,
            &self.storage.secret_access_key,
        ));
        anyhow::ensure!(
            problems.is_empty(),
            "refusing to start under REELAY_ENVIRONMENT={PRODUCTION}: {}",
            problems.join("; ")
        );
        Ok(())
    }

    /// The job store URL, defaulting to a SQLite file in the data dir.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data.dir.join("reelay.db").display()
            )
        } else {
            self.database.url.expose().to_string()
        }
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.worker.lease_secs)
    }

    /// How long `stop` waits for the background tasks: the server's own
    /// timeout, or the workers' drain and a margin to hand steps back.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.server.shutdown_timeout_secs)
            .max(self.drain() + Duration::from_secs(5))
    }

    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.worker.drain_secs)
    }
}

/// A 3840x2160, 24 fps, 30 s master: what profile stills are checked against at load.
fn nominal_master() -> crate::media::Probe {
    serde_json::from_value(serde_json::json!({
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
        "duration_secs": 30.0,
        "size_bytes": 0,
        "bit_rate": null,
        "video": {"codec": "h264", "profile": null, "level": null, "width": 3840,
                  "height": 2160, "pix_fmt": null, "fps": 24.0, "nb_frames": null},
        "audio": null
    }))
    .expect("a valid probe")
}

/// The config crate names a field inside a list element `outputs[1]level`
/// (no dot after the index) when a value fails to deserialize; the error
/// should name it as TOML spells it and as [`Settings::validate`] does,
/// `outputs[1].level`.
fn dotted_key(e: config::ConfigError) -> config::ConfigError {
    let dot = |key: String| {
        let mut out = String::with_capacity(key.len() + 4);
        let mut chars = key.chars().peekable();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == ']' && chars.peek().is_some_and(|n| *n != '[' && *n != '.') {
                out.push('.');
            }
        }
        out
    };
    match e {
        config::ConfigError::At { error, origin, key } => config::ConfigError::At {
            error,
            origin,
            key: key.map(dot),
        },
        config::ConfigError::Type {
            origin,
            unexpected,
            expected,
            key,
        } => config::ConfigError::Type {
            origin,
            unexpected,
            expected,
            key: key.map(dot),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
    }

    #[test]
    fn default_config_loads_and_test_layer_overrides_it() {
        let local = Settings::load_from(&config_dir(), "local").unwrap();
        assert_eq!(local.server.port, 8080);
        let test = Settings::load_from(&config_dir(), "test").unwrap();
        assert_eq!(test.server.port, 0);
        assert_eq!(test.worker.lease_secs, 6);
        // Untouched keys keep the default.
        assert_eq!(test.storage.masters_bucket, "reelay-masters");
        // Fault injection is off unless asked for.
        assert_eq!(test.simulator.faults, crate::simulator::Faults::default());
        assert!(!test.runware.resubmit_missing_upload);
    }

    #[test]
    fn loudness_profiles_normalise_unless_told_not_to() {
        let s = Settings::load_from(&config_dir(), "test").unwrap();
        assert!(!s.profiles["default"].normalizes_loudness(), "no target");
        for name in ["broadcast-us", "broadcast-eu"] {
            let p = &s.profiles[name];
            assert!(p.normalizes_loudness(), "{name}");
            let t = p.loudness_target().unwrap();
            assert_eq!(t.integrated_lufs, p.loudness_target_lufs.unwrap());
            assert!(t.true_peak_dbtp < p.true_peak_max_dbtp.unwrap());
        }
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::read_to_string(config_dir().join("default.toml")).unwrap();
        std::fs::write(dir.path().join("default.toml"), base).unwrap();
        std::fs::write(
            dir.path().join("strict.toml"),
            "[profiles.broadcast-us]\nnormalize_loudness = false\n",
        )
        .unwrap();
        let s = Settings::load_from(dir.path(), "strict").unwrap();
        let us = &s.profiles["broadcast-us"];
        assert!(!us.normalizes_loudness());
        assert_eq!(us.loudness_target_lufs, Some(-24.0), "the rest is kept");
    }

    #[test]
    fn a_bad_fault_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::read_to_string(config_dir().join("default.toml")).unwrap();
        std::fs::write(dir.path().join("default.toml"), base).unwrap();
        std::fs::write(
            dir.path().join("bad.toml"),
            "[simulator.faults]\nburst_status = 200\n",
        )
        .unwrap();
        let e = Settings::load_from(dir.path(), "bad").unwrap_err();
        assert!(format!("{e:#}").contains("burst_status"), "{e:#}");
        std::fs::write(
            dir.path().join("good.toml"),
            "[simulator.faults]\nfail_code = \"timeoutProvider\"\nupload = \"truncated\"\n",
        )
        .unwrap();
        let s = Settings::load_from(dir.path(), "good").unwrap();
        assert_eq!(s.simulator.faults.fail_code, "timeoutProvider");
        assert_eq!(
            s.simulator.faults.upload,
            crate::simulator::UploadFault::Truncated
        );
    }

    #[test]
    fn a_bad_profile_output_is_refused_at_load_naming_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::read_to_string(config_dir().join("default.toml")).unwrap();
        std::fs::write(dir.path().join("default.toml"), base).unwrap();
        let write = |env: &str, body: &str| {
            std::fs::write(dir.path().join(format!("{env}.toml")), body).unwrap()
        };
        write(
            "bad",
            "[profiles.mine]\noutputs = [\n  { name = \"a\", short_side = 720, crf = 23, maxrate_kbps = 4000 },\n  { name = \"b\", short_side = 480, crf = 70, maxrate_kbps = 2000 },\n]\n",
        );
        let e = format!("{:#}", Settings::load_from(dir.path(), "bad").unwrap_err());
        assert!(e.contains("profiles.mine.outputs[1].crf"), "{e}");
        write(
            "badlevel",
            "[profiles.mine]\noutputs = [\n  { name = \"a\", short_side = 720, crf = 23, maxrate_kbps = 4000 },\n  { name = \"b\", short_side = 480, crf = 23, maxrate_kbps = 2000, level = \"4.5\" },\n]\n",
        );
        let e = format!(
            "{:#}",
            Settings::load_from(dir.path(), "badlevel").unwrap_err()
        );
        assert!(e.contains("profiles.mine.outputs[1].level"), "{e}");
        assert!(e.contains("\"4.5\" is not an H.264 level"), "{e}");
        write(
            "badtype",
            "[profiles.mine]\noutputs = [{ name = \"a\", short_side = 720, crf = 23, maxrate_kbps = \"lots\" }]\n",
        );
        let e = format!(
            "{:#}",
            Settings::load_from(dir.path(), "badtype").unwrap_err()
        );
        assert!(e.contains("profiles.mine.outputs[0].maxrate_kbps"), "{e}");
        write(
            "good",
            "[profiles.mine]\noutputs = [\n  { name = \"sq\", kind = \"webm\", width = 720, aspect = \"1:1\", crf = 33, maxrate_kbps = 3000 },\n]\n",
        );
        write(
            "unknown",
            "[profiles.mine]\noutputs = [{ name = \"a\", short_side = 720, crf = 23, maxrate_kbps = 4000, fps = 30 }]\n",
        );
        let e = format!(
            "{:#}",
            Settings::load_from(dir.path(), "unknown").unwrap_err()
        );
        assert!(e.contains("fps"), "{e}");
        write(
            "badstills",
            "[profiles.mine]\nstills = { preview = { width = 800 } }\n",
        );
        let e = format!(
            "{:#}",
            Settings::load_from(dir.path(), "badstills").unwrap_err()
        );
        assert!(e.contains("profiles.mine.stills.preview.width"), "{e}");
        write(
            "stills",
            "[profiles.mine]\nstills = { poster_widths = [1920, 640], poster_formats = [\"webp\"], preview = { secs = 2.0 } }\n",
        );
        let s = Settings::load_from(dir.path(), "stills").unwrap();
        let st = &s.profiles["mine"].stills;
        assert_eq!(st.poster_widths, [1920, 640]);
        assert_eq!(st.preview.as_ref().map(|p| p.secs), Some(2.0));
        write(
            "wholelevel",
            "[profiles.mine]\noutputs = [{ name = \"a\", short_side = 720, crf = 23, maxrate_kbps = 4000, level = \"4\" }]\n",
        );
        let s = Settings::load_from(dir.path(), "wholelevel").unwrap();
        assert_eq!(
            s.profiles["mine"].outputs[0].level,
            Some(crate::media::H264Level::L4_0)
        );
        let s = Settings::load_from(dir.path(), "good").unwrap();
        let o = &s.profiles["mine"].outputs[0];
        assert_eq!(
            (o.kind, o.aspect, o.width),
            (
                crate::media::OutputKind::Webm,
                crate::media::Aspect::Square,
                Some(720)
            )
        );
    }

    /// The shipped `local` layers with these `REELAY__*` variables on top.
    fn load_with_env(vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_layers(&config_dir(), "local", Some(vars))
    }

    #[test]
    fn shipped_profiles_load_and_the_old_ones_keep_the_default_ladder() {
        let s = Settings::load_from(&config_dir(), "local").unwrap();
        assert!(s.profiles["default"].outputs.is_empty());
        for name in ["ctv", "olv", "social", "web"] {
            assert!(!s.profiles[name].outputs.is_empty(), "{name}");
        }
        // The broadcast profiles deliver what a CTV buyer takes: a 1080p
        // with a bitrate floor, not the default ladder's low rates.
        for name in ["broadcast-us", "broadcast-eu"] {
            let top = s.profiles[name]
                .outputs
                .iter()
                .find(|o| o.short_side == Some(1080))
                .unwrap_or_else(|| panic!("{name} has a 1080p"));
            assert!(top.min_bitrate_kbps.unwrap_or(0) >= 15_000, "{name}");
        }
    }

    #[test]
    fn production_layer_has_no_development_key() {
        let prod = Settings::load_from(&config_dir(), "production").unwrap();
        assert!(prod.api.key_sha256.is_empty());
        assert!(!prod.storage.embedded);
    }

    #[test]
    fn shipped_layers_pick_the_generator_mode() {
        for env in ["local", "test"] {
            let s = Settings::load_from(&config_dir(), env).unwrap();
            assert_eq!(s.runware.mode, RunwareMode::Simulator, "{env}");
            assert_eq!(s.environment, env);
            s.check_generator().unwrap();
        }
        let prod = Settings::load_from(&config_dir(), PRODUCTION).unwrap();
        assert_eq!(prod.runware.mode, RunwareMode::Live);
    }

    #[test]
    fn live_mode_without_a_key_is_refused_naming_the_setting() {
        let mut s = Settings::load_from(&config_dir(), "test").unwrap();
        s.runware.mode = RunwareMode::Live;
        let e = s.check_generator().unwrap_err().to_string();
        assert_eq!(
            e,
            "runware.mode = \"live\" needs runware.api_key (REELAY__RUNWARE__API_KEY)"
        );
        let mut prod = Settings::load_from(&config_dir(), PRODUCTION).unwrap();
        assert!(prod.check_generator().is_err(), "production ships no key");
        prod.runware.api_key = Secret::new("rw-key".to_string());
        prod.check_generator().unwrap();
        s.runware.api_key = Secret::new("rw-key".to_string());
        s.check_generator().unwrap();
    }

    #[test]
    fn the_simulator_is_refused_in_production_even_with_a_key() {
        let mut prod = Settings::load_from(&config_dir(), PRODUCTION).unwrap();
        prod.runware.mode = RunwareMode::Simulator;
        prod.runware.api_key = Secret::new("rw-key".to_string());
        let e = prod.check_generator().unwrap_err().to_string();
        assert!(
            e.starts_with(
                "runware.mode = \"simulator\" is refused under REELAY_ENVIRONMENT=production"
            ),
            "{e}"
        );
        assert!(e.contains("REELAY__RUNWARE__MODE"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        // Elsewhere a configured key does not switch the simulator off.
        let mut s = Settings::load_from(&config_dir(), "local").unwrap();
        s.runware.api_key = Secret::new("rw-key".to_string());
        s.check_generator().unwrap();
    }

    #[test]
    fn a_postgres_process_without_the_shared_keys_is_refused_naming_them() {
        let mut s = Settings::load_from(&config_dir(), "local").unwrap();
        s.check_shared_secrets().unwrap();
        s.database.url = Secret::new("postgres://reelay@db.internal/reelay");
        let e = s.check_shared_secrets().unwrap_err().to_string();
        assert!(
            e.contains("secrets.webhook_token_key (REELAY__SECRETS__WEBHOOK_TOKEN_KEY)"),
            "{e}"
        );
        assert!(
            e.contains("secrets.callback_signing_key (REELAY__SECRETS__CALLBACK_SIGNING_KEY)"),
            "{e}"
        );
        // The older name of the signing key counts.
        s.callbacks.secret = Secret::new("old-name-signing-key");
        let e = s.check_shared_secrets().unwrap_err().to_string();
        assert!(!e.contains("callback_signing_key"), "{e}");
        assert!(e.contains("webhook_token_key"), "{e}");
        // Both through the environment: accepted.
        let vars = [
            (
                "REELAY__DATABASE__URL",
                "postgres://reelay@db.internal/reelay",
            ),
            (
                "REELAY__SECRETS__WEBHOOK_TOKEN_KEY",
                "00112233445566778899aabbccddeeff",
            ),
            ("REELAY__SECRETS__CALLBACK_SIGNING_KEY", "fleet-signing-key"),
        ];
        let s = load_with_env(&vars).unwrap();
        s.check_shared_secrets().unwrap();
        assert_eq!(s.callback_signing_key().expose(), "fleet-signing-key");
    }

    #[test]
    fn a_webhook_token_key_that_is_not_long_hex_is_refused() {
        let vars = [(
            "REELAY__SECRETS__WEBHOOK_TOKEN_KEY",
            "not-hex-at-all-but-long-enough-xx",
        )];
        let e = load_with_env(&vars).unwrap_err();
        assert!(
            format!("{e:#}").contains("secrets.webhook_token_key"),
            "{e:#}"
        );
    }

    #[test]
    fn the_mode_is_one_of_two_words() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::read_to_string(config_dir().join("default.toml")).unwrap();
        std::fs::write(dir.path().join("default.toml"), base).unwrap();
        std::fs::write(dir.path().join("bad.toml"), "[runware]\nmode = \"real\"\n").unwrap();
        let e = format!("{:#}", Settings::load_from(dir.path(), "bad").unwrap_err());
        assert!(e.contains("real"), "{e}");
        std::fs::write(dir.path().join("live.toml"), "[runware]\nmode = \"live\"\n").unwrap();
        let s = Settings::load_from(dir.path(), "live").unwrap();
        assert_eq!(s.runware.mode, RunwareMode::Live);
    }

    #[test]
    fn retry_limits_are_settings_with_the_old_values_as_defaults() {
        let s = Settings::load_from(&config_dir(), "local").unwrap();
        assert_eq!(s.runware.backoff_initial_ms, 500);
        assert_eq!(s.runware.backoff_max_secs, 10);
        // The drain (25 s) and 5 s to hand steps back outlast the 10 s server stop.
        assert_eq!(s.shutdown_timeout(), Duration::from_secs(30));
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::read_to_string(config_dir().join("default.toml")).unwrap();
        std::fs::write(dir.path().join("default.toml"), base).unwrap();
        std::fs::write(
            dir.path().join("bad.toml"),
            "[runware]\nbackoff_initial_ms = 20000\nbackoff_max_secs = 10\n",
        )
        .unwrap();
        let e = format!("{:#}", Settings::load_from(dir.path(), "bad").unwrap_err());
        assert!(e.contains("runware.backoff_initial_ms"), "{e}");
    }

    #[test]
    fn an_unknown_key_is_refused_naming_it_in_files_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::read_to_string(config_dir().join("default.toml")).unwrap();
        std::fs::write(dir.path().join("default.toml"), base).unwrap();
        std::fs::write(dir.path().join("typo.toml"), "[worker]\nconcurency = 4\n").unwrap();
        let e = format!("{:#}", Settings::load_from(dir.path(), "typo").unwrap_err());
        assert!(e.contains("unknown config key worker.concurency"), "{e}");
        std::fs::write(
            dir.path().join("section.toml"),
            "[wrker]\nconcurrency = 4\n",
        )
        .unwrap();
        let e = format!(
            "{:#}",
            Settings::load_from(dir.path(), "section").unwrap_err()
        );
        assert!(e.contains("wrker"), "{e}");

        let vars = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let e = Settings::load_layers(
            &config_dir(),
            "test",
            vars(&[
                ("REELAY__WORKER__CONCURENCY", "4"),
                ("REELAY__MEDIA__FFPROBE_PAHT", "/x"),
            ]),
        )
        .unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains("unknown config keys"), "{e}");
        assert!(e.contains("worker.concurency"), "{e}");
        assert!(e.contains("media.ffprobe_paht"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        // A known key through the environment still works.
        let s = Settings::load_layers(
            &config_dir(),
            "test",
            vars(&[("REELAY__WORKER__CONCURRENCY", "3")]),
        )
        .unwrap();
        assert_eq!(s.worker.concurrency, 3);
    }

    #[test]
    fn production_refuses_a_start_without_an_api_key_or_events_token() {
        let mut prod = Settings::load_from(&config_dir(), PRODUCTION).unwrap();
        let e = prod.check_production().unwrap_err().to_string();
        assert!(
            e.starts_with("refusing to start under REELAY_ENVIRONMENT=production: "),
            "{e}"
        );
        assert!(e.contains("api.key_sha256 is empty"), "{e}");
        assert!(e.contains("REELAY__API__KEY_SHA256"), "{e}");
        assert!(e.contains("events.token is empty"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        prod.api.key_sha256 = vec!["ab".repeat(32)];
        let e = prod.check_production().unwrap_err().to_string();
        assert!(!e.contains("api.key_sha256"), "{e}");
        assert!(e.contains("events.token is empty"), "{e}");
        prod.events.token = Secret::new("tok".to_string());
        prod.check_production().unwrap();
        // Elsewhere a missing token is made at start.
        let local = Settings::load_from(&config_dir(), "local").unwrap();
        assert!(local.events.token.is_empty());
        local.check_production().unwrap();
    }

    #[test]
    fn secrets_do_not_appear_in_debug_output() {
        let s = Settings::load_from(&config_dir(), "local").unwrap();
        let printed = format!("{s:#?}");
        assert!(!printed.contains("reelay-embedded-secret"));
        assert!(!printed.contains("sim-local-key"));
        // What `reelay config` prints: an empty secret says so.
        assert!(printed.contains("api_key: <unset>"), "{printed}");
        // The embedded store's keys are made per install at start, so none
        // is configured; the simulator's key is.
        assert!(printed.contains("secret_access_key: <unset>"), "{printed}");
        assert!(printed.contains("api_key: <set>"), "{printed}");
    }
}
