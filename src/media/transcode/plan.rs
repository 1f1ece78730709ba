//! Which outputs a profile asks of a given master, and how a remediation
//! pass raises their quality. Lives beside the transcode because the plan is
//! only ever read by it; the caller resolves the profile by name.

use super::TranscodePlan;
use crate::media::ladder::Rendition;
use crate::media::level::H264Level;
use crate::media::probe::Probe;
use crate::media::profile::OutputKind;
use crate::media::profile::ProfileSettings;
use crate::media::profile::{default_outputs, resolve};
use crate::media::stills::StillsPlan;
use crate::media::MediaConfig;

/// The plan for `profile`'s outputs on this master. A profile that lists no
/// outputs gets the default ladder.
pub fn plan_for(
    probe: &Probe,
    profile: &ProfileSettings,
    media: &MediaConfig,
) -> Result<TranscodePlan, String> {
    let video = probe
        .video
        .as_ref()
        .ok_or_else(|| "the master has no video stream".to_owned())?;
    let fps = Some(video.fps).filter(|f| *f > 0.0).unwrap_or(30.0);
    let renditions = if profile.outputs.is_empty() {
        resolve(&default_outputs(), video.width, video.height, fps)
    } else {
        resolve(&profile.outputs, video.width, video.height, fps)
    };
    let mut plan = TranscodePlan::for_master(probe, renditions, media);
    plan.stills = Some(StillsPlan::for_master(&profile.stills, probe)?);
    Ok(plan)
}

/// An output a buyer's bitrate band asks for, in the transcode's terms (the
/// stage turns the destinations' needs into these): an H.264 MP4 of this
/// size whose average video bitrate must land in the band.
#[derive(Debug, Clone, PartialEq)]
pub struct BandedOutput {
    pub width: u32,
    pub height: u32,
    pub min_kbps: Option<u32>,
    pub max_kbps: Option<u32>,
    pub audio_kbps: u32,
}

/// The rate an H.264 rendition is sure to deliver: a rung with a floor is
/// encoded at constant rate with filler (`args`), so it lands on its target;
/// any other only has its VBV ceiling.
fn sure_band(r: &Rendition) -> (Option<u32>, u32) {
    match (r.min_bitrate_kbps, r.bitrate_kbps) {
        (Some(_), Some(b)) => (Some(b), b),
        _ => (None, r.maxrate_kbps),
    }
}

/// Whether `r` is a file that lands in `o`'s band for any content.
fn covers(r: &Rendition, o: &BandedOutput) -> bool {
    let (lo, hi) = sure_band(r);
    r.kind == OutputKind::Mp4
        && (r.width, r.height) == (o.width, o.height)
        && o.min_kbps.is_none_or(|m| lo.is_some_and(|lo| lo >= m))
        && o.max_kbps.is_none_or(|m| hi <= m)
}

/// Adds to `plan`, in the same one pass, an H.264 MP4 for each banded output
/// no rendition already lands in: a floor is met at constant rate with
/// filler 10% above it (below the ceiling), a ceiling alone with a capped
/// average at 80% of it. Returns the names added, in order.
pub fn add_banded(plan: &mut TranscodePlan, outputs: &[BandedOutput]) -> Vec<String> {
    let mut added = Vec::new();
    for o in outputs {
        if plan.renditions.iter().any(|r| covers(r, o)) {
            continue;
        }
        let target = match (o.min_kbps, o.max_kbps) {
            (Some(lo), Some(hi)) => (lo + lo / 10).min(hi - hi / 20).max(lo),
            (Some(lo), None) => lo + lo / 10,
            (None, Some(hi)) => hi - hi / 5,
            (None, None) => continue,
        };
        let maxrate = o.max_kbps.unwrap_or(target.saturating_mul(2));
        let mut name = format!("{}p-{target}k", o.width.min(o.height));
        while plan.renditions.iter().any(|r| r.name == name) {
            name.push('x');
        }
        plan.renditions.push(Rendition {
            name: name.clone(),
            kind: OutputKind::Mp4,
            width: o.width,
            height: o.height,
            crop: None,
            crf: None,
            bitrate_kbps: Some(target),
            maxrate_kbps: maxrate,
            // Half a second of the rate, as the profiles' constant-rate rungs.
            bufsize_kbps: if o.min_kbps.is_some() {
                target / 2
            } else {
                target
            },
            min_bitrate_kbps: o.min_kbps,
            profile: "high".into(),
            level: Some(H264Level::lowest_for(o.width, o.height, plan.fps, maxrate)),
            keyframe_secs: plan.renditions.first().map_or(2.0, |r| r.keyframe_secs),
            audio_bitrate_kbps: o.audio_kbps,
        });
        added.push(name);
    }
    added
}

/// Raises a plan's quality for a remediation pass: `boost` steps of 4 CRF
/// lower (or a 50% higher target bitrate) and 50% more VBV headroom each,
/// with the H.264 level raised to fit. A rung with a floor keeps its band:
/// its rate rises up to the band's top (`maxrate_kbps`), never past it.
pub fn boost_plan(plan: &mut TranscodePlan, boost: u8) {
    if boost == 0 {
        return;
    }
    let scale = 1.0 + 0.5 * boost as f64;
    let up = |v: u32| (v as f64 * scale) as u32;
    for r in &mut plan.renditions {
        r.crf = r.crf.map(|c| c.saturating_sub(4 * boost).max(10));
        if r.min_bitrate_kbps.is_some() {
            let top = r.maxrate_kbps;
            r.bitrate_kbps = r.bitrate_kbps.map(|b| up(b).min(top));
            r.bufsize_kbps = up(r.bufsize_kbps).min(top);
            continue;
        }
        r.bitrate_kbps = r.bitrate_kbps.map(up);
        r.maxrate_kbps = up(r.maxrate_kbps);
        r.bufsize_kbps = up(r.bufsize_kbps);
        if r.kind.is_h264() {
            let needed = H264Level::lowest_for(r.width, r.height, plan.fps, r.maxrate_kbps);
            r.level = r.level.max(Some(needed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::media::ladder::default_ladder;
    use crate::media::profile::OutputKind;

    fn plan() -> TranscodePlan {
        TranscodePlan {
            renditions: default_ladder(3840, 2160),
            poster_width: 1280,
            poster_at_secs: 1.0,
            has_audio: true,
            fps: 24.0,
            preset: "veryfast".into(),
            threads: 0,
            audio_filter: None,
            stills: None,
            analysis: None,
            picture: Default::default(),
            references: Vec::new(),
            conform: Default::default(),
        }
    }

    fn probe(w: u32, h: u32) -> Probe {
        serde_json::from_value(serde_json::json!({
            "format_name": "mov", "duration_secs": 5.0, "size_bytes": 1, "bit_rate": null,
            "video": {"codec": "h264", "profile": null, "level": null, "width": w,
                      "height": h, "pix_fmt": null, "fps": 24.0, "nb_frames": null},
            "audio": null
        }))
        .unwrap()
    }

    #[test]
    fn plans_follow_the_requested_profile_with_stills() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let settings = Settings::load_from(&dir, "test").unwrap();
        let plan = |profile: &str, w, h| {
            let p = settings.require_profile(profile).unwrap();
            plan_for(&probe(w, h), p, &settings.media)
        };
        let names = |profile: &str, w, h| -> Vec<String> {
            let plan = plan(profile, w, h).unwrap();
            assert!(plan.stills.is_some(), "{profile}");
            plan.renditions.into_iter().map(|r| r.name).collect()
        };
        assert_eq!(names("default", 3840, 2160), ["1080p", "720p", "480p"]);
        // Broadcast profiles carry a CTV-grade 1080p (15-30 Mbps), not the web ladder.
        assert_eq!(names("broadcast-eu", 3840, 2160), ["1080p", "720p"]);
        assert_eq!(names("ctv", 3840, 2160), ["1080p", "720p", "2160p"]);
        assert_eq!(names("ctv", 1920, 1080), ["1080p", "720p"]);
        assert_eq!(names("social", 3840, 2160), ["vertical", "square"]);
        assert_eq!(names("social", 1920, 1080), ["square"]);
        let web = plan("web", 2880, 2880).unwrap();
        let kinds: Vec<OutputKind> = web.renditions.iter().map(|r| r.kind).collect();
        assert_eq!(kinds.iter().filter(|k| **k == OutputKind::Hls).count(), 3);
        assert_eq!(kinds.iter().filter(|k| **k == OutputKind::Webm).count(), 1);
        // An unknown name is now the caller's to refuse, when it resolves the profile.
        assert!(settings
            .require_profile("nope")
            .unwrap_err()
            .to_string()
            .contains("unknown profile"));
        let mut no_video = probe(1920, 1080);
        no_video.video = None;
        let default = settings.require_profile("default").unwrap();
        assert!(plan_for(&no_video, default, &settings.media).is_err());
    }

    fn band(w: u32, h: u32, min: Option<u32>, max: Option<u32>) -> BandedOutput {
        BandedOutput {
            width: w,
            height: h,
            min_kbps: min,
            max_kbps: max,
            audio_kbps: 192,
        }
    }

    #[test]
    fn a_band_no_rendition_is_sure_to_reach_gets_its_own_constant_rate_file_once() {
        let mut p = plan();
        // The default 1080p is CRF under an 8 Mb/s cap: it cannot promise
        // 15 Mb/s, and nothing promises any floor at 720p either.
        let ttd = band(1920, 1080, Some(15_000), Some(30_000));
        let added = add_banded(
            &mut p,
            &[ttd.clone(), band(1280, 720, Some(2000), Some(5000))],
        );
        assert_eq!(added, ["1080p-16500k", "720p-2200k"]);
        let r = p
            .renditions
            .iter()
            .find(|r| r.name == "1080p-16500k")
            .unwrap();
        assert_eq!(
            (r.kind, r.width, r.height, r.crf, r.bitrate_kbps),
            (OutputKind::Mp4, 1920, 1080, None, Some(16_500))
        );
        assert_eq!((r.min_bitrate_kbps, r.maxrate_kbps), (Some(15_000), 30_000));
        let level = r.level.unwrap();
        assert_eq!(
            level.max(H264Level::lowest_for(1920, 1080, 24.0, 30_000)),
            level
        );
        // Asked again, the file now there covers it: nothing is made twice.
        assert!(add_banded(&mut p, &[ttd]).is_empty());
        // A ceiling the CRF rung's cap already keeps needs no new file; a
        // band without a floor or ceiling asks for nothing.
        let n = p.renditions.len();
        assert!(add_banded(&mut p, &[band(1920, 1080, None, Some(10_000))]).is_empty());
        assert!(add_banded(&mut p, &[band(640, 360, None, None)]).is_empty());
        // A ceiling under the cap: a capped average at 80% of it.
        assert_eq!(
            add_banded(&mut p, &[band(1920, 1080, None, Some(6000))]),
            ["1080p-4800k"]
        );
        assert_eq!(p.renditions.len(), n + 1);
        let capped = p.renditions.last().unwrap();
        assert_eq!((capped.min_bitrate_kbps, capped.maxrate_kbps), (None, 6000));
        // A tight band: the floor plus 10% would pass the ceiling less 5%.
        let tight = add_banded(&mut p, &[band(854, 480, Some(700), Some(750))]);
        assert_eq!(tight, ["480p-713k"]);
    }

    #[test]
    fn a_boost_keeps_a_banded_rung_inside_its_band() {
        let mut p = plan();
        add_banded(&mut p, &[band(1920, 1080, Some(15_000), Some(30_000))]);
        boost_plan(&mut p, 1);
        let r = p
            .renditions
            .iter()
            .find(|r| r.name == "1080p-16500k")
            .unwrap();
        assert_eq!((r.bitrate_kbps, r.maxrate_kbps), (Some(24_750), 30_000));
        boost_plan(&mut p, 3);
        let r = p
            .renditions
            .iter()
            .find(|r| r.name == "1080p-16500k")
            .unwrap();
        assert_eq!(r.bitrate_kbps, Some(30_000), "never past the band's top");
    }

    #[test]
    fn a_boost_lowers_crf_and_raises_the_bitrate_cap_within_a_valid_level() {
        let base = plan();
        let mut boosted = plan();
        boost_plan(&mut boosted, 1);
        for (b, r) in base.renditions.iter().zip(&boosted.renditions) {
            assert_eq!(r.crf, b.crf.map(|c| c - 4), "{}", r.name);
            assert_eq!(r.maxrate_kbps, b.maxrate_kbps * 3 / 2, "{}", r.name);
            assert!(r.bufsize_kbps > b.bufsize_kbps);
            let needed = H264Level::lowest_for(r.width, r.height, 24.0, r.maxrate_kbps);
            let level = r.level.expect("an H.264 rendition has a level");
            assert_eq!(
                level.max(needed),
                level,
                "{}: level {level} too low",
                r.name,
            );
        }
        let mut same = plan();
        boost_plan(&mut same, 0);
        assert_eq!(same.renditions[0].crf, base.renditions[0].crf);
    }
}
