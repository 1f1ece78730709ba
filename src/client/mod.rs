//! The client half of the binary: `reelay assets …` against a running
//! server's public API (`--url`/`REELAY_URL`, `--api-key`/`REELAY_API_KEY`),
//! and the watch display `reelay demo` shares ([`watch`]).
//!
//! Only the HTTP API is used: what the CLI can do, any integrator can.

pub mod watch;

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};
use std::path::Path;

/// Exit status of `--watch` / `watch` when the asset ends rejected, failed
/// or expired (0 only when every variation published).
pub const EXIT_NOT_PUBLISHED: u8 = 3;

/// A client of one reelay server.
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

/// An answer the server refused, with its error body.
#[derive(Debug, thiserror::Error)]
#[error("{method} {path} answered {status}: {body}")]
pub struct Refused {
    pub method: &'static str,
    pub path: String,
    pub status: u16,
    pub body: Value,
}

impl Client {
    pub fn new(base: &str, key: &str) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        anyhow::ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "--url must be an http:// or https:// URL (got {base:?})"
        );
        Ok(Client {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .build()?,
            base,
            key: key.to_string(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let m = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self.http.request(m, &url).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.with_context(|| format!("calling {url}"))?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status >= 400 {
            return Err(Refused {
                method,
                path: path.to_string(),
                status,
                body,
            }
            .into());
        }
        Ok(body)
    }

    pub async fn create(&self, request: &Value) -> anyhow::Result<Value> {
        self.call("POST", "/v1/assets", Some(request)).await
    }

    pub async fn get(&self, id: &str) -> anyhow::Result<Value> {
        self.call("GET", &format!("/v1/assets/{}", encode(id)), None)
            .await
    }

    /// One page of `GET /v1/assets` with these filters.
    pub async fn list(&self, f: &ListFilter) -> anyhow::Result<Value> {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        let limit = f.limit.map(|l| l.to_string());
        for (name, value) in [
            ("campaign", f.campaign.as_deref()),
            ("limit", limit.as_deref()),
            ("state", f.state.as_deref()),
            ("created_after", f.created_after.as_deref()),
            ("created_before", f.created_before.as_deref()),
            ("cursor", f.cursor.as_deref()),
        ] {
            if let Some(v) = value {
                q.append_pair(name, v);
            }
        }
        let q = q.finish();
        let path = if q.is_empty() {
            "/v1/assets".to_string()
        } else {
            format!("/v1/assets?{q}")
        };
        self.call("GET", &path, None).await
    }

    /// `GET /v1/workers`: live workers and the queue depth.
    pub async fn workers(&self) -> anyhow::Result<Value> {
        self.call("GET", "/v1/workers", None).await
    }

    pub async fn reprocess(&self, id: &str) -> anyhow::Result<Value> {
        self.call(
            "POST",
            &format!("/v1/assets/{}/reprocess", encode(id)),
            Some(&json!({})),
        )
        .await
    }

    pub async fn cancel(&self, id: &str) -> anyhow::Result<Value> {
        self.call("DELETE", &format!("/v1/assets/{}", encode(id)), None)
            .await
    }
}

fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The filters and position of `reelay assets list` (`GET /v1/assets`'s
/// parameters; the server checks them and names a bad one).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ListFilter {
    #[arg(long)]
    pub campaign: Option<String>,
    /// Page size, 1 to 500 (the server's default is 50).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Only assets with a variation in this state (published, failed, ...).
    #[arg(long)]
    pub state: Option<String>,
    /// RFC 3339: created at or after.
    #[arg(long)]
    pub created_after: Option<String>,
    /// RFC 3339: created strictly before.
    #[arg(long)]
    pub created_before: Option<String>,
    /// The next page: the cursor the previous page printed.
    #[arg(long)]
    pub cursor: Option<String>,
}

/// What `reelay assets create` was given.
#[derive(Debug, Default)]
pub struct CreateArgs {
    pub campaign: Option<String>,
    pub profile: Option<String>,
    pub prompt: Option<String>,
    /// A JSON file: either a whole request (`{"generation": {...}, ...}`) or
    /// the `generation` object alone (Runware's `videoInference` fields).
    pub file: Option<std::path::PathBuf>,
    pub callback_url: Option<String>,
}

/// The request body: the file's fields, then the flags over them. Without a
/// file, a prompt makes a request with the model's defaults (3840x2160,
/// 5 s, MP4).
pub fn create_body(args: &CreateArgs) -> anyhow::Result<Value> {
    let mut body = match &args.file {
        Some(p) => read_request_file(p)?,
        None => Map::new(),
    };
    if !body.contains_key("generation") {
        match &args.prompt {
            Some(_) => {
                body.insert(
                    "generation".into(),
                    json!({"width": 3840, "height": 2160, "duration": 5, "outputFormat": "MP4"}),
                );
            }
            None => {
                bail!("give --prompt or --file (a JSON file with Runware's videoInference fields)")
            }
        }
    }
    if let Some(p) = &args.prompt {
        body["generation"]
            .as_object_mut()
            .context("generation must be a JSON object")?
            .insert("positivePrompt".into(), json!(p));
    }
    for (k, v) in [
        ("campaign", &args.campaign),
        ("profile", &args.profile),
        ("callbackUrl", &args.callback_url),
    ] {
        if let Some(v) = v {
            body.insert(k.into(), json!(v));
        }
    }
    Ok(Value::Object(body))
}

fn read_request_file(p: &Path) -> anyhow::Result<Map<String, Value>> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", p.display()))?;
    let Value::Object(m) = v else {
        bail!("{} must hold a JSON object", p.display());
    };
    // A request has these top-level fields; anything else is the
    // generation object alone.
    let request_keys = ["generation", "campaign", "profile", "callbackUrl", "qc"];
    if m.keys().any(|k| request_keys.contains(&k.as_str())) {
        Ok(m)
    } else {
        let mut body = Map::new();
        body.insert("generation".into(), Value::Object(m));
        Ok(body)
    }
}

/// The human view of `GET /v1/workers`: one line per worker and per running
/// step, then the non-empty queue states.
pub fn render_workers(v: &Value) -> String {
    let mut out = String::new();
    let workers = v["workers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    out.push_str(&format!("{} live worker(s)\n", workers.len()));
    for w in workers {
        out.push_str(&format!(
            "{}  host {}  v{}  started {}  heartbeat {}  running {}\n",
            w["id"].as_str().unwrap_or("?"),
            w["host"].as_str().unwrap_or("?"),
            w["version"].as_str().unwrap_or("?"),
            w["started_at"].as_str().unwrap_or("?"),
            w["last_heartbeat"].as_str().unwrap_or("?"),
            w["running"].as_array().map_or(0, Vec::len),
        ));
        for r in w["running"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            out.push_str(&format!(
                "    {} {} since {}\n",
                r["variation_id"].as_str().unwrap_or("?"),
                r["stage"].as_str().unwrap_or("?"),
                r["since"].as_str().unwrap_or("?"),
            ));
        }
    }
    let queue: Vec<String> = v["queue"]
        .as_object()
        .map(|q| {
            q.iter()
                .filter(|(_, n)| n.as_i64().unwrap_or(0) > 0)
                .map(|(s, n)| format!("{s} {n}"))
                .collect()
        })
        .unwrap_or_default();
    out.push_str(&format!(
        "queue: {}\n",
        if queue.is_empty() {
            "empty".to_string()
        } else {
            queue.join(", ")
        }
    ));
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_workers_view_names_each_worker_its_steps_and_the_non_empty_queue() {
        let v = serde_json::json!({
            "workers": [{"id": "w1", "host": "box", "version": "0.1.0",
                "started_at": "2026-01-01T00:00:00Z", "last_heartbeat": "2026-01-01T00:00:05Z",
                "running": [{"variation_id": "v_1", "stage": "transcoding", "since": "2026-01-01T00:00:01Z"}]}],
            "queue": {"requested": 0, "transcoding": 1, "published": 3}
        });
        let text = render_workers(&v);
        assert!(text.starts_with("1 live worker(s)\n"), "{text}");
        assert!(text.contains("w1  host box  v0.1.0"), "{text}");
        assert!(
            text.contains("    v_1 transcoding since 2026-01-01T00:00:01Z"),
            "{text}"
        );
        assert!(text.contains("queue: published 3, transcoding 1"), "{text}");
        assert!(!text.contains("requested"), "{text}");
    }

    use super::*;

    #[test]
    fn a_prompt_alone_makes_a_4k_request_and_flags_override_the_file() {
        let b = create_body(&CreateArgs {
            prompt: Some("a red car".into()),
            campaign: Some("spring".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(b["generation"]["positivePrompt"], "a red car");
        assert_eq!(b["generation"]["width"], 3840);
        assert_eq!(b["campaign"], "spring");

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("g.json");
        std::fs::write(
            &f,
            r#"{"positivePrompt": "x", "width": 1920, "height": 1080, "duration": 5}"#,
        )
        .unwrap();
        let b = create_body(&CreateArgs {
            file: Some(f),
            profile: Some("web".into()),
            prompt: Some("y".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(b["generation"]["width"], 1920);
        assert_eq!(b["generation"]["positivePrompt"], "y");
        assert_eq!(b["profile"], "web");
    }

    #[test]
    fn neither_prompt_nor_file_is_refused() {
        let e = create_body(&CreateArgs::default()).unwrap_err().to_string();
        assert!(e.contains("--prompt") && e.contains("--file"), "{e}");
    }
}
