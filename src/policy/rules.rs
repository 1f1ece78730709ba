//! The thresholds a verdict applies: the settings, the request's profile,
//! and the request's own stricter overrides.

use super::quality::{ssim_floor, vmaf_floor};
use crate::media::master_qc::MasterQcSettings;
use crate::media::profile::ProfileSettings;
use serde::{Deserialize, Serialize};

/// A profile's loudness requirement (ATSC A/85, EBU R128...).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct LoudnessRule {
    pub target_lufs: f64,
    pub tolerance_lu: f64,
    pub true_peak_max_dbtp: Option<f64>,
    /// The audio is normalised to the target before delivery (and the
    /// delivered audio is judged); false: the master's own loudness is.
    #[serde(default)]
    pub normalize: bool,
}

/// Every threshold the verdict uses, resolved from the settings and the
/// request's profile, so the report can show what was applied.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rules {
    pub ssim_floor: f64,
    /// The VMAF floor at the common scoring size (`quality::VMAF_FLOORS`,
    /// raised by `minVmaf`); applied only where VMAF was measured, each
    /// smaller rung with its allowance (`quality::vmaf_rung_floor`).
    #[serde(default)]
    pub vmaf_floor: f64,
    pub duration_tolerance_secs: f64,
    pub edge_secs: f64,
    pub max_black_secs: f64,
    pub max_freeze_secs: f64,
    pub max_silence_secs: f64,
    pub min_master_bits_per_pixel: f64,
    pub bitrate_tolerance: f64,
    pub loudness: Option<LoudnessRule>,
    /// The profile's master checks (sync, scan, colour, borders, cadence, flashing).
    #[serde(default)]
    pub master: MasterQcSettings,
}

impl Rules {
    pub fn new(
        policy: &PolicySettings,
        profile: Option<&ProfileSettings>,
        output_quality: u32,
    ) -> Self {
        Rules {
            ssim_floor: ssim_floor(
                output_quality,
                policy.ssim_floor_at_min,
                policy.ssim_floor_at_max,
            ),
            vmaf_floor: vmaf_floor(output_quality),
            duration_tolerance_secs: policy.duration_tolerance_secs,
            edge_secs: policy.edge_secs,
            max_black_secs: policy.max_black_secs,
            max_freeze_secs: policy.max_freeze_secs,
            max_silence_secs: policy.max_silence_secs,
            min_master_bits_per_pixel: policy.min_master_bits_per_pixel,
            bitrate_tolerance: policy.bitrate_tolerance,
            loudness: profile.and_then(|p| {
                p.loudness_target_lufs.map(|target_lufs| LoudnessRule {
                    target_lufs,
                    tolerance_lu: p.loudness_tolerance_lu,
                    true_peak_max_dbtp: p.true_peak_max_dbtp,
                    normalize: p.normalizes_loudness(),
                })
            }),
            master: profile.map(|p| p.qc.clone()).unwrap_or_default(),
        }
    }
}

/// A request's own QC thresholds. They may only make the profile stricter:
/// a floor can be raised, a maximum lowered, never the other way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QcOverrides {
    pub min_ssim: Option<f64>,
    /// The VMAF floor at the scoring size (smaller rungs keep their
    /// allowance under it); only where ffmpeg has libvmaf.
    pub min_vmaf: Option<f64>,
    pub max_black_secs: Option<f64>,
    pub max_freeze_secs: Option<f64>,
    pub max_silence_secs: Option<f64>,
    pub loudness_tolerance_lu: Option<f64>,
}

impl QcOverrides {
    /// Checks the values' ranges; each error is (field, rule).
    pub fn validate(&self) -> Vec<(&'static str, String)> {
        let mut errs = Vec::new();
        let mut range = |name: &'static str, v: Option<f64>, lo: f64, hi: f64| {
            if let Some(x) = v {
                if !(lo..=hi).contains(&x) || x.is_nan() {
                    errs.push((name, format!("must be between {lo} and {hi}")));
                }
            }
        };
        range("minSsim", self.min_ssim, 0.5, 0.999);
        range("minVmaf", self.min_vmaf, 50.0, 99.0);
        range("maxBlackSecs", self.max_black_secs, 0.0, 10.0);
        range("maxFreezeSecs", self.max_freeze_secs, 0.0, 10.0);
        range("maxSilenceSecs", self.max_silence_secs, 0.0, 10.0);
        range("loudnessToleranceLu", self.loudness_tolerance_lu, 0.1, 5.0);
        errs
    }

    /// Applies the overrides where they are stricter than the rules.
    pub fn apply(&self, rules: &mut Rules) {
        if let Some(v) = self.min_ssim {
            rules.ssim_floor = rules.ssim_floor.max(v);
        }
        if let Some(v) = self.min_vmaf {
            rules.vmaf_floor = rules.vmaf_floor.max(v);
        }
        let lower = |cur: &mut f64, v: Option<f64>| {
            if let Some(v) = v {
                *cur = cur.min(v);
            }
        };
        lower(&mut rules.max_black_secs, self.max_black_secs);
        lower(&mut rules.max_freeze_secs, self.max_freeze_secs);
        lower(&mut rules.max_silence_secs, self.max_silence_secs);
        if let (Some(l), Some(t)) = (rules.loudness.as_mut(), self.loudness_tolerance_lu) {
            l.tolerance_lu = l.tolerance_lu.min(t);
        }
    }
}

/// The QC and TTL policy (`[policy]`): thresholds every profile starts from.
#[derive(Debug, Clone, Deserialize)]
pub struct PolicySettings {
    pub duration_tolerance_secs: f64,
    pub max_master_bytes: u64,
    pub ssim_floor_at_min: f64,
    pub ssim_floor_at_max: f64,
    pub default_ttl_secs: u64,
    pub ttl_sweep_interval_secs: u64,
    pub edge_secs: f64,
    pub max_black_secs: f64,
    pub max_freeze_secs: f64,
    pub max_silence_secs: f64,
    pub min_master_bits_per_pixel: f64,
    pub bitrate_tolerance: f64,
}
