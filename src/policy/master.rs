//! What a master must be to count as arrived.

use crate::media::probe::Probe;
use serde::{Deserialize, Serialize};

/// The containers a master may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    Mp4,
    Mov,
    Webm,
}

impl Container {
    pub fn as_str(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Mov => "mov",
            Container::Webm => "webm",
        }
    }
}

/// The local file extension for a master uploaded by hand: its key's, if
/// plain ("bin" otherwise).
pub fn upload_extension(key: &str) -> String {
    match key.rsplit_once('.') {
        Some((_, ext))
            if (1..=5).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            ext.to_ascii_lowercase()
        }
        _ => "bin".into(),
    }
}

impl Container {
    /// The container a master uploaded by hand is in: its key's
    /// extension, else what ffprobe found.
    pub fn of_upload(key: &str, probe: &Probe) -> Self {
        match upload_extension(key).as_str() {
            "mov" => Container::Mov,
            "webm" | "mkv" => Container::Webm,
            "mp4" | "m4v" => Container::Mp4,
            _ if probe.format_name.contains("webm") || probe.format_name.contains("matroska") => {
                Container::Webm
            }
            _ => Container::Mp4,
        }
    }
}

/// What the master must be to count as arrived: what was asked of the
/// generator, or, for a master uploaded by hand, what its own probe found.
/// `None` leaves that property unchecked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterSpec {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_secs: Option<f64>,
    /// An audio track is required (true) or forbidden (false).
    pub sound: bool,
    pub container: Container,
}

impl MasterSpec {
    /// A master uploaded by hand is its own request: its size, its sound,
    /// and its length as a request would give it (whole seconds, at least
    /// one), so the QC duration rule judges it like a generated master.
    pub fn from_probe(probe: &Probe, container: Container) -> Self {
        let video = probe.video.as_ref();
        MasterSpec {
            width: video.map(|v| v.width),
            height: video.map(|v| v.height),
            duration_secs: Some(probe.duration_secs.round().max(1.0)),
            sound: probe.audio.is_some(),
            container,
        }
    }
}

/// Compares the probed master with the request. Empty when it matches;
/// otherwise one plain sentence per mismatch.
pub fn master_mismatches(
    probe: &Probe,
    expected: &MasterSpec,
    duration_tolerance_secs: f64,
) -> Vec<String> {
    let mut out = Vec::new();
    let Some(video) = &probe.video else {
        out.push("the master has no video stream".to_string());
        return out;
    };
    // Clients read these in the reason: the format as the request spells it.
    let asked = expected.container.as_str().to_ascii_uppercase();
    let container_ok = match expected.container {
        Container::Mp4 => probe.format_name.contains("mp4"),
        Container::Mov => probe.format_name.contains("mov"),
        Container::Webm => {
            probe.format_name.contains("webm") || probe.format_name.contains("matroska")
        }
    };
    if !container_ok {
        out.push(format!(
            "container is {} but outputFormat {} was requested",
            probe.format_name, asked
        ));
    }
    let codec_ok = match expected.container {
        Container::Mp4 | Container::Mov => matches!(video.codec.as_str(), "h264" | "hevc"),
        Container::Webm => matches!(video.codec.as_str(), "vp9" | "vp8" | "av1"),
    };
    if !codec_ok {
        out.push(format!(
            "video codec {} does not fit outputFormat {}",
            video.codec, asked
        ));
    }
    if let (Some(w), Some(h)) = (expected.width, expected.height) {
        if video.width != w || video.height != h {
            // The size compared is the displayed one; say why it differs
            // from what the file stores.
            let how = video
                .stored
                .map(|s| format!(" (as displayed: {})", s.describe()))
                .unwrap_or_default();
            out.push(format!(
                "resolution is {}x{}{how} but {}x{} was requested",
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
    match (expected.sound, probe.audio.is_some()) {
        (true, false) => out.push("sound was requested but the master has no audio track".into()),
        (false, true) => {
            out.push("sound was not requested but the master has an audio track".into())
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(format: &str, codec: &str, secs: f64, audio: bool) -> Probe {
        serde_json::from_value(serde_json::json!({
            "format_name": format, "duration_secs": secs, "size_bytes": 1, "bit_rate": null,
            "video": {"codec": codec, "profile": null, "level": null, "width": 1920,
                      "height": 1080, "pix_fmt": null, "fps": 24.0, "nb_frames": null},
            "audio": audio.then(|| serde_json::json!({"codec": "aac", "sample_rate": 48000,
                      "channels": 2, "channel_layout": "stereo", "bit_rate": null})),
        }))
        .unwrap()
    }

    const MP4: &str = "mov,mp4,m4a,3gp,3g2,mj2";

    fn spec(container: Container) -> MasterSpec {
        MasterSpec {
            width: Some(1920),
            height: Some(1080),
            duration_secs: Some(10.0),
            sound: true,
            container,
        }
    }

    #[test]
    fn a_master_that_is_what_was_asked_has_no_mismatch() {
        let p = probe(MP4, "h264", 10.2, true);
        assert!(master_mismatches(&p, &spec(Container::Mp4), 0.5).is_empty());
        assert!(master_mismatches(&p, &spec(Container::Mov), 0.5).is_empty());
        let webm = probe("matroska,webm", "vp9", 10.0, true);
        assert!(master_mismatches(&webm, &spec(Container::Webm), 0.5).is_empty());
        let any = MasterSpec {
            width: None,
            height: None,
            duration_secs: None,
            ..spec(Container::Mp4)
        };
        assert!(master_mismatches(&probe(MP4, "hevc", 3.0, true), &any, 0.5).is_empty());
    }

    #[test]
    fn each_mismatch_is_one_sentence_in_the_requests_words() {
        let mut p = probe("matroska,webm", "vp9", 12.0, false);
        p.video.as_mut().unwrap().width = 1280;
        assert_eq!(
            master_mismatches(&p, &spec(Container::Mp4), 0.5),
            [
                "container is matroska,webm but outputFormat MP4 was requested",
                "video codec vp9 does not fit outputFormat MP4",
                "resolution is 1280x1080 but 1920x1080 was requested",
                "duration is 12.00 s but 10 s was requested (tolerance 0.5 s)",
                "sound was requested but the master has no audio track",
            ]
        );
        let silent = MasterSpec {
            sound: false,
            ..spec(Container::Webm)
        };
        assert_eq!(
            master_mismatches(&probe(MP4, "h264", 10.0, true), &silent, 0.5),
            [
                "container is mov,mp4,m4a,3gp,3g2,mj2 but outputFormat WEBM was requested",
                "video codec h264 does not fit outputFormat WEBM",
                "sound was not requested but the master has an audio track",
            ]
        );
        let mut blind = probe(MP4, "h264", 10.0, true);
        blind.video = None;
        assert_eq!(
            master_mismatches(&blind, &spec(Container::Mp4), 0.5),
            ["the master has no video stream"]
        );
    }

    #[test]
    fn a_master_uploaded_by_hand_is_its_own_spec() {
        let p = probe(MP4, "h264", 7.4, false);
        let s = MasterSpec::from_probe(&p, Container::Mov);
        assert_eq!(
            s,
            MasterSpec {
                width: Some(1920),
                height: Some(1080),
                duration_secs: Some(7.0),
                sound: false,
                container: Container::Mov,
            }
        );
        assert!(master_mismatches(&p, &s, 0.5).is_empty());
        let short = MasterSpec::from_probe(&probe(MP4, "h264", 0.3, true), Container::Mp4);
        assert_eq!((short.duration_secs, short.sound), (Some(1.0), true));
    }
}
