//! ffprobe's JSON as typed values, and an MP4 "web optimized" check.
//!
//! ffprobe prints many numbers as strings ("2.000000", "N/A") and leaves
//! fields out depending on the container; parsing takes whatever is there.

use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// ffprobe's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "matroska,webm".
    pub format_name: String,
    /// Container duration (or the longest stream's when the container has none); 0 if unknown.
    pub duration_secs: f64,
    pub size_bytes: u64,
    pub bit_rate: Option<u64>,
    /// The first video stream that is not cover art.
    pub video: Option<VideoStream>,
    /// The first audio stream.
    pub audio: Option<AudioStream>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoStream {
    /// ffprobe codec name: "h264", "vp9", "hevc"...
    pub codec: String,
    /// e.g. "High", "Main", "Profile 0".
    pub profile: Option<String>,
    /// ffprobe's level number: 40 for H.264 level 4.0. None when unknown.
    pub level: Option<i32>,
    pub width: u32,
    pub height: u32,
    pub pix_fmt: Option<String>,
    /// Frames per second from avg_frame_rate, else r_frame_rate; 0 if unknown.
    pub fps: f64,
    pub nb_frames: Option<u64>,
    /// ffprobe's r_frame_rate: the stream's base rate (the native rate).
    #[serde(default)]
    pub r_frame_rate: Option<f64>,
    /// ffprobe's avg_frame_rate: frames over duration. Equal to
    /// `r_frame_rate` for constant frame rate.
    #[serde(default)]
    pub avg_frame_rate: Option<f64>,
    /// What the file stores, when the display differs from it (a display
    /// matrix or non-square pixels): `width`/`height` above are the picture
    /// as displayed, which is what requests and outputs are compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<StoredPicture>,
    /// Where the stream's first frame sits on the timeline, and how long it lasts.
    #[serde(default)]
    pub timing: StreamTiming,
    /// ffprobe's field_order: "progressive", "tt", "bb", "tb", "bt".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_order: Option<String>,
    /// Colour tags as ffprobe names them ("bt709", "bt2020", "smpte2084", "arib-std-b67").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_primaries: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_transfer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_space: Option<String>,
}

/// A stream's position on the timeline (ffprobe's start_time and duration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamTiming {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_duration_secs: Option<f64>,
}

impl StreamTiming {
    /// Where the stream ends on the timeline, when both are known.
    pub fn end_secs(&self) -> Option<f64> {
        Some(self.start_secs.unwrap_or(0.0) + self.stream_duration_secs?)
    }
}

/// The picture as stored, beside the displayed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPicture {
    pub width: u32,
    pub height: u32,
    /// Display rotation in degrees (0, 90, 180, 270), from the display matrix.
    pub rotation: i32,
    /// Sample (pixel) aspect ratio.
    pub sar_num: u32,
    pub sar_den: u32,
}

impl StoredPicture {
    pub fn square_pixels(&self) -> bool {
        self.sar_num == self.sar_den
    }

    /// "stored as 1920x1080, its display matrix rotates it 90 degrees" and/or
    /// "pixel aspect 4:3".
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("stored as {}x{}", self.width, self.height)];
        if self.rotation != 0 {
            parts.push(format!(
                "its display matrix rotates it {} degrees",
                self.rotation
            ));
        }
        if !self.square_pixels() {
            parts.push(format!(
                "its pixels are not square (pixel aspect {}:{})",
                self.sar_num, self.sar_den
            ));
        }
        parts.join(", ")
    }
}

/// The displayed size of a stored picture: the width stretched by the pixel
/// aspect (kept even), then turned by the rotation.
pub fn displayed_size(width: u32, height: u32, rotation: i32, sar: (u32, u32)) -> (u32, u32) {
    let (n, d) = sar;
    let w = if n > 0 && d > 0 && n != d {
        let stretched = (width as f64 * n as f64 / d as f64).round() as u32;
        stretched.saturating_add(stretched % 2).max(2)
    } else {
        width
    };
    if rotation.rem_euclid(180) == 90 {
        (height, w)
    } else {
        (w, height)
    }
}

impl VideoStream {
    /// The native frame rate: r_frame_rate, else `fps`. A variable-rate
    /// stream's r_frame_rate is often its timebase (24000 for 1/24000):
    /// when it is far from the average, the average is the rate.
    pub fn native_fps(&self) -> f64 {
        match (self.r_frame_rate, self.avg_frame_rate) {
            (Some(r), Some(avg)) if avg > 0.0 && (r > avg * 2.0 || r < avg / 2.0) => avg,
            (Some(r), _) => r,
            (None, _) => self.fps,
        }
    }

    /// Interlaced, as the container or the codec says (field_order).
    pub fn interlaced(&self) -> bool {
        matches!(self.field_order.as_deref(), Some("tt" | "bb" | "tb" | "bt"))
    }

    /// High dynamic range or wide gamut: BT.2020 primaries or matrix, PQ or HLG transfer.
    pub fn hdr_or_wide_gamut(&self) -> bool {
        let wide = |t: &Option<String>| t.as_deref().is_some_and(|t| t.starts_with("bt2020"));
        wide(&self.color_primaries)
            || wide(&self.color_space)
            || matches!(
                self.color_transfer.as_deref(),
                Some("smpte2084" | "arib-std-b67")
            )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioStream {
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u32,
    pub channel_layout: Option<String>,
    pub bit_rate: Option<u64>,
    #[serde(default)]
    pub timing: StreamTiming,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("not ffprobe JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("ffprobe JSON has no \"format\" section")]
    NoFormat,
}

impl Probe {
    pub fn has_audio(&self) -> bool {
        self.audio.is_some()
    }
}

/// Parses `ffprobe -print_format json -show_format -show_streams` output.
pub fn parse(json: &[u8]) -> Result<Probe, ProbeError> {
    let raw: Raw = serde_json::from_slice(json)?;
    let format = raw.format.ok_or(ProbeError::NoFormat)?;

    let video = raw
        .streams
        .iter()
        .filter(|s| s.codec_type.as_deref() == Some("video"))
        .find(|s| !s.is_cover_art())
        .map(|s| {
            let coded_w = s.width.as_ref().and_then(Num::as_u64).unwrap_or(0) as u32;
            let coded_h = s.height.as_ref().and_then(Num::as_u64).unwrap_or(0) as u32;
            let rotation = s.rotation();
            let sar = s.sar();
            let (width, height) = displayed_size(coded_w, coded_h, rotation, sar);
            let stored = (rotation != 0 || sar.0 != sar.1).then_some(StoredPicture {
                width: coded_w,
                height: coded_h,
                rotation,
                sar_num: sar.0,
                sar_den: sar.1,
            });
            VideoStream {
                codec: s.codec_name.clone().unwrap_or_default(),
                profile: s.profile.clone().filter(|p| !p.is_empty()),
                level: s
                    .level
                    .as_ref()
                    .and_then(Num::as_i64)
                    .filter(|l| *l >= 0)
                    .map(|l| l as i32),
                width,
                height,
                pix_fmt: s.pix_fmt.clone(),
                fps: [&s.avg_frame_rate, &s.r_frame_rate]
                    .into_iter()
                    .find_map(|r| r.as_deref().and_then(parse_rate))
                    .unwrap_or(0.0),
                nb_frames: s.nb_frames.as_ref().and_then(Num::as_u64),
                r_frame_rate: s.r_frame_rate.as_deref().and_then(parse_rate),
                avg_frame_rate: s.avg_frame_rate.as_deref().and_then(parse_rate),
                stored,
                timing: s.timing(),
                field_order: s.field_order.clone().filter(|f| f != "unknown"),
                color_primaries: tag(&s.color_primaries),
                color_transfer: tag(&s.color_transfer),
                color_space: tag(&s.color_space),
            }
        });
    let audio = raw
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("audio"))
        .map(|s| AudioStream {
            codec: s.codec_name.clone().unwrap_or_default(),
            sample_rate: s.sample_rate.as_ref().and_then(Num::as_u64).unwrap_or(0) as u32,
            channels: s.channels.as_ref().and_then(Num::as_u64).unwrap_or(0) as u32,
            channel_layout: s.channel_layout.clone(),
            bit_rate: s.bit_rate.as_ref().and_then(Num::as_u64),
            timing: s.timing(),
        });
    let longest_stream = raw
        .streams
        .iter()
        .filter_map(|s| s.duration.as_ref().and_then(Num::as_f64))
        .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))));

    Ok(Probe {
        format_name: format.format_name.unwrap_or_default(),
        duration_secs: format
            .duration
            .as_ref()
            .and_then(Num::as_f64)
            .or(longest_stream)
            .unwrap_or(0.0),
        size_bytes: format.size.as_ref().and_then(Num::as_u64).unwrap_or(0),
        bit_rate: format.bit_rate.as_ref().and_then(Num::as_u64),
        video,
        audio,
    })
}

/// "24000/1001" -> 23.976; "0/0" and garbage -> None.
fn parse_rate(rate: &str) -> Option<f64> {
    let (n, d) = match rate.split_once('/') {
        Some((n, d)) => (n.trim().parse::<f64>().ok()?, d.trim().parse::<f64>().ok()?),
        None => (rate.trim().parse::<f64>().ok()?, 1.0),
    };
    let fps = n / d;
    (fps.is_finite() && fps > 0.0).then_some(fps)
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    streams: Vec<RawStream>,
    format: Option<RawFormat>,
}

#[derive(Deserialize)]
struct RawFormat {
    format_name: Option<String>,
    duration: Option<Num>,
    size: Option<Num>,
    bit_rate: Option<Num>,
}

#[derive(Deserialize)]
struct RawStream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    profile: Option<String>,
    level: Option<Num>,
    width: Option<Num>,
    height: Option<Num>,
    pix_fmt: Option<String>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    nb_frames: Option<Num>,
    sample_rate: Option<Num>,
    channels: Option<Num>,
    channel_layout: Option<String>,
    bit_rate: Option<Num>,
    duration: Option<Num>,
    disposition: Option<Disposition>,
    start_time: Option<Num>,
    sample_aspect_ratio: Option<String>,
    field_order: Option<String>,
    color_primaries: Option<String>,
    color_transfer: Option<String>,
    color_space: Option<String>,
    #[serde(default)]
    side_data_list: Vec<SideData>,
    #[serde(default)]
    tags: Option<StreamTags>,
}

#[derive(Deserialize)]
struct SideData {
    side_data_type: Option<String>,
    rotation: Option<Num>,
}

#[derive(Deserialize)]
struct StreamTags {
    rotate: Option<Num>,
}

/// A colour tag, "unknown" and "reserved" counting as absent.
fn tag(t: &Option<String>) -> Option<String> {
    t.clone()
        .filter(|t| !t.is_empty() && t != "unknown" && t != "reserved")
}

impl RawStream {
    /// The display rotation, 0/90/180/270 (the display matrix, else an
    /// older ffprobe's `rotate` tag).
    fn rotation(&self) -> i32 {
        let degrees = self
            .side_data_list
            .iter()
            .find(|d| d.side_data_type.as_deref() == Some("Display Matrix"))
            .and_then(|d| d.rotation.as_ref())
            .or_else(|| self.tags.as_ref().and_then(|t| t.rotate.as_ref()))
            .and_then(Num::as_f64)
            .unwrap_or(0.0);
        // Reduced to one turn before any integer arithmetic, so a hostile
        // value (huge or negative) cannot overflow.
        let quarters = (degrees.rem_euclid(360.0) / 90.0).round() as i32 % 4;
        quarters * 90
    }

    /// The sample aspect ratio; 1:1 when absent or "0:1" (unknown).
    fn sar(&self) -> (u32, u32) {
        self.sample_aspect_ratio
            .as_deref()
            .and_then(|r| r.split_once(':'))
            .and_then(|(n, d)| Some((n.trim().parse().ok()?, d.trim().parse().ok()?)))
            .filter(|(n, d): &(u32, u32)| *n > 0 && *d > 0)
            .unwrap_or((1, 1))
    }

    fn timing(&self) -> StreamTiming {
        StreamTiming {
            start_secs: self.start_time.as_ref().and_then(Num::as_f64),
            stream_duration_secs: self.duration.as_ref().and_then(Num::as_f64),
        }
    }

    fn is_cover_art(&self) -> bool {
        self.disposition
            .as_ref()
            .and_then(|d| d.attached_pic.as_ref())
            .and_then(Num::as_i64)
            == Some(1)
    }
}

#[derive(Deserialize)]
struct Disposition {
    attached_pic: Option<Num>,
}

/// A number as ffprobe prints it: JSON number or string ("N/A" counts as missing).
#[derive(Deserialize)]
#[serde(untagged)]
enum Num {
    Int(i64),
    Float(f64),
    Str(String),
}

impl Num {
    fn as_f64(&self) -> Option<f64> {
        let v = match self {
            Num::Int(i) => *i as f64,
            Num::Float(f) => *f,
            Num::Str(s) => s.trim().parse().ok()?,
        };
        v.is_finite().then_some(v)
    }

    fn as_i64(&self) -> Option<i64> {
        match self {
            Num::Int(i) => Some(*i),
            Num::Float(f) => Some(*f as i64),
            Num::Str(s) => s
                .trim()
                .parse::<i64>()
                .ok()
                .or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64)),
        }
    }

    fn as_u64(&self) -> Option<u64> {
        self.as_i64().and_then(|v| u64::try_from(v).ok())
    }
}

/// True when the MP4/MOV `moov` box comes before `mdat` (the file can start
/// playing before it is fully downloaded). Reads top-level box headers only.
/// A file with neither box is `InvalidData`.
pub fn moov_before_mdat(path: &Path) -> std::io::Result<bool> {
    use std::io::{Error, ErrorKind};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut pos = 0u64;
    while pos + 8 <= len {
        file.seek(SeekFrom::Start(pos))?;
        let mut header = [0u8; 8];
        file.read_exact(&mut header)?;
        let size32 = u32::from_be_bytes(header[0..4].try_into().expect("4 bytes"));
        let kind = &header[4..8];
        let size = match size32 {
            // Extends to the end of the file.
            0 => len - pos,
            // 64-bit size follows the type.
            1 => {
                let mut large = [0u8; 8];
                file.read_exact(&mut large)?;
                u64::from_be_bytes(large)
            }
            n => u64::from(n),
        };
        match kind {
            b"moov" => return Ok(true),
            b"mdat" => return Ok(false),
            _ => {}
        }
        let min = if size32 == 1 { 16 } else { 8 };
        if size < min {
            return Err(Error::new(
                ErrorKind::InvalidData,
                format!("MP4 box at byte {pos} has an impossible size {size}"),
            ));
        }
        pos = pos
            .checked_add(size)
            .ok_or_else(|| Error::new(ErrorKind::InvalidData, "MP4 box size overflows"))?;
    }
    Err(Error::new(
        ErrorKind::InvalidData,
        "no moov or mdat box at the top level: not an MP4/MOV file",
    ))
}

/// What a file that should be a video master is instead, from its first
/// bytes: `None` for the containers masters come in (ISO BMFF/QuickTime,
/// Matroska/WebM), else a few words ("a PNG image", "text"). Checked before
/// ffprobe: ffprobe opens images too, and the packet read would then call a
/// PNG "truncated".
pub fn not_a_video(path: &Path) -> std::io::Result<Option<&'static str>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(512);
    std::fs::File::open(path)?
        .take(512)
        .read_to_end(&mut head)?;
    Ok(sniff(&head))
}

/// [`not_a_video`] on bytes already read.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    // ISO BMFF / QuickTime: a box size, then a box type we know to open a file.
    let bmff = head.len() >= 8
        && matches!(
            &head[4..8],
            b"ftyp" | b"moov" | b"mdat" | b"free" | b"wide" | b"skip" | b"pnot"
        );
    let ebml = head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]);
    if bmff || ebml {
        return None;
    }
    let what = if head.is_empty() {
        "an empty file"
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        "a PNG image"
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "a JPEG image"
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        "a GIF image"
    } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        "a WebP image"
    } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"AVI " {
        "an AVI file (masters are MP4, MOV or WebM)"
    } else if head.starts_with(b"%PDF") {
        "a PDF document"
    } else if head.starts_with(b"PK\x03\x04") {
        "a ZIP archive"
    } else if head.starts_with(&[0x47]) && head.get(188) == Some(&0x47) {
        "an MPEG-TS stream (masters are MP4, MOV or WebM)"
    } else if std::str::from_utf8(trim_partial_char(head))
        .is_ok_and(|t| !t.chars().any(|c| c.is_control() && !c.is_whitespace()))
    {
        "text"
    } else {
        "data of an unknown kind (masters are MP4, MOV or WebM)"
    };
    Some(what)
}

/// The bytes without a UTF-8 sequence cut at the end of the read.
fn trim_partial_char(bytes: &[u8]) -> &[u8] {
    for cut in 0..4.min(bytes.len() + 1) {
        if std::str::from_utf8(&bytes[..bytes.len() - cut]).is_ok() {
            return &bytes[..bytes.len() - cut];
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const H264_AAC: &str = include_str!("fixtures/ffprobe-5.1.9-h264-aac.json");
    const VP9_OPUS: &str = include_str!("fixtures/ffprobe-5.1.9-vp9-opus.json");

    #[test]
    fn parses_an_mp4_with_h264_and_aac_recorded_from_ffprobe_5_1() {
        let p = parse(H264_AAC.as_bytes()).unwrap();

        assert_eq!(p.format_name, "mov,mp4,m4a,3gp,3g2,mj2");
        assert!((p.duration_secs - 2.0).abs() < 0.05, "{}", p.duration_secs);
        assert!(p.size_bytes > 0);
        assert!(p.bit_rate.unwrap() > 0);
        let v = p.video.unwrap();
        assert_eq!(v.codec, "h264");
        assert_eq!(v.profile.as_deref(), Some("High"));
        assert_eq!(v.level, Some(12));
        assert_eq!((v.width, v.height), (320, 180));
        assert_eq!(v.pix_fmt.as_deref(), Some("yuv420p"));
        assert_eq!(v.fps, 24.0);
        assert_eq!(v.nb_frames, Some(48));
        assert_eq!((v.r_frame_rate, v.avg_frame_rate), (Some(24.0), Some(24.0)));
        let a = p.audio.unwrap();
        assert_eq!(a.codec, "aac");
        assert_eq!(a.sample_rate, 48000);
        assert_eq!(a.channels, 2);
        assert_eq!(a.channel_layout.as_deref(), Some("stereo"));
        assert!(a.bit_rate.unwrap() > 0);
    }

    #[test]
    fn a_hostile_rotation_or_pixel_aspect_cannot_overflow() {
        for (rotation, want) in [
            ("-2147483655", None),
            ("1e300", None),
            ("-9223372036854775808", None),
            ("\"nan\"", Some(0)),
            ("-90", Some(270)),
            ("450", Some(90)),
            ("-180.2", Some(180)),
        ] {
            let json = format!(
                r#"{{"streams":[{{"codec_type":"video","codec_name":"h264","width":64,
                "height":48,"sample_aspect_ratio":"4294967295:1",
                "side_data_list":[{{"side_data_type":"Display Matrix","rotation":{rotation}}}]}}],
                "format":{{"duration":"1"}}}}"#
            );
            let v = parse(json.as_bytes()).unwrap().video.unwrap();
            let got = v.stored.unwrap().rotation;
            assert!([0, 90, 180, 270].contains(&got), "{rotation} gave {got}");
            if let Some(want) = want {
                assert_eq!(got, want, "{rotation}");
            }
        }
    }

    #[test]
    fn parses_a_webm_without_frame_counts_or_stream_durations() {
        let p = parse(VP9_OPUS.as_bytes()).unwrap();

        assert_eq!(p.format_name, "matroska,webm");
        assert!((p.duration_secs - 2.0).abs() < 0.05, "{}", p.duration_secs);
        let v = p.video.unwrap();
        assert_eq!(v.codec, "vp9");
        assert_eq!(v.level, None, "vp9 level is printed as -99");
        assert_eq!(v.nb_frames, None);
        assert_eq!(v.fps, 30.0);
        assert_eq!(p.audio.unwrap().codec, "opus");
    }

    #[test]
    fn tolerates_missing_fields_and_not_available_values() {
        let json = br#"{"streams":[{"codec_type":"video","codec_name":"h264","width":"64",
            "height":48,"avg_frame_rate":"0/0","r_frame_rate":"30000/1001","level":-99,
            "nb_frames":"N/A","duration":"1.5"}],"format":{"duration":"N/A"}}"#;

        let p = parse(json).unwrap();

        assert_eq!(p.duration_secs, 1.5, "falls back to the stream duration");
        assert_eq!(p.size_bytes, 0);
        assert_eq!(p.bit_rate, None);
        assert!(p.audio.is_none());
        let v = p.video.unwrap();
        assert_eq!((v.width, v.height), (64, 48));
        assert!((v.fps - 29.97).abs() < 0.001);
        assert_eq!(v.avg_frame_rate, None, "0/0 is no rate");
        assert!((v.native_fps() - 29.97).abs() < 0.001);
        assert_eq!(v.level, None);
        assert_eq!(v.nb_frames, None);
    }

    #[test]
    fn skips_cover_art_when_choosing_the_video_stream() {
        let json = br#"{"streams":[
            {"codec_type":"video","codec_name":"mjpeg","width":600,"height":600,"disposition":{"attached_pic":1}},
            {"codec_type":"video","codec_name":"h264","width":1920,"height":1080,"disposition":{"attached_pic":0}}],
            "format":{"format_name":"mov"}}"#;
        assert_eq!(parse(json).unwrap().video.unwrap().codec, "h264");
    }

    #[test]
    fn rejects_text_that_is_not_ffprobe_json() {
        assert!(matches!(parse(b"not json"), Err(ProbeError::Json(_))));
        assert!(matches!(parse(b"{}"), Err(ProbeError::NoFormat)));
    }

    #[test]
    fn a_probe_stored_before_the_frame_rates_were_kept_still_reads() {
        let mut stored = serde_json::to_value(parse(H264_AAC.as_bytes()).unwrap()).unwrap();
        let v = stored["video"].as_object_mut().unwrap();
        v.remove("r_frame_rate");
        v.remove("avg_frame_rate");
        let p: Probe = serde_json::from_value(stored).unwrap();
        let v = p.video.unwrap();
        assert_eq!((v.r_frame_rate, v.avg_frame_rate), (None, None));
        assert_eq!(v.native_fps(), 24.0);
    }

    #[test]
    fn probe_round_trips_through_json() {
        let p = parse(H264_AAC.as_bytes()).unwrap();
        let stored = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Probe>(&stored).unwrap(), p);
    }

    fn mp4_box(kind: &[u8; 4], body: usize) -> Vec<u8> {
        let mut b = ((8 + body) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.resize(8 + body, 0);
        b
    }

    #[test]
    fn moov_check_reads_box_headers_including_64_bit_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.mp4");
        let write = |parts: &[Vec<u8>]| {
            let mut f = std::fs::File::create(&path).unwrap();
            for p in parts {
                f.write_all(p).unwrap();
            }
        };
        let mut large_mdat = 1u32.to_be_bytes().to_vec();
        large_mdat.extend_from_slice(b"mdat");
        large_mdat.extend_from_slice(&(16u64 + 100).to_be_bytes());
        large_mdat.resize(116, 0);
        let mut large_free = 1u32.to_be_bytes().to_vec();
        large_free.extend_from_slice(b"free");
        large_free.extend_from_slice(&(16u64 + 4).to_be_bytes());
        large_free.resize(20, 0);

        write(&[
            mp4_box(b"ftyp", 16),
            mp4_box(b"moov", 40),
            mp4_box(b"mdat", 100),
        ]);
        assert!(moov_before_mdat(&path).unwrap());
        write(&[mp4_box(b"ftyp", 16), large_mdat, mp4_box(b"moov", 40)]);
        assert!(!moov_before_mdat(&path).unwrap());
        write(&[mp4_box(b"ftyp", 16), large_free, mp4_box(b"moov", 40)]);
        assert!(moov_before_mdat(&path).unwrap());
        write(&[mp4_box(b"ftyp", 16), mp4_box(b"free", 4)]);
        assert!(moov_before_mdat(&path).is_err());
        write(&[b"\0\0\0\x04ftyp".to_vec()]);
        assert!(
            moov_before_mdat(&path).is_err(),
            "a box smaller than its header"
        );
    }

    #[tokio::test]
    async fn moov_check_tells_faststart_files_from_plain_ones() {
        let Some(runner) = crate::media::testutil::runner() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        for (name, faststart) in [("plain.mp4", false), ("fast.mp4", true)] {
            let out = dir.path().join(name);
            let mut args: Vec<String> = "-f lavfi -i testsrc2=size=160x120:rate=24:duration=1 -c:v libx264 -preset ultrafast"
                .split(' ')
                .map(String::from)
                .collect();
            if faststart {
                args.extend(["-movflags".into(), "+faststart".into()]);
            }
            args.push(out.display().to_string());
            runner
                .ffmpeg(
                    args,
                    crate::media::RunOptions::new("mp4", std::time::Duration::from_secs(30)),
                )
                .await
                .unwrap();

            assert_eq!(moov_before_mdat(&out).unwrap(), faststart, "{name}");
        }
    }

    #[test]
    fn masters_containers_pass_the_sniff_and_other_files_are_named() {
        let mp4 = [
            0, 0, 0, 0x20, b'f', b't', b'y', b'p', b'i', b's', b'o', b'm',
        ];
        assert_eq!(sniff(&mp4), None);
        let mov = [
            0, 0, 0, 0x14, b'f', b't', b'y', b'p', b'q', b't', b' ', b' ',
        ];
        assert_eq!(sniff(&mov), None);
        assert_eq!(sniff(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F]), None, "WebM");
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(sniff(png), Some("a PNG image"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("a JPEG image"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("a WebP image"));
        assert_eq!(sniff(b"this is a text file\nthat says mp4\n"), Some("text"));
        assert_eq!(sniff("caf\u{e9} cr\u{e8}me".as_bytes()), Some("text"));
        assert_eq!(sniff(b""), Some("an empty file"));
        assert_eq!(
            sniff(&[0x00, 0x01, 0x02, 0x03, 0xFE, 0x00, 0x00, 0x00, 0x10]),
            Some("data of an unknown kind (masters are MP4, MOV or WebM)")
        );
        // A UTF-8 character cut by the 512-byte read is still text.
        let mut long = "é".repeat(300).into_bytes();
        long.truncate(511);
        assert_eq!(sniff(&long), Some("text"));
    }
}
