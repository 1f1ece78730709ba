//! Following an asset until it ends: one progress bar per variation (state,
//! percent, ETA), redrawn in place on a terminal and printed as plain lines
//! when they change otherwise; then the published URLs and the QC summary.

use super::Client;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const BAR_WIDTH: usize = 24;

/// Where a variation stands, as one line shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub index: i64,
    pub state: String,
    pub percent: Option<f64>,
    pub eta_secs: Option<f64>,
    pub detail: String,
}

impl Row {
    pub fn from_view(v: &Value) -> Row {
        let progress = &v["progress"];
        Row {
            index: v["index"].as_i64().unwrap_or(0),
            state: v["state"].as_str().unwrap_or("?").to_string(),
            percent: progress["percent"]
                .as_f64()
                .or_else(|| v["stage"]["progress"].as_f64())
                .map(|p| p.clamp(0.0, 100.0)),
            eta_secs: progress["eta_secs"].as_f64().filter(|e| e.is_finite()),
            detail: v["stage"]["detail"].as_str().unwrap_or("").to_string(),
        }
    }

    /// `v1 transcoding  [#########---------------]  37.5%  ETA 12s  detail`
    pub fn bar(&self) -> String {
        let filled = self
            .percent
            .map_or(0, |p| ((p / 100.0) * BAR_WIDTH as f64).round() as usize)
            .min(BAR_WIDTH);
        let pct = self
            .percent
            .map_or_else(|| "    -".to_string(), |p| format!("{p:>5.1}"));
        let eta = self
            .eta_secs
            .map_or_else(String::new, |e| format!("  ETA {}", eta_text(e)));
        let detail = if self.detail.is_empty() {
            String::new()
        } else {
            format!("  {}", self.detail)
        };
        format!(
            "v{} {:<12} [{}{}] {pct}%{eta}{detail}",
            self.index,
            self.state,
            "#".repeat(filled),
            "-".repeat(BAR_WIDTH - filled),
        )
    }

    /// The line without what changes every poll (ETA, fine percent): what
    /// a plain log gets a new line for.
    fn plain_key(&self) -> (String, Option<i64>, String) {
        (
            self.state.clone(),
            self.percent.map(|p| (p / 10.0).floor() as i64),
            self.detail.clone(),
        )
    }
}

fn eta_text(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Draws rows: in place on a terminal, new lines otherwise.
pub struct Display {
    tty: bool,
    drawn: usize,
    last: HashMap<i64, (String, Option<i64>, String)>,
    started: Instant,
}

impl Display {
    pub fn new() -> Self {
        Self::with_tty(std::io::stdout().is_terminal())
    }

    pub fn with_tty(tty: bool) -> Self {
        Display {
            tty,
            drawn: 0,
            last: HashMap::new(),
            started: Instant::now(),
        }
    }

    /// The text one update prints.
    pub fn frame(&mut self, rows: &[Row]) -> String {
        let mut out = String::new();
        if self.tty {
            if self.drawn > 0 {
                // Up to the first bar, then each line cleared and redrawn.
                out.push_str(&format!("\x1b[{}A", self.drawn));
            }
            for r in rows {
                out.push_str("\r\x1b[2K");
                out.push_str(&r.bar());
                out.push('\n');
            }
            self.drawn = rows.len();
        } else {
            for r in rows {
                let key = r.plain_key();
                if self.last.get(&r.index) != Some(&key) {
                    out.push_str(&format!(
                        "[{:>6.1}s] {}\n",
                        self.started.elapsed().as_secs_f64(),
                        r.bar()
                    ));
                    self.last.insert(r.index, key);
                }
            }
        }
        out
    }

    pub fn draw(&mut self, rows: &[Row]) {
        let text = self.frame(rows);
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

impl Default for Display {
    fn default() -> Self {
        Self::new()
    }
}

/// Polls the asset until it leaves `processing`, drawing each update;
/// returns the final view.
pub async fn follow(client: &Client, id: &str, timeout: Duration) -> anyhow::Result<Value> {
    let started = Instant::now();
    let mut display = Display::new();
    loop {
        let a = client.get(id).await?;
        let rows: Vec<Row> = a["variations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Row::from_view)
            .collect();
        display.draw(&rows);
        if a["status"] != "processing" {
            return Ok(a);
        }
        if started.elapsed() > timeout {
            anyhow::bail!(
                "asset {id} did not finish within {} s (still processing)",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// Prints the end of a watch: status, reasons, masters, the QC summary and
/// the published URLs. True when the asset is published.
pub fn print_summary(asset: &Value) -> bool {
    let id = asset["id"].as_str().unwrap_or("?");
    println!("\nasset {id}: {}", asset["status"].as_str().unwrap_or("?"));
    for v in asset["variations"].as_array().into_iter().flatten() {
        print_variation(v);
    }
    let ready: Vec<&str> = asset["destinations_ready"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if asset["destinations"]
        .as_array()
        .is_some_and(|d| !d.is_empty())
    {
        let ready = if ready.is_empty() {
            "none".to_string()
        } else {
            ready.join(", ")
        };
        println!("  destinations ready: {ready}");
    }
    println!("  cost: ${:.2}", asset["cost_usd"].as_f64().unwrap_or(0.0));
    asset["status"] == "published"
}

/// A variation's verdict per destination, for people: one line each
/// (ready, with its VAST, or not ready), and under a failing one each
/// failed rule with what was measured and the limit.
pub fn destination_lines(v: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    for d in v["destinations"].as_array().into_iter().flatten() {
        let name = d["name"].as_str().unwrap_or("?");
        if d["passed"] == true {
            let vast = d["vast_url"].as_str().unwrap_or("(not published yet)");
            lines.push(format!("  destination {name}: ready  {vast}"));
            continue;
        }
        lines.push(format!("  destination {name}: NOT READY"));
        for r in d["reasons"].as_array().into_iter().flatten() {
            lines.push(format!(
                "    {} {}: {} (limit {})",
                r["subject"].as_str().unwrap_or(""),
                r["rule"].as_str().unwrap_or(""),
                r["measured"].as_str().unwrap_or(""),
                r["limit"].as_str().unwrap_or("")
            ));
        }
    }
    lines
}

fn print_variation(v: &Value) {
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
    for line in destination_lines(v) {
        println!("{line}");
    }
    let Some(p) = v.get("published") else {
        return;
    };
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_destination_gets_a_line_and_a_failing_one_its_reasons() {
        let v = json!({"destinations": [
            {"name": "ttd", "passed": true, "vast_url": "https://cdn/v0/vast/ttd.xml", "reasons": []},
            {"name": "roku", "passed": false, "vast_url": null, "reasons": [
                {"rule": "top_min_kbps", "subject": "1080p", "measured": "4100 kbps", "limit": ">= 6000 kbps"}]}
        ]});
        assert_eq!(
            destination_lines(&v),
            [
                "  destination ttd: ready  https://cdn/v0/vast/ttd.xml",
                "  destination roku: NOT READY",
                "    1080p top_min_kbps: 4100 kbps (limit >= 6000 kbps)",
            ]
        );
        assert!(destination_lines(&json!({})).is_empty());
    }

    fn row(state: &str, pct: Option<f64>, eta: Option<f64>) -> Row {
        Row::from_view(&json!({
            "index": 1, "state": state,
            "stage": {"progress": pct, "detail": null},
            "progress": {"stage": state, "percent": pct, "eta_secs": eta},
        }))
    }

    #[test]
    fn a_bar_shows_state_percent_and_eta() {
        let b = row("transcoding", Some(50.0), Some(75.0)).bar();
        assert!(b.starts_with("v1 transcoding"), "{b}");
        assert!(
            b.contains(&format!("[{}{}]", "#".repeat(12), "-".repeat(12))),
            "{b}"
        );
        assert!(b.contains(" 50.0%") && b.contains("ETA 1m15s"), "{b}");
    }

    #[test]
    fn a_terminal_redraws_in_place_and_a_pipe_gets_plain_lines_on_change() {
        let mut tty = Display::with_tty(true);
        let first = tty.frame(&[row("transcoding", Some(10.0), None)]);
        assert!(!first.contains("\x1b[1A"));
        let second = tty.frame(&[row("transcoding", Some(20.0), None)]);
        assert!(second.starts_with("\x1b[1A"), "{second:?}");

        let mut plain = Display::with_tty(false);
        let a = plain.frame(&[row("transcoding", Some(10.0), Some(9.0))]);
        assert!(!a.contains('\x1b') && a.contains("transcoding"), "{a:?}");
        // Only the ETA or a fraction of a step changed: nothing new.
        assert_eq!(
            plain.frame(&[row("transcoding", Some(11.0), Some(8.0))]),
            ""
        );
        assert!(plain
            .frame(&[row("checking", None, None)])
            .contains("checking"));
    }
}
