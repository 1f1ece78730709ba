//! Every body reelay POSTs to someone else: the requester's callback when a
//! variation reaches a terminal state, and the CDN purge when pointers move.

use super::PublishedRef;
use crate::jobs::model::{Asset, NewOutbox, Reason, Variation, KIND_CALLBACK, KIND_PURGE};
use crate::jobs::State;
use crate::media::loudness::Normalization;
use crate::policy::{Check, QcReport, Verdict};
use crate::time::{now_ms, rfc3339};
use serde::Serialize;

/// The callback type for a variation that reached `state`, if any.
pub fn event_type(state: State) -> Option<&'static str> {
    match state {
        State::Published => Some("asset.published"),
        State::Rejected => Some("asset.rejected"),
        State::Failed => Some("asset.failed"),
        State::Expired => Some("asset.expired"),
        State::Cancelled => Some("asset.cancelled"),
        _ => None,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallbackBody {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub created_at: String,
    pub data: CallbackData,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallbackData {
    pub asset_id: String,
    pub campaign: String,
    pub profile: String,
    pub source: &'static str,
    pub variation: CallbackVariation,
    pub reason: Option<Reason>,
    pub published: Option<PublishedRef>,
    pub qc: Option<CallbackQc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallbackVariation {
    pub index: i64,
    pub id: String,
    pub state: State,
}

/// The QC report as a callback carries it: without the raw ffprobe output
/// of each rendition, which the API still has.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallbackQc {
    pub verdict: Verdict,
    pub profile: String,
    pub output_quality: u32,
    pub ssim_floor: f64,
    /// The VMAF floor at the scoring size, when VMAF was measured.
    pub vmaf_floor: Option<f64>,
    pub rules: Option<crate::policy::Rules>,
    pub content: Option<crate::media::analyze::ContentAnalysis>,
    pub renditions: Vec<CallbackRendition>,
    pub vmaf_available: bool,
    pub loudness_normalization: Option<Normalization>,
    pub checks: Vec<Check>,
    /// Each destination the asset names: pass or fail with reasons.
    pub destinations: Vec<crate::policy::DestinationVerdict>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallbackRendition {
    pub name: String,
    pub ssim: f64,
    pub psnr: f64,
    pub vmaf: Option<f64>,
    pub size_bytes: u64,
    pub moov_first: bool,
}

impl From<&QcReport> for CallbackQc {
    fn from(r: &QcReport) -> Self {
        CallbackQc {
            verdict: r.verdict,
            profile: r.profile.clone(),
            output_quality: r.output_quality,
            ssim_floor: r.ssim_floor,
            vmaf_floor: r.vmaf_floor,
            rules: r.rules.clone(),
            content: r.content.clone(),
            renditions: r
                .renditions
                .iter()
                .map(|m| CallbackRendition {
                    name: m.name.clone(),
                    ssim: m.ssim,
                    psnr: m.psnr,
                    vmaf: m.vmaf,
                    size_bytes: m.size_bytes,
                    moov_first: m.moov_first,
                })
                .collect(),
            vmaf_available: r.vmaf_available,
            loudness_normalization: r.loudness_normalization.clone(),
            checks: r.checks.clone(),
            destinations: r.destinations.clone(),
        }
    }
}

/// The callback for a variation that just reached a terminal state, if the
/// asset has a callback URL and the state is one requesters hear about.
pub fn terminal_event(asset: &Asset, v: &Variation, state: State, now: i64) -> Option<NewOutbox> {
    let url = asset.callback_url.clone()?;
    let event_type = event_type(state)?;
    let id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let body = CallbackBody {
        id: id.clone(),
        event_type,
        created_at: rfc3339(now),
        data: CallbackData {
            asset_id: asset.id.clone(),
            campaign: asset.campaign.clone(),
            profile: asset.profile.clone(),
            source: asset.source.as_str(),
            variation: CallbackVariation {
                index: v.idx,
                id: v.id.clone(),
                state,
            },
            reason: v.reason(),
            published: (state == State::Published)
                .then(|| v.published.as_ref().map(PublishedRef::from))
                .flatten(),
            qc: v.qc.as_ref().map(CallbackQc::from),
        },
    };
    Some(NewOutbox {
        id,
        kind: KIND_CALLBACK,
        event_type: event_type.to_string(),
        asset_id: Some(asset.id.clone()),
        variation_id: Some(v.id.clone()),
        url,
        body: serde_json::to_string(&body).ok()?,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurgeBody<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'static str,
    created_at: String,
    urls: Vec<String>,
    keys: Vec<String>,
}

/// A purge request for pointers that just changed.
pub fn purge(
    purge_url: &str,
    asset_id: &str,
    variation_id: &str,
    urls: Vec<String>,
    keys: Vec<String>,
) -> NewOutbox {
    let id = format!("prg_{}", uuid::Uuid::new_v4().simple());
    let body = PurgeBody {
        id: &id,
        event_type: "cdn.purge",
        created_at: rfc3339(now_ms()),
        urls,
        keys,
    };
    let body = serde_json::to_string(&body).unwrap_or_default();
    NewOutbox {
        id,
        kind: KIND_PURGE,
        event_type: "cdn.purge".into(),
        asset_id: Some(asset_id.to_string()),
        variation_id: Some(variation_id.to_string()),
        url: purge_url.to_string(),
        body,
    }
}
