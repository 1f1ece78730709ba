//! A profile's thresholds for what a master's metadata and content can
//! hide (`[profiles.NAME.qc]`): track sync, scan, colour, borders, cadence
//! and flashing. `policy` judges with them; they live beside the profile
//! they belong to.

use serde::{Deserialize, Serialize};

/// What to do with a master the transcode can correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[schema(as = MasterCorrection)]
#[serde(rename_all = "lowercase")]
pub enum Correction {
    /// Corrected in the transcode (deinterlaced, tone-mapped) and delivered.
    #[default]
    Correct,
    /// Rejected.
    Refuse,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct MasterQcSettings {
    /// Audio may start later, or end earlier or later, than the video by
    /// this many video frames.
    pub av_sync_tolerance_frames: f64,
    /// Interlaced masters: deinterlaced (`correct`) or rejected (`refuse`).
    pub interlaced: Correction,
    /// HDR or wide-gamut masters (BT.2020, PQ, HLG): tone-mapped to SDR
    /// BT.709 (`correct`) or rejected (`refuse`).
    pub hdr: Correction,
    /// A bar counts when it covers more than this fraction of the
    /// picture's height (top and bottom) or width (left and right).
    pub border_min_fraction: f64,
    /// Bars at the top and bottom only are accepted.
    pub allow_letterbox: bool,
    /// Bars at the left and right only are accepted.
    pub allow_pillarbox: bool,
    /// Bars on all four sides ("windowbox") are accepted.
    pub allow_windowbox: bool,
    /// The largest share of frames that repeat the one before (outside
    /// frozen runs, which the freeze rule judges).
    pub max_repeated_frame_share: f64,
    /// Flashes allowed in any one-second window (ITU-R BT.1702, Ofcom: 3).
    pub max_flashes_per_sec: u32,
    /// A frame is one transition of a flash when at least this share of
    /// the picture brightens, or darkens, by a tenth of the luma range
    /// (`media::analyze::FLASH_BLOCK_STEP`) from the frame before (ITU-R
    /// BT.1702 and Ofcom: a quarter of the screen). Measured down to 0.1.
    pub flash_min_area: f64,
}

impl Default for MasterQcSettings {
    fn default() -> Self {
        MasterQcSettings {
            av_sync_tolerance_frames: 2.0,
            interlaced: Correction::Correct,
            hdr: Correction::Correct,
            border_min_fraction: 0.02,
            allow_letterbox: true,
            allow_pillarbox: true,
            allow_windowbox: false,
            max_repeated_frame_share: 0.15,
            max_flashes_per_sec: 3,
            flash_min_area: 0.25,
        }
    }
}
