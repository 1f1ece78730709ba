//! The one HLS playlist reader and writer. The transcode writes the master
//! playlist and reads the media playlists ffmpeg wrote; QC sizes a variant
//! through its media playlist; publishing reads the master back to describe
//! the set and checks every URI the playlists name. One parser means they
//! cannot disagree about what a playlist says.
//!
//! Only the subset reelay writes and checks is typed; readers are lenient
//! (unknown tags are skipped, a missing `#EXT-X-ENDLIST` is reported, not
//! refused) because refusing is the caller's decision.

use std::fmt::Write as _;

/// One attribute of a tag's attribute list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attr<'a> {
    key: &'a str,
    /// Quotes removed.
    value: &'a str,
    /// As written, quotes included: a quoted-string and an enumerated value
    /// are different types in HLS, so a round trip must keep the quotes.
    raw: &'a str,
}

fn parse_attrs(list: &str) -> Vec<Attr<'_>> {
    let mut out = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let (value, raw, next) = if let Some(q) = after.strip_prefix('"') {
            match q.split_once('"') {
                Some((v, n)) => (v, &after[..v.len() + 2], n),
                // An unterminated quote runs to the end of the line.
                None => (q, after, ""),
            }
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, v, n),
                None => (after, after, ""),
            }
        };
        out.push(Attr {
            key: key.trim(),
            value,
            raw,
        });
        rest = next.trim_start_matches(',').trim_start();
    }
    out
}

/// An attribute list (`BANDWIDTH=1,CODECS="a,b",RESOLUTION=1x1`) as pairs,
/// quotes removed; commas inside quotes belong to the value.
pub fn attributes(list: &str) -> Vec<(String, String)> {
    parse_attrs(list)
        .into_iter()
        .map(|a| (a.key.to_owned(), a.value.to_owned()))
        .collect()
}

/// Non-empty lines, trimmed: playlists written on Windows or by hand carry
/// `\r` and blank lines that mean nothing.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// Every URI a playlist names: each line that is not a tag, and the `URI`
/// attribute of tags (keys, init segments, alternative renditions).
pub fn uris(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in lines(text) {
        if let Some(tag) = line.strip_prefix('#') {
            let list = tag.split_once(':').map_or("", |(_, a)| a);
            if let Some(a) = parse_attrs(list).into_iter().find(|a| a.key == "URI") {
                out.push(a.value.to_owned());
            }
        } else {
            out.push(line.to_owned());
        }
    }
    out
}

/// One `EXT-X-STREAM-INF` entry of a master playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The variant's media playlist, relative to the master.
    pub uri: String,
    /// Peak bit/s.
    pub bandwidth: Option<u64>,
    /// Mean bit/s.
    pub average_bandwidth: Option<u64>,
    pub resolution: Option<(u32, u32)>,
    /// RFC 6381 strings, comma separated (`avc1.64001f,mp4a.40.2`).
    pub codecs: Option<String>,
    pub frame_rate: Option<f64>,
    /// Every other attribute, and known ones whose value did not parse, as
    /// written (value quotes kept), so reading and writing loses nothing.
    pub other: Vec<(String, String)>,
}

impl Variant {
    /// A variant with only its URI; set the attributes it has.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            bandwidth: None,
            average_bandwidth: None,
            resolution: None,
            codecs: None,
            frame_rate: None,
            other: Vec::new(),
        }
    }

    fn from_attrs(uri: &str, list: &str) -> Self {
        let mut v = Variant::new(uri);
        for a in parse_attrs(list) {
            let known = match a.key {
                "BANDWIDTH" => a.value.parse().map(|b| v.bandwidth = Some(b)).is_ok(),
                "AVERAGE-BANDWIDTH" => a
                    .value
                    .parse()
                    .map(|b| v.average_bandwidth = Some(b))
                    .is_ok(),
                "RESOLUTION" => a
                    .value
                    .split_once('x')
                    .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
                    .map(|r| v.resolution = Some(r))
                    .is_some(),
                "CODECS" => {
                    v.codecs = Some(a.value.to_owned());
                    true
                }
                "FRAME-RATE" => a.value.parse().map(|f| v.frame_rate = Some(f)).is_ok(),
                _ => false,
            };
            if !known {
                v.other.push((a.key.to_owned(), a.raw.to_owned()));
            }
        }
        v
    }

    /// The attribute list in the order reelay has always written it
    /// (players do not care; byte-identical republishing does).
    fn write_attrs(&self, out: &mut String) {
        let mut attrs: Vec<String> = Vec::new();
        if let Some(b) = self.bandwidth {
            attrs.push(format!("BANDWIDTH={b}"));
        }
        if let Some(b) = self.average_bandwidth {
            attrs.push(format!("AVERAGE-BANDWIDTH={b}"));
        }
        if let Some((w, h)) = self.resolution {
            attrs.push(format!("RESOLUTION={w}x{h}"));
        }
        if let Some(c) = &self.codecs {
            attrs.push(format!("CODECS=\"{c}\""));
        }
        if let Some(f) = self.frame_rate {
            attrs.push(format!("FRAME-RATE={f:.3}"));
        }
        attrs.extend(self.other.iter().map(|(k, v)| format!("{k}={v}")));
        out.push_str(&attrs.join(","));
    }
}

/// A master playlist: the variants a player chooses between.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterPlaylist {
    /// `#EXT-X-VERSION`.
    pub version: Option<u32>,
    /// `#EXT-X-INDEPENDENT-SEGMENTS`: every segment starts on a keyframe.
    pub independent_segments: bool,
    pub variants: Vec<Variant>,
}

impl MasterPlaylist {
    /// Reads the variants in order. A URI line without a preceding
    /// `EXT-X-STREAM-INF` is not a variant and is skipped.
    pub fn parse(text: &str) -> Self {
        let mut m = MasterPlaylist {
            version: None,
            independent_segments: false,
            variants: Vec::new(),
        };
        let mut pending: Option<&str> = None;
        for line in lines(text) {
            if let Some(a) = line.strip_prefix("#EXT-X-STREAM-INF:") {
                pending = Some(a);
            } else if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
                m.version = v.trim().parse().ok();
            } else if line == "#EXT-X-INDEPENDENT-SEGMENTS" {
                m.independent_segments = true;
            } else if !line.starts_with('#') {
                if let Some(list) = pending.take() {
                    m.variants.push(Variant::from_attrs(line, list));
                }
            }
        }
        m
    }

    /// The playlist text, `\n` line ends and a final newline.
    pub fn render(&self) -> String {
        let mut out = String::from("#EXTM3U\n");
        if let Some(v) = self.version {
            let _ = writeln!(out, "#EXT-X-VERSION:{v}");
        }
        if self.independent_segments {
            out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        }
        for v in &self.variants {
            out.push_str("#EXT-X-STREAM-INF:");
            v.write_attrs(&mut out);
            out.push('\n');
            out.push_str(&v.uri);
            out.push('\n');
        }
        out
    }
}

/// One media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Relative to the media playlist.
    pub uri: String,
    /// From its `#EXTINF`; 0 when it has none or it does not parse.
    pub duration_secs: f64,
}

/// A media playlist: one variant's segments.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    /// `#EXT-X-TARGETDURATION`, seconds.
    pub target_duration: Option<u64>,
    pub segments: Vec<Segment>,
    /// `#EXT-X-ENDLIST` seen: the list is complete (VOD). A live or cut
    /// playlist lacks it.
    pub ended: bool,
}

impl MediaPlaylist {
    pub fn parse(text: &str) -> Self {
        let mut m = MediaPlaylist {
            target_duration: None,
            segments: Vec::new(),
            ended: false,
        };
        let mut duration = None;
        for line in lines(text) {
            if let Some(rest) = line.strip_prefix("#EXTINF:") {
                duration = rest
                    .split(',')
                    .next()
                    .and_then(|d| d.trim().parse::<f64>().ok());
            } else if let Some(t) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                m.target_duration = t.trim().parse().ok();
            } else if line == "#EXT-X-ENDLIST" {
                m.ended = true;
            } else if !line.starts_with('#') {
                m.segments.push(Segment {
                    uri: line.to_owned(),
                    duration_secs: duration.take().unwrap_or(0.0),
                });
            }
        }
        m
    }

    /// Sum of the segments' durations.
    pub fn duration_secs(&self) -> f64 {
        self.segments.iter().map(|s| s.duration_secs).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(name: &str, peak: u64, avg: u64, w: u32, h: u32, codecs: &str) -> Variant {
        Variant {
            bandwidth: Some(peak),
            average_bandwidth: Some(avg),
            resolution: Some((w, h)),
            codecs: Some(codecs.into()),
            frame_rate: Some(24.0),
            ..Variant::new(format!("{name}.m3u8"))
        }
    }

    fn sample() -> MasterPlaylist {
        MasterPlaylist {
            version: Some(3),
            independent_segments: true,
            variants: vec![
                variant(
                    "1080p",
                    6_123_457,
                    4_000_001,
                    1920,
                    1080,
                    "avc1.640028,mp4a.40.2",
                ),
                variant("720p", 3_000_000, 2_500_000, 1280, 720, "avc1.64001f"),
            ],
        }
    }

    /// The bytes the transcode has always published for this input; a
    /// change here changes every published master playlist's hash.
    #[test]
    fn the_master_playlist_text_is_pinned() {
        assert_eq!(
            sample().render(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=6123457,AVERAGE-BANDWIDTH=4000001,RESOLUTION=1920x1080,CODECS=\"avc1.640028,mp4a.40.2\",FRAME-RATE=24.000\n\
             1080p.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=3000000,AVERAGE-BANDWIDTH=2500000,RESOLUTION=1280x720,CODECS=\"avc1.64001f\",FRAME-RATE=24.000\n\
             720p.m3u8\n"
        );
        let mut m = sample();
        m.variants[0].frame_rate = Some(30000.0 / 1001.0);
        assert!(m.render().contains(",FRAME-RATE=29.970\n"));
    }

    #[test]
    fn a_master_playlist_round_trips() {
        let m = sample();
        assert_eq!(MasterPlaylist::parse(&m.render()), m);
        let odd = "#EXTM3U\r\n\r\n#EXT-X-STREAM-INF:BANDWIDTH=1,HDCP-LEVEL=NONE,\
                   AUDIO=\"aac\",RESOLUTION=wide\r\nv.m3u8\r\n";
        let parsed = MasterPlaylist::parse(odd);
        assert_eq!(parsed.version, None);
        let v = &parsed.variants[0];
        assert_eq!((v.uri.as_str(), v.bandwidth), ("v.m3u8", Some(1)));
        assert_eq!(
            v.other,
            [
                ("HDCP-LEVEL".to_owned(), "NONE".to_owned()),
                ("AUDIO".into(), "\"aac\"".into()),
                ("RESOLUTION".into(), "wide".into()),
            ]
        );
        assert_eq!(
            parsed.render(),
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,HDCP-LEVEL=NONE,AUDIO=\"aac\",RESOLUTION=wide\nv.m3u8\n"
        );
    }

    #[test]
    fn attribute_lists_keep_quoted_commas() {
        let a = attributes("BANDWIDTH=1,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1x2");
        assert_eq!(
            a,
            [
                ("BANDWIDTH".to_string(), "1".to_string()),
                ("CODECS".into(), "avc1.64001f,mp4a.40.2".into()),
                ("RESOLUTION".into(), "1x2".into())
            ]
        );
        let v = Variant::from_attrs("x.m3u8", "CODECS=\"avc1.64001f,mp4a.40.2\",BANDWIDTH=9");
        assert_eq!(v.codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
        assert_eq!(v.bandwidth, Some(9));
        // An unterminated quote takes the rest of the line rather than failing.
        assert_eq!(
            attributes("URI=\"a,b"),
            [("URI".to_string(), "a,b".to_string())]
        );
        assert!(attributes("").is_empty() && attributes("NOEQUALS").is_empty());
    }

    #[test]
    fn a_master_playlist_skips_uris_without_stream_inf() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n\
            #EXT-X-STREAM-INF:BANDWIDTH=2340800,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\"\n\
            720p.m3u8\n\n\
            stray.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1140800,AVERAGE-BANDWIDTH=900000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\"\n\
            360p.m3u8\n";
        let m = MasterPlaylist::parse(text);
        assert_eq!(m.version, Some(3));
        assert!(!m.independent_segments);
        let uris: Vec<&str> = m.variants.iter().map(|v| v.uri.as_str()).collect();
        assert_eq!(uris, ["720p.m3u8", "360p.m3u8"]);
        assert_eq!(m.variants[0].average_bandwidth, None);
        assert_eq!(m.variants[1].average_bandwidth, Some(900_000));
        assert_eq!(m.variants[1].resolution, Some((640, 360)));
    }

    #[test]
    fn media_playlists_give_segments_with_durations() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n\
                    #EXTINF:4.000000,\nv_00000.ts\n#EXTINF:1.500000,title\nv_00001.ts\n#EXT-X-ENDLIST\n";
        let m = MediaPlaylist::parse(text);
        assert_eq!(
            m.segments,
            [
                Segment {
                    uri: "v_00000.ts".into(),
                    duration_secs: 4.0
                },
                Segment {
                    uri: "v_00001.ts".into(),
                    duration_secs: 1.5
                }
            ]
        );
        assert_eq!((m.target_duration, m.ended), (Some(4), true));
        assert_eq!(m.duration_secs(), 5.5);
    }

    #[test]
    fn a_media_playlist_without_endlist_or_extinf_still_lists_its_segments() {
        let m = MediaPlaylist::parse("#EXTM3U\n#EXTINF:2.0,\na.ts\nb.ts\n#EXTINF:bad,\nc.ts\n");
        assert!(!m.ended);
        assert_eq!(m.target_duration, None);
        let got: Vec<(&str, f64)> = m
            .segments
            .iter()
            .map(|s| (s.uri.as_str(), s.duration_secs))
            .collect();
        assert_eq!(got, [("a.ts", 2.0), ("b.ts", 0.0), ("c.ts", 0.0)]);
        assert!(MediaPlaylist::parse("").segments.is_empty());
    }

    #[test]
    fn uris_include_tag_uri_attributes() {
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n\
                    #EXT-X-KEY:METHOD=AES-128,URI=\"k,1.key\",IV=0x1\n#EXTINF:2,\ns1.m4s\n\n";
        assert_eq!(uris(text), ["init.mp4", "k,1.key", "s1.m4s"]);
    }
}
