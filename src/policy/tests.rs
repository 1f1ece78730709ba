use super::*;
use crate::media::analyze::{ContentAnalysis, Loudness};
use crate::media::level::H264Level;
use crate::media::loudness::{Normalization, Status};
use crate::media::probe::{Probe, VideoStream};
use crate::media::profile::OutputKind;

#[test]
fn ssim_floor_is_monotonic_and_spans_the_configured_range() {
    assert!((ssim_floor(20, 0.8, 0.95) - 0.8).abs() < 1e-9);
    assert!((ssim_floor(99, 0.8, 0.95) - 0.95).abs() < 1e-9);
    let mut last = 0.0;
    for q in 20..=99u32 {
        let f = ssim_floor(q, 0.8, 0.95);
        assert!(f >= last, "floor fell at quality {q}");
        last = f;
    }
    // Out-of-range inputs are clamped, not extrapolated.
    assert_eq!(ssim_floor(5, 0.8, 0.95), ssim_floor(20, 0.8, 0.95));
}

#[test]
fn ttl_remaining_counts_from_arrival() {
    assert_eq!(ttl_remaining_secs(0, 60, 0), 60);
    assert_eq!(ttl_remaining_secs(0, 60, 59_000), 1);
    assert_eq!(ttl_remaining_secs(0, 60, 60_000), 0);
    assert!(ttl_remaining_secs(0, 60, 61_000) < 0);
}

fn probe(duration: f64, total_kbps: u64, audio_kbps: Option<u64>) -> Probe {
    serde_json::from_value(serde_json::json!({
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
        "duration_secs": duration,
        "size_bytes": 1,
        "bit_rate": total_kbps * 1000,
        "video": {"codec": "h264", "profile": "High", "level": 40, "width": 1920, "height": 1080,
                  "pix_fmt": "yuv420p", "fps": 24.0, "nb_frames": null, "color_primaries": "bt709",
                  "color_transfer": "bt709", "color_space": "bt709"},
        "audio": audio_kbps.map(|k| serde_json::json!({"codec": "aac", "sample_rate": 48000, "channels": 2,
                  "channel_layout": "stereo", "bit_rate": k * 1000})),
    }))
    .unwrap()
}

fn rendition(p: Probe) -> RenditionMeasure {
    RenditionMeasure {
        name: "1080p".into(),
        expected_width: 1920,
        expected_height: 1080,
        max_bitrate_kbps: Some(8000),
        vbv_bufsize_kbps: Some(16000),
        min_bitrate_kbps: Some(4000),
        kind: OutputKind::Mp4,
        probe: p,
        ssim: 0.99,
        psnr: 45.0,
        vmaf: None,
        vmaf_scored_at: None,
        moov_first: true,
        size_bytes: 1,
        expected_profile: Some("high".into()),
        expected_level: Some(H264Level::L4_0),
    }
}

fn rules(loudness: Option<LoudnessRule>) -> Rules {
    Rules {
        ssim_floor: 0.9,
        vmaf_floor: 85.0,
        duration_tolerance_secs: 0.5,
        edge_secs: 0.05,
        max_black_secs: 2.0,
        max_freeze_secs: 2.0,
        max_silence_secs: 2.0,
        min_master_bits_per_pixel: 0.0,
        bitrate_tolerance: 1.02,
        loudness,
        master: Default::default(),
    }
}

fn report(
    master: &Probe,
    r: RenditionMeasure,
    rules: Rules,
    content: Option<&ContentAnalysis>,
    normalization: Option<&Normalization>,
) -> QcReport {
    let expected = MasterSpec {
        width: None,
        height: None,
        duration_secs: None,
        sound: master.audio.is_some(),
        container: Container::Mp4,
    };
    evaluate(QcInput {
        profile: "broadcast-us",
        master,
        expected: &expected,
        content,
        renditions: vec![r],
        output_quality: 80,
        rules,
        ttl_remaining_secs: 60,
        normalization,
        vmaf_available: false,
        healed: Default::default(),
    })
}

fn check<'a>(report: &'a QcReport, rule: &str) -> Option<&'a Check> {
    report.checks.iter().find(|c| c.rule == rule)
}

fn bitrate_check(duration: f64, total_kbps: u64, audio_kbps: Option<u64>) -> Check {
    let master = probe(duration, 50_000, audio_kbps);
    let r = rendition(probe(duration, total_kbps, audio_kbps));
    let report = report(&master, r, rules(None), None, None);
    check(&report, "bitrate").unwrap().clone()
}

fn with_video(p: &Probe, f: impl FnOnce(&mut VideoStream)) -> Probe {
    let mut p = p.clone();
    f(p.video.as_mut().unwrap());
    p
}

#[test]
fn a_rendition_keeps_the_masters_native_rate_at_a_constant_rate() {
    let master = with_video(&probe(10.0, 50_000, None), |v| {
        v.r_frame_rate = Some(24000.0 / 1001.0);
        v.avg_frame_rate = Some(24000.0 / 1001.0);
    });
    let judged = |f: &dyn Fn(&mut VideoStream)| {
        let r = rendition(with_video(&probe(10.0, 8_000, None), f));
        let rep = report(&master, r, rules(None), None, None);
        (
            check(&rep, "frame_rate").map(|c| c.passed),
            check(&rep, "constant_frame_rate").map(|c| (c.passed, c.reason.clone())),
        )
    };
    let (rate, cfr) = judged(&|v| {
        v.r_frame_rate = Some(24000.0 / 1001.0);
        v.avg_frame_rate = Some(23.976);
    });
    assert_eq!((rate, cfr.map(|c| c.0)), (Some(true), Some(true)));
    // 24 is not 23.976: the rate was changed.
    let (rate, _) = judged(&|v| {
        v.r_frame_rate = Some(24.0);
        v.avg_frame_rate = Some(24.0);
    });
    assert_eq!(rate, Some(false));
    // Variable: the average is far from the base rate.
    let (rate, cfr) = judged(&|v| {
        v.r_frame_rate = Some(24000.0 / 1001.0);
        v.avg_frame_rate = Some(21.5);
    });
    assert_eq!(rate, Some(true));
    let (constant, reason) = cfr.unwrap();
    assert!(!constant);
    assert!(reason.unwrap().contains("CFR"));
    // No average rate: the frame count against duration x rate decides.
    let count = |n: u64| {
        judged(&move |v: &mut VideoStream| {
            v.r_frame_rate = Some(24000.0 / 1001.0);
            v.avg_frame_rate = None;
            v.nb_frames = Some(n);
        })
        .1
        .map(|c| c.0)
    };
    assert_eq!(count(240), Some(true), "10 s at 23.976 is 239.8 frames");
    assert_eq!(count(200), Some(false));
    // Nothing to tell constancy by: no check rather than a guess.
    assert_eq!(
        judged(&|v| {
            v.avg_frame_rate = None;
            v.nb_frames = None;
        })
        .1,
        None
    );
}

#[test]
fn h264_profile_and_level_are_what_the_plan_asked_and_enough_for_the_size() {
    let master = probe(10.0, 50_000, None);
    let judged = |level: i32, asked: &str, profile: &str| {
        let mut r = rendition(with_video(&probe(10.0, 8_000, None), |v| {
            v.level = Some(level);
            v.profile = Some(profile.into());
            v.r_frame_rate = Some(24.0);
        }));
        r.expected_level = Some(H264Level::parse(asked).unwrap());
        r.expected_profile = Some(
            if profile.contains("Baseline") {
                "baseline"
            } else {
                "high"
            }
            .into(),
        );
        let rep = report(&master, r, rules(None), None, None);
        let l = check(&rep, "h264_level").unwrap().clone();
        let p = check(&rep, "h264_profile").unwrap().clone();
        (l, p)
    };
    let (l, p) = judged(40, "4.0", "High");
    assert!(l.passed && p.passed, "{l:?} {p:?}");
    assert_eq!(l.measured, "4.0");
    assert_eq!(l.threshold, "4.0 (at least 4.0)");
    // The report keeps the asked-for level as the string it always carried.
    let rep = report(
        &master,
        rendition(probe(10.0, 8_000, None)),
        rules(None),
        None,
        None,
    );
    let json = serde_json::to_value(&rep).unwrap();
    assert_eq!(json["renditions"][0]["expected_level"], "4.0");
    let back: QcReport = serde_json::from_value(json).unwrap();
    assert_eq!(back.renditions[0].expected_level, Some(H264Level::L4_0));
    let (l, _) = judged(31, "4.0", "High");
    assert!(!l.passed);
    assert!(l.reason.unwrap().contains("asked for 4.0"));
    // The plan itself asked too little for 1920x1080 at 8 Mbps.
    let (l, _) = judged(30, "3.0", "High");
    assert!(!l.passed);
    assert!(l.reason.unwrap().contains("below the 4.0"), "needs 4.0");
    let (_, p) = judged(30, "3.0", "Constrained Baseline");
    assert!(
        p.passed,
        "x264's baseline is ffprobe's Constrained Baseline"
    );
    let (_, p) = judged(40, "4.0", "Main");
    assert!(!p.passed);
    // Not H.264: not judged by these rules.
    let mut vp9 = rendition(with_video(&probe(10.0, 8_000, None), |v| {
        v.codec = "vp9".into()
    }));
    vp9.expected_level = Some(H264Level::L4_0);
    let rep = report(&master, vp9, rules(None), None, None);
    assert!(check(&rep, "h264_level").is_none() && check(&rep, "h264_profile").is_none());
    // Spellings and numbers of the levels themselves: media::level's tests.
    // A file may claim a level no plan asks for; the report names it.
    let (l, _) = judged(9, "4.0", "High");
    assert!(!l.passed);
    assert_eq!(l.measured, "1b");
    let (l, _) = judged(60, "4.0", "High");
    assert_eq!((l.passed, l.measured.as_str()), (false, "6.0"));
}

fn us_rule(normalize: bool) -> LoudnessRule {
    LoudnessRule {
        target_lufs: -24.0,
        tolerance_lu: 2.0,
        true_peak_max_dbtp: Some(-2.0),
        normalize,
    }
}

fn loud_master() -> ContentAnalysis {
    ContentAnalysis {
        duration_secs: 10.0,
        loudness: Some(Loudness {
            integrated_lufs: -6.1,
            range_lu: 0.0,
            true_peak_dbtp: -5.1,
        }),
        ..Default::default()
    }
}

fn normalised(after_lufs: f64, after_tp: f64) -> Normalization {
    use crate::media::loudness::{plan, Measured, Target};
    let mut n = plan(
        Target::for_profile(-24.0, Some(-2.0)),
        Measured {
            input_i: -6.06,
            input_tp: -5.1,
            input_lra: 0.0,
            input_thresh: -16.06,
            target_offset: 0.04,
        },
    );
    n.after_rendition = Some("1080p".into());
    n.after = Some(Loudness {
        integrated_lufs: after_lufs,
        range_lu: 0.0,
        true_peak_dbtp: after_tp,
    });
    n
}

#[test]
fn normalised_audio_is_judged_on_the_delivered_file_and_the_master_stays_in_the_report() {
    let master = probe(10.0, 50_000, Some(192));
    let r = || rendition(probe(10.0, 8_000, Some(192)));
    let content = loud_master();
    let n = normalised(-23.9, -22.9);
    let rep = report(
        &master,
        r(),
        rules(Some(us_rule(true))),
        Some(&content),
        Some(&n),
    );
    let l = check(&rep, "loudness").unwrap();
    assert_eq!((l.subject.as_str(), l.passed), ("1080p", true), "{l:?}");
    assert!(check(&rep, "true_peak").unwrap().passed);
    assert!(!rep
        .checks
        .iter()
        .any(|c| c.subject == "master" && c.rule == "loudness"));
    let recorded = rep.loudness_normalization.as_ref().unwrap();
    assert_eq!(recorded.before.unwrap().input_i, -6.06);
    assert_eq!(recorded.after.unwrap().integrated_lufs, -23.9);
    assert_eq!(rep.content.unwrap().loudness.unwrap().integrated_lufs, -6.1);
    let json = serde_json::to_value(&rep.loudness_normalization).unwrap();
    assert_eq!(json["status"], "applied");
    assert_eq!(json["mode"], "dynamic");

    // Normalised once and still off: rejected, in words, with both numbers.
    let n = normalised(-19.0, -1.0);
    let rep = report(
        &master,
        r(),
        rules(Some(us_rule(true))),
        Some(&content),
        Some(&n),
    );
    let l = check(&rep, "loudness").unwrap();
    assert!(!l.passed);
    let why = l.reason.clone().unwrap();
    assert!(why.contains("still too loud after normalisation"), "{why}");
    assert!(
        why.contains("-19.0 LUFS") && why.contains("-6.1 LUFS"),
        "{why}"
    );
    let tp = check(&rep, "true_peak").unwrap();
    assert!(!tp.passed);
    assert!(tp.reason.clone().unwrap().contains("after normalisation"));
    assert_eq!(rep.verdict, Verdict::Fail);

    // Normalisation off (or skipped): the master is judged, as before.
    let mut off = normalised(-23.9, -22.9);
    off.status = Status::Disabled;
    for n in [Some(&off), None] {
        let rep = report(&master, r(), rules(Some(us_rule(false))), Some(&content), n);
        let l = check(&rep, "loudness").unwrap();
        assert_eq!((l.subject.as_str(), l.passed), ("master", false));
        assert!(l.reason.clone().unwrap().starts_with("too loud"));
    }

    // Normalised, but the delivered file had no audio to measure.
    let mut mute = normalised(-24.0, -23.0);
    mute.after = None;
    let rep = report(
        &master,
        r(),
        rules(Some(us_rule(true))),
        Some(&content),
        Some(&mute),
    );
    assert!(!check(&rep, "loudness").unwrap().passed);
}

#[test]
fn the_band_floor_checks_video_bitrate_and_webm_is_judged_as_vp9_opus() {
    let master = probe(10.0, 50_000, Some(192));
    let measure = |total: u64, kind: OutputKind, codec: &str, audio: &str| {
        let mut p = probe(10.0, total, Some(192));
        p.video.as_mut().unwrap().codec = codec.into();
        p.audio.as_mut().unwrap().codec = audio.into();
        RenditionMeasure {
            name: "r".into(),
            expected_width: 1920,
            expected_height: 1080,
            max_bitrate_kbps: Some(10_000),
            vbv_bufsize_kbps: Some(20_000),
            min_bitrate_kbps: Some(4000),
            kind,
            expected_profile: None,
            expected_level: None,
            probe: p,
            ssim: 0.99,
            psnr: 45.0,
            vmaf: None,
            vmaf_scored_at: None,
            moov_first: false,
            size_bytes: 1,
        }
    };
    let run = |r: RenditionMeasure| {
        let expected = MasterSpec {
            width: None,
            height: None,
            duration_secs: None,
            sound: true,
            container: Container::Mp4,
        };
        let rules = Rules {
            ssim_floor: 0.9,
            vmaf_floor: 85.0,
            duration_tolerance_secs: 0.5,
            edge_secs: 0.05,
            max_black_secs: 2.0,
            max_freeze_secs: 2.0,
            max_silence_secs: 2.0,
            min_master_bits_per_pixel: 0.0,
            bitrate_tolerance: 1.02,
            loudness: None,
            master: Default::default(),
        };
        evaluate(QcInput {
            profile: "olv",
            master: &master,
            expected: &expected,
            content: None,
            renditions: vec![r],
            output_quality: 80,
            rules,
            ttl_remaining_secs: 60,
            normalization: None,
            vmaf_available: false,
            healed: Default::default(),
        })
    };
    let failed =
        |report: &QcReport| -> Vec<String> { report.failures().map(|c| c.rule.clone()).collect() };
    // 1.1 Mbps of video in a 4-10 Mbps band: under the floor.
    let low = run(measure(1_100 + 192, OutputKind::Mp4, "h264", "aac"));
    assert_eq!(failed(&low), ["bitrate_min", "moov_first"]);
    let ok = run(measure(6_000 + 192, OutputKind::Webm, "vp9", "opus"));
    assert_eq!(failed(&ok), Vec::<String>::new(), "no moov check for WebM");
    let wrong = run(measure(6_000 + 192, OutputKind::Webm, "h264", "aac"));
    assert_eq!(failed(&wrong), ["video_codec", "audio"]);
}

#[test]
fn the_bitrate_ceiling_is_the_band_on_video_whatever_the_duration() {
    // 8 Mbps ceiling x 1.02 = 8160 kbps of video; audio is not video.
    let ok = bitrate_check(30.0, 8_100 + 192, Some(192));
    assert!(ok.passed, "audio is not video");
    assert_eq!(
        (ok.measured.as_str(), ok.threshold.as_str()),
        ("video 8100 kbps", "video <= 8160 kbps")
    );
    let over = bitrate_check(30.0, 8_300 + 192, Some(192));
    assert!(!over.passed);
    let why = over.reason.clone().unwrap();
    assert!(
        why.contains("8300 kbps") && why.contains("8000 kbps"),
        "{why}"
    );
    // A short clip gets no VBV-buffer allowance: the buyer's band is about
    // the delivered file (the old bound allowed 14.7 Mbps at 3 s).
    assert!(bitrate_check(3.0, 8_100, None).passed);
    assert!(!bitrate_check(3.0, 9_000, None).passed);
}

#[test]
fn the_bitrate_floor_is_the_band_within_the_small_tolerance() {
    let master = probe(30.0, 50_000, None);
    let floor = |kbps: u64| {
        let rep = report(
            &master,
            rendition(probe(30.0, kbps, None)),
            rules(None),
            None,
            None,
        );
        check(&rep, "bitrate_min").unwrap().clone()
    };
    // 4000 kbps floor / 1.02 = 3922 kbps; the old / 1.1 let 3700 through.
    assert!(floor(3_950).passed);
    let low = floor(3_700);
    assert!(!low.passed);
    assert!(low.reason.clone().unwrap().contains("3700 kbps"));
}

#[test]
fn request_overrides_only_ever_make_the_rules_stricter() {
    let base = Rules {
        ssim_floor: 0.9,
        vmaf_floor: 85.0,
        duration_tolerance_secs: 0.5,
        edge_secs: 0.05,
        max_black_secs: 2.0,
        max_freeze_secs: 2.0,
        max_silence_secs: 2.0,
        min_master_bits_per_pixel: 0.02,
        bitrate_tolerance: 1.02,
        loudness: Some(us_rule(true)),
        master: Default::default(),
    };
    let stricter = QcOverrides {
        min_ssim: Some(0.95),
        min_vmaf: Some(92.0),
        max_black_secs: Some(0.5),
        max_freeze_secs: Some(1.0),
        max_silence_secs: Some(0.0),
        loudness_tolerance_lu: Some(1.0),
    };
    let mut r = base.clone();
    stricter.apply(&mut r);
    assert_eq!(
        (
            r.ssim_floor,
            r.vmaf_floor,
            r.max_black_secs,
            r.max_freeze_secs,
            r.max_silence_secs
        ),
        (0.95, 92.0, 0.5, 1.0, 0.0)
    );
    assert_eq!(r.loudness.unwrap().tolerance_lu, 1.0);
    let looser = QcOverrides {
        min_ssim: Some(0.6),
        min_vmaf: Some(60.0),
        max_black_secs: Some(9.0),
        max_freeze_secs: Some(9.0),
        max_silence_secs: Some(9.0),
        loudness_tolerance_lu: Some(5.0),
    };
    let mut r = base.clone();
    looser.apply(&mut r);
    assert_eq!(
        (
            r.ssim_floor,
            r.vmaf_floor,
            r.max_black_secs,
            r.max_freeze_secs,
            r.max_silence_secs
        ),
        (0.9, 85.0, 2.0, 2.0, 2.0)
    );
    assert_eq!(r.loudness.unwrap().tolerance_lu, 2.0);
    assert!(stricter.validate().is_empty());
    let bad = QcOverrides {
        min_ssim: Some(1.5),
        min_vmaf: Some(100.0),
        max_black_secs: Some(-1.0),
        ..Default::default()
    };
    let fields: Vec<&str> = bad.validate().into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["minSsim", "minVmaf", "maxBlackSecs"]);
}

#[test]
fn only_a_verdict_failing_on_ssim_alone_is_re_encoded() {
    let master = probe(10.0, 50_000, Some(192));
    let blurry = || RenditionMeasure {
        ssim: 0.85,
        ..rendition(probe(10.0, 8_000, Some(192)))
    };
    let rep = report(&master, blurry(), rules(None), None, None);
    let failed: Vec<&str> = rep.failures().map(|c| c.rule.as_str()).collect();
    assert_eq!(failed, ["ssim_floor"]);
    assert_eq!(remediation(&rep, 0), Remediation::ReencodeAt { boost: 1 });
    assert_eq!(remediation(&rep, 1), Remediation::None);
    // Too loud as well: more bits do not fix the audio.
    let loud = loud_master();
    let rep = report(
        &master,
        blurry(),
        rules(Some(us_rule(false))),
        Some(&loud),
        None,
    );
    assert!(rep.failures().any(|c| c.rule == "loudness"));
    assert_eq!(remediation(&rep, 0), Remediation::None);
    let rep = report(
        &master,
        rendition(probe(10.0, 8_000, Some(192))),
        rules(None),
        None,
        None,
    );
    assert_eq!(rep.verdict, Verdict::Pass);
    assert_eq!(remediation(&rep, 0), Remediation::None);
}

/// VMAF measured (at 1080p, the common size) beside SSIM: each rung is
/// judged against the floor less its allowance, and a miss is remediable.
#[test]
fn where_vmaf_was_measured_each_rung_is_held_to_its_vmaf_floor() {
    use crate::media::measure::FrameSize;
    let master = probe(10.0, 50_000, Some(192));
    let at = Some(FrameSize {
        width: 1920,
        height: 1080,
    });
    let scored = |name: &str, w: u32, h: u32, vmaf: f64| RenditionMeasure {
        name: name.into(),
        expected_width: w,
        expected_height: h,
        vmaf: Some(vmaf),
        vmaf_scored_at: at,
        ..rendition(probe(10.0, 8_000, Some(192)))
    };
    let judge = |r: RenditionMeasure| {
        let mut rep = report(&master, r, rules(None), None, None);
        rep.checks.retain(|c| c.rule == "vmaf_floor");
        rep.checks
    };
    // Floor 85 at 1080 lines; 720 lines get 6 points, 480 lines 15.
    for (name, w, h, vmaf, passed, threshold) in [
        (
            "1080p",
            1920,
            1080,
            85.5,
            true,
            ">= 85.0 (scored at 1920x1080)",
        ),
        (
            "1080p",
            1920,
            1080,
            84.9,
            false,
            ">= 85.0 (scored at 1920x1080)",
        ),
        (
            "720p",
            1280,
            720,
            79.5,
            true,
            ">= 79.0 (scored at 1920x1080)",
        ),
        // Under 60% of the scoring size's lines: reported, never failing
        // (the loss of lines outweighs the encode's; SSIM holds it).
        (
            "480p",
            854,
            480,
            40.0,
            true,
            "reported, not gated: under 60% of the lines, SSIM holds it (scored at 1920x1080)",
        ),
    ] {
        let checks = judge(scored(name, w, h, vmaf));
        assert_eq!(checks.len(), 1, "{name} {vmaf}");
        assert_eq!(checks[0].passed, passed, "{name} {vmaf}: {:?}", checks[0]);
        assert_eq!(checks[0].threshold, threshold, "{name}");
        assert_eq!(checks[0].measured, format!("{vmaf:.2}"));
    }
    let low = report(
        &master,
        scored("1080p", 1920, 1080, 70.0),
        rules(None),
        None,
        None,
    );
    let failed: Vec<&str> = low.failures().map(|c| c.rule.as_str()).collect();
    assert_eq!(failed, ["vmaf_floor"]);
    assert!(low.summary().contains("VMAF 70.00"), "{}", low.summary());
    assert_eq!(remediation(&low, 0), Remediation::ReencodeAt { boost: 1 });
    // Not measured: no VMAF check, SSIM alone gates.
    let none = report(
        &master,
        rendition(probe(10.0, 8_000, Some(192))),
        rules(None),
        None,
        None,
    );
    assert!(check(&none, "vmaf_floor").is_none());
    assert_eq!(none.vmaf_floor, None);
}

#[test]
fn the_rules_take_the_vmaf_floor_from_the_table_and_min_vmaf_only_raises_it() {
    let policy = PolicySettings {
        duration_tolerance_secs: 0.5,
        max_master_bytes: 1 << 30,
        ssim_floor_at_min: 0.8,
        ssim_floor_at_max: 0.95,
        default_ttl_secs: 60,
        ttl_sweep_interval_secs: 5,
        edge_secs: 0.05,
        max_black_secs: 2.0,
        max_freeze_secs: 2.0,
        max_silence_secs: 2.0,
        min_master_bits_per_pixel: 0.005,
        bitrate_tolerance: 1.02,
    };
    let r = Rules::new(&policy, None, 80);
    assert_eq!(r.vmaf_floor, 85.0);
    let mut raised = r.clone();
    QcOverrides {
        min_vmaf: Some(95.0),
        ..Default::default()
    }
    .apply(&mut raised);
    assert_eq!(raised.vmaf_floor, 95.0);
    let mut kept = r.clone();
    QcOverrides {
        min_vmaf: Some(60.0),
        ..Default::default()
    }
    .apply(&mut kept);
    assert_eq!(kept.vmaf_floor, 85.0);
}
