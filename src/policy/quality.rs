//! The quality a request's `outputQuality` buys: an SSIM floor (every
//! ffmpeg) and, where ffmpeg has libvmaf, a VMAF floor.

/// Minimum SSIM a rendition must reach for a request's `outputQuality`:
/// linear and monotonic from `at_min` (quality 20) to `at_max` (quality 99).
pub fn ssim_floor(output_quality: u32, at_min: f64, at_max: f64) -> f64 {
    let q = output_quality.clamp(20, 99) as f64;
    at_min + (at_max - at_min) * (q - 20.0) / 79.0
}

/// `outputQuality` → the VMAF floor of a rendition scored at the common
/// size (`media::measure::vmaf_scoring_size`, 1080p at most): each row is
/// (lowest `outputQuality` of the band, floor). The README's table.
pub const VMAF_FLOORS: [(u32, f64); 5] =
    [(20, 60.0), (40, 70.0), (60, 80.0), (75, 85.0), (90, 90.0)];

/// How far under the floor a smaller rung may score: scored on the same
/// screen, a rung with fewer lines shows less detail, which VMAF counts
/// against it. Each row is (the rung's short side as a share of the
/// scoring size's at least, points below the floor). A rung under the last
/// row's share is not gated on VMAF: there the loss of lines, which
/// depends on the content, outweighs the encode's (a 480p rung of a
/// detailed 4K master scored 71.4 at 1920x1080 against a floor of 75 with
/// SSIM 0.991 at its own size); its score is reported and SSIM at its own
/// size holds it. The README's table.
pub const VMAF_RUNG_ALLOWANCE: [(f64, f64); 2] = [(0.9, 0.0), (0.6, 6.0)];

/// The VMAF floor for `output_quality` (clamped to 20..=99), for a rung
/// at the scoring size.
pub fn vmaf_floor(output_quality: u32) -> f64 {
    let q = output_quality.clamp(20, 99);
    VMAF_FLOORS
        .iter()
        .rev()
        .find(|(from, _)| q >= *from)
        .map_or(VMAF_FLOORS[0].1, |(_, floor)| *floor)
}

/// The floor of one rung: `floor` less the allowance for its short side
/// (`rung_lines`) against the scoring size's (`scored_lines`); None for a
/// rung too small to be gated on VMAF.
pub fn vmaf_rung_floor(floor: f64, rung_lines: u32, scored_lines: u32) -> Option<f64> {
    let share = f64::from(rung_lines) / f64::from(scored_lines.max(1));
    VMAF_RUNG_ALLOWANCE
        .iter()
        .find(|(at_least, _)| share >= *at_least)
        .map(|(_, points)| floor - points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vmaf_floor_follows_the_table_and_never_falls_as_quality_rises() {
        for (q, want) in [
            (0, 60.0),
            (20, 60.0),
            (39, 60.0),
            (40, 70.0),
            (59, 70.0),
            (60, 80.0),
            (74, 80.0),
            (75, 85.0),
            (80, 85.0),
            (89, 85.0),
            (90, 90.0),
            (99, 90.0),
            (100, 90.0),
        ] {
            assert_eq!(vmaf_floor(q), want, "outputQuality {q}");
        }
        let floors: Vec<f64> = (20..=99).map(vmaf_floor).collect();
        assert!(floors.windows(2).all(|w| w[0] <= w[1]), "{floors:?}");
    }

    #[test]
    fn a_smaller_rung_gets_the_allowance_for_its_lines() {
        // Scored at 1080 lines: the rungs of the default ladder and below.
        for (lines, want) in [
            (1080, Some(85.0)),
            (720, Some(79.0)),
            (648, Some(79.0)),
            (647, None),
            (480, None),
            (360, None),
        ] {
            assert_eq!(vmaf_rung_floor(85.0, lines, 1080), want, "{lines} lines");
        }
        // A 720p top rung scored at its own size has no allowance.
        assert_eq!(vmaf_rung_floor(85.0, 720, 720), Some(85.0));
    }
}
