//! The delivered set as the destinations' rules read it, gathered from what
//! QC already measured (the probes of every output, their moov position,
//! the delivered loudness, the content analysis's border, cadence and
//! flash findings, the master probe's track timings: nothing is decoded
//! again), and each destination's verdict on it.

use crate::destinations::heal::Normalised;
use crate::destinations::verdict::{
    judge, Delivered, DeliveredAudio, DeliveredFile, DestinationCheck, DestinationVerdict,
};
use crate::destinations::Destinations;
use crate::media::loudness::Status;
use crate::media::master_qc::MasterQcSettings;
use crate::media::probe::Probe;
use crate::media::profile::OutputKind;
use crate::policy::QcReport;

/// The container name destinations' `containers` rule uses.
fn container(kind: OutputKind) -> &'static str {
    match kind {
        OutputKind::Mp4 => "mp4",
        OutputKind::Webm => "webm",
        OutputKind::Hls => "hls",
    }
}

/// What the report measured of the delivered files. `master` is the
/// master's probe (the border finding is in its analysis frame).
pub fn delivered(report: &QcReport, master: &Probe) -> Delivered {
    let files = report
        .renditions
        .iter()
        .filter_map(|r| {
            let v = r.probe.video.as_ref()?;
            let audio_bits = r.probe.audio.as_ref().and_then(|a| a.bit_rate).unwrap_or(0);
            // The file's bitrate minus its audio, as the profile's own band
            // checks read it; from the size when the probe has no bitrate.
            let bits = r.probe.bit_rate.or_else(|| {
                (r.probe.duration_secs > 0.0)
                    .then(|| (r.size_bytes as f64 * 8.0 / r.probe.duration_secs) as u64)
            });
            Some(DeliveredFile {
                name: r.name.clone(),
                container: container(r.kind).into(),
                video_codec: v.codec.clone(),
                width: v.width,
                height: v.height,
                fps: v.fps,
                duration_secs: r.probe.duration_secs,
                video_kbps: bits.map_or(0.0, |b| b.saturating_sub(audio_bits) as f64 / 1000.0),
                size_bytes: r.size_bytes,
                moov_first: r.moov_first,
                audio: r.probe.audio.as_ref().map(|a| DeliveredAudio {
                    codec: a.codec.clone(),
                    channels: a.channels,
                    sample_rate: a.sample_rate,
                    kbps: a.bit_rate.map(|b| b as f64 / 1000.0),
                }),
            })
        })
        .collect();
    // Normalised audio is judged as delivered (measured again by QC);
    // otherwise the delivered audio is the master's, as analysed.
    let loudness = match report
        .loudness_normalization
        .as_ref()
        .filter(|n| n.status == Status::Applied)
    {
        Some(n) => n.after,
        None => report.content.as_ref().and_then(|c| c.loudness),
    }
    .map(|l| (l.integrated_lufs, l.true_peak_dbtp));
    let defaults = MasterQcSettings::default();
    let borders = report.rules.as_ref().map_or(&defaults, |r| &r.master);
    let windowboxed = report
        .content
        .as_ref()
        .and_then(|c| crate::policy::windowboxed(c, master, borders));
    let content = report.content.as_ref();
    Delivered {
        files,
        loudness,
        windowboxed,
        borders: content.and_then(|c| crate::policy::bars_of(c, master, borders)),
        audio_offsets: crate::policy::av_offsets(master),
        repeated_frames: content.and_then(|c| c.cadence),
        worst_flash_second: content
            .and_then(|c| crate::policy::worst_flash_second(c, borders.flash_min_area)),
    }
}

/// Loudness normalisation as it ran, for the corrections record: None
/// when it did not.
pub fn normalised(report: &QcReport) -> Option<Normalised> {
    let n = report
        .loudness_normalization
        .as_ref()
        .filter(|n| n.status == Status::Applied)?;
    Some(Normalised {
        before_lufs: n.before.as_ref()?.input_i,
        target_lufs: n.target.as_ref()?.integrated_lufs,
        after_lufs: n.after.map(|l| l.integrated_lufs),
    })
}

/// The verdict of each destination in `names` (the asset's, in its order)
/// on `delivered`. A name no longer configured fails on that alone.
pub fn judge_all(
    names: &[String],
    configured: &Destinations,
    delivered: &Delivered,
) -> Vec<DestinationVerdict> {
    names
        .iter()
        .map(|name| match configured.get(name) {
            Some(d) => judge(name, d, delivered),
            None => {
                let missing = DestinationCheck {
                    rule: "configured".into(),
                    subject: "set".into(),
                    measured: "not configured".into(),
                    limit: format!("a [destinations.{name}] table"),
                    passed: false,
                };
                DestinationVerdict {
                    name: name.clone(),
                    passed: false,
                    files: Vec::new(),
                    reasons: vec![missing.clone()],
                    checks: vec![missing],
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destinations::Destination;

    fn report() -> QcReport {
        serde_json::from_value(serde_json::json!({
            "verdict": "pass", "output_quality": 80, "ssim_floor": 0.9,
            "ttl_remaining_secs": 60, "checks": [],
            "renditions": [{
                "name": "1080p", "expected_width": 1920, "expected_height": 1080,
                "kind": "mp4", "ssim": 0.99, "psnr": 40.0, "moov_first": true,
                "size_bytes": 3_100_000,
                "probe": {
                    "format_name": "mov,mp4", "duration_secs": 4.0, "size_bytes": 3_100_000,
                    "bit_rate": 6_200_000,
                    "video": {"codec": "h264", "profile": "High", "level": 40, "width": 1920,
                        "height": 1080, "pix_fmt": "yuv420p", "fps": 24.0, "nb_frames": 96},
                    "audio": {"codec": "aac", "sample_rate": 48000, "channels": 2,
                        "channel_layout": "stereo", "bit_rate": 192_000}
                }
            }]
        }))
        .unwrap()
    }

    #[test]
    fn the_report_gives_each_file_as_measured_and_the_video_rate_without_audio() {
        let master = report().renditions[0].probe.clone();
        let d = delivered(&report(), &master);
        let f = &d.files[0];
        assert_eq!(
            (f.container.as_str(), f.width, f.height),
            ("mp4", 1920, 1080)
        );
        assert!((f.video_kbps - 6008.0).abs() < 0.01, "{}", f.video_kbps);
        assert_eq!(f.audio.as_ref().unwrap().kbps, Some(192.0));
        assert!(f.moov_first);
        assert_eq!(d.loudness, None);
        assert_eq!(d.windowboxed, None);
    }

    #[test]
    fn a_failing_destination_and_an_unknown_one_fail_without_touching_the_others() {
        let master = report().renditions[0].probe.clone();
        let d = delivered(&report(), &master);
        let mut configured = Destinations::new();
        let buyer = |min| Destination {
            source: "t".into(),
            top_min_kbps: Some(min),
            ..Default::default()
        };
        configured.insert("low".into(), buyer(4000));
        configured.insert("high".into(), buyer(15000));
        let names = ["low", "high", "gone"].map(String::from);
        let v = judge_all(&names, &configured, &d);
        assert!(v[0].passed && v[0].files == ["1080p"], "{v:#?}");
        assert!(!v[1].passed);
        assert_eq!(v[1].reasons[0].rule, "top_min_kbps");
        assert_eq!(v[2].reasons[0].rule, "configured");
    }
}
