//! RFC 6381 codec strings (`avc1.640028`, `vp09.00.31.08`, `mp4a.40.2`), as
//! HLS `CODECS` attributes and the manifest's `codecs` fields carry them. The
//! transcode writes them into the master playlist and publishing describes
//! probed files with them, so both must agree on one spelling.

use super::ladder::Rendition;
use super::level::H264Level;
use super::probe::Probe;

/// AAC-LC, the only AAC profile reelay encodes.
pub const MP4A_AAC_LC: &str = "mp4a.40.2";

/// RFC 6381 codecs of a probed file: its video codec, then its audio codec
/// if it has one (`avc1.640028,mp4a.40.2`, `vp09.00.31.08,opus`).
pub fn codecs_of(probe: &Probe) -> String {
    let mut parts = Vec::new();
    if let Some(v) = &probe.video {
        parts.push(match v.codec.as_str() {
            "h264" => avc1_codec(v.profile.as_deref(), v.level),
            "vp9" => vp09_codec(
                v.profile.as_deref(),
                v.width,
                v.height,
                v.fps,
                v.pix_fmt.as_deref(),
            ),
            "vp8" => "vp8".into(),
            "av1" => "av01".into(),
            "hevc" => "hvc1".into(),
            other => other.to_string(),
        });
    }
    if let Some(a) = &probe.audio {
        parts.push(match a.codec.as_str() {
            // reelay encodes AAC-LC only.
            "aac" => MP4A_AAC_LC.into(),
            "mp3" => "mp4a.40.34".into(),
            "opus" => "opus".into(),
            "vorbis" => "vorbis".into(),
            other => other.to_string(),
        });
    }
    parts.join(",")
}

/// RFC 6381 / VP9-in-ISOBMFF string `vp09.PP.LL.DD`: profile, the lowest
/// VP9 level whose picture size and luma sample rate cover the stream, bit
/// depth. ffprobe does not report VP9 levels, so the level is derived.
pub fn vp09_codec(
    profile: Option<&str>,
    width: u32,
    height: u32,
    fps: f64,
    pix_fmt: Option<&str>,
) -> String {
    let profile = match profile {
        Some(p) if p.ends_with('1') => 1,
        Some(p) if p.ends_with('2') => 2,
        Some(p) if p.ends_with('3') => 3,
        _ => 0,
    };
    let depth = match pix_fmt {
        Some(f) if f.contains("12") => 12,
        Some(f) if f.contains("10") => 10,
        _ => 8,
    };
    // (level x10, max luma picture size, max luma sample rate), VP9 spec Annex A.
    const LEVELS: [(u32, u64, u64); 14] = [
        (10, 36_864, 829_440),
        (11, 73_728, 2_764_800),
        (20, 122_880, 4_608_000),
        (21, 245_760, 9_216_000),
        (30, 552_960, 20_736_000),
        (31, 983_040, 36_864_000),
        (40, 2_228_224, 83_558_400),
        (41, 2_228_224, 160_432_128),
        (50, 8_912_896, 311_951_360),
        (51, 8_912_896, 588_251_136),
        (52, 8_912_896, 1_176_502_272),
        (60, 35_651_584, 1_176_502_272),
        (61, 35_651_584, 2_353_004_544),
        (62, 35_651_584, 4_706_009_088),
    ];
    let size = u64::from(width) * u64::from(height);
    let rate = (size as f64 * fps.max(0.0)).ceil() as u64;
    let level = LEVELS
        .iter()
        .find(|(_, max_size, max_rate)| size <= *max_size && rate <= *max_rate)
        .map_or(62, |(l, _, _)| *l);
    format!("vp09.{profile:02}.{level:02}.{depth:02}")
}

/// RFC 6381 string for H.264 from ffprobe's profile name and level (x10).
pub fn avc1_codec(profile: Option<&str>, level: Option<i32>) -> String {
    let profile_idc = match profile {
        Some("Baseline") | Some("Constrained Baseline") => 0x42,
        Some("Main") => 0x4d,
        Some("High 10") => 0x6e,
        _ => 0x64,
    };
    let level = level.unwrap_or(40).clamp(0, 255);
    format!("avc1.{profile_idc:02x}00{level:02x}")
}

/// The codec string of an H.264 rendition the plan asks for, before there is
/// a file to probe: the plan's lowercase x264 profile name and "4.0" level
/// are mapped onto ffprobe's spelling so both paths share [`avc1_codec`].
pub fn avc1_of(r: &Rendition) -> String {
    let profile = match r.profile.as_str() {
        "baseline" => "Baseline",
        "main" => "Main",
        _ => "High",
    };
    avc1_codec(Some(profile), r.level.map(H264Level::idc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_strings_come_from_the_probe() {
        use crate::media::{AudioStream, VideoStream};
        let video = |codec: &str, profile: &str, level: Option<i32>, w, h| VideoStream {
            codec: codec.into(),
            profile: Some(profile.into()),
            level,
            width: w,
            height: h,
            pix_fmt: Some("yuv420p".into()),
            fps: 24.0,
            nb_frames: None,
            ..Default::default()
        };
        let audio = |codec: &str| AudioStream {
            codec: codec.into(),
            sample_rate: 48000,
            channels: 2,
            channel_layout: None,
            bit_rate: None,
            timing: Default::default(),
        };
        let probe = |v, a| Probe {
            format_name: "x".into(),
            duration_secs: 1.0,
            size_bytes: 1,
            bit_rate: None,
            video: Some(v),
            audio: a,
        };
        assert_eq!(
            codecs_of(&probe(
                video("h264", "High", Some(40), 1920, 1080),
                Some(audio("aac"))
            )),
            "avc1.640028,mp4a.40.2"
        );
        assert_eq!(
            codecs_of(&probe(video("h264", "Main", Some(31), 1280, 720), None)),
            "avc1.4d001f"
        );
        // ffprobe reports no VP9 level (-99): it is derived from size and rate.
        assert_eq!(
            codecs_of(&probe(
                video("vp9", "Profile 0", Some(-99), 1920, 1080),
                Some(audio("opus"))
            )),
            "vp09.00.40.08,opus"
        );
        assert_eq!(
            codecs_of(&probe(
                video("vp9", "Profile 0", None, 1280, 720),
                Some(audio("opus"))
            )),
            "vp09.00.31.08,opus"
        );
        assert_eq!(
            vp09_codec(Some("Profile 0"), 640, 360, 30.0, None),
            "vp09.00.21.08"
        );
        assert_eq!(
            vp09_codec(Some("Profile 0"), 854, 480, 30.0, None),
            "vp09.00.30.08"
        );
        assert_eq!(
            vp09_codec(Some("Profile 0"), 3840, 2160, 60.0, None),
            "vp09.00.51.08"
        );
        assert_eq!(
            vp09_codec(Some("Profile 2"), 1920, 1080, 60.0, Some("yuv420p10le")),
            "vp09.02.41.10"
        );
    }

    #[test]
    fn avc1_codec_strings_follow_rfc_6381() {
        assert_eq!(avc1_codec(Some("High"), Some(40)), "avc1.640028");
        assert_eq!(avc1_codec(Some("High"), Some(31)), "avc1.64001f");
        assert_eq!(avc1_codec(Some("Main"), Some(30)), "avc1.4d001e");
    }

    #[test]
    fn a_planned_rendition_gets_the_string_its_file_will_probe_as() {
        let r = Rendition {
            level: Some(H264Level::L3_1),
            ..crate::media::default_ladder(1280, 720)[0].clone()
        };
        assert_eq!(avc1_of(&r), "avc1.64001f");
        assert_eq!(avc1_of(&r), avc1_codec(Some("High"), Some(31)));
    }
}
