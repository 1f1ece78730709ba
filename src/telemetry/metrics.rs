//! The process's Prometheus metrics, kept in memory and written in the text
//! exposition format (version 0.0.4) by [`render`]. Hand-written: a few
//! labelled counters and histograms need no client library. Label values are
//! bounded sets chosen by the code (route templates, stage and state names,
//! ffmpeg run kinds), never raw client input.
//!
//! Imports nothing of the crate, so every module may record into it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds (seconds) of the duration histograms: HTTP answers take
/// milliseconds, stages and ffmpeg runs up to many minutes.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    /// Cumulative counts per bucket of [`DURATION_BUCKETS`].
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<&'static str, BTreeMap<Labels, f64>>,
    histograms: BTreeMap<&'static str, BTreeMap<Labels, Histogram>>,
}

/// Name and help text of every metric this process records.
pub const HELP: &[(&str, &str, &str)] = &[
    (
        "reelay_http_requests_total",
        "counter",
        "HTTP requests answered, by method, matched route template and status",
    ),
    (
        "reelay_http_request_duration_seconds",
        "histogram",
        "Time to answer an HTTP request, by method and matched route template",
    ),
    (
        "reelay_stage_duration_seconds",
        "histogram",
        "Time one pipeline step took, by stage and outcome",
    ),
    (
        "reelay_ffmpeg_runs_total",
        "counter",
        "ffmpeg and ffprobe runs, by kind and outcome",
    ),
    (
        "reelay_ffmpeg_duration_seconds",
        "histogram",
        "Wall time of ffmpeg and ffprobe runs, by kind and outcome",
    ),
    (
        "reelay_callback_deliveries_total",
        "counter",
        "Delivery attempts of callbacks and CDN purges, by kind and outcome",
    ),
    (
        "reelay_object_store_errors_total",
        "counter",
        "Object-store calls that failed, by operation",
    ),
];

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Mutex::default)
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_string())).collect()
}

/// Adds `by` to the counter `name` with these labels.
pub fn add(name: &'static str, pairs: &[(&'static str, &str)], by: f64) {
    let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
    *r.counters
        .entry(name)
        .or_default()
        .entry(labels(pairs))
        .or_default() += by;
}

pub fn inc(name: &'static str, pairs: &[(&'static str, &str)]) {
    add(name, pairs, 1.0);
}

/// Records one observation of `d` in the histogram `name`.
pub fn observe(name: &'static str, pairs: &[(&'static str, &str)], d: Duration) {
    let secs = d.as_secs_f64();
    let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
    let h = r
        .histograms
        .entry(name)
        .or_default()
        .entry(labels(pairs))
        .or_default();
    if h.buckets.is_empty() {
        h.buckets = vec![0; DURATION_BUCKETS.len()];
    }
    for (i, le) in DURATION_BUCKETS.iter().enumerate() {
        if secs <= *le {
            h.buckets[i] += 1;
        }
    }
    h.count += 1;
    h.sum += secs;
}

/// The value of a counter (tests and the CLI's summaries).
pub fn counter(name: &str, pairs: &[(&'static str, &str)]) -> f64 {
    let r = registry().lock().unwrap_or_else(|e| e.into_inner());
    r.counters
        .get(name)
        .and_then(|m| m.get(&labels(pairs)))
        .copied()
        .unwrap_or(0.0)
}

/// `ffmpeg` run kinds are the runs' labels ("quality measurement" →
/// `quality_measurement`, "ffmpeg -filters" → `ffmpeg_filters`): a fixed
/// set in the code. Every run of other characters is one `_`.
pub fn kind_label(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// Escapes a label value as the exposition format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_text(l: &Labels, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A gauge family computed at scrape time (queue depth, summed cost).
pub struct Gauge {
    pub name: &'static str,
    pub kind: &'static str,
    pub help: &'static str,
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// Every recorded metric, then `extra`, in the text exposition format.
pub fn render(extra: &[Gauge]) -> String {
    let r = registry().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::new();
    for (name, kind, help) in HELP {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        if let Some(m) = r.counters.get(name) {
            for (l, v) in m {
                let _ = writeln!(out, "{name}{} {}", label_text(l, None), number(*v));
            }
        }
        if let Some(m) = r.histograms.get(name) {
            for (l, h) in m {
                for (i, le) in DURATION_BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {}",
                        label_text(l, Some(("le", number(*le)))),
                        h.buckets[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {}",
                    label_text(l, Some(("le", "+Inf".into()))),
                    h.count
                );
                let _ = writeln!(out, "{name}_sum{} {}", label_text(l, None), h.sum);
                let _ = writeln!(out, "{name}_count{} {}", label_text(l, None), h.count);
            }
        }
    }
    for g in extra {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} {}",
            g.name, g.help, g.name, g.kind
        );
        for (l, v) in &g.samples {
            let _ = writeln!(out, "{}{} {}", g.name, label_text(l, None), number(*v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counters_add() {
        observe(
            "reelay_stage_duration_seconds",
            &[("stage", "t1"), ("outcome", "x")],
            Duration::from_millis(30),
        );
        observe(
            "reelay_stage_duration_seconds",
            &[("stage", "t1"), ("outcome", "x")],
            Duration::from_secs(3),
        );
        inc("reelay_object_store_errors_total", &[("operation", "t1")]);
        inc("reelay_object_store_errors_total", &[("operation", "t1")]);
        let text = render(&[]);
        assert!(
            text.contains(
                "reelay_stage_duration_seconds_bucket{stage=\"t1\",outcome=\"x\",le=\"0.025\"} 0"
            ),
            "{text}"
        );
        assert!(text.contains(
            "reelay_stage_duration_seconds_bucket{stage=\"t1\",outcome=\"x\",le=\"0.05\"} 1"
        ));
        assert!(text.contains(
            "reelay_stage_duration_seconds_bucket{stage=\"t1\",outcome=\"x\",le=\"5\"} 2"
        ));
        assert!(text.contains(
            "reelay_stage_duration_seconds_bucket{stage=\"t1\",outcome=\"x\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("reelay_stage_duration_seconds_count{stage=\"t1\",outcome=\"x\"} 2"));
        assert_eq!(
            counter("reelay_object_store_errors_total", &[("operation", "t1")]),
            2.0
        );
    }

    #[test]
    fn label_values_are_escaped_and_kinds_are_identifiers() {
        inc(
            "reelay_ffmpeg_runs_total",
            &[("kind", "a\"b\\c"), ("outcome", "ok")],
        );
        assert!(render(&[]).contains(r#"kind="a\"b\\c""#));
        assert_eq!(kind_label("quality measurement"), "quality_measurement");
        assert_eq!(kind_label("ffmpeg -filters"), "ffmpeg_filters");
        assert_eq!(kind_label("ffprobe -version "), "ffprobe_version");
    }
}
