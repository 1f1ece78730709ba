//! Cadence and flashing, from the per-frame luma the content analysis
//! measured: the share of frames that repeat the one before (duplicated
//! frames, pulldown), and large-area luminance flashes (a flash is a pair
//! of opposing changes over at least a quarter of the picture; ITU-R
//! BT.1702 and Ofcom allow at most three in any one second).

use super::verdict::Check;
use crate::media::analyze::{ContentAnalysis, LumaStep, FLASH_BLOCK_STEP};
use crate::media::master_qc::MasterQcSettings;

pub(super) fn cadence_check(checks: &mut Vec<Check>, c: &ContentAnalysis, s: &MasterQcSettings) {
    let Some(cad) = c.cadence else {
        return;
    };
    let share = cad.share();
    let max = s.max_repeated_frame_share;
    checks.push(Check::new(
        "master",
        "cadence",
        format!("<= {:.1}% repeated frames", max * 100.0),
        format!(
            "{:.1}% repeated ({} of {} frames)",
            share * 100.0,
            cad.repeated,
            cad.frames
        ),
        share <= max,
        || {
            format!(
                "{:.1}% of the frames repeat the one before ({} of {}): duplicated frames or pulldown (max {:.1}%)",
                share * 100.0,
                cad.repeated,
                cad.frames,
                max * 100.0
            )
        },
    ));
}

/// The transitions at least `step` large, a run of same-direction steps
/// counted once.
fn transitions(steps: &[LumaStep], step: f64) -> Vec<LumaStep> {
    let mut out: Vec<LumaStep> = Vec::new();
    for s in steps.iter().filter(|s| s.delta.abs() >= step) {
        match out.last() {
            Some(last) if last.delta.signum() == s.delta.signum() => {}
            _ => out.push(*s),
        }
    }
    out
}

/// Frame times come from the log rounded to a few digits (0.0833333,
/// 1.08333): a transition this close to a second after another is a
/// second after it, outside its window.
const WINDOW_SLACK: f64 = 0.000_5;

fn in_window(start: f64, at: f64) -> bool {
    at >= start && at < start + 1.0 - WINDOW_SLACK
}

/// The one-second window with the most flashes: (start, flashes).
fn worst_second(ts: &[LumaStep]) -> Option<(f64, usize)> {
    let mut best: Option<(f64, usize)> = None;
    for (i, t) in ts.iter().enumerate() {
        let n = ts[i..].iter().take_while(|u| in_window(t.at, u.at)).count();
        let flashes = n / 2;
        if best.is_none_or(|(_, b)| flashes > b) {
            best = Some((t.at, flashes));
        }
    }
    best
}

/// The frames where at least `min_area` of the picture changed one way,
/// as signed steps (the larger share's direction); an analysis made before
/// the areas were measured has only the mean luma, stepping by
/// [`FLASH_BLOCK_STEP`].
fn flash_transitions(c: &ContentAnalysis, min_area: f64) -> Vec<LumaStep> {
    match &c.area_steps {
        Some(areas) => {
            let steps: Vec<LumaStep> = areas
                .iter()
                .map(|a| LumaStep {
                    at: a.at,
                    delta: if a.brighter >= a.darker {
                        a.brighter
                    } else {
                        -a.darker
                    },
                })
                .collect();
            transitions(&steps, min_area)
        }
        None => transitions(&c.luma_steps, FLASH_BLOCK_STEP),
    }
}

/// The one-second window with the most large-area flashes, as
/// [`flash_check`] counts them: (start, flashes); None when no per-frame
/// luma was measured. What a destination's `max_flashes_per_sec` reads.
pub fn worst_flash_second(c: &ContentAnalysis, min_area: f64) -> Option<(f64, usize)> {
    c.cadence?;
    Some(worst_second(&flash_transitions(c, min_area)).unwrap_or((0.0, 0)))
}

pub(super) fn flash_check(checks: &mut Vec<Check>, c: &ContentAnalysis, s: &MasterQcSettings) {
    if c.cadence.is_none() {
        // No per-frame luma was measured (a report from before).
        return;
    }
    let ts = flash_transitions(c, s.flash_min_area);
    let (start, flashes) = worst_second(&ts).unwrap_or((0.0, 0));
    let max = s.max_flashes_per_sec as usize;
    let times: Vec<String> = ts
        .iter()
        .filter(|t| in_window(start, t.at))
        .map(|t| format!("{:.2}", t.at))
        .collect();
    checks.push(Check::new(
        "master",
        "flashing",
        format!(
            "<= {max} flashes in any second (a flash: {:.0}% of the picture or more brightening and then darkening, or the reverse, by {:.0}% of the luma range)",
            s.flash_min_area * 100.0,
            FLASH_BLOCK_STEP * 100.0
        ),
        format!("{flashes} flashes in the worst second (from {start:.2} s)"),
        flashes <= max,
        || {
            format!(
                "{flashes} large-area flashes within one second from {start:.2} s (max {max}; transitions over {:.0}% of the picture or more at {} s): a photosensitivity risk",
                s.flash_min_area * 100.0,
                times.join(", ")
            )
        },
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(at: &[(f64, f64)]) -> Vec<LumaStep> {
        at.iter()
            .map(|&(at, delta)| LumaStep { at, delta })
            .collect()
    }

    #[test]
    fn opposing_steps_make_flashes_and_ramps_count_once() {
        // Up-down four times in 0.8 s: 4 flashes.
        let s = steps(&[
            (0.0, 0.4),
            (0.1, -0.4),
            (0.2, 0.4),
            (0.3, -0.4),
            (0.4, 0.4),
            (0.5, -0.4),
            (0.6, 0.4),
            (0.7, -0.4),
        ]);
        let t = transitions(&s, 0.1);
        assert_eq!(worst_second(&t), Some((0.0, 4)));
        // A ramp up over three frames, then down: one flash.
        let ramp = steps(&[(0.0, 0.2), (0.04, 0.2), (0.08, 0.2), (0.5, -0.6)]);
        assert_eq!(worst_second(&transitions(&ramp, 0.1)), Some((0.0, 1)));
        // A second apart as the log rounds it: not in one window.
        let edge = steps(&[(0.0833333, 0.4), (1.08333, -0.4)]);
        assert_eq!(worst_second(&transitions(&edge, 0.1)), Some((0.0833333, 0)));
        // Small steps are not transitions.
        assert_eq!(worst_second(&transitions(&s, 0.5)), None);
    }

    fn flashes_of(c: &ContentAnalysis) -> (bool, String) {
        let c = ContentAnalysis {
            cadence: Some(crate::media::analyze::Cadence {
                frames: 24,
                repeated: 0,
            }),
            ..c.clone()
        };
        let mut checks = Vec::new();
        flash_check(&mut checks, &c, &MasterQcSettings::default());
        (checks[0].passed, checks[0].measured.clone())
    }

    #[test]
    fn a_flash_is_over_a_quarter_of_the_picture() {
        use crate::media::analyze::AreaStep;
        // Six up-down pairs in a second: over 30% of the picture a flash,
        // over 20% not (the same frames' mean luma steps alone would count).
        let pairs = |share: f64| -> Vec<AreaStep> {
            (0..12)
                .map(|i| AreaStep {
                    at: i as f64 / 12.0,
                    brighter: if i % 2 == 0 { share } else { 0.0 },
                    darker: if i % 2 == 0 { 0.0 } else { share },
                })
                .collect()
        };
        let big = ContentAnalysis {
            area_steps: Some(pairs(0.3)),
            ..Default::default()
        };
        assert_eq!(
            flashes_of(&big),
            (false, "6 flashes in the worst second (from 0.00 s)".into())
        );
        let small = ContentAnalysis {
            area_steps: Some(pairs(0.2)),
            luma_steps: steps(&[(0.0, 0.3), (0.1, -0.3), (0.2, 0.3), (0.3, -0.3)]),
            ..Default::default()
        };
        assert!(flashes_of(&small).0);
        // An analysis from before the areas has only the mean luma.
        let before = ContentAnalysis {
            area_steps: None,
            ..small
        };
        assert_eq!(
            flashes_of(&before),
            (true, "2 flashes in the worst second (from 0.00 s)".into())
        );
    }
}
