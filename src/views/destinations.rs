//! What the API says of the buyers' specs an asset names: each variation's
//! verdicts, with the VAST pointer of each destination that passed on the
//! published set, and the destinations the asset is ready for.

use crate::jobs::model::{Asset, Variation};
use crate::jobs::State;
use crate::policy::DestinationCheck;
use serde::Serialize;

/// One destination's verdict on a variation.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DestinationView {
    pub name: String,
    pub passed: bool,
    /// The failed rules: rule (the config key), subject, measured, limit.
    pub reasons: Vec<DestinationCheck>,
    /// The outputs it accepts (its VAST lists only these).
    pub files: Vec<String>,
    /// Its own VAST pointer (`vast/{name}.xml`), set when it passed on the
    /// published set.
    pub vast_url: Option<String>,
}

/// A variation's verdicts: what its live manifest states when it is
/// published (the pointers that exist), else its latest QC report's.
pub fn of_variation(v: &Variation) -> Vec<DestinationView> {
    match v.published.as_ref().filter(|m| !m.destinations.is_empty()) {
        Some(m) => m
            .destinations
            .iter()
            .map(|d| DestinationView {
                name: d.name.clone(),
                passed: d.passed,
                reasons: d.reasons.clone(),
                files: d.files.clone(),
                vast_url: d.vast_url.clone(),
            })
            .collect(),
        None => {
            v.qc.iter()
                .flat_map(|q| &q.destinations)
                .map(|d| DestinationView {
                    name: d.name.clone(),
                    passed: d.passed,
                    reasons: d.reasons.clone(),
                    files: d.files.clone(),
                    vast_url: None,
                })
                .collect()
        }
    }
}

/// The asset's destinations that passed on every published variation (at
/// least one published): each of them has a VAST pointer for each live
/// set. A variation not published (yet, or turned down) does not count.
pub fn ready(a: &Asset, rows: &[Variation]) -> Vec<String> {
    let live: Vec<_> = rows
        .iter()
        .filter(|v| v.state == State::Published)
        .filter_map(|v| v.published.as_ref())
        .collect();
    if live.is_empty() {
        return Vec::new();
    }
    a.destinations
        .iter()
        .filter(|name| {
            live.iter().all(|m| {
                m.destinations
                    .iter()
                    .any(|d| &d.name == *name && d.passed && d.vast_url.is_some())
            })
        })
        .cloned()
        .collect()
}
