//! What a failed QC verdict may try before it rejects.

use super::verdict::{QcReport, Verdict};

/// What to do with a QC report before acting on its verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remediation {
    /// Transcode again at this quality boost (see `qc::boost_plan`) and
    /// judge the new renditions.
    ReencodeAt { boost: u8 },
    /// Act on the verdict: a pass publishes, a failure rejects.
    None,
}

/// The checks whose failure more bits can fix: a rendition under its SSIM
/// or VMAF floor.
const QUALITY_RULES: [&str; 2] = ["ssim_floor", "vmaf_floor"];

/// Re-encodes once, and only when every failure is a rendition under its
/// SSIM or VMAF floor: a higher quality can raise both, but cannot fix the content
/// (black, freeze, silence), the loudness, a bad master or the ttl. Once,
/// so a master that cannot reach its floor is rejected rather than
/// re-encoded forever. `boost_applied`: the boost the judged renditions
/// were encoded at (0 for the first encode).
pub fn remediation(report: &QcReport, boost_applied: u8) -> Remediation {
    let only_quality = report
        .failures()
        .all(|c| QUALITY_RULES.contains(&c.rule.as_str()));
    if report.verdict == Verdict::Fail && only_quality && boost_applied == 0 {
        Remediation::ReencodeAt { boost: 1 }
    } else {
        Remediation::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Check;

    /// A report with one passing check and a failure of each of `failed`.
    fn report(failed: &[&str]) -> QcReport {
        let mut checks = vec![Check::new(
            "1080p",
            "resolution",
            "1920x1080",
            "1920x1080",
            true,
            String::new,
        )];
        checks.extend(
            failed.iter().map(|rule| {
                Check::new("1080p", rule, "t", "m", false, || format!("{rule} failed"))
            }),
        );
        QcReport {
            verdict: if failed.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            output_quality: 80,
            ssim_floor: 0.9,
            vmaf_floor: None,
            ttl_remaining_secs: 60,
            profile: "default".into(),
            rules: None,
            content: None,
            loudness_normalization: None,
            vmaf_available: false,
            timings: Default::default(),
            renditions: Vec::new(),
            checks,
            destinations: Vec::new(),
            corrections: Vec::new(),
        }
    }

    #[test]
    fn an_ssim_only_failure_is_re_encoded_once() {
        let r = report(&["ssim_floor", "ssim_floor"]);
        assert_eq!(remediation(&r, 0), Remediation::ReencodeAt { boost: 1 });
        assert_eq!(
            remediation(&r, 1),
            Remediation::None,
            "a second failure rejects"
        );
        assert_eq!(remediation(&r, 2), Remediation::None);
    }

    #[test]
    fn a_vmaf_miss_is_re_encoded_once_like_an_ssim_miss() {
        for failed in [&["vmaf_floor"][..], &["vmaf_floor", "ssim_floor"]] {
            let r = report(failed);
            assert_eq!(
                remediation(&r, 0),
                Remediation::ReencodeAt { boost: 1 },
                "{failed:?}"
            );
            assert_eq!(remediation(&r, 1), Remediation::None, "{failed:?}");
        }
        assert_eq!(
            remediation(&report(&["vmaf_floor", "black_head"]), 0),
            Remediation::None
        );
    }

    #[test]
    fn any_other_failure_beside_ssim_is_not_remediated() {
        for other in [
            "loudness",
            "black_head",
            "freeze_max",
            "silence_max",
            "ttl",
            "duration",
        ] {
            assert_eq!(
                remediation(&report(&["ssim_floor", other]), 0),
                Remediation::None,
                "{other}"
            );
            assert_eq!(
                remediation(&report(&[other]), 0),
                Remediation::None,
                "{other}"
            );
        }
    }

    #[test]
    fn a_pass_is_not_remediated() {
        assert_eq!(remediation(&report(&[]), 0), Remediation::None);
        assert_eq!(remediation(&report(&[]), 1), Remediation::None);
    }
}
