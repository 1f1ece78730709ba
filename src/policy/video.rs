//! Frame-rate and H.264 checks of a rendition's video stream.

use super::verdict::{Check, RenditionMeasure};
use crate::media::level::H264Level;
use crate::media::probe::{Probe, VideoStream};
use crate::media::transcode::prefix::{delivery_fps, variable_rate};

/// Two frame rates are the same rate within this, fps.
pub const FPS_TOLERANCE: f64 = 0.01;
/// A stream is constant-rate when its average rate is within this fraction of its base rate.
pub const CFR_TOLERANCE: f64 = 0.01;

/// Whether a video stream is constant frame rate: (what was measured,
/// constant). From avg vs r_frame_rate, else the frame count against
/// duration x rate. None when neither can be told.
pub fn constant_frame_rate(v: &VideoStream, duration_secs: f64) -> Option<(String, bool)> {
    match (v.avg_frame_rate, v.r_frame_rate) {
        (Some(avg), Some(base)) if base > 0.0 => Some((
            format!("average {avg:.3} fps, base {base:.3} fps"),
            (avg - base).abs() <= base * CFR_TOLERANCE,
        )),
        _ => {
            let n = v.nb_frames? as f64;
            let fps = v.native_fps();
            (fps > 0.0 && duration_secs > 0.0).then(|| {
                let expected = duration_secs * fps;
                (
                    format!("{n} frames in {duration_secs:.3} s at {fps:.3} fps"),
                    (n - expected).abs() <= (expected * CFR_TOLERANCE).max(2.0),
                )
            })
        }
    }
}

/// How ffprobe's level number reads in the report: the level's name, also
/// for numbers no plan can ask for (1b is 9, 6.x are 60..62), since the
/// report shows what the file claims.
fn probed_level_text(idc: i32) -> String {
    match H264Level::from_idc(idc) {
        Some(l) => l.to_string(),
        None if idc == 9 => "1b".into(),
        None => format!("{}.{}", idc / 10, idc % 10),
    }
}

/// x264's profile name against ffprobe's ("high" / "High", "baseline" /
/// "Constrained Baseline").
fn same_h264_profile(probed: &str, asked: &str) -> bool {
    let p = probed.to_ascii_lowercase();
    let a = asked.to_ascii_lowercase();
    p == a || (a == "baseline" && p == "constrained baseline")
}

/// The master's native frame rate kept, at a constant rate.
pub(super) fn rate_checks(
    checks: &mut Vec<Check>,
    s: &str,
    v: &VideoStream,
    master: &Probe,
    secs: f64,
    conformed: Option<f64>,
) {
    let rate = v.native_fps();
    if let Some(mv) = master.video.as_ref() {
        // A variable-rate master is delivered at the standard rate nearest
        // its average (its base rate can be a timebase such as 24000);
        // conformed for the destinations, at the rate they share.
        let native = conformed.unwrap_or_else(|| delivery_fps(mv));
        let whose = if conformed.is_some() {
            "the rate the outputs were conformed to for the destinations"
        } else if variable_rate(mv) {
            "the constant rate the variable-rate master is conformed to"
        } else {
            "the master's native rate"
        };
        if native > 0.0 {
            checks.push(Check::new(
                s,
                "frame_rate",
                format!("{native:.3} fps ({whose})"),
                format!("{rate:.3} fps"),
                (rate - native).abs() <= FPS_TOLERANCE,
                || format!("frame rate {rate:.3} fps is not {native:.3} fps ({whose})"),
            ));
        }
    }
    if let Some((measured, constant)) = constant_frame_rate(v, secs) {
        checks.push(Check::new(
            s,
            "constant_frame_rate",
            format!("constant (within {}%)", CFR_TOLERANCE * 100.0),
            measured.clone(),
            constant,
            || format!("the frame rate is not constant ({measured}); buyers require CFR"),
        ));
    }
}

/// An H.264 rendition has the profile and level its plan asked for, and the
/// level is at least what its size, rate and bitrate cap need.
pub(super) fn h264_checks(checks: &mut Vec<Check>, r: &RenditionMeasure, v: &VideoStream) {
    if v.codec != "h264" {
        return;
    }
    let s = r.name.as_str();
    // Rows measured before plans recorded a profile asked for High.
    let want = r.expected_profile.as_deref().unwrap_or("high");
    let got = v.profile.clone().unwrap_or_else(|| "unknown".into());
    checks.push(Check::new(
        s,
        "h264_profile",
        want,
        got.clone(),
        same_h264_profile(&got, want),
        || format!("H.264 profile is {got}, the plan asked for {want}"),
    ));
    if let Some(want) = r.expected_level {
        let fps = v.native_fps();
        let cap = r.max_bitrate_kbps.unwrap_or(0);
        let needed = H264Level::lowest_for(v.width, v.height, fps, cap);
        let got_text = v
            .level
            .map(probed_level_text)
            .unwrap_or_else(|| "unknown".into());
        // A number outside table A-1 can match no plan, so it fails as asked-for.
        let got = v.level.and_then(H264Level::from_idc);
        let matches = got == Some(want);
        let enough = got.is_some_and(|g| g >= needed);
        checks.push(Check::new(
            s,
            "h264_level",
            format!("{want} (at least {needed})"),
            got_text.clone(),
            matches && enough,
            || {
                if matches {
                    format!(
                        "H.264 level {got_text} is below the {needed} that {}x{} at {fps:.3} fps and {cap} kbps need",
                        v.width, v.height
                    )
                } else {
                    format!("H.264 level is {got_text}, the plan asked for {want}")
                }
            },
        ));
    }
}
