//! Checks of what the master's content analysis found: black, frozen and
//! silent runs, loudness and true peak.

use super::rules::LoudnessRule;
use super::verdict::Check;
use crate::media::analyze::{Loudness, Run};
use crate::media::loudness::Normalization;

/// Loudness and true-peak checks of one measurement. `normalized`: the
/// audio was normalised, so the words name the master's measurement too.
pub(super) fn loudness_checks(
    checks: &mut Vec<Check>,
    subject: &str,
    l: &Loudness,
    rule: &LoudnessRule,
    profile: &str,
    normalized: Option<&Normalization>,
) {
    let off = (l.integrated_lufs - rule.target_lufs).abs();
    let dir = if l.integrated_lufs > rule.target_lufs {
        "too loud"
    } else {
        "too quiet"
    };
    let before = normalized.and_then(|n| n.before);
    let how = normalized
        .and_then(|n| n.mode)
        .map(|m| format!(" in {} mode", m.as_str()))
        .unwrap_or_default();
    checks.push(Check::new(
        subject,
        "loudness",
        format!("{} LUFS +/- {} LU", rule.target_lufs, rule.tolerance_lu),
        format!("{:.1} LUFS", l.integrated_lufs),
        off <= rule.tolerance_lu,
        || match before {
            Some(b) => format!(
                "still {dir} after normalisation: the delivered audio measures {:.1} LUFS \
                 (the master measured {:.1} LUFS and was normalised once{how}); \
                 profile {profile} wants {} +/- {} LU",
                l.integrated_lufs, b.input_i, rule.target_lufs, rule.tolerance_lu
            ),
            None => format!(
                "{dir}: integrated loudness {:.1} LUFS, profile {profile} wants {} +/- {} LU",
                l.integrated_lufs, rule.target_lufs, rule.tolerance_lu
            ),
        },
    ));
    if let Some(cap) = rule.true_peak_max_dbtp {
        checks.push(Check::new(
            subject,
            "true_peak",
            format!("<= {cap} dBTP"),
            format!("{:.1} dBTP", l.true_peak_dbtp),
            l.true_peak_dbtp <= cap,
            || match before {
                Some(b) => format!(
                    "true peak {:.1} dBTP after normalisation is over the cap of {cap} dBTP \
                     (the master peaked at {:.1} dBTP)",
                    l.true_peak_dbtp, b.input_tp
                ),
                None => format!(
                    "true peak {:.1} dBTP is over the cap of {cap} dBTP (clipping risk)",
                    l.true_peak_dbtp
                ),
            },
        ));
    }
}

pub(super) fn runs(r: &[Run]) -> String {
    if r.is_empty() {
        return "none".into();
    }
    r.iter()
        .map(|r| format!("{:.2}-{:.2} s", r.start, r.end))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Head, tail and length checks for one detector's runs.
pub(super) fn run_checks(
    checks: &mut Vec<Check>,
    what: &str,
    found: &[Run],
    duration: f64,
    edge: f64,
    max: f64,
) {
    let head = found.iter().find(|r| r.start <= edge);
    checks.push(Check::new(
        "master",
        &format!("{what}_head"),
        "none at the head",
        runs(
            &found
                .iter()
                .filter(|r| r.start <= edge)
                .copied()
                .collect::<Vec<_>>(),
        ),
        head.is_none(),
        || {
            format!(
                "the master opens on {:.2} s of {what} (no {what} lead-in allowed)",
                head.map(Run::duration).unwrap_or(0.0)
            )
        },
    ));
    let tail = found.iter().find(|r| r.end >= duration - edge);
    checks.push(Check::new(
        "master",
        &format!("{what}_tail"),
        "none at the tail",
        runs(
            &found
                .iter()
                .filter(|r| r.end >= duration - edge)
                .copied()
                .collect::<Vec<_>>(),
        ),
        tail.is_none(),
        || {
            format!(
                "the master ends on {:.2} s of {what}",
                tail.map(Run::duration).unwrap_or(0.0)
            )
        },
    ));
    let long = found.iter().find(|r| r.duration() > max);
    checks.push(Check::new(
        "master",
        &format!("{what}_max"),
        format!("no run over {max} s"),
        runs(found),
        long.is_none(),
        || {
            let r = long.copied().unwrap_or(Run {
                start: 0.0,
                end: 0.0,
            });
            format!(
                "{:.2} s of {what} from {:.2} s to {:.2} s (max {max} s)",
                r.duration(),
                r.start,
                r.end
            )
        },
    ));
}
