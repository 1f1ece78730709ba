//! The frames the transcode writes for QC (`TranscodePlan::references`):
//! where they go in the graph, the budget, and that QC scores against them
//! as it does against the master.

use super::tests::{master, plan, rung};
use super::*;
use crate::media::profile::Crop;
use crate::media::testutil;

/// A reference per crop at its largest size, and none where the frames
/// would pass the budget.
#[test]
fn quality_references_go_to_each_crop_within_the_budget() {
    let square = Crop {
        width: 1080,
        height: 1080,
        x: 420,
        y: 0,
    };
    let mut renditions = vec![rung("720p", 1280, 720), rung("1080p", 1920, 1080)];
    renditions.push(Rendition {
        crop: Some(square),
        ..rung("sq", 720, 720)
    });
    let mut p = plan(renditions, false);
    let out = Path::new("/out");
    p.add_quality_references(out, 15.0, 2 << 30);
    let sizes: Vec<(Option<Crop>, u32, u32)> = p
        .references
        .iter()
        .map(|r| (r.crop, r.width, r.height))
        .collect();
    assert_eq!(sizes, [(None, 1920, 1080), (Some(square), 720, 720)]);
    assert_eq!(p.references[0].path, out.join("qc-reference/crop0.nut"));
    let args = build_args(Path::new("/m.mp4"), &p, out);
    let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
    // The 1080p scaler feeds its encoder, the 720p scaler and the reference.
    assert!(
        graph.contains("format=yuv420p,split=3[v1][qcref0][d0_0]"),
        "{graph}"
    );
    let nut = args.iter().position(|a| a == "/out/qc-reference/crop0.nut");
    assert!(
        nut.is_some_and(|i| args[i - 1] == "nut" && args[i - 7] == "[qcref0]"),
        "{args:?}"
    );

    // A buyer's conform reaches QC's frames too, so they pair one for one
    // with the conformed outputs.
    let mut conformed = p.clone();
    conformed.conform.fps = Some((24000, 1001));
    let args = build_args(Path::new("/m.mp4"), &conformed, out);
    let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
    assert!(graph.contains("split=3[c1][qcpre0][d0_0]"), "{graph}");
    assert!(graph.contains("[qcpre0]fps=24000/1001[qcref0]"), "{graph}");
    assert!(graph.contains("[qcpre1]fps=24000/1001[qcref1]"), "{graph}");

    // 15 s of 1080p at 24 fps is ~1.1 GiB of raw frames: over 1 GiB, only
    // the 720x720 crop gets one; a zero budget writes none.
    p.add_quality_references(out, 15.0, 1 << 30);
    assert_eq!(p.references.len(), 1);
    assert_eq!(p.references[0].crop, Some(square));
    p.add_quality_references(out, 15.0, 0);
    assert!(p.references.is_empty());
    let args = build_args(Path::new("/m.mp4"), &p, out);
    assert!(!args.iter().any(|a| a.contains("qcref") || a == "nut"));
}

/// The frames the transcode writes for QC are those its largest output's
/// encoder got: scored against them, the top rung gets exactly the score
/// the master gives it and the smaller one (scaled down from them, as the
/// cascade does) nearly the same, and the master is not read at all.
#[tokio::test]
async fn qc_reference_frames_score_as_the_master_does() {
    let Some(runner) = testutil::runner() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (master, probe) = master(&runner, dir.path(), 640, 360, false).await;
    let mut plan = TranscodePlan::for_master(
        &probe,
        vec![rung("180p", 320, 180), rung("90p", 160, 90)],
        runner.config(),
    );
    let out = dir.path().join("out");
    plan.add_quality_references(&out, probe.duration_secs, 1 << 30);
    let result = transcode(
        &runner,
        &master,
        &probe,
        &plan,
        &out,
        None,
        Duration::from_secs(120),
    )
    .await
    .unwrap();
    assert_eq!(result.references, plan.references);
    let reference = result.references[0].clone();
    assert_eq!((reference.width, reference.height), (320, 180));
    let bytes = std::fs::metadata(&reference.path).unwrap().len();
    assert!(
        bytes >= 320 * 180 * 3 / 2 * 48,
        "{bytes} bytes for 48 frames"
    );

    let targets: Vec<crate::media::measure::Target> = result
        .renditions
        .iter()
        .map(|(r, p)| crate::media::measure::Target::new(&r.name, p, r.width, r.height))
        .collect();
    let deadline = Duration::from_secs(60);
    let from_master = crate::media::measure::ssim_psnr(&runner, &master, &targets, deadline)
        .await
        .unwrap();
    let stored: Vec<_> = targets
        .iter()
        .cloned()
        .map(|t| crate::media::measure::Target {
            stored_reference: Some(reference.clone()),
            ..t
        })
        .collect();
    let gone = dir.path().join("no-such-master.mp4");
    let from_reference = crate::media::measure::ssim_psnr(&runner, &gone, &stored, deadline)
        .await
        .unwrap();
    assert_eq!(from_reference[0].ssim, from_master[0].ssim, "top rung");
    assert_eq!(from_reference[0].psnr, from_master[0].psnr, "top rung");
    assert!(
        (from_reference[1].ssim - from_master[1].ssim).abs() < 0.01,
        "{from_reference:?} vs {from_master:?}"
    );
    assert!(
        from_master[1].ssim < 0.999,
        "the lower rung is not lossless"
    );
}
