//! `publishing` → `published`: every file of the checked set, content
//! addressed, then the pointers, by the flip protocol in
//! [`crate::publish::flip`]. Refused here: a variation whose ttl ran out
//! (`expired`), a report that is not `pass`, a set that cannot be published
//! or whose keys do not fit the store.

use super::{Ctx, Outcome};
use crate::jobs::model::{Asset, Claim, NewOutbox, Update, Variation};
use crate::jobs::State;
use crate::media::timing::secs_since;
use crate::policy::{self, Verdict};
use crate::publish::flip::{self, FlipGuard, FlipRequest, Flipped};
use crate::publish::set::{self as pubset, SetError};
use crate::publish::{self, Layout};
use crate::reason::ReasonCode;
use crate::time::{now_ms, rfc3339};
use async_trait::async_trait;

/// The job-store side of the flip, under this stage's lease.
struct Guard<'a> {
    ctx: &'a Ctx<'a>,
    claim: &'a Claim,
}

#[async_trait]
impl FlipGuard for Guard<'_> {
    async fn keep(&self, hash: &str) -> anyhow::Result<()> {
        Ok(self.ctx.store.unretire_set(&self.claim.id, hash).await?)
    }
    async fn retire(&self, hash: &str, prefix: &str) -> anyhow::Result<()> {
        Ok(self
            .ctx
            .store
            .retire_set(&self.claim.id, hash, prefix)
            .await?)
    }
    async fn renew(&self) -> anyhow::Result<bool> {
        let lease = self.ctx.settings.lease();
        Ok(self
            .ctx
            .store
            .renew_with(self.claim, lease, None, None)
            .await?)
    }
}

pub async fn run(ctx: &Ctx<'_>, claim: &Claim, v: &Variation, asset: &Asset) -> Outcome {
    let now = now_ms();
    let arrived = v.arrived_at.unwrap_or(v.created_at);
    let remaining = policy::ttl_remaining_secs(arrived, asset.ttl_secs, now);
    if remaining <= 0 {
        return Outcome::Advance(Update::to(State::Expired).reason(
            ReasonCode::TtlExpired,
            "the asset's ttl ran out before publishing",
        ));
    }
    let Some(outputs) = v.outputs.as_ref().filter(|o| o.all_present()) else {
        return Outcome::advance(
            Update::to(State::Transcoding)
                .note("outputs missing before publish; transcoding again"),
        );
    };
    let Some(report) = v.qc.as_ref().filter(|r| r.verdict == Verdict::Pass) else {
        return Outcome::Retry(anyhow::anyhow!(
            "refusing to publish a variation that did not pass QC"
        ));
    };
    let Some(probe) = v.master_probe.as_ref() else {
        return Outcome::Retry(anyhow::anyhow!(
            "a variation past arrival has no master probe"
        ));
    };
    // The request's captions join the set (the HLS master gains their group).
    let written = crate::tri!(
        publish::captions::add_to_set(
            &ctx.work(v).join("publish-captions"),
            &asset.captions,
            probe.duration_secs,
            outputs.written(),
        )
        .await,
        "writing the caption files"
    );
    let files = match pubset::describe(&written).await {
        Ok(f) => f,
        Err(SetError::Invalid(why)) => return refuse_set(why),
        Err(e) => return Outcome::Retry(anyhow::Error::new(e).context("describing the set")),
    };
    let hash = publish::content_hash(&files);
    let layout = Layout::new(&ctx.settings.cdn.prefix, &asset.campaign, &asset.id, v.idx);
    let bucket = &ctx.settings.storage.cdn_bucket;
    let qc_key = layout.file(&hash, "qc.json");
    if let Some(why) = key_problem(
        ctx,
        bucket,
        files
            .iter()
            .map(|f| layout.file(&hash, &f.name))
            .chain([qc_key]),
    ) {
        return Outcome::fail(ReasonCode::KeyTooLong, why);
    }
    let req = FlipRequest {
        objects: ctx.objects,
        runner: ctx.runner,
        bucket,
        layout: &layout,
        cdn_base: ctx.cdn_base,
        files: &files,
        hash: &hash,
        report,
        master: probe,
        asset_id: &asset.id,
        campaign: &asset.campaign,
        variation_idx: v.idx,
        master_sha256: v.master_sha256.as_deref().unwrap_or_default(),
        published_at: rfc3339(now),
        expires_at: rfc3339(arrived + asset.ttl_secs * 1000),
        // The pointers never outlive the asset: max-age is capped by the ttl left.
        pointer_cache: publish::pointer_cache_control(
            ctx.settings.cdn.manifest_max_age_secs,
            remaining,
        ),
        impression_url: &ctx.settings.cdn.vast_impression_url,
        vast: &asset.vast,
        captions: &asset.captions,
    };
    let upload_started = std::time::Instant::now();
    let flipped = crate::tri!(
        flip::flip(req, &Guard { ctx, claim }).await,
        "publishing the set"
    );
    // The row's report gains the upload's wall time (the published qc.json,
    // part of that upload, cannot).
    let mut timed_report = report.clone();
    timed_report.timings.upload_secs = Some(secs_since(upload_started));
    // What the row last recorded as live: pointers that differ from it
    // changed, and changed pointers are purged.
    let recorded = v.published.as_ref().map(|m| m.content_hash.as_str());
    if matches!(flipped, Flipped::Published { .. }) && cancelled_meanwhile(ctx, &claim.id).await {
        // The asset was cancelled after this lease's last renewal: its
        // take-down may have run before these pointers were written, so
        // this stage takes down what it wrote. (A cancel committed after
        // this read runs its own take-down after these writes.)
        let named = files.iter().map(|f| layout.file(&hash, &f.name)).collect();
        crate::tri!(
            super::cancel::take_down(ctx.objects, bucket, &layout, named).await,
            "taking down a set published while its asset was cancelled"
        );
        return Outcome::Abandoned;
    }
    let u = match flipped {
        Flipped::LeaseLost => return Outcome::Abandoned,
        Flipped::Refused(why) => return refuse_set(why),
        Flipped::AlreadyLive(manifest) => Update {
            outbox: purge(
                ctx,
                manifest.pointer_keys(&layout),
                asset,
                v,
                recorded != Some(hash.as_str()),
            ),
            published: Some(manifest),
            ..Update::to(State::Published).note("already published (same bytes)")
        },
        Flipped::Published {
            manifest,
            replaced,
            removed,
        } => Update {
            outbox: purge(
                ctx,
                manifest
                    .pointer_keys(&layout)
                    .into_iter()
                    .chain(removed)
                    .collect(),
                asset,
                v,
                true,
            ),
            published: Some(manifest),
            qc: Some(timed_report),
            ..Update::to(State::Published).note(match replaced {
                Some(old) => format!(
                    "published {} files under {hash}; pointers flipped from {old}",
                    files.len()
                ),
                None => format!("published {} files under {hash}", files.len()),
            })
        },
    };
    Outcome::Advance(u)
}

/// True when the row was cancelled while this stage held it.
async fn cancelled_meanwhile(ctx: &Ctx<'_>, id: &str) -> bool {
    matches!(
        ctx.store.variation(id).await,
        Ok(Some(row)) if row.state == State::Cancelled
    )
}

/// A purge of the pointers (`keys`) when they changed and a purge URL is set.
fn purge(
    ctx: &Ctx<'_>,
    keys: Vec<String>,
    asset: &Asset,
    v: &Variation,
    changed: bool,
) -> Vec<NewOutbox> {
    let purge_url = &ctx.settings.cdn.purge_url;
    if !changed || purge_url.is_empty() {
        return Vec::new();
    }
    vec![crate::views::purge(
        purge_url,
        &asset.id,
        &v.id,
        keys.iter()
            .map(|k| publish::public_url(ctx.cdn_base, k))
            .collect(),
        keys,
    )]
}

/// Outputs that do not make a usable set: a retry would produce the same files.
fn refuse_set(why: String) -> Outcome {
    tracing::error!(reason = %why, "outputs refused for publishing");
    Outcome::fail(
        ReasonCode::InvalidOutputs,
        format!("the outputs cannot be published: {why}"),
    )
}

/// A reason to refuse keys the object store cannot hold. Only the embedded
/// store has a limit below S3's 1024 bytes.
fn key_problem(ctx: &Ctx<'_>, bucket: &str, keys: impl Iterator<Item = String>) -> Option<String> {
    let max = if ctx.settings.storage.embedded {
        crate::storage::embedded_max_key_bytes(bucket)
    } else {
        crate::storage::MAX_KEY_BYTES
    };
    publish::key_too_long(keys, max)
}
