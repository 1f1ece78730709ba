use super::*;
use crate::media::VideoStream;
use std::path::PathBuf;

fn of(rel: &str, role: FileRole, output: Option<&str>) -> OutputFile {
    OutputFile {
        name: rel.into(),
        path: PathBuf::from(rel),
        content_type: content_type_for(rel).into(),
        sha256: format!("sha-{rel}"),
        size: 1000,
        role,
        output: output.map(String::from),
    }
}

fn probe(codec: &str, fmt: &str, w: u32, h: u32) -> Probe {
    Probe {
        format_name: fmt.into(),
        duration_secs: 2.0,
        size_bytes: 1000,
        bit_rate: None,
        video: Some(VideoStream {
            codec: codec.into(),
            profile: Some(if codec == "vp9" { "Profile 0" } else { "High" }.into()),
            level: Some(31),
            width: w,
            height: h,
            pix_fmt: Some("yuv420p".into()),
            fps: 24.0,
            nb_frames: None,
            ..Default::default()
        }),
        audio: None,
    }
}

const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n\
    #EXT-X-STREAM-INF:BANDWIDTH=2340800,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\"\n\
    720p.m3u8\n\n\
    #EXT-X-STREAM-INF:BANDWIDTH=1140800,AVERAGE-BANDWIDTH=900000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\"\n\
    360p.m3u8\n";
const MEDIA_720: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n720p_00001.ts\n#EXTINF:1.0,\n720p_00002.ts\n#EXT-X-ENDLIST\n";
const MEDIA_360: &str = "#EXTM3U\n#EXTINF:2.0,\n360p_00001.ts\n#EXT-X-ENDLIST\n";
const VTT: &str = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nsprite.jpg#xywh=0,0,160,90\n\n00:00:01.000 --> 00:00:02.000\nsprite.jpg#xywh=160,0,160,90\n";

fn full_set() -> (Vec<OutputFile>, HashMap<String, Probe>, Texts) {
    let files = vec![
        of("720p.mp4", FileRole::Rendition, Some("720p")),
        of("360p.mp4", FileRole::Rendition, Some("360p")),
        of("720p.webm", FileRole::Rendition, Some("720p")),
        of("poster-1280.jpg", FileRole::Poster, None),
        of("poster-640.webp", FileRole::Poster, None),
        of("poster-640.jpg", FileRole::Poster, None),
        of("sprite.jpg", FileRole::Sprite, None),
        of("storyboard.vtt", FileRole::Storyboard, None),
        of("preview.webp", FileRole::Preview, None),
        of("hls/master.m3u8", FileRole::HlsMaster, None),
        of("hls/720p.m3u8", FileRole::HlsPlaylist, Some("720p")),
        of("hls/720p_00001.ts", FileRole::HlsSegment, Some("720p")),
        of("hls/720p_00002.ts", FileRole::HlsSegment, Some("720p")),
        of("hls/360p.m3u8", FileRole::HlsPlaylist, Some("360p")),
        of("hls/360p_00001.ts", FileRole::HlsSegment, Some("360p")),
    ];
    let mut probes = HashMap::new();
    probes.insert("720p.mp4".into(), probe("h264", "mov,mp4", 1280, 720));
    probes.insert("360p.mp4".into(), probe("h264", "mov,mp4", 640, 360));
    probes.insert("720p.webm".into(), probe("vp9", "matroska,webm", 1280, 720));
    probes.insert(
        "poster-1280.jpg".into(),
        probe("mjpeg", "image2", 1280, 720),
    );
    probes.insert("poster-640.jpg".into(), probe("mjpeg", "image2", 640, 360));
    probes.insert(
        "poster-640.webp".into(),
        probe("webp", "webp_pipe", 640, 360),
    );
    probes.insert("sprite.jpg".into(), probe("mjpeg", "image2", 1600, 900));
    probes.insert("preview.webp".into(), probe("webp", "webp_pipe", 640, 360));
    let mut texts = Texts::new();
    texts.insert("hls/master.m3u8".into(), MASTER.into());
    texts.insert("hls/720p.m3u8".into(), MEDIA_720.into());
    texts.insert("hls/360p.m3u8".into(), MEDIA_360.into());
    texts.insert("storyboard.vtt".into(), VTT.into());
    (files, probes, texts)
}

fn build(
    files: &[OutputFile],
    probes: &HashMap<String, Probe>,
    texts: &Texts,
) -> Result<Sections, String> {
    let layout = Layout::new("v1", "spring", "ast_1", 0);
    sections(&SetFacts {
        layout: &layout,
        hash: "abcd",
        cdn_base: "https://cdn.example",
        files,
        probes,
        texts,
        fallback_duration_secs: 2.0,
    })
}

#[test]
fn paths_inside_a_set_are_plain_and_relative() {
    for ok in ["1080p.mp4", "hls/720p_00001.ts", "poster-640.webp"] {
        assert!(check_rel(ok).is_ok(), "{ok}");
    }
    for bad in [
        "", "/abs.mp4", "../x.mp4", "hls/../x", "a//b", "a b.mp4", "qc.json", "vast.xml", "hls/",
        "x\\y",
    ] {
        assert!(check_rel(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn relative_uris_resolve_inside_the_set_only() {
    assert_eq!(
        resolve("hls/master.m3u8", "720p.m3u8").as_deref(),
        Some("hls/720p.m3u8")
    );
    assert_eq!(
        resolve("storyboard.vtt", "sprite.jpg#xywh=0,0,1,1").as_deref(),
        Some("sprite.jpg")
    );
    assert_eq!(
        resolve("hls/a/b.m3u8", "../c.ts").as_deref(),
        Some("hls/c.ts")
    );
    assert_eq!(resolve("hls/master.m3u8", "../../x.ts"), None);
    assert_eq!(
        resolve("hls/master.m3u8", "https://evil.example/x.ts"),
        None
    );
    assert_eq!(resolve("hls/master.m3u8", "/x.ts"), None);
}

/// The attribute-list cases themselves are `media::hls`'s tests; here
/// the sample master the other tests publish reads as two variants.
#[test]
fn the_sample_master_lists_two_variants() {
    let v = MasterPlaylist::parse(MASTER).variants;
    assert_eq!(v.len(), 2);
    assert_eq!(v[1].uri, "360p.m3u8");
    assert_eq!(v[0].codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
}

#[test]
fn a_full_set_gets_every_section() {
    let (files, probes, texts) = full_set();
    let s = build(&files, &probes, &texts).unwrap();

    let r: Vec<(&str, &str, &str)> = s
        .renditions
        .iter()
        .map(|r| (r.name.as_str(), r.container.as_str(), r.codecs.as_str()))
        .collect();
    assert_eq!(
        r,
        [
            ("720p.mp4", "mp4", "avc1.64001f"),
            ("360p", "mp4", "avc1.64001f"),
            ("720p.webm", "webm", "vp09.00.31.08"),
        ],
        "two outputs named 720p: each keeps its file name"
    );
    assert_eq!(s.renditions[2].content_type, "video/webm");
    assert_eq!(s.renditions[0].bitrate_kbps, 4); // 1000 B * 8 / 2 s
    assert!(s.renditions.iter().all(|r| r.delivery == "progressive"));

    assert_eq!(s.poster.key, "v1/spring/ast_1/v0/abcd/poster-1280.jpg");
    let posters: Vec<(u32, &str)> = s
        .posters
        .iter()
        .map(|p| (p.width, p.format.as_str()))
        .collect();
    assert_eq!(posters, [(1280, "jpeg"), (640, "webp"), (640, "jpeg")]);

    let sb = s.storyboard.unwrap();
    assert_eq!(
        sb.sprite.url,
        "https://cdn.example/v1/spring/ast_1/v0/abcd/sprite.jpg"
    );
    assert_eq!((sb.sprite.width, sb.sprite.height), (1600, 900));
    assert_eq!(sb.vtt.key, "v1/spring/ast_1/v0/abcd/storyboard.vtt");
    assert_eq!(s.preview.unwrap().format, "webp");

    let hls = s.hls.unwrap();
    assert_eq!(hls.master.key, "v1/spring/ast_1/v0/abcd/hls/master.m3u8");
    assert_eq!(
        hls.variants[0],
        HlsVariant {
            name: "720p".into(),
            url: "https://cdn.example/v1/spring/ast_1/v0/abcd/hls/720p.m3u8".into(),
            key: "v1/spring/ast_1/v0/abcd/hls/720p.m3u8".into(),
            bandwidth: 2_340_800,
            average_bandwidth: None,
            width: 1280,
            height: 720,
            codecs: "avc1.64001f,mp4a.40.2".into(),
            segments: 2,
        }
    );
    assert_eq!(hls.variants[1].average_bandwidth, Some(900_000));
    assert_eq!(hls.variants[1].segments, 1);
    assert_eq!(s.files.len(), files.len());
    assert!(s
        .files
        .iter()
        .any(|f| f.rel == "hls/720p_00002.ts" && f.content_type == "video/mp2t"));
}

#[test]
fn a_set_that_would_send_players_to_a_404_is_refused() {
    let (files, probes, texts) = full_set();
    // A segment the playlist names is missing.
    let fewer: Vec<OutputFile> = files
        .iter()
        .filter(|f| f.name != "hls/720p_00002.ts")
        .cloned()
        .collect();
    let err = build(&fewer, &probes, &texts).unwrap_err();
    assert!(err.contains("hls/720p_00002.ts"), "{err}");
    // A storyboard tile in another file.
    let mut t = texts.clone();
    t.insert(
        "storyboard.vtt".into(),
        VTT.replace("sprite.jpg", "../sprite.jpg"),
    );
    assert!(build(&files, &probes, &t).is_err());
    // An absolute URL in a playlist.
    let mut t = texts.clone();
    t.insert(
        "hls/360p.m3u8".into(),
        MEDIA_360.replace("360p_00001.ts", "http://x.example/360p_00001.ts"),
    );
    assert!(build(&files, &probes, &t).is_err());
    // A sprite without its map.
    let no_vtt: Vec<OutputFile> = files
        .iter()
        .filter(|f| f.role != FileRole::Storyboard)
        .cloned()
        .collect();
    let mut t = texts.clone();
    t.remove("storyboard.vtt");
    assert!(build(&no_vtt, &probes, &t).is_err());
}

#[test]
fn the_skeleton_set_still_makes_a_manifest() {
    let files = vec![
        of("720p.mp4", FileRole::Rendition, Some("720p")),
        of("poster.jpg", FileRole::Poster, None),
    ];
    let mut probes = HashMap::new();
    probes.insert("720p.mp4".into(), probe("h264", "mov,mp4", 1280, 720));
    probes.insert("poster.jpg".into(), probe("mjpeg", "image2", 1280, 720));
    let s = build(&files, &probes, &Texts::new()).unwrap();
    assert_eq!(s.renditions[0].name, "720p");
    assert_eq!(s.poster.key, "v1/spring/ast_1/v0/abcd/poster.jpg");
    assert!(s.hls.is_none() && s.storyboard.is_none() && s.preview.is_none());
}

#[test]
fn webp_sizes_come_from_the_header() {
    // ffmpeg 5.1's libwebp_anim (VP8X) and libwebp (VP8) at 320x180.
    let mut anim = b"RIFF\x1e\xe7\0\0WEBPVP8X\x0a\0\0\0\x12\0\0\0".to_vec();
    anim.extend([0x3f, 0x01, 0x00, 0xb3, 0x00, 0x00]);
    assert_eq!(webp_size(&anim), Some((320, 180)));
    let mut lossy = b"RIFFd\x0b\0\0WEBPVP8 X\x0b\0\0PB\0".to_vec();
    lossy.extend([0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00]);
    assert_eq!(webp_size(&lossy), Some((320, 180)));
    // Lossless: 100x50 is stored as 99 and 49.
    let bits: u32 = 99 | (49 << 14);
    let mut lossless = b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2f".to_vec();
    lossless.extend(bits.to_le_bytes());
    lossless.extend([0; 5]);
    assert_eq!(webp_size(&lossless), Some((100, 50)));
    assert_eq!(webp_size(b"not a webp at all, not even close"), None);
}

#[test]
fn qc_probes_are_reused_only_for_their_own_container() {
    assert!(probe_matches(
        &probe("h264", "mov,mp4,m4a,3gp,3g2,mj2", 2, 2),
        "a.mp4"
    ));
    assert!(!probe_matches(
        &probe("h264", "mov,mp4,m4a,3gp,3g2,mj2", 2, 2),
        "a.webm"
    ));
    assert!(probe_matches(
        &probe("vp9", "matroska,webm", 2, 2),
        "a.webm"
    ));
}
