//! A destination's verdict on the delivered files, as the QC report carries
//! it (made by `destinations::verdict::judge`). Never part of the report's
//! own verdict.

use serde::{Deserialize, Serialize};

/// One rule of a destination, measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationCheck {
    /// The config key (`top_min_kbps`).
    pub rule: String,
    /// The file it was measured on, or "set".
    pub subject: String,
    pub measured: String,
    pub limit: String,
    pub passed: bool,
}

/// A destination's verdict on one variation's delivered files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationVerdict {
    pub name: String,
    pub passed: bool,
    /// The delivered files this buyer accepts (its VAST lists these).
    pub files: Vec<String>,
    /// The failed checks: rule, measured, limit.
    pub reasons: Vec<DestinationCheck>,
    /// Every check made.
    pub checks: Vec<DestinationCheck>,
}

impl DestinationVerdict {
    /// One line for people: "roku: fails top_min_kbps (1080p: 4100 kbps; >= 6000 kbps)".
    pub fn summary(&self) -> String {
        if self.passed {
            return format!("{}: passes", self.name);
        }
        let r: Vec<String> = self
            .reasons
            .iter()
            .map(|c| format!("{} ({}: {}; {})", c.rule, c.subject, c.measured, c.limit))
            .collect();
        format!("{}: fails {}", self.name, r.join(", "))
    }
}

/// One correction made so the delivered files meet the asset's
/// destinations (a frame-rate conform, a trim to a slot, an audio conform,
/// loudness normalisation), as file-QC tools record a fix: what was
/// measured on the master, what was changed, and the result measured again
/// on the delivered files. `destinations::heal` plans and records them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Correction {
    /// The destinations' rule it answers (`frame_rates`, `duration_slots_secs`).
    pub rule: String,
    /// The destinations whose rule the master did not meet.
    pub destinations: Vec<String>,
    /// The master, as measured before ("24.000 fps", "15.042 s").
    pub measured: String,
    /// What was changed ("conformed to 23.976 fps"), or why nothing was.
    pub action: String,
    /// false: the rule called for a correction that could not be made.
    pub applied: bool,
    /// Measured again on the delivered files ("23.976 fps on every file").
    pub result: String,
    /// Whether that result meets the rule.
    pub passed: bool,
}

/// What the outputs were conformed to, for the report's per-rendition
/// checks (which otherwise hold every file to the master's own rate and
/// length).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Healed {
    /// The frame rate every output was conformed to.
    pub fps: Option<f64>,
    /// The slot every output was trimmed to, seconds.
    pub trim_secs: Option<f64>,
}
