//! What clients read about an asset, as types: the API's asset and variation
//! JSON and every callback payload are serialised from these, so a field is
//! added in one place and both say the same thing.

use crate::jobs::model::{Asset, OutboxRow, Reason, TransitionRow, Variation};
use crate::jobs::State;
use crate::media::loudness::Normalization;
use crate::policy::{Check, QcReport, Verdict};
use crate::time::rfc3339;
use serde::Serialize;
use serde_json::Value;

mod callback;
mod destinations;
mod published;
pub use callback::{
    event_type, purge, terminal_event, CallbackBody, CallbackData, CallbackQc, CallbackRendition,
    CallbackVariation, PurgeBody,
};
pub use destinations::DestinationView;
pub use published::{
    CaptionView, HlsVariantView, HlsView, PosterView, PublishedRef, PublishedView, RenditionView,
    StoryboardView,
};

fn round_to(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// The asset's overall status from its variations' states.
pub fn aggregate(states: &[State]) -> &'static str {
    if states.iter().any(|s| !s.is_terminal()) {
        "processing"
    } else if states.iter().all(|s| *s == State::Published) {
        "published"
    } else if states.contains(&State::Published) {
        "partially_published"
    } else if states.iter().all(|s| *s == State::Rejected) {
        "rejected"
    } else if states.iter().all(|s| *s == State::Expired) {
        "expired"
    } else if states.iter().all(|s| *s == State::Cancelled) {
        "cancelled"
    } else {
        "failed"
    }
}

/// How an asset came to be (`AssetView.source`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum AssetSource {
    Generated,
    Upload,
}

/// `aggregate`'s answers (`AssetView.status`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum AssetStatus {
    Processing,
    Published,
    PartiallyPublished,
    Rejected,
    Expired,
    Cancelled,
    Failed,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssetView {
    pub id: String,
    pub campaign: String,
    pub profile: String,
    /// `generated` (by the generator) or `upload` (a master put in the bucket).
    #[schema(value_type = AssetSource)]
    pub source: &'static str,
    /// The variations' states taken together.
    #[schema(value_type = AssetStatus)]
    pub status: &'static str,
    pub created_at: String,
    pub ttl_secs: i64,
    pub status_url: String,
    pub cost_usd: f64,
    pub callback_url: Option<String>,
    /// The buyers' specs the request named (`[destinations.NAME]`).
    pub destinations: Vec<String>,
    /// The named destinations that passed on every published variation
    /// (each has its own VAST pointer on every live set); empty until a
    /// variation is published. Each variation's `destinations` says why a
    /// destination is missing here.
    pub destinations_ready: Vec<String>,
    /// The request (detail only): Runware's fields as sent, or for a master
    /// uploaded by hand what it turned out to be.
    #[schema(value_type = Option<Object>)]
    pub generation: Option<Value>,
    pub variations: Vec<VariationView>,
    /// Callbacks and purges and where their delivery stands (detail only).
    pub notifications: Option<Vec<NotificationView>>,
    /// Variations a reprocess just restarted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reprocessing: Option<Vec<String>>,
}

/// What one asset view needs beyond its rows.
pub struct AssetDetail {
    /// Each variation's transitions, by variation id.
    pub history: std::collections::HashMap<String, Vec<TransitionRow>>,
    pub notifications: Vec<OutboxRow>,
}

impl AssetView {
    /// `detail` adds the request, each variation's history and checks, and
    /// the notifications.
    pub fn new(
        public_url: &str,
        a: &Asset,
        rows: &[Variation],
        mut detail: Option<AssetDetail>,
    ) -> Self {
        let states: Vec<State> = rows.iter().map(|v| v.state).collect();
        // Folded from +0.0: an empty f64 `sum` is -0.0, which JSON shows as "-0.0".
        let cost = rows
            .iter()
            .filter_map(Variation::total_cost)
            .fold(0.0, |a, b| a + b);
        let variations = rows
            .iter()
            .map(|v| {
                let history = detail
                    .as_mut()
                    .map(|d| d.history.remove(&v.id).unwrap_or_default());
                VariationView::new(v, history, detail.is_some())
            })
            .collect();
        AssetView {
            id: a.id.clone(),
            campaign: a.campaign.clone(),
            profile: a.profile.clone(),
            source: a.source.as_str(),
            status: aggregate(&states),
            created_at: rfc3339(a.created_at),
            ttl_secs: a.ttl_secs,
            status_url: format!("{}/v1/assets/{}", public_url.trim_end_matches('/'), a.id),
            cost_usd: round_to(cost, 4),
            callback_url: a.callback_url.clone(),
            destinations: a.destinations.clone(),
            destinations_ready: destinations::ready(a, rows),
            generation: detail.as_ref().map(|_| request_view(a, rows.first())),
            variations,
            notifications: detail
                .map(|d| d.notifications.iter().map(NotificationView::from).collect()),
            reprocessing: None,
        }
    }
}

/// The request as the API shows it. A master uploaded by hand is its own
/// request: once it arrived, its size, duration, container and sound are
/// shown in the request's own terms.
fn request_view(a: &Asset, first: Option<&Variation>) -> Value {
    let mut json = a.request_json();
    let probe = first.and_then(|v| v.master_probe.as_ref().map(|p| (v, p)));
    if let (crate::jobs::model::Brief::Upload { .. }, Some((v, probe))) = (&a.brief, probe) {
        let container = crate::policy::Container::of_upload(&v.master_key, probe);
        let spec = crate::policy::MasterSpec::from_probe(probe, container);
        let format = crate::runware::OutputFormat::from(container);
        if let Some(obj) = json.as_object_mut() {
            obj.insert("width".into(), spec.width.into());
            obj.insert("height".into(), spec.height.into());
            obj.insert(
                "duration".into(),
                (spec.duration_secs.unwrap_or(1.0) as u32).into(),
            );
            obj.insert(
                "outputFormat".into(),
                serde_json::to_value(format).unwrap_or_default(),
            );
            obj.insert(
                "providerSettings".into(),
                serde_json::json!({"klingai": {"sound": spec.sound}}),
            );
        }
    }
    json
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationView {
    pub id: String,
    pub kind: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created_at: String,
    pub attempts: i64,
    pub delivered_at: Option<String>,
    pub failed_at: Option<String>,
    pub last_error: Option<String>,
}

impl From<&OutboxRow> for NotificationView {
    fn from(r: &OutboxRow) -> Self {
        NotificationView {
            id: r.id.clone(),
            kind: r.kind.clone(),
            event_type: r.event_type.clone(),
            created_at: rfc3339(r.created_at),
            attempts: r.attempts,
            delivered_at: r.delivered_at.map(rfc3339),
            failed_at: r.failed_at.map(rfc3339),
            last_error: r.last_error.clone(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StageView {
    pub name: State,
    pub progress: Option<f64>,
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VariationView {
    pub index: i64,
    pub id: String,
    pub state: State,
    pub stage: StageView,
    pub task_uuid: String,
    pub cost_usd: Option<f64>,
    /// The long step's own reading (ffmpeg's): null fields are unknown yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<crate::jobs::model::StepProgress>,
    /// A resubmission: the tasks this variation had before, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_tasks: Option<Vec<PreviousTaskView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master: Option<MasterView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qc: Option<QcView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<PublishedView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<TransitionView>>,
    /// Each destination the asset names, judged on this variation's
    /// delivered files (pass or fail with reasons; the VAST URL of each
    /// that passed on the published set).
    pub destinations: Vec<DestinationView>,
}

impl VariationView {
    pub fn new(v: &Variation, history: Option<Vec<TransitionRow>>, detail: bool) -> Self {
        let earlier = v.previous_tasks();
        VariationView {
            index: v.idx,
            id: v.id.clone(),
            state: v.state,
            stage: StageView {
                name: v.state,
                progress: v.stage_progress.map(|p| round_to(p, 1)),
                detail: v.stage_detail.clone(),
            },
            task_uuid: v.task_uuid.clone(),
            cost_usd: v.total_cost(),
            progress: v.live_progress().cloned(),
            previous_tasks: (!earlier.is_empty()).then(|| {
                earlier
                    .iter()
                    .map(|t| PreviousTaskView {
                        task_uuid: t.task_uuid.clone(),
                        cost_usd: t.cost,
                        reason_code: t.reason_code.to_string(),
                        at: rfc3339(t.at),
                    })
                    .collect()
            }),
            reason: v.reason(),
            master: v.master_sha256.as_ref().map(|sha| {
                let probe = v.master_probe.as_ref();
                let video = probe.and_then(|p| p.video.as_ref());
                MasterView {
                    key: v.master_key.clone(),
                    size: v.master_size,
                    sha256: sha.clone(),
                    arrived_at: v.arrived_at.map(rfc3339),
                    width: video.map(|s| s.width),
                    height: video.map(|s| s.height),
                    duration_secs: probe.map(|p| p.duration_secs),
                    video_codec: video.map(|s| s.codec.clone()),
                    audio_codec: probe
                        .and_then(|p| p.audio.as_ref())
                        .map(|a| a.codec.clone()),
                }
            }),
            qc: v.qc.as_ref().map(|q| QcView::new(q, detail)),
            published: v.published.as_ref().map(PublishedView::from),
            provider: v.provider.as_ref().map(|p| ProviderView {
                video_uuid: p.video_uuid.map(|u| u.to_string()),
                video_url: p.video_url.clone(),
                seed: p.seed,
            }),
            history: history.map(|h| h.iter().map(TransitionView::from).collect()),
            destinations: destinations::of_variation(v),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PreviousTaskView {
    pub task_uuid: String,
    pub cost_usd: Option<f64>,
    pub reason_code: String,
    pub at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MasterView {
    pub key: String,
    pub size: Option<i64>,
    pub sha256: String,
    pub arrived_at: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_secs: Option<f64>,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderView {
    pub video_uuid: Option<String>,
    pub video_url: Option<String>,
    pub seed: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransitionView {
    pub from: State,
    pub to: State,
    pub at: String,
    pub note: Option<String>,
}

impl From<&TransitionRow> for TransitionView {
    fn from(t: &TransitionRow) -> Self {
        TransitionView {
            from: t.from_state,
            to: t.to_state,
            at: rfc3339(t.at),
            note: t.note.clone(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QcView {
    pub verdict: Verdict,
    pub output_quality: u32,
    pub ssim_floor: f64,
    /// The VMAF floor at the scoring size, when VMAF was measured (each
    /// rung's floor, after its allowance, is in its `vmaf_floor` check).
    pub vmaf_floor: Option<f64>,
    pub ttl_remaining_secs_at_check: i64,
    pub renditions: Vec<QcRenditionView>,
    pub vmaf_available: bool,
    pub master_loudness: Option<crate::media::analyze::Loudness>,
    pub loudness_normalization: Option<Normalization>,
    /// What was corrected for the asset's destinations (frame rate, trim,
    /// audio, loudness): the master's value, the change, the delivered
    /// files measured again.
    pub corrections: Vec<crate::policy::Correction>,
    pub failures: Vec<Check>,
    /// Every check (detail only).
    pub checks: Option<Vec<Check>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QcRenditionView {
    pub name: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub ssim: f64,
    pub psnr_db: f64,
    pub duration_secs: f64,
    pub bit_rate: Option<u64>,
    pub size_bytes: u64,
    pub moov_first: bool,
    pub vmaf: Option<f64>,
    /// The one size every rung was scored at for VMAF.
    pub vmaf_scored_at: Option<crate::media::measure::FrameSize>,
}

impl QcView {
    pub fn new(qc: &QcReport, detail: bool) -> Self {
        QcView {
            verdict: qc.verdict,
            output_quality: qc.output_quality,
            ssim_floor: qc.ssim_floor,
            vmaf_floor: qc.vmaf_floor,
            ttl_remaining_secs_at_check: qc.ttl_remaining_secs,
            renditions: qc
                .renditions
                .iter()
                .map(|r| QcRenditionView {
                    name: r.name.clone(),
                    width: r.probe.video.as_ref().map(|v| v.width),
                    height: r.probe.video.as_ref().map(|v| v.height),
                    ssim: round_to(r.ssim, 4),
                    psnr_db: round_to(r.psnr, 2),
                    duration_secs: r.probe.duration_secs,
                    bit_rate: r.probe.bit_rate,
                    size_bytes: r.size_bytes,
                    moov_first: r.moov_first,
                    vmaf: r.vmaf,
                    vmaf_scored_at: r.vmaf_scored_at,
                })
                .collect(),
            vmaf_available: qc.vmaf_available,
            master_loudness: qc.content.as_ref().and_then(|c| c.loudness),
            loudness_normalization: qc.loudness_normalization.clone(),
            corrections: qc.corrections.clone(),
            failures: qc.failures().cloned().collect(),
            checks: detail.then(|| qc.checks.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_status_reads_like_the_variations() {
        use State::*;
        assert_eq!(aggregate(&[Published, Transcoding]), "processing");
        assert_eq!(aggregate(&[Published, Published]), "published");
        assert_eq!(aggregate(&[Published, Rejected]), "partially_published");
        assert_eq!(aggregate(&[Rejected]), "rejected");
        assert_eq!(aggregate(&[Failed, Rejected]), "failed");
        assert_eq!(aggregate(&[Cancelled, Cancelled]), "cancelled");
    }
}
