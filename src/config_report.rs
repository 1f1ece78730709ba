//! `reelay config`: the effective settings (every layer merged, the
//! defaults of keys no layer names filled in), each secret shown only as
//! `<set>` or `<unset>`, and a `[derived]` table of what startup works out
//! from them (endpoints, the CDN base URL, the generator mode, each
//! profile's resolved outputs).

use crate::config::{RunwareMode, Settings};
use serde_json::{json, Map, Value};

/// Where the settings that hold secrets live (a `Secret` each).
pub const SECRET_KEYS: &[&str] = &[
    "database.url",
    "storage.secret_access_key",
    "runware.api_key",
    "simulator.api_key",
    "cdn.purge_secret",
    "callbacks.secret",
    "secrets.webhook_token_key",
    "secrets.callback_signing_key",
    "events.token",
    "metrics.token",
];

/// Key names that are treated as secrets wherever they appear, so a new
/// secret setting is hidden even before it is added to [`SECRET_KEYS`].
fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "token", "password", "api_key"]
        .iter()
        .any(|w| k.contains(w))
}

fn marker(set: bool) -> Value {
    Value::String(if set { "<set>" } else { "<unset>" }.into())
}

fn is_set(settings: &Settings, key: &str) -> bool {
    match key {
        "database.url" => !settings.database.url.is_empty(),
        "storage.secret_access_key" => !settings.storage.secret_access_key.is_empty(),
        "runware.api_key" => !settings.runware.api_key.is_empty(),
        "simulator.api_key" => !settings.simulator.api_key.is_empty(),
        "cdn.purge_secret" => !settings.cdn.purge_secret.is_empty(),
        "callbacks.secret" => !settings.callbacks.secret.is_empty(),
        "secrets.webhook_token_key" => !settings.secrets.webhook_token_key.is_empty(),
        "secrets.callback_signing_key" => !settings.secrets.callback_signing_key.is_empty(),
        "events.token" => !settings.events.token.is_empty(),
        "metrics.token" => !settings.metrics.token.is_empty(),
        _ => false,
    }
}

fn set_path(root: &mut Value, path: &str, v: Value, only_if_missing: bool) {
    let mut cur = root;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        if !cur.get(*p).is_some_and(Value::is_object) {
            cur[*p] = Value::Object(Map::new());
        }
        cur = &mut cur[*p];
    }
    let last = parts[parts.len() - 1];
    if !(only_if_missing && cur.get(last).is_some()) {
        cur[last] = v;
    }
}

/// Replaces every string under a secret-looking key with its marker.
fn hide_secret_like(v: &mut Value) {
    if let Value::Object(m) = v {
        for (k, child) in m.iter_mut() {
            if looks_secret(k) {
                if let Value::String(s) = child {
                    if s == "<set>" || s == "<unset>" {
                        continue;
                    }
                    *child = marker(!s.is_empty());
                    continue;
                }
            }
            hide_secret_like(child);
        }
    }
}

fn or_port(host: &str, port: u16) -> String {
    if port == 0 {
        format!("http://{host}:<a free port, chosen at start>")
    } else {
        format!("http://{host}:{port}")
    }
}

/// What startup derives from the settings.
pub fn derived(settings: &Settings) -> Value {
    let s = &settings.server;
    let api_url = if s.public_url.is_empty() {
        or_port(&s.host, s.port)
    } else {
        s.public_url.trim_end_matches('/').to_string()
    };
    let cdn_base = if settings.cdn.base_url.is_empty() {
        format!("{api_url}/cdn")
    } else {
        settings.cdn.base_url.trim_end_matches('/').to_string()
    };
    let st = &settings.storage;
    let s3 = if st.embedded {
        or_port(&st.embedded_host, st.embedded_port)
    } else if st.endpoint.is_empty() {
        format!("https://s3.{}.amazonaws.com", st.region)
    } else {
        st.endpoint.clone()
    };
    let (mode, generator_url) = match settings.runware.mode {
        RunwareMode::Simulator => (
            "simulator",
            format!(
                "{}/v1",
                or_port(&settings.simulator.host, settings.simulator.port)
            ),
        ),
        RunwareMode::Live => ("live", settings.runware.api_url.clone()),
    };
    let m = &settings.metrics;
    let metrics_auth = if m.public {
        "public (no token)"
    } else if m.token.is_empty() {
        "Bearer API key"
    } else {
        "Bearer metrics.token or API key"
    };
    json!({
        "environment": settings.environment,
        "api_url": api_url,
        "cdn_base_url": cdn_base,
        "object_store": if st.embedded { "embedded" } else { "external" },
        "object_store_endpoint": s3,
        "generator_mode": mode,
        "generator_url": generator_url,
        "database": if settings.database.url.is_empty() {
            format!("sqlite://{}", settings.data.dir.join("reelay.db").display())
        } else {
            "<set> (database.url)".into()
        },
        "api_keys": settings.api.key_sha256.len(),
        "metrics_auth": metrics_auth,
        "profiles": profiles(settings),
    })
}

/// Each profile as startup resolves it: its outputs (the default ladder
/// when it names none) and whether the audio is normalised to its target.
fn profiles(settings: &Settings) -> Value {
    let mut out = Map::new();
    for (name, p) in &settings.profiles {
        let outputs = if p.outputs.is_empty() {
            crate::media::profile::default_outputs()
        } else {
            p.outputs.clone()
        };
        let mut entry = Map::new();
        entry.insert(
            "outputs".into(),
            outputs.iter().map(|o| o.name.clone()).collect(),
        );
        entry.insert("default_ladder".into(), Value::Bool(p.outputs.is_empty()));
        entry.insert(
            "normalizes_loudness".into(),
            Value::Bool(p.normalizes_loudness()),
        );
        out.insert(name.clone(), Value::Object(entry));
    }
    Value::Object(out)
}

/// The effective settings: `layers` (the merged files and environment) with
/// the defaults of keys no layer names, secrets hidden, and `derived`.
pub fn effective(settings: &Settings, layers: Value) -> Value {
    let mut v = layers;
    let st = &settings.storage;
    let defaults = [
        (
            "data.free_space_margin_bytes",
            json!(settings.data.free_space_margin_bytes),
        ),
        ("runware.ws_url", json!(settings.runware.ws_url)),
        (
            "runware.result_poll_timeout_secs",
            json!(settings.runware.result_poll_timeout_secs),
        ),
        (
            "simulator.ws_idle_secs",
            json!(settings.simulator.ws_idle_secs),
        ),
        (
            "worker.max_step_errors",
            json!(settings.worker.max_step_errors),
        ),
        (
            "worker.step_retry_initial_ms",
            json!(settings.worker.step_retry_initial_ms),
        ),
        (
            "worker.step_retry_max_secs",
            json!(settings.worker.step_retry_max_secs),
        ),
        (
            "cdn.cors_allowed_origins",
            json!(settings.cdn.cors_allowed_origins),
        ),
        ("metrics.public", json!(settings.metrics.public)),
        ("storage.embedded", json!(st.embedded)),
        ("storage.endpoint", json!(st.endpoint)),
        ("storage.region", json!(st.region)),
        ("storage.access_key_id", json!(st.access_key_id)),
        ("storage.force_path_style", json!(st.force_path_style)),
        ("storage.masters_bucket", json!(st.masters_bucket)),
        ("storage.cdn_bucket", json!(st.cdn_bucket)),
        (
            "storage.request_timeout_secs",
            json!(st.request_timeout_secs),
        ),
        (
            "storage.multipart_threshold_bytes",
            json!(st.multipart_threshold_bytes),
        ),
        ("storage.embedded_host", json!(st.embedded_host)),
        ("storage.embedded_port", json!(st.embedded_port)),
        ("storage.embedded_events", json!(st.embedded_events)),
    ];
    for (path, value) in defaults {
        set_path(&mut v, path, value, true);
    }
    for key in SECRET_KEYS {
        set_path(&mut v, key, marker(is_set(settings, key)), false);
    }
    hide_secret_like(&mut v);
    set_path(&mut v, "derived", derived(settings), false);
    v
}

/// The document as TOML (tables after plain keys, as TOML requires).
pub fn to_toml(v: &Value) -> anyhow::Result<String> {
    Ok(toml::to_string(v)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::load_from(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
            "local",
        )
        .unwrap()
    }

    #[test]
    fn secrets_are_markers_and_derived_values_are_shown() {
        let mut s = settings();
        s.runware.api_key = crate::secret::Secret::new("rw-sentinel-123".to_string());
        s.cdn.purge_secret = crate::secret::Secret::new("purge-sentinel-456".to_string());
        s.events.token = crate::secret::Secret::default();
        s.secrets.callback_signing_key = crate::secret::Secret::new("sign-sentinel-789");
        let layers = json!({
            "runware": {"api_key": "rw-sentinel-123", "mode": "simulator"},
            "secrets": {"callback_signing_key": "sign-sentinel-789"},
            "cdn": {"purge_secret": "purge-sentinel-456"},
            "future": {"webhook_signing_secret": "another-sentinel"},
        });
        let v = effective(&s, layers);
        let text = to_toml(&v).unwrap();
        assert!(!text.contains("sentinel"), "{text}");
        assert_eq!(v["runware"]["api_key"], "<set>");
        assert_eq!(v["cdn"]["purge_secret"], "<set>");
        assert_eq!(v["events"]["token"], "<unset>");
        assert_eq!(v["secrets"]["callback_signing_key"], "<set>");
        assert_eq!(v["secrets"]["webhook_token_key"], "<unset>");
        assert_eq!(v["future"]["webhook_signing_secret"], "<set>");
        assert_eq!(v["derived"]["generator_mode"], "simulator");
        assert!(v["derived"]["cdn_base_url"]
            .as_str()
            .unwrap()
            .ends_with("/cdn"));
        assert_eq!(
            v["storage"]["masters_bucket"],
            s.storage.masters_bucket.as_str()
        );
        // TOML that reads back.
        let back: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(
            back["derived"]["generator_mode"].as_str(),
            Some("simulator")
        );
    }

    #[test]
    fn a_configured_cdn_base_url_and_live_mode_are_derived_as_given() {
        let mut s = settings();
        s.cdn.base_url = "https://cdn.example/".into();
        s.runware.mode = RunwareMode::Live;
        let d = derived(&s);
        assert_eq!(d["cdn_base_url"], "https://cdn.example");
        assert_eq!(d["generator_mode"], "live");
        assert_eq!(d["generator_url"], s.runware.api_url.as_str());
    }

    #[test]
    fn every_profile_is_shown_with_the_outputs_it_resolves_to() {
        let s = settings();
        let d = derived(&s);
        // `default` names no outputs in default.toml: the default ladder.
        let default = &d["profiles"]["default"];
        assert_eq!(default["default_ladder"], true, "{d:#}");
        let names: Vec<String> = crate::media::profile::default_outputs()
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert!(!names.is_empty());
        assert_eq!(default["outputs"], json!(names));
        let us = &d["profiles"]["broadcast-us"];
        assert_eq!(us["default_ladder"], false);
        assert_eq!(us["normalizes_loudness"], true);
        assert_eq!(d["profiles"].as_object().unwrap().len(), s.profiles.len());
    }
}
