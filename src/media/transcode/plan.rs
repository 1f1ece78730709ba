//! Which outputs a profile asks of a given master, and how a remediation
//! pass raises their quality. Lives beside the transcode because the plan is
//! only ever read by it; the caller resolves the profile by name.

use super::TranscodePlan;
use crate::media::level::H264Level;
use crate::media::probe::Probe;
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

/// Raises a plan's quality for a remediation pass: `boost` steps of 4 CRF
/// lower (or a 50% higher target bitrate) and 50% more VBV headroom each,
/// with the H.264 level raised to fit.
pub fn boost_plan(plan: &mut TranscodePlan, boost: u8) {
    if boost == 0 {
        return;
    }
    let scale = 1.0 + 0.5 * boost as f64;
    let up = |v: u32| (v as f64 * scale) as u32;
    for r in &mut plan.renditions {
        r.crf = r.crf.map(|c| c.saturating_sub(4 * boost).max(10));
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
