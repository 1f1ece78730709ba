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
