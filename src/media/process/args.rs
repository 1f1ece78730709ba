//! The argument lists that say what an ffmpeg run may open: paths that
//! cannot be read as options or protocols, and the demuxer and protocol
//! whitelists in front of every input.

use super::*;
use std::path::Path;

/// A path as one ffmpeg argument. Relative paths get a `file:` prefix so a
/// name such as `-x.mp4` or `a:b.mp4` is not read as an option or protocol.
/// Paths must be UTF-8 (ours are); others are converted lossily.
pub fn path_arg(path: &Path) -> String {
    let s = path.to_string_lossy();
    if path.is_absolute() {
        s.into_owned()
    } else {
        format!("file:{s}")
    }
}

/// `-i <path>`, preceded for user media by the whitelists (input options
/// must come before the `-i` they apply to).
pub fn input_args(path: &Path, untrusted: bool) -> Vec<String> {
    let mut args = Vec::with_capacity(6);
    if untrusted {
        args.extend(whitelist_args(UNTRUSTED_DEMUXERS));
    }
    args.push("-i".to_owned());
    args.push(path_arg(path));
    args
}

/// `-i <path>` for a file reelay wrote itself, which may be an HLS media
/// playlist (read with its MPEG-TS segments). Never for user media: the HLS
/// demuxer opens the files a playlist names.
pub fn own_input_args(path: &Path) -> Vec<String> {
    whitelisted_input(OWN_DEMUXERS, path)
}

/// `-i <path>` for the raw reference frames reelay's own transcode wrote
/// (`measure::StoredReference`): the NUT demuxer alone.
pub fn reference_input_args(path: &Path) -> Vec<String> {
    whitelisted_input(REFERENCE_DEMUXERS, path)
}

fn whitelisted_input(demuxers: &str, path: &Path) -> Vec<String> {
    let mut args = whitelist_args(demuxers).to_vec();
    args.push("-i".to_owned());
    args.push(path_arg(path));
    args
}

pub(super) fn whitelist_args(demuxers: &str) -> [String; 4] {
    [
        "-protocol_whitelist".to_owned(),
        PROTOCOLS.to_owned(),
        "-format_whitelist".to_owned(),
        demuxers.to_owned(),
    ]
}

/// Puts the whitelists before every `-i` that lacks them.
pub(super) fn guard_inputs(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len() + 8);
    let mut i = 0;
    while i < args.len() {
        if args[i] == "-i" {
            // options directly before this -i (after the previous -i)
            let has = |out: &[String], opt: &str| {
                out.iter()
                    .rev()
                    .take_while(|a| *a != "-i")
                    .any(|a| a == opt)
            };
            if !has(&out, "-protocol_whitelist") {
                out.extend(["-protocol_whitelist".to_owned(), PROTOCOLS.to_owned()]);
            }
            if !has(&out, "-format_whitelist") {
                out.extend([
                    "-format_whitelist".to_owned(),
                    UNTRUSTED_DEMUXERS.to_owned(),
                ]);
            }
            out.push(args[i].clone());
            if let Some(v) = args.get(i + 1) {
                out.push(v.clone());
            }
            i += 2;
        } else {
            out.push(args[i].clone());
            i += 1;
        }
    }
    out
}
