use super::*;
use crate::destinations::verdict::{DeliveredAudio, DeliveredFile};

fn shipped() -> Destinations {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    crate::config::Settings::load_from(&dir, "test")
        .unwrap()
        .destinations
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

fn master(fps: f64, secs: f64) -> Master {
    Master {
        fps,
        duration_secs: secs,
        audio: Some((2, 48_000)),
    }
}

fn file(fps: f64, secs: f64) -> DeliveredFile {
    sized("1080p", 1920, 1080, 6000.0, fps, secs)
}

fn sized(name: &str, width: u32, height: u32, kbps: f64, fps: f64, secs: f64) -> DeliveredFile {
    DeliveredFile {
        name: name.into(),
        container: "mp4".into(),
        video_codec: "h264".into(),
        width,
        height,
        fps,
        duration_secs: secs,
        video_kbps: kbps,
        size_bytes: 1,
        moov_first: true,
        audio: Some(DeliveredAudio {
            codec: "aac".into(),
            channels: 2,
            sample_rate: 48_000,
            kbps: Some(192.0),
        }),
    }
}

#[test]
fn rates_are_ffmpeg_rationals() {
    assert_eq!(rational(23.976), (24000, 1001));
    assert_eq!(rational(29.97), (30000, 1001));
    assert_eq!(rational(59.94), (60000, 1001));
    assert_eq!(rational(25.0), (25, 1));
    assert_eq!(rational(12.5), (12500, 1000));
}

#[test]
fn a_24_fps_master_for_roku_is_conformed_to_23_976_for_the_whole_set() {
    let all = shipped();
    let p = plan(&names(&["roku", "amazon-stv"]), &all, master(24.0, 15.0));
    assert_eq!(p.fps, Some(23.976));
    let c = &p.planned[0];
    assert_eq!((c.rule, c.applied), ("frame_rates", true));
    // Only roku refused 24 fps; amazon-stv takes 23.976 too.
    assert_eq!(c.destinations, ["roku"]);
    assert!(c.action.contains("fps=24000/1001"), "{}", c.action);
    // A set every destination takes at 24 fps is left alone.
    let none = plan(&names(&["iab-ctv", "amazon-stv"]), &all, master(24.0, 15.0));
    assert_eq!((none.fps, none.trim_secs), (None, None));
    assert!(none.conform().is_empty());
    // Both set an audio floor: AAC coded L/R so a near-mono master meets
    // it, the one thing planned.
    assert!(none.conform().aac_lr);
    let rules: Vec<&str> = none.planned.iter().map(|c| c.rule).collect();
    assert_eq!(rules, ["audio_min_kbps"]);
    // Measured again: every file at the conformed rate passes, one left at 24 fails.
    let ok = Delivered {
        files: vec![file(23.976, 15.015)],
        ..Default::default()
    };
    let r = record(&p, &names(&["roku"]), &all, &ok, None);
    assert_eq!(
        (r[0].measured.as_str(), r[0].result.as_str(), r[0].passed),
        ("24.000 fps", "23.976 fps", true)
    );
    let bad = Delivered {
        files: vec![file(23.976, 15.0), file(24.0, 15.0)],
        ..Default::default()
    };
    assert!(!record(&p, &names(&["roku"]), &all, &bad, None)[0].passed);
}

#[test]
fn destinations_sharing_no_rate_are_named_not_guessed() {
    let mut all = shipped();
    all.insert(
        "film".into(),
        Destination {
            source: "t".into(),
            frame_rates: vec![24.0],
            ..Default::default()
        },
    );
    let roku = &all["roku"];
    let film = &all["film"];
    let err = shared_rate(&[("roku", roku), ("film", film)], 24.0).unwrap_err();
    assert!(err.contains("roku takes 23.976, 25, 29.97") && err.contains("film takes 24 fps"));
    let p = plan(&names(&["roku", "film"]), &all, master(24.0, 15.0));
    assert_eq!(p.fps, None);
    assert!(!p.planned[0].applied && p.planned[0].action.starts_with("not corrected"));
    // A cap alone: the standard rate nearest under it.
    assert_eq!(
        shared_rate(&[("gam", &all["gam"])], 60.0).unwrap(),
        Some(30.0)
    );
}

#[test]
fn a_couple_of_frames_over_a_slot_is_trimmed_and_nothing_is_padded() {
    let all = shipped();
    let ctv = names(&["iab-ctv"]);
    // One frame over 15 s at 24 fps: trimmed to 15.
    let p = plan(&ctv, &all, master(24.0, 15.042));
    assert_eq!(p.trim_secs, Some(15.0));
    assert_eq!(p.planned[0].measured, "15.042 s");
    // Three frames over: left alone (within the slot's tolerance it passes).
    assert_eq!(plan(&ctv, &all, master(24.0, 15.125)).trim_secs, None);
    // Short of the slot: never padded.
    assert_eq!(plan(&ctv, &all, master(24.0, 14.96)).trim_secs, None);
    // Ranges only: nothing to trim to.
    assert_eq!(
        plan(&names(&["roku"]), &all, master(23.976, 15.042)).trim_secs,
        None
    );
    let r = record(
        &p,
        &ctv,
        &all,
        &Delivered {
            files: vec![file(24.0, 15.0)],
            ..Default::default()
        },
        None,
    );
    assert_eq!((r[0].result.as_str(), r[0].passed), ("15.000 s", true));
}

#[test]
fn audio_and_loudness_corrections_are_recorded_with_their_result() {
    let all = shipped();
    let ctv = names(&["iab-ctv"]);
    let mono = Master {
        audio: Some((1, 44_100)),
        ..master(24.0, 15.0)
    };
    let p = plan(&ctv, &all, mono);
    let rules: Vec<&str> = p.planned.iter().map(|c| c.rule).collect();
    assert_eq!(
        rules,
        ["audio_min_kbps", "audio_sample_rates", "audio_min_channels"]
    );
    let set = Delivered {
        files: vec![file(24.0, 15.0)],
        ..Default::default()
    };
    let n = Normalised {
        before_lufs: -16.2,
        target_lufs: -24.0,
        after_lufs: Some(-24.1),
    };
    let r = record(&p, &ctv, &all, &set, Some(n));
    assert_eq!(r.len(), 4);
    assert!(r.iter().all(|c| c.passed), "{r:#?}");
    assert_eq!(r[0].result, "1080p 192 kbps");
    assert_eq!(r[1].result, "48000 Hz");
    assert_eq!(r[2].result, "2 ch");
    assert_eq!(
        (
            r[3].rule.as_str(),
            r[3].measured.as_str(),
            r[3].result.as_str()
        ),
        ("loudness_target_lufs", "-16.2 LUFS", "-24.1 LUFS")
    );
    // Roku's -23 LUFS is not met by a -24 normalisation: recorded as failed.
    let roku = record(&p, &names(&["roku"]), &all, &set, Some(n));
    assert!(!roku.last().unwrap().passed);
}

#[test]
fn a_profile_without_a_target_takes_the_loudness_window_the_destinations_share() {
    let mut all = shipped();
    // Roku -23 +/- 1 and IAB CTV -24 +/- 2 (true peak -2) share -24..-22.
    assert_eq!(
        loudness_target(&names(&["roku", "iab-ctv"]), &all),
        Ok(Some((-23.0, Some(-2.0))))
    );
    assert_eq!(loudness_target(&names(&["ttd"]), &all), Ok(None));
    all.insert(
        "loud".into(),
        Destination {
            source: "t".into(),
            loudness_target_lufs: Some(-16.0),
            loudness_tolerance_lu: Some(1.0),
            ..Default::default()
        },
    );
    let err = loudness_target(&names(&["roku", "loud"]), &all).unwrap_err();
    assert!(
        err.contains("roku -23 +/- 1 LU") && err.contains("loud -16"),
        "{err}"
    );
}

fn probe(width: u32, height: u32) -> crate::media::probe::Probe {
    serde_json::from_value(serde_json::json!({
        "format_name": "mov,mp4", "duration_secs": 15.0, "size_bytes": 1000, "bit_rate": null,
        "video": {"codec": "h264", "profile": null, "level": null, "width": width,
                  "height": height, "pix_fmt": null, "fps": 24.0, "nb_frames": null},
        "audio": {"codec": "aac", "channels": 2, "sample_rate": 48000,
                  "channel_layout": null, "bit_rate": null}
    }))
    .unwrap()
}

fn encoded(name: &str, width: u32, height: u32, rate: RateControl, added: bool) -> Encoded {
    Encoded {
        name: name.into(),
        mp4: true,
        width,
        height,
        rate,
        added,
    }
}

#[test]
fn a_bitrate_floor_met_by_an_added_constant_rate_file_is_recorded_with_both_rates() {
    let all = shipped();
    let ttd = names(&["ttd"]);
    let crf = RateControl::Crf {
        crf: 21,
        cap_kbps: 8000,
    };
    let set = [
        encoded("1080p", 1920, 1080, crf, false),
        encoded(
            "1080p-16500k",
            1920,
            1080,
            RateControl::Constant { kbps: 16_500 },
            true,
        ),
    ];
    let p = HealPlan::for_master(&ttd, &all, &probe(1920, 1080)).with_floors(
        &ttd,
        &all,
        &probe(1920, 1080),
        &set,
    );
    let floor = p.planned.iter().find(|c| c.rule == "top_min_kbps").unwrap();
    assert_eq!(floor.destinations, ["ttd"]);
    assert_eq!(
        floor.measured,
        "15000-30000 kbps at 1920x1080; the profile's 1080p CRF 21 capped at 8000 kbps"
    );
    assert!(
        floor
            .action
            .starts_with("added 1080p-16500k: H.264 at a constant 16500 kbps with filler"),
        "{}",
        floor.action
    );
    // Measured again: the profile's file as it came out, the added one in the band.
    let delivered = |kbps| Delivered {
        files: vec![
            sized("1080p", 1920, 1080, 3100.0, 24.0, 15.0),
            sized("1080p-16500k", 1920, 1080, kbps, 24.0, 15.0),
        ],
        ..Default::default()
    };
    let r = record(&p, &ttd, &all, &delivered(16_520.0), None);
    let c = r.iter().find(|c| c.rule == "top_min_kbps").unwrap();
    assert_eq!(
        (c.result.as_str(), c.passed, c.applied),
        ("1080p-16500k 16520 kbps", true, true)
    );
    assert!(
        c.measured.ends_with("(measured 1080p 3100 kbps)"),
        "{}",
        c.measured
    );
    // An encoder that undershot the floor anyway is recorded as failed.
    let r = record(&p, &ttd, &all, &delivered(9000.0), None);
    assert!(!r.iter().find(|c| c.rule == "top_min_kbps").unwrap().passed);
    // No constant-rate file at the size: not corrected, never claimed.
    let p = HealPlan::default().with_floors(&ttd, &all, &probe(1920, 1080), &set[..1]);
    assert!(!p.planned[0].applied && p.planned[0].action.starts_with("not corrected"));
}

#[test]
fn floors_are_one_correction_per_rule_and_file_naming_every_destination_it_serves() {
    let all = shipped();
    // IAB CTV and IAB OLV share the 720p 2000-5000 band: one file, one
    // record naming both; the profile's own constant-rate 360p is kept.
    let both = names(&["iab-ctv", "iab-olv"]);
    let set = [
        encoded(
            "1080p-6600k",
            1920,
            1080,
            RateControl::Constant { kbps: 6600 },
            true,
        ),
        encoded(
            "1080p-16500k",
            1920,
            1080,
            RateControl::Constant { kbps: 16_500 },
            true,
        ),
        encoded(
            "720p-2200k",
            1280,
            720,
            RateControl::Constant { kbps: 2200 },
            true,
        ),
        encoded(
            "480p-2200k",
            852,
            480,
            RateControl::Constant { kbps: 2200 },
            true,
        ),
        encoded(
            "360p",
            640,
            360,
            RateControl::Constant { kbps: 2000 },
            false,
        ),
    ];
    let p = HealPlan::default().with_floors(&both, &all, &probe(1920, 1080), &set);
    let each: Vec<(&str, Vec<String>)> = p
        .planned
        .iter()
        .map(|c| (c.rule, c.destinations.clone()))
        .collect();
    assert_eq!(
        each,
        [
            ("top_min_kbps", names(&["iab-ctv", "iab-olv"])),
            ("lower_rungs", names(&["iab-ctv", "iab-olv"])),
            ("lower_rungs", names(&["iab-ctv", "iab-olv"])),
            ("lower_rungs", names(&["iab-ctv", "iab-olv"])),
            ("mezzanine", names(&["iab-ctv"])),
        ]
    );
    let kept = &p.planned[3];
    assert!(
        kept.action.starts_with("kept the profile's 360p"),
        "{}",
        kept.action
    );
    assert!(kept
        .measured
        .ends_with("the profile's 360p is constant 2000 kbps"));
}

#[test]
fn the_aac_left_right_coding_is_recorded_with_every_tracks_rate() {
    let all = shipped();
    let amazon = names(&["amazon-stv"]);
    let mono = Master {
        audio: Some((1, 48_000)),
        ..master(24.0, 15.0)
    };
    let p = plan(&amazon, &all, mono);
    let aac = p
        .planned
        .iter()
        .find(|c| c.rule == "audio_min_kbps")
        .unwrap();
    assert!(aac.measured.contains("mid/side") && aac.measured.contains("192 kbps"));
    assert!(aac.action.contains("-aac_ms 0"));
    let with = |kbps| {
        let mut f = file(24.0, 15.0);
        f.audio.as_mut().unwrap().kbps = Some(kbps);
        let mut small = sized("480p", 852, 480, 1500.0, 24.0, 15.0);
        small.audio.as_mut().unwrap().kbps = Some(126.0);
        Delivered {
            files: vec![f, small],
            ..Default::default()
        }
    };
    let r = record(&p, &amazon, &all, &with(195.0), None);
    let c = r.iter().find(|c| c.rule == "audio_min_kbps").unwrap();
    assert_eq!(
        (c.result.as_str(), c.passed),
        ("1080p 195 kbps, 480p 126 kbps", true)
    );
    // No track reaches Amazon's 192 kbps: recorded as failed.
    let r = record(&p, &amazon, &all, &with(150.0), None);
    assert!(
        !r.iter()
            .find(|c| c.rule == "audio_min_kbps")
            .unwrap()
            .passed
    );
    // No destination with an audio floor: nothing coded differently, nothing recorded.
    let q = plan(&names(&["ttd"]), &all, mono);
    assert!(!q.audio_floor && q.planned.is_empty());
}
