//! The steps of a variation's life. Each step reads the row, does its work,
//! and writes the next state under the claim's fencing token. Every step is
//! safe to run twice: a crash between the work and the write only repeats
//! the work (the submit is idempotent through the task's fixed UUID, uploads
//! overwrite the same keys, the manifest is written last).

use super::store::{now_ms, AssetRow, Claim, PreviousTask, Store, Update, VariationRow};
use super::worker::{ffmpeg_progress, ProgressCell};
use super::State;
use crate::config::Settings;
use crate::media::loudness::Normalization;
use crate::media::probe::Probe;
use crate::media::process::{Progress, Runner};
use crate::media::transcode::{
    boost_plan, plan_for, transcode, FileRole, WrittenFile, POSTER_FILE,
};
use crate::policy::{self, Expected, Verdict};
use crate::publish::set::{self as pubset, SetError, SetFacts, Texts};
use crate::publish::{self, Layout, Manifest, OutputFile, PublishedFile};
use crate::qc::{
    measure_and_evaluate, prepare_loudness, read_master, rendition_files, QcRequest, RenditionFile,
};
use crate::runware::client::{poll_delay, ClientError, RunwareClient, SubmitOutcome};
use crate::runware::{GenerationRequest, TaskStatus};
use crate::storage::{ObjectKey, ObjectStore};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// An error the step could not turn into a state: retried with backoff.
pub type StepError = anyhow::Error;
type StepResult = Result<(), StepError>;

/// What the generator said about a task whose master is already in the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reported {
    Success,
    Running,
    /// Failed, or the poll did not get through.
    Unknown,
}

/// Whether the generator's success report (webhook or poll) was recorded.
fn success_reported(v: &VariationRow) -> bool {
    v.provider_json
        .as_deref()
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        .is_some_and(|j| j.get("status").and_then(|s| s.as_str()) == Some("success"))
}

pub struct Pipeline {
    pub store: Store,
    pub objects: ObjectStore,
    pub runware: RunwareClient,
    pub runner: Runner,
    pub settings: Arc<Settings>,
    /// Base URL the generator reaches reelay at (webhooks).
    pub public_url: String,
    /// Base URL of published files.
    pub cdn_base: String,
    pub work_dir: PathBuf,
    pub webhook_secret: Vec<u8>,
    pub wake: Arc<Notify>,
}

/// What the transcode produced, kept in the row so QC and publish can find it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Outputs {
    renditions: Vec<RenditionFile>,
    poster: PathBuf,
    /// Every file the transcode wrote (renditions and poster included).
    #[serde(default)]
    files: Vec<WrittenFile>,
    /// Quality steps added by remediation (0: the profile's own settings).
    #[serde(default)]
    boost: u8,
    /// Loudness normalisation of this transcode (pass 1's measurement, the
    /// mode pass 2 ran in), for QC to complete and record.
    #[serde(default)]
    loudness: Option<Normalization>,
}

impl Outputs {
    /// Every file to publish. Rows written before transcodes listed their
    /// files have only the renditions (`{name}.mp4`) and `poster.jpg`.
    fn written(&self) -> Vec<WrittenFile> {
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
    fn all_present(&self) -> bool {
        self.renditions.iter().all(|r| r.path.exists())
            && self.written().iter().all(|f| f.path.exists())
    }
}

/// Quality steps a remediation asked for, kept across the re-transcode.
fn requested_boost(v: &VariationRow) -> u8 {
    v.outputs_json
        .as_deref()
        .and_then(|j| serde_json::from_str::<Outputs>(j).ok())
        .map(|o| o.boost)
        .unwrap_or(0)
}

impl Pipeline {
    pub async fn step(&self, claim: &mut Claim, progress: ProgressCell) -> StepResult {
        let v = self
            .store
            .variation(&claim.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("variation {} vanished", claim.id))?;
        let asset = self
            .store
            .asset(&v.asset_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("asset {} vanished", v.asset_id))?;
        let req: GenerationRequest = serde_json::from_str(&asset.request_json)?;
        match claim.state {
            State::Requested => self.submit(claim, &v, &req).await,
            // A master uploaded by hand has no generation to wait for.
            State::Submitted | State::Generating if asset.is_upload() => {
                self.arrive_upload(claim, &v, &req).await
            }
            State::Submitted | State::Generating => {
                self.await_arrival(claim, &v, &asset, &req).await
            }
            State::Arrived | State::Transcoding => {
                self.transcode(claim, &v, &asset, progress).await
            }
            State::Checking => self.check(claim, &v, &asset, &req).await,
            State::Publishing => self.publish(claim, &v, &asset).await,
            _ => Ok(()),
        }
    }

    /// Moves the claim on, keeping the lease when the same worker continues.
    async fn advance(
        &self,
        claim: &mut Claim,
        mut update: Update,
        keep_lease: bool,
    ) -> Result<bool, StepError> {
        update.release = !keep_lease;
        let to = update.state;
        let ok = self.store.update(claim, update).await?;
        if ok {
            if let Some(s) = to {
                claim.state = s;
            }
            if !keep_lease {
                self.wake.notify_one();
            }
        } else {
            tracing::warn!("lease lost before the step's result was written");
        }
        Ok(ok)
    }

    pub fn webhook_token(&self, variation_id: &str) -> String {
        webhook_token(&self.webhook_secret, variation_id)
    }

    // ---- requested -> submitted -------------------------------------------------

    async fn submit(
        &self,
        claim: &mut Claim,
        v: &VariationRow,
        req: &GenerationRequest,
    ) -> StepResult {
        let rw = &self.settings.runware;
        let expiry = Duration::from_secs(rw.upload_url_expiry_secs);
        let key = ObjectKey::parse(&v.master_key)?;
        let upload_url = self
            .objects
            .presign_put(&self.settings.storage.masters_bucket, &key, expiry)
            .await?;
        let webhook_url = format!(
            "{}/v1/webhooks/runware/{}?token={}",
            self.public_url.trim_end_matches('/'),
            v.id,
            self.webhook_token(&v.id)
        );
        let task_uuid = Uuid::parse_str(&v.task_uuid)?;
        let task = req.to_task(task_uuid, &rw.model, Some(&upload_url), Some(&webhook_url));
        let now = now_ms();
        let submitted = |note: &str| Update {
            submitted_at: Some(now),
            upload_expires_at: Some(now + expiry.as_millis() as i64),
            next_run_at: Some(now + poll_delay(0).as_millis() as i64),
            stage_detail: Some(Some("waiting for the generator".into())),
            ..Update::to(State::Submitted).note(note)
        };
        match self.runware.submit(&task).await {
            Ok(SubmitOutcome::Accepted { .. }) => {
                self.advance(claim, submitted("task accepted by the generator"), false)
                    .await?;
            }
            Ok(SubmitOutcome::AlreadyExists) => {
                // A previous attempt got through before we could record it.
                self.advance(
                    claim,
                    submitted("task already existed (conflictTaskUUID); polling it"),
                    false,
                )
                .await?;
            }
            Err(ClientError::Rejected {
                http_status,
                errors,
            }) => {
                self.fail_with_provider_errors(
                    claim,
                    &errors,
                    &serde_json::to_string(&errors)?,
                    "refused the task",
                    ("providerRejected", format!("HTTP {http_status}")),
                )
                .await?;
            }
            Err(e) => {
                if now - v.created_at > rw.task_deadline_secs as i64 * 1000 {
                    let update = Update::to(State::Failed).reason(
                        "providerUnavailable",
                        format!("could not submit before the deadline: {e}"),
                    );
                    self.advance(claim, update, false).await?;
                } else {
                    return Err(anyhow::anyhow!("submitting the task: {e}"));
                }
            }
        }
        Ok(())
    }

    // ---- submitted/generating -> arrived ------------------------------------------

    async fn await_arrival(
        &self,
        claim: &mut Claim,
        v: &VariationRow,
        asset: &AssetRow,
        req: &GenerationRequest,
    ) -> StepResult {
        let now = now_ms();
        let rw = &self.settings.runware;
        let grace_ms = rw.upload_grace_secs as i64 * 1000;
        let key = ObjectKey::parse(&v.master_key)?;
        let bucket = &self.settings.storage.masters_bucket;
        let task_uuid = Uuid::parse_str(&v.task_uuid)?;

        // Whoever came first (webhook, S3 event, poll), the object itself decides.
        if let Some(meta) = self.objects.head(bucket, &key).await? {
            if v.cost.is_none() && !success_reported(v) {
                // The upload lands before the generator reports success: give
                // the report (it carries the cost) a moment, within the grace.
                let seen = self.capture_result(v, task_uuid).await;
                let uploaded_ms = meta
                    .last_modified
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(now);
                if seen == Reported::Running && now < uploaded_ms + grace_ms {
                    let update = Update {
                        next_run_at: Some(now + 1000),
                        stage_detail: Some(Some(
                            "master uploaded; waiting for the generator's report".into(),
                        )),
                        release: true,
                        ..Default::default()
                    };
                    self.advance(claim, update, false).await?;
                    return Ok(());
                }
            }
            return self
                .confirm_arrival(claim, v, req, meta.size, meta.etag.as_deref())
                .await;
        }
        if let Some(err) = &v.provider_error_json {
            return self.fail_from_provider(claim, err).await;
        }
        let submitted_at = v.submitted_at.unwrap_or(v.created_at);
        if now > submitted_at + rw.task_deadline_secs as i64 * 1000 {
            let update = Update::to(State::Failed).reason(
                "timeoutProvider",
                format!(
                    "the generator did not deliver within {} s of submission",
                    rw.task_deadline_secs
                ),
            );
            self.advance(claim, update, false).await?;
            return Ok(());
        }
        if let Some(exp) = v.upload_expires_at {
            if now > exp + grace_ms {
                return self
                    .upload_never_came(
                        claim,
                        v,
                        "uploadUrlExpired",
                        "no upload arrived before the presigned upload URL expired",
                    )
                    .await;
            }
        }
        if let Some(seen) = v.success_seen_at {
            if now > seen + grace_ms {
                return self
                    .upload_never_came(
                        claim,
                        v,
                        "uploadMissing",
                        &format!(
                            "the generator reported success but no upload reached the bucket within {} s",
                            rw.upload_grace_secs
                        ),
                    )
                    .await;
            }
        }

        let polls = v.poll_count + 1;
        let mut update = Update {
            poll_count: Some(polls),
            next_run_at: Some(now + poll_delay(polls as u32).as_millis() as i64),
            release: true,
            ..Default::default()
        };
        match self.runware.get_response(task_uuid).await {
            Ok(poll) => {
                if let Some(err) = poll.errors.first() {
                    return self
                        .fail_from_provider(claim, &serde_json::to_string(&[err])?)
                        .await;
                }
                if let Some(item) = poll
                    .items
                    .iter()
                    .find(|i| i.status == Some(TaskStatus::Success))
                {
                    update.provider_json = Some(Some(serde_json::to_string(item)?));
                    update.cost = item.cost.map(Some);
                    update.state = Some(State::Generating);
                    update.stage_progress = Some(Some(100.0));
                    if v.success_seen_at.is_none() {
                        update.success_seen_at = Some(Some(now));
                    }
                    update.stage_detail =
                        Some(Some("generator finished; waiting for the upload".into()));
                    update.next_run_at = Some(now + 1000);
                } else if let Some(item) = poll.items.first() {
                    update.state = Some(State::Generating);
                    update.stage_progress = Some(item.progress);
                    update.stage_detail = Some(Some("generating".into()));
                }
                if update.state == Some(State::Generating) && claim.state != State::Generating {
                    update.note = Some("generator reports the task running".into());
                }
            }
            Err(ClientError::Rejected { errors, .. }) => {
                return self
                    .fail_from_provider(claim, &serde_json::to_string(&errors)?)
                    .await;
            }
            Err(e) => {
                update.stage_detail = Some(Some(format!(
                    "polling the generator failed, will retry: {e}"
                )));
            }
        }
        let _ = asset;
        self.advance(claim, update, false).await?;
        Ok(())
    }

    /// One poll for the result item once the master is in the bucket, so
    /// its cost is recorded even when no webhook came. Bounded: arrival never
    /// waits long on the generator.
    async fn capture_result(&self, v: &VariationRow, task_uuid: Uuid) -> Reported {
        let poll = tokio::time::timeout(
            Duration::from_secs(10),
            self.runware.get_response(task_uuid),
        )
        .await;
        match poll {
            Ok(Ok(p)) => match p.successes().next() {
                Some(item) => {
                    let json = serde_json::to_string(item).ok();
                    if let Err(e) = self
                        .store
                        .record_provider_report(&v.id, json.as_deref(), None, item.cost)
                        .await
                    {
                        tracing::warn!(error = %e, "recording the generator's result");
                    }
                    Reported::Success
                }
                None if p.is_failed() => Reported::Unknown,
                None => Reported::Running,
            },
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "result poll after upload failed");
                Reported::Unknown
            }
            Err(_) => Reported::Unknown,
        }
    }

    /// No upload came (URL expired, or success without an upload): resubmit
    /// once as a new task when the policy says so, else fail with `code`.
    async fn upload_never_came(
        &self,
        claim: &mut Claim,
        v: &VariationRow,
        code: &str,
        message: &str,
    ) -> StepResult {
        let mut earlier = v.previous_tasks();
        if !self.settings.runware.resubmit_missing_upload || !earlier.is_empty() {
            let message = match earlier.last() {
                Some(prev) => format!(
                    "{message} (task {}, which already replaced task {})",
                    v.task_uuid, prev.task_uuid
                ),
                None => message.to_string(),
            };
            let update = Update::to(State::Failed)
                .reason(code, message)
                .note(format!("no upload ({code})"));
            self.advance(claim, update, false).await?;
            return Ok(());
        }
        // Runware's taskUUID is unique: a new task needs a new one. Both are kept.
        let new_uuid = Uuid::new_v4();
        let now = now_ms();
        earlier.push(PreviousTask {
            task_uuid: v.task_uuid.clone(),
            cost: v.cost,
            reason_code: code.to_string(),
            at: now,
        });
        let update = Update {
            task_uuid: Some(new_uuid.to_string()),
            previous_tasks: Some(serde_json::to_string(&earlier)?),
            success_seen_at: Some(None),
            provider_json: Some(None),
            cost: Some(None),
            poll_count: Some(0),
            next_run_at: Some(now),
            ..Update::to(State::Requested).note(format!(
                "{message} ({code}); resubmitting once as task {new_uuid} with a fresh upload URL (was task {})",
                v.task_uuid
            ))
        };
        self.advance(claim, update, false).await?;
        Ok(())
    }

    async fn fail_from_provider(&self, claim: &mut Claim, errors_json: &str) -> StepResult {
        let errors: Vec<crate::runware::ApiError> =
            serde_json::from_str(errors_json).unwrap_or_default();
        self.fail_with_provider_errors(
            claim,
            &errors,
            errors_json,
            "failed the task",
            ("providerError", "the generator reported a failure".into()),
        )
        .await
    }

    /// Ends the variation `failed` with the generator's first error (code,
    /// message and the parameter it names) as the reason; `errors_json` (all
    /// of them) is kept on the row. `fallback` is the reason when there is
    /// no error object.
    async fn fail_with_provider_errors(
        &self,
        claim: &mut Claim,
        errors: &[crate::runware::ApiError],
        errors_json: &str,
        what: &str,
        fallback: (&str, String),
    ) -> StepResult {
        let (code, message) = errors
            .first()
            .map(|e| {
                let param = e
                    .parameter
                    .as_deref()
                    .map(|p| format!(" (parameter {p})"))
                    .unwrap_or_default();
                (e.code.clone(), format!("{}{}", e.message, param))
            })
            .unwrap_or_else(|| (fallback.0.to_owned(), fallback.1));
        let update = Update {
            provider_error_json: Some(errors_json.to_string()),
            ..Update::to(State::Failed)
                .reason(code.clone(), format!("the generator {what}: {message}"))
                .note(format!("provider error {code}"))
        };
        self.advance(claim, update, false).await?;
        Ok(())
    }

    fn work(&self, v: &VariationRow) -> PathBuf {
        self.work_dir.join(&v.id)
    }

    async fn confirm_arrival(
        &self,
        claim: &mut Claim,
        v: &VariationRow,
        req: &GenerationRequest,
        size: u64,
        etag: Option<&str>,
    ) -> StepResult {
        let policy = &self.settings.policy;
        if size == 0 || size > policy.max_master_bytes {
            let update = Update::to(State::Rejected).reason(
                "masterSize",
                format!(
                    "the master is {size} bytes (allowed 1..={})",
                    policy.max_master_bytes
                ),
            );
            self.advance(claim, update, false).await?;
            return Ok(());
        }
        let dir = self.work(v);
        tokio::fs::create_dir_all(&dir).await?;
        let path = dir.join(master_file_name(req));
        let key = ObjectKey::parse(&v.master_key)?;
        let got = self
            .objects
            .download_to_file(&self.settings.storage.masters_bucket, &key, &path)
            .await?;
        let probe = match self.read_master(&path).await? {
            Ok(p) => p,
            Err((code, reason)) => {
                let update = Update {
                    master_size: Some(got.size as i64),
                    master_sha256: Some(got.sha256_hex.clone()),
                    ..Update::to(State::Rejected).reason(code, reason)
                };
                self.advance(claim, update, false).await?;
                return Ok(());
            }
        };
        let expected = Expected::from_request(req);
        let mismatches =
            policy::master_mismatches(&probe, &expected, policy.duration_tolerance_secs);
        let base = Update {
            master_size: Some(got.size as i64),
            master_sha256: Some(got.sha256_hex.clone()),
            master_probe: Some(serde_json::to_string(&probe)?),
            master_etag: etag.map(|e| e.trim_matches('"').to_string()),
            ..Default::default()
        };
        let update = if mismatches.is_empty() {
            let video = probe.video.as_ref();
            Update {
                arrived_at: Some(now_ms()),
                ..Update {
                    state: Some(State::Arrived),
                    stage_progress: Some(None),
                    stage_detail: Some(None),
                    error_count: Some(0),
                    note: Some(format!(
                        "master verified: {}x{}, {:.2} s, {} bytes, sha256 {}",
                        video.map(|v| v.width).unwrap_or(0),
                        video.map(|v| v.height).unwrap_or(0),
                        probe.duration_secs,
                        got.size,
                        &got.sha256_hex[..12]
                    )),
                    ..base
                }
            }
        } else {
            Update {
                state: Some(State::Rejected),
                reason_code: Some("masterMismatch".into()),
                reason: Some(format!(
                    "the master does not match the request: {}",
                    mismatches.join("; ")
                )),
                ..base
            }
        };
        self.advance(claim, update, false).await?;
        Ok(())
    }

    /// Arrival checks for a master uploaded by hand: it is its own request,
    /// so the checks are that it is there, of a sane size, readable and has
    /// video; what the probe finds (size, duration, audio) becomes the
    /// asset's request for everything after.
    async fn arrive_upload(
        &self,
        claim: &mut Claim,
        v: &VariationRow,
        req: &GenerationRequest,
    ) -> StepResult {
        let key = ObjectKey::parse(&v.master_key)?;
        let bucket = &self.settings.storage.masters_bucket;
        let Some(meta) = self.objects.head(bucket, &key).await? else {
            let u = Update::to(State::Failed).reason(
                "masterMissing",
                "the uploaded master is no longer in the bucket",
            );
            self.advance(claim, u, false).await?;
            return Ok(());
        };
        let max = self.settings.policy.max_master_bytes;
        if meta.size == 0 || meta.size > max {
            let u = Update::to(State::Rejected).reason(
                "masterSize",
                format!("the master is {} bytes (allowed 1..={max})", meta.size),
            );
            self.advance(claim, u, false).await?;
            return Ok(());
        }
        let dir = self.work(v);
        if dir.exists() {
            // A previous version's files must not be mistaken for this one's.
            tokio::fs::remove_dir_all(&dir).await?;
        }
        tokio::fs::create_dir_all(&dir).await?;
        let path = dir.join(format!("master.{}", upload_extension(&v.master_key)));
        let got = self.objects.download_to_file(bucket, &key, &path).await?;
        let identity = Update {
            master_size: Some(got.size as i64),
            master_sha256: Some(got.sha256_hex.clone()),
            master_etag: meta
                .etag
                .as_deref()
                .map(|e| e.trim_matches('"').to_string()),
            ..Default::default()
        };
        let probe = match self.read_master(&path).await? {
            Ok(p) => p,
            Err((code, reason)) => {
                let u = reject(identity, code, reason);
                self.advance(claim, u, false).await?;
                return Ok(());
            }
        };
        let Some(video) = probe.video.clone() else {
            let u = Update {
                master_probe: Some(serde_json::to_string(&probe)?),
                ..identity
            };
            let u = reject(u, "masterMismatch", "the master has no video stream".into());
            self.advance(claim, u, false).await?;
            return Ok(());
        };
        let request = upload_request(req, &probe, &v.master_key)?;
        let u = Update {
            arrived_at: Some(now_ms()),
            master_probe: Some(serde_json::to_string(&probe)?),
            asset_request_json: Some(serde_json::to_string(&request)?),
            state: Some(State::Arrived),
            stage_progress: Some(None),
            stage_detail: Some(None),
            error_count: Some(0),
            release: true,
            note: Some(format!(
                "uploaded master verified: {}x{}, {:.2} s, {} bytes, sha256 {}",
                video.width,
                video.height,
                probe.duration_secs,
                got.size,
                &got.sha256_hex[..12]
            )),
            ..identity
        };
        self.advance(claim, u, false).await?;
        Ok(())
    }

    /// The arrival read of a downloaded master, for generated and uploaded
    /// masters alike ([`crate::qc::read_master`], which `reelay process`
    /// runs too). `Err((code, reason))` is a rejection; the outer error is ours.
    async fn read_master(
        &self,
        path: &Path,
    ) -> Result<Result<Probe, (&'static str, String)>, StepError> {
        let deadline = Duration::from_secs(self.settings.media.transcode_timeout_secs);
        Ok(read_master(&self.runner, path, deadline).await?)
    }

    /// The verified master on local disk, fetched again if the work folder
    /// was lost (another machine, a wiped disk).
    async fn local_master(&self, v: &VariationRow) -> Result<PathBuf, StepError> {
        let dir = self.work(v);
        let mut found = None;
        if let Ok(mut rd) = tokio::fs::read_dir(&dir).await {
            while let Some(e) = rd.next_entry().await? {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("master.") {
                    found = Some(e.path());
                }
            }
        }
        let expected_sha = v.master_sha256.clone().unwrap_or_default();
        if let Some(p) = found {
            let (sha, _) = publish::digest_file(&p).await?;
            if sha == expected_sha {
                return Ok(p);
            }
        }
        tokio::fs::create_dir_all(&dir).await?;
        let path = dir.join("master.bin");
        let key = ObjectKey::parse(&v.master_key)?;
        let got = self
            .objects
            .download_to_file(&self.settings.storage.masters_bucket, &key, &path)
            .await?;
        anyhow::ensure!(
            got.sha256_hex == expected_sha,
            "the master in the bucket changed since it was verified (sha256 {} != {})",
            got.sha256_hex,
            expected_sha
        );
        Ok(path)
    }

    // ---- arrived/transcoding -> checking ------------------------------------------

    async fn transcode(
        &self,
        claim: &mut Claim,
        v: &VariationRow,
        asset: &AssetRow,
        progress: ProgressCell,
    ) -> StepResult {
        let note = if claim.state == State::Arrived {
            "transcode started"
        } else if requested_boost(v) > 0 {
            "transcode at higher quality started (remediation)"
        } else {
            "transcode resumed after an interrupted run"
        };
        let u = Update {
            stage_detail: Some(Some(
                "transcoding every output and still in one pass".into(),
            )),
            stage_progress: Some(Some(0.0)),
            // Keep counting errors across resumes, or a failing transcode would retry forever.
            error_count: None,
            ..Update::to(State::Transcoding).note(note)
        };
        if !self.advance(claim, u, true).await? {
            return Ok(());
        }
        let probe: Probe = serde_json::from_str(v.master_probe.as_deref().unwrap_or("null"))?;
        let master = self.local_master(v).await?;
        let out_dir = self.work(v).join("out");
        if out_dir.exists() {
            tokio::fs::remove_dir_all(&out_dir).await?;
        }
        tokio::fs::create_dir_all(&out_dir).await?;
        let planned = self
            .settings
            .profiles
            .get(&asset.profile)
            .ok_or_else(|| format!("unknown profile {:?}", asset.profile))
            .and_then(|p| plan_for(&probe, p, &self.settings.media));
        let mut plan = match planned {
            Ok(p) => p,
            Err(reason) => {
                let u = Update::to(State::Rejected).reason(
                    "transcodeFailed",
                    format!("no transcode plan for this master: {reason}"),
                );
                self.advance(claim, u, false).await?;
                return Ok(());
            }
        };
        let boost = requested_boost(v);
        boost_plan(&mut plan, boost);
        let mut loudness = match prepare_loudness(
            &self.runner,
            &self.settings,
            &asset.profile,
            &master,
            &probe,
            &mut plan,
        )
        .await
        {
            Ok(n) => n,
            Err(e) if e.is_input_fault() => {
                let u = Update::to(State::Rejected).reason(
                    "transcodeFailed",
                    format!(
                        "ffmpeg could not measure the master's loudness: {}",
                        e.reason()
                    ),
                );
                self.advance(claim, u, false).await?;
                return Ok(());
            }
            Err(e) => return Err(anyhow::Error::new(e).context("measuring loudness")),
        };
        let cell = progress.clone();
        let input_secs = probe.duration_secs;
        let on_progress: Arc<dyn Fn(Progress) + Send + Sync> = Arc::new(move |p: Progress| {
            cell.report(ffmpeg_progress(State::Transcoding.as_str(), &p, input_secs));
        });
        let deadline = Duration::from_secs(self.settings.media.transcode_timeout_secs);
        match transcode(
            &self.runner,
            &master,
            &probe,
            &plan,
            &out_dir,
            Some(on_progress),
            deadline,
        )
        .await
        {
            Ok(out) => {
                if let Some(n) = loudness.as_mut() {
                    n.record_pass2(&out.log);
                }
                let outputs = Outputs {
                    renditions: rendition_files(&out),
                    poster: out.poster.clone(),
                    files: out.files.clone(),
                    boost,
                    loudness,
                };
                let mut note = format!("transcoded {} renditions", outputs.renditions.len());
                if let Some(n) = &outputs.loudness {
                    note.push_str(&format!("; {}", crate::qc::loudness_note(n)));
                }
                let u = Update {
                    outputs_json: Some(Some(serde_json::to_string(&outputs)?)),
                    ..Update::to(State::Checking).note(note)
                };
                self.advance(claim, u, false).await?;
            }
            Err(e) if e.is_input_fault() => {
                let u = Update::to(State::Rejected).reason(
                    "transcodeFailed",
                    format!("ffmpeg could not transcode the master: {e}"),
                );
                self.advance(claim, u, false).await?;
            }
            Err(e) => return Err(anyhow::Error::new(e).context("transcoding")),
        }
        Ok(())
    }

    // ---- checking -> publishing | rejected ----------------------------------------

    async fn check(
        &self,
        claim: &mut Claim,
        v: &VariationRow,
        asset: &AssetRow,
        req: &GenerationRequest,
    ) -> StepResult {
        // Re-read: the transcode step may have just written the outputs.
        let v = self
            .store
            .variation(&v.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("variation vanished"))?;
        let outputs: Option<Outputs> = v
            .outputs_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok());
        let Some(outputs) = outputs.filter(Outputs::all_present) else {
            // The work folder is gone (restart on another disk): transcode again.
            let u = Update::to(State::Transcoding).note("outputs missing; transcoding again");
            self.advance(claim, u, false).await?;
            return Ok(());
        };
        let probe: Probe = serde_json::from_str(v.master_probe.as_deref().unwrap_or("null"))?;
        let master = self.local_master(&v).await?;
        let q = req.effective_output_quality();
        let expected = Expected::from_request(req);
        let overrides: Option<policy::QcOverrides> = asset
            .qc_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok());
        let qc_req = QcRequest {
            overrides: overrides.as_ref(),
            profile: &asset.profile,
            expected: &expected,
            output_quality: q,
            ttl_remaining_secs: policy::ttl_remaining_secs(
                v.arrived_at.unwrap_or(v.created_at),
                asset.ttl_secs,
                now_ms(),
            ),
            normalization: outputs.loudness.clone(),
        };
        let report = match measure_and_evaluate(
            &self.runner,
            &self.settings,
            &master,
            &probe,
            &outputs.renditions,
            qc_req,
        )
        .await
        {
            Ok(r) => r,
            Err(e) if e.is_input_fault() => {
                let u = Update::to(State::Rejected).reason(
                    "measureFailed",
                    format!("quality measurement failed: {}", e.reason()),
                );
                self.advance(claim, u, false).await?;
                return Ok(());
            }
            Err(e) => return Err(anyhow::Error::new(e).context("measuring quality")),
        };
        let floor = report.ssim_floor;
        let qc_json = serde_json::to_string(&report)?;
        // Remediation, once: when the only failures are renditions under their
        // SSIM floor, a re-encode at higher quality can help; anything else
        // (content, loudness, ttl) it cannot, and a second failure rejects.
        let only_quality = report.failures().all(|c| c.rule == "ssim_floor");
        if report.verdict == Verdict::Fail && only_quality && outputs.boost == 0 {
            let retry = Outputs {
                boost: 1,
                ..outputs
            };
            let u = Update {
                qc_json: Some(qc_json),
                outputs_json: Some(Some(serde_json::to_string(&retry)?)),
                ..Update::to(State::Transcoding).note(format!(
                    "remediation: {}; re-encoding once at higher quality",
                    report.summary()
                ))
            };
            self.advance(claim, u, false).await?;
            return Ok(());
        }
        let u = match report.verdict {
            Verdict::Pass => Update {
                qc_json: Some(qc_json),
                ..Update::to(State::Publishing).note(format!("QC passed (SSIM floor {floor:.4})"))
            },
            Verdict::Fail => Update {
                qc_json: Some(qc_json),
                ..Update::to(State::Rejected)
                    .reason("qcFailed", report.summary())
                    .note("QC failed")
            },
        };
        self.advance(claim, u, false).await?;
        Ok(())
    }

    // ---- publishing -> published --------------------------------------------------

    async fn publish(&self, claim: &mut Claim, v: &VariationRow, asset: &AssetRow) -> StepResult {
        let v = self
            .store
            .variation(&v.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("variation vanished"))?;
        let now = now_ms();
        let arrived = v.arrived_at.unwrap_or(v.created_at);
        let remaining = policy::ttl_remaining_secs(arrived, asset.ttl_secs, now);
        if remaining <= 0 {
            let u = Update::to(State::Expired)
                .reason("ttlExpired", "the asset's ttl ran out before publishing");
            self.advance(claim, u, false).await?;
            return Ok(());
        }
        let outputs: Option<Outputs> = v
            .outputs_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok());
        let Some(outputs) = outputs.filter(Outputs::all_present) else {
            let u = Update::to(State::Transcoding)
                .note("outputs missing before publish; transcoding again");
            self.advance(claim, u, false).await?;
            return Ok(());
        };
        let report: policy::QcReport =
            serde_json::from_str(v.qc_json.as_deref().unwrap_or("null"))?;
        anyhow::ensure!(
            report.verdict == Verdict::Pass,
            "refusing to publish a variation that did not pass QC"
        );
        let probe: Probe = serde_json::from_str(v.master_probe.as_deref().unwrap_or("null"))?;

        let files = match pubset::describe(&outputs.written()).await {
            Ok(f) => f,
            Err(SetError::Invalid(why)) => {
                return self.refuse_set(claim, why).await;
            }
            Err(e) => return Err(e.into()),
        };
        let hash = publish::content_hash(&files);
        let layout = Layout::new(&self.settings.cdn.prefix, &asset.campaign, &asset.id, v.idx);
        let bucket = &self.settings.storage.cdn_bucket;
        let manifest_key = ObjectKey::parse(&layout.manifest())?;
        let vast_key = ObjectKey::parse(&layout.vast())?;
        let qc_key = layout.file(&hash, "qc.json");
        if let Some(why) = self.key_problem(
            bucket,
            files
                .iter()
                .map(|f| layout.file(&hash, &f.name))
                .chain([qc_key.clone()]),
        ) {
            let u = Update::to(State::Failed).reason("keyTooLong", why);
            self.advance(claim, u, false).await?;
            return Ok(());
        }
        let url = |k: &str| publish::public_url(&self.cdn_base, k);
        // What the row last recorded as live: pointers that differ from it
        // changed, and changed pointers are purged.
        let recorded_hash = v
            .published_json
            .as_deref()
            .and_then(|j| serde_json::from_str::<Manifest>(j).ok())
            .map(|m| m.content_hash);
        let purge = |changed: bool| -> Vec<crate::notify::NewOutbox> {
            let purge_url = &self.settings.cdn.purge_url;
            if !changed || purge_url.is_empty() {
                return Vec::new();
            }
            vec![crate::notify::purge(
                purge_url,
                &asset.id,
                &v.id,
                vec![url(manifest_key.as_str()), url(vast_key.as_str())],
                vec![
                    manifest_key.as_str().to_string(),
                    vast_key.as_str().to_string(),
                ],
            )]
        };

        // This set is about to be (or stay) live: the sweeper must leave it.
        // The sweeper works under this row's lease, which this step holds.
        self.store.unretire_set(&v.id, &hash).await?;

        // Pointers already naming these bytes: the set is live, nothing to do.
        let live = self.read_manifest(bucket, &manifest_key).await?;
        if let Some(existing) = live.as_ref().filter(|m| m.content_hash == hash) {
            let vast_live = publish::get_small(&self.objects, bucket, &vast_key)
                .await?
                .is_some_and(|b| {
                    !existing.universal_ad_id.is_empty()
                        && String::from_utf8_lossy(&b).contains(&existing.universal_ad_id)
                });
            if vast_live {
                let u = Update {
                    published_json: Some(serde_json::to_string(existing)?),
                    outbox: purge(recorded_hash.as_deref() != Some(hash.as_str())),
                    ..Update::to(State::Published).note("already published (same bytes)")
                };
                self.advance(claim, u, false).await?;
                return Ok(());
            }
        }

        // Everything the manifest says is read from the files before any
        // upload, so a set players could not use is never published.
        let (probes, texts) = self.set_facts(&files, &report).await?;
        let sections = match pubset::sections(&SetFacts {
            layout: &layout,
            hash: &hash,
            cdn_base: &self.cdn_base,
            files: &files,
            probes: &probes,
            texts: &texts,
            fallback_duration_secs: probe.duration_secs,
        }) {
            Ok(s) => s,
            Err(why) => return self.refuse_set(claim, why).await,
        };

        let uploaded = publish::upload_set(&self.objects, bucket, &layout, &hash, &files).await?;
        let (qc_size, qc_sha) = publish::put_small_immutable(
            &self.objects,
            bucket,
            &ObjectKey::parse(&qc_key)?,
            serde_json::to_vec_pretty(&report)?,
            "application/json",
        )
        .await?;
        tracing::debug!(files = files.len(), uploaded, hash = %hash, "set in place");

        let expires_at = arrived + asset.ttl_secs * 1000;
        let manifest = Manifest {
            asset_id: asset.id.clone(),
            variation: v.idx,
            campaign: asset.campaign.clone(),
            content_hash: hash.clone(),
            universal_ad_id: publish::vast::universal_ad_id(&asset.id, v.idx, &hash),
            published_at: rfc3339(now),
            expires_at: rfc3339(expires_at),
            duration_secs: probe.duration_secs,
            master_sha256: v.master_sha256.clone().unwrap_or_default(),
            renditions: sections.renditions,
            poster: sections.poster,
            qc_report: PublishedFile {
                url: url(&qc_key),
                size: qc_size,
                sha256: qc_sha,
                key: qc_key,
            },
            manifest_url: url(manifest_key.as_str()),
            vast_url: url(vast_key.as_str()),
            posters: sections.posters,
            storyboard: sections.storyboard,
            preview: sections.preview,
            hls: sections.hls,
            files: sections.files,
        };
        let impression = match self.settings.cdn.vast_impression_url.as_str() {
            "" => "about:blank".to_string(),
            t => t.replace("{ad_id}", &manifest.universal_ad_id),
        };
        let vast = publish::vast::render(&manifest, &impression, env!("CARGO_PKG_VERSION"));

        // The set being replaced stays until its grace ends (recorded before
        // the flip, so a crash right after it cannot leak the old set).
        if let Some(old) = live.as_ref().filter(|m| m.content_hash != hash) {
            self.store
                .retire_set(
                    &v.id,
                    &old.content_hash,
                    &layout.set_prefix(&old.content_hash),
                )
                .await?;
        }
        // A worker that lost this row must not flip its pointers.
        if !self.store.renew(claim, self.settings.lease(), None).await? {
            tracing::warn!("lease lost before the pointer flip; leaving the pointers alone");
            return Ok(());
        }
        // The pointers never outlive the asset: max-age is capped by the ttl left.
        let cache =
            publish::pointer_cache_control(self.settings.cdn.manifest_max_age_secs, remaining);
        self.objects
            .put_bytes(
                bucket,
                &vast_key,
                vast.into_bytes(),
                publish::vast::CONTENT_TYPE,
                &cache,
            )
            .await?;
        // The manifest names vast.xml, so it goes last.
        self.objects
            .put_bytes(
                bucket,
                &manifest_key,
                serde_json::to_vec_pretty(&manifest)?,
                "application/json",
                &cache,
            )
            .await?;
        let u = Update {
            published_json: Some(serde_json::to_string(&manifest)?),
            outbox: purge(true),
            ..Update::to(State::Published).note(match &live {
                Some(old) if old.content_hash != hash => format!(
                    "published {} files under {hash}; pointers flipped from {}",
                    files.len(),
                    old.content_hash
                ),
                _ => format!("published {} files under {hash}", files.len()),
            })
        };
        self.advance(claim, u, false).await?;
        if let Err(e) = tokio::fs::remove_dir_all(self.work(&v)).await {
            tracing::debug!(error = %e, "work folder cleanup");
        }
        Ok(())
    }

    /// Fails the variation for outputs that do not make a usable set: a
    /// retry would produce the same files.
    async fn refuse_set(&self, claim: &mut Claim, why: String) -> StepResult {
        tracing::error!(reason = %why, "outputs refused for publishing");
        let u = Update::to(State::Failed).reason(
            "invalidOutputs",
            format!("the outputs cannot be published: {why}"),
        );
        self.advance(claim, u, false).await?;
        Ok(())
    }

    /// A reason to refuse keys the object store cannot hold. Only the
    /// embedded store has a limit below S3's 1024 bytes.
    fn key_problem(&self, bucket: &str, keys: impl Iterator<Item = String>) -> Option<String> {
        let max = if self.settings.storage.embedded {
            crate::storage::embedded_max_key_bytes(bucket)
        } else {
            crate::storage::MAX_KEY_BYTES
        };
        publish::key_too_long(keys, max)
    }

    /// Probes and texts the manifest needs: renditions reuse the probes QC
    /// made of them (their own container only); images and renditions QC did
    /// not measure are probed here; playlists and WebVTT are read.
    async fn set_facts(
        &self,
        files: &[OutputFile],
        report: &policy::QcReport,
    ) -> Result<(HashMap<String, Probe>, Texts), StepError> {
        let mut probes = HashMap::new();
        let mut texts = Texts::new();
        for f in files {
            match f.role {
                FileRole::Rendition => {
                    let name = f.output.as_deref().unwrap_or_default();
                    let measured = report
                        .renditions
                        .iter()
                        .find(|m| m.name == name && pubset::probe_matches(&m.probe, &f.name))
                        .map(|m| m.probe.clone());
                    let p = match measured {
                        Some(p) => p,
                        None => self.runner.ffprobe(&f.path).await?,
                    };
                    probes.insert(f.name.clone(), p);
                }
                FileRole::Poster | FileRole::Sprite | FileRole::Preview => {
                    let p = match still_probe(&f.path).await? {
                        Some(p) => p,
                        None => self.runner.ffprobe(&f.path).await?,
                    };
                    probes.insert(f.name.clone(), p);
                }
                _ if pubset::is_text(f) => {
                    anyhow::ensure!(
                        f.size <= 4 * 1024 * 1024,
                        "{} is {} bytes: too large for a playlist",
                        f.name,
                        f.size
                    );
                    let text = tokio::fs::read_to_string(&f.path).await?;
                    texts.insert(f.name.clone(), text);
                }
                _ => {}
            }
        }
        Ok((probes, texts))
    }

    async fn read_manifest(
        &self,
        bucket: &str,
        key: &ObjectKey,
    ) -> Result<Option<Manifest>, StepError> {
        Ok(publish::get_small(&self.objects, bucket, key)
            .await?
            .and_then(|b| serde_json::from_slice(&b).ok()))
    }
}

/// A WebP's size from its header (ffprobe reads no size from animated
/// ones); None for other images.
async fn still_probe(path: &Path) -> Result<Option<Probe>, StepError> {
    use tokio::io::AsyncReadExt;
    if !path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("webp"))
    {
        return Ok(None);
    }
    let mut head = [0u8; 30];
    let mut f = tokio::fs::File::open(path).await?;
    let n = f.read(&mut head).await?;
    let size = f.metadata().await?.len();
    Ok(pubset::webp_size(&head[..n]).map(|(width, height)| Probe {
        format_name: "webp".into(),
        duration_secs: 0.0,
        size_bytes: size,
        bit_rate: None,
        video: Some(crate::media::VideoStream {
            codec: "webp".into(),
            profile: None,
            level: None,
            width,
            height,
            pix_fmt: None,
            fps: 0.0,
            nb_frames: None,
            ..Default::default()
        }),
        audio: None,
    }))
}

/// `base` plus a move to `rejected` for the given reason.
fn reject(base: Update, code: &str, reason: String) -> Update {
    let to = Update::to(State::Rejected).reason(code, reason);
    Update {
        state: to.state,
        reason_code: to.reason_code,
        reason: to.reason,
        stage_progress: to.stage_progress,
        progress_json: to.progress_json,
        stage_detail: to.stage_detail,
        error_count: to.error_count,
        release: true,
        ..base
    }
}

/// The local file extension for an uploaded master: its key's, if plain.
fn upload_extension(key: &str) -> String {
    match key.rsplit_once('.') {
        Some((_, ext))
            if (1..=5).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            ext.to_ascii_lowercase()
        }
        _ => "bin".into(),
    }
}

/// The request an uploaded master stands for: what the probe found, with
/// the outputQuality the asset was created with.
fn upload_request(
    base: &GenerationRequest,
    probe: &Probe,
    key: &str,
) -> Result<GenerationRequest, StepError> {
    use crate::runware::OutputFormat;
    let video = probe
        .video
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("master has no video"))?;
    let format = match upload_extension(key).as_str() {
        "mov" => OutputFormat::Mov,
        "webm" | "mkv" => OutputFormat::Webm,
        "mp4" | "m4v" => OutputFormat::Mp4,
        _ if probe.format_name.contains("webm") || probe.format_name.contains("matroska") => {
            OutputFormat::Webm
        }
        _ => OutputFormat::Mp4,
    };
    let mut json = serde_json::to_value(base)?;
    let obj = json
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("request is not an object"))?;
    obj.insert("width".into(), video.width.into());
    obj.insert("height".into(), video.height.into());
    obj.insert(
        "duration".into(),
        (probe.duration_secs.round().max(1.0) as u32).into(),
    );
    obj.insert("outputFormat".into(), serde_json::to_value(format)?);
    obj.insert(
        "providerSettings".into(),
        serde_json::json!({"klingai": {"sound": probe.audio.is_some()}}),
    );
    Ok(serde_json::from_value(json)?)
}

fn master_file_name(req: &GenerationRequest) -> String {
    format!("master.{}", req.effective_output_format().extension())
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The per-variation webhook token: a keyed hash of the variation id, so it
/// can be made again for a resubmission without being stored.
pub fn webhook_token(secret: &[u8], variation_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(secret);
    h.update([0u8]);
    h.update(variation_id.as_bytes());
    hex::encode(h.finalize())
}

pub fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_from_before_file_lists_publish_their_renditions_and_poster() {
        // An outputs_json written before transcodes listed their files.
        let old = r#"{"renditions": [
            {"name": "720p", "path": "/w/out/720p.mp4", "width": 1280, "height": 720},
            {"name": "480p", "path": "/w/out/480p.mp4", "width": 854, "height": 480}
        ], "poster": "/w/out/poster.jpg"}"#;
        let o: Outputs = serde_json::from_str(old).unwrap();
        let rels: Vec<(String, FileRole, Option<String>)> = o
            .written()
            .into_iter()
            .map(|f| (f.rel, f.role, f.output))
            .collect();
        assert_eq!(
            rels,
            [
                ("720p.mp4".into(), FileRole::Rendition, Some("720p".into())),
                ("480p.mp4".into(), FileRole::Rendition, Some("480p".into())),
                ("poster.jpg".into(), FileRole::Poster, None),
            ]
        );
        assert!(!o.all_present());
        // A listed set is taken as it is, and present only when every file is.
        let dir = tempfile::tempdir().unwrap();
        let file = |rel: &str, role| {
            let path = dir.path().join(rel.replace('/', "_"));
            std::fs::write(&path, b"x").unwrap();
            WrittenFile {
                rel: rel.into(),
                path,
                role,
                output: None,
            }
        };
        let mut listed = Outputs {
            renditions: vec![],
            poster: dir.path().join("poster-1280.jpg"),
            files: vec![
                file("poster-1280.jpg", FileRole::Poster),
                file("hls/720p_00001.ts", FileRole::HlsSegment),
            ],
            boost: 0,
            loudness: None,
        };
        assert_eq!(listed.written(), listed.files);
        assert!(listed.all_present());
        listed.files[1].path = dir.path().join("gone.ts");
        assert!(
            !listed.all_present(),
            "a missing segment means transcoding again"
        );
    }
}
