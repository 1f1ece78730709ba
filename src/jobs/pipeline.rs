//! One step of a variation: load the row (decoded once), run the stage its
//! state names, and apply the stage's [`Outcome`] under the claim's fencing
//! token. Every stage is safe to run twice: a crash between the work and the
//! write only repeats the work (the submit is idempotent through the task's
//! fixed UUID, uploads overwrite the same keys, the manifest is written
//! last).
//!
//! This is also the one place where an internal error becomes text a client
//! sees: the cause chain goes to the log, the row gets a plain sentence.

use super::model::{Asset, Claim, Reason, Update, Variation};
use super::progress::ProgressCell;
use super::store::{JobStore, Store, StoreError};
use super::State;
use crate::backoff::Backoff;
use crate::config::Settings;
use crate::media::process::{ProcessError, Runner};
use crate::reason::ReasonCode;
use crate::runware::client::RunwareClient;
use crate::stages::{self, client_text, Ctx, Outcome, INTERNAL_MESSAGE};
use crate::storage::ObjectStore;
use crate::time::now_ms;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::Instrument;

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

/// Why a step could not load its rows.
enum Load {
    /// Gone (deleted, or never there): nothing to do.
    Missing,
    /// There, but a column does not decode: no retry will fix it.
    Undecodable(StoreError),
    Failed(StoreError),
}

impl Pipeline {
    /// The job store as the stages reach it.
    pub fn jobs(&self) -> &dyn JobStore {
        &self.store
    }

    pub fn ctx(&self, progress: ProgressCell) -> Ctx<'_> {
        Ctx {
            store: &self.store,
            objects: &self.objects,
            runware: &self.runware,
            runner: &self.runner,
            settings: &self.settings,
            public_url: &self.public_url,
            cdn_base: &self.cdn_base,
            work_dir: &self.work_dir,
            webhook_secret: &self.webhook_secret,
            progress,
        }
    }

    pub fn webhook_token(&self, variation_id: &str) -> String {
        crate::tokens::webhook_token(&self.webhook_secret, variation_id)
    }

    async fn load(&self, id: &str) -> Result<(Variation, Asset), Load> {
        let classify = |e: StoreError| {
            if e.is_undecodable() {
                Load::Undecodable(e)
            } else {
                Load::Failed(e)
            }
        };
        let v = self
            .jobs()
            .variation(id)
            .await
            .map_err(classify)?
            .ok_or(Load::Missing)?;
        let a = self
            .jobs()
            .asset(&v.asset_id)
            .await
            .map_err(classify)?
            .ok_or(Load::Missing)?;
        Ok((v, a))
    }

    /// Runs the claimed variation's stage and records what it decided.
    pub async fn step(&self, claim: &mut Claim, progress: ProgressCell) {
        let (v, asset) = match self.load(&claim.id).await {
            Ok(rows) => rows,
            Err(Load::Missing) => {
                tracing::warn!("the claimed variation or its asset is gone");
                return;
            }
            Err(Load::Undecodable(e)) => {
                tracing::error!(error = %e, "the variation's row does not decode; failing it");
                let note = "the stored row does not decode (see the log)";
                if let Err(e) = self.jobs().fail_undecodable(claim, note).await {
                    tracing::error!(error = %e, "could not fail an undecodable variation");
                }
                return;
            }
            Err(Load::Failed(e)) => {
                return self
                    .apply(claim, None, Outcome::Retry(anyhow::Error::new(e)))
                    .await
            }
        };
        let ctx = self.ctx(progress);
        let Some((stage, span)) = stage_span(claim.state, asset.is_upload()) else {
            return;
        };
        let started = std::time::Instant::now();
        let outcome = async {
            match claim.state {
                State::Requested => stages::submit::run(&ctx, &v, &asset).await,
                // A master uploaded by hand has no generation to wait for.
                State::Submitted | State::Generating if asset.is_upload() => {
                    stages::arrival::upload(&ctx, &v).await
                }
                State::Submitted | State::Generating => {
                    stages::generation::run(&ctx, &v, &asset).await
                }
                State::Arrived | State::Transcoding => {
                    stages::transcode::run(&ctx, claim, &v, &asset).await
                }
                State::Checking => stages::check::run(&ctx, &v, &asset).await,
                _ => stages::publish::run(&ctx, claim, &v, &asset).await,
            }
        }
        .instrument(span)
        .await;
        crate::telemetry::metrics::observe(
            "reelay_stage_duration_seconds",
            &[("stage", stage), ("outcome", outcome_name(&outcome))],
            started.elapsed(),
        );
        self.apply(claim, Some(&v), outcome).await
    }

    /// Writes an outcome. The lease is given back with every write, so the
    /// next step can run on any worker.
    async fn apply(&self, claim: &mut Claim, v: Option<&Variation>, outcome: Outcome) {
        let update = match outcome {
            Outcome::Abandoned => return,
            Outcome::Advance(u) => u,
            Outcome::Wait { at, update } => Update {
                next_run_at: Some(at),
                ..update
            },
            Outcome::Reject {
                code,
                message,
                record,
            } => ending(State::Rejected, code, &message, record),
            Outcome::Fail {
                code,
                message,
                record,
            } => ending(State::Failed, code, &message, record),
            Outcome::Retry(err) => self.retry(claim, v, err).await,
        };
        let update = Update {
            release: true,
            ..update
        };
        let to = update.state;
        match self.jobs().update(claim, update).await {
            Ok(true) => {
                if let Some(s) = to {
                    claim.state = s;
                }
                self.wake.notify_one();
                // Every terminal state (published, rejected, failed...) frees
                // the work folder; a later reprocess fetches the master again.
                if to.is_some_and(State::is_terminal) {
                    super::workdir::remove(&self.work_dir, &claim.id).await;
                }
            }
            Ok(false) => tracing::warn!("lease lost before the step's result was written"),
            Err(e) => tracing::error!(error = %e, "could not record the step's result"),
        }
    }

    /// A transient error: counted, logged with its whole cause chain, and
    /// retried with backoff; after `worker.max_step_errors` the variation
    /// fails with an internal reason that names no cause.
    async fn retry(&self, claim: &Claim, v: Option<&Variation>, err: anyhow::Error) -> Update {
        let known = match v {
            Some(v) => Some(v.error_count),
            None => self
                .jobs()
                .variation(&claim.id)
                .await
                .ok()
                .flatten()
                .map(|v| v.error_count),
        };
        let errors = known.unwrap_or(0) + 1;
        let w = &self.settings.worker;
        let stall = err
            .chain()
            .find_map(|e| match e.downcast_ref::<ProcessError>() {
                Some(ProcessError::Stalled { label, after, .. }) => Some((label.clone(), *after)),
                _ => None,
            });
        if let Some((label, after)) = &stall {
            if errors >= w.max_step_errors {
                tracing::error!(error = %format!("{err:#}"), "ffmpeg stalled on every one of {errors} attempts");
                return ending(
                    State::Failed,
                    ReasonCode::Stalled,
                    &format!(
                        "ffmpeg ({label}) made no progress for {} s on each of {errors} attempts and was stopped each time",
                        after.as_secs()
                    ),
                    Update::default(),
                );
            }
        }
        if errors >= w.max_step_errors {
            tracing::error!(error = %format!("{err:#}"), "step failed for good after {errors} attempts");
            return ending(
                State::Failed,
                ReasonCode::InternalError,
                &format!("{INTERNAL_MESSAGE} (gave up after {errors} attempts)"),
                Update::default(),
            );
        }
        let delay = Backoff::doubling(
            Duration::from_millis(w.step_retry_initial_ms),
            Duration::from_secs(w.step_retry_max_secs),
        )
        .delay(errors as u32 - 1);
        tracing::warn!(error = %format!("{err:#}"), retry_in_ms = delay.as_millis() as u64, "step failed; will retry");
        Update {
            error_count: Some(errors),
            stage_detail: Some(Some(match &stall {
                Some((label, after)) => format!(
                    "ffmpeg ({label}) made no progress for {} s and was stopped; retrying (attempt {errors} of {})",
                    after.as_secs(),
                    w.max_step_errors
                ),
                None => format!(
                    "retrying after an internal error (attempt {errors} of {})",
                    w.max_step_errors
                ),
            })),
            next_run_at: Some(now_ms() + delay.as_millis() as i64),
            ..Default::default()
        }
    }
}

/// The stage a state runs and its span (`stage.transcode`...); None for a
/// state no stage runs.
fn stage_span(state: State, upload: bool) -> Option<(&'static str, tracing::Span)> {
    Some(match state {
        State::Requested => ("submit", tracing::info_span!("stage.submit")),
        State::Submitted | State::Generating if upload => {
            ("arrival", tracing::info_span!("stage.arrival"))
        }
        State::Submitted | State::Generating => {
            ("generation", tracing::info_span!("stage.generation"))
        }
        State::Arrived | State::Transcoding => {
            ("transcode", tracing::info_span!("stage.transcode"))
        }
        State::Checking => ("check", tracing::info_span!("stage.check")),
        State::Publishing => ("publish", tracing::info_span!("stage.publish")),
        _ => return None,
    })
}

/// The outcome's kind, as the stage-duration histogram labels it.
fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Advance(_) => "advance",
        Outcome::Wait { .. } => "wait",
        Outcome::Reject { .. } => "reject",
        Outcome::Fail { .. } => "fail",
        Outcome::Retry(_) => "retry",
        Outcome::Abandoned => "abandoned",
    }
}

/// A terminal update (`rejected`, `failed`) over what the stage recorded;
/// the message is made fit for a client here.
fn ending(state: State, code: ReasonCode, message: &str, record: Update) -> Update {
    let to = Update::to(state);
    Update {
        state: to.state,
        reason: Some(Reason {
            code,
            message: client_text(message),
        }),
        stage_progress: to.stage_progress,
        progress: to.progress,
        stage_detail: to.stage_detail,
        error_count: to.error_count,
        ..record
    }
}
