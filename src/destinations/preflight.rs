//! What a request makes impossible for a destination (refused before
//! anything is submitted or paid), and the plan for the possible ones: the
//! outputs each destination needs, the rules that will be checked, and the
//! union of outputs (an output several destinations accept is made once).

use super::{has_aspect, parse_aspect, Destination, Destinations};
use crate::runware::{FieldError, GenerationRequest, ModelSpec};
use serde::Serialize;

/// One output a destination needs.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NeededOutput {
    /// "top", "lower" or "mezzanine".
    pub role: &'static str,
    pub width: u32,
    pub height: u32,
    pub container: String,
    pub video_codec: String,
    /// The average video bitrate band the file must land in.
    pub min_kbps: Option<u32>,
    pub max_kbps: Option<u32>,
    /// The destinations this output serves (in the union).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<String>,
    /// Of those, the ones that put a bitrate band on it (the others only
    /// accept the file); what the transcode names an added file for.
    #[serde(skip)]
    pub banded_by: Vec<String>,
}

/// One rule and when it is checked.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRule {
    /// The config key (`duration_slots_secs`).
    pub rule: &'static str,
    /// What it requires, in words.
    pub requires: String,
    /// "beforeGeneration" (checked now, passed) or "deliveredFiles"
    /// (needs the delivered files: not checked yet).
    pub checked: &'static str,
    /// A correction the delivery needs (e.g. a frame-rate conform).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationPlan {
    pub name: String,
    pub description: String,
    pub source: String,
    pub outputs: Vec<NeededOutput>,
    pub rules: Vec<PlannedRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = PreflightPlan)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub destinations: Vec<DestinationPlan>,
    /// Every needed output once; a file several destinations accept is
    /// made once, its band the intersection of theirs.
    pub outputs: Vec<NeededOutput>,
    pub estimated_cost_usd: f64,
}

const BEFORE: &str = "beforeGeneration";
const DELIVERED: &str = "deliveredFiles";

/// Checks `req` against destination `name` (the request's `destinations[i]`):
/// the refusals, each naming the request field and the destination's rule,
/// or the destination's plan.
pub fn check(
    i: usize,
    name: &str,
    d: &Destination,
    req: &GenerationRequest,
    model: &ModelSpec,
) -> Result<DestinationPlan, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut rules = Vec::new();
    let who = format!("destinations[{i}] ({name})");
    let mut refuse = |path: &str, rule: String| {
        errors.push(FieldError {
            path: path.to_string(),
            rule: format!("{who}: {rule}"),
        })
    };

    if !d.duration_slots_secs.is_empty() || !d.duration_ranges_secs.is_empty() {
        let key = if d.duration_slots_secs.is_empty() {
            "duration_ranges_secs"
        } else {
            "duration_slots_secs"
        };
        let accepted = d.durations_text();
        match req.effective_duration() {
            Some(secs) if !d.accepts_duration(f64::from(secs)) => {
                let fits: Vec<String> = (model.min_duration..=model.max_duration)
                    .filter(|s| d.accepts_duration(f64::from(*s)))
                    .map(|s| s.to_string())
                    .collect();
                let hint = if fits.is_empty() {
                    format!(
                        "no duration the model gives ({}-{} s) fits",
                        model.min_duration, model.max_duration
                    )
                } else {
                    format!("durations the model gives that fit: {} s", fits.join(", "))
                };
                refuse(
                    "generation.duration",
                    format!("{key}: accepts {accepted}; {secs} s fits none ({hint})"),
                );
            }
            Some(_) => rules.push(planned(key, accepted, BEFORE)),
            // An edit takes its input's length: known on delivery only.
            None => rules.push(planned(key, accepted, DELIVERED)),
        }
    }

    let size = req.dimensions();
    if !d.aspect_ratios.is_empty() {
        let accepted = d.aspect_ratios.join(", ");
        match size {
            Some((w, h)) => {
                let fits = d
                    .aspect_ratios
                    .iter()
                    .filter_map(|a| parse_aspect(a))
                    .any(|a| has_aspect(w, h, a));
                if fits {
                    rules.push(planned("aspect_ratios", accepted, BEFORE));
                } else {
                    refuse(
                        "generation.width",
                        format!("aspect_ratios: accepts {accepted}; {w}x{h} is none of them"),
                    );
                }
            }
            None => rules.push(planned("aspect_ratios", accepted, DELIVERED)),
        }
    }
    if d.min_width.is_some() || d.min_height.is_some() {
        let (mw, mh) = (d.min_width.unwrap_or(0), d.min_height.unwrap_or(0));
        let accepted = format!("at least {mw}x{mh}");
        match size {
            Some((w, h)) if w < mw || h < mh => refuse(
                "generation.width",
                format!("min_width/min_height: needs {accepted}; {w}x{h} is smaller (renditions are never upscaled)"),
            ),
            Some(_) => rules.push(planned("min_width", accepted, BEFORE)),
            None => rules.push(planned("min_width", accepted, DELIVERED)),
        }
    }

    let fps = f64::from(model.fps);
    if !d.frame_rates.is_empty() || d.max_frame_rate.is_some() {
        let mut accepted: Vec<String> = d.frame_rates.iter().map(|f| f.to_string()).collect();
        if let Some(m) = d.max_frame_rate {
            accepted.push(format!("at most {m}"));
        }
        let mut r = planned(
            "frame_rates",
            format!("{} fps", accepted.join(", ")),
            DELIVERED,
        );
        if !d.accepts_frame_rate(fps) {
            r.needs = Some(format!("a frame-rate conform: the model renders {fps} fps"));
        }
        rules.push(r);
    }

    let audio_wanted = d.audio_required
        || !d.audio_codecs.is_empty()
        || d.audio_min_channels.is_some()
        || d.audio_min_kbps.is_some()
        || d.loudness_target_lufs.is_some();
    if d.audio_required && !req.sound() && req.view().input_video().is_none() {
        refuse(
            "generation.providerSettings.klingai.sound",
            "audio_required: the buyer refuses a creative without sound; set sound to true".into(),
        );
    } else if d.audio_required {
        rules.push(planned("audio_required", "a sound track".into(), DELIVERED));
    }
    if audio_wanted {
        let mut parts = Vec::new();
        if !d.audio_codecs.is_empty() {
            parts.push(d.audio_codecs.join("/"));
        }
        if let Some(c) = d.audio_min_channels {
            parts.push(format!(">= {c} channels"));
        }
        if !d.audio_sample_rates.is_empty() {
            let r: Vec<String> = d.audio_sample_rates.iter().map(|r| r.to_string()).collect();
            parts.push(format!("{} Hz", r.join("/")));
        }
        if let Some(k) = d.audio_min_kbps {
            parts.push(format!(">= {k} kbps"));
        }
        if !parts.is_empty() {
            rules.push(planned("audio_codecs", parts.join(", "), DELIVERED));
        }
        if let Some(t) = d.loudness_target_lufs {
            let mut s = format!("{t} LUFS +/- {} LU", d.loudness_tolerance_lu.unwrap_or(0.0));
            if let Some(p) = d.true_peak_max_dbtp {
                s.push_str(&format!(", true peak <= {p} dBTP"));
            }
            rules.push(planned("loudness_target_lufs", s, DELIVERED));
        }
    }

    // The top rung at its floor for the whole clip must fit the size cap.
    if let (Some(cap), Some(floor), Some(secs)) =
        (d.max_file_bytes, d.top_min_kbps, req.effective_duration())
    {
        let bytes = u64::from(floor) * 1000 / 8 * u64::from(secs);
        if bytes > cap {
            refuse(
                "generation.duration",
                format!("max_file_bytes: {cap} bytes cannot hold {secs} s at the top_min_kbps floor of {floor} kbps ({bytes} bytes)"),
            );
        } else {
            rules.push(planned(
                "max_file_bytes",
                format!("at most {cap} bytes"),
                DELIVERED,
            ));
        }
    } else if let Some(cap) = d.max_file_bytes {
        rules.push(planned(
            "max_file_bytes",
            format!("at most {cap} bytes"),
            DELIVERED,
        ));
    }
    let band = match (d.top_min_kbps, d.top_max_kbps) {
        (Some(lo), Some(hi)) => Some(format!("{lo}-{hi} kbps")),
        (Some(lo), None) => Some(format!(">= {lo} kbps")),
        (None, Some(hi)) => Some(format!("<= {hi} kbps")),
        (None, None) => None,
    };
    if let Some(band) = band {
        rules.push(planned(
            "top_min_kbps",
            format!("top rung {band}"),
            DELIVERED,
        ));
    }
    for (key, on, what) in [
        (
            "containers",
            !d.containers.is_empty(),
            d.containers.join("/"),
        ),
        (
            "video_codecs",
            !d.video_codecs.is_empty(),
            d.video_codecs.join("/"),
        ),
        ("mezzanine", d.mezzanine, "a mezzanine file".to_string()),
        (
            "moov_first",
            d.moov_first,
            "moov atom before mdat".to_string(),
        ),
        (
            "no_letterbox_and_pillarbox",
            d.no_letterbox_and_pillarbox,
            "never both letterbox and pillarbox".to_string(),
        ),
    ] {
        if on {
            rules.push(planned(key, what, DELIVERED));
        }
    }
    if !d.lower_rungs.is_empty() {
        let r: Vec<String> = d
            .lower_rungs
            .iter()
            .map(|r| format!("{}p {}-{} kbps", r.short_side, r.min_kbps, r.max_kbps))
            .collect();
        rules.push(planned("lower_rungs", r.join(", "), DELIVERED));
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(DestinationPlan {
        name: name.to_string(),
        description: d.description.clone(),
        source: d.source.clone(),
        outputs: outputs(d, size.unwrap_or((3840, 2160))),
        rules,
    })
}

fn planned(rule: &'static str, requires: String, checked: &'static str) -> PlannedRule {
    PlannedRule {
        rule,
        requires,
        checked,
        needs: None,
    }
}

/// `short` on the short side, in the master's shape (even sizes).
fn sized((w, h): (u32, u32), short: u32) -> (u32, u32) {
    let s = w.min(h).max(1);
    let long = (u64::from(w.max(h)) * u64::from(short) / u64::from(s)) as u32 & !1;
    if w >= h {
        (long, short)
    } else {
        (short, long)
    }
}

/// The files destination `d` needs from a `master`-sized master.
fn outputs(d: &Destination, master: (u32, u32)) -> Vec<NeededOutput> {
    let container = d
        .containers
        .first()
        .cloned()
        .unwrap_or_else(|| "mp4".into());
    let codec = d
        .video_codecs
        .first()
        .cloned()
        .unwrap_or_else(|| "h264".into());
    let top_short = match (d.min_width, d.min_height) {
        (Some(w), Some(h)) => w.min(h),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => 1080,
    }
    .min(master.0.min(master.1));
    let out = |role, short, lo, hi| {
        let (width, height) = sized(master, short);
        NeededOutput {
            role,
            width,
            height,
            container: container.clone(),
            video_codec: codec.clone(),
            min_kbps: lo,
            max_kbps: hi,
            destinations: Vec::new(),
            banded_by: Vec::new(),
        }
    };
    let mut v = vec![out("top", top_short, d.top_min_kbps, d.top_max_kbps)];
    for r in &d.lower_rungs {
        v.push(out(
            "lower",
            r.short_side,
            Some(r.min_kbps),
            Some(r.max_kbps),
        ));
    }
    if d.mezzanine {
        // IAB UHD band (Digital Video / CTV Ad Format Guidelines v2.0).
        v.push(out(
            "mezzanine",
            master.0.min(master.1),
            Some(15_000),
            Some(30_000),
        ));
    }
    v
}

/// Every destination's outputs once: same size, container and codec with
/// overlapping bands are one file whose band is the intersection.
pub fn union(plans: &[DestinationPlan]) -> Vec<NeededOutput> {
    union_of(
        plans
            .iter()
            .map(|p| (p.name.as_str(), p.outputs.as_slice())),
    )
}

/// The union of what the destinations `names` need from a master of `size`
/// (width, height): what the transcode adds to the profile's outputs. A
/// name no table has is skipped (the API refused it when it was asked).
pub fn needed_for_master(
    names: &[String],
    all: &Destinations,
    size: (u32, u32),
) -> Vec<NeededOutput> {
    let per: Vec<(&str, Vec<NeededOutput>)> = names
        .iter()
        .filter_map(|n| all.get(n).map(|d| (n.as_str(), outputs(d, size))))
        .collect();
    union_of(per.iter().map(|(n, o)| (*n, o.as_slice())))
}

fn union_of<'a>(per: impl Iterator<Item = (&'a str, &'a [NeededOutput])>) -> Vec<NeededOutput> {
    let mut all: Vec<NeededOutput> = Vec::new();
    for (name, outputs) in per {
        for o in outputs {
            let banded = o.min_kbps.is_some() || o.max_kbps.is_some();
            let lo = |x: &NeededOutput| x.min_kbps.unwrap_or(0);
            let hi = |x: &NeededOutput| x.max_kbps.unwrap_or(u32::MAX);
            let same = all.iter_mut().find(|u| {
                u.width == o.width
                    && u.height == o.height
                    && u.container == o.container
                    && u.video_codec == o.video_codec
                    && lo(u).max(lo(o)) <= hi(u).min(hi(o))
            });
            match same {
                Some(u) => {
                    u.min_kbps = u.min_kbps.max(o.min_kbps);
                    u.max_kbps = match (u.max_kbps, o.max_kbps) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    if u.role != o.role && o.role == "mezzanine" {
                        u.role = "mezzanine";
                    }
                    if !u.destinations.iter().any(|d| d == name) {
                        u.destinations.push(name.to_string());
                    }
                    if banded && !u.banded_by.iter().any(|d| d == name) {
                        u.banded_by.push(name.to_string());
                    }
                }
                None => {
                    let mut o = o.clone();
                    o.destinations = vec![name.to_string()];
                    o.banded_by = if banded {
                        vec![name.to_string()]
                    } else {
                        Vec::new()
                    };
                    all.push(o);
                }
            }
        }
    }
    all
}
