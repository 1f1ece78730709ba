//! What the master's metadata says about its picture, and what the outputs
//! made from it must be: the picture as displayed (display matrix and pixel
//! aspect applied), progressive scan, SDR BT.709 colour, a constant rate.

use super::verdict::Check;
use crate::media::master_qc::{Correction, MasterQcSettings};
use crate::media::probe::{Probe, VideoStream};
use crate::media::transcode::prefix::{delivery_fps, variable_rate};

fn colour_text(v: &VideoStream) -> String {
    let t = |x: &Option<String>| x.clone().unwrap_or_else(|| "untagged".into());
    format!(
        "primaries {}, transfer {}, matrix {}",
        t(&v.color_primaries),
        t(&v.color_transfer),
        t(&v.color_space)
    )
}

fn policy_text(c: Correction, corrected: &str) -> String {
    match c {
        Correction::Correct => format!("SDR BT.709, or {corrected} in the transcode"),
        Correction::Refuse => "refused by the profile".into(),
    }
}

/// The master's own picture: how it displays, its scan, colour and rate.
pub(super) fn master_checks(
    checks: &mut Vec<Check>,
    master: &Probe,
    s: &MasterQcSettings,
    profile: &str,
) {
    let Some(v) = master.video.as_ref() else {
        return;
    };
    checks.push(Check::new(
        "master",
        "display",
        "outputs made from the picture as displayed",
        match v.stored {
            Some(st) => format!("{}x{} displayed, {}", v.width, v.height, st.describe()),
            None => format!("{}x{}, square pixels, no rotation", v.width, v.height),
        },
        true,
        String::new,
    ));
    let field = v.field_order.clone().unwrap_or_else(|| "unknown".into());
    let interlaced = v.interlaced();
    checks.push(Check::new(
        "master",
        "scan",
        if s.interlaced == Correction::Correct {
            "progressive, or deinterlaced in the transcode".to_string()
        } else {
            "progressive (the profile refuses interlaced masters)".to_string()
        },
        if interlaced {
            format!("interlaced (field order {field})")
        } else {
            format!("progressive (field order {field})")
        },
        !interlaced || s.interlaced == Correction::Correct,
        || format!("the master is interlaced (field order {field}) and profile {profile} refuses interlaced masters"),
    ));
    let hdr = v.hdr_or_wide_gamut();
    checks.push(Check::new(
        "master",
        "colour",
        policy_text(s.hdr, "tone-mapped to SDR BT.709"),
        colour_text(v),
        !hdr || s.hdr == Correction::Correct,
        || {
            format!(
                "the master is HDR or wide gamut ({}) and profile {profile} refuses it; SDR BT.709 is expected",
                colour_text(v)
            )
        },
    ));
    let target = delivery_fps(v);
    checks.push(Check::new(
        "master",
        "frame_rate_constancy",
        "constant, or conformed to a constant rate in the transcode",
        if variable_rate(v) {
            format!(
                "variable (average {:.3} fps over a base of {:.3}); conformed to {target:.3} fps",
                v.avg_frame_rate.unwrap_or(0.0),
                v.r_frame_rate.unwrap_or(0.0)
            )
        } else {
            format!("constant {target:.3} fps")
        },
        true,
        String::new,
    ));
}

/// A rendition shows the master's displayed picture (upright, square
/// pixels, same orientation), progressive, tagged SDR BT.709.
pub(super) fn rendition_checks(checks: &mut Vec<Check>, s: &str, v: &VideoStream, master: &Probe) {
    if let Some(m) = master.video.as_ref() {
        let shape = |w: u32, h: u32| match w.cmp(&h) {
            std::cmp::Ordering::Greater => "landscape",
            std::cmp::Ordering::Less => "portrait",
            std::cmp::Ordering::Equal => "square",
        };
        let (want, got) = (shape(m.width, m.height), shape(v.width, v.height));
        // A profile may crop to another shape (9:16 from 16:9): that is
        // judged by the resolution rule; here, nothing may be left for the
        // player to turn or stretch.
        let upright = v.stored.is_none();
        checks.push(Check::new(
            s,
            "display",
            "square pixels, no display rotation",
            match v.stored {
                Some(st) => format!("{got} {}x{}, {}", v.width, v.height, st.describe()),
                None => format!("{got} {}x{}, square pixels", v.width, v.height),
            },
            upright,
            || {
                format!(
                    "the rendition is not the picture as displayed: {} (the master displays {want} {}x{})",
                    v.stored.map(|st| st.describe()).unwrap_or_default(),
                    m.width,
                    m.height
                )
            },
        ));
    }
    checks.push(Check::new(
        s,
        "scan",
        "progressive",
        v.field_order.clone().unwrap_or_else(|| "unknown".into()),
        !v.interlaced(),
        || "the rendition is interlaced".into(),
    ));
    let tagged = [&v.color_primaries, &v.color_transfer, &v.color_space]
        .iter()
        .all(|t| t.as_deref() == Some("bt709"));
    checks.push(Check::new(
        s,
        "colour_tags",
        "primaries bt709, transfer bt709, matrix bt709",
        colour_text(v),
        tagged,
        || {
            format!(
                "the rendition is not tagged SDR BT.709 ({})",
                colour_text(v)
            )
        },
    ));
}
