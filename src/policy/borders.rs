//! Borders: bars the master carries inside its picture (cropdetect's
//! extent against the analysed frame). Letterbox (top and bottom) and
//! pillarbox (left and right) are accepted or refused by the profile;
//! both at once ("windowbox") is refused unless the profile allows it.

use super::verdict::Check;
use crate::media::analyze::{analysis_size, ContentAnalysis};
use crate::media::master_qc::MasterQcSettings;
use crate::media::probe::Probe;

/// The bars, in analysis pixels: (left, right, top, bottom).
fn bars(c: &ContentAnalysis, master: &Probe) -> Option<(u32, u32, u32, u32, u32, u32)> {
    let e = c.picture_extent?;
    let (w, h) = analysis_size(master.video.as_ref()?);
    // An extent still at its start values (x1 > x2): nothing was ever bright.
    if e.x1 > e.x2 || e.y1 > e.y2 {
        return None;
    }
    Some((
        e.x1,
        (w - 1).saturating_sub(e.x2),
        e.y1,
        (h - 1).saturating_sub(e.y2),
        w,
        h,
    ))
}

/// Whether the picture carries both letterbox and pillarbox bars (each
/// over `border_min_fraction` of its side), as [`border_checks`] counts
/// them; None when the analysis could not tell.
pub fn windowboxed(c: &ContentAnalysis, master: &Probe, s: &MasterQcSettings) -> Option<bool> {
    let (left, right, top, bottom, w, h) = bars(c, master)?;
    let sides = left.min(right) as f64 > s.border_min_fraction * w as f64;
    let ends = top.min(bottom) as f64 > s.border_min_fraction * h as f64;
    Some(sides && ends)
}

/// The master's bars as shares of the analysed picture's sides, and the
/// share a bar counts from (the profile's `border_min_fraction`): what a
/// destination's `no_letterbox` and `no_pillarbox` read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bars {
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    pub min_fraction: f64,
}

impl Bars {
    /// Bars at the top and the bottom (with or without side bars).
    pub fn letterbox(&self) -> bool {
        self.top.min(self.bottom) > self.min_fraction
    }

    /// Bars at the left and the right (with or without top and bottom bars).
    pub fn pillarbox(&self) -> bool {
        self.left.min(self.right) > self.min_fraction
    }

    /// "bars left 0.0%, right 0.0%, top 11.9%, bottom 11.9%".
    pub fn describe(&self) -> String {
        format!(
            "bars left {:.1}%, right {:.1}%, top {:.1}%, bottom {:.1}%",
            self.left * 100.0,
            self.right * 100.0,
            self.top * 100.0,
            self.bottom * 100.0
        )
    }
}

/// The bars the content analysis measured; None when it could not tell.
pub fn bars_of(c: &ContentAnalysis, master: &Probe, s: &MasterQcSettings) -> Option<Bars> {
    let (left, right, top, bottom, w, h) = bars(c, master)?;
    let (w, h) = (f64::from(w), f64::from(h));
    Some(Bars {
        left: f64::from(left) / w,
        right: f64::from(right) / w,
        top: f64::from(top) / h,
        bottom: f64::from(bottom) / h,
        min_fraction: s.border_min_fraction,
    })
}

pub(super) fn border_checks(
    checks: &mut Vec<Check>,
    c: &ContentAnalysis,
    master: &Probe,
    s: &MasterQcSettings,
    profile: &str,
) {
    let Some((left, right, top, bottom, w, h)) = bars(c, master) else {
        return;
    };
    let min_x = s.border_min_fraction * w as f64;
    let min_y = s.border_min_fraction * h as f64;
    let sides = left.min(right) as f64 > min_x;
    let ends = top.min(bottom) as f64 > min_y;
    let (kind, allowed) = match (ends, sides) {
        (true, true) => (
            "letterbox and pillarbox (boxed on all four sides)",
            s.allow_windowbox,
        ),
        (true, false) => ("letterbox", s.allow_letterbox),
        (false, true) => ("pillarbox", s.allow_pillarbox),
        (false, false) => ("none", true),
    };
    let pct = |px: u32, of: u32| 100.0 * px as f64 / of as f64;
    let measured = format!(
        "{kind}: bars left {:.1}%, right {:.1}%, top {:.1}%, bottom {:.1}%",
        pct(left, w),
        pct(right, w),
        pct(top, h),
        pct(bottom, h)
    );
    let mut accepted = Vec::new();
    if s.allow_letterbox {
        accepted.push("letterbox");
    }
    if s.allow_pillarbox {
        accepted.push("pillarbox");
    }
    if s.allow_windowbox {
        accepted.push("both");
    }
    let threshold = format!(
        "bars over {}% count; accepted: {}",
        s.border_min_fraction * 100.0,
        if accepted.is_empty() {
            "none".to_string()
        } else {
            accepted.join(", ")
        }
    );
    checks.push(Check::new(
        "master",
        "borders",
        threshold,
        measured.clone(),
        allowed,
        || format!("the picture is boxed by black bars ({measured}); profile {profile} does not accept {kind}"),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::analyze::Extent;

    fn judged(e: Extent, s: &MasterQcSettings) -> (bool, String) {
        let master: Probe = serde_json::from_value(serde_json::json!({
            "format_name": "mov", "duration_secs": 4.0, "size_bytes": 1, "bit_rate": null,
            "video": {"codec": "h264", "profile": null, "level": null, "width": 1920,
                "height": 1080, "pix_fmt": null, "fps": 25.0, "nb_frames": null}}))
        .unwrap();
        let c = ContentAnalysis {
            picture_extent: Some(e),
            ..Default::default()
        };
        let mut checks = Vec::new();
        border_checks(&mut checks, &c, &master, s, "web");
        (checks[0].passed, checks[0].measured.clone())
    }

    #[test]
    fn letterbox_and_pillarbox_follow_the_profile_and_both_is_refused() {
        // The analysis frame of 1920x1080 is 480x270.
        let d = MasterQcSettings::default();
        let full = Extent {
            x1: 0,
            x2: 479,
            y1: 0,
            y2: 269,
        };
        assert!(judged(full, &d).0);
        let letter = Extent {
            x1: 0,
            x2: 479,
            y1: 30,
            y2: 239,
        };
        let (ok, m) = judged(letter, &d);
        assert!(ok && m.starts_with("letterbox"), "{m}");
        let strict = MasterQcSettings {
            allow_letterbox: false,
            ..d.clone()
        };
        assert!(!judged(letter, &strict).0);
        let pillar = Extent {
            x1: 60,
            x2: 419,
            y1: 0,
            y2: 269,
        };
        assert!(judged(pillar, &d).1.starts_with("pillarbox"));
        let boxed = Extent {
            x1: 60,
            x2: 419,
            y1: 30,
            y2: 239,
        };
        let (ok, m) = judged(boxed, &d);
        assert!(!ok && m.contains("all four sides"), "{m}");
        let windowbox = MasterQcSettings {
            allow_windowbox: true,
            ..d
        };
        assert!(judged(boxed, &windowbox).0);
    }
}
