//! Tracks that fit together: the audio starts with the video and ends with
//! it, within the profile's tolerance (in video frames). Read from each
//! stream's start time and duration in the probe arrival made.

use super::verdict::Check;
use crate::media::master_qc::MasterQcSettings;
use crate::media::probe::Probe;

/// The audio's start and end, each as audio minus video (seconds), read
/// from the probe's stream timings: what the `audio_start` and `audio_end`
/// checks and a destination's sync limits judge. None where the streams
/// or their timings are missing (WebM stores none).
pub fn av_offsets(master: &Probe) -> (Option<f64>, Option<f64>) {
    let (Some(v), Some(a)) = (master.video.as_ref(), master.audio.as_ref()) else {
        return (None, None);
    };
    let v_start = v.timing.start_secs.unwrap_or(0.0);
    let start = a.timing.start_secs.map(|a| a - v_start);
    let end = match (v.timing.end_secs(), a.timing.end_secs()) {
        (Some(v_end), Some(a_end)) => Some(a_end - v_end),
        _ => None,
    };
    (start, end)
}

/// `audio_start` and `audio_end` of a master with audio and video whose
/// stream timings are known (WebM stores none: nothing to judge).
pub(super) fn sync_checks(checks: &mut Vec<Check>, master: &Probe, s: &MasterQcSettings) {
    let (Some(v), Some(a)) = (master.video.as_ref(), master.audio.as_ref()) else {
        return;
    };
    let fps = v.native_fps().max(1.0);
    let tol = s.av_sync_tolerance_frames / fps;
    let threshold = format!(
        "within {tol:.3} s ({} frames at {fps:.3} fps)",
        s.av_sync_tolerance_frames
    );
    let v_start = v.timing.start_secs.unwrap_or(0.0);
    if let Some(a_start) = a.timing.start_secs {
        let off = a_start - v_start;
        checks.push(Check::new(
            "master",
            "audio_start",
            threshold.clone(),
            format!("audio starts {off:+.3} s from the video (audio {a_start:.3} s, video {v_start:.3} s)"),
            off.abs() <= tol,
            || {
                let when = if off > 0.0 { "after" } else { "before" };
                format!(
                    "out of sync: the audio starts {:.3} s {when} the video (tolerance {tol:.3} s)",
                    off.abs()
                )
            },
        ));
    }
    if let (Some(v_end), Some(a_end)) = (v.timing.end_secs(), a.timing.end_secs()) {
        let off = a_end - v_end;
        checks.push(Check::new(
            "master",
            "audio_end",
            threshold,
            format!("audio ends {off:+.3} s from the video (audio {a_end:.3} s, video {v_end:.3} s)"),
            off.abs() <= tol,
            || {
                if off < 0.0 {
                    format!(
                        "incomplete audio: the audio track ends at {a_end:.3} s, {:.3} s before the video ends at {v_end:.3} s (tolerance {tol:.3} s)",
                        -off
                    )
                } else {
                    format!(
                        "out of sync: the audio runs {off:.3} s past the video's end at {v_end:.3} s (tolerance {tol:.3} s)"
                    )
                }
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(audio_start: f64, audio_secs: f64) -> Probe {
        serde_json::from_value(serde_json::json!({
            "format_name": "mov", "duration_secs": 4.0, "size_bytes": 1, "bit_rate": null,
            "video": {"codec": "h264", "profile": null, "level": null, "width": 640,
                "height": 360, "pix_fmt": null, "fps": 25.0, "nb_frames": null,
                "r_frame_rate": 25.0, "timing": {"start_secs": 0.0, "stream_duration_secs": 4.0}},
            "audio": {"codec": "aac", "sample_rate": 48000, "channels": 2,
                "channel_layout": null, "bit_rate": null,
                "timing": {"start_secs": audio_start, "stream_duration_secs": audio_secs}},
        }))
        .unwrap()
    }

    fn judged(p: &Probe) -> Vec<(String, bool, Option<String>)> {
        let mut checks = Vec::new();
        sync_checks(&mut checks, p, &MasterQcSettings::default());
        checks
            .into_iter()
            .map(|c| (c.rule, c.passed, c.reason))
            .collect()
    }

    #[test]
    fn audio_within_two_frames_fits_and_late_or_short_audio_does_not() {
        // 2 frames at 25 fps: 0.08 s.
        assert!(judged(&master(0.021, 4.0)).iter().all(|c| c.1));
        let late = judged(&master(0.5, 3.5));
        assert_eq!((late[0].0.as_str(), late[0].1), ("audio_start", false));
        assert!(late[0]
            .2
            .as_deref()
            .unwrap()
            .contains("0.500 s after the video"));
        assert!(late[1].1, "it still ends with the video");
        let short = judged(&master(0.0, 2.0));
        assert!(short[0].1);
        assert!(short[1]
            .2
            .as_deref()
            .unwrap()
            .starts_with("incomplete audio"));
        let long = judged(&master(0.0, 4.5));
        assert!(long[1]
            .2
            .as_deref()
            .unwrap()
            .contains("past the video's end"));
    }
}
