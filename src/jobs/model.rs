//! A variation and its asset as the stages see them: decoded once from the
//! row, with the state as an enum and every JSON column as its own type. A
//! row that does not decode is an error (`sqlx::Error::ColumnDecode`), never
//! "absent" and never some other state: the pipeline fails such a variation
//! with [`ReasonCode::InternalError`] and logs which column broke.

use super::State;
use crate::media::analyze::ContentAnalysis;
use crate::media::loudness::Normalization;
use crate::media::outputs::RenditionFile;
use crate::media::probe::Probe;
use crate::media::timing::Timings;
use crate::media::transcode::{FileRole, WrittenFile, POSTER_FILE};
use crate::policy::{QcOverrides, QcReport};
use crate::publish::Manifest;
use crate::reason::ReasonCode;
use crate::runware::{ApiError, GenerationRequest, TaskItem};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use std::path::PathBuf;

/// Where an asset came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Requested through the API: a Runware task makes the master.
    Generated,
    /// A master PUT by hand under `masters/{campaign}/...`: no Runware task.
    Upload,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Generated => "generated",
            Source::Upload => "upload",
        }
    }
}

/// What the asset was asked to be: a generation, or a master uploaded by
/// hand (which is its own description, read from its probe at arrival).
#[derive(Debug, Clone, PartialEq)]
pub enum Brief {
    Generation(Box<GenerationRequest>),
    Upload { output_quality: u32 },
}

#[derive(Deserialize)]
struct UploadBrief {
    #[serde(rename = "outputQuality", default = "default_quality")]
    output_quality: u32,
}

fn default_quality() -> u32 {
    95
}

impl Brief {
    /// The outputQuality QC holds the renditions to.
    pub fn output_quality(&self) -> u32 {
        match self {
            Brief::Generation(r) => r.effective_output_quality(),
            Brief::Upload { output_quality } => *output_quality,
        }
    }

    /// The stored JSON (`assets.request_json`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Brief::Generation(r) => serde_json::to_value(r).unwrap_or_default(),
            Brief::Upload { output_quality } => {
                serde_json::json!({ "outputQuality": output_quality })
            }
        }
    }
}

/// The row as stored; [`Asset`] is what the rest of reelay sees.
#[derive(FromRow)]
struct AssetRecord {
    id: String,
    campaign: String,
    profile: String,
    request_json: sqlx::types::Json<serde_json::Value>,
    callback_url: Option<String>,
    ttl_secs: i64,
    created_at: i64,
    #[sqlx(rename = "qc_json", json(nullable))]
    qc: Option<QcOverrides>,
    source: Source,
    /// Destination names as JSON (migration 0014).
    destinations_json: sqlx::types::Json<Vec<String>>,
    #[sqlx(rename = "vast_json", json(nullable))]
    vast: Option<crate::publish::vast_fields::VastFields>,
    /// Caption tracks as JSON (migration 0017); NULL: none.
    #[sqlx(rename = "captions_json", json(nullable))]
    captions: Option<Vec<crate::publish::captions::Caption>>,
}

#[derive(Debug, Clone)]
pub struct Asset {
    pub id: String,
    pub campaign: String,
    /// The name of a configured profile (checked at the API and at reprocess).
    pub profile: String,
    pub brief: Brief,
    pub callback_url: Option<String>,
    pub ttl_secs: i64,
    pub created_at: i64,
    /// The request's QC overrides.
    pub qc: Option<QcOverrides>,
    pub source: Source,
    /// The buyers' specs (`[destinations.NAME]`) the request named.
    pub destinations: Vec<String>,
    /// The request's own VAST fields (`vast`), written into every vast.xml.
    pub vast: crate::publish::vast_fields::VastFields,
    /// The request's caption tracks (`captions`), published beside the
    /// renditions.
    pub captions: Vec<crate::publish::captions::Caption>,
}

impl Asset {
    pub fn is_upload(&self) -> bool {
        self.source == Source::Upload
    }

    /// The request as the API shows it.
    pub fn request_json(&self) -> serde_json::Value {
        self.brief.to_json()
    }
}

impl<'r, R: sqlx::Row> FromRow<'r, R> for Asset
where
    AssetRecord: FromRow<'r, R>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let r = AssetRecord::from_row(row)?;
        let decode = |e: serde_json::Error| sqlx::Error::ColumnDecode {
            index: "request_json".into(),
            source: Box::new(e),
        };
        let brief = match r.source {
            Source::Generated => Brief::Generation(Box::new(
                serde_json::from_value(r.request_json.0).map_err(decode)?,
            )),
            Source::Upload => {
                let b: UploadBrief = serde_json::from_value(r.request_json.0).map_err(decode)?;
                Brief::Upload {
                    output_quality: b.output_quality,
                }
            }
        };
        Ok(Asset {
            id: r.id,
            campaign: r.campaign,
            profile: r.profile,
            brief,
            callback_url: r.callback_url,
            ttl_secs: r.ttl_secs,
            created_at: r.created_at,
            qc: r.qc,
            source: r.source,
            destinations: r.destinations_json.0,
            vast: r.vast.unwrap_or_default(),
            captions: r.captions.unwrap_or_default(),
        })
    }
}

/// Why a variation ended the way it did, as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Reason {
    pub code: ReasonCode,
    pub message: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct Variation {
    pub id: String,
    pub asset_id: String,
    pub idx: i64,
    pub state: State,
    pub task_uuid: String,
    pub webhook_token_sha256: String,
    pub master_key: String,
    pub stage_progress: Option<f64>,
    pub stage_detail: Option<String>,
    pub poll_count: i64,
    pub error_count: i64,
    pub submitted_at: Option<i64>,
    pub upload_expires_at: Option<i64>,
    /// The generator's last result item (webhook or poll).
    #[sqlx(rename = "provider_json", json(nullable))]
    pub provider: Option<TaskItem>,
    /// A failure the generator reported.
    #[sqlx(rename = "provider_error_json", json(nullable))]
    pub provider_errors: Option<Vec<ApiError>>,
    pub cost: Option<f64>,
    pub arrived_at: Option<i64>,
    pub master_size: Option<i64>,
    pub master_sha256: Option<String>,
    #[sqlx(json(nullable))]
    pub master_probe: Option<Probe>,
    #[sqlx(rename = "outputs_json", json(nullable))]
    pub outputs: Option<Outputs>,
    #[sqlx(rename = "qc_json", json(nullable))]
    pub qc: Option<QcReport>,
    #[sqlx(rename = "published_json", json(nullable))]
    pub published: Option<Manifest>,
    pub reason_code: Option<ReasonCode>,
    pub reason: Option<String>,
    pub attempt: i64,
    pub lease_until: i64,
    pub next_run_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// ETag (no quotes) of the master object arrival verified.
    pub master_etag: Option<String>,
    /// Earlier tasks of this variation (a resubmission).
    #[sqlx(json(nullable))]
    pub previous_tasks: Option<Vec<PreviousTask>>,
    pub success_seen_at: Option<i64>,
    /// The running step's last progress report.
    #[sqlx(rename = "progress_json", json(nullable))]
    pub progress: Option<StepProgress>,
}

impl Variation {
    /// The running step's progress; None once the state moved on.
    pub fn live_progress(&self) -> Option<&StepProgress> {
        if self.state.is_terminal() {
            return None;
        }
        self.progress.as_ref()
    }

    pub fn previous_tasks(&self) -> &[PreviousTask] {
        self.previous_tasks.as_deref().unwrap_or_default()
    }

    pub fn reason(&self) -> Option<Reason> {
        match (&self.reason_code, &self.reason) {
            (Some(code), Some(message)) => Some(Reason {
                code: code.clone(),
                message: message.clone(),
            }),
            _ => None,
        }
    }

    /// Whether the generator's success report (webhook or poll) was recorded.
    pub fn success_reported(&self) -> bool {
        self.provider
            .as_ref()
            .is_some_and(|p| p.status == Some(crate::runware::TaskStatus::Success))
    }

    /// What the generator charged for this variation: the current task's
    /// cost plus that of any task it replaced.
    pub fn total_cost(&self) -> Option<f64> {
        let earlier: Vec<f64> = self
            .previous_tasks()
            .iter()
            .filter_map(|t| t.cost)
            .collect();
        if self.cost.is_none() && earlier.is_empty() {
            return None;
        }
        Some(self.cost.unwrap_or(0.0) + earlier.iter().sum::<f64>())
    }

    /// Quality steps a remediation asked for, kept across the re-transcode.
    pub fn requested_boost(&self) -> u8 {
        self.outputs.as_ref().map(|o| o.boost).unwrap_or(0)
    }
}

/// What a long step (a transcode) last reported: shown by the API while the
/// step runs, renewed with the lease heartbeat, cleared when the state changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepProgress {
    /// What runs: the state's name (`transcoding`), or a label of its own
    /// for another ffmpeg pass within the step (e.g. `loudness`): percent
    /// only grows within one label.
    pub stage: String,
    /// 0-100; None when the input's duration is unknown.
    pub percent: Option<f64>,
    /// Frames per second the encoder makes.
    pub fps: Option<f64>,
    /// Times real time (2.0: twice as fast as playback).
    pub speed: Option<f64>,
    /// Seconds left at the current speed.
    pub eta_secs: Option<f64>,
}

/// A task this variation had before it was resubmitted as a new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousTask {
    #[serde(rename = "taskUUID")]
    pub task_uuid: String,
    /// What the generator charged for it (USD), when known.
    pub cost: Option<f64>,
    /// Why it was given up, e.g. `uploadUrlExpired`.
    #[serde(rename = "reasonCode")]
    pub reason_code: ReasonCode,
    /// Unix milliseconds.
    pub at: i64,
}

/// What the transcode produced, kept in the row so QC and publish can find it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outputs {
    pub renditions: Vec<RenditionFile>,
    pub poster: PathBuf,
    /// Every file the transcode wrote (renditions and poster included).
    #[serde(default)]
    pub files: Vec<WrittenFile>,
    /// Quality steps added by remediation (0: the profile's own settings).
    #[serde(default)]
    pub boost: u8,
    /// Loudness normalisation of this transcode (pass 1's measurement, the
    /// mode pass 2 ran in), for QC to complete and record.
    #[serde(default)]
    pub loudness: Option<Normalization>,
    /// The master's content analysis, made on the transcode's own decode;
    /// None (rows from before, or a plan without it): QC runs its own pass.
    #[serde(default)]
    pub content: Option<ContentAnalysis>,
    /// Wall time of the runs so far (loudness pass, transcode), for the QC
    /// report to complete.
    #[serde(default)]
    pub timings: Timings,
    /// The master's frames the transcode wrote for QC (never published);
    /// QC reads the master where one is missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<crate::media::measure::StoredReference>,
}

impl Outputs {
    /// Every file to publish. Rows written before transcodes listed their
    /// files have only the renditions (`{name}.mp4`) and `poster.jpg`.
    pub fn written(&self) -> Vec<WrittenFile> {
        if !self.files.is_empty() {
            return self.files.clone();
        }
        let mut files: Vec<WrittenFile> = self
            .renditions
            .iter()
            .map(|r| WrittenFile {
                rel: format!("{}.mp4", r.name),
                path: r.path.clone(),
                role: FileRole::Rendition,
                output: Some(r.name.clone()),
            })
            .collect();
        files.push(WrittenFile {
            rel: POSTER_FILE.to_string(),
            path: self.poster.clone(),
            role: FileRole::Poster,
            output: None,
        });
        files
    }

    /// Whether every output is still on disk (the work folder may be gone).
    pub fn all_present(&self) -> bool {
        self.renditions.iter().all(|r| r.path.exists())
            && self.written().iter().all(|f| f.path.exists())
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct TransitionRow {
    pub from_state: State,
    pub to_state: State,
    pub at: i64,
    pub note: Option<String>,
}

/// A variation to insert with its asset.
#[derive(Debug, Clone)]
pub struct NewVariation {
    pub id: String,
    pub idx: i64,
    pub task_uuid: String,
    pub webhook_token_sha256: String,
    pub master_key: String,
}

/// The lease a worker holds on one variation.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: String,
    pub attempt: i64,
    pub state: State,
}

/// Columns a step may set. `None` leaves a column alone; `Some(None)` on the
/// nullable ones clears it.
#[derive(Debug, Default, Clone)]
pub struct Update {
    pub state: Option<State>,
    pub note: Option<String>,
    pub stage_progress: Option<Option<f64>>,
    /// Cleared by every change of state.
    pub progress: Option<Option<StepProgress>>,
    pub stage_detail: Option<Option<String>>,
    pub poll_count: Option<i64>,
    pub error_count: Option<i64>,
    pub submitted_at: Option<i64>,
    pub upload_expires_at: Option<i64>,
    pub provider: Option<Option<TaskItem>>,
    pub provider_errors: Option<Vec<ApiError>>,
    pub cost: Option<Option<f64>>,
    pub arrived_at: Option<i64>,
    pub master_size: Option<i64>,
    pub master_sha256: Option<String>,
    pub master_probe: Option<Probe>,
    pub outputs: Option<Option<Outputs>>,
    /// A new taskUUID (resubmission only).
    pub task_uuid: Option<String>,
    /// The new task's own master key (resubmission only).
    pub master_key: Option<String>,
    pub previous_tasks: Option<Vec<PreviousTask>>,
    pub success_seen_at: Option<Option<i64>>,
    pub qc: Option<QcReport>,
    pub published: Option<Manifest>,
    pub reason: Option<Reason>,
    pub next_run_at: Option<i64>,
    pub master_etag: Option<String>,
    /// Notifications to deliver once this update is committed (same transaction).
    pub outbox: Vec<NewOutbox>,
    /// Give the lease back so another worker may pick the row up at once.
    pub release: bool,
}

impl Update {
    /// A change of state: the step's progress and detail are cleared.
    pub fn to(state: State) -> Self {
        Update {
            state: Some(state),
            stage_progress: Some(None),
            progress: Some(None),
            stage_detail: Some(None),
            error_count: Some(0),
            release: true,
            ..Default::default()
        }
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    pub fn reason(mut self, code: ReasonCode, message: impl Into<String>) -> Self {
        self.reason = Some(Reason {
            code,
            message: message.into(),
        });
        self
    }
}

/// What an outbox row is for.
pub const KIND_CALLBACK: &str = "callback";
pub const KIND_PURGE: &str = "purge";

/// A notification to store in the outbox.
#[derive(Debug, Clone)]
pub struct NewOutbox {
    pub id: String,
    pub kind: &'static str,
    pub event_type: String,
    pub asset_id: Option<String>,
    pub variation_id: Option<String>,
    pub url: String,
    pub body: String,
}

/// A notification as the outbox keeps it, with where its delivery stands.
#[derive(Debug, Clone, FromRow)]
pub struct OutboxRow {
    pub id: String,
    pub kind: String,
    pub event_type: String,
    pub asset_id: Option<String>,
    pub variation_id: Option<String>,
    pub url: String,
    pub body: String,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_until: i64,
    pub delivered_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub last_error: Option<String>,
}
