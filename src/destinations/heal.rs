//! Healing for buyers: what the one transcode corrects so the delivered
//! files meet the asset's destinations where the master does not, and the
//! record of each correction (what the master measured, what was changed,
//! what the delivered files measure again), as file-QC tools warn, fail or
//! correct per rule.
//!
//! - Frame rate: one rate for the whole set, the one nearest the master's
//!   that every destination of the asset takes (24 fps for Roku becomes
//!   24000/1001 with ffmpeg's `fps` filter, which keeps the timestamps and
//!   so the duration and A/V sync). Destinations that share no rate are
//!   refused at preflight ([`shared_rate`]); a master that arrives at such a
//!   rate anyway is recorded as not corrected, never guessed.
//! - Duration: a master that overruns an exact slot (`duration_slots_secs`)
//!   by at most [`TRIM_MAX_FRAMES`] frames is trimmed to the slot, when every
//!   destination takes the slot. Nothing is ever padded: a master short of a
//!   slot is left as it is (within the slot's tolerance it passes).
//! - Audio: every output is 48 kHz stereo (the transcode's audio chain);
//!   where a destination's rate or channel rule needs it, that is recorded.
//! - Loudness: normalisation (the profile's) is recorded where a
//!   destination sets a target.
//! - Bitrate floors: each floor a destination puts on a size (its top
//!   rung's `top_min_kbps`, a `lower_rungs` band, the mezzanine's) is met by
//!   a constant-rate H.264 MP4 with filler, one the profile has or one the
//!   transcode adds; recorded with the profile's own file at that size, the
//!   file that meets it, and that file's measured rate ([`HealPlan::with_floors`]).
//! - Audio floors: AAC is coded left/right (`-aac_ms 0`) where a
//!   destination sets `audio_min_kbps` (mid/side would spend almost nothing
//!   on a near-mono mix's side channel and land under the floor); recorded
//!   with every delivered AAC track's rate.
//!
//! Pure: the stages call [`plan`] with the master's facts (the transcode to
//! conform, QC to hold the renditions to it) and [`record`] with what QC
//! measured.

mod floors;

use super::verdict::Delivered;
use super::{Destination, Destinations};
use crate::policy::{Correction, Healed};
pub use floors::{Encoded, RateControl};

/// A master at most this many frames longer than a slot is trimmed to it.
pub const TRIM_MAX_FRAMES: f64 = 2.0;

/// The rates a buyer that only caps the rate (`max_frame_rate`) is offered.
const STANDARD_RATES: [f64; 8] = [23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0];

/// Every output's audio after the transcode's audio chain.
const DELIVERED_SAMPLE_RATE: u32 = 48_000;
const DELIVERED_CHANNELS: u32 = 2;

/// What the plan reads of the master.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Master {
    /// The rate the master is delivered at without a conform.
    pub fps: f64,
    pub duration_secs: f64,
    /// (channels, sample rate) of its audio.
    pub audio: Option<(u32, u32)>,
}

impl Master {
    /// From the arrival probe; None without a video stream.
    pub fn of(probe: &crate::media::probe::Probe) -> Option<Master> {
        let v = probe.video.as_ref()?;
        Some(Master {
            fps: crate::media::transcode::delivery_fps(v),
            duration_secs: probe.duration_secs,
            audio: probe.audio.as_ref().map(|a| (a.channels, a.sample_rate)),
        })
    }
}

/// A frame rate as ffmpeg's rational: 23.976 is 24000/1001.
pub fn rational(fps: f64) -> (u32, u32) {
    let whole = fps.round();
    if (fps - whole).abs() < 0.005 {
        return (whole as u32, 1);
    }
    let ntsc = (fps * 1.001).round();
    if (fps - ntsc / 1.001).abs() < 0.005 {
        return (ntsc as u32 * 1000, 1001);
    }
    ((fps * 1000.0).round() as u32, 1000)
}

/// The rate every destination in `dests` takes, nearest `fps` (the lower
/// one on a tie): `Ok(None)` when they all take `fps` itself, `Err` naming
/// each destination's rates when they share none.
pub fn shared_rate(dests: &[(&str, &Destination)], fps: f64) -> Result<Option<f64>, String> {
    if dests.iter().all(|(_, d)| d.accepts_frame_rate(fps)) {
        return Ok(None);
    }
    let mut candidates: Vec<f64> = dests
        .iter()
        .flat_map(|(_, d)| d.frame_rates.iter().copied())
        .collect();
    if candidates.is_empty() {
        candidates = STANDARD_RATES.to_vec();
    }
    candidates.sort_by(f64::total_cmp);
    candidates
        .into_iter()
        .filter(|r| dests.iter().all(|(_, d)| d.accepts_frame_rate(*r)))
        .min_by(|a, b| (a - fps).abs().total_cmp(&(b - fps).abs()))
        .map(Some)
        .ok_or_else(|| {
            let each: Vec<String> = dests
                .iter()
                .map(|(n, d)| format!("{n} takes {}", rates_text(d)))
                .collect();
            format!(
                "frame_rates: the destinations share no frame rate to conform {fps} fps to ({})",
                each.join("; ")
            )
        })
}

fn rates_text(d: &Destination) -> String {
    let mut r: Vec<String> = d.frame_rates.iter().map(|f| f.to_string()).collect();
    if let Some(m) = d.max_frame_rate {
        r.push(format!("at most {m}"));
    }
    if r.is_empty() {
        "any rate".into()
    } else {
        format!("{} fps", r.join(", "))
    }
}

/// The loudness every destination in `names` with a target takes, for a
/// profile that sets none: the middle of the window their targets and
/// tolerances share (Roku's -23 +/- 1 and IAB CTV's -24 +/- 2 give -23),
/// with the lowest true-peak cap. `Ok(None)`: none sets a target; `Err`:
/// their windows do not overlap (nothing is normalised; the verdicts say).
pub fn loudness_target(
    names: &[String],
    all: &Destinations,
) -> Result<Option<(f64, Option<f64>)>, String> {
    let with: Vec<(&String, f64, f64)> = names
        .iter()
        .filter_map(|n| {
            let d = all.get(n)?;
            Some((
                n,
                d.loudness_target_lufs?,
                d.loudness_tolerance_lu.unwrap_or(0.0),
            ))
        })
        .collect();
    if with.is_empty() {
        return Ok(None);
    }
    let lo = with
        .iter()
        .map(|(_, t, tol)| t - tol)
        .fold(f64::MIN, f64::max);
    let hi = with
        .iter()
        .map(|(_, t, tol)| t + tol)
        .fold(f64::MAX, f64::min);
    if lo > hi + 1e-9 {
        let each: Vec<String> = with
            .iter()
            .map(|(n, t, tol)| format!("{n} {t} +/- {tol} LU"))
            .collect();
        return Err(format!(
            "loudness_target_lufs: the destinations' loudness windows do not overlap ({})",
            each.join("; ")
        ));
    }
    let peak = names
        .iter()
        .filter_map(|n| all.get(n)?.true_peak_max_dbtp)
        .reduce(f64::min);
    Ok(Some(((lo + hi) / 2.0, peak)))
}

/// The slot a master `secs` long at `fps` is trimmed to: the longest slot
/// it overruns by at most [`TRIM_MAX_FRAMES`] frames that every destination
/// takes.
pub fn trim_slot(dests: &[(&str, &Destination)], secs: f64, fps: f64) -> Option<f64> {
    let most = TRIM_MAX_FRAMES / fps.max(1.0) + 0.001;
    dests
        .iter()
        .flat_map(|(_, d)| d.duration_slots_secs.iter().copied())
        .filter(|s| secs - s > 0.0005 && secs - s <= most)
        .filter(|s| dests.iter().all(|(_, d)| d.accepts_duration(*s)))
        .max_by(f64::total_cmp)
}

/// What the transcode corrects for the destinations, and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealPlan {
    /// The rate every output is conformed to.
    pub fps: Option<f64>,
    /// The slot every output is trimmed to.
    pub trim_secs: Option<f64>,
    /// A destination sets an audio bitrate floor (AAC is then coded L/R).
    pub audio_floor: bool,
    pub planned: Vec<Planned>,
}

/// One planned correction (see [`Correction`]), before it is measured again.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub rule: &'static str,
    pub destinations: Vec<String>,
    pub measured: String,
    pub action: String,
    pub applied: bool,
    what: What,
}

#[derive(Debug, Clone, PartialEq)]
enum What {
    FrameRate(Option<f64>),
    Trim(f64),
    SampleRate,
    Channels(u32),
    /// `file` is meant to land in `lo..hi`; `unfloored` are the profile's
    /// files at that size without a floor (their measured rate is what the
    /// buyer would have got).
    Floor {
        file: Option<String>,
        lo: u32,
        hi: Option<u32>,
        unfloored: Vec<String>,
    },
    /// AAC coded L/R for these (destination, floor) pairs.
    AacLr(Vec<(String, u32)>),
}

impl HealPlan {
    /// The plan for `names` on the master `probe` describes (nothing
    /// without a video stream).
    pub fn for_master(
        names: &[String],
        all: &Destinations,
        probe: &crate::media::probe::Probe,
    ) -> HealPlan {
        Master::of(probe).map_or_else(HealPlan::default, |m| plan(names, all, m))
    }

    /// The per-output conform the transcode applies.
    pub fn conform(&self) -> crate::media::transcode::OutputConform {
        crate::media::transcode::OutputConform {
            fps: self.fps.map(rational),
            trim_secs: self.trim_secs,
            aac_lr: self.audio_floor,
        }
    }

    /// What the conform changes, for the transcode's history note: the
    /// frame rate from and to, the trim to a slot, and for whom. None:
    /// nothing is conformed.
    pub fn note(&self) -> Option<String> {
        let parts: Vec<String> = self
            .planned
            .iter()
            .filter_map(|p| match p.what {
                What::FrameRate(Some(to)) => Some(format!(
                    "frame rate conformed from {} to {to:.3} fps for {}",
                    p.measured,
                    p.destinations.join(", ")
                )),
                What::Trim(slot) => Some(format!(
                    "trimmed from {} to the {slot} s slot for {}",
                    p.measured,
                    p.destinations.join(", ")
                )),
                _ => None,
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// What the report holds the renditions to.
    pub fn healed(&self) -> Healed {
        Healed {
            fps: self.fps,
            trim_secs: self.trim_secs,
        }
    }
}

/// The corrections the destinations `names` need on `master`. A name no
/// table has is skipped (the verdict says it is not configured).
pub fn plan(names: &[String], all: &Destinations, master: Master) -> HealPlan {
    let dests: Vec<(&str, &Destination)> = names
        .iter()
        .filter_map(|n| all.get(n).map(|d| (n.as_str(), d)))
        .collect();
    let mut out = HealPlan::default();
    let who = |keep: &dyn Fn(&Destination) -> bool| -> Vec<String> {
        dests
            .iter()
            .filter(|(_, d)| keep(d))
            .map(|(n, _)| n.to_string())
            .collect()
    };
    let refusing = who(&|d| !d.accepts_frame_rate(master.fps));
    if !refusing.is_empty() {
        let (action, rate) = match shared_rate(&dests, master.fps) {
            Ok(Some(r)) => {
                let (n, d) = rational(r);
                let how = if d == 1 {
                    format!("{n}")
                } else {
                    format!("{n}/{d}")
                };
                (
                    format!("conformed to {r:.3} fps (fps={how}: frames dropped or repeated, duration and A/V sync kept)"),
                    Some(r),
                )
            }
            Ok(None) => unreachable!("a destination refuses the rate"),
            Err(why) => (format!("not corrected: {why}"), None),
        };
        out.fps = rate;
        out.planned.push(Planned {
            rule: "frame_rates",
            destinations: refusing,
            measured: format!("{:.3} fps", master.fps),
            applied: rate.is_some(),
            action,
            what: What::FrameRate(rate),
        });
    }
    if let Some(slot) = trim_slot(&dests, master.duration_secs, master.fps) {
        out.trim_secs = Some(slot);
        out.planned.push(Planned {
            rule: "duration_slots_secs",
            destinations: who(&|d| !d.duration_slots_secs.is_empty()),
            measured: format!("{:.3} s", master.duration_secs),
            action: format!(
                "trimmed to the {slot} s slot ({:.3} s cut from the end; never padded)",
                master.duration_secs - slot
            ),
            applied: true,
            what: What::Trim(slot),
        });
    }
    if let Some((channels, rate)) = master.audio {
        let floors: Vec<(String, u32)> = dests
            .iter()
            .filter_map(|(n, d)| Some((n.to_string(), d.audio_min_kbps?)))
            .collect();
        out.audio_floor = !floors.is_empty();
        if out.audio_floor {
            out.planned.push(Planned {
                rule: "audio_min_kbps",
                destinations: floors.iter().map(|(n, _)| n.clone()).collect(),
                measured: format!(
                    "{channels} ch master; AAC codes stereo mid/side by default, spending almost nothing on a near-mono mix's side channel (under a floor of {} kbps)",
                    floors.iter().map(|(_, k)| *k).max().unwrap_or(0)
                ),
                action: "AAC coded left/right (-aac_ms 0), so every track reaches its bitrate".into(),
                applied: true,
                what: What::AacLr(floors),
            });
        }
        let resample =
            who(&|d| !d.audio_sample_rates.is_empty() && !d.audio_sample_rates.contains(&rate));
        if !resample.is_empty() {
            out.planned.push(Planned {
                rule: "audio_sample_rates",
                destinations: resample,
                measured: format!("{rate} Hz"),
                action: format!("resampled to {DELIVERED_SAMPLE_RATE} Hz"),
                applied: true,
                what: What::SampleRate,
            });
        }
        let upmix = who(&|d| d.audio_min_channels.is_some_and(|m| channels < m));
        if !upmix.is_empty() {
            out.planned.push(Planned {
                rule: "audio_min_channels",
                destinations: upmix,
                measured: format!("{channels} ch"),
                action: format!("mixed to {DELIVERED_CHANNELS} channels (stereo)"),
                applied: true,
                what: What::Channels(
                    dests
                        .iter()
                        .filter_map(|(_, d)| d.audio_min_channels)
                        .max()
                        .unwrap_or(DELIVERED_CHANNELS),
                ),
            });
        }
    }
    out
}

/// Loudness normalisation as it ran: the master's integrated loudness,
/// the target, and the delivered audio's, measured again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalised {
    pub before_lufs: f64,
    pub target_lufs: f64,
    pub after_lufs: Option<f64>,
}

fn distinct(values: impl Iterator<Item = String>) -> String {
    let mut v: Vec<String> = Vec::new();
    for x in values {
        if !v.contains(&x) {
            v.push(x);
        }
    }
    v.join(", ")
}

/// Each planned correction with its result measured again on `delivered`,
/// and loudness normalisation where a destination of `names` sets a target.
pub fn record(
    plan: &HealPlan,
    names: &[String],
    all: &Destinations,
    delivered: &Delivered,
    loudness: Option<Normalised>,
) -> Vec<Correction> {
    let files = &delivered.files;
    let all_files = |ok: &dyn Fn(&super::verdict::DeliveredFile) -> bool| {
        !files.is_empty() && files.iter().all(ok)
    };
    let mut out: Vec<Correction> = plan
        .planned
        .iter()
        .map(|p| {
            let mut measured = p.measured.clone();
            let (result, passed) = match &p.what {
                What::FrameRate(target) => (
                    distinct(files.iter().map(|f| format!("{:.3} fps", f.fps))),
                    target.is_some_and(|t| all_files(&|f| (f.fps - t).abs() <= 0.01)),
                ),
                What::Trim(slot) => (
                    distinct(files.iter().map(|f| format!("{:.3} s", f.duration_secs))),
                    // Whole frames: within one frame of the slot.
                    all_files(&|f| (f.duration_secs - slot).abs() <= 1.0 / f.fps.max(1.0) + 0.001),
                ),
                What::Floor {
                    file,
                    lo,
                    hi,
                    unfloored,
                } => floors::floor_result(files, file, *lo, *hi, unfloored, &mut measured),
                What::AacLr(floors) => floors::aac_result(files, floors),
                What::SampleRate => (
                    distinct(
                        files
                            .iter()
                            .filter_map(|f| f.audio.as_ref())
                            .map(|a| format!("{} Hz", a.sample_rate)),
                    ),
                    all_files(&|f| {
                        f.audio
                            .as_ref()
                            .is_some_and(|a| a.sample_rate == DELIVERED_SAMPLE_RATE)
                    }),
                ),
                What::Channels(min) => (
                    distinct(
                        files
                            .iter()
                            .filter_map(|f| f.audio.as_ref())
                            .map(|a| format!("{} ch", a.channels)),
                    ),
                    all_files(&|f| f.audio.as_ref().is_some_and(|a| a.channels >= *min)),
                ),
            };
            Correction {
                rule: p.rule.into(),
                destinations: p.destinations.clone(),
                measured,
                action: p.action.clone(),
                applied: p.applied,
                result: if result.is_empty() {
                    "no delivered file".into()
                } else {
                    result
                },
                passed,
            }
        })
        .collect();
    let targeted: Vec<(&String, &Destination)> = names
        .iter()
        .filter_map(|n| all.get(n).map(|d| (n, d)))
        .filter(|(_, d)| d.loudness_target_lufs.is_some())
        .collect();
    if let (Some(n), false) = (loudness, targeted.is_empty()) {
        let passed = n.after_lufs.is_some_and(|after| {
            targeted.iter().all(|(_, d)| {
                let t = d.loudness_target_lufs.unwrap_or(after);
                (after - t).abs() <= d.loudness_tolerance_lu.unwrap_or(0.0) + 0.05
            })
        });
        out.push(Correction {
            rule: "loudness_target_lufs".into(),
            destinations: targeted.iter().map(|(n, _)| n.to_string()).collect(),
            measured: format!("{:.1} LUFS", n.before_lufs),
            action: format!("normalised to {} LUFS (loudnorm)", n.target_lufs),
            applied: true,
            result: n
                .after_lufs
                .map_or("not measured".into(), |a| format!("{a:.1} LUFS")),
            passed,
        });
    }
    out
}

#[cfg(test)]
#[path = "heal_tests.rs"]
mod tests;
