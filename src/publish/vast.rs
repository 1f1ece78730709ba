//! `vast.xml`: a VAST 4.2 InLine document for one published variation, so an
//! ad server or SSAI vendor can take the creative as it is.
//!
//! Required by VAST 4.x and written here: `AdSystem`, `AdTitle`,
//! `AdServingId`, `Impression` (`about:blank` when there is nothing to
//! track, as the spec says), one `Creative` with `UniversalAdId` (new
//! for new bytes: it carries the content hash) and a `Linear` with
//! `Duration` and `MediaFiles`: one progressive `MediaFile` per rendition
//! (MP4 and WebM), the HLS master playlist as a streaming `MediaFile`, and a
//! `Mezzanine` pointing at the highest-quality MP4.

use super::vast_fields::VastFields;
use super::{Manifest, PublishedRendition};
use std::fmt::Write;

pub const VAST_VERSION: &str = "4.2";
pub const CONTENT_TYPE: &str = "application/xml";
/// No shared registry (Ad-ID, Clearcast) is involved: VAST's own default.
pub const ID_REGISTRY: &str = "unknown";
/// The MIME type VAST players expect on an HLS `MediaFile`.
pub const HLS_TYPE: &str = "application/x-mpegURL";

/// The `UniversalAdId` of a published set: the asset, the variation and the
/// content hash, so new bytes always get a new id.
pub fn universal_ad_id(asset_id: &str, variation: i64, content_hash: &str) -> String {
    format!("{asset_id}-v{variation}-{content_hash}")
}

/// HLS playlists are the streaming `MediaFile`s; everything else is progressive.
fn is_streaming(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct == "application/x-mpegurl" || ct == "application/vnd.apple.mpegurl"
}

/// The file an SSAI vendor should transcode from: the largest picture, then
/// the highest bitrate, among the MP4s (a profile's 2160p mezzanine output
/// when it has one); among the progressive files when there is no MP4.
pub fn mezzanine(renditions: &[PublishedRendition]) -> Option<&PublishedRendition> {
    let rank = |r: &&PublishedRendition| (u64::from(r.width) * u64::from(r.height), r.bitrate_kbps);
    let progressive = || renditions.iter().filter(|r| !is_streaming(&r.content_type));
    progressive()
        .filter(|r| r.content_type == "video/mp4")
        .max_by_key(rank)
        .or_else(|| progressive().max_by_key(rank))
}

/// The manifest as one destination sees it: only the progressive files it
/// accepts (`files`: output names, as its verdict lists them), and the HLS
/// master only when it accepts every variant the master lists (a player
/// may pick any of them). Its VAST (and `Mezzanine`) is rendered from this.
pub fn for_destination(m: &Manifest, files: &[String]) -> Manifest {
    let accepts = |name: &str| {
        // A rendition is named by its output unless two files share it:
        // then by its path (`1080p.mp4`), whose stem is the output.
        let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
        files.iter().any(|f| f == name || f == stem)
    };
    let mut out = m.clone();
    out.renditions.retain(|r| accepts(&r.name));
    out.hls = m
        .hls
        .clone()
        .filter(|h| !h.variants.is_empty() && h.variants.iter().all(|v| accepts(&v.name)));
    out
}

/// `HH:MM:SS.mmm`, as VAST's `Duration` wants it.
pub fn duration(secs: f64) -> String {
    crate::media::clock_millis(secs)
}

/// Escapes text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A CDATA section holding `s`, split where `s` itself contains `]]>`.
pub fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

/// Attributes in order, values escaped.
fn attrs(list: &[(&str, String)]) -> String {
    list.iter()
        .map(|(k, v)| format!(" {k}=\"{}\"", escape(v)))
        .collect()
}

/// The document for `m`. `impression_url` is written as given (`about:blank`
/// when reelay has nothing to track); `system_version` goes on `AdSystem`.
pub fn render(m: &Manifest, impression_url: &str, system_version: &str) -> String {
    render_with(m, impression_url, system_version, &VastFields::default())
}

/// [`render`] with the request's own VAST fields (title, advertiser,
/// clicks, tracking, error, verifications).
pub fn render_with(
    m: &Manifest,
    impression_url: &str,
    system_version: &str,
    fields: &VastFields,
) -> String {
    let ad_id = format!("{}-v{}", m.asset_id, m.variation);
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<VAST{}>",
        attrs(&[
            ("version", VAST_VERSION.into()),
            ("xmlns", "http://www.iab.com/VAST".into())
        ])
    );
    let _ = writeln!(
        x,
        "  <Ad{}>",
        attrs(&[("id", ad_id.clone()), ("adType", "video".into())])
    );
    x.push_str("    <InLine>\n");
    let _ = writeln!(
        x,
        "      <AdSystem{}>reelay</AdSystem>",
        attrs(&[("version", system_version.into())])
    );
    let _ = writeln!(
        x,
        "      <Impression{}>{}</Impression>",
        attrs(&[("id", "reelay".into())]),
        cdata(impression_url)
    );
    x.push_str(&fields.inline_head());
    let _ = writeln!(
        x,
        "      <AdServingId>{}</AdServingId>",
        escape(&format!("reelay-{}", m.universal_ad_id))
    );
    let _ = writeln!(
        x,
        "      <AdTitle>{}</AdTitle>",
        escape(&match &fields.ad_title {
            Some(t) => t.clone(),
            None => format!("{} {} v{}", m.campaign, m.asset_id, m.variation),
        })
    );
    x.push_str(&fields.verifications());
    x.push_str("      <Creatives>\n");
    let _ = writeln!(
        x,
        "        <Creative{}>",
        attrs(&[("id", ad_id), ("adId", m.universal_ad_id.clone())])
    );
    let _ = writeln!(
        x,
        "          <UniversalAdId{}>{}</UniversalAdId>",
        attrs(&[("idRegistry", ID_REGISTRY.into())]),
        escape(&m.universal_ad_id)
    );
    x.push_str("          <Linear>\n");
    let _ = writeln!(
        x,
        "            <Duration>{}</Duration>",
        duration(m.duration_secs)
    );
    x.push_str("            <MediaFiles>\n");
    for r in &m.renditions {
        let streaming = is_streaming(&r.content_type);
        let mut a = vec![
            ("id", r.name.clone()),
            (
                "delivery",
                if streaming {
                    "streaming"
                } else {
                    "progressive"
                }
                .into(),
            ),
            ("type", r.content_type.clone()),
            ("width", r.width.to_string()),
            ("height", r.height.to_string()),
        ];
        if !r.codecs.is_empty() {
            a.push(("codec", r.codecs.clone()));
        }
        if streaming {
            // A playlist has no single bitrate or size.
            a.push(("minBitrate", r.bitrate_kbps.to_string()));
            a.push(("maxBitrate", r.bitrate_kbps.to_string()));
        } else {
            a.push(("bitrate", r.bitrate_kbps.to_string()));
            a.push(("fileSize", r.size.to_string()));
        }
        a.push(("scalable", "true".into()));
        a.push(("maintainAspectRatio", "true".into()));
        let _ = writeln!(
            x,
            "              <MediaFile{}>{}</MediaFile>",
            attrs(&a),
            cdata(&r.url)
        );
    }
    if let Some(h) = &m.hls {
        // The variant players start from describes the stream; the
        // bitrates span every variant.
        let kbps = |b: u64| b.div_ceil(1000);
        let top = h
            .variants
            .iter()
            .max_by_key(|v| (u64::from(v.width) * u64::from(v.height), v.bandwidth));
        let min = h.variants.iter().map(|v| v.bandwidth).min().unwrap_or(0);
        let max = h.variants.iter().map(|v| v.bandwidth).max().unwrap_or(0);
        let mut a = vec![
            ("id", "hls".to_string()),
            ("delivery", "streaming".into()),
            ("type", HLS_TYPE.into()),
            ("width", top.map_or(0, |v| v.width).to_string()),
            ("height", top.map_or(0, |v| v.height).to_string()),
        ];
        if let Some(c) = top.map(|v| v.codecs.clone()).filter(|c| !c.is_empty()) {
            a.push(("codec", c));
        }
        a.push(("minBitrate", kbps(min).to_string()));
        a.push(("maxBitrate", kbps(max).to_string()));
        a.push(("scalable", "true".into()));
        a.push(("maintainAspectRatio", "true".into()));
        let _ = writeln!(
            x,
            "              <MediaFile{}>{}</MediaFile>",
            attrs(&a),
            cdata(&h.master.url)
        );
    }
    if let Some(z) = mezzanine(&m.renditions) {
        let mut a = vec![
            ("id", format!("{}-mezzanine", z.name)),
            ("delivery", "progressive".into()),
            ("type", z.content_type.clone()),
            ("width", z.width.to_string()),
            ("height", z.height.to_string()),
        ];
        if !z.codecs.is_empty() {
            a.push(("codec", z.codecs.clone()));
        }
        a.push(("fileSize", z.size.to_string()));
        let _ = writeln!(
            x,
            "              <Mezzanine{}>{}</Mezzanine>",
            attrs(&a),
            cdata(&z.url)
        );
    }
    if !m.captions.is_empty() {
        // VAST 4.1+: after the MediaFiles and Mezzanine, inside MediaFiles.
        x.push_str("              <ClosedCaptionFiles>\n");
        for c in &m.captions {
            let _ = writeln!(
                x,
                "                <ClosedCaptionFile{}>{}</ClosedCaptionFile>",
                attrs(&[
                    ("type", c.content_type.clone()),
                    ("language", c.language.clone())
                ]),
                cdata(&c.url)
            );
        }
        x.push_str("              </ClosedCaptionFiles>\n");
    }
    x.push_str("            </MediaFiles>\n");
    x.push_str(&fields.linear_tail());
    x.push_str("          </Linear>\n");
    x.push_str("        </Creative>\n");
    x.push_str("      </Creatives>\n");
    x.push_str("    </InLine>\n");
    x.push_str("  </Ad>\n");
    x.push_str("</VAST>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{HlsVariant, PublishedFile, PublishedHls};

    fn rendition(name: &str, w: u32, h: u32, kbps: u64, ct: &str) -> PublishedRendition {
        PublishedRendition {
            name: name.into(),
            url: format!("https://cdn.example.com/x/{name}?a=1&b=<2>"),
            key: format!("x/{name}"),
            content_type: ct.into(),
            width: w,
            height: h,
            bitrate_kbps: kbps,
            codecs: "avc1.640028,mp4a.40.2".into(),
            size: kbps * 1000,
            sha256: "00".into(),
            container: if ct == "video/webm" { "webm" } else { "mp4" }.into(),
            delivery: "progressive".into(),
        }
    }

    fn hls() -> PublishedHls {
        let variant = |name: &str, w, h, bandwidth| HlsVariant {
            name: name.into(),
            url: format!("https://cdn.example.com/x/hls/{name}.m3u8"),
            key: format!("x/hls/{name}.m3u8"),
            bandwidth,
            average_bandwidth: None,
            width: w,
            height: h,
            codecs: "avc1.640028,mp4a.40.2".into(),
            segments: 3,
        };
        PublishedHls {
            master: PublishedFile {
                url: "https://cdn.example.com/x/hls/master.m3u8".into(),
                key: "x/hls/master.m3u8".into(),
                size: 300,
                sha256: "h".into(),
            },
            variants: vec![
                variant("720p", 1280, 720, 3_000_500),
                variant("1080p", 1920, 1080, 6_100_000),
            ],
        }
    }

    fn manifest(renditions: Vec<PublishedRendition>) -> Manifest {
        let file = PublishedFile {
            url: "u".into(),
            key: "k".into(),
            size: 1,
            sha256: "s".into(),
        };
        Manifest {
            asset_id: "ast_1".into(),
            variation: 0,
            campaign: "spring & \"summer\"".into(),
            content_hash: "abcd".into(),
            universal_ad_id: universal_ad_id("ast_1", 0, "abcd"),
            published_at: "t".into(),
            expires_at: "t".into(),
            duration_secs: 5.0416,
            master_sha256: "m".into(),
            renditions,
            poster: file.clone(),
            qc_report: file,
            manifest_url: "m".into(),
            vast_url: "v".into(),
            posters: vec![],
            storyboard: None,
            preview: None,
            hls: None,
            files: vec![],
            destinations: vec![],
            captions: vec![],
        }
    }

    #[test]
    fn durations_are_hh_mm_ss_mmm() {
        assert_eq!(duration(5.0416), "00:00:05.042");
        assert_eq!(duration(3725.5), "01:02:05.500");
        assert_eq!(duration(0.0), "00:00:00.000");
    }

    #[test]
    fn text_attributes_and_cdata_are_escaped() {
        assert_eq!(escape("a&b<c>\"d'"), "a&amp;b&lt;c&gt;&quot;d&apos;");
        assert_eq!(cdata("x]]>y"), "<![CDATA[x]]]]><![CDATA[>y]]>");
    }

    #[test]
    fn the_mezzanine_is_the_largest_progressive_file() {
        let r = vec![
            rendition("720p", 1280, 720, 3000, "video/mp4"),
            rendition("hls", 3840, 2160, 9000, "application/x-mpegURL"),
            rendition("1080p", 1920, 1080, 6000, "video/mp4"),
        ];
        assert_eq!(mezzanine(&r).unwrap().name, "1080p");
    }

    #[test]
    fn the_document_escapes_names_and_marks_hls_as_streaming() {
        let m = manifest(vec![
            rendition("1080p", 1920, 1080, 6000, "video/mp4"),
            rendition("hls", 1920, 1080, 6000, "application/x-mpegURL"),
        ]);
        let x = render(&m, "about:blank", "0.1.0");
        assert!(x.contains("<AdTitle>spring &amp; &quot;summer&quot; ast_1 v0</AdTitle>"));
        assert!(x.contains("<![CDATA[https://cdn.example.com/x/1080p?a=1&b=<2>]]>"));
        assert!(x.contains("delivery=\"streaming\""));
        assert!(x.contains("<Duration>00:00:05.042</Duration>"));
        assert!(x.contains("<UniversalAdId idRegistry=\"unknown\">ast_1-v0-abcd</UniversalAdId>"));
        assert_eq!(x.matches("<MediaFile ").count(), 2);
        assert_eq!(x.matches("<Mezzanine ").count(), 1);
    }

    #[test]
    fn the_document_parses_back_to_what_went_in() {
        let m = manifest(vec![
            rendition("1080p", 1920, 1080, 6000, "video/mp4"),
            rendition("720p", 1280, 720, 3000, "video/mp4"),
        ]);
        let x = render(&m, "https://t.example/i?ad=1&x=]]>", "0.1.0");
        let doc = roxmltree::Document::parse(&x).expect("well-formed");
        let find = |name: &str| {
            doc.descendants()
                .find(|n| n.tag_name().name() == name)
                .unwrap_or_else(|| panic!("no {name}"))
        };
        assert_eq!(doc.root_element().attribute("version"), Some("4.2"));
        assert_eq!(find("AdTitle").text(), Some("spring & \"summer\" ast_1 v0"));
        assert_eq!(
            find("Impression").text(),
            Some("https://t.example/i?ad=1&x=]]>")
        );
        let files: Vec<_> = doc
            .descendants()
            .filter(|n| n.tag_name().name() == "MediaFile")
            .collect();
        assert_eq!(files.len(), 2);
        assert_eq!(files[1].attribute("width"), Some("1280"));
        assert_eq!(files[1].attribute("bitrate"), Some("3000"));
        assert_eq!(files[1].attribute("fileSize"), Some("3000000"));
        assert_eq!(files[1].attribute("codec"), Some("avc1.640028,mp4a.40.2"));
        assert_eq!(
            files[1].text(),
            Some("https://cdn.example.com/x/720p?a=1&b=<2>")
        );
        assert_eq!(find("Mezzanine").attribute("id"), Some("1080p-mezzanine"));
    }

    #[test]
    fn the_mezzanine_is_the_largest_mp4_even_when_a_webm_is_as_large() {
        let r = vec![
            rendition("1080p-vp9", 1920, 1080, 9000, "video/webm"),
            rendition("1080p", 1920, 1080, 6000, "video/mp4"),
            rendition("2160p", 3840, 2160, 30000, "video/mp4"),
        ];
        assert_eq!(mezzanine(&r).unwrap().name, "2160p");
        let only_webm = vec![rendition("720p-vp9", 1280, 720, 2000, "video/webm")];
        assert_eq!(mezzanine(&only_webm).unwrap().name, "720p-vp9");
    }

    #[test]
    fn webm_and_hls_get_their_own_media_files() {
        let mut m = manifest(vec![
            rendition("1080p", 1920, 1080, 6000, "video/mp4"),
            rendition("720p-vp9", 1280, 720, 2500, "video/webm"),
        ]);
        m.renditions[1].codecs = "vp09.00.31.08,opus".into();
        m.hls = Some(hls());
        let x = render(&m, "about:blank", "0.1.0");
        let doc = roxmltree::Document::parse(&x).expect("well-formed");
        let files: Vec<_> = doc
            .descendants()
            .filter(|n| n.tag_name().name() == "MediaFile")
            .collect();
        assert_eq!(files.len(), 3);
        let webm = files[1];
        assert_eq!(webm.attribute("type"), Some("video/webm"));
        assert_eq!(webm.attribute("delivery"), Some("progressive"));
        assert_eq!(webm.attribute("codec"), Some("vp09.00.31.08,opus"));
        let stream = files[2];
        assert_eq!(stream.attribute("delivery"), Some("streaming"));
        assert_eq!(stream.attribute("type"), Some("application/x-mpegURL"));
        assert_eq!(stream.attribute("width"), Some("1920"));
        assert_eq!(stream.attribute("height"), Some("1080"));
        assert_eq!(stream.attribute("minBitrate"), Some("3001"));
        assert_eq!(stream.attribute("maxBitrate"), Some("6100"));
        assert_eq!(stream.attribute("fileSize"), None);
        assert_eq!(
            stream.text(),
            Some("https://cdn.example.com/x/hls/master.m3u8")
        );
        let mezz = doc
            .descendants()
            .find(|n| n.tag_name().name() == "Mezzanine")
            .unwrap();
        assert_eq!(mezz.attribute("type"), Some("video/mp4"));
        assert_eq!(mezz.attribute("id"), Some("1080p-mezzanine"));
        // Every URL in the document is one the manifest names.
        let named: Vec<String> = m
            .renditions
            .iter()
            .map(|r| r.url.clone())
            .chain([m.hls.as_ref().unwrap().master.url.clone()])
            .collect();
        for n in doc
            .descendants()
            .filter(|n| matches!(n.tag_name().name(), "MediaFile" | "Mezzanine"))
        {
            assert!(named.contains(&n.text().unwrap().to_string()), "{n:?}");
        }
    }

    #[test]
    fn captions_are_closed_caption_files_inside_media_files() {
        let mut m = manifest(vec![rendition("1080p", 1920, 1080, 6000, "video/mp4")]);
        m.captions = vec![crate::publish::PublishedCaption {
            language: "fr-CA".into(),
            label: "Français".into(),
            content_type: "text/vtt".into(),
            url: "https://cdn.example.com/x/captions/fr-CA.vtt".into(),
            key: "x/captions/fr-CA.vtt".into(),
            size: 10,
            sha256: "c".into(),
            hls_playlist_url: None,
        }];
        let x = render(&m, "about:blank", "0.1.0");
        let doc = roxmltree::Document::parse(&x).expect("well-formed");
        let files = doc
            .descendants()
            .find(|n| n.has_tag_name("ClosedCaptionFiles"))
            .expect("ClosedCaptionFiles");
        assert_eq!(files.parent().unwrap().tag_name().name(), "MediaFiles");
        let f = files
            .children()
            .find(|n| n.has_tag_name("ClosedCaptionFile"))
            .unwrap();
        assert_eq!(f.attribute("type"), Some("text/vtt"));
        assert_eq!(f.attribute("language"), Some("fr-CA"));
        assert_eq!(
            f.text(),
            Some("https://cdn.example.com/x/captions/fr-CA.vtt")
        );
        // Last in MediaFiles, after the Mezzanine (VAST 4.1 order).
        let last = files.parent().unwrap().children().rfind(|n| n.is_element());
        assert_eq!(last, Some(files));
        m.captions.clear();
        assert!(!render(&m, "about:blank", "0.1.0").contains("ClosedCaption"));
    }

    #[test]
    fn a_destination_sees_only_the_files_it_accepts() {
        let mut m = manifest(vec![
            rendition("2160p", 3840, 2160, 20000, "video/mp4"),
            rendition("1080p", 1920, 1080, 6000, "video/mp4"),
            rendition("vp9-720p", 1280, 720, 3000, "video/webm"),
        ]);
        m.hls = Some(hls());
        let some = for_destination(&m, &["1080p".into(), "vp9".into()]);
        let x = render(&some, "about:blank", "0.1.0");
        let doc = roxmltree::Document::parse(&x).expect("well-formed");
        let ids: Vec<_> = doc
            .descendants()
            .filter(|n| n.tag_name().name() == "MediaFile")
            .filter_map(|n| n.attribute("id"))
            .collect();
        assert_eq!(ids, ["1080p"], "HLS needs every variant accepted");
        assert!(x.contains("id=\"1080p-mezzanine\""), "{x}");
        let all = for_destination(&m, &["2160p".into(), "720p".into(), "1080p".into()]);
        assert_eq!(all.renditions.len(), 2);
        assert!(all.hls.is_some());
    }
}
