use super::*;

fn load(extra: &str) -> anyhow::Result<crate::config::Settings> {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string("config/default.toml").unwrap();
    std::fs::write(dir.path().join("default.toml"), format!("{base}\n{extra}")).unwrap();
    crate::config::Settings::load_from(dir.path(), "none")
}

#[test]
fn the_shipped_destinations_parse_and_validate() {
    let s = load("").unwrap();
    for name in [
        "iab-ctv",
        "iab-olv",
        "roku",
        "amazon-stv",
        "prime-video",
        "gam",
        "ttd",
        "tiktok",
        "meta-reels",
    ] {
        let d = s.destinations.get(name).unwrap_or_else(|| panic!("{name}"));
        assert!(!d.source.is_empty(), "{name} cites its source");
    }
    let roku = &s.destinations["roku"];
    assert_eq!(
        roku.duration_ranges_secs[1],
        Range {
            min: 28.0,
            max: 31.0
        }
    );
    assert_eq!(roku.top_min_kbps, Some(6000));
    assert_eq!(roku.lower_rungs.len(), 3);
    assert!(roku.accepts_duration(15.0) && !roku.accepts_duration(5.0));
    assert!(!roku.accepts_frame_rate(24.0) && roku.accepts_frame_rate(25.0));
    assert!(s.destinations["amazon-stv"].no_letterbox_and_pillarbox);
}

#[test]
fn a_user_adds_a_destination_in_config_without_code() {
    let s = load(
        "[destinations.my-buyer]\ndescription = \"x\"\nsource = \"https://buyer.example/spec\"\nduration_slots_secs = [10]\naspect_ratios = [\"1:1\"]\ntop_min_kbps = 2500\n",
    )
    .unwrap();
    let d = &s.destinations["my-buyer"];
    assert_eq!(d.duration_slots_secs, vec![10.0]);
    assert_eq!(d.aspect_ratios, vec!["1:1".to_string()]);
    assert!(d.accepts_duration(10.0) && !d.accepts_duration(10.5));
}

#[test]
fn a_bad_table_is_refused_naming_every_key_at_once() {
    let e = load(
        "[destinations.bad]\ndescription = \"x\"\nsource = \"\"\naspect_ratios = [\"wide\"]\ntop_min_kbps = 9000\ntop_max_kbps = 100\nvideo_codecs = [\"mpeg2\"]\nduration_ranges_secs = [{ min = 30.0, max = 10.0 }]\n",
    )
    .unwrap_err()
    .to_string();
    for key in [
        "destinations.bad.source",
        "destinations.bad.aspect_ratios",
        "destinations.bad.top_min_kbps",
        "destinations.bad.video_codecs",
        "destinations.bad.duration_ranges_secs[0]",
    ] {
        assert!(e.contains(key), "{key} in {e}");
    }
}

#[test]
fn an_unknown_rule_key_is_refused_naming_it() {
    let e = load("[destinations.x]\ndescription = \"x\"\nsource = \"s\"\ntop_min_kbp = 1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("destinations.x.top_min_kbp"), "{e}");
    let e = load("[destinations.Bad_Name]\ndescription = \"x\"\nsource = \"s\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("destinations.Bad_Name"), "{e}");
}

#[test]
fn durations_fit_slots_with_tolerance_or_ranges() {
    let d = Destination {
        duration_slots_secs: vec![15.0, 30.0],
        duration_slot_tolerance_secs: 1.0,
        duration_ranges_secs: vec![Range { min: 5.0, max: 6.0 }],
        ..Default::default()
    };
    assert!(d.accepts_duration(14.0) && d.accepts_duration(31.0) && d.accepts_duration(5.5));
    assert!(!d.accepts_duration(13.9) && !d.accepts_duration(20.0));
    assert!(Destination::default().accepts_duration(3.0));
    assert_eq!(parse_aspect("16:9"), Some((16, 9)));
    assert!(has_aspect(3840, 2160, (16, 9)) && !has_aspect(2880, 2880, (16, 9)));
}

#[test]
fn the_master_threshold_keys_are_read_and_bad_values_refused_naming_them() {
    let s = load(
        "[destinations.strict]\ndescription = \"x\"\nsource = \"s\"\nno_letterbox = true\nno_pillarbox = true\nmax_audio_start_offset_secs = 0.04\nmax_audio_end_offset_secs = 0.1\nmax_repeated_frame_share = 0.05\nmax_flashes_per_sec = 2\n",
    )
    .unwrap();
    let d = &s.destinations["strict"];
    assert!(d.no_letterbox && d.no_pillarbox);
    assert_eq!(
        (
            d.max_audio_start_offset_secs,
            d.max_audio_end_offset_secs,
            d.max_repeated_frame_share,
            d.max_flashes_per_sec
        ),
        (Some(0.04), Some(0.1), Some(0.05), Some(2))
    );
    // Unset on every shipped destination: an unset key is not checked.
    assert!(s
        .destinations
        .iter()
        .filter(|(name, _)| *name != "strict")
        .all(|(_, d)| !d.no_letterbox && d.max_repeated_frame_share.is_none()));
    let e = load(
        "[destinations.bad]\ndescription = \"x\"\nsource = \"s\"\nmax_audio_start_offset_secs = -0.1\nmax_audio_end_offset_secs = -1.0\nmax_repeated_frame_share = 15.0\n",
    )
    .unwrap_err()
    .to_string();
    for key in [
        "destinations.bad.max_audio_start_offset_secs",
        "destinations.bad.max_audio_end_offset_secs",
        "destinations.bad.max_repeated_frame_share",
    ] {
        assert!(e.contains(key), "{key} in {e}");
    }
    let e =
        load("[destinations.bad]\ndescription = \"x\"\nsource = \"s\"\nmax_flashes_per_sec = -1\n")
            .unwrap_err()
            .to_string();
    assert!(e.contains("max_flashes_per_sec"), "{e}");
}

mod master_thresholds {
    use super::super::verdict::{judge, Delivered, DeliveredFile};
    use super::super::Destination;
    use crate::media::analyze::Cadence;
    use crate::policy::Bars;

    fn set() -> Delivered {
        Delivered {
            files: vec![DeliveredFile {
                name: "1080p".into(),
                container: "mp4".into(),
                video_codec: "h264".into(),
                width: 1920,
                height: 1080,
                fps: 24.0,
                duration_secs: 15.0,
                video_kbps: 6000.0,
                size_bytes: 1_000_000,
                moov_first: true,
                audio: None,
            }],
            // A letterbox: 12% bars at the top and bottom.
            borders: Some(Bars {
                left: 0.0,
                right: 0.0,
                top: 0.12,
                bottom: 0.12,
                min_fraction: 0.02,
            }),
            audio_offsets: (Some(0.12), Some(-0.02)),
            repeated_frames: Some(Cadence {
                frames: 96,
                repeated: 12,
            }),
            worst_flash_second: Some((1.5, 4)),
            ..Default::default()
        }
    }

    fn buyer() -> Destination {
        Destination {
            source: "t".into(),
            ..Default::default()
        }
    }

    fn failed(d: &Destination) -> Vec<(String, String, String)> {
        let v = judge("b", d, &set());
        assert_eq!(v.passed, v.reasons.is_empty(), "{v:#?}");
        v.reasons
            .into_iter()
            .map(|r| (r.rule, r.measured, r.limit))
            .collect()
    }

    #[test]
    fn a_buyer_without_thresholds_passes_what_a_strict_one_refuses() {
        assert!(failed(&buyer()).is_empty());
        let strict = Destination {
            no_letterbox: true,
            max_audio_start_offset_secs: Some(0.1),
            max_audio_end_offset_secs: Some(0.1),
            max_repeated_frame_share: Some(0.1),
            max_flashes_per_sec: Some(3),
            ..buyer()
        };
        assert_eq!(
            failed(&strict),
            [
                (
                    "no_letterbox".into(),
                    "bars left 0.0%, right 0.0%, top 12.0%, bottom 12.0%".into(),
                    "no bars over 2% at the top and bottom".into()
                ),
                (
                    "max_audio_start_offset_secs".into(),
                    "audio starts +0.120 s from the video".into(),
                    "within 0.1 s".into()
                ),
                (
                    "max_repeated_frame_share".into(),
                    "12.5% repeated (12 of 96 frames)".into(),
                    "<= 10.0% repeated frames".into()
                ),
                (
                    "max_flashes_per_sec".into(),
                    "4 flashes in the worst second (from 1.50 s)".into(),
                    "<= 3 flashes in any second".into()
                ),
            ]
        );
        // Within every limit, and a letterbox is not a pillarbox.
        let lenient = Destination {
            no_pillarbox: true,
            max_audio_start_offset_secs: Some(0.12),
            max_audio_end_offset_secs: Some(0.02),
            max_repeated_frame_share: Some(0.125),
            max_flashes_per_sec: Some(4),
            ..buyer()
        };
        assert!(failed(&lenient).is_empty());
        let v = judge("b", &lenient, &set());
        assert!(v
            .checks
            .iter()
            .any(|c| c.rule == "no_pillarbox" && c.passed));
    }

    #[test]
    fn what_was_not_measured_is_not_judged() {
        let strict = Destination {
            no_letterbox: true,
            max_audio_start_offset_secs: Some(0.0),
            max_repeated_frame_share: Some(0.0),
            max_flashes_per_sec: Some(0),
            ..buyer()
        };
        let unmeasured = Delivered {
            files: set().files,
            ..Default::default()
        };
        let v = judge("b", &strict, &unmeasured);
        assert!(v.passed, "{v:#?}");
    }
}
