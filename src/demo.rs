//! `reelay demo`: starts the embedded stack, requests one 3840x2160, 5 s asset
//! with sound through the real HTTP API, prints each stage as it happens, and
//! ends with the published CDN URLs and the QC summary.

use crate::api::hash_key;
use crate::config::Settings;
use crate::startup::Application;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub async fn run(mut settings: Settings, profile: &str, timeout: Duration) -> anyhow::Result<()> {
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
    let mut last = String::new();
    let asset = loop {
        if started.elapsed() > timeout {
            bail!("the asset did not finish within {} s", timeout.as_secs());
        }
        let a: Value = http
            .get(format!("{base}/v1/assets/{id}"))
            .bearer_auth(key)
            .send()
            .await?
            .json()
            .await?;
        for v in a["variations"].as_array().into_iter().flatten() {
            let line = format!(
                "v{} {:<12} {}{}",
                v["index"],
                v["state"].as_str().unwrap_or("?"),
                v["stage"]["progress"]
                    .as_f64()
                    .map(|p| format!("{p:>5.1}%  "))
                    .unwrap_or_default(),
                v["stage"]["detail"].as_str().unwrap_or("")
            );
            if line != last {
                println!("  [{:>6.1}s] {line}", started.elapsed().as_secs_f64());
                last = line;
            }
        }
        if a["status"] != "processing" {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    };

    println!("\nasset {id}: {}", asset["status"].as_str().unwrap_or("?"));
    let mut ok = asset["status"] == "published";
    for v in asset["variations"].as_array().into_iter().flatten() {
        if let Some(r) = v.get("reason") {
            println!(
                "  v{} {}: {}",
                v["index"],
                r["code"].as_str().unwrap_or(""),
                r["message"].as_str().unwrap_or("")
            );
        }
        if let Some(m) = v.get("master") {
            println!(
                "  master: {}x{} {:.2} s {} / {}, {} bytes, sha256 {}",
                m["width"],
                m["height"],
                m["duration_secs"].as_f64().unwrap_or(0.0),
                m["video_codec"].as_str().unwrap_or("?"),
                m["audio_codec"].as_str().unwrap_or("none"),
                m["size"],
                m["sha256"].as_str().unwrap_or("")
            );
        }
        if let Some(qc) = v.get("qc") {
            println!(
                "  QC {} (outputQuality {} -> SSIM floor {:.4})",
                qc["verdict"].as_str().unwrap_or("?").to_uppercase(),
                qc["output_quality"],
                qc["ssim_floor"].as_f64().unwrap_or(0.0)
            );
            println!(
                "    {:<8} {:>11} {:>8} {:>9} {:>10}",
                "rendition", "size", "SSIM", "PSNR dB", "bytes"
            );
            for r in qc["renditions"].as_array().into_iter().flatten() {
                println!(
                    "    {:<8} {:>11} {:>8.4} {:>9.2} {:>10}",
                    r["name"].as_str().unwrap_or(""),
                    format!("{}x{}", r["width"], r["height"]),
                    r["ssim"].as_f64().unwrap_or(0.0),
                    r["psnr_db"].as_f64().unwrap_or(0.0),
                    r["size_bytes"]
                );
            }
        }
        if let Some(p) = v.get("published") {
            println!(
                "  published (content hash {}):",
                p["content_hash"].as_str().unwrap_or("")
            );
            println!("    manifest  {}", p["manifest_url"].as_str().unwrap_or(""));
            println!("    vast      {}", p["vast_url"].as_str().unwrap_or(""));
            for r in p["renditions"].as_array().into_iter().flatten() {
                println!(
                    "    {:<8}  {}  ({} kbps, {})",
                    r["name"].as_str().unwrap_or(""),
                    r["url"].as_str().unwrap_or(""),
                    r["bitrate_kbps"],
                    r["codecs"].as_str().unwrap_or("")
                );
            }
            if let Some(h) = p["hls"].as_object() {
                let names: Vec<&str> = h["variants"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v["name"].as_str())
                    .collect();
                println!(
                    "    hls       {}  ({})",
                    h["master_url"].as_str().unwrap_or(""),
                    names.join(", ")
                );
            }
            for st in p["posters"].as_array().into_iter().flatten() {
                println!(
                    "    poster    {}  ({}x{} {})",
                    st["url"].as_str().unwrap_or(""),
                    st["width"],
                    st["height"],
                    st["format"].as_str().unwrap_or("")
                );
            }
            if let Some(sb) = p["storyboard"].as_object() {
                println!(
                    "    sprite    {}\n    vtt       {}",
                    sb["sprite_url"].as_str().unwrap_or(""),
                    sb["vtt_url"].as_str().unwrap_or("")
                );
            }
            if let Some(u) = p["preview_url"].as_str() {
                println!("    preview   {u}");
            }
            println!("    ({} files in the set)", p["file_count"]);
            println!(
                "    QC report {}",
                p["qc_report_url"].as_str().unwrap_or("")
            );
            // Show that the CDN origin serves byte ranges, as players need.
            if let Some(url) = p["renditions"][0]["url"].as_str() {
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
    }
    println!("  cost: ${:.2}", asset["cost_usd"].as_f64().unwrap_or(0.0));
    if !ok {
        bail!("the demo asset was not published");
    }
    println!(
        "\ndemo finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
