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
