//! Bitrate floors met by constant-rate files, and AAC coded left/right for
//! audio floors: what [`HealPlan`] records of them and how they measure
//! again.

use super::{HealPlan, Planned, What};
use crate::destinations::verdict::{in_band, DeliveredFile};
use crate::destinations::Destinations;
use crate::media::ladder::Rendition;
use crate::media::profile::OutputKind;

/// How one output of the transcode's plan was encoded, as the floor
/// record reads it ([`Encoded::of`] the plan's rendition).
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub name: String,
    pub mp4: bool,
    pub width: u32,
    pub height: u32,
    pub rate: RateControl,
    /// Made for the destinations' bands, not by the profile.
    pub added: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateControl {
    /// A quality target under a VBV cap.
    Crf { crf: u8, cap_kbps: u32 },
    /// An average bitrate target under a VBV cap.
    Average { kbps: u32, cap_kbps: u32 },
    /// Constant rate with HRD filler (x264 `nal-hrd=cbr`): lands on `kbps`
    /// for any content.
    Constant { kbps: u32 },
}

impl Encoded {
    /// `r` as the transcode's arguments encode it (a rung with a floor is
    /// constant-rate with filler on x264; `media::transcode::args`).
    pub fn of(r: &Rendition, added: bool) -> Encoded {
        let rate = match (r.min_bitrate_kbps, r.bitrate_kbps) {
            (Some(_), Some(kbps)) if r.kind != OutputKind::Webm => RateControl::Constant { kbps },
            (_, Some(kbps)) => RateControl::Average {
                kbps,
                cap_kbps: r.maxrate_kbps,
            },
            (_, None) => RateControl::Crf {
                crf: r.crf.unwrap_or(23),
                cap_kbps: r.maxrate_kbps,
            },
        };
        Encoded {
            name: r.name.clone(),
            mp4: r.kind == OutputKind::Mp4,
            width: r.width,
            height: r.height,
            rate,
            added,
        }
    }

    fn how(&self) -> String {
        match self.rate {
            RateControl::Crf { crf, cap_kbps } => format!("CRF {crf} capped at {cap_kbps} kbps"),
            RateControl::Average { kbps, cap_kbps } => {
                format!("average {kbps} kbps capped at {cap_kbps} kbps")
            }
            RateControl::Constant { kbps } => format!("constant {kbps} kbps"),
        }
    }
}

/// A floor's band, as the record writes it.
fn band_text(lo: u32, hi: Option<u32>) -> String {
    match hi {
        Some(hi) => format!("{lo}-{hi} kbps"),
        None => format!(">= {lo} kbps"),
    }
}

/// The config key a needed output's floor comes from.
fn floor_rule(role: &str) -> &'static str {
    match role {
        "lower" => "lower_rungs",
        "mezzanine" => "mezzanine",
        _ => "top_min_kbps",
    }
}

impl HealPlan {
    /// With the bitrate floors of `names` on the master `probe`
    /// describes, each met by a file of `encoded` (the transcode's plan):
    /// one correction per floor rule and file, naming the destinations
    /// whose floor it meets. A floor no constant-rate file meets (one in a
    /// container or codec reelay adds no file for) is recorded as not
    /// corrected.
    pub fn with_floors(
        mut self,
        names: &[String],
        all: &Destinations,
        probe: &crate::media::probe::Probe,
        encoded: &[Encoded],
    ) -> HealPlan {
        let Some(v) = probe.video.as_ref() else {
            return self;
        };
        let mut floors: Vec<Planned> = Vec::new();
        for name in names.iter().filter(|n| all.contains_key(*n)) {
            let needs = crate::destinations::preflight::needed_for_master(
                std::slice::from_ref(name),
                all,
                (v.width, v.height),
            );
            for n in needs {
                let Some(lo) = n.min_kbps else { continue };
                let size = (n.width, n.height);
                let meets = encoded.iter().find(|e| {
                    e.mp4
                        && (e.width, e.height) == size
                        && matches!(e.rate, RateControl::Constant { kbps }
                            if kbps >= lo && n.max_kbps.is_none_or(|hi| kbps <= hi))
                });
                let rule = floor_rule(n.role);
                let file = meets.map(|e| e.name.clone());
                if let Some(same) = floors.iter_mut().find(|p| {
                    p.rule == rule && matches!(&p.what, What::Floor { file: f, .. } if *f == file)
                }) {
                    if !same.destinations.contains(name) {
                        same.destinations.push(name.clone());
                    }
                    // The record shows the strictest band the file serves:
                    // the one that made it necessary.
                    if let What::Floor {
                        lo: was_lo,
                        hi: was_hi,
                        ..
                    } = &mut same.what
                    {
                        if lo > *was_lo {
                            let (old, new) =
                                (band_text(*was_lo, *was_hi), band_text(lo, n.max_kbps));
                            same.measured = same.measured.replacen(&old, &new, 1);
                            (*was_lo, *was_hi) = (lo, n.max_kbps);
                        }
                    }
                    continue;
                }
                let unfloored: Vec<&Encoded> = encoded
                    .iter()
                    .filter(|e| {
                        !e.added
                            && (e.width, e.height) == size
                            && !matches!(e.rate, RateControl::Constant { .. })
                    })
                    .collect();
                let band = band_text(lo, n.max_kbps);
                let measured = match (meets, unfloored.is_empty()) {
                    (Some(e), _) if !e.added => {
                        format!(
                            "{band} at {}x{}; the profile's {} is {}",
                            n.width,
                            n.height,
                            e.name,
                            e.how()
                        )
                    }
                    (_, true) => format!(
                        "{band} at {}x{}; the profile has no file at that size",
                        n.width, n.height
                    ),
                    (_, false) => {
                        let each: Vec<String> = unfloored
                            .iter()
                            .map(|e| format!("{} {}", e.name, e.how()))
                            .collect();
                        format!(
                            "{band} at {}x{}; the profile's {}",
                            n.width,
                            n.height,
                            each.join(", ")
                        )
                    }
                };
                let action = match meets {
                    Some(e) => {
                        let kbps = match e.rate {
                            RateControl::Constant { kbps } => kbps,
                            _ => 0,
                        };
                        let how = format!(
                            "H.264 at a constant {kbps} kbps with filler (nal-hrd=cbr), so any content reaches the floor"
                        );
                        if e.added {
                            format!("added {}: {how}", e.name)
                        } else {
                            format!("kept the profile's {}: {how}", e.name)
                        }
                    }
                    None => format!(
                        "not corrected: reelay adds constant-rate files as H.264 MP4 only (wanted {} {})",
                        n.container, n.video_codec
                    ),
                };
                floors.push(Planned {
                    rule,
                    destinations: vec![name.clone()],
                    measured,
                    applied: meets.is_some(),
                    action,
                    what: What::Floor {
                        file,
                        lo,
                        hi: n.max_kbps,
                        unfloored: unfloored.iter().map(|e| e.name.clone()).collect(),
                    },
                });
            }
        }
        self.planned.extend(floors);
        self
    }
}

/// A floor's result on `files`: the file meant for it at its measured
/// rate, and whether that is inside the band; the profile's own files at
/// the size, measured, are added to `measured`.
pub(super) fn floor_result(
    files: &[DeliveredFile],
    file: &Option<String>,
    lo: u32,
    hi: Option<u32>,
    unfloored: &[String],
    measured: &mut String,
) -> (String, bool) {
    let kbps = |name: &str| files.iter().find(|f| f.name == name).map(|f| f.video_kbps);
    let before: Vec<String> = unfloored
        .iter()
        .filter_map(|n| Some(format!("{n} {:.0} kbps", kbps(n)?)))
        .collect();
    if !before.is_empty() {
        measured.push_str(&format!(" (measured {})", before.join(", ")));
    }
    match file.as_deref().map(|n| (n, kbps(n))) {
        Some((n, Some(k))) => (format!("{n} {k:.0} kbps"), in_band(k, Some(lo), hi)),
        _ => (String::new(), false),
    }
}

/// The L/R coding's result: every delivered AAC track's rate, passing when
/// each destination's floor is met by some track (a file under it is left
/// out of that buyer's set by its verdict).
pub(super) fn aac_result(files: &[DeliveredFile], floors: &[(String, u32)]) -> (String, bool) {
    let aac: Vec<(&str, f64)> = files
        .iter()
        .filter_map(|f| {
            let a = f.audio.as_ref().filter(|a| a.codec == "aac")?;
            Some((f.name.as_str(), a.kbps?))
        })
        .collect();
    (
        super::distinct(aac.iter().map(|(n, k)| format!("{n} {k:.0} kbps"))),
        floors
            .iter()
            .all(|(_, floor)| aac.iter().any(|(_, k)| in_band(*k, Some(*floor), None))),
    )
}
