//! A verdict per destination on the delivered files: every rule of the
//! buyer's table checked against what the files themselves measure (probe,
//! moov position, delivered loudness, the master's borders). A file that
//! breaks a per-file rule (container, codec, frame rate, shape, audio, size
//! cap, moov, a size under the buyer's minimum unless it is one of its
//! required lower rungs) is not offered to that buyer; the set then needs a
//! top rung in the buyer's band and every required lower rung. Pure: the check stage
//! gathers the measurements.

use super::{has_aspect, parse_aspect, Destination};

/// The tolerance QC holds bands with (`policy.bitrate_tolerance`'s default):
/// a ceiling is `max x 1.02`, a floor `min / 1.02`.
pub const BAND_TOLERANCE: f64 = 1.02;

/// IAB VAST 4.3 3.9 / CTV guidelines: a mezzanine is the master's size at
/// the UHD band's floor or more.
pub const MEZZANINE_MIN_KBPS: u32 = 15_000;

/// One delivered file, as measured.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveredFile {
    pub name: String,
    /// "mp4", "webm", "hls".
    pub container: String,
    /// ffprobe's codec name: "h264", "vp9".
    pub video_codec: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub duration_secs: f64,
    /// Average video bitrate (the file's minus its audio), kbps.
    pub video_kbps: f64,
    pub size_bytes: u64,
    pub moov_first: bool,
    pub audio: Option<DeliveredAudio>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveredAudio {
    /// ffprobe's codec name: "aac", "opus", "pcm_s16le".
    pub codec: String,
    pub channels: u32,
    pub sample_rate: u32,
    pub kbps: Option<f64>,
}

/// What the set as a whole measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivered {
    pub files: Vec<DeliveredFile>,
    /// Integrated loudness (LUFS) and true peak (dBTP) of the delivered
    /// audio, or of the master when the profile did not normalise.
    pub loudness: Option<(f64, f64)>,
    /// Whether the picture carries both letterbox and pillarbox bars; None
    /// when the content analysis could not tell.
    pub windowboxed: Option<bool>,
    /// The master's bars (the content analysis's border finding); None
    /// when it could not tell.
    pub borders: Option<crate::policy::Bars>,
    /// The audio's start and end offsets from the video's (audio minus
    /// video, seconds), from the master's probe; None where not known.
    pub audio_offsets: (Option<f64>, Option<f64>),
    /// Frames compared and frames repeating the one before; None when the
    /// content analysis did not count them.
    pub repeated_frames: Option<crate::media::analyze::Cadence>,
    /// The worst one-second window's start and its large-area flashes;
    /// None when not measured.
    pub worst_flash_second: Option<(f64, usize)>,
}

// The verdict types live with the QC report that carries them.
pub use crate::policy::{DestinationCheck, DestinationVerdict};

fn codec_name(probe: &str) -> &str {
    match probe {
        c if c.starts_with("pcm_") => "pcm",
        "prores" => "prores",
        c => c,
    }
}

fn short(f: &DeliveredFile) -> u32 {
    f.width.min(f.height)
}

fn kbps(x: f64) -> String {
    format!("{x:.0} kbps")
}

/// The buyer's minimum size as (long side, short side): the tables give it
/// landscape, a portrait set is held to it turned.
fn min_size(d: &Destination) -> (u32, u32) {
    let (mw, mh) = (d.min_width.unwrap_or(0), d.min_height.unwrap_or(0));
    (mw.max(mh), mw.min(mh))
}

/// The per-file checks of `d` on `f`. A file under the buyer's minimum
/// size is offered only as one of its required lower rungs (IAB CTV takes
/// a 720p beside its 1080p minimum; TikTok takes no 480p at all).
fn file_checks(d: &Destination, f: &DeliveredFile) -> Vec<DestinationCheck> {
    let mut out = Vec::new();
    let mut check = |rule: &str, measured: String, limit: String, passed: bool| {
        out.push(DestinationCheck {
            rule: rule.into(),
            subject: f.name.clone(),
            measured,
            limit,
            passed,
        })
    };
    if !d.containers.is_empty() {
        check(
            "containers",
            f.container.clone(),
            d.containers.join("/"),
            d.containers.contains(&f.container),
        );
    }
    if !d.video_codecs.is_empty() {
        check(
            "video_codecs",
            f.video_codec.clone(),
            d.video_codecs.join("/"),
            d.video_codecs
                .iter()
                .any(|c| c == codec_name(&f.video_codec)),
        );
    }
    if !d.frame_rates.is_empty() || d.max_frame_rate.is_some() {
        let mut limit: Vec<String> = d.frame_rates.iter().map(|r| r.to_string()).collect();
        if let Some(m) = d.max_frame_rate {
            limit.push(format!("at most {m}"));
        }
        check(
            "frame_rates",
            format!("{:.3} fps", f.fps),
            format!("{} fps", limit.join(", ")),
            d.accepts_frame_rate(f.fps),
        );
    }
    if !d.aspect_ratios.is_empty() {
        let ok = d
            .aspect_ratios
            .iter()
            .filter_map(|a| parse_aspect(a))
            .any(|a| has_aspect(f.width, f.height, a));
        check(
            "aspect_ratios",
            format!("{}x{}", f.width, f.height),
            d.aspect_ratios.join(", "),
            ok,
        );
    }
    if let Some(cap) = d.max_file_bytes {
        check(
            "max_file_bytes",
            format!("{} bytes", f.size_bytes),
            format!("<= {cap} bytes"),
            f.size_bytes <= cap,
        );
    }
    if d.moov_first && f.container == "mp4" {
        check(
            "moov_first",
            if f.moov_first {
                "moov first"
            } else {
                "mdat first"
            }
            .into(),
            "moov before mdat".into(),
            f.moov_first,
        );
    }
    if d.min_width.is_some() || d.min_height.is_some() {
        let (mw, mh) = min_size(d);
        let (long, side) = (f.width.max(f.height), short(f));
        let rung = d.lower_rungs.iter().any(|r| r.short_side == side);
        let mut limit = format!("at least {mw}x{mh}");
        if !d.lower_rungs.is_empty() {
            let sides: Vec<String> = d
                .lower_rungs
                .iter()
                .map(|r| format!("{}p", r.short_side))
                .collect();
            limit.push_str(&format!(
                ", or a required lower rung ({})",
                sides.join(", ")
            ));
        }
        check(
            "min_width_per_file",
            format!("{}x{}", f.width, f.height),
            limit,
            (long >= mw && side >= mh) || rung,
        );
    }
    let audio_rules = d.audio_required
        || !d.audio_codecs.is_empty()
        || d.audio_min_channels.is_some()
        || !d.audio_sample_rates.is_empty()
        || d.audio_min_kbps.is_some();
    match (&f.audio, audio_rules) {
        (None, _) if d.audio_required => {
            check(
                "audio_required",
                "no audio".into(),
                "a sound track".into(),
                false,
            );
        }
        (Some(a), true) => {
            if !d.audio_codecs.is_empty() {
                check(
                    "audio_codecs",
                    a.codec.clone(),
                    d.audio_codecs.join("/"),
                    d.audio_codecs.iter().any(|c| c == codec_name(&a.codec)),
                );
            }
            if let Some(min) = d.audio_min_channels {
                check(
                    "audio_min_channels",
                    format!("{} ch", a.channels),
                    format!(">= {min} ch"),
                    a.channels >= min,
                );
            }
            if !d.audio_sample_rates.is_empty() {
                let r: Vec<String> = d.audio_sample_rates.iter().map(|r| r.to_string()).collect();
                check(
                    "audio_sample_rates",
                    format!("{} Hz", a.sample_rate),
                    format!("{} Hz", r.join("/")),
                    d.audio_sample_rates.contains(&a.sample_rate),
                );
            }
            if let Some(min) = d.audio_min_kbps {
                // Encoders land a few % under their target: the band's tolerance.
                let got = a.kbps.unwrap_or(0.0);
                check(
                    "audio_min_kbps",
                    kbps(got),
                    format!(">= {min} kbps"),
                    got >= f64::from(min) / BAND_TOLERANCE,
                );
            }
        }
        _ => {}
    }
    out
}

fn band_text(lo: Option<u32>, hi: Option<u32>) -> String {
    match (lo, hi) {
        (Some(l), Some(h)) => format!("{l}-{h} kbps"),
        (Some(l), None) => format!(">= {l} kbps"),
        (None, Some(h)) => format!("<= {h} kbps"),
        (None, None) => "any".into(),
    }
}

/// Whether `x` kbps is inside `lo..hi`, with [`BAND_TOLERANCE`].
pub fn in_band(x: f64, lo: Option<u32>, hi: Option<u32>) -> bool {
    lo.is_none_or(|l| x >= f64::from(l) / BAND_TOLERANCE)
        && hi.is_none_or(|h| x <= f64::from(h) * BAND_TOLERANCE)
}

/// The verdict of destination `name` on `delivered`.
pub fn judge(name: &str, d: &Destination, delivered: &Delivered) -> DestinationVerdict {
    let mut checks = Vec::new();
    let mut accepted: Vec<&DeliveredFile> = Vec::new();
    for f in &delivered.files {
        let c = file_checks(d, f);
        if c.iter().all(|c| c.passed) {
            accepted.push(f);
        }
        checks.extend(c);
    }
    let mut set = |rule: &str, subject: &str, measured: String, limit: String, passed: bool| {
        checks.push(DestinationCheck {
            rule: rule.into(),
            subject: subject.into(),
            measured,
            limit,
            passed,
        })
    };
    // The biggest accepted file inside the top band, else the biggest: the
    // profile's rung and one made for this buyer may share a size, and a
    // mezzanine (a 4K master's 2160p in the UHD band) is bigger than a CTV
    // buyer's top rung without being it.
    let top = accepted.iter().max_by_key(|f| {
        (
            in_band(f.video_kbps, d.top_min_kbps, d.top_max_kbps),
            u64::from(f.width) * u64::from(f.height),
        )
    });
    match top {
        None => set(
            "files",
            "set",
            format!("none of {} files", delivered.files.len()),
            "at least one file passing every per-file rule".into(),
            false,
        ),
        Some(t) => {
            if d.min_width.is_some() || d.min_height.is_some() {
                let (mw, mh) = min_size(d);
                let (w, h) = (t.width.max(t.height), t.width.min(t.height));
                set(
                    "min_width",
                    &t.name,
                    format!("{}x{}", t.width, t.height),
                    format!("at least {mw}x{mh}"),
                    w >= mw && h >= mh,
                );
            }
            if d.top_min_kbps.is_some() || d.top_max_kbps.is_some() {
                let rule =
                    if d.top_min_kbps.is_some() && !in_band(t.video_kbps, d.top_min_kbps, None) {
                        "top_min_kbps"
                    } else if d.top_max_kbps.is_some() {
                        "top_max_kbps"
                    } else {
                        "top_min_kbps"
                    };
                set(
                    rule,
                    &t.name,
                    kbps(t.video_kbps),
                    band_text(d.top_min_kbps, d.top_max_kbps),
                    in_band(t.video_kbps, d.top_min_kbps, d.top_max_kbps),
                );
            }
            if !d.duration_slots_secs.is_empty() || !d.duration_ranges_secs.is_empty() {
                let key = if d.duration_slots_secs.is_empty() {
                    "duration_ranges_secs"
                } else {
                    "duration_slots_secs"
                };
                set(
                    key,
                    &t.name,
                    format!("{:.3} s", t.duration_secs),
                    d.durations_text(),
                    d.accepts_duration(t.duration_secs),
                );
            }
        }
    }
    for r in &d.lower_rungs {
        let at_size: Vec<&&DeliveredFile> = accepted
            .iter()
            .filter(|f| short(f) == r.short_side)
            .collect();
        let hit = at_size
            .iter()
            .find(|f| in_band(f.video_kbps, Some(r.min_kbps), Some(r.max_kbps)));
        let (subject, measured) = match (hit, at_size.first()) {
            (Some(f), _) => (f.name.clone(), kbps(f.video_kbps)),
            (None, Some(f)) => (f.name.clone(), kbps(f.video_kbps)),
            (None, None) => ("set".into(), format!("no accepted {}p file", r.short_side)),
        };
        set(
            "lower_rungs",
            &subject,
            measured,
            format!("{}p at {}-{} kbps", r.short_side, r.min_kbps, r.max_kbps),
            hit.is_some(),
        );
    }
    if d.mezzanine {
        let biggest = accepted.iter().map(|f| short(f)).max().unwrap_or(0);
        let m = accepted
            .iter()
            .filter(|f| short(f) == biggest)
            .map(|f| f.video_kbps)
            .fold(0.0, f64::max);
        set(
            "mezzanine",
            "set",
            format!("{biggest}p at {}", kbps(m)),
            format!("the largest size at >= {MEZZANINE_MIN_KBPS} kbps"),
            biggest > 0 && in_band(m, Some(MEZZANINE_MIN_KBPS), None),
        );
    }
    if let Some(target) = d.loudness_target_lufs {
        let tol = d.loudness_tolerance_lu.unwrap_or(0.0);
        match delivered.loudness {
            Some((i, _)) => set(
                "loudness_target_lufs",
                "set",
                format!("{i:.1} LUFS"),
                format!("{target} LUFS +/- {tol} LU"),
                (i - target).abs() <= tol + 0.05,
            ),
            None if accepted.iter().any(|f| f.audio.is_some()) => set(
                "loudness_target_lufs",
                "set",
                "not measured".into(),
                format!("{target} LUFS +/- {tol} LU"),
                false,
            ),
            None => {}
        }
    }
    if let (Some(cap), Some((_, tp))) = (d.true_peak_max_dbtp, delivered.loudness) {
        set(
            "true_peak_max_dbtp",
            "set",
            format!("{tp:.1} dBTP"),
            format!("<= {cap} dBTP"),
            tp <= cap + 0.05,
        );
    }
    if d.no_letterbox_and_pillarbox {
        if let Some(boxed) = delivered.windowboxed {
            set(
                "no_letterbox_and_pillarbox",
                "set",
                if boxed {
                    "letterbox and pillarbox"
                } else {
                    "not both"
                }
                .into(),
                "never both letterbox and pillarbox".into(),
                !boxed,
            );
        }
    }
    if let Some(b) = delivered
        .borders
        .filter(|_| d.no_letterbox || d.no_pillarbox)
    {
        let over = format!("{:.0}%", b.min_fraction * 100.0);
        if d.no_letterbox {
            set(
                "no_letterbox",
                "set",
                b.describe(),
                format!("no bars over {over} at the top and bottom"),
                !b.letterbox(),
            );
        }
        if d.no_pillarbox {
            set(
                "no_pillarbox",
                "set",
                b.describe(),
                format!("no bars over {over} at the left and right"),
                !b.pillarbox(),
            );
        }
    }
    for (rule, max, off, what) in [
        (
            "max_audio_start_offset_secs",
            d.max_audio_start_offset_secs,
            delivered.audio_offsets.0,
            "starts",
        ),
        (
            "max_audio_end_offset_secs",
            d.max_audio_end_offset_secs,
            delivered.audio_offsets.1,
            "ends",
        ),
    ] {
        if let (Some(max), Some(off)) = (max, off) {
            set(
                rule,
                "set",
                format!("audio {what} {off:+.3} s from the video"),
                format!("within {max} s"),
                off.abs() <= max + 1e-6,
            );
        }
    }
    if let (Some(max), Some(c)) = (d.max_repeated_frame_share, delivered.repeated_frames) {
        set(
            "max_repeated_frame_share",
            "set",
            format!(
                "{:.1}% repeated ({} of {} frames)",
                c.share() * 100.0,
                c.repeated,
                c.frames
            ),
            format!("<= {:.1}% repeated frames", max * 100.0),
            c.share() <= max + 1e-9,
        );
    }
    if let (Some(max), Some((start, n))) = (d.max_flashes_per_sec, delivered.worst_flash_second) {
        set(
            "max_flashes_per_sec",
            "set",
            format!("{n} flashes in the worst second (from {start:.2} s)"),
            format!("<= {max} flashes in any second"),
            n <= max as usize,
        );
    }
    // A per-file failure only leaves that file out; the set-level checks
    // (on what is left) decide.
    let passed = top.is_some() && checks.iter().all(|c| c.passed || file_rule(&c.rule));
    let reasons: Vec<DestinationCheck> = if passed {
        Vec::new()
    } else {
        checks.iter().filter(|c| !c.passed).cloned().collect()
    };
    DestinationVerdict {
        name: name.to_string(),
        passed,
        files: if passed {
            accepted
                .iter()
                .filter(|f| inside_its_bands(d, f, top.copied(), &accepted))
                .map(|f| f.name.clone())
                .collect()
        } else {
            Vec::new()
        },
        reasons,
        checks,
    }
}

/// Whether `f` is offered to the buyer: a file at a size the buyer bands
/// (its top rung's, a required lower rung's that another file meets) must
/// land in one of those bands, so the buyer's VAST never lists a 360p at
/// 440 kbps made for another buyer beside the 1,650 kbps one IAB's 360p
/// band takes. The mezzanine is never left out.
fn inside_its_bands(
    d: &Destination,
    f: &DeliveredFile,
    top: Option<&DeliveredFile>,
    accepted: &[&DeliveredFile],
) -> bool {
    let biggest = accepted.iter().map(|f| short(f)).max().unwrap_or(0);
    if d.mezzanine && short(f) == biggest && in_band(f.video_kbps, Some(MEZZANINE_MIN_KBPS), None) {
        return true;
    }
    let mut bands: Vec<(Option<u32>, Option<u32>)> = Vec::new();
    if let Some(t) = top.filter(|t| in_band(t.video_kbps, d.top_min_kbps, d.top_max_kbps)) {
        if (t.width, t.height) == (f.width, f.height) {
            bands.push((d.top_min_kbps, d.top_max_kbps));
        }
    }
    for r in d.lower_rungs.iter().filter(|r| r.short_side == short(f)) {
        let met = accepted.iter().any(|g| {
            short(g) == r.short_side && in_band(g.video_kbps, Some(r.min_kbps), Some(r.max_kbps))
        });
        if met {
            bands.push((Some(r.min_kbps), Some(r.max_kbps)));
        }
    }
    bands.is_empty() || bands.iter().any(|(lo, hi)| in_band(f.video_kbps, *lo, *hi))
}

/// Rules checked on each file (a failing file is left out of the buyer's
/// set, which fails only when what is left falls short).
fn file_rule(rule: &str) -> bool {
    matches!(
        rule,
        "containers"
            | "video_codecs"
            | "frame_rates"
            | "aspect_ratios"
            | "max_file_bytes"
            | "moov_first"
            | "min_width_per_file"
            | "audio_required"
            | "audio_codecs"
            | "audio_min_channels"
            | "audio_sample_rates"
            | "audio_min_kbps"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destinations::Rung;

    fn file(name: &str, short: u32, kbps: f64) -> DeliveredFile {
        DeliveredFile {
            name: name.into(),
            container: "mp4".into(),
            video_codec: "h264".into(),
            width: short * 16 / 9 / 2 * 2,
            height: short,
            fps: 24.0,
            duration_secs: 15.0,
            video_kbps: kbps,
            size_bytes: 1_000_000,
            moov_first: true,
            audio: Some(DeliveredAudio {
                codec: "aac".into(),
                channels: 2,
                sample_rate: 48_000,
                kbps: Some(192.0),
            }),
        }
    }

    fn buyer() -> Destination {
        Destination {
            source: "test".into(),
            containers: vec!["mp4".into()],
            top_min_kbps: Some(4000),
            top_max_kbps: Some(10000),
            lower_rungs: vec![Rung {
                short_side: 360,
                min_kbps: 1500,
                max_kbps: 3000,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_set_in_every_band_passes_and_lists_its_files() {
        let set = Delivered {
            files: vec![file("1080p", 1080, 6000.0), file("360p", 360, 2100.0)],
            ..Default::default()
        };
        let v = judge("olv", &buyer(), &set);
        assert!(v.passed, "{v:#?}");
        assert_eq!(v.files, ["1080p", "360p"]);
        assert!(v.reasons.is_empty());
    }

    #[test]
    fn a_low_top_rung_and_a_missing_rung_fail_with_rule_measured_and_limit() {
        let set = Delivered {
            files: vec![file("1080p", 1080, 1200.0)],
            ..Default::default()
        };
        let v = judge("olv", &buyer(), &set);
        assert!(!v.passed);
        assert!(v.files.is_empty());
        let top = v.reasons.iter().find(|r| r.rule == "top_min_kbps").unwrap();
        assert_eq!(
            (top.measured.as_str(), top.limit.as_str()),
            ("1200 kbps", "4000-10000 kbps")
        );
        assert!(v.reasons.iter().any(|r| r.rule == "lower_rungs"));
    }

    #[test]
    fn of_two_top_files_the_same_size_the_one_in_the_band_is_the_top() {
        // The profile's 1080p under the floor and one made for the band,
        // in either order.
        for files in [
            vec![
                file("1080p-16500k", 1080, 16_600.0),
                file("1080p", 1080, 5200.0),
            ],
            vec![
                file("1080p", 1080, 5200.0),
                file("1080p-16500k", 1080, 16_600.0),
            ],
        ] {
            let d = Destination {
                top_min_kbps: Some(15_000),
                top_max_kbps: Some(30_000),
                lower_rungs: Vec::new(),
                ..buyer()
            };
            let v = judge(
                "ttd",
                &d,
                &Delivered {
                    files,
                    ..Default::default()
                },
            );
            assert!(v.passed, "{v:#?}");
        }
    }

    #[test]
    fn a_file_outside_the_band_of_its_size_is_not_offered() {
        // Another buyer's 360p at 440 kbps and a CRF 1080p under the top
        // floor sit beside the files in this buyer's bands.
        let set = Delivered {
            files: vec![
                file("1080p", 1080, 3100.0),
                file("1080p-6600k", 1080, 6600.0),
                file("360p-440k", 360, 440.0),
                file("360p-1650k", 360, 1650.0),
                file("720p", 720, 2500.0),
            ],
            ..Default::default()
        };
        let v = judge("olv", &buyer(), &set);
        assert!(v.passed, "{v:#?}");
        // 720p: no band at that size, offered as it is.
        assert_eq!(v.files, ["1080p-6600k", "360p-1650k", "720p"]);
    }

    #[test]
    fn a_4k_mezzanine_is_not_taken_for_the_top_rung() {
        // A 4K master for a CTV buyer: the mezzanine (2160p, UHD band) is
        // the largest file; the top rung is the largest file in the band.
        let d = Destination {
            mezzanine: true,
            min_width: Some(1920),
            min_height: Some(1080),
            ..buyer()
        };
        let mut mezz = file("2160p-16500k", 2160, 16_600.0);
        mezz.width = 3840;
        let set = Delivered {
            files: vec![mezz, file("1080p", 1080, 6000.0), file("360p", 360, 2100.0)],
            ..Default::default()
        };
        let v = judge("ctv", &d, &set);
        assert!(v.passed, "{v:#?}");
        let top = v.checks.iter().find(|c| c.rule == "top_max_kbps").unwrap();
        assert_eq!(top.subject, "1080p");
        assert!(v.checks.iter().any(|c| c.rule == "mezzanine" && c.passed));
    }

    #[test]
    fn a_file_under_the_minimum_size_is_offered_only_as_a_required_lower_rung() {
        // A CTV buyer's 1080p minimum with required 720p/360p rungs: the
        // rungs are offered, a 480p (no rung of that size) is left out.
        let d = Destination {
            min_width: Some(1920),
            min_height: Some(1080),
            lower_rungs: vec![
                Rung {
                    short_side: 720,
                    min_kbps: 2000,
                    max_kbps: 5000,
                },
                Rung {
                    short_side: 360,
                    min_kbps: 1500,
                    max_kbps: 3000,
                },
            ],
            ..buyer()
        };
        let set = Delivered {
            files: vec![
                file("1080p", 1080, 6000.0),
                file("720p", 720, 3000.0),
                file("480p", 480, 2500.0),
                file("360p", 360, 2100.0),
            ],
            ..Default::default()
        };
        let v = judge("ctv", &d, &set);
        assert!(v.passed, "{v:#?}");
        assert_eq!(v.files, ["1080p", "720p", "360p"]);
        let small = v
            .checks
            .iter()
            .find(|c| c.rule == "min_width_per_file" && c.subject == "480p")
            .unwrap();
        assert!(!small.passed);
        assert_eq!(
            (small.measured.as_str(), small.limit.as_str()),
            (
                "852x480",
                "at least 1920x1080, or a required lower rung (720p, 360p)"
            )
        );
        // A portrait buyer without lower rungs (TikTok's 720x1280): the
        // minimum turned, nothing under it offered.
        let tall = |name: &str, w: u32, h: u32| DeliveredFile {
            width: w,
            height: h,
            ..file(name, w, 3000.0)
        };
        let tiktok = Destination {
            source: "t".into(),
            min_width: Some(720),
            min_height: Some(1280),
            ..Default::default()
        };
        let set = Delivered {
            files: vec![
                tall("1080p", 1080, 1920),
                tall("720p", 720, 1280),
                tall("480p", 480, 854),
            ],
            ..Default::default()
        };
        let v = judge("tiktok", &tiktok, &set);
        assert!(v.passed, "{v:#?}");
        assert_eq!(v.files, ["1080p", "720p"]);
        // Nothing at the minimum: the set fails on its top rung.
        let set = Delivered {
            files: vec![tall("480p", 480, 854)],
            ..Default::default()
        };
        let v = judge("tiktok", &tiktok, &set);
        assert!(!v.passed);
        assert!(v.reasons.iter().any(|r| r.rule == "files"), "{v:#?}");
    }

    #[test]
    fn a_file_in_a_container_the_buyer_refuses_is_left_out_not_fatal() {
        let mut webm = file("vp9-720p", 720, 3000.0);
        webm.container = "webm".into();
        let set = Delivered {
            files: vec![file("1080p", 1080, 6000.0), webm, file("360p", 360, 2100.0)],
            ..Default::default()
        };
        let v = judge("olv", &buyer(), &set);
        assert!(v.passed, "{v:#?}");
        assert_eq!(v.files, ["1080p", "360p"]);
    }
}
