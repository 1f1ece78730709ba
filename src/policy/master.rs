//! What a master must be to count as arrived.

use crate::media::probe::Probe;
use crate::runware::{GenerationRequest, OutputFormat};
use serde::{Deserialize, Serialize};

/// What the request says the master must be.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Expected {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_secs: Option<f64>,
    pub audio: bool,
    pub format: OutputFormat,
}

impl Expected {
    pub fn from_request(req: &GenerationRequest) -> Self {
        let (width, height) = match req.dimensions() {
            Some((w, h)) => (Some(w), Some(h)),
            None => (None, None),
        };
        Expected {
            width,
            height,
            duration_secs: req.effective_duration().map(f64::from),
            audio: req.sound(),
            format: req.effective_output_format(),
        }
    }
}

/// Compares the probed master with the request. Empty when it matches;
/// otherwise one plain sentence per mismatch.
pub fn master_mismatches(
    probe: &Probe,
    expected: &Expected,
    duration_tolerance_secs: f64,
) -> Vec<String> {
    let mut out = Vec::new();
    let Some(video) = &probe.video else {
        out.push("the master has no video stream".to_string());
        return out;
    };
    let container_ok = match expected.format {
        OutputFormat::Mp4 => probe.format_name.contains("mp4"),
        OutputFormat::Mov => probe.format_name.contains("mov"),
        OutputFormat::Webm => {
            probe.format_name.contains("webm") || probe.format_name.contains("matroska")
        }
    };
    if !container_ok {
        out.push(format!(
            "container is {} but outputFormat {} was requested",
            probe.format_name,
            expected.format.as_str()
        ));
    }
    let codec_ok = match expected.format {
        OutputFormat::Mp4 | OutputFormat::Mov => matches!(video.codec.as_str(), "h264" | "hevc"),
        OutputFormat::Webm => matches!(video.codec.as_str(), "vp9" | "vp8" | "av1"),
    };
    if !codec_ok {
        out.push(format!(
            "video codec {} does not fit outputFormat {}",
            video.codec,
            expected.format.as_str()
        ));
    }
    if let (Some(w), Some(h)) = (expected.width, expected.height) {
        if video.width != w || video.height != h {
            out.push(format!(
                "resolution is {}x{} but {}x{} was requested",
                video.width, video.height, w, h
            ));
        }
    }
    if let Some(d) = expected.duration_secs {
        if (probe.duration_secs - d).abs() > duration_tolerance_secs {
            out.push(format!(
                "duration is {:.2} s but {} s was requested (tolerance {} s)",
                probe.duration_secs, d, duration_tolerance_secs
            ));
        }
    }
    match (expected.audio, probe.audio.is_some()) {
        (true, false) => out.push("sound was requested but the master has no audio track".into()),
        (false, true) => {
            out.push("sound was not requested but the master has an audio track".into())
        }
        _ => {}
    }
    out
}
