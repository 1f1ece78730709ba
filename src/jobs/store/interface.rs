//! What the stages and workers need of the job store, as a trait: `Store`
//! implements it on SQLite and on Postgres alike, so no stage knows which
//! backend it runs on.

use super::{Asset, Claim, Result, StepProgress, Update, Variation};
use crate::runware::{ApiError, TaskItem};
use async_trait::async_trait;
use std::time::Duration;

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Takes the lease on the runnable variation that has waited longest;
    /// two workers never get the same row.
    async fn claim(&self, lease: Duration) -> Result<Option<Claim>>;
    async fn variation(&self, id: &str) -> Result<Option<Variation>>;
    async fn asset(&self, id: &str) -> Result<Option<Asset>>;
    /// Applies a step's result under the claim's fencing token, with the
    /// transition and any notifications in the same transaction. False when
    /// the lease was lost.
    async fn update(&self, claim: &Claim, u: Update) -> Result<bool>;
    /// Extends a lease and records the step's progress; false when lost.
    async fn renew_with(
        &self,
        claim: &Claim,
        lease: Duration,
        percent: Option<f64>,
        report: Option<&StepProgress>,
    ) -> Result<bool>;
    /// Ends a variation whose row does not decode: `failed` with an
    /// internal reason, written without reading the row back.
    async fn fail_undecodable(&self, claim: &Claim, note: &str) -> Result<bool>;
    /// Records what the generator reported (its result item or errors).
    async fn record_provider_report(
        &self,
        id: &str,
        item: Option<&TaskItem>,
        errors: Option<&[ApiError]>,
        cost: Option<f64>,
    ) -> Result<()>;
    /// Notes a CDN set about to be replaced, so it is deleted after its grace.
    async fn retire_set(&self, variation_id: &str, content_hash: &str, prefix: &str) -> Result<()>;
    /// Takes a set off the retired list (it is live again).
    async fn unretire_set(&self, variation_id: &str, content_hash: &str) -> Result<()>;
}

#[async_trait]
impl JobStore for super::Store {
    async fn claim(&self, lease: Duration) -> Result<Option<Claim>> {
        super::Store::claim(self, lease).await
    }
    async fn variation(&self, id: &str) -> Result<Option<Variation>> {
        super::Store::variation(self, id).await
    }
    async fn asset(&self, id: &str) -> Result<Option<Asset>> {
        super::Store::asset(self, id).await
    }
    async fn update(&self, claim: &Claim, u: Update) -> Result<bool> {
        super::Store::update(self, claim, u).await
    }
    async fn renew_with(
        &self,
        claim: &Claim,
        lease: Duration,
        percent: Option<f64>,
        report: Option<&StepProgress>,
    ) -> Result<bool> {
        super::Store::renew_with(self, claim, lease, percent, report).await
    }
    async fn fail_undecodable(&self, claim: &Claim, note: &str) -> Result<bool> {
        super::Store::fail_undecodable(self, claim, note).await
    }
    async fn record_provider_report(
        &self,
        id: &str,
        item: Option<&TaskItem>,
        errors: Option<&[ApiError]>,
        cost: Option<f64>,
    ) -> Result<()> {
        super::Store::record_provider_report(self, id, item, errors, cost).await
    }
    async fn retire_set(&self, variation_id: &str, content_hash: &str, prefix: &str) -> Result<()> {
        super::Store::retire_set(self, variation_id, content_hash, prefix).await
    }
    async fn unretire_set(&self, variation_id: &str, content_hash: &str) -> Result<()> {
        super::Store::unretire_set(self, variation_id, content_hash).await
    }
}
