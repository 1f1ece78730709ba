//! Shared by test binaries (`#[path]`): a file's loudness as ffmpeg's
//! `ebur128` filter measures it, independent of reelay's own measurement.

/// Integrated loudness (LUFS) and true peak (dBTP) of a file's audio, read
/// from ffmpeg's ebur128 summary.
pub fn ebur128(path: &std::path::Path) -> (f64, f64) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(path)
        .args(["-vn", "-af", "ebur128=peak=true", "-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let summary = &log[log.rfind("Summary:").expect("an ebur128 summary")..];
    let value = |key: &str| -> f64 {
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (value("I:"), value("Peak:"))
}
