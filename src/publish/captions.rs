//! Captions supplied with the request (`captions`: language, label, WebVTT
//! text), as Mux's text tracks are: checked at the API (the WebVTT syntax
//! of the W3C spec: the `WEBVTT` header, cue timings well formed, start
//! before end, starts in order, every cue inside the requested duration),
//! stored with the asset and published beside the renditions as
//! `captions/{language}.vtt`. With an HLS set, each language also gets a
//! subtitle media playlist (`hls/subtitles_{language}.m3u8`, one segment:
//! the whole file, as RFC 8216 §3.5 allows) and the master playlist lists
//! them as an `EXT-X-MEDIA:TYPE=SUBTITLES` group named on every variant.

use crate::media::files::{FileRole, WrittenFile};
use crate::media::hls::MasterPlaylist;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::path::Path;

/// The `GROUP-ID` of the subtitles group in the master playlist.
pub const GROUP_ID: &str = "subs";
/// The most text one caption file may hold.
pub const MAX_BYTES: usize = 256 * 1024;
pub const MAX_TRACKS: usize = 16;

/// One caption track of the request.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Caption {
    /// BCP 47 language tag (`en`, `fr-CA`); one track per language.
    pub language: String,
    /// What players show in their menu (default: the language).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The WebVTT document.
    pub text: String,
}

impl Caption {
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.language)
    }

    /// Path of the WebVTT inside the set.
    pub fn rel(&self) -> String {
        format!("captions/{}.vtt", self.language)
    }

    /// Path of the subtitle media playlist inside the set.
    pub fn playlist_rel(&self) -> String {
        format!("hls/subtitles_{}.m3u8", self.language)
    }

    /// Path of the HLS copy of the WebVTT (with `X-TIMESTAMP-MAP`).
    pub fn segment_rel(&self) -> String {
        format!("hls/subtitles_{}.vtt", self.language)
    }
}

/// The WebVTT as an HLS subtitle segment: `X-TIMESTAMP-MAP` in its header
/// says cue time 0 is MPEG-TS time `pts` (the media segments' first
/// timestamp), as RFC 8216 §3.5 asks, so players line the cues up with
/// the picture (without it hls.js shifts them by the TS start offset).
pub fn hls_segment(text: &str, pts: u64) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let first = first.trim_end_matches('\r');
    format!("{first}\nX-TIMESTAMP-MAP=MPEGTS:{pts},LOCAL:00:00:00.000\n{rest}")
}

/// The lowest PTS (90 kHz) among the PES headers in the first bytes of an
/// MPEG-TS segment; 0 when none is found.
pub fn first_pts(ts: &[u8]) -> u64 {
    let mut best: Option<u64> = None;
    for pkt in ts.chunks_exact(188) {
        if pkt[0] != 0x47 || pkt[1] & 0x40 == 0 {
            continue;
        }
        let mut at = 4;
        match (pkt[3] >> 4) & 0x3 {
            0b01 => {}
            0b11 => at += 1 + pkt[4] as usize,
            _ => continue,
        }
        let pes = &pkt[at.min(188)..];
        if pes.len() < 14 || pes[..3] != [0, 0, 1] || !(0xC0..=0xEF).contains(&pes[3]) {
            continue;
        }
        if pes[7] & 0x80 == 0 {
            continue;
        }
        let b = &pes[9..14];
        let pts = (u64::from(b[0] >> 1) & 0x7) << 30
            | u64::from(b[1]) << 22
            | (u64::from(b[2]) >> 1) << 15
            | u64::from(b[3]) << 7
            | u64::from(b[4]) >> 1;
        best = Some(best.map_or(pts, |p| p.min(pts)));
    }
    best.unwrap_or(0)
}

/// A BCP 47-shaped tag: a 2-3 letter primary subtag, then 1-8 character
/// alphanumeric subtags, `-` separated.
fn language_ok(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        && s.len() <= 35
}

/// A WebVTT timestamp (`[hh:]mm:ss.ttt`) in seconds.
fn timestamp(s: &str) -> Option<f64> {
    let (clock, millis) = s.split_once('.')?;
    if millis.len() != 3 || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parts: Vec<&str> = clock.split(':').collect();
    let num = |p: &str, two: bool| -> Option<u64> {
        let ok = if two { p.len() == 2 } else { p.len() >= 2 };
        (ok && p.bytes().all(|b| b.is_ascii_digit())).then(|| p.parse().ok())?
    };
    let (h, m, sec) = match parts.as_slice() {
        [m, s] => (0, num(m, true)?, num(s, true)?),
        [h, m, s] => (num(h, false)?, num(m, true)?, num(s, true)?),
        _ => return None,
    };
    if m > 59 || sec > 59 {
        return None;
    }
    Some((h * 3600 + m * 60 + sec) as f64 + millis.parse::<f64>().ok()? / 1000.0)
}

/// Checks a WebVTT document; `duration`: the seconds every cue must end
/// within, when known. The first problem as (rule, what is wrong).
pub fn check_webvtt(text: &str, duration: Option<f64>) -> Result<usize, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut blocks = text.split("\n\n").filter(|b| !b.trim().is_empty());
    let header = blocks.next().unwrap_or("");
    let first = header.lines().next().unwrap_or("");
    if !(first == "WEBVTT" || first.starts_with("WEBVTT ") || first.starts_with("WEBVTT\t")) {
        return Err("webvtt_header: must start with the line \"WEBVTT\" (W3C WebVTT §4.1)".into());
    }
    if header.lines().any(|l| l.contains("-->")) {
        return Err(
            "webvtt_header: the header must be followed by a blank line before the first cue"
                .into(),
        );
    }
    let mut cues = 0;
    let mut last_start = 0.0f64;
    for block in blocks {
        let block = block.trim_start_matches('\n');
        let mut lines = block.lines();
        let head = lines.next().unwrap_or("");
        if head.starts_with("NOTE") || head == "STYLE" || head == "REGION" {
            if cues > 0
                && head != "NOTE"
                && !head.starts_with("NOTE ")
                && !head.starts_with("NOTE\t")
            {
                return Err(format!(
                    "webvtt_blocks: a {head} block must come before the first cue"
                ));
            }
            continue;
        }
        let timing = if head.contains("-->") {
            head
        } else {
            lines.next().unwrap_or("")
        };
        let n = cues + 1;
        let Some((start, rest)) = timing.split_once("-->") else {
            return Err(format!(
                "cue_timing: cue {n} has no timing line (\"00:00:01.000 --> 00:00:02.500\")"
            ));
        };
        let end = rest.split_whitespace().next().unwrap_or("");
        let (Some(s), Some(e)) = (timestamp(start.trim()), timestamp(end)) else {
            return Err(format!(
                "cue_timing: cue {n}'s timing {timing:?} is not [hh:]mm:ss.ttt --> [hh:]mm:ss.ttt"
            ));
        };
        if e <= s {
            return Err(format!(
                "cue_timing: cue {n} ends ({end}) before or when it starts ({})",
                start.trim()
            ));
        }
        if s < last_start {
            return Err(format!(
                "cue_order: cue {n} starts ({}) before the cue before it: cues must be in start order",
                start.trim()
            ));
        }
        if let Some(d) = duration.filter(|d| e > d + 0.0005) {
            return Err(format!(
                "cue_inside_duration: cue {n} ends at {end}, after the video's {d} s"
            ));
        }
        last_start = s;
        cues += 1;
    }
    if cues == 0 {
        return Err("webvtt_cues: has no cue".into());
    }
    Ok(cues)
}

/// Parses the request's `captions`; every problem as (path, rule).
/// `duration`: the requested seconds, when the request fixes them.
pub fn parse(
    value: &serde_json::Value,
    duration: Option<f64>,
) -> Result<Vec<Caption>, Vec<(String, String)>> {
    let list: Vec<Caption> = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let p = e.path().to_string();
        vec![(
            if p == "." {
                "captions".into()
            } else {
                format!(
                    "captions{}",
                    if p.starts_with('[') {
                        p
                    } else {
                        format!(".{p}")
                    }
                )
            },
            format!(
                "{} (a list of {{language, label, text}}: text is the WebVTT document)",
                e.inner()
            ),
        )]
    })?;
    let mut bad = Vec::new();
    if list.len() > MAX_TRACKS {
        bad.push(("captions".into(), format!("at most {MAX_TRACKS} tracks")));
    }
    for (i, c) in list.iter().enumerate() {
        let at = |f: &str| format!("captions[{i}].{f}");
        if !language_ok(&c.language) {
            bad.push((
                at("language"),
                "must be a BCP 47 language tag such as en or fr-CA".into(),
            ));
        } else if list[..i]
            .iter()
            .any(|o| o.language.eq_ignore_ascii_case(&c.language))
        {
            bad.push((at("language"), "names a language twice".into()));
        }
        if c.label
            .as_ref()
            .is_some_and(|l| l.trim().is_empty() || l.len() > 64 || l.contains(['"', '\n', '\r']))
        {
            bad.push((
                at("label"),
                "must be 1-64 characters, without quotes or line breaks".into(),
            ));
        }
        if c.text.len() > MAX_BYTES {
            bad.push((at("text"), format!("must be at most {MAX_BYTES} bytes")));
        } else if let Err(rule) = check_webvtt(&c.text, duration) {
            bad.push((at("text"), rule));
        }
    }
    if bad.is_empty() {
        Ok(list)
    } else {
        Err(bad)
    }
}

/// A subtitle media playlist: the whole WebVTT as its one segment.
pub fn media_playlist(c: &Caption, duration_secs: f64) -> String {
    let target = duration_secs.ceil().max(1.0) as u64;
    format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:{duration_secs:.3},\n{}\n#EXT-X-ENDLIST\n",
        c.segment_rel().trim_start_matches("hls/")
    )
}

/// `master` with the subtitles group: one `EXT-X-MEDIA` per track (the
/// first the default) and `SUBTITLES` on every variant.
pub fn master_with_subtitles(master: &str, captions: &[Caption]) -> String {
    let mut m = MasterPlaylist::parse(master);
    for v in &mut m.variants {
        v.other.retain(|(k, _)| k != "SUBTITLES");
        v.other
            .push(("SUBTITLES".into(), format!("\"{GROUP_ID}\"")));
    }
    let rendered = m.render();
    let mut media = String::new();
    for (i, c) in captions.iter().enumerate() {
        let default = if i == 0 { "YES" } else { "NO" };
        let _ = writeln!(
            media,
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{GROUP_ID}\",NAME=\"{}\",LANGUAGE=\"{}\",DEFAULT={default},AUTOSELECT=YES,URI=\"{}\"",
            c.label(),
            c.language,
            c.playlist_rel().trim_start_matches("hls/")
        );
    }
    // The media tags go before the first variant.
    match rendered.find("#EXT-X-STREAM-INF") {
        Some(at) => format!("{}{media}{}", &rendered[..at], &rendered[at..]),
        None => format!("{rendered}{media}"),
    }
}

/// `written` with the captions added: each WebVTT, and with an HLS master,
/// each subtitle playlist and the master rewritten with the group. The new
/// files are written under `dir` (made anew each time, so a retry writes
/// the same bytes).
pub async fn add_to_set(
    dir: &Path,
    captions: &[Caption],
    duration_secs: f64,
    written: Vec<WrittenFile>,
) -> std::io::Result<Vec<WrittenFile>> {
    if captions.is_empty() {
        return Ok(written);
    }
    let _ = tokio::fs::remove_dir_all(dir).await;
    tokio::fs::create_dir_all(dir.join("captions")).await?;
    tokio::fs::create_dir_all(dir.join("hls")).await?;
    let has_hls = written.iter().any(|f| f.role == FileRole::HlsMaster);
    // The media segments' first timestamp, from the first segment written.
    let first_segment = written
        .iter()
        .filter(|f| f.role == FileRole::HlsSegment && f.rel.ends_with(".ts"))
        .min_by(|a, b| a.rel.cmp(&b.rel));
    let pts = match first_segment {
        Some(f) => {
            use tokio::io::AsyncReadExt;
            let mut head = Vec::with_capacity(188 * 512);
            tokio::fs::File::open(&f.path)
                .await?
                .take(188 * 512)
                .read_to_end(&mut head)
                .await?;
            first_pts(&head)
        }
        None => 0,
    };
    let mut out = Vec::with_capacity(written.len() + 2 * captions.len());
    for f in written {
        if f.role == FileRole::HlsMaster {
            let text = tokio::fs::read_to_string(&f.path).await?;
            let path = dir.join(&f.rel);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::write(&path, master_with_subtitles(&text, captions)).await?;
            out.push(WrittenFile { path, ..f });
        } else {
            out.push(f);
        }
    }
    for c in captions {
        let path = dir.join(c.rel());
        tokio::fs::write(&path, &c.text).await?;
        out.push(WrittenFile {
            rel: c.rel(),
            path,
            role: FileRole::Captions,
            output: None,
        });
        if has_hls {
            let path = dir.join(c.segment_rel());
            tokio::fs::write(&path, hls_segment(&c.text, pts)).await?;
            out.push(WrittenFile {
                rel: c.segment_rel(),
                path,
                role: FileRole::Captions,
                output: None,
            });
            let path = dir.join(c.playlist_rel());
            tokio::fs::write(&path, media_playlist(c, duration_secs)).await?;
            out.push(WrittenFile {
                rel: c.playlist_rel(),
                path,
                role: FileRole::Captions,
                output: None,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GOOD: &str = "WEBVTT\n\n1\n00:00.000 --> 00:01.500 line:90%\nHello\n\nNOTE a note\n\n00:00:01.500 --> 00:00:03.000\nWorld\n";

    #[test]
    fn webvtt_is_checked_rule_by_rule() {
        assert_eq!(check_webvtt(GOOD, Some(3.0)), Ok(2));
        assert_eq!(check_webvtt(&GOOD.replace('\n', "\r\n"), Some(3.0)), Ok(2));
        let rule = |t: &str, d| check_webvtt(t, d).unwrap_err();
        assert!(rule("WEBVTTX\n\n00:00.000 --> 00:01.000\nx", None).starts_with("webvtt_header"));
        assert!(rule("00:00.000 --> 00:01.000\nx", None).starts_with("webvtt_header"));
        assert!(rule("WEBVTT\n\n00:00.000 -> 00:01.000\nx", None).starts_with("cue_timing"));
        assert!(rule("WEBVTT\n\n00:00.000 --> 00:61.000\nx", None).starts_with("cue_timing"));
        assert!(rule("WEBVTT\n\n00:02.000 --> 00:01.000\nx", None).starts_with("cue_timing"));
        assert!(rule(
            "WEBVTT\n\n00:02.000 --> 00:03.000\nx\n\n00:01.000 --> 00:04.000\ny",
            None
        )
        .starts_with("cue_order"));
        assert!(rule(GOOD, Some(2.0)).starts_with("cue_inside_duration"));
        assert!(rule("WEBVTT\n\nNOTE only\n", None).starts_with("webvtt_cues"));
    }

    #[test]
    fn the_request_field_names_each_problem() {
        let ok = parse(
            &json!([{"language": "en", "label": "English", "text": GOOD}]),
            Some(5.0),
        )
        .unwrap();
        assert_eq!(ok[0].rel(), "captions/en.vtt");
        let e = parse(
            &json!([
                {"language": "en", "text": GOOD},
                {"language": "EN", "text": GOOD},
                {"language": "english!", "text": "nope"},
            ]),
            Some(5.0),
        )
        .unwrap_err();
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "captions[1].language",
                "captions[2].language",
                "captions[2].text"
            ]
        );
        let e = parse(&json!([{"lang": "en"}]), None).unwrap_err();
        assert!(e[0].0.starts_with("captions[0]"), "{e:?}");
    }

    #[test]
    fn the_hls_copy_maps_cue_time_zero_to_the_first_pts() {
        assert_eq!(
            hls_segment("WEBVTT\r\n\r\n00:00.000 --> 00:01.000\r\nx", 126000),
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\r\n00:00.000 --> 00:01.000\r\nx"
        );
        // A TS packet starting a PES with PTS 126000 (1.4 s), and one with 129600.
        let packet = |pts: u64| {
            let mut p = vec![0x47, 0x41, 0x00, 0x10, 0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5];
            p.push(0x21 | (((pts >> 30) & 0x7) as u8) << 1);
            p.push((pts >> 22) as u8);
            p.push(((pts >> 14) as u8) | 1);
            p.push((pts >> 7) as u8);
            p.push(((pts << 1) as u8) | 1);
            p.resize(188, 0xFF);
            p
        };
        let ts = [packet(129600), packet(126000)].concat();
        assert_eq!(first_pts(&ts), 126000);
        assert_eq!(first_pts(&[]), 0);
    }

    #[test]
    fn the_master_gets_a_subtitles_group_named_on_every_variant() {
        let master = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1280x720\n720p.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=2,RESOLUTION=1920x1080\n1080p.m3u8\n";
        let c = vec![
            Caption {
                language: "en".into(),
                label: Some("English".into()),
                text: GOOD.into(),
            },
            Caption {
                language: "fr".into(),
                label: None,
                text: GOOD.into(),
            },
        ];
        let out = master_with_subtitles(master, &c);
        let again = master_with_subtitles(&out, &c);
        assert_eq!(out.matches("SUBTITLES=\"subs\"").count(), 2, "{out}");
        assert_eq!(again.matches("SUBTITLES=\"subs\"").count(), 2, "{again}");
        assert!(out.contains("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,URI=\"subtitles_en.m3u8\"\n"));
        assert!(out.find("#EXT-X-MEDIA").unwrap() < out.find("#EXT-X-STREAM-INF").unwrap());
        let p = MasterPlaylist::parse(&out);
        assert_eq!(p.variants.len(), 2);
        let pl = media_playlist(&c[0], 5.04);
        assert!(
            pl.contains("#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n"),
            "{pl}"
        );
        assert!(
            pl.contains("#EXTINF:5.040,\nsubtitles_en.vtt\n#EXT-X-ENDLIST\n"),
            "{pl}"
        );
    }
}
