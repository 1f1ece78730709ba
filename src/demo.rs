//! `reelay demo`: starts the embedded stack, requests one 3840x2160, 5 s asset
//! with sound through the real HTTP API, prints each stage as it happens, and
//! ends with the published CDN URLs and the QC summary (the display of
//! `reelay assets watch`, `client::watch`). `--serve` keeps the stack up.

use crate::api::hash_key;
use crate::config::Settings;
use crate::startup::Application;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Runs the demo; with `serve`, the stack keeps running after it (until
/// Ctrl-C) so the printed URLs can be opened.
pub async fn run(
    mut settings: Settings,
    profile: &str,
    timeout: Duration,
    serve: bool,
) -> anyhow::Result<()> {
    settings.require_profile(profile)?;
    // A one-off key for this run, accepted whatever the config says.
    let key = format!("demo-{}", uuid::Uuid::new_v4().simple());
    settings.api.key_sha256.push(hex::encode(hash_key(&key)));
    println!(
        "reelay demo: starting the embedded stack (data in {})",
        settings.data.dir.display()
    );
    let app = Application::build(settings).await?;
    let base = app.api_url();
    println!("  API + CDN origin   {base}");
    if let Some(s3) = &app.s3 {
        println!("  object store (S3)  {}", s3.endpoint_url());
    }
    if let Some(sim) = &app.sim {
        println!("  Runware simulator  {}", sim.api_url());
    }
    let result = drive(&base, &key, profile, timeout).await;
    if serve && result.is_ok() {
        println!("\nthe stack keeps running (--serve): open the URLs above; Ctrl-C stops it");
        println!("  API key for this run: {key}");
        return app.run_until_stopped().await;
    }
    app.stop().await;
    result
}

async fn drive(base: &str, key: &str, profile: &str, timeout: Duration) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let request = json!({
        "campaign": "demo",
        "profile": profile,
        "generation": {
            "positivePrompt": "Slow aerial drone shot over a misty valley at golden hour, a red car on the road",
            "width": 3840,
            "height": 2160,
            "duration": 5,
            "outputFormat": "MP4",
            "outputQuality": 90,
            "ttl": 86400,
            "providerSettings": {"klingai": {"sound": true}}
        }
    });
    println!("\nPOST {base}/v1/assets  (3840x2160, 5 s, sound, profile {profile})");
    let res = http
        .post(format!("{base}/v1/assets"))
        .bearer_auth(key)
        .json(&request)
        .send()
        .await
        .context("calling the reelay API")?;
    let status = res.status();
    let body: Value = res.json().await?;
    if status.as_u16() != 202 {
        bail!("the API refused the request ({status}): {body}");
    }
    let id = body["id"]
        .as_str()
        .context("no asset id in the answer")?
        .to_string();
    println!(
        "  202 Accepted: asset {id}\n  status URL {}\n",
        body["status_url"].as_str().unwrap_or("")
    );

    let started = Instant::now();
    let client = crate::client::Client::new(base, key)?;
    let asset = crate::client::watch::follow(&client, &id, timeout).await?;
    let mut ok = crate::client::watch::print_summary(&asset);
    // Show that the CDN origin serves byte ranges, as players need.
    for v in asset["variations"].as_array().into_iter().flatten() {
        if let Some(url) = v["published"]["renditions"][0]["url"].as_str() {
            let r = http.get(url).header("Range", "bytes=0-1023").send().await?;
            println!(
                "  CDN check: GET {} Range bytes=0-1023 -> {} ({})",
                url,
                r.status(),
                r.headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
            );
            ok &= r.status().as_u16() == 206;
        }
    }
    if !ok {
        bail!("the demo asset was not published");
    }
    println!(
        "\ndemo finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
