//! A published set as a whole: every file the transcode wrote, checked
//! before anything is uploaded (safe paths, no duplicates, every relative
//! reference inside an HLS playlist or the storyboard's WebVTT names a file
//! of the set), and the manifest sections that describe it.

use super::{
    public_url, HlsVariant, Layout, OutputFile, PublishedFile, PublishedHls, PublishedImage,
    PublishedRendition, PublishedStoryboard, SetFile,
};
use crate::media::codec::codecs_of;
use crate::media::files::{content_type_for, FileRole, WrittenFile};
use crate::media::hls::{self, MasterPlaylist};
use crate::media::probe::Probe;
use std::collections::{HashMap, HashSet};

/// Names the publish step writes itself beside the outputs.
const RESERVED: &[&str] = &["qc.json", "manifest.json", "vast.xml"];

/// Text files of a set whose references are checked and parsed, by path.
pub type Texts = HashMap<String, String>;

/// Whether `rel` is a safe path inside a set: relative, `/` separated,
/// segments of letters, digits, `.`, `-` and `_`, no `.`/`..` segments.
pub fn check_rel(rel: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("output path {rel:?} {why}"));
    if rel.is_empty() || rel.len() > 200 {
        return bad("must be 1-200 bytes");
    }
    for seg in rel.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return bad("has an empty, '.' or '..' segment");
        }
        if !seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return bad("may only hold letters, digits, '.', '-', '_' and '/'");
        }
    }
    if RESERVED.contains(&rel) {
        return bad("is a name the publish step writes itself");
    }
    Ok(())
}

/// Digests every file (streamed) and checks its path; the order is kept.
pub async fn describe(written: &[WrittenFile]) -> Result<Vec<OutputFile>, SetError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(written.len());
    for w in written {
        check_rel(&w.rel).map_err(SetError::Invalid)?;
        if !seen.insert(w.rel.as_str()) {
            return Err(SetError::Invalid(format!(
                "output path {:?} appears twice",
                w.rel
            )));
        }
        let (sha256, size) = super::digest_file(&w.path)
            .await
            .map_err(|e| SetError::Io(format!("{}: {e}", w.path.display())))?;
        out.push(OutputFile {
            name: w.rel.clone(),
            path: w.path.clone(),
            content_type: content_type_for(&w.rel).to_string(),
            sha256,
            size,
            role: w.role,
            output: w.output.clone(),
        });
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// The outputs do not make a publishable set: no retry will help.
    #[error("{0}")]
    Invalid(String),
    #[error("reading an output: {0}")]
    Io(String),
}

/// Whether the publish step reads this file's text (playlists, WebVTT).
pub fn is_text(f: &OutputFile) -> bool {
    // A caption's cue text is the request's own words, not references;
    // its subtitle playlist is read.
    if f.role == FileRole::Captions {
        return f.name.ends_with(".m3u8");
    }
    matches!(
        f.role,
        FileRole::HlsMaster | FileRole::HlsPlaylist | FileRole::Storyboard
    ) || f.name.ends_with(".m3u8")
        || f.name.ends_with(".vtt")
}

/// `uri` (as written in a playlist or WebVTT at `base`) as a path inside the
/// set. `None` for absolute URLs, absolute paths and anything leaving the set.
pub fn resolve(base: &str, uri: &str) -> Option<String> {
    let uri = uri.split(['#', '?']).next().unwrap_or("");
    if uri.is_empty() || uri.contains("://") || uri.starts_with('/') || uri.contains('\\') {
        return None;
    }
    let mut parts: Vec<&str> = match base.rsplit_once('/') {
        Some((dir, _)) => dir.split('/').collect(),
        None => Vec::new(),
    };
    for seg in uri.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// URIs a playlist or WebVTT names: playlist lines that are not tags, the
/// `URI="..."` of tags (keys, maps, media), and WebVTT cue payloads that
/// look like image references.
pub fn references(rel: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if rel.ends_with(".m3u8") {
        out = hls::uris(text);
    } else if rel.ends_with(".vtt") {
        for line in text.lines().map(str::trim) {
            if line.contains("-->") || line.is_empty() || line.starts_with("WEBVTT") {
                continue;
            }
            let target = line.split('#').next().unwrap_or("");
            let ext = target.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
            if matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png" | "webp")) {
                out.push(line.to_string());
            }
        }
    }
    out
}

/// Every reference inside the set's playlists and WebVTT files must name a
/// file of the set, or players would fetch a 404.
pub fn check_references(files: &[OutputFile], texts: &Texts) -> Result<(), String> {
    let present: HashSet<&str> = files.iter().map(|f| f.name.as_str()).collect();
    for (rel, text) in texts {
        for uri in references(rel, text) {
            match resolve(rel, &uri) {
                Some(target) if present.contains(target.as_str()) => {}
                Some(target) => {
                    return Err(format!(
                        "{rel} names {uri:?} ({target}), which is not in the set"
                    ))
                }
                None => {
                    return Err(format!(
                        "{rel} names {uri:?}, which is not a relative path inside the set"
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Everything a manifest says about the set besides its identity.
#[derive(Debug, Clone)]
pub struct Sections {
    pub renditions: Vec<PublishedRendition>,
    pub poster: PublishedFile,
    pub posters: Vec<PublishedImage>,
    pub storyboard: Option<PublishedStoryboard>,
    pub preview: Option<PublishedImage>,
    pub hls: Option<PublishedHls>,
    pub files: Vec<SetFile>,
}

/// The facts the sections are made of.
pub struct SetFacts<'a> {
    pub layout: &'a Layout,
    pub hash: &'a str,
    pub cdn_base: &'a str,
    pub files: &'a [OutputFile],
    /// ffprobe of each rendition and image, by path in the set.
    pub probes: &'a HashMap<String, Probe>,
    /// Playlists and WebVTT, by path in the set.
    pub texts: &'a Texts,
    /// The master's duration: bitrates of files whose probe has none.
    pub fallback_duration_secs: f64,
}

/// Builds the manifest sections, refusing a set players could not use.
pub fn sections(f: &SetFacts) -> Result<Sections, String> {
    check_references(f.files, f.texts)?;
    let key = |rel: &str| f.layout.file(f.hash, rel);
    let url = |rel: &str| public_url(f.cdn_base, &key(rel));
    let file = |o: &OutputFile| PublishedFile {
        url: url(&o.name),
        key: key(&o.name),
        size: o.size,
        sha256: o.sha256.clone(),
    };
    let probe = |o: &OutputFile| {
        f.probes
            .get(&o.name)
            .ok_or_else(|| format!("{} was not probed", o.name))
    };
    let image = |o: &OutputFile| -> Result<PublishedImage, String> {
        let v = probe(o)?
            .video
            .clone()
            .ok_or_else(|| format!("{} has no picture", o.name))?;
        Ok(PublishedImage {
            url: url(&o.name),
            key: key(&o.name),
            width: v.width,
            height: v.height,
            format: image_format(&o.name).to_string(),
            size: o.size,
            sha256: o.sha256.clone(),
        })
    };
    let of = |role: FileRole| f.files.iter().filter(move |o| o.role == role);

    // Progressive renditions, named by their output unless two share it.
    let progressive: Vec<&OutputFile> = of(FileRole::Rendition).collect();
    let mut names: HashMap<String, usize> = HashMap::new();
    for o in &progressive {
        *names.entry(output_name(o)).or_default() += 1;
    }
    let mut renditions = Vec::new();
    for o in progressive {
        let p = probe(o)?;
        let v = p
            .video
            .as_ref()
            .ok_or_else(|| format!("rendition {} has no video", o.name))?;
        let duration = if p.duration_secs > 0.0 {
            p.duration_secs
        } else {
            f.fallback_duration_secs
        }
        .max(0.001);
        let name = output_name(o);
        renditions.push(PublishedRendition {
            name: if names[&name] > 1 {
                o.name.clone()
            } else {
                name
            },
            url: url(&o.name),
            key: key(&o.name),
            content_type: o.content_type.clone(),
            width: v.width,
            height: v.height,
            bitrate_kbps: (o.size as f64 * 8.0 / duration / 1000.0).round() as u64,
            codecs: codecs_of(p),
            size: o.size,
            sha256: o.sha256.clone(),
            container: container(&o.name).to_string(),
            delivery: "progressive".into(),
        });
    }
    if renditions.is_empty() {
        return Err("the set has no rendition".into());
    }

    let posters = of(FileRole::Poster)
        .map(image)
        .collect::<Result<Vec<_>, _>>()?;
    let main = posters
        .iter()
        .filter(|p| p.format == "jpeg")
        .max_by_key(|p| p.width)
        .or_else(|| posters.iter().max_by_key(|p| p.width))
        .ok_or("the set has no poster")?;
    let poster = PublishedFile {
        url: main.url.clone(),
        key: main.key.clone(),
        size: main.size,
        sha256: main.sha256.clone(),
    };

    let storyboard = match (of(FileRole::Sprite).next(), of(FileRole::Storyboard).next()) {
        (Some(sprite), Some(vtt)) => Some(PublishedStoryboard {
            sprite: image(sprite)?,
            vtt: file(vtt),
        }),
        (None, None) => None,
        _ => return Err("a storyboard needs both its sprite and its WebVTT".into()),
    };
    let preview = of(FileRole::Preview).next().map(image).transpose()?;

    let hls = match of(FileRole::HlsMaster).next() {
        None => None,
        Some(m) => {
            let text = f
                .texts
                .get(&m.name)
                .ok_or_else(|| format!("{} was not read", m.name))?;
            let mut variants = Vec::new();
            for v in MasterPlaylist::parse(text).variants {
                let uri = &v.uri;
                let rel = resolve(&m.name, uri)
                    .ok_or_else(|| format!("{} names {uri:?} outside the set", m.name))?;
                let playlist =
                    f.files.iter().find(|o| o.name == rel).ok_or_else(|| {
                        format!("{} names {rel}, which is not in the set", m.name)
                    })?;
                let (width, height) = v.resolution.unwrap_or((0, 0));
                let segments = f
                    .texts
                    .get(&rel)
                    .map(|t| {
                        references(&rel, t)
                            .iter()
                            .filter(|u| !u.ends_with(".m3u8"))
                            .count()
                    })
                    .unwrap_or(0);
                variants.push(HlsVariant {
                    name: playlist.output.clone().unwrap_or_else(|| stem(&rel)),
                    url: url(&rel),
                    key: key(&rel),
                    bandwidth: v.bandwidth.unwrap_or(0),
                    average_bandwidth: v.average_bandwidth,
                    width,
                    height,
                    codecs: v.codecs.unwrap_or_default(),
                    segments,
                });
            }
            if variants.is_empty() {
                return Err(format!("{} lists no variant", m.name));
            }
            Some(PublishedHls {
                master: file(m),
                variants,
            })
        }
    };

    let files = f
        .files
        .iter()
        .map(|o| super::SetFile {
            rel: o.name.clone(),
            key: key(&o.name),
            url: url(&o.name),
            content_type: o.content_type.clone(),
            role: o.role,
            size: o.size,
            sha256: o.sha256.clone(),
        })
        .collect();
    Ok(Sections {
        renditions,
        poster,
        posters,
        storyboard,
        preview,
        hls,
        files,
    })
}

fn stem(rel: &str) -> String {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.rsplit_once('.').map_or(name, |(s, _)| s).to_string()
}

fn output_name(o: &OutputFile) -> String {
    o.output.clone().unwrap_or_else(|| stem(&o.name))
}

/// `mp4`, `webm`, ... from the file's extension.
pub fn container(rel: &str) -> &'static str {
    match rel
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("webm") => "webm",
        Some("mov") => "mov",
        _ => "mp4",
    }
}

fn image_format(rel: &str) -> &'static str {
    match rel
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("webp") => "webp",
        Some("png") => "png",
        _ => "jpeg",
    }
}

/// A WebP's canvas size from its header. ffprobe (ffmpeg 5.1) cannot decode
/// animated WebP and reports 0x0 for it; the header always knows.
pub fn webp_size(head: &[u8]) -> Option<(u32, u32)> {
    if head.len() < 30 || &head[0..4] != b"RIFF" || &head[8..12] != b"WEBP" {
        return None;
    }
    let le24 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
    let le16 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8;
    match &head[12..16] {
        // Extended (animation, alpha): 24-bit canvas size minus one.
        b"VP8X" => Some((le24(&head[24..27]) + 1, le24(&head[27..30]) + 1)),
        // Lossy: the key frame's start code, then 14-bit sizes.
        b"VP8 " if head[23..26] == [0x9d, 0x01, 0x2a] => {
            Some((le16(&head[26..28]) & 0x3fff, le16(&head[28..30]) & 0x3fff))
        }
        // Lossless: a signature byte, then two 14-bit sizes minus one.
        b"VP8L" if head[20] == 0x2f => {
            let bits = u32::from_le_bytes([head[21], head[22], head[23], head[24]]);
            Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        _ => None,
    }
}

/// Whether a probe describes a file of this container (a QC probe is only
/// reused for the file it was made of).
pub fn probe_matches(probe: &Probe, rel: &str) -> bool {
    let fmt = &probe.format_name;
    match container(rel) {
        "webm" => fmt.contains("webm") || fmt.contains("matroska"),
        _ => fmt.contains("mp4") || fmt.contains("mov"),
    }
}

#[cfg(test)]
mod tests;
