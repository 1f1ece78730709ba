//! Quality and TTL policy: what a master must be to count as arrived, and
//! what a rendition must measure to be published. Pure functions over
//! measurements, so every rule is unit-tested without ffmpeg.

mod borders;
mod cadence;
mod content;
mod destination;
mod master;
mod picture;
mod quality;
mod remediation;
mod rules;
mod tracks;
mod ttl;
mod verdict;
mod video;

pub use borders::{bars_of, windowboxed, Bars};
pub use cadence::worst_flash_second;
pub use destination::{Correction, DestinationCheck, DestinationVerdict, Healed};
pub use master::{master_mismatches, upload_extension, Container, MasterSpec};
pub use quality::{ssim_floor, vmaf_floor, vmaf_rung_floor, VMAF_FLOORS, VMAF_RUNG_ALLOWANCE};
pub use remediation::{remediation, Remediation};
pub use rules::{LoudnessRule, PolicySettings, QcOverrides, Rules};
pub use tracks::av_offsets;
pub use ttl::ttl_remaining_secs;
pub use verdict::{evaluate, Check, QcInput, QcReport, RenditionMeasure, Verdict};
pub use video::{constant_frame_rate, CFR_TOLERANCE, FPS_TOLERANCE};

#[cfg(test)]
mod tests;
